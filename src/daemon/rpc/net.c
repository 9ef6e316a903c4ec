/* net.*: published ports and preview links (net.c). */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "netlink.h"
#include "registry/sandbox.h"

void rpc_net_publish(struct sbx_request *req)
{
	sbx_error *err = NULL;
	int64_t port = 0, host_port = 0;
	const char *host_ip = "127.0.0.1";
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_int(req->params, "port", true, 1, 65535, &port, &err) < 0 ||
	    sbx_json_int(req->params, "host_port", false, 0, 65535, &host_port, &err) < 0 ||
	    sbx_json_string(req->params, "host_ip", false, &host_ip, &err) < 0) {
		sbx_reply_error(req, err);
		return;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, host_ip, &a) != 1) {
		sbx_error_param(&err, "host_ip", "host_ip '%.64s' is not an IPv4 address", host_ip);
		sbx_reply_error(req, err);
		return;
	}
	uint16_t bound;
	if (sbx_net_publish(sb, (uint16_t)port, (uint16_t)host_port, host_ip, &bound, &err) < 0) {
		sbx_error_prefix(&err, "sandbox %s: publish port %lld", sb->name, (long long)port);
		sbx_reply_error(req, err);
		return;
	}
	sbx_sandbox_save(sb, NULL);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "port", port);
		sbx_gen_kv_int(g, "host_port", bound);
		sbx_gen_kv_str(g, "host_ip", host_ip);
		sbx_gen_kv_str(g, "protocol", "tcp");
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

void rpc_net_unpublish(struct sbx_request *req)
{
	sbx_error *err = NULL;
	int64_t port = 0;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_int(req->params, "port", true, 1, 65535, &port, &err) < 0 ||
	    sbx_net_unpublish(sb, (uint16_t)port, &err) < 0) {
		sbx_reply_error(req, err);
		return;
	}
	sbx_sandbox_save(sb, NULL);
	sbx_reply_empty(req);
}

void rpc_net_ports(struct sbx_request *req)
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
		sbx_gen_key(g, "ports");
		sbx_net_gen_ports(g, sb);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

void rpc_net_preview(struct sbx_request *req)
{
	sbx_error *err = NULL;
	int64_t port = 0, expires_s = 0;
	bool rotate = false;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_int(req->params, "port", true, 1, 65535, &port, &err) < 0 ||
	    sbx_json_int(req->params, "expires_s", false, 0, 365LL * 86400, &expires_s, &err) < 0 ||
	    sbx_json_bool(req->params, "rotate", false, &rotate, &err) < 0) {
		sbx_reply_error(req, err);
		return;
	}
	if (rotate && expires_s) {
		sbx_error_param(&err, "rotate", "rotate replaces the persistent token; a token with expires_s is new "
				"anyway: give one or the other");
		sbx_reply_error(req, err);
		return;
	}
	int64_t expires_ns = expires_s ? sbx_now_ns() + expires_s * 1000000000LL : 0;
	struct sbx_preview pv;
	if (sbx_net_preview(sb, (uint16_t)port, expires_ns, rotate, &pv, &err) < 0) {
		sbx_reply_error(req, err);
		return;
	}
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "url", pv.url);
		sbx_gen_kv_str(g, "token", pv.token);
		if (pv.expires_ns) {
			char ts[64];
			sbx_time_rfc3339(pv.expires_ns, ts);
			sbx_gen_kv_str(g, "expires_at", ts);
		} else {
			sbx_gen_kv_null(g, "expires_at");
		}
		sbx_gen_kv_str(g, "gateway", pv.gateway);
		if (pv.host_url[0])
			sbx_gen_kv_str(g, "host_url", pv.host_url);
		else
			sbx_gen_kv_null(g, "host_url");
		sbx_gen_kv_int(g, "port", port);
		sbx_gen_kv_bool(g, "public", sb->net.public);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
	explicit_bzero(&pv, sizeof(pv));
}

void rpc_net_unpreview(struct sbx_request *req)
{
	sbx_error *err = NULL;
	int64_t port = 0;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	int n;
	if (!sb || sbx_json_int(req->params, "port", false, 1, 65535, &port, &err) < 0 ||
	    (n = sbx_net_unpreview(sb, (uint16_t)port, &err)) < 0) {
		sbx_reply_error(req, err);
		return;
	}
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "revoked", n);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}
