/* image.*: the methods on the image registry (registry/images.c). */
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
#include "imageref.h"
#include "layers.h"
#include "oci.h"
#include "registry/images.h"
#include "registry/sandbox.h"

/* The worker's error, prefixed with what was being done. */
static sbx_error *worker_error(const sbx_error *werr, const char *what, const char *path)
{
	sbx_error *err = NULL;
	if (werr->param)
		sbx_error_param(&err, werr->param, "%s '%s': %s", what, path, werr->msg);
	else
		sbx_error_set(&err, werr->code, "%s '%s': %s", what, path, werr->msg);
	err->code = werr->code;
	err->errnum = werr->errnum;
	return err;
}

/* Progress lines from a worker ("progress PHASE LD LT BD BT") become
 * <method>.progress notifications to the caller, carrying its request id. */
static void send_progress(struct sbx_request *req, const char *line)
{
	char phase[32];
	int ld = 0, lt = 0;
	long long bd = 0, bt = 0;
	if (sscanf(line, "progress %31s %d %d %lld %lld", phase, &ld, &lt, &bd, &bt) != 5)
		return;
	if (!req || sbx_conn_closed(req->conn))
		return;
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	char method[64];
	snprintf(method, sizeof(method), "%s.progress", req->method);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "jsonrpc", "2.0");
	sbx_gen_kv_str(g, "method", method);
	sbx_gen_key(g, "params");
	yajl_gen_map_open(g);
	sbx_gen_key(g, "request_id");
	sbx_gen_value(g, req->id);
	sbx_gen_kv_str(g, "phase", phase);
	sbx_gen_kv_int(g, "bytes_done", bd);
	sbx_gen_kv_int(g, "bytes_total", bt);
	sbx_gen_kv_int(g, "layers_done", ld);
	sbx_gen_kv_int(g, "layers_total", lt);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		sbx_conn_send_line(req->conn, (const char *)buf, len);
}

/* The whole lines a streaming worker has written so far, each sent on
 * when the caller wants progress. */
static void progress_lines(struct sbx_request *req, bool wanted, struct sbx_buf *out)
{
	char *nl;
	while (out->len && (nl = memchr(out->data, '\n', out->len))) {
		*nl = '\0';
		if (wanted)
			send_progress(req, out->data);
		sbx_buf_consume(out, (size_t)(nl - out->data) + 1);
	}
}

static void import_chunk(struct sbx_daemon *d, void *ctx, struct sbx_buf *out)
{
	struct sbx_image_import *job = ctx;
	(void)d;
	progress_lines(job->req, job->progress, out);
}

static void import_done(struct sbx_daemon *d, void *ctx, sbx_error *werr, struct sbx_buf *out)
{
	struct sbx_image_import *job = ctx;
	(void)d;
	(void)out;
	sbx_error *err = NULL;
	struct sbx_image *img = NULL;
	if (werr) {
		err = worker_error(werr, job->pull ? "pull" : job->builder ? "build" : "import", job->label);
	} else {
		img = sbx_image_import_commit(job, &err);
	}
	if (!img)
		sbx_image_import_abort(job);
	struct sbx_request *req = job->req;
	sbx_image_import_free(job);
	if (!img) {
		sbx_reply_error(req, err);
		return;
	}
	yajl_gen g = sbx_reply_begin(req);
	if (g)
		sbx_image_gen(g, img, true);
	sbx_reply_end(req, g);
}

static void run_job(struct sbx_request *req, struct sbx_image_import *job)
{
	sbx_error *err = NULL;
	job->req = req;
	job->progress = true;
	sbx_json_bool(req->params, "progress", false, &job->progress, NULL);
	/* A passed descriptor is read by the worker, at the same number. */
	int keep[] = { job->client_fd };
	if (sbx_worker_start_stream(req->d, keep, job->client_fd >= 0 ? 1 : 0, sbx_image_import_run, job, import_chunk,
				    import_done, job, &err) < 0) {
		sbx_image_import_abort(job);
		sbx_image_import_free(job);
		return sbx_reply_error(req, err);
	}
}

void rpc_image_import(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *name = NULL, *path = NULL, *format = "auto", *ref = NULL;
	bool fd = false, progress = true;
	if (sbx_json_string(req->params, "name", false, &name, &err) < 0 ||
	    sbx_json_string(req->params, "format", false, &format, &err) < 0 ||
	    sbx_json_string(req->params, "ref", false, &ref, &err) < 0 ||
	    sbx_json_bool(req->params, "progress", false, &progress, &err) < 0 ||
	    sbx_json_bool(req->params, "fd", false, &fd, &err) < 0)
		return sbx_reply_error(req, err);
	struct sbx_image_import *job = NULL;
	if (fd) {
		/* The connection took the descriptor for "fd": true. */
		if (sbx_json_get(req->params, "path"))
			sbx_error_param(&err, "path", "give either 'path' or a passed descriptor (\"fd\": true), not both");
		else
			job = sbx_image_import_prepare_fd(req->d, name, &req->fd, format, ref, &err);
	} else if (sbx_json_string(req->params, "path", true, &path, &err) >= 0) {
		job = sbx_image_import_prepare(req->d, name, path, format, ref, &err);
	}
	if (!job)
		return sbx_reply_error(req, err);
	run_job(req, job);
}

void rpc_image_pull(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *name = NULL, *ref = NULL, *authfile = NULL;
	bool insecure = false, progress = true;
	int64_t timeout = 0;
	if (sbx_json_string(req->params, "ref", true, &ref, &err) < 0 ||
	    sbx_json_string(req->params, "name", false, &name, &err) < 0 ||
	    sbx_json_string(req->params, "authfile", false, &authfile, &err) < 0 ||
	    sbx_json_bool(req->params, "insecure", false, &insecure, &err) < 0 ||
	    sbx_json_bool(req->params, "progress", false, &progress, &err) < 0 ||
	    sbx_json_int(req->params, "timeout_s", false, 0, 86400, &timeout, &err) < 0)
		return sbx_reply_error(req, err);
	struct sbx_image_import *job =
		sbx_image_pull_prepare(req->d, name, ref, insecure, authfile, (int)timeout, &err);
	if (!job)
		return sbx_reply_error(req, err);
	run_job(req, job);
}

void rpc_image_build(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *name = NULL, *recipe = NULL;
	bool progress = true;
	if (sbx_json_string(req->params, "recipe", true, &recipe, &err) < 0 ||
	    sbx_json_string(req->params, "name", false, &name, &err) < 0 ||
	    sbx_json_bool(req->params, "progress", false, &progress, &err) < 0)
		return sbx_reply_error(req, err);
	struct sbx_image_import *job = sbx_image_build_prepare(req->d, name, recipe, &err);
	if (!job)
		return sbx_reply_error(req, err);
	run_job(req, job);
}

void rpc_image_list(struct sbx_request *req)
{
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_key(g, "images");
		yajl_gen_array_open(g);
		for (struct sbx_image *i = req->d->images; i; i = i->next)
			sbx_image_gen(g, i, false);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

static struct sbx_image *image_from_params(struct sbx_request *req, const char **namep, sbx_error **err)
{
	const char *name = NULL;
	if (sbx_json_string(req->params, "name", true, &name, err) < 0)
		return NULL;
	struct sbx_image *img = sbx_image_find(req->d, name);
	if (!img)
		sbx_error_set(err, SBX_ERR_NOT_FOUND, "image \"%.128s\" not found; run 'sandboxctl image ls'", name);
	if (namep)
		*namep = name;
	return img;
}

void rpc_image_inspect(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_image *img = image_from_params(req, NULL, &err);
	if (!img)
		return sbx_reply_error(req, err);
	yajl_gen g = sbx_reply_begin(req);
	if (g)
		sbx_image_gen(g, img, true);
	sbx_reply_end(req, g);
}

void rpc_image_remove(struct sbx_request *req)
{
	sbx_error *err = NULL;
	bool force = false;
	const char *name = NULL;
	struct sbx_image *img = image_from_params(req, &name, &err);
	if (!img || sbx_json_bool(req->params, "force", false, &force, &err) < 0 ||
	    sbx_image_remove(req->d, img, name, force, &err) < 0)
		return sbx_reply_error(req, err);
	sbx_reply_empty(req);
}

void rpc_image_tag(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *tag = NULL;
	struct sbx_image *img = image_from_params(req, NULL, &err);
	if (!img || sbx_json_string(req->params, "tag", true, &tag, &err) < 0 ||
	    sbx_image_add_name(req->d, img, tag, &err) < 0)
		return sbx_reply_error(req, err);
	yajl_gen g = sbx_reply_begin(req);
	if (g)
		sbx_image_gen(g, img, false);
	sbx_reply_end(req, g);
}

/* image.export: in a worker, with references of its own on the image's
 * layers so that a remove meanwhile does not take them away. */
struct export_job {
	struct sbx_request *req;
	struct sbx_oci_image *img; /* the worker's copy of the image */
	char *store;
	char *dest;
	char *tag;
	char owner[24];
	char digest[SBX_DIGEST_LEN];
	enum sbx_image_export_format format;
	bool progress; /* send image.export.progress notifications */
};

static void export_progress(void *ctx, const struct sbx_image_progress *p)
{
	sbx_progress_line(ctx, "writing", p->layers_done, p->layers_total, p->bytes_done, p->bytes_total);
}

static int export_run(void *arg, int out_fd, sbx_error **err)
{
	struct export_job *job = arg;
	_cleanup_layer_store_ struct sbx_layer_store *s = NULL;
	if (sbx_layer_store_open(job->store, &s, err) < 0)
		return -1;
	struct sbx_progress_out po = { .fd = out_fd };
	struct sbx_image_export_opts o = {
		.format = job->format,
		.tag = job->tag,
		.progress = out_fd >= 0 ? export_progress : NULL,
		.progress_ctx = &po,
	};
	return sbx_image_export(s, job->img, job->dest, &o, err);
}

static void export_chunk(struct sbx_daemon *d, void *ctx, struct sbx_buf *out)
{
	struct export_job *job = ctx;
	(void)d;
	progress_lines(job->req, job->progress, out);
}

static void export_done(struct sbx_daemon *d, void *ctx, sbx_error *werr, struct sbx_buf *out)
{
	struct export_job *job = ctx;
	(void)out;
	sbx_layers_release_async(d, job->owner);
	struct sbx_request *req = job->req;
	if (werr) {
		sbx_reply_error(req, worker_error(werr, "export to", job->dest));
	} else {
		yajl_gen g = sbx_reply_begin(req);
		if (g) {
			yajl_gen_map_open(g);
			sbx_gen_kv_str(g, "path", job->dest);
			sbx_gen_kv_str(g, "digest", job->digest);
			yajl_gen_map_close(g);
		}
		sbx_reply_end(req, g);
	}
	free(job->store);
	free(job->dest);
	free(job->tag);
	free(job);
}

void rpc_image_export(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *path = NULL, *format = "oci-dir", *tag = NULL;
	bool progress = true;
	struct sbx_image *img = image_from_params(req, NULL, &err);
	if (!img || sbx_json_string(req->params, "path", true, &path, &err) < 0 ||
	    sbx_json_string(req->params, "format", false, &format, &err) < 0 ||
	    sbx_json_string(req->params, "tag", false, &tag, &err) < 0 ||
	    sbx_json_bool(req->params, "progress", false, &progress, &err) < 0)
		return sbx_reply_error(req, err);
	enum sbx_image_export_format fmt;
	if (!strcmp(format, "oci-dir")) {
		fmt = SBX_EXPORT_OCI_DIR;
	} else if (!strcmp(format, "oci-tar")) {
		fmt = SBX_EXPORT_OCI_TAR;
	} else {
		sbx_error_param(&err, "format", "unknown export format '%.32s': use oci-dir or oci-tar", format);
		return sbx_reply_error(req, err);
	}
	if (path[0] != '/') {
		sbx_error_param(&err, "path", "export path '%s' must be absolute", path);
		return sbx_reply_error(req, err);
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		sbx_error_set(&err, SBX_ERR_EXISTS, "export path '%s' exists; give a new path", path);
		return sbx_reply_error(req, err);
	}
	if (!img->oci) {
		sbx_error_set(&err, SBX_ERR_UNSUPPORTED,
			      "image '%s' is a root file system (format %s), not a layered image; only layered images "
			      "are exported",
			      img->name, img->format);
		return sbx_reply_error(req, err);
	}
	struct export_job *job = calloc(1, sizeof(*job));
	if (!job) {
		sbx_error_errno(&err, ENOMEM, "export");
		return sbx_reply_error(req, err);
	}
	job->req = req;
	job->img = img->oci;
	job->format = fmt;
	job->progress = progress;
	job->store = strdup(sbx_layer_store_path(req->d->layers));
	job->dest = strdup(path);
	job->tag = tag ? strdup(tag) : NULL;
	char rid[13];
	if (sbx_random_id(rid, &err) < 0)
		goto fail;
	snprintf(job->owner, sizeof(job->owner), "export-%s", rid);
	snprintf(job->digest, sizeof(job->digest), "%s", img->oci->manifest_digest);
	if (!job->store || !job->dest || (tag && !job->tag)) {
		sbx_error_errno(&err, ENOMEM, "export");
		goto fail;
	}
	if (sbx_image_ref_layers(req->d, img, job->owner, &err) < 0)
		goto fail;
	if (sbx_worker_start_stream(req->d, NULL, 0, export_run, job, export_chunk, export_done, job, &err) < 0) {
		sbx_layers_release_async(req->d, job->owner);
		goto fail;
	}
	return;
fail:
	free(job->store);
	free(job->dest);
	free(job->tag);
	free(job);
	sbx_reply_error(req, err);
}
