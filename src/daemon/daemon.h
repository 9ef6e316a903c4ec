/* sandboxd's shared state: configuration, the loop, the registries of
 * sandboxes and images, and the request object every handler receives. */
#ifndef SBX_DAEMON_H
#define SBX_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "box.h"
#include "cgroup.h"
#include "seccomp_filter.h"
#include "error.h"
#include "fdbudget.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "strmap.h"
#include "util.h"

#define SBX_API_VERSION 1
#define SBX_DEFAULT_SOCKET "/run/sandboxd/sandboxd.sock"
#define SBX_DEFAULT_CONFIG SYSCONFDIR "/sandboxd/sandboxd.conf"

struct sbx_config {
	char *config_path;
	char *socket_path;
	char *socket_group;       /* besides root, who may connect; "": root only */
	char *state_dir;
	char *run_dir;
	char *init_path;          /* the sandbox-init binary */
	char *default_image;      /* image used when create omits it */
	char *default_image_path; /* tarball imported as default_image when missing */
	char *cgroup_parent;      /* override of the cgroup base */
	enum sbx_log_level log_level;
	bool foreground;
	int64_t max_message;      /* bytes per protocol line */
	int64_t max_sandboxes;
	int64_t default_stop_timeout_s;
	/* resources given to a sandbox that does not ask; 0 = unlimited */
	double default_cpus;
	int64_t default_memory_mb;
	int64_t default_pids;
	int64_t default_disk_mb;
	bool allow_swap;
	/* isolation */
	bool userns;             /* sandboxes get a user namespace unless they opt out */
	int64_t userns_start;    /* host ids handed out to sandboxes, 65536 each */
	int64_t userns_count;
	char *disk_quota; /* "auto", "project" or "loop" */
	/* networking (net.c) */
	char *default_network; /* "bridge" or "none" */
	char *net_bridge;      /* bridge name; also names the nftables table */
	char *net_subnet;      /* IPv4 CIDR; the bridge takes the first address. NULL: one of the pool */
	char *net_subnet_pool; /* BASE/PREFIX:SIZE, ...: where a subnet is picked from */
	bool iptables_forward; /* accept rules in iptables' FORWARD (DOCKER-USER) when it drops */
	char *firewalld_zone;  /* zone the sandboxes' links join in a running firewalld; "": none */
	char *net_dns;         /* resolvers for sandboxes, comma-separated; NULL: the host's */
	char *net_forbidden;   /* CIDRs sandboxes may not reach, comma-separated */
	char *preview_listen;  /* ADDRESS:PORT of the preview gateway; "": none */
	char *preview_domain;
	char *preview_url;     /* "auto", "port" or "host": the form of new links' URLs */
	char *preview_ports;   /* LOW-HIGH: listener ports of links of the port form; "": none */
	int64_t command_log_mb; /* output kept per background command */
};

int sbx_config_defaults(struct sbx_config *cfg);
/* key = value lines; '#' starts a comment. Unknown keys are errors. */
int sbx_config_load(struct sbx_config *cfg, const char *path, bool must_exist, sbx_error **err);
int sbx_config_set(struct sbx_config *cfg, const char *key, const char *value, sbx_error **err);
void sbx_config_free(struct sbx_config *cfg);

struct sbx_sandbox;
struct sbx_image;
struct sbx_conn;
struct sbx_net;
struct sbx_loopdevs;
struct sbx_layer_store;

struct sbx_daemon {
	struct sbx_config cfg;
	struct sbx_loop *loop;
	int listen_fd;
	bool socket_activated; /* listen_fd came from the service manager (systemd.c) */
	bool socket_group_found;
	gid_t socket_gid;      /* of cfg.socket_group, when found */
	int state_fd;    /* state_dir */
	int run_fd;      /* run_dir */
	int lock_fd;
	int init_exe_fd; /* sealed memfd of sandbox-init */
	int monitor_exe_fd; /* sealed memfd of sandbox-monitor */
	int inotify_fd;     /* command directories: new output, exit statuses */
	struct sbx_watch *inotify_w;
	struct sbx_bpf default_filter; /* the default seccomp profile, compiled once */
	bool prjquota;                 /* disk limits by project quota (else loop images) */
	struct sbx_cgroup_root cg;
	struct sbx_box_host box_host; /* where sandboxes live: state, run dir, cgroups (lib/box.h) */
	struct sbx_sandbox *sandboxes;
	struct sbx_strmap sandbox_ids, sandbox_names; /* registry/sandboxes.c */
	struct sbx_image *images;
	struct sbx_layer_store *layers; /* STATE/layers: image layers by digest (lib/layers.h) */
	int64_t started_ns;
	uint64_t conn_count;
	struct sbx_fdbudget fds; /* fdbudget.c */
	struct sbx_loopdevs *loopdevs; /* loopdevs.c */
	int spare_fd;            /* given up to answer a client when no descriptor is left */
	bool shutting_down;
	struct sbx_net *net; /* net.c */
};

/* One JSON-RPC call. A handler must end it exactly once with one of the
 * sbx_reply_* functions, now or later; they free it. */
struct sbx_request {
	struct sbx_daemon *d;
	struct sbx_conn *conn;
	yajl_val root;
	yajl_val id;
	yajl_val params; /* always an object (empty when absent) */
	const char *method;
	struct ucred peer;
	int fd; /* sent with the request ("fd": true) or -1; closed with it unless taken */
	/* fs.write's big params.data, cut out before parsing (its tree value is
	 * ""): the string's bytes, no escapes, not checked. They lie in the
	 * connection's input buffer while the handler runs, and are copied to
	 * bulk_owned if the request outlives that. Handlers may decode them in
	 * place. */
	char *bulk;
	size_t bulk_len;
	char *bulk_owned;
	bool bulk_lost; /* that copy failed (out of memory) */
};

typedef void (*sbx_rpc_handler)(struct sbx_request *req);

/* The result value is written into the returned generator between begin and end. */
yajl_gen sbx_reply_begin(struct sbx_request *req);
void sbx_reply_end(struct sbx_request *req, yajl_gen g);
/* The same, with fd passed to the client on the reply's first byte (owned). */
void sbx_reply_end_fd(struct sbx_request *req, yajl_gen g, int fd);
void sbx_reply_empty(struct sbx_request *req);
/* The one place an sbx_error becomes a JSON-RPC error; takes ownership of err. */
void sbx_reply_error(struct sbx_request *req, sbx_error *err);
/* A reply line written straight into the connection's output queue (a
 * bulk result, without a copy): append to the returned buffer, then end
 * with keep false to take it all back, or true to send it (the newline is
 * added). Nothing else may reply on the connection in between. */
struct sbx_buf *sbx_conn_line_begin(struct sbx_conn *c, size_t *mark);
void sbx_conn_line_end(struct sbx_conn *c, size_t mark, bool keep);
void sbx_request_free(struct sbx_request *req);

/* Connections outliving a request (event subscriptions). */
struct sbx_conn *sbx_conn_ref(struct sbx_conn *c);
void sbx_conn_release(struct sbx_conn *c);
bool sbx_conn_closed(const struct sbx_conn *c);
/* One message; the newline is added. */
void sbx_conn_send_line(struct sbx_conn *c, const char *data, size_t len);
/* Bytes queued for the client and not written yet. */
size_t sbx_conn_backlog(const struct sbx_conn *c);
/* The connection is about to be sent multi-MiB replies: a bigger kernel
 * send buffer for it (once). */
void sbx_conn_expect_big_replies(struct sbx_conn *c);
/* Call fn(data) once, when the backlog falls below 1 MiB or the connection
 * closes; a producer that would outrun its client waits for this. */
int sbx_conn_on_drain(struct sbx_conn *c, void (*fn)(void *data), void *data);
void sbx_conn_cancel_drain(struct sbx_conn *c, void *data);

/* Events (events.c): notifications "event" to subscribed connections. */
struct sbx_sandbox;
void rpc_events_subscribe(struct sbx_request *req);
/* conn gets every event from now on, or those of sandbox_id when given. */
int sbx_events_subscribe(struct sbx_conn *conn, const char *sandbox_id, sbx_error **err);
/* type: created, started, stopped, paused, resumed, deleted, oom,
 * auto_stop, error. detail may be NULL. */
void sbx_event_emit(struct sbx_daemon *d, const char *type, struct sbx_sandbox *sb, const char *detail);
void sbx_events_close(struct sbx_daemon *d);

/* Dispatch (rpc/dispatch.c): the method's handler takes the request; -1
 * for a method this version does not have (the request is the caller's). */
int sbx_rpc_dispatch(struct sbx_request *req);

/* Connections (conn.c) */
int sbx_server_listen(struct sbx_daemon *d, sbx_error **err);
void sbx_server_close(struct sbx_daemon *d);

/* Handlers, one file per method family. */
void rpc_system_info(struct sbx_request *req);
void rpc_system_ping(struct sbx_request *req);
void rpc_system_doctor(struct sbx_request *req); /* doctor.c */
void rpc_image_list(struct sbx_request *req);
void rpc_image_inspect(struct sbx_request *req);
void rpc_image_import(struct sbx_request *req);
void rpc_image_remove(struct sbx_request *req);
void rpc_image_pull(struct sbx_request *req);
void rpc_image_tag(struct sbx_request *req);
void rpc_image_export(struct sbx_request *req);
void rpc_image_build(struct sbx_request *req);
void rpc_sandbox_create(struct sbx_request *req);
void rpc_sandbox_start(struct sbx_request *req);
void rpc_sandbox_stop(struct sbx_request *req);
void rpc_sandbox_archive(struct sbx_request *req);
void rpc_sandbox_snapshot(struct sbx_request *req);
void rpc_sandbox_fork(struct sbx_request *req);
void rpc_sandbox_delete(struct sbx_request *req);
void rpc_sandbox_list(struct sbx_request *req);
void rpc_sandbox_inspect(struct sbx_request *req);
void rpc_sandbox_pause(struct sbx_request *req);
void rpc_sandbox_resume(struct sbx_request *req);
void rpc_sandbox_update(struct sbx_request *req);
void rpc_sandbox_stats(struct sbx_request *req);
void rpc_sandbox_touch(struct sbx_request *req);
void rpc_process_exec(struct sbx_request *req);
void rpc_process_spawn(struct sbx_request *req);
void rpc_process_logs(struct sbx_request *req);
void rpc_process_wait(struct sbx_request *req);
void rpc_process_kill(struct sbx_request *req);
void rpc_process_list(struct sbx_request *req);
void rpc_process_stdin(struct sbx_request *req);
void rpc_process_resize(struct sbx_request *req);
void rpc_session_create(struct sbx_request *req);
void rpc_session_exec(struct sbx_request *req);
void rpc_session_list(struct sbx_request *req);
void rpc_session_delete(struct sbx_request *req);
/* fs (rpc_fs.c) */
void rpc_fs_list(struct sbx_request *req);
void rpc_fs_stat(struct sbx_request *req);
void rpc_fs_read(struct sbx_request *req);
void rpc_fs_write(struct sbx_request *req);
void rpc_fs_mkdir(struct sbx_request *req);
void rpc_fs_remove(struct sbx_request *req);
void rpc_fs_move(struct sbx_request *req);
void rpc_fs_chmod(struct sbx_request *req);
void rpc_fs_find(struct sbx_request *req);
void rpc_fs_search(struct sbx_request *req);
void rpc_fs_replace(struct sbx_request *req);
void rpc_fs_archive(struct sbx_request *req);
void rpc_fs_extract(struct sbx_request *req);

/* Work that may take long (unpacking, copying, removing trees) runs in a
 * forked worker; done is called in the loop with NULL or the error. */
typedef int (*sbx_worker_fn)(void *arg, sbx_error **err);
typedef void (*sbx_worker_done)(struct sbx_daemon *d, void *ctx, sbx_error *err);
int sbx_worker_start(struct sbx_daemon *d, sbx_worker_fn fn, void *arg, sbx_worker_done done, void *ctx,
		     sbx_error **err);
/* The same, waited for in place (start-up only). */
int sbx_worker_run_sync(sbx_worker_fn fn, void *arg, sbx_error **err);
/* A worker with a result: fn writes bytes to out_fd, done gets them all
 * (out is NULL on error). keep_fds stay open in the child. */
typedef int (*sbx_worker_out_fn)(void *arg, int out_fd, sbx_error **err);
typedef void (*sbx_worker_out_done)(struct sbx_daemon *d, void *ctx, sbx_error *err, struct sbx_buf *out);
int sbx_worker_start_out(struct sbx_daemon *d, const int *keep_fds, size_t nkeep, sbx_worker_out_fn fn, void *arg,
			 sbx_worker_out_done done, void *ctx, sbx_error **err);
/* A worker whose output is read as it comes: chunk sees the buffer after
 * each read and consumes what it used (e.g. whole progress lines); done
 * gets what is left. */
typedef void (*sbx_worker_chunk_fn)(struct sbx_daemon *d, void *ctx, struct sbx_buf *out);
int sbx_worker_start_stream(struct sbx_daemon *d, const int *keep_fds, size_t nkeep, sbx_worker_out_fn fn, void *arg,
			    sbx_worker_chunk_fn chunk, sbx_worker_out_done done, void *ctx, sbx_error **err);

#endif
