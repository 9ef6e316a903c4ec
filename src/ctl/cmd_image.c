/* sandboxctl image ls | import | rm | inspect */
#include "config.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int image_usage(FILE *out)
{
	fprintf(out, "Usage: sandboxctl image ls [--json]\n"
		     "       sandboxctl image import [--format auto|dir|rootfs-tar] NAME PATH\n"
		     "       sandboxctl image inspect NAME\n"
		     "       sandboxctl image rm [-f] NAME...\n"
		     "PATH is read by the daemon, so it must be visible on the daemon's host.\n");
	return out == stdout ? 0 : CTL_EXIT_FAIL;
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
	static const char *const headers[] = { "NAME", "ID", "SIZE", "CREATED" };
	struct ctl_table *t = ctl_table_new(headers, 4);
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val im = list->u.array.values[i];
		char size[32], ago[64];
		ctl_human_size(ctl_int(im, "size_bytes", 0), size, sizeof(size));
		ctl_ago(ctl_str(im, "created_at"), ago, sizeof(ago));
		const char *row[] = { ctl_str(im, "name"), ctl_str(im, "id"), size, ago };
		ctl_table_add(t, row);
	}
	ctl_table_print(t);
	return 0;
}

int cmd_image(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return image_usage(stderr);
	const char *sub = argv[1];
	const char *format = NULL;
	bool force = false;
	char *args[8];
	int nargs = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ctl->json = true;
		else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force"))
			force = true;
		else if (!strcmp(argv[i], "--format") && i + 1 < argc)
			format = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return image_usage(stdout);
		else if (argv[i][0] == '-')
			return ctl_usage_error("image", "invalid option '%s'", argv[i]);
		else if (nargs < 8)
			args[nargs++] = argv[i];
	}
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help"))
		return image_usage(stdout);
	if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
		return image_ls(ctl);
	if (!strcmp(sub, "import")) {
		if (nargs != 2)
			return ctl_usage_error("image", "import takes NAME and PATH");
		char abs[PATH_MAX];
		const char *path = realpath(args[1], abs) ? abs : args[1];
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "name", args[0]);
		sbx_gen_kv_str(g, "path", path);
		sbx_gen_kv_str(g, "format", format ? format : "auto");
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = ctl_call(ctl, "image.import", g, &res);
		if (!root)
			return CTL_EXIT_FAIL;
		if (ctl->json)
			ctl_print_json(res);
		else
			printf("%s\n", ctl_str(res, "name"));
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
