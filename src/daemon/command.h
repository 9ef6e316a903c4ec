/* Background commands: process.spawn and session commands. Each runs under
 * a sandbox-monitor process that logs its output into the sandbox's state
 * directory and records its exit, so both outlive clients and sandboxd. */
#ifndef SBX_COMMAND_H
#define SBX_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

struct sbx_sandbox;
struct sbx_follower;
struct sbx_cmd_waiter;
struct sbx_input;

#define SBX_LOG_SEGMENT 65536
#define SBX_MAX_COMMANDS 256 /* kept per sandbox; the oldest ended ones go first */

struct sbx_command {
	struct sbx_command *next;
	struct sbx_sandbox *sb;
	char id[13];
	pid_t pid; /* the command, as the host sees it */
	pid_t monitor_pid;
	uint64_t monitor_start;
	int monitor_pidfd;
	struct sbx_watch *monitor_w;
	char *cgroup;
	char **argv;
	char *session; /* session id, or NULL */
	int64_t started_ms, finished_ms;
	double timeout_s;
	bool tty, has_stdin, attached;
	bool exited, lost, timed_out;
	int exit_code, signal;
	int wd;       /* inotify watch of the command's directory */
	int input_fd; /* our copy of its stdin pipe or terminal master, -1 until needed */
	struct sbx_input *input; /* writes waiting for room in the pipe, in order */
	struct sbx_watch *input_w;
	struct sbx_follower *followers;
	struct sbx_cmd_waiter *waiters;
};

struct sbx_spawn_opts {
	char **argv;
	char **envp;
	const char *cwd;
	const char *user;
	bool tty;
	unsigned short rows, cols;
	bool stdin_pipe;
	bool attach; /* the terminal's master goes to the caller, not the log */
	double timeout_s;
	const char *session;
	int64_t log_cap;
};

/* How a spawn ended: c runs (with attach, attach_fd is the terminal's
 * master, the callee's to keep or close), or c is NULL and err (the
 * callee's) says why it never started. */
typedef void (*sbx_spawn_done_fn)(struct sbx_command *c, int attach_fd, sbx_error *err, void *data);
/* Start a command. Its set-up goes on in the loop, however long a busy
 * host makes it: done is called once it is over, never from inside this
 * call. A failure before that is returned here, and done is not called. */
int sbx_command_spawn(struct sbx_sandbox *sb, const struct sbx_spawn_opts *o, sbx_spawn_done_fn done, void *data,
		      sbx_error **err);
struct sbx_command *sbx_command_find(struct sbx_sandbox *sb, const char *id);
/* Lookup from params["cmd_id"] with a not-found error naming the sandbox. */
struct sbx_command *sbx_command_from_params(struct sbx_sandbox *sb, yajl_val params, sbx_error **err);
void sbx_command_gen(yajl_gen g, const struct sbx_command *c);
/* Exit status members: exit_code, signal, timed_out. */
void sbx_command_gen_status(yajl_gen g, const struct sbx_command *c);
/* key: the collected output as base64 or as UTF-8 text (invalid bytes
 * replaced); null when out of memory. */
void sbx_command_gen_output(yajl_gen g, const char *key, const struct sbx_buf *b, bool base64);

/* Signal every process of the command's tree. */
int sbx_command_signal(struct sbx_command *c, int sig, sbx_error **err);
/* The descriptor to write the command's input to (stdin pipe or terminal). */
int sbx_command_input_fd(struct sbx_command *c, sbx_error **err);
/* Write data (owned) to the command's input, then end it if eof; req (may
 * be NULL) is answered when the bytes are in the pipe. */
int sbx_command_queue_input(struct sbx_command *c, char *data, size_t len, bool eof, struct sbx_request *req,
			    sbx_error **err);
/* End of input: the pipe is closed everywhere; a terminal gets ^D. */
int sbx_command_close_input(struct sbx_command *c, sbx_error **err);

/* Output log. Emits records from *pos on, at most max payload bytes;
 * *pos moves past what was emitted; *more tells that more is there. */
typedef void (*sbx_log_emit)(void *ctx, int stream, const char *data, size_t len, uint64_t end);
int sbx_command_log_read(struct sbx_command *c, uint64_t *pos, size_t max, sbx_log_emit emit, void *ctx, bool *more,
			 sbx_error **err);
uint64_t sbx_command_log_dropped(struct sbx_command *c);
/* Stream output as process.output notifications, then process.exit. */
int sbx_command_follow(struct sbx_command *c, struct sbx_conn *conn, uint64_t pos, bool base64, sbx_error **err);

/* Call fn(c, data) once the command has ended (now, if it has). timeout_ms
 * > 0 calls tfn(data) instead when the time passes first. */
typedef void (*sbx_cmd_done_fn)(struct sbx_command *c, void *data);
typedef void (*sbx_cmd_timeout_fn)(void *data);
int sbx_command_on_exit(struct sbx_command *c, sbx_cmd_done_fn fn, sbx_cmd_timeout_fn tfn, void *data,
			int64_t timeout_ms);

/* The daemon's inotify descriptor and monitor binary (main.c). */
int sbx_commands_init(struct sbx_daemon *d, sbx_error **err);
void sbx_commands_fini(struct sbx_daemon *d);
/* After a restart: the sandbox's commands from its state directory. */
void sbx_commands_load(struct sbx_sandbox *sb);
/* Before a stopped sandbox's state is removed: no monitor may write there. */
void sbx_commands_end_monitors(struct sbx_sandbox *sb);
/* The sandbox goes away: end followers and waiters, forget the commands. */
void sbx_commands_free(struct sbx_sandbox *sb);
bool sbx_commands_running(struct sbx_sandbox *sb);

#endif
