/* The loop devices sandboxd makes for disk-limited sandboxes (on state dirs
 * without project quotas): one device per user (a sandbox's start, or an fs
 * worker on a stopped sandbox), recorded in <run_dir>/loop-devices/ while
 * it exists, and removed with LOOP_CTL_REMOVE once its user is gone and
 * autoclear has detached it. A device left by a crash is removed at the
 * next start. Never touches a loop device it did not make. */
#ifndef SBX_LOOPDEVS_H
#define SBX_LOOPDEVS_H

#include "daemon.h"

/* After sandboxes are recovered: takes back the devices a previous run
 * made, queues the ones no running sandbox uses for removal, and starts
 * the threads that remove devices (a removal waits for an RCU grace
 * period, tens of milliseconds, which the loop must not). */
int sbx_loopdevs_init(struct sbx_daemon *d, sbx_error **err);
/* At exit: removes what can be removed within a few seconds. Devices of
 * running sandboxes stay, recorded, for the next start. */
void sbx_loopdevs_fini(struct sbx_daemon *d);

/* Make a device for owner (a sandbox id) and attach image to it, autoclear;
 * returns its fd and fills devpath, or fails leaving nothing. */
int sbx_loopdevs_attach(struct sbx_daemon *d, const char *owner, const char *image, char devpath[32],
			sbx_error **err);
/* Only make one (for a worker that attaches it itself); returns its number. */
int sbx_loopdevs_add(struct sbx_daemon *d, const char *owner, sbx_error **err);
/* Owner's devices are no longer used (its sandbox stopped, or failed to
 * start): removed as soon as they are detached. */
void sbx_loopdevs_release(struct sbx_daemon *d, const char *owner);
void sbx_loopdevs_release_index(struct sbx_daemon *d, int index);
/* Devices made and not removed yet (in use, or waiting for removal). */
size_t sbx_loopdevs_count(struct sbx_daemon *d);

#endif
