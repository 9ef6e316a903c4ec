/* A size-bounded writable layer on filesystems without project quotas: a
 * sparse ext4 image per sandbox, attached to a loop device that clears
 * itself when the sandbox's mount namespace (its only user) goes away. */
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

#endif
