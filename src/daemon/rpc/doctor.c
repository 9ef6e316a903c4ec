/* system.doctor: what on this host stands in the way of sandboxes, one
 * check per line, each with its fix. The checks live in lib/hostcheck.c
 * (sandboxctl runs them itself when the daemon is down); here they run
 * with what the daemon knows: the controllers it got, its subnet and
 * device group, its rules in other tables, its listeners. A call takes
 * some tens of milliseconds (a user namespace and an idmapped mount are
 * tried in children, the ruleset is read). */
#include "config.h"
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "hostcheck.h"
#include "net.h"

static void cgroup_check(struct sbx_daemon *d, struct sbx_checks *c)
{
	char have[64] = "", missing[64] = "";
	for (int i = 0; i < SBX_CTRL_COUNT; i++) {
		char *to = d->cg.ctrl[i] ? have : missing;
		snprintf(to + strlen(to), 64 - strlen(to), " %s", sbx_ctrl_name((enum sbx_ctrl)i));
	}
	const char *mode = sbx_cgroup_mode_name(d->cg.mode);
	if (!missing[0]) {
		sbx_checks_add(c, "cgroup", SBX_CHECK_OK, NULL, "%s, base %s, controllers%s", mode, d->cg.base, have);
		return;
	}
	const char *fix = d->cg.mode == SBX_CGROUP_V2 ?
				  "give sandboxd a group with those controllers delegated (Delegate=yes in its systemd "
				  "unit), or set cgroup_parent in sandboxd.conf to one that has them" :
				  "mount the v1 hierarchies of those controllers under /sys/fs/cgroup, or boot with "
				  "systemd.unified_cgroup_hierarchy=1";
	sbx_checks_add(c, "cgroup", SBX_CHECK_WARN, fix,
		       "%s, base %s; controllers missing:%s: limits of those are unavailable (controllers there:%s)", mode,
		       d->cg.base, missing, have[0] ? have : " none");
}

void rpc_system_doctor(struct sbx_request *req)
{
	struct sbx_daemon *d = req->d;
	struct sbx_checks c = { 0 };
	cgroup_check(d, &c);
	sbx_hostcheck_userns(&c, d->cfg.state_dir, d->cfg.userns);
	sbx_hostcheck_overlay(&c);
	sbx_hostcheck_nftables(&c);
	sbx_net_doctor(d, &c);
	sbx_hostcheck_socket(&c, d->cfg.socket_path);
	sbx_hostcheck_space(&c, d->cfg.state_dir);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_bool(g, "ok", !sbx_checks_failed(&c));
		sbx_gen_key(g, "checks");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < c.n; i++) {
			yajl_gen_map_open(g);
			sbx_gen_kv_str(g, "name", c.v[i].name);
			sbx_gen_kv_str(g, "status", sbx_check_status_name(c.v[i].status));
			sbx_gen_kv_str(g, "message", c.v[i].message);
			sbx_gen_kv_str(g, "fix", c.v[i].fix);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		sbx_reply_end(req, g);
	}
	sbx_checks_free(&c);
}
