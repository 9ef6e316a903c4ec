/* Layer store. A layer blob is hostile input: it is read through two
 * libarchive readers (the outer one only decompresses, hashing the bytes
 * as read; the inner one parses the tar from the decompressed bytes,
 * hashing them too), and every entry is created relative to a directory
 * fd reached one component at a time with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), so no name, symlink or hard link of the layer can
 * reach outside its tree. Never used with a path string built from an
 * entry name. */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "json.h"
#include "layers.h"
#include "syscalls.h"
#include "util.h"

#define IO_BUF (1 << 17)
#define STEP_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
#define OPAQUE_XATTR "trusted.overlay.opaque"
#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_NAME ".wh..wh..opq"
#define LAYER_JSON_MAX (64 * 1024)

struct sbx_layer_store {
	int dirfd;
	char *path;
};

/* ---- unpacking one tar stream into a tree ---- */

struct dir_time {
	char *path;
	struct timespec times[2];
};

struct unpack {
	int root; /* O_PATH fd of the tree */
	struct archive *ar;
	/* The parent directory of the last entry, reused while entries stay in it. */
	char *cached_parent;
	int cached_fd;
	struct dir_time *dirs;
	size_t n_dirs, cap_dirs;
	int64_t bytes, entries;
	char *buf;
	sbx_error **err;
};

static void unpack_forget_parent(struct unpack *u)
{
	free(u->cached_parent);
	u->cached_parent = NULL;
	if (u->cached_fd >= 0)
		close(u->cached_fd);
	u->cached_fd = -1;
}

static void unpack_free(struct unpack *u)
{
	unpack_forget_parent(u);
	for (size_t i = 0; i < u->n_dirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
	free(u->buf);
}

/* Entry names go into messages that become JSON: keep them printable. */
static char *shown(const char *name)
{
	return sbx_utf8_sanitize(name, strnlen(name, 512), NULL);
}

static int entry_fail(struct unpack *u, int code, const char *name, const char *why)
{
	_cleanup_free_ char *n = shown(name);
	return sbx_error_set(u->err, code, "entry '%s': %s", n ? n : "?", why);
}

static int entry_errno(struct unpack *u, int e, const char *name, const char *what)
{
	_cleanup_free_ char *n = shown(name);
	if (e == ELOOP)
		return sbx_error_set(u->err, SBX_ERR_DENIED, "entry '%s': %s: the path goes through a symlink",
				     n ? n : "?", what);
	if (e == EXDEV)
		return sbx_error_set(u->err, SBX_ERR_DENIED, "entry '%s': %s: the path leaves the layer", n ? n : "?",
				     what);
	return sbx_error_errno(u->err, e, "entry '%s': %s", n ? n : "?", what);
}

/* "./a//b/" -> "a/b"; "/a" -> "a"; "" for the root. -1 on a ".." component
 * or a name too long. */
static int normalize_name(const char *in, char out[PATH_MAX])
{
	size_t len = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 1 && p[0] == '.') {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (len + n + 2 >= PATH_MAX)
			return -1;
		if (len)
			out[len++] = '/';
		memcpy(out + len, p, n);
		len += n;
		p += n;
	}
	out[len] = '\0';
	return 0;
}

static int open_step(int dirfd, const char *name, int flags)
{
	int fd;
	do {
		fd = sbx_openat2(dirfd, name, (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW), 0, STEP_RESOLVE);
	} while (fd < 0 && errno == EAGAIN);
	return fd;
}

/* An O_PATH fd of directory rel ("" is the root), creating missing
 * directories (0755, root) when create. Never follows a symlink. */
static int open_dir(struct unpack *u, const char *rel, bool create, const char *entry)
{
	if (!*rel)
		return fcntl(u->root, F_DUPFD_CLOEXEC, 3);
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", rel);
	_cleanup_close_ int cur = fcntl(u->root, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return sbx_error_errno(u->err, errno, "dup");
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int next = open_step(cur, c, O_PATH | O_DIRECTORY);
		if (next < 0 && errno == ENOENT && create) {
			/* 0755 whatever the umask: the tar did not say otherwise. */
			if ((mkdirat(cur, c, 0755) < 0 && errno != EEXIST) || fchmodat(cur, c, 0755, 0) < 0)
				return entry_errno(u, errno, entry, "create parent directory");
			next = open_step(cur, c, O_PATH | O_DIRECTORY);
		}
		if (next < 0) {
			struct stat st;
			if ((errno == ENOTDIR || errno == ELOOP) && fstatat(cur, c, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				return entry_fail(u, SBX_ERR_DENIED, entry,
						  "the path goes through a symlink (written below the symlink's target)");
			if (errno == ENOTDIR)
				return entry_fail(u, SBX_ERR_DENIED, entry,
						  "a parent of it is not a directory in the layer");
			if (errno == ENOENT)
				return entry_fail(u, SBX_ERR_NOT_FOUND, entry, "a parent of it is not in the layer");
			return entry_errno(u, errno, entry, "open parent directory");
		}
		close(cur);
		cur = next;
	}
	return sbx_take_fd(&cur);
}

/* The parent of rel (borrowed fd: do not close) and rel's last name. */
static int parent_of(struct unpack *u, const char *rel, const char **base, bool create)
{
	const char *slash = strrchr(rel, '/');
	size_t plen = slash ? (size_t)(slash - rel) : 0;
	*base = slash ? slash + 1 : rel;
	if (u->cached_fd >= 0 && strlen(u->cached_parent) == plen && !strncmp(u->cached_parent, rel, plen))
		return u->cached_fd;
	unpack_forget_parent(u);
	char parent[PATH_MAX];
	memcpy(parent, rel, plen);
	parent[plen] = '\0';
	int fd = open_dir(u, parent, create, rel);
	if (fd < 0)
		return -1;
	u->cached_parent = strdup(parent);
	if (!u->cached_parent) {
		close(fd);
		return sbx_error_errno(u->err, ENOMEM, "unpack");
	}
	u->cached_fd = fd;
	return fd;
}

/* Make room for a new entry at pfd/name; an existing directory is kept
 * when keep_dir (a directory entry over a directory only updates it). */
static int clear_name(struct unpack *u, int pfd, const char *name, bool keep_dir, bool *is_dir, const char *entry)
{
	struct stat st;
	*is_dir = false;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return entry_errno(u, errno, entry, "stat");
	}
	if (S_ISDIR(st.st_mode) && keep_dir) {
		*is_dir = true;
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		/* pfd (the cached parent) is not below name: it stays valid. */
		if (sbx_rm_rf_at(pfd, name, u->err) < 0)
			return sbx_error_prefix(u->err, "entry '%s'", entry);
		return 0;
	}
	if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
		return entry_errno(u, errno, entry, "replace");
	return 0;
}

static bool xattr_allowed(const char *name)
{
	if (!strncmp(name, "user.", 5))
		return strncmp(name, "user.overlay.", 13) != 0;
	return !strcmp(name, "security.capability");
}

/* Owner, then mode (chown clears set-id bits), then attributes, on an fd
 * of the new entry (not a symlink). */
static int apply_meta(struct unpack *u, int fd, struct archive_entry *e, const char *entry)
{
	if (fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
		return entry_errno(u, errno, entry, "chown");
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return entry_errno(u, errno, entry, "chmod");
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!name || !xattr_allowed(name))
			continue;
		if (fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP)
			return entry_errno(u, errno, entry, "set extended attribute");
	}
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
}

static int remember_dir_time(struct unpack *u, const char *rel, struct archive_entry *e)
{
	if (u->n_dirs == u->cap_dirs) {
		size_t cap = u->cap_dirs ? u->cap_dirs * 2 : 64;
		struct dir_time *d = realloc(u->dirs, cap * sizeof(*d));
		if (!d)
			return sbx_error_errno(u->err, ENOMEM, "unpack");
		u->dirs = d;
		u->cap_dirs = cap;
	}
	struct dir_time *d = &u->dirs[u->n_dirs];
	d->path = strdup(rel);
	if (!d->path)
		return sbx_error_errno(u->err, ENOMEM, "unpack");
	entry_times(e, d->times);
	u->n_dirs++;
	return 0;
}

static int write_data(struct unpack *u, int fd, struct archive_entry *e, const char *entry)
{
	const void *block;
	size_t size;
	la_int64_t offset;
	int r;
	while ((r = archive_read_data_block(u->ar, &block, &size, &offset)) == ARCHIVE_OK) {
		const char *p = block;
		while (size > 0) {
			ssize_t n = pwrite(fd, p, size, offset);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return entry_errno(u, n < 0 ? errno : EIO, entry, "write");
			p += n;
			size -= (size_t)n;
			offset += n;
		}
	}
	if (r != ARCHIVE_EOF) {
		_cleanup_free_ char *n = shown(entry);
		return sbx_error_set(u->err, SBX_ERR_INVALID_PARAMS, "entry '%s': read: %s", n ? n : "?",
				     archive_error_string(u->ar));
	}
	/* Sparse files end in a hole the blocks do not cover. */
	if (ftruncate(fd, archive_entry_size(e)) < 0)
		return entry_errno(u, errno, entry, "set size");
	u->bytes += archive_entry_size(e);
	return 0;
}

static int do_whiteout(struct unpack *u, const char *rel, const char *base)
{
	const char *victim = base + strlen(WHITEOUT_PREFIX);
	if (!strcmp(base, OPAQUE_NAME)) {
		char dir[PATH_MAX];
		size_t dlen = (size_t)(base - rel);
		memcpy(dir, rel, dlen);
		dir[dlen ? dlen - 1 : 0] = '\0';
		if (!*dir)
			/* Overlay ignores an opaque root; nothing below the layer shows anyway. */
			return entry_fail(u, SBX_ERR_INVALID_PARAMS, rel, "an opaque marker for the layer's root");
		_cleanup_close_ int d = open_dir(u, dir, true, rel);
		if (d < 0)
			return -1;
		_cleanup_close_ int fd = openat(d, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return entry_errno(u, errno, rel, "open directory");
		if (fsetxattr(fd, OPAQUE_XATTR, "y", 1, 0) < 0)
			return entry_errno(u, errno, rel, "mark directory opaque");
		return 0;
	}
	if (!strncmp(victim, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)))
		return 0; /* aufs' own bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content */
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
		return entry_fail(u, SBX_ERR_INVALID_PARAMS, rel, "a whiteout that names no file");
	const char *ignored;
	int pfd = parent_of(u, rel, &ignored, true);
	if (pfd < 0)
		return -1;
	bool is_dir;
	if (clear_name(u, pfd, victim, false, &is_dir, rel) < 0)
		return -1;
	if (mknodat(pfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
		return entry_errno(u, errno, rel, "create whiteout");
	return 0;
}

static int do_hardlink(struct unpack *u, const char *rel, int pfd, const char *base, const char *target)
{
	char trel[PATH_MAX];
	if (normalize_name(target, trel) < 0 || !*trel)
		return entry_fail(u, SBX_ERR_DENIED, rel, "a hard link to a name outside the layer");
	const char *tbase;
	char tparent[PATH_MAX];
	const char *slash = strrchr(trel, '/');
	size_t plen = slash ? (size_t)(slash - trel) : 0;
	memcpy(tparent, trel, plen);
	tparent[plen] = '\0';
	tbase = slash ? slash + 1 : trel;
	_cleanup_close_ int tfd = open_dir(u, tparent, false, rel);
	if (tfd < 0)
		return sbx_error_prefix(u->err, "hard link target '%s'", trel);
	struct stat st;
	if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return entry_fail(u, SBX_ERR_DENIED, rel,
					  "a hard link to a file that is not in the layer (before it)");
		return entry_errno(u, errno, rel, "stat hard link target");
	}
	if (S_ISDIR(st.st_mode))
		return entry_fail(u, SBX_ERR_DENIED, rel, "a hard link to a directory");
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
		return entry_fail(u, SBX_ERR_DENIED, rel, "a hard link to a whiteout");
	struct stat cur;
	if (fstatat(pfd, base, &cur, AT_SYMLINK_NOFOLLOW) == 0 && cur.st_ino == st.st_ino && cur.st_dev == st.st_dev)
		return 0;
	bool is_dir;
	if (clear_name(u, pfd, base, false, &is_dir, rel) < 0)
		return -1;
	if (linkat(tfd, tbase, pfd, base, 0) < 0)
		return entry_errno(u, errno, rel, "create hard link");
	return 0;
}

static int unpack_entry(struct unpack *u, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		return sbx_error_set(u->err, SBX_ERR_INVALID_PARAMS, "an entry without a name");
	char rel[PATH_MAX];
	if (normalize_name(raw, rel) < 0)
		return entry_fail(u, SBX_ERR_DENIED, raw, "the name leaves the layer ('..') or is too long");
	u->entries++;
	if (!*rel) {
		/* The layer's root: the overlay root takes its attributes from
		 * the writable layer; nothing to unpack. */
		return 0;
	}
	const char *base = strrchr(rel, '/');
	base = base ? base + 1 : rel;
	if (!strncmp(base, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)))
		return do_whiteout(u, rel, base);

	int pfd = parent_of(u, rel, &base, true);
	if (pfd < 0)
		return -1;
	const char *link = archive_entry_hardlink(e);
	if (link)
		return do_hardlink(u, rel, pfd, base, link);

	mode_t type = archive_entry_filetype(e);
	bool is_dir = false;
	if (type == AE_IFCHR || type == AE_IFBLK) {
		char why[128];
		snprintf(why, sizeof(why), "a %s device node (%u:%u); layers may not carry device nodes",
			 type == AE_IFCHR ? "character" : "block", (unsigned)archive_entry_rdevmajor(e),
			 (unsigned)archive_entry_rdevminor(e));
		return entry_fail(u, SBX_ERR_DENIED, rel, why);
	}
	if (type != AE_IFDIR && type != AE_IFREG && type != AE_IFLNK && type != AE_IFIFO)
		return entry_fail(u, SBX_ERR_DENIED, rel, "an entry of a type a layer may not hold");
	if (clear_name(u, pfd, base, type == AE_IFDIR, &is_dir, rel) < 0)
		return -1;

	switch (type) {
	case AE_IFDIR: {
		if (!is_dir && mkdirat(pfd, base, 0700) < 0)
			return entry_errno(u, errno, rel, "create directory");
		_cleanup_close_ int fd = open_step(pfd, base, O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			return entry_errno(u, errno, rel, "open directory");
		if (apply_meta(u, fd, e, rel) < 0)
			return -1;
		return remember_dir_time(u, rel, e);
	}
	case AE_IFREG: {
		_cleanup_close_ int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return entry_errno(u, errno, rel, "create file");
		if (write_data(u, fd, e, rel) < 0 || apply_meta(u, fd, e, rel) < 0)
			return -1;
		struct timespec ts[2];
		entry_times(e, ts);
		if (futimens(fd, ts) < 0)
			return entry_errno(u, errno, rel, "set times");
		return 0;
	}
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target)
			return entry_fail(u, SBX_ERR_INVALID_PARAMS, rel, "a symlink without a target");
		if (symlinkat(target, pfd, base) < 0)
			return entry_errno(u, errno, rel, "create symlink");
		if (fchownat(pfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
			return entry_errno(u, errno, rel, "chown");
		struct timespec ts[2];
		entry_times(e, ts);
		if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return entry_errno(u, errno, rel, "set times");
		return 0;
	}
	default: { /* FIFO */
		if (mknodat(pfd, base, S_IFIFO | 0600, 0) < 0)
			return entry_errno(u, errno, rel, "create FIFO");
		/* An O_PATH fd does not open the FIFO; fchown/fchmod need a
		 * real one, so go through the name we just made. */
		if (fchownat(pfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(pfd, base, archive_entry_perm(e) & 07777, 0) < 0)
			return entry_errno(u, errno, rel, "set owner and mode");
		struct timespec ts[2];
		entry_times(e, ts);
		if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return entry_errno(u, errno, rel, "set times");
		return 0;
	}
	}
}

/* Directory times last: creating entries in them changed their mtime. */
static int apply_dir_times(struct unpack *u)
{
	unpack_forget_parent(u);
	sbx_error **err = u->err;
	for (size_t i = u->n_dirs; i-- > 0;) {
		_cleanup_error_ sbx_error *gone = NULL;
		u->err = &gone;
		_cleanup_close_ int d = open_dir(u, u->dirs[i].path, false, u->dirs[i].path);
		u->err = err;
		if (d < 0)
			continue; /* replaced by a later entry or a whiteout: nothing to date */
		if (utimensat(d, "", u->dirs[i].times, AT_EMPTY_PATH) < 0)
			return entry_errno(u, errno, u->dirs[i].path, "set times");
	}
	return 0;
}

static int unpack_all(struct unpack *u)
{
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(u->ar, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return sbx_error_set(u->err, SBX_ERR_INVALID_PARAMS, "read tar: %s",
					     archive_error_string(u->ar) ? archive_error_string(u->ar) : "broken archive");
		if (unpack_entry(u, e) < 0)
			return -1;
	}
	return apply_dir_times(u);
}

static struct archive *tar_reader(void)
{
	struct archive *ar = archive_read_new();
	if (!ar)
		return NULL;
	/* Only tar, and no decompression: the outer reader did that once. */
	archive_read_support_format_tar(ar);
	archive_read_support_format_gnutar(ar);
	return ar;
}

/* ---- the two readers: blob bytes -> decompressed tar -> entries ---- */

struct blob_reader {
	sbx_layer_read_fn read;
	void *read_ctx;
	struct archive *outer; /* decompresses: raw format over the blob */
	struct sbx_sha256 blob_hash, tar_hash;
	int64_t blob_bytes, tar_bytes;
	char *raw_buf, *tar_buf;
	bool outer_eof;
	/* The blob kept for export: the raw bytes, or a zstd stream of the tar. */
	int keep_fd;
	bool keep_raw;
	struct archive *zstd;
	struct sbx_sha256 keep_hash;
	int64_t keep_bytes;
	int keep_errno;
	sbx_layer_progress_fn progress;
	void *progress_ctx;
};

static ssize_t raw_read(struct blob_reader *b, void *buf, size_t len)
{
	ssize_t n;
	do {
		n = b->read(b->read_ctx, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	sbx_sha256_update(&b->blob_hash, buf, (size_t)n);
	b->blob_bytes += n;
	if (b->keep_raw && b->keep_fd >= 0 && !b->keep_errno && sbx_write_all(b->keep_fd, buf, (size_t)n) < 0)
		b->keep_errno = errno;
	if (b->progress)
		b->progress(b->progress_ctx, b->blob_bytes);
	return n;
}

static la_ssize_t outer_read_cb(struct archive *a, void *ctx, const void **buf)
{
	struct blob_reader *b = ctx;
	ssize_t n = raw_read(b, b->raw_buf, IO_BUF);
	if (n < 0) {
		archive_set_error(a, errno, "read blob: %s", strerror(errno));
		return -1;
	}
	*buf = b->raw_buf;
	return n;
}

static void keep_tar_bytes(struct blob_reader *b, const void *buf, size_t n)
{
	if (b->zstd && !b->keep_errno && archive_write_data(b->zstd, buf, n) < 0)
		b->keep_errno = archive_errno(b->zstd) ? archive_errno(b->zstd) : EIO;
}

static la_ssize_t inner_read_cb(struct archive *a, void *ctx, const void **buf)
{
	struct blob_reader *b = ctx;
	la_ssize_t n = archive_read_data(b->outer, b->tar_buf, IO_BUF);
	if (n < 0) {
		archive_set_error(a, archive_errno(b->outer) ? archive_errno(b->outer) : EIO, "%s",
				  archive_error_string(b->outer) ? archive_error_string(b->outer) : "decompress");
		return -1;
	}
	if (n == 0 && !b->outer_eof) {
		b->outer_eof = true;
		/* Some writers (Go's archive/tar as umoci insert drives it) end a
		 * layer without the padding of its last block; Go's reader, and so
		 * docker, containerd and podman, accept that. Complete the block
		 * with zeros that are neither hashed nor kept; without the end
		 * blocks libarchive then ends cleanly. Digests still cover every
		 * real byte. */
		size_t pad = (size_t)((512 - b->tar_bytes % 512) % 512);
		if (pad) {
			memset(b->tar_buf, 0, pad);
			*buf = b->tar_buf;
			return (la_ssize_t)pad;
		}
	}
	sbx_sha256_update(&b->tar_hash, b->tar_buf, (size_t)n);
	b->tar_bytes += n;
	keep_tar_bytes(b, b->tar_buf, (size_t)n);
	*buf = b->tar_buf;
	return n;
}

static la_ssize_t zstd_write_cb(struct archive *a, void *ctx, const void *buf, size_t n)
{
	(void)a;
	struct blob_reader *b = ctx;
	if (sbx_write_all(b->keep_fd, buf, n) < 0)
		return -1;
	sbx_sha256_update(&b->keep_hash, buf, n);
	b->keep_bytes += (int64_t)n;
	return (la_ssize_t)n;
}

static int start_zstd(struct blob_reader *b, sbx_error **err)
{
	b->zstd = archive_write_new();
	if (!b->zstd)
		return sbx_error_errno(err, ENOMEM, "zstd");
	struct archive_entry *e = archive_entry_new();
	if (!e || archive_write_set_format_raw(b->zstd) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(b->zstd) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(b->zstd, 1) != ARCHIVE_OK ||
	    archive_write_open(b->zstd, b, NULL, zstd_write_cb, NULL) != ARCHIVE_OK) {
		archive_entry_free(e);
		return sbx_error_set(err, SBX_ERR_INTERNAL, "zstd: %s", archive_error_string(b->zstd));
	}
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_pathname(e, "layer.tar");
	int r = archive_write_header(b->zstd, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "zstd: %s", archive_error_string(b->zstd));
	return 0;
}

static void blob_reader_free(struct blob_reader *b)
{
	if (b->outer)
		archive_read_free(b->outer);
	if (b->zstd)
		archive_write_free(b->zstd);
	free(b->raw_buf);
	free(b->tar_buf);
}

/* Read, decompress and unpack a whole blob into dirfd; the digests end up
 * in b's hashes. keep_fd (or -1) receives the blob to keep. */
static int read_blob(struct blob_reader *b, int dirfd, int keep_fd, enum sbx_layer_keep keep, int64_t *size,
		     int64_t *entries, int *filter, sbx_error **err)
{
	struct unpack u = { .root = dirfd, .cached_fd = -1, .err = err };
	struct archive *inner = NULL;
	int rc = -1;
	b->keep_fd = keep_fd;
	b->keep_raw = keep_fd >= 0;
	sbx_sha256_init(&b->blob_hash);
	sbx_sha256_init(&b->tar_hash);
	sbx_sha256_init(&b->keep_hash);
	b->raw_buf = malloc(IO_BUF);
	b->tar_buf = malloc(IO_BUF);
	b->outer = archive_read_new();
	inner = tar_reader();
	if (!b->raw_buf || !b->tar_buf || !b->outer || !inner) {
		sbx_error_errno(err, ENOMEM, "layer reader");
		goto out;
	}
	/* What layers come in: plain tar, gzip or zstd. No other filter, so
	 * no external decompressor is ever run. */
	archive_read_support_filter_gzip(b->outer);
	archive_read_support_filter_zstd(b->outer);
	archive_read_support_format_raw(b->outer);
	if (archive_read_open(b->outer, b, NULL, outer_read_cb, NULL) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read layer: %s",
			      archive_error_string(b->outer) ? archive_error_string(b->outer) : "empty blob");
		goto out;
	}
	struct archive_entry *raw_entry;
	int r = archive_read_next_header(b->outer, &raw_entry);
	if (r != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read layer: %s",
			      r == ARCHIVE_EOF ? "the blob is empty" : archive_error_string(b->outer));
		goto out;
	}
	*filter = archive_filter_code(b->outer, 0);
	if (keep_fd >= 0 && keep == SBX_LAYER_KEEP_COMPRESSED && *filter == ARCHIVE_FILTER_NONE) {
		/* A plain tar: keep a zstd stream of it instead of the raw bytes
		 * read so far (the tar is read again from its start below). */
		b->keep_raw = false;
		if (ftruncate(keep_fd, 0) < 0 || lseek(keep_fd, 0, SEEK_SET) < 0) {
			sbx_error_errno(err, errno, "keep layer blob");
			goto out;
		}
		if (start_zstd(b, err) < 0)
			goto out;
	}
	if (archive_read_open(inner, b, NULL, inner_read_cb, NULL) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read layer: not a tar archive: %s",
			      archive_error_string(inner) ? archive_error_string(inner) : "unrecognized content");
		goto out;
	}
	u.ar = inner;
	u.buf = NULL;
	if (unpack_all(&u) < 0)
		goto out;
	/* The digests cover every byte: the tar's end padding, the rest of the
	 * compressed stream and whatever follows it. */
	while (!b->outer_eof) {
		const void *ignored;
		la_ssize_t n = inner_read_cb(inner, b, &ignored);
		if (n < 0) {
			sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read layer: %s", archive_error_string(inner));
			goto out;
		}
	}
	for (;;) {
		ssize_t n = raw_read(b, b->raw_buf, IO_BUF);
		if (n < 0) {
			sbx_error_errno(err, errno, "read layer blob");
			goto out;
		}
		if (n == 0)
			break;
	}
	if (b->zstd) {
		if (archive_write_close(b->zstd) != ARCHIVE_OK && !b->keep_errno)
			b->keep_errno = EIO;
	}
	if (b->keep_errno) {
		sbx_error_errno(err, b->keep_errno, "keep layer blob");
		goto out;
	}
	*size = u.bytes;
	*entries = u.entries;
	rc = 0;
out:
	unpack_free(&u);
	if (inner)
		archive_read_free(inner);
	return rc;
}

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
	return read(*(int *)ctx, buf, len);
}

int sbx_layer_unpack_fd(int dirfd, int fd, int64_t *size, int64_t *entries, sbx_error **err)
{
	struct blob_reader b = { .read = fd_read, .read_ctx = &fd, .keep_fd = -1 };
	int64_t s = 0, n = 0;
	int filter = 0;
	int rc = read_blob(&b, dirfd, -1, SBX_LAYER_KEEP_AS_IS, &s, &n, &filter, err);
	blob_reader_free(&b);
	if (size)
		*size = s;
	if (entries)
		*entries = n;
	return rc;
}

/* ---- the store ---- */

static int store_lock(struct sbx_layer_store *s, sbx_error **err)
{
	int fd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sbx_error_errno(err, errno, "layer store '%s': open lock", s->path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return sbx_error_errno(err, e, "layer store '%s': lock", s->path);
		}
	}
	return fd;
}

static bool owner_valid(const char *owner)
{
	return owner && sbx_name_valid(owner);
}

int sbx_layer_store_open(const char *path, struct sbx_layer_store **out, sbx_error **err)
{
	if (sbx_mkdir_p(path, 0700, err) < 0)
		return sbx_error_prefix(err, "layer store");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "layer store '%s'", path);
	static const char *const dirs[] = { "layers", "layers/sha256", "tmp" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(dirs); i++)
		if (mkdirat(fd, dirs[i], 0700) < 0 && errno != EEXIST)
			return sbx_error_errno(err, errno, "layer store '%s': create %s", path, dirs[i]);
	struct sbx_layer_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return sbx_error_errno(err, ENOMEM, "layer store");
	}
	s->dirfd = sbx_take_fd(&fd);
	*out = s;
	return 0;
}

void sbx_layer_store_close(struct sbx_layer_store *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	free(s);
}

void sbx_layer_store_closep(struct sbx_layer_store **s)
{
	sbx_layer_store_close(*s);
}

const char *sbx_layer_store_path(const struct sbx_layer_store *s)
{
	return s->path;
}

static void layer_rel(const char *diff_id, char out[128])
{
	snprintf(out, 128, "layers/sha256/%s", sbx_digest_hex(diff_id));
}

char *sbx_layer_tree_path(const struct sbx_layer_store *s, const char *diff_id)
{
	if (!sbx_digest_valid(diff_id))
		return NULL;
	char *p = NULL;
	if (asprintf(&p, "%s/layers/sha256/%s/diff", s->path, sbx_digest_hex(diff_id)) < 0)
		return NULL;
	return p;
}

bool sbx_layer_exists(struct sbx_layer_store *s, const char *diff_id)
{
	if (!sbx_digest_valid(diff_id))
		return false;
	char rel[128];
	layer_rel(diff_id, rel);
	struct stat st;
	return fstatat(s->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int write_layer_json(int dirfd, const struct sbx_layer_info *info, sbx_error **err)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return sbx_error_errno(err, ENOMEM, "layer.json");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "diff_id", info->diff_id);
	sbx_gen_kv_int(g, "size", info->size);
	sbx_gen_kv_int(g, "entries", info->entries);
	sbx_gen_key(g, "blob");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "digest", info->digest);
	sbx_gen_kv_str(g, "mediaType", info->media_type);
	sbx_gen_kv_int(g, "size", info->blob_size);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	return sbx_write_file_atomic_at(dirfd, "layer.json", buf, len, 0600, err);
}

static int read_layer_json(int dirfd, const char *diff_id, struct sbx_layer_info *info, sbx_error **err)
{
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(dirfd, "layer.json", LAYER_JSON_MAX, &text, NULL, err) < 0)
		return sbx_error_prefix(err, "layer %s", diff_id);
	_cleanup_json_ yajl_val root = sbx_json_parse(text, err);
	if (!root)
		return sbx_error_prefix(err, "layer %s: layer.json", diff_id);
	const char *did = NULL, *digest = NULL, *mt = NULL;
	yajl_val blob = NULL;
	memset(info, 0, sizeof(*info));
	if (sbx_json_string(root, "diff_id", true, &did, err) < 0 || sbx_json_int(root, "size", false, 0, INT64_MAX, &info->size, err) < 0 ||
	    sbx_json_int(root, "entries", false, 0, INT64_MAX, &info->entries, err) < 0 ||
	    sbx_json_object(root, "blob", true, &blob, err) < 0 || sbx_json_string(blob, "digest", true, &digest, err) < 0 ||
	    sbx_json_string(blob, "mediaType", true, &mt, err) < 0 ||
	    sbx_json_int(blob, "size", true, 0, INT64_MAX, &info->blob_size, err) < 0)
		return sbx_error_prefix(err, "layer %s: layer.json", diff_id);
	if (strcmp(did, diff_id) != 0 || !sbx_digest_valid(digest) || strlen(mt) >= sizeof(info->media_type))
		return sbx_error_set(err, SBX_ERR_INTERNAL, "layer %s: layer.json does not describe it", diff_id);
	snprintf(info->diff_id, sizeof(info->diff_id), "%s", did);
	snprintf(info->digest, sizeof(info->digest), "%s", digest);
	snprintf(info->media_type, sizeof(info->media_type), "%s", mt);
	return 0;
}

int sbx_layer_get_info(struct sbx_layer_store *s, const char *diff_id, struct sbx_layer_info *info, sbx_error **err)
{
	if (sbx_digest_check(diff_id, "layer", err) < 0)
		return -1;
	char rel[128];
	layer_rel(diff_id, rel);
	_cleanup_close_ int d = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (d < 0)
		return errno == ENOENT ? sbx_error_set(err, SBX_ERR_NOT_FOUND, "layer %s is not in the store", diff_id)
				       : sbx_error_errno(err, errno, "layer %s", diff_id);
	return read_layer_json(d, diff_id, info, err);
}

/* With the store lock held. */
static int ref_locked(struct sbx_layer_store *s, const char *diff_id, const char *owner, sbx_error **err)
{
	char rel[128];
	layer_rel(diff_id, rel);
	_cleanup_close_ int d = openat(s->dirfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (d < 0)
		return errno == ENOENT ? sbx_error_set(err, SBX_ERR_NOT_FOUND, "layer %s is not in the store", diff_id)
				       : sbx_error_errno(err, errno, "layer %s", diff_id);
	_cleanup_close_ int refs = openat(d, "refs", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (refs < 0)
		return sbx_error_errno(err, errno, "layer %s: references", diff_id);
	_cleanup_close_ int f = openat(refs, owner, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0)
		return sbx_error_errno(err, errno, "layer %s: add reference of %s", diff_id, owner);
	return 0;
}

int sbx_layer_ref(struct sbx_layer_store *s, const char *diff_id, const char *owner, struct sbx_layer_info *info,
		  sbx_error **err)
{
	if (sbx_digest_check(diff_id, "layer", err) < 0)
		return -1;
	if (!owner_valid(owner))
		return sbx_error_param(err, "owner", "'%s' is not a valid layer owner", owner ? owner : "");
	_cleanup_close_ int lock = store_lock(s, err);
	if (lock < 0)
		return -1;
	if (ref_locked(s, diff_id, owner, err) < 0)
		return -1;
	if (info) {
		if (sbx_layer_get_info(s, diff_id, info, err) < 0)
			return -1;
		info->existed = true;
	}
	return 0;
}

static bool dir_empty(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	bool empty = true;
	struct dirent *de;
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	return empty;
}

/* Move a layer out of layers/ (with the lock held); its tree is deleted
 * after the lock is dropped. */
static int detach_locked(struct sbx_layer_store *s, const char *hex, char *trash, size_t trash_len, sbx_error **err)
{
	char id[13];
	if (sbx_random_id(id, err) < 0)
		return -1;
	char rel[128];
	snprintf(rel, sizeof(rel), "layers/sha256/%s", hex);
	snprintf(trash, trash_len, "tmp/rm-%s", id);
	if (renameat(s->dirfd, rel, s->dirfd, trash) < 0)
		return sbx_error_errno(err, errno, "remove layer sha256:%s", hex);
	return 0;
}

int sbx_layer_unref(struct sbx_layer_store *s, const char *diff_id, const char *owner, sbx_error **err)
{
	if (sbx_digest_check(diff_id, "layer", err) < 0)
		return -1;
	if (!owner_valid(owner))
		return sbx_error_param(err, "owner", "'%s' is not a valid layer owner", owner ? owner : "");
	char trash[64] = "";
	{
		_cleanup_close_ int lock = store_lock(s, err);
		if (lock < 0)
			return -1;
		char rel[160];
		layer_rel(diff_id, rel);
		_cleanup_close_ int d = openat(s->dirfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (d < 0)
			return errno == ENOENT ? 0 : sbx_error_errno(err, errno, "layer %s", diff_id);
		_cleanup_close_ int refs = openat(d, "refs", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (refs >= 0 && unlinkat(refs, owner, 0) < 0 && errno != ENOENT)
			return sbx_error_errno(err, errno, "layer %s: drop reference of %s", diff_id, owner);
		if (!dir_empty(d, "refs"))
			return 0;
		if (detach_locked(s, sbx_digest_hex(diff_id), trash, sizeof(trash), err) < 0)
			return -1;
	}
	if (sbx_rm_rf_at(s->dirfd, trash, err) < 0)
		return sbx_error_prefix(err, "remove layer %s", diff_id);
	return 1;
}

int sbx_layer_list(struct sbx_layer_store *s, char ***out, sbx_error **err)
{
	_cleanup_close_ int fd = openat(s->dirfd, "layers/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sbx_error_errno(err, errno, "layer store '%s'", s->path);
	DIR *d = fdopendir(fd);
	if (!d)
		return sbx_error_errno(err, errno, "layer store '%s'", s->path);
	fd = -1;
	size_t n = 0, cap = 8;
	char **v = calloc(cap + 1, sizeof(*v));
	struct dirent *de;
	while (v && (de = readdir(d))) {
		char digest[300];
		snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
		if (!sbx_digest_valid(digest))
			continue;
		if (n == cap) {
			char **nv = realloc(v, (2 * cap + 1) * sizeof(*v));
			if (!nv) {
				sbx_strv_free(v);
				v = NULL;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[n] = strdup(digest);
		v[++n] = NULL;
		if (!v[n - 1]) {
			sbx_strv_free(v);
			v = NULL;
		}
	}
	closedir(d);
	if (!v)
		return sbx_error_errno(err, ENOMEM, "list layers");
	*out = v;
	return (int)n;
}

int sbx_layer_owners(struct sbx_layer_store *s, const char *diff_id, char ***out, sbx_error **err)
{
	if (sbx_digest_check(diff_id, "layer", err) < 0)
		return -1;
	char rel[160];
	snprintf(rel, sizeof(rel), "layers/sha256/%s/refs", sbx_digest_hex(diff_id));
	int fd = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? sbx_error_set(err, SBX_ERR_NOT_FOUND, "layer %s is not in the store", diff_id)
				       : sbx_error_errno(err, errno, "layer %s", diff_id);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sbx_error_errno(err, errno, "layer %s", diff_id);
	}
	size_t n = 0;
	char **v = calloc(1, sizeof(*v));
	struct dirent *de;
	while (v && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char **nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv) {
			sbx_strv_free(v);
			v = NULL;
			break;
		}
		v = nv;
		v[n] = strdup(de->d_name);
		v[++n] = NULL;
	}
	closedir(d);
	if (!v)
		return sbx_error_errno(err, ENOMEM, "layer owners");
	*out = v;
	return (int)n;
}

int sbx_layer_release_owner(struct sbx_layer_store *s, const char *owner, sbx_error **err)
{
	_cleanup_strv_ char **ids = NULL;
	if (sbx_layer_list(s, &ids, err) < 0)
		return -1;
	int rc = 0;
	for (char **p = ids; *p; p++) {
		char rel[200];
		snprintf(rel, sizeof(rel), "layers/sha256/%s/refs/%s", sbx_digest_hex(*p), owner);
		struct stat st;
		if (fstatat(s->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (sbx_layer_unref(s, *p, owner, err) < 0)
			rc = -1;
	}
	return rc;
}

int sbx_layer_open_blob(struct sbx_layer_store *s, const char *diff_id, sbx_error **err)
{
	if (sbx_digest_check(diff_id, "layer", err) < 0)
		return -1;
	char rel[160];
	snprintf(rel, sizeof(rel), "layers/sha256/%s/blob", sbx_digest_hex(diff_id));
	int fd = openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? sbx_error_set(err, SBX_ERR_NOT_FOUND, "layer %s has no blob in the store", diff_id)
				       : sbx_error_errno(err, errno, "layer %s: blob", diff_id);
	return fd;
}

static const char *media_type_for(int filter)
{
	switch (filter) {
	case ARCHIVE_FILTER_GZIP:
		return SBX_MEDIA_LAYER_GZIP;
	case ARCHIVE_FILTER_ZSTD:
		return SBX_MEDIA_LAYER_ZSTD;
	default:
		return SBX_MEDIA_LAYER_TAR;
	}
}

int sbx_layer_put(struct sbx_layer_store *s, const char *owner, sbx_layer_read_fn read, void *read_ctx,
		  const struct sbx_layer_put_opts *opts, struct sbx_layer_info *info, sbx_error **err)
{
	static const struct sbx_layer_put_opts defaults = { .size = -1 };
	if (!opts)
		opts = &defaults;
	if (!owner_valid(owner))
		return sbx_error_param(err, "owner", "'%s' is not a valid layer owner", owner ? owner : "");
	if ((opts->digest && sbx_digest_check(opts->digest, "layer blob", err) < 0) ||
	    (opts->diff_id && sbx_digest_check(opts->diff_id, "layer", err) < 0))
		return -1;
	struct sbx_layer_info local;
	if (!info)
		info = &local;
	memset(info, 0, sizeof(*info));
	if (opts->diff_id && sbx_layer_exists(s, opts->diff_id)) {
		_cleanup_error_ sbx_error *ref_err = NULL;
		if (sbx_layer_ref(s, opts->diff_id, owner, info, &ref_err) == 0)
			return 0;
		if (ref_err->code != SBX_ERR_NOT_FOUND) {
			if (err) {
				*err = ref_err;
				ref_err = NULL;
			}
			return -1;
		}
		/* Removed meanwhile: unpack it after all. */
	}

	char id[13], tmp[64];
	if (sbx_random_id(id, err) < 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "tmp/put-%s", id);
	if (mkdirat(s->dirfd, tmp, 0700) < 0)
		return sbx_error_errno(err, errno, "layer store: create %s", tmp);
	int rc = -1;
	struct blob_reader b = { .read = read, .read_ctx = read_ctx, .progress = opts->progress,
				 .progress_ctx = opts->progress_ctx };
	_cleanup_close_ int t = openat(s->dirfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_close_ int keep = -1, diff = -1;
	if (t < 0 || mkdirat(t, "diff", 0755) < 0 || fchmodat(t, "diff", 0755, 0) < 0 || mkdirat(t, "refs", 0700) < 0 ||
	    (diff = openat(t, "diff", O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    (keep = openat(t, "blob", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		sbx_error_errno(err, errno, "layer store: prepare %s", tmp);
		goto out;
	}
	int filter = ARCHIVE_FILTER_NONE;
	if (read_blob(&b, diff, keep, opts->keep, &info->size, &info->entries, &filter, err) < 0)
		goto out;
	char digest[SBX_DIGEST_LEN];
	sbx_sha256_final(&b.blob_hash, digest);
	sbx_sha256_final(&b.tar_hash, info->diff_id);
	if (opts->size >= 0 && b.blob_bytes != opts->size) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "layer blob %s is %lld bytes long, not the %lld its descriptor says",
			      opts->digest ? opts->digest : digest, (long long)b.blob_bytes, (long long)opts->size);
		goto out;
	}
	if (opts->digest && strcmp(opts->digest, digest) != 0) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "layer blob digest mismatch: expected %s, read %s", opts->digest,
			      digest);
		goto out;
	}
	if (opts->diff_id && strcmp(opts->diff_id, info->diff_id) != 0) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
			      "layer diff_id mismatch: the image config says %s, the uncompressed layer is %s",
			      opts->diff_id, info->diff_id);
		goto out;
	}
	if (b.zstd) {
		sbx_sha256_final(&b.keep_hash, info->digest);
		info->blob_size = b.keep_bytes;
		snprintf(info->media_type, sizeof(info->media_type), "%s", SBX_MEDIA_LAYER_ZSTD);
	} else {
		snprintf(info->digest, sizeof(info->digest), "%s", digest);
		info->blob_size = b.blob_bytes;
		snprintf(info->media_type, sizeof(info->media_type), "%s", media_type_for(filter));
	}
	if (fsync(keep) < 0 || fchmod(keep, 0400) < 0 || write_layer_json(t, info, err) < 0) {
		if (!*err)
			sbx_error_errno(err, errno, "layer store: keep blob");
		goto out;
	}
	{
		_cleanup_close_ int f = openat(t, "refs", O_PATH | O_DIRECTORY | O_CLOEXEC);
		_cleanup_close_ int r = f < 0 ? -1 : openat(f, owner, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (r < 0) {
			sbx_error_errno(err, errno, "layer store: reference");
			goto out;
		}
	}
	{
		_cleanup_close_ int lock = store_lock(s, err);
		if (lock < 0)
			goto out;
		char rel[128];
		layer_rel(info->diff_id, rel);
		if (renameat2(s->dirfd, tmp, s->dirfd, rel, RENAME_NOREPLACE) == 0) {
			tmp[0] = '\0';
		} else if (errno == EEXIST || errno == ENOTEMPTY) {
			/* Another put stored it first: use that one. */
			if (ref_locked(s, info->diff_id, owner, err) < 0)
				goto out;
			struct sbx_layer_info theirs;
			if (sbx_layer_get_info(s, info->diff_id, &theirs, err) < 0)
				goto out;
			*info = theirs;
			info->existed = true;
		} else {
			sbx_error_errno(err, errno, "layer store: publish layer %s", info->diff_id);
			goto out;
		}
	}
	rc = 0;
out:
	blob_reader_free(&b);
	if (tmp[0]) {
		sbx_error *ignored = NULL;
		sbx_rm_rf_at(s->dirfd, tmp, &ignored);
		sbx_error_free(ignored);
	}
	return rc;
}

int sbx_layer_put_fd(struct sbx_layer_store *s, const char *owner, int fd, const struct sbx_layer_put_opts *opts,
		     struct sbx_layer_info *info, sbx_error **err)
{
	return sbx_layer_put(s, owner, fd_read, &fd, opts, info, err);
}

int sbx_layer_store_recover(struct sbx_layer_store *s, sbx_error **err)
{
	_cleanup_close_ int lock = store_lock(s, err);
	if (lock < 0)
		return -1;
	if (sbx_rm_rf_at(s->dirfd, "tmp", err) < 0 || mkdirat(s->dirfd, "tmp", 0700) < 0)
		return sbx_error_prefix(err, "layer store '%s': clear tmp", s->path);
	_cleanup_strv_ char **ids = NULL;
	if (sbx_layer_list(s, &ids, err) < 0)
		return -1;
	for (char **p = ids; *p; p++) {
		char rel[160];
		layer_rel(*p, rel);
		_cleanup_close_ int d = openat(s->dirfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (d < 0 || !dir_empty(d, "refs"))
			continue;
		char trash[64];
		if (detach_locked(s, sbx_digest_hex(*p), trash, sizeof(trash), err) < 0 ||
		    sbx_rm_rf_at(s->dirfd, trash, err) < 0)
			return -1;
	}
	return 0;
}

int sbx_layer_store_scratch(struct sbx_layer_store *s, const char *prefix, char **path, sbx_error **err)
{
	char id[13], rel[96];
	if (sbx_random_id(id, err) < 0)
		return -1;
	snprintf(rel, sizeof(rel), "tmp/%.32s-%s", prefix, id);
	if (mkdirat(s->dirfd, rel, 0700) < 0)
		return sbx_error_errno(err, errno, "layer store: create %s", rel);
	int fd = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sbx_error_errno(err, errno, "layer store: open %s", rel);
	if (asprintf(path, "%s/%s", s->path, rel) < 0) {
		close(fd);
		return sbx_error_errno(err, ENOMEM, "layer store");
	}
	return fd;
}

int sbx_layer_store_rmtemp(struct sbx_layer_store *s, const char *path, sbx_error **err)
{
	size_t n = strlen(s->path);
	if (strncmp(path, s->path, n) != 0 || strncmp(path + n, "/tmp/", 5) != 0 || strchr(path + n + 5, '/') ||
	    strstr(path + n, ".."))
		return sbx_error_set(err, SBX_ERR_INTERNAL, "'%s' is not a temporary directory of the store", path);
	return sbx_rm_rf_at(s->dirfd, path + n + 1, err);
}

/* ---- a tree in overlay form as a layer tar ---- */

#define TREE_IDS 65536

struct tar_walk {
	struct archive *a;
	uint32_t id_base;
	char *buf;
	/* Hard links: the first path of each multiply linked inode. */
	struct link_seen {
		dev_t dev;
		ino_t ino;
		char *path;
	} *links;
	size_t n_links, cap_links;
	sbx_error **err;
};

static int tw_fail(struct tar_walk *w, const char *path, const char *what)
{
	_cleanup_free_ char *n = shown(path);
	return sbx_error_set(w->err, SBX_ERR_INTERNAL, "'%s': %s: %s", n ? n : "?", what, archive_error_string(w->a));
}

static int tw_id(struct tar_walk *w, const char *path, uint32_t host, int64_t *inside)
{
	if (host < w->id_base || host - w->id_base >= TREE_IDS) {
		_cleanup_free_ char *n = shown(path);
		return sbx_error_set(w->err, SBX_ERR_INVALID_PARAMS,
				     "'%s' is owned by host id %u, outside the sandbox's ids (%u to %u)", n ? n : "?",
				     host, w->id_base, w->id_base + TREE_IDS - 1);
	}
	*inside = host - w->id_base;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a directory, sorted (bytewise: the same on every host). */
static int sorted_names(int dfd, char ***out, size_t *n, sbx_error **err)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return sbx_error_errno(err, errno, "read directory");
	}
	char **v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 32;
			char **nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = sbx_error_errno(err, ENOMEM, "read directory");
				break;
			}
			v = nv;
		}
		if (!(v[len] = strdup(de->d_name))) {
			rc = sbx_error_errno(err, ENOMEM, "read directory");
			break;
		}
		len++;
	}
	closedir(d);
	if (rc < 0) {
		for (size_t i = 0; i < len; i++)
			free(v[i]);
		free(v);
		return -1;
	}
	if (len)
		qsort(v, len, sizeof(*v), name_cmp);
	*out = v;
	*n = len;
	return 0;
}

static struct archive_entry *tw_entry(struct tar_walk *w, const char *path, const struct stat *st, mode_t type)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return NULL;
	int64_t uid = 0, gid = 0;
	if (tw_id(w, path, st->st_uid, &uid) < 0 || tw_id(w, path, st->st_gid, &gid) < 0) {
		archive_entry_free(e);
		return NULL;
	}
	archive_entry_copy_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, st->st_mode & 07777);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	return e;
}

static int tw_attrs(struct tar_walk *w, struct archive_entry *e, int fd)
{
	char names[4096];
	ssize_t n = flistxattr(fd, names, sizeof(names));
	if (n < 0)
		return errno == ENOTSUP || errno == ERANGE ? 0 : sbx_error_errno(w->err, errno, "list attributes");
	/* Sorted by the list's order, which follows the file system: sort. */
	char *list[128];
	size_t k = 0;
	for (char *p = names; p < names + n && k < SBX_ARRAY_SIZE(list); p += strlen(p) + 1)
		if (xattr_allowed(p))
			list[k++] = p;
	if (k)
		qsort(list, k, sizeof(*list), name_cmp);
	for (size_t i = 0; i < k; i++) {
		char value[4096];
		ssize_t vn = fgetxattr(fd, list[i], value, sizeof(value));
		if (vn >= 0)
			archive_entry_xattr_add_entry(e, list[i], value, (size_t)vn);
	}
	return 0;
}

static int tw_put(struct tar_walk *w, struct archive_entry *e, const char *path)
{
	int r = archive_write_header(w->a, e);
	archive_entry_free(e);
	return r < ARCHIVE_WARN ? tw_fail(w, path, "write header") : 0;
}

static int tw_dir(struct tar_walk *w, int dfd, const char *prefix);

static int tw_one(struct tar_walk *w, int dfd, const char *name, const char *path)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return sbx_error_errno(w->err, errno, "'%s'", path);
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
		/* A whiteout: ".wh.NAME" beside where NAME was. */
		char wh[PATH_MAX];
		const char *slash = strrchr(path, '/');
		size_t plen = slash ? (size_t)(slash - path) + 1 : 0;
		if (snprintf(wh, sizeof(wh), "%.*s" WHITEOUT_PREFIX "%s", (int)plen, path, name) >= (int)sizeof(wh))
			return sbx_error_set(w->err, SBX_ERR_LIMIT, "'%s': path too long", path);
		struct stat zero = st;
		zero.st_mode = S_IFREG;
		zero.st_uid = w->id_base;
		zero.st_gid = w->id_base;
		struct archive_entry *e = tw_entry(w, wh, &zero, AE_IFREG);
		if (!e)
			return *w->err ? -1 : sbx_error_errno(w->err, ENOMEM, "tar");
		archive_entry_set_size(e, 0);
		return tw_put(w, e, wh);
	}
	if (S_ISSOCK(st.st_mode))
		return 0; /* as docker and podman leave them out */
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		_cleanup_free_ char *n = shown(path);
		return sbx_error_set(w->err, SBX_ERR_DENIED, "'%s' is a device node; a layer may not hold one", n ? n : "?");
	}
	if (S_ISDIR(st.st_mode)) {
		char dpath[PATH_MAX];
		if (snprintf(dpath, sizeof(dpath), "%s/", path) >= (int)sizeof(dpath))
			return sbx_error_set(w->err, SBX_ERR_LIMIT, "'%s': path too long", path);
		_cleanup_close_ int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return sbx_error_errno(w->err, errno, "open '%s'", path);
		struct archive_entry *e = tw_entry(w, dpath, &st, AE_IFDIR);
		if (!e || tw_attrs(w, e, sub) < 0) {
			archive_entry_free(e);
			return *w->err ? -1 : sbx_error_errno(w->err, ENOMEM, "tar");
		}
		if (tw_put(w, e, path) < 0)
			return -1;
		char v[4];
		ssize_t n = fgetxattr(sub, OPAQUE_XATTR, v, sizeof(v));
		if (n == 1 && v[0] == 'y') {
			char opq[PATH_MAX + 16];
			snprintf(opq, sizeof(opq), "%s%s", dpath, OPAQUE_NAME);
			struct stat zero = st;
			zero.st_mode = S_IFREG;
			struct archive_entry *o = tw_entry(w, opq, &zero, AE_IFREG);
			if (!o)
				return *w->err ? -1 : sbx_error_errno(w->err, ENOMEM, "tar");
			archive_entry_set_size(o, 0);
			if (tw_put(w, o, opq) < 0)
				return -1;
		}
		return tw_dir(w, sub, path);
	}
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) && !S_ISFIFO(st.st_mode))
		return 0;
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		for (size_t i = 0; i < w->n_links; i++) {
			if (w->links[i].dev == st.st_dev && w->links[i].ino == st.st_ino) {
				struct archive_entry *e = tw_entry(w, path, &st, AE_IFREG);
				if (!e)
					return *w->err ? -1 : sbx_error_errno(w->err, ENOMEM, "tar");
				archive_entry_copy_hardlink(e, w->links[i].path);
				archive_entry_set_size(e, 0);
				return tw_put(w, e, path);
			}
		}
		if (w->n_links == w->cap_links) {
			size_t cap = w->cap_links ? w->cap_links * 2 : 16;
			struct link_seen *nl = realloc(w->links, cap * sizeof(*nl));
			if (!nl)
				return sbx_error_errno(w->err, ENOMEM, "tar");
			w->links = nl;
			w->cap_links = cap;
		}
		w->links[w->n_links] = (struct link_seen){ st.st_dev, st.st_ino, strdup(path) };
		if (!w->links[w->n_links].path)
			return sbx_error_errno(w->err, ENOMEM, "tar");
		w->n_links++;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return sbx_error_errno(w->err, errno, "readlink '%s'", path);
		target[n] = '\0';
		struct archive_entry *e = tw_entry(w, path, &st, AE_IFLNK);
		if (!e)
			return *w->err ? -1 : sbx_error_errno(w->err, ENOMEM, "tar");
		archive_entry_copy_symlink(e, target);
		return tw_put(w, e, path);
	}
	if (S_ISFIFO(st.st_mode)) {
		struct archive_entry *e = tw_entry(w, path, &st, AE_IFIFO);
		return e ? tw_put(w, e, path) : (*w->err ? -1 : sbx_error_errno(w->err, ENOMEM, "tar"));
	}
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	struct stat fst;
	if (fd < 0 || fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino)
		return sbx_error_set(w->err, SBX_ERR_BAD_STATE, "'%s' changed while it was read", path);
	struct archive_entry *e = tw_entry(w, path, &fst, AE_IFREG);
	if (!e || tw_attrs(w, e, fd) < 0) {
		archive_entry_free(e);
		return *w->err ? -1 : sbx_error_errno(w->err, ENOMEM, "tar");
	}
	archive_entry_set_size(e, fst.st_size);
	if (tw_put(w, e, path) < 0)
		return -1;
	int64_t left = fst.st_size;
	while (left > 0) {
		ssize_t n = read(fd, w->buf, left < IO_BUF ? (size_t)left : IO_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? sbx_error_errno(w->err, errno, "read '%s'", path)
				     : sbx_error_set(w->err, SBX_ERR_BAD_STATE, "'%s' shrank while it was read", path);
		if (archive_write_data(w->a, w->buf, (size_t)n) != n)
			return tw_fail(w, path, "write");
		left -= n;
	}
	return 0;
}

static int tw_dir(struct tar_walk *w, int dfd, const char *prefix)
{
	char **names = NULL;
	size_t n = 0;
	if (sorted_names(dfd, &names, &n, w->err) < 0)
		return sbx_error_prefix(w->err, "'%s'", *prefix ? prefix : "/");
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (rc == 0 && snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", names[i]) >= (int)sizeof(path))
			rc = sbx_error_set(w->err, SBX_ERR_LIMIT, "'%s/%s': path too long", prefix, names[i]);
		if (rc == 0)
			rc = tw_one(w, dfd, names[i], path);
		free(names[i]);
	}
	free(names);
	return rc;
}

static la_ssize_t tw_write_cb(struct archive *a, void *ctx, const void *buf, size_t n)
{
	(void)a;
	return sbx_write_all(*(int *)ctx, buf, n) < 0 ? -1 : (la_ssize_t)n;
}

int sbx_layer_tar_dir(int dirfd, uint32_t id_base, int out_fd, sbx_error **err)
{
	_cleanup_error_ sbx_error *local = NULL;
	if (!err)
		err = &local; /* the walk reads back what it reported */
	struct tar_walk w = { .id_base = id_base, .err = err };
	int rc = -1;
	w.a = archive_write_new();
	w.buf = malloc(IO_BUF);
	if (!w.a || !w.buf) {
		sbx_error_errno(err, ENOMEM, "tar");
		goto out;
	}
	/* pax only where ustar cannot say it (long names, xattrs), and no
	 * time or name of the writer's host in the headers. */
	if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
	    archive_write_open(w.a, &out_fd, NULL, tw_write_cb, NULL) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "tar: %s", archive_error_string(w.a));
		goto out;
	}
	rc = tw_dir(&w, dirfd, "");
	if (rc == 0 && archive_write_close(w.a) != ARCHIVE_OK)
		rc = sbx_error_set(err, SBX_ERR_INTERNAL, "tar: %s", archive_error_string(w.a));
out:
	if (w.a)
		archive_write_free(w.a);
	for (size_t i = 0; i < w.n_links; i++)
		free(w.links[i].path);
	free(w.links);
	free(w.buf);
	return rc;
}

int sbx_layer_put_dir(struct sbx_layer_store *s, const char *owner, int dirfd, uint32_t id_base,
		      const struct sbx_layer_put_opts *opts, struct sbx_layer_info *info, sbx_error **err)
{
	if (!owner_valid(owner))
		return sbx_error_param(err, "owner", "'%s' is not a valid layer owner", owner ? owner : "");
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tfd = sbx_layer_store_scratch(s, "tree", &tmp, err);
	if (tfd < 0)
		return -1;
	int rc = -1;
	_cleanup_close_ int tar = openat(tfd, "layer.tar", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (tar < 0) {
		sbx_error_errno(err, errno, "layer store: temporary tar");
	} else if (sbx_layer_tar_dir(dirfd, id_base, tar, err) == 0) {
		struct sbx_layer_put_opts o = opts ? *opts : (struct sbx_layer_put_opts){ .size = -1 };
		o.keep = SBX_LAYER_KEEP_COMPRESSED;
		if (lseek(tar, 0, SEEK_SET) < 0)
			sbx_error_errno(err, errno, "layer store: temporary tar");
		else
			rc = sbx_layer_put_fd(s, owner, tar, &o, info, err);
	}
	sbx_error *ignored = NULL;
	sbx_layer_store_rmtemp(s, tmp, &ignored);
	sbx_error_free(ignored);
	return rc;
}
