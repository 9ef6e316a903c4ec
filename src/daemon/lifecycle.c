/* What the daemon does with its sandboxes over time, driving each one's
 * box (lib/box.h): start, the stop in steps watched by the loop (init's
 * pidfd and timers), delete, pause, the policies of the once-a-second tick
 * (auto-stop, auto-delete, OOM kills), and recovery after a restart. The
 * box and sandbox.json are the truth that survives a restart. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "command.h"
#include "exec.h"
#include "lifecycle.h"
#include "loopdevs.h"
#include "net.h"
#include "registry/images.h"
#include "registry/sandbox.h"
#include "session.h"
#include "trash.h"

/* How long a stop waits for init after the kill, twice (see kill_check). */
#define STOP_KILL_GRACE_MS 5000

struct sbx_waiter {
	struct sbx_waiter *next;
	struct sbx_request *req;
	bool delete_after;
};

static void init_exited(struct sbx_watch *w, uint32_t events, void *data);

static void watch_init(struct sbx_sandbox *sb)
{
	sb->init_w = sbx_loop_watch(sb->d->loop, sb->box->init_pidfd, EPOLLIN, init_exited, sb);
	if (!sb->init_w)
		sbx_warn("sandbox %s: cannot watch init: %m", sb->id);
}

static int loop_attach(void *ctx, const char *owner, const char *image, char devpath[32], sbx_error **err)
{
	return sbx_loopdevs_attach(ctx, owner, image, devpath, err);
}

static void loop_release(void *ctx, const char *owner)
{
	sbx_loopdevs_release(ctx, owner);
}

void sbx_sandboxes_host_init(struct sbx_daemon *d)
{
	d->box_host = (struct sbx_box_host){
		.cg = &d->cg,
		.state_fd = d->state_fd,
		.state_dir = d->cfg.state_dir,
		.run_fd = d->run_fd,
		.run_dir = d->cfg.run_dir,
		.init_exe_fd = d->init_exe_fd,
		.prjquota = d->prjquota,
		.allow_swap = d->cfg.allow_swap,
		.loop_attach = loop_attach,
		.loop_release = loop_release,
		.loop_ctx = d,
	};
}

/* What the next start of the box uses that may have changed since it was
 * made: its image's directories, the network's resolvers and link. */
static int prepare_start(struct sbx_sandbox *sb, sbx_error **err)
{
	struct sbx_daemon *d = sb->d;
	struct sbx_image *img = sbx_image_find(d, sb->image_id);
	if (!img)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "sandbox %s: its image '%s' was removed", sb->name,
				     sb->image);
	_cleanup_strv_ char **layers = sbx_image_lowerdirs(d, img);
	if (!layers)
		return sbx_error_errno(err, ENOMEM, "sandbox %s", sb->id);
	if (sbx_box_set_layers(sb->box, (const char *const *)layers, err) < 0)
		return sbx_error_prefix(err, "sandbox %s", sb->id);
	free(sb->box->resolv);
	sb->box->resolv = NULL;
	if (sb->net.ip.s_addr) {
		if (!sbx_net_available(d))
			return sbx_error_set(err, SBX_ERR_UNSUPPORTED,
					     "sandbox %s: start: bridge networking is unavailable on this host", sb->id);
		if (!(sb->box->resolv = sbx_net_resolv(d)))
			return sbx_error_errno(err, ENOMEM, "sandbox %s", sb->id);
		sbx_net_link(sb, &sb->box->net);
	}
	const struct sbx_bpf *filter = NULL;
	if (sbx_sandbox_filter(sb, &filter, err) < 0)
		return sbx_error_prefix(err, "sandbox %s", sb->id);
	return 0;
}

/* A stop or delete that came while the sandbox was starting: done once
 * the start is over, whichever way it went. */
struct stop_call {
	struct stop_call *next;
	int64_t timeout_ms;
	struct sbx_request *req;
	bool delete_after;
};

/* A start under way: init's set-up report watched in the loop. */
struct sbx_start {
	struct sbx_box_starting st;
	struct sbx_watch *w, *timer;
	sbx_start_done_fn done;
	void *data;
	struct stop_call *stops;
};

static void service_spawned(struct sbx_command *c, int attach_fd, sbx_error *err, void *data)
{
	struct sbx_sandbox *sb = data;
	(void)attach_fd;
	if (c && !sb->deleted) {
		snprintf(sb->service_cmd, sizeof(sb->service_cmd), "%s", c->id);
		sbx_sandbox_save(sb, NULL);
		sbx_info("sandbox %s (%s): service started as command %s, pid %d", sb->id, sb->name, c->id, (int)c->pid);
	} else if (err) {
		sbx_warn("sandbox %s (%s): service did not start: %s", sb->id, sb->name, err->msg);
	}
	sbx_error_free(err);
	sbx_sandbox_unref(sb);
}

/* The image's Entrypoint + Cmd, as a background command: its output kept
 * like process.spawn's, its exit in sandbox.inspect. Its end does not stop
 * the sandbox. */
static void start_service(struct sbx_sandbox *sb)
{
	if (!sb->service || !sb->service[0])
		return;
	struct sbx_kvlist none = { 0 };
	_cleanup_strv_ char **envp = sbx_sandbox_env(sb, &none);
	_cleanup_free_ char *cwd = sbx_box_cwd(sb->box, NULL);
	sbx_error *err = NULL;
	if (!envp || !cwd) {
		sbx_warn("sandbox %s: service: out of memory", sb->id);
		return;
	}
	struct sbx_spawn_opts o = {
		.argv = sb->service,
		.envp = envp,
		.cwd = cwd,
		.user = sb->box->user,
		.log_cap = sb->d->cfg.command_log_mb * 1024 * 1024,
	};
	sbx_sandbox_ref(sb);
	if (sbx_command_spawn(sb, &o, service_spawned, sb, &err) < 0) {
		sbx_warn("sandbox %s (%s): service did not start: %s", sb->id, sb->name, err->msg);
		sbx_error_free(err);
		sbx_sandbox_unref(sb);
	}
}

static void started(struct sbx_sandbox *sb)
{
	sb->state = SBX_STATE_STARTED;
	sb->delete_pending = false; /* a delete that failed after its stop */
	sb->oom_seen = 0; /* a new cgroup counts from zero */
	sb->started_ns = sb->activity_ns = sbx_now_ns();
	watch_init(sb);
	sbx_sandbox_save(sb, NULL);
	sbx_info("sandbox %s (%s) started, init pid %d", sb->id, sb->name, (int)sb->box->init_pid);
	start_service(sb);
	sbx_event_emit(sb->d, "started", sb, NULL);
}

static void start_complete(struct sbx_sandbox *sb, bool timed_out)
{
	struct sbx_start *s = sb->start;
	sbx_loop_unwatch(s->w);
	sbx_loop_unwatch(s->timer);
	sbx_error *err = NULL;
	if (timed_out) {
		sbx_box_start_abort(sb->box, &s->st);
		sbx_error_set(&err, SBX_ERR_TIMEOUT, "sandbox %s: start: sandbox init did not start within %d s", sb->id,
			      SBX_INIT_SETUP_TIMEOUT_MS / 1000);
	} else if (sbx_box_start_finish(sb->box, &s->st, &err) == 0) {
		started(sb);
	}
	sb->start = NULL;
	struct stop_call *stops = s->stops;
	sbx_start_done_fn done = s->done;
	void *data = s->data;
	free(s);
	done(sb, err, data);
	while (stops) {
		struct stop_call *c = stops;
		stops = c->next;
		if (sb->deleted) {
			if (c->req)
				sbx_reply_empty(c->req);
		} else {
			sbx_sandbox_stop(sb, c->timeout_ms, c->req, c->delete_after);
		}
		free(c);
	}
	sbx_sandbox_unref(sb);
}

static void start_report(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_sandbox *sb = data;
	if (sbx_box_start_read(&sb->start->st))
		start_complete(sb, false);
}

static void start_expired(struct sbx_watch *t, void *data)
{
	struct sbx_sandbox *sb = data;
	sb->start->timer = NULL;
	sbx_warn("sandbox %s: its init did not finish its set-up within %d s; killing it", sb->id,
		 SBX_INIT_SETUP_TIMEOUT_MS / 1000);
	start_complete(sb, true);
}

/* An archived sandbox's start: its layer comes back first. */
struct restore_then_start {
	sbx_start_done_fn done;
	void *data;
};

static void restored(struct sbx_sandbox *sb, sbx_error *err, void *data)
{
	struct restore_then_start *r = data;
	sbx_error *e = NULL;
	if (!err && sbx_sandbox_start(sb, r->done, r->data, &e) == 0) {
		free(r);
		return;
	}
	r->done(sb, err ? err : e, r->data);
	sbx_error_free(e);
	free(r);
}

int sbx_sandbox_start(struct sbx_sandbox *sb, sbx_start_done_fn done, void *data, sbx_error **err)
{
	struct sbx_daemon *d = sb->d;
	if (sb->state == SBX_STATE_ARCHIVING || sb->state == SBX_STATE_RESTORING)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s; try again when that is over", sb->name,
				     sbx_state_name(sb->state));
	if (sb->state == SBX_STATE_ARCHIVED) {
		struct restore_then_start *r = calloc(1, sizeof(*r));
		if (!r)
			return sbx_error_errno(err, ENOMEM, "sandbox %s: start", sb->id);
		r->done = done;
		r->data = data;
		if (sbx_sandbox_restore(sb, restored, r, err) < 0) {
			free(r);
			return -1;
		}
		return 0;
	}
	if (sb->start)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is starting; try again when it has started",
				     sb->name);
	if (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is already started", sb->name);
	if (sb->stopping)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is stopping; try again when it has stopped",
				     sb->name);
	/* Two overlays on one upper layer at once are undefined behaviour. */
	if (sb->fs_offline)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s: files are being accessed; try again", sb->name);
	struct sbx_start *s = calloc(1, sizeof(*s));
	if (!s)
		return sbx_error_errno(err, ENOMEM, "sandbox %s: start", sb->id);
	if (prepare_start(sb, err) < 0 || sbx_box_start_begin(sb->box, &s->st, err) < 0) {
		free(s);
		return -1;
	}
	/* init's set-up takes milliseconds, or seconds on a busy host: the
	 * loop goes on meanwhile, and the caller hears when it is over. */
	s->w = sbx_loop_watch(d->loop, s->st.init.report_fd, EPOLLIN, start_report, sb);
	s->timer = sbx_loop_timer(d->loop, SBX_INIT_SETUP_TIMEOUT_MS, start_expired, sb);
	if (!s->w || !s->timer) {
		sbx_loop_unwatch(s->w);
		sbx_loop_unwatch(s->timer);
		sbx_box_start_abort(sb->box, &s->st);
		free(s);
		return sbx_error_errno(err, ENOMEM, "sandbox %s: start: watch init", sb->id);
	}
	s->done = done;
	s->data = data;
	sb->start = s;
	sbx_sandbox_ref(sb);
	return 0;
}

/* The end of a create's start: a sandbox that did not start is removed. */
struct create_ctx {
	sbx_start_done_fn done;
	void *data;
};

static void create_started(struct sbx_sandbox *sb, sbx_error *err, void *data)
{
	struct create_ctx *c = data;
	if (err) {
		sbx_error *derr = NULL;
		if (!sb->deleted && sbx_sandbox_destroy(sb, &derr) < 0)
			sbx_warn("%s", derr->msg);
		sbx_error_free(derr);
		c->done(NULL, err, c->data);
	} else {
		sbx_info("sandbox %s (%s) created from image %s", sb->id, sb->name, sb->image);
		c->done(sb, NULL, c->data);
	}
	free(c);
}

int sbx_sandbox_create(struct sbx_daemon *d, struct sbx_sandbox_spec *spec, sbx_start_done_fn done, void *data,
		       sbx_error **err)
{
	struct sbx_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb) {
		sbx_error_errno(err, ENOMEM, "create");
		return -1;
	}
	sb->d = d;
	sb->refs = 1;
	do {
		if (sbx_random_id(sb->id, err) < 0) {
			sbx_sandbox_unref(sb);
			return -1;
		}
	} while (sbx_sandbox_find(d, sb->id));
	sb->name = strdup(spec->name ? spec->name : sb->id);
	sb->image = strdup(spec->image->name);
	sb->image_id = strdup(spec->image->id);
	if (spec->service && !(sb->service = sbx_strv_dup(spec->service))) {
		sbx_sandbox_unref(sb);
		return sbx_error_errno(err, ENOMEM, "create");
	}
	sb->network_mode = strdup(spec->netmode);
	sb->labels = *spec->labels;
	*spec->labels = (struct sbx_kvlist){ 0 };
	sb->auto_stop_min = spec->auto_stop_min;
	sb->auto_archive_min = spec->auto_archive_min;
	sb->auto_delete_min = spec->auto_delete_min;
	sb->ephemeral = spec->ephemeral;
	sb->res = spec->res;
	sb->seccomp = strdup(spec->seccomp);
	sb->state = SBX_STATE_CREATING;
	sb->created_ns = sb->activity_ns = sbx_now_ns();
	if (!sb->name || !sb->image || !sb->image_id || !sb->network_mode || !sb->seccomp) {
		sbx_sandbox_unref(sb);
		sbx_error_errno(err, ENOMEM, "create");
		return -1;
	}
	sb->net = *spec->net;
	*spec->net = (struct sbx_sandbox_net){ 0 };
	if (!strcmp(spec->netmode, "bridge") && sbx_net_allocate(d, &sb->net.ip, err) < 0) {
		sbx_sandbox_unref(sb);
		return -1;
	}
	/* A profile file is read and compiled now, so that a bad one fails the
	 * create with a clear error rather than the first start. */
	const struct sbx_bpf *filter;
	if (sbx_sandbox_filter(sb, &filter, err) < 0) {
		if ((*err)->code != SBX_ERR_NOT_FOUND && (*err)->code != SBX_ERR_DENIED) {
			sbx_error *perr = NULL;
			sbx_error_param(&perr, "seccomp_profile", "%s", (*err)->msg);
			sbx_error_free(*err);
			*err = perr;
		}
		sbx_sandbox_unref(sb);
		return -1;
	}
	/* The sandbox itself: its state directory, writable layer and disk. */
	/* A layered image's layers stay while the sandbox holds references
	 * to them, whatever becomes of the image. */
	if (sbx_image_ref_layers(d, spec->image, sb->id, err) < 0) {
		sbx_sandbox_unref(sb);
		return -1;
	}
	_cleanup_strv_ char **lower = sbx_image_lowerdirs(d, spec->image);
	char **envv = sbx_kvlist_to_env(spec->env);
	struct sbx_box_spec bspec = {
		.id = sb->id,
		.layers = (const char *const *)lower,
		.hostname = spec->hostname ? spec->hostname : sb->name,
		.workdir = spec->workdir,
		.user = spec->user,
		.env = (const char *const *)envv,
		.disk_mb = spec->res.disk_mb,
		.projid = spec->res.disk_mb > 0 && d->prjquota ? sbx_projid_allocate(d, sb->id) : 0,
		.userns_base = spec->userns_base,
		.caps = spec->caps,
	};
	sbx_resources_to_limits(d, &spec->res, &bspec.limits);
	if (sb->net.ip.s_addr)
		sbx_net_link(sb, &bspec.net);
	int built = lower && envv ? sbx_box_build(&d->box_host, &bspec, &sb->box, err)
				  : sbx_error_errno(err, ENOMEM, "create");
	sbx_box_strv_free(envv);
	if (built < 0) {
		sbx_layers_release_async(d, sb->id);
		sbx_sandbox_unref(sb);
		return -1;
	}
	sb->box->seccomp = filter;
	if (sbx_sandbox_save(sb, err) < 0 || sbx_sandbox_add(d, sb, err) < 0) {
		sbx_box_destroy(sb->box, NULL, NULL);
		sbx_layers_release_async(d, sb->id);
		sbx_sandbox_unref(sb);
		return -1;
	}
	/* Its own egress rules exist before anything in it runs. */
	if ((sb->net.n_allow || sb->net.n_deny) && sbx_net_apply_rules(d, err) < 0) {
		sbx_error *derr = NULL;
		if (sbx_sandbox_destroy(sb, &derr) < 0)
			sbx_warn("%s", derr->msg);
		sbx_error_free(derr);
		return -1;
	}
	sbx_event_emit(d, "created", sb, NULL);
	if (spec->start) {
		struct create_ctx *c = calloc(1, sizeof(*c));
		if (c) {
			c->done = done;
			c->data = data;
		}
		if (!c || sbx_sandbox_start(sb, create_started, c, err) < 0) {
			if (!c)
				sbx_error_errno(err, ENOMEM, "create");
			free(c);
			sbx_error *derr = NULL;
			if (sbx_sandbox_destroy(sb, &derr) < 0)
				sbx_warn("%s", derr->msg);
			sbx_error_free(derr);
			return -1;
		}
		return 0;
	}
	sb->state = SBX_STATE_STOPPED;
	sbx_sandbox_save(sb, NULL);
	sbx_info("sandbox %s (%s) created from image %s", sb->id, sb->name, sb->image);
	done(sb, NULL, data);
	return 0;
}

static void answer_waiters(struct sbx_sandbox *sb, sbx_error *err);

/* Last step of a stop: the cgroup is empty (or we gave up waiting). */
static void stop_finish(struct sbx_sandbox *sb)
{
	struct sbx_daemon *d = sb->d;
	sbx_error *err = NULL;
	if (sbx_box_stopped(sb->box, &err) < 0) {
		sbx_warn("sandbox %s: %s", sb->id, err->msg);
		sbx_error_free(err);
		err = NULL;
	}
	sbx_net_detach(sb);
	sbx_sessions_end(sb);
	sb->stopping = false;
	sb->state = SBX_STATE_STOPPED;
	sb->activity_ns = sbx_now_ns(); /* auto_delete_min counts from here */
	if (!sb->deleted)
		sbx_sandbox_save(sb, NULL);
	sbx_info("sandbox %s (%s) stopped", sb->id, sb->name);
	sbx_event_emit(d, "stopped", sb, NULL);
	answer_waiters(sb, NULL);
}

/* The wait for a killed group to empty: its cgroup.events is watched, so
 * the stop ends as soon as the last process has gone; every half second
 * what is left is killed again (a process may have been forking as the
 * kill landed), and after 5 s the stop ends without waiting any more. */
#define EMPTY_KILL_MS 500
#define EMPTY_KILLS 10

static void empty_done(struct sbx_sandbox *sb)
{
	if (sb->empty_w) {
		sbx_loop_unwatch(sb->empty_w);
		sb->empty_w = NULL;
		sbx_closep(&sb->empty_fd);
	}
	if (sb->empty_timer) {
		sbx_loop_unwatch(sb->empty_timer);
		sb->empty_timer = NULL;
	}
	stop_finish(sb);
	sbx_sandbox_unref(sb);
}

static void empty_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_sandbox *sb = data;
	if (sbx_box_events_populated(sb->empty_fd) > 0)
		return;
	empty_done(sb);
}

static void empty_timeout(struct sbx_watch *t, void *data)
{
	struct sbx_sandbox *sb = data;
	sb->empty_timer = NULL;
	int populated = sbx_box_populated(sb->box);
	if (populated > 0 && ++sb->empty_tries < EMPTY_KILLS) {
		sbx_box_kill(sb->box);
		sb->empty_timer = sbx_loop_timer(sb->d->loop, EMPTY_KILL_MS, empty_timeout, sb);
		if (sb->empty_timer)
			return;
	}
	if (populated > 0)
		sbx_warn("sandbox %s: processes linger in cgroup %s after kill", sb->id, sb->box->cgroup);
	empty_done(sb);
}

/* Takes a reference, which the end of the wait drops. */
static void empty_wait(struct sbx_sandbox *sb, bool abandoned)
{
	sbx_sandbox_ref(sb);
	sb->empty_tries = 0;
	/* Usually empty already: look now, and wait only if it is not. An
	 * abandoned init is still in the group: one look, no waiting. */
	int populated = sbx_box_populated(sb->box);
	if (populated <= 0 || abandoned) {
		if (populated > 0)
			sbx_warn("sandbox %s: processes linger in cgroup %s after kill", sb->id, sb->box->cgroup);
		empty_done(sb);
		return;
	}
	sb->empty_fd = sbx_box_events_open(sb->box, NULL);
	if (sb->empty_fd >= 0 &&
	    !(sb->empty_w = sbx_loop_watch(sb->d->loop, sb->empty_fd, EPOLLPRI, empty_event, sb)))
		sbx_closep(&sb->empty_fd);
	/* Without the watch, the half-second looks notice the end. */
	sb->empty_timer = sbx_loop_timer(sb->d->loop, EMPTY_KILL_MS, empty_timeout, sb);
	if (!sb->empty_timer || (sb->empty_w && sbx_box_events_populated(sb->empty_fd) <= 0))
		empty_done(sb);
}

/* A sandbox's init that did not finish exiting in time: reaped, and its
 * group removed, whenever it does; the sandbox does not wait for it. */
struct late_init {
	struct sbx_daemon *d;
	int pidfd;
	char *cgroup;
	struct sbx_watch *w;
};

static void late_init_exited(struct sbx_watch *w, uint32_t events, void *data)
{
	struct late_init *l = data;
	sbx_loop_unwatch(l->w);
	waitid((idtype_t)P_PIDFD, (id_t)l->pidfd, NULL, WEXITED | WNOHANG);
	close(l->pidfd);
	if (l->cgroup) {
		sbx_cgroup_kill(&l->d->cg, l->cgroup, NULL);
		sbx_cgroup_remove(&l->d->cg, l->cgroup, NULL);
	}
	sbx_info("a sandbox init that was slow to exit is gone; its cgroup %s is removed", l->cgroup ? l->cgroup : "-");
	free(l->cgroup);
	free(l);
}

/* Hand the init over to a late_init; the sandbox forgets it. */
static void abandon_init(struct sbx_sandbox *sb)
{
	/* One watch per descriptor: the sandbox's goes first. */
	sbx_loop_unwatch(sb->init_w);
	sb->init_w = NULL;
	int pidfd = sbx_box_abandon_init(sb->box);
	struct late_init *l = calloc(1, sizeof(*l));
	if (l) {
		l->d = sb->d;
		l->pidfd = pidfd;
		l->cgroup = sb->box->cgroup ? strdup(sb->box->cgroup) : NULL;
		l->w = sbx_loop_watch(sb->d->loop, l->pidfd, EPOLLIN, late_init_exited, l);
	}
	if (!l || !l->w) {
		if (l)
			free(l->cgroup);
		free(l);
		close(pidfd); /* an unreaped zombie, once it exits */
	}
}

/* A command started by an exec is our child, reaped by the exec. */
static bool exec_owned(pid_t pid, void *ctx)
{
	return sbx_exec_owns_pid(ctx, pid);
}

static void init_gone(struct sbx_sandbox *sb);

/* init goes within milliseconds of the kill, unless a process of its
 * namespace stays unreaped (or is stuck in the kernel). First reap what
 * is ours and kill again; then stop waiting: a stop always ends. */
static void kill_check(struct sbx_watch *t, void *data)
{
	struct sbx_sandbox *sb = data;
	sb->kill_timer = NULL;
	if (++sb->kill_checks == 1) {
		int n = sbx_box_reap_strays(sb->box, exec_owned, sb);
		sbx_warn("sandbox %s: init (pid %d) is still there %d s after the kill; reaped %d stray process(es) of its "
			 "namespace, killing again",
			 sb->id, (int)sb->box->init_pid, STOP_KILL_GRACE_MS / 1000, n);
		sbx_box_kill(sb->box);
		sb->kill_timer = sbx_loop_timer(sb->d->loop, STOP_KILL_GRACE_MS, kill_check, sb);
		if (sb->kill_timer)
			return;
	}
	sbx_warn("sandbox %s (%s): init (pid %d) did not exit within %d s of the kill (a process of its namespace "
		 "is left unreaped or stuck in the kernel); the sandbox stops without it, and its cgroup goes when it "
		 "exits",
		 sb->id, sb->name, (int)sb->box->init_pid, 2 * STOP_KILL_GRACE_MS / 1000);
	abandon_init(sb);
	init_gone(sb);
}

/* The kill of a stop: everything in the group, and a bound on the wait. */
static void stop_kill(struct sbx_sandbox *sb)
{
	sbx_box_kill(sb->box);
	if (!sb->kill_timer && sb->init_w) {
		sb->kill_checks = 0;
		sb->kill_timer = sbx_loop_timer(sb->d->loop, STOP_KILL_GRACE_MS, kill_check, sb);
	}
}

/* init is gone: everything else in its pid namespace was killed by the
 * kernel; make sure of it through the cgroup, then wait for it to empty. */
static void init_gone(struct sbx_sandbox *sb)
{
	if (sb->init_w) {
		sbx_loop_unwatch(sb->init_w);
		sb->init_w = NULL;
	}
	sbx_box_reap_init(sb->box);
	if (sb->stop_timer) {
		sbx_loop_unwatch(sb->stop_timer);
		sb->stop_timer = NULL;
	}
	bool abandoned = sb->kill_checks > 0 && !sb->kill_timer;
	if (sb->kill_timer) {
		sbx_loop_unwatch(sb->kill_timer);
		sb->kill_timer = NULL;
	}
	sb->kill_checks = 0;
	if (!sb->stopping) {
		sbx_warn("sandbox %s (%s): init exited on its own; sandbox is now stopped", sb->id, sb->name);
		sbx_event_emit(sb->d, "error", sb, "init exited on its own; the sandbox stops");
		sb->stopping = true;
	}
	sbx_box_kill(sb->box);
	sbx_exec_kill_all(sb);
	empty_wait(sb, abandoned);
}

static void init_exited(struct sbx_watch *w, uint32_t events, void *data)
{
	init_gone(data);
}

static void stop_timeout(struct sbx_watch *t, void *data)
{
	struct sbx_sandbox *sb = data;
	sb->stop_timer = NULL;
	sbx_info("sandbox %s: stop timeout passed; killing what is left", sb->id);
	stop_kill(sb);
}

/* A stop that ends in a delete: the intent goes to disk before anything is
 * torn down, so that a crash in between leaves a sandbox that recovery
 * deletes rather than one that seems to have stopped by itself. */
static int mark_delete_pending(struct sbx_sandbox *sb, sbx_error **err)
{
	if (sb->delete_pending)
		return 0;
	sb->delete_pending = true;
	if (sbx_sandbox_save(sb, err) < 0) {
		sb->delete_pending = false;
		return sbx_error_prefix(err, "delete");
	}
	return 0;
}

void sbx_sandbox_stop(struct sbx_sandbox *sb, int64_t timeout_ms, struct sbx_request *req, bool delete_after)
{
	if (sb->start) {
		struct stop_call *c = calloc(1, sizeof(*c));
		if (!c) {
			sbx_error *err = NULL;
			sbx_error_errno(&err, ENOMEM, "stop");
			if (req)
				sbx_reply_error(req, err);
			else
				sbx_error_free(err);
			return;
		}
		c->timeout_ms = timeout_ms;
		c->req = req;
		c->delete_after = delete_after;
		struct stop_call **pp = &sb->start->stops;
		while (*pp)
			pp = &(*pp)->next;
		*pp = c;
		return;
	}
	bool running = sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED;
	if (running && (delete_after || sb->ephemeral || sb->auto_delete_min == 0)) {
		sbx_error *err = NULL;
		if (mark_delete_pending(sb, &err) < 0) {
			if (delete_after) {
				if (req)
					sbx_reply_error(req, err);
				else
					sbx_error_free(err);
				return;
			}
			/* A policy's delete: stopping is still right. */
			sbx_warn("%s", err->msg);
			sbx_error_free(err);
		}
	}
	if (req || delete_after) {
		struct sbx_waiter *w = calloc(1, sizeof(*w));
		if (!w) {
			sbx_error *err = NULL;
			sbx_error_errno(&err, ENOMEM, "stop");
			if (req)
				sbx_reply_error(req, err);
			else
				sbx_error_free(err);
			return;
		}
		w->req = req;
		w->delete_after = delete_after;
		struct sbx_waiter **pp = &sb->waiters;
		while (*pp)
			pp = &(*pp)->next;
		*pp = w;
	}
	if (!running) {
		if (!sb->stopping)
			answer_waiters(sb, NULL);
		return;
	}
	if (sb->stopping) {
		if (timeout_ms == 0)
			stop_kill(sb);
		return;
	}
	sb->stopping = true;
	sbx_info("sandbox %s (%s): stopping (timeout %lld ms)", sb->id, sb->name, (long long)timeout_ms);
	if (sb->state == SBX_STATE_PAUSED) {
		/* Frozen processes cannot act on SIGTERM; KILL works either way. */
		sbx_error *e = NULL;
		if (sbx_box_pause(sb->box, false, &e) < 0)
			sbx_warn("sandbox %s: thaw before stop: %s", sb->id, e->msg);
		sbx_error_free(e);
	}
	if (timeout_ms == 0 || sbx_box_terminate(sb->box) < 0) {
		stop_kill(sb);
	} else {
		sb->stop_timer = sbx_loop_timer(sb->d->loop, timeout_ms, stop_timeout, sb);
	}
	if (!sb->init_w)
		init_gone(sb);
}

int sbx_sandbox_destroy(struct sbx_sandbox *sb, sbx_error **err)
{
	struct sbx_daemon *d = sb->d;
	/* An fs worker has the stopped sandbox's overlay (and disk image)
	 * mounted on its upper and work directories: removing them under it
	 * would leave the worker writing into the trash. Its call ends within
	 * FS_WORKER_MAX_S at worst; the caller tries again. */
	if (sb->start)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is starting; try again when it has started",
				     sb->name);
	/* A worker is packing, unpacking or capturing its layer. */
	if (sb->snapshots)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s: a snapshot of it is being made; try again",
				     sb->name);
	if (sb->state == SBX_STATE_ARCHIVING || sb->state == SBX_STATE_RESTORING)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s; try again when that is over", sb->name,
				     sbx_state_name(sb->state));
	if (sb->fs_offline)
		return sbx_error_set(err, SBX_ERR_BAD_STATE,
				     "sandbox %s: %d file operation%s in progress on its stopped root; try again "
				     "when %s",
				     sb->name, sb->fs_offline, sb->fs_offline == 1 ? " is" : "s are",
				     sb->fs_offline == 1 ? "it finishes" : "they finish");
	/* The state directory moves to the trash at once (after a crash the
	 * sandbox is either fully there or in the trash); a worker removes
	 * the tree. Monitors must stop writing into it first. */
	sbx_commands_end_monitors(sb);
	char trash[64];
	if (sbx_trash_reserve(d, trash, err) < 0 || sbx_box_destroy(sb->box, trash, err) < 0)
		return sbx_error_prefix(err, "sandbox %s: delete", sb->id);
	sbx_trash_remove(d, trash);
	sbx_commands_free(sb);
	sbx_sessions_free(sb);
	sb->deleted = true;
	sbx_sandbox_remove(sb);
	sbx_net_release(sb);
	sbx_error *nerr = NULL;
	if (sb->net.ip.s_addr && sbx_net_apply_rules(d, &nerr) < 0)
		sbx_warn("%s", nerr->msg);
	sbx_error_free(nerr);
	/* A layered image's sandbox holds references to its layers (and one
	 * whose image is gone may); a root file system image's holds none. */
	struct sbx_image *img = sbx_image_find(d, sb->image_id);
	if (!img || img->oci)
		sbx_layers_release_async(d, sb->id);
	sbx_info("sandbox %s (%s) deleted", sb->id, sb->name);
	sbx_event_emit(d, "deleted", sb, NULL);
	sbx_images_sweep_removed(d);
	sbx_sandbox_unref(sb);
	return 0;
}

static void answer_waiters(struct sbx_sandbox *sb, sbx_error *err)
{
	struct sbx_waiter *list = sb->waiters;
	sb->waiters = NULL;
	bool destroy = false;
	sbx_sandbox_ref(sb);
	for (struct sbx_waiter *w = list; w; w = w->next)
		destroy |= w->delete_after;
	/* Policies that delete on stop: ephemeral sandboxes, auto_delete_min 0. */
	if (sb->state == SBX_STATE_STOPPED && (sb->ephemeral || sb->auto_delete_min == 0))
		destroy = true;
	sbx_error *derr = NULL;
	if (destroy && !sb->deleted)
		sbx_sandbox_destroy(sb, &derr);
	while (list) {
		struct sbx_waiter *w = list;
		list = w->next;
		if (w->req) {
			if (derr && w->delete_after) {
				sbx_error *copy = NULL;
				sbx_error_set(&copy, derr->code, "%s", derr->msg);
				sbx_reply_error(w->req, copy);
			} else {
				sbx_reply_empty(w->req);
			}
		}
		free(w);
	}
	sbx_error_free(derr);
	sbx_sandbox_unref(sb);
}

/* ---- recovery ---- */

/* A sandbox that was running when the daemon went away: adopt its init if
 * it is still the same process, otherwise clean up what it left. */
static void reconcile(struct sbx_sandbox *sb)
{
	bool running = sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED;
	if (sbx_box_recover(sb->box, running) == 1) {
		watch_init(sb);
		sbx_info("sandbox %s (%s) recovered, init pid %d", sb->id, sb->name, (int)sb->box->init_pid);
		/* A snapshot's worker dies with the daemon, perhaps with the
		 * group frozen: only a pause leaves it so. */
		sbx_error *e = NULL;
		if (sb->state == SBX_STATE_STARTED && sb->box->cgroup &&
		    sbx_cgroup_freeze(&sb->d->cg, sb->box->cgroup, false, &e) < 0 && e->code != SBX_ERR_UNSUPPORTED)
			sbx_warn("sandbox %s: thaw: %s", sb->id, e->msg);
		sbx_error_free(e);
		return;
	}
	if (running)
		sbx_warn("sandbox %s (%s): init is gone; marking it stopped", sb->id, sb->name);
	if (sb->state != SBX_STATE_STOPPED && sb->state != SBX_STATE_ERROR && sb->state != SBX_STATE_ARCHIVED) {
		sb->state = SBX_STATE_STOPPED;
		/* It stopped while we were away: what its policy does at a stop. */
		if (sb->ephemeral || sb->auto_delete_min == 0)
			sb->delete_pending = true;
		sbx_sandbox_save(sb, NULL);
	}
}

/* The daemon went away while this sandbox was being deleted: the client
 * never got an answer, and the sandbox may be stopped, half stopped or
 * still running. Finish the delete. */
static void finish_delete(struct sbx_sandbox *sb, const char *why)
{
	sbx_warn("sandbox %s (%s): %s; deleting it", sb->id, sb->name, why);
	sbx_error *e = NULL;
	/* Not adopted: killed, and waited for (5 s at most). */
	if (sbx_box_stop(sb->box, 0, &e) < 0)
		sbx_warn("sandbox %s: %s", sb->id, e->msg);
	sbx_error_free(e);
	e = NULL;
	sb->state = SBX_STATE_STOPPED;
	/* Their monitors must stop writing before the directory goes. */
	sbx_commands_load(sb);
	if (sbx_sandbox_destroy(sb, &e) < 0) {
		sbx_warn("%s", e->msg);
		sbx_sandbox_save(sb, NULL);
	}
	sbx_error_free(e);
}

int sbx_sandboxes_recover(struct sbx_daemon *d, sbx_error **err)
{
	sbx_sandboxes_host_init(d);
	if (mkdirat(d->state_fd, "sandboxes", 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create %s/sandboxes", d->cfg.state_dir);
	int fd = openat(d->state_fd, "sandboxes", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open %s/sandboxes", d->cfg.state_dir);
	_cleanup_closedir_ DIR *dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return sbx_error_errno(err, errno, "read %s/sandboxes", d->cfg.state_dir);
	}
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (!sbx_id_valid(de->d_name))
			continue;
		sbx_error *e = NULL;
		struct sbx_sandbox *sb = sbx_sandbox_load(d, de->d_name, &e);
		if (!sb || sb->state == SBX_STATE_CREATING) {
			/* Never answered to its client: a half-made sandbox is removed,
			 * with whatever of it runs. */
			sbx_warn("sandbox %s: %s; removing it", de->d_name,
				 sb ? "creation was interrupted" : (e && e->msg ? e->msg : "unreadable state"));
			sbx_error_free(e);
			e = NULL;
			if (sbx_box_purge(&d->box_host, de->d_name, &e) < 0)
				sbx_warn("remove sandboxes/%s: %s", de->d_name, e->msg);
			sbx_error_free(e);
			if (sb)
				sbx_sandbox_unref(sb);
			continue;
		}
		if (sbx_sandbox_add(d, sb, err) < 0) {
			sbx_sandbox_unref(sb);
			return -1;
		}
		if (sb->delete_pending) {
			finish_delete(sb, "a delete was under way when the daemon went away");
			continue;
		}
		sbx_sandbox_archive_recover(sb);
		reconcile(sb);
		if (sb->delete_pending) {
			finish_delete(sb, "it stopped while the daemon was away, and its policy deletes it at a stop");
			continue;
		}
		sbx_commands_load(sb);
		if (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED)
			sbx_sessions_load(sb);
		else
			sbx_sessions_end(sb); /* it stopped while we were away */
	}
	return 0;
}

int sbx_sandbox_signal_all(struct sbx_sandbox *sb, int sig, sbx_error **err)
{
	if ((sb->state != SBX_STATE_STARTED && sb->state != SBX_STATE_PAUSED) || sb->stopping || !sb->box->cgroup)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s; it has no processes to signal", sb->name,
				     sb->stopping ? "stopping" : sbx_state_name(sb->state));
	int n = sbx_box_signal_all(sb->box, sig, err);
	if (n < 0)
		return sbx_error_prefix(err, "sandbox %s", sb->name);
	sbx_info("sandbox %s (%s): SIG%s sent to its %d process(es) but init", sb->id, sb->name, sbx_signal_name(sig), n);
	return n;
}

int sbx_sandbox_pause(struct sbx_sandbox *sb, bool pause, sbx_error **err)
{
	enum sbx_state want = pause ? SBX_STATE_STARTED : SBX_STATE_PAUSED;
	if (sb->stopping || sb->start || sb->state != want)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s; only a %s sandbox can be %s", sb->name,
				     sb->stopping ? "stopping" : sb->start ? "starting" : sbx_state_name(sb->state),
				     sbx_state_name(want), pause ? "paused" : "resumed");
	if (sbx_box_pause(sb->box, pause, err) < 0)
		return sbx_error_prefix(err, "sandbox %s", sb->name);
	sb->state = pause ? SBX_STATE_PAUSED : SBX_STATE_STARTED;
	sb->activity_ns = sbx_now_ns();
	sbx_sandbox_save(sb, NULL);
	sbx_info("sandbox %s (%s) %s", sb->id, sb->name, pause ? "paused" : "resumed");
	sbx_event_emit(sb->d, pause ? "paused" : "resumed", sb, NULL);
	return 0;
}

/* auto_stop_min, auto_delete_min and auto_archive_min: idle sandboxes stop,
 * stopped ones go or are archived. */
static void apply_policies(struct sbx_sandbox *sb, int64_t now)
{
	int64_t idle_min = (now - sb->activity_ns) / (60LL * 1000000000LL);
	bool running = sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED;
	if (running && !sb->stopping && sb->auto_stop_min > 0 && !sb->execs && idle_min >= sb->auto_stop_min) {
		sbx_info("sandbox %s (%s): idle for %lld min; stopping it (auto_stop_min %lld)", sb->id, sb->name,
			 (long long)idle_min, (long long)sb->auto_stop_min);
		sbx_event_emit(sb->d, "auto_stop", sb, NULL);
		sbx_sandbox_stop(sb, sb->d->cfg.default_stop_timeout_s * 1000, NULL, false);
		return;
	}
	if (sb->state == SBX_STATE_STOPPED && !sb->stopping && !sb->start && sb->auto_delete_min > 0 &&
	    idle_min >= sb->auto_delete_min && !sb->fs_offline) {
		sbx_info("sandbox %s (%s): stopped for %lld min; deleting it (auto_delete_min %lld)", sb->id, sb->name,
			 (long long)idle_min, (long long)sb->auto_delete_min);
		sbx_error *e = NULL;
		if (sbx_sandbox_destroy(sb, &e) < 0)
			sbx_warn("%s", e->msg);
		sbx_error_free(e);
		return;
	}
	/* auto_archive_min: counted, like auto_delete_min, from the stop
	 * (activity_ns is saved, so a restart does not reset it). */
	if (sb->state == SBX_STATE_STOPPED && !sb->stopping && !sb->start && sb->auto_archive_min > 0 &&
	    idle_min >= sb->auto_archive_min && !sb->fs_offline && !sb->snapshots && now >= sb->archive_retry_ns) {
		sbx_info("sandbox %s (%s): stopped for %lld min; archiving it (auto_archive_min %lld)", sb->id, sb->name,
			 (long long)idle_min, (long long)sb->auto_archive_min);
		sbx_error *e = NULL;
		if (sbx_sandbox_archive(sb, NULL, &e) < 0) {
			sbx_warn("%s", e->msg);
			sb->archive_retry_ns = now + 10LL * 60 * 1000000000LL;
		}
		sbx_error_free(e);
	}
}

void sbx_sandboxes_tick(struct sbx_daemon *d)
{
	int64_t now = sbx_now_ns();
	for (struct sbx_sandbox *sb = d->sandboxes, *next; sb; sb = next) {
		next = sb->next;
		/* Groups of finished commands whose last process has gone since;
		 * rmdir refuses the busy ones. Only where an exec ran since the
		 * last look, or groups were left: reading every sandbox's group
		 * each second costs more than the rest of the tick together. */
		if (sb->state == SBX_STATE_STARTED && sb->box->cgroup && !sb->stopping &&
		    (sb->box->exec_seq != sb->pruned_seq || sb->prune_again)) {
			int kept = sbx_box_prune(sb->box, "exec-");
			/* A command being set up has an empty group until its
			 * monitor's helper is cloned into it. */
			if (!sb->spawning)
				kept += sbx_box_prune(sb->box, "cmd-");
			else
				kept++;
			sb->pruned_seq = sb->box->exec_seq;
			sb->prune_again = kept > 0;
		}
		apply_policies(sb, now);
	}
	sbx_sandboxes_watch_oom(d);
}

/* OOM kills on the whole host so far (/proc/vmstat oom_kill counts memory
 * cgroup kills too); -1 if unknown. */
static int64_t host_oom_kills(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/vmstat", "re");
	char line[128];
	long long n;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "oom_kill %lld", &n) == 1)
			return n;
	return -1;
}

void sbx_sandboxes_watch_oom(struct sbx_daemon *d)
{
	/* Reading every sandbox's memory events each second is most of an idle
	 * daemon's work with thousands of sandboxes: look only when the host
	 * has seen an OOM kill since the last look, and at the tick after (the
	 * kernel counts a kill in vmstat just before its cgroup's count). */
	static int64_t seen = -1;
	static int looks;
	int64_t kills = host_oom_kills();
	if (kills < 0 || kills != seen) {
		seen = kills;
		looks = 2;
	}
	if (looks == 0)
		return;
	if (kills >= 0)
		looks--;
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next) {
		if ((sb->state != SBX_STATE_STARTED && sb->state != SBX_STATE_PAUSED) || !sb->box->cgroup)
			continue;
		struct sbx_cgroup_stats st;
		if (sbx_cgroup_stats(&d->cg, sb->box->cgroup, &st) < 0 || st.oom_kills <= sb->oom_seen)
			continue;
		sbx_warn("sandbox %s (%s): %lld process(es) killed at the memory limit of %lld MB (%lld in total)", sb->id,
			 sb->name, (long long)(st.oom_kills - sb->oom_seen), (long long)sb->res.memory_mb,
			 (long long)st.oom_kills);
		char msg[96];
		snprintf(msg, sizeof(msg), "%lld process(es) killed at the memory limit (%lld in total)",
			 (long long)(st.oom_kills - sb->oom_seen), (long long)st.oom_kills);
		sb->oom_seen = st.oom_kills;
		sbx_sandbox_save(sb, NULL);
		sbx_event_emit(d, "oom", sb, msg);
	}
}

