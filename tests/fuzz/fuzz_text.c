/* Small decoders of untrusted text: base64 from clients, UTF-8 repair of
 * command output, decimal parsing of ids and limits. Round trips must hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = NULL;
	size_t outlen = 0;
	if (sbx_base64_decode((const char *)data, size, &out, &outlen) == 0) {
		size_t elen;
		char *again = sbx_base64_encode(out, outlen, &elen);
		if (!again || elen != size || memcmp(again, data, size))
			abort(); /* canonical input must round-trip */
		free(again);
		free(out);
	}
	size_t slen;
	char *clean = sbx_utf8_sanitize((const char *)data, size, &slen);
	if (clean) {
		size_t l2;
		char *twice = sbx_utf8_sanitize(clean, slen, &l2);
		if (!twice || l2 != slen || memcmp(twice, clean, slen))
			abort(); /* sanitizing is idempotent */
		free(twice);
		free(clean);
	}
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
		int64_t v;
		(void)sbx_parse_int64(s, INT64_MIN, INT64_MAX, &v);
		(void)sbx_name_valid(s);
		(void)sbx_id_valid(s);
		(void)sbx_signal_from_name(s);
		free(s);
	}
	return 0;
}
