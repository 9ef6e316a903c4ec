/* The image registry: images/<id>/ below the state dir. A root file system
 * image holds image.json and rootfs/; a layered image (OCI layout, docker
 * archive, pull) holds image.json, manifest.json and config.json, and its
 * layers are in the layer store (d->layers), referenced by the image id. */
#ifndef SBX_IMAGES_H
#define SBX_IMAGES_H

#include "daemon.h"

struct sbx_oci_image;

struct sbx_image {
	struct sbx_image *next;
	char id[13];
	char *name;   /* names[0] */
	char **names; /* every name, NULL-terminated, at least one */
	char *source;
	char *format; /* dir, rootfs-tar, oci, docker-archive, pull */
	char *digest; /* manifest digest of a layered image, or NULL */
	struct sbx_oci_image *oci; /* layered image, or NULL */
	char *base_id; /* a snapshot: the id of the image it was made on, or NULL */
	int64_t size_bytes;
	int64_t created_ns;
};

int sbx_images_load(struct sbx_daemon *d, sbx_error **err);
/* Open the layer store (STATE/layers) and clear what a crash left in it.
 * Before any worker runs. */
int sbx_images_open_layers(struct sbx_daemon *d, sbx_error **err);
/* Drop layer references whose owner is an id of the kinds made here
 * (image, import or sandbox id, or an export) that no longer exists: an
 * import, export or delete a crash interrupted. Owners of other forms are
 * left alone. After sandboxes are loaded. */
void sbx_images_release_orphans(struct sbx_daemon *d);
struct sbx_image *sbx_image_find(struct sbx_daemon *d, const char *name_or_id);
bool sbx_image_name_valid(const char *name);
/* detail: also config and layer_digests (image.inspect). */
void sbx_image_gen(yajl_gen g, struct sbx_image *img, bool detail);
/* Host paths of an image's lower directories, topmost first
 * (NULL-terminated; sbx_strv_free), or NULL when out of memory. */
char **sbx_image_lowerdirs(struct sbx_daemon *d, const struct sbx_image *img);
/* Layer references of a sandbox made from img (owner = sandbox id). */
int sbx_image_ref_layers(struct sbx_daemon *d, const struct sbx_image *img, const char *owner, sbx_error **err);
/* Drop every layer reference owner holds, in a worker (removing a layer
 * may take long). */
void sbx_layers_release_async(struct sbx_daemon *d, const char *owner);
/* Import the configured default image synchronously if it is missing. */
int sbx_images_ensure_default(struct sbx_daemon *d, sbx_error **err);
/* Images removed by force while in use wait as images/removed-<id> until
 * no sandbox uses them; this deletes the ones that are free now. */
void sbx_images_sweep_removed(struct sbx_daemon *d);
/* image.remove of the name: drops that name of an image that has several;
 * the last name removes the image: refused while a sandbox uses it, naming
 * them, unless forced (then its files wait as images/removed-<id>). */
int sbx_image_remove(struct sbx_daemon *d, struct sbx_image *img, const char *name, bool force, sbx_error **err);
/* image.tag: another name. */
int sbx_image_add_name(struct sbx_daemon *d, struct sbx_image *img, const char *name, sbx_error **err);

/* An import or pull: prepared (name and path checked, images/tmp-<id>/
 * made), run in a worker (unpack or copy into rootfs/, or store layers
 * and write manifest.json and config.json; then image.json), then
 * committed (renamed into place and registered) or aborted. */
struct sbx_image_import {
	struct sbx_daemon *d;
	char id[13];
	char *name; /* NULL: the image's own name (layered), known after the run */
	char *path; /* the path, or the reference of a pull */
	char *label; /* how messages and the image's source name it: path, or a passed descriptor */
	int client_fd; /* image.import {fd}: the passed file, directory or stream; -1 */
	bool spool;    /* client_fd is a stream: the worker copies it to a file first */
	char *format;
	char *ref;  /* which image of a layout holding several, or NULL */
	bool pull;
	char *builder; /* image.build: the recipe builder, run on path (the recipe directory) */
	bool insecure;
	char *authfile;
	int timeout_s;
	char *layers_path; /* the layer store's path (workers hold none of the daemon's fds) */
	char tmpdir[32];   /* images/tmp-<id>, relative to the state dir */
	char *dest;        /* absolute rootfs path inside tmpdir */
	struct sbx_request *req;
	bool progress;     /* send <method>.progress notifications to the caller */
	struct sbx_image_import *next;
};

struct sbx_image_import *sbx_image_import_prepare(struct sbx_daemon *d, const char *name, const char *path,
						  const char *format, const char *ref, sbx_error **err);
/* The same from a descriptor the client passed: a file or a directory is
 * read where it is; a pipe or socket is copied into the import's private
 * directory first (an archive's manifest may come at its end). Takes *fd. */
struct sbx_image_import *sbx_image_import_prepare_fd(struct sbx_daemon *d, const char *name, int *fd,
						     const char *format, const char *ref, sbx_error **err);
struct sbx_image_import *sbx_image_pull_prepare(struct sbx_daemon *d, const char *name, const char *ref,
						bool insecure, const char *authfile, int timeout_s, sbx_error **err);
/* image.build: recipe is a name (a recipe installed with the daemon) or
 * the absolute path of a recipe directory, its builder beside it. */
struct sbx_image_import *sbx_image_build_prepare(struct sbx_daemon *d, const char *name, const char *recipe,
						 sbx_error **err);
/* A worker's progress lines on its out_fd ("progress PHASE LAYERS_DONE
 * LAYERS_TOTAL BYTES_DONE BYTES_TOTAL"): at most four a second for one
 * phase, and always the one that ends it (all layers done). */
struct sbx_progress_out {
	int fd;
	int64_t last_ms;
	const char *phase;
};
void sbx_progress_line(struct sbx_progress_out *po, const char *phase, int ld, int lt, int64_t bd, int64_t bt);

/* The worker's part (sbx_worker_out_fn): progress lines go to out_fd. */
int sbx_image_import_run(void *job, int out_fd, sbx_error **err);
struct sbx_image *sbx_image_import_commit(struct sbx_image_import *job, sbx_error **err);
void sbx_image_import_abort(struct sbx_image_import *job);
void sbx_image_import_free(struct sbx_image_import *job);

#endif
