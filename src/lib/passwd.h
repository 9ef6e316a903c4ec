/* Resolve a user spec ("name", "uid", "uid:gid", "name:group") against the
 * sandbox's own /etc/passwd and /etc/group, read without NSS so that no
 * library from the sandbox is ever loaded into a sandboxd process. */
#ifndef SBX_PASSWD_H
#define SBX_PASSWD_H

#include <sys/types.h>

#include "error.h"

#define SBX_MAX_GROUPS 64

struct sbx_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[SBX_MAX_GROUPS];
	size_t ngroups;
	char home[256];
	char name[64];
};

/* rootfd: directory fd of the sandbox root. */
int sbx_user_resolve(int rootfd, const char *spec, struct sbx_user *out, sbx_error **err);

/* Reverse lookups for listings: 0 and the name, -1 when there is none. */
int sbx_user_name(int rootfd, uid_t uid, char *out, size_t size);
int sbx_group_name(int rootfd, gid_t gid, char *out, size_t size);
/* A group name or numeric gid from the sandbox's /etc/group. */
int sbx_group_resolve(int rootfd, const char *spec, gid_t *out, sbx_error **err);

#endif
