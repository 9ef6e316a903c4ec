/* sandbox.snapshot and sandbox.fork: a sandbox's files as a new layered
 * image. The worker captures the writable layer (lib/snapshot.c), takes
 * references to the base image's layers (a root file system image is
 * stored as a layer first), and writes the image's manifest, config and
 * image.json below images/tmp-<id>/; the loop then registers it as an
 * import would. Never pauses the sandbox but for the clone. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "oci.h"
#include "registry/images.h"
#include "registry/sandbox.h"
#include "snapshot.h"
#include "snapshots.h"
#include "trash.h"

struct snap_job {
	struct sbx_daemon *d;
	struct sbx_sandbox *sb;
	struct sbx_request *req;
	bool fork;
	bool offline; /* a stopped sandbox: its files are held like an fs call's */
	char id[13];
	char tmpdir[32];
	char *name;
	char *store;     /* the layer store's path */
	char *state_dir;
	pid_t daemon;
	/* the base image, copied for the worker */
	char *base_id;
	char *base_rootfs; /* a root file system image: its tree, stored as a layer */
	struct sbx_oci_image *base; /* a layered one (the registry's, not owned) */
	struct snap_job *next;
};

static struct snap_job *running_jobs; /* names being made right now */

static void job_free(struct snap_job *j)
{
	for (struct snap_job **pp = &running_jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	if (j->sb) {
		j->sb->snapshots--;
		if (j->offline)
			j->sb->fs_offline--;
		sbx_sandbox_unref(j->sb);
	}
	free(j->name);
	free(j->store);
	free(j->state_dir);
	free(j->base_id);
	free(j->base_rootfs);
	free(j);
}

/* ---- the worker ---- */

static void gen_descriptor(yajl_gen g, const char *media, const char *digest, int64_t size)
{
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "mediaType", media);
	sbx_gen_kv_str(g, "digest", digest);
	sbx_gen_kv_int(g, "size", size);
	yajl_gen_map_close(g);
}

static void gen_strv_or_skip(yajl_gen g, const char *key, char *const *v)
{
	if (v)
		sbx_gen_strv(g, key, v);
}

/* The config: the base's, with the sandbox's env, working directory and
 * user, and the new layer's diff_id last. */
static char *make_config(const struct snap_job *j, const struct sbx_sandbox *sb, char *const *diff_ids, size_t *len)
{
	const struct sbx_image_config *bc = j->base ? &j->base->config : NULL;
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return NULL;
	char ts[64];
	sbx_time_rfc3339(sbx_now_ns(), ts);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "created", ts);
	sbx_gen_kv_str(g, "architecture", bc && bc->architecture ? bc->architecture : "amd64");
	sbx_gen_kv_str(g, "os", bc && bc->os ? bc->os : "linux");
	sbx_gen_key(g, "config");
	yajl_gen_map_open(g);
	sbx_gen_strv(g, "Env", sb->box->env ? sb->box->env : (char *[]){ NULL });
	sbx_gen_kv_str(g, "WorkingDir", sb->box->workdir);
	sbx_gen_kv_str(g, "User", sb->box->user);
	if (bc) {
		gen_strv_or_skip(g, "Entrypoint", bc->entrypoint);
		gen_strv_or_skip(g, "Cmd", bc->cmd);
		if (bc->exposed_ports && bc->exposed_ports[0]) {
			sbx_gen_key(g, "ExposedPorts");
			yajl_gen_map_open(g);
			for (size_t i = 0; bc->exposed_ports[i]; i++) {
				sbx_gen_key(g, bc->exposed_ports[i]);
				yajl_gen_map_open(g);
				yajl_gen_map_close(g);
			}
			yajl_gen_map_close(g);
		}
		if (bc->stop_signal)
			sbx_gen_kv_str(g, "StopSignal", bc->stop_signal);
		if (bc->labels.n)
			sbx_gen_kvlist(g, "Labels", &bc->labels);
	}
	yajl_gen_map_close(g);
	sbx_gen_key(g, "rootfs");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "type", "layers");
	sbx_gen_strv(g, "diff_ids", diff_ids);
	yajl_gen_map_close(g);
	sbx_gen_key(g, "history");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "created", ts);
	char by[64];
	snprintf(by, sizeof(by), "sandboxd snapshot of sandbox %s", sb->id);
	sbx_gen_kv_str(g, "created_by", by);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t n;
	yajl_gen_get_buf(g, &buf, &n);
	char *out = malloc(n + 1);
	if (out) {
		memcpy(out, buf, n);
		out[n] = '\0';
		*len = n;
	}
	return out;
}

static int write_image_json(int tfd, const struct snap_job *j, const struct sbx_oci_image *img, sbx_error **err)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return sbx_error_errno(err, ENOMEM, "snapshot");
	char ts[64], source[64];
	int64_t now = sbx_now_ns();
	sbx_time_rfc3339(now, ts);
	snprintf(source, sizeof(source), "sandbox %s", j->sb->id);
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "name", j->name);
	sbx_gen_strv(g, "names", (char *[]){ j->name, NULL });
	sbx_gen_kv_str(g, "source", source);
	sbx_gen_kv_str(g, "format", "snapshot");
	if (j->base_id)
		sbx_gen_kv_str(g, "base_image", j->base_id);
	sbx_gen_kv_str(g, "digest", img->manifest_digest);
	sbx_gen_kv_int(g, "size_bytes", img->size);
	sbx_gen_kv_str(g, "created_at", ts);
	sbx_gen_kv_int(g, "created_ns", now);
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	return sbx_write_file_atomic_at(tfd, "image.json", buf, len, 0644, err);
}

static int snap_run(void *arg, int out_fd, sbx_error **err)
{
	struct snap_job *j = arg;
	/* Dies with the daemon: the next one clears what this leaves. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != j->daemon)
		_exit(1);
	_cleanup_layer_store_ struct sbx_layer_store *s = NULL;
	if (sbx_layer_store_open(j->store, &s, err) < 0)
		return -1;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/%s", j->state_dir, j->tmpdir);
	_cleanup_close_ int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0)
		return sbx_error_errno(err, errno, "open %s", tmp);
	size_t nbase = j->base ? j->base->n_layers : 1;
	int64_t content = j->base ? j->base->size : 0; /* bytes of file content over the layers */
	struct sbx_oci_descriptor *descs = calloc(nbase + 1, sizeof(*descs));
	char **diff_ids = calloc(nbase + 2, sizeof(char *));
	char *config = NULL, *manifest = NULL;
	struct sbx_oci_image *img = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	int rc = -1;
	if (!descs || !diff_ids) {
		sbx_error_errno(err, ENOMEM, "snapshot");
		goto out;
	}
	/* The base's layers, referenced by the new image. */
	if (j->base) {
		for (size_t i = 0; i < nbase; i++) {
			if (sbx_layer_ref(s, j->base->layers[i].diff_id, j->id, NULL, err) < 0)
				goto out;
			descs[i] = j->base->layers[i].blob;
			if (!(diff_ids[i] = strdup(j->base->layers[i].diff_id))) {
				sbx_error_errno(err, ENOMEM, "snapshot");
				goto out;
			}
		}
	} else {
		_cleanup_close_ int rfd = open(j->base_rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		struct sbx_layer_info li;
		if (rfd < 0) {
			sbx_error_errno(err, errno, "open %s", j->base_rootfs);
			goto out;
		}
		if (sbx_layer_put_dir(s, j->id, rfd, 0, NULL, &li, err) < 0) {
			sbx_error_prefix(err, "store the image's root file system as a layer");
			goto out;
		}
		snprintf(descs[0].media_type, sizeof(descs[0].media_type), "%s", li.media_type);
		snprintf(descs[0].digest, sizeof(descs[0].digest), "%s", li.digest);
		descs[0].size = li.blob_size;
		content += li.size;
		if (!(diff_ids[0] = strdup(li.diff_id))) {
			sbx_error_errno(err, ENOMEM, "snapshot");
			goto out;
		}
	}
	/* The writable layer: frozen for the clone only. */
	struct sbx_snapshot_info info;
	if (sbx_box_snapshot(j->sb->box, s, j->id, &info, err) < 0)
		goto out;
	snprintf(descs[nbase].media_type, sizeof(descs[nbase].media_type), "%s", info.layer.media_type);
	snprintf(descs[nbase].digest, sizeof(descs[nbase].digest), "%s", info.layer.digest);
	descs[nbase].size = info.layer.blob_size;
	content += info.layer.size;
	if (!(diff_ids[nbase] = strdup(info.layer.diff_id))) {
		sbx_error_errno(err, ENOMEM, "snapshot");
		goto out;
	}
	size_t clen = 0;
	if (!(config = make_config(j, j->sb, diff_ids, &clen))) {
		sbx_error_errno(err, ENOMEM, "snapshot");
		goto out;
	}
	char cdigest[SBX_DIGEST_LEN];
	sbx_sha256_buf(config, clen, cdigest);
	if (!(g = sbx_gen_new())) {
		sbx_error_errno(err, ENOMEM, "snapshot");
		goto out;
	}
	yajl_gen_map_open(g);
	sbx_gen_kv_int(g, "schemaVersion", 2);
	sbx_gen_kv_str(g, "mediaType", SBX_MEDIA_OCI_MANIFEST);
	sbx_gen_key(g, "config");
	gen_descriptor(g, SBX_MEDIA_OCI_CONFIG, cdigest, (int64_t)clen);
	sbx_gen_key(g, "layers");
	yajl_gen_array_open(g);
	for (size_t i = 0; i <= nbase; i++)
		gen_descriptor(g, descs[i].media_type, descs[i].digest, descs[i].size);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	const unsigned char *mbuf;
	size_t mlen;
	yajl_gen_get_buf(g, &mbuf, &mlen);
	int mr = sbx_oci_image_from_json((const char *)mbuf, mlen, config, clen, &img, err);
	if (mr == 0) {
		img->size = content;
		mr = sbx_oci_image_save(tfd, img, err) < 0 || write_image_json(tfd, j, img, err) < 0 ? -1 : 0;
	}
	if (mr < 0) {
		sbx_error_prefix(err, "snapshot image");
		goto out;
	}
	dprintf(out_fd, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", info.pause_ms, info.files,
		info.bytes, info.reflinked, info.changed);
	rc = 0;
out:
	if (rc < 0) {
		sbx_error *e = NULL;
		sbx_layer_release_owner(s, j->id, &e);
		sbx_error_free(e);
	}
	if (img)
		sbx_oci_image_free(img);
	free(config);
	free(manifest);
	free(descs);
	sbx_strv_free(diff_ids);
	return rc;
}

/* ---- the loop ---- */

static void fork_create(struct snap_job *j, struct sbx_image *img);

static void snap_done(struct sbx_daemon *d, void *ctx, sbx_error *err, struct sbx_buf *out)
{
	struct snap_job *j = ctx;
	struct sbx_sandbox *sb = j->sb;
	sbx_error *e = NULL;
	struct sbx_image *img = NULL;
	long long pause = -1, files = 0, bytes = 0, reflinked = 0, changed = 0;
	if (err) {
		sbx_error_set(&e, err->code, "sandbox %s: snapshot: %s", sb->name, err->msg);
	} else {
		if (out && out->data)
			sscanf(out->data, "%lld %lld %lld %lld %lld", &pause, &files, &bytes, &reflinked, &changed);
		if (sbx_image_find(d, j->name)) {
			sbx_error_set(&e, SBX_ERR_EXISTS, "image '%s' already exists", j->name);
		} else {
			struct sbx_image_import commit = { .d = d, .name = j->name, .path = j->tmpdir };
			memcpy(commit.id, j->id, sizeof(commit.id));
			memcpy(commit.tmpdir, j->tmpdir, sizeof(commit.tmpdir));
			img = sbx_image_import_commit(&commit, &e);
		}
	}
	if (!img) {
		/* A worker that died in the middle may have left the group
		 * frozen: only a pause may leave it so. */
		if (sb->state == SBX_STATE_STARTED && sb->box->cgroup && !sb->stopping)
			sbx_cgroup_freeze(&d->cg, sb->box->cgroup, false, NULL);
		sbx_error *te = NULL;
		if (sbx_trash(d, j->tmpdir, &te) < 0)
			sbx_warn("%s", te->msg);
		sbx_error_free(te);
		sbx_layers_release_async(d, j->id);
		sbx_warn("%s", e->msg);
		sbx_event_emit(d, "error", sb, e->msg);
		sbx_reply_error(j->req, e);
		job_free(j);
		return;
	}
	char msg[200];
	snprintf(msg, sizeof(msg), "image '%s' (%s); %lld files, %lld bytes (%lld shared); paused %lld ms for %lld changed",
		 img->name, img->id, files, bytes, reflinked, pause, changed);
	sbx_info("sandbox %s (%s): snapshot %s", sb->id, sb->name, msg);
	sbx_event_emit(d, "snapshot", sb, msg);
	if (j->fork) {
		fork_create(j, img);
		return;
	}
	/* The image object, as the contract has it, with how the snapshot
	 * went added under "snapshot". */
	_cleanup_gen_ yajl_gen ig = sbx_gen_new();
	_cleanup_json_ yajl_val iv = NULL;
	if (ig) {
		sbx_image_gen(ig, img, false);
		const unsigned char *buf;
		size_t len;
		yajl_gen_get_buf(ig, &buf, &len);
		_cleanup_free_ char *text = strndup((const char *)buf, len);
		iv = text ? sbx_json_parse(text, NULL) : NULL;
	}
	yajl_gen g = iv && YAJL_IS_OBJECT(iv) ? sbx_reply_begin(j->req) : NULL;
	if (!g) {
		sbx_error *oe = NULL;
		sbx_error_errno(&oe, ENOMEM, "snapshot: reply");
		sbx_reply_error(j->req, oe);
		job_free(j);
		return;
	}
	yajl_gen_map_open(g);
	for (size_t i = 0; i < iv->u.object.len; i++) {
		sbx_gen_key(g, iv->u.object.keys[i]);
		sbx_gen_value(g, iv->u.object.values[i]);
	}
	sbx_gen_key(g, "snapshot");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", sb->id);
	sbx_gen_kv_int(g, "pause_ms", pause);
	sbx_gen_kv_int(g, "files", files);
	sbx_gen_kv_int(g, "bytes", bytes);
	sbx_gen_kv_int(g, "changed", changed);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	sbx_reply_end(j->req, g);
	job_free(j);
}

static int snap_start(struct sbx_request *req, bool fork, const char *default_prefix)
{
	struct sbx_daemon *d = req->d;
	sbx_error *err = NULL;
	const char *name = NULL;
	struct sbx_sandbox *sb = sbx_sandbox_from_params(req, &err);
	if (!sb || sbx_json_string(req->params, "image", !fork, &name, &err) < 0)
		goto fail;
	if (!d->layers) {
		sbx_error_set(&err, SBX_ERR_UNSUPPORTED, "the layer store is not available; snapshots need it");
		goto fail;
	}
	bool running = sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED;
	if ((!running && sb->state != SBX_STATE_STOPPED) || sb->stopping || sb->start) {
		sbx_error_set(&err, SBX_ERR_BAD_STATE, "sandbox %s is %s; only a started, paused or stopped sandbox can be %s",
			      sb->name, sb->stopping ? "stopping" : sb->start ? "starting" : sbx_state_name(sb->state),
			      fork ? "forked" : "snapshotted");
		goto fail;
	}
	struct sbx_image *base = sbx_image_find(d, sb->image_id);
	if (!base) {
		sbx_error_set(&err, SBX_ERR_NOT_FOUND, "sandbox %s: its image '%s' was removed", sb->name, sb->image);
		goto fail;
	}
	struct snap_job *j = calloc(1, sizeof(*j));
	if (!j) {
		sbx_error_errno(&err, ENOMEM, "snapshot");
		goto fail;
	}
	if (sbx_random_id(j->id, &err) < 0) {
		free(j);
		goto fail;
	}
	if (name)
		j->name = strdup(name);
	else if (asprintf(&j->name, "%s-%s-%.6s", sb->name, default_prefix, j->id) < 0)
		j->name = NULL;
	j->d = d;
	j->req = req;
	j->fork = fork;
	j->daemon = getpid();
	j->store = strdup(sbx_layer_store_path(d->layers));
	j->state_dir = strdup(d->cfg.state_dir);
	j->base_id = strdup(base->id);
	snprintf(j->tmpdir, sizeof(j->tmpdir), "images/tmp-%s", j->id);
	if (base->oci)
		j->base = base->oci;
	else if (asprintf(&j->base_rootfs, "%s/images/%s/rootfs", d->cfg.state_dir, base->id) < 0)
		j->base_rootfs = NULL;
	if (!j->name || !j->store || !j->state_dir || !j->base_id || (!j->base && !j->base_rootfs)) {
		job_free(j);
		sbx_error_errno(&err, ENOMEM, "snapshot");
		goto fail;
	}
	if (!sbx_image_name_valid(j->name)) {
		sbx_error_param(&err, "image", "invalid image name '%.64s'", j->name);
		job_free(j);
		goto fail;
	}
	bool busy = false;
	for (struct snap_job *o = running_jobs; o; o = o->next)
		busy |= !strcmp(o->name, j->name);
	if (sbx_image_find(d, j->name) || busy) {
		sbx_error_set(&err, SBX_ERR_EXISTS, "image '%s' already exists%s; choose another name", j->name,
			      busy ? " (a snapshot is making it)" : "");
		job_free(j);
		goto fail;
	}
	if (mkdirat(d->state_fd, j->tmpdir, 0755) < 0) {
		sbx_error_errno(&err, errno, "create %s", j->tmpdir);
		job_free(j);
		goto fail;
	}
	j->sb = sb;
	sbx_sandbox_ref(sb);
	sb->snapshots++;
	/* A stopped sandbox's layer may be mounted by the worker: no start,
	 * archive or delete meanwhile, as during a file call. */
	if (!running) {
		j->offline = true;
		sb->fs_offline++;
	}
	j->next = running_jobs;
	running_jobs = j;
	int keep[] = { d->state_fd, d->cg.mount_fd };
	if (sbx_worker_start_out(d, keep, SBX_ARRAY_SIZE(keep), snap_run, j, snap_done, j, &err) < 0) {
		unlinkat(d->state_fd, j->tmpdir, AT_REMOVEDIR);
		job_free(j);
		goto fail;
	}
	sb->activity_ns = sbx_now_ns();
	return 0;
fail:
	sbx_reply_error(req, err);
	return -1;
}

void rpc_sandbox_snapshot(struct sbx_request *req)
{
	snap_start(req, false, "snapshot");
}

/* ---- fork: the create's own parameters, with the snapshot as image ---- */

static void fork_create(struct snap_job *j, struct sbx_image *img)
{
	struct sbx_request *req = j->req;
	yajl_val p = req->params;
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_val np = NULL;
	if (g) {
		yajl_gen_map_open(g);
		for (size_t i = 0; p && YAJL_IS_OBJECT(p) && i < p->u.object.len; i++) {
			const char *k = p->u.object.keys[i];
			if (!strcmp(k, "sandbox") || !strcmp(k, "image"))
				continue;
			sbx_gen_key(g, k);
			sbx_gen_value(g, p->u.object.values[i]);
		}
		sbx_gen_kv_str(g, "image", img->name);
		yajl_gen_map_close(g);
		const unsigned char *buf;
		size_t len;
		yajl_gen_get_buf(g, &buf, &len);
		_cleanup_free_ char *text = strndup((const char *)buf, len);
		np = text ? sbx_json_parse(text, NULL) : NULL;
	}
	/* The new parameters replace the old in the request's tree, which
	 * frees them with it. */
	yajl_val root = req->root;
	bool placed = false;
	for (size_t i = 0; np && root && YAJL_IS_OBJECT(root) && i < root->u.object.len; i++) {
		if (!strcmp(root->u.object.keys[i], "params")) {
			yajl_tree_free(root->u.object.values[i]);
			root->u.object.values[i] = np;
			req->params = np;
			placed = true;
		}
	}
	job_free(j);
	if (!placed) {
		if (np)
			yajl_tree_free(np);
		sbx_error *e = NULL;
		sbx_error_errno(&e, ENOMEM, "fork");
		return sbx_reply_error(req, e);
	}
	rpc_sandbox_create(req);
}

void rpc_sandbox_fork(struct sbx_request *req)
{
	sbx_error *err = NULL;
	const char *name = NULL;
	if (sbx_json_string(req->params, "name", false, &name, &err) < 0)
		return sbx_reply_error(req, err);
	/* The name is checked before the snapshot is made for it. */
	if (name && sbx_sandbox_find(req->d, name)) {
		sbx_error_set(&err, SBX_ERR_EXISTS, "a sandbox named '%s' already exists", name);
		return sbx_reply_error(req, err);
	}
	snap_start(req, true, "fork");
}
