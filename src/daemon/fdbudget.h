/* The daemon's file-descriptor budget: the soft RLIMIT_NOFILE raised to the
 * hard one at start, and a reserve that new sandboxes may not eat into, so
 * that work on the sandboxes that exist (exec, spawn, logs, fs, delete)
 * never meets "Too many open files". Never refuses anything but growth. */
#ifndef SBX_FDBUDGET_H
#define SBX_FDBUDGET_H

#include <stdint.h>

#include "error.h"

struct sbx_fdbudget {
	int64_t limit;      /* the soft limit in effect */
	int64_t hard;       /* the hard limit */
	int64_t reserve;    /* kept free for work on existing sandboxes */
	int64_t used;       /* open descriptors at the last count */
	int64_t counted_ms; /* when (monotonic), 0: never */
};

/* Raise the soft limit to the hard one and settle the reserve; logs both
 * limits, and a warning when max_sandboxes cannot fit. */
void sbx_fdbudget_init(struct sbx_fdbudget *b, int64_t max_sandboxes);
/* Descriptors open now (counted, and remembered). */
int64_t sbx_fdbudget_count(struct sbx_fdbudget *b);
/* Room for one more sandbox to start? A limit error (4) naming the limit
 * and how to raise it when not. */
int sbx_fdbudget_check_start(struct sbx_fdbudget *b, sbx_error **err);

#endif
