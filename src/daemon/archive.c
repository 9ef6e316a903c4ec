/* Archives of stopped sandboxes: the layer packed or unpacked in a worker
 * (lib/boxarchive.c), the states and their events around it, and the
 * recovery of an operation a dead daemon left. Never packs a layer that
 * an overlay has mounted: only stopped sandboxes with no file call on
 * their root are archived. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "boxarchive.h"
#include "trash.h"

/* What the writable layer is in the sandbox's directory: the overlay's
 * upper and work directories, and the disk image that holds them when the
 * disk is limited by one. work/ is scratch for overlayfs: made empty
 * again, never packed. */
static const char *const layer_packed[] = { "upper", "disk.img", NULL };
static const char *const layer_all[] = { "upper", "work", "disk.img", NULL };
static const char *const layer_made[] = { "work", NULL };

struct archive_job {
	struct sbx_sandbox *sb;
	struct sbx_request *req;
	int dirfd;
	pid_t daemon;
	uint32_t projid;
	sbx_restore_done_fn done;
	void *data;
};

static int open_dir(struct sbx_sandbox *sb, sbx_error **err)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "sandboxes/%s", sb->id);
	int fd = openat(sb->d->state_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open %s/%s", sb->d->cfg.state_dir, rel);
	return fd;
}

/* A worker outliving its daemon would go on changing files that the next
 * daemon's recovery has already put in order. */
static void die_with_daemon(pid_t daemon)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != daemon)
		_exit(1);
}

static void job_free(struct archive_job *j)
{
	if (j->dirfd >= 0)
		close(j->dirfd);
	sbx_sandbox_unref(j->sb);
	free(j);
}

static void move_layer_to_trash(struct sbx_sandbox *sb)
{
	for (size_t i = 0; layer_all[i]; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "sandboxes/%s/%s", sb->id, layer_all[i]);
		sbx_error *e = NULL;
		if (sbx_trash(sb->d, rel, &e) < 0) {
			sbx_warn("sandbox %s: %s", sb->id, e->msg);
			sbx_error_free(e);
		}
	}
}

static int64_t archive_size(struct sbx_sandbox *sb)
{
	char rel[80];
	struct stat st;
	snprintf(rel, sizeof(rel), "sandboxes/%s/%s", sb->id, SBX_BOXARCHIVE_FILE);
	if (fstatat(sb->d->state_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return -1;
	return st.st_size;
}

static void set_state(struct sbx_sandbox *sb, enum sbx_state st, const char *event, const char *detail)
{
	sb->state = st;
	sbx_error *e = NULL;
	if (sbx_sandbox_save(sb, &e) < 0) {
		sbx_warn("%s", e->msg);
		sbx_error_free(e);
	}
	if (event)
		sbx_event_emit(sb->d, event, sb, detail);
}

/* The layer is in the archive for good: free it. */
static void archive_finish(struct sbx_sandbox *sb, int64_t layer_bytes)
{
	move_layer_to_trash(sb);
	sb->archive_bytes = archive_size(sb);
	if (layer_bytes >= 0)
		sb->archive_layer_bytes = layer_bytes;
	sb->archived_ns = sbx_now_ns();
	char msg[96];
	snprintf(msg, sizeof(msg), "archive of %lld bytes", (long long)sb->archive_bytes);
	set_state(sb, SBX_STATE_ARCHIVED, "archived", msg);
}

/* ---- archive ---- */

static int pack_run(void *arg, int out_fd, sbx_error **err)
{
	struct archive_job *j = arg;
	die_with_daemon(j->daemon);
	struct sbx_boxarchive_info info;
	if (sbx_boxarchive_pack(j->dirfd, layer_packed, &info, err) < 0)
		return -1;
	dprintf(out_fd, "%" PRId64 " %" PRId64 "\n", info.size, info.layer_bytes);
	return 0;
}

static void reply_sandbox(struct sbx_request *req, struct sbx_sandbox *sb)
{
	yajl_gen g = sbx_reply_begin(req);
	if (g)
		sbx_sandbox_gen(g, sb);
	sbx_reply_end(req, g);
}

static void pack_done(struct sbx_daemon *d, void *ctx, sbx_error *err, struct sbx_buf *out)
{
	(void)d;
	struct archive_job *j = ctx;
	struct sbx_sandbox *sb = j->sb;
	int64_t t0 = sb->archive_started_ns;
	if (err) {
		sbx_boxarchive_discard_partial(j->dirfd, NULL);
		sbx_warn("sandbox %s (%s): archive: %s", sb->id, sb->name, err->msg);
		set_state(sb, SBX_STATE_STOPPED, "error", err->msg);
		/* The policy tries again later, not at every tick. */
		sb->archive_retry_ns = sbx_now_ns() + 10LL * 60 * 1000000000LL;
		if (j->req) {
			sbx_error *copy = NULL;
			sbx_error_set(&copy, err->code, "sandbox %s: archive: %s", sb->name, err->msg);
			sbx_reply_error(j->req, copy);
		}
		job_free(j);
		return;
	}
	long long size = -1, layer = -1;
	if (out && out->data)
		sscanf(out->data, "%lld %lld", &size, &layer);
	archive_finish(sb, layer);
	sbx_info("sandbox %s (%s) archived: %lld bytes of files in an archive of %lld bytes (%lld ms)", sb->id,
		 sb->name, layer, (long long)sb->archive_bytes, (long long)((sbx_now_ns() - t0) / 1000000));
	if (j->req)
		reply_sandbox(j->req, sb);
	job_free(j);
}

int sbx_sandbox_archive(struct sbx_sandbox *sb, struct sbx_request *req, sbx_error **err)
{
	if (sb->state == SBX_STATE_ARCHIVED) {
		if (req)
			reply_sandbox(req, sb);
		return 0;
	}
	if (sb->state != SBX_STATE_STOPPED || sb->stopping || sb->start)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s; only a stopped sandbox can be archived%s",
				     sb->name,
				     sb->stopping ? "stopping" : sb->start ? "starting" : sbx_state_name(sb->state),
				     sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED ? " (stop it first)" : "");
	if (sb->fs_offline || sb->snapshots)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s: %s; try again", sb->name,
				     sb->snapshots ? "a snapshot of it is being made" : "files are being accessed");
	struct archive_job *j = calloc(1, sizeof(*j));
	if (!j)
		return sbx_error_errno(err, ENOMEM, "sandbox %s: archive", sb->id);
	j->dirfd = open_dir(sb, err);
	if (j->dirfd < 0) {
		free(j);
		return -1;
	}
	j->sb = sb;
	j->req = req;
	j->daemon = getpid();
	/* The intent first: a daemon that dies from here on finds it. */
	enum sbx_state was = sb->state;
	sb->state = SBX_STATE_ARCHIVING;
	if (sbx_sandbox_save(sb, err) < 0) {
		sb->state = was;
		close(j->dirfd);
		free(j);
		return sbx_error_prefix(err, "sandbox %s: archive", sb->name);
	}
	sbx_sandbox_ref(sb);
	sb->archive_started_ns = sbx_now_ns();
	if (sbx_worker_start_out(sb->d, &j->dirfd, 1, pack_run, j, pack_done, j, err) < 0) {
		set_state(sb, was, NULL, NULL);
		job_free(j);
		return sbx_error_prefix(err, "sandbox %s: archive", sb->name);
	}
	sbx_info("sandbox %s (%s): archiving its writable layer", sb->id, sb->name);
	sbx_event_emit(sb->d, "archiving", sb, NULL);
	return 0;
}

/* ---- restore ---- */

static int unpack_run(void *arg, int out_fd, sbx_error **err)
{
	(void)out_fd;
	struct archive_job *j = arg;
	die_with_daemon(j->daemon);
	return sbx_boxarchive_unpack(j->dirfd, layer_made, j->projid, err);
}

/* Back to archived: whatever of the layer the restore made goes. */
static void restore_undo(struct sbx_sandbox *sb, int dirfd)
{
	sbx_boxarchive_discard_partial(dirfd, NULL);
	move_layer_to_trash(sb);
}

static void unpack_done(struct sbx_daemon *d, void *ctx, sbx_error *err, struct sbx_buf *out)
{
	(void)out;
	struct archive_job *j = ctx;
	struct sbx_sandbox *sb = j->sb;
	sbx_error *e = NULL;
	if (err) {
		restore_undo(sb, j->dirfd);
		set_state(sb, SBX_STATE_ARCHIVED, "error", err->msg);
		sbx_error_set(&e, err->code, "sandbox %s: restore from its archive: %s", sb->name, err->msg);
		sbx_warn("%s", e->msg);
	} else {
		/* Stopped, with its layer, on disk before the archive goes. */
		sb->archive_bytes = sb->archive_layer_bytes = sb->archived_ns = 0;
		set_state(sb, SBX_STATE_STOPPED, "restored", NULL);
		/* Freeing a big file's blocks takes a while: in the trash's worker. */
		char rel[80];
		snprintf(rel, sizeof(rel), "sandboxes/%s/%s", sb->id, SBX_BOXARCHIVE_FILE);
		sbx_error *te = NULL;
		if (sbx_trash(d, rel, &te) < 0) {
			sbx_warn("sandbox %s: remove its archive: %s", sb->id, te->msg);
			sbx_error_free(te);
		}
		sbx_info("sandbox %s (%s) restored from its archive", sb->id, sb->name);
	}
	sbx_restore_done_fn done = j->done;
	void *data = j->data;
	sbx_sandbox_ref(sb);
	job_free(j);
	done(sb, e, data);
	sbx_error_free(e);
	sbx_sandbox_unref(sb);
}

int sbx_sandbox_restore(struct sbx_sandbox *sb, sbx_restore_done_fn done, void *data, sbx_error **err)
{
	if (sb->state != SBX_STATE_ARCHIVED)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s, not archived", sb->name,
				     sbx_state_name(sb->state));
	struct archive_job *j = calloc(1, sizeof(*j));
	if (!j)
		return sbx_error_errno(err, ENOMEM, "sandbox %s: restore", sb->id);
	j->dirfd = open_dir(sb, err);
	if (j->dirfd < 0) {
		free(j);
		return -1;
	}
	j->sb = sb;
	j->done = done;
	j->data = data;
	j->daemon = getpid();
	j->projid = sb->box->projid;
	sb->state = SBX_STATE_RESTORING;
	if (sbx_sandbox_save(sb, err) < 0) {
		sb->state = SBX_STATE_ARCHIVED;
		close(j->dirfd);
		free(j);
		return sbx_error_prefix(err, "sandbox %s: restore", sb->name);
	}
	sbx_sandbox_ref(sb);
	if (sbx_worker_start_out(sb->d, &j->dirfd, 1, unpack_run, j, unpack_done, j, err) < 0) {
		set_state(sb, SBX_STATE_ARCHIVED, NULL, NULL);
		job_free(j);
		return sbx_error_prefix(err, "sandbox %s: restore", sb->name);
	}
	sbx_info("sandbox %s (%s): restoring its writable layer from its archive", sb->id, sb->name);
	sbx_event_emit(sb->d, "restoring", sb, NULL);
	return 0;
}

/* ---- recovery ---- */

void sbx_sandbox_archive_recover(struct sbx_sandbox *sb)
{
	sbx_error *e = NULL;
	int dirfd = open_dir(sb, &e);
	if (dirfd < 0) {
		sbx_warn("sandbox %s: %s", sb->id, e->msg);
		sbx_error_free(e);
		return;
	}
	bool have_archive = archive_size(sb) >= 0;
	switch (sb->state) {
	case SBX_STATE_ARCHIVING:
		sbx_boxarchive_discard_partial(dirfd, NULL);
		if (have_archive) {
			sbx_warn("sandbox %s (%s): its archive was written when the daemon went away; finishing it",
				 sb->id, sb->name);
			archive_finish(sb, -1);
		} else {
			sbx_warn("sandbox %s (%s): the daemon went away while archiving it; it stays stopped", sb->id,
				 sb->name);
			set_state(sb, SBX_STATE_STOPPED, NULL, NULL);
		}
		break;
	case SBX_STATE_RESTORING:
		if (have_archive) {
			sbx_warn("sandbox %s (%s): the daemon went away while restoring it; it stays archived", sb->id,
				 sb->name);
			restore_undo(sb, dirfd);
			set_state(sb, SBX_STATE_ARCHIVED, NULL, NULL);
		} else {
			sbx_boxarchive_discard_partial(dirfd, NULL);
			set_state(sb, SBX_STATE_STOPPED, NULL, NULL);
		}
		break;
	case SBX_STATE_ARCHIVED:
		sbx_boxarchive_discard_partial(dirfd, NULL);
		if (!have_archive) {
			sbx_warn("sandbox %s (%s): archived, but its archive is missing", sb->id, sb->name);
			set_state(sb, SBX_STATE_ERROR, NULL, NULL);
		}
		break;
	default:
		/* A restore recorded as done whose archive was not removed yet. */
		sbx_boxarchive_discard_partial(dirfd, NULL);
		if (have_archive && unlinkat(dirfd, SBX_BOXARCHIVE_FILE, 0) < 0)
			sbx_warn("sandbox %s: remove a stale archive: %s", sb->id, strerror(errno));
		break;
	}
	close(dirfd);
}
