/* Archives of stopped sandboxes (archive.c): sandbox.archive and the
 * auto_archive_min policy pack a stopped sandbox's writable layer (and its
 * disk image) into one zstd tar in its state directory and free the
 * layer; a start restores it first. The intent is saved in sandbox.json
 * (states archiving, restoring) before any file changes, so that a daemon
 * that dies meanwhile finds the sandbox as it was, or the archive
 * finished. */
#ifndef SBX_ARCHIVE_H
#define SBX_ARCHIVE_H

#include "registry/sandbox.h"

/* Archive a stopped sandbox in a worker. req (may be NULL) is answered
 * with the sandbox object once it is archived, or with the error. A
 * failure returned here answers nothing and changes nothing. */
int sbx_sandbox_archive(struct sbx_sandbox *sb, struct sbx_request *req, sbx_error **err);

/* Restore an archived sandbox in a worker; done(sb, err, data) once it is
 * stopped with its layer back (err NULL), or archived still (err). Never
 * called from inside this call. */
typedef void (*sbx_restore_done_fn)(struct sbx_sandbox *sb, sbx_error *err, void *data);
int sbx_sandbox_restore(struct sbx_sandbox *sb, sbx_restore_done_fn done, void *data, sbx_error **err);

/* At start-up, before the sandbox is reconciled: an archive or restore
 * the daemon did not see end is finished (the archive was complete) or
 * undone. */
void sbx_sandbox_archive_recover(struct sbx_sandbox *sb);

#endif
