/* Events: connections that subscribed (rpc/events.c) are told about
 * sandbox lifecycle changes with "event" notifications, until they close.
 * An event is built once and queued to every subscriber; a subscriber that
 * does not read is bounded like any other connection. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "registry/sandbox.h"

struct subscriber {
	struct subscriber *next;
	struct sbx_conn *conn;
	char sandbox[13]; /* "" for every sandbox */
};

static struct subscriber *subscribers;

int sbx_events_subscribe(struct sbx_conn *conn, const char *sandbox_id, sbx_error **err)
{
	struct subscriber *s = calloc(1, sizeof(*s));
	if (!s)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "out of memory");
	s->conn = sbx_conn_ref(conn);
	if (sandbox_id)
		snprintf(s->sandbox, sizeof(s->sandbox), "%s", sandbox_id);
	s->next = subscribers;
	subscribers = s;
	return 0;
}

/* Drop subscribers whose connection has gone. */
static void prune(void)
{
	for (struct subscriber **pp = &subscribers; *pp;) {
		struct subscriber *s = *pp;
		if (sbx_conn_closed(s->conn)) {
			*pp = s->next;
			sbx_conn_release(s->conn);
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

void sbx_event_emit(struct sbx_daemon *d, const char *type, struct sbx_sandbox *sb, const char *detail)
{
	(void)d;
	prune();
	if (!subscribers)
		return;
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return;
	char ts[64];
	sbx_time_rfc3339(sbx_now_ns(), ts);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "jsonrpc", "2.0");
	sbx_gen_kv_str(g, "method", "event");
	sbx_gen_key(g, "params");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "type", type);
	sbx_gen_kv_str(g, "sandbox", sb->id);
	sbx_gen_kv_str(g, "name", sb->name);
	sbx_gen_kv_str(g, "state", sbx_state_name(sb->state));
	sbx_gen_kv_str(g, "time", ts);
	if (detail)
		sbx_gen_kv_str(g, "message", detail);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return;
	for (struct subscriber *s = subscribers; s; s = s->next)
		if (!s->sandbox[0] || !strcmp(s->sandbox, sb->id))
			sbx_conn_send_line(s->conn, (const char *)buf, len);
}

void sbx_events_close(struct sbx_daemon *d)
{
	(void)d;
	while (subscribers) {
		struct subscriber *s = subscribers;
		subscribers = s->next;
		sbx_conn_release(s->conn);
		free(s);
	}
}
