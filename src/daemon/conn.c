/* The unix-socket server: accepting clients, splitting their bytes into
 * JSON lines, turning each line into a request, and queueing replies.
 * A bad line is answered and skipped; only the client's own socket errors
 * end its connection. Nothing a client sends can stop the loop. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "framing.h"

#define READ_CHUNK 65536
/* Descriptors a client sent but no request claimed yet; past this many the
 * oldest are closed, so a client cannot pile up our fds. */
#define MAX_QUEUED_FDS 16
#define MAX_FDS_PER_READ 8
/* A client that stops reading may not make us hold unbounded replies. */
#define MAX_PENDING_OUTPUT ((size_t)1 << 30)
/* Past this much output queued for a client, its requests are not read
 * (the socket pushes back on it) until most of it is written: a client
 * that asks for chunks faster than it reads them cannot make us hold more
 * than about this much. */
#define READ_PAUSE_OUTPUT ((size_t)12 << 20)
/* params.data of fs.write at least this long is cut out of the line
 * before parsing and used where it lies. */
#define BULK_MIN 4096
/* Buffers bigger than this are given back when the connection is idle. */
#define IDLE_BUF_MAX ((size_t)1 << 20)

struct sbx_conn {
	struct sbx_daemon *d;
	int fd;
	struct sbx_watch *w;
	struct sbx_framer in;
	struct sbx_buf out;
	bool closed;   /* socket gone; replies are dropped */
	bool read_eof;
	int refs;
	int pending; /* requests not answered yet */
	struct ucred peer;
	/* SCM_RIGHTS in: claimed in arrival order by requests saying "fd": true */
	int in_fds[MAX_QUEUED_FDS];
	size_t n_in_fds;
	/* SCM_RIGHTS out: each fd leaves with the first byte of its reply */
	struct out_fd {
		int fd;
		uint64_t pos; /* absolute stream position of that byte */
	} *out_fds;
	size_t n_out_fds;
	uint64_t out_base; /* absolute stream position of out.data[out_sent] */
	/* Bytes at the start of out already sent: a big reply goes out in
	 * socket-buffer pieces, and moving the rest down after each piece
	 * made writing it quadratic. Compacted when it passes half. */
	size_t out_sent;
	/* Producers (log followers) waiting for the backlog to shrink. */
	struct drain_hook {
		struct drain_hook *next;
		void (*fn)(void *data);
		void *data;
	} *drain;
	bool in_drain;
	struct sbx_request *bulk_req; /* being dispatched; its bulk is in in */
	/* An fs.write with "encoding": "binary" waits here for the raw bytes
	 * that follow its line (raw_need of them, with their newline); a
	 * refused one's bytes are skipped (raw_skip). */
	struct sbx_request *raw_req;
	size_t raw_need;
	size_t raw_skip;
	bool in_stopped; /* out of step with the client: no more requests are read */
	bool big_sndbuf; /* the kernel send buffer was enlarged for big replies */
};

#define DRAIN_LOW_WATER ((size_t)1 << 20)

static void conn_unref(struct sbx_conn *c);

static void run_drain_hooks(struct sbx_conn *c)
{
	if (c->in_drain || !c->drain)
		return;
	c->in_drain = true;
	c->refs++;
	while (c->drain && (c->closed || c->out.len - c->out_sent < DRAIN_LOW_WATER)) {
		struct drain_hook *h = c->drain;
		c->drain = h->next;
		void (*fn)(void *) = h->fn;
		void *data = h->data;
		free(h);
		fn(data);
	}
	c->in_drain = false;
	conn_unref(c);
}

static void close_fds(struct sbx_conn *c)
{
	for (size_t i = 0; i < c->n_in_fds; i++)
		close(c->in_fds[i]);
	c->n_in_fds = 0;
	for (size_t i = 0; i < c->n_out_fds; i++)
		close(c->out_fds[i].fd);
	free(c->out_fds);
	c->out_fds = NULL;
	c->n_out_fds = 0;
}

static void queue_in_fd(struct sbx_conn *c, int fd)
{
	if (c->n_in_fds == MAX_QUEUED_FDS) {
		close(c->in_fds[0]);
		memmove(c->in_fds, c->in_fds + 1, (MAX_QUEUED_FDS - 1) * sizeof(int));
		c->n_in_fds--;
	}
	c->in_fds[c->n_in_fds++] = fd;
}

static int take_in_fd(struct sbx_conn *c)
{
	if (!c->n_in_fds)
		return -1;
	int fd = c->in_fds[0];
	memmove(c->in_fds, c->in_fds + 1, (c->n_in_fds - 1) * sizeof(int));
	c->n_in_fds--;
	return fd;
}

static void conn_unref(struct sbx_conn *c)
{
	if (--c->refs > 0)
		return;
	while (c->drain) {
		struct drain_hook *h = c->drain;
		c->drain = h->next;
		free(h);
	}
	sbx_framer_free(&c->in);
	sbx_buf_free(&c->out);
	free(c);
}

static void conn_close(struct sbx_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	sbx_loop_unwatch(c->w);
	c->w = NULL;
	close(c->fd);
	c->fd = -1;
	sbx_buf_free(&c->out);
	c->out_sent = 0;
	close_fds(c);
	if (c->raw_req) /* its bytes will never come */
		sbx_request_free(sbx_take_ptr(&c->raw_req));
	run_drain_hooks(c); /* they see the connection closed and let go of it */
	conn_unref(c);
}

/* Release memory of large replies once they are written and no more are
 * coming; while requests are in flight (chunks) the buffer is kept, since
 * fresh pages cost a fault each. */
static void trim_idle_out(struct sbx_conn *c)
{
	if (!c->closed && !c->pending && !c->out.len && c->out.cap > IDLE_BUF_MAX)
		sbx_buf_free(&c->out);
}

/* Once the client has sent EOF, the connection lives until every request
 * it sent is answered and the answers are written. */
static void conn_update_events(struct sbx_conn *c)
{
	if (c->closed)
		return;
	if (c->read_eof && !c->out.len && !c->pending) {
		conn_close(c);
		return;
	}
	uint32_t ev = c->read_eof || c->out.len - c->out_sent > READ_PAUSE_OUTPUT ? 0 : EPOLLIN;
	if (c->out.len)
		ev |= EPOLLOUT;
	sbx_loop_modify(c->w, ev);
}

/* Bytes up to the next fd's position go with plain send; that fd rides on
 * the first byte of its own reply. */
static ssize_t send_some(struct sbx_conn *c)
{
	size_t len = c->out.len - c->out_sent;
	char *data = c->out.data + c->out_sent;
	int fd = -1;
	if (c->n_out_fds) {
		uint64_t at = c->out_fds[0].pos - c->out_base;
		if (at == 0)
			fd = c->out_fds[0].fd;
		else if (at < len)
			len = (size_t)at;
	}
	if (fd < 0)
		return send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	/* A lone fd for a later stretch of bytes must not be glued to these. */
	if (c->n_out_fds > 1 && c->out_fds[1].pos - c->out_base < len)
		len = (size_t)(c->out_fds[1].pos - c->out_base);
	ssize_t n = sbx_send_with_fd(c->fd, data, len, fd, MSG_DONTWAIT);
	if (n > 0) {
		close(fd);
		memmove(c->out_fds, c->out_fds + 1, (c->n_out_fds - 1) * sizeof(*c->out_fds));
		c->n_out_fds--;
	}
	return n;
}

static void conn_flush(struct sbx_conn *c)
{
	while (c->out.len > c->out_sent) {
		ssize_t n = send_some(c);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_close(c); /* the client went away: drop what it did not read */
			return;
		}
		c->out_sent += (size_t)n;
		c->out_base += (uint64_t)n;
	}
	if (!c->closed && c->out_sent && (c->out_sent == c->out.len || c->out_sent > c->out.len / 2)) {
		sbx_buf_consume(&c->out, c->out_sent);
		c->out_sent = 0;
	}
	trim_idle_out(c);
	run_drain_hooks(c);
	if (!c->closed)
		conn_update_events(c);
}

static void conn_send_fd(struct sbx_conn *c, const char *data, size_t len, int fd)
{
	if (c->closed) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (c->out.len + len > MAX_PENDING_OUTPUT) {
		sbx_warn("client pid %d does not read its replies; closing its connection", (int)c->peer.pid);
		if (fd >= 0)
			close(fd);
		conn_close(c);
		return;
	}
	if (fd >= 0) {
		struct out_fd *n = realloc(c->out_fds, (c->n_out_fds + 1) * sizeof(*n));
		if (!n) {
			close(fd);
			conn_close(c);
			return;
		}
		c->out_fds = n;
		n[c->n_out_fds++] = (struct out_fd){ .fd = fd, .pos = c->out_base + (c->out.len - c->out_sent) };
	}
	if (sbx_buf_append(&c->out, data, len) < 0 || sbx_buf_append(&c->out, "\n", 1) < 0) {
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void conn_send(struct sbx_conn *c, const char *data, size_t len)
{
	conn_send_fd(c, data, len, -1);
}

static void send_gen_fd(struct sbx_conn *c, yajl_gen g, int fd)
{
	const unsigned char *buf;
	size_t len;
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		conn_send_fd(c, (const char *)buf, len, fd);
	else if (fd >= 0)
		close(fd);
}

static void send_gen(struct sbx_conn *c, yajl_gen g)
{
	send_gen_fd(c, g, -1);
}

static yajl_gen envelope_begin(yajl_val id)
{
	yajl_gen g = sbx_gen_new();
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "jsonrpc", "2.0");
	sbx_gen_key(g, "id");
	sbx_gen_value(g, id);
	return g;
}

static void send_error(struct sbx_conn *c, yajl_val id, const sbx_error *err)
{
	_cleanup_gen_ yajl_gen g = envelope_begin(id);
	if (!g)
		return;
	sbx_gen_key(g, "error");
	yajl_gen_map_open(g);
	sbx_gen_kv_int(g, "code", err->code);
	sbx_gen_kv_str(g, "message", err->msg ? err->msg : "error");
	if (err->errnum || err->param) {
		sbx_gen_key(g, "data");
		yajl_gen_map_open(g);
		if (err->errnum)
			sbx_gen_kv_int(g, "errno", err->errnum);
		if (err->param)
			sbx_gen_kv_str(g, "param", err->param);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	send_gen(c, g);
}

static void send_error_code(struct sbx_conn *c, yajl_val id, int code, const char *msg)
{
	sbx_error e = { .code = code, .msg = (char *)msg };
	send_error(c, id, &e);
}

yajl_gen sbx_reply_begin(struct sbx_request *req)
{
	yajl_gen g = envelope_begin(req->id);
	if (g)
		sbx_gen_key(g, "result");
	return g;
}

void sbx_reply_end_fd(struct sbx_request *req, yajl_gen g, int fd)
{
	if (g) {
		yajl_gen_map_close(g);
		send_gen_fd(req->conn, g, fd);
		yajl_gen_free(g);
	} else {
		if (fd >= 0)
			close(fd);
		send_error_code(req->conn, req->id, SBX_ERR_INTERNAL, "out of memory");
	}
	sbx_request_free(req);
}

void sbx_reply_end(struct sbx_request *req, yajl_gen g)
{
	sbx_reply_end_fd(req, g, -1);
}

struct sbx_buf *sbx_conn_line_begin(struct sbx_conn *c, size_t *mark)
{
	*mark = c->out.len;
	return &c->out;
}

void sbx_conn_line_end(struct sbx_conn *c, size_t mark, bool keep)
{
	if (c->closed)
		return;
	if (!keep || sbx_buf_append(&c->out, "\n", 1) < 0) {
		c->out.len = mark;
		if (c->out.data)
			c->out.data[mark] = '\0';
		return;
	}
	conn_flush(c);
}

void sbx_reply_empty(struct sbx_request *req)
{
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

void sbx_reply_error(struct sbx_request *req, sbx_error *err)
{
	if (!err) {
		sbx_error_set(&err, SBX_ERR_INTERNAL, "internal error");
	}
	if (err->code == SBX_ERR_INTERNAL)
		sbx_warn("%s failed: %s", req->method ? req->method : "request", err->msg ? err->msg : "?");
	else
		sbx_debug("%s failed: %s", req->method ? req->method : "request", err->msg ? err->msg : "?");
	send_error(req->conn, req->id, err);
	sbx_error_free(err);
	sbx_request_free(req);
}

struct sbx_conn *sbx_conn_ref(struct sbx_conn *c)
{
	c->refs++;
	return c;
}

void sbx_conn_release(struct sbx_conn *c)
{
	conn_unref(c);
}

bool sbx_conn_closed(const struct sbx_conn *c)
{
	return c->closed;
}

void sbx_conn_send_line(struct sbx_conn *c, const char *data, size_t len)
{
	conn_send(c, data, len);
}

/* A connection's kernel send buffer, for one that is sent multi-MiB
 * replies (chunks of fs.read): the default (about 200 KiB) splits each
 * into dozens of write and wake-up round trips with a client that is
 * ready to take it all. Only such connections get it: a follower that
 * stops reading would otherwise hold 4 MiB more of output in flight. Root
 * may exceed net.core.wmem_max; if the kernel refuses, the default stays. */
#define SBX_CONN_SNDBUF (4 << 20)
void sbx_conn_expect_big_replies(struct sbx_conn *c)
{
	if (c->closed || c->big_sndbuf)
		return;
	c->big_sndbuf = true;
	int size = SBX_CONN_SNDBUF;
	if (setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

size_t sbx_conn_backlog(const struct sbx_conn *c)
{
	return c->closed ? 0 : c->out.len - c->out_sent;
}

int sbx_conn_on_drain(struct sbx_conn *c, void (*fn)(void *data), void *data)
{
	struct drain_hook *h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	h->fn = fn;
	h->data = data;
	h->next = c->drain;
	c->drain = h;
	return 0;
}

void sbx_conn_cancel_drain(struct sbx_conn *c, void *data)
{
	for (struct drain_hook **pp = &c->drain; *pp;) {
		if ((*pp)->data == data) {
			struct drain_hook *h = *pp;
			*pp = h->next;
			free(h);
		} else {
			pp = &(*pp)->next;
		}
	}
}

void sbx_request_free(struct sbx_request *req)
{
	if (!req)
		return;
	struct sbx_conn *c = req->conn;
	if (req->root)
		yajl_tree_free(req->root);
	sbx_closep(&req->fd);
	free(req->bulk_owned);
	if (c && c->bulk_req == req)
		c->bulk_req = NULL;
	free(req);
	if (c) {
		c->pending--;
		trim_idle_out(c);
		if (c->closed) {
			conn_unref(c);
		} else {
			c->refs--; /* the socket's own ref keeps c alive */
			conn_update_events(c);
		}
	}
}

static void dispatch(struct sbx_conn *c, struct sbx_request *req);

/* The client's bytes can no longer be split into requests: answer what
 * was asked, read nothing more, close once the replies are out. */
static void stop_input(struct sbx_conn *c)
{
	c->in_stopped = true;
	c->read_eof = true;
	sbx_framer_free(&c->in);
}

/* An fs.write whose bytes follow its line raw ("encoding": "binary",
 * "length": how many): kept until they are in, then dispatched with them
 * as its bulk. True when the request was taken (parked, or answered). A
 * length out of bounds is answered and its bytes skipped; without a
 * length the bytes cannot be told from the next request, so the
 * connection takes no more input and closes once its replies are out. */
static bool park_raw_write(struct sbx_conn *c, struct sbx_request *req)
{
	if (strcmp(req->method, "fs.write"))
		return false;
	yajl_val enc = sbx_json_get(req->params, "encoding");
	const char *name = enc && YAJL_IS_STRING(enc) ? YAJL_GET_STRING(enc) : NULL;
	if (!name || strcmp(name, "binary"))
		return false;
	yajl_val len = sbx_json_get(req->params, "length");
	if (!len || !YAJL_IS_INTEGER(len) || YAJL_GET_INTEGER(len) < 0) {
		sbx_error *err = NULL;
		sbx_error_param(&err, "length",
				"fs.write with \"encoding\": \"binary\" needs 'length', the count of raw bytes that "
				"follow the line; without it the rest of the connection cannot be read");
		sbx_reply_error(req, err);
		stop_input(c);
		return true;
	}
	long long n = YAJL_GET_INTEGER(len);
	if ((unsigned long long)n > c->in.max) {
		sbx_error *err = NULL;
		sbx_error_param(&err, "length",
				"fs.write of %lld raw bytes exceeds the message limit of %zu bytes; send the file in "
				"smaller chunks", n, c->in.max);
		if (err)
			err->code = SBX_ERR_LIMIT;
		c->raw_skip = (size_t)n + 1;
		sbx_reply_error(req, err);
		return true;
	}
	c->raw_req = req;
	c->raw_need = (size_t)n + 1;
	return true;
}

/* The raw bytes of a parked fs.write or of a refused one, as far as they
 * have come in. False when more must be read first. */
static bool take_raw(struct sbx_conn *c)
{
	if (c->raw_skip) {
		c->raw_skip -= sbx_framer_skip(&c->in, c->raw_skip);
		return c->raw_skip == 0;
	}
	char *data = NULL;
	int r = sbx_framer_block(&c->in, c->raw_need, &data);
	if (r == SBX_FRAME_NEED_MORE)
		return false;
	struct sbx_request *req = sbx_take_ptr(&c->raw_req);
	if (r < 0) {
		sbx_error *err = NULL;
		sbx_error_errno(&err, ENOMEM, "fs.write");
		sbx_reply_error(req, err);
		stop_input(c);
		return true;
	}
	if (data[c->raw_need - 1] != '\n') {
		sbx_error *err = NULL;
		sbx_error_param(&err, "length",
				"the %zu raw bytes of fs.write are not followed by a newline: 'length' does not match "
				"what was sent; the rest of the connection cannot be read",
				c->raw_need - 1);
		sbx_reply_error(req, err);
		stop_input(c);
		return true;
	}
	req->bulk = data;
	req->bulk_len = c->raw_need - 1;
	data[req->bulk_len] = '\0';
	dispatch(c, req);
	return true;
}

/* One complete line: validate the envelope and hand it to dispatch. */
static void handle_line(struct sbx_conn *c, char *line, size_t len)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	if (len == 0)
		return; /* blank lines between messages are tolerated */
	struct sbx_json_cut cut = { 0 };
	if (len > BULK_MIN &&
	    sbx_json_cut_string(line, len, "params", "data", BULK_MIN, "method", "fs.write", &cut) > 0) {
		line = cut.rest;
		len = cut.rest_len;
	}
	_cleanup_free_ char *rest = cut.rest;
	if (memchr(line, '\0', len)) {
		send_error_code(c, NULL, SBX_ERR_PARSE, "parse error: message contains a NUL byte");
		return;
	}
	sbx_error *err = NULL;
	yajl_val root = sbx_json_parse(line, &err);
	if (!root) {
		send_error(c, NULL, err);
		sbx_error_free(err);
		return;
	}
	yajl_val id = sbx_json_get(root, "id");
	if (!YAJL_IS_OBJECT(root)) {
		send_error_code(c, NULL, SBX_ERR_INVALID_REQUEST, "invalid request: a message must be a JSON object");
		yajl_tree_free(root);
		return;
	}
	if (id && !(YAJL_IS_STRING(id) || YAJL_IS_NUMBER(id) || YAJL_IS_NULL(id))) {
		send_error_code(c, NULL, SBX_ERR_INVALID_REQUEST, "invalid request: 'id' must be a string or a number");
		yajl_tree_free(root);
		return;
	}
	yajl_val ver = sbx_json_get(root, "jsonrpc");
	yajl_val method = sbx_json_get(root, "method");
	yajl_val params = sbx_json_get(root, "params");
	const char *problem = NULL;
	const char *version = ver && YAJL_IS_STRING(ver) ? YAJL_GET_STRING(ver) : NULL;
	if (!version || strcmp(version, "2.0"))
		problem = "invalid request: 'jsonrpc' must be \"2.0\"";
	else if (!method || !YAJL_IS_STRING(method))
		problem = "invalid request: 'method' must be a string";
	else if (params && !YAJL_IS_OBJECT(params) && !YAJL_IS_NULL(params))
		problem = "invalid request: 'params' must be an object";
	if (problem) {
		send_error_code(c, id, SBX_ERR_INVALID_REQUEST, problem);
		yajl_tree_free(root);
		return;
	}
	if (!id) {
		/* A notification from a client: nothing to answer, nothing we act on. */
		yajl_tree_free(root);
		return;
	}
	char nul_param[64];
	if (sbx_json_find_nul(line, len, nul_param, sizeof(nul_param))) {
		sbx_error e = { .code = SBX_ERR_INVALID_PARAMS,
				.msg = (char *)"a string holds a NUL character (\\u0000), which sandboxd cannot pass on",
				.param = nul_param };
		send_error(c, id, &e);
		yajl_tree_free(root);
		return;
	}
	int fd = -1;
	yajl_val want_fd = params ? sbx_json_get(params, "fd") : NULL;
	if (want_fd && YAJL_IS_TRUE(want_fd)) {
		fd = take_in_fd(c);
		if (fd < 0) {
			sbx_error e = { .code = SBX_ERR_INVALID_PARAMS,
					.msg = (char *)"params say \"fd\": true but no file descriptor came with the "
						       "request; send it as SCM_RIGHTS with the request's bytes",
					.param = (char *)"fd" };
			send_error(c, id, &e);
			yajl_tree_free(root);
			return;
		}
	}
	struct sbx_request *req = calloc(1, sizeof(*req));
	if (!req) {
		sbx_closep(&fd);
		send_error_code(c, id, SBX_ERR_INTERNAL, "out of memory");
		yajl_tree_free(root);
		return;
	}
	static struct yajl_val_s empty_object = { .type = yajl_t_object };
	req->d = c->d;
	req->conn = c;
	req->root = root;
	req->id = id;
	req->params = params && YAJL_IS_OBJECT(params) ? params : &empty_object;
	req->method = YAJL_GET_STRING(method);
	req->peer = c->peer;
	req->fd = fd;
	req->bulk = cut.value;
	req->bulk_len = cut.value_len;
	c->refs++;
	c->pending++;
	if (park_raw_write(c, req))
		return;
	dispatch(c, req);
}

/* The request to its method; a bulk that lives in the input buffer is
 * copied out if the request outlives this call. */
static void dispatch(struct sbx_conn *c, struct sbx_request *req)
{
	if (req->bulk)
		c->bulk_req = req;
	if (sbx_rpc_dispatch(req) < 0) {
		sbx_error *nerr = NULL;
		sbx_error_set(&nerr, SBX_ERR_NO_METHOD,
			      "method '%.100s' not found; see sandboxd-protocol(7) for the methods this version implements",
			      req->method);
		sbx_reply_error(req, nerr);
	}
	if (c->bulk_req) {
		/* Still running (a worker, or waiting for the client to read):
		 * the input buffer moves on, the data must not. */
		struct sbx_request *r = sbx_take_ptr(&c->bulk_req);
		r->bulk_owned = malloc(r->bulk_len + 1);
		if (r->bulk_owned) {
			memcpy(r->bulk_owned, r->bulk, r->bulk_len);
			r->bulk_owned[r->bulk_len] = '\0';
		}
		r->bulk = r->bulk_owned;
		if (!r->bulk) {
			r->bulk_len = 0;
			r->bulk_lost = true;
		}
	}
}

static void process_input(struct sbx_conn *c)
{
	while (!c->closed && !c->in_stopped) {
		if (c->raw_req || c->raw_skip) {
			c->refs++;
			bool took = take_raw(c);
			bool gone = c->closed;
			conn_unref(c);
			if (!took || gone)
				return;
			continue;
		}
		char *line;
		size_t len;
		enum sbx_frame fr = sbx_framer_next(&c->in, &line, &len);
		if (fr == SBX_FRAME_NEED_MORE)
			return;
		if (fr == SBX_FRAME_OVERSIZE) {
			char msg[128];
			snprintf(msg, sizeof(msg), "invalid request: message exceeds %zu bytes", c->in.max);
			send_error_code(c, NULL, SBX_ERR_INVALID_REQUEST, msg);
			continue;
		}
		/* The line stays valid until the next sbx_framer_next call. */
		c->refs++;
		handle_line(c, line, len);
		bool gone = c->closed;
		conn_unref(c);
		if (gone)
			return;
	}
}

static void conn_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_conn *c = data;
	c->refs++;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (int rounds = 0; rounds < 16 && !c->closed && !c->read_eof &&
				     c->out.len - c->out_sent <= READ_PAUSE_OUTPUT;
		     rounds++) {
			/* The raw bytes of an fs.write are read in as big a piece as
			 * they need: room for them all is kept already. */
			size_t want = READ_CHUNK;
			if (c->raw_req && c->raw_need > c->in.buf.len + READ_CHUNK)
				want = c->raw_need - c->in.buf.len;
			char *space = sbx_framer_space(&c->in, want);
			if (!space) {
				conn_close(c);
				break;
			}
			int fds[MAX_FDS_PER_READ];
			size_t n_fds = 0;
			bool dropped = false;
			ssize_t n = sbx_recv_with_fds(c->fd, space, want, MSG_DONTWAIT, fds, MAX_FDS_PER_READ, &n_fds,
						      &dropped);
			for (size_t i = 0; i < n_fds; i++)
				queue_in_fd(c, fds[i]);
			if (dropped)
				sbx_warn("client pid %d sent more than %d descriptors at once; extra ones dropped",
					 (int)c->peer.pid, MAX_FDS_PER_READ);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					conn_close(c);
				break;
			}
			if (n == 0) {
				c->read_eof = true;
				process_input(c);
				if (!c->closed && c->raw_req) {
					sbx_error *err = NULL;
					sbx_error_set(&err, SBX_ERR_INVALID_REQUEST,
						      "invalid request: connection closed before the %zu raw bytes of "
						      "fs.write (and their newline) came",
						      c->raw_need - 1);
					sbx_reply_error(sbx_take_ptr(&c->raw_req), err);
				} else if (!c->closed && !c->in_stopped && sbx_framer_partial(&c->in))
					send_error_code(c, NULL, SBX_ERR_INVALID_REQUEST,
							"invalid request: connection closed in the middle of a message "
							"(every message must end with a newline)");
				sbx_framer_free(&c->in);
				break;
			}
			sbx_framer_commit(&c->in, (size_t)n);
			process_input(c);
		}
		if (!c->closed && !c->pending && c->in.buf.cap > IDLE_BUF_MAX && !c->in.skipping &&
		    !sbx_framer_partial(&c->in))
			sbx_framer_free(&c->in); /* a big message came and went */
	}
	if (!c->closed && (events & EPOLLOUT))
		conn_flush(c);
	/* Hang-up after EOF: the peer is gone both ways, replies cannot reach it. */
	if (!c->closed && c->read_eof && (events & (EPOLLHUP | EPOLLERR)))
		conn_close(c);
	conn_update_events(c);
	conn_unref(c);
}

/* accept failed for want of a descriptor. The client stays queued and the
 * listening socket readable, so the loop would spin on it: the spare
 * descriptor makes room to take the client off the queue, tell it why in
 * one error line, and close it. */
static void refuse_without_fds(struct sbx_daemon *d, int errnum)
{
	static int64_t warned_ms;
	int64_t now = sbx_monotonic_ms();
	if (warned_ms == 0 || now - warned_ms >= 10000) {
		warned_ms = now;
		sbx_warn("accept: %s; refusing new connections until descriptors are free (limit %lld)", strerror(errnum),
			 (long long)d->fds.limit);
	}
	sbx_closep(&d->spare_fd);
	int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0) {
		char line[256];
		int n = snprintf(line, sizeof(line),
				 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":%d,\"message\":\"sandboxd has "
				 "no file descriptor left for a new connection (open-file limit %lld); try again later\"}}\n",
				 SBX_ERR_LIMIT, (long long)d->fds.limit);
		if (write(fd, line, (size_t)n) < 0) {
			/* the client is gone; nothing to tell */
		}
		close(fd);
	}
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Who may talk to the daemon is decided here, on every connection, not
 * only by the socket file's mode: a mode widened by hand, a socket passed
 * in by a service manager with other settings, or a directory opened up
 * must not hand control of the host to everyone. Root, and members of
 * socket_group, primary or supplementary. */
static bool peer_allowed(struct sbx_daemon *d, int fd, const struct ucred *peer)
{
	if (peer->uid == 0)
		return true;
	if (!d->socket_group_found)
		return false;
	if (peer->gid == d->socket_gid)
		return true;
	/* The groups the peer had when it connected, from the kernel: no pid
	 * to recycle between connect and a look in /proc, and no name
	 * service call in the loop. */
	gid_t small[64];
	gid_t *groups = small;
	_cleanup_free_ gid_t *big = NULL;
	socklen_t len = sizeof(small);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE || !(big = malloc(len)))
			return false;
		groups = big;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
			return false;
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == d->socket_gid)
			return true;
	return false;
}

/* One error line (if the client is listening) and the connection is
 * closed. The log says who, at most once every few seconds, with a count
 * of the refusals it did not name, so a client retrying in a loop cannot
 * flood it. */
static void refuse_peer(struct sbx_daemon *d, int fd, const struct ucred *peer)
{
	static int64_t logged_ms;
	static uint64_t unlogged;
	int64_t now = sbx_monotonic_ms();
	const char *group = d->cfg.socket_group;
	char why[256];
	if (!d->socket_group_found)
		snprintf(why, sizeof(why), "only root may connect (socket_group '%s' %s)", group,
			 *group ? "does not exist" : "is empty");
	else
		snprintf(why, sizeof(why), "uid %u is neither root nor a member of group '%s'", (unsigned)peer->uid, group);
	if (logged_ms == 0 || now - logged_ms >= 5000) {
		if (unlogged)
			sbx_warn("refused a connection from pid %d (uid %u, gid %u): %s; %llu more refused since the last "
				 "such line",
				 (int)peer->pid, (unsigned)peer->uid, (unsigned)peer->gid, why, (unsigned long long)unlogged);
		else
			sbx_warn("refused a connection from pid %d (uid %u, gid %u): %s", (int)peer->pid,
				 (unsigned)peer->uid, (unsigned)peer->gid, why);
		logged_ms = now;
		unlogged = 0;
	} else {
		unlogged++;
	}
	char line[512];
	int n = snprintf(line, sizeof(line),
			 "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":%d,\"message\":\"permission denied: "
			 "%s\"}}\n",
			 SBX_ERR_DENIED, why);
	if (n > 0 && (size_t)n < sizeof(line) && send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* the client is gone or not reading; nothing more to tell it */
	}
	close(fd);
}



static void accept_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_daemon *d = data;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) && d->spare_fd >= 0)
				refuse_without_fds(d, errno);
			else if (errno != EAGAIN && errno != EINTR)
				sbx_warn("accept: %m");
			return;
		}
		struct ucred peer = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t len = sizeof(peer);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 || !peer_allowed(d, fd, &peer)) {
			refuse_peer(d, fd, &peer);
			continue;
		}
		struct sbx_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->d = d;
		c->fd = fd;
		c->refs = 1;
		c->peer = peer;
		sbx_framer_init(&c->in, (size_t)d->cfg.max_message);
		c->w = sbx_loop_watch(d->loop, fd, EPOLLIN, conn_event, c);
		if (!c->w) {
			close(fd);
			free(c);
			continue;
		}
		d->conn_count++;
	}
}

static void resolve_socket_group(struct sbx_daemon *d)
{
	const char *name = d->cfg.socket_group;
	d->socket_group_found = false;
	if (!*name)
		return;
	int64_t gid;
	struct group *gr = getgrnam(name);
	if (gr) {
		d->socket_gid = gr->gr_gid;
		d->socket_group_found = true;
	} else if (sbx_parse_int64(name, 0, UINT32_MAX - 1, &gid) == 0) {
		d->socket_gid = (gid_t)gid;
		d->socket_group_found = true;
	} else {
		sbx_info("socket_group '%s' does not exist: only root may connect", name);
	}
}

int sbx_server_listen(struct sbx_daemon *d, sbx_error **err)
{
	const char *path = d->cfg.socket_path;
	resolve_socket_group(d);
	if (d->listen_fd >= 0) {
		/* Passed by the service manager, which set its owner and mode
		 * (the unit's SocketGroup= and SocketMode=). */
		d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (!sbx_loop_watch(d->loop, d->listen_fd, EPOLLIN, accept_event, d))
			return sbx_error_errno(err, errno, "watch socket");
		return 0;
	}
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "socket path '%s' is too long", path);
	strcpy(addr.sun_path, path);
	_cleanup_free_ char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash && slash != dir) {
		*slash = '\0';
		if (sbx_mkdir_p(dir, 0755, err) < 0)
			return sbx_error_prefix(err, "socket directory");
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return sbx_error_errno(err, errno, "socket");
	/* We hold the state lock, so a socket file left here is stale. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		return sbx_error_errno(err, e, "bind '%s'", path);
	}
	gid_t gid = d->socket_group_found ? d->socket_gid : (gid_t)-1;
	if (chown(path, (uid_t)-1, gid) < 0 || chmod(path, 0660) < 0)
		sbx_warn("set owner and mode of '%s': %m", path);
	if (listen(fd, 512) < 0) {
		int e = errno;
		close(fd);
		return sbx_error_errno(err, e, "listen '%s'", path);
	}
	d->listen_fd = fd;
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!sbx_loop_watch(d->loop, fd, EPOLLIN, accept_event, d)) {
		close(fd);
		d->listen_fd = -1;
		return sbx_error_errno(err, errno, "watch socket");
	}
	return 0;
}

void sbx_server_close(struct sbx_daemon *d)
{
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		d->listen_fd = -1;
		/* A passed socket stays: the service manager keeps listening on
		 * it, and clients that connect meanwhile wait for the next start. */
		if (!d->socket_activated)
			unlink(d->cfg.socket_path);
	}
	sbx_closep(&d->spare_fd);
}
