/* Starting a sandbox's init with clone3 in fresh namespaces, and joining a
 * running sandbox to exec a command. The only places sandboxd forks into a
 * sandbox; both report setup failures back through a pipe as text. */
#ifndef SBX_SPAWN_H
#define SBX_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "rootfs.h"
#include "seccomp_filter.h"

struct sbx_init_config {
	struct sbx_rootfs_config rootfs;
	int cgroup_fd;   /* CLONE_INTO_CGROUP target */
	int init_exe_fd; /* sealed memfd with the sandbox-init binary */
	const char *id;
	int v1_procs[SBX_CTRL_COUNT]; /* hybrid hosts: v1 groups to join first, or -1 */
	uint64_t caps;                /* capability set of the sandbox's root */
	const struct sbx_bpf *seccomp; /* NULL: no filter */
};

struct sbx_spawned {
	pid_t pid;
	int pidfd;
	int tty_fd; /* sbx_spawn_exec with tty: the terminal's master, else -1 */
	uint64_t starttime; /* /proc/PID/stat field 22, to recognise it after a restart */
};

int sbx_spawn_init(const struct sbx_init_config *cfg, struct sbx_spawned *out, sbx_error **err);

struct sbx_exec_config {
	int init_pidfd; /* namespaces are joined from this process */
	int cgroup_fd;  /* CLONE_INTO_CGROUP target for the new process */
	char *const *argv;
	char *const *envp;     /* complete environment; PATH is searched from it */
	const char *cwd;       /* absolute path inside the sandbox */
	const char *user;      /* user spec, see passwd.h */
	int stdio[3];          /* fds to become 0, 1, 2 */
	int v1_procs[SBX_CTRL_COUNT];
	bool userns;           /* the sandbox has a user namespace to join */
	uint64_t caps;
	const struct sbx_bpf *seccomp;
	/* A pseudo-terminal from the sandbox's own devpts becomes the command's
	 * controlling terminal and stdio (stdio[] is then ignored). */
	bool tty;
	unsigned short rows, cols;
	int extra_fd; /* > 2: becomes fd SBX_EXEC_EXTRA_FD in the command */
};

#define SBX_EXEC_EXTRA_FD 9

/* The command runs as a child of the caller (so the caller reaps it and
 * learns its exit status) inside the sandbox's namespaces and cgroup. */
int sbx_spawn_exec(const struct sbx_exec_config *cfg, struct sbx_spawned *out, sbx_error **err);

/* Start time of a process from /proc, 0 if it does not exist. */
uint64_t sbx_proc_starttime(pid_t pid);

/* Copy the init binary into a sealed, executable memfd (see CVE-2019-5736). */
int sbx_init_exe_load(const char *path, sbx_error **err);
/* The same for any binary, with a name for the memfd. */
int sbx_sealed_copy(const char *path, const char *name, sbx_error **err);

#endif
