/* Paths inside a sandbox, always resolved against a directory fd of the
 * sandbox root with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so
 * that no "..", absolute symlink or /proc magic link can leave the root. */
#ifndef SBX_INROOT_H
#define SBX_INROOT_H

#include <sys/types.h>

#include "error.h"

int sbx_inroot_open(int rootfd, const char *path, int flags, mode_t mode);
/* Create every missing directory of path; returns an O_PATH fd of it. */
int sbx_inroot_mkdir_p(int rootfd, const char *path, mode_t mode, sbx_error **err);
/* Create or truncate a regular file and write data into it. */
int sbx_inroot_write_file(int rootfd, const char *path, const char *data, mode_t mode, sbx_error **err);
/* Open (creating an empty regular file if missing) an O_PATH fd of a file. */
int sbx_inroot_touch(int rootfd, const char *path, mode_t mode, sbx_error **err);

#endif
