/* Unit tests of src/lib/inroot.c. A fake sandbox root is built in a scratch
 * directory next to an "outside" directory; every lookup, whatever ".."
 * or symlink it goes through, must end inside the root. */
#include "config.h"
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inroot.h"
#include "util.h"
#include "unit.h"

static char tmp[PATH_MAX];      /* scratch: holds root/ and outside/ */
static char rootpath[PATH_MAX + 16];
static int tfd = -1;            /* the scratch directory */
static int rootfd = -1;         /* the fake sandbox root */
static char outside_abs[PATH_MAX + 32]; /* absolute path of outside/secret */
static char created_name[64];   /* a name that must never appear in the host's / */

static void mk(const char *path)
{
	ck_assert_msg(mkdirat(tfd, path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
}

static void ln(const char *target, const char *path)
{
	ck_assert_msg(symlinkat(target, tfd, path) == 0, "symlink %s: %s", path, strerror(errno));
}

static void root_setup(void)
{
	umask(022);
	unit_mkdtemp(tmp, "inroot");
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(tfd, 0);
	snprintf(rootpath, sizeof(rootpath), "%s/root", tmp);
	snprintf(outside_abs, sizeof(outside_abs), "%s/outside/secret", tmp);
	snprintf(created_name, sizeof(created_name), "sbx-unit-created-%ld", (long)getpid());

	mk("outside");
	mk("outside/dir");
	unit_write(tfd, "outside/secret", "OUTSIDE");

	mk("root");
	mk("root/etc");
	mk("root/a");
	mk("root/a/b");
	mk("root/outside"); /* same relative name as the real outside/ */
	unit_write(tfd, "root/etc/passwd", "INSIDE-PASSWD");
	unit_write(tfd, "root/etc/hostname", "inside-host");
	unit_write(tfd, "root/outside/secret", "MIRROR");
	unit_write(tfd, "root/a/b/file", "x");
	ln("/etc/passwd", "root/abs_passwd");
	ln(outside_abs, "root/abs_outside");
	ln("../../rel_chain2", "root/a/b/rel_chain1");
	ln("../../../../../../../../etc/passwd", "root/rel_chain2");
	ln("../outside/secret", "root/rel_escape");
	ln("../outside", "root/rel_escape_dir");
	ln("/proc/self/root", "root/proc_root");
	ln("/a", "root/dir_abs");
	ln("loop2", "root/loop1");
	ln("loop1", "root/loop2");
	char target[PATH_MAX + 32];
	snprintf(target, sizeof(target), "%s/outside", tmp);
	ln(target, "root/abs_outside_dir");
	snprintf(target, sizeof(target), "/%s", created_name);
	ln(target, "root/dangling");

	rootfd = open(rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(rootfd, 0);
}

static void root_teardown(void)
{
	if (rootfd >= 0)
		close(rootfd);
	if (tfd >= 0)
		close(tfd);
	rootfd = tfd = -1;
	unit_rm_rf(tmp);
}

/* Content of an fd opened for reading. */
static const char *fd_text(int fd)
{
	static char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	return buf;
}

/* Open path in the root for reading and return its content. */
static const char *read_in_root(const char *path)
{
	int fd = sbx_inroot_open(rootfd, path, O_RDONLY, 0);
	ck_assert_msg(fd >= 0, "open '%s' in root: %s", path, strerror(errno));
	const char *s = fd_text(fd);
	close(fd);
	return s;
}

/* Assert fd is the same inode as path below the scratch directory. */
static void assert_same_file(int fd, const char *path)
{
	struct stat a, b;
	ck_assert_int_eq(fstat(fd, &a), 0);
	ck_assert_msg(fstatat(tfd, path, &b, AT_SYMLINK_NOFOLLOW) == 0, "stat %s: %s", path, strerror(errno));
	ck_assert_msg(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "fd is not %s", path);
}

static void assert_open_fails(const char *path, int flags, int want_errno)
{
	errno = 0;
	int fd = sbx_inroot_open(rootfd, path, flags, 0644);
	int e = errno;
	if (fd >= 0)
		close(fd);
	ck_assert_msg(fd == -1 && e == want_errno, "open '%s': fd %d, errno %d (%s), want errno %d", path, fd, e,
		      strerror(e), want_errno);
}

/* The outside of the root is exactly as the fixture left it. */
static void assert_outside_untouched(void)
{
	ck_assert_str_eq(unit_read(tfd, "outside/secret"), "OUTSIDE");
	ck_assert(!unit_exists(tfd, "outside/made"));
	ck_assert(!unit_exists(tfd, "outside/new"));
	ck_assert(!unit_exists(tfd, "x"));
	char host[80];
	snprintf(host, sizeof(host), "/%s", created_name);
	ck_assert(access(host, F_OK) < 0);
}

/* ---- sbx_inroot_open ---- */

START_TEST(test_open_plain_paths)
{
	ck_assert_str_eq(read_in_root("/etc/passwd"), "INSIDE-PASSWD");
	ck_assert_str_eq(read_in_root("etc/passwd"), "INSIDE-PASSWD");
	ck_assert_str_eq(read_in_root("//etc//hostname"), "inside-host");
	ck_assert_str_eq(read_in_root("/etc/./passwd"), "INSIDE-PASSWD");
	int fd = sbx_inroot_open(rootfd, "/", O_PATH | O_DIRECTORY, 0);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root");
	close(fd);
	assert_open_fails("/etc/shadow", O_RDONLY, ENOENT);
	assert_open_fails("/etc/passwd/x", O_RDONLY, ENOTDIR);
}
END_TEST

START_TEST(test_open_dotdot_stays_inside)
{
	ck_assert_str_eq(read_in_root("/../../../../etc/passwd"), "INSIDE-PASSWD");
	ck_assert_str_eq(read_in_root("../etc/passwd"), "INSIDE-PASSWD");
	ck_assert_str_eq(read_in_root("a/b/../../../../../../etc/passwd"), "INSIDE-PASSWD");
	ck_assert_str_eq(read_in_root("/a/../../outside/secret"), "MIRROR");
	ck_assert_str_eq(read_in_root("../outside/secret"), "MIRROR");
	int fd = sbx_inroot_open(rootfd, "/../..", O_PATH | O_DIRECTORY, 0);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root");
	close(fd);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_open_absolute_symlinks_stay_inside)
{
	/* /etc/passwd of the host would be the obvious escape. */
	int fd = sbx_inroot_open(rootfd, "/abs_passwd", O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/etc/passwd");
	ck_assert_str_eq(fd_text(fd), "INSIDE-PASSWD");
	close(fd);
	/* An absolute host path to a real file outside: not there in the root. */
	assert_open_fails("/abs_outside", O_RDONLY, ENOENT);
	assert_open_fails("/abs_outside_dir/secret", O_RDONLY, ENOENT);
	/* A symlink to a directory inside the root works as one. */
	ck_assert_str_eq(read_in_root("/dir_abs/b/file"), "x");
	assert_outside_untouched();
}
END_TEST

START_TEST(test_open_relative_symlinks_stay_inside)
{
	int fd = sbx_inroot_open(rootfd, "/a/b/rel_chain1", O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/etc/passwd");
	close(fd);
	ck_assert_str_eq(read_in_root("a/b/rel_chain1"), "INSIDE-PASSWD");
	ck_assert_str_eq(read_in_root("/rel_escape"), "MIRROR");
	ck_assert_str_eq(read_in_root("/rel_escape_dir/secret"), "MIRROR");
	fd = sbx_inroot_open(rootfd, "/rel_escape_dir", O_PATH | O_DIRECTORY, 0);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/outside");
	close(fd);
	assert_open_fails("/loop1", O_RDONLY, ELOOP);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_open_proc_self_root_symlink)
{
	/* The fake root has no /proc: the link leads nowhere, in particular
	 * not to the host's root. */
	assert_open_fails("/proc_root/etc/passwd", O_RDONLY, ENOENT);
	assert_open_fails("/proc_root", O_PATH, ENOENT);
}
END_TEST

START_TEST(test_open_refuses_magic_links)
{
	/* With the real / as the root, /proc is there: its magic links must
	 * still be refused (RESOLVE_NO_MAGICLINKS), whatever they point at. */
	int real = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(real, 0);
	if (access("/proc/self/root", F_OK) < 0) {
		close(real);
		printf("note: test_open_refuses_magic_links skipped: no /proc\n");
		return;
	}
	char fdlink[64];
	snprintf(fdlink, sizeof(fdlink), "/proc/self/fd/%d", rootfd);
	const char *paths[] = { "/proc/self/root/etc/passwd", "/proc/self/root", "/proc/self/cwd", "/proc/self/exe",
				fdlink, "/proc/thread-self/root/etc" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(paths); i++) {
		errno = 0;
		int fd = sbx_inroot_open(real, paths[i], O_PATH, 0);
		int e = errno;
		if (fd >= 0)
			close(fd);
		ck_assert_msg(fd == -1 && e == ELOOP, "'%s': fd %d errno %d", paths[i], fd, e);
	}
	/* A plain /proc symlink ("self") is fine. */
	int fd = sbx_inroot_open(real, "/proc/self/status", O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	close(fd);
	close(real);
}
END_TEST

START_TEST(test_open_proc_mounted_in_root)
{
	/* A procfs mounted inside the sandbox root, reached through the
	 * sandbox's own /proc/self/root symlink: refused, not followed to the
	 * host's root. Needs a private mount namespace. */
	mk("root/proc");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(77);
		char proc[PATH_MAX + 32];
		snprintf(proc, sizeof(proc), "%s/proc", rootpath);
		if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			_exit(77);
		/* An fd from before unshare() would not see the mount. */
		int r = open(rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r < 0)
			_exit(10);
		int fd = sbx_inroot_open(r, "/proc/self/status", O_RDONLY, 0);
		if (fd < 0)
			_exit(11); /* the mount is really there */
		close(fd);
		const char *paths[] = { "/proc_root/etc/passwd", "/proc_root", "/proc/self/root/etc/passwd",
					"/proc/self/cwd", "/proc/self/fd/0" };
		for (size_t i = 0; i < SBX_ARRAY_SIZE(paths); i++) {
			errno = 0;
			fd = sbx_inroot_open(r, paths[i], O_RDONLY, 0);
			if (fd >= 0 || errno != ELOOP)
				_exit(20 + (int)i);
		}
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		printf("note: test_open_proc_mounted_in_root skipped: cannot mount proc\n");
		return;
	}
	ck_assert_msg(WEXITSTATUS(status) == 0, "child failed with %d", WEXITSTATUS(status));
}
END_TEST

START_TEST(test_open_create_stays_inside)
{
	/* O_CREAT through a dangling absolute symlink creates in the root. */
	int fd = sbx_inroot_open(rootfd, "/dangling", O_WRONLY | O_CREAT, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "made", 4), 4);
	close(fd);
	char inroot[128];
	snprintf(inroot, sizeof(inroot), "root/%s", created_name);
	ck_assert_str_eq(unit_read(tfd, inroot), "made");
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, inroot, &st, 0), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	/* Through ".." and a host path: still the root. */
	fd = sbx_inroot_open(rootfd, "/../../new", O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert(unit_exists(tfd, "root/new"));
	assert_open_fails("/abs_outside_dir/new", O_WRONLY | O_CREAT, ENOENT);
	assert_outside_untouched();
	ck_assert(!unit_exists(tfd, "new"));
}
END_TEST

START_TEST(test_open_is_cloexec)
{
	int fd = sbx_inroot_open(rootfd, "/etc/passwd", O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	/* The mode is ignored without O_CREAT (openat2 would refuse it). */
	fd = sbx_inroot_open(rootfd, "/etc/passwd", O_RDONLY, 0777);
	ck_assert_int_ge(fd, 0);
	close(fd);
}
END_TEST

/* ---- sbx_inroot_mkdir_p ---- */

START_TEST(test_mkdir_p_creates_inside)
{
	sbx_error *err = NULL;
	int fd = sbx_inroot_mkdir_p(rootfd, "/x/y/z", 0700, &err);
	ck_assert_msg(fd >= 0, "mkdir_p: %s", err ? err->msg : "?");
	assert_same_file(fd, "root/x/y/z");
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, "root/x", &st, 0), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	/* Existing: same directory again. */
	fd = sbx_inroot_mkdir_p(rootfd, "/x/y/z", 0700, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/x/y/z");
	close(fd);
	/* Relative, trailing and doubled slashes. */
	fd = sbx_inroot_mkdir_p(rootfd, "rel//dir/", 0755, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/rel/dir");
	close(fd);
	ck_assert_ptr_null(err);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_mkdir_p_root_itself)
{
	sbx_error *err = NULL;
	int fd = sbx_inroot_mkdir_p(rootfd, "/", 0755, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root");
	close(fd);
	fd = sbx_inroot_mkdir_p(rootfd, "", 0755, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root");
	close(fd);
	fd = sbx_inroot_mkdir_p(rootfd, "/../..", 0755, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root");
	close(fd);
	ck_assert_ptr_null(err);
}
END_TEST

START_TEST(test_mkdir_p_dotdot_and_symlinks_stay_inside)
{
	sbx_error *err = NULL;
	int fd = sbx_inroot_mkdir_p(rootfd, "/../../x/made", 0755, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/x/made");
	close(fd);
	/* A relative symlink that would lead to the real outside/ */
	fd = sbx_inroot_mkdir_p(rootfd, "/rel_escape_dir/made/deeper", 0755, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/outside/made/deeper");
	close(fd);
	/* An absolute symlink to a directory inside the root. */
	fd = sbx_inroot_mkdir_p(rootfd, "/dir_abs/new", 0755, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/a/new");
	close(fd);
	ck_assert_ptr_null(err);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_mkdir_p_refuses_dangling_and_files)
{
	sbx_error *err = NULL;
	/* An absolute symlink to the host's outside/: no such path in the root,
	 * and nothing is created on either side. */
	ck_assert_int_eq(sbx_inroot_mkdir_p(rootfd, "/abs_outside_dir/made", 0755, &err), -1);
	ck_assert_int_eq(err->errnum, ENOENT);
	ck_assert_int_eq(err->code, SBX_ERR_NOT_FOUND);
	ck_assert_str_eq(err->msg, "open '/abs_outside_dir': No such file or directory");
	sbx_error_freep(&err);
	ck_assert(!unit_exists(tfd, "outside/made"));
	/* Dangling symlink as a component: the link is not replaced. */
	ck_assert_int_eq(sbx_inroot_mkdir_p(rootfd, "/dangling/sub", 0755, &err), -1);
	ck_assert_int_eq(err->errnum, ENOENT);
	sbx_error_freep(&err);
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, "root/dangling", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISLNK(st.st_mode));
	/* A regular file in the way. */
	ck_assert_int_eq(sbx_inroot_mkdir_p(rootfd, "/etc/passwd/sub", 0755, &err), -1);
	ck_assert_int_eq(err->errnum, ENOTDIR);
	ck_assert_str_eq(err->msg, "open '/etc/passwd': Not a directory");
	sbx_error_freep(&err);
	ck_assert_int_eq(sbx_inroot_mkdir_p(rootfd, "/etc/passwd", 0755, &err), -1);
	ck_assert_int_eq(err->errnum, ENOTDIR);
	sbx_error_freep(&err);
	ck_assert_str_eq(unit_read(tfd, "root/etc/passwd"), "INSIDE-PASSWD");
	/* A symlink loop. */
	ck_assert_int_eq(sbx_inroot_mkdir_p(rootfd, "/loop1/x", 0755, &err), -1);
	ck_assert_int_eq(err->errnum, ELOOP);
	sbx_error_freep(&err);
	assert_outside_untouched();
}
END_TEST

START_TEST(test_mkdir_p_too_long)
{
	char *p = malloc(PATH_MAX + 2);
	memset(p, 'd', PATH_MAX + 1);
	p[PATH_MAX + 1] = '\0';
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_inroot_mkdir_p(rootfd, p, 0755, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_str_eq(err->msg, "path too long");
	sbx_error_freep(&err);
	free(p);
}
END_TEST

/* ---- sbx_inroot_write_file ---- */

START_TEST(test_write_file_creates_and_truncates)
{
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/etc/resolv.conf", "nameserver 10.0.0.1\n", 0644, &err), 0);
	ck_assert_ptr_null(err);
	ck_assert_str_eq(unit_read(tfd, "root/etc/resolv.conf"), "nameserver 10.0.0.1\n");
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, "root/etc/resolv.conf", &st, 0), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	/* Shorter content replaces, not overwrites in place. */
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/etc/resolv.conf", "x\n", 0600, &err), 0);
	ck_assert_str_eq(unit_read(tfd, "root/etc/resolv.conf"), "x\n");
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/etc/resolv.conf", "", 0600, &err), 0);
	ck_assert_str_eq(unit_read(tfd, "root/etc/resolv.conf"), "");
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/etc/hostname", "sbx1\n", 0644, &err), 0);
	ck_assert_str_eq(unit_read(tfd, "root/etc/hostname"), "sbx1\n");
}
END_TEST

START_TEST(test_write_file_stays_inside)
{
	sbx_error *err = NULL;
	/* Each of these would hit outside/secret if resolved on the host. */
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/../../outside/secret", "w1", 0644, &err), 0);
	ck_assert_str_eq(unit_read(tfd, "root/outside/secret"), "w1");
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/rel_escape", "w2", 0644, &err), 0);
	ck_assert_str_eq(unit_read(tfd, "root/outside/secret"), "w2");
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/abs_outside", "w3", 0644, &err), -1);
	ck_assert_int_eq(err->errnum, ENOENT);
	sbx_error_freep(&err);
	/* The absolute symlink to /etc/passwd writes the sandbox's file. */
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/abs_passwd", "root:x:0:0::/:/bin/sh\n", 0644, &err), 0);
	ck_assert_str_eq(unit_read(tfd, "root/etc/passwd"), "root:x:0:0::/:/bin/sh\n");
	/* A dangling absolute symlink: created in the root. */
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/dangling", "d", 0644, &err), 0);
	char inroot[128];
	snprintf(inroot, sizeof(inroot), "root/%s", created_name);
	ck_assert_str_eq(unit_read(tfd, inroot), "d");
	assert_outside_untouched();
}
END_TEST

START_TEST(test_write_file_fifo_without_reader)
{
	ck_assert_int_eq(mkfifoat(tfd, "root/etc/hosts", 0644), 0);
	sbx_error *err = NULL;
	alarm(5); /* a hang would otherwise only end at the test timeout */
	int rc = sbx_inroot_write_file(rootfd, "/etc/hosts", "127.0.0.1 localhost\n", 0644, &err);
	alarm(0);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(err->errnum, ENXIO);
	ck_assert_str_eq(err->msg, "open '/etc/hosts': No such device or address");
	sbx_error_freep(&err);
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, "root/etc/hosts", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISFIFO(st.st_mode));
}
END_TEST

START_TEST(test_write_file_fifo_with_reader)
{
	/* Someone inside holds the FIFO open for reading: the open succeeds,
	 * and the type check must refuse before any byte is written. */
	ck_assert_int_eq(mkfifoat(tfd, "root/etc/hosts", 0644), 0);
	int reader = openat(tfd, "root/etc/hosts", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(reader, 0);
	sbx_error *err = NULL;
	alarm(5);
	int rc = sbx_inroot_write_file(rootfd, "/etc/hosts", "127.0.0.1 localhost\n", 0644, &err);
	alarm(0);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(err->code, SBX_ERR_DENIED);
	ck_assert_int_eq(err->errnum, 0);
	ck_assert_str_eq(err->msg, "'/etc/hosts' is not a regular file");
	sbx_error_freep(&err);
	char buf[8];
	errno = 0;
	ssize_t n = read(reader, buf, sizeof(buf));
	ck_assert_msg(n == 0 || (n < 0 && errno == EAGAIN), "the FIFO received %zd bytes", n);
	close(reader);
}
END_TEST

START_TEST(test_write_file_refuses_directory_and_device)
{
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/etc", "x", 0644, &err), -1);
	ck_assert_int_eq(err->errnum, EISDIR);
	sbx_error_freep(&err);
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/dir_abs", "x", 0644, &err), -1);
	ck_assert_int_eq(err->errnum, EISDIR);
	sbx_error_freep(&err);
	/* A device node (only root may make one; /dev/null is harmless). */
	mk("root/dev");
	if (mknodat(tfd, "root/dev/null", S_IFCHR | 0666, makedev(1, 3)) < 0) {
		printf("note: device part of %s skipped: mknod: %s\n", __func__, strerror(errno));
		return;
	}
	ln("/dev/null", "root/devlink");
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/dev/null", "x", 0644, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_DENIED);
	ck_assert_str_eq(err->msg, "'/dev/null' is not a regular file");
	sbx_error_freep(&err);
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/devlink", "x", 0644, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_DENIED);
	ck_assert_str_eq(err->msg, "'/devlink' is not a regular file");
	sbx_error_freep(&err);
}
END_TEST

START_TEST(test_write_file_missing_parent)
{
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_inroot_write_file(rootfd, "/no/such/file", "x", 0644, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_NOT_FOUND);
	ck_assert_int_eq(err->errnum, ENOENT);
	ck_assert_str_eq(err->msg, "open '/no/such/file': No such file or directory");
	sbx_error_freep(&err);
	ck_assert(!unit_exists(tfd, "root/no"));
}
END_TEST

/* ---- sbx_inroot_touch ---- */

START_TEST(test_touch)
{
	sbx_error *err = NULL;
	int fd = sbx_inroot_touch(rootfd, "/etc/mtab", 0640, &err);
	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_null(err);
	assert_same_file(fd, "root/etc/mtab");
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
	close(fd);
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, "root/etc/mtab", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	/* An existing file is opened, not truncated. */
	fd = sbx_inroot_touch(rootfd, "/etc/passwd", 0600, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/etc/passwd");
	close(fd);
	ck_assert_str_eq(unit_read(tfd, "root/etc/passwd"), "INSIDE-PASSWD");
	/* Through "..": inside. */
	fd = sbx_inroot_touch(rootfd, "/../../outside/touched", 0644, &err);
	ck_assert_int_ge(fd, 0);
	assert_same_file(fd, "root/outside/touched");
	close(fd);
	ck_assert(!unit_exists(tfd, "outside/touched"));
	/* A missing directory is an error. */
	ck_assert_int_eq(sbx_inroot_touch(rootfd, "/no/such", 0644, &err), -1);
	ck_assert_int_eq(err->errnum, ENOENT);
	ck_assert_str_eq(err->msg, "create '/no/such': No such file or directory");
	sbx_error_freep(&err);
	ck_assert_int_eq(sbx_inroot_touch(rootfd, "/loop1", 0644, &err), -1);
	ck_assert_int_eq(err->errnum, ELOOP);
	ck_assert_str_eq(err->msg, "open '/loop1': Too many levels of symbolic links");
	sbx_error_freep(&err);
	assert_outside_untouched();
}
END_TEST

static Suite *inroot_suite(void)
{
	Suite *s = suite_create("inroot");

	TCase *tc = tcase_create("open");
	tcase_set_timeout(tc, 20);
	tcase_add_checked_fixture(tc, root_setup, root_teardown);
	tcase_add_test(tc, test_open_plain_paths);
	tcase_add_test(tc, test_open_dotdot_stays_inside);
	tcase_add_test(tc, test_open_absolute_symlinks_stay_inside);
	tcase_add_test(tc, test_open_relative_symlinks_stay_inside);
	tcase_add_test(tc, test_open_proc_self_root_symlink);
	tcase_add_test(tc, test_open_refuses_magic_links);
	tcase_add_test(tc, test_open_proc_mounted_in_root);
	tcase_add_test(tc, test_open_create_stays_inside);
	tcase_add_test(tc, test_open_is_cloexec);
	suite_add_tcase(s, tc);

	tc = tcase_create("mkdir_p");
	tcase_add_checked_fixture(tc, root_setup, root_teardown);
	tcase_add_test(tc, test_mkdir_p_creates_inside);
	tcase_add_test(tc, test_mkdir_p_root_itself);
	tcase_add_test(tc, test_mkdir_p_dotdot_and_symlinks_stay_inside);
	tcase_add_test(tc, test_mkdir_p_refuses_dangling_and_files);
	tcase_add_test(tc, test_mkdir_p_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_set_timeout(tc, 20);
	tcase_add_checked_fixture(tc, root_setup, root_teardown);
	tcase_add_test(tc, test_write_file_creates_and_truncates);
	tcase_add_test(tc, test_write_file_stays_inside);
	tcase_add_test(tc, test_write_file_fifo_without_reader);
	tcase_add_test(tc, test_write_file_fifo_with_reader);
	tcase_add_test(tc, test_write_file_refuses_directory_and_device);
	tcase_add_test(tc, test_write_file_missing_parent);
	tcase_add_test(tc, test_touch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(inroot_suite());
}
