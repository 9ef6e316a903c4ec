/* Image content on disk: unpacking a root filesystem tarball or copying a
 * directory tree into an image's rootfs, and measuring it. Runs in worker
 * processes; knows nothing of image metadata or the protocol. */
#ifndef SBX_IMAGE_H
#define SBX_IMAGE_H

#include <stdint.h>

#include "error.h"

/* Unpack a tar (plain, gzip, zstd, xz, bzip2) into dest, an empty dir.
 * Entries that would land outside dest are refused. */
int sbx_image_unpack_tar(const char *archive, int archive_fd, const char *dest, sbx_error **err);
/* Copy the tree at src into dest, an empty dir, keeping owners, modes,
 * times, hard links, xattrs and device nodes. */
int sbx_image_copy_dir(const char *src, const char *dest, sbx_error **err);
/* Bytes used by a tree (allocated blocks), without following links. */
int64_t sbx_tree_size(int dirfd, const char *name);

#endif
