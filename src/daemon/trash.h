/* The trash of the state dir: trees removed in a worker after one rename. */
#ifndef SBX_TRASH_H
#define SBX_TRASH_H

#include "daemon.h"

/* Move state_dir/relpath aside at once and delete it in a worker. */
int sbx_trash(struct sbx_daemon *d, const char *relpath, sbx_error **err);
/* The same in two steps, for a mover of its own: a free name in the
 * trash (dst, relative to the state dir), and the removal in a worker of
 * what was moved there. */
int sbx_trash_reserve(struct sbx_daemon *d, char dst[64], sbx_error **err);
void sbx_trash_remove(struct sbx_daemon *d, const char *dst);
/* Delete what an earlier run left in the trash (at start-up). */
void sbx_trash_empty(struct sbx_daemon *d);

#endif
