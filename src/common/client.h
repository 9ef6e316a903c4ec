/* The protocol client used by sandboxctl: connect, send one request, read
 * lines until the reply with the same id arrives. */
#ifndef SBX_CLIENT_H
#define SBX_CLIENT_H

#include <stdint.h>
#include <sys/uio.h>

#include "error.h"
#include "framing.h"
#include "json.h"
#include "util.h"

#define SBX_CLIENT_MAX_FDS 8

struct sbx_client {
	int fd;
	struct sbx_framer in;
	int64_t next_id;
	int fds[SBX_CLIENT_MAX_FDS]; /* received, not yet claimed by a reply */
	size_t n_fds;
	/* Called with each notification (a message with a method and no id)
	 * read while a call waits for its reply; may be NULL. */
	void (*on_notification)(void *ctx, yajl_val msg);
	void *notification_ctx;
};

/* SANDBOXD_SOCKET, or the default path. */
const char *sbx_client_default_socket(void);
int sbx_client_connect(struct sbx_client *c, const char *path, sbx_error **err);
/* params_json: a JSON object text or NULL. Returns the whole reply (free
 * with yajl_tree_free) and points *result at its "result" member. A
 * JSON-RPC error reply becomes err with the server's code and message. */
yajl_val sbx_client_call(struct sbx_client *c, const char *method, const char *params_json, yajl_val *result,
			 sbx_error **err);
/* The same, sending send_fd (unless -1) with the request, whose params must
 * then say "fd": true; a reply whose result says "fd": true hands its fd to
 * *recv_fd (-1 otherwise; closed when recv_fd is NULL). */
yajl_val sbx_client_call_fd(struct sbx_client *c, const char *method, const char *params_json, int send_fd,
			    yajl_val *result, int *recv_fd, sbx_error **err);
/* Send a request without waiting; returns its id or -1. */
int64_t sbx_client_send(struct sbx_client *c, const char *method, const char *params_json, sbx_error **err);
/* The same, with params given as pieces written with one writev (a big
 * base64 chunk is sent from where it was encoded, not copied). */
int64_t sbx_client_send_parts(struct sbx_client *c, const char *method, const struct iovec *params, int n,
			      sbx_error **err);
/* The next message (reply or notification) as a parsed tree, or NULL at an
 * error; a descriptor received with it is left queued for the caller. */
yajl_val sbx_client_next(struct sbx_client *c, sbx_error **err);
/* The same, but a string member inner of the top-level member outer (such
 * as result.data of a chunk) that is long and has no escapes is cut out
 * before parsing (the tree says ""): *bulk points at its bytes in the
 * client's buffer, valid and writable until the next read; NULL if there
 * was none. */
yajl_val sbx_client_next_bulk(struct sbx_client *c, const char *outer, const char *inner, char **bulk,
			      size_t *bulk_len, sbx_error **err);
/* The oldest received descriptor not yet claimed, or -1. */
int sbx_client_take_fd(struct sbx_client *c);
void sbx_client_close(struct sbx_client *c);

#endif
