/* cgroup v2 (unified) groups for sandboxes: where they live, creating them,
 * killing everything inside, removing them. On hybrid hosts the unified
 * hierarchy has no controllers but still tracks, freezes and kills. */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

enum sbx_cgroup_mode { SBX_CGROUP_V2, SBX_CGROUP_HYBRID, SBX_CGROUP_V1 };

struct sbx_cgroup_root {
	enum sbx_cgroup_mode mode;
	char *mount;  /* where the unified hierarchy is mounted */
	char *base;   /* path below mount that holds sandbox groups, no leading '/' */
	int mount_fd; /* O_PATH of mount */
	int base_fd;  /* O_DIRECTORY of mount/base */
};

const char *sbx_cgroup_mode_name(enum sbx_cgroup_mode mode);

/* Find the unified hierarchy and settle the base group. With parent NULL the
 * base is "sandboxd" when the caller sits in the root group; otherwise the
 * caller's own (delegated) group, after moving the caller into a leaf
 * "supervisor" child so that the no-internal-processes rule holds. */
int sbx_cgroup_root_init(struct sbx_cgroup_root *root, const char *parent, sbx_error **err);
void sbx_cgroup_root_fini(struct sbx_cgroup_root *root);

/* Group paths are relative to root->mount, e.g. "sandboxd/sbx-3fa9c2e1b07d". */
int sbx_cgroup_create(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* O_DIRECTORY fd of a group, usable with CLONE_INTO_CGROUP. */
int sbx_cgroup_open(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* SIGKILL every process in the group and its descendants. */
int sbx_cgroup_kill(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* 1 if any process is in the group or below, 0 if empty, -1 on error. */
int sbx_cgroup_populated(struct sbx_cgroup_root *root, const char *path);
/* Remove the group and all child groups (they must be empty). ENOENT is success. */
int sbx_cgroup_remove(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* Remove empty child groups whose names start with prefix; keeps busy ones. */
void sbx_cgroup_prune_children(struct sbx_cgroup_root *root, const char *path, const char *prefix);

#endif
