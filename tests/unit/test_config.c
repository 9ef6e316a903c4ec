/* Unit tests of src/daemon/config.c: built-in defaults, single settings
 * and the "key = value" file with its comments, quotes and errors. */
#include "config.h"
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "subnet.h"
#include "unit.h"

static char tmp[PATH_MAX];
static int tfd = -1;
static struct sbx_config cfg;
static sbx_error *err;

static void cfg_setup(void)
{
	unit_mkdtemp(tmp, "config");
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(tfd, 0);
	err = NULL;
	ck_assert_int_eq(sbx_config_defaults(&cfg), 0);
}

static void cfg_teardown(void)
{
	sbx_config_free(&cfg);
	sbx_error_freep(&err);
	if (tfd >= 0)
		close(tfd);
	tfd = -1;
	unit_rm_rf(tmp);
}

/* Write text as a config file in the scratch directory; returns its path. */
static const char *conf(const char *text)
{
	static char path[PATH_MAX + 32];
	unit_write(tfd, "sandboxd.conf", text);
	snprintf(path, sizeof(path), "%s/sandboxd.conf", tmp);
	return path;
}

/* Assert err is an invalid-params error with message msg, and drop it. */
static void assert_invalid(const char *msg)
{
	ck_assert_ptr_nonnull(err);
	ck_assert_int_eq(err->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_int_eq(err->errnum, 0);
	ck_assert_str_eq(err->msg, msg);
	sbx_error_freep(&err);
}

/* Same, for a file error: the message is "<path>:<line>: rest". */
static void assert_file_error(const char *path, int line, const char *rest)
{
	char want[PATH_MAX + 512];
	snprintf(want, sizeof(want), "%s:%d: %s", path, line, rest);
	assert_invalid(want);
}

static void assert_defaults(const struct sbx_config *c)
{
	ck_assert_str_eq(c->config_path, SYSCONFDIR "/sandboxd/sandboxd.conf");
	ck_assert_str_eq(c->socket_path, "/run/sandboxd/sandboxd.sock");
	ck_assert_str_eq(c->state_dir, LOCALSTATEDIR "/lib/sandboxd");
	ck_assert_str_eq(c->run_dir, "/run/sandboxd");
	ck_assert_str_eq(c->init_path, PKGLIBEXECDIR "/sandbox-init");
	ck_assert_str_eq(c->default_image, "minimal");
	ck_assert_str_eq(c->default_image_path, PKGDATADIR "/images/minimal.tar.gz");
	ck_assert_ptr_null(c->cgroup_parent);
	ck_assert_int_eq(c->log_level, SBX_LOG_INFO);
	ck_assert(!c->foreground);
	ck_assert_int_eq(c->max_message, 16 * 1024 * 1024);
	ck_assert_int_eq(c->max_sandboxes, 1000);
	ck_assert_int_eq(c->default_stop_timeout_s, 10);
}

/* ---- defaults and free ---- */

START_TEST(test_defaults)
{
	assert_defaults(&cfg);
	/* Defaults start from a clean slate whatever was there. */
	struct sbx_config dirty;
	memset(&dirty, 0xa5, sizeof(dirty));
	ck_assert_int_eq(sbx_config_defaults(&dirty), 0);
	assert_defaults(&dirty);
	sbx_config_free(&dirty);
}
END_TEST

START_TEST(test_free_clears)
{
	ck_assert_int_eq(sbx_config_set(&cfg, "cgroup_parent", "sandboxes.slice", &err), 0);
	sbx_config_free(&cfg);
	ck_assert_ptr_null(cfg.config_path);
	ck_assert_ptr_null(cfg.socket_path);
	ck_assert_ptr_null(cfg.state_dir);
	ck_assert_ptr_null(cfg.cgroup_parent);
	ck_assert_int_eq(cfg.max_sandboxes, 0);
	sbx_config_free(&cfg); /* freeing twice is harmless */
	ck_assert_int_eq(sbx_config_defaults(&cfg), 0);
}
END_TEST

/* ---- sbx_config_set ---- */

START_TEST(test_network_neighbours)
{
	/* No subnet unless set: one is picked from the pool. */
	ck_assert_ptr_null(cfg.net_subnet);
	ck_assert_str_eq(cfg.net_subnet_pool, SBX_DEFAULT_SUBNET_POOL);
	ck_assert(cfg.iptables_forward);
	ck_assert_str_eq(cfg.firewalld_zone, "sandboxd");
	ck_assert_int_eq(sbx_config_set(&cfg, "subnet_pool", "10.99.0.0/16:24", &err), 0);
	ck_assert_str_eq(cfg.net_subnet_pool, "10.99.0.0/16:24");
	ck_assert_int_eq(sbx_config_set(&cfg, "iptables_forward", "no", &err), 0);
	ck_assert(!cfg.iptables_forward);
	ck_assert_int_eq(sbx_config_set(&cfg, "iptables_forward", "true", &err), 0);
	ck_assert(cfg.iptables_forward);
	ck_assert_int_lt(sbx_config_set(&cfg, "iptables_forward", "maybe", &err), 0);
	assert_invalid("iptables_forward: 'maybe' is not true or false");
	ck_assert_int_eq(sbx_config_set(&cfg, "firewalld_zone", "", &err), 0);
	ck_assert_str_eq(cfg.firewalld_zone, "");
	const char *path = conf("subnet = 10.50.0.0/16\nfirewalld_zone = trusted\niptables_forward = 0\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), 0);
	ck_assert_str_eq(cfg.net_subnet, "10.50.0.0/16");
	ck_assert_str_eq(cfg.firewalld_zone, "trusted");
	ck_assert(!cfg.iptables_forward);
}
END_TEST

START_TEST(test_set_strings)
{
	static const struct {
		const char *key, *value;
		size_t off;
	} cases[] = {
		{ "socket", "/tmp/s.sock", offsetof(struct sbx_config, socket_path) },
		{ "state_dir", "/srv/state", offsetof(struct sbx_config, state_dir) },
		{ "run_dir", "/run/x", offsetof(struct sbx_config, run_dir) },
		{ "init_path", "/opt/init", offsetof(struct sbx_config, init_path) },
		{ "default_image", "alpine", offsetof(struct sbx_config, default_image) },
		{ "default_image_path", "/img/a.tar.gz", offsetof(struct sbx_config, default_image_path) },
		{ "cgroup_parent", "sbx.slice", offsetof(struct sbx_config, cgroup_parent) },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(cases); i++) {
		ck_assert_int_eq(sbx_config_set(&cfg, cases[i].key, cases[i].value, &err), 0);
		ck_assert_ptr_null(err);
		char *got = *(char **)((char *)&cfg + cases[i].off);
		ck_assert_str_eq(got, cases[i].value);
		ck_assert_ptr_ne(got, cases[i].value);
	}
	/* Setting again replaces (the old string is freed: no leak). */
	ck_assert_int_eq(sbx_config_set(&cfg, "socket", "/other.sock", &err), 0);
	ck_assert_str_eq(cfg.socket_path, "/other.sock");
	/* Nothing else moved. */
	ck_assert_int_eq(cfg.max_sandboxes, 1000);
	ck_assert_int_eq(cfg.log_level, SBX_LOG_INFO);
	ck_assert_str_eq(cfg.config_path, SYSCONFDIR "/sandboxd/sandboxd.conf");
}
END_TEST

START_TEST(test_set_log_level)
{
	static const struct {
		const char *value;
		enum sbx_log_level level;
	} cases[] = {
		{ "error", SBX_LOG_ERROR }, { "warn", SBX_LOG_WARN },	{ "warning", SBX_LOG_WARN },
		{ "info", SBX_LOG_INFO },   { "debug", SBX_LOG_DEBUG }, { "DEBUG", SBX_LOG_DEBUG },
		{ "Error", SBX_LOG_ERROR }, { "WARNING", SBX_LOG_WARN },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(cases); i++) {
		cfg.log_level = (enum sbx_log_level)99;
		ck_assert_int_eq(sbx_config_set(&cfg, "log_level", cases[i].value, &err), 0);
		ck_assert_int_eq(cfg.log_level, cases[i].level);
	}
	const char *bad[] = { "loud", "", "inf", "debug2", "3", " info" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(bad); i++) {
		cfg.log_level = SBX_LOG_WARN;
		ck_assert_int_eq(sbx_config_set(&cfg, "log_level", bad[i], &err), -1);
		char want[128];
		snprintf(want, sizeof(want), "log_level: '%s' is not one of error, warn, info, debug", bad[i]);
		assert_invalid(want);
		ck_assert_int_eq(cfg.log_level, SBX_LOG_WARN);
	}
}
END_TEST

static const struct {
	const char *key;
	size_t off;
	int64_t min, max;
} int_keys[] = {
	{ "max_message", offsetof(struct sbx_config, max_message), 4096, (int64_t)1 << 30 },
	{ "max_sandboxes", offsetof(struct sbx_config, max_sandboxes), 1, 1000000 },
	{ "stop_timeout_s", offsetof(struct sbx_config, default_stop_timeout_s), 0, 3600 },
};

START_TEST(test_set_numbers)
{
	const char *key = int_keys[_i].key;
	int64_t *slot = (int64_t *)((char *)&cfg + int_keys[_i].off);
	int64_t min = int_keys[_i].min, max = int_keys[_i].max;
	char v[64];

	snprintf(v, sizeof(v), "%lld", (long long)min);
	ck_assert_int_eq(sbx_config_set(&cfg, key, v, &err), 0);
	ck_assert_int_eq(*slot, min);
	snprintf(v, sizeof(v), "%lld", (long long)max);
	ck_assert_int_eq(sbx_config_set(&cfg, key, v, &err), 0);
	ck_assert_int_eq(*slot, max);
	snprintf(v, sizeof(v), "%lld", (long long)(min + max) / 2);
	ck_assert_int_eq(sbx_config_set(&cfg, key, v, &err), 0);
	ck_assert_int_eq(*slot, (min + max) / 2);

	const int64_t keep = *slot;
	char below[32], above[32];
	snprintf(below, sizeof(below), "%lld", (long long)min - 1);
	snprintf(above, sizeof(above), "%lld", (long long)max + 1);
	const char *bad[] = { below, above, "", "ten", "12k", "1.5", "0x10", "1e3", "-", "99999999999999999999" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(sbx_config_set(&cfg, key, bad[i], &err), -1);
		char want[256];
		snprintf(want, sizeof(want), "%s: '%s' is not a number between %lld and %lld", key, bad[i],
			 (long long)min, (long long)max);
		assert_invalid(want);
		ck_assert_int_eq(*slot, keep);
	}
}
END_TEST

START_TEST(test_socket_group)
{
	ck_assert_str_eq(cfg.socket_group, "sandboxd");
	ck_assert_int_eq(sbx_config_set(&cfg, "socket_group", "sbx-ops_2", &err), 0);
	ck_assert_str_eq(cfg.socket_group, "sbx-ops_2");
	ck_assert_int_eq(sbx_config_set(&cfg, "socket_group", "1234", &err), 0);
	ck_assert_str_eq(cfg.socket_group, "1234");
	/* empty: root only */
	ck_assert_int_eq(sbx_config_set(&cfg, "socket_group", "", &err), 0);
	ck_assert_str_eq(cfg.socket_group, "");
	/* the name reaches logs and an error line: nothing to escape in it */
	ck_assert_int_eq(sbx_config_set(&cfg, "socket_group", "a\"b", &err), -1);
	assert_invalid("socket_group: 'a\"b' is not a group name or number (letters, digits, '.', '_', '-', '$'; "
		       "empty for root only)");
	ck_assert_int_eq(sbx_config_set(&cfg, "socket_group", "ops team", &err), -1);
	sbx_error_freep(&err);
	ck_assert_str_eq(cfg.socket_group, "");
}
END_TEST

START_TEST(test_set_unknown_key)
{
	const char *bad[] = { "sockets", "Socket", "SOCKET", "", "log-level", "max_message ", "foreground",
			      "default_stop_timeout_s" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(sbx_config_set(&cfg, bad[i], "1", &err), -1);
		char want[128];
		snprintf(want, sizeof(want), "unknown setting '%s'", bad[i]);
		assert_invalid(want);
	}
	assert_defaults(&cfg);
	/* A NULL err is allowed. */
	ck_assert_int_eq(sbx_config_set(&cfg, "nope", "1", NULL), -1);
}
END_TEST

/* ---- sbx_config_load ---- */

START_TEST(test_load_full_file)
{
	const char *path = conf("# sandboxd.conf\n"
				"\n"
				"socket = /tmp/test.sock\n"
				"   state_dir=/srv/sandboxd   \n"
				"\trun_dir\t=\t/run/test\t\n"
				"log_level = debug # trailing comment\n"
				"max_message = 65536\n"
				"max_sandboxes=5\n"
				"stop_timeout_s = 0\n"
				"   # indented comment = with an equals sign\n"
				"cgroup_parent = sandboxes.slice\n"
				"init_path = \"/opt/sandboxd/sandbox-init\"\n"
				"default_image = \"with space\"\n"
				"default_image_path = /img/base.tar.gz");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), 0);
	ck_assert_ptr_null(err);
	ck_assert_str_eq(cfg.socket_path, "/tmp/test.sock");
	ck_assert_str_eq(cfg.state_dir, "/srv/sandboxd");
	ck_assert_str_eq(cfg.run_dir, "/run/test");
	ck_assert_int_eq(cfg.log_level, SBX_LOG_DEBUG);
	ck_assert_int_eq(cfg.max_message, 65536);
	ck_assert_int_eq(cfg.max_sandboxes, 5);
	ck_assert_int_eq(cfg.default_stop_timeout_s, 0);
	ck_assert_str_eq(cfg.cgroup_parent, "sandboxes.slice");
	ck_assert_str_eq(cfg.init_path, "/opt/sandboxd/sandbox-init");
	ck_assert_str_eq(cfg.default_image, "with space");
	/* The last line has no newline and still counts. */
	ck_assert_str_eq(cfg.default_image_path, "/img/base.tar.gz");
	/* The file does not name itself. */
	ck_assert_str_eq(cfg.config_path, SYSCONFDIR "/sandboxd/sandboxd.conf");
}
END_TEST

START_TEST(test_load_empty_and_comment_only)
{
	ck_assert_int_eq(sbx_config_load(&cfg, conf(""), true, &err), 0);
	assert_defaults(&cfg);
	ck_assert_int_eq(sbx_config_load(&cfg, conf("# nothing\n\n   \n\t\n#socket = /x\n"), true, &err), 0);
	ck_assert_ptr_null(err);
	assert_defaults(&cfg);
}
END_TEST

START_TEST(test_load_value_forms)
{
	const char *path = conf("cgroup_parent = a=b\n"
				"default_image = \"\"\n"
				"socket = 'single'\n"
				"run_dir = \"\n"
				"state_dir = \"half\n"
				"init_path = inner  spaces  kept\n"
				"default_image_path = \"\"quoted\"\"\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), 0);
	ck_assert_str_eq(cfg.cgroup_parent, "a=b");		/* split at the first '=' */
	ck_assert_str_eq(cfg.default_image, "");		/* "" is the empty string */
	ck_assert_str_eq(cfg.socket_path, "'single'");		/* only double quotes */
	ck_assert_str_eq(cfg.run_dir, "\"");			/* a lone quote is data */
	ck_assert_str_eq(cfg.state_dir, "\"half");		/* unbalanced: kept */
	ck_assert_str_eq(cfg.init_path, "inner  spaces  kept");
	ck_assert_str_eq(cfg.default_image_path, "\"quoted\""); /* one pair stripped */
}
END_TEST

START_TEST(test_load_hash_always_comments)
{
	/* sandboxd.conf(5): '#' starts a comment wherever it appears, so a
	 * value cannot contain one, quoted or not. */
	const char *path = conf("run_dir = /run/a#b\ndefault_image = \"x#y\"\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), 0);
	ck_assert_str_eq(cfg.run_dir, "/run/a");
	ck_assert_ptr_null(strchr(cfg.default_image, '#'));
	ck_assert_ptr_null(strchr(cfg.default_image, 'y'));
}
END_TEST

START_TEST(test_load_crlf)
{
	const char *path = conf("socket = /crlf.sock\r\nmax_sandboxes = 7\r\n\r\n# c\r\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), 0);
	ck_assert_str_eq(cfg.socket_path, "/crlf.sock");
	ck_assert_int_eq(cfg.max_sandboxes, 7);
}
END_TEST

START_TEST(test_load_later_lines_win)
{
	const char *path = conf("max_sandboxes = 3\nmax_sandboxes = 4\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), 0);
	ck_assert_int_eq(cfg.max_sandboxes, 4);
	/* A setting made after the load (a command-line flag) overrides it. */
	ck_assert_int_eq(sbx_config_set(&cfg, "max_sandboxes", "9", &err), 0);
	ck_assert_int_eq(cfg.max_sandboxes, 9);
}
END_TEST

START_TEST(test_load_missing_file)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/absent.conf", tmp);
	ck_assert_int_eq(sbx_config_load(&cfg, path, false, &err), 0);
	ck_assert_ptr_null(err);
	assert_defaults(&cfg);

	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_NOT_FOUND);
	ck_assert_int_eq(err->errnum, ENOENT);
	char want[PATH_MAX + 128];
	snprintf(want, sizeof(want), "config file '%s': No such file or directory", path);
	ck_assert_str_eq(err->msg, want);
	sbx_error_freep(&err);

	/* Not being allowed to read it is an error even when optional. */
	snprintf(path, sizeof(path), "%s/sandboxd.conf/below-a-file", tmp);
	conf("");
	ck_assert_int_eq(sbx_config_load(&cfg, path, false, &err), -1);
	ck_assert_int_eq(err->errnum, ENOTDIR);
	sbx_error_freep(&err);
}
END_TEST

START_TEST(test_load_unknown_key)
{
	const char *path = conf("socket = /a\n# comment\nbogus = 1\nstate_dir = /never\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 3, "unknown setting 'bogus'");
	/* Parsing stops at the bad line. */
	ck_assert_str_eq(cfg.state_dir, LOCALSTATEDIR "/lib/sandboxd");
}
END_TEST

START_TEST(test_load_bad_number)
{
	const char *path = conf("\n\nmax_sandboxes = lots\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 3, "max_sandboxes: 'lots' is not a number between 1 and 1000000");
	ck_assert_int_eq(cfg.max_sandboxes, 1000);

	path = conf("max_message = 1024 # too small\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 1, "max_message: '1024' is not a number between 4096 and 1073741824");

	path = conf("stop_timeout_s = \"30\"\nstop_timeout_s = -1\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 2, "stop_timeout_s: '-1' is not a number between 0 and 3600");
	ck_assert_int_eq(cfg.default_stop_timeout_s, 30); /* the quoted value was fine */

	path = conf("max_sandboxes =\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 1, "max_sandboxes: '' is not a number between 1 and 1000000");
}
END_TEST

START_TEST(test_load_bad_log_level)
{
	const char *path = conf("log_level = verbose\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 1, "log_level: 'verbose' is not one of error, warn, info, debug");
	ck_assert_int_eq(cfg.log_level, SBX_LOG_INFO);
}
END_TEST

START_TEST(test_load_syntax_errors)
{
	const char *path = conf("socket = /a\nthis line has no equals sign\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 2, "expected 'key = value'");

	path = conf("   = value\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 1, "unknown setting ''");

	path = conf("socket # = /commented/out\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 1, "expected 'key = value'");

	path = conf("Socket = /x\n");
	ck_assert_int_eq(sbx_config_load(&cfg, path, true, &err), -1);
	assert_file_error(path, 1, "unknown setting 'Socket'");
}
END_TEST

/* ---- known defects (run with SBX_UNIT_KNOWN_BUGS=1) ---- */

START_TEST(bug_load_long_line_split)
{
	/* Lines are limited to 4095 bytes (sandboxd.conf(5)), but a longer one
	 * is not refused: fgets() into 4096 bytes returns it in pieces and each
	 * piece is parsed as a line of its own. Here the over-long cgroup_parent
	 * value is silently cut at byte 4095 and its tail, which happens to
	 * read "max_sandboxes = 5", becomes a setting. The load should fail or
	 * keep the whole value. */
	const char *head = "cgroup_parent = ";
	const char *tail = "max_sandboxes = 5";
	size_t pad = 4095 - strlen(head);
	char *text = malloc(4096 + strlen(tail) + 2);
	strcpy(text, head);
	memset(text + strlen(head), 'a', pad);
	strcpy(text + 4095, tail);
	strcat(text, "\n");
	const char *path = conf(text);
	free(text);
	int rc = sbx_config_load(&cfg, path, true, &err);
	ck_assert_int_eq(cfg.max_sandboxes, 1000);
	if (rc == 0)
		ck_assert_uint_eq(strlen(cfg.cgroup_parent), pad + strlen(tail));
}
END_TEST

START_TEST(bug_load_directory_is_success)
{
	/* fopen() of a directory succeeds, the first fgets() fails with EISDIR
	 * and the loop ends as if at end of file: a wrong --config path
	 * silently yields the defaults. Read errors are never checked. */
	ck_assert_int_eq(sbx_config_load(&cfg, tmp, true, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_int_eq(err->errnum, EISDIR);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");

	TCase *tc = tcase_create("set");
	tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_free_clears);
	tcase_add_test(tc, test_set_strings);
	tcase_add_test(tc, test_network_neighbours);
	tcase_add_test(tc, test_set_log_level);
	tcase_add_loop_test(tc, test_set_numbers, 0, (int)SBX_ARRAY_SIZE(int_keys));
	tcase_add_test(tc, test_set_unknown_key);
	tcase_add_test(tc, test_socket_group);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
	tcase_add_test(tc, test_load_full_file);
	tcase_add_test(tc, test_load_empty_and_comment_only);
	tcase_add_test(tc, test_load_value_forms);
	tcase_add_test(tc, test_load_hash_always_comments);
	tcase_add_test(tc, test_load_crlf);
	tcase_add_test(tc, test_load_later_lines_win);
	tcase_add_test(tc, test_load_missing_file);
	tcase_add_test(tc, test_load_unknown_key);
	tcase_add_test(tc, test_load_bad_number);
	tcase_add_test(tc, test_load_bad_log_level);
	tcase_add_test(tc, test_load_syntax_errors);
	suite_add_tcase(s, tc);

	tc = unit_known_bugs_tcase(s);
	if (tc) {
		tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
		tcase_add_test(tc, bug_load_long_line_split);
		tcase_add_test(tc, bug_load_directory_is_success);
	}
	return s;
}

int main(void)
{
	return unit_run(config_suite());
}
