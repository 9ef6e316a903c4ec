/* Sessions' state: for each session of a running sandbox, the working
 * directory and exported variables its next command starts from, kept in
 * sandboxes/<id>/sessions/<session_id>/ (cwd, exports, created) and taken
 * over from what each session command leaves in its session.state file.
 * The methods are in rpc/session.c. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command.h"
#include "registry/sandbox.h"
#include "session.h"

struct sbx_session *sbx_session_find(struct sbx_sandbox *sb, const char *id)
{
	for (struct sbx_session *s = sb->sessions; s; s = s->next)
		if (!strcmp(s->id, id))
			return s;
	return NULL;
}

void sbx_session_free(struct sbx_session *s)
{
	free(s->id);
	free(s->cwd);
	free(s->exports);
	free(s);
}

int sbx_session_save(struct sbx_sandbox *sb, struct sbx_session *s, sbx_error **err)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "sandboxes/%s/sessions", sb->id);
	if (mkdirat(sb->d->state_fd, rel, 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create %s", rel);
	snprintf(rel, sizeof(rel), "sandboxes/%s/sessions/%s", sb->id, s->id);
	if (mkdirat(sb->d->state_fd, rel, 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create %s", rel);
	char created[32];
	snprintf(created, sizeof(created), "%lld\n", (long long)s->created_ms);
	const char *files[][2] = { { "cwd", s->cwd }, { "exports", s->exports }, { "created", created } };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(files); i++) {
		snprintf(rel, sizeof(rel), "sandboxes/%s/sessions/%s/%s", sb->id, s->id, files[i][0]);
		if (sbx_write_file_atomic_at(sb->d->state_fd, rel, files[i][1], strlen(files[i][1]), 0600, err) < 0)
			return -1;
	}
	return 0;
}

void sbx_sessions_load(struct sbx_sandbox *sb)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "sandboxes/%s/sessions", sb->id);
	_cleanup_close_ int fd = openat(sb->d->state_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	_cleanup_closedir_ DIR *dir = fdopendir(sbx_take_fd(&fd));
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (!sbx_name_valid(de->d_name))
			continue;
		struct sbx_session *s = calloc(1, sizeof(*s));
		char *created = NULL;
		if (!s || !(s->id = strdup(de->d_name)))
			goto bad;
		snprintf(rel, sizeof(rel), "sandboxes/%s/sessions/%.64s/cwd", sb->id, de->d_name);
		if (sbx_read_file_at(sb->d->state_fd, rel, 8192, &s->cwd, NULL, NULL) < 0)
			goto bad;
		snprintf(rel, sizeof(rel), "sandboxes/%s/sessions/%.64s/exports", sb->id, de->d_name);
		if (sbx_read_file_at(sb->d->state_fd, rel, SBX_SESSION_MAX_EXPORTS + 1, &s->exports, NULL, NULL) < 0)
			goto bad;
		snprintf(rel, sizeof(rel), "sandboxes/%s/sessions/%.64s/created", sb->id, de->d_name);
		if (sbx_read_file_at(sb->d->state_fd, rel, 64, &created, NULL, NULL) == 0)
			s->created_ms = strtoll(created, NULL, 10);
		free(created);
		s->next = sb->sessions;
		sb->sessions = s;
		continue;
	bad:
		sbx_warn("sandbox %s: session %s: unreadable state; ignored", sb->id, de->d_name);
		if (s)
			sbx_session_free(s);
	}
}

void sbx_sessions_free(struct sbx_sandbox *sb)
{
	while (sb->sessions) {
		struct sbx_session *s = sb->sessions;
		sb->sessions = s->next;
		sbx_session_free(s);
	}
}

void sbx_sessions_end(struct sbx_sandbox *sb)
{
	sbx_sessions_free(sb);
	char rel[64];
	snprintf(rel, sizeof(rel), "sandboxes/%s/sessions", sb->id);
	sbx_error *err = NULL;
	if (sbx_rm_rf_at(sb->d->state_fd, rel, &err) < 0)
		sbx_warn("sandbox %s: end its sessions: %s", sb->id, err->msg);
	sbx_error_free(err);
}

void sbx_session_command_ended(struct sbx_command *c)
{
	struct sbx_sandbox *sb = c->sb;
	struct sbx_session *s = sbx_session_find(sb, c->session);
	/* Deleted meanwhile, or ended with a stop and made again since under
	 * the same id: a command of the old one has nothing to hand over. */
	if (!s || c->started_ms < s->created_ms)
		return;
	char rel[256], *text = NULL;
	size_t len = 0;
	snprintf(rel, sizeof(rel), "sandboxes/%s/cmds/%s/session.state", sb->id, c->id);
	if (sbx_read_file_at(sb->d->state_fd, rel, SBX_SESSION_MAX_EXPORTS + 8192, &text, &len, NULL) < 0)
		return; /* too big, or gone: the session keeps its last state */
	char *nl = memchr(text, '\n', len);
	/* Killed before its EXIT trap ran: nothing to take over. */
	if (!nl || text[0] != '/' || memchr(text, '\0', len)) {
		free(text);
		return;
	}
	*nl = '\0';
	char *cwd = strdup(text), *exports = strdup(nl + 1);
	free(text);
	if (!cwd || !exports) {
		free(cwd);
		free(exports);
		return;
	}
	free(s->cwd);
	free(s->exports);
	s->cwd = cwd;
	s->exports = exports;
	sbx_error *err = NULL;
	if (sbx_session_save(sb, s, &err) < 0) {
		sbx_warn("sandbox %s: session %s: save: %s", sb->id, s->id, err ? err->msg : "?");
		sbx_error_free(err);
	}
}

void sbx_session_delete(struct sbx_sandbox *sb, struct sbx_session *s)
{
	for (struct sbx_session **pp = &sb->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	char rel[256];
	snprintf(rel, sizeof(rel), "sandboxes/%s/sessions/%s", sb->id, s->id);
	sbx_rm_rf_at(sb->d->state_fd, rel, NULL);
	sbx_session_free(s);
}
