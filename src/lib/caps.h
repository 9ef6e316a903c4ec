/* Capabilities of sandbox processes, through libcap-ng: a set kept as a
 * bit mask, applied to the bounding, permitted, effective, inheritable and
 * ambient sets of a process about to run sandbox code. */
#ifndef SBX_CAPS_H
#define SBX_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* What a sandbox's root gets unless told otherwise: Docker's default set
 * less MKNOD (/dev is nodev), NET_RAW (ping uses ICMP sockets here) and
 * AUDIT_WRITE (no audit inside). */
uint64_t sbx_caps_default(void);
/* "NET_ADMIN", "CAP_NET_ADMIN", "net_admin" -> number; -1 if unknown. */
int sbx_caps_from_name(const char *name);
/* Canonical "CAP_X" name; NULL if unknown. */
const char *sbx_caps_name(int cap);
/* Reduce the bounding set to mask and clear the ambient set. Call before
 * changing uid (it needs CAP_SETPCAP). */
int sbx_caps_limit_bounding(uint64_t mask, sbx_error **err);
/* After changing uid: root gets mask in permitted, effective and
 * inheritable; anyone else gets nothing. */
int sbx_caps_apply(uint64_t mask, bool root, sbx_error **err);

#endif
