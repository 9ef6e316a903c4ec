/* The cut that takes fs.write's params.data (and a chunk reply's
 * result.data) out of a line before parsing, and the in-place base64
 * decode that follows: what is cut must be exactly one string's bytes, and
 * a valid message must stay valid with that string emptied. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	sbx_error *err = NULL;
	yajl_val whole = sbx_json_parse(text, &err);
	sbx_error_free(err);
	err = NULL;
	struct sbx_json_cut cut = { 0 };
	int r = sbx_json_cut_string(text, size, "params", "data", 1, size & 1 ? "method" : NULL, "fs.write", &cut);
	if (r > 0) {
		if (cut.rest_len + cut.value_len != size || cut.value < text || cut.value + cut.value_len > text + size ||
		    memchr(cut.value, '\\', cut.value_len) || memchr(cut.value, '"', cut.value_len) ||
		    cut.value[-1] != '"' || cut.value[cut.value_len] != '"')
			abort();
		yajl_val rest = sbx_json_parse(cut.rest, &err);
		sbx_error_free(err);
		err = NULL;
		if (whole && !rest)
			abort(); /* valid before: still valid with the string emptied */
		if (rest)
			yajl_tree_free(rest);
		size_t n = 0;
		(void)sbx_base64_decode_into(cut.value, cut.value_len, cut.value, &n);
		if (n > cut.value_len)
			abort();
		free(cut.rest);
	}
	if (whole)
		yajl_tree_free(whole);
	free(text);
	return 0;
}
