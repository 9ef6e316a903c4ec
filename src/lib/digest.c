/* SHA-256 content digests over nettle. Only sha256 is accepted: it is what
 * registries, skopeo and umoci write, and the OCI spec requires it. */
#include "config.h"
#include <string.h>

#include "digest.h"

void sbx_sha256_init(struct sbx_sha256 *h)
{
	sha256_init(&h->ctx);
}

void sbx_sha256_update(struct sbx_sha256 *h, const void *data, size_t len)
{
	if (len)
		sha256_update(&h->ctx, len, data);
}

void sbx_sha256_final(struct sbx_sha256 *h, char out[SBX_DIGEST_LEN])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[SHA256_DIGEST_SIZE];
	sha256_digest(&h->ctx, sizeof(raw), raw);
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[7 + 2 * i] = hex[raw[i] >> 4];
		out[8 + 2 * i] = hex[raw[i] & 15];
	}
	out[7 + 2 * SHA256_DIGEST_SIZE] = '\0';
}

void sbx_sha256_buf(const void *data, size_t len, char out[SBX_DIGEST_LEN])
{
	struct sbx_sha256 h;
	sbx_sha256_init(&h);
	sbx_sha256_update(&h, data, len);
	sbx_sha256_final(&h, out);
}

bool sbx_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != SBX_DIGEST_LEN - 1)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

const char *sbx_digest_hex(const char *digest)
{
	return digest + 7;
}

int sbx_digest_check(const char *digest, const char *what, sbx_error **err)
{
	if (sbx_digest_valid(digest))
		return 0;
	if (digest && strchr(digest, ':') && strncmp(digest, "sha256:", 7) != 0)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "%s: digest algorithm of '%.80s' is not supported (only sha256)",
				     what, digest);
	return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%.80s' is not a sha256 digest", what,
			     digest ? digest : "(none)");
}
