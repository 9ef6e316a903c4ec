/* Sandboxes as the daemon tracks them: lifecycle (create, start, stop,
 * delete), persistence, recovery after a restart, and running execs. */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include "daemon.h"
#include "net.h"

enum sbx_state { SBX_STATE_CREATING, SBX_STATE_STARTED, SBX_STATE_PAUSED, SBX_STATE_STOPPED, SBX_STATE_ERROR };

struct sbx_exec;
struct sbx_waiter;
struct sbx_command;
struct sbx_session;
struct sbx_spawn_pending;

/* What a sandbox may use; 0 means unlimited. */
struct sbx_resources {
	double cpus;
	int64_t memory_mb;
	int64_t pids;
	int64_t disk_mb;
};

struct fs_job;

/* A sandbox as the daemon tracks it: its record (name, image, labels,
 * policies, state as the protocol tells it), what the daemon does with it
 * (references, waiters, timers, file calls, commands, sessions), and the
 * sandbox itself, the box (lib/box.h), which holds what it is and runs. */
struct sbx_sandbox {
	struct sbx_sandbox *next;
	struct sbx_daemon *d;
	int refs;
	char id[13];
	char *name;
	char *image;    /* image name at creation */
	char *image_id; /* the image's directory */
	char *network_mode;
	struct sbx_kvlist labels;
	enum sbx_state state;
	int64_t created_ns, started_ns, activity_ns;
	int64_t auto_stop_min, auto_archive_min, auto_delete_min;
	bool ephemeral;
	struct sbx_resources res; /* as the protocol gives them; the box has them as limits */
	int64_t oom_seen; /* oom_kill count already logged */
	char *seccomp;          /* "default", "unconfined" or a profile path */
	struct sbx_bpf filter;  /* compiled profile when it is not the default */
	struct sbx_box *box;    /* hostname, user, workdir, env, ids, caps, cgroup, init */
	struct sbx_watch *init_w;
	uint64_t pruned_seq; /* the box's exec_seq when the tick last pruned exec and command groups */
	bool prune_again;    /* that left busy groups, or a command's group outlived it */
	int fs_offline; /* fs calls on the stopped root, running or waiting */
	/* Only one of them at a time mounts the overlay: two overlays on one
	 * upper and work directory undo each other's work directory. */
	bool fs_offline_busy;
	struct fs_job *fs_offline_queue; /* waiting, in order (rpc/fs.c) */
	struct sbx_exec *execs;
	struct sbx_command *commands; /* background commands, running or ended */
	struct sbx_spawn_pending *spawning; /* commands being set up (command.c) */
	struct sbx_session *sessions;
	/* stopping */
	bool stopping;
	/* On disk before a stop that ends in a delete tears anything down:
	 * recovery finishes such a delete instead of finding a sandbox that
	 * seems to have stopped on its own. */
	bool delete_pending;
	bool deleted;
	struct sbx_waiter *waiters;
	struct sbx_watch *stop_timer;
	struct sbx_watch *empty_timer;
	int empty_tries;
	struct sbx_watch *kill_timer; /* init not gone yet after the kill */
	int kill_checks;
	/* network (net.c) */
	struct sbx_sandbox_net net;
};

const char *sbx_state_name(enum sbx_state s);
int sbx_state_parse(const char *s, enum sbx_state *out);

struct sbx_sandbox *sbx_sandbox_find(struct sbx_daemon *d, const char *id_or_name);
/* Lookup from params["sandbox"], filling a not-found error with a hint. */
struct sbx_sandbox *sbx_sandbox_from_params(struct sbx_request *req, sbx_error **err);
void sbx_sandbox_ref(struct sbx_sandbox *sb);
void sbx_sandbox_unref(struct sbx_sandbox *sb);
size_t sbx_sandbox_count(struct sbx_daemon *d, bool started_only);

int sbx_sandbox_save(struct sbx_sandbox *sb, sbx_error **err);
/* Load every sandbox from the state dir and reconcile with the kernel. */
int sbx_sandboxes_recover(struct sbx_daemon *d, sbx_error **err);

int sbx_sandbox_start(struct sbx_sandbox *sb, sbx_error **err);
/* Stops asynchronously; req (may be NULL) is answered when it is done.
 * With delete_after (or a policy that deletes on stop) the intent to delete
 * is saved first; when that fails, req gets the error and nothing stops. */
void sbx_sandbox_stop(struct sbx_sandbox *sb, int64_t timeout_ms, struct sbx_request *req, bool delete_after);
/* Removes every trace of a stopped sandbox. */
int sbx_sandbox_destroy(struct sbx_sandbox *sb, sbx_error **err);

void sbx_sandbox_gen(yajl_gen g, struct sbx_sandbox *sb);

/* Parse a "resources" object over the values in *io (which it updates). */
int sbx_resources_parse(yajl_val obj, struct sbx_resources *io, sbx_error **err);
void sbx_resources_to_limits(struct sbx_daemon *d, const struct sbx_resources *r, struct sbx_limits *l);
/* A process could not be made in the sandbox (err holds the failure): at
 * its pids limit, err becomes a limit error that says so and how to get
 * out; otherwise it is left as it is. */
void sbx_sandbox_explain_fork_failure(struct sbx_sandbox *sb, sbx_error **err);
/* Send sig to every process of a running sandbox but its init, so that a
 * sandbox full of processes (at its pids limit, say) can be helped without
 * a stop. Returns how many were signalled. */
int sbx_sandbox_signal_all(struct sbx_sandbox *sb, int sig, sbx_error **err);
/* Freeze or thaw; pause keeps memory, processes stop running. */
int sbx_sandbox_pause(struct sbx_sandbox *sb, bool pause, sbx_error **err);
/* Once a second: notice OOM kills and log them. */
void sbx_sandboxes_watch_oom(struct sbx_daemon *d);
/* Once a second: OOM watch, auto-stop and auto-delete. */
void sbx_sandboxes_tick(struct sbx_daemon *d);

/* A project id for a new sandbox's writable layer. */
uint32_t sbx_projid_allocate(struct sbx_daemon *d, const char *id);
/* A free 65536-id range for a new sandbox; 0 when the pool is exhausted. */
uint32_t sbx_userns_allocate(struct sbx_daemon *d);
/* The seccomp program for a sandbox's processes (NULL for unconfined),
 * compiling a profile file when needed, and given to its box; fails
 * closed. */
int sbx_sandbox_filter(struct sbx_sandbox *sb, const struct sbx_bpf **out, sbx_error **err);

/* Where sandboxes live, for the box model: set up before recovery. */
void sbx_sandboxes_host_init(struct sbx_daemon *d);

/* Is any sandbox using this image? */
bool sbx_image_in_use(struct sbx_daemon *d, const char *image_id);

/* The environment of a command: defaults, the sandbox's env, then extra. */
char **sbx_sandbox_env(struct sbx_sandbox *sb, const struct sbx_kvlist *extra);
/* KEY=VALUE strings of a map (NULL-terminated; sbx_box_strv_free). */
char **sbx_kvlist_to_env(const struct sbx_kvlist *l);

#endif
