/* A size-bounded writable layer: project quotas where the state dir's
 * filesystem enforces them; elsewhere a sparse ext4 image per sandbox,
 * attached to a loop device that clears itself when the sandbox's mount
 * namespace (its only user) goes away. */
#ifndef SBX_DISK_H
#define SBX_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* Make dest a fresh ext4 image of mb MiB. A formatted template per size is
 * kept in template_dir and copied sparsely, which is faster than mkfs. */
int sbx_disk_create(const char *dest, int64_t mb, const char *template_dir, sbx_error **err);
/* Attach an image to a free loop device (autoclear); returns its fd and
 * fills devpath ("/dev/loopN"). */
int sbx_disk_attach(const char *image, char devpath[32], sbx_error **err);
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
