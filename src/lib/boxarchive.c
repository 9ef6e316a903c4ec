/* A stopped sandbox's writable layer packed into one zstd pax tar and back
 * (see boxarchive.h). libarchive walks and writes the tree: it keeps
 * extended attributes, hard links and holes, which a hand-made walk would
 * have to relearn. Never called on a layer in use (a mounted overlay). */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boxarchive.h"
#include "disk.h"
#include "util.h"

/* The working directory at entry, put back on return: libarchive's disk
 * reader and writer take paths relative to it. */
struct saved_cwd {
	int fd;
};

static int cwd_enter(struct saved_cwd *s, int dirfd, sbx_error **err)
{
	s->fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->fd < 0)
		return sbx_error_errno(err, errno, "open working directory");
	if (fchdir(dirfd) < 0) {
		int e = errno;
		close(s->fd);
		s->fd = -1;
		return sbx_error_errno(err, e, "enter the sandbox directory");
	}
	return 0;
}

static void cwd_leave(struct saved_cwd *s)
{
	if (s->fd >= 0) {
		if (fchdir(s->fd) < 0) {
			/* Nothing depends on the old directory but the caller's relative paths. */
		}
		close(s->fd);
		s->fd = -1;
	}
}

/* Copy an entry's content, holes as holes: the pax writer drops the bytes
 * that fall in a hole of the entry's sparse map, so zeros are written for
 * them only to keep the offsets. */
static int copy_data(struct archive *in, struct archive *out, const char *name, sbx_error **err)
{
	static const char zeros[65536];
	int64_t done = 0;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(in, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return sbx_error_set(err, SBX_ERR_INTERNAL, "read '%s': %s", name, archive_error_string(in));
		while (off > done) {
			size_t n = off - done > (int64_t)sizeof(zeros) ? sizeof(zeros) : (size_t)(off - done);
			la_ssize_t w = archive_write_data(out, zeros, n);
			if (w < 0)
				return sbx_error_set(err, SBX_ERR_INTERNAL, "write '%s': %s", name, archive_error_string(out));
			done += w;
		}
		const char *p = buf;
		while (len > 0) {
			la_ssize_t w = archive_write_data(out, p, len);
			if (w < 0)
				return sbx_error_set(err, SBX_ERR_INTERNAL, "write '%s': %s", name, archive_error_string(out));
			p += w;
			len -= (size_t)w;
			done += w;
		}
	}
}

static int pack_tree(struct archive *out, struct archive_entry_linkresolver *lr, const char *name,
		     struct sbx_boxarchive_info *info, sbx_error **err)
{
	struct archive *in = archive_read_disk_new();
	struct archive_entry *entry = archive_entry_new();
	int rc = -1;
	if (!in || !entry) {
		sbx_error_errno(err, ENOMEM, "libarchive");
		goto out;
	}
	/* Numeric ids only: the names of the host's users mean nothing inside. */
	archive_read_disk_set_symlink_physical(in);
	if (archive_read_disk_set_behavior(in, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS) != ARCHIVE_OK ||
	    archive_read_disk_open(in, name) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "read '%s': %s", name, archive_error_string(in));
		goto out;
	}
	for (;;) {
		archive_entry_clear(entry);
		int r = archive_read_next_header2(in, entry);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			sbx_error_set(err, SBX_ERR_INTERNAL, "read '%s': %s", name, archive_error_string(in));
			goto out;
		}
		archive_read_disk_descend(in);
		if (archive_entry_filetype(entry) == AE_IFSOCK)
			continue;
		struct archive_entry *e = entry, *spare = NULL;
		archive_entry_linkify(lr, &e, &spare);
		/* The tar strategy never defers: e is the entry, as a hard link
		 * (no content) when it is a later name of a file already written. */
		if (!e)
			continue;
		const char *path = archive_entry_pathname(e);
		if (archive_write_header(out, e) < ARCHIVE_WARN) {
			sbx_error_set(err, SBX_ERR_INTERNAL, "write '%s': %s", path, archive_error_string(out));
			goto out;
		}
		info->entries++;
		if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0 && !archive_entry_hardlink(e)) {
			if (copy_data(in, out, path, err) < 0)
				goto out;
			int64_t sz = archive_entry_size(e);
			info->layer_bytes += sz;
		}
	}
	rc = 0;
out:
	if (in)
		archive_read_free(in);
	archive_entry_free(entry);
	return rc;
}

int sbx_boxarchive_pack(int dirfd, const char *const *names, struct sbx_boxarchive_info *info, sbx_error **err)
{
	struct sbx_boxarchive_info dummy;
	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	unlinkat(dirfd, SBX_BOXARCHIVE_PART, 0);
	_cleanup_close_ int fd =
		openat(dirfd, SBX_BOXARCHIVE_PART, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sbx_error_errno(err, errno, "create %s", SBX_BOXARCHIVE_PART);
	struct saved_cwd cwd = { -1 };
	struct archive *out = archive_write_new();
	struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
	int rc = -1;
	if (!out || !lr) {
		sbx_error_errno(err, ENOMEM, "libarchive");
		goto out;
	}
	archive_entry_linkresolver_set_strategy(lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	/* pax: attributes, long names, large and sparse files, exact times. */
	if (archive_write_set_format_pax(out) != ARCHIVE_OK || archive_write_add_filter_zstd(out) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(out, 1) != ARCHIVE_OK || archive_write_open_fd(out, fd) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "archive: %s", archive_error_string(out));
		goto out;
	}
	if (cwd_enter(&cwd, dirfd, err) < 0)
		goto out;
	for (size_t i = 0; names[i]; i++) {
		struct stat st;
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			sbx_error_errno(err, errno, "'%s'", names[i]);
			goto out;
		}
		if (pack_tree(out, lr, names[i], info, err) < 0)
			goto out;
	}
	if (archive_write_close(out) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "archive: %s", archive_error_string(out));
		goto out;
	}
	struct stat st;
	if (fsync(fd) < 0 || fstat(fd, &st) < 0) {
		sbx_error_errno(err, errno, "sync %s", SBX_BOXARCHIVE_PART);
		goto out;
	}
	info->size = st.st_size;
	if (renameat(dirfd, SBX_BOXARCHIVE_PART, dirfd, SBX_BOXARCHIVE_FILE) < 0) {
		sbx_error_errno(err, errno, "rename %s", SBX_BOXARCHIVE_PART);
		goto out;
	}
	if (fsync(dirfd) < 0) {
		sbx_error_errno(err, errno, "sync the sandbox directory");
		unlinkat(dirfd, SBX_BOXARCHIVE_FILE, 0);
		goto out;
	}
	rc = 0;
out:
	cwd_leave(&cwd);
	if (out)
		archive_write_free(out);
	if (lr)
		archive_entry_linkresolver_free(lr);
	if (rc < 0)
		unlinkat(dirfd, SBX_BOXARCHIVE_PART, 0);
	return rc;
}

static int extract_all(int dirfd, sbx_error **err)
{
	_cleanup_close_ int fd = openat(dirfd, SBX_BOXARCHIVE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open %s", SBX_BOXARCHIVE_FILE);
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	int rc = -1;
	if (!in || !out) {
		sbx_error_errno(err, ENOMEM, "libarchive");
		goto out;
	}
	/* Numeric ids (no lookup), every attribute; never through a symlink
	 * or "..", never an absolute name, whatever the file holds. */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
						    ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
						    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
	if (archive_read_support_format_tar(in) != ARCHIVE_OK || archive_read_support_filter_zstd(in) != ARCHIVE_OK ||
	    archive_read_open_fd(in, fd, 1 << 16) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "read %s: %s", SBX_BOXARCHIVE_FILE, archive_error_string(in));
		goto out;
	}
	struct archive_entry *entry;
	for (;;) {
		int r = archive_read_next_header(in, &entry);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			sbx_error_set(err, SBX_ERR_INTERNAL, "read %s: %s", SBX_BOXARCHIVE_FILE, archive_error_string(in));
			goto out;
		}
		const char *name = archive_entry_pathname(entry);
		if (!name || !*name || name[0] == '/') {
			sbx_error_set(err, SBX_ERR_INTERNAL, "read %s: a bad name", SBX_BOXARCHIVE_FILE);
			goto out;
		}
		r = archive_read_extract2(in, entry, out);
		if (r < ARCHIVE_WARN) {
			sbx_error_set(err, SBX_ERR_INTERNAL, "unpack '%s': %s", name, archive_error_string(out));
			goto out;
		}
	}
	/* Directories get their modes and times once their contents are in. */
	if (archive_write_close(out) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "unpack: %s", archive_error_string(out));
		goto out;
	}
	rc = 0;
out:
	if (in)
		archive_read_free(in);
	if (out)
		archive_write_free(out);
	return rc;
}

int sbx_boxarchive_unpack(int dirfd, const char *const *mkdirs, uint32_t projid, sbx_error **err)
{
	if (sbx_rm_rf_at(dirfd, SBX_BOXARCHIVE_RESTORE_DIR, err) < 0)
		return -1;
	if (mkdirat(dirfd, SBX_BOXARCHIVE_RESTORE_DIR, 0700) < 0)
		return sbx_error_errno(err, errno, "create %s", SBX_BOXARCHIVE_RESTORE_DIR);
	int rc = -1;
	struct saved_cwd cwd = { -1 };
	_cleanup_close_ int rfd = openat(dirfd, SBX_BOXARCHIVE_RESTORE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *dir = NULL;
	if (rfd < 0) {
		sbx_error_errno(err, errno, "open %s", SBX_BOXARCHIVE_RESTORE_DIR);
		goto out;
	}
	/* Everything made below inherits the project (and so its quota). */
	if (projid && sbx_prjquota_assign(rfd, projid, err) < 0)
		goto out;
	if (cwd_enter(&cwd, rfd, err) < 0)
		goto out;
	if (extract_all(dirfd, err) < 0)
		goto out;
	cwd_leave(&cwd);
	/* One sync for every file unpacked: before the renames, so that the
	 * layer is never in place with its contents still in memory. */
	if (syncfs(rfd) < 0) {
		sbx_error_errno(err, errno, "sync");
		goto out;
	}
	int lfd = fcntl(rfd, F_DUPFD_CLOEXEC, 3);
	if (lfd < 0 || !(dir = fdopendir(lfd))) {
		if (lfd >= 0)
			close(lfd);
		sbx_error_errno(err, errno, "read %s", SBX_BOXARCHIVE_RESTORE_DIR);
		goto out;
	}
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (sbx_rm_rf_at(dirfd, de->d_name, err) < 0)
			goto out;
		if (renameat(rfd, de->d_name, dirfd, de->d_name) < 0) {
			sbx_error_errno(err, errno, "move '%s' into place", de->d_name);
			goto out;
		}
	}
	for (size_t i = 0; mkdirs && mkdirs[i]; i++) {
		if (mkdirat(dirfd, mkdirs[i], 0700) < 0 && errno != EEXIST) {
			sbx_error_errno(err, errno, "create '%s'", mkdirs[i]);
			goto out;
		}
		if (projid) {
			_cleanup_close_ int mfd = openat(dirfd, mkdirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (mfd < 0 || sbx_prjquota_assign(mfd, projid, err) < 0) {
				if (err && !*err)
					sbx_error_errno(err, errno, "open '%s'", mkdirs[i]);
				goto out;
			}
		}
	}
	if (unlinkat(dirfd, SBX_BOXARCHIVE_RESTORE_DIR, AT_REMOVEDIR) < 0 || fsync(dirfd) < 0) {
		sbx_error_errno(err, errno, "finish the restore");
		goto out;
	}
	rc = 0;
out:
	cwd_leave(&cwd);
	if (rc < 0)
		sbx_rm_rf_at(dirfd, SBX_BOXARCHIVE_RESTORE_DIR, NULL);
	return rc;
}

int sbx_boxarchive_discard_partial(int dirfd, sbx_error **err)
{
	if (unlinkat(dirfd, SBX_BOXARCHIVE_PART, 0) < 0 && errno != ENOENT)
		return sbx_error_errno(err, errno, "remove %s", SBX_BOXARCHIVE_PART);
	return sbx_rm_rf_at(dirfd, SBX_BOXARCHIVE_RESTORE_DIR, err);
}
