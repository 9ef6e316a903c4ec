/* system.* methods: what this daemon is and what the host gives it. */
#include "config.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "disk.h"
#include "loopdevs.h"
#include "net.h"
#include "registry/sandbox.h"

void rpc_system_ping(struct sbx_request *req)
{
	sbx_reply_empty(req);
}

void rpc_system_info(struct sbx_request *req)
{
	struct sbx_daemon *d = req->d;
	struct utsname u;
	uname(&u);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	char started[64];
	sbx_time_rfc3339(d->started_ns, started);
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "version", PACKAGE_VERSION);
		sbx_gen_kv_int(g, "api_version", SBX_API_VERSION);
		sbx_gen_kv_str(g, "hostname", host);
		sbx_gen_kv_str(g, "kernel", u.release);
		sbx_gen_kv_str(g, "cgroup", sbx_cgroup_mode_name(d->cg.mode));
		sbx_gen_kv_str(g, "cgroup_base", d->cg.base);
		sbx_gen_key(g, "features");
		yajl_gen_array_open(g);
		static const char *const features[] = { "overlayfs", "clone3", "pidfd", "openat2", "fs.encoding.hex",
							"fs.encoding.binary", "image.import.fd" };
		for (size_t i = 0; i < SBX_ARRAY_SIZE(features); i++)
			sbx_gen_str(g, features[i]);
		if (faccessat(d->cg.base_fd, "cgroup.kill", F_OK, 0) == 0)
			sbx_gen_str(g, "cgroup.kill");
		if (faccessat(d->cg.base_fd, "cgroup.freeze", F_OK, 0) == 0)
			sbx_gen_str(g, "cgroup.freeze");
		sbx_gen_str(g, "sandbox.archive");
		if (d->layers) {
			sbx_gen_str(g, "sandbox.snapshot");
			sbx_gen_str(g, "sandbox.fork");
		}
		for (int c = 0; c < SBX_CTRL_COUNT; c++) {
			char f[32];
			snprintf(f, sizeof(f), "limit.%s", sbx_ctrl_name(c));
			if (d->cg.ctrl[c])
				sbx_gen_str(g, f);
		}
		if (d->prjquota || sbx_disk_supported())
			sbx_gen_str(g, "limit.disk");
		if (d->prjquota)
			sbx_gen_str(g, "disk.project_quota");
		if (sbx_net_available(d))
			sbx_gen_str(g, "network.bridge");
		/* Preview links: public sandboxes, the token in daytona_sdk's
		 * header, links that outlive stops and restarts. */
		static const char *const preview[] = { "preview.public", "preview.daytona_header", "preview.persistent" };
		if (d->cfg.preview_listen && *d->cfg.preview_listen)
			for (size_t i = 0; i < SBX_ARRAY_SIZE(preview); i++)
				sbx_gen_str(g, preview[i]);
		yajl_gen_array_close(g);
		sbx_gen_key(g, "resource_defaults");
		yajl_gen_map_open(g);
		sbx_gen_kv_double(g, "cpus", d->cfg.default_cpus);
		sbx_gen_kv_int(g, "memory_mb", d->cfg.default_memory_mb);
		sbx_gen_kv_int(g, "pids", d->cfg.default_pids);
		sbx_gen_kv_int(g, "disk_mb", d->cfg.default_disk_mb);
		yajl_gen_map_close(g);
		sbx_gen_key(g, "sandboxes");
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "total", (int64_t)sbx_sandbox_count(d, false));
		sbx_gen_kv_int(g, "started", (int64_t)sbx_sandbox_count(d, true));
		yajl_gen_map_close(g);
		sbx_gen_key(g, "limits");
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "max_message", d->cfg.max_message);
		sbx_gen_kv_int(g, "max_sandboxes", d->cfg.max_sandboxes);
		yajl_gen_map_close(g);
		sbx_gen_key(g, "descriptors");
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "used", sbx_fdbudget_count(&d->fds));
		sbx_gen_kv_int(g, "limit", d->fds.limit);
		sbx_gen_kv_int(g, "reserve", d->fds.reserve);
		yajl_gen_map_close(g);
		sbx_gen_kv_int(g, "loop_devices", (int64_t)sbx_loopdevs_count(d));
		sbx_gen_kv_str(g, "default_image", d->cfg.default_image);
		sbx_gen_kv_str(g, "state_dir", d->cfg.state_dir);
		sbx_gen_kv_str(g, "started_at", started);
		sbx_gen_kv_int(g, "pid", getpid());
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}
