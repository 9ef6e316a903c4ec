/* /etc/passwd and /etc/group lookups inside a sandbox root. The files are
 * sandbox content: opened in-root, non-blocking, regular files only. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inroot.h"
#include "passwd.h"
#include "util.h"

#define SBX_PASSWD_MAX (4 << 20)

static FILE *open_db(int rootfd, const char *path)
{
	int fd = sbx_inroot_open(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return NULL;
	/* Sandbox content: a huge (say sparse) file must not make the
	 * lookup, which the daemon waits for, take long. */
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SBX_PASSWD_MAX) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	FILE *f = fdopen(fd, "re");
	if (!f)
		close(fd);
	return f;
}

/* glibc's fgetpwent_r/fgetgrent_r return ERANGE for an entry larger than
 * the buffer and leave the stream at its start: skip that line and go on. */
static bool skip_long_entry(FILE *f, int r)
{
	if (r != ERANGE)
		return false;
	int ch;
	while ((ch = fgetc(f)) != EOF && ch != '\n')
		;
	return ch != EOF;
}

#define DB_BUF 16384

static int parse_id(const char *s, unsigned long *out)
{
	int64_t v;
	if (sbx_parse_int64(s, 0, 0xfffffffeL, &v) < 0)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

static int lookup_group(int rootfd, const char *name, gid_t *gid)
{
	_cleanup_fclose_ FILE *f = open_db(rootfd, "/etc/group");
	if (!f)
		return -1;
	struct group gr, *res;
	static char buf[DB_BUF];
	int r;
	while ((r = fgetgrent_r(f, &gr, buf, sizeof(buf), &res)) == 0 || skip_long_entry(f, r)) {
		if (r == 0 && !strcmp(gr.gr_name, name)) {
			*gid = gr.gr_gid;
			return 0;
		}
	}
	return -1;
}

static void supplementary_groups(int rootfd, struct sbx_user *u)
{
	u->ngroups = 0;
	_cleanup_fclose_ FILE *f = open_db(rootfd, "/etc/group");
	if (!f || !u->name[0])
		return;
	struct group gr, *res;
	static char buf[DB_BUF];
	int r;
	while (u->ngroups < SBX_MAX_GROUPS &&
	       ((r = fgetgrent_r(f, &gr, buf, sizeof(buf), &res)) == 0 || skip_long_entry(f, r))) {
		if (r != 0 || gr.gr_gid == u->gid)
			continue;
		for (char **m = gr.gr_mem; m && *m; m++) {
			if (!strcmp(*m, u->name)) {
				u->groups[u->ngroups++] = gr.gr_gid;
				break;
			}
		}
	}
}

int sbx_user_resolve(int rootfd, const char *spec, struct sbx_user *out, sbx_error **err)
{
	memset(out, 0, sizeof(*out));
	strcpy(out->home, "/");
	if (!spec || !*spec)
		spec = "root";
	char user[256];
	if (strlen(spec) >= sizeof(user))
		return sbx_error_param(err, "user", "user '%.32s...' is too long", spec);
	strcpy(user, spec);
	char *group = strchr(user, ':');
	if (group)
		*group++ = '\0';

	unsigned long id;
	bool numeric = parse_id(user, &id) == 0;
	bool found = false;
	_cleanup_fclose_ FILE *f = open_db(rootfd, "/etc/passwd");
	if (f) {
		struct passwd pw, *res;
		static char buf[DB_BUF];
		int r;
		while ((r = fgetpwent_r(f, &pw, buf, sizeof(buf), &res)) == 0 || skip_long_entry(f, r)) {
			if (r != 0)
				continue;
			if (numeric ? pw.pw_uid == (uid_t)id : !strcmp(pw.pw_name, user)) {
				out->uid = pw.pw_uid;
				out->gid = pw.pw_gid;
				snprintf(out->home, sizeof(out->home), "%s", pw.pw_dir);
				snprintf(out->name, sizeof(out->name), "%s", pw.pw_name);
				found = true;
				break;
			}
		}
	}
	if (!found) {
		if (!numeric)
			return sbx_error_set(err, SBX_ERR_NOT_FOUND, "user '%s' not found in the sandbox's /etc/passwd",
					     user);
		out->uid = (uid_t)id;
		out->gid = (gid_t)id;
	}
	if (group) {
		if (parse_id(group, &id) == 0) {
			out->gid = (gid_t)id;
		} else if (lookup_group(rootfd, group, &out->gid) < 0) {
			return sbx_error_set(err, SBX_ERR_NOT_FOUND, "group '%s' not found in the sandbox's /etc/group",
					     group);
		}
	}
	supplementary_groups(rootfd, out);
	return 0;
}

int sbx_user_name(int rootfd, uid_t uid, char *out, size_t size)
{
	_cleanup_fclose_ FILE *f = open_db(rootfd, "/etc/passwd");
	if (!f)
		return -1;
	struct passwd pw, *res;
	static char buf[DB_BUF];
	int r;
	while ((r = fgetpwent_r(f, &pw, buf, sizeof(buf), &res)) == 0 || skip_long_entry(f, r)) {
		if (r == 0 && pw.pw_uid == uid) {
			snprintf(out, size, "%s", pw.pw_name);
			return 0;
		}
	}
	return -1;
}

int sbx_group_name(int rootfd, gid_t gid, char *out, size_t size)
{
	_cleanup_fclose_ FILE *f = open_db(rootfd, "/etc/group");
	if (!f)
		return -1;
	struct group gr, *res;
	static char buf[DB_BUF];
	int r;
	while ((r = fgetgrent_r(f, &gr, buf, sizeof(buf), &res)) == 0 || skip_long_entry(f, r)) {
		if (r == 0 && gr.gr_gid == gid) {
			snprintf(out, size, "%s", gr.gr_name);
			return 0;
		}
	}
	return -1;
}

int sbx_group_resolve(int rootfd, const char *spec, gid_t *out, sbx_error **err)
{
	unsigned long id;
	if (parse_id(spec, &id) == 0) {
		*out = (gid_t)id;
		return 0;
	}
	if (lookup_group(rootfd, spec, out) < 0)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "group '%.64s' not found in the sandbox's /etc/group", spec);
	return 0;
}
