/* Method table and dispatch. Methods of later protocol sections are absent
 * on purpose: they answer "method not found" (conn.c) until they are
 * implemented. Never replies itself. */
#include "config.h"
#include <string.h>

#include "daemon.h"
#include "net.h"

static const struct {
	const char *name;
	sbx_rpc_handler fn;
	bool mutating; /* logged with the caller's credentials */
} methods[] = {
	{ "system.info", rpc_system_info, false },
	{ "system.ping", rpc_system_ping, false },
	{ "system.doctor", rpc_system_doctor, false },
	{ "image.list", rpc_image_list, false },
	{ "image.inspect", rpc_image_inspect, false },
	{ "image.import", rpc_image_import, true },
	{ "image.remove", rpc_image_remove, true },
	{ "image.pull", rpc_image_pull, true },
	{ "image.tag", rpc_image_tag, true },
	{ "image.export", rpc_image_export, true },
	{ "image.build", rpc_image_build, true },
	{ "sandbox.create", rpc_sandbox_create, true },
	{ "sandbox.start", rpc_sandbox_start, true },
	{ "sandbox.stop", rpc_sandbox_stop, true },
	{ "sandbox.delete", rpc_sandbox_delete, true },
	{ "sandbox.list", rpc_sandbox_list, false },
	{ "sandbox.inspect", rpc_sandbox_inspect, false },
	{ "sandbox.pause", rpc_sandbox_pause, true },
	{ "sandbox.archive", rpc_sandbox_archive, true },
	{ "sandbox.snapshot", rpc_sandbox_snapshot, true },
	{ "sandbox.fork", rpc_sandbox_fork, true },
	{ "sandbox.resume", rpc_sandbox_resume, true },
	{ "sandbox.update", rpc_sandbox_update, true },
	{ "sandbox.stats", rpc_sandbox_stats, false },
	{ "sandbox.touch", rpc_sandbox_touch, false },
	{ "process.exec", rpc_process_exec, true },
	{ "process.spawn", rpc_process_spawn, true },
	{ "process.logs", rpc_process_logs, false },
	{ "process.wait", rpc_process_wait, false },
	{ "process.kill", rpc_process_kill, true },
	{ "process.list", rpc_process_list, false },
	{ "process.stdin", rpc_process_stdin, true },
	{ "process.resize", rpc_process_resize, true },
	{ "session.create", rpc_session_create, true },
	{ "session.exec", rpc_session_exec, true },
	{ "session.list", rpc_session_list, false },
	{ "session.delete", rpc_session_delete, true },
	{ "events.subscribe", rpc_events_subscribe, false },
	{ "fs.list", rpc_fs_list, false },
	{ "fs.stat", rpc_fs_stat, false },
	{ "fs.read", rpc_fs_read, false },
	{ "fs.write", rpc_fs_write, true },
	{ "fs.mkdir", rpc_fs_mkdir, true },
	{ "fs.remove", rpc_fs_remove, true },
	{ "fs.move", rpc_fs_move, true },
	{ "fs.chmod", rpc_fs_chmod, true },
	{ "fs.find", rpc_fs_find, false },
	{ "fs.search", rpc_fs_search, false },
	{ "fs.replace", rpc_fs_replace, true },
	{ "fs.archive", rpc_fs_archive, false },
	{ "fs.extract", rpc_fs_extract, true },
	{ "net.publish", rpc_net_publish, true },
	{ "net.unpublish", rpc_net_unpublish, true },
	{ "net.ports", rpc_net_ports, false },
	{ "net.preview", rpc_net_preview, true },
	{ "net.unpreview", rpc_net_unpreview, true },
};

int sbx_rpc_dispatch(struct sbx_request *req)
{
	for (size_t i = 0; i < SBX_ARRAY_SIZE(methods); i++) {
		if (strcmp(methods[i].name, req->method) != 0)
			continue;
		if (methods[i].mutating) {
			const char *target = NULL;
			yajl_val v = sbx_json_get(req->params, "sandbox");
			if (!v)
				v = sbx_json_get(req->params, "name");
			if (v && YAJL_IS_STRING(v))
				target = YAJL_GET_STRING(v);
			sbx_info("%s %s by uid %u gid %u pid %d", req->method, target ? target : "-",
				 (unsigned)req->peer.uid, (unsigned)req->peer.gid, (int)req->peer.pid);
		}
		methods[i].fn(req);
		return 0;
	}
	return -1;
}
