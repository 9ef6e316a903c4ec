/* Unit tests of src/lib/hostlimit.c: a refused clone3 or unshare becomes a
 * limit error naming the limit. Groups are stand-in directories holding the
 * files the kernel would show. */
#include "config.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostlimit.h"
#include "unit.h"

static char *read_proc(const char *path)
{
	static char buf[64];
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

START_TEST(test_user_namespace_limit_is_named_with_its_value)
{
	sbx_error *e = NULL;
	char want[128];
	snprintf(want, sizeof(want), "user.max_user_namespaces = %s", read_proc("/proc/sys/user/max_user_namespaces"));
	ck_assert_int_eq(sbx_hostlimit_error(&e, ENOSPC, CLONE_NEWUSER, -1, true, "clone3 %s", "user namespace"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_LIMIT);
	ck_assert_int_eq(e->errnum, ENOSPC);
	ck_assert_msg(!strncmp(e->msg, "clone3 user namespace: No space left on device: the host's limit of user "
				       "namespaces is reached (",
			       strlen("clone3 user namespace: No space left on device: the host's limit of user namespaces")),
		      "%s", e->msg);
	ck_assert_msg(strstr(e->msg, want), "%s", e->msg);
	ck_assert_msg(strstr(e->msg, "sysctl"), "%s", e->msg);
	sbx_error_free(e);
}
END_TEST

START_TEST(test_several_namespace_kinds_are_all_named)
{
	sbx_error *e = NULL;
	sbx_hostlimit_error(&e, ENOSPC, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET, -1, true, "clone3 sandbox init");
	ck_assert_int_eq(e->code, SBX_ERR_LIMIT);
	ck_assert_msg(strstr(e->msg, "one of user.max_mnt_namespaces = "), "%s", e->msg);
	ck_assert_msg(strstr(e->msg, ", user.max_pid_namespaces = "), "%s", e->msg);
	ck_assert_msg(strstr(e->msg, ", user.max_net_namespaces = "), "%s", e->msg);
	ck_assert_msg(!strstr(e->msg, "max_user_namespaces"), "%s", e->msg);
	sbx_error_free(e);
	/* Inside a sandbox /proc/sys/user shows its own namespace's values:
	 * names only. */
	e = NULL;
	sbx_hostlimit_error(&e, ENOSPC, CLONE_NEWUTS | CLONE_NEWIPC, -1, false, "new uts and ipc namespaces");
	ck_assert_msg(strstr(e->msg, "(one of user.max_uts_namespaces, user.max_ipc_namespaces)"), "%s", e->msg);
	sbx_error_free(e);
}
END_TEST

START_TEST(test_full_pids_group_is_named)
{
	char dir[PATH_MAX], group[PATH_MAX + 16];
	unit_mkdtemp(dir, "hostlimit");
	snprintf(group, sizeof(group), "%s/sbx-1", dir);
	ck_assert_int_eq(mkdir(group, 0755), 0);
	int base = open(dir, O_RDONLY | O_DIRECTORY);
	unit_write(base, "pids.max", "12\n");
	unit_write(base, "pids.current", "12\n");
	unit_write(base, "sbx-1/pids.max", "max\n");
	unit_write(base, "sbx-1/pids.current", "0\n");
	int fd = open(group, O_RDONLY | O_DIRECTORY);
	sbx_error *e = NULL;
	sbx_hostlimit_error(&e, EAGAIN, CLONE_NEWNS, fd, true, "clone3 sandbox init");
	ck_assert_int_eq(e->code, SBX_ERR_LIMIT);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "the cgroup %s has 12 processes, all its pids.max allows", dir);
	ck_assert_msg(strstr(e->msg, want), "%s", e->msg);
	sbx_error_free(e);
	/* Room in the group: the kernel-wide limits are named instead. */
	unit_write(base, "pids.max", "max\n");
	e = NULL;
	sbx_hostlimit_error(&e, EAGAIN, 0, fd, true, "clone3 sandbox init");
	ck_assert_int_eq(e->code, SBX_ERR_LIMIT);
	ck_assert_msg(strstr(e->msg, "kernel.threads-max = ") && strstr(e->msg, "kernel.pid_max = "), "%s", e->msg);
	sbx_error_free(e);
	close(fd);
	close(base);
}
END_TEST

START_TEST(test_memory_is_a_limit_error)
{
	char dir[PATH_MAX];
	unit_mkdtemp(dir, "hostlimit");
	int base = open(dir, O_RDONLY | O_DIRECTORY);
	unit_write(base, "memory.max", "67108864\n");
	unit_write(base, "memory.current", "67100000\n");
	sbx_error *e = NULL;
	sbx_hostlimit_error(&e, ENOMEM, CLONE_NEWNS, base, true, "clone3 sandbox init");
	ck_assert_int_eq(e->code, SBX_ERR_LIMIT);
	ck_assert_int_eq(e->errnum, ENOMEM);
	ck_assert_msg(strstr(e->msg, "is at its memory.max (64 MiB)"), "%s", e->msg);
	sbx_error_free(e);
	e = NULL;
	sbx_hostlimit_error(&e, ENOMEM, 0, -1, true, "clone3 user namespace");
	ck_assert_int_eq(e->code, SBX_ERR_LIMIT);
	ck_assert_msg(strstr(e->msg, "the host is out of memory (") && strstr(e->msg, " MiB available)"), "%s", e->msg);
	sbx_error_free(e);
	close(base);
}
END_TEST

START_TEST(test_other_errors_stay_plain)
{
	sbx_error *e = NULL;
	sbx_hostlimit_error(&e, EINVAL, CLONE_NEWUSER, -1, true, "clone3 %s", "x");
	ck_assert_int_eq(e->code, SBX_ERR_INTERNAL);
	ck_assert_str_eq(e->msg, "clone3 x: Invalid argument");
	sbx_error_free(e);
	/* ENOSPC without a namespace asked for is a full disk, not a count. */
	e = NULL;
	sbx_hostlimit_error(&e, ENOSPC, 0, -1, true, "write");
	ck_assert_str_eq(e->msg, "write: No space left on device");
	sbx_error_free(e);
	ck_assert_int_eq(sbx_hostlimit_error(NULL, EAGAIN, 0, -1, true, "x"), -1);
}
END_TEST

static Suite *hostlimit_suite(void)
{
	Suite *s = suite_create("hostlimit");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_user_namespace_limit_is_named_with_its_value);
	tcase_add_test(tc, test_several_namespace_kinds_are_all_named);
	tcase_add_test(tc, test_full_pids_group_is_named);
	tcase_add_test(tc, test_memory_is_a_limit_error);
	tcase_add_test(tc, test_other_errors_stay_plain);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(hostlimit_suite());
}
