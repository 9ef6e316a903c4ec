/* The preview gateway's request head parser reads bytes from anyone who
 * can connect. Every span it returns must lie inside the input, and the
 * helpers applied to those spans must stay inside them too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httphead.h"

static void inside(const uint8_t *data, size_t size, struct sbx_http_str s)
{
	if (s.n && ((const uint8_t *)s.p < data || (const uint8_t *)s.p + s.n > data + size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_http_head h;
	int r = sbx_http_parse_head((const char *)data, size, &h);
	if (r > 0) {
		if ((size_t)r > size || h.len != (size_t)r || h.n_headers > SBX_HTTP_MAX_HEADERS)
			abort();
		inside(data, size, h.method);
		inside(data, size, h.target);
		for (size_t i = 0; i < h.n_headers; i++) {
			inside(data, size, h.headers[i].name);
			inside(data, size, h.headers[i].value);
			struct sbx_http_str v;
			if (sbx_http_cookie_get(h.headers[i].value, "sbx_preview_token", &v))
				inside(data, size, v);
			uint16_t port;
			char id[13];
			sbx_http_host_local(h.headers[i].value, "preview.example.com");
			if (sbx_http_preview_host(h.headers[i].value, "localhost", &port, id) == 0 &&
			    (port == 0 || strlen(id) != 12))
				abort();
		}
		struct sbx_http_str v;
		if (sbx_http_query_get(h.target, "token", &v))
			inside(data, size, v);
		char out[256];
		size_t need = sbx_http_query_remove(h.target, "token", out, sizeof(out));
		if (need > h.target.n || strlen(out) != (need < sizeof(out) ? need : sizeof(out) - 1))
			abort();
		struct sbx_http_str rest = { out, need };
		if (need < sizeof(out) && sbx_http_query_get(rest, "token", NULL))
			abort(); /* the parameter is gone */
	}
	return 0;
}
