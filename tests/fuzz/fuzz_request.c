/* One protocol line as the daemon reads it: JSON parse, the envelope,
 * the NUL scan, and the typed accessors the handlers use on params. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char param[64];
	(void)sbx_json_find_nul(text, size, param, sizeof(param));
	sbx_error *err = NULL;
	yajl_val root = sbx_json_parse(text, &err);
	sbx_error_free(err);
	err = NULL;
	if (root) {
		yajl_val params = sbx_json_get(root, "params");
		const char *s;
		int64_t i;
		double d;
		bool b;
		yajl_val v;
		char **strv = NULL;
		struct sbx_kvlist kv = { 0 };
		static const char *const keys[] = { "sandbox", "name", "image", "cmd", "env", "labels", "timeout_s",
						    "resources", "force", "cap_add" };
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			sbx_json_string(params, keys[k], false, &s, &err);
			sbx_error_freep(&err);
			sbx_json_int(params, keys[k], false, -5, 5000, &i, &err);
			sbx_error_freep(&err);
			sbx_json_number(params, keys[k], false, 0, 1e6, &d, &err);
			sbx_error_freep(&err);
			sbx_json_bool(params, keys[k], false, &b, &err);
			sbx_error_freep(&err);
			sbx_json_object(params, keys[k], false, &v, &err);
			sbx_error_freep(&err);
			if (sbx_json_string_array(params, keys[k], false, &strv, &err) > 0)
				sbx_strv_free(strv);
			strv = NULL;
			sbx_error_freep(&err);
			if (sbx_json_string_map(params, keys[k], false, &kv, &err) > 0)
				sbx_kvlist_free(&kv);
			sbx_error_freep(&err);
		}
		/* Echoing the id and values back must not fail either. */
		yajl_gen g = sbx_gen_new();
		if (g) {
			sbx_gen_value(g, root);
			yajl_gen_free(g);
		}
		yajl_tree_free(root);
	}
	free(text);
	return 0;
}
