/* "key = value" files (sandboxd.conf): '#' starts a comment, blank lines
 * are skipped, a value may be in double quotes. Read by the daemon's
 * configuration and by `sandboxctl doctor`, which checks the host with
 * the daemon's settings when the daemon is down. */
#ifndef SBX_CONFFILE_H
#define SBX_CONFFILE_H

#include <stdbool.h>

#include "error.h"

/* fn is called for each setting in order; an error from it stops the
 * reading and is prefixed with "path:line". A missing file is fine unless
 * must_exist. */
int sbx_conffile_read(const char *path, bool must_exist,
		      int (*fn)(const char *key, const char *value, void *data, sbx_error **err), void *data,
		      sbx_error **err);

#endif
