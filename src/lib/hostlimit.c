/* Naming the host limit behind a refused clone3 or unshare (see hostlimit.h).
 * Runs only on the failure path, so it may read a few files. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostlimit.h"
#include "util.h"

static const struct {
	uint64_t flag;
	const char *kind;
	const char *sysctl;
} ns_kinds[] = {
	{ CLONE_NEWUSER, "user", "max_user_namespaces" }, { CLONE_NEWNS, "mount", "max_mnt_namespaces" },
	{ CLONE_NEWPID, "PID", "max_pid_namespaces" },	   { CLONE_NEWNET, "network", "max_net_namespaces" },
	{ CLONE_NEWUTS, "UTS", "max_uts_namespaces" },	   { CLONE_NEWIPC, "IPC", "max_ipc_namespaces" },
	{ CLONE_NEWCGROUP, "cgroup", "max_cgroup_namespaces" },
};

/* A number from a small file ("max" is INT64_MAX); -1 if unreadable. */
static int64_t read_num(int dirfd, const char *path)
{
	char buf[64];
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (!strncmp(buf, "max", 3))
		return INT64_MAX;
	char *end;
	long long v = strtoll(buf, &end, 10);
	return end == buf ? -1 : (int64_t)v;
}

/* Walk from the group dirfd up to the top of its hierarchy; the first group
 * whose cur_file is within slack of its max_file is named in where. */
static bool find_full_group(int dirfd, const char *max_file, const char *cur_file, int64_t slack, char *where,
			    size_t wsize, int64_t *max, int64_t *cur)
{
	_cleanup_close_ int fd = dirfd >= 0 ? fcntl(dirfd, F_DUPFD_CLOEXEC, 3) : -1;
	for (int depth = 0; fd >= 0 && depth < 64; depth++) {
		*max = read_num(fd, max_file);
		*cur = read_num(fd, cur_file);
		if (*max >= 0 && *max != INT64_MAX && *cur >= 0 && *cur + slack >= *max) {
			char link[64];
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			ssize_t n = readlink(link, where, wsize - 1);
			where[n > 0 ? n : 0] = '\0';
			return true;
		}
		struct stat here, up;
		int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0 || fstat(fd, &here) < 0 || fstat(parent, &up) < 0 || here.st_dev != up.st_dev ||
		    here.st_ino == up.st_ino) {
			if (parent >= 0)
				close(parent);
			break; /* left the cgroup file system */
		}
		close(fd);
		fd = parent;
	}
	return false;
}

/* The caller's own group with a pids controller: in the v1 pids hierarchy
 * (hybrid hosts), where a fork is counted before the child moves anywhere,
 * or in a pure v2 hierarchy. */
static int open_own_pids_group(void)
{
	bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	char line[PATH_MAX + 64];
	while (f && fgets(line, sizeof(line), f)) {
		char *ctrl = strchr(line, ':');
		char *path = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		const char *mount = NULL;
		if (!strncmp(ctrl + 1, "pids:", 5))
			mount = "/sys/fs/cgroup/pids";
		else if (v2 && !strncmp(ctrl + 1, ":", 1))
			mount = "/sys/fs/cgroup";
		if (!mount)
			continue;
		char full[PATH_MAX + 32];
		snprintf(full, sizeof(full), "%s%s", mount, path + 1);
		return open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	return -1;
}

static void explain_namespaces(char *out, size_t size, uint64_t ns, bool host_view)
{
	size_t kinds = 0, last = 0;
	for (size_t i = 0; i < SBX_ARRAY_SIZE(ns_kinds); i++) {
		if (ns & ns_kinds[i].flag) {
			kinds++;
			last = i;
		}
	}
	int w = kinds == 1 ? snprintf(out, size, "the host's limit of %s namespaces is reached (", ns_kinds[last].kind)
			   : snprintf(out, size, "a host limit on namespaces is reached (one of ");
	size_t n = w > 0 ? (size_t)w : 0;
	bool first = true;
	for (size_t i = 0; i < SBX_ARRAY_SIZE(ns_kinds) && n < size; i++) {
		if (!(ns & ns_kinds[i].flag))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/sys/user/%s", ns_kinds[i].sysctl);
		int64_t v = host_view ? read_num(AT_FDCWD, path) : -1;
		if (v >= 0)
			n += (size_t)snprintf(out + n, size - n, "%suser.%s = %" PRId64, first ? "" : ", ",
					      ns_kinds[i].sysctl, v);
		else
			n += (size_t)snprintf(out + n, size - n, "%suser.%s", first ? "" : ", ", ns_kinds[i].sysctl);
		first = false;
	}
	if (n < size)
		snprintf(out + n, size - n, "); raise it with sysctl, or delete sandboxes");
}

static void explain_processes(char *out, size_t size, int cgroup_fd)
{
	char where[PATH_MAX];
	int64_t max, cur;
	if (find_full_group(cgroup_fd, "pids.max", "pids.current", 0, where, sizeof(where), &max, &cur)) {
		snprintf(out, size, "the cgroup %.512s has %" PRId64 " processes, all its pids.max allows; raise it (TasksMax= for a "
				    "systemd unit) or delete sandboxes",
			 where, cur);
		return;
	}
	_cleanup_close_ int own = open_own_pids_group();
	if (find_full_group(own, "pids.max", "pids.current", 0, where, sizeof(where), &max, &cur)) {
		snprintf(out, size, "the cgroup %.512s has %" PRId64 " processes, all its pids.max allows; raise it (TasksMax= for a "
				    "systemd unit) or delete sandboxes",
			 where, cur);
		return;
	}
	int64_t threads_max = read_num(AT_FDCWD, "/proc/sys/kernel/threads-max");
	int64_t pid_max = read_num(AT_FDCWD, "/proc/sys/kernel/pid_max");
	int64_t tasks = -1;
	char load[128];
	_cleanup_close_ int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, load, sizeof(load) - 1) : -1;
	if (n > 0) {
		load[n] = '\0';
		char *slash = strchr(load, '/');
		if (slash)
			tasks = strtoll(slash + 1, NULL, 10); /* every thread on the host */
	}
	snprintf(out, size,
		 "the host's process limit is reached (%" PRId64 " threads now; kernel.threads-max = %" PRId64
		 ", kernel.pid_max = %" PRId64 ", or a cgroup's pids.max); raise it or delete sandboxes",
		 tasks, threads_max, pid_max);
}

static void explain_memory(char *out, size_t size, int cgroup_fd)
{
	char where[PATH_MAX];
	int64_t max, cur;
	if (find_full_group(cgroup_fd, "memory.max", "memory.current", 1 << 20, where, sizeof(where), &max, &cur)) {
		snprintf(out, size, "the cgroup %.512s is at its memory.max (%" PRId64 " MiB); raise it or delete sandboxes",
			 where, max >> 20);
		return;
	}
	int64_t avail_kb = -1;
	_cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %" SCNd64 " kB", &avail_kb) == 1)
			break;
	snprintf(out, size, "the host is out of memory (%" PRId64 " MiB available); free some or delete sandboxes",
		 avail_kb >= 0 ? avail_kb >> 10 : -1);
}

int sbx_hostlimit_error(sbx_error **err, int errnum, uint64_t ns, int cgroup_fd, bool host_view, const char *fmt,
			...)
{
	if (!err)
		return -1;
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	char why[1024] = "";
	if (errnum == ENOSPC && ns)
		explain_namespaces(why, sizeof(why), ns, host_view);
	else if (errnum == EAGAIN)
		explain_processes(why, sizeof(why), host_view ? cgroup_fd : -1);
	else if (errnum == ENOMEM)
		explain_memory(why, sizeof(why), host_view ? cgroup_fd : -1);
	if (!why[0])
		return sbx_error_errno(err, errnum, "%s", what);
	sbx_error_set(err, SBX_ERR_LIMIT, "%s: %s: %s", what, strerror(errnum), why);
	if (*err)
		(*err)->errnum = errnum;
	return -1;
}
