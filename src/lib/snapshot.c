/* A running sandbox's writable layer captured as a layer (see
 * snapshot.h). The freeze lasts only for the clone: storing a layer
 * (a tar written, hashed and unpacked) takes several times longer and is
 * done on the clone, with the sandbox running again. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"
#include "snapshot.h"
#include "syscalls.h"
#include "util.h"

#define COPY_BUF (1 << 20)

/* Files of several names: the first name cloned, by inode. */
struct link_seen {
	dev_t dev;
	ino_t ino;
	char *path; /* relative to the clone's root */
};

struct clone_ctx {
	int dst_root;
	struct link_seen *links;
	size_t n_links, cap_links;
	struct sbx_snapshot_info *info;
	char *xbuf; /* attribute names and values */
	char *cbuf; /* file content, where the kernel does not copy it */
	bool tolerant; /* the tree is in use: entries may vanish */
	size_t xcap;
};

static int copy_xattrs(struct clone_ctx *c, int sdir, int ddir, const char *name, const char *rel, sbx_error **err)
{
	char sp[64 + NAME_MAX], dp[64 + NAME_MAX];
	/* The l*xattr calls by a path through the directory's descriptor:
	 * one way for every kind of file, symlinks included. */
	snprintf(sp, sizeof(sp), "/proc/self/fd/%d/%s", sdir, name);
	snprintf(dp, sizeof(dp), "/proc/self/fd/%d/%s", ddir, name);
	ssize_t n = llistxattr(sp, c->xbuf, c->xcap / 2);
	if (n < 0) {
		if (errno == ENOTSUP)
			return 0;
		return sbx_error_errno(err, errno, "list attributes of '%s'", rel);
	}
	char *vbuf = c->xbuf + c->xcap / 2;
	for (char *k = c->xbuf; k < c->xbuf + n; k += strlen(k) + 1) {
		ssize_t vn = lgetxattr(sp, k, vbuf, c->xcap / 2);
		if (vn < 0)
			return sbx_error_errno(err, errno, "read attribute %s of '%s'", k, rel);
		if (lsetxattr(dp, k, vbuf, (size_t)vn, 0) < 0)
			return sbx_error_errno(err, errno, "set attribute %s on '%s'", k, rel);
	}
	return 0;
}

/* Owner, then mode (a chown clears set-id bits), attributes, times. */
static int copy_meta(struct clone_ctx *c, int sdir, int ddir, const char *name, const char *rel, const struct stat *st,
		     sbx_error **err)
{
	if (fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sbx_error_errno(err, errno, "chown '%s'", rel);
	if (!S_ISLNK(st->st_mode) && fchmodat(ddir, name, st->st_mode & 07777, 0) < 0)
		return sbx_error_errno(err, errno, "chmod '%s'", rel);
	if (copy_xattrs(c, sdir, ddir, name, rel, err) < 0)
		return -1;
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sbx_error_errno(err, errno, "set times of '%s'", rel);
	return 0;
}

/* Content with its holes: copy_file_range in the kernel, or read and
 * write where it refuses (between two file systems, e.g. from a disk
 * image). */
static int copy_content(int in, int out, off_t size, char *buf, size_t bufsize, sbx_error **err)
{
	if (ftruncate(out, size) < 0)
		return sbx_error_errno(err, errno, "size");
	bool kernel = true;
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole is left */
			return sbx_error_errno(err, errno, "seek");
		}
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return sbx_error_errno(err, errno, "seek");
		off_t at = data;
		while (at < hole) {
			if (kernel) {
				off_t o = at;
				ssize_t n = copy_file_range(in, &at, out, &o, (size_t)(hole - at), 0);
				if (n > 0)
					continue;
				if (n == 0)
					break;
				if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS)
					return sbx_error_errno(err, errno, "copy");
				kernel = false;
			}
			size_t want = (size_t)(hole - at) < bufsize ? (size_t)(hole - at) : bufsize;
			ssize_t n = pread(in, buf, want, at);
			if (n < 0)
				return sbx_error_errno(err, errno, "read");
			if (n == 0)
				break;
			for (ssize_t w = 0; w < n;) {
				ssize_t k = pwrite(out, buf + w, (size_t)(n - w), at + w);
				if (k < 0)
					return sbx_error_errno(err, errno, "write");
				w += k;
			}
			at += n;
		}
		pos = hole;
	}
	return 0;
}

static int clone_file(struct clone_ctx *c, int sdir, int ddir, const char *name, const char *rel, sbx_error **err)
{
	_cleanup_close_ int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return sbx_error_errno(err, errno, "open '%s'", rel);
	_cleanup_close_ int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return sbx_error_errno(err, errno, "create '%s'", rel);
	struct stat st;
	if (fstat(in, &st) < 0)
		return sbx_error_errno(err, errno, "stat '%s'", rel);
	if (st.st_size > 0 && ioctl(out, FICLONE, in) == 0) {
		c->info->reflinked++;
	} else if (st.st_size > 0 && copy_content(in, out, st.st_size, c->cbuf, COPY_BUF, err) < 0) {
		return sbx_error_prefix(err, "'%s'", rel);
	}
	c->info->bytes += st.st_size;
	return 0;
}

static int remember_link(struct clone_ctx *c, const struct stat *st, const char *rel)
{
	if (c->n_links == c->cap_links) {
		size_t cap = c->cap_links ? c->cap_links * 2 : 64;
		struct link_seen *v = realloc(c->links, cap * sizeof(*v));
		if (!v)
			return -1;
		c->links = v;
		c->cap_links = cap;
	}
	char *p = strdup(rel);
	if (!p)
		return -1;
	c->links[c->n_links++] = (struct link_seen){ st->st_dev, st->st_ino, p };
	return 0;
}

static const char *link_target(struct clone_ctx *c, const struct stat *st)
{
	for (size_t i = 0; i < c->n_links; i++)
		if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino)
			return c->links[i].path;
	return NULL;
}

static int clone_dir(struct clone_ctx *c, int sdir, int ddir, const char *rel, sbx_error **err);

/* A file whose other names matter: overlayfs links its whiteouts (0:0
 * character devices) to one inode of its own, which means nothing to a
 * layer; each is made anew. */
static bool linked(const struct stat *st)
{
	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return false;
	return !(S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0));
}

/* One entry of sdir (st: its lstat) made in ddir, with its metadata. */
static int clone_entry(struct clone_ctx *c, int sdir, int ddir, const char *name, const char *sub,
		       const struct stat *st, sbx_error **err)
{
	c->info->files++;
	if (linked(st)) {
		const char *first = link_target(c, st);
		if (first) {
			if (linkat(c->dst_root, first, ddir, name, 0) < 0)
				return sbx_error_errno(err, errno, "link '%s' to '%s'", sub, first);
			return 0;
		}
	}
	switch (st->st_mode & S_IFMT) {
	case S_IFDIR: {
		if (mkdirat(ddir, name, 0700) < 0)
			return sbx_error_errno(err, errno, "create '%s'", sub);
		_cleanup_close_ int s2 = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s2 < 0)
			return sbx_error_errno(err, errno, "open '%s'", sub);
		_cleanup_close_ int d2 = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d2 < 0)
			return sbx_error_errno(err, errno, "open '%s'", sub);
		if (clone_dir(c, s2, d2, sub, err) < 0)
			return -1;
		break;
	}
	case S_IFREG:
		if (clone_file(c, sdir, ddir, name, sub, err) < 0)
			return -1;
		break;
	case S_IFLNK: {
		char target[PATH_MAX];
		ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return sbx_error_errno(err, errno, "read link '%s'", sub);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) < 0)
			return sbx_error_errno(err, errno, "create link '%s'", sub);
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
		if (mknodat(ddir, name, st->st_mode & S_IFMT, st->st_rdev) < 0)
			return sbx_error_errno(err, errno, "create '%s'", sub);
		break;
	default: /* sockets: nothing to keep */
		c->info->files--;
		return 0;
	}
	if (copy_meta(c, sdir, ddir, name, sub, st, err) < 0)
		return -1;
	if (linked(st) && remember_link(c, st, sub) < 0)
		return sbx_error_errno(err, ENOMEM, "clone");
	return 0;
}

/* While the tree is in use, a file may go between the listing and its
 * copy: what vanished is left out (the pass under the freeze sees it). */
static bool vanished(struct clone_ctx *c, sbx_error **err)
{
	if (!c->tolerant || !err || !*err || (*err)->errnum != ENOENT)
		return false;
	sbx_error_free(*err);
	*err = NULL;
	return true;
}

/* A stream over the names of directory fd dir, from its first entry,
 * leaving dir itself open; an error names it as what'rel'. */
static DIR *walk_dir(int dir, const char *what, const char *rel, sbx_error **err)
{
	int fd = fcntl(dir, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		sbx_error_errno(err, errno, "dup");
		return NULL;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		sbx_error_errno(err, e, "read %s'%s'", what, rel);
		return NULL;
	}
	/* A duplicate shares the position an earlier walk left at the end. */
	rewinddir(d);
	return d;
}

static int sub_path(char *sub, size_t size, const char *rel, const char *name, sbx_error **err)
{
	if (snprintf(sub, size, "%s%s%s", rel, *rel ? "/" : "", name) >= (int)size)
		return sbx_error_set(err, SBX_ERR_LIMIT, "path too long below '%s'", rel);
	return 0;
}

static int clone_dir(struct clone_ctx *c, int sdir, int ddir, const char *rel, sbx_error **err)
{
	_cleanup_closedir_ DIR *d = walk_dir(sdir, "", rel, err);
	if (!d)
		return -1;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		const char *name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		char sub[PATH_MAX];
		if (sub_path(sub, sizeof(sub), rel, name, err) < 0)
			return -1;
		struct stat st;
		if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT && c->tolerant)
				continue;
			return sbx_error_errno(err, errno, "stat '%s'", sub);
		}
		if (clone_entry(c, sdir, ddir, name, sub, &st, err) < 0) {
			if (!vanished(c, err))
				return -1;
			sbx_rm_rf_at(ddir, name, NULL);
		}
	}
	if (errno)
		return sbx_error_errno(err, errno, "read '%s'", rel);
	return 0;
}

static bool changed_since(const struct stat *st, const struct timespec *since)
{
	return st->st_ctim.tv_sec > since->tv_sec ||
	       (st->st_ctim.tv_sec == since->tv_sec && st->st_ctim.tv_nsec >= since->tv_nsec);
}

/* The attributes of dst made those of src again: removed ones too. */
static int reset_xattrs(struct clone_ctx *c, int sdir, int ddir, const char *name, const char *rel, sbx_error **err)
{
	char dp[64 + NAME_MAX];
	snprintf(dp, sizeof(dp), "/proc/self/fd/%d/%s", ddir, name);
	ssize_t n = llistxattr(dp, c->xbuf, c->xcap);
	for (char *k = c->xbuf; n > 0 && k < c->xbuf + n; k += strlen(k) + 1)
		lremovexattr(dp, k);
	return copy_xattrs(c, sdir, ddir, name, rel, err);
}

/* 1: a change the pass cannot follow (a file of several names changed,
 * or a new one): clone the whole tree again. */
static int sync_dir(struct clone_ctx *c, int sdir, int ddir, const char *rel, const struct timespec *since,
		    sbx_error **err)
{
	_cleanup_closedir_ DIR *d = walk_dir(sdir, "", rel, err);
	if (!d)
		return -1;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		const char *name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		char sub[PATH_MAX];
		if (sub_path(sub, sizeof(sub), rel, name, err) < 0)
			return -1;
		struct stat st, dst;
		if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return sbx_error_errno(err, errno, "stat '%s'", sub);
		bool have = fstatat(ddir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
		if (have && S_ISDIR(st.st_mode) && S_ISDIR(dst.st_mode)) {
			_cleanup_close_ int s2 = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			_cleanup_close_ int d2 = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s2 < 0 || d2 < 0)
				return sbx_error_errno(err, errno, "open '%s'", sub);
			int r = sync_dir(c, s2, d2, sub, since, err);
			if (r != 0)
				return r;
			if (changed_since(&st, since) &&
			    (fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
			     fchmodat(ddir, name, st.st_mode & 07777, 0) < 0 ||
			     reset_xattrs(c, sdir, ddir, name, sub, err) < 0))
				return err && *err ? -1 : sbx_error_errno(err, errno, "'%s'", sub);
			/* Its times last: what was made in it changed them. */
			struct timespec ts[2] = { st.st_atim, st.st_mtim };
			if (utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
				return sbx_error_errno(err, errno, "set times of '%s'", sub);
			continue;
		}
		if (have && (st.st_mode & S_IFMT) == (dst.st_mode & S_IFMT) && !changed_since(&st, since))
			continue;
		if (linked(&st) || (have && linked(&dst)))
			return 1;
		if (have && sbx_rm_rf_at(ddir, name, err) < 0)
			return -1;
		if (clone_entry(c, sdir, ddir, name, sub, &st, err) < 0)
			return -1;
	}
	if (errno)
		return sbx_error_errno(err, errno, "read '%s'", rel);
	/* Names gone from src since the clone. */
	struct stat self;
	if (fstat(sdir, &self) < 0)
		return sbx_error_errno(err, errno, "stat '%s'", rel);
	if (!changed_since(&self, since))
		return 0;
	_cleanup_closedir_ DIR *dd = walk_dir(ddir, "the clone of ", rel, err);
	if (!dd)
		return -1;
	while ((errno = 0, de = readdir(dd))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(sdir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (errno != ENOENT)
			return sbx_error_errno(err, errno, "stat '%s/%s'", rel, de->d_name);
		struct stat gone;
		if (fstatat(ddir, de->d_name, &gone, AT_SYMLINK_NOFOLLOW) == 0 && linked(&gone))
			return 1;
		if (sbx_rm_rf_at(ddir, de->d_name, err) < 0)
			return -1;
	}
	return 0;
}

static int ctx_init(struct clone_ctx *c, int dst, struct sbx_snapshot_info *info, sbx_error **err)
{
	*c = (struct clone_ctx){ .dst_root = dst, .info = info, .xcap = 2 * 65536 };
	c->xbuf = malloc(c->xcap);
	c->cbuf = malloc(COPY_BUF);
	if (!c->xbuf || !c->cbuf) {
		free(c->xbuf);
		free(c->cbuf);
		return sbx_error_errno(err, ENOMEM, "clone");
	}
	return 0;
}

static void ctx_fini(struct clone_ctx *c)
{
	for (size_t i = 0; i < c->n_links; i++)
		free(c->links[i].path);
	free(c->links);
	free(c->xbuf);
	free(c->cbuf);
}

/* The root itself: owner, mode, attributes (an opaque root), times. */
static int root_meta(struct clone_ctx *c, int src, int dst, sbx_error **err)
{
	struct stat st;
	if (fstat(src, &st) < 0)
		return sbx_error_errno(err, errno, "stat");
	if (fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0)
		return sbx_error_errno(err, errno, "set owner of the root");
	if (reset_xattrs(c, src, dst, ".", "/", err) < 0)
		return -1;
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	if (futimens(dst, ts) < 0)
		return sbx_error_errno(err, errno, "set times of the root");
	return 0;
}

int sbx_tree_sync(int src, int dst, const struct timespec *since, struct sbx_snapshot_info *info, sbx_error **err)
{
	struct sbx_snapshot_info dummy = { 0 };
	struct clone_ctx c;
	if (ctx_init(&c, dst, info ? info : &dummy, err) < 0)
		return -1;
	int rc = sync_dir(&c, src, dst, "", since, err);
	if (rc == 0 && root_meta(&c, src, dst, err) < 0)
		rc = -1;
	ctx_fini(&c);
	return rc;
}

static int tree_clone(int src, int dst, bool tolerant, struct sbx_snapshot_info *info, sbx_error **err)
{
	struct sbx_snapshot_info dummy = { 0 };
	struct clone_ctx c;
	if (ctx_init(&c, dst, info ? info : &dummy, err) < 0)
		return -1;
	c.tolerant = tolerant;
	int rc = clone_dir(&c, src, dst, "", err);
	if (rc == 0 && root_meta(&c, src, dst, err) < 0)
		rc = -1;
	ctx_fini(&c);
	return rc;
}

int sbx_tree_clone(int src, int dst, struct sbx_snapshot_info *info, sbx_error **err)
{
	return tree_clone(src, dst, false, info, err);
}

/* The loop device a running box's disk image is attached to. */
static int find_loop(const char *image, char dev[32])
{
	_cleanup_closedir_ DIR *d = opendir("/sys/block");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		int idx;
		char rest;
		if (sscanf(de->d_name, "loop%d%c", &idx, &rest) != 1)
			continue;
		char backing[4096];
		if (sbx_loop_backing_file(idx, backing, sizeof(backing)) < 0)
			continue;
		size_t n = strlen(backing);
		while (n && backing[n - 1] == '\n')
			backing[--n] = '\0';
		if (!strcmp(backing, image)) {
			snprintf(dev, 32, "/dev/loop%d", idx);
			return 0;
		}
	}
	return -1;
}

/* A detached mount of the disk's file system: the same superblock as the
 * sandbox's own mount (the kernel shares it), so the same files. */
static int mount_disk(const char *dev, sbx_error **err)
{
	_cleanup_close_ int fs = fsopen("ext4", FSOPEN_CLOEXEC);
	if (fs < 0)
		return sbx_error_errno(err, errno, "fsopen ext4");
	if (fsconfig(fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return sbx_error_errno(err, errno, "mount %s", dev);
	int mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
	if (mnt < 0)
		return sbx_error_errno(err, errno, "mount %s", dev);
	return mnt;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sbx_box_snapshot(struct sbx_box *box, struct sbx_layer_store *s, const char *owner,
		     struct sbx_snapshot_info *info, sbx_error **err)
{
	memset(info, 0, sizeof(*info));
	_cleanup_free_ char *image = sbx_box_disk_image(box), *tmp = NULL, *tmp2 = NULL;
	_cleanup_close_ int disk = -1, upper = -1, tfd = -1, lfd = -1, tfd2 = -1;
	int loop_index = -1, rc = -1;
	bool empty = false;
	if (image) {
		char dev[32];
		if (box->running) {
			if (find_loop(image, dev) < 0) {
				sbx_error_set(err, SBX_ERR_INTERNAL, "sandbox %s: its disk's loop device is not found", box->id);
				goto out;
			}
		} else {
			if ((loop_index = sbx_loop_add(err)) < 0)
				goto out;
			if ((lfd = sbx_disk_attach(loop_index, image, dev, err)) < 0)
				goto out;
		}
		if ((disk = mount_disk(dev, err)) < 0)
			goto out;
		sbx_closep(&lfd); /* the mount holds the device now */
		upper = openat(disk, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* Never started: the disk has no layer yet, an empty one. */
		if (upper < 0 && errno == ENOENT) {
			upper = openat(disk, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			empty = true;
		}
	} else {
		char rel[64];
		snprintf(rel, sizeof(rel), "sandboxes/%s/upper", box->id);
		upper = openat(box->host->state_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (upper < 0) {
		sbx_error_errno(err, errno, "sandbox %s: open its writable layer", box->id);
		goto out;
	}
	if ((tfd = sbx_layer_store_scratch(s, "snapshot", &tmp, err)) < 0)
		goto out;
	bool freeze = box->running && !box->frozen && box->cgroup;
	/* Copied while it runs; under the freeze only what changed since
	 * (its inode's ctime moved), so the pause follows the changes, not
	 * the size. A second of margin: file times are coarse. */
	struct timespec since;
	clock_gettime(CLOCK_REALTIME, &since);
	since.tv_sec -= 1;
	if (empty)
		freeze = false;
	if (freeze && tree_clone(upper, tfd, true, info, err) < 0) {
		sbx_error_prefix(err, "sandbox %s: copy its writable layer", box->id);
		goto out;
	}
	int64_t t0 = now_ms();
	if (freeze && sbx_cgroup_freeze(box->host->cg, box->cgroup, true, err) < 0) {
		/* Half frozen is never left behind. */
		sbx_cgroup_freeze(box->host->cg, box->cgroup, false, NULL);
		sbx_error_prefix(err, "sandbox %s: freeze", box->id);
		goto out;
	}
	int crc;
	if (freeze) {
		struct sbx_snapshot_info delta = { 0 };
		crc = sbx_tree_sync(upper, tfd, &since, &delta, err);
		if (crc == 1) {
			/* A file of several names changed: the whole tree again. */
			delta = (struct sbx_snapshot_info){ 0 };
			tfd2 = sbx_layer_store_scratch(s, "snapshot", &tmp2, err);
			crc = tfd2 < 0 ? -1 : sbx_tree_clone(upper, tfd2, &delta, err);
			int fd = tfd;
			tfd = tfd2;
			tfd2 = fd;
			char *p = tmp;
			tmp = tmp2;
			tmp2 = p;
		}
		info->changed = delta.files;
		info->bytes += delta.bytes;
		info->reflinked += delta.reflinked;
	} else if (empty) {
		/* The root of a layer as a start would make it: the sandbox's root's. */
		crc = fchown(tfd, box->userns_base, box->userns_base) < 0 || fchmod(tfd, 0755) < 0
			      ? sbx_error_errno(err, errno, "empty layer")
			      : 0;
	} else {
		crc = sbx_tree_clone(upper, tfd, info, err);
	}
	if (freeze) {
		sbx_error *terr = NULL;
		/* A group gone meanwhile was killed by a stop: nothing ran (or
		 * wrote) while the clone was made, and nothing is left to thaw. */
		if (sbx_cgroup_freeze(box->host->cg, box->cgroup, false, &terr) < 0 && terr->errnum != ENOENT) {
			/* Tried again: a sandbox must not stay frozen by a snapshot. */
			sbx_error_free(terr);
			terr = NULL;
			if (sbx_cgroup_freeze(box->host->cg, box->cgroup, false, &terr) < 0 && terr->errnum != ENOENT &&
			    crc == 0) {
				sbx_error_set(err, terr->code, "sandbox %s: thaw: %s", box->id, terr->msg);
				crc = -1;
			}
			sbx_error_free(terr);
		}
		info->pause_ms = now_ms() - t0;
	}
	if (crc < 0) {
		sbx_error_prefix(err, "sandbox %s: clone its writable layer", box->id);
		goto out;
	}
	if (sbx_layer_put_dir(s, owner, tfd, box->userns_base, NULL, &info->layer, err) < 0) {
		sbx_error_prefix(err, "sandbox %s: store its writable layer", box->id);
		goto out;
	}
	rc = 0;
out:
	if (tmp)
		sbx_layer_store_rmtemp(s, tmp, NULL);
	if (tmp2)
		sbx_layer_store_rmtemp(s, tmp2, NULL);
	if (loop_index >= 0) {
		sbx_closep(&upper);
		sbx_closep(&disk);
		sbx_closep(&lfd);
		/* Detached once the mount is gone (autoclear); removed when free. */
		for (int i = 0; i < 50 && sbx_loop_remove(loop_index) == -EBUSY; i++)
			usleep(20000);
	}
	return rc;
}
