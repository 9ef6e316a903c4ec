/* Making a user namespace with a given mapping, without entering it: a
 * child is cloned into a new namespace and waits while the caller writes
 * its maps and takes a reference; then it exits. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostlimit.h"
#include "syscalls.h"
#include "userns.h"
#include "util.h"

static int write_map(pid_t pid, const char *file, const char *map, sbx_error **err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map))
		return sbx_error_errno(err, errno, "write %s", path);
	return 0;
}

int sbx_userns_create_ns(uint32_t base, uint32_t count, int *ipc_fd, int *uts_fd, sbx_error **err)
{
	int p[2], q[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
	if (pipe2(q, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	_cleanup_close_ int back_rd = q[0];
	_cleanup_close_ int back_wr = q[1];
	bool want_ns = ipc_fd || uts_fd;
	if (ipc_fd)
		*ipc_fd = -1;
	if (uts_fd)
		*uts_fd = -1;
	int pidfd = -1;
	struct clone_args args = {
		.flags = CLONE_NEWUSER | CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
	};
	pid_t pid = sbx_clone3(&args);
	if (pid < 0)
		return sbx_hostlimit_error(err, errno, CLONE_NEWUSER, -1, true, "clone3 user namespace");
	if (pid == 0) {
		char c = 0;
		close(wr);
		close(back_rd);
		if (want_ns) {
			/* Once the maps are written this child is root of the new
			 * namespace; IPC and UTS namespaces it makes belong to it,
			 * so the sandbox's root owns them, while the sandbox's
			 * init can still join them with host privileges, before
			 * it mounts /dev/mqueue (which takes the mounter's IPC
			 * namespace). */
			while (read(rd, &c, 1) < 0 && errno == EINTR)
				;
			c = unshare(CLONE_NEWIPC | CLONE_NEWUTS) < 0 ? (char)errno : 0;
			while (write(back_wr, &c, 1) < 0 && errno == EINTR)
				;
		}
		/* Wait until the parent has what it needs, then vanish. */
		while (read(rd, &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	sbx_closep(&back_wr);
	_cleanup_close_ int pfd = pidfd;
	char map[64];
	snprintf(map, sizeof(map), "0 %u %u\n", base, count);
	int fd = -1;
	char nspath[64];
	snprintf(nspath, sizeof(nspath), "/proc/%d/ns/user", (int)pid);
	if (write_map(pid, "uid_map", map, err) == 0 && write_map(pid, "gid_map", map, err) == 0) {
		fd = open(nspath, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			sbx_error_errno(err, errno, "open %s", nspath);
	}
	if (fd >= 0 && want_ns) {
		char c = 1, res = -1;
		ssize_t n;
		while ((n = write(wr, &c, 1)) < 0 && errno == EINTR)
			;
		while ((n = read(back_rd, &res, 1)) < 0 && errno == EINTR)
			;
		if (n != 1 || res != 0) {
			int e = n == 1 ? res : EIO;
			sbx_hostlimit_error(err, e, CLONE_NEWIPC | CLONE_NEWUTS, -1, false, "new uts and ipc namespaces");
			sbx_closep(&fd);
		} else {
			int *outs[] = { ipc_fd, uts_fd };
			const char *names[] = { "ipc", "uts" };
			for (int i = 0; i < 2 && fd >= 0; i++) {
				if (!outs[i])
					continue;
				snprintf(nspath, sizeof(nspath), "/proc/%d/ns/%s", (int)pid, names[i]);
				*outs[i] = open(nspath, O_RDONLY | O_CLOEXEC);
				if (*outs[i] < 0) {
					sbx_error_errno(err, errno, "open %s", nspath);
					sbx_closep(&fd);
				}
			}
		}
	}
	sbx_closep(&wr);
	waitid((idtype_t)P_PIDFD, (id_t)pfd, NULL, WEXITED);
	if (fd < 0) {
		if (ipc_fd)
			sbx_closep(ipc_fd);
		if (uts_fd)
			sbx_closep(uts_fd);
	}
	return fd;
}

int sbx_userns_create(uint32_t base, uint32_t count, sbx_error **err)
{
	return sbx_userns_create_ns(base, count, NULL, NULL, err);
}
