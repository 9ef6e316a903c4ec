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
#include "treewalk.h"
#include "util.h"


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
	char *before = describe_tree("upper");
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
	char *after = describe_tree("upper");
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
