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
#include <termios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"
#include "sandbox.h"
#include "spawn.h"
#include "syscalls.h"

#define DEFAULT_MAX_OUTPUT (1024 * 1024)
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
	struct sbx_watch *timer;
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
	if (ex->out_fd >= 0)
		drain(ex, ex->out_fd, &ex->out);
	if (ex->err_fd >= 0)
		drain(ex, ex->err_fd, &ex->err);
	int exit_code = -1;
	const char *signame = NULL;
	if (si.si_code == CLD_EXITED) {
		exit_code = si.si_status;
	} else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
		exit_code = 128 + si.si_status;
		signame = sbx_signal_name(si.si_status);
	}
	if (ex->req) {
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
	ex->sb->activity_ns = sbx_now_ns();
	exec_free(ex);
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

/* What process.exec and process.spawn share. */
struct cmd_params {
	char **argv, **envp;
	char *cwd;
	const char *user, *stdin_text;
	double timeout;
	int64_t max_output;
	bool base64;
	bool stdin_pipe; /* spawn's "stdin": true */
};

static void cmd_params_free(struct cmd_params *cp)
{
	sbx_strv_free(cp->argv);
	sbx_strv_free(cp->envp);
	free(cp->cwd);
	memset(cp, 0, sizeof(*cp));
}

static int sandbox_running(struct sbx_sandbox *sb, sbx_error **err)
{
	if (sb->state == SBX_STATE_STARTED && !sb->stopping)
		return 0;
	return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s; %s it with 'sandboxctl %s %s'", sb->name,
			     sb->stopping ? "stopping" : sbx_state_name(sb->state),
			     sb->state == SBX_STATE_PAUSED ? "resume" : "start",
			     sb->state == SBX_STATE_PAUSED ? "resume" : "start", sb->name);
}

/* "stdin": text for every command; true (keep a pipe) for background ones. */
static int parse_stdin(yajl_val p, struct cmd_params *cp, bool allow_pipe, sbx_error **err)
{
	yajl_val v = sbx_json_get(p, "stdin");
	if (v && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))) {
		if (!allow_pipe)
			return sbx_error_param(err, "stdin", "process.exec takes 'stdin' as text; a pipe is for process.spawn");
		cp->stdin_pipe = YAJL_IS_TRUE(v);
		return 0;
	}
	return sbx_json_string(p, "stdin", false, &cp->stdin_text, err);
}

static int parse_cmd_params(struct sbx_request *req, struct sbx_sandbox *sb, struct cmd_params *cp, bool allow_pipe,
			    sbx_error **err)
{
	yajl_val p = req->params;
	const char *command = NULL, *cwd_param = NULL, *encoding = "utf-8";
	struct sbx_kvlist env = { 0 };
	int ret = -1;
	memset(cp, 0, sizeof(*cp));
	cp->max_output = DEFAULT_MAX_OUTPUT;
	if (sbx_json_string_array(p, "cmd", false, &cp->argv, err) < 0 ||
	    sbx_json_string(p, "command", false, &command, err) < 0 ||
	    sbx_json_string(p, "cwd", false, &cwd_param, err) < 0 || sbx_json_string(p, "user", false, &cp->user, err) < 0 ||
	    parse_stdin(p, cp, allow_pipe, err) < 0 ||
	    sbx_json_string(p, "encoding", false, &encoding, err) < 0 ||
	    sbx_json_number(p, "timeout_s", false, 0, 31536000, &cp->timeout, err) < 0 ||
	    sbx_json_int(p, "max_output_bytes", false, 0, 64 * 1024 * 1024, &cp->max_output, err) < 0 ||
	    sbx_json_string_map(p, "env", false, &env, err) < 0)
		goto out;
	if (!!cp->argv == !!command) {
		sbx_error_param(err, "cmd", "give exactly one of 'cmd' (an argv array) or 'command' (a shell string)");
		goto out;
	}
	if (cp->argv && !cp->argv[0]) {
		sbx_error_param(err, "cmd", "'cmd' must not be empty");
		goto out;
	}
	if (cp->user && !*cp->user) {
		sbx_error_param(err, "user", "user must not be empty: give a name, uid or uid:gid");
		goto out;
	}
	if (strcmp(encoding, "utf-8") && strcmp(encoding, "base64")) {
		sbx_error_param(err, "encoding", "encoding must be \"utf-8\" or \"base64\"");
		goto out;
	}
	cp->base64 = !strcmp(encoding, "base64");
	for (size_t i = 0; i < env.n; i++) {
		if (!env.items[i].key[0] || strchr(env.items[i].key, '=')) {
			sbx_error_param(err, "env", "invalid environment variable name '%.64s'", env.items[i].key);
			goto out;
		}
	}
	if (sandbox_running(sb, err) < 0)
		goto out;
	if (command) {
		cp->argv = calloc(4, sizeof(char *));
		if (!cp->argv || !(cp->argv[0] = strdup("/bin/sh")) || !(cp->argv[1] = strdup("-c")) ||
		    !(cp->argv[2] = strdup(command))) {
			sbx_error_errno(err, ENOMEM, "exec");
			goto out;
		}
	}
	cp->cwd = sbx_box_cwd(sb->box, cwd_param);
	cp->envp = sbx_sandbox_env(sb, &env);
	if (!cp->cwd || !cp->envp) {
		sbx_error_errno(err, ENOMEM, "exec");
		goto out;
	}
	if (!cp->user)
		cp->user = sb->box->user;
	ret = 0;
out:
	sbx_kvlist_free(&env);
	if (ret < 0)
		cmd_params_free(cp);
	return ret;
}

void rpc_process_exec(struct sbx_request *req)
{
	struct sbx_daemon *d = req->d;
	sbx_error *err = NULL;
	struct cmd_params cp = { 0 };
	struct sbx_exec *ex = NULL;
	int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, in_p[2] = { -1, -1 };

	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || parse_cmd_params(req, sb, &cp, false, &err) < 0)
		goto fail;
	ex = calloc(1, sizeof(*ex));
	if (!ex) {
		sbx_error_errno(&err, ENOMEM, "exec");
		goto fail;
	}
	ex->pidfd = ex->out_fd = ex->err_fd = ex->in_fd = -1;
	ex->max_output = (size_t)cp.max_output;
	ex->base64 = cp.base64;
	ex->sb = sb;
	sbx_sandbox_ref(sb);
	ex->next = sb->execs;
	sb->execs = ex;
	/* A fresh group of its own, so that a timeout reaches all it starts. */
	if (sbx_box_group(sb->box, NULL, ex->cgroup, sizeof(ex->cgroup), &err) < 0)
		goto fail;
	if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 || pipe2(in_p, O_CLOEXEC) < 0) {
		sbx_error_errno(&err, errno, "pipe");
		goto fail;
	}
	const struct sbx_bpf *filter = NULL;
	if (sbx_sandbox_filter(sb, &filter, &err) < 0) {
		sbx_error_prefix(&err, "sandbox %s: seccomp profile", sb->name);
		goto fail;
	}
	struct sbx_exec_config ec = {
		.argv = cp.argv,
		.envp = cp.envp,
		.cwd = cp.cwd,
		.user = cp.user,
		.stdio = { in_p[0], out_p[1], err_p[1] },
		.extra_fd = -1,
	};
	if (sbx_box_join(sb->box, ex->cgroup, &ec, &err) < 0)
		goto fail;
	ex->start_ms = sbx_monotonic_ms();
	int begun = sbx_spawn_exec_begin(&ec, &ex->setup, &err);
	sbx_box_join_release(&ec);
	if (begun < 0) {
		sbx_sandbox_explain_fork_failure(sb, &err);
		sbx_error_prefix(&err, "sandbox %s: exec", sb->name);
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
	if (cp.stdin_text && *cp.stdin_text) {
		ex->stdin_data = strdup(cp.stdin_text);
		ex->stdin_len = ex->stdin_data ? strlen(ex->stdin_data) : 0;
		ex->in_w = sbx_loop_watch(d->loop, ex->in_fd, EPOLLOUT, stdin_event, ex);
	} else {
		sbx_closep(&ex->in_fd); /* the command reads EOF */
	}
	ex->timeout_s = cp.timeout;
	if (cp.timeout > 0)
		ex->timer = sbx_loop_timer(d->loop, (int64_t)(cp.timeout * 1000), exec_timeout, ex);
	/* Without a timeout of its own (or a longer one), a set-up stuck for
	 * good still ends. */
	if (!(cp.timeout > 0 && cp.timeout * 1000 <= SBX_EXEC_SETUP_TIMEOUT_MS))
		ex->setup_timer = sbx_loop_timer(d->loop, SBX_EXEC_SETUP_TIMEOUT_MS, setup_expired, ex);
	ex->report_w = sbx_loop_watch(d->loop, ex->setup.report_fd, EPOLLIN, report_event, ex);
	ex->helper_w = sbx_loop_watch(d->loop, ex->setup.helper_pidfd, EPOLLIN, helper_event, ex);
	if (!ex->out_w || !ex->err_w || !ex->report_w || !ex->helper_w || (cp.timeout > 0 && !ex->timer) ||
	    (ex->setup_timer == NULL && !(cp.timeout > 0 && cp.timeout * 1000 <= SBX_EXEC_SETUP_TIMEOUT_MS))) {
		/* Cannot follow it: exec_free kills what was started. */
		sbx_error_errno(&err, ENOMEM, "watch command");
		goto fail;
	}
	ex->req = req;
	sb->activity_ns = sbx_now_ns();
	cmd_params_free(&cp);
	return;
fail:
	for (int i = 0; i < 2; i++) {
		sbx_closep(&out_p[i]);
		sbx_closep(&err_p[i]);
		sbx_closep(&in_p[i]);
	}
	if (ex)
		exec_free(ex);
	cmd_params_free(&cp);
	sbx_reply_error(req, err);
}

/* ---- background commands ---- */

struct spawn_ctx {
	struct sbx_request *req;
	char *stdin_text; /* written to the command once it runs */
	bool keep_stdin, tty;
};

static void spawn_done(struct sbx_command *c, int master, sbx_error *err, void *data)
{
	struct spawn_ctx *x = data;
	struct sbx_request *req = x->req;
	if (!c) {
		free(x->stdin_text);
		free(x);
		sbx_reply_error(req, err);
		return;
	}
	if (x->stdin_text && !x->tty) {
		char *text = x->stdin_text;
		x->stdin_text = NULL;
		if (sbx_command_queue_input(c, text, strlen(text), !x->keep_stdin, NULL, NULL) < 0)
			sbx_warn("command %s: could not queue its stdin text", c->id);
	}
	free(x->stdin_text);
	free(x);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "cmd_id", c->id);
		sbx_gen_kv_int(g, "pid", c->pid);
		if (master >= 0)
			sbx_gen_kv_bool(g, "fd", true);
		yajl_gen_map_close(g);
	}
	sbx_reply_end_fd(req, g, master);
}

void rpc_process_spawn(struct sbx_request *req)
{
	struct sbx_daemon *d = req->d;
	sbx_error *err = NULL;
	struct cmd_params cp = { 0 };
	yajl_val p = req->params;
	bool tty = false, attach = false;
	int64_t rows = 0, cols = 0, log_mb = d->cfg.command_log_mb;
	struct spawn_ctx *x = NULL;

	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_bool(p, "tty", false, &tty, &err) < 0 || sbx_json_bool(p, "attach", false, &attach, &err) < 0 ||
	    sbx_json_int(p, "rows", false, 1, 65535, &rows, &err) < 0 ||
	    sbx_json_int(p, "cols", false, 1, 65535, &cols, &err) < 0 ||
	    sbx_json_int(p, "log_limit_mb", false, 1, 4096, &log_mb, &err) < 0 ||
	    parse_cmd_params(req, sb, &cp, true, &err) < 0)
		goto fail;
	if (attach && !tty) {
		sbx_error_param(&err, "attach", "'attach' hands over a terminal: it needs \"tty\": true");
		goto fail;
	}
	x = calloc(1, sizeof(*x));
	if (!x || (cp.stdin_text && *cp.stdin_text && !(x->stdin_text = strdup(cp.stdin_text)))) {
		sbx_error_errno(&err, ENOMEM, "spawn");
		goto fail;
	}
	x->req = req;
	x->keep_stdin = cp.stdin_pipe;
	x->tty = tty;
	struct sbx_spawn_opts o = {
		.argv = cp.argv,
		.envp = cp.envp,
		.cwd = cp.cwd,
		.user = cp.user,
		.tty = tty,
		.rows = (unsigned short)rows,
		.cols = (unsigned short)cols,
		.stdin_pipe = cp.stdin_pipe || (cp.stdin_text && *cp.stdin_text),
		.attach = attach,
		.timeout_s = cp.timeout,
		.log_cap = log_mb * 1024 * 1024,
	};
	if (sbx_command_spawn(sb, &o, spawn_done, x, &err) < 0)
		goto fail;
	cmd_params_free(&cp);
	return;
fail:
	if (x)
		free(x->stdin_text);
	free(x);
	cmd_params_free(&cp);
	sbx_reply_error(req, err);
}

struct log_bufs {
	struct sbx_buf out, err;
};

static void log_collect(void *ctx, int stream, const char *data, size_t len, uint64_t end)
{
	struct log_bufs *b = ctx;
	sbx_buf_append(stream == 2 ? &b->err : &b->out, data, len);
}

void rpc_process_logs(struct sbx_request *req)
{
	sbx_error *err = NULL;
	yajl_val p = req->params;
	int64_t offset = 0, max_bytes = 8 * 1024 * 1024;
	bool follow = false, more = false;
	const char *encoding = "utf-8";
	struct log_bufs b = { 0 };
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	struct sbx_command *c = sb ? sbx_command_from_params(sb, p, &err) : NULL;
	if (!c || sbx_json_int(p, "offset", false, 0, INT64_MAX, &offset, &err) < 0 ||
	    sbx_json_bool(p, "follow", false, &follow, &err) < 0 ||
	    sbx_json_int(p, "max_bytes", false, 1, 64 * 1024 * 1024, &max_bytes, &err) < 0 ||
	    sbx_json_string(p, "encoding", false, &encoding, &err) < 0)
		goto fail;
	if (strcmp(encoding, "utf-8") && strcmp(encoding, "base64")) {
		sbx_error_param(&err, "encoding", "encoding must be \"utf-8\" or \"base64\"");
		goto fail;
	}
	if (c->attached) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE,
			      "command %s ran on a terminal attached to its client; it has no log", c->id);
		goto fail;
	}
	bool base64 = !strcmp(encoding, "base64");
	uint64_t pos = (uint64_t)offset;
	bool exited = c->exited;
	if (!follow && sbx_command_log_read(c, &pos, (size_t)max_bytes, log_collect, &b, &more, &err) < 0)
		goto fail;
	if (follow) {
		/* Where following starts: the oldest output still kept. */
		uint64_t probe = pos;
		bool m;
		sbx_command_log_read(c, &probe, 0, log_collect, &b, &m, NULL);
		if (probe > pos && probe % SBX_LOG_SEGMENT == 0)
			pos = probe;
	}
	struct sbx_conn *conn = sbx_conn_ref(req->conn);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_command_gen_output(g, "stdout", &b.out, base64);
		sbx_command_gen_output(g, "stderr", &b.err, base64);
		sbx_gen_kv_int(g, "offset", (int64_t)pos);
		sbx_gen_kv_bool(g, "exited", exited);
		sbx_command_gen_status(g, c);
		sbx_gen_kv_int(g, "dropped_bytes", (int64_t)sbx_command_log_dropped(c));
		sbx_gen_kv_bool(g, "more", more);
		if (follow)
			sbx_gen_kv_bool(g, "following", true);
		yajl_gen_map_close(g);
	}
	sbx_buf_free(&b.out);
	sbx_buf_free(&b.err);
	sbx_reply_end(req, g);
	if (follow && g && sbx_command_follow(c, conn, pos, base64, &err) < 0) {
		sbx_warn("follow: %s", err ? err->msg : "?");
		sbx_error_free(err);
	}
	sbx_conn_release(conn);
	return;
fail:
	sbx_buf_free(&b.out);
	sbx_buf_free(&b.err);
	sbx_reply_error(req, err);
}

static void wait_done(struct sbx_command *c, void *data)
{
	struct sbx_request *req = data;
	if (!c->exited) {
		sbx_error *err = NULL;
		sbx_error_set(&err, SBX_ERR_NOT_FOUND, "sandbox %s was deleted before command %s ended", c->sb->name,
			      c->id);
		sbx_reply_error(req, err);
		return;
	}
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "cmd_id", c->id);
		sbx_gen_kv_bool(g, "exited", true);
		sbx_command_gen_status(g, c);
		if (c->lost)
			sbx_gen_kv_bool(g, "lost", true);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

static void wait_timeout(void *data)
{
	struct sbx_request *req = data;
	sbx_error *err = NULL;
	sbx_error_set(&err, SBX_ERR_TIMEOUT, "the command is still running; wait again or kill it");
	sbx_reply_error(req, err);
}

void rpc_process_wait(struct sbx_request *req)
{
	sbx_error *err = NULL;
	double timeout = 0;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	struct sbx_command *c = sb ? sbx_command_from_params(sb, req->params, &err) : NULL;
	if (!c || sbx_json_number(req->params, "timeout_s", false, 0, 31536000, &timeout, &err) < 0) {
		sbx_reply_error(req, err);
		return;
	}
	if (sbx_command_on_exit(c, wait_done, wait_timeout, req, (int64_t)(timeout * 1000)) < 0) {
		sbx_error_errno(&err, ENOMEM, "wait");
		sbx_reply_error(req, err);
	}
}

void rpc_process_kill(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *signame = "TERM";
	bool all = false;
	struct sbx_command *c = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_bool(req->params, "all", false, &all, &err) < 0 ||
	    sbx_json_string(req->params, "signal", false, &signame, &err) < 0) {
		sbx_reply_error(req, err);
		return;
	}
	if (all && sbx_json_get(req->params, "cmd_id")) {
		sbx_error_param(&err, "cmd_id", "give either 'cmd_id' or 'all', not both");
		sbx_reply_error(req, err);
		return;
	}
	if (!all && !(c = sbx_command_from_params(sb, req->params, &err))) {
		sbx_reply_error(req, err);
		return;
	}
	int sig = sbx_signal_from_name(signame);
	if (sig <= 0) {
		sbx_error_param(&err, "signal", "unknown signal '%.32s'; use a name such as TERM, KILL, INT, HUP", signame);
		sbx_reply_error(req, err);
		return;
	}
	/* All: every process of the sandbox but init, through its cgroup. */
	int n = all ? sbx_sandbox_signal_all(sb, sig, &err) : sbx_command_signal(c, sig, &err);
	if (n < 0) {
		sbx_reply_error(req, err);
		return;
	}
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "signaled", n);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

static int by_start(const void *a, const void *b)
{
	const struct sbx_command *x = *(struct sbx_command *const *)a, *y = *(struct sbx_command *const *)b;
	return x->started_ms < y->started_ms ? -1 : x->started_ms > y->started_ms;
}

void rpc_process_list(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb) {
		sbx_reply_error(req, err);
		return;
	}
	size_t n = 0;
	for (struct sbx_command *c = sb->commands; c; c = c->next)
		n++;
	_cleanup_free_ struct sbx_command **v = calloc(n + 1, sizeof(*v));
	if (!v) {
		sbx_error_errno(&err, ENOMEM, "list");
		sbx_reply_error(req, err);
		return;
	}
	n = 0;
	for (struct sbx_command *c = sb->commands; c; c = c->next)
		v[n++] = c;
	qsort(v, n, sizeof(*v), by_start);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_key(g, "processes");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < n; i++)
			sbx_command_gen(g, v[i]);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

void rpc_process_stdin(struct sbx_request *req)
{
	sbx_error *err = NULL;
	yajl_val p = req->params;
	const char *data = NULL, *encoding = "utf-8";
	bool eof = false;
	char *bytes = NULL;
	size_t len = 0;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	struct sbx_command *c = sb ? sbx_command_from_params(sb, p, &err) : NULL;
	if (!c || sbx_json_string(p, "data", false, &data, &err) < 0 || sbx_json_bool(p, "eof", false, &eof, &err) < 0 ||
	    sbx_json_string(p, "encoding", false, &encoding, &err) < 0)
		goto fail;
	if (!data && !eof) {
		sbx_error_param(&err, "data", "give 'data', 'eof': true, or both");
		goto fail;
	}
	if (strcmp(encoding, "utf-8") && strcmp(encoding, "base64")) {
		sbx_error_param(&err, "encoding", "encoding must be \"utf-8\" or \"base64\"");
		goto fail;
	}
	if (data && !strcmp(encoding, "base64")) {
		if (sbx_base64_decode(data, strlen(data), &bytes, &len) < 0) {
			sbx_error_param(&err, "data", "'data' is not valid base64");
			goto fail;
		}
	} else if (data) {
		bytes = strdup(data);
		len = strlen(data);
	} else {
		bytes = strdup("");
	}
	if (!bytes) {
		sbx_error_errno(&err, ENOMEM, "stdin");
		goto fail;
	}
	if (sbx_command_input_fd(c, &err) < 0)
		goto fail;
	/* Answered once the bytes are in the pipe (or the terminal). */
	if (sbx_command_queue_input(c, bytes, len, eof, req, &err) < 0) {
		bytes = NULL;
		goto fail;
	}
	return;
fail:
	free(bytes);
	sbx_reply_error(req, err);
}

void rpc_process_resize(struct sbx_request *req)
{
	sbx_error *err = NULL;
	int64_t rows = 0, cols = 0;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	struct sbx_command *c = sb ? sbx_command_from_params(sb, req->params, &err) : NULL;
	if (!c || sbx_json_int(req->params, "rows", true, 1, 65535, &rows, &err) < 0 ||
	    sbx_json_int(req->params, "cols", true, 1, 65535, &cols, &err) < 0)
		goto fail;
	if (!c->tty) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "command %s has no terminal (spawn it with \"tty\": true)", c->id);
		goto fail;
	}
	int fd = sbx_command_input_fd(c, &err);
	if (fd < 0)
		goto fail;
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	if (ioctl(fd, TIOCSWINSZ, &ws) < 0) {
		sbx_error_errno(&err, errno, "command %s: resize its terminal", c->id);
		goto fail;
	}
	sbx_reply_empty(req);
	return;
fail:
	sbx_reply_error(req, err);
}
