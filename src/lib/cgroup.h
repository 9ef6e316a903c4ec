/* cgroup v2 (unified) groups for sandboxes: where they live, creating them,
 * killing everything inside, removing them. On hybrid hosts the unified
 * hierarchy has no controllers but still tracks, freezes and kills. */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

enum sbx_cgroup_mode { SBX_CGROUP_V2, SBX_CGROUP_HYBRID, SBX_CGROUP_V1 };

/* Controllers sandboxd uses for limits. */
enum sbx_ctrl { SBX_CTRL_CPU, SBX_CTRL_MEMORY, SBX_CTRL_PIDS, SBX_CTRL_COUNT };

struct sbx_cgroup_root {
	enum sbx_cgroup_mode mode;
	char *mount;  /* where the unified hierarchy is mounted */
	char *base;   /* path below mount that holds sandbox groups, no leading '/' */
	int mount_fd; /* O_PATH of mount */
	int base_fd;  /* O_DIRECTORY of mount/base */
	/* Which controllers can limit a sandbox, and where (v2: in base's
	 * subtree_control; hybrid: a v1 hierarchy with our own base group). */
	bool ctrl[SBX_CTRL_COUNT];
	int v1_fd[SBX_CTRL_COUNT]; /* hybrid: O_DIRECTORY of the v1 base group, else -1 */
	char *v1_path[SBX_CTRL_COUNT];
	bool swap_files; /* memory.swap.max / memory.memsw.* exist */
	bool own_base;   /* we made base ourselves (not a delegated group) */
	char *name;      /* leaf name of our base groups, e.g. "sandboxd" */
};

/* Limits of one sandbox; 0 means unlimited. */
struct sbx_limits {
	double cpus;          /* fractions allowed: 0.5 is half a core */
	int64_t memory_bytes;
	int64_t pids;
	bool allow_swap;
};

struct sbx_cgroup_stats {
	int64_t cpu_usage_us;
	int64_t memory_bytes;
	int64_t memory_peak_bytes;
	int64_t memory_max_bytes; /* 0: unlimited */
	int64_t pids;
	int64_t oom_kills;
};

const char *sbx_ctrl_name(enum sbx_ctrl c);

const char *sbx_cgroup_mode_name(enum sbx_cgroup_mode mode);

/* Find the unified hierarchy and settle the base group. With parent NULL the
 * base is "sandboxd" when the caller sits in the root group; otherwise the
 * caller's own (delegated) group, after moving the caller into a leaf
 * "supervisor" child so that the no-internal-processes rule holds. name
 * replaces "sandboxd" so that daemons with different state dirs do not
 * share groups. */
int sbx_cgroup_root_init(struct sbx_cgroup_root *root, const char *parent, const char *name, sbx_error **err);
void sbx_cgroup_root_fini(struct sbx_cgroup_root *root);
/* At clean shutdown: remove base groups we made, if nothing is left in them. */
void sbx_cgroup_root_cleanup(struct sbx_cgroup_root *root);

/* Group paths are relative to root->mount, e.g. "sandboxd/sbx-3fa9c2e1b07d". */
int sbx_cgroup_create(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* O_DIRECTORY fd of a group, usable with CLONE_INTO_CGROUP. */
int sbx_cgroup_open(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* SIGKILL every process in the group and its descendants. */
int sbx_cgroup_kill(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* Send sig to every process of the group and of the groups below it but
 * spare (a sandbox's init). Forks race the walk, so it goes in rounds until
 * one finds no process it has not signalled yet; SIGKILL also goes to each
 * child group through cgroup.kill. Returns how many were signalled. */
int sbx_cgroup_signal_all(struct sbx_cgroup_root *root, const char *path, int sig, pid_t spare, sbx_error **err);
/* Call fn for every process of the group and of the groups below it. */
int sbx_cgroup_for_each_proc(struct sbx_cgroup_root *root, const char *path, void (*fn)(int pid, void *arg),
			     void *arg, sbx_error **err);
/* Kill, then wait up to timeout_ms for the group to empty, killing again
 * now and then (a process may be forking as the kill lands). Blocks: for
 * start-up and recovery, not for the event loop. */
int sbx_cgroup_kill_wait(struct sbx_cgroup_root *root, const char *path, int timeout_ms, sbx_error **err);
/* 1 if any process is in the group or below, 0 if empty, -1 on error. */
int sbx_cgroup_populated(struct sbx_cgroup_root *root, const char *path);
/* A descriptor of the group's cgroup.events, for a loop to wait on instead
 * of polling: it polls EPOLLPRI when the events change (the group's
 * population among them), until read again with
 * sbx_cgroup_events_populated, which tells what sbx_cgroup_populated does. */
int sbx_cgroup_events_open(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
int sbx_cgroup_events_populated(int fd);
/* Remove the group and all child groups (they must be empty). ENOENT is success. */
int sbx_cgroup_remove(struct sbx_cgroup_root *root, const char *path, sbx_error **err);
/* Remove empty child groups whose names start with prefix; keeps busy ones
 * and returns how many it kept. */
int sbx_cgroup_prune_children(struct sbx_cgroup_root *root, const char *path, const char *prefix);

/* Refuse limits this host cannot enforce (SBX_ERR_UNSUPPORTED). */
int sbx_cgroup_limits_check(const struct sbx_cgroup_root *root, const struct sbx_limits *l, sbx_error **err);
/* Write limits to a sandbox group (and its v1 twins on hybrid hosts),
 * creating the v1 groups if needed. Safe to call again to change them. */
int sbx_cgroup_apply(struct sbx_cgroup_root *root, const char *path, const struct sbx_limits *l, sbx_error **err);
/* Hybrid hosts: open the cgroup.procs files of the v1 groups so that a
 * child can move itself in ("0") before it runs anything of the sandbox.
 * fds[] gets -1 where there is nothing to join. */
int sbx_cgroup_v1_open_procs(struct sbx_cgroup_root *root, const char *path, int fds[SBX_CTRL_COUNT],
			     sbx_error **err);
/* Freeze or thaw every process of the group; waits briefly for the state. */
int sbx_cgroup_freeze(struct sbx_cgroup_root *root, const char *path, bool frozen, sbx_error **err);
int sbx_cgroup_stats(struct sbx_cgroup_root *root, const char *path, struct sbx_cgroup_stats *st);

#endif
