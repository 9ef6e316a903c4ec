/* sandboxctl cp and sandboxctl fs ls | stat | cat | write | rm | mkdir | mv | find.
 * File content never travels as JSON here: files go over a passed
 * descriptor (fs.read/fs.write with "fd": true), directories as a tar
 * stream over a pipe (fs.archive/fs.extract), made and unpacked on this
 * side by libarchive in a child process while the call is in flight. */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

static int fs_usage(FILE *out)
{
	fprintf(out, "Usage: sandboxctl fs ls [-R | -d DEPTH] SANDBOX [PATH]\n"
		     "       sandboxctl fs stat SANDBOX PATH\n"
		     "       sandboxctl fs cat SANDBOX PATH\n"
		     "       sandboxctl fs write [-m MODE] [-a] SANDBOX PATH   (content from stdin)\n"
		     "       sandboxctl fs rm [-r] SANDBOX PATH...\n"
		     "       sandboxctl fs mkdir [-p] [-m MODE] SANDBOX PATH...\n"
		     "       sandboxctl fs mv [-f] SANDBOX SRC DST\n"
		     "       sandboxctl fs find [-F] [-g GLOB] [-n MAX] SANDBOX PATTERN [PATH]\n"
		     "Paths are inside the sandbox; relative ones start at its working directory.\n");
	return out == stdout ? 0 : CTL_EXIT_FAIL;
}

static int cp_usage(FILE *out)
{
	fprintf(out, "Usage: sandboxctl cp [--chunked] SRC DST\n"
		     "One of SRC and DST is SANDBOX:PATH, the other a local path. Files and whole\n"
		     "directories (with modes, times and symlinks) are copied; into DST when it is an\n"
		     "existing directory. Write ./NAME for a local name that holds a colon. --chunked\n"
		     "sends files as base64 chunks in JSON instead of passing a descriptor.\n");
	return out == stdout ? 0 : CTL_EXIT_FAIL;
}

/* A call with a descriptor; quiet leaves printing the error to the caller. */
static yajl_val fs_call(struct ctl *ctl, const char *method, yajl_gen params, int send_fd, yajl_val *result,
			bool quiet, sbx_error **errp)
{
	sbx_error *err = NULL;
	if (!ctl->connected) {
		if (sbx_client_connect(&ctl->client, ctl->socket, &err) < 0) {
			ctl_fail("%s (is sandboxd running? set SANDBOXD_SOCKET or --socket)", err->msg);
			sbx_error_free(err);
			return NULL;
		}
		ctl->connected = true;
	}
	const unsigned char *buf = NULL;
	size_t len = 0;
	yajl_gen_get_buf(params, &buf, &len);
	_cleanup_free_ char *text = strndup((const char *)buf, len);
	yajl_val root = text ? sbx_client_call_fd(&ctl->client, method, text, send_fd, result, NULL, &err) : NULL;
	if (!root) {
		if (!quiet)
			ctl_fail("%s", err && err->msg ? err->msg : "request failed");
		if (errp)
			*errp = err;
		else
			sbx_error_free(err);
	}
	return root;
}

static yajl_gen params_begin(const char *sandbox)
{
	yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", sandbox);
	return g;
}

static int simple_call(struct ctl *ctl, const char *method, yajl_gen g, bool print)
{
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = fs_call(ctl, method, g, -1, &res, false, NULL);
	if (!root)
		return CTL_EXIT_FAIL;
	if (print || ctl->json)
		ctl_print_json(res);
	return 0;
}

static void mode_string(long long mode, const char *type, char out[11])
{
	out[0] = !strcmp(type, "dir") ? 'd' : !strcmp(type, "symlink") ? 'l' : !strcmp(type, "file") ? '-' : '?';
	const char *rwx = "rwxrwxrwx";
	for (int i = 0; i < 9; i++)
		out[1 + i] = (mode & (0400 >> i)) ? rwx[i] : '-';
	out[10] = '\0';
}

static int fs_ls(struct ctl *ctl, const char *sandbox, const char *path, long long depth)
{
	_cleanup_gen_ yajl_gen g = params_begin(sandbox);
	if (path)
		sbx_gen_kv_str(g, "path", path);
	sbx_gen_kv_int(g, "depth", depth);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = fs_call(ctl, "fs.list", g, -1, &res, false, NULL);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
		return 0;
	}
	yajl_val list = sbx_json_get(res, "entries");
	static const char *const headers[] = { "MODE", "OWNER", "GROUP", "SIZE", "MODIFIED", "PATH" };
	struct ctl_table *t = ctl_table_new(headers, 6);
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val e = list->u.array.values[i];
		char mode[11], size[32], owner[32], group[32];
		mode_string(ctl_int(e, "mode", 0), ctl_str(e, "type"), mode);
		snprintf(size, sizeof(size), "%lld", ctl_int(e, "size", 0));
		const char *o = ctl_str(e, "owner"), *gr = ctl_str(e, "group");
		snprintf(owner, sizeof(owner), "%s", o && *o && strcmp(o, "-") ? o : "");
		if (!owner[0])
			snprintf(owner, sizeof(owner), "%lld", ctl_int(e, "uid", 0));
		snprintf(group, sizeof(group), "%s", gr && *gr && strcmp(gr, "-") ? gr : "");
		if (!group[0])
			snprintf(group, sizeof(group), "%lld", ctl_int(e, "gid", 0));
		_cleanup_free_ char *shown = NULL;
		const char *target = ctl_str(e, "symlink_target");
		if (target && *target && strcmp(target, "-") && asprintf(&shown, "%s -> %s", ctl_str(e, "path"), target) < 0)
			shown = NULL;
		const char *row[] = { mode, owner, group, size, ctl_str(e, "mtime"), shown ? shown : ctl_str(e, "path") };
		ctl_table_add(t, row);
	}
	ctl_table_print(t);
	if (YAJL_IS_TRUE(sbx_json_get(res, "truncated")))
		fprintf(stderr, "sandboxctl: listing truncated\n");
	return 0;
}

static int fs_cat(struct ctl *ctl, const char *sandbox, const char *path)
{
	fflush(stdout);
	_cleanup_gen_ yajl_gen g = params_begin(sandbox);
	sbx_gen_kv_str(g, "path", path);
	sbx_gen_kv_bool(g, "fd", true);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = fs_call(ctl, "fs.read", g, STDOUT_FILENO, &res, false, NULL);
	return root ? 0 : CTL_EXIT_FAIL;
}

static int fs_write(struct ctl *ctl, const char *sandbox, const char *path, const char *mode, bool append)
{
	_cleanup_gen_ yajl_gen g = params_begin(sandbox);
	sbx_gen_kv_str(g, "path", path);
	sbx_gen_kv_bool(g, "fd", true);
	if (mode)
		sbx_gen_kv_str(g, "mode", mode);
	if (append)
		sbx_gen_kv_bool(g, "append", true);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = fs_call(ctl, "fs.write", g, STDIN_FILENO, &res, false, NULL);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	return 0;
}

static int fs_find(struct ctl *ctl, const char *sandbox, const char *pattern, const char *path, const char *glob,
		   bool literal, long long max)
{
	_cleanup_gen_ yajl_gen g = params_begin(sandbox);
	sbx_gen_kv_str(g, "pattern", pattern);
	if (path)
		sbx_gen_kv_str(g, "path", path);
	if (glob)
		sbx_gen_kv_str(g, "glob", glob);
	if (literal)
		sbx_gen_kv_bool(g, "literal", true);
	if (max > 0)
		sbx_gen_kv_int(g, "max_results", max);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = fs_call(ctl, "fs.find", g, -1, &res, false, NULL);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
		return 0;
	}
	yajl_val m = sbx_json_get(res, "matches");
	for (size_t i = 0; m && YAJL_IS_ARRAY(m) && i < m->u.array.len; i++) {
		yajl_val e = m->u.array.values[i];
		printf("%s:%lld:%s\n", ctl_str(e, "file"), ctl_int(e, "line", 0), ctl_str(e, "content"));
	}
	if (YAJL_IS_TRUE(sbx_json_get(res, "truncated")))
		fprintf(stderr, "sandboxctl: more matches than shown; raise -n\n");
	return m && YAJL_IS_ARRAY(m) && m->u.array.len > 0 ? 0 : 1;
}

int cmd_fs(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return fs_usage(stderr);
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help"))
		return fs_usage(stdout);
	static const struct option opts[] = {
		{ "recursive", no_argument, NULL, 'r' }, { "parents", no_argument, NULL, 'p' },
		{ "mode", required_argument, NULL, 'm' }, { "force", no_argument, NULL, 'f' },
		{ "depth", required_argument, NULL, 'd' }, { "glob", required_argument, NULL, 'g' },
		{ "fixed-strings", no_argument, NULL, 'F' }, { "max", required_argument, NULL, 'n' },
		{ "append", no_argument, NULL, 'a' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	bool recursive = false, parents = false, force = false, literal = false, append = false;
	const char *mode = NULL, *glob = NULL;
	long long depth = 1, max = 0;
	int opt;
	optind = 0;
	while ((opt = getopt_long(argc - 1, argv + 1, "+rRpm:fd:g:Fn:ah", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			recursive = true;
			break;
		case 'R':
			recursive = true;
			depth = 0;
			break;
		case 'p':
			parents = true;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'd':
			depth = atoll(optarg);
			break;
		case 'g':
			glob = optarg;
			break;
		case 'F':
			literal = true;
			break;
		case 'n':
			max = atoll(optarg);
			break;
		case 'a':
			append = true;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			return fs_usage(stdout);
		default:
			return ctl_bad_option("fs", argv + 1);
		}
	}
	char **args = argv + 1 + optind;
	int nargs = argc - 1 - optind;
	if (nargs < 1)
		return ctl_usage_error("fs", "which sandbox?");
	const char *sb = args[0];
	if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
		if (nargs > 2)
			return ctl_usage_error("fs", "ls takes SANDBOX and at most one PATH");
		return fs_ls(ctl, sb, nargs > 1 ? args[1] : NULL, depth);
	}
	if (!strcmp(sub, "stat") || !strcmp(sub, "cat") || !strcmp(sub, "write")) {
		if (nargs != 2)
			return ctl_usage_error("fs", "%s takes SANDBOX and PATH", sub);
		if (!strcmp(sub, "cat"))
			return fs_cat(ctl, sb, args[1]);
		if (!strcmp(sub, "write"))
			return fs_write(ctl, sb, args[1], mode, append);
		_cleanup_gen_ yajl_gen g = params_begin(sb);
		sbx_gen_kv_str(g, "path", args[1]);
		return simple_call(ctl, "fs.stat", g, true);
	}
	if (!strcmp(sub, "rm") || !strcmp(sub, "mkdir")) {
		if (nargs < 2)
			return ctl_usage_error("fs", "%s takes SANDBOX and PATH...", sub);
		int rc = 0;
		for (int i = 1; i < nargs; i++) {
			_cleanup_gen_ yajl_gen g = params_begin(sb);
			sbx_gen_kv_str(g, "path", args[i]);
			if (!strcmp(sub, "rm")) {
				if (recursive)
					sbx_gen_kv_bool(g, "recursive", true);
			} else {
				if (parents)
					sbx_gen_kv_bool(g, "parents", true);
				if (mode)
					sbx_gen_kv_str(g, "mode", mode);
			}
			if (simple_call(ctl, !strcmp(sub, "rm") ? "fs.remove" : "fs.mkdir", g, false))
				rc = CTL_EXIT_FAIL;
		}
		return rc;
	}
	if (!strcmp(sub, "mv") || !strcmp(sub, "move")) {
		if (nargs != 3)
			return ctl_usage_error("fs", "mv takes SANDBOX SRC DST");
		_cleanup_gen_ yajl_gen g = params_begin(sb);
		sbx_gen_kv_str(g, "src", args[1]);
		sbx_gen_kv_str(g, "dst", args[2]);
		if (force)
			sbx_gen_kv_bool(g, "overwrite", true);
		return simple_call(ctl, "fs.move", g, false);
	}
	if (!strcmp(sub, "find") || !strcmp(sub, "grep")) {
		if (nargs < 2 || nargs > 3)
			return ctl_usage_error("fs", "find takes SANDBOX PATTERN [PATH]");
		return fs_find(ctl, sb, args[1], nargs > 2 ? args[2] : NULL, glob, literal, max);
	}
	return ctl_usage_error("fs", "unknown fs command '%s'", sub);
}

/* ---- cp ---- */

struct cp_end {
	char *sandbox; /* NULL: local */
	const char *path;
};

static void cp_parse(char *arg, struct cp_end *e)
{
	e->sandbox = NULL;
	e->path = arg;
	char *colon = strchr(arg, ':');
	if (!colon || arg[0] == '/' || arg[0] == '.')
		return;
	*colon = '\0';
	if (sbx_name_valid(arg) || sbx_id_valid(arg)) {
		e->sandbox = arg;
		e->path = colon + 1;
	} else {
		*colon = ':';
	}
}

static const char *base_name(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	static char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%.*s", (int)n, path);
	const char *s = strrchr(buf, '/');
	return s && s[1] ? s + 1 : buf;
}

/* file_info of a sandbox path, or NULL (quietly) when it does not exist. */
static yajl_val remote_stat(struct ctl *ctl, const char *sandbox, const char *path, yajl_val *res, int *code)
{
	_cleanup_gen_ yajl_gen g = params_begin(sandbox);
	sbx_gen_kv_str(g, "path", path);
	yajl_gen_map_close(g);
	sbx_error *err = NULL;
	yajl_val root = fs_call(ctl, "fs.stat", g, -1, res, true, &err);
	*code = root ? 0 : err ? err->code : SBX_ERR_INTERNAL;
	if (!root && *code != SBX_ERR_NOT_FOUND && err)
		ctl_fail("%s", err->msg);
	sbx_error_free(err);
	return root;
}

/* Unpack a tar from fd into dir; this side's own disk, hence libarchive's
 * secure-extract flags: the tar comes from a sandbox. */
static int untar_local(int fd, const char *dir)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ctl_fail("mkdir '%s': %s", dir, strerror(errno));
	if (chdir(dir) < 0)
		return ctl_fail("chdir '%s': %s", dir, strerror(errno));
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	archive_read_support_format_tar(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
						    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK);
	int rc = 0;
	if (archive_read_open_fd(in, fd, 1 << 16) != ARCHIVE_OK) {
		rc = ctl_fail("read archive: %s", archive_error_string(in));
		goto out;
	}
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		mode_t t = archive_entry_filetype(e);
		if (t != AE_IFREG && t != AE_IFDIR && t != AE_IFLNK)
			continue;
		if (archive_write_header(out, e) < ARCHIVE_WARN) {
			fprintf(stderr, "sandboxctl: %s: %s\n", archive_entry_pathname(e), archive_error_string(out));
			rc = CTL_EXIT_FAIL;
			continue;
		}
		const void *buf;
		size_t size;
		la_int64_t off;
		while ((r = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(out, buf, size, off) < ARCHIVE_WARN)
				break;
		archive_write_finish_entry(out);
	}
	if (r != ARCHIVE_EOF && r != ARCHIVE_OK)
		rc = ctl_fail("read archive: %s", archive_error_string(in));
out:
	archive_write_close(out);
	archive_write_free(out);
	archive_read_free(in);
	return rc;
}

/* Write dir's contents as a tar to fd, names relative to dir. */
static int tar_local(int fd, const char *dir)
{
	struct archive *disk = archive_read_disk_new();
	struct archive *out = archive_write_new();
	archive_read_disk_set_symlink_physical(disk);
	archive_write_set_format_pax_restricted(out);
	int rc = 0;
	if (archive_write_open_fd(out, fd) != ARCHIVE_OK || archive_read_disk_open(disk, dir) != ARCHIVE_OK) {
		rc = ctl_fail("archive '%s': %s", dir, archive_error_string(disk));
		goto out;
	}
	size_t dl = strlen(dir);
	char *buf = malloc(1 << 20);
	for (;;) {
		struct archive_entry *e = archive_entry_new();
		int r = archive_read_next_header2(disk, e);
		if (r == ARCHIVE_EOF) {
			archive_entry_free(e);
			break;
		}
		if (r < ARCHIVE_WARN) {
			rc = ctl_fail("archive '%s': %s", dir, archive_error_string(disk));
			archive_entry_free(e);
			break;
		}
		archive_read_disk_descend(disk);
		const char *name = archive_entry_pathname(e);
		const char *rel = name + (strncmp(name, dir, dl) ? 0 : dl);
		while (*rel == '/')
			rel++;
		if (!*rel) {
			archive_entry_free(e);
			continue;
		}
		archive_entry_copy_pathname(e, rel);
		archive_write_header(out, e);
		if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
			ssize_t n;
			while (buf && (n = archive_read_data(disk, buf, 1 << 20)) > 0)
				archive_write_data(out, buf, (size_t)n);
		}
		archive_entry_free(e);
	}
	free(buf);
out:
	archive_write_close(out);
	archive_write_free(out);
	archive_read_close(disk);
	archive_read_free(disk);
	return rc;
}

/* ---- the chunked path: base64 in JSON, for when no descriptor can be
 * passed (a client on the far side of a proxy); a few requests in flight. */

#define CHUNK_BYTES (4 << 20)
#define CHUNK_WINDOW 4

static int ensure_connected(struct ctl *ctl)
{
	sbx_error *err = NULL;
	if (ctl->connected)
		return 0;
	if (sbx_client_connect(&ctl->client, ctl->socket, &err) < 0) {
		ctl_fail("%s (is sandboxd running? set SANDBOXD_SOCKET or --socket)", err->msg);
		sbx_error_free(err);
		return -1;
	}
	ctl->connected = true;
	return 0;
}

/* The next reply; its result, or NULL after printing its error. */
static yajl_val next_result(struct ctl *ctl, yajl_val *root)
{
	sbx_error *err = NULL;
	*root = sbx_client_next(&ctl->client, &err);
	if (!*root) {
		ctl_fail("%s", err && err->msg ? err->msg : "connection lost");
		sbx_error_free(err);
		return NULL;
	}
	yajl_val e = sbx_json_get(*root, "error");
	if (e) {
		ctl_fail("%s", ctl_str(e, "message"));
		return NULL;
	}
	return sbx_json_get(*root, "result");
}

/* Each chunk's request is built in one buffer reused for the whole copy:
 * base64 encoded straight into it and sent from there with one writev. */
static int upload_chunked(struct ctl *ctl, const char *sandbox, int fd, const char *path, const char *mode)
{
	if (ensure_connected(ctl) < 0)
		return CTL_EXIT_FAIL;
	char *buf = malloc(CHUNK_BYTES);
	char *b64 = malloc(SBX_BASE64_ENCODED_LEN(CHUNK_BYTES));
	if (!buf || !b64) {
		free(buf);
		free(b64);
		return ctl_fail("out of memory");
	}
	int inflight = 0, rc = 0;
	for (int64_t off = 0;; off += CHUNK_BYTES) {
		ssize_t n = sbx_read_all(fd, buf, CHUNK_BYTES);
		if (n < 0) {
			rc = ctl_fail("read: %s", strerror(errno));
			break;
		}
		if (n == 0 && off > 0)
			break;
		_cleanup_gen_ yajl_gen g = params_begin(sandbox);
		sbx_gen_kv_str(g, "path", path);
		sbx_gen_kv_int(g, "offset", off);
		sbx_gen_kv_bool(g, "truncate", off == 0);
		sbx_gen_kv_str(g, "encoding", "base64");
		if (mode)
			sbx_gen_kv_str(g, "mode", mode);
		const unsigned char *head;
		size_t hl;
		yajl_gen_get_buf(g, &head, &hl);
		size_t bl = sbx_base64_encode_into(buf, (size_t)n, b64);
		/* base64 needs no JSON escaping: sent as it is. */
		struct iovec parts[4] = {
			{ .iov_base = (void *)head, .iov_len = hl },
			{ .iov_base = (void *)",\"data\":\"", .iov_len = 9 },
			{ .iov_base = b64, .iov_len = bl },
			{ .iov_base = (void *)"\"}", .iov_len = 2 },
		};
		sbx_error *err = NULL;
		int64_t id = sbx_client_send_parts(&ctl->client, "fs.write", parts, 4, &err);
		if (id < 0) {
			rc = ctl_fail("%s", err && err->msg ? err->msg : "send failed");
			sbx_error_free(err);
			break;
		}
		inflight++;
		/* The first chunk truncates: it must land before the others. */
		while (inflight > 0 && (off == 0 || inflight >= CHUNK_WINDOW)) {
			_cleanup_json_ yajl_val root = NULL;
			inflight--;
			if (!next_result(ctl, &root)) {
				rc = CTL_EXIT_FAIL;
				break;
			}
		}
		if (rc || n < CHUNK_BYTES)
			break;
	}
	while (rc == 0 && inflight-- > 0) {
		_cleanup_json_ yajl_val root = NULL;
		if (!next_result(ctl, &root))
			rc = CTL_EXIT_FAIL;
	}
	free(buf);
	free(b64);
	return rc;
}

static int pwrite_all(int fd, const char *p, size_t len, int64_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

static int download_chunked(struct ctl *ctl, const char *sandbox, const char *path, int64_t size, int fd)
{
	if (ensure_connected(ctl) < 0)
		return CTL_EXIT_FAIL;
	int64_t next = 0, done = 0;
	int inflight = 0, rc = 0;
	while (rc == 0 && (next < size || inflight > 0)) {
		while (next < size && inflight < CHUNK_WINDOW) {
			_cleanup_gen_ yajl_gen g = params_begin(sandbox);
			sbx_gen_kv_str(g, "path", path);
			sbx_gen_kv_int(g, "offset", next);
			sbx_gen_kv_int(g, "length", CHUNK_BYTES);
			sbx_gen_kv_str(g, "encoding", "base64");
			yajl_gen_map_close(g);
			const unsigned char *t;
			size_t tl;
			yajl_gen_get_buf(g, &t, &tl);
			struct iovec part = { .iov_base = (void *)t, .iov_len = tl };
			sbx_error *err = NULL;
			if (sbx_client_send_parts(&ctl->client, "fs.read", &part, 1, &err) < 0) {
				rc = ctl_fail("%s", err && err->msg ? err->msg : "send failed");
				sbx_error_free(err);
				break;
			}
			next += CHUNK_BYTES;
			inflight++;
		}
		if (rc || inflight == 0)
			break;
		/* The chunk's base64 is decoded where it was received. */
		sbx_error *err = NULL;
		char *bulk = NULL;
		size_t bl = 0;
		_cleanup_json_ yajl_val root = sbx_client_next_bulk(&ctl->client, "result", "data", &bulk, &bl, &err);
		inflight--;
		if (!root) {
			rc = ctl_fail("%s", err && err->msg ? err->msg : "connection lost");
			sbx_error_free(err);
			break;
		}
		yajl_val e = sbx_json_get(root, "error");
		if (e) {
			rc = ctl_fail("%s", ctl_str(e, "message"));
			break;
		}
		yajl_val res = sbx_json_get(root, "result");
		yajl_val data = res ? sbx_json_get(res, "data") : NULL;
		size_t rl = 0;
		int dr = -1;
		if (bulk) {
			dr = sbx_base64_decode_into(bulk, bl, bulk, &rl);
		} else if (data && YAJL_IS_STRING(data)) {
			/* A short chunk came whole in the tree. */
			char *s = YAJL_GET_STRING(data);
			dr = sbx_base64_decode_into(s, strlen(s), s, &rl);
			bulk = s;
		}
		if (dr < 0) {
			rc = ctl_fail("bad chunk from the daemon");
			break;
		}
		/* Replies may come in any order: each lands at its own offset. */
		if (pwrite_all(fd, bulk, rl, ctl_int(res, "offset", 0)) < 0) {
			rc = ctl_fail("write: %s", strerror(errno));
			break;
		}
		done += (int64_t)rl;
	}
	while (inflight-- > 0) {
		_cleanup_json_ yajl_val root = NULL;
		next_result(ctl, &root);
	}
	if (rc == 0 && ftruncate(fd, done) < 0)
		rc = ctl_fail("truncate: %s", strerror(errno));
	return rc;
}

/* Run fn(fd, dir) in a child on one end of a pipe while the daemon works
 * on the other end; returns the other end. */
static pid_t tar_child(int (*fn)(int, const char *), const char *dir, bool child_reads, int *other)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(child_reads ? p[1] : p[0]);
		_exit(fn(child_reads ? p[0] : p[1], dir) ? 1 : 0);
	}
	close(child_reads ? p[0] : p[1]);
	*other = child_reads ? p[1] : p[0];
	return pid;
}

static int wait_child(pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : CTL_EXIT_FAIL;
}

static bool cp_chunked;

static int cp_from_sandbox(struct ctl *ctl, const char *sandbox, const char *src, const char *dst)
{
	yajl_val info;
	int code;
	_cleanup_json_ yajl_val root = remote_stat(ctl, sandbox, src, &info, &code);
	if (!root)
		return code == SBX_ERR_NOT_FOUND ? ctl_fail("%s:%s: no such file or directory", sandbox, src)
						 : CTL_EXIT_FAIL;
	const char *type = ctl_str(info, "type");
	struct stat lst;
	bool dst_dir = stat(dst, &lst) == 0 && S_ISDIR(lst.st_mode);
	char target[PATH_MAX];
	snprintf(target, sizeof(target), "%s%s%s", dst, dst_dir ? "/" : "", dst_dir ? base_name(src) : "");
	_cleanup_gen_ yajl_gen g = params_begin(sandbox);
	sbx_gen_kv_str(g, "path", src);
	sbx_gen_kv_bool(g, "fd", true);
	yajl_gen_map_close(g);
	yajl_val res;
	if (!strcmp(type, "dir")) {
		int wfd = -1;
		pid_t pid = tar_child(untar_local, target, true, &wfd);
		if (pid < 0)
			return ctl_fail("fork: %s", strerror(errno));
		_cleanup_json_ yajl_val r = fs_call(ctl, "fs.archive", g, wfd, &res, false, NULL);
		close(wfd);
		int rc = wait_child(pid);
		return r ? rc : CTL_EXIT_FAIL;
	}
	_cleanup_close_ int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				      (mode_t)(ctl_int(info, "mode", 0644) & 0777));
	if (fd < 0)
		return ctl_fail("open '%s': %s", target, strerror(errno));
	if (cp_chunked)
		return download_chunked(ctl, sandbox, ctl_str(info, "path"), ctl_int(info, "size", 0), fd);
	_cleanup_json_ yajl_val r = fs_call(ctl, "fs.read", g, fd, &res, false, NULL);
	return r ? 0 : CTL_EXIT_FAIL;
}

static int cp_to_sandbox(struct ctl *ctl, const char *src, const char *sandbox, const char *dst)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return ctl_fail("'%s': %s", src, strerror(errno));
	yajl_val info;
	int code;
	_cleanup_json_ yajl_val root = remote_stat(ctl, sandbox, dst, &info, &code);
	if (!root && code != SBX_ERR_NOT_FOUND)
		return CTL_EXIT_FAIL;
	bool dst_dir = root && !strcmp(ctl_str(info, "type"), "dir");
	_cleanup_free_ char *target = NULL;
	if (asprintf(&target, "%s%s%s", dst, dst_dir ? "/" : "", dst_dir ? base_name(src) : "") < 0)
		return ctl_fail("out of memory");
	_cleanup_gen_ yajl_gen g = params_begin(sandbox);
	sbx_gen_kv_str(g, "path", target);
	sbx_gen_kv_bool(g, "fd", true);
	yajl_val res;
	if (S_ISDIR(st.st_mode)) {
		yajl_gen_map_close(g);
		int rfd = -1;
		pid_t pid = tar_child(tar_local, src, false, &rfd);
		if (pid < 0)
			return ctl_fail("fork: %s", strerror(errno));
		_cleanup_json_ yajl_val r = fs_call(ctl, "fs.extract", g, rfd, &res, false, NULL);
		close(rfd);
		int rc = wait_child(pid);
		return r ? rc : CTL_EXIT_FAIL;
	}
	if (!S_ISREG(st.st_mode))
		return ctl_fail("'%s' is neither a regular file nor a directory", src);
	char mode[8];
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
	sbx_gen_kv_str(g, "mode", mode);
	yajl_gen_map_close(g);
	_cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ctl_fail("open '%s': %s", src, strerror(errno));
	if (cp_chunked)
		return upload_chunked(ctl, sandbox, fd, target, mode);
	_cleanup_json_ yajl_val r = fs_call(ctl, "fs.write", g, fd, &res, false, NULL);
	return r ? 0 : CTL_EXIT_FAIL;
}

int cmd_cp(struct ctl *ctl, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cp_usage(stdout);
	if (argc > 1 && !strcmp(argv[1], "--chunked")) {
		cp_chunked = true;
		argc--;
		argv++;
	}
	if (argc != 3)
		return ctl_usage_error("cp", "cp takes SRC and DST");
	struct cp_end s, d;
	cp_parse(argv[1], &s);
	cp_parse(argv[2], &d);
	if (!!s.sandbox == !!d.sandbox)
		return ctl_usage_error("cp", "exactly one of SRC and DST must be SANDBOX:PATH");
	if (!*s.path || !*d.path)
		return ctl_usage_error("cp", "empty path");
	if (s.sandbox)
		return cp_from_sandbox(ctl, s.sandbox, s.path, d.path);
	return cp_to_sandbox(ctl, s.path, d.sandbox, d.path);
}
