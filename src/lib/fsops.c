/* The fs API's file operations. A path from a client is only ever a
 * string handed to openat2 with RESOLVE_IN_ROOT below the sandbox root; a
 * name is only ever used relative to an fd of its in-root parent; content
 * is only ever read from an fd whose fstat said "regular file". */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsops.h"
#include "syscalls.h"
#include "util.h"

#define RESOLVE_FLAGS (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define USERNS_SIZE 65536
#define PROC_SUPER_MAGIC_ 0x9fa0
#define SYSFS_MAGIC_ 0x62656572

/* Paths go into messages that become JSON: keep them valid UTF-8. */
static int fs_errno(sbx_error **err, int e, const char *what, const char *path)
{
	_cleanup_free_ char *shown = sbx_utf8_sanitize(path, strlen(path), NULL);
	if (e == ELOOP || e == EXDEV)
		return sbx_error_errno(err, e, "%s '%s': the path leaves the sandbox root or loops through symlinks",
				       what, shown ? shown : "?");
	return sbx_error_errno(err, e, "%s '%s'", what, shown ? shown : "?");
}

__attribute__((format(printf, 3, 0))) static int fs_fail(sbx_error **err, int code, const char *fmt, const char *path)
{
	_cleanup_free_ char *shown = sbx_utf8_sanitize(path, strlen(path), NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	return sbx_error_set(err, code, fmt, shown ? shown : "?");
#pragma GCC diagnostic pop
}

int sbx_fs_normalize(const struct sbx_fs *fs, const char *path, const char *param, char **out, sbx_error **err)
{
	if (!path || !*path)
		return sbx_error_param(err, param, "'%s' must not be empty", param);
	size_t plen = strlen(path);
	if (plen > SBX_FS_PATH_MAX)
		return sbx_error_param(err, param, "'%s' is %zu bytes long; paths are limited to %d bytes", param, plen,
				       SBX_FS_PATH_MAX);
	const char *wd = fs->workdir && *fs->workdir ? fs->workdir : "/";
	_cleanup_free_ char *joined = NULL;
	if (path[0] == '/')
		joined = strdup(path);
	else if (asprintf(&joined, "%s/%s", wd, path) < 0)
		joined = NULL;
	if (!joined)
		return sbx_error_errno(err, ENOMEM, "path");
	size_t n = strlen(joined);
	char *res = malloc(n + 2);
	if (!res)
		return sbx_error_errno(err, ENOMEM, "path");
	size_t len = 0;
	char *save = NULL;
	for (char *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			/* ".." at the root stays at the root, as the kernel does. */
			while (len > 0 && res[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			continue;
		}
		res[len++] = '/';
		size_t cl = strlen(c);
		memcpy(res + len, c, cl);
		len += cl;
	}
	if (len == 0)
		res[len++] = '/';
	res[len] = '\0';
	if (len > SBX_FS_PATH_MAX) {
		free(res);
		return sbx_error_param(err, param, "'%s' is longer than %d bytes inside the sandbox", param,
				       SBX_FS_PATH_MAX);
	}
	*out = res;
	return 0;
}

int sbx_fs_openat(const struct sbx_fs *fs, const char *abspath, int flags, mode_t mode)
{
	int fd;
	do {
		fd = sbx_openat2(fs->rootfd, abspath, (uint64_t)(flags | O_CLOEXEC), (flags & O_CREAT) ? mode : 0,
				 RESOLVE_FLAGS);
	} while (fd < 0 && errno == EAGAIN); /* a concurrent rename; retry */
	return fd;
}

int sbx_fs_open(const struct sbx_fs *fs, const char *abspath, int flags, sbx_error **err)
{
	int fd = sbx_fs_openat(fs, abspath, flags, 0);
	if (fd < 0)
		return fs_errno(err, errno, "open", abspath);
	return fd;
}

int sbx_fs_open_parent(const struct sbx_fs *fs, const char *abspath, const char **name, sbx_error **err)
{
	const char *slash = strrchr(abspath, '/');
	if (!slash || !slash[1])
		return fs_fail(err, SBX_ERR_DENIED, "'%s' has no parent directory inside the sandbox", abspath);
	*name = slash + 1;
	size_t plen = slash == abspath ? 1 : (size_t)(slash - abspath);
	char parent[SBX_FS_PATH_MAX + 2];
	if (plen >= sizeof(parent))
		return sbx_error_param(err, "path", "path too long");
	memcpy(parent, abspath, plen);
	parent[plen] = '\0';
	int fd = sbx_fs_openat(fs, parent, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fs_errno(err, errno, "open parent directory of", abspath);
	return fd;
}

/* What we create belongs to the sandbox's user, not to host root. */
static int give_to_owner(const struct sbx_fs *fs, int fd, const char *path, sbx_error **err)
{
	if (fs->uid == 0 && fs->gid == 0)
		return 0;
	if (fchownat(fd, "", fs->uid, fs->gid, AT_EMPTY_PATH) < 0)
		return fs_errno(err, errno, "chown", path);
	return 0;
}

static int chmod_fd(int fd, mode_t mode)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return chmod(proc, mode);
}

/* Reopen an O_PATH fd for its content through the daemon's own /proc,
 * which names exactly that inode (no path is looked up again), and check
 * that it is the same regular file. */
static int reopen_regular(int pathfd, const struct stat *want, int accmode, const char *path, sbx_error **err)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
	/* O_NONBLOCK: even if a FIFO were there, opening it would not wait. */
	int fd = open(proc, accmode | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return fs_errno(err, errno, "open", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != want->st_dev || st.st_ino != want->st_ino) {
		close(fd);
		return fs_fail(err, SBX_ERR_DENIED, "'%s' changed while being opened", path);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

static int check_regular(const struct stat *st, const char *path, sbx_error **err)
{
	if (S_ISREG(st->st_mode))
		return 0;
	if (S_ISDIR(st->st_mode)) {
		_cleanup_free_ char *shown = sbx_utf8_sanitize(path, strlen(path), NULL);
		return sbx_error_param(err, "path", "'%s' is a directory", shown ? shown : "?");
	}
	return fs_fail(err, SBX_ERR_DENIED,
		       "'%s' is not a regular file (a FIFO, socket or device); sandboxd does not open those", path);
}

int sbx_fs_open_file(const struct sbx_fs *fs, const char *abspath, int accmode, bool create, bool create_parents,
		     mode_t mode, bool *created, sbx_error **err)
{
	if (created)
		*created = false;
	_cleanup_free_ char *hop = NULL; /* the path after following dangling symlinks */
	for (int attempt = 0; attempt < 40; attempt++) {
		_cleanup_close_ int pfd = sbx_fs_openat(fs, abspath, O_PATH, 0);
		if (pfd >= 0) {
			struct stat st;
			if (fstat(pfd, &st) < 0)
				return fs_errno(err, errno, "stat", abspath);
			if (check_regular(&st, abspath, err) < 0)
				return -1;
			return reopen_regular(pfd, &st, accmode, abspath, err);
		}
		if (errno != ENOENT || !create)
			return fs_errno(err, errno, "open", abspath);
		const char *name = NULL;
		_cleanup_close_ int parent = sbx_fs_open_parent(fs, abspath, &name, NULL);
		if (parent < 0 && create_parents) {
			char dir[SBX_FS_PATH_MAX + 2];
			size_t dl = (size_t)(strrchr(abspath, '/') - abspath);
			if (dl == 0 || dl >= sizeof(dir))
				return fs_errno(err, ENOENT, "open parent directory of", abspath);
			memcpy(dir, abspath, dl);
			dir[dl] = '\0';
			if (sbx_fs_mkdir(fs, dir, 0755, true, true, err) < 0)
				return -1;
			parent = sbx_fs_open_parent(fs, abspath, &name, err);
		} else if (parent < 0) {
			return sbx_fs_open_parent(fs, abspath, &name, err);
		}
		if (parent < 0)
			return -1;
		/* One component below an in-root parent, no symlink at all. */
		int fd = sbx_openat2(parent, name,
				     (uint64_t)(accmode | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC),
				     mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
		if (fd < 0 && errno == EEXIST) {
			struct stat lst;
			if (fstatat(parent, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
				/* A dangling symlink: create its target as a process
				 * inside would, the target's path resolved in-root again. */
				char target[SBX_FS_PATH_MAX + 1];
				ssize_t tl = readlinkat(parent, name, target, sizeof(target) - 1);
				if (tl <= 0)
					continue;
				target[tl] = '\0';
				_cleanup_free_ char *joined = NULL;
				if (target[0] == '/')
					joined = strdup(target);
				else if (asprintf(&joined, "%.*s/%s", (int)(name - abspath), abspath, target) < 0)
					joined = NULL;
				if (!joined)
					return sbx_error_errno(err, ENOMEM, "create");
				free(hop);
				hop = NULL;
				if (sbx_fs_normalize(fs, joined, "path", &hop, err) < 0)
					return -1;
				abspath = hop;
			}
			continue; /* created meanwhile, or a symlink: open what is there */
		}
		if (fd < 0)
			return fs_errno(err, errno, "create", abspath);
		if (give_to_owner(fs, fd, abspath, err) < 0 || fchmod(fd, mode) < 0) {
			if (err && !*err)
				fs_errno(err, errno, "chmod", abspath);
			close(fd);
			return -1;
		}
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		if (created)
			*created = true;
		return fd;
	}
	return fs_fail(err, SBX_ERR_DENIED, "'%s' keeps changing while being opened", abspath);
}

int sbx_fs_mkdir(const struct sbx_fs *fs, const char *abspath, mode_t mode, bool parents, bool exist_ok,
		 sbx_error **err)
{
	size_t len = strlen(abspath);
	if (len > SBX_FS_PATH_MAX)
		return sbx_error_param(err, "path", "path too long");
	char buf[SBX_FS_PATH_MAX + 2];
	memcpy(buf, abspath, len + 1);
	/* With parents, every prefix; without, only the last one. */
	size_t start = parents ? 1 : len;
	for (size_t i = start; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		bool last = saved == '\0';
		if (!strcmp(buf, "") || !strcmp(buf, "/")) {
			buf[i] = saved;
			if (last && !exist_ok)
				return fs_errno(err, EEXIST, "mkdir", "/");
			continue;
		}
		const char *name = NULL;
		_cleanup_close_ int parent = sbx_fs_open_parent(fs, buf, &name, err);
		if (parent < 0)
			return -1;
		if (mkdirat(parent, name, last ? mode : 0755) == 0) {
			_cleanup_close_ int d = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (d < 0)
				return fs_errno(err, errno, "open", buf);
			if (give_to_owner(fs, d, buf, err) < 0)
				return -1;
			if (last && chmod_fd(d, mode) < 0)
				return fs_errno(err, errno, "chmod", buf);
		} else if (errno == EEXIST) {
			if (last && !exist_ok)
				return fs_errno(err, EEXIST, "mkdir", buf);
			/* It must be (or lead, in-root, to) a directory. */
			_cleanup_close_ int d = sbx_fs_openat(fs, buf, O_PATH | O_DIRECTORY, 0);
			if (d < 0)
				return fs_errno(err, errno, "mkdir", buf);
		} else {
			return fs_errno(err, errno, "mkdir", buf);
		}
		buf[i] = saved;
	}
	return 0;
}

int sbx_fs_remove(const struct sbx_fs *fs, const char *abspath, bool recursive, sbx_error **err)
{
	if (!strcmp(abspath, "/"))
		return sbx_error_set(err, SBX_ERR_DENIED, "refusing to remove the sandbox's root directory");
	const char *name = NULL;
	_cleanup_close_ int parent = sbx_fs_open_parent(fs, abspath, &name, err);
	if (parent < 0)
		return -1;
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fs_errno(err, errno, "remove", abspath);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(parent, name, 0) < 0)
			return fs_errno(err, errno, "remove", abspath);
		return 0;
	}
	if (!recursive) {
		if (unlinkat(parent, name, AT_REMOVEDIR) < 0) {
			if (errno == ENOTEMPTY || errno == EEXIST)
				return fs_fail(err, SBX_ERR_EXISTS,
					       "directory '%s' is not empty; remove it with recursive true", abspath);
			return fs_errno(err, errno, "remove", abspath);
		}
		return 0;
	}
	if (sbx_rm_rf_at(parent, name, err) < 0)
		return -1;
	return 0;
}

/* ---- moving a tree the overlay cannot rename ----
 * Without redirect_dir, overlayfs refuses (EXDEV) to rename a directory
 * that comes from the image. mv copies and removes in that case, and so do
 * we: into a temporary name beside the target, renamed into place when
 * whole, then the source removed. Each step opens a single name relative
 * to a directory fd already inside the root, with openat2 and no symlink
 * followed, and creates with O_EXCL or *at calls that do not follow
 * either: a process inside that swaps an entry for a symlink meanwhile
 * gets a copy of the symlink, never a path outside the root. Extended
 * attributes of files and directories (file capabilities, user.*) come
 * along, and files linked more than once inside the tree stay linked. */

#define COPY_DEPTH_MAX 256

static int child_open(int dfd, const char *name, int flags)
{
	int fd;
	do {
		fd = sbx_openat2(dfd, name, (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC), 0,
				 RESOLVE_FLAGS | RESOLVE_NO_SYMLINKS);
	} while (fd < 0 && errno == EAGAIN);
	return fd;
}

/* Files met more than once (st_nlink > 1): the first copy's descriptor,
 * to link the later names to. Past LINKS_MAX such files, later names
 * become copies of their own. */
#define LINKS_MAX 256
struct copy_links {
	size_t n;
	struct {
		dev_t dev;
		ino_t ino;
		int fd; /* the copy, for linkat(AT_EMPTY_PATH) */
	} e[LINKS_MAX];
};

static void copy_links_free(struct copy_links *l)
{
	for (size_t i = 0; i < l->n; i++)
		close(l->e[i].fd);
	l->n = 0;
}

/* Every extended attribute of src onto dst, but overlayfs' own. A file
 * system that takes none (or refuses a namespace) keeps the copy without
 * them, as mv does. */
static int copy_xattrs(int src, int dst)
{
	char names[16384], value[65536];
	ssize_t len = flistxattr(src, names, sizeof(names));
	if (len < 0)
		return errno == ENOTSUP || errno == ERANGE ? 0 : -1;
	for (char *n = names; n < names + len; n += strlen(n) + 1) {
		if (!strncmp(n, "trusted.overlay.", 16))
			continue;
		ssize_t vl = fgetxattr(src, n, value, sizeof(value));
		if (vl < 0) {
			if (errno == ENODATA || errno == ERANGE)
				continue;
			return -1;
		}
		if (fsetxattr(dst, n, value, (size_t)vl, 0) < 0 && errno != ENOTSUP && errno != EPERM)
			return -1;
	}
	return 0;
}

/* Owner, then mode (chown clears set-id bits and file capabilities), then
 * extended attributes, then times. */
static int copy_attrs(int src, int fd, const struct stat *st)
{
	struct timespec t[2] = { st->st_atim, st->st_mtim };
	if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0 || copy_xattrs(src, fd) < 0 ||
	    futimens(fd, t) < 0)
		return -1;
	return 0;
}

static int copy_dir_contents(int sdir, int ddir, const char *path, int level, struct copy_links *links,
			     sbx_error **err);

static int copy_entry(int sdir, int ddir, const char *name, const char *path, int level, struct copy_links *links,
		      sbx_error **err)
{
	struct stat st, got;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : fs_errno(err, errno, "copy", path); /* gone meanwhile */
	if (S_ISDIR(st.st_mode)) {
		if (level >= COPY_DEPTH_MAX)
			return fs_fail(err, SBX_ERR_LIMIT, "'%s' is nested too deep to copy", path);
		if (mkdirat(ddir, name, 0700) < 0)
			return fs_errno(err, errno, "create", path);
		_cleanup_close_ int s = child_open(sdir, name, O_RDONLY | O_DIRECTORY);
		_cleanup_close_ int d = child_open(ddir, name, O_RDONLY | O_DIRECTORY);
		if (s < 0 || d < 0)
			return fs_errno(err, errno, "open", path);
		if (fstat(s, &got) < 0 || got.st_ino != st.st_ino || got.st_dev != st.st_dev)
			return fs_fail(err, SBX_ERR_INTERNAL, "'%s' changed while being copied", path);
		if (copy_dir_contents(s, d, path, level + 1, links, err) < 0)
			return -1;
		/* After the contents, which would change its times. */
		if (copy_attrs(s, d, &st) < 0)
			return fs_errno(err, errno, "set owner, mode and times of", path);
		return 0;
	}
	if (S_ISREG(st.st_mode)) {
		_cleanup_close_ int s = child_open(sdir, name, O_RDONLY | O_NONBLOCK);
		if (s < 0)
			return fs_errno(err, errno, "open", path);
		if (fstat(s, &got) < 0 || !S_ISREG(got.st_mode))
			return fs_fail(err, SBX_ERR_INTERNAL, "'%s' changed while being copied", path);
		if (got.st_nlink > 1) {
			for (size_t i = 0; i < links->n; i++) {
				if (links->e[i].dev != got.st_dev || links->e[i].ino != got.st_ino)
					continue;
				if (linkat(links->e[i].fd, "", ddir, name, AT_EMPTY_PATH) < 0)
					return fs_errno(err, errno, "link", path);
				return 0;
			}
		}
		_cleanup_close_ int d = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (d < 0)
			return fs_errno(err, errno, "create", path);
		if (sbx_fs_copy_fd(s, d, -1, err) < 0)
			return sbx_error_prefix(err, "copy '%s'", path);
		if (copy_attrs(s, d, &got) < 0)
			return fs_errno(err, errno, "set owner, mode and times of", path);
		if (got.st_nlink > 1 && links->n < LINKS_MAX) {
			int pfd = fcntl(d, F_DUPFD_CLOEXEC, 3);
			if (pfd >= 0) {
				links->e[links->n].dev = got.st_dev;
				links->e[links->n].ino = got.st_ino;
				links->e[links->n].fd = pfd;
				links->n++;
			}
		}
		return 0;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(sdir, name, target, PATH_MAX);
		if (n < 0)
			return fs_errno(err, errno, "read link", path);
		target[n] = '\0';
		struct timespec t[2] = { st.st_atim, st.st_mtim };
		if (symlinkat(target, ddir, name) < 0 ||
		    fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		    utimensat(ddir, name, t, AT_SYMLINK_NOFOLLOW) < 0)
			return fs_errno(err, errno, "create link", path);
		return 0;
	}
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
		/* The mode goes in whole at creation: chmod by name would follow
		 * a symlink swapped in meanwhile. */
		mode_t old = umask(0);
		int r = mknodat(ddir, name, st.st_mode & (S_IFMT | 07777), 0);
		umask(old);
		struct timespec t[2] = { st.st_atim, st.st_mtim };
		if (r < 0 || fchownat(ddir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		    utimensat(ddir, name, t, AT_SYMLINK_NOFOLLOW) < 0)
			return fs_errno(err, errno, "create", path);
		return 0;
	}
	return fs_fail(err, SBX_ERR_UNSUPPORTED, "'%s' is a device node, which is not copied", path);
}

static int copy_dir_contents(int sdir, int ddir, const char *path, int level, struct copy_links *links,
			     sbx_error **err)
{
	int dup_fd = fcntl(sdir, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return sbx_error_errno(err, errno, "dup");
	DIR *dir = fdopendir(dup_fd);
	if (!dir) {
		close(dup_fd);
		return sbx_error_errno(err, errno, "opendir");
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (errno = 0, de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char child[SBX_FS_PATH_MAX + NAME_MAX + 2];
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		r = copy_entry(sdir, ddir, de->d_name, child, level, links, err);
	}
	if (r == 0 && errno)
		r = fs_errno(err, errno, "list", path);
	closedir(dir);
	return r;
}

/* Copy the directory src_name of src_parent to the new name dst_name of
 * dst_parent, contents, owners, modes, times and symlinks as they are. */
static int copy_tree_at(int src_parent, const char *src_name, int dst_parent, const char *dst_name, const char *path,
			sbx_error **err)
{
	struct stat st;
	_cleanup_close_ int s = child_open(src_parent, src_name, O_RDONLY | O_DIRECTORY);
	if (s < 0 || fstat(s, &st) < 0)
		return fs_errno(err, errno, "open", path);
	if (mkdirat(dst_parent, dst_name, 0700) < 0)
		return fs_errno(err, errno, "create copy of", path);
	_cleanup_close_ int d = child_open(dst_parent, dst_name, O_RDONLY | O_DIRECTORY);
	if (d < 0)
		return fs_errno(err, errno, "open copy of", path);
	struct copy_links *links = calloc(1, sizeof(*links));
	if (!links) {
		sbx_rm_rf_at(dst_parent, dst_name, NULL);
		return sbx_error_errno(err, ENOMEM, "copy");
	}
	int r = 0;
	if (copy_dir_contents(s, d, path, 1, links, err) < 0 ||
	    (copy_attrs(s, d, &st) < 0 && fs_errno(err, errno, "set owner, mode and times of", path) < 0)) {
		sbx_rm_rf_at(dst_parent, dst_name, NULL); /* ours: made above */
		r = -1;
	}
	copy_links_free(links);
	free(links);
	return r;
}

int sbx_fs_copy_tree(const struct sbx_fs *fs, const char *src, const char *dst, sbx_error **err)
{
	const char *sn = NULL, *dn = NULL;
	_cleanup_close_ int sp = sbx_fs_open_parent(fs, src, &sn, err);
	if (sp < 0)
		return -1;
	_cleanup_close_ int dp = sbx_fs_open_parent(fs, dst, &dn, err);
	if (dp < 0)
		return -1;
	return copy_tree_at(sp, sn, dp, dn, src, err);
}

/* The EXDEV fallback of sbx_fs_move for a directory. */
static int move_by_copy(int sp, const char *sn, int dp, const char *dn, const char *src, const char *target,
			bool overwrite, sbx_error **err)
{
	struct stat st;
	if (!overwrite && fstatat(dp, dn, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return fs_fail(err, SBX_ERR_EXISTS, "'%s' exists; pass overwrite true to replace it", target);
	char rnd[13], tmp[NAME_MAX + 1];
	if (sbx_random_id(rnd, err) < 0)
		return -1;
	snprintf(tmp, sizeof(tmp), ".sbx-move-%s", rnd);
	if (copy_tree_at(sp, sn, dp, tmp, src, err) < 0)
		return sbx_error_prefix(err, "move '%s' by copying", src);
	if (renameat2(dp, tmp, dp, dn, overwrite ? 0 : RENAME_NOREPLACE) < 0) {
		int e = errno;
		sbx_rm_rf_at(dp, tmp, NULL);
		if (e == EEXIST || e == ENOTEMPTY)
			return fs_fail(err, SBX_ERR_EXISTS, "'%s' exists; pass overwrite true to replace it", target);
		return fs_errno(err, e, "move to", target);
	}
	if (sbx_rm_rf_at(sp, sn, err) < 0)
		return sbx_error_prefix(err, "copied '%s' to '%s' but could not remove it", src, target);
	return 0;
}

int sbx_fs_move(const struct sbx_fs *fs, const char *src, const char *dst, bool overwrite, char **final,
		sbx_error **err)
{
	if (!strcmp(src, "/"))
		return sbx_error_set(err, SBX_ERR_DENIED, "refusing to move the sandbox's root directory");
	_cleanup_free_ char *target = strdup(dst);
	if (!target)
		return sbx_error_errno(err, ENOMEM, "move");
	_cleanup_close_ int dfd = sbx_fs_openat(fs, dst, O_PATH | O_DIRECTORY, 0);
	if (dfd >= 0) {
		/* An existing directory: into it, as mv does. */
		const char *base = strrchr(src, '/') + 1;
		free(target);
		if (asprintf(&target, "%s%s%s", dst, strcmp(dst, "/") ? "/" : "", base) < 0)
			return sbx_error_errno(err, ENOMEM, "move");
		if (strlen(target) > SBX_FS_PATH_MAX)
			return sbx_error_param(err, "dst", "'dst' is too long");
	}
	size_t sl = strlen(src);
	if (!strcmp(src, target))
		return fs_fail(err, SBX_ERR_INVALID_PARAMS, "'%s' is both source and destination", src);
	if (!strncmp(target, src, sl) && target[sl] == '/')
		return fs_fail(err, SBX_ERR_INVALID_PARAMS, "cannot move '%s' into itself", src);
	const char *sn = NULL, *dn = NULL;
	_cleanup_close_ int sp = sbx_fs_open_parent(fs, src, &sn, err);
	if (sp < 0)
		return -1;
	_cleanup_close_ int dp = sbx_fs_open_parent(fs, target, &dn, err);
	if (dp < 0)
		return -1;
	if (renameat2(sp, sn, dp, dn, overwrite ? 0 : RENAME_NOREPLACE) < 0) {
		int e = errno;
		struct stat st;
		if (e == EXDEV && fstatat(sp, sn, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
			if (move_by_copy(sp, sn, dp, dn, src, target, overwrite, err) < 0)
				return -1;
		} else if (e == EXDEV) {
			return fs_errno(err, e, "move to", target);
		} else if (e == EEXIST || e == ENOTEMPTY) {
			return fs_fail(err, SBX_ERR_EXISTS, "'%s' exists; pass overwrite true to replace it", target);
		} else {
			return fs_errno(err, e, "move to", target);
		}
	}
	if (final)
		*final = sbx_take_ptr(&target);
	return 0;
}

int64_t sbx_fs_id_inside(const struct sbx_fs *fs, uint32_t host_id)
{
	if (!fs->id_base)
		return host_id;
	if (host_id >= fs->id_base && host_id - fs->id_base < USERNS_SIZE)
		return host_id - fs->id_base;
	return 65534; /* the overflow id, as a process inside sees it */
}

int64_t sbx_fs_id_host(const struct sbx_fs *fs, int64_t inside_id)
{
	if (inside_id < 0 || inside_id > 0xfffffffeLL)
		return -1;
	if (!fs->id_base)
		return inside_id;
	if (inside_id >= USERNS_SIZE)
		return -1;
	return (int64_t)fs->id_base + inside_id;
}

int sbx_fs_chmod(const struct sbx_fs *fs, const char *abspath, int mode, int64_t uid, int64_t gid, sbx_error **err)
{
	_cleanup_close_ int fd = sbx_fs_open(fs, abspath, O_PATH, err);
	if (fd < 0)
		return -1;
	if (uid >= 0 || gid >= 0) {
		int64_t hu = uid >= 0 ? sbx_fs_id_host(fs, uid) : -1, hg = gid >= 0 ? sbx_fs_id_host(fs, gid) : -1;
		if ((uid >= 0 && hu < 0) || (gid >= 0 && hg < 0))
			return sbx_error_param(err, uid >= 0 && hu < 0 ? "owner" : "group",
					       "the id is outside the sandbox's user namespace (0-65535)");
		if (fchownat(fd, "", hu >= 0 ? (uid_t)hu : (uid_t)-1, hg >= 0 ? (gid_t)hg : (gid_t)-1, AT_EMPTY_PATH) < 0)
			return fs_errno(err, errno, "chown", abspath);
	}
	if (mode >= 0 && chmod_fd(fd, (mode_t)mode) < 0)
		return fs_errno(err, errno, "chmod", abspath);
	return 0;
}

int sbx_fs_parse_mode(const char *s, int *out)
{
	if (!s || !*s || strlen(s) > 6)
		return -1;
	int v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		v = v * 8 + (*p - '0');
	}
	if (v > 07777)
		return -1;
	*out = v;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Virtual filesystems (/proc, /sys) are not walked into: they are huge,
 * endless or blocking to read, and not the sandbox's files. */
static bool virtual_fs(int fd)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0)
		return true;
	return sfs.f_type == PROC_SUPER_MAGIC_ || sfs.f_type == SYSFS_MAGIC_;
}

static int walk_dir(int dfd, char *path, size_t plen, int level, int depth, sbx_fs_visit_fn visit, void *ctx,
		    sbx_error **err)
{
	int dup_fd = dup(dfd);
	if (dup_fd < 0)
		return sbx_error_errno(err, errno, "dup");
	DIR *dir = fdopendir(dup_fd);
	if (!dir) {
		close(dup_fd);
		return sbx_error_errno(err, errno, "opendir");
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				r = sbx_error_errno(err, ENOMEM, "list");
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name))) {
			r = sbx_error_errno(err, ENOMEM, "list");
			break;
		}
		n++;
	}
	closedir(dir);
	if (r == 0 && n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; r == 0 && i < n; i++) {
		size_t nl = strlen(names[i]);
		if (plen + 1 + nl > SBX_FS_PATH_MAX)
			continue; /* too deep to name; not reachable by path either */
		size_t sep = (plen == 1) ? 0 : 1;
		if (sep)
			path[plen] = '/';
		memcpy(path + plen + sep, names[i], nl + 1);
		size_t clen = plen + sep + nl;
		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			path[plen] = '\0';
			continue; /* gone meanwhile */
		}
		int v = visit(ctx, path, dfd, names[i], &st);
		if (v < 0) {
			r = v;
		} else if (v == 0 && S_ISDIR(st.st_mode) && (depth == 0 || level < depth)) {
			/* O_NOFOLLOW: a directory swapped for a symlink is not entered. */
			int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			if (sub >= 0) {
				if (!virtual_fs(sub))
					r = walk_dir(sub, path, clen, level + 1, depth, visit, ctx, err);
				close(sub);
			}
		}
		path[plen] = '\0';
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int sbx_fs_walk(const struct sbx_fs *fs, const char *abspath, int depth, sbx_fs_visit_fn visit, void *ctx,
		sbx_error **err)
{
	_cleanup_close_ int dfd = sbx_fs_open(fs, abspath, O_RDONLY | O_DIRECTORY | O_NONBLOCK, err);
	if (dfd < 0)
		return -1;
	char *path = malloc(SBX_FS_PATH_MAX + 2);
	if (!path)
		return sbx_error_errno(err, ENOMEM, "walk");
	size_t plen = strlen(abspath);
	memcpy(path, abspath, plen + 1);
	int r = walk_dir(dfd, path, plen, 1, depth, visit, ctx, err);
	free(path);
	return r;
}

bool sbx_fs_is_binary(const char *data, size_t len)
{
	return memchr(data, '\0', len < 8192 ? len : 8192) != NULL;
}

struct sbx_fs_pattern {
	bool literal;
	char *text;
	size_t tlen;
	regex_t re;
};

int sbx_fs_pattern_compile(const char *pattern, bool literal, struct sbx_fs_pattern **out, sbx_error **err)
{
	if (!pattern || !*pattern)
		return sbx_error_param(err, "pattern", "'pattern' must not be empty");
	struct sbx_fs_pattern *p = calloc(1, sizeof(*p));
	if (!p || !(p->text = strdup(pattern))) {
		free(p);
		return sbx_error_errno(err, ENOMEM, "pattern");
	}
	p->literal = literal;
	p->tlen = strlen(pattern);
	if (!literal) {
		int rc = regcomp(&p->re, pattern, REG_EXTENDED | REG_NEWLINE);
		if (rc != 0) {
			char msg[256];
			regerror(rc, &p->re, msg, sizeof(msg));
			free(p->text);
			free(p);
			return sbx_error_param(err, "pattern", "invalid extended regular expression: %s", msg);
		}
	}
	*out = p;
	return 0;
}

void sbx_fs_pattern_free(struct sbx_fs_pattern *p)
{
	if (!p)
		return;
	if (!p->literal)
		regfree(&p->re);
	free(p->text);
	free(p);
}

bool sbx_fs_pattern_match(const struct sbx_fs_pattern *p, const char *line)
{
	if (p->literal)
		return strstr(line, p->text) != NULL;
	return regexec(&p->re, line, 0, NULL, 0) == 0;
}

int64_t sbx_fs_replace_buf(const struct sbx_fs_pattern *p, const char *data, size_t len, const char *repl,
			   char **out, size_t *outlen)
{
	struct sbx_buf b = { 0 };
	size_t rl = strlen(repl);
	int64_t count = 0;
	size_t pos = 0;
	/* data is NUL-terminated by the caller; binary files never get here. */
	while (pos <= len) {
		size_t ms, me;
		if (p->literal) {
			const char *m = memmem(data + pos, len - pos, p->text, p->tlen);
			if (!m)
				break;
			ms = (size_t)(m - data);
			me = ms + p->tlen;
		} else {
			regmatch_t rm[1];
			if (regexec(&p->re, data + pos, 1, rm, pos > 0 && data[pos - 1] != '\n' ? REG_NOTBOL : 0) != 0)
				break;
			ms = pos + (size_t)rm[0].rm_so;
			me = pos + (size_t)rm[0].rm_eo;
		}
		if (sbx_buf_append(&b, data + pos, ms - pos) < 0 || sbx_buf_append(&b, repl, rl) < 0)
			goto oom;
		count++;
		if (me == ms) {
			/* An empty match: keep one byte and go on after it. */
			if (ms >= len)
				break;
			if (sbx_buf_append(&b, data + ms, 1) < 0)
				goto oom;
			me = ms + 1;
		}
		pos = me;
	}
	if (pos < len && sbx_buf_append(&b, data + pos, len - pos) < 0)
		goto oom;
	if (!b.data && sbx_buf_append(&b, "", 0) < 0)
		goto oom;
	*out = b.data;
	*outlen = b.len;
	return count;
oom:
	sbx_buf_free(&b);
	return -1;
}

int64_t sbx_fs_copy_fd(int in, int out, int64_t max, sbx_error **err)
{
	const size_t chunk = 1 << 24;
	int64_t total = 0;
	/* 0: copy_file_range, 1: splice (a pipe on one side), 2: sendfile, 3: read/write */
	int how = 0;
	struct stat si, so;
	if (fstat(in, &si) < 0 || fstat(out, &so) < 0)
		return sbx_error_errno(err, errno, "stat");
	if (S_ISFIFO(si.st_mode) || S_ISFIFO(so.st_mode))
		how = 1;
	else if (!S_ISREG(si.st_mode))
		how = 3;
	char *buf = NULL;
	while (max < 0 || total < max) {
		size_t want = chunk;
		if (max >= 0 && (uint64_t)(max - total) < want)
			want = (size_t)(max - total);
		ssize_t n = -1;
		if (how == 0) {
			n = copy_file_range(in, NULL, out, NULL, want, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
				      errno == EBADF)) {
				how = 2;
				continue;
			}
		} else if (how == 1) {
			n = splice(in, NULL, out, NULL, want, SPLICE_F_MOVE);
			if (n < 0 && errno == EINVAL) {
				how = S_ISREG(si.st_mode) ? 2 : 3;
				continue;
			}
		} else if (how == 2) {
			n = sendfile(out, in, NULL, want);
			if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
				how = 3;
				continue;
			}
		} else {
			if (!buf && !(buf = malloc(1 << 20)))
				return sbx_error_errno(err, ENOMEM, "copy");
			size_t w = want < (1 << 20) ? want : (1 << 20);
			n = read(in, buf, w);
			if (n > 0 && sbx_write_all(out, buf, (size_t)n) < 0) {
				int e = errno;
				free(buf);
				return sbx_error_errno(err, e, "write");
			}
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			return sbx_error_errno(err, e, "copy");
		}
		if (n == 0)
			break;
		total += n;
	}
	free(buf);
	return total;
}
