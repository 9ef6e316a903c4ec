/* Background commands. sandboxd forks a process that starts the command
 * inside the sandbox and then becomes sandbox-monitor, the command's parent
 * for the rest of its life. The monitor writes the output log and the exit
 * status into sandboxes/<id>/cmds/<cmd_id>/; sandboxd only reads them,
 * learning of changes through inotify and the monitor's pidfd. Nothing the
 * command does can reach sandboxd's memory, and sandboxd may restart at any
 * time without the command noticing. */
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
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "command.h"
#include "registry/sandbox.h"
#include "session.h"
#include "spawn.h"
#include "syscalls.h"

#define SEG SBX_LOG_SEGMENT
#define HDR 8
#define READ_CHUNK (16 * SEG)
#define FOLLOW_HIGH_WATER ((size_t)4 << 20)
#define NOTIFY_CHUNK ((size_t)256 << 10)

/* Fixed descriptors of sandbox-monitor (see src/monitor/monitor.c). */
enum { MON_OUT = 3, MON_ERR, MON_LOG, MON_DIR, MON_STDIN, MON_CGROUP, MON_NFDS };

struct sbx_follower {
	struct sbx_follower *next;
	struct sbx_command *cmd;
	struct sbx_conn *conn;
	uint64_t pos;
	bool base64;
	bool waiting_drain;
};

/* A command whose monitor has not reported yet. Its set-up may take long
 * on a busy host; the loop goes on meanwhile. */
struct sbx_spawn_pending {
	struct sbx_spawn_pending *next;
	struct sbx_command *c;
	int report, mon_pidfd, stdin_keep, tty_fd;
	pid_t mon;
	bool stdin_pipe, expired;
	struct sbx_watch *w, *timer, *mon_w;
	struct sbx_fdhold held; /* the monitor's copies, until it has a table of its own */
	sbx_spawn_done_fn done;
	void *data;
	size_t len;
	char text[1200];
};

struct sbx_cmd_waiter {
	struct sbx_cmd_waiter *next;
	struct sbx_command *cmd;
	sbx_cmd_done_fn fn;
	sbx_cmd_timeout_fn tfn;
	void *data;
	struct sbx_watch *timer;
};

static int cmd_dir_rel(const struct sbx_command *c, char *buf, size_t size, const char *file)
{
	return snprintf(buf, size, "sandboxes/%s/cmds/%s%s%s", c->sb->id, c->id, file ? "/" : "", file ? file : "");
}

struct sbx_command *sbx_command_find(struct sbx_sandbox *sb, const char *id)
{
	for (struct sbx_command *c = sb->commands; c; c = c->next)
		if (!strcmp(c->id, id))
			return c;
	return NULL;
}

struct sbx_command *sbx_command_from_params(struct sbx_sandbox *sb, yajl_val params, sbx_error **err)
{
	const char *id = NULL;
	if (sbx_json_string(params, "cmd_id", true, &id, err) < 0)
		return NULL;
	/* "service": the command the image's service runs as now. */
	if (!strcmp(id, "service") && sb->service_cmd[0])
		id = sb->service_cmd;
	struct sbx_command *c = sbx_command_find(sb, id);
	if (!c)
		sbx_error_set(err, SBX_ERR_NOT_FOUND, "no command '%.64s' in sandbox %s; see 'sandboxctl ps %s'", id,
			      sb->name, sb->name);
	return c;
}

static void gen_ms(yajl_gen g, const char *key, int64_t ms)
{
	if (!ms) {
		sbx_gen_kv_null(g, key);
		return;
	}
	char ts[64];
	sbx_time_rfc3339(ms * 1000000, ts);
	sbx_gen_kv_str(g, key, ts);
}

void sbx_command_gen_status(yajl_gen g, const struct sbx_command *c)
{
	if (c->exited && !c->lost)
		sbx_gen_kv_int(g, "exit_code", c->exit_code);
	else
		sbx_gen_kv_null(g, "exit_code");
	sbx_gen_kv_str(g, "signal", c->exited && c->signal ? sbx_signal_name(c->signal) : NULL);
	sbx_gen_kv_bool(g, "timed_out", c->timed_out);
}

void sbx_command_gen_output(yajl_gen g, const char *key, const struct sbx_buf *b, bool base64)
{
	size_t len = 0;
	char *s = base64 ? sbx_base64_encode(b->data ? b->data : "", b->len, &len)
			 : sbx_utf8_sanitize(b->data ? b->data : "", b->len, &len);
	sbx_gen_key(g, key);
	if (s)
		sbx_gen_strn(g, s, len);
	else
		yajl_gen_null(g);
	free(s);
}

void sbx_command_gen(yajl_gen g, const struct sbx_command *c)
{
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "cmd_id", c->id);
	sbx_gen_kv_int(g, "pid", c->pid);
	sbx_gen_strv(g, "argv", c->argv);
	gen_ms(g, "started_at", c->started_ms);
	sbx_gen_kv_bool(g, "exited", c->exited);
	sbx_command_gen_status(g, c);
	gen_ms(g, "finished_at", c->exited ? c->finished_ms : 0);
	sbx_gen_kv_bool(g, "tty", c->tty);
	sbx_gen_kv_bool(g, "stdin", c->has_stdin);
	sbx_gen_kv_str(g, "session_id", c->session);
	if (c->lost)
		sbx_gen_kv_bool(g, "lost", true);
	yajl_gen_map_close(g);
}

/* ---- the output log ---- */

static int open_log(struct sbx_command *c, sbx_error **err)
{
	char rel[128];
	cmd_dir_rel(c, rel, sizeof(rel), "output");
	int fd = openat(c->sb->d->state_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "command %s: open its log", c->id);
	return fd;
}

uint64_t sbx_command_log_dropped(struct sbx_command *c)
{
	char rel[128], *text = NULL;
	cmd_dir_rel(c, rel, sizeof(rel), "dropped");
	uint64_t n = 0;
	if (sbx_read_file_at(c->sb->d->state_fd, rel, 64, &text, NULL, NULL) == 0)
		n = strtoull(text, NULL, 10);
	free(text);
	return n;
}

int sbx_command_log_read(struct sbx_command *c, uint64_t *pos, size_t max, sbx_log_emit emit, void *ctx, bool *more,
			 sbx_error **err)
{
	*more = false;
	_cleanup_close_ int fd = open_log(c, err);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "command %s: stat its log", c->id);
	uint64_t size = (uint64_t)st.st_size;
	/* Punched-out segments are holes: the first data is the oldest kept. */
	off_t first = lseek(fd, 0, SEEK_DATA);
	uint64_t kept = first < 0 ? size : ((uint64_t)first + SEG - 1) / SEG * SEG;
	if (*pos < kept)
		*pos = kept;
	if (*pos >= size)
		return 0;
	_cleanup_free_ char *buf = malloc(READ_CHUNK);
	if (!buf)
		return sbx_error_errno(err, ENOMEM, "read log");
	size_t emitted = 0;
	uint64_t p = *pos - *pos % SEG;
	while (p < size) {
		if (emitted >= max) {
			*more = true;
			break;
		}
		uint64_t chunk_start = p - p % SEG;
		size_t want = (size_t)(size - chunk_start < READ_CHUNK ? size - chunk_start : READ_CHUNK);
		ssize_t n = pread(fd, buf, want, (off_t)chunk_start);
		if (n < 0)
			return sbx_error_errno(err, errno, "command %s: read its log", c->id);
		if (n == 0)
			break;
		uint64_t chunk_end = chunk_start + (uint64_t)n;
		bool incomplete = false;
		while (p < chunk_end && emitted < max) {
			uint64_t seg_end = p - p % SEG + SEG;
			if (seg_end - p < HDR + 1) {
				p = seg_end;
				continue;
			}
			if (p + HDR > chunk_end) {
				incomplete = true;
				break;
			}
			const unsigned char *h = (const unsigned char *)buf + (p - chunk_start);
			uint32_t len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
			int stream = h[4];
			if (len == 0 || len > SEG - HDR || p + HDR + len > seg_end || (stream != 1 && stream != 2)) {
				p = seg_end; /* padding, or a segment being punched right now */
				continue;
			}
			if (p + HDR + len > chunk_end) {
				incomplete = true;
				break;
			}
			uint64_t rec_end = p + HDR + len;
			if (rec_end > *pos) {
				uint64_t skip = *pos > p + HDR ? *pos - (p + HDR) : 0;
				size_t take = len - skip;
				if (take > max - emitted)
					take = max - emitted; /* the rest of the record next time */
				emit(ctx, stream, (const char *)h + HDR + skip, take, p + HDR + skip + take);
				emitted += take;
				*pos = p + HDR + skip + take;
				if (*pos < rec_end)
					break;
			}
			p = rec_end;
		}
		if (emitted >= max && p < size)
			*more = true;
		/* Chunks are whole segments and records never cross one, so an
		 * incomplete record is the one being written at the end. */
		if (incomplete)
			break;
		if ((uint64_t)n < want)
			break;
	}
	if (*pos < p && p <= size && !*more)
		*pos = p; /* padding consumed */
	return 0;
}

/* ---- following ---- */

struct notify_ctx {
	struct sbx_follower *f;
	struct sbx_buf data, line;
	int stream;
	uint64_t end;
};

/* One process.output line. Written directly rather than through yajl_gen:
 * this is the path `logs --follow` throughput depends on, and escaping in
 * one pass into one buffer is several times faster. */
static void send_output(struct notify_ctx *n)
{
	if (!n->data.len && !n->stream)
		return;
	struct sbx_follower *f = n->f;
	struct sbx_buf *line = &n->line;
	line->len = 0;
	sbx_buf_printf(line,
		       "{\"jsonrpc\":\"2.0\",\"method\":\"process.output\",\"params\":{\"sandbox\":\"%s\","
		       "\"cmd_id\":\"%s\",\"stream\":\"%s\",\"data\":",
		       f->cmd->sb->id, f->cmd->id, n->stream == 2 ? "stderr" : "stdout");
	int r;
	if (f->base64) {
		size_t blen = 0;
		char *b64 = sbx_base64_encode(n->data.data ? n->data.data : "", n->data.len, &blen);
		r = b64 && sbx_buf_append(line, "\"", 1) == 0 && sbx_buf_append(line, b64, blen) == 0 &&
				    sbx_buf_append(line, "\"", 1) == 0
			    ? 0
			    : -1;
		free(b64);
	} else {
		r = sbx_json_append_string(line, n->data.data ? n->data.data : "", n->data.len);
	}
	if (r == 0 && sbx_buf_printf(line, ",\"offset\":%llu}}", (unsigned long long)n->end) >= 0)
		sbx_conn_send_line(f->conn, line->data, line->len);
	n->data.len = 0;
	n->stream = 0;
}

static void collect(void *ctx, int stream, const char *data, size_t len, uint64_t end)
{
	struct notify_ctx *n = ctx;
	if (n->stream && (n->stream != stream || n->data.len + len > NOTIFY_CHUNK))
		send_output(n);
	n->stream = stream;
	sbx_buf_append(&n->data, data, len);
	n->end = end;
}

static void follower_free(struct sbx_follower *f)
{
	struct sbx_command *c = f->cmd;
	for (struct sbx_follower **pp = &c->followers; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	if (f->waiting_drain)
		sbx_conn_cancel_drain(f->conn, f);
	sbx_conn_release(f->conn);
	free(f);
}

static void send_exit(struct sbx_follower *f)
{
	struct sbx_command *c = f->cmd;
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return;
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "jsonrpc", "2.0");
	sbx_gen_kv_str(g, "method", "process.exit");
	sbx_gen_key(g, "params");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", c->sb->id);
	sbx_gen_kv_str(g, "cmd_id", c->id);
	sbx_command_gen_status(g, c);
	if (c->lost)
		sbx_gen_kv_bool(g, "lost", true);
	sbx_gen_kv_int(g, "offset", (int64_t)f->pos);
	sbx_gen_kv_int(g, "dropped_bytes", (int64_t)sbx_command_log_dropped(c));
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	const unsigned char *out;
	size_t olen;
	if (yajl_gen_get_buf(g, &out, &olen) == yajl_gen_status_ok)
		sbx_conn_send_line(f->conn, (const char *)out, olen);
}

static void follower_drained(void *data);

/* Send what the log has beyond f->pos, as fast as the client reads. */
static void follower_pump(struct sbx_follower *f)
{
	struct sbx_command *c = f->cmd;
	for (;;) {
		if (sbx_conn_closed(f->conn)) {
			follower_free(f);
			return;
		}
		if (sbx_conn_backlog(f->conn) > FOLLOW_HIGH_WATER) {
			if (!f->waiting_drain && sbx_conn_on_drain(f->conn, follower_drained, f) == 0)
				f->waiting_drain = true;
			return;
		}
		/* Read the state before the log: output logged before the exit
		 * was recorded is then certainly seen below. */
		bool ended = c->exited;
		struct notify_ctx n = { .f = f };
		bool more = false;
		sbx_error *err = NULL;
		int r = sbx_command_log_read(c, &f->pos, FOLLOW_HIGH_WATER, collect, &n, &more, &err);
		send_output(&n);
		sbx_buf_free(&n.data);
		sbx_buf_free(&n.line);
		if (r < 0) {
			sbx_debug("follow %s: %s", c->id, err ? err->msg : "?");
			sbx_error_free(err);
			ended = true;
			more = false;
		}
		if (more)
			continue;
		if (ended) {
			send_exit(f);
			follower_free(f);
		}
		return;
	}
}

static void follower_drained(void *data)
{
	struct sbx_follower *f = data;
	f->waiting_drain = false;
	follower_pump(f);
}

static void pump_followers(struct sbx_command *c)
{
	struct sbx_follower *f = c->followers;
	while (f) {
		struct sbx_follower *next = f->next;
		if (!f->waiting_drain)
			follower_pump(f);
		f = next;
	}
}

int sbx_command_follow(struct sbx_command *c, struct sbx_conn *conn, uint64_t pos, bool base64, sbx_error **err)
{
	struct sbx_follower *f = calloc(1, sizeof(*f));
	if (!f)
		return sbx_error_errno(err, ENOMEM, "follow");
	f->cmd = c;
	f->conn = sbx_conn_ref(conn);
	f->pos = pos;
	f->base64 = base64;
	f->next = c->followers;
	c->followers = f;
	follower_pump(f); /* what is there already; may end it at once */
	return 0;
}

/* ---- the end of a command ---- */

static void waiter_free(struct sbx_cmd_waiter *w)
{
	for (struct sbx_cmd_waiter **pp = &w->cmd->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	sbx_loop_unwatch(w->timer);
	free(w);
}

static void waiter_timeout(struct sbx_watch *t, void *data)
{
	struct sbx_cmd_waiter *w = data;
	w->timer = NULL;
	sbx_cmd_timeout_fn tfn = w->tfn;
	void *wd = w->data;
	waiter_free(w);
	tfn(wd);
}

int sbx_command_on_exit(struct sbx_command *c, sbx_cmd_done_fn fn, sbx_cmd_timeout_fn tfn, void *data,
			int64_t timeout_ms)
{
	if (c->exited) {
		fn(c, data);
		return 0;
	}
	struct sbx_cmd_waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	w->cmd = c;
	w->fn = fn;
	w->tfn = tfn;
	w->data = data;
	if (timeout_ms > 0 && tfn) {
		w->timer = sbx_loop_timer(c->sb->d->loop, timeout_ms, waiter_timeout, w);
		if (!w->timer) {
			free(w);
			return -1;
		}
	}
	w->next = c->waiters;
	c->waiters = w;
	return 0;
}

static void answer_waiters(struct sbx_command *c)
{
	while (c->waiters) {
		struct sbx_cmd_waiter *w = c->waiters;
		sbx_cmd_done_fn fn = w->fn;
		void *data = w->data;
		waiter_free(w);
		fn(c, data);
	}
}

/* "exited N" or "killed N", then "timed_out 0|1", "finished_ms T". */
static bool read_status(struct sbx_command *c)
{
	char rel[128], *text = NULL;
	cmd_dir_rel(c, rel, sizeof(rel), "status");
	if (sbx_read_file_at(c->sb->d->state_fd, rel, 4096, &text, NULL, NULL) < 0)
		return false;
	char kind[16] = "";
	int num = 0, to = 0;
	long long fin = 0;
	bool ok = sscanf(text, "%15s %d timed_out %d finished_ms %lld", kind, &num, &to, &fin) == 4;
	free(text);
	if (!ok)
		return false;
	c->exited = true;
	c->timed_out = to != 0;
	c->finished_ms = fin;
	if (!strcmp(kind, "exited")) {
		c->exit_code = num;
		c->signal = 0;
	} else {
		c->exit_code = 128 + num;
		c->signal = num;
	}
	return true;
}

static void command_ended(struct sbx_command *c)
{
	if (c->session)
		sbx_session_command_ended(c);
	c->sb->activity_ns = sbx_now_ns();
	sbx_debug("command %s in sandbox %s ended: code %d", c->id, c->sb->id, c->exit_code);
	answer_waiters(c);
	pump_followers(c);
}

static void close_input(struct sbx_command *c)
{
	sbx_loop_unwatch(c->input_w);
	c->input_w = NULL;
	sbx_closep(&c->input_fd);
}

static void input_fail_all(struct sbx_command *c, const char *why);

/* The monitor is gone: whatever it did not record is lost. */
static void monitor_gone(struct sbx_command *c)
{
	sbx_loop_unwatch(c->monitor_w);
	c->monitor_w = NULL;
	if (c->monitor_pidfd >= 0) {
		waitid((idtype_t)P_PIDFD, (id_t)c->monitor_pidfd, NULL, WEXITED | WNOHANG);
		sbx_closep(&c->monitor_pidfd);
	}
	if (c->wd >= 0) {
		inotify_rm_watch(c->sb->d->inotify_fd, c->wd);
		c->wd = -1;
	}
	input_fail_all(c, "it has exited");
	close_input(c);
	bool was = c->exited;
	if (!c->exited && !read_status(c)) {
		c->exited = true;
		c->lost = true;
		c->exit_code = -1;
		c->finished_ms = sbx_now_ns() / 1000000;
		sbx_warn("command %s in sandbox %s: its monitor ended without recording an exit status", c->id,
			 c->sb->id);
	}
	if (c->cgroup && unlinkat(c->sb->d->cg.mount_fd, c->cgroup, AT_REMOVEDIR) < 0 && errno == EBUSY)
		c->sb->prune_again = true; /* busy: nohup'd children; the tick prunes it once they go */
	if (!was)
		command_ended(c);
	else
		pump_followers(c);
}

static void monitor_event(struct sbx_watch *w, uint32_t events, void *data)
{
	monitor_gone(data);
}

static struct sbx_command *find_by_wd(struct sbx_daemon *d, int wd)
{
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		for (struct sbx_command *c = sb->commands; c; c = c->next)
			if (c->wd == wd)
				return c;
	return NULL;
}

static void inotify_event_cb(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_daemon *d = data;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(d->inotify_fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			struct sbx_command *c = find_by_wd(d, ev->wd);
			if (!c)
				continue;
			if ((ev->mask & IN_MOVED_TO) && ev->len && !strcmp(ev->name, "status") && !c->exited) {
				if (read_status(c))
					command_ended(c);
			} else if (ev->mask & IN_MODIFY) {
				pump_followers(c);
			}
		}
	}
}

/* ---- spawning ---- */

static int write_meta(struct sbx_command *c, sbx_error **err)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return sbx_error_errno(err, ENOMEM, "command state");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "id", c->id);
	sbx_gen_kv_int(g, "pid", c->pid);
	sbx_gen_kv_int(g, "monitor_pid", c->monitor_pid);
	sbx_gen_kv_int(g, "monitor_start", (int64_t)c->monitor_start);
	sbx_gen_strv(g, "argv", c->argv);
	sbx_gen_kv_int(g, "started_ms", c->started_ms);
	sbx_gen_kv_bool(g, "tty", c->tty);
	sbx_gen_kv_bool(g, "stdin", c->has_stdin);
	sbx_gen_kv_bool(g, "attached", c->attached);
	sbx_gen_kv_str(g, "session", c->session);
	sbx_gen_kv_str(g, "cgroup", c->cgroup);
	sbx_gen_kv_double(g, "timeout_s", c->timeout_s);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	char rel[128];
	cmd_dir_rel(c, rel, sizeof(rel), "cmd.json");
	return sbx_write_file_atomic_at(c->sb->d->state_fd, rel, buf, len, 0600, err);
}

static void command_free(struct sbx_command *c)
{
	while (c->followers) {
		send_exit(c->followers);
		follower_free(c->followers);
	}
	while (c->waiters) {
		struct sbx_cmd_waiter *w = c->waiters;
		sbx_cmd_done_fn fn = w->fn;
		void *data = w->data;
		waiter_free(w);
		fn(c, data);
	}
	input_fail_all(c, "its sandbox is gone");
	sbx_loop_unwatch(c->monitor_w);
	sbx_closep(&c->monitor_pidfd);
	if (c->wd >= 0)
		inotify_rm_watch(c->sb->d->inotify_fd, c->wd);
	close_input(c);
	free(c->cgroup);
	free(c->session);
	sbx_strv_free(c->argv);
	free(c);
}

static int watch_command(struct sbx_command *c, sbx_error **err)
{
	struct sbx_daemon *d = c->sb->d;
	char rel[128];
	_cleanup_free_ char *path = NULL;
	cmd_dir_rel(c, rel, sizeof(rel), NULL);
	if (asprintf(&path, "%s/%s", d->cfg.state_dir, rel) < 0)
		return sbx_error_errno(err, ENOMEM, "watch command");
	c->wd = inotify_add_watch(d->inotify_fd, path, IN_MODIFY | IN_MOVED_TO);
	if (c->wd < 0)
		return sbx_error_errno(err, errno, "inotify watch of %s (raise fs.inotify.max_user_watches)", path);
	if (c->monitor_pidfd >= 0) {
		c->monitor_w = sbx_loop_watch(d->loop, c->monitor_pidfd, EPOLLIN, monitor_event, c);
		if (!c->monitor_w)
			return sbx_error_errno(err, errno, "watch monitor");
	}
	return 0;
}

/* Keep SBX_MAX_COMMANDS: forget the oldest that ended and nobody watches. */
static int make_room(struct sbx_sandbox *sb, sbx_error **err)
{
	size_t n = 0;
	for (struct sbx_command *c = sb->commands; c; c = c->next)
		n++;
	for (struct sbx_spawn_pending *p = sb->spawning; p; p = p->next)
		n++;
	while (n >= SBX_MAX_COMMANDS) {
		struct sbx_command **oldest = NULL;
		for (struct sbx_command **pp = &sb->commands; *pp; pp = &(*pp)->next) {
			struct sbx_command *c = *pp;
			if (c->exited && !c->monitor_w && !c->followers && !c->waiters &&
			    (!oldest || c->started_ms <= (*oldest)->started_ms))
				oldest = pp;
		}
		if (!oldest)
			return sbx_error_set(err, SBX_ERR_LIMIT,
					     "sandbox %s already has %d running commands; kill some first", sb->name,
					     SBX_MAX_COMMANDS);
		struct sbx_command *c = *oldest;
		*oldest = c->next;
		char rel[128];
		cmd_dir_rel(c, rel, sizeof(rel), NULL);
		sbx_rm_rf_at(sb->d->state_fd, rel, NULL);
		command_free(c);
		n--;
	}
	return 0;
}

/* Move fds to their fixed numbers; src[i] < 0 closes target i. */
static int place_fds(const int src[], int count, int first)
{
	int tmp[16];
	for (int i = 0; i < count; i++)
		tmp[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, 64) : -1;
	for (int i = 0; i < count; i++) {
		if (tmp[i] >= 0) {
			if (dup2(tmp[i], first + i) < 0)
				return -1;
		} else {
			close(first + i);
		}
	}
	return 0;
}

static int send_report(int sock, const char *text, int fd)
{
	return sbx_send_with_fd(sock, text, strlen(text), fd, 0) < 0 ? -1 : 0;
}

struct monitor_args {
	struct sbx_exec_config ec;
	int report;
	int log_fd, dir_fd, cg_fd, stdin_keep, out_r, err_r;
	bool attach;
	int64_t cap, timeout_ms, setup_timeout_ms;
	int exe_fd;
};

static void report_failure(int sock, const sbx_error *err)
{
	char line[1100];
	snprintf(line, sizeof(line), "E%d %d %s\n", err ? err->code : SBX_ERR_INTERNAL, err ? err->errnum : 0,
		 err && err->msg ? err->msg : "exec failed");
	send_report(sock, line, -1);
}

/* In the forked child: the command's set-up, bounded. When the bound
 * passes, sandboxd hears it at once, before the wait for what was started
 * to die (in a starved group dying takes a while too). */
static int monitor_setup(struct monitor_args *a, struct sbx_spawned *sp, sbx_error **err)
{
	struct sbx_exec_setup st;
	if (sbx_spawn_exec_begin(&a->ec, &st, err) < 0)
		return -1;
	int64_t deadline = sbx_monotonic_ms() + a->setup_timeout_ms;
	while (!sbx_spawn_exec_read(&st)) {
		int64_t left = deadline - sbx_monotonic_ms();
		if (left <= 0) {
			sbx_error_set(err, SBX_ERR_TIMEOUT,
				      "its set-up took longer than %lld s (the sandbox or the host is very busy); the "
				      "command was killed before it ran",
				      (long long)(a->setup_timeout_ms + 999) / 1000);
			report_failure(a->report, err ? *err : NULL);
			sbx_spawn_exec_abort(&st);
			_exit(1);
		}
		struct pollfd p = { .fd = st.report_fd, .events = POLLIN };
		poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
	}
	/* The report ends when the helper has closed its end: it is exiting. */
	waitid((idtype_t)P_PIDFD, (id_t)st.helper_pidfd, NULL, WEXITED);
	return sbx_spawn_exec_finish(&st, sp, err);
}

/* In the forked child: start the command, report, become the monitor. */
__attribute__((noreturn)) static void monitor_child(struct monitor_args *a)
{
	sbx_error *err = NULL;
	setsid();
	prctl(PR_SET_NAME, "sandbox-monitor", 0, 0, 0);
	/* Until the monitor has its signalfd, SIGUSR1 (end of input) must not
	 * kill it; the mask survives exec, and the command resets its own. */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, NULL);
	/* A copy of sandboxd holds a descriptor per sandbox; the helper it
	 * clones next would copy them all again, and each copy costs every
	 * exec time in proportion to the number of sandboxes. */
	const struct sbx_exec_config *ec = &a->ec;
	int keep[] = { a->report, a->log_fd, a->dir_fd, a->cg_fd, a->stdin_keep, a->out_r, a->err_r, a->exe_fd,
		       ec->init_pidfd, ec->cgroup_fd, ec->stdio[0], ec->stdio[1], ec->stdio[2], ec->extra_fd,
		       ec->v1_procs[0], ec->v1_procs[1], ec->v1_procs[2] };
	sbx_close_all_but(keep, SBX_ARRAY_SIZE(keep));
	struct sbx_spawned sp;
	if (monitor_setup(a, &sp, &err) < 0) {
		report_failure(a->report, err);
		_exit(1);
	}
	char line[64];
	snprintf(line, sizeof(line), "P%d\n", (int)sp.pid);
	if (send_report(a->report, line, sp.tty_fd) < 0) {
		kill(sp.pid, SIGKILL);
		_exit(1);
	}
	int out_src = a->out_r, err_src = a->err_r;
	if (a->ec.tty)
		out_src = a->attach ? -1 : sp.tty_fd;
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	int fds[] = { nul, nul, nul, out_src, err_src, a->log_fd, a->dir_fd, a->stdin_keep, a->cg_fd };
	if (nul < 0 || place_fds(fds, (int)SBX_ARRAY_SIZE(fds), 0) < 0) {
		kill(sp.pid, SIGKILL);
		_exit(1);
	}
	char pid_s[24], cap_s[24], to_s[24];
	snprintf(pid_s, sizeof(pid_s), "%d", (int)sp.pid);
	snprintf(cap_s, sizeof(cap_s), "%lld", (long long)a->cap);
	snprintf(to_s, sizeof(to_s), "%lld", (long long)a->timeout_ms);
	char *const argv[] = { (char *)"sandbox-monitor", pid_s, cap_s, to_s, NULL };
	char *const envp[] = { NULL };
	sbx_close_range(MON_NFDS, ~0U, CLOSE_RANGE_CLOEXEC);
	syscall(SYS_execveat, a->exe_fd, "", argv, envp, AT_EMPTY_PATH);
	/* No monitor: the command must not run unobserved. */
	kill(-sp.pid, SIGKILL);
	kill(sp.pid, SIGKILL);
	_exit(127);
}

/* The monitor's own bound on the set-up, and a margin over it. */
#define PENDING_MARGIN_MS 30000

static void pending_unlink(struct sbx_spawn_pending *p)
{
	for (struct sbx_spawn_pending **pp = &p->c->sb->spawning; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
}

/* The monitor has said something or is gone: it no longer shares
 * sandboxd's descriptor table. */
static void pending_release(struct sbx_spawn_pending *p)
{
	sbx_loop_unwatch(p->mon_w);
	p->mon_w = NULL;
	sbx_fdhold_release(&p->held);
}

static void pending_mon_gone(struct sbx_watch *w, uint32_t events, void *data)
{
	(void)w;
	(void)events;
	pending_release(data); /* then its end of the report closes */
}

/* The spawn failed: nothing of it stays. */
static void pending_fail(struct sbx_spawn_pending *p, sbx_error *err)
{
	struct sbx_command *c = p->c;
	struct sbx_daemon *d = c->sb->d;
	sbx_loop_unwatch(p->w);
	sbx_loop_unwatch(p->timer);
	pending_release(p);
	pending_unlink(p);
	sbx_pidfd_send_signal(p->mon_pidfd, SIGKILL, NULL, 0);
	waitid((idtype_t)P_PIDFD, (id_t)p->mon_pidfd, NULL, WEXITED);
	sbx_closep(&p->mon_pidfd);
	/* Its command, if it got that far, is in the group. */
	sbx_cgroup_kill(&d->cg, c->cgroup, NULL);
	unlinkat(d->cg.mount_fd, c->cgroup, AT_REMOVEDIR);
	char rel[128];
	cmd_dir_rel(c, rel, sizeof(rel), NULL);
	sbx_rm_rf_at(d->state_fd, rel, NULL);
	sbx_closep(&p->report);
	sbx_closep(&p->stdin_keep);
	sbx_closep(&p->tty_fd);
	sbx_spawn_done_fn done = p->done;
	void *data = p->data;
	free(p);
	command_free(c);
	if (done)
		done(NULL, -1, err, data);
	else
		sbx_error_free(err);
}

/* "P<pid>": the command runs under its monitor. */
static void pending_started(struct sbx_spawn_pending *p, pid_t cmd_pid)
{
	struct sbx_command *c = p->c;
	struct sbx_sandbox *sb = c->sb;
	sbx_loop_unwatch(p->w);
	sbx_loop_unwatch(p->timer);
	pending_release(p);
	pending_unlink(p);
	sbx_closep(&p->report);
	c->pid = cmd_pid;
	c->monitor_pid = p->mon;
	c->monitor_start = sbx_proc_starttime(p->mon);
	c->monitor_pidfd = sbx_take_fd(&p->mon_pidfd);
	int attach_fd = -1;
	if (c->tty && c->attached)
		attach_fd = sbx_take_fd(&p->tty_fd);
	else if (c->tty)
		c->input_fd = sbx_take_fd(&p->tty_fd);
	else if (p->stdin_pipe)
		c->input_fd = sbx_take_fd(&p->stdin_keep);
	sbx_closep(&p->stdin_keep);
	sbx_closep(&p->tty_fd);
	if (c->input_fd >= 0)
		sbx_set_nonblock(c->input_fd, true);
	sbx_spawn_done_fn done = p->done;
	void *data = p->data;
	free(p);
	c->next = sb->commands;
	sb->commands = c;
	sbx_error *err = NULL;
	if (write_meta(c, &err) < 0 || watch_command(c, &err) < 0) {
		/* Cannot follow it: do not leave it running unobserved. It is
		 * listed, and ends like any other, lost if need be. */
		sbx_cgroup_kill(&sb->d->cg, c->cgroup, NULL);
		sbx_error_prefix(&err, "sandbox %s: spawn", sb->name);
		sbx_closep(&attach_fd);
		done(NULL, -1, err, data);
		return;
	}
	/* A quick command may have recorded its status before the watch was
	 * in place; its monitor may live on (a background child keeps the
	 * output open), so nothing else would tell. */
	if (read_status(c))
		command_ended(c);
	sb->activity_ns = sbx_now_ns();
	done(c, attach_fd, NULL, data);
}

static void pending_report(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_spawn_pending *p = data;
	bool eof = false;
	pending_release(p);
	for (;;) {
		int got[1];
		size_t n_got = 0;
		ssize_t n = sbx_recv_with_fds(p->report, p->text + p->len, sizeof(p->text) - 1 - p->len, 0, got, 1,
					      &n_got, NULL);
		if (n_got && p->tty_fd < 0)
			p->tty_fd = got[0];
		else if (n_got)
			close(got[0]);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			eof = true;
			break;
		}
		p->len += (size_t)n;
		if (p->len >= sizeof(p->text) - 1)
			break;
	}
	p->text[p->len] = '\0';
	char *nl = memchr(p->text, '\n', p->len);
	if (!nl && !eof && p->len < sizeof(p->text) - 1)
		return; /* a line comes whole */
	sbx_error *err = NULL;
	const char *sbname = p->c->sb->name;
	if (p->text[0] == 'P' && nl) {
		pid_t cmd_pid = (pid_t)atoi(p->text + 1);
		if (cmd_pid > 0) {
			pending_started(p, cmd_pid);
			return;
		}
	}
	int code = SBX_ERR_INTERNAL, errnum = 0, off = 0;
	if (p->expired) {
		sbx_error_set(&err, SBX_ERR_TIMEOUT,
			      "its set-up did not finish within %d s (the sandbox or the host is too busy); it was killed",
			      (SBX_EXEC_SETUP_TIMEOUT_MS + PENDING_MARGIN_MS) / 1000);
	} else if (p->text[0] == 'E' && sscanf(p->text, "E%d %d %n", &code, &errnum, &off) >= 2 && off > 0) {
		sbx_error_set(&err, code, "%.*s", (int)strcspn(p->text + off, "\n"), p->text + off);
		if (err)
			err->errnum = errnum;
		sbx_sandbox_explain_fork_failure(p->c->sb, &err);
	} else {
		sbx_error_set(&err, SBX_ERR_INTERNAL, "the command's monitor exited before starting it");
	}
	sbx_error_prefix(&err, "sandbox %s: spawn", sbname);
	pending_fail(p, err);
}

static void pending_expired(struct sbx_watch *t, void *data)
{
	struct sbx_spawn_pending *p = data;
	p->timer = NULL;
	p->expired = true;
	sbx_warn("sandbox %s: command %s: its monitor did not report within %d s; killing it", p->c->sb->id, p->c->id,
		 (SBX_EXEC_SETUP_TIMEOUT_MS + PENDING_MARGIN_MS) / 1000);
	sbx_pidfd_send_signal(p->mon_pidfd, SIGKILL, NULL, 0); /* its end of the report closes */
}

int sbx_command_spawn(struct sbx_sandbox *sb, const struct sbx_spawn_opts *o, sbx_spawn_done_fn done, void *data,
		      sbx_error **err)
{
	struct sbx_daemon *d = sb->d;
	_cleanup_close_ int dirfd = -1, logfd = -1, statefd = -1, nullfd = -1, mon_pidfd = -1;
	int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, in_p[2] = { -1, -1 }, rep[2] = { -1, -1 };
	struct sbx_exec_config ec = { .cgroup_fd = -1 };
	for (int i = 0; i < SBX_CTRL_COUNT; i++)
		ec.v1_procs[i] = -1;
	int ret = -1;
	char rel[128];
	struct sbx_command *c = NULL;
	struct sbx_spawn_pending *pend = NULL;

	if (make_room(sb, err) < 0)
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return sbx_error_errno(err, ENOMEM, "spawn");
	c->sb = sb;
	c->monitor_pidfd = c->input_fd = c->wd = -1;
	c->tty = o->tty;
	c->has_stdin = o->stdin_pipe || o->tty;
	c->attached = o->attach;
	c->timeout_s = o->timeout_s;
	c->started_ms = sbx_now_ns() / 1000000;
	if (sbx_random_id(c->id, err) < 0)
		goto out;
	if (!(c->argv = sbx_strv_dup(o->argv)) || (o->session && !(c->session = strdup(o->session))) ||
	    asprintf(&c->cgroup, "%s/cmd-%s", sb->box->cgroup, c->id) < 0) {
		c->cgroup = NULL;
		sbx_error_errno(err, ENOMEM, "spawn");
		goto out;
	}
	snprintf(rel, sizeof(rel), "sandboxes/%s/cmds", sb->id);
	if (mkdirat(d->state_fd, rel, 0700) < 0 && errno != EEXIST) {
		sbx_error_errno(err, errno, "create %s", rel);
		goto out;
	}
	cmd_dir_rel(c, rel, sizeof(rel), NULL);
	if (mkdirat(d->state_fd, rel, 0700) < 0 ||
	    (dirfd = openat(d->state_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		sbx_error_errno(err, errno, "create %s", rel);
		goto out;
	}
	if ((logfd = openat(dirfd, "output", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
	    (o->session && (statefd = openat(dirfd, "session.state", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)) {
		sbx_error_errno(err, errno, "create the command's log");
		goto out;
	}
	const struct sbx_bpf *filter = NULL;
	if (sbx_sandbox_filter(sb, &filter, err) < 0) {
		sbx_error_prefix(err, "sandbox %s: seccomp profile", sb->name);
		goto out;
	}
	char group[600], name[20];
	snprintf(name, sizeof(name), "cmd-%s", c->id);
	if (sbx_box_group(sb->box, name, group, sizeof(group), err) < 0 || sbx_box_join(sb->box, c->cgroup, &ec, err) < 0)
		goto out;
	if (!o->tty && (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0)) {
		sbx_error_errno(err, errno, "pipe");
		goto out;
	}
	if (!o->tty && o->stdin_pipe && pipe2(in_p, O_CLOEXEC) < 0) {
		sbx_error_errno(err, errno, "pipe");
		goto out;
	}
	if (!o->tty && !o->stdin_pipe && (nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		sbx_error_errno(err, errno, "open /dev/null");
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rep) < 0) {
		sbx_error_errno(err, errno, "socketpair");
		goto out;
	}
	ec.argv = o->argv;
	ec.envp = o->envp;
	ec.cwd = o->cwd;
	ec.user = o->user;
	ec.stdio[0] = o->stdin_pipe ? in_p[0] : nullfd;
	ec.stdio[1] = out_p[1];
	ec.stdio[2] = err_p[1];
	ec.tty = o->tty;
	ec.rows = o->rows;
	ec.cols = o->cols;
	ec.extra_fd = statefd;
	struct monitor_args a = {
		.ec = ec,
		.report = rep[1],
		.log_fd = logfd,
		.dir_fd = dirfd,
		.cg_fd = ec.cgroup_fd,
		.stdin_keep = in_p[1],
		.out_r = out_p[0],
		.err_r = err_p[0],
		.attach = o->attach,
		.cap = o->log_cap,
		.timeout_ms = (int64_t)(o->timeout_s * 1000),
		/* A timeout covers the set-up too. */
		.setup_timeout_ms = o->timeout_s > 0 && o->timeout_s * 1000 < SBX_EXEC_SETUP_TIMEOUT_MS
					    ? (int64_t)(o->timeout_s * 1000)
					    : SBX_EXEC_SETUP_TIMEOUT_MS,
		.exe_fd = d->monitor_exe_fd,
	};
	pend = calloc(1, sizeof(*pend));
	if (!pend) {
		sbx_error_errno(err, ENOMEM, "spawn");
		goto out;
	}
	pend->report = pend->mon_pidfd = pend->stdin_keep = pend->tty_fd = -1;
	/* The monitor starts on sandboxd's descriptor table and keeps only
	 * copies of what it needs (see sbx_fdhold). */
	int *mine[] = { &a.report, &a.log_fd, &a.dir_fd, &a.stdin_keep, &a.out_r, &a.err_r, &a.exe_fd,
			&a.ec.init_pidfd, &a.ec.cgroup_fd, &a.ec.stdio[0], &a.ec.stdio[1], &a.ec.stdio[2],
			&a.ec.extra_fd, &a.ec.v1_procs[0], &a.ec.v1_procs[1], &a.ec.v1_procs[2] };
	_Static_assert(SBX_CTRL_COUNT == 3, "every v1 group is held");
	for (size_t i = 0; i < SBX_ARRAY_SIZE(mine); i++) {
		if (sbx_fdhold_add(&pend->held, mine[i]) < 0) {
			sbx_error_errno(err, errno, "set up the monitor's descriptors");
			sbx_fdhold_release(&pend->held);
			goto out;
		}
	}
	a.cg_fd = a.ec.cgroup_fd; /* one descriptor, one copy */
	struct clone_args args = { .flags = CLONE_FILES | CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&mon_pidfd,
				   .exit_signal = SIGCHLD };
	pid_t mon = sbx_clone3(&args);
	if (mon < 0) {
		sbx_error_errno(err, errno, "clone3 monitor");
		sbx_fdhold_release(&pend->held);
		goto out;
	}
	if (mon == 0) {
		if (sbx_fdhold_unshare(&pend->held) < 0) {
			sbx_error *uerr = NULL;
			sbx_error_errno(&uerr, errno, "unshare the descriptor table");
			report_failure(a.report, uerr);
			_exit(1);
		}
		sbx_closep(&rep[0]);
		monitor_child(&a);
	}
	sbx_closep(&rep[1]);
	/* From here the monitor's report says how it went, in the loop. */
	pend->c = c;
	pend->mon = mon;
	pend->mon_pidfd = sbx_take_fd(&mon_pidfd);
	pend->report = sbx_take_fd(&rep[0]);
	pend->stdin_pipe = !o->tty && o->stdin_pipe;
	if (pend->stdin_pipe)
		pend->stdin_keep = sbx_take_fd(&in_p[1]);
	pend->done = done;
	pend->data = data;
	sbx_set_nonblock(pend->report, true);
	pend->mon_w = sbx_loop_watch(d->loop, pend->mon_pidfd, EPOLLIN, pending_mon_gone, pend);
	pend->w = sbx_loop_watch(d->loop, pend->report, EPOLLIN, pending_report, pend);
	pend->timer = sbx_loop_timer(d->loop, a.setup_timeout_ms + PENDING_MARGIN_MS, pending_expired, pend);
	pend->next = sb->spawning;
	sb->spawning = pend;
	c = NULL;
	if (!pend->w || !pend->timer || !pend->mon_w) {
		sbx_error_errno(err, ENOMEM, "sandbox %s: spawn: watch the monitor", sb->name);
		/* Not through done: the caller hears of it from the return. */
		pend->done = NULL;
		pending_fail(pend, NULL);
		pend = NULL;
		goto out;
	}
	pend = NULL;
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		sbx_closep(&out_p[i]);
		sbx_closep(&err_p[i]);
		sbx_closep(&in_p[i]);
		sbx_closep(&rep[i]);
	}
	sbx_box_join_release(&ec);
	free(pend);
	if (c) {
		if (dirfd >= 0) {
			cmd_dir_rel(c, rel, sizeof(rel), NULL);
			sbx_rm_rf_at(d->state_fd, rel, NULL);
		}
		if (c->cgroup)
			unlinkat(d->cg.mount_fd, c->cgroup, AT_REMOVEDIR);
		command_free(c);
	}
	return ret;
}

/* ---- acting on a command ---- */

struct signal_ctx {
	int sig;
	int count;
};

static void signal_one(int pid, void *arg)
{
	struct signal_ctx *s = arg;
	if (kill(pid, s->sig) == 0)
		s->count++;
}

int sbx_command_signal(struct sbx_command *c, int sig, sbx_error **err)
{
	struct sbx_daemon *d = c->sb->d;
	struct signal_ctx s = { .sig = sig };
	if (sbx_cgroup_for_each_proc(&d->cg, c->cgroup, signal_one, &s, err) < 0)
		return -1;
	if (sig == SIGKILL)
		sbx_cgroup_kill(&d->cg, c->cgroup, NULL); /* also what forks while we walk */
	if (!s.count && c->exited)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "command %s has already exited (code %d)", c->id,
				     c->exit_code);
	return s.count;
}

int sbx_command_input_fd(struct sbx_command *c, sbx_error **err)
{
	if (c->attached)
		return sbx_error_set(err, SBX_ERR_BAD_STATE,
				     "command %s's terminal is attached to the client that started it", c->id);
	if (!c->has_stdin)
		return sbx_error_set(err, SBX_ERR_BAD_STATE,
				     "command %s has no stdin pipe (spawn it with \"stdin\": true); its stdin is /dev/null",
				     c->id);
	if (c->exited || c->monitor_pidfd < 0)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "command %s has already exited", c->id);
	if (c->input_fd < 0) {
		/* After a restart our copy is gone; the monitor kept one. */
		int fd = sbx_pidfd_getfd(c->monitor_pidfd, c->tty ? MON_OUT : MON_STDIN, 0);
		if (fd < 0)
			return sbx_error_errno(err, errno == EBADF ? EPIPE : errno, "command %s: its input is closed",
					       c->id);
		sbx_set_nonblock(fd, true);
		c->input_fd = fd;
	}
	return c->input_fd;
}

int sbx_command_close_input(struct sbx_command *c, sbx_error **err)
{
	int fd = sbx_command_input_fd(c, err);
	if (fd < 0)
		return -1;
	if (c->tty) {
		/* A terminal has no end of file; ^D at a line start is one. */
		if (write(fd, "\x04", 1) < 0)
			return sbx_error_errno(err, errno, "command %s: write to its terminal", c->id);
		return 0;
	}
	close_input(c);
	c->has_stdin = false;
	sbx_pidfd_send_signal(c->monitor_pidfd, SIGUSR1, NULL, 0);
	return 0;
}

struct sbx_input {
	struct sbx_input *next;
	char *data;
	size_t len, off;
	bool eof;
	struct sbx_request *req;
};

static void input_finish(struct sbx_command *c, struct sbx_input *in, sbx_error *err)
{
	c->input = in->next;
	if (in->req) {
		if (err) {
			sbx_reply_error(in->req, err);
		} else {
			yajl_gen g = sbx_reply_begin(in->req);
			if (g) {
				yajl_gen_map_open(g);
				sbx_gen_kv_int(g, "written", (int64_t)in->len);
				yajl_gen_map_close(g);
			}
			sbx_reply_end(in->req, g);
		}
	} else {
		sbx_error_free(err);
	}
	free(in->data);
	free(in);
}

static void input_fail_all(struct sbx_command *c, const char *why)
{
	while (c->input) {
		sbx_error *err = NULL;
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "command %s: %s", c->id, why);
		input_finish(c, c->input, err);
	}
	sbx_loop_unwatch(c->input_w);
	c->input_w = NULL;
}

static void input_event(struct sbx_watch *w, uint32_t events, void *data);

static void input_pump(struct sbx_command *c)
{
	while (c->input) {
		struct sbx_input *in = c->input;
		sbx_error *err = NULL;
		int fd = c->input_fd;
		while (fd >= 0 && in->off < in->len) {
			ssize_t n = write(fd, in->data + in->off, in->len - in->off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				if (!c->input_w)
					c->input_w = sbx_loop_watch(c->sb->d->loop, fd, EPOLLOUT, input_event, c);
				return;
			}
			if (n < 0) {
				input_fail_all(c, errno == EPIPE ? "it closed its stdin" : "writing its stdin failed");
				return;
			}
			in->off += (size_t)n;
		}
		if (fd < 0) {
			input_fail_all(c, "its input is closed");
			return;
		}
		if (in->eof)
			sbx_command_close_input(c, &err);
		input_finish(c, in, err);
	}
	sbx_loop_unwatch(c->input_w);
	c->input_w = NULL;
}

static void input_event(struct sbx_watch *w, uint32_t events, void *data)
{
	input_pump(data);
}

int sbx_command_queue_input(struct sbx_command *c, char *data, size_t len, bool eof, struct sbx_request *req,
			    sbx_error **err)
{
	if (sbx_command_input_fd(c, err) < 0) {
		free(data);
		return -1;
	}
	struct sbx_input *in = calloc(1, sizeof(*in));
	if (!in) {
		free(data);
		return sbx_error_errno(err, ENOMEM, "stdin");
	}
	in->data = data;
	in->len = len;
	in->eof = eof;
	in->req = req;
	struct sbx_input **tail = &c->input;
	while (*tail)
		tail = &(*tail)->next;
	*tail = in;
	if (c->input == in)
		input_pump(c);
	return 0;
}

/* ---- life cycle ---- */

int sbx_commands_init(struct sbx_daemon *d, sbx_error **err)
{
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0)
		return sbx_error_errno(err, errno, "inotify");
	d->inotify_w = sbx_loop_watch(d->loop, d->inotify_fd, EPOLLIN, inotify_event_cb, d);
	if (!d->inotify_w)
		return sbx_error_errno(err, errno, "watch inotify");
	return 0;
}

void sbx_commands_fini(struct sbx_daemon *d)
{
	sbx_loop_unwatch(d->inotify_w);
	d->inotify_w = NULL;
	sbx_closep(&d->inotify_fd);
}

static struct sbx_command *load_one(struct sbx_sandbox *sb, const char *id)
{
	struct sbx_daemon *d = sb->d;
	char rel[128], *text = NULL;
	snprintf(rel, sizeof(rel), "sandboxes/%s/cmds/%.12s/cmd.json", sb->id, id);
	if (sbx_read_file_at(d->state_fd, rel, 1 << 20, &text, NULL, NULL) < 0)
		return NULL;
	sbx_error *err = NULL;
	yajl_val root = sbx_json_parse(text, &err);
	free(text);
	sbx_error_free(err);
	err = NULL;
	if (!root)
		return NULL;
	struct sbx_command *c = calloc(1, sizeof(*c));
	const char *cid = NULL, *session = NULL, *cgroup = NULL;
	int64_t pid = 0, mpid = 0, mstart = 0, started = 0;
	bool tty = false, has_stdin = false, attached = false;
	double timeout = 0;
	if (!c || sbx_json_string(root, "id", true, &cid, &err) < 0 || strcmp(cid, id) ||
	    sbx_json_int(root, "pid", true, 0, INT32_MAX, &pid, &err) < 0 ||
	    sbx_json_int(root, "monitor_pid", true, 0, INT32_MAX, &mpid, &err) < 0 ||
	    sbx_json_int(root, "monitor_start", true, 0, INT64_MAX, &mstart, &err) < 0 ||
	    sbx_json_int(root, "started_ms", true, 0, INT64_MAX, &started, &err) < 0 ||
	    sbx_json_string_array(root, "argv", true, &c->argv, &err) < 0 ||
	    sbx_json_bool(root, "tty", false, &tty, &err) < 0 || sbx_json_bool(root, "stdin", false, &has_stdin, &err) < 0 ||
	    sbx_json_bool(root, "attached", false, &attached, &err) < 0 ||
	    sbx_json_string(root, "session", false, &session, &err) < 0 ||
	    sbx_json_string(root, "cgroup", true, &cgroup, &err) < 0 ||
	    sbx_json_number(root, "timeout_s", false, 0, 1e12, &timeout, &err) < 0) {
		sbx_warn("sandbox %s: command %s: unreadable state: %s", sb->id, id, err ? err->msg : "out of memory");
		sbx_error_free(err);
		if (c)
			sbx_strv_free(c->argv);
		free(c);
		yajl_tree_free(root);
		return NULL;
	}
	snprintf(c->id, sizeof(c->id), "%s", cid);
	c->sb = sb;
	c->pid = (pid_t)pid;
	c->monitor_pid = (pid_t)mpid;
	c->monitor_start = (uint64_t)mstart;
	c->started_ms = started;
	c->tty = tty;
	c->has_stdin = has_stdin;
	c->attached = attached;
	c->timeout_s = timeout;
	c->session = session ? strdup(session) : NULL;
	c->cgroup = strdup(cgroup);
	c->monitor_pidfd = c->input_fd = c->wd = -1;
	yajl_tree_free(root);
	if (read_status(c))
		return c;
	int pfd = c->monitor_pid > 0 ? sbx_pidfd_open(c->monitor_pid, 0) : -1;
	struct pollfd pp = { .fd = pfd, .events = POLLIN };
	if (pfd >= 0 && poll(&pp, 1, 0) == 0 && sbx_proc_starttime(c->monitor_pid) == c->monitor_start) {
		c->monitor_pidfd = pfd;
		sbx_error *werr = NULL;
		if (watch_command(c, &werr) < 0) {
			sbx_warn("sandbox %s: command %s: %s", sb->id, id, werr ? werr->msg : "?");
			sbx_error_free(werr);
		}
		read_status(c); /* it may have ended just before the watch */
		return c;
	}
	if (pfd >= 0)
		close(pfd);
	c->exited = c->lost = true;
	c->exit_code = -1;
	return c;
}

void sbx_commands_load(struct sbx_sandbox *sb)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "sandboxes/%s/cmds", sb->id);
	_cleanup_close_ int fd = openat(sb->d->state_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	_cleanup_closedir_ DIR *dir = fdopendir(sbx_take_fd(&fd));
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (!sbx_id_valid(de->d_name))
			continue;
		struct sbx_command *c = load_one(sb, de->d_name);
		if (!c)
			continue;
		c->next = sb->commands;
		sb->commands = c;
	}
}

void sbx_commands_end_monitors(struct sbx_sandbox *sb)
{
	for (struct sbx_command *c = sb->commands; c; c = c->next) {
		if (c->monitor_pidfd < 0)
			continue;
		/* The sandbox is stopped: its commands are dead, and the monitor
		 * must not write into a directory that is being removed. */
		sbx_pidfd_send_signal(c->monitor_pidfd, SIGKILL, NULL, 0);
		struct pollfd p = { .fd = c->monitor_pidfd, .events = POLLIN };
		poll(&p, 1, 1000);
		waitid((idtype_t)P_PIDFD, (id_t)c->monitor_pidfd, NULL, WEXITED | WNOHANG);
	}
}

void sbx_commands_free(struct sbx_sandbox *sb)
{
	while (sb->spawning) {
		sbx_error *err = NULL;
		sbx_error_set(&err, SBX_ERR_NOT_FOUND, "sandbox %s was deleted before the command started", sb->name);
		pending_fail(sb->spawning, err);
	}
	while (sb->commands) {
		struct sbx_command *c = sb->commands;
		sb->commands = c->next;
		command_free(c);
	}
}

bool sbx_commands_running(struct sbx_sandbox *sb)
{
	for (struct sbx_command *c = sb->commands; c; c = c->next)
		if (!c->exited)
			return true;
	return false;
}
