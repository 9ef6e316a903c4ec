/* JSON-lines framing: bytes in, complete lines out, with a bound on line
 * length that holds memory to about that bound whatever a peer sends. */
#ifndef SBX_FRAMING_H
#define SBX_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct sbx_framer {
	struct sbx_buf buf;
	size_t scan;     /* bytes of buf already searched for '\n' */
	size_t max;      /* longest accepted line, newline excluded */
	size_t pending;  /* bytes of the line last returned, dropped on the next call */
	bool skipping;   /* discarding the rest of an oversized line */
};

enum sbx_frame {
	SBX_FRAME_NEED_MORE, /* no complete line buffered */
	SBX_FRAME_LINE,      /* *line (NUL-terminated, *len bytes) valid until the next call */
	SBX_FRAME_OVERSIZE,  /* a line longer than max was dropped; reported once per line */
};

void sbx_framer_init(struct sbx_framer *f, size_t max);
/* Room for n more bytes; write into it, then commit what was written. */
char *sbx_framer_space(struct sbx_framer *f, size_t n);
void sbx_framer_commit(struct sbx_framer *f, size_t n);
enum sbx_frame sbx_framer_next(struct sbx_framer *f, char **line, size_t *len);
/* The next n bytes, whatever they hold, as one block (bytes that follow a
 * line rather than lines): SBX_FRAME_LINE with *data valid until the next
 * call, or SBX_FRAME_NEED_MORE (room for all n is kept; -1 when it cannot
 * be had: out of memory). */
int sbx_framer_block(struct sbx_framer *f, size_t n, char **data);
/* Forget up to n bytes of what is buffered; returns how many went. */
size_t sbx_framer_skip(struct sbx_framer *f, size_t n);
/* At end of input: is an unterminated message left over? */
bool sbx_framer_partial(const struct sbx_framer *f);
void sbx_framer_free(struct sbx_framer *f);

#endif
