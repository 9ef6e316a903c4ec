/* Snapshots and forks of sandboxes (snapshots.c): sandbox.snapshot makes a
 * layered image of a sandbox's files (its image's layers and a new one of
 * its writable layer, captured with its processes frozen only for a
 * clone), with its environment, working directory and user as the image's
 * defaults; sandbox.fork makes that image and creates a sandbox from it. */
#ifndef SBX_SNAPSHOTS_H
#define SBX_SNAPSHOTS_H

#include "daemon.h"

/* The methods are declared with the others in daemon.h. */

#endif
