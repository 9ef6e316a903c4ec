/* The trash: a tree to delete is first renamed into <state_dir>/trash/
 * (one rename, so that a crash leaves it whole or gone), then removed by a
 * worker; what a crash left there is removed at the next start. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "trash.h"

static int remove_tree_run(void *arg, sbx_error **err)
{
	return sbx_rm_rf_at(AT_FDCWD, arg, err);
}

static void remove_tree_done(struct sbx_daemon *d, void *ctx, sbx_error *err)
{
	if (err)
		sbx_warn("remove %s: %s", (char *)ctx, err->msg);
	free(ctx);
}

/* Move a directory to the trash (instant), then delete it in a worker. */
int sbx_trash_reserve(struct sbx_daemon *d, char dst[64], sbx_error **err)
{
	char id[13];
	if (sbx_random_id(id, err) < 0)
		return -1;
	if (mkdirat(d->state_fd, "trash", 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create trash");
	snprintf(dst, 64, "trash/%s", id);
	return 0;
}

void sbx_trash_remove(struct sbx_daemon *d, const char *dst)
{
	struct stat st;
	if (fstatat(d->state_fd, dst, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return; /* nothing was moved there */
	char *abs = NULL;
	if (asprintf(&abs, "%s/%s", d->cfg.state_dir, dst) < 0)
		return; /* the trash is emptied at the next start */
	if (sbx_worker_start(d, remove_tree_run, abs, remove_tree_done, abs, NULL) < 0)
		free(abs);
}

int sbx_trash(struct sbx_daemon *d, const char *relpath, sbx_error **err)
{
	char dst[64];
	if (sbx_trash_reserve(d, dst, err) < 0)
		return -1;
	if (renameat(d->state_fd, relpath, d->state_fd, dst) < 0) {
		if (errno == ENOENT)
			return 0;
		return sbx_error_errno(err, errno, "move %s to trash", relpath);
	}
	sbx_trash_remove(d, dst);
	return 0;
}

void sbx_trash_empty(struct sbx_daemon *d)
{
	sbx_error *e = NULL;
	if (sbx_rm_rf_at(d->state_fd, "trash", &e) < 0)
		sbx_warn("empty trash: %s", e->msg);
	sbx_error_free(e);
}
