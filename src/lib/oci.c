/* OCI image layouts and docker save archives in and out. Every JSON
 * document is parsed with yajl, every tar read with libarchive (through
 * the layer store's hardened unpacker), every blob opened below the
 * layout's root with openat2(RESOLVE_IN_ROOT) and checked against the
 * digest and size that name it before it is believed. */
#include "config.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsops.h"
#include "imageref.h"
#include "oci.h"
#include "syscalls.h"
#include "util.h"

#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define CONTAINERD_NAME_ANNOTATION "io.containerd.image.name"

/* ---- small helpers ---- */

void sbx_image_config_free(struct sbx_image_config *c)
{
	if (!c)
		return;
	free(c->os);
	free(c->architecture);
	sbx_strv_free(c->env);
	free(c->working_dir);
	free(c->user);
	sbx_strv_free(c->entrypoint);
	sbx_strv_free(c->cmd);
	sbx_strv_free(c->exposed_ports);
	free(c->stop_signal);
	sbx_kvlist_free(&c->labels);
	free(c->created);
	memset(c, 0, sizeof(*c));
}

void sbx_oci_image_free(struct sbx_oci_image *img)
{
	if (!img)
		return;
	free(img->manifest);
	free(img->config_blob);
	free(img->layers);
	sbx_image_config_free(&img->config);
	sbx_strv_free(img->names);
	free(img);
}

void sbx_oci_image_freep(struct sbx_oci_image **img)
{
	sbx_oci_image_free(*img);
}

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static const char *const layer_types[] = {
	SBX_MEDIA_LAYER_TAR,
	SBX_MEDIA_LAYER_GZIP,
	SBX_MEDIA_LAYER_ZSTD,
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	"application/vnd.docker.image.rootfs.diff.tar",
	NULL,
};
static const char *const config_types[] = { SBX_MEDIA_OCI_CONFIG, SBX_MEDIA_DOCKER_CONFIG, NULL };
static const char *const manifest_types[] = { SBX_MEDIA_OCI_MANIFEST, SBX_MEDIA_DOCKER_MANIFEST, NULL };
static const char *const index_types[] = { SBX_MEDIA_OCI_INDEX, SBX_MEDIA_DOCKER_LIST, NULL };

/* JSON text from untrusted bytes: a NUL inside would cut it short, so it
 * is refused rather than half parsed. */
static yajl_val parse_doc(const char *json, const char *what, sbx_error **err)
{
	yajl_val v = sbx_json_parse(json, err);
	if (!v)
		return sbx_error_prefix(err, "%s", what), NULL;
	if (!YAJL_IS_OBJECT(v) && !YAJL_IS_ARRAY(v)) {
		yajl_tree_free(v);
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: not a JSON object", what);
		return NULL;
	}
	return v;
}

static int parse_descriptor(yajl_val v, const char *what, struct sbx_oci_descriptor *d, sbx_error **err)
{
	if (!YAJL_IS_OBJECT(v))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: a descriptor must be an object", what);
	const char *mt = NULL, *digest = NULL;
	memset(d, 0, sizeof(*d));
	if (sbx_json_string(v, "mediaType", true, &mt, err) < 0 || sbx_json_string(v, "digest", true, &digest, err) < 0 ||
	    sbx_json_int(v, "size", true, 0, INT64_MAX, &d->size, err) < 0)
		return sbx_error_prefix(err, "%s", what);
	if (strlen(mt) >= sizeof(d->media_type))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "%s: unknown media type '%.100s'", what, mt);
	if (sbx_digest_check(digest, what, err) < 0)
		return -1;
	snprintf(d->media_type, sizeof(d->media_type), "%s", mt);
	snprintf(d->digest, sizeof(d->digest), "%s", digest);
	return 0;
}

/* ---- parsers ---- */

static int parse_exposed_ports(yajl_val cfg, char ***out, sbx_error **err)
{
	yajl_val ports = NULL;
	if (sbx_json_object(cfg, "ExposedPorts", false, &ports, err) < 0)
		return -1;
	size_t n = ports ? ports->u.object.len : 0;
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return sbx_error_errno(err, ENOMEM, "ExposedPorts");
	for (size_t i = 0; i < n; i++) {
		if (!(v[i] = strdup(ports->u.object.keys[i]))) {
			sbx_strv_free(v);
			return sbx_error_errno(err, ENOMEM, "ExposedPorts");
		}
	}
	*out = v;
	return 0;
}

static int dup_opt(yajl_val obj, const char *key, char **out, sbx_error **err)
{
	const char *s = NULL;
	if (sbx_json_string(obj, key, false, &s, err) < 0)
		return -1;
	if (s && *s && !(*out = strdup(s)))
		return sbx_error_errno(err, ENOMEM, "%s", key);
	return 0;
}

int sbx_oci_parse_config(const char *json, struct sbx_image_config *out, char ***diff_ids, sbx_error **err)
{
	memset(out, 0, sizeof(*out));
	if (diff_ids)
		*diff_ids = NULL;
	_cleanup_json_ yajl_val root = parse_doc(json, "image config", err);
	if (!root)
		return -1;
	if (!YAJL_IS_OBJECT(root))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image config: not a JSON object");
	yajl_val cfg = NULL, rootfs = NULL;
	char **ids = NULL;
	if (dup_opt(root, "os", &out->os, err) < 0 || dup_opt(root, "architecture", &out->architecture, err) < 0 ||
	    dup_opt(root, "created", &out->created, err) < 0 || sbx_json_object(root, "config", false, &cfg, err) < 0 ||
	    sbx_json_object(root, "rootfs", true, &rootfs, err) < 0)
		goto fail;
	if (cfg) {
		if (sbx_json_string_array(cfg, "Env", false, &out->env, err) < 0 ||
		    sbx_json_string_array(cfg, "Entrypoint", false, &out->entrypoint, err) < 0 ||
		    sbx_json_string_array(cfg, "Cmd", false, &out->cmd, err) < 0 ||
		    dup_opt(cfg, "WorkingDir", &out->working_dir, err) < 0 || dup_opt(cfg, "User", &out->user, err) < 0 ||
		    dup_opt(cfg, "StopSignal", &out->stop_signal, err) < 0 ||
		    sbx_json_string_map(cfg, "Labels", false, &out->labels, err) < 0)
			goto fail;
	}
	if (parse_exposed_ports(cfg, &out->exposed_ports, err) < 0)
		goto fail;
	if (!out->env && !(out->env = calloc(1, sizeof(char *)))) {
		sbx_error_errno(err, ENOMEM, "image config");
		goto fail;
	}
	for (char **e = out->env; *e; e++)
		if (!strchr(*e, '=') || **e == '=') {
			sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image config: Env entry '%.100s' is not NAME=VALUE", *e);
			goto fail;
		}
	const char *type = NULL;
	if (sbx_json_string(rootfs, "type", true, &type, err) < 0 ||
	    sbx_json_string_array(rootfs, "diff_ids", true, &ids, err) < 0)
		goto fail;
	if (strcmp(type, "layers") != 0) {
		sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image config: rootfs type '%.40s' is not 'layers'", type);
		goto fail;
	}
	for (char **d = ids; *d; d++)
		if (sbx_digest_check(*d, "image config: diff_id", err) < 0)
			goto fail;
	if (diff_ids)
		*diff_ids = ids;
	else
		sbx_strv_free(ids);
	return 0;
fail:
	sbx_strv_free(ids);
	sbx_image_config_free(out);
	return sbx_error_prefix(err, "image config");
}

int sbx_oci_parse_manifest(const char *json, struct sbx_oci_descriptor *config, struct sbx_oci_descriptor **layers,
			   size_t *n_layers, sbx_error **err)
{
	*layers = NULL;
	*n_layers = 0;
	_cleanup_json_ yajl_val root = parse_doc(json, "image manifest", err);
	if (!root)
		return -1;
	if (!YAJL_IS_OBJECT(root))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image manifest: not a JSON object");
	int64_t version = 0;
	const char *mt = NULL;
	yajl_val cfg = NULL, arr = NULL;
	if (sbx_json_int(root, "schemaVersion", true, 0, 100, &version, err) < 0 ||
	    sbx_json_string(root, "mediaType", false, &mt, err) < 0 || sbx_json_object(root, "config", true, &cfg, err) < 0 ||
	    sbx_json_array(root, "layers", true, &arr, err) < 0)
		return sbx_error_prefix(err, "image manifest");
	if (version != 2)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image manifest: schemaVersion %lld is not supported (only 2)",
				     (long long)version);
	if (mt && !one_of(mt, manifest_types))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image manifest: unknown media type '%.100s'", mt);
	if (parse_descriptor(cfg, "image manifest: config", config, err) < 0)
		return -1;
	if (!one_of(config->media_type, config_types))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image manifest: unknown config media type '%s'",
				     config->media_type);
	size_t n = arr->u.array.len;
	if (n > SBX_OCI_LAYERS_MAX)
		return sbx_error_set(err, SBX_ERR_LIMIT, "image manifest: %zu layers; at most %d are supported", n,
				     SBX_OCI_LAYERS_MAX);
	struct sbx_oci_descriptor *l = calloc(n ? n : 1, sizeof(*l));
	if (!l)
		return sbx_error_errno(err, ENOMEM, "image manifest");
	for (size_t i = 0; i < n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "image manifest: layer %zu", i + 1);
		if (parse_descriptor(arr->u.array.values[i], what, &l[i], err) < 0) {
			free(l);
			return -1;
		}
		if (!one_of(l[i].media_type, layer_types)) {
			sbx_error_set(err, SBX_ERR_UNSUPPORTED, "%s: unknown media type '%s'", what, l[i].media_type);
			free(l);
			return -1;
		}
	}
	*layers = l;
	*n_layers = n;
	return 0;
}

static const char *annotation(yajl_val entry, const char *key)
{
	yajl_val a = sbx_json_get(entry, "annotations");
	yajl_val v = a && YAJL_IS_OBJECT(a) ? sbx_json_get(a, key) : NULL;
	return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

/* The string a member holds, or NULL. */
static const char *member_str(yajl_val obj, const char *key)
{
	yajl_val v = obj && YAJL_IS_OBJECT(obj) ? sbx_json_get(obj, key) : NULL;
	return v && v->type == yajl_t_string ? v->u.string : NULL;
}

static bool str_is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

static bool platform_is(yajl_val entry, const char *os, const char *arch)
{
	yajl_val p = sbx_json_get(entry, "platform");
	return str_is(member_str(p, "os"), os) && str_is(member_str(p, "architecture"), arch);
}

/* Does a name given by the source (a tag, or a full reference) match ref? */
static bool ref_matches(const char *name, const char *ref)
{
	if (!name || !ref)
		return false;
	if (!strcmp(name, ref))
		return true;
	/* "img:v2" is "docker.io/library/img:v2" as skopeo writes RepoTags. */
	struct sbx_image_ref a, b;
	if (sbx_image_ref_parse(name, NULL, &a, NULL) == 0) {
		bool same = false;
		if (sbx_image_ref_parse(ref, NULL, &b, NULL) == 0) {
			_cleanup_free_ char *na = sbx_image_ref_normalize(&a);
			_cleanup_free_ char *nb = sbx_image_ref_normalize(&b);
			same = na && nb && !strcmp(na, nb);
			sbx_image_ref_free(&b);
		}
		sbx_image_ref_free(&a);
		if (same)
			return true;
	}
	/* "busybox" asks for "busybox:latest". */
	size_t n = strlen(ref);
	if (!strncmp(name, ref, n) && !strcmp(name + n, ":latest"))
		return true;
	/* A layout's ref name is often the tag alone: "app:v1" matches "v1". */
	if (!strpbrk(name, ":/")) {
		const char *slash = strrchr(ref, '/');
		const char *colon = strrchr(slash ? slash : ref, ':');
		return colon && !strcmp(colon + 1, name);
	}
	return false;
}

int sbx_oci_parse_index(const char *json, const char *ref, struct sbx_oci_descriptor *out, char **ref_name,
			sbx_error **err)
{
	if (ref_name)
		*ref_name = NULL;
	_cleanup_json_ yajl_val root = parse_doc(json, "image index", err);
	if (!root)
		return -1;
	if (!YAJL_IS_OBJECT(root))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image index: not a JSON object");
	int64_t version = 0;
	const char *mt = NULL;
	yajl_val arr = NULL;
	if (sbx_json_int(root, "schemaVersion", true, 0, 100, &version, err) < 0 ||
	    sbx_json_string(root, "mediaType", false, &mt, err) < 0 || sbx_json_array(root, "manifests", true, &arr, err) < 0)
		return sbx_error_prefix(err, "image index");
	if (version != 2)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image index: schemaVersion %lld is not supported (only 2)",
				     (long long)version);
	if (mt && !one_of(mt, index_types))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image index: unknown media type '%.100s'", mt);
	size_t n = arr->u.array.len;
	if (n == 0)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "image index: it lists no image");
	yajl_val chosen = NULL;
	if (ref) {
		for (size_t i = 0; i < n && !chosen; i++) {
			yajl_val e = arr->u.array.values[i];
			if (ref_matches(annotation(e, REF_NAME_ANNOTATION), ref) ||
			    ref_matches(annotation(e, CONTAINERD_NAME_ANNOTATION), ref))
				chosen = e;
		}
		if (!chosen) {
			struct sbx_buf names = { 0 };
			for (size_t i = 0; i < n && i < 20; i++) {
				const char *nm = annotation(arr->u.array.values[i], REF_NAME_ANNOTATION);
				sbx_buf_printf(&names, "%s'%.100s'", i ? ", " : "", nm ? nm : "(unnamed)");
			}
			sbx_error_set(err, SBX_ERR_NOT_FOUND, "image index: no image named '%.200s' (it holds %s)", ref,
				      names.data ? names.data : "nothing");
			sbx_buf_free(&names);
			return -1;
		}
	} else if (n == 1) {
		chosen = arr->u.array.values[0];
	} else {
		size_t with_platform = 0;
		for (size_t i = 0; i < n; i++) {
			yajl_val e = arr->u.array.values[i];
			if (sbx_json_get(e, "platform"))
				with_platform++;
			if (!chosen && platform_is(e, "linux", "amd64"))
				chosen = e;
		}
		if (with_platform < n)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
					     "image index: it holds %zu images; name the one to use", n);
		if (!chosen)
			return sbx_error_set(err, SBX_ERR_UNSUPPORTED,
					     "image index: no image for linux/amd64 among its %zu platforms", n);
	}
	if (parse_descriptor(chosen, "image index: entry", out, err) < 0)
		return -1;
	if (!one_of(out->media_type, manifest_types) && !one_of(out->media_type, index_types))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image index: entry of unknown media type '%s'",
				     out->media_type);
	if (ref_name) {
		const char *nm = annotation(chosen, REF_NAME_ANNOTATION);
		if (nm && !(*ref_name = strdup(nm)))
			return sbx_error_errno(err, ENOMEM, "image index");
	}
	return 0;
}

int sbx_docker_parse_manifest(const char *json, const char *ref, char **config_path, char ***layer_paths,
			      char ***repo_tags, sbx_error **err)
{
	*config_path = NULL;
	*layer_paths = NULL;
	*repo_tags = NULL;
	_cleanup_json_ yajl_val root = parse_doc(json, "manifest.json", err);
	if (!root)
		return -1;
	if (!YAJL_IS_ARRAY(root))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "manifest.json: not a JSON array");
	size_t n = root->u.array.len;
	if (n == 0)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "manifest.json: it lists no image");
	yajl_val chosen = NULL;
	for (size_t i = 0; i < n && !chosen; i++) {
		yajl_val e = root->u.array.values[i];
		if (!YAJL_IS_OBJECT(e))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "manifest.json: entry %zu is not an object", i + 1);
		if (!ref) {
			if (n > 1)
				return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
						     "manifest.json: the archive holds %zu images; name the one to use", n);
			chosen = e;
			break;
		}
		yajl_val tags = sbx_json_get(e, "RepoTags");
		for (size_t k = 0; tags && YAJL_IS_ARRAY(tags) && k < tags->u.array.len; k++) {
			yajl_val t = tags->u.array.values[k];
			if (YAJL_IS_STRING(t) && ref_matches(YAJL_GET_STRING(t), ref))
				chosen = e;
		}
	}
	if (!chosen)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "manifest.json: no image tagged '%.200s'", ref);
	const char *cfg = NULL;
	char **layers = NULL, **tags = NULL;
	if (sbx_json_string(chosen, "Config", true, &cfg, err) < 0 ||
	    sbx_json_string_array(chosen, "Layers", true, &layers, err) < 0 ||
	    sbx_json_string_array(chosen, "RepoTags", false, &tags, err) < 0) {
		sbx_strv_free(layers);
		return sbx_error_prefix(err, "manifest.json");
	}
	if (sbx_strv_len(layers) > SBX_OCI_LAYERS_MAX) {
		sbx_strv_free(layers);
		sbx_strv_free(tags);
		return sbx_error_set(err, SBX_ERR_LIMIT, "manifest.json: more than %d layers", SBX_OCI_LAYERS_MAX);
	}
	if (!tags)
		tags = calloc(1, sizeof(char *));
	*config_path = strdup(cfg);
	if (!*config_path || !tags) {
		free(*config_path);
		*config_path = NULL;
		sbx_strv_free(layers);
		sbx_strv_free(tags);
		return sbx_error_errno(err, ENOMEM, "manifest.json");
	}
	*layer_paths = layers;
	*repo_tags = tags;
	return 0;
}

/* ---- reading a layout or archive directory ---- */

static int open_in(int rootfd, const char *rel, const char *what, sbx_error **err)
{
	int fd;
	do {
		fd = sbx_openat2(rootfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0,
				 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	} while (fd < 0 && errno == EAGAIN);
	if (fd < 0) {
		if (errno == ENOENT)
			return sbx_error_set(err, SBX_ERR_NOT_FOUND, "%s: '%.200s' is missing", what, rel);
		return sbx_error_errno(err, errno, "%s: open '%.200s'", what, rel);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%.200s' is not a regular file", what, rel);
	}
	return fd;
}

static bool exists_in(int rootfd, const char *rel)
{
	int fd = sbx_openat2(rootfd, rel, O_PATH | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* A whole small file below the root; NUL-terminated; *digest (may be
 * NULL) gets its sha256. */
static int read_in(int rootfd, const char *rel, const char *what, char **out, size_t *len, char *digest,
		   sbx_error **err)
{
	_cleanup_close_ int fd = open_in(rootfd, rel, what, err);
	if (fd < 0)
		return -1;
	struct sbx_buf b = { 0 };
	char chunk[16384];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sbx_buf_free(&b);
			return sbx_error_errno(err, errno, "%s: read '%.200s'", what, rel);
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > SBX_OCI_JSON_MAX) {
			sbx_buf_free(&b);
			return sbx_error_set(err, SBX_ERR_LIMIT, "%s: '%.200s' is larger than %d bytes", what, rel,
					     SBX_OCI_JSON_MAX);
		}
		if (sbx_buf_append(&b, chunk, (size_t)n) < 0) {
			sbx_buf_free(&b);
			return sbx_error_errno(err, ENOMEM, "%s", what);
		}
	}
	if (!b.data && sbx_buf_append(&b, "", 0) < 0)
		return sbx_error_errno(err, ENOMEM, "%s", what);
	if (memchr(b.data, '\0', b.len)) {
		sbx_buf_free(&b);
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%.200s' holds a NUL byte; it is not JSON", what, rel);
	}
	if (digest)
		sbx_sha256_buf(b.data, b.len, digest);
	*out = b.data;
	*len = b.len;
	return 0;
}

static void blob_rel(const char *digest, char out[128])
{
	snprintf(out, 128, "blobs/sha256/%s", sbx_digest_hex(digest));
}

/* A JSON blob named by a descriptor: present, of its size and digest. */
static int read_blob_json(int rootfd, const struct sbx_oci_descriptor *d, const char *what, char **out, size_t *len,
			  sbx_error **err)
{
	char rel[128], got[SBX_DIGEST_LEN];
	blob_rel(d->digest, rel);
	if (d->size > SBX_OCI_JSON_MAX)
		return sbx_error_set(err, SBX_ERR_LIMIT, "%s %s: %lld bytes is more than a %s may be", what, d->digest,
				     (long long)d->size, what);
	if (!exists_in(rootfd, rel))
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "%s %s: the blob is missing from the layout", what, d->digest);
	_cleanup_free_ char *text = NULL;
	size_t n = 0;
	if (read_in(rootfd, rel, what, &text, &n, got, err) < 0)
		return -1;
	if (strcmp(got, d->digest) != 0)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: digest mismatch: expected %s, read %s", what,
				     d->digest, got);
	if ((int64_t)n != d->size)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s %s: %zu bytes, not the %lld its descriptor says",
				     what, d->digest, n, (long long)d->size);
	*out = sbx_take_ptr(&text);
	*len = n;
	return 0;
}

/* ---- storing the layers ---- */

struct layer_job {
	const char *diff_id;
	char *path;          /* below the root */
	const char *digest;  /* expected blob digest, or NULL */
	int64_t size;        /* expected blob size, or -1 */
	int64_t file_size;
	bool stored;
	struct sbx_layer_info info;
};

struct progress_ctx {
	const struct sbx_image_import_opts *opts;
	struct sbx_image_progress p;
	int64_t before;
};

static void layer_progress(void *ctx, int64_t bytes)
{
	struct progress_ctx *pc = ctx;
	pc->p.bytes_done = pc->before + bytes;
	pc->opts->progress(pc->opts->progress_ctx, &pc->p);
}

static int store_layers(struct sbx_layer_store *s, const char *owner, int rootfd, struct layer_job *jobs, size_t n,
			enum sbx_layer_keep keep, const struct sbx_image_import_opts *opts, sbx_error **err)
{
	struct progress_ctx pc = { .opts = opts };
	pc.p.layers_total = (int)n;
	/* Every blob there before anything is unpacked. */
	for (size_t i = 0; i < n; i++) {
		if (sbx_layer_exists(s, jobs[i].diff_id))
			continue;
		_cleanup_close_ int fd = open_in(rootfd, jobs[i].path, "layer", err);
		if (fd < 0)
			return jobs[i].digest ? sbx_error_prefix(err, "layer %zu (%s)", i + 1, jobs[i].digest)
					      : sbx_error_prefix(err, "layer %zu", i + 1);
		struct stat st;
		if (fstat(fd, &st) < 0)
			return sbx_error_errno(err, errno, "layer %zu", i + 1);
		jobs[i].file_size = st.st_size;
		pc.p.bytes_total += st.st_size;
	}
	for (size_t i = 0; i < n; i++) {
		struct sbx_layer_put_opts po = {
			.digest = jobs[i].digest,
			.diff_id = jobs[i].diff_id,
			.size = jobs[i].size,
			.keep = keep,
			.progress = opts && opts->progress ? layer_progress : NULL,
			.progress_ctx = &pc,
		};
		int r = 1;
		if (sbx_layer_exists(s, jobs[i].diff_id)) {
			_cleanup_error_ sbx_error *ref_err = NULL;
			r = sbx_layer_ref(s, jobs[i].diff_id, owner, &jobs[i].info, &ref_err);
			if (r < 0 && ref_err->code == SBX_ERR_NOT_FOUND)
				r = 1; /* removed meanwhile: read it after all */
			else if (r < 0)
				return sbx_error_set(err, ref_err->code, "layer %zu of %zu: %s", i + 1, n, ref_err->msg);
		}
		if (r == 1) {
			_cleanup_close_ int fd = open_in(rootfd, jobs[i].path, "layer", err);
			r = fd < 0 ? -1 : sbx_layer_put_fd(s, owner, fd, &po, &jobs[i].info, err);
		}
		if (r < 0)
			return sbx_error_prefix(err, "layer %zu of %zu (%s)", i + 1, n, jobs[i].diff_id);
		jobs[i].stored = true;
		pc.before += jobs[i].info.existed ? 0 : jobs[i].file_size;
		pc.p.layers_done = (int)i + 1;
		pc.p.bytes_done = pc.before;
		if (opts && opts->progress)
			opts->progress(opts->progress_ctx, &pc.p);
	}
	return 0;
}

static void unstore_layers(struct sbx_layer_store *s, const char *owner, struct layer_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!jobs[i].stored)
			continue;
		sbx_error *ignored = NULL;
		sbx_layer_unref(s, jobs[i].diff_id, owner, &ignored);
		sbx_error_free(ignored);
	}
}

static void free_jobs(struct layer_job *jobs, size_t n)
{
	for (size_t i = 0; jobs && i < n; i++)
		free(jobs[i].path);
	free(jobs);
}

/* An OCI manifest for layers as the store keeps them. */
static int synth_manifest(const struct sbx_oci_descriptor *config, const struct sbx_oci_descriptor *layers, size_t n,
			  char **out, size_t *len, sbx_error **err)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return sbx_error_errno(err, ENOMEM, "manifest");
	yajl_gen_config(g, yajl_gen_beautify, 0);
	yajl_gen_map_open(g);
	sbx_gen_kv_int(g, "schemaVersion", 2);
	sbx_gen_kv_str(g, "mediaType", SBX_MEDIA_OCI_MANIFEST);
	sbx_gen_key(g, "config");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "mediaType", SBX_MEDIA_OCI_CONFIG);
	sbx_gen_kv_str(g, "digest", config->digest);
	sbx_gen_kv_int(g, "size", config->size);
	yajl_gen_map_close(g);
	sbx_gen_key(g, "layers");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "mediaType", layers[i].media_type);
		sbx_gen_kv_str(g, "digest", layers[i].digest);
		sbx_gen_kv_int(g, "size", layers[i].size);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t blen;
	yajl_gen_get_buf(g, &buf, &blen);
	char *copy = malloc(blen + 1);
	if (!copy)
		return sbx_error_errno(err, ENOMEM, "manifest");
	memcpy(copy, buf, blen);
	copy[blen] = '\0';
	*out = copy;
	*len = blen;
	return 0;
}

/* Fill img from config bytes and layer descriptors. */
static int finish_image(struct sbx_oci_image *img, char **diff_ids, sbx_error **err)
{
	size_t n = sbx_strv_len(diff_ids);
	if (n != img->n_layers)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
				     "the image config lists %zu layers (rootfs.diff_ids), the manifest %zu", n,
				     img->n_layers);
	for (size_t i = 0; i < n; i++)
		snprintf(img->layers[i].diff_id, sizeof(img->layers[i].diff_id), "%s", diff_ids[i]);
	const char *os = img->config.os, *arch = img->config.architecture;
	if ((os && strcmp(os, "linux") != 0) || (arch && strcmp(arch, "amd64") != 0))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the image is for %.40s/%.40s; sandboxd runs linux/amd64",
				     os ? os : "?", arch ? arch : "?");
	return 0;
}

int sbx_oci_image_from_json(const char *manifest, size_t manifest_len, const char *config, size_t config_len,
			    struct sbx_oci_image **out, sbx_error **err)
{
	_cleanup_oci_image_ struct sbx_oci_image *img = calloc(1, sizeof(*img));
	if (!img || !(img->manifest = malloc(manifest_len + 1)) || !(img->config_blob = malloc(config_len + 1)) ||
	    !(img->names = calloc(1, sizeof(char *))))
		return sbx_error_errno(err, ENOMEM, "image");
	memcpy(img->manifest, manifest, manifest_len);
	img->manifest[manifest_len] = '\0';
	img->manifest_len = manifest_len;
	memcpy(img->config_blob, config, config_len);
	img->config_blob[config_len] = '\0';
	img->config_len = config_len;
	if (memchr(manifest, '\0', manifest_len) || memchr(config, '\0', config_len))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image: a NUL byte in its manifest or config");
	sbx_sha256_buf(manifest, manifest_len, img->manifest_digest);
	sbx_sha256_buf(config, config_len, img->config_digest);
	struct sbx_oci_descriptor cfg, *layers = NULL;
	size_t n = 0;
	if (sbx_oci_parse_manifest(img->manifest, &cfg, &layers, &n, err) < 0)
		return -1;
	img->n_layers = n;
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	if (!img->layers) {
		free(layers);
		return sbx_error_errno(err, ENOMEM, "image");
	}
	for (size_t i = 0; i < n; i++)
		img->layers[i].blob = layers[i];
	free(layers);
	if (strcmp(cfg.digest, img->config_digest) != 0 || cfg.size != (int64_t)config_len)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image config: digest mismatch: expected %s, read %s",
				     cfg.digest, img->config_digest);
	_cleanup_strv_ char **diff_ids = NULL;
	if (sbx_oci_parse_config(img->config_blob, &img->config, &diff_ids, err) < 0)
		return -1;
	if (finish_image(img, diff_ids, err) < 0)
		return -1;
	*out = sbx_take_ptr(&img);
	return 0;
}

static int import_oci(struct sbx_layer_store *s, const char *owner, int rootfd, const struct sbx_image_import_opts *opts,
		      struct sbx_oci_image **out, sbx_error **err)
{
	_cleanup_free_ char *layout = NULL, *index = NULL, *ref_name = NULL;
	size_t len;
	if (exists_in(rootfd, "oci-layout")) {
		if (read_in(rootfd, "oci-layout", "OCI layout", &layout, &len, NULL, err) < 0)
			return -1;
		_cleanup_json_ yajl_val v = parse_doc(layout, "oci-layout", err);
		const char *version = NULL;
		if (!v || sbx_json_string(v, "imageLayoutVersion", true, &version, err) < 0)
			return sbx_error_prefix(err, "OCI layout");
		if (strcmp(version, SBX_MEDIA_OCI_LAYOUT_VERSION) != 0)
			return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "OCI layout version '%.40s' is not supported (only %s)",
					     version, SBX_MEDIA_OCI_LAYOUT_VERSION);
	}
	if (read_in(rootfd, "index.json", "OCI layout", &index, &len, NULL, err) < 0)
		return -1;
	struct sbx_oci_descriptor d;
	if (sbx_oci_parse_index(index, opts ? opts->ref : NULL, &d, &ref_name, err) < 0)
		return sbx_error_prefix(err, "OCI layout");
	/* Follow nested indexes (a multi-platform image) to one manifest. */
	_cleanup_free_ char *manifest = NULL;
	size_t manifest_len = 0;
	for (int depth = 0;; depth++) {
		if (depth > 4)
			return sbx_error_set(err, SBX_ERR_LIMIT, "OCI layout: indexes nested too deep");
		_cleanup_free_ char *doc = NULL;
		size_t doc_len;
		if (read_blob_json(rootfd, &d, one_of(d.media_type, index_types) ? "image index" : "image manifest", &doc,
				   &doc_len, err) < 0)
			return -1;
		if (one_of(d.media_type, manifest_types)) {
			manifest = sbx_take_ptr(&doc);
			manifest_len = doc_len;
			break;
		}
		if (sbx_oci_parse_index(doc, NULL, &d, NULL, err) < 0)
			return -1;
	}
	struct sbx_oci_descriptor cfg, *descs = NULL;
	size_t n = 0;
	if (sbx_oci_parse_manifest(manifest, &cfg, &descs, &n, err) < 0)
		return sbx_error_prefix(err, "image %s", d.digest);
	free(descs);
	_cleanup_free_ char *config = NULL;
	size_t config_len;
	if (read_blob_json(rootfd, &cfg, "image config", &config, &config_len, err) < 0)
		return -1;
	_cleanup_oci_image_ struct sbx_oci_image *img = NULL;
	if (sbx_oci_image_from_json(manifest, manifest_len, config, config_len, &img, err) < 0)
		return -1;
	if (ref_name) {
		sbx_strv_free(img->names);
		char *v[] = { ref_name, NULL };
		if (!(img->names = sbx_strv_dup(v)))
			return sbx_error_errno(err, ENOMEM, "image");
	}

	struct layer_job *jobs = calloc(n ? n : 1, sizeof(*jobs));
	if (!jobs)
		return sbx_error_errno(err, ENOMEM, "image");
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		jobs[i].diff_id = img->layers[i].diff_id;
		jobs[i].digest = img->layers[i].blob.digest;
		jobs[i].size = img->layers[i].blob.size;
		char rel[128];
		blob_rel(img->layers[i].blob.digest, rel);
		if (!(jobs[i].path = strdup(rel)))
			rc = sbx_error_errno(err, ENOMEM, "image");
	}
	if (rc == 0 && store_layers(s, owner, rootfd, jobs, n, SBX_LAYER_KEEP_AS_IS, opts, err) < 0) {
		unstore_layers(s, owner, jobs, n);
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		img->size += jobs[i].info.size;
	free_jobs(jobs, n);
	if (rc < 0)
		return -1;
	*out = sbx_take_ptr(&img);
	return 0;
}

/* Names inside a docker archive are relative to its root, never absolute. */
static int archive_path(const char *p, const char *what, sbx_error **err)
{
	if (!*p || p[0] == '/' || strstr(p, ".."))
		return sbx_error_set(err, SBX_ERR_DENIED, "manifest.json: %s path '%.200s' is not inside the archive", what, p);
	return 0;
}

static int import_docker(struct sbx_layer_store *s, const char *owner, int rootfd,
			 const struct sbx_image_import_opts *opts, struct sbx_oci_image **out, sbx_error **err)
{
	_cleanup_free_ char *mj = NULL, *config_path = NULL, *config = NULL;
	_cleanup_strv_ char **paths = NULL, **tags = NULL, **diff_ids = NULL;
	size_t len, config_len;
	if (read_in(rootfd, "manifest.json", "docker archive", &mj, &len, NULL, err) < 0)
		return -1;
	if (sbx_docker_parse_manifest(mj, opts ? opts->ref : NULL, &config_path, &paths, &tags, err) < 0)
		return sbx_error_prefix(err, "docker archive");
	if (archive_path(config_path, "config", err) < 0)
		return sbx_error_prefix(err, "docker archive");
	for (char **p = paths; *p; p++)
		if (archive_path(*p, "layer", err) < 0)
			return sbx_error_prefix(err, "docker archive");
	char config_digest[SBX_DIGEST_LEN];
	if (read_in(rootfd, config_path, "docker archive: config", &config, &config_len, config_digest, err) < 0)
		return -1;
	/* "<hex>.json" (old) or "blobs/sha256/<hex>" (new) names its digest. */
	const char *base = strrchr(config_path, '/');
	base = base ? base + 1 : config_path;
	if (strspn(base, "0123456789abcdef") == SBX_DIGEST_HEX_LEN &&
	    (!base[SBX_DIGEST_HEX_LEN] || !strcmp(base + SBX_DIGEST_HEX_LEN, ".json")) &&
	    strncmp(base, sbx_digest_hex(config_digest), SBX_DIGEST_HEX_LEN) != 0)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "docker archive: config '%.200s': digest mismatch (read %s)",
				     config_path, config_digest);
	struct sbx_image_config parsed;
	if (sbx_oci_parse_config(config, &parsed, &diff_ids, err) < 0)
		return sbx_error_prefix(err, "docker archive");
	sbx_image_config_free(&parsed);
	size_t n = sbx_strv_len(paths);
	if (sbx_strv_len(diff_ids) != n)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
				     "docker archive: the image config lists %zu layers, manifest.json %zu",
				     sbx_strv_len(diff_ids), n);
	struct layer_job *jobs = calloc(n ? n : 1, sizeof(*jobs));
	if (!jobs)
		return sbx_error_errno(err, ENOMEM, "image");
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		jobs[i].diff_id = diff_ids[i];
		jobs[i].size = -1;
		if (!(jobs[i].path = strdup(paths[i])))
			rc = sbx_error_errno(err, ENOMEM, "image");
	}
	/* docker save writes plain tars: keep them compressed. */
	if (rc == 0 && store_layers(s, owner, rootfd, jobs, n, SBX_LAYER_KEEP_COMPRESSED, opts, err) < 0)
		rc = -1;
	_cleanup_free_ char *manifest = NULL;
	size_t manifest_len = 0;
	_cleanup_free_ struct sbx_oci_descriptor *descs = calloc(n ? n : 1, sizeof(*descs));
	if (rc == 0 && !descs)
		rc = sbx_error_errno(err, ENOMEM, "image");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		snprintf(descs[i].media_type, sizeof(descs[i].media_type), "%s", jobs[i].info.media_type);
		snprintf(descs[i].digest, sizeof(descs[i].digest), "%s", jobs[i].info.digest);
		descs[i].size = jobs[i].info.blob_size;
	}
	struct sbx_oci_descriptor cfg = { .size = (int64_t)config_len };
	snprintf(cfg.media_type, sizeof(cfg.media_type), "%s", SBX_MEDIA_OCI_CONFIG);
	snprintf(cfg.digest, sizeof(cfg.digest), "%s", config_digest);
	_cleanup_oci_image_ struct sbx_oci_image *img = NULL;
	if (rc == 0 && (synth_manifest(&cfg, descs, n, &manifest, &manifest_len, err) < 0 ||
			sbx_oci_image_from_json(manifest, manifest_len, config, config_len, &img, err) < 0))
		rc = -1;
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			img->size += jobs[i].info.size;
		sbx_strv_free(img->names);
		img->names = sbx_take_ptr(&tags);
	} else {
		unstore_layers(s, owner, jobs, n);
	}
	free_jobs(jobs, n);
	if (rc < 0)
		return -1;
	*out = sbx_take_ptr(&img);
	return 0;
}

const char *sbx_image_kind_name(enum sbx_image_kind kind)
{
	switch (kind) {
	case SBX_IMAGE_KIND_ROOTFS_DIR:
		return "dir";
	case SBX_IMAGE_KIND_ROOTFS_TAR:
		return "rootfs-tar";
	case SBX_IMAGE_KIND_OCI:
		return "oci";
	default:
		return "docker-archive";
	}
}

/* Top-level names that tell the kinds apart: an OCI layout must have
 * oci-layout (or at least index.json and blobs/); docker save writes
 * manifest.json with repositories, <id>/layer.tar or blobs/. */
struct seen_names {
	bool oci_layout, index, blobs, manifest, repositories, layer_tar;
};

static void see_name(struct seen_names *s, const char *raw, bool is_dir)
{
	while (raw[0] == '.' && raw[1] == '/')
		raw += 2;
	while (*raw == '/')
		raw++;
	const char *slash = strchr(raw, '/');
	if (!slash || !slash[1]) {
		size_t n = slash ? (size_t)(slash - raw) : strlen(raw);
		if (n == 10 && !strncmp(raw, "oci-layout", n))
			s->oci_layout = true;
		else if (n == 10 && !strncmp(raw, "index.json", n))
			s->index = true;
		else if (n == 13 && !strncmp(raw, "manifest.json", n))
			s->manifest = true;
		else if (n == 12 && !strncmp(raw, "repositories", n))
			s->repositories = true;
		else if (n == 5 && !strncmp(raw, "blobs", n) && (is_dir || slash))
			s->blobs = true;
		return;
	}
	if (!strncmp(raw, "blobs/", 6))
		s->blobs = true;
	if (!strchr(slash + 1, '/') && !strcmp(slash + 1, "layer.tar"))
		s->layer_tar = true;
}

static bool kind_of(const struct seen_names *s, enum sbx_image_kind *kind)
{
	if (s->oci_layout || (s->index && s->blobs)) {
		*kind = SBX_IMAGE_KIND_OCI;
		return true;
	}
	if (s->manifest && (s->repositories || s->layer_tar || s->blobs)) {
		*kind = SBX_IMAGE_KIND_DOCKER_ARCHIVE;
		return true;
	}
	return false;
}

int sbx_image_detect(const char *path, enum sbx_image_kind *kind, sbx_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return sbx_error_errno(err, errno, "image '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "image '%s'", path);
	struct seen_names seen = { 0 };
	if (S_ISDIR(st.st_mode)) {
		static const char *const names[] = { "oci-layout", "index.json", "blobs/", "manifest.json", "repositories" };
		for (size_t i = 0; i < SBX_ARRAY_SIZE(names); i++) {
			char n[32];
			snprintf(n, sizeof(n), "%s", names[i]);
			size_t l = strlen(n);
			bool dir = n[l - 1] == '/';
			if (dir)
				n[l - 1] = '\0';
			struct stat e;
			if (fstatat(fd, n, &e, AT_SYMLINK_NOFOLLOW) == 0 && (dir ? S_ISDIR(e.st_mode) : S_ISREG(e.st_mode)))
				see_name(&seen, names[i], dir);
		}
		if (!kind_of(&seen, kind))
			*kind = SBX_IMAGE_KIND_ROOTFS_DIR;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image '%s' is neither a directory nor a file", path);
	struct archive *a = archive_read_new();
	if (!a)
		return sbx_error_errno(err, ENOMEM, "detect");
	/* The compressions a root file system tarball may have too; named, so
	 * that no external decompressor is ever started on this input. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	int rc = 0;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		rc = sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image '%s': not a tar archive: %s", path,
				   archive_error_string(a) ? archive_error_string(a) : "unrecognized");
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image '%s': %s", path, archive_error_string(a));
			goto out;
		}
		const char *name = archive_entry_pathname(e);
		if (name)
			see_name(&seen, name, archive_entry_filetype(e) == AE_IFDIR);
		if (kind_of(&seen, kind))
			goto out;
	}
	*kind = SBX_IMAGE_KIND_ROOTFS_TAR;
out:
	archive_read_free(a);
	return rc;
}

int sbx_image_import_dirfd(struct sbx_layer_store *s, const char *owner, int dirfd,
			   const struct sbx_image_import_opts *opts, struct sbx_oci_image **out, sbx_error **err)
{
	if (exists_in(dirfd, "index.json") || exists_in(dirfd, "oci-layout"))
		return import_oci(s, owner, dirfd, opts, out, err);
	if (exists_in(dirfd, "manifest.json"))
		return import_docker(s, owner, dirfd, opts, out, err);
	return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
			     "neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)");
}

int sbx_image_import(struct sbx_layer_store *s, const char *owner, const char *path,
		     const struct sbx_image_import_opts *opts, struct sbx_oci_image **out, sbx_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return sbx_error_errno(err, errno, "image '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "image '%s'", path);
	if (S_ISDIR(st.st_mode)) {
		if (sbx_image_import_dirfd(s, owner, fd, opts, out, err) < 0)
			return sbx_error_prefix(err, "image '%s'", path);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "image '%s' is neither a directory nor a file", path);
	/* An archive is unpacked (by the hardened layer unpacker) into a
	 * private directory on the store's file system, then read as a layout. */
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tfd = sbx_layer_store_scratch(s, "import", &tmp, err);
	if (tfd < 0)
		return -1;
	int rc = sbx_layer_unpack_fd(tfd, fd, NULL, NULL, err);
	if (rc < 0)
		sbx_error_prefix(err, "image '%s': not a readable (tar, gzip or zstd) archive", path);
	else if ((rc = sbx_image_import_dirfd(s, owner, tfd, opts, out, err)) < 0)
		sbx_error_prefix(err, "image '%s'", path);
	sbx_error *ignored = NULL;
	sbx_layer_store_rmtemp(s, tmp, &ignored);
	sbx_error_free(ignored);
	return rc;
}

int sbx_oci_image_release(struct sbx_layer_store *s, const struct sbx_oci_image *img, const char *owner,
			  sbx_error **err)
{
	int rc = 0;
	for (size_t i = 0; i < img->n_layers; i++) {
		/* Two entries of one image may name one layer: drop it once. */
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen = seen || !strcmp(img->layers[k].diff_id, img->layers[i].diff_id);
		if (!seen && sbx_layer_unref(s, img->layers[i].diff_id, owner, err) < 0)
			rc = -1;
	}
	return rc;
}

int sbx_oci_image_save(int dirfd, const struct sbx_oci_image *img, sbx_error **err)
{
	if (sbx_write_file_atomic_at(dirfd, "config.json", img->config_blob, img->config_len, 0600, err) < 0 ||
	    sbx_write_file_atomic_at(dirfd, "manifest.json", img->manifest, img->manifest_len, 0600, err) < 0)
		return sbx_error_prefix(err, "save image %s", img->manifest_digest);
	return 0;
}

int sbx_oci_image_load(int dirfd, struct sbx_oci_image **out, sbx_error **err)
{
	_cleanup_free_ char *m = NULL, *c = NULL;
	size_t ml = 0, cl = 0;
	if (sbx_read_file_at(dirfd, "manifest.json", SBX_OCI_JSON_MAX, &m, &ml, err) < 0 ||
	    sbx_read_file_at(dirfd, "config.json", SBX_OCI_JSON_MAX, &c, &cl, err) < 0)
		return sbx_error_prefix(err, "load image");
	return sbx_oci_image_from_json(m, ml, c, cl, out, err);
}

char **sbx_oci_image_lowerdirs(const struct sbx_layer_store *s, const struct sbx_oci_image *img)
{
	char **v = calloc(img->n_layers + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < img->n_layers; i++) {
		v[i] = sbx_layer_tree_path(s, img->layers[img->n_layers - 1 - i].diff_id);
		if (!v[i]) {
			sbx_strv_free(v);
			return NULL;
		}
	}
	return v;
}

/* ---- export ---- */

struct exporter {
	enum sbx_image_export_format format;
	int dirfd;            /* SBX_EXPORT_OCI_DIR: the layout being written */
	struct archive *tar;  /* SBX_EXPORT_OCI_TAR */
	char *buf;
	sbx_error **err;
	const struct sbx_image_export_opts *o;
	struct sbx_image_progress p;
};

static void ex_progress(struct exporter *x, int64_t bytes)
{
	x->p.bytes_done += bytes;
	if (x->o->progress)
		x->o->progress(x->o->progress_ctx, &x->p);
}

static int ex_tar_header(struct exporter *x, const char *name, mode_t type, int64_t size)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return sbx_error_errno(x->err, ENOMEM, "export");
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_size(e, size);
	archive_entry_set_mtime(e, 0, 0);
	int r = archive_write_header(x->tar, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return sbx_error_set(x->err, SBX_ERR_INTERNAL, "export: %s", archive_error_string(x->tar));
	return 0;
}

static int ex_bytes(struct exporter *x, const char *rel, const void *data, size_t len)
{
	if (x->format == SBX_EXPORT_OCI_DIR)
		return sbx_write_file_atomic_at(x->dirfd, rel, data, len, 0644, x->err);
	if (ex_tar_header(x, rel, AE_IFREG, (int64_t)len) < 0)
		return -1;
	if (len && archive_write_data(x->tar, data, len) != (la_ssize_t)len)
		return sbx_error_set(x->err, SBX_ERR_INTERNAL, "export %s: %s", rel, archive_error_string(x->tar));
	return 0;
}

static int ex_fd(struct exporter *x, const char *rel, int fd, int64_t size)
{
	if (x->format == SBX_EXPORT_OCI_DIR) {
		_cleanup_close_ int out = openat(x->dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (out < 0)
			return sbx_error_errno(x->err, errno, "export %s", rel);
		/* In steps, so that progress is told between them. */
		for (int64_t left = size; left > 0;) {
			int64_t step = left < (16 << 20) ? left : (16 << 20);
			if (sbx_fs_copy_fd(fd, out, step, x->err) != step)
				return *x->err ? sbx_error_prefix(x->err, "export %s", rel)
					       : sbx_error_set(x->err, SBX_ERR_INTERNAL, "export %s: short copy", rel);
			left -= step;
			ex_progress(x, step);
		}
		return 0;
	}
	if (ex_tar_header(x, rel, AE_IFREG, size) < 0)
		return -1;
	int64_t left = size;
	while (left > 0) {
		ssize_t n = read(fd, x->buf, left < (1 << 20) ? (size_t)left : (1 << 20));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sbx_error_errno(x->err, n < 0 ? errno : EIO, "export %s: read blob", rel);
		if (archive_write_data(x->tar, x->buf, (size_t)n) != n)
			return sbx_error_set(x->err, SBX_ERR_INTERNAL, "export %s: %s", rel, archive_error_string(x->tar));
		left -= n;
		ex_progress(x, n);
	}
	return 0;
}

static int write_index(struct exporter *x, const char *manifest_digest, size_t manifest_len, const char *tag)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return sbx_error_errno(x->err, ENOMEM, "export");
	yajl_gen_map_open(g);
	sbx_gen_kv_int(g, "schemaVersion", 2);
	sbx_gen_kv_str(g, "mediaType", SBX_MEDIA_OCI_INDEX);
	sbx_gen_key(g, "manifests");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "mediaType", SBX_MEDIA_OCI_MANIFEST);
	sbx_gen_kv_str(g, "digest", manifest_digest);
	sbx_gen_kv_int(g, "size", (int64_t)manifest_len);
	sbx_gen_key(g, "annotations");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, REF_NAME_ANNOTATION, tag ? tag : "latest");
	yajl_gen_map_close(g);
	sbx_gen_key(g, "platform");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "architecture", "amd64");
	sbx_gen_kv_str(g, "os", "linux");
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	return ex_bytes(x, "index.json", buf, len);
}

static int export_into(struct sbx_layer_store *s, const struct sbx_oci_image *img, struct exporter *x)
{
	sbx_error **err = x->err;
	/* The manifest is kept as it is when it is an OCI one naming the
	 * blobs the store holds; otherwise an OCI manifest is made for them. */
	_cleanup_free_ struct sbx_oci_descriptor *kept = calloc(img->n_layers ? img->n_layers : 1, sizeof(*kept));
	if (!kept)
		return sbx_error_errno(err, ENOMEM, "export");
	_cleanup_json_ yajl_val m = sbx_json_parse(img->manifest, err);
	if (!m)
		return sbx_error_prefix(err, "export: manifest");
	/* An OCI manifest may leave out its mediaType (older writers, umoci). */
	const char *mmt = member_str(m, "mediaType");
	bool same = (!mmt || !strcmp(mmt, SBX_MEDIA_OCI_MANIFEST)) &&
		    str_is(member_str(sbx_json_get(m, "config"), "mediaType"), SBX_MEDIA_OCI_CONFIG);
	for (size_t i = 0; i < img->n_layers; i++) {
		struct sbx_layer_info info;
		if (sbx_layer_get_info(s, img->layers[i].diff_id, &info, err) < 0)
			return sbx_error_prefix(err, "export: layer %zu", i + 1);
		snprintf(kept[i].media_type, sizeof(kept[i].media_type), "%s", info.media_type);
		snprintf(kept[i].digest, sizeof(kept[i].digest), "%s", info.digest);
		kept[i].size = info.blob_size;
		same = same && !strcmp(info.digest, img->layers[i].blob.digest) &&
		       !strcmp(info.media_type, img->layers[i].blob.media_type);
	}
	_cleanup_free_ char *manifest = NULL;
	size_t manifest_len = img->manifest_len;
	char manifest_digest[SBX_DIGEST_LEN];
	if (same) {
		manifest = strdup(img->manifest);
		if (!manifest)
			return sbx_error_errno(err, ENOMEM, "export");
	} else {
		struct sbx_oci_descriptor cfg = { .size = (int64_t)img->config_len };
		snprintf(cfg.media_type, sizeof(cfg.media_type), "%s", SBX_MEDIA_OCI_CONFIG);
		snprintf(cfg.digest, sizeof(cfg.digest), "%s", img->config_digest);
		if (synth_manifest(&cfg, kept, img->n_layers, &manifest, &manifest_len, err) < 0)
			return -1;
	}
	sbx_sha256_buf(manifest, manifest_len, manifest_digest);

	static const char layout[] = "{\"imageLayoutVersion\":\"" SBX_MEDIA_OCI_LAYOUT_VERSION "\"}";
	if (ex_bytes(x, "oci-layout", layout, sizeof(layout) - 1) < 0)
		return -1;
	if (x->format == SBX_EXPORT_OCI_DIR) {
		if ((mkdirat(x->dirfd, "blobs", 0755) < 0 && errno != EEXIST) ||
		    (mkdirat(x->dirfd, "blobs/sha256", 0755) < 0 && errno != EEXIST))
			return sbx_error_errno(err, errno, "export: blobs");
	} else if (ex_tar_header(x, "blobs/", AE_IFDIR, 0) < 0 || ex_tar_header(x, "blobs/sha256/", AE_IFDIR, 0) < 0) {
		return -1;
	}
	char rel[128];
	/* Each blob once, however many layers name it. */
	_cleanup_free_ bool *dup = calloc(img->n_layers ? img->n_layers : 1, sizeof(*dup));
	if (!dup)
		return sbx_error_errno(err, ENOMEM, "export");
	for (size_t i = 0; i < img->n_layers; i++) {
		for (size_t k = 0; k < i && !dup[i]; k++)
			dup[i] = !strcmp(kept[k].digest, kept[i].digest);
		if (!dup[i]) {
			x->p.layers_total++;
			x->p.bytes_total += kept[i].size;
		}
	}
	ex_progress(x, 0);
	for (size_t i = 0; i < img->n_layers; i++) {
		if (dup[i])
			continue;
		_cleanup_close_ int fd = sbx_layer_open_blob(s, img->layers[i].diff_id, err);
		if (fd < 0)
			return sbx_error_prefix(err, "export");
		blob_rel(kept[i].digest, rel);
		if (ex_fd(x, rel, fd, kept[i].size) < 0)
			return -1;
		x->p.layers_done++;
		ex_progress(x, 0);
	}
	blob_rel(img->config_digest, rel);
	if (ex_bytes(x, rel, img->config_blob, img->config_len) < 0)
		return -1;
	blob_rel(manifest_digest, rel);
	if (ex_bytes(x, rel, manifest, manifest_len) < 0)
		return -1;
	return write_index(x, manifest_digest, manifest_len, x->o->tag);
}

int sbx_image_export(struct sbx_layer_store *s, const struct sbx_oci_image *img, const char *dest,
		     const struct sbx_image_export_opts *o, sbx_error **err)
{
	const char *tag = o->tag;
	enum sbx_image_export_format format = o->format;
	if (tag && (!*tag || strlen(tag) > 128 || strpbrk(tag, "/ \t\n")))
		return sbx_error_param(err, "tag", "'%.140s' is not a valid tag", tag);
	struct stat st;
	if (lstat(dest, &st) == 0)
		return sbx_error_set(err, SBX_ERR_EXISTS, "export: '%s' already exists", dest);
	char id[13];
	if (sbx_random_id(id, err) < 0)
		return -1;
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.partial-%s", dest, id) < 0)
		return sbx_error_errno(err, ENOMEM, "export");
	struct exporter x = { .format = format, .dirfd = -1, .err = err, .o = o };
	int rc = -1;
	if (format == SBX_EXPORT_OCI_DIR) {
		if (mkdir(tmp, 0755) < 0)
			return sbx_error_errno(err, errno, "export: create '%s'", tmp);
		x.dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (x.dirfd < 0) {
			sbx_error_errno(err, errno, "export: open '%s'", tmp);
			goto out;
		}
	} else {
		x.buf = malloc(1 << 20);
		x.tar = archive_write_new();
		if (!x.buf || !x.tar || archive_write_set_format_pax_restricted(x.tar) != ARCHIVE_OK ||
		    archive_write_set_bytes_in_last_block(x.tar, 1) != ARCHIVE_OK ||
		    archive_write_open_filename(x.tar, tmp) != ARCHIVE_OK) {
			sbx_error_set(err, SBX_ERR_INTERNAL, "export: create '%s': %s", tmp,
				      x.tar ? archive_error_string(x.tar) : "out of memory");
			goto out;
		}
	}
	if (export_into(s, img, &x) < 0)
		goto out;
	if (x.tar && archive_write_close(x.tar) != ARCHIVE_OK) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "export: write '%s': %s", tmp, archive_error_string(x.tar));
		goto out;
	}
	if (x.dirfd >= 0 && syncfs(x.dirfd) < 0) {
		sbx_error_errno(err, errno, "export: sync '%s'", tmp);
		goto out;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) < 0) {
		sbx_error_errno(err, errno, "export: rename to '%s'", dest);
		goto out;
	}
	rc = 0;
out:
	if (x.dirfd >= 0)
		close(x.dirfd);
	if (x.tar)
		archive_write_free(x.tar);
	free(x.buf);
	if (rc < 0) {
		sbx_error *ignored = NULL;
		sbx_rm_rf_at(AT_FDCWD, tmp, &ignored);
		sbx_error_free(ignored);
	}
	return rc;
}
