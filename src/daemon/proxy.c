/* Byte pumps between two sockets. Each direction has a pipe: splice moves
 * socket → pipe → socket without copying through user space. A connection
 * starts in the loop (non-blocking, a direction stops reading while its
 * pipe is full), which costs nothing to set up and suits requests and
 * quiet long-lived streams. Once it has moved BULK_BYTES, each direction
 * goes to a thread of its own that blocks in splice: a bulk transfer then
 * costs no loop wakeup per chunk and does not hold up the loop's other
 * clients (up to MAX_THREADED pairs; past that, transfers stay in the
 * loop). The threads touch nothing but their descriptors: no
 * allocation, no logging, no daemon state. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "util.h"

#define PIPE_BYTES (1 << 20)
/* Past this many bytes in either direction a connection is a transfer,
 * not a request: starting two threads then pays for itself. */
#define BULK_BYTES (1 << 20)
/* A forwarding thread needs a few hundred bytes of stack. */
#define THREAD_STACK (64 << 10)
/* At most this many pairs have threads; further transfers stay in the
 * loop, which moves them as before, so many clients cannot make the
 * daemon start threads without bound. */
#define MAX_THREADED 128

static int n_threaded;

struct sbx_proxy;

struct dir {
	struct sbx_proxy *p;
	int src, dst;
	int pipe[2];
	size_t pending; /* bytes in the pipe */
	size_t moved;   /* bytes taken from src */
	bool eof;       /* the source has no more */
	bool shut;      /* the destination was told (SHUT_WR) */
	bool full;      /* the pipe had no room at the last read */
	size_t cap;     /* the pipe's size */
	pthread_t thread;
	bool started;
};

struct sbx_proxy {
	struct sbx_proxy *next;      /* all proxies; loop thread only */
	struct sbx_proxy *next_done; /* finished threaded ones; under done_lock */
	struct sbx_loop *loop;
	int fd[2];
	struct sbx_watch *w[2]; /* while the loop pumps */
	uint32_t ev[2];
	struct dir d[2]; /* d[0]: fd[0] → fd[1] */
	bool connecting;
	bool threaded;
	atomic_int refs;  /* threaded: two threads and the starter */
	bool done_queued; /* on the done list; under done_lock */
	char *head;
	size_t head_len, head_off;
	char owner[32];
};

static struct sbx_proxy *all;

/* Finished threaded pairs are handed back to the loop, which joins their
 * threads and closes their descriptors: a thread never frees what the
 * loop may still be looking at. */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sbx_proxy *done_list;
static int done_fd = -1;
static struct sbx_watch *done_w;

static void proxy_free(struct sbx_proxy *p)
{
	for (struct sbx_proxy **pp = &all; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	for (int i = 0; i < 2; i++)
		if (p->d[i].started)
			pthread_join(p->d[i].thread, NULL);
	if (p->threaded)
		n_threaded--;
	pthread_mutex_lock(&done_lock);
	if (p->done_queued) {
		for (struct sbx_proxy **pp = &done_list; *pp; pp = &(*pp)->next_done) {
			if (*pp == p) {
				*pp = p->next_done;
				break;
			}
		}
	}
	pthread_mutex_unlock(&done_lock);
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

/* Both ways stop: blocked splices return (EOF or EPIPE) and the peers
 * see the connection end. */
static void proxy_break(struct sbx_proxy *p)
{
	shutdown(p->fd[0], SHUT_RDWR);
	shutdown(p->fd[1], SHUT_RDWR);
}

/* ---- in the loop ---- */

/* Moves what it can in direction i; -1 on a broken connection. Reading
 * goes on while the pipe has room, so a fast stream is moved in large
 * steps without waiting for the pipe to drain first. */
static int pump(struct sbx_proxy *p, int i)
{
	struct dir *d = &p->d[i];
	if (i == 0) {
		while (p->head_off < p->head_len) {
			ssize_t n = send(d->dst, p->head + p->head_off, p->head_len - p->head_off, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			p->head_off += (size_t)n;
		}
	}
	for (;;) {
		bool moved = false;
		if (!d->eof && !d->full) {
			ssize_t n =
				splice(d->src, NULL, d->pipe[1], NULL, PIPE_BYTES, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				d->pending += (size_t)n;
				d->moved += (size_t)n;
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
			ssize_t n =
				splice(d->pipe[0], NULL, d->dst, NULL, d->pending, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				d->pending -= (size_t)n;
				d->full = false;
				moved = true;
			} else if (n < 0 && errno != EAGAIN) {
				return -1;
			}
		}
		if (d->eof && d->pending == 0 && !d->shut) {
			shutdown(d->dst, SHUT_WR);
			d->shut = true;
		}
		if (!moved)
			return 0;
	}
}

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

/* ---- in threads ---- */

static bool drain(struct dir *d, size_t n)
{
	while (n > 0) {
		ssize_t m = splice(d->pipe[0], NULL, d->dst, NULL, n, SPLICE_F_MOVE);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0)
			return false;
		n -= (size_t)m;
	}
	return true;
}

/* Two forwarding threads and the starter hold references; whoever drops
 * the last one queues the pair for the loop to free. */
static void release(struct sbx_proxy *p, int n)
{
	if (atomic_fetch_sub(&p->refs, n) != n)
		return;
	pthread_mutex_lock(&done_lock);
	p->next_done = done_list;
	done_list = p;
	p->done_queued = true;
	pthread_mutex_unlock(&done_lock);
	uint64_t one = 1;
	if (write(done_fd, &one, sizeof(one)) < 0) {
		/* Only a counter at its maximum refuses; the loop drains it. */
	}
}

/* One direction, picking up where the loop left it. The pipe is empty
 * whenever the thread reads, so a read takes whatever the socket holds, up
 * to the pipe's size, in one call; the write then blocks until the
 * destination has taken all of it, which is the back-pressure: a slow
 * reader stops this thread, not the daemon. */
static void *forward(void *arg)
{
	struct dir *d = arg;
	struct sbx_proxy *p = d->p;
	bool broken = false;
	if (d == &p->d[0] && sbx_write_all(d->dst, p->head + p->head_off, p->head_len - p->head_off) < 0)
		broken = true;
	else if (!drain(d, d->pending))
		broken = true;
	while (!broken && !d->eof) {
		ssize_t n = splice(d->src, NULL, d->pipe[1], NULL, PIPE_BYTES, SPLICE_F_MOVE);
		if (n == 0)
			d->eof = true;
		else if (n < 0 && errno != EINTR)
			broken = true;
		else if (n > 0 && !drain(d, (size_t)n))
			broken = true;
	}
	/* Half-close passed on: the other direction goes on. */
	if (!broken && !d->shut)
		shutdown(d->dst, SHUT_WR);
	if (broken)
		proxy_break(p);
	release(p, 1);
	return NULL;
}

static void reap_done(struct sbx_watch *w, uint32_t events, void *data)
{
	uint64_t n;
	if (read(done_fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&done_lock);
	struct sbx_proxy *list = done_list;
	done_list = NULL;
	for (struct sbx_proxy *p = list; p; p = p->next_done)
		p->done_queued = false;
	pthread_mutex_unlock(&done_lock);
	while (list) {
		struct sbx_proxy *p = list;
		list = p->next_done;
		proxy_free(p);
	}
}

static int done_watch(struct sbx_loop *loop)
{
	if (done_fd >= 0)
		return 0;
	done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (done_fd < 0)
		return -1;
	done_w = sbx_loop_watch(loop, done_fd, EPOLLIN, reap_done, NULL);
	if (!done_w) {
		sbx_closep(&done_fd);
		return -1;
	}
	return 0;
}

/* The loop lets go of the pair; from here on only the threads and, when
 * they are done, reap_done touch it. On failure the pair is broken and
 * still freed that way. */
static void go_threaded(struct sbx_proxy *p)
{
	int started = 0;
	p->threaded = true;
	n_threaded++;
	atomic_store(&p->refs, 3);
	for (int i = 0; i < 2; i++) {
		sbx_loop_unwatch(p->w[i]);
		p->w[i] = NULL;
	}
	pthread_attr_t attr;
	bool blocking = true;
	for (int i = 0; i < 2; i++)
		if (sbx_set_nonblock(p->fd[i], false) < 0 || sbx_set_nonblock(p->d[i].pipe[0], false) < 0 ||
		    sbx_set_nonblock(p->d[i].pipe[1], false) < 0)
			blocking = false;
	if (done_watch(p->loop) == 0 && blocking && pthread_attr_init(&attr) == 0) {
		pthread_attr_setstacksize(&attr, THREAD_STACK);
		/* Signals stay with the loop's thread (signalfd). */
		sigset_t all_signals, old;
		sigfillset(&all_signals);
		pthread_sigmask(SIG_BLOCK, &all_signals, &old);
		for (int i = 0; i < 2; i++) {
			int e = pthread_create(&p->d[i].thread, &attr, forward, &p->d[i]);
			if (e != 0) {
				sbx_warn("proxy: cannot start a forwarding thread: %s", strerror(e));
				break;
			}
			p->d[i].started = true;
			started++;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (started < 2)
		proxy_break(p);
	if (done_fd >= 0) {
		release(p, 1 + (2 - started));
	} else {
		proxy_free(p);
	}
}

static void proxy_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_proxy *p = data;
	if (p->connecting) {
		/* The client may give up before the sandbox answers. */
		if (w != p->w[1]) {
			if (events & (EPOLLHUP | EPOLLERR))
				proxy_free(p);
			return;
		}
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
	if (p->d[0].shut && p->d[1].shut) {
		proxy_free(p);
		return;
	}
	int i = w == p->w[0] ? 0 : 1;
	/* A hung-up socket is reported even while nothing is asked of it, so
	 * the loop cannot wait for its pipe to drain: threads can. */
	bool hung_up = (events & (EPOLLHUP | EPOLLERR)) && !p->d[i].eof;
	bool bulk = (p->d[0].moved >= BULK_BYTES || p->d[1].moved >= BULK_BYTES) && n_threaded < MAX_THREADED;
	if (bulk || hung_up) {
		go_threaded(p);
		return;
	}
	if (update(p) < 0) {
		proxy_free(p);
		return;
	}
	if ((events & (EPOLLHUP | EPOLLERR)) && p->ev[i] == 0)
		go_threaded(p);
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
	for (int i = 0; i < 2; i++) {
		p->d[i].p = p;
		p->d[i].src = p->fd[i];
		p->d[i].dst = p->fd[1 - i];
		p->d[i].pipe[0] = p->d[i].pipe[1] = -1;
	}
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

/* "ID" owns "ID" and "ID:PORT"; "ID:PORT" owns itself alone. */
static bool owned_by(const struct sbx_proxy *p, const char *owner)
{
	if (!owner)
		return true;
	size_t n = strlen(owner);
	return !strncmp(p->owner, owner, n) && (p->owner[n] == '\0' || p->owner[n] == ':');
}

static void close_where(const char *owner)
{
	/* Break every pair first, so that all threads end together. */
	for (struct sbx_proxy *p = all; p; p = p->next)
		if (owned_by(p, owner))
			proxy_break(p);
	for (struct sbx_proxy *p = all, *next; p; p = next) {
		next = p->next;
		if (owned_by(p, owner))
			proxy_free(p);
	}
}

void sbx_proxy_close_owner(const char *owner)
{
	close_where(owner);
}

void sbx_proxy_close_all(void)
{
	close_where(NULL);
	if (done_w)
		sbx_loop_unwatch(done_w);
	done_w = NULL;
	sbx_closep(&done_fd);
}
