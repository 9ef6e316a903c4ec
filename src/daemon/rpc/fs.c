/* fs.*: files of a sandbox as a process inside sees them. Every call runs
 * in a forked worker, so that no file work (a search over a big tree, a
 * 1 GiB copy, a stuck disk) ever blocks the loop, and so that a stopped
 * sandbox's overlay can be mounted in a private mount namespace of the
 * worker only. The worker writes the whole reply line; the loop sends it.
 * Paths are resolved only by lib/fsops.c. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "disk.h"
#include "fsarchive.h"
#include "fsops.h"
#include "registry/images.h"
#include "loopdevs.h"
#include "passwd.h"
#include "rootfs.h"
#include "registry/sandbox.h"
#include "syscalls.h"
#include "userns.h"

#define FS_CHUNK_MAX ((int64_t)8 << 20)     /* bytes of content per fs.read */
#define FS_FIND_FILE_MAX ((int64_t)10 << 20) /* default size limit of fs.find */
#define FS_REPLACE_FILE_MAX ((int64_t)64 << 20)
#define FS_RESULTS_MAX 100000
#define FS_LINE_SHOWN 512
/* Replies queued for a client before its fs calls wait (until it has read
 * most of them): a little more than one 4 MiB chunk (5.6 MB in base64,
 * 8 MiB in hex), so that one reply is ready while the client takes the
 * previous one. */
#define FS_BACKLOG_MAX ((size_t)9 << 20)
/* A reply this long asks for a bigger socket buffer. */
#define FS_BIG_REPLY ((size_t)1 << 20)

struct fs_job;
typedef int (*fs_op)(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err);

struct fs_job {
	struct sbx_request *req;
	struct sbx_sandbox *sb;
	fs_op op;
	int rootfd;    /* /proc/<init>/root of a running sandbox; -1 when stopped */
	int init_pidfd; /* its init, whose namespaces the worker joins */
	int client_fd; /* an fd the client passed, or -1 */
	bool offline;
	/* for a stopped sandbox: where its box's root is mounted, and the loop
	 * device made for its disk image (-1: none) */
	char *scratch;
	bool has_disk;
	int loop_index;
	char *user, *workdir;
	uint32_t userns_base;
	/* The reply line is built here; an operation that writes it whole
	 * (a base64 or hex chunk, encoded straight into it) sets wrote_line. */
	struct sbx_buf *out;
	bool wrote_line;
	bool in_loop; /* a chunk of a running sandbox's file, done in the loop */
	bool offline_mounting; /* holds its stopped sandbox's one mount slot */
	struct fs_job *next_waiting;
	bool bulk_decoded; /* fs.write's bulk base64 or hex is decoded in place */
	size_t bulk_decoded_len;
};

/* Returned by an operation run in the loop that must go to a worker. */
#define FS_NEEDS_WORKER (-2)

static void fs_dispatch(struct fs_job *job);

static void job_free(struct fs_job *job)
{
	if (!job)
		return;
	struct fs_job *next = NULL;
	if (job->rootfd >= 0)
		close(job->rootfd);
	if (job->init_pidfd >= 0)
		close(job->init_pidfd);
	if (job->client_fd >= 0)
		close(job->client_fd);
	if (job->loop_index >= 0 && job->sb)
		sbx_loopdevs_release_index(job->sb->d, job->loop_index);
	if (job->sb) {
		if (job->offline)
			job->sb->fs_offline--;
		if (job->offline_mounting) {
			job->sb->fs_offline_busy = false;
			if ((next = job->sb->fs_offline_queue))
				job->sb->fs_offline_queue = next->next_waiting;
		}
		sbx_sandbox_unref(job->sb);
	}
	free(job->scratch);
	free(job->user);
	free(job->workdir);
	free(job);
	if (next)
		fs_dispatch(next); /* the next call on that stopped sandbox */
}

/* ---- in the worker ---- */

/* A stopped sandbox: its root mounted as its start would, but in a mount
 * namespace of this worker alone, on a scratch tmpfs; it all goes away
 * with the worker (the loop device clears itself). */
static int offline_root(struct fs_job *job, sbx_error **err)
{
	return sbx_box_mount_root(job->sb->box, job->scratch, job->loop_index, err);
}

/* Run the operation on an open root; the reply line is appended to out. */
static int fs_run(struct fs_job *job, int rootfd, struct sbx_buf *out, sbx_error **err)
{
	/* New files belong to the sandbox's user; root when it cannot be found. */
	struct sbx_user u;
	if (sbx_user_resolve(rootfd, job->user, &u, NULL) < 0)
		u.uid = u.gid = 0;
	struct sbx_fs fs = { .rootfd = rootfd, .workdir = job->workdir, .id_base = job->userns_base };
	int64_t hu = 0, hg = 0;
	fs.uid = (uid_t)((hu = sbx_fs_id_host(&fs, u.uid)) >= 0 ? hu : job->userns_base);
	fs.gid = (gid_t)((hg = sbx_fs_id_host(&fs, u.gid)) >= 0 ? hg : job->userns_base);
	_cleanup_gen_ yajl_gen g = sbx_reply_begin(job->req);
	if (!g)
		return sbx_error_errno(err, ENOMEM, "reply");
	job->out = out;
	job->wrote_line = false;
	int r = job->op(job, &fs, g, err);
	job->out = NULL;
	if (r < 0 || job->wrote_line)
		return r;
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	if (sbx_buf_append(out, buf, len) < 0)
		return sbx_error_errno(err, ENOMEM, "result");
	return 0;
}

/* A worker that outlives this is stuck (a client that never reads the
 * pipe it passed): SIGALRM ends it, its sandbox is free again. */
#define FS_WORKER_MAX_S 1800

static int fs_worker(void *arg, int out_fd, sbx_error **err)
{
	struct fs_job *job = arg;
	alarm(FS_WORKER_MAX_S);
	_cleanup_close_ int rootfd = job->rootfd >= 0 ? job->rootfd : offline_root(job, err);
	job->rootfd = -1;
	job->in_loop = false;
	if (rootfd < 0)
		return sbx_error_prefix(err, "sandbox %s", job->sb->name);
	/* Files in the sandbox's /proc answer for the namespaces of whoever
	 * reads them (/proc/sys/kernel/hostname, /proc/PID/net): be in the
	 * sandbox's, not the host's. Credentials stay the daemon's. */
	if (job->init_pidfd >= 0 && setns(job->init_pidfd, CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) < 0)
		return sbx_error_errno(err, errno, "sandbox %s: join its namespaces", job->sb->name);
	struct sbx_buf out = { 0 };
	int r = fs_run(job, rootfd, &out, err);
	if (job->offline) {
		/* Unmount before exiting, not lazily with the namespace: the
		 * sandbox may be started as soon as we are gone, and its ext4
		 * disk must not be mounted twice even for a moment. */
		sbx_closep(&rootfd);
		sbx_box_unmount_root(job->scratch);
	}
	if (r < 0)
		return -1;
	if (sbx_write_all(out_fd, out.data, out.len) < 0)
		return sbx_error_errno(err, errno, "result");
	return 0;
}

/* A regular file on a virtual filesystem (/proc, /sys) answers for the
 * namespaces of its reader: only a worker, which joins the sandbox's, may
 * touch it. */
static bool needs_worker(struct fs_job *job, int fd)
{
	struct statfs sfs;
	return job->in_loop && (fstatfs(fd, &sfs) < 0 || sfs.f_type == 0x9fa0 /* proc */ ||
				sfs.f_type == 0x62656572 /* sysfs */);
}

/* ---- in the loop ---- */

static void fs_done(struct sbx_daemon *d, void *ctx, sbx_error *err, struct sbx_buf *out)
{
	(void)d;
	struct fs_job *job = ctx;
	struct sbx_request *req = job->req;
	job->req = NULL;
	if (err) {
		sbx_error *e = NULL;
		if (err->param)
			sbx_error_param(&e, err->param, "%s", err->msg ? err->msg : "error");
		else
			sbx_error_set(&e, err->code, "%s", err->msg ? err->msg : "error");
		if (e) {
			e->code = err->code;
			e->errnum = err->errnum;
		}
		sbx_reply_error(req, e);
	} else if (out && out->len > 0) {
		if (out->len >= FS_BIG_REPLY)
			sbx_conn_expect_big_replies(req->conn);
		sbx_conn_send_line(req->conn, out->data, out->len);
		sbx_request_free(req);
	} else {
		sbx_reply_error(req, NULL);
	}
	job_free(job);
}

/* Open the root of a running sandbox through its init, and make sure the
 * init is still the one we track: a recycled pid would be another root. */
static int running_root(struct sbx_sandbox *sb, sbx_error **err)
{
	int fd = sbx_box_root(sb->box, err);
	if (fd >= 0)
		return fd;
	if ((*err)->code == SBX_ERR_BAD_STATE) {
		sbx_error_free(*err);
		*err = NULL;
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is stopping; try again when it has stopped",
				     sb->name);
	}
	return sbx_error_prefix(err, "sandbox %s", sb->name);
}

static int offline_prepare(struct fs_job *job, sbx_error **err)
{
	struct sbx_sandbox *sb = job->sb;
	struct sbx_daemon *d = sb->d;
	struct sbx_image *img = sbx_image_find(d, sb->image_id);
	if (!img)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "sandbox %s: its image '%s' was removed", sb->name,
				     sb->image);
	if (mkdirat(d->run_fd, "fs-scratch", 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create %s/fs-scratch", d->cfg.run_dir);
	_cleanup_free_ char *disk = sbx_box_disk_image(sb->box);
	_cleanup_strv_ char **layers = sbx_image_lowerdirs(d, img);
	if (!layers || sbx_box_set_layers(sb->box, (const char *const *)layers, err) < 0 ||
	    asprintf(&job->scratch, "%s/fs-scratch", d->cfg.run_dir) < 0) {
		job->scratch = NULL;
		return sbx_error_errno(err, ENOMEM, "sandbox %s", sb->id);
	}
	job->has_disk = disk != NULL;
	return 0;
}

static int op_read(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err);
static int op_write(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err);

/* Run a prepared job: a chunk in the loop, anything else in a worker. */
static void fs_dispatch(struct fs_job *job)
{
	struct sbx_request *req = job->req;
	sbx_error *err = NULL;
	if (sbx_conn_closed(req->conn)) {
		job->req = NULL;
		job_free(job);
		sbx_request_free(req); /* nobody to answer */
		return;
	}
	if (job->offline) {
		struct sbx_sandbox *sb = job->sb;
		if (sb->fs_offline_busy) {
			/* In order, after the one that has the overlay mounted. */
			struct fs_job **pp = &sb->fs_offline_queue;
			while (*pp)
				pp = &(*pp)->next_waiting;
			*pp = job;
			return;
		}
		sb->fs_offline_busy = true;
		job->offline_mounting = true;
	}
	if (job->in_loop) {
		/* A chunk (at most FS_CHUNK_MAX bytes) of a running sandbox's
		 * file: bounded work, done here, because a fork per chunk costs
		 * more than the copy (the loop's pages turn copy-on-write). */
		size_t mark;
		if (job->op == op_read)
			sbx_conn_expect_big_replies(req->conn);
		struct sbx_buf *out = sbx_conn_line_begin(req->conn, &mark);
		int r = fs_run(job, job->rootfd, out, &err);
		sbx_conn_line_end(req->conn, mark, r == 0);
		if (r == 0) {
			sbx_request_free(req);
			job->req = NULL;
			job_free(job);
			return;
		}
		if (r != FS_NEEDS_WORKER)
			goto fail;
		sbx_error_free(err);
		err = NULL;
	}
	/* The worker attaches the disk image to a device made here, which
	 * is removed when the job ends. */
	if (job->has_disk && job->loop_index < 0 &&
	    (job->loop_index = sbx_loopdevs_add(req->d, job->sb->id, &err)) < 0)
		goto fail;
	int keep[3] = { job->rootfd, job->client_fd, job->init_pidfd };
	if (sbx_worker_start_out(req->d, keep, 3, fs_worker, job, fs_done, job, &err) == 0)
		return;
fail:
	job->req = NULL;
	job_free(job);
	sbx_reply_error(req, err);
}

static void fs_resume(void *data)
{
	fs_dispatch(data);
}


static void fs_start(struct sbx_request *req, fs_op op, bool takes_fd)
{
	sbx_error *err = NULL;
	static bool malloc_tuned;
	if (!malloc_tuned) {
		/* Chunks are megabytes: give each back to the kernel when freed,
		 * instead of glibc raising its mmap threshold and keeping them. */
		mallopt(M_MMAP_THRESHOLD, 1 << 20);
		malloc_tuned = true;
	}
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb) {
		sbx_reply_error(req, err);
		return;
	}
	struct fs_job *job = calloc(1, sizeof(*job));
	if (!job) {
		sbx_error_errno(&err, ENOMEM, "fs");
		sbx_reply_error(req, err);
		return;
	}
	job->rootfd = job->client_fd = job->init_pidfd = job->loop_index = -1;
	job->op = op;
	job->sb = sb;
	if (takes_fd)
		job->client_fd = sbx_take_fd(&req->fd);
	sbx_sandbox_ref(sb);
	job->userns_base = sb->box->userns_base;
	job->user = strdup(sb->box->user);
	job->workdir = strdup(sb->box->workdir);
	if (!job->user || !job->workdir) {
		sbx_error_errno(&err, ENOMEM, "fs");
		goto fail;
	}
	if (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED) {
		if ((job->rootfd = running_root(sb, &err)) < 0)
			goto fail;
		if ((job->init_pidfd = fcntl(sb->box->init_pidfd, F_DUPFD_CLOEXEC, 3)) < 0) {
			sbx_error_errno(&err, errno, "dup");
			goto fail;
		}
		job->in_loop = (op == op_read || op == op_write) && job->client_fd < 0;
	} else if (sb->state == SBX_STATE_STOPPED && !sb->stopping && !sb->start) {
		if (offline_prepare(job, &err) < 0)
			goto fail;
		job->offline = true;
		sb->fs_offline++;
	} else if (sb->state == SBX_STATE_ARCHIVED) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE,
			      "sandbox %s is archived: its files are packed away; start it to restore them", sb->name);
		goto fail;
	} else {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s is %s; try again later", sb->name,
			      sb->stopping ? "stopping" : sb->start ? "starting" : sbx_state_name(sb->state));
		goto fail;
	}
	job->req = req;
	/* A client that sends faster than it reads its replies (chunked reads
	 * in flight) must not make the daemon hold them all: wait until what
	 * is queued for it is mostly written. */
	if (sbx_conn_backlog(req->conn) > FS_BACKLOG_MAX && sbx_conn_on_drain(req->conn, fs_resume, job) == 0)
		return;
	fs_dispatch(job);
	return;
fail:
	job_free(job);
	sbx_reply_error(req, err);
}

/* ---- parameters and output (worker side) ---- */

static bool utf8_valid(const char *s, size_t len)
{
	size_t ol = 0;
	_cleanup_free_ char *c = sbx_utf8_sanitize(s, len, &ol);
	return c && ol == len && !memcmp(c, s, len);
}

/* A name or path that may not be UTF-8: the repaired text, and the exact
 * bytes in "<key>_base64" when it had to be repaired. */
static void gen_path(yajl_gen g, const char *key, const char *s)
{
	size_t len = strlen(s);
	if (utf8_valid(s, len)) {
		if (key)
			sbx_gen_key(g, key);
		sbx_gen_str(g, s);
		return;
	}
	size_t ol = 0;
	_cleanup_free_ char *fixed = sbx_utf8_sanitize(s, len, &ol);
	if (!key) {
		sbx_gen_strn(g, fixed ? fixed : "", fixed ? ol : 0);
		return;
	}
	_cleanup_free_ char *b64 = sbx_base64_encode(s, len, NULL);
	sbx_gen_key(g, key);
	sbx_gen_strn(g, fixed ? fixed : "", fixed ? ol : 0);
	char k[64];
	snprintf(k, sizeof(k), "%s_base64", key);
	sbx_gen_kv_str(g, k, b64 ? b64 : "");
}

/* A path parameter: "<key>" (UTF-8) or "<key>_base64" (any bytes). */
static int param_path(struct sbx_fs *fs, yajl_val p, const char *key, bool required, char **out, sbx_error **err)
{
	const char *s = NULL, *b = NULL;
	char bkey[64];
	snprintf(bkey, sizeof(bkey), "%s_base64", key);
	if (sbx_json_string(p, key, false, &s, err) < 0 || sbx_json_string(p, bkey, false, &b, err) < 0)
		return -1;
	if (s && b)
		return sbx_error_param(err, key, "give '%s' or '%s', not both", key, bkey);
	_cleanup_free_ char *raw = NULL;
	if (b) {
		size_t rl = 0;
		if (sbx_base64_decode(b, strlen(b), &raw, &rl) < 0 || memchr(raw, '\0', rl))
			return sbx_error_param(err, bkey, "'%s' must be base64 of a path without NUL bytes", bkey);
		s = raw;
	}
	if (!s) {
		if (required)
			return sbx_error_param(err, key, "'%s' is required", key);
		*out = NULL;
		return 0;
	}
	return sbx_fs_normalize(fs, s, key, out, err) < 0 ? -1 : 1;
}

/* "mode": a JSON integer (420) or an octal string ("0644"). */
static int param_mode(yajl_val p, int *mode, sbx_error **err)
{
	yajl_val v = sbx_json_get(p, "mode");
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (YAJL_IS_INTEGER(v)) {
		long long m = YAJL_GET_INTEGER(v);
		if (m < 0 || m > 07777)
			return sbx_error_param(err, "mode", "'mode' must be between 0 and 4095 (07777)");
		*mode = (int)m;
		return 1;
	}
	if (YAJL_IS_STRING(v) && sbx_fs_parse_mode(YAJL_GET_STRING(v), mode) == 0)
		return 1;
	return sbx_error_param(err, "mode", "'mode' must be an integer such as 420 or an octal string such as \"0644\"");
}

/* How file bytes travel: in "data" as text, or binary as base64 or hex;
 * or (fs.read only) as the raw bytes after the reply line. */
enum fs_encoding { ENC_UTF8, ENC_BASE64, ENC_HEX, ENC_BINARY };

static int param_encoding(yajl_val p, enum fs_encoding *enc, sbx_error **err)
{
	const char *s = "utf-8";
	if (sbx_json_string(p, "encoding", false, &s, err) < 0)
		return -1;
	if (!strcmp(s, "base64"))
		*enc = ENC_BASE64;
	else if (!strcmp(s, "hex"))
		*enc = ENC_HEX;
	else if (!strcmp(s, "utf-8") || !strcmp(s, "utf8"))
		*enc = ENC_UTF8;
	else if (!strcmp(s, "binary"))
		*enc = ENC_BINARY;
	else
		return sbx_error_param(err, "encoding", "'encoding' must be \"utf-8\", \"base64\", \"hex\" or \"binary\"");
	return 0;
}

/* A binary encoding's piece of a chunk, straight into the reply line. */
static size_t encoded_len(enum fs_encoding enc, size_t n)
{
	return enc == ENC_HEX ? SBX_HEX_ENCODED_LEN(n) : SBX_BASE64_ENCODED_LEN(n);
}

static size_t encode_into(enum fs_encoding enc, const void *data, size_t n, char *out)
{
	return enc == ENC_HEX ? sbx_hex_encode_into(data, n, out) : sbx_base64_encode_into(data, n, out);
}

static int decode_into(enum fs_encoding enc, const char *in, size_t n, char *out, size_t *outlen)
{
	return enc == ENC_HEX ? sbx_hex_decode_into(in, n, out, outlen) : sbx_base64_decode_into(in, n, out, outlen);
}

/* A tiny cache: listings name the same few owners over and over. */
struct name_cache {
	uint32_t id[8];
	char name[8][64];
	bool have[8];
	int next;
};

static const char *cached_name(int rootfd, struct name_cache *c, uint32_t id, bool group)
{
	for (int i = 0; i < 8; i++)
		if (c->have[i] && c->id[i] == id)
			return c->name[i][0] ? c->name[i] : NULL;
	int i = c->next++ % 8;
	c->have[i] = true;
	c->id[i] = id;
	c->name[i][0] = '\0';
	if ((group ? sbx_group_name(rootfd, id, c->name[i], sizeof(c->name[i]))
		   : sbx_user_name(rootfd, id, c->name[i], sizeof(c->name[i]))) < 0)
		c->name[i][0] = '\0';
	return c->name[i][0] ? c->name[i] : NULL;
}

static struct name_cache user_names, group_names;

static void gen_info(yajl_gen g, struct sbx_fs *fs, const char *path, int dirfd, const char *name,
		     const struct stat *st)
{
	const char *type = S_ISREG(st->st_mode) ? "file" : S_ISDIR(st->st_mode) ? "dir" : S_ISLNK(st->st_mode) ? "symlink"
														: "other";
	int64_t uid = sbx_fs_id_inside(fs, st->st_uid), gid = sbx_fs_id_inside(fs, st->st_gid);
	yajl_gen_map_open(g);
	gen_path(g, "name", strcmp(path, "/") ? strrchr(path, '/') + 1 : "/");
	gen_path(g, "path", path);
	sbx_gen_kv_str(g, "type", type);
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode))
		sbx_gen_kv_str(g, "kind", S_ISFIFO(st->st_mode) ? "fifo" : S_ISSOCK(st->st_mode) ? "socket" : "device");
	sbx_gen_kv_int(g, "size", st->st_size);
	sbx_gen_kv_int(g, "mode", st->st_mode & 07777);
	char oct[8];
	snprintf(oct, sizeof(oct), "%04o", (unsigned)(st->st_mode & 07777));
	sbx_gen_kv_str(g, "mode_octal", oct);
	sbx_gen_kv_int(g, "uid", uid);
	sbx_gen_kv_int(g, "gid", gid);
	sbx_gen_kv_str(g, "owner", cached_name(fs->rootfd, &user_names, (uint32_t)uid, false));
	sbx_gen_kv_str(g, "group", cached_name(fs->rootfd, &group_names, (uint32_t)gid, true));
	char ts[64];
	sbx_time_rfc3339((int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec, ts);
	sbx_gen_kv_str(g, "mtime", ts);
	if (S_ISLNK(st->st_mode) && dirfd >= 0) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
		if (n >= 0) {
			target[n] = '\0';
			gen_path(g, "symlink_target", target);
		}
	}
	yajl_gen_map_close(g);
}

/* file_info of a path, not following a final symlink. */
static int info_of(struct sbx_fs *fs, const char *path, yajl_gen g, sbx_error **err)
{
	struct stat st;
	if (!strcmp(path, "/")) {
		if (fstat(fs->rootfd, &st) < 0)
			return sbx_error_errno(err, errno, "stat /");
		gen_info(g, fs, path, -1, NULL, &st);
		return 0;
	}
	const char *name = NULL;
	_cleanup_close_ int parent = sbx_fs_open_parent(fs, path, &name, err);
	if (parent < 0)
		return -1;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		_cleanup_free_ char *shown = sbx_utf8_sanitize(path, strlen(path), NULL);
		return sbx_error_errno(err, errno, "stat '%s'", shown ? shown : "?");
	}
	gen_info(g, fs, path, parent, name, &st);
	return 0;
}

/* ---- operations ---- */

static int op_stat(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	_cleanup_free_ char *path = NULL;
	if (param_path(fs, job->req->params, "path", true, &path, err) < 0)
		return -1;
	return info_of(fs, path, g, err);
}

struct list_ctx {
	struct sbx_fs *fs;
	yajl_gen g;
	int64_t count, max;
	bool truncated;
};

static int list_visit(void *ctx, const char *path, int dirfd, const char *name, const struct stat *st)
{
	struct list_ctx *lc = ctx;
	if (lc->count >= lc->max) {
		lc->truncated = true;
		return -2;
	}
	gen_info(lc->g, lc->fs, path, dirfd, name, st);
	lc->count++;
	return 0;
}

static int op_list(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	int64_t depth = 1, max = 10000;
	if (param_path(fs, p, "path", false, &path, err) < 0 ||
	    sbx_json_int(p, "depth", false, 0, 64, &depth, err) < 0 ||
	    sbx_json_int(p, "max_entries", false, 1, FS_RESULTS_MAX, &max, err) < 0)
		return -1;
	if (!path && !(path = strdup(fs->workdir)))
		return sbx_error_errno(err, ENOMEM, "list");
	struct list_ctx lc = { .fs = fs, .g = g, .max = max };
	yajl_gen_map_open(g);
	sbx_gen_key(g, "entries");
	yajl_gen_array_open(g);
	if (sbx_fs_walk(fs, path, (int)depth, list_visit, &lc, err) < 0 && !lc.truncated)
		return -1;
	yajl_gen_array_close(g);
	sbx_gen_kv_bool(g, "truncated", lc.truncated);
	yajl_gen_map_close(g);
	return 0;
}

/* A chunk is read in pieces of this size and each is encoded straight
 * into the reply line: a multiple of 3, so that pieces join without
 * padding, and at most what sysctl files accept in one read (a kmalloc).
 * One buffer for the process's life: a fresh multi-MiB buffer per chunk
 * cost a page fault per 4 KiB, more than the copy. */
#define FS_READ_PIECE (3 << 18)
static char read_piece[FS_READ_PIECE];

/* Up to want bytes of fd from offset into buf, in pieces: sysctl files
 * refuse reads of more than a kmalloc. *eof when the file ended first. */
static int read_at(int fd, char *buf, int64_t offset, int64_t want, int64_t *got, bool *eof, sbx_error **err)
{
	*got = 0;
	*eof = false;
	while (*got < want) {
		size_t piece = want - *got > (1 << 20) ? (1 << 20) : (size_t)(want - *got);
		ssize_t n = pread(fd, buf + *got, piece, offset + *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sbx_error_errno(err, errno, "read");
		if (n == 0) {
			*eof = true;
			break;
		}
		*got += n;
	}
	return 0;
}

/* The size a read reports: files of /proc say 0 and have content, and a
 * read that reached the size is at the end. */
static int64_t reported_size(int64_t st_size, int64_t offset, int64_t got, bool *eof)
{
	int64_t size = st_size;
	if (*eof && size < offset + got)
		size = offset + got;
	if (size > 0 && offset + got >= size)
		*eof = true;
	return size;
}

/* The whole reply line of a base64 or hex fs.read, into job->out: "data"
 * first, encoded as the file is read, then the members that depend on how
 * much was read. Neither encoding needs JSON escaping. On an error, whatever was
 * appended is dropped by the caller (sbx_conn_line_end, or the worker,
 * which sends nothing of it). */
static int read_encoded(struct fs_job *job, int fd, const struct stat *st, int64_t offset, int64_t want,
			enum fs_encoding enc, yajl_gen g, sbx_error **err)
{
	struct sbx_buf *out = job->out;
	yajl_gen_map_open(g);
	sbx_gen_key(g, "data");
	const unsigned char *head;
	size_t hl;
	yajl_gen_get_buf(g, &head, &hl);
	if (sbx_buf_reserve(out, hl + 2 + encoded_len(enc, (size_t)want) + 192) < 0 ||
	    sbx_buf_append(out, head, hl) < 0 || sbx_buf_append(out, ":\"", 2) < 0)
		goto nomem;
	int64_t got = 0;
	/* bytes read but not encoded yet: base64 takes whole groups of 3 */
	size_t carry = 0;
	size_t group = enc == ENC_HEX ? 1 : 3;
	bool eof = false;
	while (got < want) {
		size_t room = FS_READ_PIECE - carry;
		size_t piece = want - got > (int64_t)room ? room : (size_t)(want - got);
		ssize_t n = pread(fd, read_piece + carry, piece, offset + got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sbx_error_errno(err, errno, "read");
		if (n == 0) {
			eof = true;
			break;
		}
		got += n;
		size_t have = carry + (size_t)n;
		size_t whole = got < want ? have / group * group : have;
		if (sbx_buf_reserve(out, encoded_len(enc, have) + 192) < 0)
			goto nomem;
		out->len += encode_into(enc, read_piece, whole, out->data + out->len);
		carry = have - whole;
		memmove(read_piece, read_piece + whole, carry);
	}
	if (carry)
		out->len += encode_into(enc, read_piece, carry, out->data + out->len);
	int64_t size = reported_size(st->st_size, offset, got, &eof);
	char tail[192];
	int tl = snprintf(tail, sizeof(tail),
			  "\",\"encoding\":\"%s\",\"size\":%lld,\"offset\":%lld,\"length\":%lld,\"eof\":%s}}",
			  enc == ENC_HEX ? "hex" : "base64", (long long)size, (long long)offset, (long long)got, eof ? "true" : "false");
	if (sbx_buf_append(out, tail, (size_t)tl) < 0)
		goto nomem;
	job->wrote_line = true;
	return 0;
nomem:
	return sbx_error_errno(err, ENOMEM, "read");
}

/* An fs.read with "encoding": "binary": the reply line carries no data;
 * the bytes follow it raw, exactly "length" of them, then a newline. The
 * file is read straight into the connection's queue behind room kept for
 * the line, which is written once the length is known and padded with
 * spaces (JSON allows them) up to its newline. Nothing to encode, half the
 * bytes of hex on the socket, and nothing for the client to decode. */
#define FS_BINARY_HEAD_ROOM 200 /* the result's members at their widest */
static int read_binary(struct fs_job *job, int fd, const struct stat *st, int64_t offset, int64_t want, yajl_gen g,
		       sbx_error **err)
{
	struct sbx_buf *out = job->out;
	const unsigned char *head;
	size_t hl;
	yajl_gen_get_buf(g, &head, &hl); /* the envelope up to "result": */
	size_t room = hl + FS_BINARY_HEAD_ROOM;
	size_t at = out->len;
	if (sbx_buf_reserve(out, room + (size_t)want + 2) < 0)
		return sbx_error_errno(err, ENOMEM, "read");
	char *data = out->data + at + room;
	int64_t got = 0;
	bool eof = false;
	if (read_at(fd, data, offset, want, &got, &eof, err) < 0)
		return -1;
	int64_t size = reported_size(st->st_size, offset, got, &eof);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "encoding", "binary");
	sbx_gen_kv_int(g, "size", size);
	sbx_gen_kv_int(g, "offset", offset);
	sbx_gen_kv_int(g, "length", got);
	sbx_gen_kv_bool(g, "eof", eof);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &head, &hl);
	if (hl + 1 > room)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "fs.read: the reply line outgrew its room");
	memcpy(out->data + at, head, hl);
	memset(out->data + at + hl, ' ', room - 1 - hl);
	out->data[at + room - 1] = '\n';
	out->len = at + room + (size_t)got;
	job->wrote_line = true;
	return 0;
}

static int op_read(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	int64_t offset = 0, length = -1;
	enum fs_encoding enc = ENC_UTF8;
	if (param_path(fs, p, "path", true, &path, err) < 0 ||
	    sbx_json_int(p, "offset", false, 0, INT64_MAX, &offset, err) < 0 ||
	    sbx_json_int(p, "length", false, 0, FS_CHUNK_MAX, &length, err) < 0 ||
	    param_encoding(p, &enc, err) < 0)
		return -1;
	_cleanup_close_ int fd = sbx_fs_open_file(fs, path, O_RDONLY, false, false, 0, NULL, err);
	if (fd < 0)
		return -1;
	if (needs_worker(job, fd))
		return FS_NEEDS_WORKER;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "stat");
	if (job->client_fd >= 0) {
		/* The fast path: straight into the client's file or pipe. */
		if (offset && lseek(fd, offset, SEEK_SET) < 0)
			return sbx_error_errno(err, errno, "seek");
		int64_t n = sbx_fs_copy_fd(fd, job->client_fd, length, err);
		if (n < 0)
			return sbx_error_prefix(err, "copy to the passed descriptor");
		yajl_gen_map_open(g);
		sbx_gen_kv_int(g, "size", st.st_size);
		sbx_gen_kv_int(g, "length", n);
		sbx_gen_kv_bool(g, "eof", offset + n >= st.st_size);
		yajl_gen_map_close(g);
		return 0;
	}
	/* Files of /proc and /sys say size 0 and have content: read to EOF. */
	int64_t want = length >= 0 ? length : FS_CHUNK_MAX;
	if (st.st_size > 0 && want > (st.st_size > offset ? st.st_size - offset : 0))
		want = st.st_size > offset ? st.st_size - offset : 0;
	if (enc == ENC_BINARY)
		return read_binary(job, fd, &st, offset, want, g, err);
	if (enc != ENC_UTF8)
		return read_encoded(job, fd, &st, offset, want, enc, g, err);
	_cleanup_free_ char *buf = malloc((size_t)want + 1);
	if (!buf)
		return sbx_error_errno(err, ENOMEM, "read");
	int64_t got = 0;
	bool eof = false;
	if (read_at(fd, buf, offset, want, &got, &eof, err) < 0)
		return -1;
	int64_t size = reported_size(st.st_size, offset, got, &eof);
	size_t ol = 0;
	_cleanup_free_ char *text = sbx_utf8_sanitize(buf, (size_t)got, &ol);
	if (!text)
		return sbx_error_errno(err, ENOMEM, "encode");
	yajl_gen_map_open(g);
	sbx_gen_key(g, "data");
	sbx_gen_strn(g, text, ol);
	sbx_gen_kv_str(g, "encoding", "utf-8");
	sbx_gen_kv_int(g, "size", size);
	sbx_gen_kv_int(g, "offset", offset);
	sbx_gen_kv_int(g, "length", got);
	sbx_gen_kv_bool(g, "eof", eof);
	yajl_gen_map_close(g);
	return 0;
}

/* What a JSON string may hold unescaped: UTF-8 without control characters. */
static bool json_raw_text_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20)
			return false;
	return utf8_valid(s, len);
}

static int op_write(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	const char *data = NULL;
	int64_t offset = -1;
	enum fs_encoding enc = ENC_UTF8;
	bool append = false, create_parents = true, truncate = false;
	int mode = -1;
	if (param_path(fs, p, "path", true, &path, err) < 0 || sbx_json_string(p, "data", false, &data, err) < 0 ||
	    sbx_json_int(p, "offset", false, 0, INT64_MAX, &offset, err) < 0 ||
	    sbx_json_bool(p, "append", false, &append, err) < 0 ||
	    sbx_json_bool(p, "create_parents", false, &create_parents, err) < 0 ||
	    param_encoding(p, &enc, err) < 0 || param_mode(p, &mode, err) < 0)
		return -1;
	bool binary = enc != ENC_UTF8;
	const char *enc_name = enc == ENC_HEX ? "hex" : "base64";
	/* Raw bytes come after the request's line, and the connection hands
	 * them over as the bulk (see sandboxd-protocol(7)). */
	bool raw_bytes = enc == ENC_BINARY;
	if (raw_bytes && sbx_json_get(p, "data"))
		return sbx_error_param(err, "data", "with \"encoding\": \"binary\" the bytes follow the request's line; "
						    "'data' must not be given");
	truncate = offset < 0 && !append;
	int tr = sbx_json_bool(p, "truncate", false, &truncate, err);
	if (tr < 0)
		return -1;
	size_t data_len = data ? strlen(data) : 0;
	struct sbx_request *req = job->req;
	if (req->bulk_lost)
		return sbx_error_errno(err, ENOMEM, "data");
	if (req->bulk) {
		data = req->bulk;
		data_len = req->bulk_len;
	}
	if (raw_bytes && !req->bulk)
		return sbx_error_param(err, "encoding", "\"encoding\": \"binary\" is for bytes that follow the request's "
							"line, with 'length' their count");
	if (!data && job->client_fd < 0)
		return sbx_error_param(err, "data", "'data' is required (or pass a descriptor with \"fd\": true)");
	if (data && job->client_fd >= 0)
		return sbx_error_param(err, "data", "give 'data' or a descriptor, not both");
	if (append && offset >= 0)
		return sbx_error_param(err, "offset", "'offset' and 'append' exclude each other");
	/* Decoded and checked before anything is created: a bad chunk leaves
	 * no file. */
	_cleanup_free_ char *raw = NULL;
	const char *src = data;
	size_t len = data_len;
	if (raw_bytes) {
		/* as they came: nothing to decode or check */
	} else if (binary && req->bulk) {
		/* In place: the bulk bytes are this request's own. Once only: a
		 * worker that takes the job over inherits them decoded. */
		if (!job->bulk_decoded && decode_into(enc, req->bulk, data_len, req->bulk, &job->bulk_decoded_len) < 0)
			return sbx_error_param(err, "data", "'data' is not valid %s%s", enc_name,
					       enc == ENC_HEX ? " (an even number of digits 0-9, a-f)" : "");
		job->bulk_decoded = true;
		len = job->bulk_decoded_len;
	} else if (data && binary) {
		if (!(raw = malloc(data_len + 1))) /* either decodes shorter */
			return sbx_error_errno(err, ENOMEM, "data");
		if (decode_into(enc, data, data_len, raw, &len) < 0)
			return sbx_error_param(err, "data", "'data' is not valid %s%s", enc_name,
					       enc == ENC_HEX ? " (an even number of digits 0-9, a-f)" : "");
		src = raw;
	}
	/* The bulk string was not seen by the parser: as text, it must be what
	 * a JSON string may hold raw. */
	if (req->bulk && !binary && !json_raw_text_valid(data, data_len))
		return sbx_error_param(err, "data", "'data' is not valid UTF-8 JSON string content");
	bool created = false;
	_cleanup_close_ int fd = sbx_fs_open_file(fs, path, O_WRONLY | (append ? O_APPEND : 0), true, create_parents,
						  mode >= 0 ? (mode_t)mode : 0644, &created, err);
	if (fd < 0)
		return -1;
	if (needs_worker(job, fd))
		return FS_NEEDS_WORKER;
	if (!created && mode >= 0 && fchmod(fd, (mode_t)mode) < 0)
		return sbx_error_errno(err, errno, "chmod");
	/* A file just made is empty already. Truncating it anyway cost a
	 * whole upload's time again on ext4: a truncate to 0 marks the file as
	 * replaced (auto_da_alloc), and its close then allocates and starts
	 * writing out every block before the reply can go. */
	if (truncate && !(created && offset <= 0) && ftruncate(fd, offset > 0 ? offset : 0) < 0)
		return sbx_error_errno(err, errno, "truncate");
	if (offset >= 0 && lseek(fd, offset, SEEK_SET) < 0)
		return sbx_error_errno(err, errno, "seek");
	int64_t written = 0;
	if (job->client_fd >= 0) {
		int64_t length = -1;
		if (sbx_json_int(p, "length", false, 0, INT64_MAX, &length, err) < 0)
			return -1;
		written = sbx_fs_copy_fd(job->client_fd, fd, length, err);
		if (written < 0)
			return sbx_error_prefix(err, "copy from the passed descriptor");
	} else {
		if (sbx_write_all(fd, src, len) < 0)
			return sbx_error_errno(err, errno, "write");
		written = (int64_t)len;
	}
	(void)written;
	return info_of(fs, path, g, err);
}

static int op_mkdir(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	bool parents = false;
	int mode = 0755;
	if (param_path(fs, p, "path", true, &path, err) < 0 || sbx_json_bool(p, "parents", false, &parents, err) < 0 ||
	    param_mode(p, &mode, err) < 0)
		return -1;
	if (sbx_fs_mkdir(fs, path, (mode_t)mode, parents, parents, err) < 0)
		return -1;
	return info_of(fs, path, g, err);
}

static int op_remove(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	bool recursive = false;
	if (param_path(fs, p, "path", true, &path, err) < 0 ||
	    sbx_json_bool(p, "recursive", false, &recursive, err) < 0)
		return -1;
	if (sbx_fs_remove(fs, path, recursive, err) < 0)
		return -1;
	yajl_gen_map_open(g);
	gen_path(g, "path", path);
	yajl_gen_map_close(g);
	return 0;
}

static int op_move(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *src = NULL, *dst = NULL, *final = NULL;
	bool overwrite = false;
	if (param_path(fs, p, "src", true, &src, err) < 0 || param_path(fs, p, "dst", true, &dst, err) < 0 ||
	    sbx_json_bool(p, "overwrite", false, &overwrite, err) < 0)
		return -1;
	if (sbx_fs_move(fs, src, dst, overwrite, &final, err) < 0)
		return -1;
	return info_of(fs, final, g, err);
}

static int param_id(struct sbx_fs *fs, yajl_val p, const char *key, int64_t *out, sbx_error **err)
{
	yajl_val v = sbx_json_get(p, key);
	*out = -1;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (YAJL_IS_INTEGER(v)) {
		*out = YAJL_GET_INTEGER(v);
		if (*out < 0 || *out > 0xfffffffeLL)
			return sbx_error_param(err, key, "'%s' is not a valid id", key);
		return 0;
	}
	if (!YAJL_IS_STRING(v) || !*YAJL_GET_STRING(v))
		return sbx_error_param(err, key, "'%s' must be a name or a numeric id", key);
	const char *s = YAJL_GET_STRING(v);
	if (!strcmp(key, "owner")) {
		if (strchr(s, ':'))
			return sbx_error_param(err, key, "give the group in 'group'");
		struct sbx_user u;
		if (sbx_user_resolve(fs->rootfd, s, &u, err) < 0)
			return -1;
		*out = u.uid;
	} else {
		gid_t gid;
		if (sbx_group_resolve(fs->rootfd, s, &gid, err) < 0)
			return -1;
		*out = gid;
	}
	return 0;
}

static int op_chmod(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	int mode = -1;
	int64_t uid = -1, gid = -1;
	if (param_path(fs, p, "path", true, &path, err) < 0 || param_mode(p, &mode, err) < 0 ||
	    param_id(fs, p, "owner", &uid, err) < 0 || param_id(fs, p, "group", &gid, err) < 0)
		return -1;
	if (mode < 0 && uid < 0 && gid < 0)
		return sbx_error_param(err, "mode", "give at least one of 'mode', 'owner' and 'group'");
	if (sbx_fs_chmod(fs, path, mode, uid, gid, err) < 0)
		return -1;
	return info_of(fs, path, g, err);
}

/* Read a regular file the walk found, by its name in the walked directory
 * (never a path again), up to max bytes. 1: read; 0: too big; -1: error. */
static int read_small(int dirfd, const char *name, const struct stat *want, int64_t max, char **out, size_t *len)
{
	if (want->st_size > max)
		return 0;
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != want->st_ino || st.st_dev != want->st_dev)
		return -1;
	if (st.st_size > max)
		return 0;
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -1;
	ssize_t n = sbx_read_all(fd, buf, (size_t)st.st_size);
	if (n < 0) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = (size_t)n;
	return 1;
}

struct find_ctx {
	struct sbx_fs *fs;
	yajl_gen g;
	struct sbx_fs_pattern *pat;
	const char *glob;
	int64_t max_results, max_size, count, scanned;
	bool truncated;
	struct sbx_buf skipped; /* generated later: {file, reason} objects */
	yajl_gen sk;
	int64_t nskipped;
};

static void find_skip(struct find_ctx *fc, const char *path, const char *reason, int64_t size)
{
	if (fc->nskipped++ >= 1000)
		return;
	yajl_gen_map_open(fc->sk);
	gen_path(fc->sk, "file", path);
	sbx_gen_kv_str(fc->sk, "reason", reason);
	sbx_gen_kv_int(fc->sk, "size", size);
	yajl_gen_map_close(fc->sk);
}

static int find_visit(void *ctx, const char *path, int dirfd, const char *name, const struct stat *st)
{
	struct find_ctx *fc = ctx;
	if (!S_ISREG(st->st_mode))
		return 0;
	if (fc->glob && fnmatch(fc->glob, name, 0) != 0)
		return 0;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_small(dirfd, name, st, fc->max_size, &data, &len);
	if (r == 0) {
		find_skip(fc, path, "too_large", st->st_size);
		return 0;
	}
	if (r < 0) {
		find_skip(fc, path, "unreadable", st->st_size);
		return 0;
	}
	fc->scanned++;
	if (sbx_fs_is_binary(data, len)) {
		find_skip(fc, path, "binary", st->st_size);
		return 0;
	}
	int64_t lineno = 0;
	char *line = data;
	while (line < data + len) {
		lineno++;
		char *nl = memchr(line, '\n', (size_t)(data + len - line));
		if (nl)
			*nl = '\0';
		if (sbx_fs_pattern_match(fc->pat, line)) {
			if (fc->count >= fc->max_results) {
				fc->truncated = true;
				return -2;
			}
			yajl_gen_map_open(fc->g);
			gen_path(fc->g, "file", path);
			sbx_gen_kv_int(fc->g, "line", lineno);
			size_t ll = strlen(line);
			size_t ol = 0;
			_cleanup_free_ char *shown = sbx_utf8_sanitize(line, ll > FS_LINE_SHOWN ? FS_LINE_SHOWN : ll, &ol);
			sbx_gen_key(fc->g, "content");
			sbx_gen_strn(fc->g, shown ? shown : "", shown ? ol : 0);
			yajl_gen_map_close(fc->g);
			fc->count++;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return 0;
}

static int op_find(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	const char *pattern = NULL, *glob = NULL;
	bool literal = false;
	struct find_ctx fc = { .fs = fs, .g = g, .max_results = 1000, .max_size = FS_FIND_FILE_MAX };
	if (param_path(fs, p, "path", false, &path, err) < 0 || sbx_json_string(p, "pattern", true, &pattern, err) < 0 ||
	    sbx_json_string(p, "glob", false, &glob, err) < 0 || sbx_json_bool(p, "literal", false, &literal, err) < 0 ||
	    sbx_json_int(p, "max_results", false, 1, FS_RESULTS_MAX, &fc.max_results, err) < 0 ||
	    sbx_json_int(p, "max_file_size", false, 0, (int64_t)1 << 30, &fc.max_size, err) < 0)
		return -1;
	if (!path && !(path = strdup(fs->workdir)))
		return sbx_error_errno(err, ENOMEM, "find");
	if (sbx_fs_pattern_compile(pattern, literal, &fc.pat, err) < 0)
		return -1;
	fc.glob = glob;
	_cleanup_gen_ yajl_gen sk = sbx_gen_new();
	fc.sk = sk;
	if (!sk) {
		sbx_fs_pattern_free(fc.pat);
		return sbx_error_errno(err, ENOMEM, "find");
	}
	yajl_gen_array_open(sk);
	yajl_gen_map_open(g);
	sbx_gen_key(g, "matches");
	yajl_gen_array_open(g);
	/* A single file is searched too. */
	struct stat st;
	int r;
	_cleanup_close_ int pfd = sbx_fs_open(fs, path, O_PATH, err);
	if (pfd < 0 || fstat(pfd, &st) < 0) {
		sbx_fs_pattern_free(fc.pat);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		r = sbx_fs_walk(fs, path, 0, find_visit, &fc, err);
	} else {
		const char *name = NULL;
		_cleanup_close_ int parent = sbx_fs_open_parent(fs, path, &name, err);
		r = parent < 0 ? -1 : find_visit(&fc, path, parent, name, &st);
		if (r < 0 && parent >= 0 && !fc.truncated)
			r = 0;
	}
	sbx_fs_pattern_free(fc.pat);
	if (r < 0 && !fc.truncated)
		return -1;
	yajl_gen_array_close(g);
	yajl_gen_array_close(sk);
	sbx_gen_kv_bool(g, "truncated", fc.truncated);
	sbx_gen_kv_int(g, "files_scanned", fc.scanned);
	sbx_gen_kv_int(g, "max_file_size", fc.max_size);
	_cleanup_json_ yajl_val skv = NULL;
	const unsigned char *skb;
	size_t skl;
	yajl_gen_get_buf(sk, &skb, &skl);
	skv = sbx_json_parse((const char *)skb, NULL);
	sbx_gen_key(g, "skipped");
	sbx_gen_value(g, skv);
	sbx_gen_kv_int(g, "skipped_count", fc.nskipped);
	yajl_gen_map_close(g);
	return 0;
}

struct search_ctx {
	yajl_gen g;
	const char *glob;
	bool by_path;
	size_t base_len;
	int64_t max, count;
	bool truncated;
};

static int search_visit(void *ctx, const char *path, int dirfd, const char *name, const struct stat *st)
{
	struct search_ctx *sc = ctx;
	(void)dirfd;
	(void)st;
	const char *subject = name;
	if (sc->by_path) {
		subject = path + sc->base_len;
		while (*subject == '/')
			subject++;
	}
	if (fnmatch(sc->glob, subject, sc->by_path ? FNM_PATHNAME : 0) != 0)
		return 0;
	if (sc->count >= sc->max) {
		sc->truncated = true;
		return -2;
	}
	gen_path(sc->g, NULL, path);
	sc->count++;
	return 0;
}

static int op_search(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	_cleanup_free_ char *path = NULL;
	struct search_ctx sc = { .g = g, .max = 1000 };
	if (param_path(fs, p, "path", false, &path, err) < 0 || sbx_json_string(p, "glob", true, &sc.glob, err) < 0 ||
	    sbx_json_int(p, "max_results", false, 1, FS_RESULTS_MAX, &sc.max, err) < 0)
		return -1;
	if (!*sc.glob)
		return sbx_error_param(err, "glob", "'glob' must not be empty");
	if (!path && !(path = strdup(fs->workdir)))
		return sbx_error_errno(err, ENOMEM, "search");
	sc.by_path = strchr(sc.glob, '/') != NULL;
	sc.base_len = strlen(path);
	yajl_gen_map_open(g);
	sbx_gen_key(g, "files");
	yajl_gen_array_open(g);
	if (sbx_fs_walk(fs, path, 0, search_visit, &sc, err) < 0 && !sc.truncated)
		return -1;
	yajl_gen_array_close(g);
	sbx_gen_kv_bool(g, "truncated", sc.truncated);
	yajl_gen_map_close(g);
	return 0;
}

static int replace_one(struct sbx_fs *fs, const char *path, struct sbx_fs_pattern *pat, const char *repl,
		       int64_t *count, sbx_error **err)
{
	_cleanup_close_ int fd = sbx_fs_open_file(fs, path, O_RDWR, false, false, 0, NULL, err);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "stat");
	if (st.st_size > FS_REPLACE_FILE_MAX)
		return sbx_error_set(err, SBX_ERR_LIMIT, "file is larger than %lld bytes", (long long)FS_REPLACE_FILE_MAX);
	_cleanup_free_ char *data = malloc((size_t)st.st_size + 1);
	if (!data)
		return sbx_error_errno(err, ENOMEM, "read");
	ssize_t n = sbx_read_all(fd, data, (size_t)st.st_size);
	if (n < 0)
		return sbx_error_errno(err, errno, "read");
	data[n] = '\0';
	if (memchr(data, '\0', (size_t)n))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "binary file; not changed");
	_cleanup_free_ char *out = NULL;
	size_t outlen = 0;
	int64_t c = sbx_fs_replace_buf(pat, data, (size_t)n, repl, &out, &outlen);
	if (c < 0)
		return sbx_error_errno(err, ENOMEM, "replace");
	if (c > 0) {
		if (ftruncate(fd, 0) < 0 || pwrite(fd, out, outlen, 0) != (ssize_t)outlen)
			return sbx_error_errno(err, errno, "write");
	}
	*count = c;
	return 0;
}

static int op_replace(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	yajl_val p = job->req->params;
	const char *pattern = NULL, *repl = NULL;
	bool literal = false;
	yajl_val files = NULL;
	if (sbx_json_array(p, "files", true, &files, err) < 0 || sbx_json_string(p, "pattern", true, &pattern, err) < 0 ||
	    sbx_json_string(p, "new_value", true, &repl, err) < 0 || sbx_json_bool(p, "literal", false, &literal, err) < 0)
		return -1;
	size_t n = YAJL_GET_ARRAY(files)->len;
	if (n == 0 || n > 10000)
		return sbx_error_param(err, "files", "'files' must list 1 to 10000 paths");
	char **paths = calloc(n, sizeof(char *));
	if (!paths)
		return sbx_error_errno(err, ENOMEM, "replace");
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		yajl_val v = YAJL_GET_ARRAY(files)->values[i];
		if (!YAJL_IS_STRING(v))
			r = sbx_error_param(err, "files", "'files' must be an array of paths");
		else
			r = sbx_fs_normalize(fs, YAJL_GET_STRING(v), "files", &paths[i], err);
	}
	struct sbx_fs_pattern *pat = NULL;
	if (r == 0)
		r = sbx_fs_pattern_compile(pattern, literal, &pat, err);
	if (r == 0) {
		yajl_gen_map_open(g);
		sbx_gen_key(g, "results");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < n; i++) {
			int64_t count = 0;
			sbx_error *fe = NULL;
			yajl_gen_map_open(g);
			gen_path(g, "file", paths[i]);
			if (replace_one(fs, paths[i], pat, repl, &count, &fe) < 0) {
				sbx_gen_kv_int(g, "replaced", 0);
				sbx_gen_kv_str(g, "error", fe && fe->msg ? fe->msg : "failed");
				sbx_gen_kv_int(g, "code", fe ? fe->code : SBX_ERR_INTERNAL);
			} else {
				sbx_gen_kv_int(g, "replaced", count);
			}
			sbx_error_free(fe);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	sbx_fs_pattern_free(pat);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return r;
}

static int gen_archive_stats(yajl_gen g, const struct sbx_fs_archive_stats *st)
{
	yajl_gen_map_open(g);
	sbx_gen_kv_int(g, "entries", st->entries);
	sbx_gen_kv_int(g, "skipped", st->skipped);
	sbx_gen_kv_int(g, "bytes", st->bytes);
	yajl_gen_map_close(g);
	return 0;
}

static int op_archive(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	_cleanup_free_ char *path = NULL;
	if (param_path(fs, job->req->params, "path", true, &path, err) < 0)
		return -1;
	if (job->client_fd < 0)
		return sbx_error_param(err, "fd", "pass a writable descriptor for the tar stream with \"fd\": true");
	struct sbx_fs_archive_stats st;
	if (sbx_fs_archive(fs, path, job->client_fd, &st, err) < 0)
		return -1;
	return gen_archive_stats(g, &st);
}

static int op_extract(struct fs_job *job, struct sbx_fs *fs, yajl_gen g, sbx_error **err)
{
	_cleanup_free_ char *path = NULL;
	if (param_path(fs, job->req->params, "path", true, &path, err) < 0)
		return -1;
	if (job->client_fd < 0)
		return sbx_error_param(err, "fd", "pass a readable descriptor with the tar stream with \"fd\": true");
	struct sbx_fs_archive_stats st;
	if (sbx_fs_extract(fs, path, job->client_fd, &st, err) < 0)
		return -1;
	return gen_archive_stats(g, &st);
}

/* ---- handlers ---- */

void rpc_fs_archive(struct sbx_request *req)
{
	fs_start(req, op_archive, true);
}

void rpc_fs_extract(struct sbx_request *req)
{
	fs_start(req, op_extract, true);
}

void rpc_fs_list(struct sbx_request *req)
{
	fs_start(req, op_list, false);
}

void rpc_fs_stat(struct sbx_request *req)
{
	fs_start(req, op_stat, false);
}

void rpc_fs_read(struct sbx_request *req)
{
	fs_start(req, op_read, true);
}

void rpc_fs_write(struct sbx_request *req)
{
	fs_start(req, op_write, true);
}

void rpc_fs_mkdir(struct sbx_request *req)
{
	fs_start(req, op_mkdir, false);
}

void rpc_fs_remove(struct sbx_request *req)
{
	fs_start(req, op_remove, false);
}

void rpc_fs_move(struct sbx_request *req)
{
	fs_start(req, op_move, false);
}

void rpc_fs_chmod(struct sbx_request *req)
{
	fs_start(req, op_chmod, false);
}

void rpc_fs_find(struct sbx_request *req)
{
	fs_start(req, op_find, false);
}

void rpc_fs_search(struct sbx_request *req)
{
	fs_start(req, op_search, false);
}

void rpc_fs_replace(struct sbx_request *req)
{
	fs_start(req, op_replace, false);
}
