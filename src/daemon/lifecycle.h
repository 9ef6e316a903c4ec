/* What the daemon does with its sandboxes over time (lifecycle.c): start,
 * stop, delete, pause, the once-a-second policies, recovery at start. */
#ifndef SBX_LIFECYCLE_H
#define SBX_LIFECYCLE_H

#include "registry/sandbox.h"

/* Where sandboxes live, for the box model: set up before recovery. */
void sbx_sandboxes_host_init(struct sbx_daemon *d);
/* Load every sandbox from the state dir and reconcile with the kernel. */
int sbx_sandboxes_recover(struct sbx_daemon *d, sbx_error **err);

/* A create's parameters, checked by the method. */
struct sbx_sandbox_spec {
	const char *name; /* NULL: its id */
	struct sbx_image *image;
	const char *user, *workdir;
	const char *hostname; /* NULL: its name */
	const char *netmode;  /* "bridge" or "none" */
	const char *seccomp;  /* "default", "unconfined" or a profile path */
	struct sbx_kvlist *labels;   /* taken */
	const struct sbx_kvlist *env;
	struct sbx_sandbox_net *net; /* public and egress lists; taken */
	int64_t auto_stop_min, auto_archive_min, auto_delete_min;
	bool ephemeral, start;
	struct sbx_resources res;
	uint32_t userns_base; /* 0: no user namespace */
	uint64_t caps;
	char *const *service; /* argv started at each start, or NULL */
};
/* How a start (or a create that starts) ended: sb runs, or err (the
 * callee's) says why not (sb is NULL for a create, whose sandbox is then
 * gone). */
typedef void (*sbx_start_done_fn)(struct sbx_sandbox *sb, sbx_error *err, void *data);
/* A new sandbox: its address, seccomp program, box (state directory,
 * writable layer, disk), sandbox.json, egress rules, then its start when
 * asked; done is called when it is over (at once without a start). A
 * failure returned here calls nothing; on any failure nothing of the
 * sandbox is left. */
int sbx_sandbox_create(struct sbx_daemon *d, struct sbx_sandbox_spec *spec, sbx_start_done_fn done, void *data,
		       sbx_error **err);
/* Start a stopped sandbox. Its init's set-up goes on in the loop, however
 * long a busy host makes it (bounded by SBX_INIT_SETUP_TIMEOUT_MS): done
 * is called once it is over, never from inside this call; a failure
 * before that is returned here. Meanwhile the sandbox is starting
 * (sb->start): stops and deletes wait for the start, the rest is refused. */
int sbx_sandbox_start(struct sbx_sandbox *sb, sbx_start_done_fn done, void *data, sbx_error **err);
/* Stops asynchronously; req (may be NULL) is answered when it is done;
 * on a starting sandbox, once the start is over.
 * With delete_after (or a policy that deletes on stop) the intent to delete
 * is saved first; when that fails, req gets the error and nothing stops. */
void sbx_sandbox_stop(struct sbx_sandbox *sb, int64_t timeout_ms, struct sbx_request *req, bool delete_after);
/* Removes every trace of a stopped sandbox. */
int sbx_sandbox_destroy(struct sbx_sandbox *sb, sbx_error **err);
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

#endif
