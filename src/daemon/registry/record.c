/* A sandbox's record: the sandbox object of the protocol (sandbox.list,
 * inspect, events) and sandbox.json, its persisted form with what the
 * daemon needs after a restart; the parts of it the create and update
 * methods parse ("resources", "network"). */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "net.h"
#include "netlink.h"
#include "command.h"
#include "registry/sandbox.h"

/* "env": the box's KEY=VALUE strings as a map. */
static void gen_env(yajl_gen g, char *const *env)
{
	sbx_gen_key(g, "env");
	yajl_gen_map_open(g);
	for (size_t i = 0; env && env[i]; i++) {
		size_t k = strcspn(env[i], "=");
		sbx_gen_strn(g, env[i], k);
		sbx_gen_str(g, env[i][k] ? env[i] + k + 1 : "");
	}
	yajl_gen_map_close(g);
}

static void gen_time(yajl_gen g, const char *key, int64_t ns)
{
	if (!ns) {
		sbx_gen_kv_null(g, key);
		return;
	}
	char ts[64];
	sbx_time_rfc3339(ns, ts);
	sbx_gen_kv_str(g, key, ts);
}

/* The image's service: what it runs and how its last run went. */
static void gen_service(yajl_gen g, struct sbx_sandbox *sb)
{
	if (!sb->service) {
		sbx_gen_kv_null(g, "service");
		return;
	}
	sbx_gen_key(g, "service");
	yajl_gen_map_open(g);
	sbx_gen_strv(g, "cmd", sb->service);
	struct sbx_command *c = sb->service_cmd[0] ? sbx_command_find(sb, sb->service_cmd) : NULL;
	if (c) {
		sbx_gen_kv_str(g, "cmd_id", c->id);
		sbx_gen_kv_int(g, "pid", c->pid);
		sbx_gen_kv_bool(g, "running", !c->exited && !c->lost);
		sbx_command_gen_status(g, c);
	} else {
		sbx_gen_kv_null(g, "cmd_id");
		sbx_gen_kv_bool(g, "running", false);
	}
	yajl_gen_map_close(g);
}

void sbx_sandbox_gen(yajl_gen g, struct sbx_sandbox *sb)
{
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "id", sb->id);
	sbx_gen_kv_str(g, "name", sb->name);
	sbx_gen_kv_str(g, "state", sbx_state_name(sb->state));
	sbx_gen_kv_str(g, "image", sb->image);
	gen_time(g, "created_at", sb->created_ns);
	gen_time(g, "started_at", sb->started_ns);
	gen_time(g, "last_activity_at", sb->activity_ns);
	sbx_gen_kvlist(g, "labels", &sb->labels);
	gen_env(g, sb->box->env);
	sbx_gen_kv_str(g, "user", sb->box->user);
	sbx_gen_kv_str(g, "workdir", sb->box->workdir);
	sbx_gen_kv_str(g, "hostname", sb->box->hostname);
	sbx_gen_key(g, "resources");
	yajl_gen_map_open(g);
	sbx_gen_kv_double(g, "cpus", sb->res.cpus);
	sbx_gen_kv_int(g, "memory_mb", sb->res.memory_mb);
	sbx_gen_kv_int(g, "pids", sb->res.pids);
	sbx_gen_kv_int(g, "disk_mb", sb->res.disk_mb);
	yajl_gen_map_close(g);
	sbx_net_gen(g, sb);
	sbx_gen_kv_int(g, "auto_stop_min", sb->auto_stop_min);
	sbx_gen_kv_int(g, "auto_archive_min", sb->auto_archive_min);
	sbx_gen_kv_int(g, "auto_delete_min", sb->auto_delete_min);
	sbx_gen_kv_bool(g, "ephemeral", sb->ephemeral);
	if (sb->state == SBX_STATE_ARCHIVED) {
		sbx_gen_key(g, "archive");
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "size_bytes", sb->archive_bytes);
		sbx_gen_kv_int(g, "layer_bytes", sb->archive_layer_bytes);
		gen_time(g, "archived_at", sb->archived_ns);
		yajl_gen_map_close(g);
	} else {
		sbx_gen_kv_null(g, "archive");
	}
	sbx_gen_key(g, "security");
	yajl_gen_map_open(g);
	sbx_gen_kv_bool(g, "userns", sb->box->userns_base != 0);
	if (sb->box->userns_base)
		sbx_gen_kv_int(g, "uid_base", sb->box->userns_base);
	sbx_gen_key(g, "capabilities");
	yajl_gen_array_open(g);
	for (int c = 0; c < 64; c++)
		if (sb->box->caps & (1ULL << c) && sbx_caps_name(c))
			sbx_gen_str(g, sbx_caps_name(c));
	yajl_gen_array_close(g);
	sbx_gen_kv_str(g, "seccomp", sb->seccomp);
	yajl_gen_map_close(g);
	gen_service(g, sb);
	if (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED)
		sbx_gen_kv_int(g, "init_pid", sb->box->init_pid);
	else
		sbx_gen_kv_null(g, "init_pid");
	yajl_gen_map_close(g);
}

/* Persisted form: the public object plus what recovery needs. */
int sbx_sandbox_save(struct sbx_sandbox *sb, sbx_error **err)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return sbx_error_errno(err, ENOMEM, "save sandbox");
	yajl_gen_map_open(g);
	sbx_gen_kv_int(g, "version", 1);
	sbx_gen_key(g, "sandbox");
	sbx_sandbox_gen(g, sb);
	sbx_gen_kv_str(g, "image_id", sb->image_id);
	if (sb->service)
		sbx_gen_strv(g, "service_argv", sb->service);
	if (sb->service_cmd[0])
		sbx_gen_kv_str(g, "service_cmd", sb->service_cmd);
	sbx_gen_kv_int(g, "created_ns", sb->created_ns);
	sbx_gen_kv_int(g, "started_ns", sb->started_ns);
	sbx_gen_kv_int(g, "activity_ns", sb->activity_ns);
	/* The box's own state file is what recovery reads; these copies are
	 * for a state dir that an earlier version wrote without one. */
	sbx_gen_kv_int(g, "init_pid", sb->box->init_pid);
	sbx_gen_kv_int(g, "init_starttime", (int64_t)sb->box->init_starttime);
	sbx_gen_kv_str(g, "cgroup", sb->box->cgroup);
	sbx_gen_kv_int(g, "exec_seq", (int64_t)sb->box->exec_seq);
	sbx_gen_kv_int(g, "oom_seen", sb->oom_seen);
	sbx_gen_kv_int(g, "userns_base", sb->box->userns_base);
	sbx_gen_kv_int(g, "projid", sb->box->projid);
	sbx_gen_kv_int(g, "caps_mask", (int64_t)sb->box->caps);
	if (sb->delete_pending)
		sbx_gen_kv_bool(g, "delete_pending", true);
	sbx_gen_kv_int(g, "archived_ns", sb->archived_ns);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	char path[64];
	snprintf(path, sizeof(path), "sandboxes/%s/sandbox.json", sb->id);
	if (sbx_write_file_atomic_at(sb->d->state_fd, path, buf, len, 0600, err) < 0)
		return sbx_error_prefix(err, "sandbox %s: save state", sb->id);
	return 0;
}

/* A state dir written before boxes kept a state file of their own: the
 * box is made from sandbox.json's copies and its file written. */
static int box_from_record(struct sbx_sandbox *sb, yajl_val root, yajl_val o, sbx_error **err)
{
	struct sbx_daemon *d = sb->d;
	const char *user = NULL, *workdir = NULL, *hostname = NULL, *cgroup = NULL;
	int64_t pid = 0, starttime = 0, seq = 0, ub = 0, projid = 0, caps = (int64_t)sbx_caps_default();
	struct sbx_kvlist env = { 0 };
	sbx_json_string(o, "user", false, &user, NULL);
	sbx_json_string(o, "workdir", false, &workdir, NULL);
	sbx_json_string(o, "hostname", false, &hostname, NULL);
	sbx_json_string_map(o, "env", false, &env, NULL);
	sbx_json_string(root, "cgroup", false, &cgroup, NULL);
	sbx_json_int(root, "init_pid", false, 0, INT32_MAX, &pid, NULL);
	sbx_json_int(root, "init_starttime", false, 0, INT64_MAX, &starttime, NULL);
	sbx_json_int(root, "exec_seq", false, 0, INT64_MAX, &seq, NULL);
	sbx_json_int(root, "userns_base", false, 0, UINT32_MAX, &ub, NULL);
	sbx_json_int(root, "projid", false, 0, UINT32_MAX, &projid, NULL);
	sbx_json_int(root, "caps_mask", false, INT64_MIN, INT64_MAX, &caps, NULL);
	char **envv = sbx_kvlist_to_env(&env);
	sbx_kvlist_free(&env);
	struct sbx_box_spec spec = {
		.id = sb->id,
		.hostname = hostname ? hostname : sb->name,
		.workdir = workdir ? workdir : "/",
		.user = user ? user : "root",
		.env = (const char *const *)envv,
		.disk_mb = sb->res.disk_mb,
		.userns_base = (uint32_t)ub,
		.caps = (uint64_t)caps,
	};
	sbx_resources_to_limits(d, &sb->res, &spec.limits);
	sb->box = envv ? sbx_box_new(&d->box_host, &spec, err) : NULL;
	sbx_box_strv_free(envv);
	if (!sb->box)
		return err && *err ? -1 : sbx_error_errno(err, ENOMEM, "load");
	struct sbx_box *box = sb->box;
	box->projid = (uint32_t)projid;
	box->running = sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED;
	box->frozen = sb->state == SBX_STATE_PAUSED;
	box->init_pid = (pid_t)pid;
	box->init_starttime = (uint64_t)starttime;
	box->exec_seq = (uint64_t)seq;
	if (cgroup && !(box->cgroup = strdup(cgroup)))
		return sbx_error_errno(err, ENOMEM, "load");
	if (sb->net.ip.s_addr)
		sbx_net_link(sb, &box->net);
	return sbx_box_save(box, err);
}

struct sbx_sandbox *sbx_sandbox_load(struct sbx_daemon *d, const char *id, sbx_error **err)
{
	char path[320];
	snprintf(path, sizeof(path), "sandboxes/%s/sandbox.json", id);
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(d->state_fd, path, 1 << 20, &text, NULL, err) < 0)
		return NULL;
	_cleanup_json_ yajl_val root = sbx_json_parse(text, err);
	if (!root)
		return NULL;
	yajl_val o = NULL;
	const char *name, *state, *image, *image_id = NULL, *netmode = NULL;
	int64_t created = 0, started = 0, activity = 0;
	int64_t auto_stop = 15, auto_archive = 10080, auto_delete = -1;
	bool ephemeral = false;
	yajl_val net = NULL;
	if (sbx_json_object(root, "sandbox", true, &o, err) < 0 || sbx_json_string(o, "name", true, &name, err) < 0 ||
	    sbx_json_string(o, "state", true, &state, err) < 0 || sbx_json_string(o, "image", true, &image, err) < 0)
		return NULL;
	sbx_json_string(root, "image_id", false, &image_id, NULL);
	sbx_json_object(o, "network", false, &net, NULL);
	sbx_json_string(net, "mode", false, &netmode, NULL);
	sbx_json_int(o, "auto_stop_min", false, INT64_MIN, INT64_MAX, &auto_stop, NULL);
	sbx_json_int(o, "auto_archive_min", false, INT64_MIN, INT64_MAX, &auto_archive, NULL);
	sbx_json_int(o, "auto_delete_min", false, INT64_MIN, INT64_MAX, &auto_delete, NULL);
	sbx_json_bool(o, "ephemeral", false, &ephemeral, NULL);
	sbx_json_int(root, "created_ns", false, 0, INT64_MAX, &created, NULL);
	sbx_json_int(root, "started_ns", false, 0, INT64_MAX, &started, NULL);
	sbx_json_int(root, "activity_ns", false, 0, INT64_MAX, &activity, NULL);
	bool delete_pending = false;
	sbx_json_bool(root, "delete_pending", false, &delete_pending, NULL);

	struct sbx_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb) {
		sbx_error_errno(err, ENOMEM, "load");
		return NULL;
	}
	sb->d = d;
	sb->refs = 1;
	memcpy(sb->id, id, 12);
	sb->id[12] = '\0';
	sb->name = strdup(name);
	sb->image = strdup(image);
	sb->image_id = strdup(image_id ? image_id : image);
	sb->network_mode = strdup(netmode ? netmode : "none");
	sb->created_ns = created;
	sb->started_ns = started;
	sb->activity_ns = activity;
	sb->auto_stop_min = auto_stop;
	sb->auto_archive_min = auto_archive;
	sb->auto_delete_min = auto_delete;
	sb->ephemeral = ephemeral;
	sb->delete_pending = delete_pending;
	if (sbx_state_parse(state, &sb->state) < 0)
		sb->state = SBX_STATE_ERROR;
	sbx_json_string_map(o, "labels", false, &sb->labels, NULL);
	yajl_val res = NULL;
	if (sbx_json_object(o, "resources", false, &res, NULL) > 0)
		sbx_resources_parse(res, &sb->res, NULL);
	sbx_json_int(root, "oom_seen", false, 0, INT64_MAX, &sb->oom_seen, NULL);
	sbx_json_int(root, "archived_ns", false, 0, INT64_MAX, &sb->archived_ns, NULL);
	yajl_val arch = NULL;
	if (sbx_json_object(o, "archive", false, &arch, NULL) > 0 && arch) {
		sbx_json_int(arch, "size_bytes", false, 0, INT64_MAX, &sb->archive_bytes, NULL);
		sbx_json_int(arch, "layer_bytes", false, 0, INT64_MAX, &sb->archive_layer_bytes, NULL);
	}
	yajl_val sec = NULL;
	const char *profile = NULL;
	if (sbx_json_object(o, "security", false, &sec, NULL) > 0)
		sbx_json_string(sec, "seccomp", false, &profile, NULL);
	sb->seccomp = strdup(profile ? profile : "default");
	sbx_json_string_array(root, "service_argv", false, &sb->service, NULL);
	const char *svc = NULL;
	if (sbx_json_string(root, "service_cmd", false, &svc, NULL) > 0 && sbx_id_valid(svc))
		snprintf(sb->service_cmd, sizeof(sb->service_cmd), "%s", svc);
	sbx_net_load(sb, o);
	if (!sb->name || !sb->image || !sb->image_id || !sb->network_mode || !sb->seccomp) {
		sbx_net_free(&sb->net);
		sbx_sandbox_unref(sb);
		sbx_error_errno(err, ENOMEM, "load");
		return NULL;
	}
	/* What the sandbox is and what runs: the box's own state file. */
	sbx_error *berr = NULL;
	if (sbx_box_load(&d->box_host, id, &sb->box, &berr) < 0) {
		if (berr && berr->errnum != ENOENT)
			sbx_warn("sandbox %s: %s; made again from sandbox.json", id, berr->msg);
		sbx_error_free(berr);
		if (box_from_record(sb, root, o, err) < 0) {
			sbx_net_free(&sb->net);
			sbx_sandbox_unref(sb);
			return NULL;
		}
	}
	return sb;
}


int sbx_resources_parse(yajl_val obj, struct sbx_resources *io, sbx_error **err)
{
	struct sbx_resources r = *io;
	if (!obj)
		return 0;
	if (sbx_json_number(obj, "cpus", false, 0, 4096, &r.cpus, err) < 0 ||
	    sbx_json_int(obj, "memory_mb", false, 0, (int64_t)1 << 30, &r.memory_mb, err) < 0 ||
	    sbx_json_int(obj, "pids", false, 0, 4194304, &r.pids, err) < 0 ||
	    sbx_json_int(obj, "disk_mb", false, 0, (int64_t)1 << 30, &r.disk_mb, err) < 0)
		return -1;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		const char *k = obj->u.object.keys[i];
		if (strcmp(k, "cpus") && strcmp(k, "memory_mb") && strcmp(k, "pids") && strcmp(k, "disk_mb"))
			return sbx_error_param(err, "resources", "unknown resource '%.32s': use cpus, memory_mb, pids, disk_mb", k);
	}
	if (r.cpus > 0 && r.cpus < 0.01)
		return sbx_error_param(err, "resources", "cpus must be 0 (unlimited) or at least 0.01");
	if (r.memory_mb > 0 && r.memory_mb < 8)
		return sbx_error_param(err, "resources", "memory_mb must be 0 (unlimited) or at least 8");
	if (r.pids > 0 && r.pids < 8)
		return sbx_error_param(err, "resources", "pids must be 0 (unlimited) or at least 8");
	if (r.disk_mb > 0 && r.disk_mb < 16)
		return sbx_error_param(err, "resources", "disk_mb must be 0 (unlimited) or at least 16");
	*io = r;
	return 0;
}

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

void sbx_net_gen_ports(yajl_gen g, struct sbx_sandbox *sb)
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
	char conflict[256];
	sbx_gen_kv_str(g, "conflict", sbx_net_conflict(sb, conflict, sizeof(conflict)) ? conflict : NULL);
	yajl_gen_map_close(g);
	sbx_gen_key(g, "ports");
	sbx_net_gen_ports(g, sb);
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
