/* Unit tests of src/daemon/systemd.c (a socket passed in LISTEN_FDS,
 * readiness sent to NOTIFY_SOCKET) and of the journal prefixes of
 * src/common/log.c. Each test runs in a forked child, so moving
 * descriptors onto 2 and 3 and setting variables stays within it. */
#include "config.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "systemd.h"
#include "unit.h"

/* Check talks to its forked test through a descriptor that may well be
 * fd 3, the one a service manager passes: what moves descriptors onto 3
 * runs in a grandchild, which writes what went wrong (nothing when all
 * went well) to a pipe. */
static char child_failure[1024];
#define CHILD_CHECK(cond, ...)                                                                        \
	do {                                                                                          \
		if (!(cond)) {                                                                        \
			int n_ = snprintf(child_failure, sizeof(child_failure), "line %d: ", __LINE__); \
			snprintf(child_failure + n_, sizeof(child_failure) - (size_t)n_, __VA_ARGS__);  \
			return;                                                                       \
		}                                                                                     \
	} while (0)

static void in_child(void (*fn)(void))
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child_failure[0] = '\0';
		fn();
		if (write(p[1], child_failure, strlen(child_failure)) < 0)
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	char buf[1024];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child ended with status %d", status);
	buf[n > 0 ? n : 0] = '\0';
	ck_assert_msg(n == 0, "%s", buf);
}

/* A unix socket of the given type bound below a fresh directory, moved
 * onto fd 3 as a service manager passes it; false on failure. */
static bool socket_on_fd3(const char *dir, int type, bool do_listen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%.*s/sock%d", (int)(sizeof(path) - 32), dir, type);
	int s = socket(AF_UNIX, type, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (s < 0 || strlen(path) >= sizeof(a.sun_path))
		return false;
	memcpy(a.sun_path, path, strlen(path));
	unlink(path);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || (do_listen && listen(s, 4) < 0) || dup2(s, 3) != 3)
		return false;
	if (s != 3)
		close(s);
	return true;
}

static void set_listen_env(long pid, const char *fds)
{
	char p[32];
	snprintf(p, sizeof(p), "%ld", pid);
	setenv("LISTEN_PID", p, 1);
	setenv("LISTEN_FDS", fds, 1);
	setenv("LISTEN_FDNAMES", "sandboxd.socket", 1);
}

static char scratch[PATH_MAX];

static void passed_socket_is_taken(void)
{
	CHILD_CHECK(socket_on_fd3(scratch, SOCK_STREAM, true), "socket on fd 3: %s", strerror(errno));
	set_listen_env(getpid(), "1");
	int fd = -2;
	sbx_error *e = NULL;
	int r = sbx_systemd_listen_fd(&fd, &e);
	CHILD_CHECK(r == 1 && fd == 3 && !e, "got %d, fd %d, %s", r, fd, e ? e->msg : "no error");
	CHILD_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "not close-on-exec");
	CHILD_CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "blocking");
	/* nothing the daemon starts may believe the socket is its own */
	CHILD_CHECK(!getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES"), "variables kept");
}

START_TEST(test_passed_socket_is_taken)
{
	unit_mkdtemp(scratch, "sd");
	in_child(passed_socket_is_taken);
}
END_TEST

static void variables_for_another_process_are_ignored(void)
{
	CHILD_CHECK(socket_on_fd3(scratch, SOCK_STREAM, true), "socket on fd 3: %s", strerror(errno));
	set_listen_env((long)getpid() + 1, "1");
	int fd = -2;
	sbx_error *e = NULL;
	int r = sbx_systemd_listen_fd(&fd, &e);
	CHILD_CHECK(r == 0 && fd == -1, "another pid: got %d, fd %d", r, fd);
	CHILD_CHECK(!getenv("LISTEN_FDS") && !getenv("LISTEN_PID"), "variables kept");
	setenv("LISTEN_FDS", "1", 1);
	r = sbx_systemd_listen_fd(&fd, &e);
	CHILD_CHECK(r == 0 && fd == -1, "no LISTEN_PID: got %d, fd %d", r, fd);
	set_listen_env(getpid(), "0");
	r = sbx_systemd_listen_fd(&fd, &e);
	CHILD_CHECK(r == 0 && fd == -1, "LISTEN_FDS=0: got %d, fd %d", r, fd);
}

START_TEST(test_variables_for_another_process_are_ignored)
{
	unit_mkdtemp(scratch, "sd");
	in_child(variables_for_another_process_are_ignored);
}
END_TEST

static void unusable_descriptors_are_errors(void)
{
	static const struct {
		int type;
		bool listen;
		const char *fds;
		const char *want;
	} cases[] = {
		{ SOCK_DGRAM, false, "1", "is not a listening unix stream socket" },
		{ SOCK_STREAM, false, "1", "is not a listening unix stream socket" },
		{ SOCK_STREAM, true, "2", "passed 2 sockets; sandboxd takes exactly one" },
		{ SOCK_STREAM, true, "x", "LISTEN_FDS: 'x' is not a count" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHILD_CHECK(socket_on_fd3(scratch, cases[i].type, cases[i].listen), "socket on fd 3: %s",
			    strerror(errno));
		set_listen_env(getpid(), cases[i].fds);
		int fd = -2;
		sbx_error *e = NULL;
		int r = sbx_systemd_listen_fd(&fd, &e);
		CHILD_CHECK(r == -1 && e && strstr(e->msg, cases[i].want), "case %zu: got %d, %s", i, r,
			    e ? e->msg : "no error");
		CHILD_CHECK(!getenv("LISTEN_FDS"), "case %zu: variables kept", i);
		sbx_error_free(e);
		close(3);
	}
	/* a regular file is not a socket either */
	char file[PATH_MAX];
	snprintf(file, sizeof(file), "%.*s/f", (int)(sizeof(file) - 8), scratch);
	int f = open(file, O_RDWR | O_CREAT, 0600);
	CHILD_CHECK(f >= 0 && dup2(f, 3) == 3, "file on fd 3: %s", strerror(errno));
	set_listen_env(getpid(), "1");
	int fd = -2;
	sbx_error *e = NULL;
	int r = sbx_systemd_listen_fd(&fd, &e);
	CHILD_CHECK(r == -1 && e && strstr(e->msg, "not a listening unix stream socket"), "file: got %d, %s", r,
		    e ? e->msg : "no error");
	sbx_error_free(e);
}

START_TEST(test_unusable_descriptors_are_errors)
{
	unit_mkdtemp(scratch, "sd");
	in_child(unusable_descriptors_are_errors);
}
END_TEST

static int notify_receiver(const char *name, bool abstract)
{
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len;
	if (abstract) {
		a.sun_path[0] = '\0';
		snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "%s", name);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	} else {
		ck_assert_uint_lt(strlen(name), sizeof(a.sun_path));
		memcpy(a.sun_path, name, strlen(name));
		len = sizeof(a);
	}
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, len), 0);
	return s;
}

static void expect_datagram(int s, const char *want)
{
	char buf[512];
	ssize_t n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

START_TEST(test_notify_reaches_a_path_socket)
{
	char dir[PATH_MAX], path[PATH_MAX + 8];
	unit_mkdtemp(dir, "sdn");
	snprintf(path, sizeof(path), "%s/notify", dir);
	int s = notify_receiver(path, false);
	setenv("NOTIFY_SOCKET", path, 1);
	sbx_systemd_notify_init();
	ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));
	ck_assert(sbx_systemd_notify("READY=1\nSTATUS=serving"));
	expect_datagram(s, "READY=1\nSTATUS=serving");
	ck_assert(sbx_systemd_notify("STOPPING=1"));
	expect_datagram(s, "STOPPING=1");
	close(s);
}
END_TEST

START_TEST(test_notify_reaches_an_abstract_socket)
{
	char name[64], env[72];
	snprintf(name, sizeof(name), "sbx-unit-notify-%d", (int)getpid());
	int s = notify_receiver(name, true);
	snprintf(env, sizeof(env), "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	sbx_systemd_notify_init();
	ck_assert(sbx_systemd_notify("READY=1"));
	expect_datagram(s, "READY=1");
	close(s);
}
END_TEST

START_TEST(test_notify_without_a_socket_does_nothing)
{
	unsetenv("NOTIFY_SOCKET");
	sbx_systemd_notify_init();
	ck_assert(!sbx_systemd_notify("READY=1"));
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	sbx_systemd_notify_init();
	ck_assert(!sbx_systemd_notify("READY=1"));
}
END_TEST

/* stderr onto a scratch file; returns the file's directory fd. */
static int stderr_to_file(char dir[PATH_MAX], char journal[64])
{
	unit_mkdtemp(dir, "log");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int f = openat(dfd, "err", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(f, 0);
	ck_assert_int_eq(dup2(f, STDERR_FILENO), STDERR_FILENO);
	close(f);
	struct stat st;
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(journal, 64, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	return dfd;
}

START_TEST(test_journal_stream_gets_priority_prefixes)
{
	char dir[PATH_MAX], journal[64];
	int dfd = stderr_to_file(dir, journal);
	setenv("JOURNAL_STREAM", journal, 1);
	sbx_log_init("sandboxd", SBX_LOG_DEBUG, false);
	sbx_error_log("e %d", 1);
	sbx_warn("w");
	sbx_info("i");
	sbx_debug("d");
	ck_assert_str_eq(unit_read(dfd, "err"), "<3>error: e 1\n<4>warn: w\n<6>info: i\n<7>debug: d\n");
	close(dfd);
}
END_TEST

START_TEST(test_other_streams_get_plain_lines)
{
	char dir[PATH_MAX], journal[64];
	int dfd = stderr_to_file(dir, journal);
	/* another file's dev:ino (inherited by a process whose stderr was
	 * redirected), garbage, and nothing */
	const char *values[] = { "1:1", journal, "12", NULL };
	char other[96];
	snprintf(other, sizeof(other), "%sx", journal);
	values[1] = other;
	for (size_t i = 0; i < 4; i++) {
		if (values[i])
			setenv("JOURNAL_STREAM", values[i], 1);
		else
			unsetenv("JOURNAL_STREAM");
		ck_assert_int_eq(ftruncate(STDERR_FILENO, 0), 0);
		ck_assert_int_eq(lseek(STDERR_FILENO, 0, SEEK_SET), 0);
		sbx_log_init("sandboxd", SBX_LOG_INFO, false);
		sbx_warn("plain %zu", i);
		const char *out = unit_read(dfd, "err");
		char want[64];
		snprintf(want, sizeof(want), "] warn: plain %zu\n", i);
		ck_assert_msg(out[0] != '<' && strstr(out, "sandboxd[") && strstr(out, want), "case %zu: %s", i, out);
	}
	close(dfd);
}
END_TEST

static Suite *systemd_suite(void)
{
	Suite *s = suite_create("systemd");
	TCase *tc = tcase_create("activation");
	tcase_add_test(tc, test_passed_socket_is_taken);
	tcase_add_test(tc, test_variables_for_another_process_are_ignored);
	tcase_add_test(tc, test_unusable_descriptors_are_errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("notify");
	tcase_add_test(tc, test_notify_reaches_a_path_socket);
	tcase_add_test(tc, test_notify_reaches_an_abstract_socket);
	tcase_add_test(tc, test_notify_without_a_socket_does_nothing);
	suite_add_tcase(s, tc);
	tc = tcase_create("journal");
	tcase_add_test(tc, test_journal_stream_gets_priority_prefixes);
	tcase_add_test(tc, test_other_streams_get_plain_lines);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(systemd_suite());
}
