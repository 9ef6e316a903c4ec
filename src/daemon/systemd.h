/* The two service-manager protocols sandboxd speaks when systemd (or
 * anything else that follows sd_listen_fds(3) and sd_notify(3)) starts
 * it: a listening socket handed over in LISTEN_FDS, and readiness sent to
 * NOTIFY_SOCKET. Both are no-ops without those variables. */
#ifndef SBX_SYSTEMD_H
#define SBX_SYSTEMD_H

#include <stdbool.h>

#include "error.h"

/* The listening unix stream socket passed by the service manager, made
 * close-on-exec and non-blocking; 0 when none was passed (LISTEN_FDS or
 * LISTEN_PID absent or for another process), -1 with err when what was
 * passed is unusable. Clears LISTEN_* from the environment either way, so
 * nothing the daemon starts sees them. */
int sbx_systemd_listen_fd(int *fd, sbx_error **err);

/* Reads NOTIFY_SOCKET once and removes it from the environment. */
void sbx_systemd_notify_init(void);
/* Sends one state string ("READY=1\nSTATUS=..."); false if there is no
 * NOTIFY_SOCKET or the send failed. */
bool sbx_systemd_notify(const char *state);

#endif
