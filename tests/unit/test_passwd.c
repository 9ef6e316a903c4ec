/* Unit tests of src/lib/passwd.c: user specs resolved against a scratch
 * sandbox root's own /etc/passwd and /etc/group. */
#include "config.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passwd.h"
#include "util.h"
#include "unit.h"

static char tmp[PATH_MAX];
static int tfd = -1;    /* scratch directory, holding root/ */
static int rootfd = -1; /* the sandbox root */
static struct sbx_user u;
static sbx_error *err;

static const char *const passwd_text = "root:x:0:0:root:/root:/bin/sh\n"
				       "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
				       "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
				       "bob:x:1001:100::/home/bob:/bin/sh\n"
				       "a malformed line\n"
				       "\n"
				       "carol:x:1002:1002:Carol:/home/carol:/bin/sh\n"
				       "alias:x:1000:1000:same uid as alice:/alias:/bin/sh\n"
				       "1234:x:4321:4321:a numeric name:/numeric:/bin/sh\n"
				       "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

static const char *const group_text = "root:x:0:\n"
				      "daemon:x:1:\n"
				      "users:x:100:alice,carol\n"
				      "wheel:x:10:alice,bob\n"
				      "alice:x:1000:\n"
				      "staff:x:50:\n"
				      "audio:x:29:carol,alice\n"
				      "docker:x:999:bob\n"
				      "alicia:x:77:alicia\n"
				      "nogroup:x:65534:\n";

static void passwd_setup(void)
{
	unit_mkdtemp(tmp, "passwd");
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(tfd, 0);
	ck_assert_int_eq(mkdirat(tfd, "root", 0755), 0);
	ck_assert_int_eq(mkdirat(tfd, "root/etc", 0755), 0);
	unit_write(tfd, "root/etc/passwd", passwd_text);
	unit_write(tfd, "root/etc/group", group_text);
	rootfd = openat(tfd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(rootfd, 0);
	err = NULL;
	memset(&u, 0x5a, sizeof(u));
}

static void passwd_teardown(void)
{
	sbx_error_freep(&err);
	if (rootfd >= 0)
		close(rootfd);
	if (tfd >= 0)
		close(tfd);
	rootfd = tfd = -1;
	unit_rm_rf(tmp);
}

static void resolve_ok(const char *spec)
{
	int rc = sbx_user_resolve(rootfd, spec, &u, &err);
	ck_assert_msg(rc == 0, "resolve '%s': %s", spec ? spec : "(null)", err ? err->msg : "?");
	ck_assert_ptr_null(err);
}

static void assert_user(uid_t uid, gid_t gid, const char *home, const char *name)
{
	ck_assert_uint_eq(u.uid, uid);
	ck_assert_uint_eq(u.gid, gid);
	ck_assert_str_eq(u.home, home);
	ck_assert_str_eq(u.name, name);
}

/* Assert the supplementary groups, in order; the list ends with -1. */
static void assert_groups(const long *want)
{
	size_t n = 0;
	while (want[n] >= 0)
		n++;
	ck_assert_uint_eq(u.ngroups, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(u.groups[i] == (gid_t)want[i], "group %zu is %u, want %ld", i, u.groups[i], want[i]);
}

static void assert_not_found(const char *spec, const char *msg)
{
	ck_assert_int_eq(sbx_user_resolve(rootfd, spec, &u, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_int_eq(err->code, SBX_ERR_NOT_FOUND);
	ck_assert_int_eq(err->code, 1);
	ck_assert_int_eq(err->errnum, 0);
	ck_assert_str_eq(err->msg, msg);
	sbx_error_freep(&err);
}

/* ---- by name and by number ---- */

START_TEST(test_by_name)
{
	resolve_ok("alice");
	assert_user(1000, 1000, "/home/alice", "alice");
	assert_groups((const long[]){ 100, 10, 29, -1 });

	resolve_ok("bob");
	assert_user(1001, 100, "/home/bob", "bob");
	assert_groups((const long[]){ 10, 999, -1 });

	/* Found past a malformed line and an empty one. */
	resolve_ok("carol");
	assert_user(1002, 1002, "/home/carol", "carol");
	assert_groups((const long[]){ 100, 29, -1 });

	resolve_ok("daemon");
	assert_user(1, 1, "/usr/sbin", "daemon");
	assert_groups((const long[]){ -1 });

	resolve_ok("nobody");
	assert_user(65534, 65534, "/nonexistent", "nobody");
	assert_groups((const long[]){ -1 });
}
END_TEST

START_TEST(test_default_is_root)
{
	resolve_ok(NULL);
	assert_user(0, 0, "/root", "root");
	assert_groups((const long[]){ -1 });
	memset(&u, 0x5a, sizeof(u));
	resolve_ok("");
	assert_user(0, 0, "/root", "root");
	resolve_ok("root");
	assert_user(0, 0, "/root", "root");
	resolve_ok("0");
	assert_user(0, 0, "/root", "root");
}
END_TEST

START_TEST(test_by_uid)
{
	/* The first entry with the uid wins. */
	resolve_ok("1000");
	assert_user(1000, 1000, "/home/alice", "alice");
	assert_groups((const long[]){ 100, 10, 29, -1 });
	resolve_ok("1001");
	assert_user(1001, 100, "/home/bob", "bob");
	/* A later entry with the same uid is reachable by name. */
	resolve_ok("alias");
	assert_user(1000, 1000, "/alias", "alias");
	assert_groups((const long[]){ -1 });
}
END_TEST

START_TEST(test_uid_without_entry)
{
	resolve_ok("4242");
	assert_user(4242, 4242, "/", "");
	assert_groups((const long[]){ -1 });
	/* A number is a uid, even when a user is named like it. */
	resolve_ok("1234");
	assert_user(1234, 1234, "/", "");
	resolve_ok("4321");
	assert_user(4321, 4321, "/numeric", "1234");
	/* The largest valid id; (uid_t)-1 is not one. */
	resolve_ok("4294967294");
	assert_user(4294967294u, 4294967294u, "/", "");
	assert_not_found("4294967295", "user '4294967295' not found in the sandbox's /etc/passwd");
	assert_not_found("-1", "user '-1' not found in the sandbox's /etc/passwd");
	assert_not_found("0x10", "user '0x10' not found in the sandbox's /etc/passwd");
}
END_TEST

/* ---- with a group ---- */

START_TEST(test_uid_gid)
{
	resolve_ok("1000:50");
	assert_user(1000, 50, "/home/alice", "alice");
	assert_groups((const long[]){ 100, 10, 29, -1 });
	resolve_ok("4242:4243");
	assert_user(4242, 4243, "/", "");
	assert_groups((const long[]){ -1 });
	resolve_ok("0:0");
	assert_user(0, 0, "/root", "root");
}
END_TEST

START_TEST(test_name_group)
{
	/* The primary group is not repeated among the supplementary ones. */
	resolve_ok("alice:wheel");
	assert_user(1000, 10, "/home/alice", "alice");
	assert_groups((const long[]){ 100, 29, -1 });
	resolve_ok("alice:10");
	assert_user(1000, 10, "/home/alice", "alice");
	assert_groups((const long[]){ 100, 29, -1 });
	resolve_ok("bob:docker");
	assert_user(1001, 999, "/home/bob", "bob");
	assert_groups((const long[]){ 10, -1 });
	resolve_ok("1002:audio");
	assert_user(1002, 29, "/home/carol", "carol");
	assert_groups((const long[]){ 100, -1 });
	resolve_ok("4242:staff");
	assert_user(4242, 50, "/", "");
}
END_TEST

START_TEST(test_membership_is_exact)
{
	/* "alicia" must not count as "alice", nor the other way round. */
	resolve_ok("alice");
	for (size_t i = 0; i < u.ngroups; i++)
		ck_assert_uint_ne(u.groups[i], 77);
	ck_assert_uint_eq(u.ngroups, 3);
	assert_not_found("ali", "user 'ali' not found in the sandbox's /etc/passwd");
	assert_not_found("Alice", "user 'Alice' not found in the sandbox's /etc/passwd");
	assert_not_found("alice ", "user 'alice ' not found in the sandbox's /etc/passwd");
}
END_TEST

/* ---- errors ---- */

START_TEST(test_unknown_user)
{
	assert_not_found("mallory", "user 'mallory' not found in the sandbox's /etc/passwd");
	assert_not_found("mallory:wheel", "user 'mallory' not found in the sandbox's /etc/passwd");
	assert_not_found("a malformed line", "user 'a malformed line' not found in the sandbox's /etc/passwd");
	assert_not_found(":0", "user '' not found in the sandbox's /etc/passwd");
}
END_TEST

START_TEST(test_unknown_group)
{
	assert_not_found("alice:nosuchgroup", "group 'nosuchgroup' not found in the sandbox's /etc/group");
	assert_not_found("1000:", "group '' not found in the sandbox's /etc/group");
	assert_not_found("alice:wheel:x", "group 'wheel:x' not found in the sandbox's /etc/group");
	assert_not_found("alice:4294967295", "group '4294967295' not found in the sandbox's /etc/group");
}
END_TEST

START_TEST(test_spec_too_long)
{
	char spec[400];
	memset(spec, 'u', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	ck_assert_int_eq(sbx_user_resolve(rootfd, spec, &u, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_str_eq(err->param, "user");
	char want[64];
	snprintf(want, sizeof(want), "user '%.32s...' is too long", spec);
	ck_assert_str_eq(want, "user 'uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu...' is too long");
	ck_assert_str_eq(err->msg, want);
	sbx_error_freep(&err);
	/* 255 bytes still fit. */
	spec[255] = '\0';
	ck_assert_int_eq(sbx_user_resolve(rootfd, spec, &u, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_NOT_FOUND);
	sbx_error_freep(&err);
	ck_assert_int_eq(sbx_user_resolve(rootfd, spec, &u, NULL), -1);
}
END_TEST

START_TEST(test_group_limit)
{
	/* More groups than SBX_MAX_GROUPS: the list is cut, not overrun. */
	struct sbx_buf b = { 0 };
	sbx_buf_printf(&b, "%s", group_text);
	for (int i = 0; i < SBX_MAX_GROUPS + 10; i++)
		sbx_buf_printf(&b, "g%d:x:%d:bob,alice\n", i, 2000 + i);
	unit_write(tfd, "root/etc/group", b.data);
	sbx_buf_free(&b);
	resolve_ok("alice");
	ck_assert_uint_eq(u.ngroups, SBX_MAX_GROUPS);
	ck_assert_uint_eq(u.groups[0], 100);
	ck_assert_uint_eq(u.groups[1], 10);
	ck_assert_uint_eq(u.groups[2], 29);
	ck_assert_uint_eq(u.groups[3], 2000);
	ck_assert_uint_eq(u.groups[SBX_MAX_GROUPS - 1], 2000 + SBX_MAX_GROUPS - 4);
}
END_TEST

START_TEST(test_long_fields_truncated)
{
	char home[400];
	memset(home, 'h', sizeof(home) - 1);
	home[0] = '/';
	home[sizeof(home) - 1] = '\0';
	char line[4096];
	snprintf(line, sizeof(line), "%s%s:x:3000:3000::%s:/bin/sh\n", passwd_text,
		 "user_with_a_rather_long_name_that_does_not_fit_in_the_name_buffer", home);
	unit_write(tfd, "root/etc/passwd", line);
	resolve_ok("3000");
	ck_assert_uint_eq(strlen(u.home), sizeof(u.home) - 1);
	ck_assert_int_eq(strncmp(u.home, home, sizeof(u.home) - 1), 0);
	ck_assert_uint_eq(strlen(u.name), sizeof(u.name) - 1);
	ck_assert_int_eq(strncmp(u.name, "user_with_a_rather_long_name", 28), 0);
}
END_TEST

/* ---- hostile or missing databases ---- */

START_TEST(test_missing_databases)
{
	ck_assert_int_eq(unlinkat(tfd, "root/etc/group", 0), 0);
	resolve_ok("alice");
	assert_user(1000, 1000, "/home/alice", "alice");
	assert_groups((const long[]){ -1 });
	assert_not_found("alice:wheel", "group 'wheel' not found in the sandbox's /etc/group");
	resolve_ok("alice:10");
	assert_user(1000, 10, "/home/alice", "alice");

	ck_assert_int_eq(unlinkat(tfd, "root/etc/passwd", 0), 0);
	assert_not_found("alice", "user 'alice' not found in the sandbox's /etc/passwd");
	assert_not_found(NULL, "user 'root' not found in the sandbox's /etc/passwd");
	resolve_ok("1000:1000");
	assert_user(1000, 1000, "/", "");
}
END_TEST

START_TEST(test_fifo_passwd_does_not_hang)
{
	ck_assert_int_eq(unlinkat(tfd, "root/etc/passwd", 0), 0);
	ck_assert_int_eq(mkfifoat(tfd, "root/etc/passwd", 0644), 0);
	alarm(5); /* a hang would otherwise only end at the test timeout */
	assert_not_found("alice", "user 'alice' not found in the sandbox's /etc/passwd");
	resolve_ok("1000");
	alarm(0);
	assert_user(1000, 1000, "/", "");
	assert_groups((const long[]){ -1 });
}
END_TEST

START_TEST(test_fifo_group_does_not_hang)
{
	ck_assert_int_eq(unlinkat(tfd, "root/etc/group", 0), 0);
	ck_assert_int_eq(mkfifoat(tfd, "root/etc/group", 0644), 0);
	alarm(5);
	resolve_ok("alice");
	assert_user(1000, 1000, "/home/alice", "alice");
	assert_groups((const long[]){ -1 });
	assert_not_found("alice:wheel", "group 'wheel' not found in the sandbox's /etc/group");
	alarm(0);
}
END_TEST

START_TEST(test_fifo_with_writer_not_read)
{
	/* Even with data waiting in the FIFO, it is not a regular file. */
	ck_assert_int_eq(unlinkat(tfd, "root/etc/passwd", 0), 0);
	ck_assert_int_eq(mkfifoat(tfd, "root/etc/passwd", 0644), 0);
	int rd = openat(tfd, "root/etc/passwd", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(rd, 0);
	int wr = openat(tfd, "root/etc/passwd", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(wr, 0);
	const char *evil = "evil:x:0:0::/:/bin/sh\n";
	ck_assert_int_eq(write(wr, evil, strlen(evil)), (ssize_t)strlen(evil));
	alarm(5);
	assert_not_found("evil", "user 'evil' not found in the sandbox's /etc/passwd");
	alarm(0);
	close(wr);
	close(rd);
}
END_TEST

START_TEST(test_databases_stay_inside_root)
{
	/* /etc/passwd an absolute symlink to a file of the host: resolved in
	 * the root, where that path does not exist. */
	unit_write(tfd, "hostpw", "evil:x:0:0::/:/bin/sh\n");
	ck_assert_int_eq(unlinkat(tfd, "root/etc/passwd", 0), 0);
	char target[PATH_MAX + 16];
	snprintf(target, sizeof(target), "%s/hostpw", tmp);
	ck_assert_int_eq(symlinkat(target, tfd, "root/etc/passwd"), 0);
	assert_not_found("evil", "user 'evil' not found in the sandbox's /etc/passwd");
	/* A relative symlink climbing out: clamped at the root. */
	ck_assert_int_eq(unlinkat(tfd, "root/etc/passwd", 0), 0);
	ck_assert_int_eq(symlinkat("../../../../../../../hostpw", tfd, "root/etc/passwd"), 0);
	assert_not_found("evil", "user 'evil' not found in the sandbox's /etc/passwd");
	/* An absolute symlink inside the root is followed there. */
	ck_assert_int_eq(mkdirat(tfd, "root/data", 0755), 0);
	unit_write(tfd, "root/data/pw", "dave:x:1500:1500::/home/dave:/bin/sh\n");
	ck_assert_int_eq(unlinkat(tfd, "root/etc/passwd", 0), 0);
	ck_assert_int_eq(symlinkat("/data/pw", tfd, "root/etc/passwd"), 0);
	resolve_ok("dave");
	assert_user(1500, 1500, "/home/dave", "dave");
	/* The same through a symlinked /etc. */
	ck_assert_int_eq(renameat(tfd, "root/etc", tfd, "root/real-etc"), 0);
	ck_assert_int_eq(symlinkat("../../../real-etc", tfd, "root/etc"), 0);
	resolve_ok("dave");
	assert_user(1500, 1500, "/home/dave", "dave");
	assert_groups((const long[]){ -1 });
}
END_TEST

START_TEST(test_database_is_directory)
{
	ck_assert_int_eq(unlinkat(tfd, "root/etc/passwd", 0), 0);
	ck_assert_int_eq(mkdirat(tfd, "root/etc/passwd", 0755), 0);
	assert_not_found("alice", "user 'alice' not found in the sandbox's /etc/passwd");
	resolve_ok("7");
	assert_user(7, 7, "/", "");
}
END_TEST

/* ---- known defects (run with SBX_UNIT_KNOWN_BUGS=1) ---- */

START_TEST(bug_long_passwd_line_hides_later_users)
{
	/* fgetpwent_r() reports ERANGE for an entry longer than the 4096-byte
	 * buffer; the loop takes any non-zero result as the end of the file,
	 * so every user after such a line is "not found". */
	struct sbx_buf b = { 0 };
	sbx_buf_printf(&b, "root:x:0:0:root:/root:/bin/sh\nlong:x:5:5:");
	for (int i = 0; i < 5000; i++)
		sbx_buf_append(&b, "g", 1);
	sbx_buf_printf(&b, ":/home/long:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
	unit_write(tfd, "root/etc/passwd", b.data);
	sbx_buf_free(&b);
	int rc = sbx_user_resolve(rootfd, "alice", &u, &err);
	ck_assert_msg(rc == 0, "alice: %s", err ? err->msg : "?");
	ck_assert_uint_eq(u.uid, 1000);
}
END_TEST

START_TEST(bug_long_group_line_hides_later_groups)
{
	/* The same for /etc/group: a group with many members (a line over
	 * 4 KiB) ends the scan, so later groups are "not found" and later
	 * memberships are silently dropped. */
	struct sbx_buf b = { 0 };
	sbx_buf_printf(&b, "big:x:7:");
	for (int i = 0; i < 1500; i++)
		sbx_buf_printf(&b, "%su%d", i ? "," : "", i);
	sbx_buf_printf(&b, "\nwheel:x:10:alice\n");
	unit_write(tfd, "root/etc/group", b.data);
	sbx_buf_free(&b);
	int rc = sbx_user_resolve(rootfd, "alice", &u, &err);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(u.ngroups, 1);
	ck_assert_uint_eq(u.groups[0], 10);
	rc = sbx_user_resolve(rootfd, "alice:wheel", &u, &err);
	ck_assert_msg(rc == 0, "alice:wheel: %s", err ? err->msg : "?");
	ck_assert_uint_eq(u.gid, 10);
}
END_TEST

static Suite *passwd_suite(void)
{
	Suite *s = suite_create("passwd");

	TCase *tc = tcase_create("resolve");
	tcase_add_checked_fixture(tc, passwd_setup, passwd_teardown);
	tcase_add_test(tc, test_by_name);
	tcase_add_test(tc, test_default_is_root);
	tcase_add_test(tc, test_by_uid);
	tcase_add_test(tc, test_uid_without_entry);
	tcase_add_test(tc, test_uid_gid);
	tcase_add_test(tc, test_name_group);
	tcase_add_test(tc, test_membership_is_exact);
	tcase_add_test(tc, test_unknown_user);
	tcase_add_test(tc, test_unknown_group);
	tcase_add_test(tc, test_spec_too_long);
	tcase_add_test(tc, test_group_limit);
	tcase_add_test(tc, test_long_fields_truncated);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 20);
	tcase_add_checked_fixture(tc, passwd_setup, passwd_teardown);
	tcase_add_test(tc, test_missing_databases);
	tcase_add_test(tc, test_fifo_passwd_does_not_hang);
	tcase_add_test(tc, test_fifo_group_does_not_hang);
	tcase_add_test(tc, test_fifo_with_writer_not_read);
	tcase_add_test(tc, test_databases_stay_inside_root);
	tcase_add_test(tc, test_database_is_directory);
	suite_add_tcase(s, tc);

	tc = unit_known_bugs_tcase(s);
	if (tc) {
		tcase_add_checked_fixture(tc, passwd_setup, passwd_teardown);
		tcase_add_test(tc, bug_long_passwd_line_hides_later_users);
		tcase_add_test(tc, bug_long_group_line_hides_later_groups);
	}
	return s;
}

int main(void)
{
	return unit_run(passwd_suite());
}
