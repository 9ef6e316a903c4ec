/* Sessions: a shell state (working directory and exported variables) that
 * each session command starts from and leaves behind for the next. A
 * session belongs to one run of its sandbox: it survives a restart of the
 * daemon, and ends when the sandbox stops. */
#ifndef SBX_SESSION_H
#define SBX_SESSION_H

#include "daemon.h"

struct sbx_command;
struct sbx_sandbox;

struct sbx_session {
	struct sbx_session *next;
	char *id;
	char *cwd;
	char *exports; /* `export -p` text of the shell */
	int64_t created_ms;
};

/* The state a session's shell leaves must fit in one argv string (below
 * 128 KiB) of its next command. */
#define SBX_SESSION_MAX_EXPORTS (120 * 1024)

struct sbx_session *sbx_session_find(struct sbx_sandbox *sb, const char *id);
/* Written to the state dir (a new session, or its new state). */
int sbx_session_save(struct sbx_sandbox *sb, struct sbx_session *s, sbx_error **err);
void sbx_session_free(struct sbx_session *s);
/* session.delete: forgotten, and its state removed. */
void sbx_session_delete(struct sbx_sandbox *sb, struct sbx_session *s);
/* A session command ended: keep the state it left. */
void sbx_session_command_ended(struct sbx_command *c);
void sbx_sessions_load(struct sbx_sandbox *sb);
void sbx_sessions_free(struct sbx_sandbox *sb);
/* The sandbox stopped: its sessions end, in memory and on disk. */
void sbx_sessions_end(struct sbx_sandbox *sb);

#endif
