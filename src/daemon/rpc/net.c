/* net.*: published ports and preview links; and the JSON of a sandbox's
 * "network", "ports" and "public" (create, update, inspect, sandbox.json). */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "netlink.h"
#include "sandbox.h"

int sbx_net_ports_add_saved(struct sbx_sandbox *sb, uint16_t port, uint16_t host_port, const char *host_ip);

static void gen_cidrs(yajl_gen g, const char *key, const struct sbx_cidr *list, size_t n)
{
	sbx_gen_key(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		char a[INET_ADDRSTRLEN], s[INET_ADDRSTRLEN + 4];
		inet_ntop(AF_INET, &list[i].net, a, sizeof(a));
		snprintf(s, sizeof(s), "%s/%d", a, list[i].prefix);
		sbx_gen_str(g, s);
	}
	yajl_gen_array_close(g);
}

static void gen_ports(yajl_gen g, struct sbx_sandbox *sb)
{
	yajl_gen_array_open(g);
	uint16_t port, host_port;
	const char *host_ip;
	for (struct sbx_publish *p = sbx_net_ports_next(sb, NULL, &port, &host_port, &host_ip); p;
	     p = sbx_net_ports_next(sb, p, &port, &host_port, &host_ip)) {
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "port", port);
		sbx_gen_kv_int(g, "host_port", host_port);
		sbx_gen_kv_str(g, "host_ip", host_ip);
		sbx_gen_kv_str(g, "protocol", "tcp");
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

void sbx_net_gen(yajl_gen g, struct sbx_sandbox *sb)
{
	sbx_gen_key(g, "network");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "mode", sb->network_mode);
	if (sb->net.ip.s_addr) {
		char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
		struct in_addr gwa = sbx_net_gateway(sb->d);
		inet_ntop(AF_INET, &sb->net.ip, ip, sizeof(ip));
		inet_ntop(AF_INET, &gwa, gw, sizeof(gw));
		sbx_gen_kv_str(g, "ip", ip);
		sbx_gen_kv_str(g, "gateway", gw);
	} else {
		sbx_gen_kv_null(g, "ip");
		sbx_gen_kv_null(g, "gateway");
	}
	gen_cidrs(g, "allow_out", sb->net.allow, sb->net.n_allow);
	gen_cidrs(g, "deny_out", sb->net.deny, sb->net.n_deny);
	yajl_gen_map_close(g);
	sbx_gen_key(g, "ports");
	gen_ports(g, sb);
	sbx_gen_kv_bool(g, "public", sb->net.public);
}

static int parse_list(yajl_val net, const char *key, struct sbx_cidr **out, size_t *n, bool *given, sbx_error **err)
{
	_cleanup_strv_ char **v = NULL;
	*given = false;
	if (sbx_json_string_array(net, key, false, &v, err) < 0)
		return -1;
	if (!sbx_json_get(net, key))
		return 0;
	*given = true;
	size_t count = 0;
	while (v && v[count])
		count++;
	if (count > 256)
		return sbx_error_param(err, "network", "%s has more than 256 entries", key);
	struct sbx_cidr *list = calloc(count ? count : 1, sizeof(*list));
	if (!list)
		return sbx_error_errno(err, ENOMEM, "network");
	for (size_t i = 0; i < count; i++) {
		if (sbx_cidr_parse(v[i], &list[i].net, &list[i].prefix) < 0) {
			free(list);
			return sbx_error_param(err, "network", "%s: '%.64s' is not an IPv4 address or CIDR (a.b.c.d/n)", key,
					       v[i]);
		}
	}
	*out = list;
	*n = count;
	return 0;
}

int sbx_net_parse_egress(yajl_val net, struct sbx_sandbox_net *io, sbx_error **err)
{
	if (!net)
		return 0;
	struct sbx_cidr *allow = NULL, *deny = NULL;
	size_t na = 0, nd = 0;
	bool ga, gd;
	if (parse_list(net, "allow_out", &allow, &na, &ga, err) < 0)
		return -1;
	if (parse_list(net, "deny_out", &deny, &nd, &gd, err) < 0) {
		free(allow);
		return -1;
	}
	if (ga) {
		free(io->allow);
		io->allow = allow;
		io->n_allow = na;
	}
	if (gd) {
		free(io->deny);
		io->deny = deny;
		io->n_deny = nd;
	}
	return 0;
}

void sbx_net_load(struct sbx_sandbox *sb, yajl_val obj)
{
	yajl_val net = NULL, ports = NULL;
	const char *ip = NULL;
	sbx_json_bool(obj, "public", false, &sb->net.public, NULL);
	if (sbx_json_object(obj, "network", false, &net, NULL) > 0) {
		if (sbx_json_string(net, "ip", false, &ip, NULL) > 0 && ip)
			inet_pton(AF_INET, ip, &sb->net.ip);
		sbx_net_parse_egress(net, &sb->net, NULL);
	}
	if (sbx_json_array(obj, "ports", false, &ports, NULL) > 0 && ports) {
		for (size_t i = 0; i < ports->u.array.len; i++) {
			yajl_val p = ports->u.array.values[i];
			int64_t port = 0, host_port = 0;
			const char *host_ip = "127.0.0.1";
			if (sbx_json_int(p, "port", true, 1, 65535, &port, NULL) < 0 ||
			    sbx_json_int(p, "host_port", true, 1, 65535, &host_port, NULL) < 0)
				continue;
			sbx_json_string(p, "host_ip", false, &host_ip, NULL);
			sbx_net_ports_add_saved(sb, (uint16_t)port, (uint16_t)host_port, host_ip);
		}
	}
}

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
		gen_ports(g, sb);
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
