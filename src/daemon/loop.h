/* The daemon's single epoll loop: fd watches and one-shot timers. Watches
 * removed during a dispatch round are freed after it, so a callback may
 * remove any watch, its own included. */
#ifndef SBX_LOOP_H
#define SBX_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct sbx_loop;
struct sbx_watch;
typedef void (*sbx_watch_cb)(struct sbx_watch *w, uint32_t events, void *data);
typedef void (*sbx_timer_cb)(struct sbx_watch *t, void *data);

struct sbx_loop *sbx_loop_new(void);
void sbx_loop_free(struct sbx_loop *loop);
struct sbx_watch *sbx_loop_watch(struct sbx_loop *loop, int fd, uint32_t events, sbx_watch_cb cb, void *data);
int sbx_loop_modify(struct sbx_watch *w, uint32_t events);
/* Stops watching; the fd itself is not closed. */
void sbx_loop_unwatch(struct sbx_watch *w);
/* A one-shot timer after ms milliseconds; cancel with sbx_loop_unwatch. */
struct sbx_watch *sbx_loop_timer(struct sbx_loop *loop, int64_t ms, sbx_timer_cb cb, void *data);
int sbx_loop_run(struct sbx_loop *loop);
void sbx_loop_quit(struct sbx_loop *loop);

#endif
