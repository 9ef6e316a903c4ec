/* A sandbox's writable layer captured as a layer of the layer store while
 * it runs: its processes are frozen (cgroup.freeze) only while the upper
 * directory is cloned (reflinks where the file system has them, else a
 * copy that keeps holes), then thawed; the clone is stored as a layer
 * afterwards, with the sandbox running again. Never leaves the sandbox
 * frozen: a failure thaws it first. */
#ifndef SBX_SNAPSHOT_H
#define SBX_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "box.h"
#include "error.h"
#include "layers.h"

struct sbx_snapshot_info {
	int64_t pause_ms;    /* how long the sandbox's processes were frozen (0: stopped or already paused) */
	int64_t files;       /* entries cloned */
	int64_t bytes;       /* file content cloned */
	int64_t reflinked;   /* files whose content was shared, not copied */
	int64_t changed;     /* entries copied again under the freeze */
	struct sbx_layer_info layer;
};

/* Copy the tree at src (a directory) into dst (an empty directory):
 * owners, modes, times, every extended attribute (trusted.overlay.*
 * included), hard links within the tree, holes, FIFOs, device nodes
 * (whiteouts), symlinks. Sockets are left out. File content is shared
 * with FICLONE where the file system can, else copied in the kernel. */
int sbx_tree_clone(int src, int dst, struct sbx_snapshot_info *info, sbx_error **err);

/* Bring dst, a clone of src (sbx_tree_clone) begun at since, up to date
 * with src: entries whose inode changed at or after since (ctime) are
 * copied again, directories' metadata reapplied, names gone from src
 * removed. Returns 1, having changed part of dst, when that cannot be done
 * entry by entry (a file of several names changed or came or went): clone
 * the whole tree again then. */
int sbx_tree_sync(int src, int dst, const struct timespec *since, struct sbx_snapshot_info *info, sbx_error **err);

/* Store the writable layer of box as a layer (a reference held by owner)
 * of s. A running box is frozen while the layer is cloned below the
 * store's tmp/ (after a first copy made while it runs: only what changed
 * since is copied under the freeze), and thawed before the clone is
 * stored; a paused box stays
 * paused, a stopped one is not touched. A box whose layer is on a disk
 * image has it mounted (again) here, in a mount namespace of this
 * process's own: call it in a process of its own (a worker). Blocks. */
int sbx_box_snapshot(struct sbx_box *box, struct sbx_layer_store *s, const char *owner,
		     struct sbx_snapshot_info *info, sbx_error **err);

#endif
