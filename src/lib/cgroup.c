/* The unified cgroup hierarchy as sandboxd uses it. This module never
 * touches a group outside the base it settled on at start-up, and never
 * writes a controller file another manager owns. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static const char *const ctrl_names[SBX_CTRL_COUNT] = { "cpu", "memory", "pids" };

const char *sbx_ctrl_name(enum sbx_ctrl c)
{
	return (unsigned)c < SBX_CTRL_COUNT ? ctrl_names[c] : "?";
}

static const char *leaf_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Write a value to a cgroup file below dirfd. */
static int cg_write(int dirfd, const char *file, const char *value)
{
	_cleanup_close_ int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	return n == (ssize_t)len ? 0 : -1;
}

static int64_t cg_read_int(int dirfd, const char *file, const char *key)
{
	_cleanup_free_ char *data = NULL;
	if (sbx_read_file_at(dirfd, file, 1 << 16, &data, NULL, NULL) < 0)
		return -1;
	const char *p = data;
	if (key) {
		size_t kl = strlen(key);
		p = NULL;
		for (char *l = data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			if (!strncmp(l, key, kl) && l[kl] == ' ') {
				p = l + kl + 1;
				break;
			}
		}
		if (!p)
			return -1;
	}
	if (!strncmp(p, "max", 3))
		return 0;
	return strtoll(p, NULL, 10);
}

/* Our own group in a v1 hierarchy that carries controller name. */
static char *own_v1_cgroup(const char *name)
{
	_cleanup_free_ char *data = NULL;
	if (sbx_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 16, &data, NULL, NULL) < 0)
		return NULL;
	for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		for (char *tok = strtok_r(c1 + 1, ",", &c1); tok; tok = strtok_r(NULL, ",", &c1))
			if (!strcmp(tok, name))
				return strdup(c2 + 1);
	}
	return NULL;
}

/* Hybrid hosts: a base group of ours in each v1 controller hierarchy. */
static void init_v1(struct sbx_cgroup_root *root)
{
	for (int c = 0; c < SBX_CTRL_COUNT; c++) {
		char mnt[64];
		snprintf(mnt, sizeof(mnt), "/sys/fs/cgroup/%s", ctrl_names[c]);
		struct statfs sf;
		if (statfs(mnt, &sf) < 0 || (unsigned long)sf.f_type != (unsigned long)CGROUP_SUPER_MAGIC)
			continue;
		_cleanup_free_ char *own = own_v1_cgroup(ctrl_names[c]);
		if (!own)
			continue;
		const char *rel = own;
		while (*rel == '/')
			rel++;
		char base[PATH_MAX];
		if (*rel)
			snprintf(base, sizeof(base), "%s/%s/%s", mnt, rel, root->name);
		else
			snprintf(base, sizeof(base), "%s/%s", mnt, root->name);
		if (mkdir(base, 0755) < 0 && errno != EEXIST) {
			continue;
		}
		int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		root->v1_fd[c] = fd;
		root->v1_path[c] = strdup(base);
		root->ctrl[c] = true;
	}
	if (root->v1_fd[SBX_CTRL_MEMORY] >= 0)
		root->swap_files = faccessat(root->v1_fd[SBX_CTRL_MEMORY], "memory.memsw.limit_in_bytes", F_OK, 0) == 0;
}

/* Pure v2: make cpu, memory and pids available to sandbox groups. With a
 * base of our own (not a delegated group) that means every group from the
 * root down to it; in a delegated group only the group itself. */
static void init_v2_controllers(struct sbx_cgroup_root *root, bool whole_path)
{
	for (int c = 0; c < SBX_CTRL_COUNT; c++) {
		char add[32];
		snprintf(add, sizeof(add), "+%s", ctrl_names[c]);
		if (whole_path) {
			char prefix[PATH_MAX];
			snprintf(prefix, sizeof(prefix), "%s", root->base);
			cg_write(root->mount_fd, "cgroup.subtree_control", add);
			for (char *slash = strchr(prefix, '/'); slash; slash = strchr(slash + 1, '/')) {
				*slash = '\0';
				char f[PATH_MAX + 32];
				snprintf(f, sizeof(f), "%s/cgroup.subtree_control", prefix);
				cg_write(root->mount_fd, f, add);
				*slash = '/';
			}
		}
		cg_write(root->base_fd, "cgroup.subtree_control", add);
	}
	_cleanup_free_ char *enabled = NULL;
	if (sbx_read_file_at(root->base_fd, "cgroup.subtree_control", 4096, &enabled, NULL, NULL) < 0)
		return;
	for (char *tok = strtok(enabled, " \n"); tok; tok = strtok(NULL, " \n"))
		for (int c = 0; c < SBX_CTRL_COUNT; c++)
			if (!strcmp(tok, ctrl_names[c]))
				root->ctrl[c] = true;
	/* memory.swap.max only exists in children; probe with a scratch group. */
	if (root->ctrl[SBX_CTRL_MEMORY] && mkdirat(root->base_fd, ".probe", 0755) == 0) {
		root->swap_files = faccessat(root->base_fd, ".probe/memory.swap.max", F_OK, 0) == 0;
		unlinkat(root->base_fd, ".probe", AT_REMOVEDIR);
	}
}

const char *sbx_cgroup_mode_name(enum sbx_cgroup_mode mode)
{
	switch (mode) {
	case SBX_CGROUP_V2:
		return "v2";
	case SBX_CGROUP_HYBRID:
		return "hybrid";
	default:
		return "v1";
	}
}

static bool is_cgroup2(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)CGROUP2_SUPER_MAGIC;
}

/* Our own group in the unified hierarchy, from the "0::" line. */
static int own_cgroup(char **out, sbx_error **err)
{
	_cleanup_free_ char *data = NULL;
	if (sbx_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 16, &data, NULL, err) < 0)
		return -1;
	for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "0::", 3)) {
			*out = strdup(line + 3);
			return *out ? 0 : sbx_error_errno(err, ENOMEM, "own cgroup");
		}
	}
	return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "this process is not in a cgroup v2 hierarchy");
}

int sbx_cgroup_root_init(struct sbx_cgroup_root *root, const char *parent, const char *name, sbx_error **err)
{
	memset(root, 0, sizeof(*root));
	root->mount_fd = root->base_fd = -1;
	root->name = strdup(name && *name ? name : "sandboxd");
	if (!root->name)
		return sbx_error_errno(err, ENOMEM, "cgroup");
	for (int c = 0; c < SBX_CTRL_COUNT; c++)
		root->v1_fd[c] = -1;
	const char *mnt;
	if (is_cgroup2("/sys/fs/cgroup")) {
		root->mode = SBX_CGROUP_V2;
		mnt = "/sys/fs/cgroup";
	} else if (is_cgroup2("/sys/fs/cgroup/unified")) {
		root->mode = SBX_CGROUP_HYBRID;
		mnt = "/sys/fs/cgroup/unified";
	} else {
		root->mode = SBX_CGROUP_V1;
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED,
				     "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified; "
				     "boot with systemd.unified_cgroup_hierarchy=1 or mount cgroup2");
	}
	root->mount = strdup(mnt);
	root->mount_fd = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!root->mount || root->mount_fd < 0)
		return sbx_error_errno(err, errno, "open %s", mnt);

	_cleanup_free_ char *base = NULL;
	bool at_top = false;
	if (parent && *parent) {
		while (*parent == '/')
			parent++;
		base = strdup(parent);
		at_top = true; /* a path given by the administrator is ours to set up */
	} else {
		_cleanup_free_ char *own = NULL;
		if (own_cgroup(&own, err) < 0)
			return -1;
		const char *rel = own;
		while (*rel == '/')
			rel++;
		size_t n = strlen(rel);
		if (n == 0) {
			base = strdup(root->name);
			at_top = true;
		} else if (n >= 11 && !strcmp(rel + n - 11, "/supervisor")) {
			/* A previous run of ours already moved this process family. */
			base = strndup(rel, n - 11);
		} else {
			base = strdup(rel);
			char sup[PATH_MAX];
			snprintf(sup, sizeof(sup), "%s/supervisor", rel);
			if (mkdirat(root->mount_fd, sup, 0755) < 0 && errno != EEXIST)
				return sbx_error_errno(err, errno, "create cgroup %s", sup);
			char procs[PATH_MAX + 16];
			snprintf(procs, sizeof(procs), "%s/cgroup.procs", sup);
			_cleanup_close_ int pfd = openat(root->mount_fd, procs, O_WRONLY | O_CLOEXEC);
			if (pfd < 0 || dprintf(pfd, "0\n") < 0)
				return sbx_error_errno(err, errno, "move sandboxd into cgroup %s", sup);
		}
	}
	if (!base)
		return sbx_error_errno(err, ENOMEM, "cgroup base");
	bool made = mkdirat(root->mount_fd, base, 0755) == 0;
	if (!made && errno != EEXIST)
		return sbx_error_errno(err, errno, "create cgroup %s/%s", mnt, base);
	root->base_fd = openat(root->mount_fd, base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root->base_fd < 0)
		return sbx_error_errno(err, errno, "open cgroup %s/%s", mnt, base);
	root->base = sbx_take_ptr(&base);
	/* Removed at shutdown only if it is ours: made by us now, or named by
	 * us (the default base, left over from an earlier run). */
	root->own_base = at_top && (made || !(parent && *parent));
	if (root->mode == SBX_CGROUP_V2)
		init_v2_controllers(root, at_top);
	else
		init_v1(root);
	return 0;
}

void sbx_cgroup_root_fini(struct sbx_cgroup_root *root)
{
	free(root->mount);
	free(root->base);
	sbx_closep(&root->mount_fd);
	sbx_closep(&root->base_fd);
	for (int c = 0; c < SBX_CTRL_COUNT; c++) {
		sbx_closep(&root->v1_fd[c]);
		free(root->v1_path[c]);
		root->v1_path[c] = NULL;
	}
	free(root->name);
	root->mount = root->base = root->name = NULL;
}

void sbx_cgroup_root_cleanup(struct sbx_cgroup_root *root)
{
	for (int c = 0; c < SBX_CTRL_COUNT; c++)
		if (root->v1_path[c])
			rmdir(root->v1_path[c]);
	if (root->own_base && root->base && root->mount_fd >= 0)
		unlinkat(root->mount_fd, root->base, AT_REMOVEDIR);
}

int sbx_cgroup_create(struct sbx_cgroup_root *root, const char *path, sbx_error **err)
{
	if (mkdirat(root->mount_fd, path, 0755) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create cgroup %s/%s", root->mount, path);
	return 0;
}

int sbx_cgroup_open(struct sbx_cgroup_root *root, const char *path, sbx_error **err)
{
	int fd = openat(root->mount_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open cgroup %s/%s", root->mount, path);
	return fd;
}

/* Call fn for every pid listed in cgroup.procs of the group dfd and of all
 * groups below it. */
static void for_each_proc(int dfd, void (*fn)(int pid, void *arg), void *arg)
{
	_cleanup_close_ int pfd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (pfd >= 0) {
		_cleanup_fclose_ FILE *f = fdopen(sbx_take_fd(&pfd), "r");
		int pid;
		while (f && fscanf(f, "%d", &pid) == 1)
			fn(pid, arg);
	}
	_cleanup_close_ int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dup_fd >= 0 ? fdopendir(sbx_take_fd(&dup_fd)) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		_cleanup_close_ int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub >= 0)
			for_each_proc(sub, fn, arg);
	}
}

int sbx_cgroup_for_each_proc(struct sbx_cgroup_root *root, const char *path, void (*fn)(int pid, void *arg),
			     void *arg, sbx_error **err)
{
	_cleanup_close_ int dfd = openat(root->mount_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		return sbx_error_errno(err, errno, "open cgroup %s/%s", root->mount, path);
	}
	for_each_proc(dfd, fn, arg);
	return 0;
}

struct signal_walk {
	int sig;
	pid_t spare;
	pid_t *seen;
	size_t n, cap;
	int fresh;
	bool oom;
};

static void signal_walk_one(int pid, void *arg)
{
	struct signal_walk *w = arg;
	if (pid == w->spare || w->oom)
		return;
	for (size_t i = 0; i < w->n; i++)
		if (w->seen[i] == pid)
			return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		pid_t *seen = realloc(w->seen, cap * sizeof(*seen));
		if (!seen) {
			w->oom = true;
			return;
		}
		w->seen = seen;
		w->cap = cap;
	}
	w->seen[w->n++] = pid;
	if (kill(pid, w->sig) == 0)
		w->fresh++;
}

static void kill_child_groups(int dfd)
{
	_cleanup_close_ int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dup_fd >= 0 ? fdopendir(sbx_take_fd(&dup_fd)) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		char p[NAME_MAX + 16];
		snprintf(p, sizeof(p), "%s/cgroup.kill", de->d_name);
		_cleanup_close_ int k = openat(dirfd(d), p, O_WRONLY | O_CLOEXEC);
		if (k >= 0 && write(k, "1", 1) < 0) {
			/* the group went meanwhile */
		}
	}
}

int sbx_cgroup_signal_all(struct sbx_cgroup_root *root, const char *path, int sig, pid_t spare, sbx_error **err)
{
	_cleanup_close_ int dfd = openat(root->mount_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sbx_error_errno(err, errno, "open cgroup %s/%s", root->mount, path);
	struct signal_walk w = { .sig = sig, .spare = spare };
	for (int round = 0; round < 100; round++) {
		w.fresh = 0;
		for_each_proc(dfd, signal_walk_one, &w);
		if (sig == SIGKILL)
			kill_child_groups(dfd);
		if (!w.fresh || w.oom)
			break;
	}
	free(w.seen);
	if (w.oom)
		return sbx_error_errno(err, ENOMEM, "signal the processes of cgroup %s", path);
	return (int)w.n;
}

static void kill_one(int pid, void *arg)
{
	(void)arg;
	kill(pid, SIGKILL);
}

static void count_one(int pid, void *arg)
{
	(void)pid;
	(*(int64_t *)arg)++;
}

int sbx_cgroup_kill(struct sbx_cgroup_root *root, const char *path, sbx_error **err)
{
	_cleanup_close_ int dfd = openat(root->mount_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		return sbx_error_errno(err, errno, "open cgroup %s/%s", root->mount, path);
	}
	_cleanup_close_ int kfd = openat(dfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
	if (kfd >= 0) {
		if (write(kfd, "1", 1) == 1)
			return 0;
		return sbx_error_errno(err, errno, "kill cgroup %s/%s", root->mount, path);
	}
	for (int i = 0; i < 10 && sbx_cgroup_populated(root, path) > 0; i++) {
		for_each_proc(dfd, kill_one, NULL); /* kernels before 5.14 have no cgroup.kill */
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

int sbx_cgroup_kill_wait(struct sbx_cgroup_root *root, const char *path, int timeout_ms, sbx_error **err)
{
	int64_t start = sbx_monotonic_ms();
	for (int i = 0;; i++) {
		if (i % 100 == 0 && sbx_cgroup_kill(root, path, err) < 0)
			return -1;
		int populated = sbx_cgroup_populated(root, path);
		if (populated <= 0)
			return 0;
		if (sbx_monotonic_ms() - start >= timeout_ms)
			return sbx_error_set(err, SBX_ERR_TIMEOUT, "cgroup %s/%s still has processes %d ms after the kill",
					     root->mount, path, timeout_ms);
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int sbx_cgroup_populated(struct sbx_cgroup_root *root, const char *path)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/cgroup.events", path);
	_cleanup_free_ char *data = NULL;
	if (sbx_read_file_at(root->mount_fd, p, 4096, &data, NULL, NULL) < 0)
		return errno == ENOENT ? 0 : -1;
	char *s = strstr(data, "populated ");
	if (!s)
		return -1;
	return s[10] == '1';
}

int sbx_cgroup_events_open(struct sbx_cgroup_root *root, const char *path, sbx_error **err)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/cgroup.events", path);
	int fd = openat(root->mount_fd, p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open %s", p);
	return fd;
}

int sbx_cgroup_events_populated(int fd)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return errno == ENODEV || errno == ENOENT ? 0 : -1; /* the group is gone */
	buf[n] = '\0';
	char *s = strstr(buf, "populated ");
	return s ? s[10] == '1' : -1;
}

static int remove_tree(int parent_fd, const char *name)
{
	_cleanup_close_ int dfd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -1;
	_cleanup_closedir_ DIR *d = fdopendir(sbx_take_fd(&dfd));
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type == DT_DIR && de->d_name[0] != '.')
			remove_tree(dirfd(d), de->d_name);
	}
	if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int sbx_cgroup_remove(struct sbx_cgroup_root *root, const char *path, sbx_error **err)
{
	/* A group empties asynchronously after the last process is reaped;
	 * give the kernel a moment before calling it busy. */
	for (int c = 0; c < SBX_CTRL_COUNT; c++)
		if (root->v1_fd[c] >= 0)
			unlinkat(root->v1_fd[c], leaf_of(path), AT_REMOVEDIR);
	for (int i = 0; i < 100; i++) {
		if (remove_tree(root->mount_fd, path) == 0)
			return 0;
		if (errno != EBUSY)
			break;
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return sbx_error_errno(err, errno, "remove cgroup %s/%s", root->mount, path);
}

int sbx_cgroup_prune_children(struct sbx_cgroup_root *root, const char *path, const char *prefix)
{
	_cleanup_close_ int dfd = openat(root->mount_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	_cleanup_closedir_ DIR *d = fdopendir(sbx_take_fd(&dfd));
	struct dirent *de;
	int kept = 0;
	while (d && (de = readdir(d))) {
		if (de->d_type == DT_DIR && de->d_name[0] != '.' && !strncmp(de->d_name, prefix, strlen(prefix)) &&
		    unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0)
			kept++; /* EBUSY: still has processes */
	}
	return kept;
}

int sbx_cgroup_limits_check(const struct sbx_cgroup_root *root, const struct sbx_limits *l, sbx_error **err)
{
	const struct {
		bool wanted;
		enum sbx_ctrl c;
		const char *what;
	} need[] = {
		{ l->cpus > 0, SBX_CTRL_CPU, "cpus" },
		{ l->memory_bytes > 0, SBX_CTRL_MEMORY, "memory_mb" },
		{ l->pids > 0, SBX_CTRL_PIDS, "pids" },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(need); i++)
		if (need[i].wanted && !root->ctrl[need[i].c])
			return sbx_error_set(err, SBX_ERR_UNSUPPORTED,
					     "cannot enforce %s: the %s cgroup controller is not available to sandboxd on "
					     "this host (cgroup mode %s); set it to 0 for no limit",
					     need[i].what, ctrl_names[need[i].c], sbx_cgroup_mode_name(root->mode));
	return 0;
}

static int write_or_fail(int dirfd, const char *where, const char *file, const char *value, sbx_error **err)
{
	if (cg_write(dirfd, file, value) < 0)
		return sbx_error_errno(err, errno, "cgroup %s: set %s to %s", where, file, value);
	return 0;
}

/* "max" for unlimited (0), else the number. */
static const char *limit_str(char *buf, size_t len, int64_t value)
{
	if (value <= 0)
		return "max";
	snprintf(buf, len, "%lld", (long long)value);
	return buf;
}

/* CFS quota per 100 ms period; the kernel refuses less than 1 ms. */
static long long cpu_quota_us(double cpus)
{
	return cpus * 100000 < 1000 ? 1000 : (long long)(cpus * 100000);
}

static int apply_v2(struct sbx_cgroup_root *root, const char *path, const struct sbx_limits *l, sbx_error **err)
{
	_cleanup_close_ int dfd = sbx_cgroup_open(root, path, err);
	if (dfd < 0)
		return -1;
	char v[64];
	if (root->ctrl[SBX_CTRL_CPU]) {
		if (l->cpus > 0)
			snprintf(v, sizeof(v), "%lld 100000", cpu_quota_us(l->cpus));
		else
			snprintf(v, sizeof(v), "max 100000");
		if (write_or_fail(dfd, path, "cpu.max", v, err) < 0)
			return -1;
		long long w = l->cpus > 0 ? (long long)(l->cpus * 100) : 100;
		snprintf(v, sizeof(v), "%lld", w < 1 ? 1 : w > 10000 ? 10000 : w);
		if (write_or_fail(dfd, path, "cpu.weight", v, err) < 0)
			return -1;
	}
	if (root->ctrl[SBX_CTRL_MEMORY]) {
		if (write_or_fail(dfd, path, "memory.max", limit_str(v, sizeof(v), l->memory_bytes), err) < 0)
			return -1;
		if (root->swap_files && write_or_fail(dfd, path, "memory.swap.max", l->allow_swap ? "max" : "0", err) < 0)
			return -1;
	}
	if (root->ctrl[SBX_CTRL_PIDS] && write_or_fail(dfd, path, "pids.max", limit_str(v, sizeof(v), l->pids), err) < 0)
		return -1;
	return 0;
}

/* v1 memory: limit_in_bytes must never exceed memsw.limit_in_bytes, so the
 * order of the two writes depends on the direction of the change. */
static int apply_v1_memory(int dfd, const char *where, const struct sbx_limits *l, bool swap_files, sbx_error **err)
{
	char mem[32], sw[32];
	snprintf(mem, sizeof(mem), "%lld", l->memory_bytes > 0 ? (long long)l->memory_bytes : -1LL);
	snprintf(sw, sizeof(sw), "%lld", l->memory_bytes > 0 && !l->allow_swap ? (long long)l->memory_bytes : -1LL);
	if (!swap_files)
		return write_or_fail(dfd, where, "memory.limit_in_bytes", mem, err);
	if (cg_write(dfd, "memory.limit_in_bytes", mem) == 0)
		return write_or_fail(dfd, where, "memory.memsw.limit_in_bytes", sw, err);
	if (write_or_fail(dfd, where, "memory.memsw.limit_in_bytes", sw, err) < 0)
		return -1;
	return write_or_fail(dfd, where, "memory.limit_in_bytes", mem, err);
}

static int apply_v1(struct sbx_cgroup_root *root, const char *path, const struct sbx_limits *l, sbx_error **err)
{
	const char *leaf = leaf_of(path);
	for (int c = 0; c < SBX_CTRL_COUNT; c++) {
		if (root->v1_fd[c] < 0)
			continue;
		if (mkdirat(root->v1_fd[c], leaf, 0755) < 0 && errno != EEXIST)
			return sbx_error_errno(err, errno, "create cgroup %s/%s", root->v1_path[c], leaf);
		_cleanup_close_ int dfd = openat(root->v1_fd[c], leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return sbx_error_errno(err, errno, "open cgroup %s/%s", root->v1_path[c], leaf);
		char where[PATH_MAX + 64];
		snprintf(where, sizeof(where), "%s/%s", root->v1_path[c], leaf);
		char v[64];
		switch (c) {
		case SBX_CTRL_CPU:
			if (write_or_fail(dfd, where, "cpu.cfs_period_us", "100000", err) < 0)
				return -1;
			snprintf(v, sizeof(v), "%lld", l->cpus > 0 ? cpu_quota_us(l->cpus) : -1LL);
			if (write_or_fail(dfd, where, "cpu.cfs_quota_us", v, err) < 0)
				return -1;
			snprintf(v, sizeof(v), "%lld", l->cpus > 0 ? (long long)(l->cpus * 1024 < 2 ? 2 : l->cpus * 1024) : 1024LL);
			if (write_or_fail(dfd, where, "cpu.shares", v, err) < 0)
				return -1;
			break;
		case SBX_CTRL_MEMORY:
			if (apply_v1_memory(dfd, where, l, root->swap_files, err) < 0)
				return -1;
			break;
		case SBX_CTRL_PIDS:
			if (write_or_fail(dfd, where, "pids.max", limit_str(v, sizeof(v), l->pids), err) < 0)
				return -1;
			break;
		default:
			break;
		}
	}
	return 0;
}

int sbx_cgroup_apply(struct sbx_cgroup_root *root, const char *path, const struct sbx_limits *l, sbx_error **err)
{
	if (sbx_cgroup_limits_check(root, l, err) < 0)
		return -1;
	return root->mode == SBX_CGROUP_V2 ? apply_v2(root, path, l, err) : apply_v1(root, path, l, err);
}

int sbx_cgroup_v1_open_procs(struct sbx_cgroup_root *root, const char *path, int fds[SBX_CTRL_COUNT], sbx_error **err)
{
	for (int c = 0; c < SBX_CTRL_COUNT; c++)
		fds[c] = -1;
	if (root->mode == SBX_CGROUP_V2)
		return 0;
	for (int c = 0; c < SBX_CTRL_COUNT; c++) {
		if (root->v1_fd[c] < 0)
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/cgroup.procs", leaf_of(path));
		fds[c] = openat(root->v1_fd[c], p, O_WRONLY | O_CLOEXEC);
		if (fds[c] < 0) {
			int e = errno;
			for (int k = 0; k < c; k++)
				sbx_closep(&fds[k]);
			return sbx_error_errno(err, e, "open cgroup %s/%s", root->v1_path[c], p);
		}
	}
	return 0;
}

int sbx_cgroup_freeze(struct sbx_cgroup_root *root, const char *path, bool frozen, sbx_error **err)
{
	_cleanup_close_ int dfd = sbx_cgroup_open(root, path, err);
	if (dfd < 0)
		return -1;
	if (cg_write(dfd, "cgroup.freeze", frozen ? "1" : "0") < 0) {
		if (errno == ENOENT)
			return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "this kernel has no cgroup.freeze (needs 5.2)");
		return sbx_error_errno(err, errno, "cgroup %s: %s", path, frozen ? "freeze" : "thaw");
	}
	/* Freezing completes asynchronously, usually within microseconds. */
	for (int i = 0; i < 200; i++) {
		if (cg_read_int(dfd, "cgroup.events", "frozen") == (frozen ? 1 : 0))
			return 0;
		struct timespec ts = { 0, 500 * 1000 };
		nanosleep(&ts, NULL);
	}
	return sbx_error_set(err, SBX_ERR_TIMEOUT, "cgroup %s did not %s within 100 ms", path,
			     frozen ? "freeze" : "thaw");
}

int sbx_cgroup_stats(struct sbx_cgroup_root *root, const char *path, struct sbx_cgroup_stats *st)
{
	memset(st, 0, sizeof(*st));
	_cleanup_close_ int dfd = openat(root->mount_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	/* cpu.stat's usage_usec is kept on every v2 group, controller or not. */
	int64_t v = cg_read_int(dfd, "cpu.stat", "usage_usec");
	st->cpu_usage_us = v > 0 ? v : 0;
	if (root->mode == SBX_CGROUP_V2) {
		if (root->ctrl[SBX_CTRL_MEMORY]) {
			st->memory_bytes = cg_read_int(dfd, "memory.current", NULL);
			st->memory_peak_bytes = cg_read_int(dfd, "memory.peak", NULL);
			st->memory_max_bytes = cg_read_int(dfd, "memory.max", NULL);
			st->oom_kills = cg_read_int(dfd, "memory.events", "oom_kill");
		}
		if (root->ctrl[SBX_CTRL_PIDS])
			st->pids = cg_read_int(dfd, "pids.current", NULL);
	} else {
		const char *leaf = leaf_of(path);
		if (root->v1_fd[SBX_CTRL_MEMORY] >= 0) {
			_cleanup_close_ int m = openat(root->v1_fd[SBX_CTRL_MEMORY], leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (m >= 0) {
				st->memory_bytes = cg_read_int(m, "memory.usage_in_bytes", NULL);
				st->memory_peak_bytes = cg_read_int(m, "memory.max_usage_in_bytes", NULL);
				st->memory_max_bytes = cg_read_int(m, "memory.limit_in_bytes", NULL);
				/* v1 reports "unlimited" as a page-rounded LLONG_MAX. */
				if (st->memory_max_bytes >= (INT64_MAX >> 1))
					st->memory_max_bytes = 0;
				st->oom_kills = cg_read_int(m, "memory.oom_control", "oom_kill");
			}
		}
		if (root->v1_fd[SBX_CTRL_PIDS] >= 0) {
			_cleanup_close_ int p = openat(root->v1_fd[SBX_CTRL_PIDS], leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (p >= 0)
				st->pids = cg_read_int(p, "pids.current", NULL);
		}
	}
	if (!root->ctrl[SBX_CTRL_PIDS]) {
		st->pids = 0; /* no pids controller: count by hand */
		for_each_proc(dfd, count_one, &st->pids);
	}
	int64_t *fields[] = { &st->memory_bytes, &st->memory_peak_bytes, &st->memory_max_bytes, &st->oom_kills, &st->pids };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(fields); i++)
		if (*fields[i] < 0)
			*fields[i] = 0;
	return 0;
}
