/* Content digests of image blobs and layers ("sha256:<64 hex>"), computed
 * with nettle's SHA-256 while the bytes stream past. Never a hand-written
 * hash: libarchive already loads libnettle into the process. */
#ifndef SBX_DIGEST_H
#define SBX_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#include <nettle/sha2.h>

#include "error.h"

/* "sha256:" + 64 hex digits + NUL */
#define SBX_DIGEST_LEN 72
#define SBX_DIGEST_HEX_LEN 64

struct sbx_sha256 {
	struct sha256_ctx ctx;
};

void sbx_sha256_init(struct sbx_sha256 *h);
void sbx_sha256_update(struct sbx_sha256 *h, const void *data, size_t len);
/* Writes "sha256:<hex>" into out and resets the state. */
void sbx_sha256_final(struct sbx_sha256 *h, char out[SBX_DIGEST_LEN]);
/* The digest of a whole buffer. */
void sbx_sha256_buf(const void *data, size_t len, char out[SBX_DIGEST_LEN]);

/* Is s a digest this store can verify: "sha256:" and 64 lowercase hex? */
bool sbx_digest_valid(const char *s);
/* The hex part of a valid digest. */
const char *sbx_digest_hex(const char *digest);
/* An error naming what for a digest that is not valid; 0 if it is. */
int sbx_digest_check(const char *digest, const char *what, sbx_error **err);

#endif
