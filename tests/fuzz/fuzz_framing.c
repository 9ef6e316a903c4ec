/* Bytes from a client, cut into arbitrary reads: the framer must hand out
 * only complete lines no longer than its bound, and hold no more than about
 * the bound in memory, whatever arrives. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t max = 16 + data[0] % 64; /* small bounds reach the edge cases */
	unsigned chunk_seed = data[1];
	data += 2;
	size -= 2;
	struct sbx_framer f;
	sbx_framer_init(&f, max);
	size_t pos = 0;
	while (pos < size) {
		size_t n = 1 + (chunk_seed = chunk_seed * 1103515245u + 12345u) % 37;
		if (n > size - pos)
			n = size - pos;
		char *space = sbx_framer_space(&f, n);
		if (!space)
			abort();
		memcpy(space, data + pos, n);
		sbx_framer_commit(&f, n);
		pos += n;
		for (;;) {
			char *line;
			size_t len;
			enum sbx_frame fr = sbx_framer_next(&f, &line, &len);
			if (fr == SBX_FRAME_NEED_MORE)
				break;
			if (fr == SBX_FRAME_LINE && (len > max || strlen(line) > len || memchr(line, '\n', len)))
				abort();
		}
		if (f.buf.len > max + 64)
			abort(); /* memory must stay bounded */
	}
	(void)sbx_framer_partial(&f);
	sbx_framer_free(&f);
	return 0;
}
