/* Images made by other tools: OCI layouts built with umoci (whiteouts and
 * an opaque directory across layers), docker save archives written by
 * skopeo, export read back by skopeo and umoci, and each kind of bad
 * input. Skipped (77) without root, umoci or skopeo. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digest.h"
#include "json.h"
#include "layerfix.h"
#include "layers.h"
#include "oci.h"
#include "unit.h"
#include "util.h"

static char fix[PATH_MAX]; /* made once: the layout L and archives */
static char dir[PATH_MAX];
static struct sbx_layer_store *store;

static const char *fp(const char *name)
{
	static char p[4][PATH_MAX + 64];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", fix, name);
	return p[i];
}

static const char *tp(const char *name)
{
	static char p[4][PATH_MAX + 64];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

/* L:base has a, keep, d/x, d/y; L:v2 adds a whiteout of /a, an opaque /d
 * holding z, and a config. Then the same image as docker archives. */
static int make_fixtures(void)
{
	return unit_sh("set -e; cd '%s'; exec >fixture.log 2>&1;"
		  "umoci init --layout L; umoci new --image L:base; umoci unpack --image L:base b1;"
		  "mkdir -p b1/rootfs/d b1/rootfs/usr/bin; echo a > b1/rootfs/a; echo k > b1/rootfs/keep;"
		  "echo x > b1/rootfs/d/x; echo y > b1/rootfs/d/y; echo s > b1/rootfs/usr/bin/suid;"
		  "chmod 4755 b1/rootfs/usr/bin/suid; umoci repack --image L:base b1;"
		  "umoci tag --image L:base v2; umoci insert --image L:v2 --whiteout /a;"
		  "mkdir src; echo z > src/z; umoci insert --image L:v2 --opaque src /d;"
		  "umoci config --image L:v2 --config.env FOO=bar --config.workingdir /work --config.user 1000:1000"
		  " --config.entrypoint /bin/sh --config.cmd -c --config.cmd 'echo hi' --config.exposedports 8080/tcp;"
		  "skopeo copy -q oci:L:v2 docker-archive:d.tar:img:v2;"
		  "gzip -c d.tar > d.tar.gz; zstd -q -c d.tar > d.tar.zst;"
		  "tar -C L -cf L.tar .",
		  fix);
}

static void setup(void)
{
	unit_mkdtemp(dir, "oci");
	sbx_error *err = NULL;
	ck_assert_msg(sbx_layer_store_open(tp("store"), &store, &err) == 0, "%s", err ? err->msg : "");
}

static void teardown(void)
{
	sbx_layer_store_close(store);
	store = NULL;
	unit_rm_rf(dir);
}

static int count_in(const char *rel)
{
	DIR *d = opendir(tp(rel));
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static void assert_store_empty(void)
{
	ck_assert_int_eq(count_in("store/layers/sha256"), 0);
	ck_assert_int_eq(count_in("store/tmp"), 0);
}

static struct sbx_oci_image *import(const char *path, const char *ref, const char *owner)
{
	struct sbx_image_import_opts opts = { .ref = ref };
	struct sbx_oci_image *img = NULL;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_image_import(store, owner, path, &opts, &img, &err) == 0, "import %s: %s", path,
		      err ? err->msg : "");
	return img;
}

/* Refused with needle in the message, and nothing new in the store. */
static void import_fails(const char *path, const char *ref, const char *needle)
{
	int before = count_in("store/layers/sha256");
	struct sbx_image_import_opts opts = { .ref = ref };
	struct sbx_oci_image *img = NULL;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_image_import(store, "bad", path, &opts, &img, &err) < 0, "%s imported", path);
	ck_assert_ptr_null(img);
	ck_assert_msg(strstr(err->msg, needle), "'%s' not in '%s'", needle, err->msg);
	sbx_error_free(err);
	ck_assert_int_eq(count_in("store/layers/sha256"), before);
	ck_assert_int_eq(count_in("store/tmp"), 0);
}

/* The merged view of an image's layers, read through a real overlay. */
static void assert_merged_view(const struct sbx_oci_image *img)
{
	_cleanup_strv_ char **lowers = sbx_oci_image_lowerdirs(store, img);
	ck_assert_ptr_nonnull(lowers);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(2);
		char opts[8192] = "lowerdir=";
		for (char **l = lowers; *l; l++) {
			strcat(opts, *l);
			if (l[1])
				strcat(opts, ":");
		}
		mkdir(tp("merged"), 0755);
		if (mount("overlay", tp("merged"), "overlay", MS_RDONLY, opts) < 0)
			_exit(3);
		int m = open(tp("merged"), O_RDONLY | O_DIRECTORY);
		struct stat st;
		int ok = !unit_exists(m, "a") && unit_exists(m, "keep") && !unit_exists(m, "d/x") &&
			 !unit_exists(m, "d/y") && unit_exists(m, "d/z") && fstatat(m, "usr/bin/suid", &st, 0) == 0 &&
			 (st.st_mode & 07777) == 04755;
		_exit(ok ? 0 : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "merged view wrong (status %d)", status);
}

static void manifest_digest_of(const char *layout, const char *ref, char out[SBX_DIGEST_LEN])
{
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/index.json", layout);
	char *text;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(sbx_read_file_at(fd, p, 1 << 20, &text, NULL, NULL), 0);
	close(fd);
	struct sbx_oci_descriptor d;
	ck_assert_int_eq(sbx_oci_parse_index(text, ref, &d, NULL, NULL), 0);
	free(text);
	snprintf(out, SBX_DIGEST_LEN, "%s", d.digest);
}

START_TEST(oci_layout_with_whiteouts)
{
	_cleanup_oci_image_ struct sbx_oci_image *img = import(fp("L"), "v2", "i1");
	ck_assert_int_eq(img->n_layers, 3);
	char want[SBX_DIGEST_LEN];
	manifest_digest_of(fp("L"), "v2", want);
	ck_assert_str_eq(img->manifest_digest, want);
	ck_assert_str_eq(img->names[0], "v2");
	const struct sbx_image_config *c = &img->config;
	ck_assert_str_eq(c->os, "linux");
	ck_assert_str_eq(c->architecture, "amd64");
	ck_assert_ptr_nonnull(c->env);
	int found = 0;
	for (char **e = c->env; *e; e++)
		found += !strcmp(*e, "FOO=bar");
	ck_assert_int_eq(found, 1);
	ck_assert_str_eq(c->working_dir, "/work");
	ck_assert_str_eq(c->user, "1000:1000");
	ck_assert_str_eq(c->entrypoint[0], "/bin/sh");
	ck_assert_ptr_null(c->entrypoint[1]);
	ck_assert_str_eq(c->cmd[0], "-c");
	ck_assert_str_eq(c->cmd[1], "echo hi");
	ck_assert_str_eq(c->exposed_ports[0], "8080/tcp");
	ck_assert_int_gt(img->size, 0);
	assert_merged_view(img);

	/* The record a daemon keeps reloads to the same image. */
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_oci_image_save(d, img, &err), 0);
	_cleanup_oci_image_ struct sbx_oci_image *again = NULL;
	ck_assert_int_eq(sbx_oci_image_load(d, &again, &err), 0);
	close(d);
	ck_assert_str_eq(again->manifest_digest, img->manifest_digest);
	ck_assert_str_eq(again->layers[2].diff_id, img->layers[2].diff_id);

	/* The same layout as a tar, gzip-compressed, is told from its content. */
	ck_assert_int_eq(unit_sh("gzip -c '%s' > '%s'", fp("L.tar"), tp("layout.bin")), 0);
	_cleanup_oci_image_ struct sbx_oci_image *fromtar = import(tp("layout.bin"), "v2", "i2");
	ck_assert_str_eq(fromtar->manifest_digest, img->manifest_digest);
	ck_assert_int_eq(count_in("store/layers/sha256"), 3);
	ck_assert_int_eq(count_in("store/tmp"), 0);
}
END_TEST

START_TEST(docker_archives)
{
	_cleanup_oci_image_ struct sbx_oci_image *oci = import(fp("L"), "v2", "o");
	static const char *const files[] = { "d.tar", "d.tar.gz", "d.tar.zst" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(files); i++) {
		char owner[16];
		snprintf(owner, sizeof(owner), "d%zu", i);
		_cleanup_oci_image_ struct sbx_oci_image *img = import(fp(files[i]), i == 1 ? "img:v2" : NULL, owner);
		ck_assert_int_eq(img->n_layers, 3);
		ck_assert_str_eq(img->config_digest, oci->config_digest);
		for (size_t k = 0; k < 3; k++)
			ck_assert_str_eq(img->layers[k].diff_id, oci->layers[k].diff_id);
		ck_assert_str_eq(img->names[0], "docker.io/library/img:v2");
		ck_assert_str_eq(img->config.cmd[1], "echo hi");
		assert_merged_view(img);
	}
	/* Layers were already stored by the OCI import: shared, not copied. */
	ck_assert_int_eq(count_in("store/layers/sha256"), 3);
	import_fails(fp("d.tar"), "other:tag", "no image tagged 'other:tag'");
	ck_assert_int_eq(count_in("store/layers/sha256"), 3);
}
END_TEST

static ino_t inode_in_layer(const char *diff_id, const char *rel)
{
	_cleanup_free_ char *t = sbx_layer_tree_path(store, diff_id);
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", t, rel);
	struct stat st;
	ck_assert_int_eq(lstat(p, &st), 0);
	return st.st_ino;
}

START_TEST(shared_base_stored_once)
{
	_cleanup_oci_image_ struct sbx_oci_image *base = import(fp("L"), "base", "img1");
	_cleanup_oci_image_ struct sbx_oci_image *v2 = import(fp("L"), "v2", "img2");
	ck_assert_int_eq(base->n_layers, 1);
	ck_assert_str_eq(base->layers[0].diff_id, v2->layers[0].diff_id);
	ck_assert_int_eq(count_in("store/layers/sha256"), 3);
	/* One copy of the base's files: the same inode under both images. */
	_cleanup_strv_ char **lb = sbx_oci_image_lowerdirs(store, base);
	_cleanup_strv_ char **lv = sbx_oci_image_lowerdirs(store, v2);
	ck_assert_str_eq(lb[0], lv[2]);
	ck_assert_int_eq(inode_in_layer(base->layers[0].diff_id, "keep"), inode_in_layer(v2->layers[0].diff_id, "keep"));
	ck_assert_int_eq(unit_sh("test $(find '%s' -name keep -type f | wc -l) -eq 1", tp("store/layers")), 0);
	char **owners = NULL;
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_layer_owners(store, base->layers[0].diff_id, &owners, &err), 2);
	sbx_strv_free(owners);
	/* Removing one image keeps what the other uses, and only that. */
	ck_assert_int_eq(sbx_oci_image_release(store, v2, "img2", &err), 0);
	ck_assert_int_eq(count_in("store/layers/sha256"), 1);
	ck_assert(sbx_layer_exists(store, base->layers[0].diff_id));
	ck_assert_int_eq(sbx_oci_image_release(store, base, "img1", &err), 0);
	assert_store_empty();
}
END_TEST

/* What an export told of its progress. */
struct told {
	int calls;
	struct sbx_image_progress first, last;
	bool backwards;
};

static void tell(void *ctx, const struct sbx_image_progress *p)
{
	struct told *t = ctx;
	if (!t->calls++)
		t->first = *p;
	else if (p->bytes_done < t->last.bytes_done || p->layers_done < t->last.layers_done)
		t->backwards = true;
	t->last = *p;
}

/* The sizes of the layer blobs in a layout: every blob but the manifest,
 * the index's one entry, and the config. */
static long long layer_bytes(const char *layout, const struct sbx_oci_image *img)
{
	char cmd[PATH_MAX + 512];
	snprintf(cmd, sizeof(cmd),
		 "cd '%s/blobs/sha256' && ls | grep -v -e '^%s$' -e '^%s$' | xargs -r stat -c %%s | awk '{s+=$1} END {print s+0}'",
		 layout, img->manifest_digest + 7, img->config_digest + 7);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	long long n = -1;
	ck_assert_int_eq(fscanf(f, "%lld", &n), 1);
	pclose(f);
	return n;
}

START_TEST(export_read_by_skopeo_and_umoci)
{
	_cleanup_oci_image_ struct sbx_oci_image *img = import(fp("L"), "v2", "e1");
	sbx_error *err = NULL;
	struct told t = { 0 };
	struct sbx_image_export_opts o = { .format = SBX_EXPORT_OCI_DIR, .tag = "v2", .progress = tell, .progress_ctx = &t };
	ck_assert_msg(sbx_image_export(store, img, tp("out"), &o, &err) == 0, "%s", err ? err->msg : "");
	/* Progress from nothing to every layer blob, never backwards. */
	ck_assert_int_ge(t.calls, 2);
	ck_assert(!t.backwards);
	ck_assert_int_eq(t.first.layers_done, 0);
	ck_assert_int_eq(t.first.bytes_done, 0);
	ck_assert_int_eq(t.last.layers_total, (int)img->n_layers);
	ck_assert_int_eq(t.last.layers_done, t.last.layers_total);
	ck_assert_int_eq(t.last.bytes_done, t.last.bytes_total);
	ck_assert_int_eq(t.last.bytes_total, layer_bytes(tp("out"), img));
	ck_assert_int_eq(unit_sh("skopeo inspect oci:'%s':v2 >'%s' 2>&1", tp("out"), tp("inspect.log")), 0);
	ck_assert_int_eq(unit_sh("cd '%s' && umoci unpack --image out:v2 bundle >umoci.log 2>&1", dir), 0);
	ck_assert(unit_exists(AT_FDCWD, tp("bundle/rootfs/keep")));
	ck_assert(unit_exists(AT_FDCWD, tp("bundle/rootfs/d/z")));
	ck_assert(!unit_exists(AT_FDCWD, tp("bundle/rootfs/a")));
	ck_assert(!unit_exists(AT_FDCWD, tp("bundle/rootfs/d/x")));
	/* The blobs went out as they came: the same image digest again. */
	_cleanup_oci_image_ struct sbx_oci_image *back = import(tp("out"), NULL, "e2");
	ck_assert_str_eq(back->manifest_digest, img->manifest_digest);
	struct sbx_image_export_opts again = { .format = SBX_EXPORT_OCI_DIR };
	ck_assert_int_eq(sbx_image_export(store, img, tp("out"), &again, &err), -1);
	ck_assert_int_eq(err->code, SBX_ERR_EXISTS);
	sbx_error_free(err);
	err = NULL;

	/* As a tar. */
	struct told tt = { 0 };
	struct sbx_image_export_opts tar = { .format = SBX_EXPORT_OCI_TAR, .progress = tell, .progress_ctx = &tt };
	ck_assert_int_eq(sbx_image_export(store, img, tp("out.tar"), &tar, &err), 0);
	ck_assert(!tt.backwards);
	ck_assert_int_eq(tt.last.layers_done, (int)img->n_layers);
	ck_assert_int_eq(tt.last.bytes_done, t.last.bytes_total);
	ck_assert_int_eq(unit_sh("skopeo inspect oci-archive:'%s':latest >'%s' 2>&1", tp("out.tar"), tp("inspect.log")), 0);
	_cleanup_oci_image_ struct sbx_oci_image *back2 = import(tp("out.tar"), NULL, "e3");
	ck_assert_str_eq(back2->manifest_digest, img->manifest_digest);

	/* A docker archive's plain layers were kept zstd-compressed: the
	 * export names those blobs in an OCI manifest of its own, and that
	 * reimports to the same digests. */
	_cleanup_oci_image_ struct sbx_oci_image *dock = import(fp("d.tar"), NULL, "e4");
	struct sbx_image_export_opts d = { .format = SBX_EXPORT_OCI_DIR, .tag = "d" };
	ck_assert_int_eq(sbx_image_export(store, dock, tp("dock"), &d, &err), 0);
	ck_assert_int_eq(unit_sh("skopeo inspect oci:'%s':d >'%s' 2>&1", tp("dock"), tp("inspect.log")), 0);
	_cleanup_oci_image_ struct sbx_oci_image *dback = import(tp("dock"), "d", "e5");
	ck_assert_str_eq(dback->manifest_digest, dock->manifest_digest);
	ck_assert_str_eq(dback->config_digest, img->config_digest);
	ck_assert_int_eq(count_in("store/layers/sha256"), 3);
}
END_TEST

/* ---- bad input ---- */

static void put_blob(const char *layout, const void *data, size_t len, char digest[SBX_DIGEST_LEN])
{
	sbx_sha256_buf(data, len, digest);
	char p[PATH_MAX + 128];
	snprintf(p, sizeof(p), "%s/blobs/sha256/%s", layout, sbx_digest_hex(digest));
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void put_file_blob(const char *layout, const char *file, char digest[SBX_DIGEST_LEN], int64_t *size)
{
	FILE *f = fopen(file, "rb");
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	put_blob(layout, buf, n, digest);
	*size = (int64_t)n;
}

/* A layout written by hand: one layer, the given layer media type and
 * config platform. */
static void make_layout(const char *layout, const char *layer_type, const char *arch)
{
	ck_assert_int_eq(unit_sh("mkdir -p '%s/blobs/sha256' && echo '{\"imageLayoutVersion\":\"1.0.0\"}' > '%s/oci-layout'",
			    layout, layout),
			 0);
	static const struct fix_entry e[] = { { FIX_FILE, "hello", "hi", 0, 0, 0, NULL, NULL } };
	fix_write_tar(tp("l.tar"), "none", e, 1);
	char diff_id[SBX_DIGEST_LEN], layer[SBX_DIGEST_LEN], cfg[SBX_DIGEST_LEN], man[SBX_DIGEST_LEN];
	int64_t lsize;
	put_file_blob(layout, tp("l.tar"), layer, &lsize);
	snprintf(diff_id, sizeof(diff_id), "%s", layer);
	char config[1024], manifest[2048], index[1024];
	snprintf(config, sizeof(config),
		 "{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\","
		 "\"diff_ids\":[\"%s\"]}}",
		 arch, diff_id);
	put_blob(layout, config, strlen(config), cfg);
	snprintf(manifest, sizeof(manifest),
		 "{\"schemaVersion\":2,\"mediaType\":\"" SBX_MEDIA_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"" SBX_MEDIA_OCI_CONFIG
		 "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}]}",
		 cfg, strlen(config), layer_type, layer, (long long)lsize);
	put_blob(layout, manifest, strlen(manifest), man);
	snprintf(index, sizeof(index),
		 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" SBX_MEDIA_OCI_MANIFEST
		 "\",\"digest\":\"%s\",\"size\":%zu}]}",
		 man, strlen(manifest));
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/index.json", layout);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(write(fd, index, strlen(index)), (ssize_t)strlen(index));
	close(fd);
}

START_TEST(bad_inputs)
{
	/* The hand-made layout itself is fine. */
	make_layout(tp("good"), SBX_MEDIA_LAYER_TAR, "amd64");
	_cleanup_oci_image_ struct sbx_oci_image *good = import(tp("good"), NULL, "g");
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_oci_image_release(store, good, "g", &err), 0);
	assert_store_empty();

	make_layout(tp("unknown"), "application/x-mystery", "amd64");
	import_fails(tp("unknown"), NULL, "unknown media type 'application/x-mystery'");
	make_layout(tp("arm"), SBX_MEDIA_LAYER_TAR, "arm64");
	import_fails(tp("arm"), NULL, "linux/arm64");

	/* A manifest naming a blob the layout lacks. */
	ck_assert_int_eq(unit_sh("cp -a '%s' '%s'", fp("L"), tp("missing")), 0);
	_cleanup_oci_image_ struct sbx_oci_image *v2 = import(fp("L"), "v2", "probe");
	ck_assert_int_eq(sbx_oci_image_release(store, v2, "probe", &err), 0);
	ck_assert_int_eq(unit_sh("rm '%s/blobs/sha256/%s'", tp("missing"), sbx_digest_hex(v2->layers[2].blob.digest)), 0);
	import_fails(tp("missing"), "v2", "missing");
	/* A corrupted config blob. */
	ck_assert_int_eq(unit_sh("cp -a '%s' '%s' && f='%s/blobs/sha256/%s' && chmod u+w \"$f\" && sed -i 's/FOO=bar/FOO=baz/' \"$f\"",
			    fp("L"), tp("corrupt"), tp("corrupt"), sbx_digest_hex(v2->config_digest)),
			 0);
	import_fails(tp("corrupt"), "v2", "digest mismatch");
	/* A layer blob whose bytes were changed. */
	ck_assert_int_eq(unit_sh("cp -a '%s' '%s' && f='%s/blobs/sha256/%s' && chmod u+w \"$f\" && printf 'XXXX' | dd of=\"$f\" bs=1 seek=40 conv=notrunc status=none",
			    fp("L"), tp("badlayer"), tp("badlayer"), sbx_digest_hex(v2->layers[2].blob.digest)),
			 0);
	import_fails(tp("badlayer"), "v2", "layer 3 of 3");
	/* Two images and no choice. */
	import_fails(fp("L"), NULL, "name the one to use");
	import_fails(fp("L"), "nope", "no image named 'nope'");
	/* Truncated archives. */
	ck_assert_int_eq(unit_sh("head -c 3000 '%s' > '%s'", fp("d.tar"), tp("trunc.tar")), 0);
	import_fails(tp("trunc.tar"), NULL, "");
	ck_assert_int_eq(unit_sh("head -c 200 '%s' > '%s'", fp("d.tar.gz"), tp("trunc.tar.gz")), 0);
	import_fails(tp("trunc.tar.gz"), NULL, "archive");
	/* Neither kind. */
	ck_assert_int_eq(unit_sh("mkdir '%s'", tp("empty")), 0);
	import_fails(tp("empty"), NULL, "neither an OCI image layout");
	import_fails(tp("nonexistent"), NULL, "No such file");
}
END_TEST

START_TEST(kinds_told_from_content)
{
	static const struct {
		const char *path;
		enum sbx_image_kind kind;
	} cases[] = {
		{ "L", SBX_IMAGE_KIND_OCI },
		{ "L.tar", SBX_IMAGE_KIND_OCI },
		{ "d.tar", SBX_IMAGE_KIND_DOCKER_ARCHIVE },
		{ "d.tar.gz", SBX_IMAGE_KIND_DOCKER_ARCHIVE },
		{ "d.tar.zst", SBX_IMAGE_KIND_DOCKER_ARCHIVE },
		{ "b1/rootfs", SBX_IMAGE_KIND_ROOTFS_DIR },
		{ "rootfs.tar.gz", SBX_IMAGE_KIND_ROOTFS_TAR },
	};
	ck_assert_int_eq(unit_sh("tar -C '%s' -czf '%s' .", fp("b1/rootfs"), fp("rootfs.tar.gz")), 0);
	for (size_t i = 0; i < SBX_ARRAY_SIZE(cases); i++) {
		enum sbx_image_kind k;
		sbx_error *err = NULL;
		ck_assert_msg(sbx_image_detect(fp(cases[i].path), &k, &err) == 0, "%s: %s", cases[i].path,
			      err ? err->msg : "");
		ck_assert_msg(k == cases[i].kind, "%s: %s", cases[i].path, sbx_image_kind_name(k));
	}
	/* Renamed, a docker archive is still one. */
	ck_assert_int_eq(unit_sh("cp '%s' '%s'", fp("d.tar.gz"), tp("image.bin")), 0);
	enum sbx_image_kind k;
	ck_assert_int_eq(sbx_image_detect(tp("image.bin"), &k, NULL), 0);
	ck_assert_int_eq(k, SBX_IMAGE_KIND_DOCKER_ARCHIVE);
	ck_assert_int_eq(unit_sh("echo hello > '%s'", tp("text")), 0);
	sbx_error *err = NULL;
	ck_assert_int_lt(sbx_image_detect(tp("text"), &k, &err), 0);
	ck_assert(strstr(err->msg, "not a tar archive"));
	sbx_error_free(err);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("oci");
	TCase *tc = tcase_create("images");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, oci_layout_with_whiteouts);
	tcase_add_test(tc, docker_archives);
	tcase_add_test(tc, shared_base_stored_once);
	tcase_add_test(tc, export_read_by_skopeo_and_umoci);
	tcase_add_test(tc, bad_inputs);
	tcase_add_test(tc, kinds_told_from_content);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: test_oci needs root (umoci unpack, overlay mounts)\n");
		return 77;
	}
	if (unit_sh("command -v umoci >/dev/null && command -v skopeo >/dev/null && command -v zstd >/dev/null") != 0) {
		printf("SKIP: test_oci needs umoci, skopeo and zstd (apt-get install umoci skopeo zstd)\n");
		return 77;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(fix, sizeof(fix), "%s/sbx-oci-fixture-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fix) || make_fixtures() != 0) {
		fprintf(stderr, "making the fixtures with umoci and skopeo failed; see %s/fixture.log\n", fix);
		return 1;
	}
	int rc = unit_run(suite());
	unit_rm_rf(fix);
	return rc;
}
