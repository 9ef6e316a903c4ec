/* Shared scaffolding of the unit tests: scratch directories, small file
 * helpers and the runner. Everything is static inline so that each test
 * program only compiles what it uses. */
#ifndef SBX_UNIT_H
#define SBX_UNIT_H

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Tests that demonstrate known defects in src/ only run when this variable
 * is set to 1; they fail until the defect is fixed. */
#define UNIT_KNOWN_BUGS_ENV "SBX_UNIT_KNOWN_BUGS"

static inline int unit_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* The directory unit_run() makes for the whole run; every scratch
 * directory goes below it, so that it is all removed even when a forked
 * test ends early on a failed assertion and skips its teardown. */
static inline char *unit_base_dir(void)
{
	static char path[PATH_MAX];
	return path;
}

/* A shell command, formatted; its exit status (-1 if it did not exit). */
static inline int unit_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int unit_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* rm -rf that does not rely on any code under test. */
static inline void unit_rm_rf(const char *path)
{
	nftw(path, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Create a fresh, empty, private directory and store its path in out. */
static inline void unit_mkdtemp(char out[PATH_MAX], const char *tag)
{
	const char *base = unit_base_dir();
	if (!base[0])
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	int n = snprintf(out, PATH_MAX, "%s/sbx-unit-%s-XXXXXX", base, tag);
	ck_assert_int_lt(n, PATH_MAX);
	ck_assert_ptr_nonnull(mkdtemp(out));
}

/* Write a whole file below dirfd, creating or truncating it. */
static inline void unit_write(int dirfd, const char *path, const char *data)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	size_t len = strlen(data);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Read a whole (small) file below dirfd into a static buffer. */
static inline const char *unit_read(int dirfd, const char *path)
{
	static char buf[65536];
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return buf;
}

static inline int unit_exists(int dirfd, const char *path)
{
	struct stat st;
	return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static inline int unit_known_bugs_enabled(void)
{
	const char *v = getenv(UNIT_KNOWN_BUGS_ENV);
	return v && !strcmp(v, "1");
}

/* Run a suite with the normal Check report (it ends in the
 * "100%: Checks: N, Failures: 0, Errors: 0" line). */
static inline int unit_run(Suite *s)
{
	char *base = unit_base_dir();
	const char *tmpdir = getenv("TMPDIR");
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	snprintf(base, PATH_MAX, "%s/sbx-unit-XXXXXX", tmpdir);
	if (!mkdtemp(base)) {
		fprintf(stderr, "mkdtemp %s: %s\n", base, strerror(errno));
		return EXIT_FAILURE;
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unit_rm_rf(base);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The case of known-defect tests, added to s; NULL (after a note) unless
 * requested through the environment. */
/* Regression tests of defects found and fixed; they always run. */
static inline TCase *unit_known_bugs_tcase(Suite *s)
{
	TCase *tc = tcase_create("regressions");
	suite_add_tcase(s, tc);
	return tc;
}

#endif
