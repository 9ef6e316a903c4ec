/* The sandbox model: a box's description, its state file, and its
 * lifecycle on this host. Callers drive a sandbox through these calls and
 * never do its steps themselves; nothing here logs, listens or keeps a
 * list of boxes. */
#include "config.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box.h"
#include "disk.h"
#include "image.h"
#include "netlink.h"
#include "rootfs.h"
#include "syscalls.h"
#include "userns.h"
#include "util.h"

#define STATE_FILE "box"
/* How long a kill waits for a group to empty where nothing else bounds it. */
#define KILL_WAIT_MS 5000

/* ---- string vectors ---- */

static size_t strv_len(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void sbx_box_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static char **strv_copy(const char *const *v)
{
	size_t n = strv_len(v);
	char **c = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; c && i < n; i++) {
		if (!(c[i] = strdup(v[i]))) {
			sbx_box_strv_free(c);
			return NULL;
		}
	}
	return c;
}

/* Append s (owned) to *v; NULL-terminated. */
static int strv_push(char ***v, char *s)
{
	if (!s)
		return -1;
	size_t n = strv_len((const char *const *)*v);
	char **nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv) {
		free(s);
		return -1;
	}
	nv[n] = s;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

/* ---- the handle ---- */

static void rel_dir(const struct sbx_box *box, char *buf, size_t size, const char *sub)
{
	snprintf(buf, size, "sandboxes/%s%s%s", box->id, sub ? "/" : "", sub ? sub : "");
}

struct sbx_box *sbx_box_new(const struct sbx_box_host *host, const struct sbx_box_spec *spec, sbx_error **err)
{
	if (!spec->id || !sbx_id_valid(spec->id)) {
		sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "invalid sandbox id '%.32s'", spec->id ? spec->id : "");
		return NULL;
	}
	struct sbx_box *box = calloc(1, sizeof(*box));
	if (!box) {
		sbx_error_errno(err, ENOMEM, "sandbox %s", spec->id);
		return NULL;
	}
	box->host = host;
	box->init_pidfd = -1;
	snprintf(box->id, sizeof(box->id), "%s", spec->id);
	static const char *const none[] = { NULL };
	box->layers = strv_copy(spec->layers ? spec->layers : none);
	box->env = strv_copy(spec->env ? spec->env : none);
	box->hostname = strdup(spec->hostname ? spec->hostname : spec->id);
	box->workdir = strdup(spec->workdir ? spec->workdir : "/");
	box->user = strdup(spec->user ? spec->user : "root");
	box->limits = spec->limits;
	box->limits.allow_swap = host->allow_swap;
	box->disk_mb = spec->disk_mb;
	box->userns_base = spec->userns_base;
	box->caps = spec->caps;
	box->net = spec->net;
	if (host->prjquota && spec->disk_mb > 0) {
		box->projid = spec->projid;
		if (!box->projid) {
			uint32_t h = 2166136261u;
			for (const char *p = box->id; *p; p++)
				h = (h ^ (unsigned char)*p) * 16777619u;
			box->projid = 0x100000 + h % 0x7fe00000u;
		}
	}
	if (!box->layers || !box->env || !box->hostname || !box->workdir || !box->user) {
		sbx_box_free(box);
		sbx_error_errno(err, ENOMEM, "sandbox %s", spec->id);
		return NULL;
	}
	return box;
}

void sbx_box_free(struct sbx_box *box)
{
	if (!box)
		return;
	sbx_closep(&box->init_pidfd);
	sbx_box_strv_free(box->layers);
	sbx_box_strv_free(box->env);
	free(box->hostname);
	free(box->workdir);
	free(box->user);
	free(box->hosts);
	free(box->resolv);
	free(box->cgroup);
	free(box);
}

int sbx_box_set_layers(struct sbx_box *box, const char *const *layers, sbx_error **err)
{
	char **l = strv_copy(layers);
	if (!l)
		return sbx_error_errno(err, ENOMEM, "sandbox %s: layers", box->id);
	sbx_box_strv_free(box->layers);
	box->layers = l;
	return 0;
}

/* ---- the state file: key=value lines, "\\" and "\n" escaped ---- */

static void put_str(struct sbx_buf *b, const char *key, const char *value)
{
	if (!value)
		return;
	sbx_buf_printf(b, "%s=", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			sbx_buf_append(b, "\\\\", 2);
		else if (*p == '\n')
			sbx_buf_append(b, "\\n", 2);
		else
			sbx_buf_append(b, p, 1);
	}
	sbx_buf_append(b, "\n", 1);
}

static void put_int(struct sbx_buf *b, const char *key, long long v)
{
	sbx_buf_printf(b, "%s=%lld\n", key, v);
}

int sbx_box_save(struct sbx_box *box, sbx_error **err)
{
	struct sbx_buf b = { 0 };
	char ip[INET_ADDRSTRLEN] = "", gw[INET_ADDRSTRLEN] = "";
	put_int(&b, "version", 1);
	put_str(&b, "id", box->id);
	for (size_t i = 0; box->layers[i]; i++)
		put_str(&b, "layer", box->layers[i]);
	put_str(&b, "hostname", box->hostname);
	put_str(&b, "workdir", box->workdir);
	put_str(&b, "user", box->user);
	for (size_t i = 0; box->env[i]; i++)
		put_str(&b, "env", box->env[i]);
	sbx_buf_printf(&b, "cpus=%.17g\n", box->limits.cpus);
	put_int(&b, "memory_bytes", box->limits.memory_bytes);
	put_int(&b, "pids", box->limits.pids);
	put_int(&b, "disk_mb", box->disk_mb);
	put_int(&b, "projid", box->projid);
	put_int(&b, "userns_base", box->userns_base);
	sbx_buf_printf(&b, "caps=%#" PRIx64 "\n", box->caps);
	if (box->net.ip.s_addr) {
		inet_ntop(AF_INET, &box->net.ip, ip, sizeof(ip));
		inet_ntop(AF_INET, &box->net.gateway, gw, sizeof(gw));
		put_str(&b, "net_ip", ip);
		put_str(&b, "net_gateway", gw);
		put_int(&b, "net_prefix", box->net.prefix);
		put_int(&b, "net_group", box->net.group);
		put_int(&b, "net_mtu", box->net.mtu);
		put_str(&b, "net_host_name", box->net.host_name);
	}
	put_int(&b, "running", box->running);
	put_int(&b, "frozen", box->frozen);
	put_str(&b, "cgroup", box->cgroup);
	put_int(&b, "init_pid", box->init_pid);
	sbx_buf_printf(&b, "init_starttime=%" PRIu64 "\n", box->init_starttime);
	sbx_buf_printf(&b, "exec_seq=%" PRIu64 "\n", box->exec_seq);
	if (!b.data) {
		sbx_buf_free(&b);
		return sbx_error_errno(err, ENOMEM, "sandbox %s: save state", box->id);
	}
	char rel[64];
	rel_dir(box, rel, sizeof(rel), STATE_FILE);
	int r = sbx_write_file_atomic_at(box->host->state_fd, rel, b.data, b.len, 0600, err);
	sbx_buf_free(&b);
	if (r < 0)
		return sbx_error_prefix(err, "sandbox %s: save state", box->id);
	return 0;
}

static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '\\' && r[1] == 'n') {
			*w++ = '\n';
			r++;
		} else if (*r == '\\' && r[1] == '\\') {
			*w++ = '\\';
			r++;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

static uint64_t parse_u64(const char *s)
{
	return strtoull(s, NULL, 0);
}

int sbx_box_load(const struct sbx_box_host *host, const char *id, struct sbx_box **out, sbx_error **err)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "sandboxes/%.12s/" STATE_FILE, id);
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(host->state_fd, rel, 1 << 20, &text, NULL, err) < 0)
		return -1;
	struct sbx_box_spec spec = { .id = id };
	struct sbx_box *box = sbx_box_new(host, &spec, err);
	if (!box)
		return -1;
	/* Vectors are rebuilt from the lines: start empty. */
	box->layers[0] = NULL;
	box->env[0] = NULL;
	bool seen_id = false, oom = false;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *k = line;
		char *v = eq + 1;
		unescape(v);
		char **str = NULL;
		if (!strcmp(k, "id"))
			seen_id = !strcmp(v, id);
		else if (!strcmp(k, "layer"))
			oom |= strv_push(&box->layers, strdup(v)) < 0;
		else if (!strcmp(k, "env"))
			oom |= strv_push(&box->env, strdup(v)) < 0;
		else if (!strcmp(k, "hostname"))
			str = &box->hostname;
		else if (!strcmp(k, "workdir"))
			str = &box->workdir;
		else if (!strcmp(k, "user"))
			str = &box->user;
		else if (!strcmp(k, "cgroup"))
			str = &box->cgroup;
		else if (!strcmp(k, "cpus"))
			box->limits.cpus = strtod(v, NULL);
		else if (!strcmp(k, "memory_bytes"))
			box->limits.memory_bytes = (int64_t)strtoll(v, NULL, 10);
		else if (!strcmp(k, "pids"))
			box->limits.pids = (int64_t)strtoll(v, NULL, 10);
		else if (!strcmp(k, "disk_mb"))
			box->disk_mb = (int64_t)strtoll(v, NULL, 10);
		else if (!strcmp(k, "projid"))
			box->projid = (uint32_t)parse_u64(v);
		else if (!strcmp(k, "userns_base"))
			box->userns_base = (uint32_t)parse_u64(v);
		else if (!strcmp(k, "caps"))
			box->caps = parse_u64(v);
		else if (!strcmp(k, "net_ip"))
			inet_pton(AF_INET, v, &box->net.ip);
		else if (!strcmp(k, "net_gateway"))
			inet_pton(AF_INET, v, &box->net.gateway);
		else if (!strcmp(k, "net_prefix"))
			box->net.prefix = atoi(v);
		else if (!strcmp(k, "net_group"))
			box->net.group = (uint32_t)parse_u64(v);
		else if (!strcmp(k, "net_mtu"))
			box->net.mtu = (uint32_t)parse_u64(v);
		else if (!strcmp(k, "net_host_name"))
			snprintf(box->net.host_name, sizeof(box->net.host_name), "%s", v);
		else if (!strcmp(k, "running"))
			box->running = atoi(v) != 0;
		else if (!strcmp(k, "frozen"))
			box->frozen = atoi(v) != 0;
		else if (!strcmp(k, "init_pid"))
			box->init_pid = (pid_t)atoi(v);
		else if (!strcmp(k, "init_starttime"))
			box->init_starttime = parse_u64(v);
		else if (!strcmp(k, "exec_seq"))
			box->exec_seq = parse_u64(v);
		/* Unknown keys are from a later version: ignored. */
		if (str) {
			free(*str);
			oom |= !(*str = strdup(v));
		}
	}
	if (oom) {
		sbx_box_free(box);
		return sbx_error_errno(err, ENOMEM, "sandbox %s: load state", id);
	}
	if (!seen_id) {
		sbx_box_free(box);
		return sbx_error_set(err, SBX_ERR_INTERNAL, "sandbox %s: its state file names another sandbox", id);
	}
	*out = box;
	return 0;
}

/* ---- build ---- */

/* The group of a box's processes: where its start puts it. */
static char *group_path(const struct sbx_box *box)
{
	char *p = NULL;
	if (asprintf(&p, "%s/sbx-%s", box->host->cg->base, box->id) < 0)
		return NULL;
	return p;
}


int sbx_box_build(const struct sbx_box_host *host, const struct sbx_box_spec *spec, struct sbx_box **out,
		  sbx_error **err)
{
	struct sbx_box *box = sbx_box_new(host, spec, err);
	if (!box)
		return -1;
	char rel[64], up[80], wk[80];
	rel_dir(box, rel, sizeof(rel), NULL);
	rel_dir(box, up, sizeof(up), "upper");
	rel_dir(box, wk, sizeof(wk), "work");
	int sfd = host->state_fd;
	if (mkdirat(sfd, "sandboxes", 0700) < 0 && errno != EEXIST) {
		sbx_error_errno(err, errno, "create %s/sandboxes", host->state_dir);
		sbx_box_free(box);
		return -1;
	}
	/* The writable layer belongs to the sandbox's root (mapped or not). */
	if (mkdirat(sfd, rel, 0700) < 0 || mkdirat(sfd, up, 0755) < 0 || mkdirat(sfd, wk, 0700) < 0 ||
	    (box->userns_base && fchownat(sfd, up, box->userns_base, box->userns_base, AT_SYMLINK_NOFOLLOW) < 0)) {
		sbx_error_errno(err, errno, "sandbox %s: create %s/%s", box->id, host->state_dir, rel);
		sbx_rm_rf_at(sfd, rel, NULL);
		sbx_box_free(box);
		return -1;
	}
	if (box->disk_mb > 0 && box->projid) {
		static const char *const dirs[] = { "upper", "work" };
		for (size_t i = 0; i < SBX_ARRAY_SIZE(dirs); i++) {
			char dir[80];
			rel_dir(box, dir, sizeof(dir), dirs[i]);
			_cleanup_close_ int dfd = openat(sfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd < 0 || sbx_prjquota_assign(dfd, box->projid, err) < 0) {
				if (err && !*err)
					sbx_error_errno(err, errno, "open %s", dir);
				goto quota_fail;
			}
		}
		if (sbx_prjquota_limit(sfd, box->projid, box->disk_mb, err) < 0)
			goto quota_fail;
	} else if (box->disk_mb > 0) {
		_cleanup_free_ char *disk_img = sbx_box_disk_image(box), *tpl = NULL;
		if (asprintf(&tpl, "%s/disk-templates", host->state_dir) < 0)
			tpl = NULL;
		if (!disk_img || !tpl || sbx_disk_create(disk_img, box->disk_mb, tpl, err) < 0) {
			if (err && !*err)
				sbx_error_errno(err, ENOMEM, "disk");
			sbx_error_prefix(err, "sandbox %s: disk of %lld MB", box->id, (long long)box->disk_mb);
			sbx_rm_rf_at(sfd, rel, NULL);
			sbx_box_free(box);
			return -1;
		}
	}
	if (!(box->cgroup = group_path(box)) || sbx_box_save(box, err) < 0) {
		if (err && !*err)
			sbx_error_errno(err, ENOMEM, "sandbox %s", box->id);
		if (box->projid)
			sbx_prjquota_limit(sfd, box->projid, 0, NULL);
		sbx_rm_rf_at(sfd, rel, NULL);
		sbx_box_free(box);
		return -1;
	}
	*out = box;
	return 0;
quota_fail:
	sbx_error_prefix(err, "sandbox %s: disk quota of %lld MB", box->id, (long long)box->disk_mb);
	sbx_prjquota_limit(sfd, box->projid, 0, NULL);
	sbx_rm_rf_at(sfd, rel, NULL);
	sbx_box_free(box);
	return -1;
}

char *sbx_box_disk_image(const struct sbx_box *box)
{
	char *p = NULL;
	if (box->disk_mb <= 0 || box->projid)
		return NULL;
	if (asprintf(&p, "%s/sandboxes/%s/disk.img", box->host->state_dir, box->id) < 0)
		return NULL;
	return p;
}

/* ---- start ---- */

/* The run dir of a sandbox holds only empty mount points while it is
 * stopped (its mounts live and die with its mount namespace). */
static void remove_run_dirs(const struct sbx_box_host *host, const char *id)
{
	static const char *const dirs[] = { "rootfs", "disk", "lower", "" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(dirs); i++) {
		char rel[320];
		snprintf(rel, sizeof(rel), "sandboxes/%s/%s", id, dirs[i]);
		unlinkat(host->run_fd, rel, AT_REMOVEDIR);
	}
}

static char *hosts_content(const char *hostname)
{
	char *s = NULL;
	if (asprintf(&s,
		     "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", hostname) < 0)
		return NULL;
	return s;
}

static void close_v1(int v1[SBX_CTRL_COUNT])
{
	for (int c = 0; c < SBX_CTRL_COUNT; c++)
		sbx_closep(&v1[c]);
}

/* A loop device with the disk image attached, through the host's
 * allocator when it has one. */
static int loop_attach(struct sbx_box *box, const char *image, char devpath[32], sbx_error **err)
{
	const struct sbx_box_host *h = box->host;
	if (h->loop_attach)
		return h->loop_attach(h->loop_ctx, box->id, image, devpath, err);
	int index = sbx_loop_add(err);
	if (index < 0)
		return -1;
	return sbx_disk_attach(index, image, devpath, err);
}

static void loop_release(struct sbx_box *box)
{
	const struct sbx_box_host *h = box->host;
	if (h->loop_release)
		h->loop_release(h->loop_ctx, box->id);
}

int sbx_box_start_begin(struct sbx_box *box, struct sbx_box_starting *st, sbx_error **err)
{
	const struct sbx_box_host *h = box->host;
	struct sbx_cgroup_root *cgr = h->cg;
	memset(st, 0, sizeof(*st));
	st->loopfd = -1;
	st->init.report_fd = st->init.pidfd = -1;
	if (box->running || box->starting)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is already started", box->id);
	if (!box->layers[0])
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "sandbox %s: no image layers", box->id);

	char cg[512];
	snprintf(cg, sizeof(cg), "%s/sbx-%s", cgr->base, box->id);
	/* Known on disk before anything runs in it: a start cut short by a
	 * crash leaves a group that recovery finds. */
	if (!box->cgroup || strcmp(box->cgroup, cg)) {
		char *p = strdup(cg);
		if (!p)
			return sbx_error_errno(err, ENOMEM, "sandbox %s", box->id);
		free(box->cgroup);
		box->cgroup = p;
		if (sbx_box_save(box, err) < 0)
			return -1;
	}
	if (sbx_cgroup_create(cgr, cg, err) < 0)
		return sbx_error_prefix(err, "sandbox %s", box->id);
	_cleanup_close_ int cgfd = sbx_cgroup_open(cgr, cg, err);
	if (cgfd < 0)
		return sbx_error_prefix(err, "sandbox %s", box->id);
	struct sbx_limits lim = box->limits;
	lim.allow_swap = h->allow_swap;
	int v1[SBX_CTRL_COUNT];
	if (sbx_cgroup_apply(cgr, cg, &lim, err) < 0 || sbx_cgroup_v1_open_procs(cgr, cg, v1, err) < 0) {
		sbx_cgroup_remove(cgr, cg, NULL);
		return sbx_error_prefix(err, "sandbox %s: limits", box->id);
	}

	char rel[64];
	snprintf(rel, sizeof(rel), "sandboxes/%s/rootfs", box->id);
	if (mkdirat(h->run_fd, "sandboxes", 0700) < 0 && errno != EEXIST) {
		close_v1(v1);
		return sbx_error_errno(err, errno, "create %s/sandboxes", h->run_dir);
	}
	char reldir[64];
	snprintf(reldir, sizeof(reldir), "sandboxes/%s", box->id);
	if ((mkdirat(h->run_fd, reldir, 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(h->run_fd, rel, 0755) < 0 && errno != EEXIST)) {
		close_v1(v1);
		return sbx_error_errno(err, errno, "create %s/%s", h->run_dir, rel);
	}

	_cleanup_free_ char *mnt = NULL, *upper = NULL, *work = NULL;
	_cleanup_free_ char *hosts = box->hosts ? strdup(box->hosts) : hosts_content(box->hostname);
	_cleanup_free_ char *resolv = NULL;
	if (asprintf(&mnt, "%s/%s", h->run_dir, rel) < 0)
		mnt = NULL;
	if (asprintf(&upper, "%s/sandboxes/%s/upper", h->state_dir, box->id) < 0)
		upper = NULL;
	if (asprintf(&work, "%s/sandboxes/%s/work", h->state_dir, box->id) < 0)
		work = NULL;
	if (!mnt || !upper || !work || !hosts) {
		close_v1(v1);
		return sbx_error_errno(err, ENOMEM, "sandbox %s", box->id);
	}
	if (box->resolv)
		resolv = strdup(box->resolv);
	else if (sbx_read_file_at(AT_FDCWD, "/etc/resolv.conf", 65536, &resolv, NULL, NULL) < 0)
		resolv = strdup("");

	int loopfd = -1;
	char loopdev[32] = "";
	_cleanup_free_ char *disk_img = sbx_box_disk_image(box), *disk_mnt = NULL;
	if (disk_img) {
		char dm[80];
		snprintf(dm, sizeof(dm), "sandboxes/%s/disk", box->id);
		if (asprintf(&disk_mnt, "%s/%s", h->run_dir, dm) < 0)
			disk_mnt = NULL;
		if (!disk_mnt || (mkdirat(h->run_fd, dm, 0700) < 0 && errno != EEXIST) ||
		    (loopfd = loop_attach(box, disk_img, loopdev, err)) < 0) {
			if (err && !*err)
				sbx_error_errno(err, errno, "disk of sandbox %s", box->id);
			close_v1(v1);
			sbx_cgroup_remove(cgr, cg, NULL);
			loop_release(box);
			return sbx_error_prefix(err, "sandbox %s", box->id);
		}
	}
	_cleanup_close_ int userns_fd = -1, ipc_ns_fd = -1, uts_ns_fd = -1;
	_cleanup_free_ char *lower_mnt = NULL;
	if (box->userns_base) {
		char lm[80];
		snprintf(lm, sizeof(lm), "sandboxes/%s/lower", box->id);
		if (asprintf(&lower_mnt, "%s/%s", h->run_dir, lm) < 0)
			lower_mnt = NULL;
		if (!lower_mnt || (mkdirat(h->run_fd, lm, 0700) < 0 && errno != EEXIST) ||
		    (userns_fd = sbx_userns_create_ns(box->userns_base, SBX_USERNS_SIZE, &ipc_ns_fd, &uts_ns_fd, err)) < 0) {
			if (err && !*err)
				sbx_error_errno(err, errno, "user namespace");
			close_v1(v1);
			sbx_cgroup_remove(cgr, cg, NULL);
			if (loopfd >= 0) {
				sbx_closep(&loopfd);
				loop_release(box);
			}
			return sbx_error_prefix(err, "sandbox %s", box->id);
		}
	}
	/* One layer is given as the plain lowerdir, as every image was before
	 * images had layers. */
	bool layered = box->layers[1] != NULL;
	struct sbx_init_config ic = {
		.rootfs = {
			.mountpoint = mnt,
			.lowerdir = box->layers[0],
			.lowerdirs = layered ? (const char *const *)box->layers : NULL,
			.upperdir = upper,
			.workdir = work,
			.hostname = box->hostname,
			.hosts = hosts,
			.resolv = resolv ? resolv : "",
			.workspace = box->workdir,
			.disk_dev = loopfd >= 0 ? loopdev : NULL,
			.disk_mnt = disk_mnt,
			.userns_fd = userns_fd,
			.lower_mnt = lower_mnt,
			.root_uid = box->userns_base,
			.root_gid = box->userns_base,
		},
		.cgroup_fd = cgfd,
		.init_exe_fd = h->init_exe_fd,
		.id = box->id,
		.caps = box->caps,
		.seccomp = box->seccomp,
		.ipc_ns_fd = ipc_ns_fd,
		.uts_ns_fd = uts_ns_fd,
	};
	memcpy(ic.v1_procs, v1, sizeof(v1));
	int begun = sbx_spawn_init_begin(&ic, &st->init, err);
	close_v1(v1);
	if (begun < 0) {
		sbx_cgroup_kill(cgr, cg, NULL);
		sbx_cgroup_remove(cgr, cg, NULL);
		if (loopfd >= 0) {
			sbx_closep(&loopfd);
			loop_release(box);
		}
		return sbx_error_prefix(err, "sandbox %s: start", box->id);
	}
	/* Kept until init has mounted the disk: the device clears itself when
	 * its last user goes. */
	st->loopfd = loopfd;
	box->starting = true;
	return 0;
}

int sbx_box_start_read(struct sbx_box_starting *st)
{
	return sbx_spawn_init_read(&st->init);
}

/* A start that did not come through: nothing of it stays. */
static void start_undo(struct sbx_box *box, struct sbx_box_starting *st)
{
	struct sbx_cgroup_root *cgr = box->host->cg;
	sbx_cgroup_kill(cgr, box->cgroup, NULL);
	sbx_cgroup_remove(cgr, box->cgroup, NULL);
	if (st->loopfd >= 0) {
		sbx_closep(&st->loopfd);
		loop_release(box);
	}
	box->starting = false;
}

int sbx_box_start_finish(struct sbx_box *box, struct sbx_box_starting *st, sbx_error **err)
{
	struct sbx_spawned sp;
	if (sbx_spawn_init_finish(&st->init, &sp, err) < 0) {
		start_undo(box, st);
		return sbx_error_prefix(err, "sandbox %s: start", box->id);
	}
	sbx_closep(&st->loopfd);
	box->init_pid = sp.pid;
	box->init_pidfd = sbx_fd_park(sp.pidfd);
	box->init_starttime = sp.starttime;
	if (box->net.ip.s_addr && sbx_box_net_attach(box, err) < 0) {
		sbx_cgroup_kill(box->host->cg, box->cgroup, NULL);
		waitid((idtype_t)P_PIDFD, (id_t)box->init_pidfd, NULL, WEXITED);
		sbx_closep(&box->init_pidfd);
		box->init_pid = 0;
		box->init_starttime = 0;
		start_undo(box, st);
		return sbx_error_prefix(err, "sandbox %s: start", box->id);
	}
	box->starting = false;
	box->running = true;
	box->frozen = false;
	sbx_box_save(box, NULL);
	return 0;
}

void sbx_box_start_abort(struct sbx_box *box, struct sbx_box_starting *st)
{
	sbx_spawn_init_abort(&st->init);
	start_undo(box, st);
}

int sbx_box_start(struct sbx_box *box, sbx_error **err)
{
	struct sbx_box_starting st;
	if (sbx_box_start_begin(box, &st, err) < 0)
		return -1;
	int64_t deadline = sbx_monotonic_ms() + SBX_INIT_SETUP_TIMEOUT_MS;
	while (!sbx_box_start_read(&st)) {
		int64_t left = deadline - sbx_monotonic_ms();
		if (left <= 0) {
			sbx_box_start_abort(box, &st);
			sbx_error_set(err, SBX_ERR_TIMEOUT, "sandbox init did not start within %d s",
				      SBX_INIT_SETUP_TIMEOUT_MS / 1000);
			return sbx_error_prefix(err, "sandbox %s: start", box->id);
		}
		struct pollfd p = { .fd = st.init.report_fd, .events = POLLIN };
		poll(&p, 1, (int)left);
	}
	return sbx_box_start_finish(box, &st, err);
}

/* The two ends' Ethernet addresses, from the sandbox's IPv4 address: set
 * explicitly, so that udev's MAC policy leaves them alone and the
 * permanent neighbour entries stay right. Locally administered, unicast. */
static void link_macs(struct in_addr ip, uint8_t host[6], uint8_t peer[6])
{
	host[0] = 0x06;
	peer[0] = 0x02;
	host[1] = peer[1] = 0x00;
	memcpy(host + 2, &ip.s_addr, 4);
	memcpy(peer + 2, &ip.s_addr, 4);
}

/* A kernel limit that stopped the network's set-up is a limit error that
 * names it, not an internal one. */
static void name_limit(sbx_error **err)
{
	const char *what = err && *err ? sbx_nl_errno_limit((*err)->errnum) : NULL;
	if (what) {
		_cleanup_free_ char *msg = strdup((*err)->msg);
		if (msg)
			sbx_error_set(err, SBX_ERR_LIMIT, "%s (%s)", msg, what);
	}
}

/* A routed link, no bridge port: nothing is learnt by ARP either way, and
 * a sandbox's link reaches the host alone. */
int sbx_box_net_attach(struct sbx_box *box, sbx_error **err)
{
	const struct sbx_box_net *n = &box->net;
	char path[64];
	const char *name = n->host_name;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)box->init_pid);
	_cleanup_close_ int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return sbx_error_errno(err, errno, "open network namespace of init %d", (int)box->init_pid);
	/* The pid could have been reused between our check and the open. */
	if (sbx_proc_starttime(box->init_pid) != box->init_starttime)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "init of sandbox %s is gone", box->id);
	uint8_t host_mac[6], peer_mac[6];
	link_macs(n->ip, host_mac, peer_mac);
	struct sbx_nl_veth veth = { .name = name, .peer_name = "eth0", .peer_netns_fd = nsfd, .mtu = n->mtu,
				    .group = n->group, .mac = host_mac, .peer_mac = peer_mac, .up = true };
	struct sbx_nl host = { 0 }, in = { 0 };
	int r = -1, hidx, idx;
	if (sbx_nl_open(&host, err) < 0)
		return -1;
	/* A pair left by an owner that did not shut down cleanly is replaced
	 * (its route and neighbour entry go with it). */
	if (sbx_nl_link_delete(&host, name, err) < 0 || sbx_nl_open_in(&in, nsfd, err) < 0)
		goto out;
	if (sbx_nl_link_delete(&in, "eth0", err) < 0 || sbx_nl_veth_create(&host, &veth, err) < 0)
		goto out;
	if ((hidx = sbx_nl_ifindex(&host, name, err)) <= 0 || (idx = sbx_nl_ifindex(&in, "eth0", err)) <= 0) {
		if (err && !*err)
			sbx_error_errno(err, ENODEV, "link %s or its peer is missing", name);
		goto out;
	}
	if (sbx_nl_route_add(&host, n->ip, 32, hidx, n->gateway, err) < 0 ||
	    sbx_nl_neigh_add(&host, hidx, n->ip, peer_mac, err) < 0)
		goto out;
	if (sbx_nl_addr_add(&in, idx, n->ip, n->prefix, err) < 0 || sbx_nl_link_up(&in, idx, 0, 0, err) < 0 ||
	    sbx_nl_neigh_add(&in, idx, n->gateway, host_mac, err) < 0 || sbx_nl_route_default(&in, n->gateway, err) < 0)
		goto out;
	r = 0;
out:
	sbx_nl_close(&in);
	if (r < 0)
		sbx_nl_link_delete(&host, name, NULL);
	sbx_nl_close(&host);
	if (r < 0) {
		name_limit(err);
		return sbx_error_prefix(err, "network of sandbox %s", box->id);
	}
	return 0;
}

/* ---- join ---- */

int sbx_box_group(struct sbx_box *box, const char *name, char *path, size_t size, sbx_error **err)
{
	struct sbx_cgroup_root *cgr = box->host->cg;
	if (name) {
		snprintf(path, size, "%s/%s", box->cgroup, name);
		if (mkdirat(cgr->mount_fd, path, 0755) < 0) {
			sbx_error_errno(err, errno, "create cgroup %s", path);
			path[0] = '\0';
			return -1;
		}
		return 0;
	}
	/* A fresh group: one left by a command that outlived a restart of the
	 * box's owner must never be shared (a timeout here would kill it). */
	for (int tries = 0;; tries++) {
		snprintf(path, size, "%s/exec-%llu", box->cgroup, (unsigned long long)++box->exec_seq);
		if (mkdirat(cgr->mount_fd, path, 0755) == 0)
			return 0;
		if (errno != EEXIST || tries > 10000) {
			sbx_error_errno(err, errno, "create cgroup %s", path);
			path[0] = '\0';
			return -1;
		}
	}
}

int sbx_box_join(struct sbx_box *box, const char *group, struct sbx_exec_config *ec, sbx_error **err)
{
	struct sbx_cgroup_root *cgr = box->host->cg;
	ec->cgroup_fd = -1;
	for (int c = 0; c < SBX_CTRL_COUNT; c++)
		ec->v1_procs[c] = -1;
	if ((ec->cgroup_fd = sbx_cgroup_open(cgr, group, err)) < 0)
		return -1;
	if (sbx_cgroup_v1_open_procs(cgr, box->cgroup, ec->v1_procs, err) < 0) {
		sbx_closep(&ec->cgroup_fd);
		return -1;
	}
	ec->init_pidfd = box->init_pidfd;
	ec->userns = box->userns_base != 0;
	ec->caps = box->caps;
	ec->seccomp = box->seccomp;
	return 0;
}

void sbx_box_join_release(struct sbx_exec_config *ec)
{
	sbx_closep(&ec->cgroup_fd);
	close_v1(ec->v1_procs);
}

int sbx_box_exec_begin(struct sbx_box *box, const char *group, struct sbx_exec_config *ec, struct sbx_exec_setup *st,
		       sbx_error **err)
{
	if (sbx_box_join(box, group, ec, err) < 0)
		return -1;
	int r = sbx_spawn_exec_begin(ec, st, err);
	sbx_box_join_release(ec);
	return r;
}

int sbx_box_exec(struct sbx_box *box, const char *group, struct sbx_exec_config *ec, struct sbx_spawned *out,
		 int timeout_ms, sbx_error **err)
{
	struct sbx_exec_setup st;
	if (sbx_box_exec_begin(box, group, ec, &st, err) < 0)
		return -1;
	int64_t deadline = sbx_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : SBX_EXEC_SETUP_TIMEOUT_MS);
	while (!sbx_spawn_exec_read(&st)) {
		int64_t left = deadline - sbx_monotonic_ms();
		if (left <= 0) {
			sbx_spawn_exec_abort(&st);
			return sbx_error_set(err, SBX_ERR_TIMEOUT, "sandbox %s: the set-up of a command took too long",
					     box->id);
		}
		struct pollfd p = { .fd = st.report_fd, .events = POLLIN };
		poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
	}
	/* The report ends when the helper has closed its end: it is exiting. */
	if (st.helper_pidfd >= 0)
		waitid((idtype_t)P_PIDFD, (id_t)st.helper_pidfd, NULL, WEXITED);
	sbx_closep(&st.helper_pidfd);
	return sbx_spawn_exec_finish(&st, out, err);
}

/* KEY=VALUE entries, a later key replacing an earlier one in place. */
static int env_set(char ***v, const char *entry)
{
	size_t klen = strcspn(entry, "=");
	for (size_t i = 0; *v && (*v)[i]; i++) {
		if (!strncmp((*v)[i], entry, klen) && (*v)[i][klen] == '=') {
			char *s = strdup(entry);
			if (!s)
				return -1;
			free((*v)[i]);
			(*v)[i] = s;
			return 0;
		}
	}
	return strv_push(v, strdup(entry));
}

char **sbx_box_env(const struct sbx_box *box, const char *const *extra)
{
	char **v = calloc(1, sizeof(char *));
	char *host = NULL;
	if (!v || asprintf(&host, "HOSTNAME=%s", box->hostname) < 0)
		host = NULL;
	int r = !v || !host ? -1 : env_set(&v, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (r == 0)
		r = env_set(&v, host);
	free(host);
	for (size_t i = 0; r == 0 && box->env[i]; i++)
		r = env_set(&v, box->env[i]);
	for (size_t i = 0; r == 0 && extra && extra[i]; i++)
		r = env_set(&v, extra[i]);
	if (r < 0) {
		sbx_box_strv_free(v);
		return NULL;
	}
	return v;
}

char *sbx_box_cwd(const struct sbx_box *box, const char *cwd)
{
	char *r = NULL;
	if (!cwd)
		return strdup(box->workdir);
	if (cwd[0] == '/')
		return strdup(cwd);
	if (asprintf(&r, "%s/%s", box->workdir, cwd) < 0)
		return NULL;
	return r;
}

bool sbx_box_at_pids_limit(struct sbx_box *box, const sbx_error *err)
{
	/* clone fails with EAGAIN at pids.max, and for host-wide reasons too:
	 * the sandbox's count tells which. */
	if (!err || err->errnum != EAGAIN || box->limits.pids <= 0 || !box->cgroup)
		return false;
	struct sbx_cgroup_stats st;
	if (sbx_cgroup_stats(box->host->cg, box->cgroup, &st) == 0 && st.pids < box->limits.pids - 2)
		return false;
	return true;
}

int sbx_box_signal_all(struct sbx_box *box, int sig, sbx_error **err)
{
	if (!box->running || !box->cgroup)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is not running", box->id);
	return sbx_cgroup_signal_all(box->host->cg, box->cgroup, sig, box->init_pid, err);
}

int sbx_box_prune(struct sbx_box *box, const char *prefix)
{
	return box->cgroup ? sbx_cgroup_prune_children(box->host->cg, box->cgroup, prefix) : 0;
}

int sbx_box_root(struct sbx_box *box, sbx_error **err)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d/root", (int)box->init_pid);
	_cleanup_close_ int fd = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open its root");
	if (box->init_pidfd < 0 || sbx_pidfd_send_signal(box->init_pidfd, 0, NULL, 0) < 0)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "its init is gone");
	return sbx_take_fd(&fd);
}

/* ---- a stopped box's files ---- */

int sbx_box_mount_root(struct sbx_box *box, const char *scratch, int loop_index, sbx_error **err)
{
	if (!box->layers[0])
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "no image layers");
	if (unshare(CLONE_NEWNS) < 0)
		return sbx_error_errno(err, errno, "unshare mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sbx_error_errno(err, errno, "make / private");
	if (mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=65536") < 0)
		return sbx_error_errno(err, errno, "mount scratch on '%s'", scratch);
	char root[PATH_MAX], lower_mnt[PATH_MAX], disk_mnt[PATH_MAX], loopdev[32] = "";
	snprintf(root, sizeof(root), "%s/root", scratch);
	snprintf(lower_mnt, sizeof(lower_mnt), "%s/lower", scratch);
	snprintf(disk_mnt, sizeof(disk_mnt), "%s/disk", scratch);
	if (mkdir(root, 0755) < 0 || mkdir(lower_mnt, 0700) < 0 || mkdir(disk_mnt, 0700) < 0)
		return sbx_error_errno(err, errno, "scratch directories");
	_cleanup_free_ char *disk_img = sbx_box_disk_image(box), *upper = NULL, *work = NULL;
	if (asprintf(&upper, "%s/sandboxes/%s/upper", box->host->state_dir, box->id) < 0)
		upper = NULL;
	if (asprintf(&work, "%s/sandboxes/%s/work", box->host->state_dir, box->id) < 0)
		work = NULL;
	if (!upper || !work)
		return sbx_error_errno(err, ENOMEM, "sandbox %s", box->id);
	_cleanup_close_ int loopfd = -1;
	if (disk_img && (loopfd = sbx_disk_attach(loop_index, disk_img, loopdev, err)) < 0)
		return sbx_error_prefix(err, "disk");
	_cleanup_close_ int userns_fd = -1;
	if (box->userns_base && (userns_fd = sbx_userns_create(box->userns_base, SBX_USERNS_SIZE, err)) < 0)
		return sbx_error_prefix(err, "user namespace");
	bool layered = box->layers[1] != NULL;
	struct sbx_rootfs_config cfg = {
		.mountpoint = root,
		.lowerdir = box->layers[0],
		.lowerdirs = layered ? (const char *const *)box->layers : NULL,
		.upperdir = upper,
		.workdir = work,
		.disk_dev = loopfd >= 0 ? loopdev : NULL,
		.disk_mnt = disk_mnt,
		.userns_fd = userns_fd,
		.lower_mnt = lower_mnt,
		.root_uid = box->userns_base,
		.root_gid = box->userns_base,
	};
	if (sbx_rootfs_mount_overlay(&cfg, err) < 0)
		return -1;
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open merged root");
	return fd;
}

void sbx_box_unmount_root(const char *scratch)
{
	static const char *const mnts[] = { "root", "lower", "disk" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(mnts); i++) {
		char m[PATH_MAX];
		snprintf(m, sizeof(m), "%s/%s", scratch, mnts[i]);
		umount2(m, 0);
	}
}

/* ---- resources ---- */

int sbx_box_set_disk(struct sbx_box *box, int64_t disk_mb, sbx_error **err)
{
	if (disk_mb == box->disk_mb)
		return 0;
	/* A project quota changes live; a disk image has a fixed size. */
	if (!box->projid || disk_mb <= 0)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the disk limit of sandbox %s cannot change", box->id);
	if (sbx_prjquota_limit(box->host->state_fd, box->projid, disk_mb, err) < 0)
		return -1;
	box->disk_mb = disk_mb;
	sbx_box_save(box, NULL);
	return 0;
}

int sbx_box_set_limits(struct sbx_box *box, const struct sbx_limits *limits, sbx_error **err)
{
	struct sbx_limits lim = *limits;
	lim.allow_swap = box->host->allow_swap;
	if ((box->running || box->starting) && box->cgroup &&
	    sbx_cgroup_apply(box->host->cg, box->cgroup, &lim, err) < 0) {
		/* Put back what was there: a half-applied change is worse. */
		sbx_cgroup_apply(box->host->cg, box->cgroup, &box->limits, NULL);
		return -1;
	}
	box->limits = lim;
	sbx_box_save(box, NULL);
	return 0;
}

/* Bytes received and sent on the sandbox's interfaces other than lo. */
static void net_counters(pid_t pid, int64_t *rx, int64_t *tx)
{
	*rx = *tx = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *name = line;
		while (*name == ' ')
			name++;
		if (!strcmp(name, "lo"))
			continue;
		long long r = 0, t = 0, skip;
		if (sscanf(colon + 1, "%lld %lld %lld %lld %lld %lld %lld %lld %lld", &r, &skip, &skip, &skip, &skip, &skip,
			   &skip, &skip, &t) == 9) {
			*rx += r;
			*tx += t;
		}
	}
}

void sbx_box_stats(struct sbx_box *box, bool live, struct sbx_box_stats *st)
{
	memset(st, 0, sizeof(*st));
	bool running = live && box->running;
	if (running)
		sbx_cgroup_stats(box->host->cg, box->cgroup, &st->cg);
	if (box->projid) {
		st->disk_bytes = sbx_prjquota_used(box->host->state_fd, box->projid);
		if (st->disk_bytes < 0)
			st->disk_bytes = 0;
	} else if (running && box->disk_mb > 0) {
		/* overlayfs reports its upper layer's filesystem: the disk image. */
		char root[64];
		snprintf(root, sizeof(root), "/proc/%d/root", (int)box->init_pid);
		struct statfs sf;
		if (statfs(root, &sf) == 0)
			st->disk_bytes = (int64_t)(sf.f_blocks - sf.f_bfree) * (int64_t)sf.f_bsize;
	} else if (box->disk_mb <= 0) {
		char upper[64];
		rel_dir(box, upper, sizeof(upper), "upper");
		st->disk_bytes = sbx_tree_size(box->host->state_fd, upper);
	}
	if (running)
		net_counters(box->init_pid, &st->rx_bytes, &st->tx_bytes);
}

/* ---- pause, stop ---- */

int sbx_box_pause(struct sbx_box *box, bool pause, sbx_error **err)
{
	if (!box->running || !box->cgroup)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is not running", box->id);
	if (sbx_cgroup_freeze(box->host->cg, box->cgroup, pause, err) < 0)
		return -1;
	box->frozen = pause;
	sbx_box_save(box, NULL);
	return 0;
}

int sbx_box_terminate(struct sbx_box *box)
{
	return box->init_pidfd >= 0 ? sbx_pidfd_send_signal(box->init_pidfd, SIGTERM, NULL, 0) : -1;
}

void sbx_box_kill(struct sbx_box *box)
{
	if (!box->cgroup)
		return;
	sbx_cgroup_kill(box->host->cg, box->cgroup, NULL);
	if (box->limits.cpus > 0) {
		struct sbx_limits l = box->limits;
		l.cpus = 0;
		l.allow_swap = box->host->allow_swap;
		sbx_cgroup_apply(box->host->cg, box->cgroup, &l, NULL);
	}
}

int sbx_box_populated(struct sbx_box *box)
{
	return box->cgroup ? sbx_cgroup_populated(box->host->cg, box->cgroup) : 0;
}

int sbx_box_events_open(struct sbx_box *box, sbx_error **err)
{
	if (!box->cgroup)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s has no group", box->id);
	return sbx_cgroup_events_open(box->host->cg, box->cgroup, err);
}

int sbx_box_events_populated(int fd)
{
	return sbx_cgroup_events_populated(fd);
}

void sbx_box_reap_init(struct sbx_box *box)
{
	if (box->init_pidfd < 0)
		return;
	/* Our child unless we restarted since; then its new parent reaps it. */
	waitid((idtype_t)P_PIDFD, (id_t)box->init_pidfd, NULL, WEXITED | WNOHANG);
	sbx_closep(&box->init_pidfd);
}

int sbx_box_abandon_init(struct sbx_box *box)
{
	return sbx_take_fd(&box->init_pidfd);
}

int sbx_box_reap_strays(struct sbx_box *box, bool (*owned)(pid_t pid, void *ctx), void *ctx)
{
	char path[64], want[64], have[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)box->init_pid);
	ssize_t n = readlink(path, want, sizeof(want) - 1);
	if (n <= 0)
		return 0;
	want[n] = '\0';
	_cleanup_closedir_ DIR *dir = opendir("/proc");
	struct dirent *de;
	int reaped = 0;
	pid_t self = getpid();
	while (dir && (de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		_cleanup_free_ char *stat = NULL;
		if (sbx_read_file_at(AT_FDCWD, path, 4096, &stat, NULL, NULL) < 0)
			continue;
		char *rp = strrchr(stat, ')');
		char state = 0;
		int ppid = 0;
		if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2 || state != 'Z' || ppid != self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/pid", pid);
		n = readlink(path, have, sizeof(have) - 1);
		if (n <= 0)
			continue;
		have[n] = '\0';
		if (strcmp(have, want) || (owned && owned((pid_t)pid, ctx)))
			continue;
		if (waitpid((pid_t)pid, NULL, WNOHANG | __WALL) == (pid_t)pid)
			reaped++;
	}
	return reaped;
}

int sbx_box_stopped(struct sbx_box *box, sbx_error **err)
{
	int r = 0;
	if (box->cgroup && sbx_cgroup_remove(box->host->cg, box->cgroup, err) < 0)
		r = -1;
	remove_run_dirs(box->host, box->id);
	loop_release(box);
	box->running = false;
	box->frozen = false;
	box->init_pid = 0;
	box->init_starttime = 0;
	sbx_box_save(box, NULL);
	return r;
}

/* Wait for a pidfd to poll readable (its process exited); false on timeout. */
static bool wait_pidfd(int pidfd, int timeout_ms)
{
	int64_t deadline = sbx_monotonic_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - sbx_monotonic_ms();
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r = poll(&p, 1, left < 0 ? 0 : (int)left);
		if (r > 0)
			return true;
		if (r == 0 || (r < 0 && errno != EINTR))
			return false;
	}
}

int sbx_box_stop(struct sbx_box *box, int timeout_ms, sbx_error **err)
{
	if (!box->running)
		return 0;
	if (box->frozen)
		sbx_box_pause(box, false, NULL); /* frozen processes cannot act on SIGTERM */
	bool gone = false;
	if (timeout_ms > 0 && sbx_box_terminate(box) == 0)
		gone = wait_pidfd(box->init_pidfd, timeout_ms);
	if (!gone) {
		sbx_box_kill(box);
		if (box->init_pidfd >= 0)
			wait_pidfd(box->init_pidfd, KILL_WAIT_MS);
	}
	sbx_box_reap_init(box);
	sbx_error *e = NULL;
	if (box->cgroup && sbx_cgroup_kill_wait(box->host->cg, box->cgroup, KILL_WAIT_MS, &e) < 0) {
		sbx_error_free(e);
		e = NULL;
	}
	return sbx_box_stopped(box, err);
}

/* ---- destroy, recover ---- */

int sbx_box_destroy(struct sbx_box *box, const char *trash, sbx_error **err)
{
	const struct sbx_box_host *h = box->host;
	if (box->running)
		sbx_box_stop(box, 0, NULL);
	if (box->cgroup && sbx_box_populated(box) > 0) {
		sbx_error *e = NULL;
		sbx_cgroup_kill_wait(h->cg, box->cgroup, KILL_WAIT_MS, &e);
		sbx_error_free(e);
	}
	char rel[64];
	rel_dir(box, rel, sizeof(rel), NULL);
	/* Renaming away first makes the removal atomic: after a crash the
	 * sandbox is either fully there or in the trash. */
	if (trash) {
		if (renameat(h->state_fd, rel, h->state_fd, trash) < 0 && errno != ENOENT)
			return sbx_error_errno(err, errno, "move %s to trash", rel);
	} else if (sbx_rm_rf_at(h->state_fd, rel, err) < 0) {
		return -1;
	}
	remove_run_dirs(h, box->id);
	if (box->cgroup)
		sbx_cgroup_remove(h->cg, box->cgroup, NULL);
	if (box->projid)
		sbx_prjquota_limit(h->state_fd, box->projid, 0, NULL); /* the files go with the trash */
	sbx_box_reap_init(box);
	box->running = false;
	return 0;
}

int sbx_box_purge(const struct sbx_box_host *host, const char *id, sbx_error **err)
{
	struct sbx_box *box = NULL;
	char cgpath[512];
	snprintf(cgpath, sizeof(cgpath), "%s/sbx-%.12s", host->cg->base, id);
	/* Without a readable state the group's path follows from the id. */
	if (sbx_box_load(host, id, &box, NULL) == 0 && box->cgroup)
		snprintf(cgpath, sizeof(cgpath), "%s", box->cgroup);
	sbx_box_free(box);
	sbx_error *e = NULL;
	if (sbx_cgroup_populated(host->cg, cgpath) > 0 && sbx_cgroup_kill_wait(host->cg, cgpath, KILL_WAIT_MS, &e) < 0)
		sbx_error_free(e);
	sbx_cgroup_remove(host->cg, cgpath, NULL);
	remove_run_dirs(host, id);
	char rel[320];
	snprintf(rel, sizeof(rel), "sandboxes/%.12s", id);
	return sbx_rm_rf_at(host->state_fd, rel, err);
}

int sbx_box_recover(struct sbx_box *box, bool adopt)
{
	if (adopt && box->running && box->init_pid > 0) {
		int pfd = sbx_pidfd_open(box->init_pid, 0);
		/* A pidfd polls readable once the process has exited (a zombie
		 * nobody reaped yet included): that init is gone too. */
		struct pollfd pp = { .fd = pfd, .events = POLLIN };
		bool exited = pfd >= 0 && poll(&pp, 1, 0) > 0;
		if (pfd >= 0 && !exited && box->init_starttime && sbx_proc_starttime(box->init_pid) == box->init_starttime) {
			sbx_closep(&box->init_pidfd);
			box->init_pidfd = sbx_fd_park(pfd);
			/* Groups of commands that ended while the owner was away. */
			sbx_box_prune(box, "");
			return 1;
		}
		if (pfd >= 0)
			close(pfd);
	}
	if (box->cgroup) {
		sbx_cgroup_kill(box->host->cg, box->cgroup, NULL);
		sbx_cgroup_remove(box->host->cg, box->cgroup, NULL);
	}
	remove_run_dirs(box->host, box->id);
	if (box->running || box->frozen || box->init_pid) {
		box->running = false;
		box->frozen = false;
		box->init_pid = 0;
		box->init_starttime = 0;
		sbx_box_save(box, NULL);
	}
	return 0;
}
