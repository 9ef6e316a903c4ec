/* The sandbox registry: every sandbox the daemon knows, found by id or
 * name; their references; what is chosen among them (id ranges, project
 * ids); and the helpers every part of the daemon needs about one sandbox
 * (its limits, seccomp program, environment). Calls nothing else of the
 * daemon: the lifecycle, commands, sessions, networking and the methods
 * are above it. */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/sandbox.h"
#include "seccomp_profile.h"
#include "userns.h"

static const char *const state_names[] = { "creating", "started", "paused",    "stopped",
					     "error",    "archiving", "archived", "restoring" };

const char *sbx_state_name(enum sbx_state s)
{
	return (size_t)s < SBX_ARRAY_SIZE(state_names) ? state_names[s] : "error";
}

int sbx_state_parse(const char *s, enum sbx_state *out)
{
	for (size_t i = 0; i < SBX_ARRAY_SIZE(state_names); i++) {
		if (!strcmp(s, state_names[i])) {
			*out = (enum sbx_state)i;
			return 0;
		}
	}
	return -1;
}

/* Ids first: a name never looks like an id, but a sandbox without one is
 * named by its id. */
struct sbx_sandbox *sbx_sandbox_find(struct sbx_daemon *d, const char *id_or_name)
{
	struct sbx_sandbox *sb = sbx_strmap_get(&d->sandbox_ids, id_or_name);
	return sb ? sb : sbx_strmap_get(&d->sandbox_names, id_or_name);
}

struct sbx_sandbox *sbx_sandbox_from_params(struct sbx_request *req, sbx_error **err)
{
	const char *key = "sandbox";
	const char *ref = NULL;
	if (sbx_json_string(req->params, key, true, &ref, err) < 0)
		return NULL;
	struct sbx_sandbox *sb = sbx_sandbox_find(req->d, ref);
	if (!sb)
		sbx_error_set(err, SBX_ERR_NOT_FOUND, "sandbox \"%.64s\" not found; run 'sandboxctl ls'", ref);
	return sb;
}

size_t sbx_sandbox_count(struct sbx_daemon *d, bool started_only)
{
	size_t n = 0;
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (!started_only || sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED)
			n++;
	return n;
}

bool sbx_image_in_use(struct sbx_daemon *d, const char *image_id)
{
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (sb->image_id && !strcmp(sb->image_id, image_id))
			return true;
	return false;
}

void sbx_sandbox_ref(struct sbx_sandbox *sb)
{
	sb->refs++;
}

void sbx_sandbox_unref(struct sbx_sandbox *sb)
{
	if (--sb->refs > 0)
		return;
	/* What other modules hang on a sandbox (commands, sessions, published
	 * ports) is theirs to release, at its delete; only memory is left. */
	free(sb->name);
	free(sb->image);
	free(sb->image_id);
	sbx_strv_free(sb->service);
	free(sb->network_mode);
	free(sb->net.allow);
	free(sb->net.deny);
	sbx_box_free(sb->box);
	free(sb->seccomp);
	sbx_bpf_free(&sb->filter);
	sbx_kvlist_free(&sb->labels);
	free(sb);
}

void sbx_resources_to_limits(struct sbx_daemon *d, const struct sbx_resources *r, struct sbx_limits *l)
{
	l->cpus = r->cpus;
	l->memory_bytes = r->memory_mb * 1024 * 1024;
	l->pids = r->pids;
	l->allow_swap = d->cfg.allow_swap;
}

void sbx_sandbox_explain_fork_failure(struct sbx_sandbox *sb, sbx_error **err)
{
	if (!err || !*err || !sbx_box_at_pids_limit(sb->box, *err))
		return;
	sbx_error *limit = NULL;
	sbx_error_set(&limit, SBX_ERR_LIMIT,
		      "the sandbox is at its pids limit of %lld processes, so no process can start in it; raise the "
		      "limit with 'sandboxctl update --pids %lld %s' or end its processes with 'sandboxctl kill --all %s'",
		      (long long)sb->res.pids, (long long)sb->res.pids * 2, sb->name, sb->name);
	if (limit)
		limit->errnum = EAGAIN;
	sbx_error_free(*err);
	*err = limit;
}

uint32_t sbx_userns_allocate(struct sbx_daemon *d)
{
	/* One pass marks the ranges in use, then the first free one is taken:
	 * looking for each candidate's user in turn was quadratic, about a
	 * tenth of a second per create at 5000 sandboxes. */
	int64_t slots = d->cfg.userns_count / SBX_USERNS_SIZE;
	_cleanup_free_ uint64_t *used = calloc((size_t)(slots + 63) / 64, sizeof(uint64_t));
	if (!used)
		return 0;
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next) {
		uint32_t base = sb->box->userns_base;
		int64_t k = ((int64_t)base - d->cfg.userns_start) / SBX_USERNS_SIZE;
		if (base && k >= 0 && k < slots && (int64_t)base == d->cfg.userns_start + k * SBX_USERNS_SIZE)
			used[k / 64] |= 1ULL << (k % 64);
	}
	for (int64_t k = 0; k < slots; k++)
		if (!(used[k / 64] & (1ULL << (k % 64))))
			return (uint32_t)(d->cfg.userns_start + k * SBX_USERNS_SIZE);
	return 0;
}

int sbx_sandbox_filter(struct sbx_sandbox *sb, const struct sbx_bpf **out, sbx_error **err)
{
	*out = NULL;
	if (!strcmp(sb->seccomp, "unconfined"))
		goto done;
	if (!strcmp(sb->seccomp, "default")) {
		*out = &sb->d->default_filter;
		goto done;
	}
	/* A profile file: compiled on first use, also after a daemon restart. */
	if (!sb->filter.insns) {
		struct sbx_seccomp_profile prof;
		if (sbx_seccomp_profile_load(sb->seccomp, &prof, err) < 0)
			return -1;
		int r = sbx_seccomp_compile(&prof, &sb->filter, err);
		sbx_seccomp_profile_free(&prof);
		if (r < 0)
			return -1;
	}
	*out = &sb->filter;
done:
	if (sb->box)
		sb->box->seccomp = *out;
	return 0;
}

uint32_t sbx_projid_allocate(struct sbx_daemon *d, const char *id)
{
	/* From the id, so that a reused number is unlikely to meet files of an
	 * earlier owner still being deleted from the trash. */
	uint32_t h = 2166136261u;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	uint32_t projid = 0x100000 + h % 0x7fe00000u;
	for (;;) {
		bool used = false;
		for (struct sbx_sandbox *sb = d->sandboxes; sb && !used; sb = sb->next)
			used = sb->box->projid == projid;
		if (!used)
			return projid;
		projid = projid + 1 >= 0x7ff00000u ? 0x100000 : projid + 1;
	}
}

char **sbx_kvlist_to_env(const struct sbx_kvlist *l)
{
	char **v = calloc(l->n + 1, sizeof(char *));
	for (size_t i = 0; v && i < l->n; i++) {
		if (asprintf(&v[i], "%s=%s", l->items[i].key, l->items[i].value) < 0) {
			v[i] = NULL;
			sbx_box_strv_free(v);
			return NULL;
		}
	}
	return v;
}

char **sbx_sandbox_env(struct sbx_sandbox *sb, const struct sbx_kvlist *extra)
{
	char **more = extra && extra->n ? sbx_kvlist_to_env(extra) : NULL;
	if (extra && extra->n && !more)
		return NULL;
	char **v = sbx_box_env(sb->box, (const char *const *)more);
	sbx_box_strv_free(more);
	return v;
}

int sbx_sandbox_add(struct sbx_daemon *d, struct sbx_sandbox *sb, sbx_error **err)
{
	/* The keys are the sandbox's own strings, which live as long as it. */
	if (sbx_strmap_put(&d->sandbox_ids, sb->id, sb) < 0)
		return sbx_error_errno(err, ENOMEM, "sandbox %s: registry", sb->id);
	if (sbx_strmap_put(&d->sandbox_names, sb->name, sb) < 0) {
		sbx_strmap_del(&d->sandbox_ids, sb->id);
		return sbx_error_errno(err, ENOMEM, "sandbox %s: registry", sb->id);
	}
	sb->next = d->sandboxes;
	if (sb->next)
		sb->next->pprev = &sb->next;
	sb->pprev = &d->sandboxes;
	d->sandboxes = sb;
	return 0;
}

void sbx_sandbox_remove(struct sbx_sandbox *sb)
{
	struct sbx_daemon *d = sb->d;
	if (!sb->pprev)
		return;
	if (sbx_strmap_get(&d->sandbox_ids, sb->id) == sb)
		sbx_strmap_del(&d->sandbox_ids, sb->id);
	if (sbx_strmap_get(&d->sandbox_names, sb->name) == sb)
		sbx_strmap_del(&d->sandbox_names, sb->name);
	*sb->pprev = sb->next;
	if (sb->next)
		sb->next->pprev = sb->pprev;
	sb->next = NULL;
	sb->pprev = NULL;
}
