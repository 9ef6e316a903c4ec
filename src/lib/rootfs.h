/* Building a sandbox's root inside its fresh mount namespace: overlayfs,
 * /proc, a minimal /dev, read-only /sys, generated /etc files, then
 * pivot_root. Runs only in the child between clone3 and exec of init. */
#ifndef SBX_ROOTFS_H
#define SBX_ROOTFS_H

#include <sys/types.h>

#include "error.h"

struct sbx_rootfs_config {
	const char *mountpoint; /* host path of an empty dir: the merged root */
	const char *lowerdir;   /* image rootfs (read-only layer) */
	/* Or, for an image of layers: their directories, topmost first,
	 * NULL-terminated (lowerdir is then ignored). Each is idmapped on its
	 * own; with several, below lower_mnt/0, lower_mnt/1, ... */
	const char *const *lowerdirs;
	/* How layers reach overlayfs: SBX_LOWER_API_BEST tries, in turn, fds
	 * of the (idmapped) layers with "lowerdir+" (Linux 6.13), their paths
	 * with "lowerdir+" (6.8), one "lowerdir" string (whose 256-byte limit
	 * caps the layers); the others force one of them (tests). */
	enum { SBX_LOWER_API_BEST, SBX_LOWER_API_FD, SBX_LOWER_API_PATHS, SBX_LOWER_API_STRING } lower_api;
	const char *upperdir;   /* per-sandbox writable layer */
	const char *workdir;    /* overlay work dir, same fs as upperdir */
	const char *hostname;
	const char *hosts;      /* content of /etc/hosts */
	const char *resolv;     /* content of /etc/resolv.conf */
	const char *workspace;  /* directory created if missing (e.g. /workspace) */
	/* With a disk limit: an attached loop device with an ext4 image that
	 * holds upper/ and work/, mounted (privately) on disk_mnt first. */
	const char *disk_dev;
	const char *disk_mnt;
	/* With a user namespace: the image is mounted idmapped through it on
	 * lower_mnt, and what we create belongs to root_uid/root_gid, the host
	 * ids of the sandbox's root. Without: userns_fd is -1 and both are 0. */
	int userns_fd;
	const char *lower_mnt;
	uid_t root_uid;
	gid_t root_gid;
};

/* Only the merged root: the disk image, the idmapped image and the overlay
 * on cfg->mountpoint, in the caller's (private) mount namespace. Used by
 * setup, and to reach a stopped sandbox's files. */
int sbx_rootfs_mount_overlay(const struct sbx_rootfs_config *cfg, sbx_error **err);

/* Everything up to and including pivot_root; afterwards "/" is the sandbox. */
int sbx_rootfs_setup(const struct sbx_rootfs_config *cfg, sbx_error **err);

#endif
