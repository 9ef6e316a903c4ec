/* Trees for the tests of code that copies writable layers: one with every
 * kind of file overlayfs leaves in an upper directory, and a description
 * of a tree (owner, mode, link count, size, blocks, times, xattrs) to
 * compare two of them. Needs dir and dfd, the test's scratch directory. */
#ifndef SBX_UNIT_TREEWALK_H
#define SBX_UNIT_TREEWALK_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static char dir[PATH_MAX];
static int dfd = -1;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A layer with one of each: what overlayfs and a sandbox leave in upper/. */
static void make_layer(int at)
{
	ck_assert_int_eq(mkdirat(at, "upper", 0755), 0);
	ck_assert_int_eq(fchownat(at, "upper", 100000, 100000, AT_SYMLINK_NOFOLLOW), 0);
	int u = openat(at, "upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(u, 0);
	unit_write(u, "file", "hello\n");
	ck_assert_int_eq(fchownat(u, "file", 101000, 102000, 0), 0);
	ck_assert_int_eq(fchmodat(u, "file", 04750, 0), 0);
	ck_assert_int_eq(linkat(u, "file", u, "hardlink", 0), 0);
	ck_assert_int_eq(symlinkat("file", u, "symlink"), 0);
	ck_assert_int_eq(symlinkat("/nowhere/at/all", u, "dangling"), 0);
	ck_assert_int_eq(mkfifoat(u, "fifo", 0640), 0);
	ck_assert_int_eq(mknodat(u, "whiteout", S_IFCHR | 0, makedev(0, 0)), 0);
	ck_assert_int_eq(mkdirat(u, "empty", 0711), 0);
	ck_assert_int_eq(mkdirat(u, "opaque", 0755), 0);
	ck_assert_int_eq(mkdirat(u, "opaque/deep", 0700), 0);
	unit_write(u, "opaque/deep/x", "x");
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/upper/opaque", dir);
	ck_assert_int_eq(lsetxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
	snprintf(p, sizeof(p), "%s/upper/file", dir);
	ck_assert_int_eq(lsetxattr(p, "user.note", "kept", 4, 0), 0);
	ck_assert_int_eq(lsetxattr(p, "trusted.overlay.origin", "\0\1\2", 3, 0), 0);
	/* 8 MiB with 4 KiB of data in the middle and a hole at the end. */
	int fd = openat(u, "sparse", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	char block[4096];
	memset(block, 'z', sizeof(block));
	ck_assert_int_eq(pwrite(fd, block, sizeof(block), 4 << 20), (ssize_t)sizeof(block));
	ck_assert_int_eq(ftruncate(fd, 8 << 20), 0);
	close(fd);
	struct timespec ts[2] = { { 1000000000, 123456789 }, { 1200000000, 987654321 } };
	ck_assert_int_eq(utimensat(u, "file", ts, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(utimensat(u, "empty", ts, AT_SYMLINK_NOFOLLOW), 0);
	close(u);
}

/* One line per entry: what must survive, from a walk sorted by name. */
static void describe(int at, const char *rel, FILE *out)
{
	struct stat st;
	ck_assert_int_eq(fstatat(at, rel, &st, AT_SYMLINK_NOFOLLOW), 0);
	fprintf(out, "%s mode=%o uid=%u gid=%u nlink=%lu", rel, st.st_mode, st.st_uid, st.st_gid,
		(unsigned long)st.st_nlink);
	if (S_ISREG(st.st_mode))
		fprintf(out, " size=%lld blocks=%lld mtime=%lld.%09ld", (long long)st.st_size, (long long)st.st_blocks,
			(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (S_ISDIR(st.st_mode) && !strcmp(rel + strlen(rel) - 5, "empty"))
		fprintf(out, " mtime=%lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (S_ISCHR(st.st_mode))
		fprintf(out, " rdev=%u:%u", major(st.st_rdev), minor(st.st_rdev));
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (S_ISLNK(st.st_mode)) {
		char t[PATH_MAX];
		ssize_t n = readlink(p, t, sizeof(t) - 1);
		ck_assert_int_ge(n, 0);
		t[n] = '\0';
		fprintf(out, " -> %s", t);
	}
	char names[4096];
	ssize_t n = llistxattr(p, names, sizeof(names));
	ck_assert_int_ge(n, 0);
	/* Sorted: the kernel lists them in the order they were set. */
	const char *keys[64];
	size_t nk = 0;
	for (char *k = names; k < names + n && nk < 64; k += strlen(k) + 1)
		keys[nk++] = k;
	qsort(keys, nk, sizeof(keys[0]), cmp_str);
	for (size_t j = 0; j < nk; j++) {
		const char *k = keys[j];
		char v[256];
		ssize_t vn = lgetxattr(p, k, v, sizeof(v));
		ck_assert_int_ge(vn, 0);
		fprintf(out, " %s=", k);
		for (ssize_t i = 0; i < vn; i++)
			fprintf(out, "%02x", (unsigned char)v[i]);
	}
	fputc('\n', out);
	if (S_ISDIR(st.st_mode)) {
		struct dirent **list;
		int cnt = scandirat(at, rel, &list, NULL, alphasort);
		ck_assert_int_ge(cnt, 0);
		for (int i = 0; i < cnt; i++) {
			if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..")) {
				char sub[PATH_MAX];
				snprintf(sub, sizeof(sub), "%s/%s", rel, list[i]->d_name);
				describe(at, sub, out);
			}
			free(list[i]);
		}
		free(list);
	}
}

/* The tree below top, one line per entry, named relative to top. */
static char *describe_tree(const char *top)
{
	char *buf = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	describe(dfd, top, f);
	fclose(f);
	FILE *o = open_memstream(&out, &olen);
	ck_assert_ptr_nonnull(o);
	size_t tl = strlen(top);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		fprintf(o, ".%s\n", strncmp(line, top, tl) == 0 ? line + tl : line);
	fclose(o);
	free(buf);
	return out;
}

#endif
