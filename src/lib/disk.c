/* Disk images for sandboxes whose writable layer has a size limit. The
 * image file is only ever written by the kernel's ext4 driver: nothing in
 * a sandbox can reach its raw blocks, so mounting it is no attack surface
 * beyond the files the sandbox could write anyway. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <linux/quota.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk.h"
#include "util.h"

int sbx_copy_sparse(int src, int dst, sbx_error **err)
{
	struct stat st;
	if (fstat(src, &st) < 0)
		return sbx_error_errno(err, errno, "stat image");
	if (ftruncate(dst, st.st_size) < 0)
		return sbx_error_errno(err, errno, "size image");
	off_t pos = 0;
	while (pos < st.st_size) {
		off_t data = lseek(src, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole is left */
			return sbx_error_errno(err, errno, "seek image");
		}
		off_t hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			return sbx_error_errno(err, errno, "seek image");
		off_t in = data, out = data;
		while (in < hole) {
			ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(hole - in), 0);
			if (n < 0)
				return sbx_error_errno(err, errno, "copy image");
			if (n == 0)
				break;
		}
		pos = hole;
	}
	return 0;
}

static const char *mkfs_path(void)
{
	static const char *const candidates[] = { "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(candidates); i++)
		if (access(candidates[i], X_OK) == 0)
			return candidates[i];
	return NULL;
}

bool sbx_disk_supported(void)
{
	return access("/dev/loop-control", F_OK) == 0 && mkfs_path();
}

static int run_mkfs(const char *path, int64_t mb, sbx_error **err)
{
	const char *mkfs = mkfs_path();
	if (!mkfs)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "disk limits need mkfs.ext4 (Debian package e2fsprogs)");
	pid_t pid = fork();
	if (pid < 0)
		return sbx_error_errno(err, errno, "fork mkfs");
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		/* Lazy init keeps formatting of a large sparse image in the
		 * milliseconds; no reserved blocks: the whole size is the sandbox's. */
		/* No online-resize reserve, and a journal sized to the disk: both
		 * would be copied for every sandbox otherwise. */
		execl(mkfs, "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^resize_inode", "-J", mb >= 256 ? "size=16" : "size=4",
		      "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "-L", "sandbox", path, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return sbx_error_errno(err, errno, "wait mkfs");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "mkfs.ext4 %s failed (status %d)", path, status);
	return 0;
}

int sbx_disk_create(const char *dest, int64_t mb, const char *template_dir, sbx_error **err)
{
	if (sbx_mkdir_p(template_dir, 0700, err) < 0)
		return -1;
	char tpl[4096];
	snprintf(tpl, sizeof(tpl), "%s/ext4-%lld.img", template_dir, (long long)mb);
	_cleanup_close_ int src = open(tpl, O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		char tmp[4200];
		snprintf(tmp, sizeof(tmp), "%s.tmp-%d", tpl, (int)getpid());
		_cleanup_close_ int t = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (t < 0)
			return sbx_error_errno(err, errno, "create %s", tmp);
		if (ftruncate(t, mb * 1024 * 1024) < 0) {
			unlink(tmp);
			return sbx_error_errno(err, errno, "size %s", tmp);
		}
		if (run_mkfs(tmp, mb, err) < 0 || rename(tmp, tpl) < 0) {
			int e = errno;
			unlink(tmp);
			if (err && *err)
				return -1;
			return sbx_error_errno(err, e, "rename %s", tmp);
		}
		src = open(tpl, O_RDONLY | O_CLOEXEC);
		if (src < 0)
			return sbx_error_errno(err, errno, "open %s", tpl);
	}
	_cleanup_close_ int dst = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (dst < 0)
		return sbx_error_errno(err, errno, "create %s", dest);
	if (sbx_copy_sparse(src, dst, err) < 0) {
		unlink(dest);
		return -1;
	}
	return 0;
}

int sbx_loop_add(sbx_error **err)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return sbx_error_errno(err, errno, "open /dev/loop-control (is the loop module loaded?)");
	/* -1: the lowest free number. Never LOOP_CTL_GET_FREE, which hands out
	 * a free device of someone else's or makes one nobody would remove. */
	int n = ioctl(ctl, LOOP_CTL_ADD, -1);
	if (n < 0)
		return sbx_error_errno(err, errno, "make a loop device");
	return n;
}

int sbx_loop_remove(int index)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	if (ioctl(ctl, LOOP_CTL_REMOVE, index) < 0)
		return -errno;
	return 0;
}

int sbx_loop_backing_file(int index, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/block/loop%d/loop/backing_file", index);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno; /* ENOENT: not attached, or no such device */
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return 0;
}

int sbx_disk_attach(int index, const char *image, char devpath[32], sbx_error **err)
{
	_cleanup_close_ int img = open(image, O_RDWR | O_CLOEXEC);
	if (img < 0)
		return sbx_error_errno(err, errno, "open disk image %s", image);
	snprintf(devpath, 32, "/dev/loop%d", index);
	int loop = open(devpath, O_RDWR | O_CLOEXEC);
	if (loop < 0)
		return sbx_error_errno(err, errno, "open %s", devpath);
	struct loop_config lc = { .fd = (uint32_t)img, .block_size = 0 };
	lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
	snprintf((char *)lc.info.lo_file_name, sizeof(lc.info.lo_file_name), "%s", image);
	if (ioctl(loop, LOOP_CONFIGURE, &lc) < 0) {
		int e = errno;
		close(loop);
		return sbx_error_errno(err, e, "attach %s to %s", image, devpath);
	}
	return loop;
}

/* ---- project quotas ----
 * Where the state dir's filesystem enforces project quotas (xfs, or ext4
 * with the project feature mounted prjquota), a sandbox's upper and work
 * dirs get a project id of their own, inherited by everything created in
 * them, and the project gets a block limit. No image, no loop device. */

#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443
#endif

/* The kernel's QCMD shifts an int: Q_GETINFO (0x800005) << 8 overflows it,
 * undefined behaviour that UBSan stops the daemon for. Same bits, unsigned. */
#define SBX_QCMD(cmd, type) (((unsigned int)(cmd) << SUBCMDSHIFT) | ((unsigned int)(type) & SUBCMDMASK))

static int quotactl_fd(int fd, unsigned int cmd, uint32_t id, void *addr)
{
	return (int)syscall(SYS_quotactl_fd, fd, cmd, id, addr);
}

bool sbx_prjquota_supported(int dirfd)
{
	struct if_dqinfo info;
	if (quotactl_fd(dirfd, SBX_QCMD(Q_GETINFO, PRJQUOTA), 0, &info) < 0)
		return false;
	struct fsxattr fsx;
	return ioctl(dirfd, FS_IOC_FSGETXATTR, &fsx) == 0;
}

int sbx_prjquota_assign(int dirfd, uint32_t projid, sbx_error **err)
{
	struct fsxattr fsx;
	if (ioctl(dirfd, FS_IOC_FSGETXATTR, &fsx) < 0)
		return sbx_error_errno(err, errno, "get project of directory");
	fsx.fsx_projid = projid;
	fsx.fsx_xflags |= FS_XFLAG_PROJINHERIT;
	if (ioctl(dirfd, FS_IOC_FSSETXATTR, &fsx) < 0)
		return sbx_error_errno(err, errno, "set project %u on directory", projid);
	return 0;
}

int sbx_prjquota_limit(int fd, uint32_t projid, int64_t mb, sbx_error **err)
{
	struct if_dqblk dq = { 0 };
	dq.dqb_bhardlimit = dq.dqb_bsoftlimit = (uint64_t)mb * 1024; /* in 1 KiB quota blocks */
	dq.dqb_valid = QIF_BLIMITS;
	if (quotactl_fd(fd, SBX_QCMD(Q_SETQUOTA, PRJQUOTA), projid, &dq) < 0)
		return sbx_error_errno(err, errno, "set quota of project %u", projid);
	return 0;
}

int64_t sbx_prjquota_used(int fd, uint32_t projid)
{
	struct if_dqblk dq = { 0 };
	if (quotactl_fd(fd, SBX_QCMD(Q_GETQUOTA, PRJQUOTA), projid, &dq) < 0)
		return -1;
	return (int64_t)dq.dqb_curspace;
}
