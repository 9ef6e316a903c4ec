/* Byte pumps between two TCP sockets, for published ports and the preview
 * gateway: splice through a pipe per direction, in the loop at first and in
 * a thread per direction once a connection carries bulk data; half-close
 * passed on, so WebSocket upgrades and long streams pass through
 * untouched. */
#ifndef SBX_PROXY_H
#define SBX_PROXY_H

#include <stdbool.h>
#include <stddef.h>

struct sbx_loop;
struct sbx_proxy;

/* Takes both fds. b may still be connecting (non-blocking connect); head is
 * sent to b before anything from a. owner (a sandbox id, or "ID:PORT" for
 * a preview link's connections) lets all of a sandbox's connections, or a
 * link's, be closed at once. NULL on failure (fds closed). */
struct sbx_proxy *sbx_proxy_start(struct sbx_loop *loop, int a, int b, bool b_connecting, const void *head,
				  size_t head_len, const char *owner);
/* "ID" closes the sandbox's connections, its links' included; "ID:PORT"
 * those of one link. */
void sbx_proxy_close_owner(const char *owner);
void sbx_proxy_close_all(void);

#endif
