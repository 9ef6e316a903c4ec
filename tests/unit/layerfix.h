/* Layer tarballs for the unit tests, written with libarchive from a list
 * of entries, so that each hostile entry (a name with "..", a path
 * through a symlink, a device node) can be made exactly. */
#ifndef SBX_LAYERFIX_H
#define SBX_LAYERFIX_H

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <string.h>
#include <sys/stat.h>

enum fix_kind { FIX_DIR, FIX_FILE, FIX_LINK, FIX_HARD, FIX_FIFO, FIX_CHR, FIX_BLK };

struct fix_entry {
	enum fix_kind kind;
	const char *name;
	const char *data; /* file content, symlink or hard link target */
	int mode;         /* 0: a default for the kind */
	int uid, gid;
	const char *xattr_name, *xattr_value;
};

/* filter: "none", "gzip" or "zstd". */
static inline void fix_write_tar(const char *path, const char *filter, const struct fix_entry *entries, size_t n)
{
	struct archive *a = archive_write_new();
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	if (!strcmp(filter, "gzip"))
		ck_assert_int_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	else if (!strcmp(filter, "zstd"))
		ck_assert_int_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		const struct fix_entry *f = &entries[i];
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, f->name);
		archive_entry_set_uid(e, f->uid);
		archive_entry_set_gid(e, f->gid);
		archive_entry_set_mtime(e, 1700000000, 0);
		switch (f->kind) {
		case FIX_DIR:
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, f->mode ? f->mode : 0755);
			break;
		case FIX_FILE:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, f->mode ? f->mode : 0644);
			archive_entry_set_size(e, f->data ? (la_int64_t)strlen(f->data) : 0);
			break;
		case FIX_LINK:
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_perm(e, 0777);
			archive_entry_set_symlink(e, f->data);
			break;
		case FIX_HARD:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_hardlink(e, f->data);
			break;
		case FIX_FIFO:
			archive_entry_set_filetype(e, AE_IFIFO);
			archive_entry_set_perm(e, f->mode ? f->mode : 0600);
			break;
		case FIX_CHR:
		case FIX_BLK:
			archive_entry_set_filetype(e, f->kind == FIX_CHR ? AE_IFCHR : AE_IFBLK);
			archive_entry_set_perm(e, 0600);
			archive_entry_set_rdevmajor(e, 8);
			archive_entry_set_rdevminor(e, 0);
			break;
		}
		if (f->xattr_name)
			archive_entry_xattr_add_entry(e, f->xattr_name, f->xattr_value, strlen(f->xattr_value));
		ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
		if (f->kind == FIX_FILE && f->data)
			ck_assert_int_eq(archive_write_data(a, f->data, strlen(f->data)), (la_ssize_t)strlen(f->data));
		archive_entry_free(e);
	}
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

#endif
