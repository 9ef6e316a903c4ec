/* Making a user namespace with a given mapping, without entering it: a
 * child is cloned into a new namespace and waits while the caller writes
 * its maps and takes a reference; then it exits. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

int sbx_userns_create(uint32_t base, uint32_t count, sbx_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
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
		char c;
		close(wr);
		/* Wait until the parent has what it needs, then vanish. */
		while (read(rd, &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
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
	sbx_closep(&wr);
	waitid((idtype_t)P_PIDFD, (id_t)pfd, NULL, WEXITED);
	return fd;
}
