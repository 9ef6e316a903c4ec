/* sandboxctl create, ls, inspect, start, stop, rm */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static bool want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

int ctl_parse_mb(const char *s, long long *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	double mul = 1;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mul = 1.0 / 1024; break;
		case 'm': case 'M': mul = 1; break;
		case 'g': case 'G': mul = 1024; break;
		case 't': case 'T': mul = 1024 * 1024; break;
		default: return -1;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -1;
	}
	*out = (long long)(v * mul + 0.5);
	if (v > 0 && *out == 0)
		return -1; /* below 1 MiB: refuse rather than read it as unlimited */
	return 0;
}

int ctl_create_opts_init(struct create_opts *o, int argc, char ***lists)
{
	memset(o, 0, sizeof(*o));
	size_t n = (size_t)argc + 1;
	*lists = calloc(4 * n, sizeof(char *));
	if (!*lists)
		return ctl_fail("out of memory");
	o->env = *lists;
	o->labels = *lists + n;
	o->cap_add = *lists + 2 * n;
	o->cap_drop = *lists + 3 * n;
	return 0;
}

int ctl_create_option(struct create_opts *o, int opt, const char *arg)
{
	char *a = (char *)arg;
	switch (opt) {
	case 'n': o->name = a; break;
	case 'e': o->env[o->nenv++] = a; break;
	case 'l': o->labels[o->nlabels++] = a; break;
	case 'w': o->workdir = a; break;
	case 'u': o->user = a; break;
	case 'm':
	case CTL_OPT_MEMORY: o->memory = a; break;
	case CTL_OPT_IMAGE: o->image = a; break;
	case CTL_OPT_HOSTNAME: o->hostname = a; break;
	case CTL_OPT_NETWORK: o->network = a; break;
	case CTL_OPT_CPUS: o->cpus = a; break;
	case CTL_OPT_PIDS: o->pids = a; break;
	case CTL_OPT_DISK: o->disk = a; break;
	case CTL_OPT_NO_USERNS: o->no_userns = true; break;
	case CTL_OPT_SECCOMP: o->seccomp = a; break;
	case CTL_OPT_CAP_ADD: o->cap_add[o->ncap_add++] = a; break;
	case CTL_OPT_CAP_DROP: o->cap_drop[o->ncap_drop++] = a; break;
	default: return 0;
	}
	return 1;
}

int ctl_gen_resources(yajl_gen g, const struct create_opts *o)
{
	if (!o->cpus && !o->memory && !o->pids && !o->disk)
		return 0;
	sbx_gen_key(g, "resources");
	yajl_gen_map_open(g);
	if (o->cpus) {
		char *end;
		double v = strtod(o->cpus, &end);
		if (*end || end == o->cpus || v < 0)
			return ctl_fail("invalid --cpus '%s': expected a number such as 1 or 0.5", o->cpus);
		sbx_gen_kv_double(g, "cpus", v);
	}
	const struct {
		const char *val, *key, *opt;
		bool size;
	} ints[] = {
		{ o->memory, "memory_mb", "--memory", true },
		{ o->disk, "disk_mb", "--disk", true },
		{ o->pids, "pids", "--pids", false },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(ints); i++) {
		if (!ints[i].val)
			continue;
		long long v;
		int64_t iv;
		if (ints[i].size ? ctl_parse_mb(ints[i].val, &v) < 0 : sbx_parse_int64(ints[i].val, 0, INT64_MAX, &iv) < 0)
			return ctl_fail("invalid %s '%s': expected %s", ints[i].opt, ints[i].val,
					ints[i].size ? "a size in MiB or with a unit (512m, 2g)" : "a whole number");
		sbx_gen_kv_int(g, ints[i].key, ints[i].size ? v : iv);
	}
	yajl_gen_map_close(g);
	return 0;
}

int ctl_gen_create_params(yajl_gen g, const struct create_opts *o)
{
	yajl_gen_map_open(g);
	int r = ctl_gen_create_fields(g, o);
	if (r == 0)
		yajl_gen_map_close(g);
	return r;
}

int ctl_gen_create_fields(yajl_gen g, const struct create_opts *o)
{
	if (o->name)
		sbx_gen_kv_str(g, "name", o->name);
	if (o->image)
		sbx_gen_kv_str(g, "image", o->image);
	if (o->workdir)
		sbx_gen_kv_str(g, "workdir", o->workdir);
	if (o->user)
		sbx_gen_kv_str(g, "user", o->user);
	if (o->hostname)
		sbx_gen_kv_str(g, "hostname", o->hostname);
	if (o->no_start)
		sbx_gen_kv_bool(g, "start", false);
	if (o->public)
		sbx_gen_kv_bool(g, "public", true);
	if (o->no_userns)
		sbx_gen_kv_bool(g, "userns", false);
	if (o->seccomp)
		sbx_gen_kv_str(g, "seccomp_profile", o->seccomp);
	if (o->ncap_add) {
		sbx_gen_key(g, "cap_add");
		yajl_gen_array_open(g);
		for (int i = 0; i < o->ncap_add; i++)
			sbx_gen_str(g, o->cap_add[i]);
		yajl_gen_array_close(g);
	}
	if (o->ncap_drop) {
		sbx_gen_key(g, "cap_drop");
		yajl_gen_array_open(g);
		for (int i = 0; i < o->ncap_drop; i++)
			sbx_gen_str(g, o->cap_drop[i]);
		yajl_gen_array_close(g);
	}
	if (ctl_gen_resources(g, o) != 0)
		return CTL_EXIT_FAIL;
	if (o->network) {
		sbx_gen_key(g, "network");
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "mode", o->network);
		yajl_gen_map_close(g);
	}
	sbx_gen_key(g, "env");
	yajl_gen_map_open(g);
	for (int i = 0; i < o->nenv; i++)
		if (ctl_gen_kv_arg(g, o->env[i]) < 0)
			return ctl_fail("invalid --env '%s': expected KEY=VALUE", o->env[i]);
	yajl_gen_map_close(g);
	sbx_gen_key(g, "labels");
	yajl_gen_map_open(g);
	for (int i = 0; i < o->nlabels; i++)
		if (ctl_gen_kv_arg(g, o->labels[i]) < 0)
			return ctl_fail("invalid --label '%s': expected KEY=VALUE", o->labels[i]);
	yajl_gen_map_close(g);
	return 0;
}

enum { OPT_JSON = 300, OPT_NO_START, OPT_AUTO_STOP, OPT_PUBLIC, OPT_PRIVATE };

int cmd_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_CREATE_OPTIONS,
		{ "no-start", no_argument, NULL, OPT_NO_START },
		{ "public", no_argument, NULL, OPT_PUBLIC },
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
		case OPT_NO_START: o.no_start = true; break;
		case OPT_PUBLIC: o.public = true; break;
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl create [--name NAME] [--image IMAGE | IMAGE] [--env K=V]... [--label K=V]...\n"
			       "                        [--workdir DIR] [--user USER] [--hostname NAME] [--network bridge|none]\n"
			       "                        [--cpus N] [--memory SIZE] [--pids N] [--disk SIZE] [--no-start] [--json]\n"
			       "                        [--no-userns] [--cap-add CAP]... [--cap-drop CAP]... [--seccomp-profile P]\n"
			       "                        [--public]\n"
			       "SIZE is in MiB or has a unit: 512m, 2g. 0 means unlimited; omitted means the daemon's default.\n"
			       "--no-userns and --seccomp-profile unconfined weaken isolation; see sandboxd(8).\n"
			       "--public serves its preview links without a token, to anyone who reaches the gateway.\n"
			       "Create a sandbox (started unless --no-start) and print its id.\n");
			return 0;
		default:
			return ctl_bad_option("create", argv);
		}
	}
	if (optind < argc) {
		if (o.image)
			return ctl_usage_error("create", "give the image either with --image or as an argument");
		o.image = argv[optind++];
	}
	if (optind < argc)
		return ctl_usage_error("create", "unexpected argument '%s'", argv[optind]);
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g || ctl_gen_create_params(g, &o) != 0)
		return CTL_EXIT_FAIL;
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.create", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	else
		printf("%s\n", ctl_str(res, "id"));
	return 0;
}

int cmd_ls(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' }, { "state", required_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },	   { "json", no_argument, NULL, OPT_JSON },
		{ "all", no_argument, NULL, 'a' },	   { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_key(g, "labels");
	yajl_gen_map_open(g);
	const char *state = NULL;
	bool quiet = false;
	int c;
	while ((c = getopt_long(argc, argv, "l:s:qah", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (ctl_gen_kv_arg(g, optarg) < 0)
				return ctl_fail("invalid --label '%s': expected KEY=VALUE", optarg);
			break;
		case 's': state = optarg; break;
		case 'q': quiet = true; break;
		case 'a': break; /* every state is listed already */
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl ls [--label K=V]... [--state STATE] [-q] [--json]\nList sandboxes.\n");
			return 0;
		default:
			return ctl_bad_option("ls", argv);
		}
	}
	if (optind < argc)
		return ctl_usage_error("ls", "unexpected argument '%s'", argv[optind]);
	yajl_gen_map_close(g);
	if (state)
		sbx_gen_kv_str(g, "state", state);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.list", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	yajl_val list = sbx_json_get(res, "sandboxes");
	if (ctl->json) {
		ctl_print_json(list);
		return 0;
	}
	static const char *const headers[] = { "ID", "NAME", "IMAGE", "STATE", "CREATED" };
	struct ctl_table *t = quiet ? NULL : ctl_table_new(headers, 5);
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val sb = list->u.array.values[i];
		if (quiet) {
			printf("%s\n", ctl_str(sb, "id"));
			continue;
		}
		char ago[64];
		ctl_ago(ctl_str(sb, "created_at"), ago, sizeof(ago));
		const char *row[] = { ctl_str(sb, "id"), ctl_str(sb, "name"), ctl_str(sb, "image"), ctl_str(sb, "state"), ago };
		ctl_table_add(t, row);
	}
	ctl_table_print(t);
	return 0;
}

int cmd_inspect(struct ctl *ctl, int argc, char **argv)
{
	if (want_help(argc, argv)) {
		printf("Usage: sandboxctl inspect SANDBOX\nShow a sandbox as JSON.\n");
		return 0;
	}
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "sandbox", argv[i]);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.inspect", g, &res);
		if (!root) {
			rc = CTL_EXIT_FAIL;
			continue;
		}
		ctl_print_json(res);
	}
	if (argc < 2)
		return ctl_usage_error("inspect", "which sandbox?");
	return rc;
}

/* start, stop and rm share a shape: options, then one or more sandboxes. */
static int for_each_sandbox(struct ctl *ctl, const char *verb, const char *method, int argc, char **argv, bool force,
			    double timeout)
{
	if (optind >= argc)
		return ctl_usage_error(verb, "which sandbox?");
	int rc = 0;
	for (int i = optind; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			ctl->json = true;
	for (int i = optind; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "sandbox", argv[i]);
		if (force)
			sbx_gen_kv_bool(g, "force", true);
		if (timeout >= 0)
			sbx_gen_kv_double(g, "timeout_s", timeout);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = ctl_call(ctl, method, g, &res);
		if (!root) {
			rc = CTL_EXIT_FAIL;
			continue;
		}
		if (ctl->json)
			ctl_print_json(res);
		else
			printf("%s\n", argv[i]);
	}
	return rc;
}

int cmd_start(struct ctl *ctl, int argc, char **argv)
{
	if (want_help(argc, argv)) {
		printf("Usage: sandboxctl start SANDBOX...\nStart stopped sandboxes; their files are as they were left.\n");
		return 0;
	}
	optind = 1;
	return for_each_sandbox(ctl, "start", "sandbox.start", argc, argv, false, -1);
}

int cmd_stop(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' }, { "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, OPT_JSON },     { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double timeout = -1;
	bool force = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:fh", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *end;
			timeout = strtod(optarg, &end);
			if (*end || timeout < 0)
				return ctl_usage_error("stop", "invalid --timeout '%s'", optarg);
			break;
		}
		case 'f': force = true; break;
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl stop [-t SECONDS] [-f] SANDBOX...\n"
			       "Stop sandboxes: SIGTERM to every process, SIGKILL after the timeout (default 10 s);\n"
			       "-f kills at once. Files in the sandbox are kept.\n");
			return 0;
		default:
			return ctl_bad_option("stop", argv);
		}
	}
	return for_each_sandbox(ctl, "stop", "sandbox.stop", argc, argv, force, timeout);
}

int cmd_rm(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool force = false;
	int c;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = true; break;
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl rm [-f] SANDBOX...\nDelete sandboxes and all their files; -f also "
			       "kills running ones.\n");
			return 0;
		default:
			return ctl_bad_option("rm", argv);
		}
	}
	return for_each_sandbox(ctl, "rm", "sandbox.delete", argc, argv, force, -1);
}

int cmd_pause(struct ctl *ctl, int argc, char **argv)
{
	if (want_help(argc, argv)) {
		printf("Usage: sandboxctl pause SANDBOX...\nFreeze every process of sandboxes; memory is kept.\n");
		return 0;
	}
	optind = 1;
	return for_each_sandbox(ctl, "pause", "sandbox.pause", argc, argv, false, -1);
}

int cmd_archive(struct ctl *ctl, int argc, char **argv)
{
	if (want_help(argc, argv)) {
		printf("Usage: sandboxctl archive SANDBOX...\n"
		       "Pack stopped sandboxes' files into a compressed archive and free their writable layer;\n"
		       "a start restores them. Returns once archived.\n");
		return 0;
	}
	optind = 1;
	return for_each_sandbox(ctl, "archive", "sandbox.archive", argc, argv, false, -1);
}

int cmd_resume(struct ctl *ctl, int argc, char **argv)
{
	if (want_help(argc, argv)) {
		printf("Usage: sandboxctl resume SANDBOX...\nThaw paused sandboxes.\n");
		return 0;
	}
	optind = 1;
	return for_each_sandbox(ctl, "resume", "sandbox.resume", argc, argv, false, -1);
}

int cmd_update(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cpus", required_argument, NULL, CTL_OPT_CPUS }, { "memory", required_argument, NULL, CTL_OPT_MEMORY },
		{ "pids", required_argument, NULL, CTL_OPT_PIDS }, { "label", required_argument, NULL, 'l' },
		{ "auto-stop", required_argument, NULL, OPT_AUTO_STOP }, { "json", no_argument, NULL, OPT_JSON },
		{ "public", no_argument, NULL, OPT_PUBLIC },		  { "private", no_argument, NULL, OPT_PRIVATE },
		{ "help", no_argument, NULL, 'h' },		  { NULL, 0, NULL, 0 },
	};
	struct create_opts o = { 0 };
	_cleanup_free_ char **labels = calloc((size_t)argc, sizeof(char *));
	const char *auto_stop = NULL;
	int public = -1;
	int c;
	while ((c = getopt_long(argc, argv, "l:m:h", opts, NULL)) != -1) {
		switch (c) {
		case CTL_OPT_CPUS: o.cpus = optarg; break;
		case 'm':
		case CTL_OPT_MEMORY: o.memory = optarg; break;
		case CTL_OPT_PIDS: o.pids = optarg; break;
		case 'l': labels[o.nlabels++] = optarg; break;
		case OPT_AUTO_STOP: auto_stop = optarg; break;
		case OPT_PUBLIC: public = 1; break;
		case OPT_PRIVATE: public = 0; break;
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl update [--cpus N] [--memory SIZE] [--pids N] [--label K=V]... [--auto-stop MIN]\n"
			       "                        [--public | --private] SANDBOX\n"
			       "Change a sandbox's limits (live when it runs), replace its labels, or make its preview\n"
			       "links public (no token) or private.\n");
			return 0;
		default:
			return ctl_bad_option("update", argv);
		}
	}
	if (optind + 1 != argc)
		return ctl_usage_error("update", "give exactly one sandbox");
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", argv[optind]);
	if (ctl_gen_resources(g, &o) != 0)
		return CTL_EXIT_FAIL;
	if (o.nlabels) {
		sbx_gen_key(g, "labels");
		yajl_gen_map_open(g);
		for (int i = 0; i < o.nlabels; i++)
			if (ctl_gen_kv_arg(g, labels[i]) < 0)
				return ctl_fail("invalid --label '%s': expected KEY=VALUE", labels[i]);
		yajl_gen_map_close(g);
	}
	if (auto_stop) {
		int64_t v;
		if (sbx_parse_int64(auto_stop, 0, 525600, &v) < 0)
			return ctl_usage_error("update", "invalid --auto-stop '%s'", auto_stop);
		sbx_gen_kv_int(g, "auto_stop_min", v);
	}
	if (public >= 0)
		sbx_gen_kv_bool(g, "public", public);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.update", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	else
		printf("%s\n", argv[optind]);
	return 0;
}
