/* sandboxctl image ls | pull | import | build | tag | export | inspect | rm */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "imageref.h"

static int image_usage(FILE *out)
{
	fprintf(out, "Usage: sandboxctl image ls [--json]\n"
		     "       sandboxctl image pull [--name NAME] [--insecure] [--authfile FILE] [--no-progress] REF\n"
		     "       sandboxctl image import [--format auto|oci|docker-archive|dir|rootfs-tar] [--ref REF] "
		     "[--fd] [--no-progress] PATH|- [NAME]\n"
		     "       sandboxctl image build [--no-progress] RECIPE [NAME]\n"
		     "       sandboxctl image tag IMAGE NAME\n"
		     "       sandboxctl image export [--tar] [--tag TAG] [--no-progress] IMAGE PATH\n"
		     "       sandboxctl image inspect IMAGE...\n"
		     "       sandboxctl image rm [-f] IMAGE...\n"
		     "PATH is read or written by the daemon, so it must be on the daemon's host; import\n"
		     "--fd opens PATH here and passes it instead, and import - reads an archive from stdin.\n");
	return out == stdout ? 0 : CTL_EXIT_FAIL;
}

/* ---- progress bar (a terminal only) ---- */

struct bar {
	bool drawn;
};

static void draw_progress(void *ctx, yajl_val msg)
{
	struct bar *b = ctx;
	const char *method = ctl_str(msg, "method");
	size_t ml = method ? strlen(method) : 0;
	if (ml < 9 || strcmp(method + ml - 9, ".progress"))
		return;
	yajl_val p = sbx_json_get(msg, "params");
	long long bd = ctl_int(p, "bytes_done", 0), bt = ctl_int(p, "bytes_total", 0);
	long long ld = ctl_int(p, "layers_done", 0), lt = ctl_int(p, "layers_total", 0);
	const char *phase = ctl_str(p, "phase");
	char done[32], total[32], pct[16] = "";
	ctl_human_size(bd, done, sizeof(done));
	ctl_human_size(bt, total, sizeof(total));
	if (bt > 0)
		snprintf(pct, sizeof(pct), "  %3lld%%", bd * 100 / bt);
	fprintf(stderr, "\r\033[K%-11s %lld/%lld layers  %s / %s%s", phase ? phase : "", ld, lt, done,
		bt > 0 ? total : "?", pct);
	fflush(stderr);
	b->drawn = true;
}

static yajl_val call_with_progress(struct ctl *ctl, const char *method, yajl_gen g, int send_fd, bool progress,
				   yajl_val *res)
{
	struct bar b = { 0 };
	if (progress) {
		ctl->on_notification = draw_progress;
		ctl->notification_ctx = &b;
	}
	yajl_val root = ctl_call_fd(ctl, method, g, send_fd, res);
	ctl->on_notification = NULL;
	ctl->notification_ctx = NULL;
	if (b.drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	return root;
}

static void short_digest(const char *digest, char *out, size_t len)
{
	const char *hex = digest && !strncmp(digest, "sha256:", 7) ? digest + 7 : NULL;
	snprintf(out, len, "%.12s", hex ? hex : "-");
}

static int image_ls(struct ctl *ctl)
{
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "image.list", NULL, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	yajl_val list = sbx_json_get(res, "images");
	if (ctl->json) {
		ctl_print_json(list);
		return 0;
	}
	static const char *const headers[] = { "NAME", "ID", "DIGEST", "SIZE", "LAYERS", "CREATED" };
	struct ctl_table *t = ctl_table_new(headers, 6);
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val im = list->u.array.values[i];
		char size[32], ago[64], digest[16], layers[16];
		ctl_human_size(ctl_int(im, "size_bytes", 0), size, sizeof(size));
		ctl_ago(ctl_str(im, "created_at"), ago, sizeof(ago));
		short_digest(ctl_str(im, "digest"), digest, sizeof(digest));
		snprintf(layers, sizeof(layers), "%lld", ctl_int(im, "layers", 1));
		/* One row per name, as registries' tools list them. */
		yajl_val names = sbx_json_get(im, "names");
		size_t n = names && YAJL_IS_ARRAY(names) ? names->u.array.len : 0;
		for (size_t k = 0; k < (n ? n : 1); k++) {
			const char *name = n && YAJL_IS_STRING(names->u.array.values[k]) ? YAJL_GET_STRING(names->u.array.values[k])
											 : ctl_str(im, "name");
			const char *row[] = { name, ctl_str(im, "id"), digest, size, layers, ago };
			ctl_table_add(t, row);
		}
	}
	ctl_table_print(t);
	return 0;
}

static void print_image(struct ctl *ctl, yajl_val res)
{
	if (ctl->json) {
		ctl_print_json(res);
		return;
	}
	char digest[16];
	short_digest(ctl_str(res, "digest"), digest, sizeof(digest));
	printf("%s\t%s\t%s\n", ctl_str(res, "name"), ctl_str(res, "id"), digest);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int cmd_image(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return image_usage(stderr);
	const char *sub = argv[1];
	const char *format = NULL, *name = NULL, *authfile = NULL, *ref = NULL, *tag = NULL;
	bool pass_fd = false;
	bool force = false, insecure = false, tar = false, progress = isatty(STDERR_FILENO);
	char *args[64];
	int nargs = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;
		if (!strcmp(a, "--json"))
			ctl->json = true;
		else if (!strcmp(a, "-f") || !strcmp(a, "--force"))
			force = true;
		else if (!strcmp(a, "--insecure") || !strcmp(a, "--tls-verify=false"))
			insecure = true;
		else if (!strcmp(a, "--tar"))
			tar = true;
		else if (!strcmp(a, "--fd"))
			pass_fd = true;
		else if (!strcmp(a, "--no-progress"))
			progress = false;
		else if (!strcmp(a, "--format") && has_value)
			format = argv[++i];
		else if (!strcmp(a, "--name") && has_value)
			name = argv[++i];
		else if (!strcmp(a, "--authfile") && has_value)
			authfile = argv[++i];
		else if (!strcmp(a, "--ref") && has_value)
			ref = argv[++i];
		else if (!strcmp(a, "--tag") && has_value)
			tag = argv[++i];
		else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return image_usage(stdout);
		else if (a[0] == '-' && a[1]) /* - alone is stdin */
			return ctl_usage_error("image", "invalid option '%s' (or it lacks its value)", a);
		else if (nargs < (int)SBX_ARRAY_SIZE(args))
			args[nargs++] = argv[i];
	}
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help"))
		return image_usage(stdout);
	if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
		return image_ls(ctl);
	if (!strcmp(sub, "pull")) {
		if (nargs != 1)
			return ctl_usage_error("image", "pull takes one REF, e.g. python:3.12-slim");
		struct sbx_image_ref r = { 0 };
		sbx_error *err = NULL;
		if (sbx_image_ref_parse(args[0], "ref", &r, &err) < 0) {
			int rc = ctl_usage_error("image", "%s", err->msg);
			sbx_error_free(err);
			return rc;
		}
		sbx_image_ref_free(&r);
		char abs[PATH_MAX];
		if (authfile && authfile[0] != '/' && realpath(authfile, abs))
			authfile = abs;
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "ref", args[0]);
		if (name)
			sbx_gen_kv_str(g, "name", name);
		if (authfile)
			sbx_gen_kv_str(g, "authfile", authfile);
		if (insecure)
			sbx_gen_kv_bool(g, "insecure", true);
		sbx_gen_kv_bool(g, "progress", progress);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = call_with_progress(ctl, "image.pull", g, -1, progress, &res);
		if (!root)
			return CTL_EXIT_FAIL;
		print_image(ctl, res);
		return 0;
	}
	if (!strcmp(sub, "import")) {
		if (nargs < 1 || nargs > 2)
			return ctl_usage_error("image", "import takes PATH and an optional NAME");
		/* PATH [NAME]; the older NAME PATH order is still understood. */
		const char *path = args[0], *iname = nargs == 2 ? args[1] : NULL;
		if (nargs == 2 && !exists(args[0]) && exists(args[1])) {
			path = args[1];
			iname = args[0];
		}
		/* - is stdin; --fd opens the path here, with the caller's rights,
		 * and passes it: the daemon need not see the same file system. */
		_cleanup_close_ int fd = -1;
		if (!strcmp(path, "-")) {
			fd = dup(STDIN_FILENO);
			if (fd < 0) {
				ctl_fail("image import: standard input: %s", strerror(errno));
				return CTL_EXIT_FAIL;
			}
		} else if (pass_fd && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			ctl_fail("image import: %s: %s", path, strerror(errno));
			return CTL_EXIT_FAIL;
		}
		char abs[PATH_MAX];
		if (fd < 0 && realpath(path, abs))
			path = abs;
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		if (iname)
			sbx_gen_kv_str(g, "name", iname);
		if (fd >= 0)
			sbx_gen_kv_bool(g, "fd", true);
		else
			sbx_gen_kv_str(g, "path", path);
		sbx_gen_kv_str(g, "format", format ? format : "auto");
		if (ref)
			sbx_gen_kv_str(g, "ref", ref);
		sbx_gen_kv_bool(g, "progress", progress);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = call_with_progress(ctl, "image.import", g, fd, progress, &res);
		if (!root)
			return CTL_EXIT_FAIL;
		if (ctl->json)
			ctl_print_json(res);
		else
			printf("%s\n", ctl_str(res, "name"));
		return 0;
	}
	if (!strcmp(sub, "build")) {
		if (nargs < 1 || nargs > 2)
			return ctl_usage_error("image", "build takes RECIPE (a name, or a recipe directory) and an optional NAME");
		if (nargs == 2) {
			if (name)
				return ctl_usage_error("image", "build: give the name once, as NAME or --name");
			name = args[1];
		}
		/* A path (it has a slash) is made absolute; a name is the daemon's. */
		char abs[PATH_MAX];
		const char *recipe = args[0];
		if (strchr(recipe, '/') && realpath(recipe, abs))
			recipe = abs;
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "recipe", recipe);
		if (name)
			sbx_gen_kv_str(g, "name", name);
		sbx_gen_kv_bool(g, "progress", progress);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = call_with_progress(ctl, "image.build", g, -1, progress, &res);
		if (!root)
			return CTL_EXIT_FAIL;
		print_image(ctl, res);
		return 0;
	}
	if (!strcmp(sub, "tag")) {
		if (nargs != 2)
			return ctl_usage_error("image", "tag takes IMAGE and NAME");
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "name", args[0]);
		sbx_gen_kv_str(g, "tag", args[1]);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = ctl_call(ctl, "image.tag", g, &res);
		if (!root)
			return CTL_EXIT_FAIL;
		if (ctl->json)
			ctl_print_json(res);
		else
			printf("%s\n", args[1]);
		return 0;
	}
	if (!strcmp(sub, "export")) {
		if (nargs != 2)
			return ctl_usage_error("image", "export takes IMAGE and PATH");
		char abs[PATH_MAX];
		const char *path = args[1];
		if (path[0] != '/') {
			/* The parent exists; the path itself must not. */
			if (!getcwd(abs, sizeof(abs) - strlen(path) - 2))
				return ctl_fail("export: current directory: path too long");
			strcat(abs, "/");
			strcat(abs, path);
			path = abs;
		}
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "name", args[0]);
		sbx_gen_kv_str(g, "path", path);
		sbx_gen_kv_str(g, "format", tar ? "oci-tar" : "oci-dir");
		if (tag)
			sbx_gen_kv_str(g, "tag", tag);
		sbx_gen_kv_bool(g, "progress", progress);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = call_with_progress(ctl, "image.export", g, -1, progress, &res);
		if (!root)
			return CTL_EXIT_FAIL;
		if (ctl->json)
			ctl_print_json(res);
		else
			printf("%s\t%s\n", ctl_str(res, "path"), ctl_str(res, "digest"));
		return 0;
	}
	if (!strcmp(sub, "rm") || !strcmp(sub, "remove") || !strcmp(sub, "inspect")) {
		bool rm = strcmp(sub, "inspect") != 0;
		if (nargs < 1)
			return ctl_usage_error("image", "which image?");
		int rc = 0;
		for (int i = 0; i < nargs; i++) {
			_cleanup_gen_ yajl_gen g = sbx_gen_new();
			yajl_gen_map_open(g);
			sbx_gen_kv_str(g, "name", args[i]);
			if (force)
				sbx_gen_kv_bool(g, "force", true);
			yajl_gen_map_close(g);
			yajl_val res;
			_cleanup_json_ yajl_val root = ctl_call(ctl, rm ? "image.remove" : "image.inspect", g, &res);
			if (!root) {
				rc = CTL_EXIT_FAIL;
				continue;
			}
			if (rm && !ctl->json)
				printf("%s\n", args[i]);
			else
				ctl_print_json(res);
		}
		return rc;
	}
	return ctl_usage_error("image", "unknown image command '%s'", sub);
}
