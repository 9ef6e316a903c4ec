/* Tar streams of in-root trees. Reading never follows a symlink and opens
 * only what fstat says is a regular file, by name below its walked parent;
 * writing goes through fsops, so a tar entry "../../etc/x" or one below a
 * symlink the tar planted itself ends inside the target or is skipped. */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsarchive.h"
#include "util.h"

#define IO_BUF (1 << 20)

struct ar_ctx {
	const struct sbx_fs *fs;
	struct archive *out;
	size_t base_len;
	struct sbx_fs_archive_stats *stats;
	char *buf;
	sbx_error **err;
};

static int ar_fail(struct ar_ctx *c, const char *what)
{
	return sbx_error_set(c->err, SBX_ERR_INTERNAL, "%s: %s", what, archive_error_string(c->out));
}

static int add_entry(struct ar_ctx *c, const char *rel, int dirfd, const char *name, const struct stat *st)
{
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode)) {
		c->stats->skipped++;
		return 0;
	}
	_cleanup_close_ int fd = -1;
	struct stat fst = *st;
	if (S_ISREG(st->st_mode)) {
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st->st_ino ||
		    fst.st_dev != st->st_dev) {
			c->stats->skipped++; /* swapped or gone meanwhile */
			return 0;
		}
	}
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return sbx_error_errno(c->err, ENOMEM, "archive");
	archive_entry_copy_pathname(e, rel);
	archive_entry_set_mode(e, fst.st_mode);
	archive_entry_set_uid(e, sbx_fs_id_inside(c->fs, fst.st_uid));
	archive_entry_set_gid(e, sbx_fs_id_inside(c->fs, fst.st_gid));
	archive_entry_set_mtime(e, fst.st_mtim.tv_sec, fst.st_mtim.tv_nsec);
	archive_entry_set_atime(e, fst.st_atim.tv_sec, fst.st_atim.tv_nsec);
	archive_entry_set_size(e, S_ISREG(fst.st_mode) ? fst.st_size : 0);
	if (S_ISLNK(fst.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
		if (n < 0) {
			archive_entry_free(e);
			c->stats->skipped++;
			return 0;
		}
		target[n] = '\0';
		archive_entry_copy_symlink(e, target);
	}
	int r = archive_write_header(c->out, e);
	archive_entry_free(e);
	if (r < ARCHIVE_WARN)
		return ar_fail(c, "write header");
	if (fd >= 0) {
		/* Exactly the size in the header, even if the file changes. */
		int64_t left = fst.st_size;
		while (left > 0) {
			ssize_t n = read(fd, c->buf, left < IO_BUF ? (size_t)left : IO_BUF);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				memset(c->buf, 0, IO_BUF);
				n = left < IO_BUF ? (ssize_t)left : IO_BUF;
			}
			if (archive_write_data(c->out, c->buf, (size_t)n) < 0)
				return ar_fail(c, "write data");
			left -= n;
			c->stats->bytes += n;
		}
	}
	c->stats->entries++;
	return 0;
}

static int ar_visit(void *ctx, const char *path, int dirfd, const char *name, const struct stat *st)
{
	struct ar_ctx *c = ctx;
	const char *rel = path + c->base_len;
	while (*rel == '/')
		rel++;
	return add_entry(c, rel, dirfd, name, st);
}

int sbx_fs_archive(const struct sbx_fs *fs, const char *abspath, int out_fd, struct sbx_fs_archive_stats *stats,
		   sbx_error **err)
{
	memset(stats, 0, sizeof(*stats));
	struct ar_ctx c = { .fs = fs, .stats = stats, .err = err, .base_len = strlen(abspath) };
	_cleanup_close_ int pfd = sbx_fs_open(fs, abspath, O_PATH, err);
	if (pfd < 0)
		return -1;
	struct stat st;
	if (fstat(pfd, &st) < 0)
		return sbx_error_errno(err, errno, "stat");
	c.out = archive_write_new();
	c.buf = malloc(IO_BUF);
	int r = -1;
	if (!c.out || !c.buf) {
		sbx_error_errno(err, ENOMEM, "archive");
		goto out;
	}
	archive_write_set_format_pax_restricted(c.out);
	archive_write_set_bytes_per_block(c.out, 65536);
	if (archive_write_open_fd(c.out, out_fd) != ARCHIVE_OK) {
		ar_fail(&c, "open archive");
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = sbx_fs_walk(fs, abspath, 0, ar_visit, &c, err);
	} else {
		const char *name = NULL;
		_cleanup_close_ int parent = sbx_fs_open_parent(fs, abspath, &name, err);
		struct stat lst;
		if (parent < 0)
			goto out;
		if (fstatat(parent, name, &lst, 0) < 0) {
			sbx_error_errno(err, errno, "stat");
			goto out;
		}
		r = add_entry(&c, name, parent, name, &lst);
	}
	if (r == 0 && archive_write_close(c.out) != ARCHIVE_OK)
		r = ar_fail(&c, "close archive");
out:
	if (c.out)
		archive_write_free(c.out);
	free(c.buf);
	return r;
}

struct dir_time {
	char *path;
	struct timespec t[2];
};

/* The in-root path of a tar entry name below base, or NULL when it would
 * leave base. */
static char *entry_path(const struct sbx_fs *fs, const char *base, const char *name)
{
	_cleanup_free_ char *joined = NULL;
	if (asprintf(&joined, "%s/%s", base, name) < 0)
		return NULL;
	char *norm = NULL;
	if (sbx_fs_normalize(fs, joined, "path", &norm, NULL) < 0)
		return NULL;
	size_t bl = strlen(base);
	if (strcmp(base, "/") && (strncmp(norm, base, bl) || (norm[bl] != '/' && norm[bl] != '\0'))) {
		free(norm);
		return NULL;
	}
	return norm;
}

static int set_times_at(const struct sbx_fs *fs, const char *path, const struct timespec t[2])
{
	if (!strcmp(path, "/"))
		return 0;
	const char *name = NULL;
	_cleanup_close_ int parent = sbx_fs_open_parent(fs, path, &name, NULL);
	if (parent < 0)
		return -1;
	return utimensat(parent, name, t, AT_SYMLINK_NOFOLLOW);
}

static int extract_file(const struct sbx_fs *fs, struct archive *in, const char *path, mode_t mode, off_t total,
			const struct timespec t[2], struct sbx_fs_archive_stats *stats, sbx_error **err)
{
	_cleanup_close_ int fd = sbx_fs_open_file(fs, path, O_WRONLY, true, true, mode, NULL, err);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, 0) < 0 || fchmod(fd, mode) < 0)
		return sbx_error_errno(err, errno, "extract");
	const void *buf;
	size_t size;
	la_int64_t offset;
	int r;
	while ((r = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK) {
		const char *p = buf;
		size_t done = 0;
		while (done < size) {
			ssize_t n = pwrite(fd, p + done, size - done, (off_t)offset + (off_t)done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return sbx_error_errno(err, errno, "write");
			done += (size_t)n;
		}
		stats->bytes += (int64_t)size;
	}
	if (r != ARCHIVE_EOF)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read archive: %s", archive_error_string(in));
	/* A sparse tail has no data block: make the size right. */
	if (ftruncate(fd, total) < 0)
		return sbx_error_errno(err, errno, "extract");
	if (futimens(fd, t) < 0)
		return sbx_error_errno(err, errno, "set times");
	return 0;
}

static int extract_symlink(const struct sbx_fs *fs, const char *path, const char *target, const struct timespec t[2],
			   sbx_error **err)
{
	const char *name = NULL;
	_cleanup_close_ int parent = sbx_fs_open_parent(fs, path, &name, err);
	if (parent < 0)
		return -1;
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		unlinkat(parent, name, 0);
	if (symlinkat(target, parent, name) < 0)
		return sbx_error_errno(err, errno, "symlink");
	if ((fs->uid || fs->gid) && fchownat(parent, name, fs->uid, fs->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sbx_error_errno(err, errno, "chown symlink");
	utimensat(parent, name, t, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int extract_hardlink(const struct sbx_fs *fs, const char *base, const char *path, const char *link,
			    sbx_error **err)
{
	_cleanup_free_ char *src = entry_path(fs, base, link);
	if (!src)
		return 1;
	const char *sn = NULL, *dn = NULL;
	_cleanup_close_ int sp = sbx_fs_open_parent(fs, src, &sn, err);
	if (sp < 0)
		return -1;
	_cleanup_close_ int dp = sbx_fs_open_parent(fs, path, &dn, err);
	if (dp < 0)
		return -1;
	struct stat st;
	if (fstatat(dp, dn, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		unlinkat(dp, dn, 0);
	if (linkat(sp, sn, dp, dn, 0) < 0)
		return sbx_error_errno(err, errno, "hard link");
	return 0;
}

int sbx_fs_extract(const struct sbx_fs *fs, const char *abspath, int in_fd, struct sbx_fs_archive_stats *stats,
		   sbx_error **err)
{
	memset(stats, 0, sizeof(*stats));
	if (sbx_fs_mkdir(fs, abspath, 0755, true, true, err) < 0)
		return -1;
	struct archive *in = archive_read_new();
	if (!in)
		return sbx_error_errno(err, ENOMEM, "archive");
	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	archive_read_support_format_gnutar(in);
	struct dir_time *dirs = NULL;
	size_t ndirs = 0, capdirs = 0;
	int rc = 0;
	if (archive_read_open_fd(in, in_fd, 1 << 16) != ARCHIVE_OK) {
		rc = sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "open archive: %s", archive_error_string(in));
		goto out;
	}
	struct archive_entry *e;
	int r;
	while (rc == 0 && (r = archive_read_next_header(in, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			rc = sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read archive: %s", archive_error_string(in));
			break;
		}
		const char *name = archive_entry_pathname(e);
		_cleanup_free_ char *path = name && *name ? entry_path(fs, abspath, name) : NULL;
		if (!path) {
			stats->skipped++;
			continue;
		}
		mode_t mode = archive_entry_perm(e) & 07777;
		struct timespec t[2] = {
			{ .tv_sec = archive_entry_atime(e), .tv_nsec = archive_entry_atime_nsec(e) },
			{ .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
		};
		if (!archive_entry_atime_is_set(e))
			t[0] = t[1];
		const char *hl = archive_entry_hardlink(e);
		switch (archive_entry_filetype(e)) {
		case AE_IFDIR:
			if (sbx_fs_mkdir(fs, path, mode | 0700, true, true, err) < 0 ||
			    sbx_fs_chmod(fs, path, (int)mode, -1, -1, err) < 0) {
				rc = -1;
				break;
			}
			if (ndirs == capdirs) {
				capdirs = capdirs ? capdirs * 2 : 64;
				struct dir_time *nd = realloc(dirs, capdirs * sizeof(*dirs));
				if (!nd) {
					rc = sbx_error_errno(err, ENOMEM, "extract");
					break;
				}
				dirs = nd;
			}
			dirs[ndirs].path = sbx_take_ptr(&path);
			memcpy(dirs[ndirs].t, t, sizeof(t));
			ndirs++;
			stats->entries++;
			break;
		case AE_IFREG:
			if (hl) {
				int h = extract_hardlink(fs, abspath, path, hl, err);
				if (h < 0)
					rc = -1;
				else if (h > 0)
					stats->skipped++;
				else
					stats->entries++;
				break;
			}
			if (extract_file(fs, in, path, mode, (off_t)archive_entry_size(e), t, stats, err) < 0)
				rc = -1;
			else
				stats->entries++;
			break;
		case AE_IFLNK:
			if (extract_symlink(fs, path, archive_entry_symlink(e) ? archive_entry_symlink(e) : "", t, err) < 0)
				rc = -1;
			else
				stats->entries++;
			break;
		default:
			stats->skipped++;
			break;
		}
	}
	/* Directory times last: what was made in them changed them. */
	for (size_t i = ndirs; rc == 0 && i > 0; i--)
		set_times_at(fs, dirs[i - 1].path, dirs[i - 1].t);
out:
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i].path);
	free(dirs);
	archive_read_free(in);
	return rc;
}
