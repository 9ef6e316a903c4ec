/* Whole trees in and out of a sandbox as tar streams (libarchive), for
 * `sandboxctl cp` of directories. Built on fsops: the tree is walked
 * without following symlinks and every entry is created relative to an
 * in-root parent, so a hostile tar or a hostile tree cannot leave the
 * root. Only directories, regular files and symlinks travel. */
#ifndef SBX_FSARCHIVE_H
#define SBX_FSARCHIVE_H

#include <stdint.h>

#include "error.h"
#include "fsops.h"

struct sbx_fs_archive_stats {
	int64_t entries; /* written or extracted */
	int64_t skipped; /* FIFOs, sockets, devices, names out of bounds */
	int64_t bytes;   /* file content */
};

/* Write abspath (a directory: its contents; a file: itself) as a pax tar to out_fd. */
int sbx_fs_archive(const struct sbx_fs *fs, const char *abspath, int out_fd, struct sbx_fs_archive_stats *stats,
		   sbx_error **err);
/* Extract a tar read from in_fd below the directory abspath (created if
 * missing), keeping modes and times; new entries get the fs owner. */
int sbx_fs_extract(const struct sbx_fs *fs, const char *abspath, int in_fd, struct sbx_fs_archive_stats *stats,
		   sbx_error **err);

#endif
