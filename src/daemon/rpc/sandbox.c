/* sandbox.* methods: parameter checking and the calls into sandbox.c. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/statfs.h>

#include "archive.h"
#include "caps.h"
#include "lifecycle.h"
#include "net.h"
#include "oci.h"
#include "registry/images.h"
#include "registry/sandbox.h"

static bool env_key_valid(const char *k)
{
	if (!*k || strchr(k, '='))
		return false;
	return true;
}

static bool abs_path_valid(const char *p)
{
	return p[0] == '/' && strlen(p) < 4096;
}

static bool user_spec_valid(const char *u)
{
	size_t n = strlen(u);
	if (n == 0 || n > 128)
		return false;
	for (const char *p = u; *p; p++)
		if (*p == '\n' || *p == '/' || (unsigned char)*p < 0x20)
			return false;
	return true;
}

static bool hostname_valid(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 63)
		return false;
	for (const char *p = h; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return false;
	}
	return true;
}

static void reply_sandbox(struct sbx_request *req, struct sbx_sandbox *sb)
{
	yajl_gen g = sbx_reply_begin(req);
	if (g)
		sbx_sandbox_gen(g, sb);
	sbx_reply_end(req, g);
}

/* A create or start is answered once the sandbox runs, or with why not. */
static void start_done(struct sbx_sandbox *sb, sbx_error *err, void *data)
{
	struct sbx_request *req = data;
	if (err)
		return sbx_reply_error(req, err);
	reply_sandbox(req, sb);
}

/* A layered image's config gives what the create leaves out: its Env
 * under the create's env, its WorkingDir and User. */
static int image_defaults(yajl_val p, const struct sbx_image_config *c, const char **user, const char **workdir,
			  struct sbx_kvlist *env, sbx_error **err)
{
	if (!sbx_json_get(p, "user") && c->user && *c->user) {
		if (!user_spec_valid(c->user))
			return sbx_error_param(err, "image", "the image's config has an invalid User '%.64s'", c->user);
		*user = c->user;
	}
	if (!sbx_json_get(p, "workdir") && c->working_dir && *c->working_dir) {
		if (!abs_path_valid(c->working_dir))
			return sbx_error_param(err, "image", "the image's config has an invalid WorkingDir '%.64s'",
					       c->working_dir);
		*workdir = c->working_dir;
	}
	struct sbx_kvlist merged = { 0 };
	for (size_t i = 0; c->env && c->env[i]; i++) {
		const char *eq = strchr(c->env[i], '=');
		if (!eq || eq == c->env[i])
			continue;
		_cleanup_free_ char *key = strndup(c->env[i], (size_t)(eq - c->env[i]));
		if (!key || !env_key_valid(key))
			continue;
		if (sbx_kvlist_set(&merged, key, eq + 1) < 0) {
			sbx_kvlist_free(&merged);
			return sbx_error_errno(err, ENOMEM, "env");
		}
	}
	for (size_t i = 0; i < env->n; i++) {
		if (sbx_kvlist_set(&merged, env->items[i].key, env->items[i].value) < 0) {
			sbx_kvlist_free(&merged);
			return sbx_error_errno(err, ENOMEM, "env");
		}
	}
	sbx_kvlist_free(env);
	*env = merged;
	return 0;
}

/* The sandbox's service: "service": false (none), an argv, or by default
 * the image's Entrypoint followed by its Cmd. */
static int service_param(yajl_val p, const struct sbx_image *img, char ***out, sbx_error **err)
{
	yajl_val v = sbx_json_get(p, "service");
	if (v && YAJL_IS_FALSE(v))
		return 0;
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_ARRAY(v))
			return sbx_error_param(err, "service", "service must be false or an array of strings (an argv)");
		if (sbx_json_string_array(p, "service", true, out, err) < 0)
			return -1;
		if (!(*out)[0] || !*(*out)[0])
			return sbx_error_param(err, "service", "service must not be empty; give false for none");
		return 0;
	}
	if (!img->oci)
		return 0;
	const struct sbx_image_config *c = &img->oci->config;
	size_t ne = c->entrypoint ? sbx_strv_len(c->entrypoint) : 0, nc = c->cmd ? sbx_strv_len(c->cmd) : 0;
	if (!ne && !nc)
		return 0;
	char **v2 = calloc(ne + nc + 1, sizeof(*v2));
	if (!v2)
		return sbx_error_errno(err, ENOMEM, "service");
	for (size_t i = 0; i < ne + nc; i++) {
		if (!(v2[i] = strdup(i < ne ? c->entrypoint[i] : c->cmd[i - ne]))) {
			sbx_strv_free(v2);
			return sbx_error_errno(err, ENOMEM, "service");
		}
	}
	*out = v2;
	return 0;
}

void rpc_sandbox_create(struct sbx_request *req)
{
	struct sbx_daemon *d = req->d;
	sbx_error *err = NULL;
	yajl_val p = req->params;
	const char *name = NULL, *image = d->cfg.default_image, *user = "root", *workdir = "/workspace",
		   *hostname = NULL;
	bool start = true, ephemeral = false, public = false;
	int64_t auto_stop = 15, auto_archive = 10080, auto_delete = -1;
	struct sbx_kvlist labels = { 0 }, env = { 0 };
	yajl_val net = NULL, res = NULL;
	const char *netmode = d->cfg.default_network;
	/* Declared before the first goto: cleanup must never see garbage. */
	bool userns = d->cfg.userns;
	const char *seccomp = "default";
	_cleanup_strv_ char **cap_add = NULL, **cap_drop = NULL;
	struct sbx_sandbox_net egress = { 0 };
	_cleanup_strv_ char **service = NULL;

	if (sbx_json_string(p, "name", false, &name, &err) < 0 || sbx_json_string(p, "image", false, &image, &err) < 0 ||
	    sbx_json_string(p, "user", false, &user, &err) < 0 || sbx_json_string(p, "workdir", false, &workdir, &err) < 0 ||
	    sbx_json_string(p, "hostname", false, &hostname, &err) < 0 || sbx_json_bool(p, "start", false, &start, &err) < 0 ||
	    sbx_json_bool(p, "ephemeral", false, &ephemeral, &err) < 0 || sbx_json_bool(p, "public", false, &public, &err) < 0 ||
	    sbx_json_int(p, "auto_stop_min", false, 0, 525600, &auto_stop, &err) < 0 ||
	    sbx_json_int(p, "auto_archive_min", false, 0, 5256000, &auto_archive, &err) < 0 ||
	    sbx_json_int(p, "auto_delete_min", false, -1, 5256000, &auto_delete, &err) < 0 ||
	    sbx_json_object(p, "network", false, &net, &err) < 0 || sbx_json_object(p, "resources", false, &res, &err) < 0 ||
	    sbx_json_string(net, "mode", false, &netmode, &err) < 0 ||
	    sbx_json_string_map(p, "labels", false, &labels, &err) < 0 || sbx_json_string_map(p, "env", false, &env, &err) < 0)
		goto fail;
	if (name && !sbx_name_valid(name)) {
		sbx_error_param(&err, "name",
				"invalid sandbox name '%.64s': use 1 to 63 characters [a-zA-Z0-9_.-], starting with a letter or digit",
				name);
		goto fail;
	}
	if (name && sbx_id_valid(name)) {
		sbx_error_param(&err, "name", "sandbox name '%s' looks like a sandbox id; choose another name", name);
		goto fail;
	}
	if (name && sbx_sandbox_find(d, name)) {
		sbx_error_set(&err, SBX_ERR_EXISTS, "a sandbox named '%s' already exists", name);
		goto fail;
	}
	if (!abs_path_valid(workdir)) {
		sbx_error_param(&err, "workdir", "workdir '%.64s' must be an absolute path", workdir);
		goto fail;
	}
	if (!user_spec_valid(user)) {
		sbx_error_param(&err, "user", "invalid user '%.64s': give a name, uid or uid:gid", user);
		goto fail;
	}
	if (hostname && !hostname_valid(hostname)) {
		sbx_error_param(&err, "hostname", "invalid hostname '%.64s'", hostname);
		goto fail;
	}
	for (size_t i = 0; i < env.n; i++) {
		if (!env_key_valid(env.items[i].key)) {
			sbx_error_param(&err, "env", "invalid environment variable name '%.64s'", env.items[i].key);
			goto fail;
		}
	}
	if (strcmp(netmode, "none") && strcmp(netmode, "bridge")) {
		sbx_error_param(&err, "network", "network mode must be \"bridge\" or \"none\"");
		goto fail;
	}
	if (!strcmp(netmode, "bridge") && !sbx_net_available(d)) {
		/* The default falls back; an explicit request does not. */
		if (sbx_json_get(net, "mode")) {
			sbx_error_set(&err, SBX_ERR_UNSUPPORTED, "bridge networking is unavailable on this host (see the "
				      "daemon's log); use network mode \"none\"");
			goto fail;
		}
		netmode = "none";
	}
	struct sbx_resources resources = {
		.cpus = d->cfg.default_cpus,
		.memory_mb = d->cfg.default_memory_mb,
		.pids = d->cfg.default_pids,
		.disk_mb = d->cfg.default_disk_mb,
	};
	if (sbx_resources_parse(res, &resources, &err) < 0)
		goto fail;
	if (sbx_json_bool(p, "userns", false, &userns, &err) < 0 ||
	    sbx_json_string(p, "seccomp_profile", false, &seccomp, &err) < 0 ||
	    sbx_json_string_array(p, "cap_add", false, &cap_add, &err) < 0 ||
	    sbx_json_string_array(p, "cap_drop", false, &cap_drop, &err) < 0)
		goto fail;
	/* Drops first, then adds, as docker does: cap_drop ALL plus cap_add X
	 * leaves exactly X. */
	uint64_t caps = sbx_caps_default();
	for (int pass = 0; pass < 2; pass++) {
		bool add = pass == 1;
		char **list = add ? cap_add : cap_drop;
		for (size_t i = 0; list && list[i]; i++) {
			if (!strcasecmp(list[i], "ALL")) {
				caps = add ? ~0ULL >> (63 - CAP_LAST_CAP) : 0;
				continue;
			}
			int c = sbx_caps_from_name(list[i]);
			if (c < 0) {
				sbx_error_param(&err, add ? "cap_add" : "cap_drop", "unknown capability '%.32s'", list[i]);
				goto fail;
			}
			caps = add ? caps | (1ULL << c) : caps & ~(1ULL << c);
		}
	}
	if (strcmp(seccomp, "default") && strcmp(seccomp, "unconfined") && seccomp[0] != '/') {
		sbx_error_param(&err, "seccomp_profile",
				"seccomp_profile must be \"default\", \"unconfined\" or the absolute path of a profile file");
		goto fail;
	}
	uint32_t userns_base = 0;
	if (userns && !(userns_base = sbx_userns_allocate(d))) {
		sbx_error_set(&err, SBX_ERR_LIMIT, "every id range of userns_range is taken; delete sandboxes or widen it");
		goto fail;
	}
	struct sbx_limits lim;
	sbx_resources_to_limits(d, &resources, &lim);
	if (sbx_cgroup_limits_check(&d->cg, &lim, &err) < 0)
		goto fail;
	if ((int64_t)sbx_sandbox_count(d, false) >= d->cfg.max_sandboxes) {
		sbx_error_set(&err, SBX_ERR_LIMIT, "the daemon already has %lld sandboxes (max_sandboxes); delete some first",
			      (long long)d->cfg.max_sandboxes);
		goto fail;
	}
	if (start && sbx_fdbudget_check_start(&d->fds, &err) < 0)
		goto fail;
	struct sbx_image *img = sbx_image_find(d, image);
	if (!img) {
		sbx_error_set(&err, SBX_ERR_NOT_FOUND, "image \"%.128s\" not found; run 'sandboxctl image ls'", image);
		goto fail;
	}
	if (img->oci && image_defaults(p, &img->oci->config, &user, &workdir, &env, &err) < 0)
		goto fail;
	if (service_param(p, img, &service, &err) < 0)
		goto fail;

	egress.public = public;
	if (sbx_net_parse_egress(net, &egress, &err) < 0)
		goto fail;
	struct sbx_sandbox_spec spec = {
		.name = name,
		.image = img,
		.user = user,
		.workdir = workdir,
		.hostname = hostname,
		.netmode = netmode,
		.seccomp = seccomp,
		.labels = &labels,
		.env = &env,
		.net = &egress,
		.auto_stop_min = auto_stop,
		.auto_archive_min = auto_archive,
		.auto_delete_min = auto_delete,
		.ephemeral = ephemeral,
		.start = start,
		.res = resources,
		.userns_base = userns_base,
		.caps = caps,
		.service = service,
	};
	if (sbx_sandbox_create(d, &spec, start_done, req, &err) < 0)
		goto fail;
	sbx_kvlist_free(&env);
	return;
fail:
	sbx_kvlist_free(&labels);
	sbx_kvlist_free(&env);
	sbx_net_free(&egress);
	sbx_reply_error(req, err);
}

void rpc_sandbox_start(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb)
		return sbx_reply_error(req, err);
	bool running = sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED;
	if (!running && sbx_fdbudget_check_start(&req->d->fds, &err) < 0)
		return sbx_reply_error(req, err);
	if (sbx_sandbox_start(sb, start_done, req, &err) < 0)
		return sbx_reply_error(req, err);
}

void rpc_sandbox_archive(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_sandbox_archive(sb, req, &err) < 0)
		return sbx_reply_error(req, err);
}

void rpc_sandbox_stop(struct sbx_request *req)
{
	sbx_error *err = NULL;
	bool force = false;
	double timeout = (double)req->d->cfg.default_stop_timeout_s;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_bool(req->params, "force", false, &force, &err) < 0 ||
	    sbx_json_number(req->params, "timeout_s", false, 0, 3600, &timeout, &err) < 0)
		return sbx_reply_error(req, err);
	sbx_sandbox_stop(sb, force ? 0 : (int64_t)(timeout * 1000), req, false);
}

void rpc_sandbox_delete(struct sbx_request *req)
{
	sbx_error *err = NULL;
	bool force = false;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_bool(req->params, "force", false, &force, &err) < 0)
		return sbx_reply_error(req, err);
	bool running = sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED || sb->stopping || sb->start;
	/* Before any stop: a forced delete must not kill it under its snapshot. */
	if (sb->snapshots) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s: a snapshot of it is being made; try again when it is done",
			      sb->name);
		return sbx_reply_error(req, err);
	}
	if (running && !force) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s is %s; stop it first or pass force (sandboxctl rm -f)",
			      sb->name, sb->start ? "starting" : "running");
		return sbx_reply_error(req, err);
	}
	if (running) {
		sbx_sandbox_stop(sb, 0, req, true);
		return;
	}
	if (sbx_sandbox_destroy(sb, &err) < 0)
		return sbx_reply_error(req, err);
	sbx_reply_empty(req);
}

static bool labels_match(struct sbx_sandbox *sb, const struct sbx_kvlist *want)
{
	for (size_t i = 0; i < want->n; i++) {
		const char *v = sbx_kvlist_get(&sb->labels, want->items[i].key);
		if (!v || strcmp(v, want->items[i].value))
			return false;
	}
	return true;
}

void rpc_sandbox_list(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_kvlist want = { 0 };
	const char *state = NULL;
	enum sbx_state st = SBX_STATE_STARTED;
	if (sbx_json_string_map(req->params, "labels", false, &want, &err) < 0 ||
	    sbx_json_string(req->params, "state", false, &state, &err) < 0)
		return sbx_reply_error(req, err);
	if (state && sbx_state_parse(state, &st) < 0 && strcmp(state, "archiving") && strcmp(state, "archived")) {
		sbx_kvlist_free(&want);
		sbx_error_param(&err, "state", "unknown state '%.32s'", state);
		return sbx_reply_error(req, err);
	}
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_key(g, "sandboxes");
		yajl_gen_array_open(g);
		for (struct sbx_sandbox *sb = req->d->sandboxes; sb; sb = sb->next) {
			if (state && strcmp(state, sbx_state_name(sb->state)))
				continue;
			if (!labels_match(sb, &want))
				continue;
			sbx_sandbox_gen(g, sb);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	sbx_kvlist_free(&want);
	sbx_reply_end(req, g);
}

void rpc_sandbox_inspect(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb)
		return sbx_reply_error(req, err);
	reply_sandbox(req, sb);
}

void rpc_sandbox_pause(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_sandbox_pause(sb, true, &err) < 0)
		return sbx_reply_error(req, err);
	reply_sandbox(req, sb);
}

void rpc_sandbox_resume(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_sandbox_pause(sb, false, &err) < 0)
		return sbx_reply_error(req, err);
	reply_sandbox(req, sb);
}

void rpc_sandbox_touch(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb)
		return sbx_reply_error(req, err);
	sb->activity_ns = sbx_now_ns();
	sbx_reply_empty(req);
}

void rpc_sandbox_update(struct sbx_request *req)
{
	struct sbx_daemon *d = req->d;
	sbx_error *err = NULL;
	yajl_val p = req->params;
	struct sbx_kvlist labels = { 0 };
	yajl_val res = NULL, net = NULL;
	int64_t auto_stop, auto_archive, auto_delete;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb)
		return sbx_reply_error(req, err);
	bool public = sb->net.public;
	auto_stop = sb->auto_stop_min;
	auto_archive = sb->auto_archive_min;
	auto_delete = sb->auto_delete_min;
	int has_labels = sbx_json_string_map(p, "labels", false, &labels, &err);
	if (has_labels < 0 || sbx_json_int(p, "auto_stop_min", false, 0, 525600, &auto_stop, &err) < 0 ||
	    sbx_json_int(p, "auto_archive_min", false, 0, 5256000, &auto_archive, &err) < 0 ||
	    sbx_json_int(p, "auto_delete_min", false, -1, 5256000, &auto_delete, &err) < 0 ||
	    sbx_json_object(p, "resources", false, &res, &err) < 0 || sbx_json_object(p, "network", false, &net, &err) < 0 ||
	    sbx_json_bool(p, "public", false, &public, &err) < 0)
		goto fail;
	if (net) {
		/* Checked before anything changes; applied after the limits. */
		struct sbx_sandbox_net scratch = { 0 };
		for (size_t i = 0; i < net->u.object.len; i++) {
			if (strcmp(net->u.object.keys[i], "allow_out") && strcmp(net->u.object.keys[i], "deny_out")) {
				sbx_error_param(&err, "network", "only allow_out and deny_out can change; not '%.32s'",
						net->u.object.keys[i]);
				goto fail;
			}
		}
		int pr = sbx_net_parse_egress(net, &scratch, &err);
		sbx_net_free(&scratch);
		if (pr < 0)
			goto fail;
		if (!sb->net.ip.s_addr && net->u.object.len) {
			sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s has network mode %s; egress lists need bridge",
				      sb->name, sb->network_mode);
			goto fail;
		}
	}
	struct sbx_resources r = sb->res;
	if (sbx_resources_parse(res, &r, &err) < 0)
		goto fail;
	if (r.disk_mb != sb->res.disk_mb) {
		/* A project quota changes live; a disk image has a fixed size. */
		if (!sb->box->projid || r.disk_mb <= 0) {
			sbx_error_set(&err, SBX_ERR_UNSUPPORTED, "disk_mb cannot change after creation here (%s)",
				      sb->box->projid ? "a limit cannot be lifted from a quota-limited sandbox"
						      : "the writable layer is a fixed-size filesystem");
			goto fail;
		}
		if (sbx_box_set_disk(sb->box, r.disk_mb, &err) < 0)
			goto fail;
	}
	struct sbx_limits lim;
	sbx_resources_to_limits(d, &r, &lim);
	if (sbx_cgroup_limits_check(&d->cg, &lim, &err) < 0)
		goto fail;
	if (!sb->stopping && sbx_box_set_limits(sb->box, &lim, &err) < 0) {
		sbx_error_prefix(&err, "sandbox %s: update limits", sb->name);
		goto fail;
	}
	if (sb->stopping)
		sb->box->limits = lim; /* its next start applies them */
	sb->res = r;
	if (net && net->u.object.len && (sbx_net_parse_egress(net, &sb->net, &err) < 0 || sbx_net_apply_rules(d, &err) < 0)) {
		sbx_error_prefix(&err, "sandbox %s: egress rules", sb->name);
		goto fail;
	}
	if (has_labels > 0) {
		sbx_kvlist_free(&sb->labels);
		sb->labels = labels;
		labels = (struct sbx_kvlist){ 0 };
	}
	sb->auto_stop_min = auto_stop;
	sb->auto_archive_min = auto_archive;
	sb->auto_delete_min = auto_delete;
	sb->net.public = public;
	if (sbx_sandbox_save(sb, &err) < 0)
		goto fail;
	reply_sandbox(req, sb);
	return;
fail:
	sbx_kvlist_free(&labels);
	sbx_reply_error(req, err);
}

void rpc_sandbox_stats(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb)
		return sbx_reply_error(req, err);
	bool running = (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED) && !sb->stopping;
	struct sbx_box_stats bs;
	sbx_box_stats(sb->box, running, &bs);
	const struct sbx_cgroup_stats st = bs.cg;
	int64_t disk = bs.disk_bytes, rx = bs.rx_bytes, tx = bs.tx_bytes;
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "id", sb->id);
		sbx_gen_kv_str(g, "name", sb->name);
		sbx_gen_kv_str(g, "state", sbx_state_name(sb->state));
		sbx_gen_kv_int(g, "cpu_usage_us", st.cpu_usage_us);
		sbx_gen_kv_int(g, "memory_bytes", st.memory_bytes);
		sbx_gen_kv_int(g, "memory_peak_bytes", st.memory_peak_bytes);
		sbx_gen_kv_int(g, "memory_max_bytes", st.memory_max_bytes);
		sbx_gen_kv_int(g, "pids", st.pids);
		sbx_gen_kv_int(g, "pids_max", sb->res.pids);
		sbx_gen_kv_int(g, "disk_bytes", disk);
		sbx_gen_kv_int(g, "disk_max_bytes", sb->res.disk_mb * 1024 * 1024);
		sbx_gen_kv_int(g, "oom_kills", st.oom_kills);
		sbx_gen_kv_double(g, "cpus", sb->res.cpus);
		sbx_gen_key(g, "net");
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "rx_bytes", rx);
		sbx_gen_kv_int(g, "tx_bytes", tx);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}
