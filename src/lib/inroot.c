/* Safe in-root file operations. Never pass a path built from sandbox
 * content to a plain open(2); everything goes through sbx_inroot_open. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inroot.h"
#include "syscalls.h"
#include "util.h"

#define RESOLVE_FLAGS (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

int sbx_inroot_open(int rootfd, const char *path, int flags, mode_t mode)
{
	int fd;
	do {
		fd = sbx_openat2(rootfd, path, (uint64_t)(flags | O_CLOEXEC), (flags & O_CREAT) ? mode : 0, RESOLVE_FLAGS);
	} while (fd < 0 && errno == EAGAIN); /* a concurrent rename; retry */
	return fd;
}

int sbx_inroot_mkdir_p(int rootfd, const char *path, mode_t mode, sbx_error **err)
{
	char buf[PATH_MAX];
	if (strlen(path) >= sizeof(buf))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "path too long");
	strcpy(buf, path);
	size_t len = strlen(buf);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		int fd = sbx_inroot_open(rootfd, buf, O_PATH | O_DIRECTORY, 0);
		if (fd < 0 && errno == ENOENT) {
			char *slash = strrchr(buf, '/');
			_cleanup_close_ int parent = -1;
			if (slash == buf || !slash) {
				parent = sbx_inroot_open(rootfd, "/", O_PATH | O_DIRECTORY, 0);
			} else {
				*slash = '\0';
				parent = sbx_inroot_open(rootfd, buf, O_PATH | O_DIRECTORY, 0);
				*slash = '/';
			}
			const char *name = slash ? slash + 1 : buf;
			if (parent < 0)
				return sbx_error_errno(err, errno, "open parent of '%s'", buf);
			if (mkdirat(parent, name, mode) < 0 && errno != EEXIST)
				return sbx_error_errno(err, errno, "mkdir '%s'", buf);
			fd = sbx_inroot_open(rootfd, buf, O_PATH | O_DIRECTORY, 0);
		}
		if (fd < 0)
			return sbx_error_errno(err, errno, "open '%s'", buf);
		buf[i] = saved;
		if (saved == '\0')
			return fd;
		close(fd);
	}
	return sbx_inroot_open(rootfd, "/", O_PATH | O_DIRECTORY, 0);
}

int sbx_inroot_write_file(int rootfd, const char *path, const char *data, mode_t mode, sbx_error **err)
{
	/* O_NONBLOCK: a FIFO planted at this path must not hang us. */
	_cleanup_close_ int fd = sbx_inroot_open(rootfd, path, O_WRONLY | O_CREAT | O_NOCTTY | O_NONBLOCK, mode);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return sbx_error_set(err, SBX_ERR_DENIED, "'%s' is not a regular file", path);
	if (ftruncate(fd, 0) < 0)
		return sbx_error_errno(err, errno, "truncate '%s'", path);
	if (sbx_write_all(fd, data, strlen(data)) < 0)
		return sbx_error_errno(err, errno, "write '%s'", path);
	return 0;
}

int sbx_inroot_touch(int rootfd, const char *path, mode_t mode, sbx_error **err)
{
	int fd = sbx_inroot_open(rootfd, path, O_PATH, 0);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return sbx_error_errno(err, errno, "open '%s'", path);
	_cleanup_close_ int w = sbx_inroot_open(rootfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY, mode);
	if (w < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create '%s'", path);
	fd = sbx_inroot_open(rootfd, path, O_PATH, 0);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open '%s'", path);
	return fd;
}
