/* The image registry: images/<id>/{image.json,rootfs} below the state dir. */
#ifndef SBX_IMAGES_H
#define SBX_IMAGES_H

#include "daemon.h"

struct sbx_image {
	struct sbx_image *next;
	char id[13];
	char *name;
	char *source;
	char *format;
	int64_t size_bytes;
	int64_t created_ns;
};

int sbx_images_load(struct sbx_daemon *d, sbx_error **err);
struct sbx_image *sbx_image_find(struct sbx_daemon *d, const char *name_or_id);
bool sbx_image_name_valid(const char *name);
void sbx_image_gen(yajl_gen g, struct sbx_image *img);
/* Host path of an image's rootfs, e.g. for the overlay lowerdir. */
char *sbx_image_rootfs_path(struct sbx_daemon *d, const struct sbx_image *img);
/* Import the configured default image synchronously if it is missing. */
int sbx_images_ensure_default(struct sbx_daemon *d, sbx_error **err);
/* Move state_dir/relpath aside at once and delete it in a worker. */
int sbx_trash(struct sbx_daemon *d, const char *relpath, sbx_error **err);
/* The same in two steps, for a mover of its own: a free name in the
 * trash (dst, relative to the state dir), and the removal in a worker of
 * what was moved there. */
int sbx_trash_reserve(struct sbx_daemon *d, char dst[64], sbx_error **err);
void sbx_trash_remove(struct sbx_daemon *d, const char *dst);
/* Images removed by force while in use wait as images/removed-<id> until
 * no sandbox uses them; this deletes the ones that are free now. */
void sbx_images_sweep_removed(struct sbx_daemon *d);
/* Delete what an earlier run left in the trash (at start-up). */
void sbx_trash_empty(struct sbx_daemon *d);

#endif
