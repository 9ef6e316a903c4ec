/* Blocking protocol client. One request at a time is all sandboxctl needs;
 * notifications arriving in between are skipped. */
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
	sbx_framer_free(&c->in);
}

/* Next full line from the socket, valid until the next call; NULL at EOF. */
static char *read_line(struct sbx_client *c, sbx_error **err)
{
	for (;;) {
		char *line;
		size_t len;
		enum sbx_frame fr = sbx_framer_next(&c->in, &line, &len);
		if (fr == SBX_FRAME_LINE)
			return line;
		if (fr == SBX_FRAME_OVERSIZE) {
			sbx_error_set(err, SBX_ERR_LIMIT, "reply from sandboxd exceeds %zu bytes", c->in.max);
			return NULL;
		}
		char *space = sbx_framer_space(&c->in, 65536);
		if (!space) {
			sbx_error_errno(err, ENOMEM, "read reply");
			return NULL;
		}
		ssize_t n = read(c->fd, space, 65536);
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

yajl_val sbx_client_call(struct sbx_client *c, const char *method, const char *params_json, yajl_val *result,
			 sbx_error **err)
{
	int64_t id = c->next_id++;
	struct sbx_buf req = { 0 };
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return NULL;
	sbx_buf_printf(&req, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":", (long long)id);
	sbx_gen_str(g, method);
	const unsigned char *m;
	size_t mlen;
	yajl_gen_get_buf(g, &m, &mlen);
	sbx_buf_append(&req, m, mlen);
	sbx_buf_printf(&req, ",\"params\":%s}\n", params_json ? params_json : "{}");
	if (!req.data || sbx_write_all(c->fd, req.data, req.len) < 0) {
		sbx_error_errno(err, errno ? errno : ENOMEM, "send to sandboxd");
		sbx_buf_free(&req);
		return NULL;
	}
	sbx_buf_free(&req);
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
		return root;
	}
}
