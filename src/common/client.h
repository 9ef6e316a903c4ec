/* The protocol client used by sandboxctl: connect, send one request, read
 * lines until the reply with the same id arrives. */
#ifndef SBX_CLIENT_H
#define SBX_CLIENT_H

#include <stdint.h>

#include "error.h"
#include "framing.h"
#include "json.h"
#include "util.h"

struct sbx_client {
	int fd;
	struct sbx_framer in;
	int64_t next_id;
};

/* SANDBOXD_SOCKET, or the default path. */
const char *sbx_client_default_socket(void);
int sbx_client_connect(struct sbx_client *c, const char *path, sbx_error **err);
/* params_json: a JSON object text or NULL. Returns the whole reply (free
 * with yajl_tree_free) and points *result at its "result" member. A
 * JSON-RPC error reply becomes err with the server's code and message. */
yajl_val sbx_client_call(struct sbx_client *c, const char *method, const char *params_json, yajl_val *result,
			 sbx_error **err);
void sbx_client_close(struct sbx_client *c);

#endif
