/* Unit tests of the address helpers of src/lib/netlink.c (the rtnetlink
 * requests themselves are exercised by tests/integration/test_net.py) and
 * of the network ownership locks of src/lib/netlock.c. */
#include "config.h"
#include <arpa/inet.h>
#include <check.h>
#include <signal.h>
#include <sys/wait.h>

#include "netlink.h"
#include "netlock.h"
#include "unit.h"

START_TEST(test_cidr_parse)
{
	struct in_addr net;
	int prefix;
	ck_assert_int_eq(sbx_cidr_parse("10.88.3.7/16", &net, &prefix), 0);
	ck_assert_int_eq(prefix, 16);
	ck_assert_uint_eq(ntohl(net.s_addr), 0x0a580000u);
	ck_assert_int_eq(sbx_cidr_parse("1.2.3.4", &net, &prefix), 0);
	ck_assert_int_eq(prefix, 32);
	ck_assert_int_eq(sbx_cidr_parse("0.0.0.0/0", &net, &prefix), 0);
	ck_assert_int_eq(prefix, 0);
	static const char *const bad[] = { "", "1.2.3.4/33", "1.2.3.4/", "1.2.3/8", "1.2.3.4/-1", "1.2.3.4/+8",
					   "a.b.c.d/8", "::1/128", "1.2.3.4/8x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sbx_cidr_parse(bad[i], &net, &prefix) < 0, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_cidr_contains)
{
	struct in_addr net, a;
	int prefix;
	sbx_cidr_parse("169.254.0.0/16", &net, &prefix);
	inet_pton(AF_INET, "169.254.169.254", &a);
	ck_assert(sbx_cidr_contains(net, prefix, a));
	inet_pton(AF_INET, "169.255.0.1", &a);
	ck_assert(!sbx_cidr_contains(net, prefix, a));
	sbx_cidr_parse("0.0.0.0/0", &net, &prefix);
	ck_assert(sbx_cidr_contains(net, prefix, a));
}
END_TEST

START_TEST(test_errno_limits)
{
	/* Kernel limits a network set-up can meet are named; other errors
	 * are not limits. */
	ck_assert_ptr_nonnull(strstr(sbx_nl_errno_limit(ENOMEM), "kernel memory"));
	ck_assert_ptr_nonnull(strstr(sbx_nl_errno_limit(ENOBUFS), "kernel memory"));
	ck_assert_ptr_nonnull(strstr(sbx_nl_errno_limit(EXFULL), "full"));
	ck_assert_ptr_nonnull(strstr(sbx_nl_errno_limit(ENOSPC), "full"));
	ck_assert_ptr_nonnull(strstr(sbx_nl_errno_limit(EMFILE), "RLIMIT_NOFILE"));
	ck_assert_ptr_nonnull(strstr(sbx_nl_errno_limit(ENFILE), "fs.file-max"));
	static const int other[] = { 0, EINVAL, EEXIST, ENODEV, EPERM, ECONNREFUSED };
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		ck_assert_ptr_null(sbx_nl_errno_limit(other[i]));
}
END_TEST

START_TEST(test_netlock_names)
{
	static const char *const good[] = { "sbx0", "a", "br-sandbox.1234", "sbx_0" };
	static const char *const bad[] = { "", ".", "..", "a/b", "a:b", "a b", "tab\there", "sixteen-chars-xx" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(sbx_netlock_name_valid(good[i]), "refused %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!sbx_netlock_name_valid(bad[i]), "accepted '%s'", bad[i]);
	char dir[PATH_MAX], locks[PATH_MAX + 8];
	unit_mkdtemp(dir, "netlock");
	snprintf(locks, sizeof(locks), "%s/locks", dir);
	struct sbx_netlock lk;
	struct sbx_netlock_record prev;
	sbx_error *err = NULL;
	ck_assert_int_lt(sbx_netlock_take(locks, "../x", &lk, &prev, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_INVALID_PARAMS);
	sbx_error_free(err);
	ck_assert_int_eq(lk.fd, -1);
}
END_TEST

/* A child that takes the lock of "br0", records itself and waits for a
 * byte on its pipe (or EOF) before it exits, without a clean release. */
static pid_t holder(const char *locks, int *release_fd)
{
	int ready[2], go[2];
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		struct sbx_netlock lk;
		struct sbx_netlock_record prev;
		struct sbx_netlock_record me = { .pid = getpid(), .state_dir = "/var/lib/one", .socket = "/run/one.sock",
						 .subnet = "10.88.0.0/16" };
		if (sbx_netlock_take(locks, "br0", &lk, &prev, NULL) < 0 || sbx_netlock_commit(&lk, &me, NULL) < 0)
			_exit(1);
		char c;
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release_fd = go[1];
	return pid;
}

static int collect(const struct sbx_netlock_record *r, bool held, void *data)
{
	char *out = data;
	size_t n = strlen(out);
	snprintf(out + n, 256 - n, "%s %d %s %s %s;", r->bridge, (int)r->pid, r->state_dir, r->subnet,
		 held ? "held" : "free");
	return 0;
}

START_TEST(test_netlock_owner)
{
	char dir[PATH_MAX], locks[PATH_MAX + 8];
	unit_mkdtemp(dir, "netlock");
	snprintf(locks, sizeof(locks), "%s/locks", dir);
	int go;
	pid_t child = holder(locks, &go);

	/* Held: refused, naming the holder. */
	struct sbx_netlock lk;
	struct sbx_netlock_record prev;
	sbx_error *err = NULL;
	ck_assert_int_lt(sbx_netlock_take(locks, "br0", &lk, &prev, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_EXISTS);
	char want[128];
	snprintf(want, sizeof(want), "bridge br0 is held by the sandboxd with pid %d (state dir '/var/lib/one', "
		 "socket '/run/one.sock')", (int)child);
	ck_assert_str_eq(err->msg, want);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_eq(lk.fd, -1);
	ck_assert_int_eq(lk.dir_fd, -1);

	/* Another bridge: free, and it sees the first one held. */
	ck_assert_int_eq(sbx_netlock_take(locks, "br1", &lk, &prev, &err), 0);
	ck_assert_int_eq(prev.pid, 0);
	char seen[256] = "";
	ck_assert_int_eq(sbx_netlock_each_other(&lk, collect, seen), 0);
	snprintf(want, sizeof(want), "br0 %d /var/lib/one 10.88.0.0/16 held;", (int)child);
	ck_assert_str_eq(seen, want);
	struct sbx_netlock_record me = { .pid = 4242, .state_dir = "/var/lib/two", .socket = "/s", .subnet = "10.1.0.0/24" };
	ck_assert_int_eq(sbx_netlock_commit(&lk, &me, &err), 0);
	ck_assert_str_eq(unit_read(AT_FDCWD, strcat(strcpy(seen, locks), "/br1")),
			 "pid=4242\nstate_dir=/var/lib/two\nsocket=/s\nsubnet=10.1.0.0/24\n");

	/* The holder dies without a clean end: the lock is free, its record
	 * stays for the next owner to read. */
	close(go);
	int st;
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	seen[0] = '\0';
	sbx_netlock_each_other(&lk, collect, seen);
	snprintf(want, sizeof(want), "br0 %d /var/lib/one 10.88.0.0/16 free;", (int)child);
	ck_assert_str_eq(seen, want);
	struct sbx_netlock again;
	ck_assert_int_eq(sbx_netlock_take(locks, "br0", &again, &prev, &err), 0);
	ck_assert_int_eq(prev.pid, child);
	ck_assert_str_eq(prev.state_dir, "/var/lib/one");
	ck_assert_str_eq(prev.subnet, "10.88.0.0/16");
	sbx_netlock_record_free(&prev);
	/* A record with a line break is refused; a clean end removes the file. */
	me.state_dir = "/a\nb";
	ck_assert_int_lt(sbx_netlock_commit(&again, &me, &err), 0);
	sbx_error_free(err);
	err = NULL;
	sbx_netlock_release(&again, true);
	ck_assert(!unit_exists(AT_FDCWD, strcat(strcpy(seen, locks), "/br0")));
	sbx_netlock_release(&lk, false);
	ck_assert(unit_exists(AT_FDCWD, strcat(strcpy(seen, locks), "/br1")));

	/* A directory others can write to is not trusted. */
	ck_assert_int_eq(chmod(locks, 0777), 0);
	ck_assert_int_lt(sbx_netlock_take(locks, "br2", &lk, &prev, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_DENIED);
	sbx_error_free(err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("netlink");
	TCase *tc = tcase_create("cidr");
	tcase_add_test(tc, test_cidr_parse);
	tcase_add_test(tc, test_cidr_contains);
	tcase_add_test(tc, test_errno_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("netlock");
	tcase_add_test(tc, test_netlock_names);
	tcase_add_test(tc, test_netlock_owner);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
