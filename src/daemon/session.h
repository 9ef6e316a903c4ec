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

/* A session command ended: keep the state it left. */
void sbx_session_command_ended(struct sbx_command *c);
void sbx_sessions_load(struct sbx_sandbox *sb);
void sbx_sessions_free(struct sbx_sandbox *sb);
/* The sandbox stopped: its sessions end, in memory and on disk. */
void sbx_sessions_end(struct sbx_sandbox *sb);

#endif
