/* Sandboxes as the daemon tracks them: the record of each (struct
 * sbx_sandbox), the registry that finds them (sandboxes.c) and their
 * persisted and protocol form (record.c). What the daemon does with them
 * over time is in lifecycle.h. */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include "daemon.h"
#include "net.h"

enum sbx_state {
	SBX_STATE_CREATING,
	SBX_STATE_STARTED,
	SBX_STATE_PAUSED,
	SBX_STATE_STOPPED,
	SBX_STATE_ERROR,
	/* A stopped sandbox whose writable layer is packed away (archive.h). */
	SBX_STATE_ARCHIVING,
	SBX_STATE_ARCHIVED,
	SBX_STATE_RESTORING,
};

struct sbx_exec;
struct sbx_waiter;
struct sbx_command;
struct sbx_session;
struct sbx_spawn_pending;
struct sbx_start;

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
	struct sbx_sandbox *next, **pprev; /* the registry's list; pprev NULL when not in it */
	struct sbx_daemon *d;
	int refs;
	char id[13];
	char *name;
	char *image;    /* image name at creation */
	char *image_id; /* the image's directory */
	char *network_mode;
	char **service;      /* argv started at each start (the image's Entrypoint + Cmd), or NULL */
	char service_cmd[13]; /* the command it last ran as, or "" */
	struct sbx_kvlist labels;
	enum sbx_state state;
	int64_t created_ns, started_ns, activity_ns;
	int64_t auto_stop_min, auto_archive_min, auto_delete_min;
	/* archive.c: its archive's size and the file bytes in it, when made */
	int64_t archive_bytes, archive_layer_bytes, archived_ns;
	int64_t archive_started_ns, archive_retry_ns; /* the policy waits for the retry after a failure */
	int snapshots; /* snapshots of it being made (snapshots.c) */
	bool ephemeral;
	struct sbx_resources res; /* as the protocol gives them; the box has them as limits */
	int64_t oom_seen; /* oom_kill count already logged */
	char *seccomp;          /* "default", "unconfined" or a profile path */
	struct sbx_bpf filter;  /* compiled profile when it is not the default */
	struct sbx_box *box;    /* hostname, user, workdir, env, ids, caps, cgroup, init */
	struct sbx_start *start; /* a start under way (lifecycle.c) */
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
	struct sbx_watch *empty_w; /* its cgroup.events, while the stop waits for the group to empty */
	int empty_fd;              /* valid while empty_w is set */
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
/* Known from now on (found by id and name, in constant time);
 * sbx_sandbox_remove forgets it. The registry holds one reference, which
 * the delete drops. */
int sbx_sandbox_add(struct sbx_daemon *d, struct sbx_sandbox *sb, sbx_error **err);
void sbx_sandbox_remove(struct sbx_sandbox *sb);



void sbx_resources_to_limits(struct sbx_daemon *d, const struct sbx_resources *r, struct sbx_limits *l);
/* A process could not be made in the sandbox (err holds the failure): at
 * its pids limit, err becomes a limit error that says so and how to get
 * out; otherwise it is left as it is. */
void sbx_sandbox_explain_fork_failure(struct sbx_sandbox *sb, sbx_error **err);

/* A project id for a new sandbox's writable layer. */
uint32_t sbx_projid_allocate(struct sbx_daemon *d, const char *id);
/* A free 65536-id range for a new sandbox; 0 when the pool is exhausted. */
uint32_t sbx_userns_allocate(struct sbx_daemon *d);
/* The seccomp program for a sandbox's processes (NULL for unconfined),
 * compiling a profile file when needed, and given to its box; fails
 * closed. */
int sbx_sandbox_filter(struct sbx_sandbox *sb, const struct sbx_bpf **out, sbx_error **err);


/* Is any sandbox using this image? */
bool sbx_image_in_use(struct sbx_daemon *d, const char *image_id);

/* The environment of a command: defaults, the sandbox's env, then extra. */
char **sbx_sandbox_env(struct sbx_sandbox *sb, const struct sbx_kvlist *extra);
/* KEY=VALUE strings of a map (NULL-terminated; sbx_box_strv_free). */
char **sbx_kvlist_to_env(const struct sbx_kvlist *l);

/* ---- record.c ---- */

/* The sandbox object of the protocol. */
void sbx_sandbox_gen(yajl_gen g, struct sbx_sandbox *sb);
/* sandbox.json: the object and what the daemon needs after a restart. */
int sbx_sandbox_save(struct sbx_sandbox *sb, sbx_error **err);
/* A sandbox from sandboxes/<id>/: sandbox.json, then the box's state file
 * (made from sandbox.json when an earlier version left none). Not added
 * to the registry. */
struct sbx_sandbox *sbx_sandbox_load(struct sbx_daemon *d, const char *id, sbx_error **err);
/* Parse a "resources" object over the values in *io (which it updates). */
int sbx_resources_parse(yajl_val obj, struct sbx_resources *io, sbx_error **err);
/* "network", "ports" and "public" of the sandbox object. */
void sbx_net_gen(yajl_gen g, struct sbx_sandbox *sb);
/* The array of its published ports (also net.ports). */
void sbx_net_gen_ports(yajl_gen g, struct sbx_sandbox *sb);
/* allow_out / deny_out of a "network" object into io (create, update). */
int sbx_net_parse_egress(yajl_val net, struct sbx_sandbox_net *io, sbx_error **err);
/* From a saved sandbox object: address, lists, ports (listeners opened
 * later by sbx_net_recover), public. */
void sbx_net_load(struct sbx_sandbox *sb, yajl_val obj);

#endif
