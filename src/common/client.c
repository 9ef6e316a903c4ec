/* Blocking protocol client. One request at a time is all most of sandboxctl
 * needs (notifications in between are skipped); streaming verbs send and
 * read messages themselves. Descriptors travel as SCM_RIGHTS. */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

const char *sbx_client_default_socket(void)
{
	const char *env = getenv("SANDBOXD_SOCKET");
	return env && *env ? env : "/run/sandboxd/sandboxd.sock";
}

int sbx_client_connect(struct sbx_client *c, const char *path, sbx_error **err)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_id = 1;
	/* Replies carry command output: allow far more than requests. */
	sbx_framer_init(&c->in, (size_t)1 << 30);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "socket path '%s' is too long", path);
	strcpy(addr.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return sbx_error_errno(err, errno, "socket");
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		return sbx_error_errno(err, e, "cannot connect to sandboxd at %s", path);
	}
	return 0;
}

void sbx_client_close(struct sbx_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (size_t i = 0; i < c->n_fds; i++)
		close(c->fds[i]);
	c->n_fds = 0;
	sbx_framer_free(&c->in);
}

int sbx_client_take_fd(struct sbx_client *c)
{
	if (!c->n_fds)
		return -1;
	int fd = c->fds[0];
	memmove(c->fds, c->fds + 1, (c->n_fds - 1) * sizeof(int));
	c->n_fds--;
	return fd;
}

static ssize_t recv_with_fds(struct sbx_client *c, char *space, size_t n)
{
	return sbx_recv_with_fds(c->fd, space, n, 0, c->fds, SBX_CLIENT_MAX_FDS, &c->n_fds, NULL);
}

/* send, not write: a daemon that closed the connection (one that refused
 * us, say) must give EPIPE, not a SIGPIPE that kills the caller without a
 * word. */
static int send_all(int sock, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(sock, data, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_with_fd(int sock, const char *data, size_t len, int fd)
{
	if (fd < 0)
		return send_all(sock, data, len);
	ssize_t n = sbx_send_with_fd(sock, data, len, fd, MSG_NOSIGNAL);
	if (n < 0)
		return -1;
	return send_all(sock, data + n, len - (size_t)n);
}

#define CLIENT_READ ((size_t)256 << 10)

/* Next full line from the socket, valid until the next call; NULL at EOF. */
static char *read_line_len(struct sbx_client *c, size_t *line_len, sbx_error **err)
{
	for (;;) {
		char *line;
		size_t len;
		enum sbx_frame fr = sbx_framer_next(&c->in, &line, &len);
		if (fr == SBX_FRAME_LINE) {
			*line_len = len;
			return line;
		}
		if (fr == SBX_FRAME_OVERSIZE) {
			sbx_error_set(err, SBX_ERR_LIMIT, "reply from sandboxd exceeds %zu bytes", c->in.max);
			return NULL;
		}
		/* Big reads: replies may be megabytes of base64. */
		char *space = sbx_framer_space(&c->in, CLIENT_READ);
		if (!space) {
			sbx_error_errno(err, ENOMEM, "read reply");
			return NULL;
		}
		ssize_t n = recv_with_fds(c, space, CLIENT_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sbx_error_errno(err, errno, "read from sandboxd");
			return NULL;
		}
		if (n == 0) {
			sbx_error_set(err, SBX_ERR_INTERNAL, "sandboxd closed the connection");
			return NULL;
		}
		sbx_framer_commit(&c->in, (size_t)n);
	}
}

static char *read_line(struct sbx_client *c, sbx_error **err)
{
	size_t len;
	return read_line_len(c, &len, err);
}

/* The error line (id null) a daemon left before closing, as err. */
static bool closing_reason(struct sbx_client *c, sbx_error **err)
{
	sbx_error *ignored = NULL;
	char *line = read_line(c, &ignored);
	sbx_error_free(ignored);
	if (!line)
		return false;
	yajl_val root = sbx_json_parse(line, NULL);
	yajl_val id = root ? sbx_json_get(root, "id") : NULL;
	yajl_val e = root ? sbx_json_get(root, "error") : NULL;
	yajl_val msg = e ? sbx_json_get(e, "message") : NULL;
	yajl_val code = e ? sbx_json_get(e, "code") : NULL;
	bool found = id && YAJL_IS_NULL(id) && msg && YAJL_IS_STRING(msg);
	if (found)
		sbx_error_set(err, code && YAJL_IS_INTEGER(code) ? (int)YAJL_GET_INTEGER(code) : SBX_ERR_INTERNAL, "%s",
			      YAJL_GET_STRING(msg));
	if (root)
		yajl_tree_free(root);
	return found;
}

static int64_t send_request(struct sbx_client *c, const char *method, const char *params_json, int send_fd,
			    sbx_error **err)
{
	int64_t id = c->next_id++;
	struct sbx_buf req = { 0 };
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g) {
		sbx_error_errno(err, ENOMEM, "request");
		return -1;
	}
	sbx_buf_printf(&req, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":", (long long)id);
	sbx_gen_str(g, method);
	const unsigned char *m;
	size_t mlen;
	yajl_gen_get_buf(g, &m, &mlen);
	sbx_buf_append(&req, m, mlen);
	/* Appended, not printed: printf's %s copies a multi-MiB base64 chunk
	 * byte by byte. */
	const char *params = params_json ? params_json : "{}";
	sbx_buf_append(&req, ",\"params\":", 10);
	sbx_buf_append(&req, params, strlen(params));
	sbx_buf_append(&req, "}\n", 2);
	errno = 0;
	if (!req.data || send_with_fd(c->fd, req.data, req.len, send_fd) < 0) {
		int e = errno ? errno : ENOMEM;
		sbx_buf_free(&req);
		/* A daemon that refuses a connection says why in one line and
		 * closes it, which can come before our request is written. */
		if ((e == EPIPE || e == ECONNRESET) && closing_reason(c, err))
			return -1;
		sbx_error_errno(err, e, "send to sandboxd");
		return -1;
	}
	sbx_buf_free(&req);
	return id;
}

int64_t sbx_client_send(struct sbx_client *c, const char *method, const char *params_json, sbx_error **err)
{
	return send_request(c, method, params_json, -1, err);
}

int64_t sbx_client_send_parts(struct sbx_client *c, const char *method, const struct iovec *params, int n,
			      sbx_error **err)
{
	int64_t id = c->next_id++;
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g) {
		sbx_error_errno(err, ENOMEM, "request");
		return -1;
	}
	sbx_gen_str(g, method);
	const unsigned char *m;
	size_t mlen;
	yajl_gen_get_buf(g, &m, &mlen);
	char head[256];
	int hl = snprintf(head, sizeof(head), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":%.*s,\"params\":",
			  (long long)id, (int)mlen, (const char *)m);
	if (hl < 0 || (size_t)hl >= sizeof(head) || n > 14) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "request");
		return -1;
	}
	struct iovec iov[16];
	iov[0] = (struct iovec){ .iov_base = head, .iov_len = (size_t)hl };
	memcpy(iov + 1, params, (size_t)n * sizeof(*iov));
	iov[n + 1] = (struct iovec){ .iov_base = (void *)"}\n", .iov_len = 2 };
	int cnt = n + 2;
	struct iovec *v = iov;
	while (cnt > 0) {
		struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)cnt };
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			sbx_error_errno(err, errno, "send to sandboxd");
			return -1;
		}
		while (cnt > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	return id;
}

yajl_val sbx_client_next_bulk(struct sbx_client *c, const char *outer, const char *inner, char **bulk,
			      size_t *bulk_len, sbx_error **err)
{
	*bulk = NULL;
	*bulk_len = 0;
	size_t len;
	char *line = read_line_len(c, &len, err);
	if (!line)
		return NULL;
	struct sbx_json_cut cut = { 0 };
	int r = sbx_json_cut_string(line, len, outer, inner, 4096, NULL, NULL, &cut);
	if (r < 0) {
		sbx_error_errno(err, ENOMEM, "read reply");
		return NULL;
	}
	if (r == 0)
		return sbx_json_parse(line, err);
	yajl_val root = sbx_json_parse(cut.rest, err);
	free(cut.rest);
	if (root) {
		*bulk = cut.value;
		*bulk_len = cut.value_len;
	}
	return root;
}

yajl_val sbx_client_next(struct sbx_client *c, sbx_error **err)
{
	char *line = read_line(c, err);
	if (!line)
		return NULL;
	return sbx_json_parse(line, err);
}

yajl_val sbx_client_call_fd(struct sbx_client *c, const char *method, const char *params_json, int send_fd,
			    yajl_val *result, int *recv_fd, sbx_error **err)
{
	if (recv_fd)
		*recv_fd = -1;
	int64_t id = send_request(c, method, params_json, send_fd, err);
	if (id < 0)
		return NULL;
	for (;;) {
		char *line = read_line(c, err);
		if (!line)
			return NULL;
		yajl_val root = sbx_json_parse(line, err);
		if (!root)
			return NULL;
		yajl_val rid = sbx_json_get(root, "id");
		if (!rid || !YAJL_IS_INTEGER(rid) || YAJL_GET_INTEGER(rid) != id) {
			yajl_val e = sbx_json_get(root, "error");
			if (rid && YAJL_IS_NULL(rid) && e) {
				/* An error the server could not tie to a request. */
				yajl_val msg = sbx_json_get(e, "message");
				sbx_error_set(err, SBX_ERR_INTERNAL, "%s",
					      msg && YAJL_IS_STRING(msg) ? YAJL_GET_STRING(msg) : "protocol error");
				yajl_tree_free(root);
				return NULL;
			}
			if (!rid && c->on_notification && sbx_json_get(root, "method"))
				c->on_notification(c->notification_ctx, root);
			yajl_tree_free(root); /* a notification or another reply */
			continue;
		}
		yajl_val e = sbx_json_get(root, "error");
		if (e) {
			yajl_val code = sbx_json_get(e, "code");
			yajl_val msg = sbx_json_get(e, "message");
			sbx_error_set(err, code && YAJL_IS_INTEGER(code) ? (int)YAJL_GET_INTEGER(code) : SBX_ERR_INTERNAL,
				      "%s", msg && YAJL_IS_STRING(msg) ? YAJL_GET_STRING(msg) : "unknown error");
			yajl_tree_free(root);
			return NULL;
		}
		*result = sbx_json_get(root, "result");
		yajl_val has_fd = sbx_json_get(*result, "fd");
		if (has_fd && YAJL_IS_TRUE(has_fd)) {
			int fd = sbx_client_take_fd(c);
			if (recv_fd)
				*recv_fd = fd;
			else if (fd >= 0)
				close(fd);
		}
		return root;
	}
}

yajl_val sbx_client_call(struct sbx_client *c, const char *method, const char *params_json, yajl_val *result,
			 sbx_error **err)
{
	return sbx_client_call_fd(c, method, params_json, -1, result, NULL, err);
}
