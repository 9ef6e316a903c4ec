/* User namespaces for sandboxes: root inside maps to an unprivileged host
 * id range of its own. A namespace is made by a short-lived helper and kept
 * as an fd: mounts are idmapped with it and the sandbox's init joins it. */
#ifndef SBX_USERNS_H
#define SBX_USERNS_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define SBX_USERNS_SIZE 65536

/* A user namespace mapping ids 0..count-1 to base..base+count-1 (uids and
 * gids alike); returns an O_CLOEXEC fd of it. */
int sbx_userns_create(uint32_t base, uint32_t count, sbx_error **err);
/* The same, with new IPC and UTS namespaces owned by it, returned as fds
 * in *ipc_fd and *uts_fd (either may be NULL): a sandbox's init joins them
 * before it mounts anything that belongs to one (/dev/mqueue). */
int sbx_userns_create_ns(uint32_t base, uint32_t count, int *ipc_fd, int *uts_fd, sbx_error **err);

#endif
