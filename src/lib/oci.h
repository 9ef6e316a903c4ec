/* Images as registries and tools hand them out: OCI image layouts (a
 * directory or a tar of one), `docker save` archives (old and new), and
 * the image config that becomes a sandbox's defaults. Reading verifies
 * every digest and size, refuses media types it does not know, picks
 * linux/amd64 from an index, and stores layers through the layer store;
 * exporting writes an OCI layout that skopeo and umoci read. Knows
 * nothing of image names or the daemon's registry: an image is described
 * by struct sbx_oci_image and owns layer references under an owner id. */
#ifndef SBX_OCI_H
#define SBX_OCI_H

#include <stdbool.h>
#include <stdint.h>

#include "digest.h"
#include "error.h"
#include "json.h"
#include "layers.h"

#define SBX_MEDIA_OCI_LAYOUT_VERSION "1.0.0"
#define SBX_MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define SBX_MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define SBX_MEDIA_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define SBX_MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define SBX_MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define SBX_MEDIA_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* Manifests, indexes and configs larger than this are refused. */
#define SBX_OCI_JSON_MAX (8 << 20)
/* An image of more layers than this is refused (overlayfs stacks 500). */
#define SBX_OCI_LAYERS_MAX 256

/* What the image config says a container of it runs with. */
struct sbx_image_config {
	char *os, *architecture;
	char **env;        /* "K=V" (never NULL after parsing) */
	char *working_dir; /* or NULL */
	char *user;        /* or NULL */
	char **entrypoint; /* or NULL when unset */
	char **cmd;        /* or NULL when unset */
	char **exposed_ports; /* "80/tcp" (never NULL after parsing) */
	char *stop_signal; /* or NULL */
	struct sbx_kvlist labels;
	char *created;     /* RFC 3339 as written, or NULL */
};

struct sbx_oci_descriptor {
	char media_type[96];
	char digest[SBX_DIGEST_LEN];
	int64_t size;
};

struct sbx_image_layer {
	char diff_id[SBX_DIGEST_LEN];
	struct sbx_oci_descriptor blob; /* as the manifest names it */
};

struct sbx_oci_image {
	char *manifest; /* exact bytes: its digest is the image's digest */
	size_t manifest_len;
	char manifest_digest[SBX_DIGEST_LEN];
	char *config_blob; /* exact bytes */
	size_t config_len;
	char config_digest[SBX_DIGEST_LEN];
	struct sbx_image_layer *layers; /* base first */
	size_t n_layers;
	struct sbx_image_config config;
	int64_t size;  /* bytes of file content over all layers */
	char **names;  /* names the source gave it (RepoTags, ref.name), may be empty */
};

void sbx_image_config_free(struct sbx_image_config *c);
void sbx_oci_image_free(struct sbx_oci_image *img);
void sbx_oci_image_freep(struct sbx_oci_image **img);
#define _cleanup_oci_image_ __attribute__((cleanup(sbx_oci_image_freep)))

/* ---- parsers of untrusted JSON (each fills err naming what is wrong) ---- */

/* An image config: its container settings and rootfs.diff_ids. */
int sbx_oci_parse_config(const char *json, struct sbx_image_config *out, char ***diff_ids, sbx_error **err);
/* An image manifest (OCI or Docker schema 2): the config descriptor and
 * the layer descriptors, media types checked. */
int sbx_oci_parse_manifest(const char *json, struct sbx_oci_descriptor *config, struct sbx_oci_descriptor **layers,
			   size_t *n_layers, sbx_error **err);
/* An index (OCI index, Docker manifest list, or a layout's index.json):
 * the one entry to use. With ref, the entry whose ref name annotation is
 * ref; without, the only entry, or the linux/amd64 one. */
int sbx_oci_parse_index(const char *json, const char *ref, struct sbx_oci_descriptor *out, char **ref_name,
			sbx_error **err);
/* A `docker save` manifest.json: the config file, the layer files, and
 * the entry's RepoTags, of the entry chosen as sbx_oci_parse_index does. */
int sbx_docker_parse_manifest(const char *json, const char *ref, char **config_path, char ***layer_paths,
			      char ***repo_tags, sbx_error **err);

/* ---- import ---- */

struct sbx_image_progress {
	int layers_done, layers_total;
	int64_t bytes_done, bytes_total; /* of the layer blobs that are read */
};
typedef void (*sbx_image_progress_fn)(void *ctx, const struct sbx_image_progress *p);

struct sbx_image_import_opts {
	const char *ref; /* which image of a layout or archive holding several */
	sbx_image_progress_fn progress;
	void *progress_ctx;
};

/* What is at path, told from its content: an OCI layout, a docker save
 * archive (each a directory or a tar, plain or compressed), or a plain
 * root file system (a directory or a tar). A tar is read to its end when
 * needed: docker save writes manifest.json last. */
enum sbx_image_kind {
	SBX_IMAGE_KIND_ROOTFS_DIR,
	SBX_IMAGE_KIND_ROOTFS_TAR,
	SBX_IMAGE_KIND_OCI,
	SBX_IMAGE_KIND_DOCKER_ARCHIVE,
};
int sbx_image_detect(const char *path, enum sbx_image_kind *kind, sbx_error **err);
const char *sbx_image_kind_name(enum sbx_image_kind kind);

/* Import the image at path: an OCI layout directory, or a file holding an
 * OCI layout or a `docker save` archive as a tar (plain, gzip or zstd),
 * the kind told from the content. Layers not yet stored are unpacked; all
 * get a reference held by owner. On failure every reference taken is
 * dropped again, so the store holds nothing new. */
int sbx_image_import(struct sbx_layer_store *s, const char *owner, const char *path,
		     const struct sbx_image_import_opts *opts, struct sbx_oci_image **out, sbx_error **err);
/* The same on a directory fd of an unpacked layout or docker archive. */
int sbx_image_import_dirfd(struct sbx_layer_store *s, const char *owner, int dirfd,
			   const struct sbx_image_import_opts *opts, struct sbx_oci_image **out, sbx_error **err);
/* Drop owner's references to the image's layers (deleting an image). */
int sbx_oci_image_release(struct sbx_layer_store *s, const struct sbx_oci_image *img, const char *owner,
			  sbx_error **err);

/* An image's record in a directory of the caller's: manifest.json and
 * config.json, exact bytes (atomic writes); load verifies and parses. */
int sbx_oci_image_save(int dirfd, const struct sbx_oci_image *img, sbx_error **err);
int sbx_oci_image_load(int dirfd, struct sbx_oci_image **out, sbx_error **err);
/* Parse an image from its manifest and config bytes (copied). */
int sbx_oci_image_from_json(const char *manifest, size_t manifest_len, const char *config, size_t config_len,
			    struct sbx_oci_image **out, sbx_error **err);

/* Host paths of the layers' trees, topmost first, as overlayfs stacks
 * lower directories (NULL-terminated; free with sbx_strv_free). */
char **sbx_oci_image_lowerdirs(const struct sbx_layer_store *s, const struct sbx_oci_image *img);

/* ---- export ---- */

enum sbx_image_export_format { SBX_EXPORT_OCI_DIR, SBX_EXPORT_OCI_TAR };

struct sbx_image_export_opts {
	enum sbx_image_export_format format;
	const char *tag; /* the index entry's org.opencontainers.image.ref.name (NULL: "latest") */
	/* Told as the layer blobs are written (each blob once), and at the end. */
	sbx_image_progress_fn progress;
	void *progress_ctx;
};

/* Write the image as an OCI layout at dest (which must not exist): a
 * directory, or a tar file. The stored blobs are written as they came, so
 * digests are those of the import; a layer whose kept blob differs from
 * what the manifest names gets a new manifest. */
int sbx_image_export(struct sbx_layer_store *s, const struct sbx_oci_image *img, const char *dest,
		     const struct sbx_image_export_opts *o, sbx_error **err);

#endif
