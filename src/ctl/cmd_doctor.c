/* sandboxctl doctor: what on this host stands in the way of sandboxes.
 * With the daemon up, its system.doctor answers (it knows its subnet, its
 * rules and its listeners); without, the same checks of lib/hostcheck.c
 * run here with the daemon's configuration file. */
#include "config.h"
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conffile.h"
#include "ctl.h"
#include "hostcheck.h"
#include "netlink.h"
#include "util.h"

#define DEFAULT_CONFIG SYSCONFDIR "/sandboxd/sandboxd.conf"
#define DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/sandboxd"

/* What the checks need of sandboxd.conf, with the daemon's defaults. */
struct settings {
	char *state_dir, *bridge, *subnet, *subnet_pool, *preview_listen, *firewalld_zone;
	bool userns, iptables_forward;
};

static bool truthy(const char *v)
{
	return !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1");
}

static int setting(const char *key, const char *value, void *data, sbx_error **err)
{
	(void)err;
	struct settings *s = data;
	char **slot = !strcmp(key, "state_dir")	     ? &s->state_dir :
		      !strcmp(key, "bridge")	     ? &s->bridge :
		      !strcmp(key, "subnet")	     ? &s->subnet :
		      !strcmp(key, "subnet_pool")    ? &s->subnet_pool :
		      !strcmp(key, "preview_listen") ? &s->preview_listen :
		      !strcmp(key, "firewalld_zone") ? &s->firewalld_zone :
						       NULL;
	if (slot) {
		free(*slot);
		*slot = strdup(value);
	} else if (!strcmp(key, "userns")) {
		s->userns = truthy(value);
	} else if (!strcmp(key, "iptables_forward")) {
		s->iptables_forward = truthy(value);
	}
	return 0;
}

static void settings_free(struct settings *s)
{
	free(s->state_dir);
	free(s->bridge);
	free(s->subnet);
	free(s->subnet_pool);
	free(s->preview_listen);
	free(s->firewalld_zone);
}

/* The host alone, as the daemon would see it at start. */
static void host_checks(struct sbx_checks *c, const struct settings *s)
{
	sbx_hostcheck_cgroup(c);
	sbx_hostcheck_userns(c, s->state_dir, s->userns);
	sbx_hostcheck_overlay(c);
	sbx_hostcheck_nftables(c);
	sbx_hostcheck_ip_forward(c, false);
	_cleanup_free_ char *kept = NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/net-subnet", s->state_dir);
	if (sbx_read_file_at(AT_FDCWD, path, 64, &kept, NULL, NULL) == 0)
		kept[strcspn(kept, "\n")] = '\0';
	struct sbx_cidr subnet;
	if (sbx_hostcheck_subnet(c, s->subnet, kept, s->subnet_pool, s->bridge, &subnet)) {
		struct sbx_nl nl = { 0 };
		struct sbx_nl_uplink_info up = { 0 };
		if (sbx_nl_open(&nl, NULL) == 0)
			sbx_nl_uplink(&nl, &up, NULL);
		sbx_nl_close(&nl);
		char table[64], tag[64];
		snprintf(table, sizeof(table), "sandboxd-%s", s->bridge);
		snprintf(tag, sizeof(tag), "sandboxd %s", s->bridge);
		struct sbx_fw_net net = { .subnet = subnet,
					  .link_prefix = "sv",
					  .uplink = up.name,
					  .uplink_index = up.ifindex,
					  .uplink_group = up.group,
					  .own_table = table,
					  .tag = tag };
		struct sbx_forward_fixes fx = { s->iptables_forward, s->firewalld_zone };
		sbx_hostcheck_forward(c, &net, &fx, false);
	}
	sbx_hostcheck_port(c, "preview", s->preview_listen);
	sbx_hostcheck_space(c, s->state_dir);
}

/* The daemon's answer, as checks. */
static void daemon_checks(struct sbx_checks *c, yajl_val res)
{
	yajl_val list = sbx_json_get(res, "checks");
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val k = list->u.array.values[i];
		const char *st = ctl_str(k, "status");
		enum sbx_check_status status = !st || !strcmp(st, "fail") ? SBX_CHECK_FAIL :
					       !strcmp(st, "warn")	    ? SBX_CHECK_WARN :
									      SBX_CHECK_OK;
		const char *name = ctl_str(k, "name"), *msg = ctl_str(k, "message");
		sbx_checks_add(c, name ? name : "?", status, ctl_str(k, "fix"), "%s", msg ? msg : "");
	}
}

static void print_checks(const struct sbx_checks *c, bool daemon)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_map_open(g);
	sbx_gen_kv_bool(g, "ok", !sbx_checks_failed(c));
	sbx_gen_kv_bool(g, "daemon", daemon);
	sbx_gen_key(g, "checks");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < c->n; i++) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "name", c->v[i].name);
		sbx_gen_kv_str(g, "status", sbx_check_status_name(c->v[i].status));
		sbx_gen_kv_str(g, "message", c->v[i].message);
		sbx_gen_kv_str(g, "fix", c->v[i].fix);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	fwrite(buf, 1, len, stdout);
	if (len && buf[len - 1] != '\n')
		putchar('\n');
	yajl_gen_free(g);
}

int cmd_doctor(struct ctl *ctl, int argc, char **argv)
{
	const char *config = DEFAULT_CONFIG;
	bool local = false;
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "config", required_argument, NULL, 'c' },
					      { "local", no_argument, NULL, 'l' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			ctl->json = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 'l':
			local = true;
			break;
		case 'h':
			printf("Usage: sandboxctl doctor [--json] [--config PATH] [--local]\n"
			       "Check what this host needs for sandboxes, one line per check (ok, warn or fail), each\n"
			       "warning and failure with its fix. With sandboxd running, it answers; otherwise (or\n"
			       "with --local) the host is checked here with the daemon's configuration file (default\n"
			       "%s). Exit status: 0 when nothing failed, 1 otherwise.\n",
			       DEFAULT_CONFIG);
			return 0;
		default:
			return ctl_bad_option("doctor", argv);
		}
	}
	if (optind < argc)
		return ctl_usage_error("doctor", "unexpected argument '%s'", argv[optind]);

	struct sbx_checks c = { 0 };
	bool daemon = false;
	_cleanup_json_ yajl_val root = NULL;
	sbx_error *err = NULL;
	if (!local) {
		if (sbx_client_connect(&ctl->client, ctl->socket, &err) == 0) {
			ctl->connected = true;
			yajl_val res;
			root = sbx_client_call(&ctl->client, "system.doctor", NULL, &res, &err);
			if (root) {
				daemon = true;
				sbx_checks_add(&c, "daemon", SBX_CHECK_OK, NULL, "sandboxd answers on %s", ctl->socket);
				daemon_checks(&c, res);
			} else {
				sbx_checks_add(&c, "daemon", SBX_CHECK_WARN, "upgrade sandboxd",
					       "sandboxd on %s cannot run the checks itself (%s); the host is checked from "
					       "here",
					       ctl->socket, err ? err->msg : "no answer");
			}
		} else {
			bool have = access(config, F_OK) == 0;
			sbx_checks_add(&c, "daemon", SBX_CHECK_WARN, "start it (systemctl start sandboxd)",
				       "sandboxd does not answer on %s (%s); the host is checked with %s%s%s", ctl->socket,
				       err ? err->msg : "?", have ? "" : "the defaults (no ", config, have ? "" : ")");
		}
		sbx_error_free(err);
		err = NULL;
	}
	if (!daemon) {
		struct settings s = { .userns = true, .iptables_forward = true };
		s.state_dir = strdup(DEFAULT_STATE_DIR);
		s.bridge = strdup("sbx0");
		s.subnet_pool = strdup(SBX_DEFAULT_SUBNET_POOL);
		s.preview_listen = strdup("127.0.0.1:8480");
		s.firewalld_zone = strdup("sandboxd");
		if (sbx_conffile_read(config, false, setting, &s, &err) < 0) {
			sbx_checks_add(&c, "config", SBX_CHECK_FAIL, "fix the file; sandboxd refuses to start with it", "%s",
				       err->msg);
			sbx_error_free(err);
		}
		host_checks(&c, &s);
		settings_free(&s);
	}
	if (ctl->json) {
		print_checks(&c, daemon);
	} else {
		for (size_t i = 0; i < c.n; i++) {
			printf("%-4s  %-10s %s", sbx_check_status_name(c.v[i].status), c.v[i].name, c.v[i].message);
			if (c.v[i].fix)
				printf("; fix: %s", c.v[i].fix);
			putchar('\n');
		}
	}
	int rc = sbx_checks_failed(&c) ? 1 : 0;
	sbx_checks_free(&c);
	return rc;
}
