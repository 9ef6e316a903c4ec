/* Who owns a network of sandboxes on this host. A network is named by its
 * bridge; its lock is a file of that name in a root-only directory under
 * /run, flock()ed by the owning daemon for as long as it runs. The file
 * also holds a record of the owner (pid, state dir, socket, subnet), which
 * outlives a crash of the owner: what a crashed daemon left in the kernel
 * (the bridge, its table, its sandboxes' routes) stays its own until it
 * comes back. Never decides anything itself: the caller reads the records
 * and refuses what would take another daemon's network. */
#ifndef SBX_NETLOCK_H
#define SBX_NETLOCK_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

#define SBX_NETLOCK_DIR "/run/sandboxd-bridges"

struct sbx_netlock_record {
	char bridge[16];
	pid_t pid;       /* 0: no record */
	char *state_dir; /* the values are owned by the record */
	char *socket;
	char *subnet; /* a.b.c.d/n */
};

struct sbx_netlock {
	int dir_fd;
	int fd; /* the bridge's file, flock()ed while we own the network */
	bool dir_locked;
	char bridge[16];
};

#define SBX_NETLOCK_INIT { .dir_fd = -1, .fd = -1 }

/* A link name the kernel accepts, which is also a safe file name: 1 to 15
 * bytes, not "." or "..", no '/', ':' or white space. */
bool sbx_netlock_name_valid(const char *name);

/* Takes the lock of bridge in dir (made root-only when missing). Another
 * process holding it is SBX_ERR_EXISTS, naming that process from its
 * record. On success prev holds what the last owner recorded (prev->pid 0
 * when nothing), and the whole directory stays locked against other
 * daemons' start-ups until sbx_netlock_commit or sbx_netlock_release, so
 * that the caller's checks and its own record are one step. */
int sbx_netlock_take(const char *dir, const char *bridge, struct sbx_netlock *lk, struct sbx_netlock_record *prev,
		     sbx_error **err);
/* Each record of another bridge in the directory; held: its lock is held
 * by a running process. Stops at and returns fn's first non-zero value. */
int sbx_netlock_each_other(struct sbx_netlock *lk,
			   int (*fn)(const struct sbx_netlock_record *r, bool held, void *data), void *data);
/* Writes the caller's record and lets other daemons' start-ups go on. */
int sbx_netlock_commit(struct sbx_netlock *lk, const struct sbx_netlock_record *me, sbx_error **err);
/* Lets the network go; remove: the owner's clean end, which leaves no
 * record (nothing of it stays in the kernel). */
void sbx_netlock_release(struct sbx_netlock *lk, bool remove);
void sbx_netlock_record_free(struct sbx_netlock_record *r);

#endif
