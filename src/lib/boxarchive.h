/* A stopped sandbox's writable layer packed into one zstd-compressed pax
 * tar in its state directory, and unpacked again, with everything an
 * overlay upper layer holds: owners, modes, times, every extended
 * attribute (trusted.overlay.* included), hard links, holes, FIFOs,
 * symlinks, whiteouts (0:0 character devices) and empty directories.
 *
 * Both sides are crash-safe on their own: the archive is written to a
 * .part file, synced and renamed; a restore is unpacked below a .part
 * directory, synced and renamed into place. Neither removes the other
 * copy: the caller does, once it has recorded which copy is the
 * sandbox's. Both block for long and change the working directory while
 * they run (put back before they return): call them in a worker. */
#ifndef SBX_BOXARCHIVE_H
#define SBX_BOXARCHIVE_H

#include <stdint.h>

#include "error.h"

/* In the sandbox's directory. */
#define SBX_BOXARCHIVE_FILE "archive.tar.zst"
#define SBX_BOXARCHIVE_PART "archive.tar.zst.part"
#define SBX_BOXARCHIVE_RESTORE_DIR "restore.part"

struct sbx_boxarchive_info {
	int64_t size;        /* of the archive file */
	int64_t layer_bytes; /* file content packed (holes not counted) */
	int64_t entries;
};

/* Pack the entries names (NULL-terminated, e.g. "upper", "disk.img"; a
 * missing one is left out) of the directory dirfd into
 * SBX_BOXARCHIVE_FILE there. Sockets are left out. On failure nothing new
 * is left but a .part file (removed here when it can be). */
int sbx_boxarchive_pack(int dirfd, const char *const *names, struct sbx_boxarchive_info *info, sbx_error **err);

/* Unpack SBX_BOXARCHIVE_FILE of dirfd below SBX_BOXARCHIVE_RESTORE_DIR,
 * sync the file system, then rename each entry of the archive's top level
 * into dirfd, replacing what is there. mkdirs (NULL-terminated, may be
 * NULL) are made empty (mode 0700) if missing, e.g. overlay's work
 * directory. projid (0: none) is given to everything unpacked and made,
 * for a project quota. The archive is left. */
int sbx_boxarchive_unpack(int dirfd, const char *const *mkdirs, uint32_t projid, sbx_error **err);

/* What an interrupted pack or unpack left in dirfd (the .part file, the
 * restore directory) removed. */
int sbx_boxarchive_discard_partial(int dirfd, sbx_error **err);

#endif
