/* Registry pulls through skopeo. A registry client is a protocol family of
 * its own (token and basic auth, redirects to blob stores, mirrors,
 * registries.conf, credential helpers, retries, schema 1 conversion);
 * skopeo is the containers/image implementation podman and buildah use,
 * packaged by Debian and kept current there, so sandboxd runs it rather
 * than carry a client. skopeo only transfers: every byte it writes is
 * verified again by the import. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imageref.h"
#include "pull.h"
#include "syscalls.h"
#include "util.h"

#define OUTPUT_MAX (64 * 1024)
#define PULL_TAG "pulled"

static bool file_exists(const char *p)
{
	struct stat st;
	return p && *p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

char *sbx_pull_find_authfile(void)
{
	const char *env = getenv("REGISTRY_AUTH_FILE");
	if (file_exists(env))
		return strdup(env);
	char *p = NULL;
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && *xdg && asprintf(&p, "%s/containers/auth.json", xdg) >= 0) {
		if (file_exists(p))
			return p;
		free(p);
		p = NULL;
	}
	const char *home = getenv("HOME");
	if (home && *home && asprintf(&p, "%s/.docker/config.json", home) >= 0) {
		if (file_exists(p))
			return p;
		free(p);
	}
	return NULL;
}

static bool has(const char *text, const char *needle)
{
	return strstr(text, needle) != NULL;
}

/* skopeo's last message, without its log decoration. */
static char *last_message(const char *output)
{
	const char *msg = strstr(output, "msg=\"");
	const char *start = msg ? msg + 5 : output;
	const char *p;
	while (msg && (p = strstr(start, "msg=\"")))
		start = p + 5;
	size_t n = strcspn(start, "\n");
	if (msg && n && start[n - 1] == '"')
		n--;
	if (n > 400)
		n = 400;
	char *out = strndup(start, n);
	for (char *c = out; c && *c; c++)
		if (*c == '\\' && c[1] == '"')
			memmove(c, c + 1, strlen(c));
	/* "Error parsing image name "docker://...": reason" says the name twice. */
	static const char noise[] = "Error parsing image name \"";
	char *cut = out && !strncmp(out, noise, sizeof(noise) - 1) ? strstr(out, "\": ") : NULL;
	if (cut)
		memmove(out, cut + 3, strlen(cut + 3) + 1);
	return out;
}

int sbx_pull_explain(const char *ref, const char *registry, const char *authfile, const char *output, sbx_error **err)
{
	_cleanup_free_ char *last = last_message(output);
	const char *why = last ? last : "skopeo failed";
	if (has(output, "unauthorized") || has(output, "authentication required") || has(output, "401 Unauthorized") ||
	    has(output, "invalid username/password") || has(output, "denied: requested access"))
		return sbx_error_set(err, SBX_ERR_DENIED,
				     "pull %s: registry %s refused the credentials%s%s%s (%s)", ref, registry,
				     authfile ? " from '" : " (none were found: set REGISTRY_AUTH_FILE or "
							    "pass an auth file",
				     authfile ? authfile : ")", authfile ? "'" : "", why);
	if (has(output, "manifest unknown") || has(output, "name unknown") || has(output, "not found") ||
	    has(output, "NAME_UNKNOWN") || has(output, "MANIFEST_UNKNOWN"))
		return sbx_error_set(err, SBX_ERR_NOT_FOUND,
				     "pull %s: registry %s has no such image (unknown repository or tag) (%s)", ref,
				     registry, why);
	if (has(output, "server gave HTTP response to HTTPS client"))
		return sbx_error_set(err, SBX_ERR_DENIED,
				     "pull %s: registry %s speaks plain HTTP; pull with TLS verification off "
				     "(insecure) to use it",
				     ref, registry);
	if (has(output, "x509:") || has(output, "certificate"))
		return sbx_error_set(err, SBX_ERR_DENIED,
				     "pull %s: the TLS certificate of registry %s is not trusted; add its CA to the "
				     "system or pull with TLS verification off (insecure) (%s)",
				     ref, registry, why);
	if (has(output, "connection refused") || has(output, "no such host") || has(output, "i/o timeout") ||
	    has(output, "network is unreachable") || has(output, "no route to host") ||
	    has(output, "Temporary failure in name resolution") || has(output, "server misbehaving"))
		return sbx_error_set(err, SBX_ERR_TIMEOUT, "pull %s: cannot reach registry %s (%s)", ref, registry, why);
	if (has(output, "choosing an image from manifest list") || has(output, "no image found in manifest list"))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "pull %s: the image has no linux/amd64 variant (%s)", ref,
				     why);
	return sbx_error_set(err, SBX_ERR_INTERNAL, "pull %s: skopeo: %s", ref, why);
}

static int64_t dir_bytes(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int64_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			total += st.st_size;
	}
	closedir(d);
	return total;
}

struct run {
	const char *watch; /* a directory whose growth is the progress */
	const struct sbx_pull_opts *opts;
	struct sbx_pull_progress *p;
};

/* Run argv, collecting its output (stdout and stderr, the first
 * OUTPUT_MAX bytes) in out; returns its exit status, or -1 with err. */
static int run_helper(char *const argv[], struct run *r, struct sbx_buf *out, sbx_error **err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	_cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return sbx_error_errno(err, errno, "fork");
	}
	if (pid == 0) {
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pipefd[1], 1) < 0 || dup2(pipefd[1], 2) < 0)
			_exit(127);
		sbx_close_range(3, ~0U, 0);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "msg=\"cannot run %s: %s\"\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	_cleanup_close_ int rd = pipefd[0];
	int64_t deadline = r->opts->timeout_sec > 0 ? sbx_monotonic_ms() + (int64_t)r->opts->timeout_sec * 1000 : 0;
	bool timed_out = false;
	for (;;) {
		struct pollfd pfd = { .fd = rd, .events = POLLIN };
		int n = poll(&pfd, 1, 250);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0) {
			char buf[4096];
			ssize_t got = read(rd, buf, sizeof(buf));
			if (got <= 0 && !(got < 0 && errno == EINTR))
				break;
			if (got > 0 && out->len < OUTPUT_MAX)
				sbx_buf_append(out, buf, (size_t)got);
		}
		if (r->watch && r->opts->progress) {
			/* The blobs directory also holds the manifest and config. */
			r->p->bytes_done = dir_bytes(r->watch);
			if (r->p->bytes_total && r->p->bytes_done > r->p->bytes_total)
				r->p->bytes_done = r->p->bytes_total;
			r->opts->progress(r->opts->progress_ctx, r->p);
		}
		if (deadline && sbx_monotonic_ms() > deadline) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		return sbx_error_set(err, SBX_ERR_TIMEOUT, "%s did not finish in %d s", argv[0], r->opts->timeout_sec);
	if (!out->data)
		sbx_buf_append(out, "", 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Sizes of what will be downloaded, from the manifest (following an index
 * to its linux/amd64 entry); 0 when they cannot be had. Errors here are
 * the pull's errors: they come before anything is written. */
static int resolve(const char *skopeo, const char *src, const char *repo, char *const *common, size_t n_common,
		   const char *ref, const char *registry, const char *authfile, struct run *r, int64_t *total,
		   sbx_error **err)
{
	char *argv[32];
	size_t a = 0;
	argv[a++] = (char *)skopeo;
	argv[a++] = "inspect";
	argv[a++] = "--raw";
	for (size_t i = 0; i < n_common; i++)
		argv[a++] = common[i];
	argv[a++] = (char *)src;
	argv[a] = NULL;
	_cleanup_free_ char *by_digest = NULL;
	for (int depth = 0; depth < 3; depth++) {
		struct sbx_buf out = { 0 };
		struct run quiet = { .opts = r->opts, .p = r->p };
		int st = run_helper(argv, &quiet, &out, err);
		if (st != 0) {
			if (st > 0)
				sbx_pull_explain(ref, registry, authfile, out.data ? out.data : "", err);
			sbx_buf_free(&out);
			return -1;
		}
		struct sbx_oci_descriptor cfg, *layers = NULL, entry;
		size_t n = 0;
		_cleanup_error_ sbx_error *ignored = NULL;
		if (sbx_oci_parse_manifest(out.data, &cfg, &layers, &n, &ignored) == 0) {
			*total = cfg.size;
			for (size_t i = 0; i < n; i++)
				*total += layers[i].size;
			r->p->layers_total = (int)n;
			free(layers);
			sbx_buf_free(&out);
			return 0;
		}
		sbx_error_free(ignored);
		ignored = NULL;
		int ok = sbx_oci_parse_index(out.data, NULL, &entry, NULL, &ignored);
		sbx_buf_free(&out);
		if (ok < 0)
			return 0; /* a format this step does not know: skopeo may */
		free(by_digest);
		by_digest = NULL;
		if (asprintf(&by_digest, "docker://%s@%s", repo, entry.digest) < 0)
			return sbx_error_errno(err, ENOMEM, "pull");
		argv[a - 1] = by_digest;
	}
	return 0;
}

int sbx_image_pull(struct sbx_layer_store *s, const char *owner, const char *ref, const struct sbx_pull_opts *opts,
		   struct sbx_oci_image **out, sbx_error **err)
{
	static const struct sbx_pull_opts defaults = { 0 };
	if (!opts)
		opts = &defaults;
	struct sbx_image_ref r;
	if (sbx_image_ref_parse(ref, "ref", &r, err) < 0)
		return -1;
	_cleanup_free_ char *normal = sbx_image_ref_normalize(&r);
	/* The repository alone: normalized without tag, less its ":latest". */
	struct sbx_image_ref bare = r;
	bare.tag = NULL;
	bare.digest = NULL;
	_cleanup_free_ char *repo = sbx_image_ref_normalize(&bare);
	_cleanup_free_ char *src = NULL;
	if (repo && strlen(repo) > 7)
		repo[strlen(repo) - 7] = '\0';
	/* containers/image takes a tag or a digest, not both. */
	if (repo && asprintf(&src, "docker://%s%s%s", repo, r.digest ? "@" : ":",
			     r.digest ? r.digest : r.tag ? r.tag : "latest") < 0)
		src = NULL;
	sbx_image_ref_free(&r);
	if (!normal || !repo || !src)
		return sbx_error_errno(err, ENOMEM, "pull");
	char registry[300];
	snprintf(registry, sizeof(registry), "%s", repo);
	*strchr(registry, '/') = '\0';

	_cleanup_free_ char *authfile = opts->authfile ? strdup(opts->authfile) : sbx_pull_find_authfile();
	if (opts->authfile && !file_exists(opts->authfile))
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "pull %s: auth file '%s' does not exist", ref, opts->authfile);
	const char *skopeo = opts->skopeo ? opts->skopeo : "skopeo";
	char *common[8];
	size_t nc = 0;
	common[nc++] = "--override-os=linux";
	common[nc++] = "--override-arch=amd64";
	common[nc++] = opts->insecure ? "--tls-verify=false" : "--tls-verify=true";
	_cleanup_free_ char *auth_arg = NULL;
	if (authfile) {
		if (asprintf(&auth_arg, "--authfile=%s", authfile) < 0)
			return sbx_error_errno(err, ENOMEM, "pull");
		common[nc++] = auth_arg;
	}

	struct sbx_pull_progress p = { .phase = "resolving" };
	struct run run = { .opts = opts, .p = &p };
	if (opts->progress)
		opts->progress(opts->progress_ctx, &p);
	if (resolve(skopeo, src, repo, common, nc, ref, registry, authfile, &run, &p.bytes_total, err) < 0)
		return -1;

	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int tfd = sbx_layer_store_scratch(s, "pull", &tmp, err);
	if (tfd < 0)
		return sbx_error_prefix(err, "pull %s", ref);
	_cleanup_free_ char *dest = NULL, *blobs = NULL, *src_auth = NULL;
	int rc = -1;
	if (asprintf(&dest, "oci:%s/layout:%s", tmp, PULL_TAG) < 0 || asprintf(&blobs, "%s/layout/blobs/sha256", tmp) < 0) {
		sbx_error_errno(err, ENOMEM, "pull");
		goto out;
	}
	char *argv[32];
	size_t a = 0;
	argv[a++] = (char *)skopeo;
	argv[a++] = "copy";
	argv[a++] = "--override-os=linux";
	argv[a++] = "--override-arch=amd64";
	argv[a++] = opts->insecure ? "--src-tls-verify=false" : "--src-tls-verify=true";
	if (authfile) {
		if (asprintf(&src_auth, "--src-authfile=%s", authfile) < 0) {
			sbx_error_errno(err, ENOMEM, "pull");
			goto out;
		}
		argv[a++] = src_auth;
	}
	argv[a++] = src;
	argv[a++] = dest;
	argv[a] = NULL;
	p.phase = "downloading";
	run.watch = blobs;
	struct sbx_buf output = { 0 };
	int st = run_helper(argv, &run, &output, err);
	if (st != 0) {
		if (st > 0)
			sbx_pull_explain(ref, registry, authfile, output.data ? output.data : "", err);
		sbx_buf_free(&output);
		goto out;
	}
	sbx_buf_free(&output);
	p.bytes_done = p.bytes_total ? p.bytes_total : dir_bytes(blobs);
	if (opts->progress)
		opts->progress(opts->progress_ctx, &p);

	p.phase = "unpacking";
	_cleanup_close_ int layout = openat(tfd, "layout", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (layout < 0) {
		sbx_error_errno(err, errno, "pull %s: skopeo wrote no layout", ref);
		goto out;
	}
	struct sbx_image_import_opts io = { .ref = PULL_TAG };
	if (sbx_image_import_dirfd(s, owner, layout, &io, out, err) < 0) {
		sbx_error_prefix(err, "pull %s", ref);
		goto out;
	}
	sbx_strv_free((*out)->names);
	char *names[] = { normal, NULL };
	(*out)->names = sbx_strv_dup(names);
	p.layers_done = (int)(*out)->n_layers;
	if (opts->progress)
		opts->progress(opts->progress_ctx, &p);
	rc = 0;
out:
	{
		sbx_error *ignored = NULL;
		sbx_layer_store_rmtemp(s, tmp, &ignored);
		sbx_error_free(ignored);
	}
	return rc;
}
