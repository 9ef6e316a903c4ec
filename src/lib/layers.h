/* The layer store: image layers kept once, by the digest of their
 * uncompressed tar (the OCI "diff_id"), each unpacked into a directory in
 * the form overlayfs takes as a lower layer (whiteouts as 0:0 character
 * devices, opaque directories marked with trusted.overlay.opaque). Layers
 * are shared by every image, snapshot or sandbox that holds a reference to
 * them and removed with the last one. Knows nothing of image names,
 * manifests or the protocol.
 *
 *   STORE/lock                          flock: publishing, references, removal
 *   STORE/layers/sha256/HEX/diff/       the tree (an overlay lowerdir)
 *   STORE/layers/sha256/HEX/blob        the layer as it came (compressed), for export
 *   STORE/layers/sha256/HEX/layer.json  diff_id, sizes, the blob's digest and media type
 *   STORE/layers/sha256/HEX/refs/OWNER  one empty file per user of the layer
 *   STORE/tmp/                          unpacking and removal in progress
 *
 * A layer appears under layers/ whole or not at all: it is unpacked below
 * tmp/, its first reference made there, and renamed into place. */
#ifndef SBX_LAYERS_H
#define SBX_LAYERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "digest.h"
#include "error.h"

struct sbx_layer_store;

/* Media types of a layer blob (OCI names; Docker's are mapped to them). */
#define SBX_MEDIA_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define SBX_MEDIA_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define SBX_MEDIA_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

/* Open (creating its directories) the store rooted at path. Several
 * processes may hold the same store open. */
int sbx_layer_store_open(const char *path, struct sbx_layer_store **out, sbx_error **err);
void sbx_layer_store_close(struct sbx_layer_store *s);
void sbx_layer_store_closep(struct sbx_layer_store **s);
#define _cleanup_layer_store_ __attribute__((cleanup(sbx_layer_store_closep)))
const char *sbx_layer_store_path(const struct sbx_layer_store *s);
/* After a crash: remove what tmp/ holds and layers nobody references.
 * Only while no other process uses the store (at daemon start). */
int sbx_layer_store_recover(struct sbx_layer_store *s, sbx_error **err);

/* A fresh private directory below tmp/ (on the store's file system, so
 * that its contents can be renamed into the store); *path gets its host
 * path and the return value is an fd of it. sbx_layer_store_rmtemp
 * deletes it; sbx_layer_store_recover deletes what a crash left. */
int sbx_layer_store_scratch(struct sbx_layer_store *s, const char *prefix, char **path, sbx_error **err);
int sbx_layer_store_rmtemp(struct sbx_layer_store *s, const char *path, sbx_error **err);

/* Where the bytes of a layer blob come from: returns bytes read, 0 at the
 * end, -1 with errno set. */
typedef ssize_t (*sbx_layer_read_fn)(void *ctx, void *buf, size_t len);
typedef void (*sbx_layer_progress_fn)(void *ctx, int64_t blob_bytes_read);

enum sbx_layer_keep {
	SBX_LAYER_KEEP_AS_IS,      /* the blob exactly as read (its digest is the manifest's) */
	SBX_LAYER_KEEP_COMPRESSED, /* as read if compressed; a plain tar is kept zstd-compressed */
};

struct sbx_layer_put_opts {
	const char *digest;  /* expected digest of the blob as read; NULL: not checked */
	const char *diff_id; /* expected digest of the uncompressed tar; NULL: not checked */
	int64_t size;        /* expected blob size; < 0: not checked */
	enum sbx_layer_keep keep;
	sbx_layer_progress_fn progress;
	void *progress_ctx;
};

struct sbx_layer_info {
	char diff_id[SBX_DIGEST_LEN];
	char digest[SBX_DIGEST_LEN]; /* of the blob kept in the store */
	char media_type[64];         /* of the blob kept in the store */
	int64_t blob_size;           /* of the blob kept in the store */
	int64_t size;                /* bytes of file content in the tree */
	int64_t entries;
	bool existed; /* the layer was already stored: nothing was unpacked */
};

/* Read a layer blob (a tar; plain, gzip or zstd, told from its content),
 * verify its digests while reading, unpack it and store it with a
 * reference held by owner ([a-zA-Z0-9_.-], e.g. an image id). When
 * opts->diff_id names a stored layer, nothing is read. A blob that is not
 * a tar, that does not match the expected digests, or that holds an entry
 * leaving the layer (".."; a path through a symlink; a hard link to a
 * name outside the layer), a device node, or a broken whiteout is refused,
 * naming the entry, and leaves nothing behind. Set-id bits, owners,
 * modes, times and user.* and security.capability attributes are kept;
 * trusted.*, user.overlay.* and other attributes are dropped (a layer
 * must not steer overlayfs). Two puts of one layer at once store it once. */
int sbx_layer_put(struct sbx_layer_store *s, const char *owner, sbx_layer_read_fn read, void *read_ctx,
		  const struct sbx_layer_put_opts *opts, struct sbx_layer_info *info, sbx_error **err);
int sbx_layer_put_fd(struct sbx_layer_store *s, const char *owner, int fd, const struct sbx_layer_put_opts *opts,
		     struct sbx_layer_info *info, sbx_error **err);

/* Store the tree at dirfd, a directory in the form overlayfs writes an
 * upper layer (whiteouts as 0:0 character devices, opaque directories
 * marked with trusted.overlay.opaque), as a layer: a snapshot of a
 * sandbox's writable layer. The tree is written as an OCI layer tar in a
 * fixed order (names sorted, whiteouts as .wh. entries, hard links within
 * the tree kept, owners less id_base so that the layer holds the ids seen
 * inside the sandbox), so one tree always gives one diff_id, and that tar
 * is stored as sbx_layer_put does. Sockets are left out; device nodes
 * other than whiteouts and ids outside [id_base, id_base + 65536) are
 * refused. The tree must not change meanwhile (freeze the sandbox). */
int sbx_layer_put_dir(struct sbx_layer_store *s, const char *owner, int dirfd, uint32_t id_base,
		      const struct sbx_layer_put_opts *opts, struct sbx_layer_info *info, sbx_error **err);
/* The same tar written to out_fd, without storing anything. */
int sbx_layer_tar_dir(int dirfd, uint32_t id_base, int out_fd, sbx_error **err);

/* Add owner's reference to a stored layer (idempotent); SBX_ERR_NOT_FOUND
 * when the store does not hold it. info may be NULL. */
int sbx_layer_ref(struct sbx_layer_store *s, const char *diff_id, const char *owner, struct sbx_layer_info *info,
		  sbx_error **err);
/* Drop owner's reference; the layer is removed when it was the last.
 * Returns 1 when the layer was removed, 0 otherwise. */
int sbx_layer_unref(struct sbx_layer_store *s, const char *diff_id, const char *owner, sbx_error **err);
/* Drop every reference owner holds (e.g. a failed import). */
int sbx_layer_release_owner(struct sbx_layer_store *s, const char *owner, sbx_error **err);

bool sbx_layer_exists(struct sbx_layer_store *s, const char *diff_id);
int sbx_layer_get_info(struct sbx_layer_store *s, const char *diff_id, struct sbx_layer_info *info, sbx_error **err);
/* Host path of the layer's tree, for the overlay (caller frees). */
char *sbx_layer_tree_path(const struct sbx_layer_store *s, const char *diff_id);
/* An fd of the layer's kept blob (read-only). */
int sbx_layer_open_blob(struct sbx_layer_store *s, const char *diff_id, sbx_error **err);
/* Stored layers (diff_ids) and the owners of one, as NULL-terminated
 * vectors the caller frees with sbx_strv_free. */
int sbx_layer_list(struct sbx_layer_store *s, char ***diff_ids, sbx_error **err);
int sbx_layer_owners(struct sbx_layer_store *s, const char *diff_id, char ***owners, sbx_error **err);

/* Unpack one layer tar stream into the directory dirfd (empty, private)
 * with the rules of sbx_layer_put, no digests and no store: the part
 * that reads hostile bytes, on its own for tests and fuzzing. */
int sbx_layer_unpack_fd(int dirfd, int fd, int64_t *size, int64_t *entries, sbx_error **err);

#endif
