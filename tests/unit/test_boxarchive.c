/* A writable layer packed and unpacked: every kind of file an overlay
 * upper layer holds comes back the same (owner, mode, times, xattrs
 * including trusted.overlay.*, link counts, holes), and a failed or
 * interrupted unpack leaves the layer as it was. Owners, trusted.* and
 * device nodes need root: skipped (77) without it. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "boxarchive.h"
#include "unit.h"
#include "util.h"

static char dir[PATH_MAX];
static int dfd = -1;

static void setup(void)
{
	unit_mkdtemp(dir, "boxarchive");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dfd, 0);
}

static void teardown(void)
{
	close(dfd);
	unit_rm_rf(dir);
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
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

static char *snapshot_tree(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	describe(dfd, "upper", f);
	fclose(f);
	return buf;
}

static void need_root(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: needs root (owners, trusted.* attributes, device nodes)\n");
		exit(77);
	}
}

START_TEST(round_trip_keeps_every_kind_of_file)
{
	need_root();
	make_layer(dfd);
	unit_write(dfd, "disk.img", "not really a disk");
	char *before = snapshot_tree();
	struct sbx_boxarchive_info info;
	sbx_error *err = NULL;
	const char *names[] = { "upper", "disk.img", "missing", NULL };
	ck_assert_msg(sbx_boxarchive_pack(dfd, names, &info, &err) == 0, "pack: %s", err ? err->msg : "?");
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_PART), 0);
	struct stat st;
	ck_assert_int_eq(fstatat(dfd, SBX_BOXARCHIVE_FILE, &st, 0), 0);
	ck_assert_int_eq(info.size, st.st_size);
	/* Holes are not packed: 8 MiB of sparse file costs next to nothing. */
	ck_assert_int_lt(info.size, 64 * 1024);
	ck_assert_int_ge(info.entries, 13);
	/* The layer goes away (the caller's part), then comes back. */
	ck_assert_int_eq(sbx_rm_rf_at(dfd, "upper", NULL), 0);
	ck_assert_int_eq(unlinkat(dfd, "disk.img", 0), 0);
	const char *mk[] = { "work", NULL };
	ck_assert_msg(sbx_boxarchive_unpack(dfd, mk, 0, &err) == 0, "unpack: %s", err ? err->msg : "?");
	char *after = snapshot_tree();
	ck_assert_str_eq(after, before);
	ck_assert_str_eq(unit_read(dfd, "disk.img"), "not really a disk");
	ck_assert_int_eq(fstatat(dfd, "work", &st, 0), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_RESTORE_DIR), 0);
	/* The archive stays until the caller has recorded the restore. */
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_FILE), 1);
	/* The sparse file is still sparse: 4 KiB of data, not 8 MiB. */
	ck_assert_int_eq(fstatat(dfd, "upper/sparse", &st, 0), 0);
	ck_assert_int_eq(st.st_size, 8 << 20);
	ck_assert_int_le(st.st_blocks * 512, 64 * 1024);
	free(before);
	free(after);
}
END_TEST

START_TEST(a_broken_archive_leaves_the_sandbox_archived)
{
	need_root();
	make_layer(dfd);
	sbx_error *err = NULL;
	const char *names[] = { "upper", NULL };
	ck_assert_int_eq(sbx_boxarchive_pack(dfd, names, NULL, &err), 0);
	ck_assert_int_eq(sbx_rm_rf_at(dfd, "upper", NULL), 0);
	/* Cut the archive in half: the unpack fails, renames nothing and
	 * leaves no restore directory. */
	struct stat st;
	ck_assert_int_eq(fstatat(dfd, SBX_BOXARCHIVE_FILE, &st, 0), 0);
	int fd = openat(dfd, SBX_BOXARCHIVE_FILE, O_WRONLY | O_CLOEXEC);
	ck_assert_int_eq(ftruncate(fd, st.st_size / 2), 0);
	close(fd);
	ck_assert_int_eq(sbx_boxarchive_unpack(dfd, NULL, 0, &err), -1);
	ck_assert_ptr_nonnull(err);
	sbx_error_free(err);
	ck_assert_int_eq(unit_exists(dfd, "upper"), 0);
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_RESTORE_DIR), 0);
}
END_TEST

START_TEST(leftovers_of_a_crash_are_discarded)
{
	unit_write(dfd, SBX_BOXARCHIVE_PART, "half");
	ck_assert_int_eq(mkdirat(dfd, SBX_BOXARCHIVE_RESTORE_DIR, 0700), 0);
	unit_write(dfd, SBX_BOXARCHIVE_RESTORE_DIR "/half", "x");
	unit_write(dfd, SBX_BOXARCHIVE_FILE, "whole");
	ck_assert_int_eq(sbx_boxarchive_discard_partial(dfd, NULL), 0);
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_PART), 0);
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_RESTORE_DIR), 0);
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_FILE), 1);
}
END_TEST

START_TEST(a_failed_pack_leaves_no_part_file)
{
	need_root();
	ck_assert_int_eq(mkdirat(dfd, "upper", 0755), 0);
	unit_write(dfd, "upper/a", "a");
	sbx_error *err = NULL;
	/* A full directory where the archive goes: the last rename fails. */
	ck_assert_int_eq(mkdirat(dfd, SBX_BOXARCHIVE_FILE, 0700), 0);
	unit_write(dfd, SBX_BOXARCHIVE_FILE "/x", "x");
	const char *names[] = { "upper", NULL };
	ck_assert_int_eq(sbx_boxarchive_pack(dfd, names, NULL, &err), -1);
	ck_assert_ptr_nonnull(err);
	sbx_error_free(err);
	ck_assert_int_eq(unit_exists(dfd, SBX_BOXARCHIVE_PART), 0);
	ck_assert_str_eq(unit_read(dfd, "upper/a"), "a");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("boxarchive");
	TCase *tc = tcase_create("pack");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip_keeps_every_kind_of_file);
	tcase_add_test(tc, a_broken_archive_leaves_the_sandbox_archived);
	tcase_add_test(tc, leftovers_of_a_crash_are_discarded);
	tcase_add_test(tc, a_failed_pack_leaves_no_part_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
