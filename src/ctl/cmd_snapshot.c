/* sandboxctl snapshot and fork: a sandbox's files as an image, and a new
 * sandbox from them in one call. */
#include "config.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

enum { OPT_JSON = 300 };

int cmd_snapshot(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl snapshot [--json] SANDBOX IMAGE\n"
			       "Make an image of a sandbox's files (running, paused or stopped): its image's layers and\n"
			       "its writable layer, with its env, working directory and user as defaults. A running\n"
			       "sandbox is frozen only while its writable layer is copied; the pause is printed.\n");
			return 0;
		default:
			return ctl_bad_option("snapshot", argv);
		}
	}
	if (argc - optind != 2)
		return ctl_usage_error("snapshot", "give a sandbox and the new image's name");
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", argv[optind]);
	sbx_gen_kv_str(g, "image", argv[optind + 1]);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.snapshot", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
		return 0;
	}
	printf("%s %s (paused %lld ms)\n", ctl_str(res, "name"), ctl_str(res, "id"),
	       ctl_int(sbx_json_get(res, "snapshot"), "pause_ms", -1));
	return 0;
}

int cmd_fork(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_CREATE_OPTIONS,
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct create_opts o;
	_cleanup_free_ char **lists = NULL;
	if (ctl_create_opts_init(&o, argc, &lists) < 0)
		return CTL_EXIT_FAIL;
	int c;
	while ((c = getopt_long(argc, argv, CTL_CREATE_SHORT "h", opts, NULL)) != -1) {
		if (ctl_create_option(&o, c, optarg))
			continue;
		switch (c) {
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl fork [--name NAME] [--image SNAPSHOT] [create options] SANDBOX\n"
			       "Snapshot a sandbox (frozen only for a copy of its writable layer) and create a sandbox\n"
			       "from the snapshot with the options of 'sandboxctl create'; print its id. --image names\n"
			       "the snapshot image (default: SANDBOX-fork-ID).\n");
			return 0;
		default:
			return ctl_bad_option("fork", argv);
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("fork", "give one sandbox to fork");
	/* The create's parameters, with the sandbox to fork. */
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return ctl_fail("out of memory");
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", argv[optind]);
	if (ctl_gen_create_fields(g, &o) != 0)
		return CTL_EXIT_FAIL;
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.fork", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	else
		printf("%s\n", ctl_str(res, "id"));
	return 0;
}
