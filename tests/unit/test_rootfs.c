/* The overlay root over stored layers, each idmapped into a sandbox's user
 * namespace, through each way the kernel takes layers (fds, paths, one
 * joined string), and the single-lowerdir root as before. Needs root,
 * overlayfs and idmapped mounts; skipped (77) without them. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layerfix.h"
#include "layers.h"
#include "rootfs.h"
#include "unit.h"
#include "userns.h"
#include "util.h"

#define BASE 3000000u

static char dir[PATH_MAX];
static struct sbx_layer_store *store;
static char lower_id[SBX_DIGEST_LEN], upper_id[SBX_DIGEST_LEN];

static const char *tp(const char *name)
{
	static char p[4][PATH_MAX + 64];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void setup(void)
{
	unit_mkdtemp(dir, "rootfs");
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_layer_store_open(tp("store"), &store, &err), 0);
	static const struct fix_entry lower[] = {
		{ FIX_FILE, "a", "a", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "keep", "k", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "home/u/mine", "m", 0, 1000, 1000, NULL, NULL },
		{ FIX_FILE, "d/x", "x", 0, 0, 0, NULL, NULL },
	};
	static const struct fix_entry upper[] = {
		{ FIX_FILE, ".wh.a", "", 0, 0, 0, NULL, NULL },
		{ FIX_DIR, "d/", NULL, 0755, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/.wh..wh..opq", "", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/z", "z", 0, 0, 0, NULL, NULL },
	};
	fix_write_tar(tp("lo.tar"), "none", lower, SBX_ARRAY_SIZE(lower));
	fix_write_tar(tp("up.tar"), "gzip", upper, SBX_ARRAY_SIZE(upper));
	struct sbx_layer_info info;
	int fd = open(tp("lo.tar"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(sbx_layer_put_fd(store, "t", fd, NULL, &info, &err), 0);
	close(fd);
	snprintf(lower_id, sizeof(lower_id), "%s", info.diff_id);
	fd = open(tp("up.tar"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(sbx_layer_put_fd(store, "t", fd, NULL, &info, &err), 0);
	close(fd);
	snprintf(upper_id, sizeof(upper_id), "%s", info.diff_id);
	static const char *const dirs[] = { "upper", "work", "merged", "lower" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(dirs); i++)
		ck_assert_int_eq(mkdir(tp(dirs[i]), 0755), 0);
}

static void teardown(void)
{
	sbx_layer_store_close(store);
	unit_rm_rf(dir);
}

/* In a child with its own mount namespace: mount, look, report. */
static void check_mount(int api, bool layered, bool userns)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(10);
		_cleanup_free_ char *lp = sbx_layer_tree_path(store, lower_id);
		_cleanup_free_ char *up = sbx_layer_tree_path(store, upper_id);
		const char *const lowers[] = { up, lp, NULL };
		sbx_error *err = NULL;
		int ns = userns ? sbx_userns_create(BASE, SBX_USERNS_SIZE, &err) : -1;
		if (userns && ns < 0)
			_exit(11);
		struct sbx_rootfs_config cfg = {
			.mountpoint = tp("merged"),
			.lowerdir = lp,
			.lowerdirs = layered ? lowers : NULL,
			.lower_api = api,
			.upperdir = tp("upper"),
			.workdir = tp("work"),
			.userns_fd = ns,
			.lower_mnt = tp("lower"),
			.root_uid = userns ? BASE : 0,
			.root_gid = userns ? BASE : 0,
		};
		if (sbx_rootfs_mount_overlay(&cfg, &err) < 0) {
			fprintf(stderr, "mount (api %d): %s\n", api, err->msg);
			_exit(12);
		}
		int m = open(tp("merged"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat st, mine;
		if (m < 0 || fstatat(m, "keep", &st, 0) < 0 || fstatat(m, "home/u/mine", &mine, 0) < 0)
			_exit(13);
		uid_t root = userns ? BASE : 0;
		if (st.st_uid != root || mine.st_uid != root + 1000)
			_exit(14);
		if (layered && (unit_exists(m, "a") || unit_exists(m, "d/x") || !unit_exists(m, "d/z")))
			_exit(15);
		if (!layered && (!unit_exists(m, "a") || !unit_exists(m, "d/x")))
			_exit(16);
		/* Writes land in the upper layer, never in a stored one. */
		int w = openat(m, "keep", O_WRONLY | O_APPEND | O_CLOEXEC);
		if (w < 0 || write(w, "+", 1) != 1)
			_exit(17);
		close(w);
		if (unlinkat(m, "d", AT_REMOVEDIR) == 0 || unlinkat(m, layered ? "d/z" : "d/x", 0) < 0)
			_exit(18);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "api %d layered %d userns %d: exit %d", api, layered,
		      userns, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	_cleanup_free_ char *lp = sbx_layer_tree_path(store, lower_id);
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/keep", lp);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	char buf[8] = "";
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 1);
	close(fd);
	ck_assert(unit_exists(AT_FDCWD, tp("upper/keep")));
	if (layered) {
		/* Removing d/z from the merged view left a whiteout above. */
		struct stat st;
		ck_assert_int_eq(lstat(tp("upper/d/z"), &st), 0);
		ck_assert(S_ISCHR(st.st_mode));
	}
}

START_TEST(layers_by_fd_idmapped)
{
	check_mount(SBX_LOWER_API_FD, true, true);
}
END_TEST

START_TEST(layers_by_path_idmapped)
{
	check_mount(SBX_LOWER_API_PATHS, true, true);
}
END_TEST

START_TEST(layers_as_one_string_idmapped)
{
	check_mount(SBX_LOWER_API_STRING, true, true);
}
END_TEST

START_TEST(layers_best_without_userns)
{
	check_mount(SBX_LOWER_API_BEST, true, false);
}
END_TEST

START_TEST(single_lowerdir_as_before)
{
	check_mount(SBX_LOWER_API_BEST, false, true);
}
END_TEST

/* More layers than one joined lowerdir string can name. */
START_TEST(many_layers)
{
	enum { N = 40 };
	char *paths[N + 1];
	for (int i = 0; i < N; i++) {
		char name[32], content[16];
		snprintf(name, sizeof(name), "f%02d", i);
		snprintf(content, sizeof(content), "%d", i);
		const struct fix_entry e[] = { { FIX_FILE, name, content, 0, 0, 0, NULL, NULL },
					       { FIX_FILE, "top", content, 0, 0, 0, NULL, NULL } };
		fix_write_tar(tp("n.tar"), "none", e, 2);
		struct sbx_layer_info info;
		sbx_error *err = NULL;
		int fd = open(tp("n.tar"), O_RDONLY | O_CLOEXEC);
		ck_assert_int_eq(sbx_layer_put_fd(store, "many", fd, NULL, &info, &err), 0);
		close(fd);
		paths[N - 1 - i] = sbx_layer_tree_path(store, info.diff_id);
	}
	paths[N] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(10);
		sbx_error *err = NULL;
		int ns = sbx_userns_create(BASE, SBX_USERNS_SIZE, &err);
		struct sbx_rootfs_config cfg = {
			.mountpoint = tp("merged"),
			.lowerdirs = (const char *const *)paths,
			.upperdir = tp("upper"),
			.workdir = tp("work"),
			.userns_fd = ns,
			.lower_mnt = tp("lower"),
			.root_uid = BASE,
			.root_gid = BASE,
		};
		if (ns < 0 || sbx_rootfs_mount_overlay(&cfg, &err) < 0) {
			fprintf(stderr, "%s\n", err ? err->msg : "");
			_exit(12);
		}
		int m = open(tp("merged"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_exit(unit_exists(m, "f00") && unit_exists(m, "f39") && !strcmp(unit_read(m, "top"), "39") ? 0 : 13);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit %d", WEXITSTATUS(status));
	for (int i = 0; i < N; i++)
		free(paths[i]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rootfs");
	TCase *tc = tcase_create("layers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, layers_by_fd_idmapped);
	tcase_add_test(tc, layers_by_path_idmapped);
	tcase_add_test(tc, layers_as_one_string_idmapped);
	tcase_add_test(tc, layers_best_without_userns);
	tcase_add_test(tc, single_lowerdir_as_before);
	tcase_add_test(tc, many_layers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: test_rootfs needs root\n");
		return 77;
	}
	/* Probe: overlayfs and idmapped mounts on this host's TMPDIR. */
	pid_t pid = fork();
	if (pid == 0) {
		char d[PATH_MAX];
		const char *t = getenv("TMPDIR");
		snprintf(d, sizeof(d), "%s/sbx-probe-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(d) || unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(1);
		int ns = sbx_userns_create(BASE, SBX_USERNS_SIZE, NULL);
		int tree = open_tree(AT_FDCWD, d, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ns };
		int ok = ns >= 0 && tree >= 0 && mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0;
		int fs = fsopen("overlay", FSOPEN_CLOEXEC);
		rmdir(d);
		_exit(ok && fs >= 0 ? 0 : 1);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("SKIP: test_rootfs needs overlayfs and idmapped mounts on TMPDIR\n");
		return 77;
	}
	return unit_run(suite());
}
