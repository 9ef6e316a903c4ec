/* process.*: commands in a running sandbox. exec runs one and answers when
 * it ends (exec.c); spawn starts a background command (command.c), which
 * the other methods read, wait for, signal and feed. */
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
#include "exec.h"
#include "lifecycle.h"
#include "registry/sandbox.h"
#include "spawn.h"
#include "syscalls.h"

#define DEFAULT_MAX_OUTPUT (1024 * 1024)

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
	if (sb->start)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is starting; try again when it has started",
				     sb->name);
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
	sbx_error *err = NULL;
	struct cmd_params cp = { 0 };
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || parse_cmd_params(req, sb, &cp, false, &err) < 0)
		goto fail;
	struct sbx_exec_opts o = {
		.argv = cp.argv,
		.envp = cp.envp,
		.cwd = cp.cwd,
		.user = cp.user,
		.stdin_text = cp.stdin_text,
		.timeout_s = cp.timeout,
		.max_output = (size_t)cp.max_output,
		.base64 = cp.base64,
	};
	if (sbx_exec_start(sb, &o, req, &err) < 0)
		goto fail;
	cmd_params_free(&cp);
	return;
fail:
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
