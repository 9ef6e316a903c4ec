/* The layer store: unpacking, digests, whiteouts, hostile entries,
 * references, concurrent puts, and a real overlay mount of stored layers. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "digest.h"
#include "json.h"
#include "layerfix.h"
#include "layers.h"
#include "unit.h"
#include "util.h"

static char dir[PATH_MAX];
static struct sbx_layer_store *store;

static void setup(void)
{
	unit_mkdtemp(dir, "layers");
	char sp[PATH_MAX + 16];
	snprintf(sp, sizeof(sp), "%s/store", dir);
	sbx_error *err = NULL;
	ck_assert_msg(sbx_layer_store_open(sp, &store, &err) == 0, "%s", err ? err->msg : "");
}

static void teardown(void)
{
	sbx_layer_store_close(store);
	store = NULL;
	unit_rm_rf(dir);
}

static const char *path_in(const char *name)
{
	static char p[4][PATH_MAX + 64];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void file_digest(const char *path, char out[SBX_DIGEST_LEN])
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	char hex[65] = "";
	ck_assert_int_eq(fscanf(f, "%64s", hex), 1);
	pclose(f);
	snprintf(out, SBX_DIGEST_LEN, "sha256:%s", hex);
}

static int sh_chown(const char *path, unsigned id)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "chown -hR %u:%u '%s'", id, id, path);
	return system(cmd);
}

/* Put the tar at path as owner; returns the result and fills info/err. */
static int put(const char *path, const char *owner, const struct sbx_layer_put_opts *opts, struct sbx_layer_info *info,
	       sbx_error **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	int r = sbx_layer_put_fd(store, owner, fd, opts, info, err);
	close(fd);
	return r;
}

static int count_entries(const char *rel)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/store/%s", dir, rel);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Nothing new: no layer and nothing left in tmp/. */
static void assert_store_empty(void)
{
	ck_assert_int_eq(count_entries("layers/sha256"), 0);
	ck_assert_int_eq(count_entries("tmp"), 0);
}

static int tree_fd(const char *diff_id)
{
	_cleanup_free_ char *p = sbx_layer_tree_path(store, diff_id);
	ck_assert_ptr_nonnull(p);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static const struct fix_entry basic[] = {
	{ FIX_DIR, "./", NULL, 0755, 0, 0, NULL, NULL },
	{ FIX_DIR, "etc/", NULL, 0755, 0, 0, NULL, NULL },
	{ FIX_FILE, "etc/hostname", "layer\n", 0644, 0, 0, "user.note", "kept" },
	{ FIX_FILE, "usr/bin/su", "#!/bin/sh\n", 04755, 0, 0, NULL, NULL },
	{ FIX_FILE, "home/u/file", "mine", 0600, 1000, 1000, "trusted.overlay.redirect", "/etc" },
	{ FIX_LINK, "etc/localtime", "/usr/share/zoneinfo/UTC", 0, 0, 0, NULL, NULL },
	{ FIX_HARD, "usr/bin/su2", "usr/bin/su", 0, 0, 0, NULL, NULL },
	{ FIX_FIFO, "run/fifo", NULL, 0620, 0, 0, NULL, NULL },
	{ FIX_DIR, "opt/", NULL, 01777, 0, 0, NULL, NULL },
};

START_TEST(digest_known_vector)
{
	char d[SBX_DIGEST_LEN];
	sbx_sha256_buf("abc", 3, d);
	ck_assert_str_eq(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert(sbx_digest_valid(d));
	ck_assert(!sbx_digest_valid("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	ck_assert(!sbx_digest_valid("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	ck_assert(!sbx_digest_valid("sha256:ba78"));
	sbx_error *err = NULL;
	ck_assert_int_lt(sbx_digest_check("sha512:00", "x", &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_UNSUPPORTED);
	sbx_error_free(err);
}
END_TEST

START_TEST(put_plain_tar_keeps_metadata)
{
	const char *tar = path_in("basic.tar");
	fix_write_tar(tar, "none", basic, SBX_ARRAY_SIZE(basic));
	umask(077); /* a daemon's strict umask changes nothing in a layer */
	char want[SBX_DIGEST_LEN];
	file_digest(tar, want);
	struct sbx_layer_info info;
	sbx_error *err = NULL;
	struct sbx_layer_put_opts opts = { .digest = want, .diff_id = NULL, .size = -1, .keep = SBX_LAYER_KEEP_AS_IS };
	ck_assert_msg(put(tar, "img1", &opts, &info, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(info.diff_id, want);
	ck_assert_str_eq(info.digest, want);
	ck_assert_str_eq(info.media_type, SBX_MEDIA_LAYER_TAR);
	ck_assert(!info.existed);

	int t = tree_fd(info.diff_id);
	ck_assert_str_eq(unit_read(t, "etc/hostname"), "layer\n");
	struct stat st;
	ck_assert_int_eq(fstatat(t, "usr/bin/su", &st, 0), 0);
	ck_assert_int_eq(st.st_mode & 07777, 04755);
	struct stat st2;
	ck_assert_int_eq(fstatat(t, "usr/bin/su2", &st2, 0), 0);
	ck_assert_int_eq(st.st_ino, st2.st_ino);
	ck_assert_int_eq(fstatat(t, "home/u/file", &st, 0), 0);
	ck_assert_int_eq(st.st_uid, 1000);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1700000000);
	/* Directories made for a missing parent are 0755 root. */
	ck_assert_int_eq(fstatat(t, "home", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0755);
	ck_assert_int_eq(fstatat(t, "opt", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(st.st_mode & 07777, 01777);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1700000000);
	char target[256];
	ssize_t n = readlinkat(t, "etc/localtime", target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
	ck_assert_str_eq(target, "/usr/share/zoneinfo/UTC");
	ck_assert_int_eq(fstatat(t, "run/fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0620);

	/* user.* kept; trusted.* never set from a layer. */
	char p[PATH_MAX + 64], v[64];
	_cleanup_free_ char *tp = sbx_layer_tree_path(store, info.diff_id);
	snprintf(p, sizeof(p), "%s/etc/hostname", tp);
	n = lgetxattr(p, "user.note", v, sizeof(v));
	if (n >= 0 || errno != ENOTSUP) {
		ck_assert_int_eq(n, 4);
		ck_assert(!memcmp(v, "kept", 4));
	}
	snprintf(p, sizeof(p), "%s/home/u/file", tp);
	ck_assert_int_lt(lgetxattr(p, "trusted.overlay.redirect", v, sizeof(v)), 0);
	close(t);

	char **owners = NULL;
	ck_assert_int_eq(sbx_layer_owners(store, info.diff_id, &owners, &err), 1);
	ck_assert_str_eq(owners[0], "img1");
	sbx_strv_free(owners);
	ck_assert_int_eq(count_entries("tmp"), 0);
}
END_TEST

/* One tar, three compressions: one layer, with one diff_id, stored once. */
START_TEST(put_compressed_same_diff_id)
{
	const char *plain = path_in("b.tar"), *gz = path_in("b.tar.gz"), *zs = path_in("b.tar.zst");
	fix_write_tar(plain, "none", basic, SBX_ARRAY_SIZE(basic));
	char cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "gzip -c '%s' > '%s' && zstd -q -c '%s' > '%s'", plain, gz, plain, zs);
	ck_assert_int_eq(system(cmd), 0);
	char d_plain[SBX_DIGEST_LEN], d_gz[SBX_DIGEST_LEN];
	file_digest(plain, d_plain);
	file_digest(gz, d_gz);

	struct sbx_layer_info a, b, c;
	sbx_error *err = NULL;
	struct sbx_layer_put_opts opts = { .digest = d_gz, .size = -1 };
	ck_assert_msg(put(gz, "one", &opts, &a, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(a.diff_id, d_plain);
	ck_assert_str_eq(a.digest, d_gz);
	ck_assert_str_eq(a.media_type, SBX_MEDIA_LAYER_GZIP);
	ck_assert(!a.existed);
	ck_assert_msg(put(zs, "two", NULL, &b, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(b.diff_id, d_plain);
	ck_assert(b.existed);
	/* The first blob stays the one kept. */
	ck_assert_str_eq(b.digest, d_gz);
	/* Known diff_id: taken from the store without reading. */
	struct sbx_layer_put_opts known = { .diff_id = d_plain, .size = -1 };
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(sbx_layer_put_fd(store, "three", devnull, &known, &c, &err), 0);
	close(devnull);
	ck_assert(c.existed);
	ck_assert_int_eq(count_entries("layers/sha256"), 1);
	char **owners = NULL;
	ck_assert_int_eq(sbx_layer_owners(store, d_plain, &owners, &err), 3);
	sbx_strv_free(owners);

	/* The kept blob is the gzip file itself. */
	int bfd = sbx_layer_open_blob(store, d_plain, &err);
	ck_assert_int_ge(bfd, 0);
	struct stat st, gst;
	ck_assert_int_eq(fstat(bfd, &st), 0);
	ck_assert_int_eq(stat(gz, &gst), 0);
	ck_assert_int_eq(st.st_size, gst.st_size);
	close(bfd);

	/* References: the layer goes with the last one. */
	ck_assert_int_eq(sbx_layer_unref(store, d_plain, "one", &err), 0);
	ck_assert_int_eq(sbx_layer_unref(store, d_plain, "two", &err), 0);
	ck_assert(sbx_layer_exists(store, d_plain));
	ck_assert_int_eq(sbx_layer_unref(store, d_plain, "three", &err), 1);
	ck_assert(!sbx_layer_exists(store, d_plain));
	assert_store_empty();
}
END_TEST

/* A plain tar kept for export is kept zstd-compressed, and that blob
 * unpacks to the same layer. */
START_TEST(put_plain_kept_compressed)
{
	const char *plain = path_in("c.tar");
	fix_write_tar(plain, "none", basic, SBX_ARRAY_SIZE(basic));
	char d_plain[SBX_DIGEST_LEN];
	file_digest(plain, d_plain);
	struct sbx_layer_info info;
	sbx_error *err = NULL;
	struct sbx_layer_put_opts opts = { .size = -1, .keep = SBX_LAYER_KEEP_COMPRESSED };
	ck_assert_msg(put(plain, "x", &opts, &info, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(info.diff_id, d_plain);
	ck_assert_str_eq(info.media_type, SBX_MEDIA_LAYER_ZSTD);
	ck_assert_str_ne(info.digest, d_plain);
	struct stat pst;
	ck_assert_int_eq(stat(plain, &pst), 0);
	ck_assert_int_lt(info.blob_size, pst.st_size);

	int bfd = sbx_layer_open_blob(store, info.diff_id, &err);
	ck_assert_int_ge(bfd, 0);
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "zstd -q -d -c > '%s'", path_in("again.tar"));
	FILE *z = popen(cmd, "w");
	char buf[8192];
	ssize_t n;
	while ((n = read(bfd, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(fwrite(buf, 1, (size_t)n, z), (size_t)n);
	close(bfd);
	ck_assert_int_eq(pclose(z), 0);
	char d_again[SBX_DIGEST_LEN], d_blob[SBX_DIGEST_LEN];
	file_digest(path_in("again.tar"), d_again);
	ck_assert_str_eq(d_again, d_plain);
	char bp[PATH_MAX + 128];
	snprintf(bp, sizeof(bp), "%s/store/layers/sha256/%s/blob", dir, sbx_digest_hex(info.diff_id));
	file_digest(bp, d_blob);
	ck_assert_str_eq(d_blob, info.digest);

	/* The layer's record survives a reopen of the store. */
	struct sbx_layer_info again;
	ck_assert_int_eq(sbx_layer_get_info(store, info.diff_id, &again, &err), 0);
	ck_assert_str_eq(again.digest, info.digest);
	ck_assert_int_eq(again.blob_size, info.blob_size);
	ck_assert_int_eq(again.size, info.size);
}
END_TEST

START_TEST(whiteouts_in_overlay_form)
{
	static const struct fix_entry e[] = {
		{ FIX_FILE, ".wh.gone", "", 0, 0, 0, NULL, NULL },
		{ FIX_DIR, "d/", NULL, 0750, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/.wh..wh..opq", "", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/new", "n", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "e/.wh..wh..opq", "", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "f/.wh..wh.plnk", "", 0, 0, 0, NULL, NULL },
	};
	const char *tar = path_in("wh.tar");
	fix_write_tar(tar, "gzip", e, SBX_ARRAY_SIZE(e));
	struct sbx_layer_info info;
	sbx_error *err = NULL;
	ck_assert_msg(put(tar, "w", NULL, &info, &err) == 0, "%s", err ? err->msg : "");
	int t = tree_fd(info.diff_id);
	struct stat st;
	ck_assert_int_eq(fstatat(t, "gone", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_int_eq(st.st_rdev, makedev(0, 0));
	ck_assert(!unit_exists(t, ".wh.gone"));
	ck_assert(!unit_exists(t, "d/.wh..wh..opq"));
	ck_assert(!unit_exists(t, "f/.wh..wh.plnk"));
	ck_assert_str_eq(unit_read(t, "d/new"), "n");
	_cleanup_free_ char *tp = sbx_layer_tree_path(store, info.diff_id);
	char p[PATH_MAX + 64], v[8];
	snprintf(p, sizeof(p), "%s/d", tp);
	ck_assert_int_eq(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
	ck_assert_int_eq(v[0], 'y');
	ck_assert_int_eq(fstatat(t, "d", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0750);
	snprintf(p, sizeof(p), "%s/e", tp);
	ck_assert_int_eq(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
	close(t);
}
END_TEST

/* Each hostile layer is refused with a message naming what is wrong, and
 * leaves the store as it was. */
static void assert_refused(const struct fix_entry *e, size_t n, const char *filter, const char *needle)
{
	const char *tar = path_in("bad.tar");
	unlink(tar);
	fix_write_tar(tar, filter, e, n);
	sbx_error *err = NULL;
	ck_assert_int_lt(put(tar, "bad", NULL, NULL, &err), 0);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err->msg, needle), "'%s' not in '%s'", needle, err->msg);
	sbx_error_free(err);
	assert_store_empty();
}

START_TEST(hostile_dotdot)
{
	static const struct fix_entry e[] = { { FIX_FILE, "a/../../evil", "x", 0, 0, 0, NULL, NULL } };
	assert_refused(e, 1, "none", "'..'");
	ck_assert(!unit_exists(AT_FDCWD, path_in("evil")));
}
END_TEST

START_TEST(hostile_through_symlink)
{
	char target[PATH_MAX + 16];
	snprintf(target, sizeof(target), "%s/outside", dir);
	ck_assert_int_eq(mkdir(target, 0755), 0);
	const struct fix_entry e[] = {
		{ FIX_LINK, "lnk", target, 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "lnk/planted", "x", 0, 0, 0, NULL, NULL },
	};
	assert_refused(e, 2, "gzip", "through a symlink");
	ck_assert(!unit_exists(AT_FDCWD, path_in("outside/planted")));
	/* A relative one that climbs out, too. */
	const struct fix_entry r[] = {
		{ FIX_LINK, "up", "../../../../../../..", 0, 0, 0, NULL, NULL },
		{ FIX_DIR, "up/tmp/x/", NULL, 0, 0, 0, NULL, NULL },
	};
	assert_refused(r, 2, "none", "through a symlink");
}
END_TEST

START_TEST(hostile_hardlinks)
{
	const struct fix_entry out[] = { { FIX_HARD, "pw", "../../../../etc/passwd", 0, 0, 0, NULL, NULL } };
	assert_refused(out, 1, "none", "outside the layer");
	const struct fix_entry abs[] = { { FIX_HARD, "pw", "/etc/passwd", 0, 0, 0, NULL, NULL } };
	assert_refused(abs, 1, "none", "not in the layer");
	const struct fix_entry via[] = {
		{ FIX_LINK, "etc", "/etc", 0, 0, 0, NULL, NULL },
		{ FIX_HARD, "pw", "etc/passwd", 0, 0, 0, NULL, NULL },
	};
	assert_refused(via, 2, "none", "through a symlink");
}
END_TEST

START_TEST(hostile_devices)
{
	const struct fix_entry c[] = { { FIX_CHR, "dev/sda", NULL, 0, 0, 0, NULL, NULL } };
	assert_refused(c, 1, "none", "device node");
	const struct fix_entry b[] = { { FIX_BLK, "dev/sda", NULL, 0, 0, 0, NULL, NULL } };
	assert_refused(b, 1, "zstd", "block device node");
	const struct fix_entry w[] = { { FIX_FILE, "d/.wh...", "", 0, 0, 0, NULL, NULL } };
	assert_refused(w, 1, "none", "whiteout that names no file");
}
END_TEST

static void write_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

START_TEST(broken_blobs)
{
	const char *gz = path_in("ok.tar.gz");
	fix_write_tar(gz, "gzip", basic, SBX_ARRAY_SIZE(basic));
	FILE *f = fopen(gz, "rb");
	static char buf[1 << 16];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	ck_assert_int_gt(len, 100);

	const char *bad = path_in("bad.blob");
	sbx_error *err = NULL;
	/* Truncated. */
	write_bytes(bad, buf, len / 2);
	ck_assert_int_lt(put(bad, "t", NULL, NULL, &err), 0);
	ck_assert_msg(strstr(err->msg, "read") != NULL, "%s", err->msg);
	sbx_error_free(err);
	err = NULL;
	assert_store_empty();
	/* Corrupted in the middle. */
	for (size_t i = len / 3; i < len / 3 + 16; i++)
		buf[i] ^= 0x5a;
	write_bytes(bad, buf, len);
	ck_assert_int_lt(put(bad, "t", NULL, NULL, &err), 0);
	sbx_error_free(err);
	err = NULL;
	assert_store_empty();
	/* Not a tar at all. */
	write_bytes(bad, "hello, this is not an archive\n", 30);
	ck_assert_int_lt(put(bad, "t", NULL, NULL, &err), 0);
	ck_assert_msg(strstr(err->msg, "tar") != NULL, "%s", err->msg);
	sbx_error_free(err);
	err = NULL;
	/* Empty. */
	write_bytes(bad, "", 0);
	ck_assert_int_lt(put(bad, "t", NULL, NULL, &err), 0);
	sbx_error_free(err);
	err = NULL;
	assert_store_empty();
}
END_TEST

START_TEST(digest_mismatch)
{
	const char *tar = path_in("m.tar.gz");
	fix_write_tar(tar, "gzip", basic, SBX_ARRAY_SIZE(basic));
	static const char wrong[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	sbx_error *err = NULL;
	struct sbx_layer_put_opts o1 = { .digest = wrong, .size = -1 };
	ck_assert_int_lt(put(tar, "m", &o1, NULL, &err), 0);
	ck_assert_msg(strstr(err->msg, "digest mismatch") && strstr(err->msg, wrong), "%s", err->msg);
	sbx_error_free(err);
	err = NULL;
	assert_store_empty();
	struct sbx_layer_put_opts o2 = { .diff_id = wrong, .size = -1 };
	ck_assert_int_lt(put(tar, "m", &o2, NULL, &err), 0);
	ck_assert_msg(strstr(err->msg, "diff_id mismatch"), "%s", err->msg);
	sbx_error_free(err);
	err = NULL;
	assert_store_empty();
	struct sbx_layer_put_opts o3 = { .size = 3 };
	ck_assert_int_lt(put(tar, "m", &o3, NULL, &err), 0);
	ck_assert_msg(strstr(err->msg, "bytes long"), "%s", err->msg);
	sbx_error_free(err);
	assert_store_empty();
}
END_TEST

/* Several processes put one layer at once: one copy, every reference. */
START_TEST(concurrent_puts_store_once)
{
	const char *tar = path_in("cc.tar.gz");
	fix_write_tar(tar, "gzip", basic, SBX_ARRAY_SIZE(basic));
	enum { N = 4 };
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			char owner[16];
			snprintf(owner, sizeof(owner), "c%d", i);
			sbx_error *err = NULL;
			int fd = open(tar, O_RDONLY | O_CLOEXEC);
			_exit(fd >= 0 && sbx_layer_put_fd(store, owner, fd, NULL, NULL, &err) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(count_entries("layers/sha256"), 1);
	ck_assert_int_eq(count_entries("tmp"), 0);
	char **ids = NULL;
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_layer_list(store, &ids, &err), 1);
	char **owners = NULL;
	ck_assert_int_eq(sbx_layer_owners(store, ids[0], &owners, &err), N);
	sbx_strv_free(owners);
	ck_assert_int_eq(sbx_layer_release_owner(store, "c0", &err), 0);
	ck_assert_int_eq(sbx_layer_owners(store, ids[0], &owners, &err), N - 1);
	sbx_strv_free(owners);
	sbx_strv_free(ids);
}
END_TEST

START_TEST(recover_clears_leftovers)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/store/tmp/put-deadbeef0000", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	const char *tar = path_in("r.tar");
	fix_write_tar(tar, "none", basic, SBX_ARRAY_SIZE(basic));
	struct sbx_layer_info info;
	sbx_error *err = NULL;
	ck_assert_int_eq(put(tar, "r", NULL, &info, &err), 0);
	/* A layer whose last reference went with a crash. */
	snprintf(p, sizeof(p), "%s/store/layers/sha256/%s/refs/r", dir, sbx_digest_hex(info.diff_id));
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(sbx_layer_store_recover(store, &err), 0);
	assert_store_empty();
}
END_TEST

/* Two stored layers stacked by a real overlay mount: the upper one's
 * whiteout hides a file, its opaque directory hides the lower one's
 * contents. Needs root and overlayfs. */
START_TEST(overlay_sees_whiteouts)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP overlay_sees_whiteouts: needs root\n");
		return;
	}
	static const struct fix_entry lower[] = {
		{ FIX_FILE, "a", "a", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "keep", "k", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/x", "x", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/y", "y", 0, 0, 0, NULL, NULL },
	};
	static const struct fix_entry upper[] = {
		{ FIX_FILE, ".wh.a", "", 0, 0, 0, NULL, NULL },
		{ FIX_DIR, "d/", NULL, 0755, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/.wh..wh..opq", "", 0, 0, 0, NULL, NULL },
		{ FIX_FILE, "d/z", "z", 0, 0, 0, NULL, NULL },
	};
	fix_write_tar(path_in("lo.tar"), "none", lower, SBX_ARRAY_SIZE(lower));
	fix_write_tar(path_in("up.tar"), "gzip", upper, SBX_ARRAY_SIZE(upper));
	struct sbx_layer_info l, u;
	sbx_error *err = NULL;
	ck_assert_int_eq(put(path_in("lo.tar"), "o", NULL, &l, &err), 0);
	ck_assert_int_eq(put(path_in("up.tar"), "o", NULL, &u, &err), 0);
	_cleanup_free_ char *lp = sbx_layer_tree_path(store, l.diff_id);
	_cleanup_free_ char *up = sbx_layer_tree_path(store, u.diff_id);
	ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	const char *mnt = path_in("merged");
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	char opts[3 * PATH_MAX];
	snprintf(opts, sizeof(opts), "lowerdir=%s:%s", up, lp);
	if (mount("overlay", mnt, "overlay", MS_RDONLY, opts) < 0) {
		fprintf(stderr, "SKIP overlay_sees_whiteouts: overlay: %s\n", strerror(errno));
		return;
	}
	int m = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert(!unit_exists(m, "a"));
	ck_assert_str_eq(unit_read(m, "keep"), "k");
	ck_assert(!unit_exists(m, "d/x"));
	ck_assert(!unit_exists(m, "d/y"));
	ck_assert_str_eq(unit_read(m, "d/z"), "z");
	close(m);
	umount2(mnt, MNT_DETACH);
}
END_TEST

START_TEST(owner_and_digest_checked)
{
	sbx_error *err = NULL;
	ck_assert_int_lt(sbx_layer_put_fd(store, "../x", 0, NULL, NULL, &err), 0);
	ck_assert_int_eq(err->code, SBX_ERR_INVALID_PARAMS);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_lt(sbx_layer_ref(store, "sha256:abc", "x", NULL, &err), 0);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_lt(sbx_layer_ref(store,
				       "sha256:1111111111111111111111111111111111111111111111111111111111111111", "x",
				       NULL, &err),
			 0);
	ck_assert_int_eq(err->code, SBX_ERR_NOT_FOUND);
	sbx_error_free(err);
}
END_TEST

/* A sandbox's writable layer (overlay form, host ids) as a layer. */
START_TEST(tree_becomes_layer)
{
	enum { ID = 200000 };
	const char *up = path_in("upper");
	ck_assert_int_eq(mkdir(up, 0755), 0);
	int u = open(up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	unit_write(u, "a", "a");
	ck_assert_int_eq(mkdirat(u, "d", 0750), 0);
	unit_write(u, "d/z", "z");
	ck_assert_int_eq(mknodat(u, "gone", S_IFCHR, makedev(0, 0)), 0);
	unit_write(u, "h1", "hard");
	ck_assert_int_eq(linkat(u, "h1", u, "h2", 0), 0);
	ck_assert_int_eq(symlinkat("/usr/bin/x", u, "l"), 0);
	ck_assert_int_eq(mkfifoat(u, "fifo", 0640), 0);
	unit_write(u, "mine", "m");
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/d", up);
	ck_assert_int_eq(lsetxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
	/* Owners as the idmapped sandbox leaves them: host ids from ID. */
	ck_assert_int_eq(sh_chown(up, ID), 0);
	ck_assert_int_eq(fchownat(u, "mine", ID + 1000, ID + 1000, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(fchownat(u, "gone", 0, 0, AT_SYMLINK_NOFOLLOW), 0);

	struct sbx_layer_info info, again;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_layer_put_dir(store, "snap", u, ID, NULL, &info, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(info.media_type, SBX_MEDIA_LAYER_ZSTD);
	ck_assert_msg(sbx_layer_put_dir(store, "snap2", u, ID, NULL, &again, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(again.diff_id, info.diff_id);
	ck_assert(again.existed);
	ck_assert_int_eq(count_entries("tmp"), 0);

	int t = tree_fd(info.diff_id);
	struct stat st, st2;
	ck_assert_int_eq(fstatat(t, "gone", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	ck_assert_int_eq(fstatat(t, "a", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(st.st_uid, 0);
	ck_assert_int_eq(fstatat(t, "mine", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(st.st_uid, 1000);
	ck_assert_int_eq(fstatat(t, "h1", &st, 0), 0);
	ck_assert_int_eq(fstatat(t, "h2", &st2, 0), 0);
	ck_assert_int_eq(st.st_ino, st2.st_ino);
	ck_assert_int_eq(fstatat(t, "fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(fstatat(t, "d", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0750);
	ck_assert_str_eq(unit_read(t, "d/z"), "z");
	_cleanup_free_ char *tp = sbx_layer_tree_path(store, info.diff_id);
	char v[4];
	snprintf(p, sizeof(p), "%s/d", tp);
	ck_assert_int_eq(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
	close(t);

	/* The tar is the same byte for byte each time. */
	int o1 = open(path_in("t1.tar"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int o2 = open(path_in("t2.tar"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(sbx_layer_tar_dir(u, ID, o1, &err), 0);
	ck_assert_int_eq(sbx_layer_tar_dir(u, ID, o2, &err), 0);
	close(o1);
	close(o2);
	char d1[SBX_DIGEST_LEN], d2[SBX_DIGEST_LEN];
	file_digest(path_in("t1.tar"), d1);
	file_digest(path_in("t2.tar"), d2);
	ck_assert_str_eq(d1, d2);
	ck_assert_str_eq(d1, info.diff_id);

	/* Ids from outside the sandbox's range, and device nodes, are refused. */
	ck_assert_int_eq(fchownat(u, "a", 5, 5, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_lt(sbx_layer_put_dir(store, "bad", u, ID, NULL, NULL, &err), 0);
	ck_assert_msg(strstr(err->msg, "outside the sandbox's ids"), "%s", err->msg);
	sbx_error_free(err);
	err = NULL;
	ck_assert_int_eq(fchownat(u, "a", ID, ID, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(mknodat(u, "null", S_IFCHR | 0666, makedev(1, 3)), 0);
	ck_assert_int_eq(fchownat(u, "null", ID, ID, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_lt(sbx_layer_put_dir(store, "bad", u, ID, NULL, NULL, &err), 0);
	ck_assert_msg(strstr(err->msg, "device node"), "%s", err->msg);
	sbx_error_free(err);
	ck_assert_int_eq(count_entries("layers/sha256"), 1);
	ck_assert_int_eq(count_entries("tmp"), 0);
	close(u);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("layers");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, digest_known_vector);
	tcase_add_test(tc, put_plain_tar_keeps_metadata);
	tcase_add_test(tc, put_compressed_same_diff_id);
	tcase_add_test(tc, put_plain_kept_compressed);
	tcase_add_test(tc, whiteouts_in_overlay_form);
	tcase_add_test(tc, hostile_dotdot);
	tcase_add_test(tc, hostile_through_symlink);
	tcase_add_test(tc, hostile_hardlinks);
	tcase_add_test(tc, hostile_devices);
	tcase_add_test(tc, broken_blobs);
	tcase_add_test(tc, digest_mismatch);
	tcase_add_test(tc, concurrent_puts_store_once);
	tcase_add_test(tc, recover_clears_leftovers);
	tcase_add_test(tc, overlay_sees_whiteouts);
	tcase_add_test(tc, owner_and_digest_checked);
	tcase_add_test(tc, tree_becomes_layer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
