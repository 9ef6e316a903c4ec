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
#include "registry/images.h"
#include "registry/sandbox.h"

static void import_done(struct sbx_daemon *d, void *ctx, sbx_error *werr)
{
	struct sbx_image_import *job = ctx;
	sbx_error *err = NULL;
	struct sbx_image *img = NULL;
	if (werr) {
		sbx_error_set(&err, werr->code, "import '%s': %s", job->path, werr->msg);
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
		sbx_image_gen(g, img);
	sbx_reply_end(req, g);
}

void rpc_image_import(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *name = NULL, *path = NULL, *format = "auto";
	bool fd = false;
	if (sbx_json_string(req->params, "name", true, &name, &err) < 0 ||
	    sbx_json_string(req->params, "format", false, &format, &err) < 0 ||
	    sbx_json_bool(req->params, "fd", false, &fd, &err) < 0)
		return sbx_reply_error(req, err);
	if (fd) {
		sbx_error_set(&err, SBX_ERR_UNSUPPORTED, "importing from a passed fd is not supported yet; give 'path'");
		return sbx_reply_error(req, err);
	}
	if (sbx_json_string(req->params, "path", true, &path, &err) < 0)
		return sbx_reply_error(req, err);
	struct sbx_image_import *job = sbx_image_import_prepare(req->d, name, path, format, &err);
	if (!job)
		return sbx_reply_error(req, err);
	job->req = req;
	if (sbx_worker_start(req->d, sbx_image_import_run, job, import_done, job, &err) < 0) {
		sbx_image_import_abort(job);
		sbx_image_import_free(job);
		return sbx_reply_error(req, err);
	}
}

void rpc_image_list(struct sbx_request *req)
{
	yajl_gen g = sbx_reply_begin(req);
	if (g) {
		yajl_gen_map_open(g);
		sbx_gen_key(g, "images");
		yajl_gen_array_open(g);
		for (struct sbx_image *i = req->d->images; i; i = i->next)
			sbx_image_gen(g, i);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	sbx_reply_end(req, g);
}

static struct sbx_image *image_from_params(struct sbx_request *req, sbx_error **err)
{
	const char *name = NULL;
	if (sbx_json_string(req->params, "name", true, &name, err) < 0)
		return NULL;
	struct sbx_image *img = sbx_image_find(req->d, name);
	if (!img)
		sbx_error_set(err, SBX_ERR_NOT_FOUND, "image \"%.128s\" not found; run 'sandboxctl image ls'", name);
	return img;
}

void rpc_image_inspect(struct sbx_request *req)
{
	sbx_error *err = NULL;
	struct sbx_image *img = image_from_params(req, &err);
	if (!img)
		return sbx_reply_error(req, err);
	yajl_gen g = sbx_reply_begin(req);
	if (g)
		sbx_image_gen(g, img);
	sbx_reply_end(req, g);
}

void rpc_image_remove(struct sbx_request *req)
{
	sbx_error *err = NULL;
	bool force = false;
	struct sbx_image *img = image_from_params(req, &err);
	if (!img || sbx_json_bool(req->params, "force", false, &force, &err) < 0 ||
	    sbx_image_remove(req->d, img, force, &err) < 0)
		return sbx_reply_error(req, err);
	sbx_reply_empty(req);
}
