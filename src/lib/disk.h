/* A size-bounded writable layer: project quotas where the state dir's
 * filesystem enforces them; elsewhere a sparse ext4 image per sandbox,
 * attached to a loop device of its own that clears itself when the
 * sandbox's mount namespace (its only user) goes away, and that its maker
 * then removes. */
#ifndef SBX_DISK_H
#define SBX_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Make dest a fresh ext4 image of mb MiB. A formatted template per size is
 * kept in template_dir and copied sparsely, which is faster than mkfs. */
int sbx_disk_create(const char *dest, int64_t mb, const char *template_dir, sbx_error **err);
/* Make a new loop device; returns its number. Only its maker removes it. */
int sbx_loop_add(sbx_error **err);
/* LOOP_CTL_REMOVE: 0, or -EBUSY while attached or open, -ENODEV if gone.
 * Waits for an RCU grace period (tens of milliseconds). */
int sbx_loop_remove(int index);
/* The file a loop device is attached to; -ENOENT when not attached. */
int sbx_loop_backing_file(int index, char *buf, size_t size);
/* Attach an image to loop device index with autoclear: it detaches when
 * its last user (the mount) goes. Returns its fd and fills devpath
 * ("/dev/loopN"). */
int sbx_disk_attach(int index, const char *image, char devpath[32], sbx_error **err);
/* Can this host make disk-limited sandboxes (loop devices, mkfs.ext4)? */
bool sbx_disk_supported(void);
/* Copy a file keeping its holes (SEEK_DATA/SEEK_HOLE + copy_file_range). */
int sbx_copy_sparse(int src, int dst, sbx_error **err);

/* Project quotas: is the filesystem of dirfd enforcing them? */
bool sbx_prjquota_supported(int dirfd);
/* Give a directory a project id that everything made in it inherits. */
int sbx_prjquota_assign(int dirfd, uint32_t projid, sbx_error **err);
/* Block limit of a project (0 lifts it); fd is anything on the filesystem. */
int sbx_prjquota_limit(int fd, uint32_t projid, int64_t mb, sbx_error **err);
/* Bytes a project uses, -1 if unknown. */
int64_t sbx_prjquota_used(int fd, uint32_t projid);

#endif
