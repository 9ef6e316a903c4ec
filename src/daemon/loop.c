/* epoll event loop. One thread; nothing in a callback may block for long. */
#include "config.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

struct sbx_watch {
	struct sbx_loop *loop;
	int fd;
	bool is_timer;
	bool dead;
	sbx_watch_cb cb;
	sbx_timer_cb tcb;
	void *data;
	struct sbx_watch *next_dead;
};

struct sbx_loop {
	int epfd;
	bool quit;
	struct sbx_watch *dead;
};

struct sbx_loop *sbx_loop_new(void)
{
	struct sbx_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	return loop;
}

static void reap_dead(struct sbx_loop *loop)
{
	while (loop->dead) {
		struct sbx_watch *w = loop->dead;
		loop->dead = w->next_dead;
		free(w);
	}
}

void sbx_loop_free(struct sbx_loop *loop)
{
	if (!loop)
		return;
	reap_dead(loop);
	close(loop->epfd);
	free(loop);
}

struct sbx_watch *sbx_loop_watch(struct sbx_loop *loop, int fd, uint32_t events, sbx_watch_cb cb, void *data)
{
	struct sbx_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->loop = loop;
	w->fd = fd;
	w->cb = cb;
	w->data = data;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(w);
		return NULL;
	}
	return w;
}

int sbx_loop_modify(struct sbx_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	return epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void sbx_loop_unwatch(struct sbx_watch *w)
{
	if (!w || w->dead)
		return;
	epoll_ctl(w->loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	if (w->is_timer)
		close(w->fd);
	w->dead = true;
	w->next_dead = w->loop->dead;
	w->loop->dead = w;
}

static void timer_fired(struct sbx_watch *w, uint32_t events, void *data)
{
	uint64_t n;
	if (read(w->fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
		return;
	sbx_timer_cb cb = w->tcb;
	sbx_loop_unwatch(w);
	cb(w, data);
}

struct sbx_watch *sbx_loop_timer(struct sbx_loop *loop, int64_t ms, sbx_timer_cb cb, void *data)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (ms < 1)
		ms = 1;
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 } };
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		close(fd);
		return NULL;
	}
	struct sbx_watch *w = sbx_loop_watch(loop, fd, EPOLLIN, timer_fired, data);
	if (!w) {
		close(fd);
		return NULL;
	}
	w->is_timer = true;
	w->tcb = cb;
	return w;
}

int sbx_loop_run(struct sbx_loop *loop)
{
	struct epoll_event evs[64];
	while (!loop->quit) {
		int n = epoll_wait(loop->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sbx_error_log("epoll_wait: %m");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct sbx_watch *w = evs[i].data.ptr;
			if (!w->dead)
				w->cb(w, evs[i].events, w->data);
		}
		reap_dead(loop);
	}
	return 0;
}

void sbx_loop_quit(struct sbx_loop *loop)
{
	loop->quit = true;
}
