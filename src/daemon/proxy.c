/* Each direction has a pipe: splice moves socket → pipe → socket without
 * copying through user space. A direction stops reading while its pipe
 * holds bytes the other side has not taken, so a slow reader throttles a
 * fast writer instead of filling the daemon's memory. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "proxy.h"
#include "util.h"

#define PIPE_BYTES (1 << 20)

struct dir {
	int pipe[2];
	size_t pending; /* bytes in the pipe */
	bool eof;       /* the source has no more */
	bool shut;      /* the destination was told (SHUT_WR) */
	bool full;      /* the pipe had no room at the last read */
	size_t cap;     /* the pipe's size */
};

struct sbx_proxy {
	struct sbx_proxy *next;
	struct sbx_loop *loop;
	int fd[2];
	struct sbx_watch *w[2];
	uint32_t ev[2];
	struct dir d[2]; /* d[0]: fd[0] → fd[1] */
	bool connecting;
	char *head;
	size_t head_len, head_off;
	char owner[13];
};

static struct sbx_proxy *all;

static void proxy_free(struct sbx_proxy *p)
{
	for (struct sbx_proxy **pp = &all; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (p->w[i])
			sbx_loop_unwatch(p->w[i]);
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		for (int k = 0; k < 2; k++)
			if (p->d[i].pipe[k] >= 0)
				close(p->d[i].pipe[k]);
	}
	free(p->head);
	free(p);
}

/* Moves what it can in direction i; -1 on a broken connection. Reading
 * goes on while the pipe has room, so a fast stream is moved in large
 * steps without waiting for the pipe to drain first. */
static int pump(struct sbx_proxy *p, int i)
{
	struct dir *d = &p->d[i];
	int src = p->fd[i], dst = p->fd[1 - i];
	if (i == 0) {
		while (p->head_off < p->head_len) {
			ssize_t n = send(dst, p->head + p->head_off, p->head_len - p->head_off, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			p->head_off += (size_t)n;
		}
	}
	for (;;) {
		bool moved = false;
		if (!d->eof && !d->full) {
			ssize_t n = splice(src, NULL, d->pipe[1], NULL, PIPE_BYTES, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				d->pending += (size_t)n;
				moved = true;
			} else if (n == 0) {
				d->eof = true;
			} else if (errno == EAGAIN) {
				/* The socket is empty, or the pipe is full: only a
				 * full pipe must stop the reading interest. */
				d->full = d->pending >= d->cap;
			} else {
				return -1;
			}
		}
		if (d->pending > 0) {
			ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->pending, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				d->pending -= (size_t)n;
				d->full = false;
				moved = true;
			} else if (n < 0 && errno != EAGAIN) {
				return -1;
			}
		}
		if (d->eof && d->pending == 0 && !d->shut) {
			shutdown(dst, SHUT_WR);
			d->shut = true;
		}
		if (!moved)
			return 0;
	}
}

static void proxy_event(struct sbx_watch *w, uint32_t events, void *data);

static int update(struct sbx_proxy *p)
{
	for (int i = 0; i < 2; i++) {
		uint32_t ev = 0;
		if (p->connecting) {
			ev = i == 1 ? EPOLLOUT : 0;
		} else {
			if (!p->d[i].eof && !p->d[i].full && (i == 1 || p->head_off == p->head_len))
				ev |= EPOLLIN;
			if (p->d[1 - i].pending > 0 || (i == 1 && p->head_off < p->head_len))
				ev |= EPOLLOUT;
		}
		if (ev != p->ev[i] && sbx_loop_modify(p->w[i], ev) < 0)
			return -1;
		p->ev[i] = ev;
	}
	return 0;
}

static void proxy_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_proxy *p = data;
	if (p->connecting) {
		if (w != p->w[1])
			return;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			proxy_free(p);
			return;
		}
		p->connecting = false;
	}
	if (pump(p, 0) < 0 || pump(p, 1) < 0) {
		proxy_free(p);
		return;
	}
	bool done = p->d[0].shut && p->d[1].shut;
	if (done || update(p) < 0) {
		proxy_free(p);
		return;
	}
	/* A hung-up socket we no longer wait on would be reported forever. */
	int i = w == p->w[0] ? 0 : 1;
	if ((events & (EPOLLHUP | EPOLLERR)) && p->ev[i] == 0)
		proxy_free(p);
}

struct sbx_proxy *sbx_proxy_start(struct sbx_loop *loop, int a, int b, bool b_connecting, const void *head,
				  size_t head_len, const char *owner)
{
	struct sbx_proxy *p = calloc(1, sizeof(*p));
	if (!p) {
		close(a);
		close(b);
		return NULL;
	}
	p->loop = loop;
	p->fd[0] = a;
	p->fd[1] = b;
	for (int i = 0; i < 2; i++)
		p->d[i].pipe[0] = p->d[i].pipe[1] = -1;
	snprintf(p->owner, sizeof(p->owner), "%s", owner ? owner : "");
	p->connecting = b_connecting;
	p->next = all;
	all = p;
	if (head_len) {
		p->head = malloc(head_len);
		if (!p->head)
			goto fail;
		memcpy(p->head, head, head_len);
		p->head_len = head_len;
	}
	for (int i = 0; i < 2; i++) {
		if (pipe2(p->d[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
			goto fail;
		/* Best effort: a smaller pipe still works, in smaller steps. */
		int cap = fcntl(p->d[i].pipe[1], F_SETPIPE_SZ, PIPE_BYTES);
		if (cap < 0)
			cap = fcntl(p->d[i].pipe[1], F_GETPIPE_SZ);
		p->d[i].cap = cap > 0 ? (size_t)cap : 65536;
		sbx_set_nonblock(p->fd[i], true);
		p->w[i] = sbx_loop_watch(loop, p->fd[i], 0, proxy_event, p);
		if (!p->w[i])
			goto fail;
	}
	if (!p->connecting && (pump(p, 0) < 0 || pump(p, 1) < 0))
		goto fail;
	if (update(p) < 0)
		goto fail;
	return p;
fail:
	proxy_free(p);
	return NULL;
}

void sbx_proxy_close_owner(const char *owner)
{
	for (struct sbx_proxy *p = all, *next; p; p = next) {
		next = p->next;
		if (!strcmp(p->owner, owner))
			proxy_free(p);
	}
}

void sbx_proxy_close_all(void)
{
	while (all)
		proxy_free(all);
}
