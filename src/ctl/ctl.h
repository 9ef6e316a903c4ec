/* sandboxctl: shared state of one invocation and the helpers verbs use. */
#ifndef SBX_CTL_H
#define SBX_CTL_H

#include <stdbool.h>

#include "client.h"
#include "json.h"

#define CTL_EXIT_FAIL 125 /* sandboxctl's own failure, as podman does */

struct ctl {
	const char *socket;
	bool json;
	struct sbx_client client;
	bool connected;
	/* Notifications read while a call waits (progress); may be NULL. */
	void (*on_notification)(void *ctx, yajl_val msg);
	void *notification_ctx;
};

/* Call a method; on error print one line and return NULL. */
yajl_val ctl_call(struct ctl *ctl, const char *method, yajl_gen params, yajl_val *result);
/* The same, passing send_fd (params must say "fd": true). */
yajl_val ctl_call_fd(struct ctl *ctl, const char *method, yajl_gen params, int send_fd, yajl_val *result);
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ctl_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* getopt met something it does not know: one line naming it. */
int ctl_bad_option(const char *verb, char **argv);

/* Output */
void ctl_print_json(yajl_val v);
struct ctl_table;
struct ctl_table *ctl_table_new(const char *const *headers, size_t ncols);
void ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(struct ctl_table *t);
const char *ctl_str(yajl_val obj, const char *key);
long long ctl_int(yajl_val obj, const char *key, long long dflt);
void ctl_human_size(long long bytes, char *out, size_t len);
void ctl_ago(const char *rfc3339, char *out, size_t len);

/* K=V into an object member of a generator; returns -1 on a malformed pair. */
int ctl_gen_kv_arg(yajl_gen g, const char *arg);

/* Verbs */
int cmd_info(struct ctl *ctl, int argc, char **argv);
int cmd_doctor(struct ctl *ctl, int argc, char **argv);
int cmd_create(struct ctl *ctl, int argc, char **argv);
int cmd_ls(struct ctl *ctl, int argc, char **argv);
int cmd_inspect(struct ctl *ctl, int argc, char **argv);
int cmd_start(struct ctl *ctl, int argc, char **argv);
int cmd_stop(struct ctl *ctl, int argc, char **argv);
int cmd_rm(struct ctl *ctl, int argc, char **argv);
int cmd_exec(struct ctl *ctl, int argc, char **argv);
int cmd_run(struct ctl *ctl, int argc, char **argv);
int cmd_image(struct ctl *ctl, int argc, char **argv);
int cmd_pause(struct ctl *ctl, int argc, char **argv);
int cmd_archive(struct ctl *ctl, int argc, char **argv);
int cmd_snapshot(struct ctl *ctl, int argc, char **argv);
int cmd_fork(struct ctl *ctl, int argc, char **argv);
int cmd_resume(struct ctl *ctl, int argc, char **argv);
int cmd_update(struct ctl *ctl, int argc, char **argv);
int cmd_stats(struct ctl *ctl, int argc, char **argv);
int cmd_net(struct ctl *ctl, int argc, char **argv);
int cmd_logs(struct ctl *ctl, int argc, char **argv);
int cmd_ps(struct ctl *ctl, int argc, char **argv);
int cmd_kill(struct ctl *ctl, int argc, char **argv);
int cmd_session(struct ctl *ctl, int argc, char **argv);
int cmd_cp(struct ctl *ctl, int argc, char **argv);
int cmd_fs(struct ctl *ctl, int argc, char **argv);

/* Shared by create and run: parse create options into params. */
struct create_opts {
	const char *name;
	const char *image;
	const char *workdir;
	const char *user;
	const char *hostname;
	const char *network;
	char **env;
	int nenv;
	char **labels;
	int nlabels;
	bool no_start;
	bool public; /* preview links without a token (create only) */
	/* isolation: weaker or stronger than the daemon's defaults */
	bool no_userns;
	const char *seccomp;
	char **cap_add;
	int ncap_add;
	char **cap_drop;
	int ncap_drop;
	/* resources as typed; NULL when not given */
	const char *cpus;
	const char *memory;
	const char *pids;
	const char *disk;
};
/* The options create and run share (short options n e l w u m).
 * ctl_create_option() takes one into o and returns 1, or returns 0. */
enum {
	CTL_OPT_NO_USERNS = 400,
	CTL_OPT_CAP_ADD,
	CTL_OPT_CAP_DROP,
	CTL_OPT_SECCOMP,
	CTL_OPT_IMAGE,
	CTL_OPT_HOSTNAME,
	CTL_OPT_NETWORK,
	CTL_OPT_CPUS,
	CTL_OPT_MEMORY,
	CTL_OPT_PIDS,
	CTL_OPT_DISK,
};
#define CTL_CREATE_OPTIONS                                                                                         \
	{ "no-userns", no_argument, NULL, CTL_OPT_NO_USERNS },                                                     \
		{ "cap-add", required_argument, NULL, CTL_OPT_CAP_ADD },                                           \
		{ "cap-drop", required_argument, NULL, CTL_OPT_CAP_DROP },                                         \
		{ "seccomp-profile", required_argument, NULL, CTL_OPT_SECCOMP },                                   \
		{ "name", required_argument, NULL, 'n' }, { "image", required_argument, NULL, CTL_OPT_IMAGE },     \
		{ "env", required_argument, NULL, 'e' }, { "label", required_argument, NULL, 'l' },                \
		{ "workdir", required_argument, NULL, 'w' }, { "user", required_argument, NULL, 'u' },             \
		{ "hostname", required_argument, NULL, CTL_OPT_HOSTNAME },                                         \
		{ "network", required_argument, NULL, CTL_OPT_NETWORK },                                           \
		{ "cpus", required_argument, NULL, CTL_OPT_CPUS }, { "memory", required_argument, NULL, CTL_OPT_MEMORY }, \
		{ "pids", required_argument, NULL, CTL_OPT_PIDS }, { "disk", required_argument, NULL, CTL_OPT_DISK }
#define CTL_CREATE_SHORT "n:e:l:w:u:m:"
int ctl_create_option(struct create_opts *o, int opt, const char *arg);
/* Zero o and give it room for argc entries in each list, in one block
 * stored in *lists (the caller frees it). */
int ctl_create_opts_init(struct create_opts *o, int argc, char ***lists);
/* Generate "resources":{...} from the options that were given; -1 on a bad value. */
int ctl_gen_resources(yajl_gen g, const struct create_opts *o);
/* "512", "512m", "2g" -> MiB. */
int ctl_parse_mb(const char *s, long long *out);
/* A create's parameters as one object; _fields writes only its members,
 * into a map the caller has open. Non-zero (reported) on a bad value. */
int ctl_gen_create_params(yajl_gen g, const struct create_opts *o);
int ctl_gen_create_fields(yajl_gen g, const struct create_opts *o);
/* A command to run in a sandbox, as exec, run and exec -d/-t take it. */
struct ctl_command {
	const char *sandbox;
	char **argv;
	int argc;
	char **env; /* KEY=VALUE */
	int nenv;
	const char *workdir, *user;
	double timeout; /* seconds; 0: none */
};
/* The members "sandbox", "cmd", "env", "cwd", "user", "timeout_s" of
 * process.exec and process.spawn; TERM (when not NULL) goes into env
 * unless the command sets it. -1 after a message on a bad --env. */
int ctl_gen_command(yajl_gen g, const struct ctl_command *c, const char *term);
/* Decode base64 output of a reply and write it to fd; NULL writes nothing. */
int ctl_write_b64(const char *b64, int fd);
/* Run a command in a sandbox and relay its output; returns its exit code. */
int ctl_exec_and_relay(struct ctl *ctl, const struct ctl_command *c, bool interactive);
/* Start it in the background and print its CMD_ID. */
int ctl_exec_detached(struct ctl *ctl, const struct ctl_command *c, bool keep_stdin);
/* Run it on a terminal of the sandbox relayed to ours; returns its exit code. */
int ctl_exec_tty(struct ctl *ctl, const struct ctl_command *c);

#endif
