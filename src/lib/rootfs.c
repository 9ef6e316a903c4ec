/* Mount setup for a new sandbox. Every mount target below the new root is
 * opened in-root first and mounted onto by fd (move_mount), so a hostile
 * image with /proc -> /etc or /dev -> / cannot redirect a mount. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "inroot.h"
#include "rootfs.h"
#include "syscalls.h"
#include "util.h"

/* A new filesystem instance (fsopen/fsconfig/fsmount) moved onto target. */
static int mount_new(int target_fd, const char *fstype, const char *const *opts, unsigned int attrs, sbx_error **err)
{
	_cleanup_close_ int fs = fsopen(fstype, FSOPEN_CLOEXEC);
	if (fs < 0)
		return sbx_error_errno(err, errno, "fsopen %s", fstype);
	for (size_t i = 0; opts && opts[i]; i += 2) {
		int r = opts[i + 1] ? fsconfig(fs, FSCONFIG_SET_STRING, opts[i], opts[i + 1], 0)
				    : fsconfig(fs, FSCONFIG_SET_FLAG, opts[i], NULL, 0);
		if (r < 0)
			return sbx_error_errno(err, errno, "%s option %s", fstype, opts[i]);
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return sbx_error_errno(err, errno, "create %s", fstype);
	_cleanup_close_ int mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
	if (mnt < 0)
		return sbx_error_errno(err, errno, "fsmount %s", fstype);
	if (move_mount(mnt, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return sbx_error_errno(err, errno, "move_mount %s", fstype);
	return 0;
}

static int mount_new_at(int rootfd, const char *path, const char *fstype, const char *const *opts, unsigned int attrs,
			sbx_error **err)
{
	_cleanup_close_ int target = sbx_inroot_mkdir_p(rootfd, path, 0755, err);
	if (target < 0)
		return sbx_error_prefix(err, "mount point %s", path);
	if (mount_new(target, fstype, opts, attrs, err) < 0)
		return sbx_error_prefix(err, "mount %s on %s", fstype, path);
	return 0;
}

/* Bind a host device node after checking it is the device it claims to be:
 * a planted symlink or a swapped /dev/null must not be bound in. */
static int bind_device(int rootfd, const char *name, unsigned int major_nr, unsigned int minor_nr, sbx_error **err)
{
	char host[64], inside[64];
	snprintf(host, sizeof(host), "/dev/%s", name);
	snprintf(inside, sizeof(inside), "/dev/%s", name);
	_cleanup_close_ int tree = open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
	if (tree < 0)
		return sbx_error_errno(err, errno, "open_tree %s", host);
	struct stat st;
	if (fstat(tree, &st) < 0)
		return sbx_error_errno(err, errno, "stat %s", host);
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != major_nr || minor(st.st_rdev) != minor_nr)
		return sbx_error_set(err, SBX_ERR_DENIED, "%s is not the expected character device %u:%u", host,
				     major_nr, minor_nr);
	_cleanup_close_ int target = sbx_inroot_touch(rootfd, inside, 0666, err);
	if (target < 0)
		return -1;
	if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return sbx_error_errno(err, errno, "bind %s", host);
	return 0;
}

static int setup_dev(int rootfd, sbx_error **err)
{
	static const char *const tmpfs_opts[] = { "mode", "0755", "size", "65536", NULL };
	/* nodev: the bound device nodes are mounts of their own and keep
	 * working; a node made with mknod on this tmpfs does not. */
	if (mount_new_at(rootfd, "/dev", "tmpfs", tmpfs_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV,
			 err) < 0)
		return -1;
	static const struct {
		const char *name;
		unsigned int major_nr, minor_nr;
	} devs[] = {
		{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(devs); i++)
		if (bind_device(rootfd, devs[i].name, devs[i].major_nr, devs[i].minor_nr, err) < 0)
			return -1;

	static const char *const pts_opts[] = { "newinstance", NULL, "ptmxmode", "0666", "mode", "0620", "gid", "5", NULL };
	if (mount_new_at(rootfd, "/dev/pts", "devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err) < 0)
		return -1;
	static const char *const shm_opts[] = { "mode", "1777", "size", "67108864", NULL };
	if (mount_new_at(rootfd, "/dev/shm", "tmpfs", shm_opts,
			 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err) < 0)
		return -1;
	if (mount_new_at(rootfd, "/dev/mqueue", "mqueue", NULL,
			 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err) < 0)
		return -1;

	_cleanup_close_ int dev = sbx_inroot_open(rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
	if (dev < 0)
		return sbx_error_errno(err, errno, "open /dev");
	static const char *const links[][2] = {
		{ "pts/ptmx", "ptmx" },	       { "/proc/self/fd", "fd" },     { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
			return sbx_error_errno(err, errno, "symlink /dev/%s", links[i][1]);
	return 0;
}

static int loopback_up(sbx_error **err)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return sbx_error_errno(err, errno, "socket");
	struct ifreq ifr = { 0 };
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return sbx_error_errno(err, errno, "get flags of lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return sbx_error_errno(err, errno, "bring lo up");
	return 0;
}

int sbx_rootfs_setup(const struct sbx_rootfs_config *cfg, sbx_error **err)
{
	/* Nothing we mount from here on may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sbx_error_errno(err, errno, "make / private");

	const char *upper = cfg->upperdir, *work = cfg->workdir;
	char disk_upper[4096], disk_work[4096];
	if (cfg->disk_dev) {
		_cleanup_close_ int dm = open(cfg->disk_mnt, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (dm < 0)
			return sbx_error_errno(err, errno, "open disk mount point '%s'", cfg->disk_mnt);
		const char *const ext4_opts[] = { "source", cfg->disk_dev, NULL };
		if (mount_new(dm, "ext4", ext4_opts, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err) < 0)
			return sbx_error_prefix(err, "disk %s", cfg->disk_dev);
		_cleanup_close_ int disk = open(cfg->disk_mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (disk < 0)
			return sbx_error_errno(err, errno, "open disk '%s'", cfg->disk_mnt);
		if ((mkdirat(disk, "upper", 0755) < 0 && errno != EEXIST) || (mkdirat(disk, "work", 0700) < 0 && errno != EEXIST))
			return sbx_error_errno(err, errno, "prepare disk %s", cfg->disk_dev);
		snprintf(disk_upper, sizeof(disk_upper), "%s/upper", cfg->disk_mnt);
		snprintf(disk_work, sizeof(disk_work), "%s/work", cfg->disk_mnt);
		upper = disk_upper;
		work = disk_work;
	}
	_cleanup_close_ int target = open(cfg->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (target < 0)
		return sbx_error_errno(err, errno, "open mount point '%s'", cfg->mountpoint);
	const char *const ovl_opts[] = { "lowerdir", cfg->lowerdir, "upperdir", upper, "workdir", work, NULL };
	if (mount_new(target, "overlay", ovl_opts, MOUNT_ATTR_NODEV, err) < 0)
		return sbx_error_prefix(err, "overlay root");

	/* Reopen: the fd taken before the mount still names the covered dir. */
	_cleanup_close_ int rootfd = open(cfg->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (rootfd < 0)
		return sbx_error_errno(err, errno, "open root '%s'", cfg->mountpoint);

	static const char *const no_opts[] = { NULL };
	if (mount_new_at(rootfd, "/proc", "proc", no_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
			 err) < 0)
		return -1;
	if (setup_dev(rootfd, err) < 0)
		return sbx_error_prefix(err, "/dev");
	if (mount_new_at(rootfd, "/sys", "sysfs", no_opts,
			 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err) < 0)
		return -1;

	_cleanup_close_ int etc = sbx_inroot_mkdir_p(rootfd, "/etc", 0755, err);
	if (etc < 0)
		return -1;
	char hn[128];
	snprintf(hn, sizeof(hn), "%s\n", cfg->hostname);
	if (sbx_inroot_write_file(rootfd, "/etc/hostname", hn, 0644, err) < 0 ||
	    sbx_inroot_write_file(rootfd, "/etc/hosts", cfg->hosts, 0644, err) < 0 ||
	    sbx_inroot_write_file(rootfd, "/etc/resolv.conf", cfg->resolv, 0644, err) < 0)
		return -1;
	static const char *const tmp_dirs[] = { "/tmp", "/var/tmp" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(tmp_dirs); i++) {
		_cleanup_close_ int d = sbx_inroot_mkdir_p(rootfd, tmp_dirs[i], 01777, err);
		if (d < 0)
			return -1;
	}
	if (cfg->workspace && *cfg->workspace) {
		_cleanup_close_ int d = sbx_inroot_mkdir_p(rootfd, cfg->workspace, 0755, err);
		if (d < 0)
			return sbx_error_prefix(err, "workdir");
	}

	if (sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
		return sbx_error_errno(err, errno, "sethostname");
	if (loopback_up(err) < 0)
		return -1;

	/* pivot_root, not chroot: chroot can be escaped with a second chroot. */
	if (fchdir(rootfd) < 0)
		return sbx_error_errno(err, errno, "chdir to new root");
	if (sbx_pivot_root(".", ".") < 0)
		return sbx_error_errno(err, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return sbx_error_errno(err, errno, "detach old root");
	if (chdir("/") < 0)
		return sbx_error_errno(err, errno, "chdir /");
	return 0;
}
