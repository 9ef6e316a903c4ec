/* Unit tests of src/lib/fsops.c and src/lib/fsarchive.c. A fake sandbox
 * root sits next to an "outside" directory holding a secret; every
 * operation, whatever ".." or symlink it is handed, must act inside the
 * root, and the outside must be left exactly as it was. */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fsarchive.h"
#include "fsops.h"
#include "util.h"
#include "unit.h"

static char tmp[PATH_MAX];
static int tfd = -1;
static int rootfd = -1;
static char outside_abs[PATH_MAX + 32];
static char outside_dir[PATH_MAX + 32];
static struct sbx_fs fs;

static void mk(const char *path)
{
	ck_assert_msg(mkdirat(tfd, path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
}

static void ln(const char *target, const char *path)
{
	ck_assert_msg(symlinkat(target, tfd, path) == 0, "symlink %s: %s", path, strerror(errno));
}

static void setup(void)
{
	umask(022);
	unit_mkdtemp(tmp, "fsops");
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(tfd, 0);
	snprintf(outside_dir, sizeof(outside_dir), "%s/outside", tmp);
	snprintf(outside_abs, sizeof(outside_abs), "%s/outside/secret", tmp);
	mk("outside");
	unit_write(tfd, "outside/secret", "OUTSIDE");
	mk("root");
	mk("root/etc");
	mk("root/work");
	mk("root/tmp");
	unit_write(tfd, "root/etc/shadow", "INSIDE");
	ln("/etc/shadow", "root/abs");
	ln("../../../../../../../etc/shadow", "root/work/rel");
	ln(outside_abs, "root/bait");
	ln(outside_dir, "root/baitdir");
	ln("/proc/self/root", "root/procroot");
	ln("loop2", "root/loop1");
	ln("loop1", "root/loop2");
	ck_assert_int_eq(mkfifoat(tfd, "root/tmp/fifo", 0644), 0);
	char rp[PATH_MAX + 8];
	snprintf(rp, sizeof(rp), "%s/root", tmp);
	rootfd = open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(rootfd, 0);
	fs = (struct sbx_fs){ .rootfd = rootfd, .workdir = "/work", .uid = 0, .gid = 0 };
}

static void teardown(void)
{
	close(rootfd);
	close(tfd);
	unit_rm_rf(tmp);
}

static void assert_outside_untouched(void)
{
	ck_assert_str_eq(unit_read(tfd, "outside/secret"), "OUTSIDE");
	int n = 0;
	int d = openat(tfd, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fdopendir(d);
	struct dirent *de;
	while ((de = readdir(dir)))
		n++;
	closedir(dir);
	ck_assert_int_eq(n, 3); /* ".", "..", "secret" */
}

static char *norm(const char *path)
{
	char *out = NULL;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_fs_normalize(&fs, path, "path", &out, &err) == 0, "normalize %s", path);
	return out;
}

START_TEST(test_normalize)
{
	static const char *const cases[][2] = {
		{ "/a/b", "/a/b" },	     { "rel", "/work/rel" },	  { "./x/../y", "/work/y" },
		{ "../../../../etc", "/etc" }, { "//a///b/", "/a/b" },	  { "/..", "/" },
		{ "/", "/" },		     { "a/./b/.", "/work/a/b" }, { "..", "/" },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(cases); i++) {
		char *p = norm(cases[i][0]);
		ck_assert_msg(!strcmp(p, cases[i][1]), "%s -> %s, want %s", cases[i][0], p, cases[i][1]);
		free(p);
	}
	char *out = NULL;
	sbx_error *err = NULL;
	ck_assert_int_lt(sbx_fs_normalize(&fs, "", "path", &out, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_str_eq(err->param, "path");
	sbx_error_free(err);
	err = NULL;
	char *long_path = malloc(5001);
	memset(long_path, 'a', 5000);
	long_path[5000] = '\0';
	ck_assert_int_lt(sbx_fs_normalize(&fs, long_path, "dst", &out, &err), 0);
	ck_assert_str_eq(err->param, "dst");
	sbx_error_free(err);
	free(long_path);
}
END_TEST

static const char *read_path(const char *path, int *code)
{
	static char buf[256];
	sbx_error *err = NULL;
	_cleanup_free_ char *p = norm(path);
	int fd = sbx_fs_open_file(&fs, p, O_RDONLY, false, false, 0, NULL, &err);
	if (fd < 0) {
		*code = err->code;
		sbx_error_free(err);
		return NULL;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	*code = 0;
	return buf;
}

START_TEST(test_open_stays_inside)
{
	int code;
	static const char *const inside[] = { "../../etc/shadow", "/abs", "rel", "/work/rel", "/tmp/../../etc/shadow" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(inside); i++) {
		const char *got = read_path(inside[i], &code);
		ck_assert_msg(got && !strcmp(got, "INSIDE"), "%s: %s (code %d)", inside[i], got ? got : "-", code);
	}
	ck_assert_ptr_null(read_path("/bait", &code));
	ck_assert_int_eq(code, SBX_ERR_NOT_FOUND);
	ck_assert_ptr_null(read_path("/loop1", &code));
	ck_assert_int_eq(code, SBX_ERR_DENIED);
	ck_assert_ptr_null(read_path("/work", &code));
	ck_assert_int_eq(code, SBX_ERR_INVALID_PARAMS);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_fifo_refused_without_hang)
{
	alarm(5);
	int code;
	ck_assert_ptr_null(read_path("/tmp/fifo", &code));
	ck_assert_int_eq(code, SBX_ERR_DENIED);
	sbx_error *err = NULL;
	ck_assert_int_lt(sbx_fs_open_file(&fs, "/tmp/fifo", O_WRONLY, true, true, 0644, NULL, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_DENIED);
	sbx_error_free(err);
	alarm(0);
}
END_TEST

START_TEST(test_create_through_symlinks_stays_inside)
{
	sbx_error *err = NULL;
	bool created = false;
	/* The dangling symlink's target is made inside, at the same path. */
	ck_assert_int_ge(sbx_fs_mkdir(&fs, outside_dir, 0755, true, false, &err), 0);
	int fd = sbx_fs_open_file(&fs, "/bait", O_WRONLY, true, false, 0600, &created, &err);
	ck_assert_msg(fd >= 0, "%s", err ? err->msg : "");
	ck_assert(created);
	ck_assert_int_eq(write(fd, "NEW", 3), 3);
	close(fd);
	char inside[PATH_MAX + 64];
	snprintf(inside, sizeof(inside), "root%s", outside_abs);
	ck_assert_str_eq(unit_read(tfd, inside), "NEW");
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, inside, &st, 0), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* Parents through an absolute symlink to a host directory: inside. */
	fd = sbx_fs_open_file(&fs, "/baitdir/new/file", O_WRONLY, true, true, 0644, &created, &err);
	ck_assert_msg(fd >= 0, "%s", err ? err->msg : "");
	close(fd);
	snprintf(inside, sizeof(inside), "root%s/new/file", outside_dir);
	ck_assert_int_eq(fstatat(tfd, inside, &st, 0), 0);
	/* A magic link is never followed. */
	fd = sbx_fs_open_file(&fs, "/procroot/tmp/x", O_WRONLY, true, true, 0644, NULL, &err);
	ck_assert_int_lt(fd, 0);
	sbx_error_free(err);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_owner_of_created_entries)
{
	if (geteuid() != 0)
		return;
	fs.uid = 1234;
	fs.gid = 2345;
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_fs_mkdir(&fs, "/work/a/b", 0700, true, false, &err), 0);
	int fd = sbx_fs_open_file(&fs, "/work/a/b/f", O_WRONLY, true, false, 0640, NULL, &err);
	ck_assert_int_ge(fd, 0);
	close(fd);
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, "root/work/a", &st, 0), 0);
	ck_assert_int_eq(st.st_uid, 1234);
	ck_assert_int_eq(fstatat(tfd, "root/work/a/b", &st, 0), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(fstatat(tfd, "root/work/a/b/f", &st, 0), 0);
	ck_assert_int_eq(st.st_uid, 1234);
	ck_assert_int_eq(st.st_gid, 2345);
	/* The user namespace mapping of ids. */
	fs.id_base = 100000;
	ck_assert_int_eq(sbx_fs_id_inside(&fs, 100005), 5);
	ck_assert_int_eq(sbx_fs_id_inside(&fs, 5), 65534);
	ck_assert_int_eq(sbx_fs_id_host(&fs, 5), 100005);
	ck_assert_int_eq(sbx_fs_id_host(&fs, 70000), -1);
}
END_TEST

START_TEST(test_mkdir_remove_move)
{
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_fs_mkdir(&fs, "/work/d", 0755, false, false, &err), 0);
	ck_assert_int_lt(sbx_fs_mkdir(&fs, "/work/d", 0755, false, false, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_EXISTS);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_lt(sbx_fs_remove(&fs, "/", true, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_DENIED);
	sbx_error_free(err);
	err = NULL;
	unit_write(tfd, "root/work/f", "F");
	char *final = NULL;
	ck_assert_int_eq(sbx_fs_move(&fs, "/work/f", "/work/d", false, &final, &err), 0);
	ck_assert_str_eq(final, "/work/d/f");
	free(final);
	unit_write(tfd, "root/work/g", "G");
	ck_assert_int_lt(sbx_fs_move(&fs, "/work/g", "/work/d/f", false, NULL, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_EXISTS);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_eq(sbx_fs_move(&fs, "/work/g", "/work/d/f", true, NULL, &err), 0);
	ck_assert_str_eq(unit_read(tfd, "root/work/d/f"), "G");
	/* A move "into" the bait symlink's directory stays inside. */
	ck_assert_int_lt(sbx_fs_move(&fs, "/work/d/f", "/baitdir/f", false, NULL, &err), 0);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_lt(sbx_fs_remove(&fs, "/work/d", false, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_EXISTS);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_eq(sbx_fs_remove(&fs, "/work/d", true, &err), 0);
	/* Removing a symlink removes the link, not its target. */
	ck_assert_int_eq(sbx_fs_remove(&fs, "/baitdir", false, &err), 0);
	ck_assert_int_eq(sbx_fs_remove(&fs, "/bait", false, &err), 0);
	assert_outside_untouched();
}
END_TEST

/* The copy behind a move the overlay refuses: everything as it was, links
 * copied as links (never followed out of the root), and a failed copy
 * leaves nothing behind (nor removes an existing target). */
START_TEST(test_copy_tree)
{
	sbx_error *err = NULL;
	mk("root/work/src");
	mk("root/work/src/sub");
	mk("root/work/src/sub/deeper");
	unit_write(tfd, "root/work/src/sub/file", "CONTENT");
	ck_assert_int_eq(fchownat(tfd, "root/work/src/sub/file", 1234, 5678, 0), 0);
	ck_assert_int_eq(fchmodat(tfd, "root/work/src/sub/file", 04751, 0), 0);
	ck_assert_int_eq(fchmodat(tfd, "root/work/src/sub", 0711, 0), 0);
	ln(outside_dir, "root/work/src/out");
	ln("../../etc/shadow", "root/work/src/sub/rel");
	ck_assert_int_eq(fchownat(tfd, "root/work/src/sub/rel", 42, 43, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(mkfifoat(tfd, "root/work/src/fifo", 0620), 0);
	ck_assert_int_eq(fchmodat(tfd, "root/work/src/fifo", 0620, 0), 0);
	struct timespec t[2] = { { .tv_sec = 1000000000, .tv_nsec = 5 }, { .tv_sec = 1200000000, .tv_nsec = 7 } };
	ck_assert_int_eq(utimensat(tfd, "root/work/src/sub/file", t, 0), 0);
	ck_assert_int_eq(utimensat(tfd, "root/work/src/sub/rel", t, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(utimensat(tfd, "root/work/src/sub", t, 0), 0);

	ck_assert_int_eq(sbx_fs_copy_tree(&fs, "/work/src", "/work/dst", &err), 0);
	struct stat a, b;
	ck_assert_str_eq(unit_read(tfd, "root/work/dst/sub/file"), "CONTENT");
	ck_assert_int_eq(fstatat(tfd, "root/work/dst/sub/file", &b, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(b.st_mode & 07777, 04751);
	ck_assert_int_eq((int)b.st_uid, 1234);
	ck_assert_int_eq((int)b.st_gid, 5678);
	ck_assert_int_eq(b.st_mtim.tv_sec, 1200000000);
	ck_assert_int_eq(b.st_mtim.tv_nsec, 7);
	ck_assert_int_eq(fstatat(tfd, "root/work/dst/sub", &b, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(b.st_mode & 07777, 0711);
	ck_assert_int_eq(b.st_mtim.tv_sec, 1200000000);
	ck_assert_int_eq(fstatat(tfd, "root/work/dst/sub/deeper", &b, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISDIR(b.st_mode));
	char target[PATH_MAX];
	ssize_t n = readlinkat(tfd, "root/work/dst/out", target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
	ck_assert_str_eq(target, outside_dir);
	ck_assert_int_eq(fstatat(tfd, "root/work/dst/sub/rel", &b, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISLNK(b.st_mode));
	ck_assert_int_eq((int)b.st_uid, 42);
	ck_assert_int_eq(b.st_mtim.tv_sec, 1200000000);
	ck_assert_int_eq(fstatat(tfd, "root/work/dst/fifo", &b, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISFIFO(b.st_mode));
	ck_assert_int_eq(b.st_mode & 07777, 0620);
	ck_assert_int_eq(fstatat(tfd, "root/work/src/sub/file", &a, 0), 0); /* the source is still there */

	/* An existing target is refused and kept. */
	ck_assert_int_lt(sbx_fs_copy_tree(&fs, "/work/src", "/work/dst", &err), 0);
	sbx_error_free(err);
	err = NULL;
	ck_assert_str_eq(unit_read(tfd, "root/work/dst/sub/file"), "CONTENT");
	/* A device node fails the copy, and the half-made copy is removed. */
	if (mknodat(tfd, "root/work/src/sub/null", S_IFCHR | 0666, makedev(1, 3)) == 0) {
		ck_assert_int_lt(sbx_fs_copy_tree(&fs, "/work/src", "/work/dst2", &err), 0);
		ck_assert_int_eq(err->code, SBX_ERR_UNSUPPORTED);
		sbx_error_free(err);
		err = NULL;
		ck_assert_int_lt(fstatat(tfd, "root/work/dst2", &b, AT_SYMLINK_NOFOLLOW), 0);
	}
	/* The source given through a symlink out of the root stays inside. */
	ck_assert_int_lt(sbx_fs_copy_tree(&fs, "/baitdir", "/work/stolen", &err), 0);
	sbx_error_free(err);
	assert_outside_untouched();
}
END_TEST

/* What mv keeps across file systems and a plain copy would lose: extended
 * attributes (a file capability among them) and hard links inside the tree. */
START_TEST(test_copy_tree_keeps_xattrs_and_links)
{
	sbx_error *err = NULL;
	mk("root/work/xs");
	mk("root/work/xs/d");
	unit_write(tfd, "root/work/xs/a", "LINKED");
	ck_assert_int_eq(linkat(tfd, "root/work/xs/a", tfd, "root/work/xs/d/b", 0), 0);
	unit_write(tfd, "root/work/xs/plain", "P");
	int fd = openat(tfd, "root/work/xs/plain", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	bool have_user = fsetxattr(fd, "user.note", "hello", 5, 0) == 0;
	/* cap_net_raw+ep, version 2 */
	static const unsigned char cap[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x20 };
	bool have_cap = fsetxattr(fd, "security.capability", cap, sizeof(cap), 0) == 0;
	close(fd);
	int dfd = openat(tfd, "root/work/xs/d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dfd, 0);
	bool have_dir = fsetxattr(dfd, "user.dir", "x", 1, 0) == 0;
	close(dfd);

	ck_assert_int_eq(sbx_fs_copy_tree(&fs, "/work/xs", "/work/xd", &err), 0);
	struct stat a, b;
	ck_assert_int_eq(fstatat(tfd, "root/work/xd/a", &a, 0), 0);
	ck_assert_int_eq(fstatat(tfd, "root/work/xd/d/b", &b, 0), 0);
	ck_assert(a.st_ino == b.st_ino);
	ck_assert_int_eq((int)a.st_nlink, 2);
	ck_assert_str_eq(unit_read(tfd, "root/work/xd/d/b"), "LINKED");
	char v[64];
	fd = openat(tfd, "root/work/xd/plain", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	if (have_user) {
		ck_assert_int_eq(fgetxattr(fd, "user.note", v, sizeof(v)), 5);
		ck_assert_int_eq(memcmp(v, "hello", 5), 0);
	}
	if (have_cap) /* after the chown that would have cleared it */
		ck_assert_int_eq(fgetxattr(fd, "security.capability", v, sizeof(v)), (ssize_t)sizeof(cap));
	close(fd);
	if (have_dir) {
		dfd = openat(tfd, "root/work/xd/d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_eq(fgetxattr(dfd, "user.dir", v, sizeof(v)), 1);
		close(dfd);
	}
	if (!have_user && !have_cap && !have_dir)
		fprintf(stderr, "test_copy_tree_keeps_xattrs_and_links: this file system takes no xattrs; links only\n");
}
END_TEST

static int count_visit(void *ctx, const char *path, int dirfd, const char *name, const struct stat *st)
{
	(void)dirfd;
	(void)name;
	(void)st;
	ck_assert_msg(strncmp(path, "/outside", 8), "walked outside: %s", path);
	ck_assert_ptr_null(strstr(path, "/secret"));
	(*(int *)ctx)++;
	return 0;
}

START_TEST(test_walk_does_not_follow_symlinks)
{
	sbx_error *err = NULL;
	int n = 0;
	ck_assert_int_eq(sbx_fs_walk(&fs, "/", 0, count_visit, &n, &err), 0);
	/* etc etc/shadow work work/rel tmp tmp/fifo abs bait baitdir procroot loop1 loop2 */
	ck_assert_int_eq(n, 12);
	n = 0;
	ck_assert_int_eq(sbx_fs_walk(&fs, "/", 1, count_visit, &n, &err), 0);
	ck_assert_int_eq(n, 9);
}
END_TEST

START_TEST(test_patterns)
{
	struct sbx_fs_pattern *p = NULL;
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_fs_pattern_compile("fo+", false, &p, &err), 0);
	ck_assert(sbx_fs_pattern_match(p, "a foo b"));
	ck_assert(!sbx_fs_pattern_match(p, "f o"));
	char *out = NULL;
	size_t ol = 0;
	const char *text = "foo fooo\nfo\n";
	ck_assert_int_eq(sbx_fs_replace_buf(p, text, strlen(text), "X", &out, &ol), 3);
	ck_assert_str_eq(out, "X X\nX\n");
	free(out);
	sbx_fs_pattern_free(p);
	ck_assert_int_eq(sbx_fs_pattern_compile("^", false, &p, &err), 0);
	ck_assert_int_eq(sbx_fs_replace_buf(p, "a\nb", 3, "> ", &out, &ol), 2);
	ck_assert_str_eq(out, "> a\n> b");
	free(out);
	sbx_fs_pattern_free(p);
	ck_assert_int_eq(sbx_fs_pattern_compile("a.b(", true, &p, &err), 0);
	ck_assert_int_eq(sbx_fs_replace_buf(p, "xa.b(y a.b(", 11, "", &out, &ol), 2);
	ck_assert_str_eq(out, "xy ");
	free(out);
	sbx_fs_pattern_free(p);
	ck_assert_int_lt(sbx_fs_pattern_compile("(", false, &p, &err), 0);
	ck_assert_str_eq(err->param, "pattern");
	sbx_error_free(err);
	ck_assert(sbx_fs_is_binary("a\0b", 3));
	ck_assert(!sbx_fs_is_binary("abc", 3));
	int m;
	ck_assert_int_eq(sbx_fs_parse_mode("0644", &m), 0);
	ck_assert_int_eq(m, 0644);
	ck_assert_int_lt(sbx_fs_parse_mode("0968", &m), 0);
	ck_assert_int_lt(sbx_fs_parse_mode("77777", &m), 0);
}
END_TEST

START_TEST(test_copy_fd)
{
	sbx_error *err = NULL;
	size_t len = 5 * 1024 * 1024 + 3;
	char *data = malloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7);
	int src = openat(tfd, "src", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_eq(sbx_write_all(src, data, len), (ssize_t)len);
	lseek(src, 0, SEEK_SET);
	int dst = openat(tfd, "dst", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_eq(sbx_fs_copy_fd(src, dst, -1, &err), (int64_t)len);
	/* Through a pipe, with a limit. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	lseek(src, 0, SEEK_SET);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(sbx_fs_copy_fd(src, p[1], 100000, NULL) == 100000 ? 0 : 1);
	}
	close(p[1]);
	char *back = malloc(len);
	ssize_t n = sbx_read_all(p[0], back, len);
	close(p[0]);
	int status;
	waitpid(pid, &status, 0);
	ck_assert_int_eq(n, 100000);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert(!memcmp(back, data, 100000));
	ck_assert_int_eq(pread(dst, back, len, 0), (ssize_t)len);
	ck_assert(!memcmp(back, data, len));
	free(back);
	free(data);
	close(src);
	close(dst);
}
END_TEST

static void tar_add(struct archive *a, const char *name, mode_t type, const char *data, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, 0640);
	archive_entry_set_mtime(e, 1000000000, 0);
	if (link)
		archive_entry_set_symlink(e, link);
	archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : 0);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	if (data)
		archive_write_data(a, data, strlen(data));
	archive_entry_free(e);
}

START_TEST(test_extract_hostile_tar)
{
	int fd = openat(tfd, "t.tar", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_open_fd(a, fd);
	tar_add(a, "ok", AE_IFREG, "OK", NULL);
	tar_add(a, "../../../escape", AE_IFREG, "ESC", NULL);
	tar_add(a, "/abs", AE_IFREG, "ABS", NULL);
	tar_add(a, "link", AE_IFLNK, NULL, outside_dir);
	tar_add(a, "link/through", AE_IFREG, "THROUGH", NULL);
	tar_add(a, "dev", AE_IFCHR, NULL, NULL);
	archive_write_close(a);
	archive_write_free(a);
	lseek(fd, 0, SEEK_SET);
	sbx_error *err = NULL;
	struct sbx_fs_archive_stats st;
	/* The link's target does not exist inside: the write through it fails. */
	ck_assert_int_lt(sbx_fs_extract(&fs, "/x", fd, &st, &err), 0);
	sbx_error_free(err);
	err = NULL;
	assert_outside_untouched();
	ck_assert_int_eq(sbx_fs_mkdir(&fs, outside_dir, 0755, true, true, &err), 0);
	lseek(fd, 0, SEEK_SET);
	ck_assert_msg(sbx_fs_extract(&fs, "/x", fd, &st, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(unit_read(tfd, "root/x/ok"), "OK");
	ck_assert_str_eq(unit_read(tfd, "root/x/abs"), "ABS");
	struct stat sb;
	ck_assert_int_ne(fstatat(tfd, "root/escape", &sb, 0), 0);
	ck_assert_int_ne(fstatat(tfd, "escape", &sb, 0), 0);
	ck_assert_int_ne(fstatat(tfd, "root/x/dev", &sb, AT_SYMLINK_NOFOLLOW), 0);
	char inside[PATH_MAX + 64];
	snprintf(inside, sizeof(inside), "root%s/through", outside_dir);
	ck_assert_str_eq(unit_read(tfd, inside), "THROUGH");
	ck_assert_int_eq(fstatat(tfd, "root/x/ok", &sb, 0), 0);
	ck_assert_int_eq(sb.st_mtime, 1000000000);
	ck_assert_int_eq(sb.st_mode & 0777, 0640);
	ck_assert_int_eq(st.skipped, 2);
	assert_outside_untouched();

	/* And back out: symlinks stay symlinks, FIFOs are left out. */
	int out = openat(tfd, "out.tar", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_eq(sbx_fs_archive(&fs, "/", out, &st, &err), 0);
	ck_assert_int_ge(st.skipped, 1);
	lseek(out, 0, SEEK_SET);
	struct archive *r = archive_read_new();
	archive_read_support_format_tar(r);
	ck_assert_int_eq(archive_read_open_fd(r, out, 65536), ARCHIVE_OK);
	struct archive_entry *e;
	bool saw_bait = false, saw_fifo = false;
	while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
		if (!strcmp(archive_entry_pathname(e), "bait")) {
			saw_bait = true;
			ck_assert_int_eq(archive_entry_filetype(e), AE_IFLNK);
			ck_assert_str_eq(archive_entry_symlink(e), outside_abs);
		}
		if (!strcmp(archive_entry_pathname(e), "tmp/fifo"))
			saw_fifo = true;
	}
	archive_read_free(r);
	ck_assert(saw_bait);
	ck_assert(!saw_fifo);
	close(out);
	close(fd);
}
END_TEST

static Suite *fsops_suite(void)
{
	Suite *s = suite_create("fsops");
	TCase *tc = tcase_create("fsops");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_normalize);
	tcase_add_test(tc, test_open_stays_inside);
	tcase_add_test(tc, test_fifo_refused_without_hang);
	tcase_add_test(tc, test_create_through_symlinks_stays_inside);
	tcase_add_test(tc, test_owner_of_created_entries);
	tcase_add_test(tc, test_mkdir_remove_move);
	tcase_add_test(tc, test_copy_tree);
	tcase_add_test(tc, test_copy_tree_keeps_xattrs_and_links);
	tcase_add_test(tc, test_walk_does_not_follow_symlinks);
	tcase_add_test(tc, test_patterns);
	tcase_add_test(tc, test_copy_fd);
	tcase_add_test(tc, test_extract_hostile_tar);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(fsops_suite());
}
