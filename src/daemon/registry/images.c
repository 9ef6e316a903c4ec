/* The image registry: images/<id>/ below the state dir holds image.json
 * (metadata) and rootfs/ (the lower layer of every sandbox made from it); a
 * directory without image.json is an unfinished import. Imports are
 * prepared here, unpacked in a worker and committed here. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "registry/images.h"
#include "registry/sandbox.h"
#include "trash.h"

bool sbx_image_name_valid(const char *name)
{
	if (!name || !*name || strlen(name) > 128)
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
	free(img->name);
	free(img->source);
	free(img->format);
	free(img);
}

static struct sbx_image *image_load(struct sbx_daemon *d, const char *id)
{
	char path[64];
	snprintf(path, sizeof(path), "images/%s/image.json", id);
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(d->state_fd, path, 1 << 20, &text, NULL, NULL) < 0)
		return NULL;
	_cleanup_json_ yajl_val v = sbx_json_parse(text, NULL);
	const char *name = NULL, *source = NULL, *format = NULL, *created = NULL;
	int64_t size = 0, created_ns = 0;
	if (!v || sbx_json_string(v, "name", true, &name, NULL) <= 0)
		return NULL;
	sbx_json_string(v, "source", false, &source, NULL);
	sbx_json_string(v, "format", false, &format, NULL);
	sbx_json_string(v, "created_at", false, &created, NULL);
	sbx_json_int(v, "size_bytes", false, 0, INT64_MAX, &size, NULL);
	sbx_json_int(v, "created_ns", false, 0, INT64_MAX, &created_ns, NULL);
	struct sbx_image *img = calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	snprintf(img->id, sizeof(img->id), "%s", id);
	img->name = strdup(name);
	img->source = source ? strdup(source) : NULL;
	img->format = strdup(format ? format : "dir");
	img->size_bytes = size;
	img->created_ns = created_ns;
	if (!img->name || !img->format) {
		image_free(img);
		return NULL;
	}
	return img;
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
			/* Leftover of an import interrupted by a crash. */
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

struct sbx_image *sbx_image_find(struct sbx_daemon *d, const char *name_or_id)
{
	for (struct sbx_image *i = d->images; i; i = i->next)
		if (!strcmp(i->name, name_or_id))
			return i;
	for (struct sbx_image *i = d->images; i; i = i->next)
		if (!strcmp(i->id, name_or_id))
			return i;
	return NULL;
}

void sbx_image_gen(yajl_gen g, struct sbx_image *img)
{
	char ts[64];
	sbx_time_rfc3339(img->created_ns, ts);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "name", img->name);
	sbx_gen_kv_str(g, "id", img->id);
	sbx_gen_kv_int(g, "size_bytes", img->size_bytes);
	sbx_gen_kv_str(g, "created_at", ts);
	sbx_gen_kv_int(g, "layers", 1);
	sbx_gen_kv_str(g, "format", img->format);
	sbx_gen_kv_str(g, "source", img->source);
	yajl_gen_map_close(g);
}

char *sbx_image_rootfs_path(struct sbx_daemon *d, const struct sbx_image *img)
{
	char *p = NULL;
	if (asprintf(&p, "%s/images/%s/rootfs", d->cfg.state_dir, img->id) < 0)
		return NULL;
	return p;
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
	free(job->format);
	free(job->dest);
	free(job);
}

/* Worker side: unpack, measure, and write the metadata next to rootfs. */
int sbx_image_import_run(void *arg, sbx_error **err)
{
	struct sbx_image_import *job = arg;
	int r = !strcmp(job->format, "dir") ? sbx_image_copy_dir(job->path, job->dest, err)
					     : sbx_image_unpack_tar(job->path, -1, job->dest, err);
	if (r < 0)
		return -1;
	chmod(job->dest, 0755);
	/* Workers hold none of the daemon's fds: go by path. */
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/%s", job->d->cfg.state_dir, job->tmpdir);
	_cleanup_close_ int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0)
		return sbx_error_errno(err, errno, "open %s", tmp);
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	char ts[64];
	int64_t now = sbx_now_ns();
	sbx_time_rfc3339(now, ts);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "name", job->name);
	sbx_gen_kv_str(g, "source", job->path);
	sbx_gen_kv_str(g, "format", job->format);
	sbx_gen_kv_int(g, "size_bytes", sbx_tree_size(tfd, "rootfs"));
	sbx_gen_kv_str(g, "created_at", ts);
	sbx_gen_kv_int(g, "created_ns", now);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	return sbx_write_file_atomic_at(tfd, "image.json", buf, len, 0644, err);
}

/* Loop side: move the finished directory into place and register it. */
struct sbx_image *sbx_image_import_commit(struct sbx_image_import *job, sbx_error **err)
{
	struct sbx_daemon *d = job->d;
	char final[32];
	snprintf(final, sizeof(final), "images/%s", job->id);
	if (renameat(d->state_fd, job->tmpdir, d->state_fd, final) < 0) {
		sbx_error_errno(err, errno, "rename %s", job->tmpdir);
		return NULL;
	}
	struct sbx_image *img = image_load(d, job->id);
	if (!img) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "image %s: metadata unreadable after import", job->id);
		return NULL;
	}
	img->next = d->images;
	d->images = img;
	sbx_info("image '%s' (%s) imported from %s", img->name, img->id, job->path);
	return img;
}

void sbx_image_import_abort(struct sbx_image_import *job)
{
	sbx_error *e = NULL;
	if (sbx_rm_rf_at(job->d->state_fd, job->tmpdir, &e) < 0)
		sbx_warn("clean up %s: %s", job->tmpdir, e->msg);
	sbx_error_free(e);
}

struct sbx_image_import *sbx_image_import_prepare(struct sbx_daemon *d, const char *name, const char *path, const char *format,
					 sbx_error **err)
{
	if (!sbx_image_name_valid(name)) {
		sbx_error_param(err, "name", "invalid image name '%.64s': use letters, digits and _ . - : /", name);
		return NULL;
	}
	if (sbx_image_find(d, name)) {
		sbx_error_set(err, SBX_ERR_EXISTS, "image '%s' already exists; remove it first with 'sandboxctl image rm %s'",
			      name, name);
		return NULL;
	}
	for (struct sbx_image_import *j = importing; j; j = j->next) {
		if (!strcmp(j->name, name)) {
			sbx_error_set(err, SBX_ERR_EXISTS, "image '%s' is being imported right now", name);
			return NULL;
		}
	}
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
	if (!strcmp(format, "auto"))
		format = S_ISDIR(st.st_mode) ? "dir" : "rootfs-tar";
	if (!strcmp(format, "oci") || !strcmp(format, "docker-archive")) {
		sbx_error_set(err, SBX_ERR_UNSUPPORTED, "image format '%s' is not supported yet; use 'dir' or 'rootfs-tar'",
			      format);
		return NULL;
	}
	if (strcmp(format, "dir") && strcmp(format, "rootfs-tar")) {
		sbx_error_param(err, "format", "unknown image format '%s': use auto, dir, rootfs-tar, oci or docker-archive",
				format);
		return NULL;
	}
	if (!strcmp(format, "dir") != !!S_ISDIR(st.st_mode)) {
		sbx_error_param(err, "format", "'%s' is %s a directory, but format is '%s'", path,
				S_ISDIR(st.st_mode) ? "" : "not", format);
		return NULL;
	}
	struct sbx_image_import *job = calloc(1, sizeof(*job));
	if (!job || sbx_random_id(job->id, err) < 0) {
		free(job);
		sbx_error_errno(err, ENOMEM, "import");
		return NULL;
	}
	job->d = d;
	snprintf(job->tmpdir, sizeof(job->tmpdir), "images/tmp-%s", job->id);
	job->name = strdup(name);
	job->path = strdup(path);
	job->format = strdup(format);
	if (asprintf(&job->dest, "%s/%s/rootfs", d->cfg.state_dir, job->tmpdir) < 0)
		job->dest = NULL;
	job->next = importing;
	importing = job;
	if (!job->name || !job->path || !job->format || !job->dest) {
		sbx_image_import_free(job);
		sbx_error_errno(err, ENOMEM, "import");
		return NULL;
	}
	char rootfs[64];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", job->tmpdir);
	if (mkdirat(d->state_fd, job->tmpdir, 0700) < 0 || mkdirat(d->state_fd, rootfs, 0755) < 0) {
		sbx_error_errno(err, errno, "create %s", job->tmpdir);
		sbx_image_import_abort(job);
		sbx_image_import_free(job);
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
	struct sbx_image_import *job = sbx_image_import_prepare(d, d->cfg.default_image, path, "auto", err);
	if (!job)
		return sbx_error_prefix(err, "default image");
	/* In a child all the same (libarchive changes the cwd), but waited
	 * for here: this runs before the socket accepts anyone. */
	int r = sbx_worker_run_sync(sbx_image_import_run, job, err);
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

int sbx_image_remove(struct sbx_daemon *d, struct sbx_image *img, bool force, sbx_error **err)
{
	char rel[32];
	snprintf(rel, sizeof(rel), "images/%s", img->id);
	if (sbx_image_in_use(d, img->id)) {
		if (!force)
			return sbx_error_set(err, SBX_ERR_BAD_STATE,
					     "image '%s' is used by a sandbox; delete those sandboxes first or pass force",
					     img->name);
		/* Forced: the name is free at once; the files stay (under another
		 * name) while a sandbox still uses them, and go with the last one. */
		char removed[48];
		snprintf(removed, sizeof(removed), "images/removed-%s", img->id);
		if (renameat(d->state_fd, rel, d->state_fd, removed) < 0)
			return sbx_error_errno(err, errno, "image '%s': set aside", img->name);
		sbx_warn("image '%s' removed while sandboxes use it; its files stay until they are deleted", img->name);
	} else if (sbx_trash(d, rel, err) < 0) {
		return -1;
	}
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
