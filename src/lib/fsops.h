/* File operations on a sandbox's tree for the fs API: every path is
 * resolved below a directory fd of the sandbox root, every step, with
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS; a name is created, renamed or
 * removed only relative to an fd of its in-root parent. Never follows a
 * symlink while walking a tree, never opens anything but a regular file
 * for its content. Knows nothing of JSON. */
#ifndef SBX_FSOPS_H
#define SBX_FSOPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"

/* Longest path accepted from a client. */
#define SBX_FS_PATH_MAX 4096

struct sbx_fs {
	int rootfd;          /* directory fd (O_PATH is enough) of the sandbox root */
	const char *workdir; /* absolute; relative paths start here */
	uid_t uid;           /* host ids that created files and directories get */
	gid_t gid;
	uint32_t id_base;    /* host id of id 0 inside (user namespace); 0: none */
};

/* Lexically normalize path (relative to fs->workdir) into an absolute
 * in-root path without ".", ".." or repeated slashes. Fails with -32602
 * naming param when it is empty or too long. */
int sbx_fs_normalize(const struct sbx_fs *fs, const char *path, const char *param, char **out, sbx_error **err);

/* openat2 below the root; errno as openat2 leaves it (ELOOP/EXDEV: escape). */
int sbx_fs_openat(const struct sbx_fs *fs, const char *abspath, int flags, mode_t mode);
/* The same, with a failure turned into an error naming the path. */
int sbx_fs_open(const struct sbx_fs *fs, const char *abspath, int flags, sbx_error **err);
/* An O_PATH fd of the parent directory of abspath and its last name
 * (a pointer into abspath). abspath must be normalized and not "/". */
int sbx_fs_open_parent(const struct sbx_fs *fs, const char *abspath, const char **name, sbx_error **err);
/* Open a regular file for reading or writing (O_RDONLY, O_WRONLY, O_RDWR),
 * after checking with fstat on an O_PATH fd that it is one: FIFOs, sockets
 * and devices are refused, never opened. With create, a missing file is
 * made (mode, the fs owner) in its parent, and parents too when
 * create_parents. *created tells whether it was made. */
int sbx_fs_open_file(const struct sbx_fs *fs, const char *abspath, int accmode, bool create, bool create_parents,
		     mode_t mode, bool *created, sbx_error **err);

/* Make a directory (and its parents); exist_ok for "mkdir -p". */
int sbx_fs_mkdir(const struct sbx_fs *fs, const char *abspath, mode_t mode, bool parents, bool exist_ok,
		 sbx_error **err);
int sbx_fs_remove(const struct sbx_fs *fs, const char *abspath, bool recursive, sbx_error **err);
/* Move src to dst; when dst is an existing directory, into it (as mv).
 * *final gets the path it ended at (caller frees). A directory the overlay
 * cannot rename (one from the image: EXDEV) is copied, as mv does across
 * file systems, to a temporary name beside the target, renamed into place
 * and then removed. */
int sbx_fs_move(const struct sbx_fs *fs, const char *src, const char *dst, bool overwrite, char **final,
		sbx_error **err);
/* Copy the directory tree src to dst, which must not exist: owners, modes,
 * times, extended attributes, symlinks and hard links inside the tree as
 * they are, FIFOs and sockets recreated, device nodes refused. No symlink
 * is followed; a failed copy is removed. */
int sbx_fs_copy_tree(const struct sbx_fs *fs, const char *src, const char *dst, sbx_error **err);
/* mode < 0, uid/gid (inside ids) < 0: leave as is. */
int sbx_fs_chmod(const struct sbx_fs *fs, const char *abspath, int mode, int64_t uid, int64_t gid, sbx_error **err);

/* Host id <-> id inside the sandbox. */
int64_t sbx_fs_id_inside(const struct sbx_fs *fs, uint32_t host_id);
int64_t sbx_fs_id_host(const struct sbx_fs *fs, int64_t inside_id);

/* Parse a mode: decimal integer text is not accepted here; an octal
 * string such as "0644" or "755". */
int sbx_fs_parse_mode(const char *s, int *out);

/* A tree walk that never follows symlinks: visit is called for every entry
 * below abspath (not abspath itself) up to depth levels (1: direct
 * children; 0: unlimited), with its in-root path and lstat. dirfd/name
 * name the entry. Returning < 0 stops the walk with that result; 1 skips
 * descending into a directory. Entries are visited sorted by name. */
typedef int (*sbx_fs_visit_fn)(void *ctx, const char *path, int dirfd, const char *name, const struct stat *st);
int sbx_fs_walk(const struct sbx_fs *fs, const char *abspath, int depth, sbx_fs_visit_fn visit, void *ctx,
		sbx_error **err);

/* Does a buffer look binary (a NUL byte in its first 8 KiB)? */
bool sbx_fs_is_binary(const char *data, size_t len);

/* Replace every match of a compiled pattern (or literal text) in data;
 * returns the count, fills *out (caller frees). */
struct sbx_fs_pattern;
int sbx_fs_pattern_compile(const char *pattern, bool literal, struct sbx_fs_pattern **out, sbx_error **err);
void sbx_fs_pattern_free(struct sbx_fs_pattern *p);
/* Does this NUL-terminated line match? */
bool sbx_fs_pattern_match(const struct sbx_fs_pattern *p, const char *line);
int64_t sbx_fs_replace_buf(const struct sbx_fs_pattern *p, const char *data, size_t len, const char *repl,
			   char **out, size_t *outlen);

/* Copy everything from in to out (files, pipes, sockets) with
 * copy_file_range, splice or sendfile, falling back to read/write;
 * at most max bytes (-1: to EOF). Returns bytes copied or -1. */
int64_t sbx_fs_copy_fd(int in, int out, int64_t max, sbx_error **err);

#endif
