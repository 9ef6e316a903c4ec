/* process.exec's commands: started in a running sandbox's group of their
 * own, watched in the loop, answered when they end. */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "daemon.h"

struct sbx_sandbox;

struct sbx_exec_opts {
	char **argv;
	char **envp;           /* complete environment */
	const char *cwd;       /* absolute in the sandbox */
	const char *user;
	const char *stdin_text; /* written to the command, then end of file; NULL: none */
	double timeout_s;      /* 0: none */
	size_t max_output;     /* kept per stream */
	bool base64;           /* output as base64 rather than UTF-8 text */
};

/* Start a command; req is answered when it ends (exit status, output) or
 * its set-up fails. On an error returned here req is still the caller's. */
int sbx_exec_start(struct sbx_sandbox *sb, const struct sbx_exec_opts *o, struct sbx_request *req, sbx_error **err);
/* Kill every exec of the sandbox (its groups); they are answered as they end. */
void sbx_exec_kill_all(struct sbx_sandbox *sb);
/* Is pid the command of one of the sandbox's execs (reaped by it)? */
bool sbx_exec_owns_pid(struct sbx_sandbox *sb, pid_t pid);

#endif
