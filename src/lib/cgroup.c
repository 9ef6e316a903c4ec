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

int sbx_cgroup_root_init(struct sbx_cgroup_root *root, const char *parent, sbx_error **err)
{
	memset(root, 0, sizeof(*root));
	root->mount_fd = root->base_fd = -1;
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
	if (parent && *parent) {
		while (*parent == '/')
			parent++;
		base = strdup(parent);
	} else {
		_cleanup_free_ char *own = NULL;
		if (own_cgroup(&own, err) < 0)
			return -1;
		const char *rel = own;
		while (*rel == '/')
			rel++;
		size_t n = strlen(rel);
		if (n == 0) {
			base = strdup("sandboxd");
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
	if (mkdirat(root->mount_fd, base, 0755) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create cgroup %s/%s", mnt, base);
	root->base_fd = openat(root->mount_fd, base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root->base_fd < 0)
		return sbx_error_errno(err, errno, "open cgroup %s/%s", mnt, base);
	root->base = sbx_take_ptr(&base);
	return 0;
}

void sbx_cgroup_root_fini(struct sbx_cgroup_root *root)
{
	free(root->mount);
	free(root->base);
	sbx_closep(&root->mount_fd);
	sbx_closep(&root->base_fd);
	root->mount = root->base = NULL;
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

/* Fallback for kernels before 5.14: kill what cgroup.procs lists, below too. */
static void kill_procs_recursive(int dfd)
{
	_cleanup_close_ int pfd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (pfd >= 0) {
		_cleanup_fclose_ FILE *f = fdopen(sbx_take_fd(&pfd), "r");
		int pid;
		while (f && fscanf(f, "%d", &pid) == 1)
			kill(pid, SIGKILL);
	}
	_cleanup_close_ int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = dup_fd >= 0 ? fdopendir(sbx_take_fd(&dup_fd)) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		_cleanup_close_ int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub >= 0)
			kill_procs_recursive(sub);
	}
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
		kill_procs_recursive(dfd);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
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

void sbx_cgroup_prune_children(struct sbx_cgroup_root *root, const char *path, const char *prefix)
{
	_cleanup_close_ int dfd = openat(root->mount_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	_cleanup_closedir_ DIR *d = fdopendir(sbx_take_fd(&dfd));
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_type == DT_DIR && !strncmp(de->d_name, prefix, strlen(prefix)))
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR); /* EBUSY keeps it */
	}
}
