/* When the kernel refuses a new process or namespace, say which host limit
 * it was, in words an operator can act on: the namespace counts in
 * /proc/sys/user, kernel.pid_max and kernel.threads-max, a cgroup's
 * pids.max, memory. Only reads /proc and /sys; never changes a limit. */
#ifndef SBX_HOSTLIMIT_H
#define SBX_HOSTLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* Fill err for a failed clone3 or unshare of the CLONE_NEW* flags in ns.
 * ENOSPC (a namespace count), EAGAIN (processes) and ENOMEM become limit
 * errors (code 4) that name the limit; anything else is a plain errno
 * error. cgroup_fd, when not -1, is the group the new process was to go
 * to: its pids limits, and its ancestors', are looked at. host_view: this
 * process still sees the host's /proc (not a sandbox's), so the values of
 * the limits can be given. */
int sbx_hostlimit_error(sbx_error **err, int errnum, uint64_t ns, int cgroup_fd, bool host_view, const char *fmt,
			...) __attribute__((format(printf, 6, 7)));

#endif
