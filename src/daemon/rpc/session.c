/* session.*: shells whose working directory and exported variables carry
 * over from one command to the next. No shell stays running between
 * commands: each command is a fresh /bin/sh that starts from the state the
 * last one left (written to fd 9 by an EXIT trap), so a command that reads
 * stdin, starts background jobs or leaves a heredoc open cannot wedge the
 * session. The sessions' state is kept by session.c. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "registry/sandbox.h"
#include "session.h"

#define MAX_EXPORTS SBX_SESSION_MAX_EXPORTS
#define DEFAULT_MAX_OUTPUT (1024 * 1024)

/* $1 cwd, $2 exported variables, $3 the command. */
static const char wrapper[] =
	"eval \"$2\"\n"
	"cd -- \"$1\" 2>/dev/null || cd\n"
	"__sbx_cmd=$3\n"
	"shift 3\n"
	"trap '__sbx_rc=$?; { printf \"%s\\n\" \"$PWD\"; export -p; } >&9 2>/dev/null; exit $__sbx_rc' EXIT\n"
	"eval \"$__sbx_cmd\"\n";

/* 'value' quoted for the shell. */
static void shell_quote(struct sbx_buf *b, const char *v)
{
	sbx_buf_append(b, "'", 1);
	for (const char *p = v; *p; p++) {
		if (*p == '\'')
			sbx_buf_append(b, "'\\''", 4);
		else
			sbx_buf_append(b, p, 1);
	}
	sbx_buf_append(b, "'", 1);
}

void rpc_session_create(struct sbx_request *req)
{
	sbx_error *err = NULL;
	yajl_val p = req->params;
	const char *id = NULL, *cwd = NULL;
	char gen_id[13];
	struct sbx_kvlist env = { 0 };
	struct sbx_buf ex = { 0 };
	struct sbx_session *s = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_string(p, "session_id", false, &id, &err) < 0 ||
	    sbx_json_string(p, "cwd", false, &cwd, &err) < 0 || sbx_json_string_map(p, "env", false, &env, &err) < 0)
		goto fail;
	if (!id) {
		if (sbx_random_id(gen_id, &err) < 0)
			goto fail;
		id = gen_id;
	}
	if (!sbx_name_valid(id)) {
		sbx_error_param(&err, "session_id",
				"invalid session id '%.64s': use letters, digits, '_', '.', '-' (up to 63)", id);
		goto fail;
	}
	if (cwd && cwd[0] != '/') {
		sbx_error_param(&err, "cwd", "'cwd' must be an absolute path in the sandbox");
		goto fail;
	}
	if (sb->state != SBX_STATE_STARTED && sb->state != SBX_STATE_PAUSED) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s is %s; a session lives while its sandbox runs: start it first",
			      sb->name, sbx_state_name(sb->state));
		goto fail;
	}
	if (sb->stopping) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s is stopping; its sessions end with it", sb->name);
		goto fail;
	}
	if (sbx_session_find(sb, id)) {
		sbx_error_set(&err, SBX_ERR_EXISTS, "sandbox %s already has a session '%s'", sb->name, id);
		goto fail;
	}
	for (size_t i = 0; i < env.n; i++) {
		const char *k = env.items[i].key;
		bool ok = *k && !(k[0] >= '0' && k[0] <= '9');
		for (const char *q = k; *q && ok; q++)
			ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_';
		if (!ok) {
			sbx_error_param(&err, "env", "'%.64s' is not a shell variable name", k);
			goto fail;
		}
		sbx_buf_printf(&ex, "export %s=", k);
		shell_quote(&ex, env.items[i].value);
		sbx_buf_append(&ex, "\n", 1);
	}
	sbx_buf_append(&ex, "", 0);
	if (ex.len > MAX_EXPORTS) {
		sbx_error_param(&err, "env", "the environment is larger than %d bytes", MAX_EXPORTS);
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->id = strdup(id)) || !(s->cwd = strdup(cwd ? cwd : sb->box->workdir)) ||
	    !(s->exports = strdup(ex.data ? ex.data : ""))) {
		sbx_error_errno(&err, ENOMEM, "session");
		goto fail;
	}
	s->created_ms = sbx_now_ns() / 1000000;
	if (sbx_session_save(sb, s, &err) < 0)
		goto fail;
	s->next = sb->sessions;
	sb->sessions = s;
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "session_id", s->id);
		sbx_gen_kv_str(g, "cwd", s->cwd);
		yajl_gen_map_close(g);
	}
	sbx_kvlist_free(&env);
	sbx_buf_free(&ex);
	sbx_reply_end(req, g);
	return;
fail:
	if (s)
		sbx_session_free(s);
	sbx_kvlist_free(&env);
	sbx_buf_free(&ex);
	sbx_reply_error(req, err);
}

static struct sbx_session *session_from_params(struct sbx_sandbox *sb, yajl_val p, sbx_error **err)
{
	const char *id = NULL;
	if (sbx_json_string(p, "session_id", true, &id, err) < 0)
		return NULL;
	struct sbx_session *s = sbx_session_find(sb, id);
	if (!s)
		sbx_error_set(err, SBX_ERR_NOT_FOUND, "no session '%.64s' in sandbox %s; see 'sandboxctl session ls %s'", id,
			      sb->name, sb->name);
	return s;
}

void rpc_session_list(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb) {
		sbx_reply_error(req, err);
		return;
	}
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_key(g, "sessions");
		yajl_gen_array_open(g);
		for (struct sbx_session *s = sb->sessions; s; s = s->next) {
			yajl_gen_map_open(g);
			sbx_gen_kv_str(g, "session_id", s->id);
			sbx_gen_kv_str(g, "cwd", s->cwd);
			char ts[64];
			sbx_time_rfc3339(s->created_ms * 1000000, ts);
			sbx_gen_kv_str(g, "created_at", ts);
			sbx_gen_key(g, "running");
			yajl_gen_array_open(g);
			for (struct sbx_command *c = sb->commands; c; c = c->next)
				if (!c->exited && c->session && !strcmp(c->session, s->id))
					sbx_gen_str(g, c->id);
			yajl_gen_array_close(g);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

/* A process is detached from its session command when it made a session of
 * its own (setsid) or ignores hang-ups (nohup). */
struct hangup_ctx {
	pid_t leader;
	int killed;
};

static bool detached(pid_t pid, pid_t leader)
{
	char path[64], *text = NULL;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (sbx_read_file_at(AT_FDCWD, path, 4096, &text, NULL, NULL) < 0)
		return true; /* gone already */
	char *rp = strrchr(text, ')');
	int sid = 0;
	bool other = !rp || sscanf(rp + 2, "%*c %*d %*d %d", &sid) != 1 || sid != leader;
	free(text);
	if (other)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (sbx_read_file_at(AT_FDCWD, path, 16384, &text, NULL, NULL) < 0)
		return true;
	char *ign = strstr(text, "\nSigIgn:");
	unsigned long long mask = ign ? strtoull(ign + 8, NULL, 16) : 0;
	free(text);
	return mask & (1ULL << (SIGHUP - 1));
}

static void hangup_one(int pid, void *arg)
{
	struct hangup_ctx *h = arg;
	if (!detached(pid, h->leader) && kill(pid, SIGKILL) == 0)
		h->killed++;
}

void rpc_session_delete(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	struct sbx_session *s = sb ? session_from_params(sb, req->params, &err) : NULL;
	if (!s) {
		sbx_reply_error(req, err);
		return;
	}
	int killed = 0;
	for (struct sbx_command *c = sb->commands; c; c = c->next) {
		if (c->exited || !c->session || strcmp(c->session, s->id))
			continue;
		/* Repeat: a process may fork while we walk. */
		for (int round = 0; round < 20; round++) {
			struct hangup_ctx h = { .leader = c->pid };
			sbx_cgroup_for_each_proc(&sb->d->cg, c->cgroup, hangup_one, &h, NULL);
			killed += h.killed;
			if (!h.killed)
				break;
		}
	}
	sbx_session_delete(sb, s);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "killed", killed);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

struct session_wait {
	struct sbx_request *req;
	size_t max_output;
	bool base64, run_async;
	int64_t start_ms;
};

struct out_bufs {
	struct sbx_buf out, err;
	size_t max;
	bool truncated;
};

static void collect(void *ctx, int stream, const char *data, size_t len, uint64_t end)
{
	struct out_bufs *b = ctx;
	struct sbx_buf *t = stream == 2 ? &b->err : &b->out;
	size_t keep = len;
	if (t->len + keep > b->max) {
		keep = b->max > t->len ? b->max - t->len : 0;
		b->truncated = true;
	}
	sbx_buf_append(t, data, keep);
}

static void session_exec_done(struct sbx_command *c, void *data)
{
	struct session_wait *w = data;
	struct sbx_request *req = w->req;
	if (!c->exited) {
		sbx_error *err = NULL;
		sbx_error_set(&err, SBX_ERR_NOT_FOUND, "sandbox %s was deleted before command %s ended", c->sb->name,
			      c->id);
		sbx_reply_error(req, err);
		free(w);
		return;
	}
	struct out_bufs b = { .max = w->max_output };
	uint64_t pos = 0;
	bool more = false;
	sbx_command_log_read(c, &pos, SIZE_MAX / 2, collect, &b, &more, NULL);
	struct sbx_session *s = sbx_session_find(c->sb, c->session);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "cmd_id", c->id);
		sbx_command_gen_status(g, c);
		sbx_command_gen_output(g, "stdout", &b.out, w->base64);
		sbx_command_gen_output(g, "stderr", &b.err, w->base64);
		sbx_gen_kv_bool(g, "truncated", b.truncated || sbx_command_log_dropped(c) > 0);
		sbx_gen_kv_int(g, "duration_ms", sbx_monotonic_ms() - w->start_ms);
		sbx_gen_kv_str(g, "cwd", s ? s->cwd : NULL);
		yajl_gen_map_close(g);
	}
	sbx_buf_free(&b.out);
	sbx_buf_free(&b.err);
	free(w);
	sbx_reply_end(req, g);
}

static void session_spawned(struct sbx_command *c, int attach_fd, sbx_error *err, void *data)
{
	struct session_wait *w = data;
	struct sbx_request *req = w->req;
	if (!c) {
		free(w);
		sbx_reply_error(req, err);
		return;
	}
	if (w->run_async) {
		free(w);
		yajl_gen g = sbx_reply_begin(req);
		if (g) {
			yajl_gen_map_open(g);
			sbx_gen_kv_str(g, "cmd_id", c->id);
			sbx_gen_kv_int(g, "pid", c->pid);
			yajl_gen_map_close(g);
		}
		sbx_reply_end(req, g);
		return;
	}
	if (sbx_command_on_exit(c, session_exec_done, NULL, w, 0) < 0) {
		free(w);
		sbx_error_errno(&err, ENOMEM, "session");
		sbx_reply_error(req, err);
	}
}

void rpc_session_exec(struct sbx_request *req)
{
	sbx_error *err = NULL;
	yajl_val p = req->params;
	const char *command = NULL, *encoding = "utf-8";
	bool run_async = false;
	double timeout = 0;
	int64_t max_output = DEFAULT_MAX_OUTPUT;
	char **envp = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	/* Sessions end with a stop: say that it is stopped, not that the
	 * session is unknown. */
	if (sb && (sb->state != SBX_STATE_STARTED || sb->stopping)) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s is %s; start or resume it first", sb->name,
			      sb->stopping ? "stopping" : sb->start ? "starting" : sbx_state_name(sb->state));
		goto fail;
	}
	struct sbx_session *s = sb ? session_from_params(sb, p, &err) : NULL;
	if (!s || sbx_json_string(p, "command", true, &command, &err) < 0 ||
	    sbx_json_bool(p, "run_async", false, &run_async, &err) < 0 ||
	    sbx_json_number(p, "timeout_s", false, 0, 31536000, &timeout, &err) < 0 ||
	    sbx_json_int(p, "max_output_bytes", false, 0, 64 * 1024 * 1024, &max_output, &err) < 0 ||
	    sbx_json_string(p, "encoding", false, &encoding, &err) < 0)
		goto fail;
	if (strcmp(encoding, "utf-8") && strcmp(encoding, "base64")) {
		sbx_error_param(&err, "encoding", "encoding must be \"utf-8\" or \"base64\"");
		goto fail;
	}
	if (strlen(command) > MAX_EXPORTS) {
		sbx_error_param(&err, "command", "the command is longer than %d bytes; put it in a file", MAX_EXPORTS);
		goto fail;
	}
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)wrapper, (char *)"sh", s->cwd, s->exports,
			 (char *)command, NULL };
	envp = sbx_box_env(sb->box, NULL);
	if (!envp) {
		sbx_error_errno(&err, ENOMEM, "session");
		goto fail;
	}
	struct sbx_spawn_opts o = {
		.argv = argv,
		.envp = envp,
		.cwd = "/",
		.user = sb->box->user,
		.timeout_s = timeout,
		.session = s->id,
		.log_cap = sb->d->cfg.command_log_mb * 1024 * 1024,
	};
	struct session_wait *w = calloc(1, sizeof(*w));
	if (!w) {
		sbx_error_errno(&err, ENOMEM, "session");
		goto fail;
	}
	w->req = req;
	w->max_output = (size_t)max_output;
	w->base64 = !strcmp(encoding, "base64");
	w->run_async = run_async;
	w->start_ms = sbx_monotonic_ms();
	if (sbx_command_spawn(sb, &o, session_spawned, w, &err) < 0) {
		free(w);
		goto fail;
	}
	sbx_strv_free(envp);
	return;
fail:
	sbx_strv_free(envp);
	sbx_reply_error(req, err);
}
