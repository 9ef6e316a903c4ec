/* The image registry: images/<id>/ below the state dir holds image.json
 * (metadata) and either rootfs/ (a root file system image: the lower layer
 * of every sandbox made from it) or manifest.json and config.json (a
 * layered image, whose layers are in the layer store under STATE/layers,
 * referenced by the image's id). A directory without image.json is an
 * unfinished import. Imports and pulls are prepared here, run in a worker
 * and committed here. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsops.h"
#include "image.h"
#include "imageref.h"
#include "layers.h"
#include "oci.h"
#include "pull.h"
#include "registry/images.h"
#include "registry/sandbox.h"
#include "trash.h"

bool sbx_image_name_valid(const char *name)
{
	if (!name || !*name || strlen(name) > SBX_IMAGE_REF_MAX)
		return false;
	if (sbx_image_ref_valid(name))
		return true;
	if (strlen(name) > 128)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-' || c == ':' || c == '/'))
			return false;
	}
	return !strstr(name, "..") && !strstr(name, "//");
}

static void image_free(struct sbx_image *img)
{
	sbx_strv_free(img->names);
	free(img->source);
	free(img->format);
	free(img->digest);
	free(img->base_id);
	sbx_oci_image_free(img->oci);
	free(img);
}

static struct sbx_image *image_load_dir(struct sbx_daemon *d, const char *dir, const char *id)
{
	char path[64];
	snprintf(path, sizeof(path), "images/%s/image.json", dir);
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(d->state_fd, path, 1 << 20, &text, NULL, NULL) < 0)
		return NULL;
	_cleanup_json_ yajl_val v = sbx_json_parse(text, NULL);
	const char *name = NULL, *source = NULL, *format = NULL, *digest = NULL, *base_id = NULL;
	int64_t size = 0, created_ns = 0;
	if (!v || sbx_json_string(v, "name", true, &name, NULL) <= 0)
		return NULL;
	sbx_json_string(v, "base_image", false, &base_id, NULL);
	sbx_json_string(v, "source", false, &source, NULL);
	sbx_json_string(v, "format", false, &format, NULL);
	sbx_json_string(v, "digest", false, &digest, NULL);
	sbx_json_int(v, "size_bytes", false, 0, INT64_MAX, &size, NULL);
	sbx_json_int(v, "created_ns", false, 0, INT64_MAX, &created_ns, NULL);
	struct sbx_image *img = calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	snprintf(img->id, sizeof(img->id), "%s", id);
	char **names = NULL;
	if (sbx_json_string_array(v, "names", false, &names, NULL) < 0 || !names || !names[0]) {
		sbx_strv_free(names);
		names = calloc(2, sizeof(*names));
		if (names)
			names[0] = strdup(name);
	}
	img->names = names;
	img->name = names ? names[0] : NULL;
	img->source = source ? strdup(source) : NULL;
	img->format = strdup(format ? format : "dir");
	img->digest = digest ? strdup(digest) : NULL;
	img->base_id = base_id ? strdup(base_id) : NULL;
	img->size_bytes = size;
	img->created_ns = created_ns;
	if (!img->name || !img->format) {
		image_free(img);
		return NULL;
	}
	snprintf(path, sizeof(path), "images/%s/manifest.json", dir);
	if (faccessat(d->state_fd, path, F_OK, 0) == 0) {
		snprintf(path, sizeof(path), "images/%s", dir);
		_cleanup_close_ int dfd = openat(d->state_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		sbx_error *e = NULL;
		if (dfd < 0 || sbx_oci_image_load(dfd, &img->oci, &e) < 0) {
			sbx_warn("image %s: %s", id, e ? e->msg : strerror(errno));
			sbx_error_free(e);
			image_free(img);
			return NULL;
		}
	}
	return img;
}

static struct sbx_image *image_load(struct sbx_daemon *d, const char *id)
{
	return image_load_dir(d, id, id);
}

/* image.json from the record (atomic): after a name is added or dropped. */
static int image_save(struct sbx_daemon *d, const char *dir, const struct sbx_image *img, sbx_error **err)
{
	char ts[64], path[64];
	sbx_time_rfc3339(img->created_ns, ts);
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "name", img->name);
	sbx_gen_strv(g, "names", img->names);
	sbx_gen_kv_str(g, "source", img->source);
	sbx_gen_kv_str(g, "format", img->format);
	if (img->digest)
		sbx_gen_kv_str(g, "digest", img->digest);
	if (img->base_id)
		sbx_gen_kv_str(g, "base_image", img->base_id);
	sbx_gen_kv_int(g, "size_bytes", img->size_bytes);
	sbx_gen_kv_str(g, "created_at", ts);
	sbx_gen_kv_int(g, "created_ns", img->created_ns);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	snprintf(path, sizeof(path), "images/%s/image.json", dir);
	return sbx_write_file_atomic_at(d->state_fd, path, buf, len, 0644, err);
}

int sbx_images_open_layers(struct sbx_daemon *d, sbx_error **err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/layers", d->cfg.state_dir) < 0)
		return sbx_error_errno(err, ENOMEM, "layer store");
	if (sbx_layer_store_open(path, &d->layers, err) < 0 || sbx_layer_store_recover(d->layers, err) < 0)
		return sbx_error_prefix(err, "layer store %s", path);
	return 0;
}

static bool owner_known(struct sbx_daemon *d, const char *owner)
{
	for (struct sbx_image *i = d->images; i; i = i->next)
		if (!strcmp(i->id, owner))
			return true;
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (!strcmp(sb->id, owner))
			return true;
	/* A layered image removed by force waits as removed-<id>. */
	char path[64];
	snprintf(path, sizeof(path), "images/removed-%.12s", owner);
	return faccessat(d->state_fd, path, F_OK, 0) == 0;
}

void sbx_images_release_orphans(struct sbx_daemon *d)
{
	if (!d->layers)
		return;
	char **ids = NULL;
	sbx_error *e = NULL;
	if (sbx_layer_list(d->layers, &ids, &e) < 0) {
		sbx_warn("%s", e->msg);
		sbx_error_free(e);
		return;
	}
	for (size_t i = 0; ids && ids[i]; i++) {
		char **owners = NULL;
		if (sbx_layer_owners(d->layers, ids[i], &owners, &e) < 0) {
			sbx_warn("%s", e->msg);
			sbx_error_free(e);
			e = NULL;
			continue;
		}
		for (size_t j = 0; owners && owners[j]; j++) {
			/* Only owners of the kinds made here (image, import and
			 * sandbox ids; exports): others belong to someone else. */
			const char *o = owners[j];
			if (!sbx_id_valid(o) && !(!strncmp(o, "export-", 7) && sbx_id_valid(o + 7)))
				continue;
			if (owner_known(d, o))
				continue;
			sbx_info("layer %.19s: dropping the reference of %s, which no longer exists", ids[i], owners[j]);
			if (sbx_layer_unref(d->layers, ids[i], owners[j], &e) < 0) {
				sbx_warn("%s", e->msg);
				sbx_error_free(e);
				e = NULL;
			}
		}
		sbx_strv_free(owners);
	}
	sbx_strv_free(ids);
}

struct release_job {
	char owner[13];
	char *store;
};

static int release_run(void *arg, sbx_error **err)
{
	struct release_job *job = arg;
	_cleanup_layer_store_ struct sbx_layer_store *s = NULL;
	if (sbx_layer_store_open(job->store, &s, err) < 0)
		return -1;
	return sbx_layer_release_owner(s, job->owner, err);
}

static void release_done(struct sbx_daemon *d, void *ctx, sbx_error *err)
{
	struct release_job *job = ctx;
	(void)d;
	if (err)
		sbx_warn("release layers of %s: %s", job->owner, err->msg);
	free(job->store);
	free(job);
}

void sbx_layers_release_async(struct sbx_daemon *d, const char *owner)
{
	if (!d->layers)
		return;
	struct release_job *job = calloc(1, sizeof(*job));
	sbx_error *e = NULL;
	if (job && (job->store = strdup(sbx_layer_store_path(d->layers)))) {
		snprintf(job->owner, sizeof(job->owner), "%s", owner);
		if (sbx_worker_start(d, release_run, job, release_done, job, &e) == 0)
			return;
	}
	/* No worker: the references stay until the next start drops them. */
	sbx_warn("release layers of %s: %s", owner, e ? e->msg : "out of memory");
	sbx_error_free(e);
	if (job)
		free(job->store);
	free(job);
}

int sbx_images_load(struct sbx_daemon *d, sbx_error **err)
{
	if (mkdirat(d->state_fd, "images", 0700) < 0 && errno != EEXIST)
		return sbx_error_errno(err, errno, "create %s/images", d->cfg.state_dir);
	int fd = openat(d->state_fd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open %s/images", d->cfg.state_dir);
	_cleanup_closedir_ DIR *dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return sbx_error_errno(err, errno, "read %s/images", d->cfg.state_dir);
	}
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (!sbx_id_valid(de->d_name)) {
			/* Leftover of an import interrupted by a crash (its layer
			 * references go with sbx_images_release_orphans). */
			sbx_error *e = NULL;
			if (!strncmp(de->d_name, "tmp-", 4) && sbx_rm_rf_at(dirfd(dir), de->d_name, &e) < 0)
				sbx_warn("remove unfinished import %s: %s", de->d_name, e->msg);
			sbx_error_free(e);
			continue;
		}
		struct sbx_image *img = image_load(d, de->d_name);
		if (!img) {
			sbx_warn("image directory %s/images/%s has no readable image.json; ignoring it", d->cfg.state_dir,
				 de->d_name);
			continue;
		}
		img->next = d->images;
		d->images = img;
	}
	return 0;
}

static bool image_has_name(const struct sbx_image *img, const char *name)
{
	for (size_t i = 0; img->names[i]; i++)
		if (!strcmp(img->names[i], name))
			return true;
	return false;
}

static char *normalized(const char *name)
{
	struct sbx_image_ref r = { 0 };
	if (!sbx_image_ref_valid(name) || sbx_image_ref_parse(name, "name", &r, NULL) < 0)
		return NULL;
	char *n = sbx_image_ref_normalize(&r);
	sbx_image_ref_free(&r);
	return n;
}

struct sbx_image *sbx_image_find(struct sbx_daemon *d, const char *name_or_id)
{
	for (struct sbx_image *i = d->images; i; i = i->next)
		if (image_has_name(i, name_or_id))
			return i;
	for (struct sbx_image *i = d->images; i; i = i->next)
		if (!strcmp(i->id, name_or_id))
			return i;
	/* "busybox" finds a pulled "docker.io/library/busybox:latest" and the
	 * other way round: names are compared in their full form. */
	_cleanup_free_ char *want = normalized(name_or_id);
	if (!want)
		return NULL;
	for (struct sbx_image *i = d->images; i; i = i->next) {
		for (size_t k = 0; i->names[k]; k++) {
			_cleanup_free_ char *n = normalized(i->names[k]);
			if (n && !strcmp(n, want))
				return i;
		}
	}
	return NULL;
}

static void gen_config(yajl_gen g, const struct sbx_image_config *c)
{
	sbx_gen_key(g, "config");
	yajl_gen_map_open(g);
	sbx_gen_strv(g, "env", c->env);
	sbx_gen_kv_str(g, "working_dir", c->working_dir);
	sbx_gen_kv_str(g, "user", c->user);
	if (c->entrypoint)
		sbx_gen_strv(g, "entrypoint", c->entrypoint);
	else
		sbx_gen_kv_null(g, "entrypoint");
	if (c->cmd)
		sbx_gen_strv(g, "cmd", c->cmd);
	else
		sbx_gen_kv_null(g, "cmd");
	sbx_gen_strv(g, "exposed_ports", c->exposed_ports);
	sbx_gen_kv_str(g, "stop_signal", c->stop_signal);
	sbx_gen_kvlist(g, "labels", &c->labels);
	sbx_gen_kv_str(g, "os", c->os);
	sbx_gen_kv_str(g, "architecture", c->architecture);
	sbx_gen_kv_str(g, "created", c->created);
	yajl_gen_map_close(g);
}

void sbx_image_gen(yajl_gen g, struct sbx_image *img, bool detail)
{
	char ts[64];
	sbx_time_rfc3339(img->created_ns, ts);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "name", img->name);
	sbx_gen_strv(g, "names", img->names);
	sbx_gen_kv_str(g, "id", img->id);
	sbx_gen_kv_str(g, "digest", img->digest);
	sbx_gen_kv_int(g, "size_bytes", img->size_bytes);
	sbx_gen_kv_str(g, "created_at", ts);
	sbx_gen_kv_int(g, "layers", img->oci ? (int64_t)img->oci->n_layers : 1);
	sbx_gen_kv_str(g, "format", img->format);
	sbx_gen_kv_str(g, "source", img->source);
	if (img->base_id)
		sbx_gen_kv_str(g, "base_image", img->base_id);
	if (img->oci) {
		/* What the image offers, short enough for a listing. */
		sbx_gen_strv(g, "exposed_ports", img->oci->config.exposed_ports);
	}
	if (detail && img->oci) {
		gen_config(g, &img->oci->config);
		sbx_gen_key(g, "layer_digests");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < img->oci->n_layers; i++) {
			const struct sbx_image_layer *l = &img->oci->layers[i];
			yajl_gen_map_open(g);
			sbx_gen_kv_str(g, "diff_id", l->diff_id);
			sbx_gen_kv_str(g, "digest", l->blob.digest);
			sbx_gen_kv_str(g, "media_type", l->blob.media_type);
			sbx_gen_kv_int(g, "size", l->blob.size);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
}

char **sbx_image_lowerdirs(struct sbx_daemon *d, const struct sbx_image *img)
{
	if (img->oci)
		return d->layers ? sbx_oci_image_lowerdirs(d->layers, img->oci) : NULL;
	char **v = calloc(2, sizeof(*v));
	if (v && asprintf(&v[0], "%s/images/%s/rootfs", d->cfg.state_dir, img->id) < 0) {
		free(v);
		return NULL;
	}
	return v;
}

int sbx_image_ref_layers(struct sbx_daemon *d, const struct sbx_image *img, const char *owner, sbx_error **err)
{
	if (!img->oci)
		return 0;
	for (size_t i = 0; i < img->oci->n_layers; i++) {
		if (sbx_layer_ref(d->layers, img->oci->layers[i].diff_id, owner, NULL, err) < 0) {
			sbx_error *e = NULL;
			sbx_layer_release_owner(d->layers, owner, &e);
			sbx_error_free(e);
			return sbx_error_prefix(err, "image '%s'", img->name);
		}
	}
	return 0;
}

static struct sbx_image_import *importing; /* names being imported right now */

void sbx_image_import_free(struct sbx_image_import *job)
{
	for (struct sbx_image_import **pp = &importing; *pp; pp = &(*pp)->next) {
		if (*pp == job) {
			*pp = job->next;
			break;
		}
	}
	free(job->name);
	free(job->path);
	free(job->label);
	sbx_closep(&job->client_fd);
	free(job->format);
	free(job->ref);
	free(job->authfile);
	free(job->builder);
	free(job->layers_path);
	free(job->dest);
	free(job);
}

/* ---- the worker's side ---- */

void sbx_progress_line(struct sbx_progress_out *po, const char *phase, int ld, int lt, int64_t bd, int64_t bt)
{
	int64_t now = sbx_monotonic_ms();
	bool last = lt > 0 && ld >= lt;
	/* At most four a second, and always the last. */
	if (!last && po->last_ms && now - po->last_ms < 250 && phase == po->phase)
		return;
	po->last_ms = now;
	po->phase = phase;
	dprintf(po->fd, "progress %s %d %d %lld %lld\n", phase, ld, lt, (long long)bd, (long long)bt);
}

static void import_progress(void *ctx, const struct sbx_image_progress *p)
{
	sbx_progress_line(ctx, "unpacking", p->layers_done, p->layers_total, p->bytes_done, p->bytes_total);
}

static void pull_progress(void *ctx, const struct sbx_pull_progress *p)
{
	sbx_progress_line(ctx, p->phase ? p->phase : "downloading", p->layers_done, p->layers_total, p->bytes_done,
		      p->bytes_total);
}

static int write_meta(int tfd, struct sbx_image_import *job, const char *const *names, const char *digest,
		      int64_t size, sbx_error **err)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	char ts[64];
	int64_t now = sbx_now_ns();
	sbx_time_rfc3339(now, ts);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "name", names[0]);
	sbx_gen_strv(g, "names", (char *const *)names);
	sbx_gen_kv_str(g, "source", job->label);
	sbx_gen_kv_str(g, "format", job->format);
	if (digest)
		sbx_gen_kv_str(g, "digest", digest);
	sbx_gen_kv_int(g, "size_bytes", size);
	sbx_gen_kv_str(g, "created_at", ts);
	sbx_gen_kv_int(g, "created_ns", now);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	return sbx_write_file_atomic_at(tfd, "image.json", buf, len, 0644, err);
}

/* A layered image: its layers into the store (references held by the new
 * image's id), its manifest and config beside image.json. */
static int run_layered(struct sbx_image_import *job, int tfd, int out_fd, sbx_error **err)
{
	_cleanup_layer_store_ struct sbx_layer_store *s = NULL;
	if (sbx_layer_store_open(job->layers_path, &s, err) < 0)
		return -1;
	struct sbx_progress_out po = { .fd = out_fd };
	_cleanup_oci_image_ struct sbx_oci_image *img = NULL;
	if (job->pull) {
		struct sbx_pull_opts opts = {
			.authfile = job->authfile,
			.insecure = job->insecure,
			.timeout_sec = job->timeout_s,
			.progress = out_fd >= 0 ? pull_progress : NULL,
			.progress_ctx = &po,
		};
		if (sbx_image_pull(s, job->id, job->path, &opts, &img, err) < 0)
			return -1;
	} else {
		struct sbx_image_import_opts opts = {
			.ref = job->ref,
			.progress = out_fd >= 0 ? import_progress : NULL,
			.progress_ctx = &po,
		};
		if (sbx_image_import(s, job->id, job->path, &opts, &img, err) < 0)
			return -1;
	}
	const char *name = job->name;
	if (!name && img->names && img->names[0] && sbx_image_name_valid(img->names[0]))
		name = img->names[0];
	int r = -1;
	if (!name) {
		sbx_error_param(err, "name", "the image at '%s' has no name of its own; give one", job->label);
	} else {
		const char *names[] = { name, NULL };
		if (sbx_oci_image_save(tfd, img, err) == 0 &&
		    write_meta(tfd, job, names, img->manifest_digest, img->size, err) == 0)
			r = 0;
	}
	if (r < 0) {
		sbx_error *e = NULL;
		sbx_oci_image_release(s, img, job->id, &e);
		sbx_error_free(e);
	}
	return r;
}

/* One JSON progress line of the recipe builder, passed on as the worker's
 * progress line; the "done" line's name is kept. Returns 1 for "done". */
static int builder_line(const char *line, int out_fd, char **name)
{
	_cleanup_json_ yajl_val v = sbx_json_parse(line, NULL);
	const char *phase = NULL;
	if (!v || sbx_json_string(v, "phase", true, &phase, NULL) <= 0)
		return 0;
	yajl_val b = yajl_tree_get(v, (const char *[]){ "bytes", NULL }, yajl_t_number);
	yajl_val t = yajl_tree_get(v, (const char *[]){ "total", NULL }, yajl_t_number);
	long long bytes = b && YAJL_IS_INTEGER(b) ? YAJL_GET_INTEGER(b) : 0;
	long long total = t && YAJL_IS_INTEGER(t) ? YAJL_GET_INTEGER(t) : 0;
	if (!strcmp(phase, "done")) {
		const char *n = NULL;
		if (sbx_json_string(v, "name", true, &n, NULL) > 0) {
			free(*name);
			*name = strdup(n);
		}
		return 1;
	}
	if (out_fd >= 0 && strlen(phase) < 32 && strspn(phase, "abcdefghijklmnopqrstuvwxyz_") == strlen(phase))
		dprintf(out_fd, "progress build-%s 0 0 %lld %lld\n", phase, bytes, total);
	return 0;
}

/* image.build: the recipe builder writes the image as an OCI layout into
 * the import's temporary directory (progress as JSON lines on its stdout,
 * its last words on stderr), and that layout is imported like any other;
 * the layout goes once its layers are in the store. */
static int run_builder(struct sbx_image_import *job, int tfd, int out_fd, sbx_error **err)
{
	if (out_fd >= 0)
		dprintf(out_fd, "progress building 0 0 0 0\n");
	char tmp[4200], layout[4300];
	snprintf(tmp, sizeof(tmp), "%s/%s", job->d->cfg.state_dir, job->tmpdir);
	snprintf(layout, sizeof(layout), "%s/layout", tmp);
	_cleanup_close_ int log = openat(tfd, "build.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int p[2];
	if (log < 0 || pipe2(p, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "build: log");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return sbx_error_errno(err, errno, "build: fork");
	}
	if (pid == 0) {
		if (dup2(p[1], 1) < 0 || dup2(log, 2) < 0)
			_exit(127);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		execlp("python3", "python3", job->builder, "--oci-layout", layout, "--tag", job->name, "--progress",
		       job->path, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	struct sbx_buf out = { 0 };
	_cleanup_free_ char *rname = NULL;
	bool done = false;
	for (;;) {
		if (sbx_buf_reserve(&out, 65536) < 0)
			break;
		ssize_t n = read(p[0], out.data + out.len, out.cap - out.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out.len += (size_t)n;
		out.data[out.len] = '\0';
		char *nl;
		while ((nl = memchr(out.data, '\n', out.len))) {
			*nl = '\0';
			if (builder_line(out.data, out_fd, &rname) == 1)
				done = true;
			size_t used = (size_t)(nl + 1 - out.data);
			memmove(out.data, nl + 1, out.len - used);
			out.len -= used;
			out.data[out.len] = '\0';
		}
	}
	close(p[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int r = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* The builder's last words say what went wrong. */
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		sbx_read_file_at(tfd, "build.log", 1 << 20, &text, &len, NULL);
		const char *tail = text ? text : "";
		if (len > 600) {
			const char *nl = strchr(text + len - 600, '\n');
			tail = nl && nl[1] ? nl + 1 : text + len - 600;
		}
		int code = WIFEXITED(status) && WEXITSTATUS(status) == 75 ? SBX_ERR_TIMEOUT : SBX_ERR_INVALID_PARAMS;
		if (code == SBX_ERR_INVALID_PARAMS)
			sbx_error_param(err, "recipe", "build of '%s' failed (%s %d): %s", job->path,
					WIFEXITED(status) ? "exit status" : "signal",
					WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
		else
			sbx_error_set(err, code, "build of '%s': the package mirror cannot be reached: %s", job->path, tail);
		goto out;
	}
	if (!done || !rname) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "build of '%s': the builder's output names no result", job->path);
		goto out;
	}
	free(job->path);
	free(job->ref);
	job->ref = sbx_take_ptr(&rname);
	if (!(job->path = strdup(layout))) {
		sbx_error_errno(err, ENOMEM, "build");
		goto out;
	}
	r = run_layered(job, tfd, out_fd, err);
	sbx_error *e = NULL;
	if (sbx_rm_rf_at(tfd, "layout", &e) < 0)
		sbx_warn("build of '%s': remove its layout: %s", job->name, e->msg);
	sbx_error_free(e);
out:
	sbx_buf_free(&out);
	return r;
}

/* A stream (a pipe, a socket) cannot be read twice nor from its end: it is
 * copied whole into the import's private directory, which an abort removes,
 * and read from there. */
static int spool_stream(struct sbx_image_import *job, int tfd, int out_fd, sbx_error **err)
{
	_cleanup_close_ int out = openat(tfd, "stream", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return sbx_error_errno(err, errno, "import: create the copy of the stream");
	struct sbx_progress_out po = { .fd = out_fd };
	int64_t total = 0, n;
	/* In steps, so that progress is told between them. */
	while ((n = sbx_fs_copy_fd(job->client_fd, out, 4 << 20, err)) > 0) {
		total += n;
		if (out_fd >= 0)
			sbx_progress_line(&po, "receiving", 0, 0, total, 0);
	}
	if (n < 0) {
		sbx_error_prefix(err, "import: copy the passed stream");
		return -1;
	}
	if (total == 0)
		return sbx_error_param(err, "fd", "the passed stream was empty");
	if (out_fd >= 0) {
		po.last_ms = 0;
		sbx_progress_line(&po, "receiving", 0, 0, total, total);
	}
	sbx_closep(&job->client_fd);
	char *path = NULL;
	if (asprintf(&path, "%s/%s/stream", job->d->cfg.state_dir, job->tmpdir) < 0)
		return sbx_error_errno(err, ENOMEM, "import");
	free(job->path);
	job->path = path;
	return 0;
}

static int import_from_path(struct sbx_image_import *job, int tfd, int out_fd, sbx_error **err);

/* Worker side: unpack, measure, and write the metadata. */
int sbx_image_import_run(void *arg, int out_fd, sbx_error **err)
{
	struct sbx_image_import *job = arg;
	/* Workers hold none of the daemon's fds: go by path. */
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/%s", job->d->cfg.state_dir, job->tmpdir);
	_cleanup_close_ int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0)
		return sbx_error_errno(err, errno, "open %s", tmp);
	if (job->builder)
		return run_builder(job, tfd, out_fd, err);
	if (!job->spool)
		return import_from_path(job, tfd, out_fd, err);
	int r = spool_stream(job, tfd, out_fd, err);
	if (r == 0)
		r = import_from_path(job, tfd, out_fd, err);
	/* The copy is not part of the image. */
	unlinkat(tfd, "stream", 0);
	return r;
}

static int import_from_path(struct sbx_image_import *job, int tfd, int out_fd, sbx_error **err)
{
	if (!strcmp(job->format, "auto")) {
		enum sbx_image_kind kind;
		if (sbx_image_detect(job->path, &kind, err) < 0)
			return -1;
		free(job->format);
		if (!(job->format = strdup(sbx_image_kind_name(kind))))
			return sbx_error_errno(err, ENOMEM, "import");
	}
	bool layered = strcmp(job->format, "dir") && strcmp(job->format, "rootfs-tar");
	if (layered && !job->layers_path)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the layer store is not available");
	if (job->pull || layered)
		return run_layered(job, tfd, out_fd, err);
	if (job->ref)
		return sbx_error_param(err, "ref", "'ref' picks an image of an OCI layout or docker archive; '%s' is %s",
				       job->label, job->format);
	if (!job->name)
		return sbx_error_param(err, "name", "'%s' is a root file system, which has no name of its own; give one",
				       job->label);
	if (mkdir(job->dest, 0755) < 0)
		return sbx_error_errno(err, errno, "create %s", job->dest);
	int r = !strcmp(job->format, "dir") ? sbx_image_copy_dir(job->path, job->dest, err)
					     : sbx_image_unpack_tar(job->path, -1, job->dest, err);
	if (r < 0)
		return -1;
	chmod(job->dest, 0755);
	const char *names[] = { job->name, NULL };
	return write_meta(tfd, job, names, NULL, sbx_tree_size(tfd, "rootfs"), err);
}

static int import_run_sync(void *arg, sbx_error **err)
{
	return sbx_image_import_run(arg, -1, err);
}

/* ---- the loop's side ---- */

static bool name_busy(const struct sbx_image_import *self, const char *name)
{
	for (struct sbx_image_import *j = importing; j; j = j->next)
		if (j != self && j->name && !strcmp(j->name, name))
			return true;
	return false;
}

static int name_free(struct sbx_daemon *d, const struct sbx_image_import *self, const char *name, sbx_error **err)
{
	struct sbx_image *other = sbx_image_find(d, name);
	if (other && image_has_name(other, name))
		return sbx_error_set(err, SBX_ERR_EXISTS,
				     "image '%s' already exists; remove it first with 'sandboxctl image rm %s' or choose "
				     "another name",
				     name, name);
	if (name_busy(self, name))
		return sbx_error_set(err, SBX_ERR_EXISTS, "image '%s' is being imported right now", name);
	return 0;
}

/* Loop side: move the finished directory into place and register it. */
struct sbx_image *sbx_image_import_commit(struct sbx_image_import *job, sbx_error **err)
{
	struct sbx_daemon *d = job->d;
	struct sbx_image *img = image_load_dir(d, job->tmpdir + strlen("images/"), job->id);
	if (!img) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "image %s: metadata unreadable after import", job->id);
		return NULL;
	}
	/* A name the image brought along is known only now. */
	if (!job->name && name_free(d, job, img->name, err) < 0) {
		image_free(img);
		return NULL;
	}
	char final[32];
	snprintf(final, sizeof(final), "images/%s", job->id);
	if (renameat(d->state_fd, job->tmpdir, d->state_fd, final) < 0) {
		sbx_error_errno(err, errno, "rename %s", job->tmpdir);
		image_free(img);
		return NULL;
	}
	img->next = d->images;
	d->images = img;
	sbx_info("image '%s' (%s) %s %s", img->name, img->id, job->pull ? "pulled from" : "imported from", job->label);
	return img;
}

void sbx_image_import_abort(struct sbx_image_import *job)
{
	sbx_error *e = NULL;
	if (sbx_rm_rf_at(job->d->state_fd, job->tmpdir, &e) < 0)
		sbx_warn("clean up %s: %s", job->tmpdir, e->msg);
	sbx_error_free(e);
	/* Layers the run stored for it: a failed run dropped them already;
	 * one that finished but was not committed did not. */
	if (strcmp(job->format, "dir") && strcmp(job->format, "rootfs-tar"))
		sbx_layers_release_async(job->d, job->id);
}

static struct sbx_image_import *job_new(struct sbx_daemon *d, const char *name, const char *path,
					const char *label, const char *format, bool layered, sbx_error **err)
{
	struct sbx_image_import *job = calloc(1, sizeof(*job));
	if (!job || sbx_random_id(job->id, err) < 0) {
		free(job);
		sbx_error_errno(err, ENOMEM, "import");
		return NULL;
	}
	job->d = d;
	snprintf(job->tmpdir, sizeof(job->tmpdir), "images/tmp-%s", job->id);
	job->name = name ? strdup(name) : NULL;
	job->path = strdup(path);
	job->label = strdup(label);
	job->client_fd = -1;
	job->format = strdup(format);
	if (asprintf(&job->dest, "%s/%s/rootfs", d->cfg.state_dir, job->tmpdir) < 0)
		job->dest = NULL;
	job->layers_path = d->layers ? strdup(sbx_layer_store_path(d->layers)) : NULL;
	job->next = importing;
	importing = job;
	if ((name && !job->name) || !job->path || !job->label || !job->format || !job->dest || (layered && !job->layers_path)) {
		sbx_image_import_free(job);
		sbx_error_errno(err, ENOMEM, "import");
		return NULL;
	}
	if (mkdirat(d->state_fd, job->tmpdir, 0700) < 0) {
		sbx_error_errno(err, errno, "create %s", job->tmpdir);
		sbx_error *e = NULL;
		sbx_rm_rf_at(d->state_fd, job->tmpdir, &e);
		sbx_error_free(e);
		sbx_image_import_free(job);
		return NULL;
	}
	return job;
}

static int check_name(struct sbx_daemon *d, const char *name, sbx_error **err)
{
	if (!sbx_image_name_valid(name))
		return sbx_error_param(err, "name",
				       "invalid image name '%.64s': use a reference such as 'team/img:1.0' or letters, "
				       "digits and _ . - : /",
				       name);
	return name_free(d, NULL, name, err);
}

/* What both kinds of import check before a worker runs: path is what is
 * read (with st what it is), label how messages name it. */
static struct sbx_image_import *prepare_import(struct sbx_daemon *d, const char *name, const char *path,
					       const struct stat *st, const char *label, const char *format,
					       const char *ref, sbx_error **err)
{
	if (strcmp(format, "auto") && strcmp(format, "dir") && strcmp(format, "rootfs-tar") && strcmp(format, "oci") &&
	    strcmp(format, "docker-archive")) {
		sbx_error_param(err, "format", "unknown image format '%s': use auto, dir, rootfs-tar, oci or docker-archive",
				format);
		return NULL;
	}
	/* What a directory holds is seen at once; a file is read in the
	 * worker (a docker save archive has its manifest at the end). */
	if (!strcmp(format, "auto") && S_ISDIR(st->st_mode)) {
		enum sbx_image_kind kind;
		if (sbx_image_detect(path, &kind, err) < 0)
			return NULL;
		format = sbx_image_kind_name(kind);
	}
	if ((!strcmp(format, "dir") && !S_ISDIR(st->st_mode)) ||
	    (!strcmp(format, "rootfs-tar") && S_ISDIR(st->st_mode))) {
		sbx_error_param(err, "format", "'%s' is %s a directory, but format is '%s'", label,
				S_ISDIR(st->st_mode) ? "" : "not", format);
		return NULL;
	}
	bool layered = strcmp(format, "dir") && strcmp(format, "rootfs-tar");
	if (!layered && ref) {
		sbx_error_param(err, "ref", "'ref' picks an image of an OCI layout or docker archive; '%s' is %s", label,
				format);
		return NULL;
	}
	if (!layered && !name && strcmp(format, "auto")) {
		sbx_error_param(err, "name", "a root file system has no name of its own; give one");
		return NULL;
	}
	if (layered && strcmp(format, "auto") && !d->layers) {
		sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the layer store is not available");
		return NULL;
	}
	struct sbx_image_import *job = job_new(d, name, path, label, format, layered, err);
	if (job && ref && !(job->ref = strdup(ref))) {
		sbx_image_import_free(job);
		sbx_error_errno(err, ENOMEM, "import");
		return NULL;
	}
	return job;
}

struct sbx_image_import *sbx_image_import_prepare(struct sbx_daemon *d, const char *name, const char *path,
						  const char *format, const char *ref, sbx_error **err)
{
	if (name && check_name(d, name, err) < 0)
		return NULL;
	if (path[0] != '/') {
		sbx_error_param(err, "path", "image path '%s' must be absolute", path);
		return NULL;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		sbx_error_errno(err, errno, "image path '%s'", path);
		if (errno == ENOENT)
			sbx_error_prefix(err, "check the path exists on the daemon's host");
		return NULL;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		sbx_error_param(err, "path", "'%s' is neither a file nor a directory", path);
		return NULL;
	}
	return prepare_import(d, name, path, &st, path, format, ref, err);
}

struct sbx_image_import *sbx_image_import_prepare_fd(struct sbx_daemon *d, const char *name, int *fd,
						     const char *format, const char *ref, sbx_error **err)
{
	if (name && check_name(d, name, err) < 0)
		return NULL;
	struct stat st;
	if (fstat(*fd, &st) < 0) {
		sbx_error_errno(err, errno, "the passed descriptor");
		return NULL;
	}
	/* The worker inherits the descriptor at the same number, and reads a
	 * file or directory through its link in /proc (what is inside a
	 * directory is found by name below it). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", *fd);
	bool stream = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
	const char *label = stream ? "the passed stream" : S_ISDIR(st.st_mode) ? "the passed directory" : "the passed file";
	if (!stream && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		sbx_error_param(err, "fd", "the passed descriptor is neither a file, a directory, a pipe nor a socket");
		return NULL;
	}
	if (stream && !strcmp(format, "dir")) {
		sbx_error_param(err, "format", "a stream holds an archive, not a directory; format '%s' cannot come from it",
				format);
		return NULL;
	}
	/* A stream becomes a file before it is read. */
	struct stat as = st;
	if (stream)
		as.st_mode = S_IFREG | 0600;
	struct sbx_image_import *job = prepare_import(d, name, path, &as, label, format, ref, err);
	if (!job)
		return NULL;
	job->client_fd = sbx_take_fd(fd);
	job->spool = stream;
	return job;
}

struct sbx_image_import *sbx_image_build_prepare(struct sbx_daemon *d, const char *name, const char *recipe,
						 sbx_error **err)
{
	_cleanup_free_ char *dir = NULL, *builder = NULL;
	if (recipe[0] == '/') {
		dir = strdup(recipe);
	} else if (sbx_name_valid(recipe)) {
		if (asprintf(&dir, "%s/images/%s", PKGDATADIR, recipe) < 0)
			dir = NULL;
	} else {
		sbx_error_param(err, "recipe", "recipe '%.64s': give the name of an installed recipe or an absolute path",
				recipe);
		return NULL;
	}
	if (!dir) {
		sbx_error_errno(err, ENOMEM, "build");
		return NULL;
	}
	size_t l = strlen(dir);
	while (l > 1 && dir[l - 1] == '/')
		dir[--l] = '\0';
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : dir;
	char rfile[4200];
	snprintf(rfile, sizeof(rfile), "%s/recipe", dir);
	if (access(rfile, R_OK) < 0) {
		sbx_error_param(err, "recipe", "'%s' is not a recipe directory (no readable 'recipe' file)", dir);
		return NULL;
	}
	if (asprintf(&builder, "%.*s/build-recipe.py", (int)(base - dir - 1), dir) < 0) {
		sbx_error_errno(err, ENOMEM, "build");
		return NULL;
	}
	if (access(builder, R_OK) < 0) {
		sbx_error_errno(err, errno, "build: the recipe builder %s", builder);
		return NULL;
	}
	if (check_name(d, name ? name : base, err) < 0)
		return NULL;
	if (!d->layers) {
		sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the layer store is not available");
		return NULL;
	}
	struct sbx_image_import *job = job_new(d, name ? name : base, dir, dir, "oci", true, err);
	if (!job)
		return NULL;
	job->builder = sbx_take_ptr(&builder);
	return job;
}

struct sbx_image_import *sbx_image_pull_prepare(struct sbx_daemon *d, const char *name, const char *ref,
						bool insecure, const char *authfile, int timeout_s, sbx_error **err)
{
	struct sbx_image_ref r = { 0 };
	if (sbx_image_ref_parse(ref, "ref", &r, err) < 0)
		return NULL;
	sbx_image_ref_free(&r);
	if (check_name(d, name ? name : ref, err) < 0)
		return NULL;
	if (authfile && authfile[0] != '/') {
		sbx_error_param(err, "authfile", "auth file '%s' must be an absolute path", authfile);
		return NULL;
	}
	if (authfile && access(authfile, R_OK) < 0) {
		sbx_error_errno(err, errno, "auth file '%s'", authfile);
		return NULL;
	}
	if (!d->layers) {
		sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the layer store is not available");
		return NULL;
	}
	struct sbx_image_import *job = job_new(d, name ? name : ref, ref, ref, "pull", true, err);
	if (!job)
		return NULL;
	job->pull = true;
	job->insecure = insecure;
	job->timeout_s = timeout_s;
	if (authfile && !(job->authfile = strdup(authfile))) {
		sbx_image_import_abort(job);
		sbx_image_import_free(job);
		sbx_error_errno(err, ENOMEM, "pull");
		return NULL;
	}
	return job;
}

int sbx_images_ensure_default(struct sbx_daemon *d, sbx_error **err)
{
	if (sbx_image_find(d, d->cfg.default_image))
		return 0;
	const char *path = d->cfg.default_image_path;
	if (!path || !*path || access(path, R_OK) < 0) {
		sbx_warn("default image '%s' is not registered and '%s' is not readable; "
			 "import one with 'sandboxctl image import'",
			 d->cfg.default_image, path ? path : "");
		return 0;
	}
	sbx_info("importing default image '%s' from %s", d->cfg.default_image, path);
	struct sbx_image_import *job = sbx_image_import_prepare(d, d->cfg.default_image, path, "auto", NULL, err);
	if (!job)
		return sbx_error_prefix(err, "default image");
	/* In a child all the same (libarchive changes the cwd), but waited
	 * for here: this runs before the socket accepts anyone. */
	int r = sbx_worker_run_sync(import_run_sync, job, err);
	if (r == 0 && !sbx_image_import_commit(job, err))
		r = -1;
	if (r < 0) {
		sbx_image_import_abort(job);
		sbx_error_prefix(err, "default image");
	}
	sbx_image_import_free(job);
	return r;
}

void sbx_images_sweep_removed(struct sbx_daemon *d)
{
	_cleanup_close_ int fd = openat(d->state_fd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *dir = fd >= 0 ? fdopendir(sbx_take_fd(&fd)) : NULL;
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (strncmp(de->d_name, "removed-", 8) || !sbx_id_valid(de->d_name + 8))
			continue;
		if (sbx_image_in_use(d, de->d_name + 8))
			continue;
		char rel[300];
		snprintf(rel, sizeof(rel), "images/%s", de->d_name);
		sbx_error *e = NULL;
		if (sbx_trash(d, rel, &e) < 0)
			sbx_warn("%s", e->msg);
		sbx_error_free(e);
	}
}

/* "3fa9c2e1b07d (web), ..." of the sandboxes made from the image. */
static char *users_of(struct sbx_daemon *d, const char *image_id)
{
	struct sbx_buf b = { 0 };
	int n = 0;
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next) {
		if (!sb->image_id || strcmp(sb->image_id, image_id))
			continue;
		if (n++ < 8)
			sbx_buf_printf(&b, "%s%s (%s)", n > 1 ? ", " : "", sb->id, sb->name);
	}
	if (n > 8)
		sbx_buf_printf(&b, " and %d more", n - 8);
	if (!b.data)
		return strdup("?");
	return b.data;
}

int sbx_image_add_name(struct sbx_daemon *d, struct sbx_image *img, const char *name, sbx_error **err)
{
	if (check_name(d, name, err) < 0)
		return -1;
	size_t n = sbx_strv_len(img->names);
	char **v = calloc(n + 2, sizeof(*v));
	if (!v)
		return sbx_error_errno(err, ENOMEM, "tag");
	memcpy(v, img->names, n * sizeof(*v));
	if (!(v[n] = strdup(name))) {
		free(v);
		return sbx_error_errno(err, ENOMEM, "tag");
	}
	char **old = img->names;
	img->names = v;
	img->name = v[0];
	if (image_save(d, img->id, img, err) < 0) {
		free(v[n]);
		free(v);
		img->names = old;
		img->name = old[0];
		return -1;
	}
	free(old);
	sbx_info("image '%s' (%s) is also named '%s'", img->name, img->id, name);
	return 0;
}

static int drop_name(struct sbx_daemon *d, struct sbx_image *img, const char *name, sbx_error **err)
{
	size_t n = sbx_strv_len(img->names), at = n;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(img->names[i], name))
			at = i;
	if (at == n)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "image %s has no name '%s'", img->id, name);
	char *gone = img->names[at];
	memmove(&img->names[at], &img->names[at + 1], (n - at) * sizeof(char *));
	img->name = img->names[0];
	if (image_save(d, img->id, img, err) < 0) {
		memmove(&img->names[at + 1], &img->names[at], (n - at) * sizeof(char *));
		img->names[at] = gone;
		img->name = img->names[0];
		return -1;
	}
	sbx_info("image %s (%s): name '%s' removed", img->name, img->id, gone);
	free(gone);
	return 0;
}

/* The names of the snapshots made on image id, "a, b", or NULL. */
static char *snapshots_of(struct sbx_daemon *d, const char *id)
{
	struct sbx_buf b = { 0 };
	size_t n = 0;
	for (struct sbx_image *o = d->images; o; o = o->next) {
		if (!o->base_id || strcmp(o->base_id, id))
			continue;
		if (n++ == 8) {
			sbx_buf_printf(&b, ", ...");
			break;
		}
		sbx_buf_printf(&b, "%s%s", n > 1 ? ", " : "", o->name);
	}
	return n ? b.data : NULL;
}

int sbx_image_remove(struct sbx_daemon *d, struct sbx_image *img, const char *name, bool force, sbx_error **err)
{
	/* A name of an image that has several: only that name goes. */
	if (name && image_has_name(img, name) && sbx_strv_len(img->names) > 1)
		return drop_name(d, img, name, err);
	/* Snapshots made on it hold their own layer references, so removing it
	 * cannot break them; still, a user who removes the image a snapshot
	 * came from is told, and has to insist. */
	if (!force && !sbx_image_in_use(d, img->id)) {
		_cleanup_free_ char *snaps = snapshots_of(d, img->id);
		if (snaps)
			return sbx_error_set(err, SBX_ERR_BAD_STATE,
					     "image '%s' is the base of snapshots %s; remove those first or pass force",
					     img->name, snaps);
	}
	char rel[32];
	snprintf(rel, sizeof(rel), "images/%s", img->id);
	if (sbx_image_in_use(d, img->id)) {
		if (!force) {
			_cleanup_free_ char *users = users_of(d, img->id);
			return sbx_error_set(err, SBX_ERR_BAD_STATE,
					     "image '%s' is used by sandboxes %s; delete those sandboxes first or pass force",
					     img->name, users ? users : "?");
		}
		/* Forced: the name is free at once; the files stay (under another
		 * name) while a sandbox still uses them, and go with the last one.
		 * A layered image's sandboxes hold their own layer references. */
		char removed[48];
		snprintf(removed, sizeof(removed), "images/removed-%s", img->id);
		if (renameat(d->state_fd, rel, d->state_fd, removed) < 0)
			return sbx_error_errno(err, errno, "image '%s': set aside", img->name);
		sbx_warn("image '%s' removed while sandboxes use it; its files stay until they are deleted", img->name);
	} else if (sbx_trash(d, rel, err) < 0) {
		return -1;
	}
	if (img->oci)
		sbx_layers_release_async(d, img->id);
	for (struct sbx_image **pp = &d->images; *pp; pp = &(*pp)->next) {
		if (*pp == img) {
			*pp = img->next;
			break;
		}
	}
	sbx_info("image '%s' (%s) removed", img->name, img->id);
	image_free(img);
	return 0;
}
