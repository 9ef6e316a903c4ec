/* Loop devices of disk-limited sandboxes (see loopdevs.h). The loop keeps
 * the devices in use; released ones go to a queue that a few threads work
 * through, removing each once autoclear has detached it (LOOP_CTL_REMOVE
 * says EBUSY until then; they try again, backing off). The threads touch
 * nothing but the queue, loop-control and the record directory. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "loopdevs.h"
#include "registry/sandbox.h"

#define RECORD_DIR "loop-devices"
/* Removals wait for RCU grace periods, which overlap across threads. */
#define REMOVERS 4
#define RETRY_FIRST_MS 10
#define RETRY_MAX_MS 2000
/* At exit, how long released devices may take to detach. */
#define EXIT_GRACE_MS 3000

struct in_use {
	int index;
	char owner[13];
};

struct queued {
	int index;
	int tries;
	int64_t due_ms;
};

struct sbx_loopdevs {
	int dir_fd; /* <run_dir>/loop-devices: a file "loopN" per device made */
	/* The loop's alone. */
	struct in_use *used;
	size_t n_used, cap_used;
	/* Shared with the removers. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct queued *queue;
	size_t n_queue, cap_queue;
	size_t n_working;
	bool stopping;
	int64_t deadline_ms;
	pthread_t threads[REMOVERS];
	int n_threads;
};

static void record(struct sbx_loopdevs *l, int index, bool present)
{
	char name[32];
	snprintf(name, sizeof(name), "loop%d", index);
	if (!present) {
		if (unlinkat(l->dir_fd, name, 0) < 0 && errno != ENOENT)
			sbx_warn("loop device %d: remove its record: %m", index);
		return;
	}
	int fd = openat(l->dir_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		sbx_warn("loop device %d: record it: %m", index);
	else
		close(fd);
}

/* With the lock held. False when out of memory: the device keeps its
 * record and the next start removes it. */
static bool enqueue(struct sbx_loopdevs *l, int index, int tries, int64_t due_ms)
{
	if (l->n_queue == l->cap_queue) {
		size_t cap = l->cap_queue ? l->cap_queue * 2 : 64;
		struct queued *q = realloc(l->queue, cap * sizeof(*q));
		if (!q)
			return false;
		l->queue = q;
		l->cap_queue = cap;
	}
	l->queue[l->n_queue++] = (struct queued){ .index = index, .tries = tries, .due_ms = due_ms };
	return true;
}

static void *remover(void *arg)
{
	struct sbx_loopdevs *l = arg;
	pthread_mutex_lock(&l->lock);
	for (;;) {
		int64_t now = sbx_monotonic_ms(), next = INT64_MAX;
		size_t pick = SIZE_MAX;
		for (size_t i = 0; i < l->n_queue; i++) {
			if (l->queue[i].due_ms <= now) {
				pick = i;
				break;
			}
			if (l->queue[i].due_ms < next)
				next = l->queue[i].due_ms;
		}
		if (pick == SIZE_MAX) {
			if (l->stopping && (l->n_queue == 0 || now >= l->deadline_ms))
				break;
			if (l->stopping && l->deadline_ms < next)
				next = l->deadline_ms;
			if (next == INT64_MAX) {
				pthread_cond_wait(&l->wake, &l->lock);
			} else {
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				int64_t ns = ts.tv_nsec + (next - now) * 1000000;
				ts.tv_sec += ns / 1000000000;
				ts.tv_nsec = ns % 1000000000;
				pthread_cond_timedwait(&l->wake, &l->lock, &ts);
			}
			continue;
		}
		struct queued it = l->queue[pick];
		l->queue[pick] = l->queue[--l->n_queue];
		l->n_working++;
		pthread_mutex_unlock(&l->lock);
		int r = sbx_loop_remove(it.index);
		if (r == 0 || r == -ENODEV || r == -ENXIO)
			record(l, it.index, false);
		else if (r != -EBUSY)
			sbx_warn("remove loop device %d: %s; the next start tries again", it.index, strerror(-r));
		pthread_mutex_lock(&l->lock);
		l->n_working--;
		if (r == -EBUSY) {
			/* Still attached: its mount namespace is going away. */
			int64_t wait = RETRY_FIRST_MS << (it.tries < 8 ? it.tries : 8);
			if (wait > RETRY_MAX_MS)
				wait = RETRY_MAX_MS;
			enqueue(l, it.index, it.tries + 1, sbx_monotonic_ms() + wait);
		}
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static void queue_removal(struct sbx_loopdevs *l, int index)
{
	pthread_mutex_lock(&l->lock);
	bool ok = enqueue(l, index, 0, 0);
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	if (!ok)
		sbx_warn("loop device %d: out of memory; the next start removes it", index);
}

static int add_used(struct sbx_loopdevs *l, int index, const char *owner)
{
	if (l->n_used == l->cap_used) {
		size_t cap = l->cap_used ? l->cap_used * 2 : 64;
		struct in_use *u = realloc(l->used, cap * sizeof(*u));
		if (!u)
			return -1;
		l->used = u;
		l->cap_used = cap;
	}
	struct in_use *u = &l->used[l->n_used++];
	u->index = index;
	snprintf(u->owner, sizeof(u->owner), "%s", owner);
	return 0;
}

int sbx_loopdevs_add(struct sbx_daemon *d, const char *owner, sbx_error **err)
{
	struct sbx_loopdevs *l = d->loopdevs;
	if (!l)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "loop devices are not set up");
	int index = sbx_loop_add(err);
	if (index < 0)
		return -1;
	record(l, index, true);
	if (add_used(l, index, owner) < 0) {
		queue_removal(l, index);
		return sbx_error_errno(err, ENOMEM, "loop device");
	}
	sbx_debug("loop device %d made for %s", index, owner);
	return index;
}

int sbx_loopdevs_attach(struct sbx_daemon *d, const char *owner, const char *image, char devpath[32],
			sbx_error **err)
{
	int index = sbx_loopdevs_add(d, owner, err);
	if (index < 0)
		return -1;
	int fd = sbx_disk_attach(index, image, devpath, err);
	if (fd < 0)
		sbx_loopdevs_release_index(d, index);
	return fd;
}

static void release_where(struct sbx_daemon *d, const char *owner, int index)
{
	struct sbx_loopdevs *l = d->loopdevs;
	if (!l)
		return;
	for (size_t i = 0; i < l->n_used;) {
		if (owner ? strcmp(l->used[i].owner, owner) : l->used[i].index != index) {
			i++;
			continue;
		}
		queue_removal(l, l->used[i].index);
		l->used[i] = l->used[--l->n_used];
	}
}

void sbx_loopdevs_release(struct sbx_daemon *d, const char *owner)
{
	release_where(d, owner, -1);
}

void sbx_loopdevs_release_index(struct sbx_daemon *d, int index)
{
	release_where(d, NULL, index);
}

size_t sbx_loopdevs_count(struct sbx_daemon *d)
{
	struct sbx_loopdevs *l = d->loopdevs;
	if (!l)
		return 0;
	pthread_mutex_lock(&l->lock);
	size_t n = l->n_used + l->n_queue + l->n_working;
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* Records of an earlier boot name devices that no longer exist (or are
 * someone else's now): a record directory kept across a reboot is
 * emptied. */
static void forget_other_boots(struct sbx_loopdevs *l)
{
	char now[64] = "", was[64] = "";
	_cleanup_close_ int b = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (b < 0 || read(b, now, sizeof(now) - 1) <= 0)
		return;
	_cleanup_close_ int r = openat(l->dir_fd, "boot_id", O_RDONLY | O_CLOEXEC);
	if (r >= 0 && read(r, was, sizeof(was) - 1) > 0 && !strcmp(now, was))
		return;
	_cleanup_close_ int fd = openat(l->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *dir = fd >= 0 ? fdopendir(sbx_take_fd(&fd)) : NULL;
	struct dirent *de;
	while (dir && (de = readdir(dir)))
		if (!strncmp(de->d_name, "loop", 4))
			unlinkat(l->dir_fd, de->d_name, 0);
	if (sbx_write_file_atomic_at(l->dir_fd, "boot_id", now, strlen(now), 0600, NULL) < 0)
		sbx_warn("write %s/boot_id: %m", RECORD_DIR);
}

/* A device recorded by an earlier run: still a running sandbox's, to be
 * removed, or no longer ours. */
static void adopt(struct sbx_daemon *d, int index, const char *state_real)
{
	struct sbx_loopdevs *l = d->loopdevs;
	char backing[PATH_MAX], sys[64];
	int r = sbx_loop_backing_file(index, backing, sizeof(backing));
	if (r == -ENOENT) {
		snprintf(sys, sizeof(sys), "/sys/block/loop%d", index);
		if (access(sys, F_OK) < 0)
			record(l, index, false); /* gone already */
		else
			queue_removal(l, index); /* made, never attached or detached since */
		return;
	}
	size_t sl = strlen(state_real);
	if (r < 0 || strncmp(backing, state_real, sl) != 0 || backing[sl] != '/') {
		/* Attached to a file not ours: the number was reused by someone
		 * else after we removed the device. */
		record(l, index, false);
		return;
	}
	char id[13] = "";
	const char *rest = backing + sl + 1;
	if (!strncmp(rest, "sandboxes/", 10) && strlen(rest + 10) > 12 && rest[10 + 12] == '/')
		snprintf(id, sizeof(id), "%.12s", rest + 10);
	struct sbx_sandbox *sb = id[0] ? sbx_sandbox_find(d, id) : NULL;
	if (sb && (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED) && add_used(l, index, id) == 0)
		return;
	queue_removal(l, index); /* removed once detached */
}

int sbx_loopdevs_init(struct sbx_daemon *d, sbx_error **err)
{
	struct sbx_loopdevs *l = calloc(1, sizeof(*l));
	if (!l)
		return sbx_error_errno(err, ENOMEM, "loop devices");
	l->dir_fd = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wake, &ca);
	pthread_condattr_destroy(&ca);
	d->loopdevs = l;
	if (mkdirat(d->run_fd, RECORD_DIR, 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create %s/%s", d->cfg.run_dir, RECORD_DIR);
	l->dir_fd = openat(d->run_fd, RECORD_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dir_fd < 0)
		return sbx_error_errno(err, errno, "open %s/%s", d->cfg.run_dir, RECORD_DIR);
	for (int i = 0; i < REMOVERS; i++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		int e = pthread_create(&l->threads[i], &attr, remover, l);
		pthread_attr_destroy(&attr);
		if (e != 0)
			return sbx_error_errno(err, e, "start a loop device thread");
		l->n_threads++;
	}
	forget_other_boots(l);
	_cleanup_free_ char *state_real = realpath(d->cfg.state_dir, NULL);
	_cleanup_close_ int fd = openat(l->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *dir = fd >= 0 ? fdopendir(sbx_take_fd(&fd)) : NULL;
	struct dirent *de;
	size_t n = 0;
	while (dir && (de = readdir(dir))) {
		int64_t index;
		if (strncmp(de->d_name, "loop", 4) || sbx_parse_int64(de->d_name + 4, 0, INT_MAX, &index) < 0)
			continue;
		adopt(d, (int)index, state_real ? state_real : d->cfg.state_dir);
		n++;
	}
	if (n)
		sbx_info("loop devices: %zu made by an earlier run, %zu still in use", n, l->n_used);
	return 0;
}

void sbx_loopdevs_fini(struct sbx_daemon *d)
{
	struct sbx_loopdevs *l = d->loopdevs;
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	l->deadline_ms = sbx_monotonic_ms() + EXIT_GRACE_MS;
	pthread_cond_broadcast(&l->wake);
	pthread_mutex_unlock(&l->lock);
	for (int i = 0; i < l->n_threads; i++)
		pthread_join(l->threads[i], NULL);
	if (l->n_queue)
		sbx_warn("loop devices: %zu still attached at exit; the next start removes them", l->n_queue);
	sbx_closep(&l->dir_fd);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l->queue);
	free(l->used);
	free(l);
	d->loopdevs = NULL;
}
