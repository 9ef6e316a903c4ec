/* Line framing shared by the daemon's connections and the client. */
#include "config.h"
#include <string.h>

#include "framing.h"

void sbx_framer_init(struct sbx_framer *f, size_t max)
{
	memset(f, 0, sizeof(*f));
	f->max = max;
}

char *sbx_framer_space(struct sbx_framer *f, size_t n)
{
	if (sbx_buf_reserve(&f->buf, n) < 0)
		return NULL;
	return f->buf.data + f->buf.len;
}

void sbx_framer_commit(struct sbx_framer *f, size_t n)
{
	f->buf.len += n;
	f->buf.data[f->buf.len] = '\0';
}

static void drop(struct sbx_framer *f, size_t n)
{
	sbx_buf_consume(&f->buf, n);
	f->scan = 0;
}

enum sbx_frame sbx_framer_next(struct sbx_framer *f, char **line, size_t *len)
{
	if (f->pending) {
		drop(f, f->pending);
		f->pending = 0;
	}
	for (;;) {
		char *nl = f->buf.len > f->scan ? memchr(f->buf.data + f->scan, '\n', f->buf.len - f->scan) : NULL;
		if (!nl) {
			f->scan = f->buf.len;
			if (f->buf.len > f->max) {
				/* Keep memory bounded: forget the bytes, remember the state. */
				bool first = !f->skipping;
				f->skipping = true;
				drop(f, f->buf.len);
				if (first)
					return SBX_FRAME_OVERSIZE;
			}
			return SBX_FRAME_NEED_MORE;
		}
		size_t n = (size_t)(nl - f->buf.data);
		if (f->skipping) {
			f->skipping = false;
			drop(f, n + 1);
			continue;
		}
		if (n > f->max) {
			drop(f, n + 1);
			return SBX_FRAME_OVERSIZE;
		}
		*nl = '\0';
		*line = f->buf.data;
		*len = n;
		f->pending = n + 1;
		return SBX_FRAME_LINE;
	}
}

int sbx_framer_block(struct sbx_framer *f, size_t n, char **data)
{
	if (f->pending) {
		drop(f, f->pending);
		f->pending = 0;
	}
	if (f->buf.len < n)
		return sbx_buf_reserve(&f->buf, n - f->buf.len) < 0 ? -1 : SBX_FRAME_NEED_MORE;
	*data = f->buf.data;
	f->pending = n;
	return SBX_FRAME_LINE;
}

size_t sbx_framer_skip(struct sbx_framer *f, size_t n)
{
	if (f->pending) {
		drop(f, f->pending);
		f->pending = 0;
	}
	if (n > f->buf.len)
		n = f->buf.len;
	drop(f, n);
	return n;
}

bool sbx_framer_partial(const struct sbx_framer *f)
{
	if (f->skipping)
		return false; /* already reported as oversized */
	for (size_t i = f->pending; i < f->buf.len; i++)
		if (f->buf.data[i] != ' ' && f->buf.data[i] != '\t' && f->buf.data[i] != '\r' && f->buf.data[i] != '\n')
			return true;
	return false;
}

void sbx_framer_free(struct sbx_framer *f)
{
	sbx_buf_free(&f->buf);
	f->scan = f->pending = 0;
	f->skipping = false;
}
