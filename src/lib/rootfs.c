/* Mount setup for a new sandbox. Every mount target below the new root is
 * opened in-root first and mounted onto by fd (move_mount), so a hostile
 * image with /proc -> /etc or /dev -> / cannot redirect a mount. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
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

static int setup_dev(int rootfd, const struct sbx_rootfs_config *cfg, sbx_error **err)
{
	char uid[16], gid[16], ttygid[16];
	snprintf(uid, sizeof(uid), "%u", (unsigned)cfg->root_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)cfg->root_gid);
	snprintf(ttygid, sizeof(ttygid), "%u", (unsigned)cfg->root_gid + 5);
	/* /dev/shm is a directory of this tmpfs, not a tmpfs of its own:
	 * every superblock costs each memory cgroup on the host a slot in its
	 * shrinker map, so with thousands of sandboxes each one saved counts.
	 * 64 MiB for shared memory, 64 KiB for the rest. */
	const char *const tmpfs_opts[] = { "mode", "0755", "size", "67174400", "uid", uid, "gid", gid, NULL };
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

	/* gid 5 is "tty" inside; devpts takes ids of the mounter's namespace. */
	const char *const pts_opts[] = { "newinstance", NULL, "ptmxmode", "0666", "mode", "0620", "gid", ttygid, NULL };
	if (mount_new_at(rootfd, "/dev/pts", "devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err) < 0)
		return -1;
	_cleanup_close_ int shm_path = sbx_inroot_mkdir_p(rootfd, "/dev/shm", 01777, err);
	if (shm_path < 0)
		return sbx_error_prefix(err, "/dev/shm");
	_cleanup_close_ int shm = sbx_inroot_open(rootfd, "/dev/shm", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (shm < 0 || fchmod(shm, 01777) < 0) /* past the umask */
		return sbx_error_errno(err, errno, "chmod /dev/shm");
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

/* What we create in the sandbox belongs to its root, not to host root. An
 * existing entry owned by someone else (the image, through the idmap) is
 * left alone. */
static int give_to_root(int fd, const struct sbx_rootfs_config *cfg, sbx_error **err)
{
	if (!cfg->root_uid && !cfg->root_gid)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "stat");
	if (st.st_uid != 0 && st.st_gid != 0)
		return 0;
	if (fchownat(fd, "", cfg->root_uid, cfg->root_gid, AT_EMPTY_PATH) < 0)
		return sbx_error_errno(err, errno, "chown to the sandbox's root");
	return 0;
}

static int mkdir_for_root(int rootfd, const char *path, mode_t mode, const struct sbx_rootfs_config *cfg,
			  sbx_error **err)
{
	_cleanup_close_ int d = sbx_inroot_mkdir_p(rootfd, path, mode, err);
	if (d < 0 || give_to_root(d, cfg, err) < 0)
		return sbx_error_prefix(err, "%s", path);
	return 0;
}

static int write_for_root(int rootfd, const char *path, const char *data, const struct sbx_rootfs_config *cfg,
			  sbx_error **err)
{
	if (sbx_inroot_write_file(rootfd, path, data, 0644, err) < 0)
		return -1;
	_cleanup_close_ int fd = sbx_inroot_open(rootfd, path, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open '%s'", path);
	if (give_to_root(fd, cfg, err) < 0)
		return sbx_error_prefix(err, "%s", path);
	return 0;
}

/* Bind the host's /dev/null over a file, or an empty read-only tmpfs over a
 * directory, so that its contents cannot be read. Missing paths are fine.
 * All directories get binds of one tmpfs (*mask_root, its root once
 * mounted): a superblock each would cost every memory cgroup on the host a
 * slot in its shrinker map per sandbox. */
/* Hide a path: a directory under a read-only clone of an empty directory
 * (mask_root), a file under the null device. */
static int mask_path(int rootfd, const char *path, int mask_root, sbx_error **err)
{
	_cleanup_close_ int target = sbx_inroot_open(rootfd, path, O_PATH | O_NOFOLLOW, 0);
	if (target < 0)
		return errno == ENOENT ? 0 : sbx_error_errno(err, errno, "open %s", path);
	struct stat st;
	if (fstat(target, &st) < 0)
		return sbx_error_errno(err, errno, "stat %s", path);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int tree = open_tree(mask_root, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		if (tree < 0)
			return sbx_error_errno(err, errno, "mask %s: open_tree", path);
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
						       MOUNT_ATTR_NOEXEC };
		if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
			return sbx_error_errno(err, errno, "mask %s: read-only", path);
		if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return sbx_error_errno(err, errno, "mask %s", path);
		return 0;
	}
	/* The source must really be the null device (CVE-2025-31133). */
	_cleanup_close_ int null = open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
	if (null < 0)
		return sbx_error_errno(err, errno, "open_tree /dev/null");
	struct stat ns;
	if (fstat(null, &ns) < 0 || !S_ISCHR(ns.st_mode) || major(ns.st_rdev) != 1 || minor(ns.st_rdev) != 3)
		return sbx_error_set(err, SBX_ERR_DENIED, "/dev/null is not the null device; refusing to mask %s", path);
	if (move_mount(null, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return sbx_error_errno(err, errno, "mask %s", path);
	return 0;
}

/* Remount a path read-only in place. */
static int readonly_path(int rootfd, const char *path, sbx_error **err)
{
	_cleanup_close_ int target = sbx_inroot_open(rootfd, path, O_PATH | O_NOFOLLOW, 0);
	if (target < 0)
		return errno == ENOENT ? 0 : sbx_error_errno(err, errno, "open %s", path);
	_cleanup_close_ int tree = open_tree(target, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (tree < 0)
		return sbx_error_errno(err, errno, "open_tree %s", path);
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					       MOUNT_ATTR_NOEXEC };
	if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return sbx_error_errno(err, errno, "read-only %s", path);
	if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return sbx_error_errno(err, errno, "mount read-only %s", path);
	return 0;
}

/* The OCI runtime spec's defaults, plus what leaks host detail. */
static const char *const masked_paths[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/key-users", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/proc/kallsyms", "/proc/kpagecount", "/proc/kpageflags", "/proc/kpagecgroup", "/proc/vmallocinfo",
	"/sys/firmware", "/sys/devices/virtual/powercap", "/sys/kernel/debug", "/sys/kernel/security", NULL,
};
static const char *const readonly_paths[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
					       NULL };

/* Settings of the sandbox's own network namespace that let an unprivileged
 * root (user namespace) bind low ports and ping, as root could before. */
static int net_sysctls(int rootfd, sbx_error **err)
{
	static const char *const kv[][2] = {
		{ "/proc/sys/net/ipv4/ip_unprivileged_port_start", "0" },
		{ "/proc/sys/net/ipv4/ping_group_range", "0 2147483647" },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(kv); i++) {
		_cleanup_close_ int fd = sbx_inroot_open(rootfd, kv[i][0], O_WRONLY, 0);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return sbx_error_errno(err, errno, "open %s", kv[i][0]);
		}
		if (write(fd, kv[i][1], strlen(kv[i][1])) < 0)
			return sbx_error_errno(err, errno, "write %s", kv[i][0]);
	}
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

/* A detached copy of the tree at path, idmapped through the sandbox's
 * user namespace: the image keeps its ownership on disk, and through this
 * mount its root-owned files belong to the sandbox's root. */
static int idmapped_tree(const struct sbx_rootfs_config *cfg, const char *path, sbx_error **err)
{
	int tree = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0)
		return sbx_error_errno(err, errno, "open_tree image '%s'", path);
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV, .userns_fd = (uint64_t)cfg->userns_fd };
	if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
		int e = errno;
		close(tree);
		if (e == EINVAL)
			return sbx_error_set(err, SBX_ERR_UNSUPPORTED,
					     "the filesystem of '%s' cannot be idmapped; put the state dir on "
					     "ext4, xfs or btrfs, or create the sandbox with userns false",
					     path);
		return sbx_error_errno(err, e, "idmap image '%s'", path);
	}
	return tree;
}

#define FSCONFIG_STRING_MAX 255 /* the kernel copies at most 256 bytes of a value */

/* The overlay over several layers. Layer paths are joined into one
 * "lowerdir" value only as the last resort: fsconfig takes at most 256
 * bytes of it, which a few layers under a state dir exceed. */
static int mount_layers(const struct sbx_rootfs_config *cfg, const char *upper, const char *work, sbx_error **err)
{
	size_t n = 0;
	while (cfg->lowerdirs[n])
		n++;
	if (n == 0)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "an image without layers");
	int *fds = calloc(n, sizeof(int));
	char **paths = calloc(n, sizeof(char *));
	int rc = -1, fs = -1;
	if (!fds || !paths) {
		sbx_error_errno(err, ENOMEM, "overlay layers");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	for (size_t i = 0; i < n; i++) {
		fds[i] = cfg->userns_fd >= 0 ? idmapped_tree(cfg, cfg->lowerdirs[i], err)
					     : open(cfg->lowerdirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fds[i] < 0) {
			if (cfg->userns_fd < 0)
				sbx_error_errno(err, errno, "open layer '%s'", cfg->lowerdirs[i]);
			goto out;
		}
	}
	int api = cfg->lower_api;
	fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0) {
		sbx_error_errno(err, errno, "fsopen overlay");
		goto out;
	}
	if (api == SBX_LOWER_API_BEST || api == SBX_LOWER_API_FD) {
		size_t i = 0;
		for (; i < n; i++)
			if (fsconfig(fs, FSCONFIG_SET_FD, "lowerdir+", NULL, fds[i]) < 0)
				break;
		if (i == n) {
			api = SBX_LOWER_API_FD;
		} else if (i > 0 || api == SBX_LOWER_API_FD) {
			sbx_error_errno(err, errno, "overlay layer %zu of %zu by fd", i + 1, n);
			goto out;
		} else {
			api = SBX_LOWER_API_PATHS;
		}
	}
	if (api != SBX_LOWER_API_FD) {
		/* Paths: with a user namespace, each idmapped layer is attached
		 * below lower_mnt first. */
		for (size_t i = 0; i < n; i++) {
			if (cfg->userns_fd < 0) {
				paths[i] = strdup(cfg->lowerdirs[i]);
			} else if (asprintf(&paths[i], "%s/%zu", cfg->lower_mnt, i) >= 0) {
				_cleanup_close_ int lm = open(cfg->lower_mnt, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
				char name[24];
				snprintf(name, sizeof(name), "%zu", i);
				_cleanup_close_ int mp = -1;
				if (lm < 0 || (mkdirat(lm, name, 0700) < 0 && errno != EEXIST) ||
				    (mp = openat(lm, name, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
				    move_mount(fds[i], "", mp, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
					sbx_error_errno(err, errno, "attach idmapped layer %zu below '%s'", i + 1, cfg->lower_mnt);
					goto out;
				}
			} else {
				paths[i] = NULL;
			}
			if (!paths[i]) {
				sbx_error_errno(err, ENOMEM, "overlay layers");
				goto out;
			}
		}
	}
	if (api == SBX_LOWER_API_BEST || api == SBX_LOWER_API_PATHS) {
		size_t i = 0;
		for (; i < n; i++) {
			if (strlen(paths[i]) > FSCONFIG_STRING_MAX) {
				sbx_error_set(err, SBX_ERR_LIMIT, "layer path '%s' is longer than %d bytes", paths[i],
					      FSCONFIG_STRING_MAX);
				goto out;
			}
			if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", paths[i], 0) < 0)
				break;
		}
		if (i == n) {
			api = SBX_LOWER_API_PATHS;
		} else if (i > 0 || cfg->lower_api == SBX_LOWER_API_PATHS) {
			sbx_error_errno(err, errno, "overlay layer %zu of %zu ('%s')", i + 1, n, paths[i]);
			goto out;
		} else {
			api = SBX_LOWER_API_STRING;
		}
	}
	if (api == SBX_LOWER_API_STRING) {
		struct sbx_buf joined = { 0 };
		for (size_t i = 0; i < n; i++)
			sbx_buf_printf(&joined, "%s%s", i ? ":" : "", paths[i]);
		if (!joined.data || joined.len > FSCONFIG_STRING_MAX) {
			sbx_error_set(err, SBX_ERR_LIMIT,
				      "this kernel takes the %zu layers only as one lowerdir of at most %d bytes; "
				      "they need %zu (Linux 6.8 lifts the limit)",
				      n, FSCONFIG_STRING_MAX, joined.len);
			sbx_buf_free(&joined);
			goto out;
		}
		int r = fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", joined.data, 0);
		int e = errno;
		sbx_buf_free(&joined);
		if (r < 0) {
			sbx_error_errno(err, e, "overlay lowerdir of %zu layers", n);
			goto out;
		}
	}
	if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) {
		sbx_error_errno(err, errno, "overlay upperdir '%s', workdir '%s'", upper, work);
		goto out;
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		sbx_error_errno(err, errno, "create overlay of %zu layers", n);
		goto out;
	}
	_cleanup_close_ int mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
	if (mnt < 0) {
		sbx_error_errno(err, errno, "fsmount overlay");
		goto out;
	}
	_cleanup_close_ int target = open(cfg->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (target < 0) {
		sbx_error_errno(err, errno, "open mount point '%s'", cfg->mountpoint);
		goto out;
	}
	if (move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
		sbx_error_errno(err, errno, "move_mount overlay");
		goto out;
	}
	rc = 0;
out:
	if (fs >= 0)
		close(fs);
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(fds);
	free(paths);
	if (rc < 0)
		sbx_error_prefix(err, "overlay root");
	return rc;
}

int sbx_rootfs_mount_overlay(const struct sbx_rootfs_config *cfg, sbx_error **err)
{
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
		if ((cfg->root_uid || cfg->root_gid) && fchownat(disk, "upper", cfg->root_uid, cfg->root_gid, 0) < 0)
			return sbx_error_errno(err, errno, "chown disk %s", cfg->disk_dev);
		snprintf(disk_upper, sizeof(disk_upper), "%s/upper", cfg->disk_mnt);
		snprintf(disk_work, sizeof(disk_work), "%s/work", cfg->disk_mnt);
		upper = disk_upper;
		work = disk_work;
	}
	if (cfg->lowerdirs)
		return mount_layers(cfg, upper, work, err);
	const char *lower = cfg->lowerdir;
	if (cfg->userns_fd >= 0) {
		_cleanup_close_ int tree = idmapped_tree(cfg, cfg->lowerdir, err);
		if (tree < 0)
			return -1;
		_cleanup_close_ int lt = open(cfg->lower_mnt, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (lt < 0)
			return sbx_error_errno(err, errno, "open '%s'", cfg->lower_mnt);
		if (move_mount(tree, "", lt, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return sbx_error_errno(err, errno, "attach idmapped image");
		lower = cfg->lower_mnt;
	}
	_cleanup_close_ int target = open(cfg->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (target < 0)
		return sbx_error_errno(err, errno, "open mount point '%s'", cfg->mountpoint);
	const char *const ovl_opts[] = { "lowerdir", lower, "upperdir", upper, "workdir", work, NULL };
	if (mount_new(target, "overlay", ovl_opts, MOUNT_ATTR_NODEV, err) < 0)
		return sbx_error_prefix(err, "overlay root");
	return 0;
}


int sbx_rootfs_setup(const struct sbx_rootfs_config *cfg, sbx_error **err)
{
	/* Nothing we mount from here on may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sbx_error_errno(err, errno, "make / private");

	if (sbx_rootfs_mount_overlay(cfg, err) < 0)
		return -1;

	/* Reopen: the fd taken before the mount still names the covered dir. */
	_cleanup_close_ int rootfd = open(cfg->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (rootfd < 0)
		return sbx_error_errno(err, errno, "open root '%s'", cfg->mountpoint);

	static const char *const no_opts[] = { NULL };
	if (mount_new_at(rootfd, "/proc", "proc", no_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
			 err) < 0)
		return -1;
	if (net_sysctls(rootfd, err) < 0)
		return -1;
	if (setup_dev(rootfd, cfg, err) < 0)
		return sbx_error_prefix(err, "/dev");
	if (mount_new_at(rootfd, "/sys", "sysfs", no_opts,
			 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err) < 0)
		return -1;

	/* Masked directories show an empty directory of the /dev tmpfs,
	 * removed once it is bound: a tmpfs of their own would be one more
	 * superblock, and every superblock costs each memory cgroup on the
	 * host a slot in its shrinker map. Removed, it cannot be filled even
	 * through a writable mount. */
	_cleanup_close_ int dev = sbx_inroot_open(rootfd, "/dev", O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	if (dev < 0)
		return sbx_error_errno(err, errno, "open /dev");
	static const char empty_dir[] = ".sandbox-masked";
	if (mkdirat(dev, empty_dir, 0555) < 0)
		return sbx_error_errno(err, errno, "mkdir /dev/%s", empty_dir);
	_cleanup_close_ int mask_root = openat(dev, empty_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (mask_root < 0)
		return sbx_error_errno(err, errno, "open /dev/%s", empty_dir);
	for (const char *const *m = masked_paths; *m; m++)
		if (mask_path(rootfd, *m, mask_root, err) < 0)
			return -1;
	if (unlinkat(dev, empty_dir, AT_REMOVEDIR) < 0)
		return sbx_error_errno(err, errno, "remove /dev/%s", empty_dir);
	for (const char *const *r = readonly_paths; *r; r++)
		if (readonly_path(rootfd, *r, err) < 0)
			return -1;

	if (mkdir_for_root(rootfd, "/etc", 0755, cfg, err) < 0)
		return -1;
	char hn[128];
	snprintf(hn, sizeof(hn), "%s\n", cfg->hostname);
	if (write_for_root(rootfd, "/etc/hostname", hn, cfg, err) < 0 ||
	    write_for_root(rootfd, "/etc/hosts", cfg->hosts, cfg, err) < 0 ||
	    write_for_root(rootfd, "/etc/resolv.conf", cfg->resolv, cfg, err) < 0)
		return -1;
	static const char *const tmp_dirs[] = { "/tmp", "/var/tmp" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(tmp_dirs); i++)
		if (mkdir_for_root(rootfd, tmp_dirs[i], 01777, cfg, err) < 0)
			return -1;
	if (cfg->workspace && *cfg->workspace && mkdir_for_root(rootfd, cfg->workspace, 0755, cfg, err) < 0)
		return sbx_error_prefix(err, "workdir");

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
