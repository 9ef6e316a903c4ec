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
	/* With a user namespace: its IPC and UTS namespaces
	 * (sbx_userns_create_ns), joined before anything is mounted. */
	int ipc_ns_fd, uts_ns_fd;
};

struct sbx_spawned {
	pid_t pid;
	int pidfd;
	int tty_fd; /* sbx_spawn_exec with tty: the terminal's master, else -1 */
	uint64_t starttime; /* /proc/PID/stat field 22, to recognise it after a restart */
};

/* How long init's set-up may take (its report ends at its exec). A busy
 * host makes it take seconds; the bound only ends a set-up stuck for good. */
#define SBX_INIT_SETUP_TIMEOUT_MS (60 * 1000)

/* Start init and wait for its set-up, at most SBX_INIT_SETUP_TIMEOUT_MS. */
int sbx_spawn_init(const struct sbx_init_config *cfg, struct sbx_spawned *out, sbx_error **err);

/* The same in steps, for a caller that watches the report from its own
 * loop: begin clones init (the caller owns st until finish or abort);
 * read takes what the report holds without blocking (1 once it has
 * ended: init exec'd or failed); finish turns it into the running init
 * (out) or the error that ended its set-up; abort kills and reaps init. */
struct sbx_init_setup {
	int report_fd; /* non-blocking; watch it for reading until end of file */
	int pidfd;
	pid_t pid;
	bool eof;
	size_t len;
	char text[1024];
};
int sbx_spawn_init_begin(const struct sbx_init_config *cfg, struct sbx_init_setup *st, sbx_error **err);
int sbx_spawn_init_read(struct sbx_init_setup *st);
int sbx_spawn_init_finish(struct sbx_init_setup *st, struct sbx_spawned *out, sbx_error **err);
void sbx_spawn_init_abort(struct sbx_init_setup *st);

/* A child cloned with CLONE_FILES starts on its parent's descriptor table
 * and first trades it for a copy of the low numbers only (sbx_fdhold_
 * unshare): a copy of the whole table, a descriptor per sandbox, made and
 * closed again in every exec, made exec time grow with the number of
 * sandboxes. Until the child has its own table, the parent must neither
 * close nor reuse what the child needs, so it hands the child copies made
 * before the clone, at low numbers, and closes them (release) only once
 * the child has said something or is gone. */
struct sbx_fdhold {
	int fds[24];
	int n;
	int top; /* the highest copy */
};
/* Replace *fd (if >= 0) by a copy held in h; -1 and errno when it fails. */
int sbx_fdhold_add(struct sbx_fdhold *h, int *fd);
/* In the parent: close what h holds. */
void sbx_fdhold_release(struct sbx_fdhold *h);
/* In the child, first of all: a table of its own with the numbers up to
 * h->top only (the whole table where CLOSE_RANGE_UNSHARE is missing). */
int sbx_fdhold_unshare(const struct sbx_fdhold *h);

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

/* How long a command's set-up may take when nothing else bounds it. On a
 * busy host, or in a sandbox whose own processes use all of its CPU share,
 * joining the namespaces and exec'ing can take many seconds: the bound is
 * only there so that a set-up stuck for good ends with an error. */
#define SBX_EXEC_SETUP_TIMEOUT_MS (300 * 1000)

/* The command runs as a child of the caller (so the caller reaps it and
 * learns its exit status) inside the sandbox's namespaces and cgroup. A
 * helper process joins the sandbox and clones the command; both report on
 * a socket, which reaches end of file once the command has exec'd (or
 * failed). The caller drives a set-up step by step, from an event loop or
 * a poll of its own, and bounds it as it sees fit: */
struct sbx_exec_setup {
	int report_fd;    /* non-blocking; watch it for reading until end of file */
	int helper_pidfd; /* watch it for its exit; -1 once reaped */
	pid_t cmd_pid;    /* the command, once the helper has told; 0 before */
	int tty_fd;       /* a terminal's master that came with the report */
	struct sbx_fdhold held; /* what the helper needs, until it has said something or is gone */
	bool tty, eof;
	size_t len;
	char text[1024];
};

/* Clone the helper. On success the caller owns st until finish or abort. */
int sbx_spawn_exec_begin(const struct sbx_exec_config *cfg, struct sbx_exec_setup *st, sbx_error **err);

/* In a child: close every descriptor above 2 but those in keep (at most
 * 32; negative ones are ignored). */
void sbx_close_all_but(const int *keep, size_t n);
/* Read what the report holds, without blocking: 1 at its end, else 0. */
int sbx_spawn_exec_read(struct sbx_exec_setup *st);
/* Reap the helper if it has exited: true once it is gone. */
bool sbx_spawn_exec_helper_gone(struct sbx_exec_setup *st);
/* After the report's end and the helper's: the command (out) or the error
 * that ended its set-up. Releases st either way. A command killed during
 * its set-up (a timeout's cgroup.kill) is returned like any other: its
 * pidfd then tells how it ended. */
int sbx_spawn_exec_finish(struct sbx_exec_setup *st, struct sbx_spawned *out, sbx_error **err);
/* Give up on a set-up: kill and reap the helper and the command (if it
 * was cloned), release st. Blocks only while they die. */
void sbx_spawn_exec_abort(struct sbx_exec_setup *st);

/* Start time of a process from /proc, 0 if it does not exist. */
uint64_t sbx_proc_starttime(pid_t pid);

/* Copy the init binary into a sealed, executable memfd (see CVE-2019-5736). */
int sbx_init_exe_load(const char *path, sbx_error **err);
/* The same for any binary, with a name for the memfd. */
int sbx_sealed_copy(const char *path, const char *name, sbx_error **err);

#endif
