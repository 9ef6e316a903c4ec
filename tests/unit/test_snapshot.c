/* The copy a snapshot makes of a writable layer: a clone keeps every kind
 * of file, and the pass under the freeze brings a clone made while the
 * tree changed up to date (changed, new, removed entries; metadata and
 * attributes), or asks for a whole clone when hard links changed. Owners,
 * trusted.* and device nodes need root: skipped (77) without it. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot.h"
#include "unit.h"
#include "treewalk.h"
#include "util.h"

static void setup(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: needs root (owners, trusted.* attributes, device nodes)\n");
		exit(77);
	}
	unit_mkdtemp(dir, "snapshot");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dfd, 0);
	make_layer(dfd);
	ck_assert_int_eq(mkdirat(dfd, "clone", 0700), 0);
}

static void teardown(void)
{
	close(dfd);
	unit_rm_rf(dir);
}

static int opendir_at(const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(clone_keeps_every_kind_of_file)
{
	int u = opendir_at("upper"), c = opendir_at("clone");
	struct sbx_snapshot_info info = { 0 };
	sbx_error *err = NULL;
	ck_assert_msg(sbx_tree_clone(u, c, &info, &err) == 0, "clone: %s", err ? err->msg : "?");
	char *a = describe_tree("upper"), *b = describe_tree("clone");
	ck_assert_str_eq(b, a);
	ck_assert_int_ge(info.files, 11);
	free(a);
	free(b);
	close(u);
	close(c);
}
END_TEST

START_TEST(sync_follows_changes_made_during_the_copy)
{
	int u = opendir_at("upper"), c = opendir_at("clone");
	sbx_error *err = NULL;
	/* The layer was made just before: its files must be older than
	 * since, its changes newer, by more than the file times' grain. */
	struct timespec since;
	usleep(100000);
	clock_gettime(CLOCK_REALTIME, &since);
	usleep(100000);
	ck_assert_int_eq(sbx_tree_clone(u, c, NULL, &err), 0);
	/* The sandbox goes on: content, a new file and directory, a removed
	 * file and directory, a changed mode, attribute and symlink. */
	unit_write(u, "opaque/deep/x", "changed");
	unit_write(u, "new-file", "new");
	ck_assert_int_eq(mkdirat(u, "new-dir", 0750), 0);
	unit_write(u, "new-dir/inside", "in");
	ck_assert_int_eq(unlinkat(u, "fifo", 0), 0);
	ck_assert_int_eq(unlinkat(u, "empty", AT_REMOVEDIR), 0);
	ck_assert_int_eq(fchmodat(u, "sparse", 0600, 0), 0);
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/upper/opaque", dir);
	ck_assert_int_eq(lremovexattr(p, "trusted.overlay.opaque"), 0);
	ck_assert_int_eq(lsetxattr(p, "user.added", "1", 1, 0), 0);
	ck_assert_int_eq(unlinkat(u, "symlink", 0), 0);
	ck_assert_int_eq(symlinkat("elsewhere", u, "symlink"), 0);
	struct sbx_snapshot_info delta = { 0 };
	ck_assert_msg(sbx_tree_sync(u, c, &since, &delta, &err) == 0, "sync: %s", err ? err->msg : "?");
	char *a = describe_tree("upper"), *b = describe_tree("clone");
	ck_assert_str_eq(b, a);
	free(a);
	free(b);
	/* Nothing changed since: nothing copied again, nothing differs. */
	struct timespec later;
	clock_gettime(CLOCK_REALTIME, &later);
	later.tv_sec += 1;
	delta = (struct sbx_snapshot_info){ 0 };
	ck_assert_int_eq(sbx_tree_sync(u, c, &later, &delta, &err), 0);
	ck_assert_int_eq(delta.files, 0);
	close(u);
	close(c);
}
END_TEST

START_TEST(sync_asks_for_a_whole_clone_when_links_change)
{
	int u = opendir_at("upper"), c = opendir_at("clone");
	sbx_error *err = NULL;
	/* The layer was made just before: its files must be older than
	 * since, its changes newer, by more than the file times' grain. */
	struct timespec since;
	usleep(100000);
	clock_gettime(CLOCK_REALTIME, &since);
	usleep(100000);
	ck_assert_int_eq(sbx_tree_clone(u, c, NULL, &err), 0);
	/* Written through one name: the other must see it too, which a copy
	 * of one name cannot give. */
	unit_write(u, "hardlink", "through the other name");
	ck_assert_int_eq(sbx_tree_sync(u, c, &since, NULL, &err), 1);
	close(u);
	close(c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("clone");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, clone_keeps_every_kind_of_file);
	tcase_add_test(tc, sync_follows_changes_made_during_the_copy);
	tcase_add_test(tc, sync_asks_for_a_whole_clone_when_links_change);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
