/* process.exec: one command in a running sandbox, answered when it ends.
 * The command's output is collected from pipes in the loop, so a command
 * running for an hour holds no one else up. Its whole process tree lives
 * in its own cgroup, which is how a timeout reaches setsid'd grandchildren. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"
#include "exec.h"
#include "registry/sandbox.h"
#include "spawn.h"

#define READ_SIZE 65536

struct sbx_exec {
	struct sbx_exec *next;
	struct sbx_sandbox *sb;
	struct sbx_request *req;
	char cgroup[600];
	/* Set-up, watched in the loop: a slow one holds no one else up. */
	bool setting_up;
	double timeout_s;
	struct sbx_exec_setup setup;
	struct sbx_watch *report_w, *helper_w, *setup_timer;
	pid_t pid;
	int pidfd;
	struct sbx_watch *pid_w;
	int out_fd, err_fd, in_fd;
	struct sbx_watch *out_w, *err_w, *in_w;
	struct sbx_buf out, err;
	char *stdin_data;
	size_t stdin_len, stdin_off;
	size_t max_output;
	bool truncated, timed_out, base64;
	struct sbx_watch *timer, *kill_grace;
	int64_t start_ms;
};

static void exec_free(struct sbx_exec *ex)
{
	sbx_loop_unwatch(ex->report_w);
	sbx_loop_unwatch(ex->helper_w);
	sbx_loop_unwatch(ex->setup_timer);
	if (ex->setting_up)
		sbx_spawn_exec_abort(&ex->setup);
	sbx_loop_unwatch(ex->pid_w);
	sbx_loop_unwatch(ex->out_w);
	sbx_loop_unwatch(ex->err_w);
	sbx_loop_unwatch(ex->in_w);
	sbx_loop_unwatch(ex->timer);
	sbx_loop_unwatch(ex->kill_grace);
	sbx_closep(&ex->pidfd);
	sbx_closep(&ex->out_fd);
	sbx_closep(&ex->err_fd);
	sbx_closep(&ex->in_fd);
	sbx_buf_free(&ex->out);
	sbx_buf_free(&ex->err);
	free(ex->stdin_data);
	for (struct sbx_exec **pp = &ex->sb->execs; *pp; pp = &(*pp)->next) {
		if (*pp == ex) {
			*pp = ex->next;
			break;
		}
	}
	/* Busy means something it started lives on (nohup); pruned at stop. */
	if (ex->cgroup[0])
		unlinkat(ex->sb->d->cg.mount_fd, ex->cgroup, AT_REMOVEDIR);
	sbx_sandbox_unref(ex->sb);
	free(ex);
}

/* Read what is there; keep at most max_output bytes per stream. */
static int drain(struct sbx_exec *ex, int fd, struct sbx_buf *b)
{
	char chunk[READ_SIZE];
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0)
			return -1;
		size_t keep = (size_t)n;
		if (b->len + keep > ex->max_output) {
			keep = ex->max_output > b->len ? ex->max_output - b->len : 0;
			ex->truncated = true;
		}
		if (keep && sbx_buf_append(b, chunk, keep) < 0)
			return -1;
	}
	return 0;
}

/* What both pipes hold now. */
static void drain_pipes(struct sbx_exec *ex)
{
	if (ex->out_fd >= 0)
		drain(ex, ex->out_fd, &ex->out);
	if (ex->err_fd >= 0)
		drain(ex, ex->err_fd, &ex->err);
}

static void out_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_exec *ex = data;
	bool is_out = w == ex->out_w;
	if (drain(ex, is_out ? ex->out_fd : ex->err_fd, is_out ? &ex->out : &ex->err) < 0) {
		sbx_loop_unwatch(w);
		if (is_out) {
			ex->out_w = NULL;
			sbx_closep(&ex->out_fd);
		} else {
			ex->err_w = NULL;
			sbx_closep(&ex->err_fd);
		}
	}
}

static void stdin_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_exec *ex = data;
	while (ex->stdin_off < ex->stdin_len) {
		ssize_t n = write(ex->in_fd, ex->stdin_data + ex->stdin_off, ex->stdin_len - ex->stdin_off);
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			break; /* EPIPE: the command does not read its stdin */
		}
		ex->stdin_off += (size_t)n;
	}
	sbx_loop_unwatch(ex->in_w);
	ex->in_w = NULL;
	sbx_closep(&ex->in_fd);
}

static void exec_reply(struct sbx_exec *ex, int exit_code, const char *signame)
{
	if (!ex->req)
		return;
	yajl_gen g = sbx_reply_begin(ex->req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "exit_code", exit_code);
		sbx_gen_kv_str(g, "signal", signame);
		sbx_command_gen_output(g, "stdout", &ex->out, ex->base64);
		sbx_command_gen_output(g, "stderr", &ex->err, ex->base64);
		sbx_gen_kv_bool(g, "timed_out", ex->timed_out);
		sbx_gen_kv_bool(g, "truncated", ex->truncated);
		sbx_gen_kv_int(g, "duration_ms", sbx_monotonic_ms() - ex->start_ms);
		sbx_gen_kv_int(g, "pid", ex->pid);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(ex->req, g);
	ex->req = NULL;
}

static void exec_exited(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_exec *ex = data;
	siginfo_t si = { 0 };
	if (waitid((idtype_t)P_PIDFD, (id_t)ex->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) {
		if (errno != ECHILD && si.si_pid == 0)
			return; /* spurious wake-up */
	}
	/* Output written before exit is in the pipes now; later output from
	 * background children is not waited for. */
	drain_pipes(ex);
	int exit_code = -1;
	const char *signame = NULL;
	if (si.si_code == CLD_EXITED) {
		exit_code = si.si_status;
	} else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
		exit_code = 128 + si.si_status;
		signame = sbx_signal_name(si.si_status);
	}
	exec_reply(ex, exit_code, signame);
	ex->sb->activity_ns = sbx_now_ns();
	exec_free(ex);
}

/* A command killed at its timeout that has not died half a second later
 * is in a group that gets almost no CPU (even exiting takes CPU time):
 * the client hears of the kill now, not when the kernel has finished
 * with it; what it wrote before is in the pipes. It is reaped as usual. */
static void exec_kill_grace(struct sbx_watch *t, void *data)
{
	struct sbx_exec *ex = data;
	ex->kill_grace = NULL;
	if (!ex->req)
		return;
	drain_pipes(ex);
	exec_reply(ex, 128 + SIGKILL, sbx_signal_name(SIGKILL));
}

/* A set-up that is not over in time: the client hears it now, while what
 * was started is killed (in a starved group even dying takes a while). */
static void setup_give_up(struct sbx_exec *ex, const char *what, double seconds)
{
	if (ex->req) {
		sbx_error *err = NULL;
		sbx_error_set(&err, SBX_ERR_TIMEOUT,
			      "sandbox %s: exec: %s %g s (the sandbox or the host is very busy); the command was killed "
			      "before it ran",
			      ex->sb->name, what, seconds);
		sbx_reply_error(ex->req, err);
		ex->req = NULL;
	}
	sbx_cgroup_kill(&ex->sb->d->cg, ex->cgroup, NULL);
}

static void exec_timeout(struct sbx_watch *t, void *data)
{
	struct sbx_exec *ex = data;
	ex->timer = NULL;
	ex->timed_out = true;
	if (ex->setting_up && !ex->setup.eof) {
		setup_give_up(ex, "its set-up took longer than its timeout of", ex->timeout_s);
		return;
	}
	sbx_cgroup_kill(&ex->sb->d->cg, ex->cgroup, NULL);
	ex->kill_grace = sbx_loop_timer(ex->sb->d->loop, 500, exec_kill_grace, ex);
}

/* The set-up is over: the command runs (or has already ended), or it never
 * started. */
static void setup_done(struct sbx_exec *ex)
{
	struct sbx_sandbox *sb = ex->sb;
	sbx_loop_unwatch(ex->setup_timer);
	ex->setup_timer = NULL;
	ex->setting_up = false;
	struct sbx_spawned sp;
	sbx_error *err = NULL;
	if (sbx_spawn_exec_finish(&ex->setup, &sp, &err) < 0) {
		if (sb->stopping || sb->state != SBX_STATE_STARTED) {
			sbx_error_free(err);
			err = NULL;
			sbx_error_set(&err, SBX_ERR_BAD_STATE, "the sandbox stopped before the command started");
		} else {
			sbx_sandbox_explain_fork_failure(sb, &err);
		}
		sbx_error_prefix(&err, "sandbox %s: exec", sb->name);
		if (ex->req)
			sbx_reply_error(ex->req, err);
		else
			sbx_error_free(err);
		ex->req = NULL;
		exec_free(ex);
		return;
	}
	ex->pid = sp.pid;
	ex->pidfd = sp.pidfd;
	ex->pid_w = sbx_loop_watch(sb->d->loop, ex->pidfd, EPOLLIN, exec_exited, ex);
	if (!ex->pid_w) {
		/* Cannot follow it: do not leave it running unobserved. */
		sbx_cgroup_kill(&sb->d->cg, ex->cgroup, NULL);
		waitid((idtype_t)P_PIDFD, (id_t)ex->pidfd, NULL, WEXITED);
		sbx_error_errno(&err, ENOMEM, "sandbox %s: exec: watch command", sb->name);
		if (ex->req)
			sbx_reply_error(ex->req, err);
		else
			sbx_error_free(err);
		ex->req = NULL;
		exec_free(ex);
	}
}

/* The set-up ends when its report has ended and the helper has exited,
 * in whichever order the loop sees them. */
static void setup_check(struct sbx_exec *ex)
{
	if (!sbx_spawn_exec_read(&ex->setup))
		return;
	if (ex->report_w) {
		sbx_loop_unwatch(ex->report_w); /* readable for good now */
		ex->report_w = NULL;
	}
	if (ex->setup.helper_pidfd >= 0) {
		struct pollfd p = { .fd = ex->setup.helper_pidfd, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0)
			return; /* its watch fires when it exits */
		sbx_loop_unwatch(ex->helper_w);
		ex->helper_w = NULL;
		sbx_spawn_exec_helper_gone(&ex->setup);
	}
	setup_done(ex);
}

static void report_event(struct sbx_watch *w, uint32_t events, void *data)
{
	setup_check(data);
}

static void helper_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_exec *ex = data;
	if (ex->setup.eof) {
		setup_check(ex);
		return;
	}
	/* Exited before the command closed its end: wait for that, and reap. */
	sbx_loop_unwatch(ex->helper_w);
	ex->helper_w = NULL;
	sbx_spawn_exec_helper_gone(&ex->setup);
}

static void setup_expired(struct sbx_watch *t, void *data)
{
	struct sbx_exec *ex = data;
	ex->setup_timer = NULL;
	if (!ex->setting_up || ex->setup.eof)
		return;
	sbx_warn("sandbox %s: the set-up of a command did not finish within %d s; killing it", ex->sb->id,
		 SBX_EXEC_SETUP_TIMEOUT_MS / 1000);
	setup_give_up(ex, "its set-up did not finish within", SBX_EXEC_SETUP_TIMEOUT_MS / 1000.0);
}

bool sbx_exec_owns_pid(struct sbx_sandbox *sb, pid_t pid)
{
	for (struct sbx_exec *ex = sb->execs; ex; ex = ex->next)
		if (ex->pid == pid || (ex->setting_up && ex->setup.cmd_pid == pid))
			return true;
	return false;
}

void sbx_exec_kill_all(struct sbx_sandbox *sb)
{
	for (struct sbx_exec *ex = sb->execs; ex; ex = ex->next)
		sbx_cgroup_kill(&sb->d->cg, ex->cgroup, NULL);
}

int sbx_exec_start(struct sbx_sandbox *sb, const struct sbx_exec_opts *o, struct sbx_request *req, sbx_error **err)
{
	struct sbx_daemon *d = sb->d;
	struct sbx_exec *ex = NULL;
	int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, in_p[2] = { -1, -1 };

	ex = calloc(1, sizeof(*ex));
	if (!ex) {
		sbx_error_errno(err, ENOMEM, "exec");
		goto fail;
	}
	ex->pidfd = ex->out_fd = ex->err_fd = ex->in_fd = -1;
	ex->max_output = o->max_output;
	ex->base64 = o->base64;
	ex->sb = sb;
	sbx_sandbox_ref(sb);
	ex->next = sb->execs;
	sb->execs = ex;
	/* A fresh group of its own, so that a timeout reaches all it starts. */
	if (sbx_box_group(sb->box, NULL, ex->cgroup, sizeof(ex->cgroup), err) < 0)
		goto fail;
	if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 || pipe2(in_p, O_CLOEXEC) < 0) {
		sbx_error_errno(err, errno, "pipe");
		goto fail;
	}
	const struct sbx_bpf *filter = NULL;
	if (sbx_sandbox_filter(sb, &filter, err) < 0) {
		sbx_error_prefix(err, "sandbox %s: seccomp profile", sb->name);
		goto fail;
	}
	struct sbx_exec_config ec = {
		.argv = o->argv,
		.envp = o->envp,
		.cwd = o->cwd,
		.user = o->user,
		.stdio = { in_p[0], out_p[1], err_p[1] },
		.extra_fd = -1,
	};
	if (sbx_box_join(sb->box, ex->cgroup, &ec, err) < 0)
		goto fail;
	ex->start_ms = sbx_monotonic_ms();
	int begun = sbx_spawn_exec_begin(&ec, &ex->setup, err);
	sbx_box_join_release(&ec);
	if (begun < 0) {
		sbx_sandbox_explain_fork_failure(sb, err);
		sbx_error_prefix(err, "sandbox %s: exec", sb->name);
		goto fail;
	}
	ex->setting_up = true;
	/* The helper has its own copies of the command's ends. */
	sbx_closep(&in_p[0]);
	sbx_closep(&out_p[1]);
	sbx_closep(&err_p[1]);
	ex->out_fd = sbx_take_fd(&out_p[0]);
	ex->err_fd = sbx_take_fd(&err_p[0]);
	ex->in_fd = sbx_take_fd(&in_p[1]);
	sbx_set_nonblock(ex->out_fd, true);
	sbx_set_nonblock(ex->err_fd, true);
	sbx_set_nonblock(ex->in_fd, true);
	ex->out_w = sbx_loop_watch(d->loop, ex->out_fd, EPOLLIN, out_event, ex);
	ex->err_w = sbx_loop_watch(d->loop, ex->err_fd, EPOLLIN, out_event, ex);
	if (o->stdin_text && *o->stdin_text) {
		ex->stdin_data = strdup(o->stdin_text);
		ex->stdin_len = ex->stdin_data ? strlen(ex->stdin_data) : 0;
		ex->in_w = sbx_loop_watch(d->loop, ex->in_fd, EPOLLOUT, stdin_event, ex);
	} else {
		sbx_closep(&ex->in_fd); /* the command reads EOF */
	}
	ex->timeout_s = o->timeout_s;
	if (o->timeout_s > 0)
		ex->timer = sbx_loop_timer(d->loop, (int64_t)(o->timeout_s * 1000), exec_timeout, ex);
	/* Without a timeout of its own (or a longer one), a set-up stuck for
	 * good still ends. */
	if (!(o->timeout_s > 0 && o->timeout_s * 1000 <= SBX_EXEC_SETUP_TIMEOUT_MS))
		ex->setup_timer = sbx_loop_timer(d->loop, SBX_EXEC_SETUP_TIMEOUT_MS, setup_expired, ex);
	ex->report_w = sbx_loop_watch(d->loop, ex->setup.report_fd, EPOLLIN, report_event, ex);
	ex->helper_w = sbx_loop_watch(d->loop, ex->setup.helper_pidfd, EPOLLIN, helper_event, ex);
	if (!ex->out_w || !ex->err_w || !ex->report_w || !ex->helper_w || (o->timeout_s > 0 && !ex->timer) ||
	    (ex->setup_timer == NULL && !(o->timeout_s > 0 && o->timeout_s * 1000 <= SBX_EXEC_SETUP_TIMEOUT_MS))) {
		/* Cannot follow it: exec_free kills what was started. */
		sbx_error_errno(err, ENOMEM, "watch command");
		goto fail;
	}
	ex->req = req;
	sb->activity_ns = sbx_now_ns();
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		sbx_closep(&out_p[i]);
		sbx_closep(&err_p[i]);
		sbx_closep(&in_p[i]);
	}
	if (ex)
		exec_free(ex);
	return -1;
}
