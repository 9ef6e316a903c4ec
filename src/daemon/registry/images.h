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
/* Images removed by force while in use wait as images/removed-<id> until
 * no sandbox uses them; this deletes the ones that are free now. */
void sbx_images_sweep_removed(struct sbx_daemon *d);
/* image.remove: refused while a sandbox uses it, unless forced (then its
 * files wait as images/removed-<id>). */
int sbx_image_remove(struct sbx_daemon *d, struct sbx_image *img, bool force, sbx_error **err);

/* An import: prepared (name and path checked, images/tmp-<id>/ made),
 * run in a worker (unpack or copy into rootfs/, write image.json), then
 * committed (renamed into place and registered) or aborted. */
struct sbx_image_import {
	struct sbx_daemon *d;
	char id[13];
	char *name;
	char *path;
	char *format;
	char tmpdir[32]; /* images/tmp-<id>, relative to the state dir */
	char *dest;      /* absolute rootfs path inside tmpdir */
	struct sbx_request *req;
	struct sbx_image_import *next;
};

struct sbx_image_import *sbx_image_import_prepare(struct sbx_daemon *d, const char *name, const char *path,
						  const char *format, sbx_error **err);
/* The worker's part (sbx_worker_fn). */
int sbx_image_import_run(void *job, sbx_error **err);
struct sbx_image *sbx_image_import_commit(struct sbx_image_import *job, sbx_error **err);
void sbx_image_import_abort(struct sbx_image_import *job);
void sbx_image_import_free(struct sbx_image_import *job);

#endif
