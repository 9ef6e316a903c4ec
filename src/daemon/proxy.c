/* Byte pumps between two sockets. The loop only waits for the connection
 * to the sandbox; then each direction gets a thread that moves bytes with
 * blocking splice (socket → pipe → socket, never through user space), so
 * a bulk transfer neither costs the loop a wakeup per chunk nor delays its
 * other clients. The threads touch nothing but their descriptors: no
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
/* A forwarding thread needs a few hundred bytes of stack. */
#define THREAD_STACK (64 << 10)

struct sbx_proxy;

struct half {
	struct sbx_proxy *p;
	int src, dst;
	int pipe[2];
	pthread_t thread;
	bool started;
};

struct sbx_proxy {
	struct sbx_proxy *next;      /* all proxies; loop thread only */
	struct sbx_proxy *next_done; /* finished ones; under done_lock */
	struct sbx_loop *loop;
	int fd[2];
	struct sbx_watch *w; /* on fd[1] while it connects */
	struct half h[2];    /* h[0]: fd[0] → fd[1] */
	atomic_int running;  /* references: two threads and the starter */
	bool done_queued;    /* on the done list; under done_lock */
	char *head;
	size_t head_len;
	char owner[13];
};

static struct sbx_proxy *all;

/* Finished proxies are handed back to the loop, which joins their threads
 * and closes their descriptors: a thread never frees what the loop may
 * still be looking at. */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sbx_proxy *done_list;
static int done_fd = -1;
static struct sbx_watch *done_w;

static void release(struct sbx_proxy *p, int n);

static void proxy_free(struct sbx_proxy *p)
{
	for (struct sbx_proxy **pp = &all; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (p->h[i].started)
			pthread_join(p->h[i].thread, NULL);
	}
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
	if (p->w)
		sbx_loop_unwatch(p->w);
	for (int i = 0; i < 2; i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		for (int k = 0; k < 2; k++)
			if (p->h[i].pipe[k] >= 0)
				close(p->h[i].pipe[k]);
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

static bool send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* One direction. The pipe is empty whenever the thread reads, so a read
 * takes whatever the socket holds, up to the pipe's size, in one call; the
 * write then blocks until the destination has taken all of it, which is
 * the back-pressure: a slow reader stops this thread, not the daemon. */
static void *forward(void *arg)
{
	struct half *h = arg;
	struct sbx_proxy *p = h->p;
	bool broken = false;
	if (h == &p->h[0] && p->head_len && !send_all(h->dst, p->head, p->head_len))
		broken = true;
	while (!broken) {
		ssize_t n = splice(h->src, NULL, h->pipe[1], NULL, PIPE_BYTES, SPLICE_F_MOVE);
		if (n == 0) {
			/* Half-close passed on: the other direction goes on. */
			shutdown(h->dst, SHUT_WR);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			broken = true;
			break;
		}
		while (n > 0) {
			ssize_t m = splice(h->pipe[0], NULL, h->dst, NULL, (size_t)n, SPLICE_F_MOVE);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0) {
				broken = true;
				break;
			}
			n -= m;
		}
	}
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

/* Two forwarding threads and the starter hold references; whoever drops
 * the last one queues the pair for the loop to free. */
static void release(struct sbx_proxy *p, int n)
{
	if (atomic_fetch_sub(&p->running, n) != n)
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

/* On failure the pair is broken and queued for freeing: the caller does
 * not touch it again. */
static int start_threads(struct sbx_proxy *p)
{
	int started = 0;
	atomic_store(&p->running, 3);
	pthread_attr_t attr;
	if (sbx_set_nonblock(p->fd[0], false) == 0 && sbx_set_nonblock(p->fd[1], false) == 0 &&
	    pthread_attr_init(&attr) == 0) {
		pthread_attr_setstacksize(&attr, THREAD_STACK);
		/* Signals stay with the loop's thread (signalfd). */
		sigset_t all_signals, old;
		sigfillset(&all_signals);
		pthread_sigmask(SIG_BLOCK, &all_signals, &old);
		for (int i = 0; i < 2; i++) {
			int e = pthread_create(&p->h[i].thread, &attr, forward, &p->h[i]);
			if (e != 0) {
				sbx_warn("proxy: cannot start a forwarding thread: %s", strerror(e));
				break;
			}
			p->h[i].started = true;
			started++;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (started < 2)
		proxy_break(p);
	release(p, 1 + (2 - started));
	return started == 2 ? 0 : -1;
}

static void connected(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_proxy *p = data;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		proxy_free(p);
		return;
	}
	sbx_loop_unwatch(p->w);
	p->w = NULL;
	start_threads(p);
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
		p->h[i].p = p;
		p->h[i].src = p->fd[i];
		p->h[i].dst = p->fd[1 - i];
		p->h[i].pipe[0] = p->h[i].pipe[1] = -1;
	}
	snprintf(p->owner, sizeof(p->owner), "%s", owner ? owner : "");
	p->next = all;
	all = p;
	if (done_watch(loop) < 0)
		goto fail;
	if (head_len) {
		p->head = malloc(head_len);
		if (!p->head)
			goto fail;
		memcpy(p->head, head, head_len);
		p->head_len = head_len;
	}
	for (int i = 0; i < 2; i++) {
		if (pipe2(p->h[i].pipe, O_CLOEXEC) < 0)
			goto fail;
		/* Best effort: a smaller pipe still works, in smaller steps. */
		fcntl(p->h[i].pipe[1], F_SETPIPE_SZ, PIPE_BYTES);
	}
	if (b_connecting) {
		p->w = sbx_loop_watch(loop, b, EPOLLOUT, connected, p);
		if (!p->w)
			goto fail;
	} else if (start_threads(p) < 0) {
		return NULL;
	}
	return p;
fail:
	proxy_free(p);
	return NULL;
}

static void close_where(const char *owner)
{
	/* Break every pair first, so that all threads end together. */
	for (struct sbx_proxy *p = all; p; p = p->next)
		if (!owner || !strcmp(p->owner, owner))
			proxy_break(p);
	for (struct sbx_proxy *p = all, *next; p; p = next) {
		next = p->next;
		if (!owner || !strcmp(p->owner, owner))
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
