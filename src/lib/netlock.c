/* Network ownership locks: one file per bridge under a root-only
 * directory, flock()ed by its owner, holding "key=value" lines. The
 * directory itself is flock()ed while a daemon checks the others' records
 * and writes its own, so two daemons starting at once cannot both decide
 * that a subnet is free. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "netlock.h"
#include "util.h"

/* The directory lock is held for a few netlink round trips at most; a
 * start-up stopped in the middle of them must not hang every other. */
#define DIR_LOCK_WAIT_MS 5000
#define RECORD_MAX 16384

bool sbx_netlock_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 15 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

void sbx_netlock_record_free(struct sbx_netlock_record *r)
{
	free(r->state_dir);
	free(r->socket);
	free(r->subnet);
	memset(r, 0, sizeof(*r));
}

static void parse_record(char *text, struct sbx_netlock_record *r)
{
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *v = eq + 1;
		char **slot = NULL;
		if (!strcmp(line, "pid"))
			r->pid = (pid_t)atoi(v);
		else if (!strcmp(line, "state_dir"))
			slot = &r->state_dir;
		else if (!strcmp(line, "socket"))
			slot = &r->socket;
		else if (!strcmp(line, "subnet"))
			slot = &r->subnet;
		if (slot) {
			free(*slot);
			*slot = strdup(v);
		}
	}
	if (r->pid < 0)
		r->pid = 0;
}

static void read_record(int fd, const char *bridge, struct sbx_netlock_record *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->bridge, sizeof(r->bridge), "%s", bridge);
	char buf[RECORD_MAX];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	parse_record(buf, r);
}

static int lock_dir(struct sbx_netlock *lk, sbx_error **err)
{
	int64_t until = sbx_monotonic_ms() + DIR_LOCK_WAIT_MS;
	while (flock(lk->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return sbx_error_errno(err, errno, "lock %s", SBX_NETLOCK_DIR);
		if (sbx_monotonic_ms() > until)
			return sbx_error_set(err, SBX_ERR_TIMEOUT, "another sandboxd has been starting for %d s; try again",
					     DIR_LOCK_WAIT_MS / 1000);
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	lk->dir_locked = true;
	return 0;
}

static void unlock_dir(struct sbx_netlock *lk)
{
	if (lk->dir_locked)
		flock(lk->dir_fd, LOCK_UN);
	lk->dir_locked = false;
}

static int open_dir(const char *dir, sbx_error **err)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create %s", dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open %s", dir);
	/* Whoever can write there can hold any bridge, or forge records. */
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(fd);
		return sbx_error_set(err, SBX_ERR_DENIED, "%s must be a directory owned by uid %d and writable by it alone",
				     dir, (int)geteuid());
	}
	return fd;
}

int sbx_netlock_take(const char *dir, const char *bridge, struct sbx_netlock *lk, struct sbx_netlock_record *prev,
		     sbx_error **err)
{
	*lk = (struct sbx_netlock)SBX_NETLOCK_INIT;
	memset(prev, 0, sizeof(*prev));
	if (!sbx_netlock_name_valid(bridge))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "bridge: '%s' is not a link name (1 to 15 characters, "
				     "no '/', ':' or spaces)", bridge);
	snprintf(lk->bridge, sizeof(lk->bridge), "%s", bridge);
	lk->dir_fd = open_dir(dir, err);
	if (lk->dir_fd < 0)
		return -1;
	if (lock_dir(lk, err) < 0)
		goto fail;
	for (;;) {
		lk->fd = openat(lk->dir_fd, bridge, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (lk->fd < 0) {
			sbx_error_errno(err, errno, "open %s/%s", dir, bridge);
			goto fail;
		}
		if (flock(lk->fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK) {
				sbx_error_errno(err, errno, "lock %s/%s", dir, bridge);
				goto fail;
			}
			struct sbx_netlock_record holder;
			read_record(lk->fd, bridge, &holder);
			sbx_error_set(err, SBX_ERR_EXISTS, "bridge %s is held by the sandboxd with pid %d (state dir '%s', "
				      "socket '%s')", bridge, (int)holder.pid, holder.state_dir ? holder.state_dir : "?",
				      holder.socket ? holder.socket : "?");
			sbx_netlock_record_free(&holder);
			goto fail;
		}
		/* An owner's clean end removes the file: a lock on a file no
		 * longer there would guard nothing. */
		struct stat a, b;
		if (fstat(lk->fd, &a) == 0 && fstatat(lk->dir_fd, bridge, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			break;
		sbx_closep(&lk->fd);
	}
	read_record(lk->fd, bridge, prev);
	return 0;
fail:
	sbx_netlock_release(lk, false);
	return -1;
}

int sbx_netlock_each_other(struct sbx_netlock *lk,
			   int (*fn)(const struct sbx_netlock_record *r, bool held, void *data), void *data)
{
	int dfd = dup(lk->dir_fd);
	if (dfd < 0)
		return 0;
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return 0;
	}
	rewinddir(dir);
	int r = 0;
	for (struct dirent *de; !r && (de = readdir(dir));) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, lk->bridge) || !sbx_netlock_name_valid(de->d_name))
			continue;
		_cleanup_close_ int fd = openat(lk->dir_fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		struct sbx_netlock_record rec;
		read_record(fd, de->d_name, &rec);
		if (rec.pid)
			r = fn(&rec, held, data);
		sbx_netlock_record_free(&rec);
	}
	closedir(dir);
	return r;
}

int sbx_netlock_commit(struct sbx_netlock *lk, const struct sbx_netlock_record *me, sbx_error **err)
{
	const char *values[] = { me->state_dir, me->socket, me->subnet };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(values); i++) {
		if (values[i] && strchr(values[i], '\n')) {
			unlock_dir(lk);
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "'%s' holds a line break", values[i]);
		}
	}
	struct sbx_buf b = { 0 };
	sbx_buf_printf(&b, "pid=%d\nstate_dir=%s\nsocket=%s\nsubnet=%s\n", (int)me->pid,
		       me->state_dir ? me->state_dir : "", me->socket ? me->socket : "", me->subnet ? me->subnet : "");
	int r = 0;
	if (!b.data)
		r = sbx_error_errno(err, ENOMEM, "network lock record");
	else if (ftruncate(lk->fd, 0) < 0 || pwrite(lk->fd, b.data, b.len, 0) != (ssize_t)b.len)
		r = sbx_error_errno(err, errno, "write the lock record of bridge %s", lk->bridge);
	sbx_buf_free(&b);
	unlock_dir(lk);
	return r;
}

void sbx_netlock_release(struct sbx_netlock *lk, bool remove)
{
	if (remove && lk->fd >= 0 && lk->dir_fd >= 0) {
		/* Under the directory lock: a daemon starting now either sees
		 * the record or opens a new file. */
		if (lk->dir_locked || lock_dir(lk, NULL) == 0)
			unlinkat(lk->dir_fd, lk->bridge, 0);
	}
	sbx_closep(&lk->fd);
	unlock_dir(lk);
	sbx_closep(&lk->dir_fd);
}
