/* events.subscribe: a connection asks to be told about sandbox lifecycle
 * changes (events.c sends them). */
#include "config.h"

#include "daemon.h"
#include "registry/sandbox.h"

void rpc_events_subscribe(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *ref = NULL;
	if (sbx_json_string(req->params, "sandbox", false, &ref, &err) < 0)
		return sbx_reply_error(req, err);
	struct sbx_sandbox *sb = NULL;
	if (ref && !(sb = sbx_sandbox_find(req->d, ref))) {
		sbx_error_set(&err, SBX_ERR_NOT_FOUND, "sandbox \"%.64s\" not found; run 'sandboxctl ls'", ref);
		return sbx_reply_error(req, err);
	}
	if (sbx_events_subscribe(req->conn, sb ? sb->id : NULL, &err) < 0)
		return sbx_reply_error(req, err);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "sandbox", sb ? sb->id : NULL);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}
