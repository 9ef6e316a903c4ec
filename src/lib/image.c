/* Image unpacking with libarchive. Paths inside archives are hostile input:
 * libarchive's secure-extract flags refuse "..", absolute names and writes
 * through symlinks; every entry lands below dest or not at all. */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

#define EXTRACT_FLAGS                                                                                             \
	(ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |              \
	 ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |                          \
	 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK)

static int copy_entries(struct archive *in, struct archive *out, sbx_error **err)
{
	for (;;) {
		struct archive_entry *entry;
		int r = archive_read_next_header(in, &entry);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read archive: %s", archive_error_string(in));
		const char *name = archive_entry_pathname(entry);
		/* Archives made with "tar -C dir ." name the root "./": skip it so
		 * that dest keeps the mode we gave it. */
		if (name && (!strcmp(name, ".") || !strcmp(name, "./")))
			continue;
		r = archive_write_header(out, entry);
		if (r < ARCHIVE_WARN)
			return sbx_error_set(err, SBX_ERR_DENIED, "unpack '%s': %s", name ? name : "?",
					     archive_error_string(out));
		if (archive_entry_size(entry) > 0) {
			const void *buf;
			size_t size;
			la_int64_t offset;
			while ((r = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK) {
				if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
					return sbx_error_set(err, SBX_ERR_INTERNAL, "write '%s': %s", name,
							     archive_error_string(out));
			}
			if (r != ARCHIVE_EOF)
				return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "read '%s': %s", name,
						     archive_error_string(in));
		}
		if (archive_write_finish_entry(out) < ARCHIVE_WARN)
			return sbx_error_set(err, SBX_ERR_INTERNAL, "finish '%s': %s", name, archive_error_string(out));
	}
}

static struct archive *disk_writer(void)
{
	struct archive *out = archive_write_disk_new();
	if (!out)
		return NULL;
	archive_write_disk_set_options(out, EXTRACT_FLAGS);
	archive_write_disk_set_standard_lookup(out);
	return out;
}

int sbx_image_unpack_tar(const char *archive, int archive_fd, const char *dest, sbx_error **err)
{
	struct archive *in = archive_read_new();
	struct archive *out = disk_writer();
	int rc = -1;
	if (!in || !out) {
		sbx_error_errno(err, ENOMEM, "libarchive");
		goto done;
	}
	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	archive_read_support_format_gnutar(in);
	int r = archive_fd >= 0 ? archive_read_open_fd(in, archive_fd, 1 << 16)
				: archive_read_open_filename(in, archive, 1 << 16);
	if (r != ARCHIVE_OK) {
		sbx_error_set(err, archive_errno(in) == ENOENT ? SBX_ERR_NOT_FOUND : SBX_ERR_INVALID_PARAMS,
			      "open archive '%s': %s", archive ? archive : "(fd)", archive_error_string(in));
		goto done;
	}
	/* Relative entry names resolve against the cwd: work from dest. */
	if (chdir(dest) < 0) {
		sbx_error_errno(err, errno, "chdir '%s'", dest);
		goto done;
	}
	rc = copy_entries(in, out, err);
	if (rc == 0 && archive_write_close(out) != ARCHIVE_OK)
		rc = sbx_error_set(err, SBX_ERR_INTERNAL, "unpack: %s", archive_error_string(out));
done:
	if (in)
		archive_read_free(in);
	if (out)
		archive_write_free(out);
	return rc;
}

/* Strip the source prefix from a name read off the disk: "src/x" -> "x". */
static const char *relative_to(const char *name, const char *src, size_t srclen)
{
	if (strncmp(name, src, srclen) != 0)
		return NULL;
	name += srclen;
	while (*name == '/')
		name++;
	return name;
}

int sbx_image_copy_dir(const char *src, const char *dest, sbx_error **err)
{
	if (src[0] != '/')
		return sbx_error_param(err, "path", "image directory '%s' must be an absolute path", src);
	struct stat st;
	if (stat(src, &st) < 0)
		return sbx_error_errno(err, errno, "image directory '%s'", src);
	if (!S_ISDIR(st.st_mode))
		return sbx_error_param(err, "path", "'%s' is not a directory", src);
	struct archive *in = archive_read_disk_new();
	struct archive *out = disk_writer();
	int rc = -1;
	size_t srclen = strlen(src);
	while (srclen > 1 && src[srclen - 1] == '/')
		srclen--;
	if (!in || !out) {
		sbx_error_errno(err, ENOMEM, "libarchive");
		goto done;
	}
	archive_read_disk_set_standard_lookup(in);
	archive_read_disk_set_symlink_physical(in);
	archive_read_disk_set_behavior(in, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
	if (chdir(dest) < 0) {
		sbx_error_errno(err, errno, "chdir '%s'", dest);
		goto done;
	}
	if (archive_read_disk_open(in, src) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "read '%s': %s", src, archive_error_string(in));
		goto done;
	}
	for (;;) {
		struct archive_entry *entry = archive_entry_new();
		int r = archive_read_next_header2(in, entry);
		if (r == ARCHIVE_EOF) {
			archive_entry_free(entry);
			break;
		}
		if (r < ARCHIVE_WARN) {
			archive_entry_free(entry);
			sbx_error_set(err, SBX_ERR_INTERNAL, "read '%s': %s", src, archive_error_string(in));
			goto done;
		}
		archive_read_disk_descend(in);
		const char *rel = relative_to(archive_entry_pathname(entry), src, srclen);
		if (!rel || !*rel) {
			archive_entry_free(entry);
			continue;
		}
		_cleanup_free_ char *name = strdup(rel);
		archive_entry_copy_pathname(entry, name);
		const char *hl = archive_entry_hardlink(entry);
		if (hl && (hl = relative_to(hl, src, srclen))) {
			_cleanup_free_ char *h = strdup(hl);
			archive_entry_copy_hardlink(entry, h);
		}
		r = archive_write_header(out, entry);
		if (r < ARCHIVE_WARN) {
			sbx_error_set(err, SBX_ERR_INTERNAL, "copy '%s': %s", name, archive_error_string(out));
			archive_entry_free(entry);
			goto done;
		}
		if (archive_entry_filetype(entry) == AE_IFREG && archive_entry_size(entry) > 0) {
			const void *buf;
			size_t size;
			la_int64_t offset;
			while ((r = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK)
				archive_write_data_block(out, buf, size, offset);
		}
		archive_write_finish_entry(out);
		archive_entry_free(entry);
	}
	rc = archive_write_close(out) == ARCHIVE_OK ? 0 : sbx_error_set(err, SBX_ERR_INTERNAL, "copy: %s",
									 archive_error_string(out));
done:
	if (in)
		archive_read_free(in);
	if (out)
		archive_write_free(out);
	return rc;
}

int64_t sbx_tree_size(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	int64_t total = (int64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return total;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return total;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return total;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		total += sbx_tree_size(dirfd(d), de->d_name);
	}
	closedir(d);
	return total;
}
