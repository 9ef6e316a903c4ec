/* sandboxctl exec and run: relay a command's output byte for byte and exit
 * with its exit code (128+N when a signal ended it). */
#include "config.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

enum { OPT_JSON = 300, OPT_TIMEOUT, OPT_RM };

int ctl_write_b64(const char *b64, int fd)
{
	char *data = NULL;
	size_t len = 0;
	if (!b64)
		return 0;
	if (sbx_base64_decode(b64, strlen(b64), &data, &len) < 0)
		return ctl_fail("malformed output in a reply");
	sbx_write_all(fd, data, len);
	free(data);
	return 0;
}

int ctl_gen_command(yajl_gen g, const struct ctl_command *c, const char *term)
{
	sbx_gen_kv_str(g, "sandbox", c->sandbox);
	sbx_gen_key(g, "cmd");
	yajl_gen_array_open(g);
	for (int i = 0; i < c->argc; i++)
		sbx_gen_str(g, c->argv[i]);
	yajl_gen_array_close(g);
	sbx_gen_key(g, "env");
	yajl_gen_map_open(g);
	bool has_term = false;
	for (int i = 0; i < c->nenv; i++) {
		if (ctl_gen_kv_arg(g, c->env[i]) < 0) {
			ctl_fail("invalid --env '%s': expected KEY=VALUE", c->env[i]);
			return -1;
		}
		has_term |= !strncmp(c->env[i], "TERM=", 5);
	}
	if (term && !has_term)
		sbx_gen_kv_str(g, "TERM", term);
	yajl_gen_map_close(g);
	if (c->workdir)
		sbx_gen_kv_str(g, "cwd", c->workdir);
	if (c->user)
		sbx_gen_kv_str(g, "user", c->user);
	if (c->timeout > 0)
		sbx_gen_kv_double(g, "timeout_s", c->timeout);
	return 0;
}

static char *read_stdin(void)
{
	struct sbx_buf b = { 0 };
	char chunk[65536];
	ssize_t n;
	while ((n = read(0, chunk, sizeof(chunk))) > 0)
		if (sbx_buf_append(&b, chunk, (size_t)n) < 0)
			break;
	if (!b.data)
		sbx_buf_append(&b, "", 0);
	return b.data;
}

int ctl_exec_and_relay(struct ctl *ctl, const struct ctl_command *c, bool interactive)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	if (ctl_gen_command(g, c, NULL) < 0)
		return CTL_EXIT_FAIL;
	if (!ctl->json)
		sbx_gen_kv_str(g, "encoding", "base64");
	if (interactive) {
		_cleanup_free_ char *in = read_stdin();
		_cleanup_free_ char *clean = in ? sbx_utf8_sanitize(in, strlen(in), NULL) : NULL;
		if (clean)
			sbx_gen_kv_str(g, "stdin", clean);
	}
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "process.exec", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
	} else {
		fflush(stdout);
		if (ctl_write_b64(ctl_str(res, "stdout"), 1) || ctl_write_b64(ctl_str(res, "stderr"), 2))
			return CTL_EXIT_FAIL;
	}
	yajl_val to = sbx_json_get(res, "timed_out");
	if (to && YAJL_IS_TRUE(to))
		fprintf(stderr, "sandboxctl: command timed out after %g s and was killed\n", c->timeout);
	yajl_val tr = sbx_json_get(res, "truncated");
	if (tr && YAJL_IS_TRUE(tr) && !ctl->json)
		fprintf(stderr, "sandboxctl: output was truncated\n");
	return (int)ctl_int(res, "exit_code", CTL_EXIT_FAIL);
}

static int parse_timeout(const char *verb, const char *s, double *out)
{
	char *end;
	*out = strtod(s, &end);
	if (*end || *out < 0)
		return ctl_usage_error(verb, "invalid --timeout '%s'", s);
	return 0;
}

int cmd_exec(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "env", required_argument, NULL, 'e' },	    { "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },	    { "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "interactive", no_argument, NULL, 'i' },	    { "json", no_argument, NULL, OPT_JSON },
		{ "tty", no_argument, NULL, 't' },		    { "detach", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },		    { NULL, 0, NULL, 0 },
	};
	_cleanup_free_ char **env = calloc((size_t)argc, sizeof(char *));
	int nenv = 0;
	const char *workdir = NULL, *user = NULL;
	double timeout = 0;
	bool interactive = false, tty = false, detach = false;
	int c;
	while ((c = getopt_long(argc, argv, "+e:w:u:itdh", opts, NULL)) != -1) {
		switch (c) {
		case 't': tty = true; break;
		case 'd': detach = true; break;
		case 'e': env[nenv++] = optarg; break;
		case 'w': workdir = optarg; break;
		case 'u': user = optarg; break;
		case 'i': interactive = true; break;
		case OPT_TIMEOUT:
			if (parse_timeout("exec", optarg, &timeout))
				return CTL_EXIT_FAIL;
			break;
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl exec [-e K=V]... [-w DIR] [-u USER] [--timeout SECONDS] [-i] [-t] [-d]\n"
			       "                      [--json] SANDBOX [--] CMD [ARG]...\n"
			       "Run a command in a running sandbox. Its stdout and stderr are relayed and sandboxctl\n"
			       "exits with its exit code. -i sends sandboxctl's stdin to the command; -t runs it on a\n"
			       "terminal of the sandbox (-it: an interactive shell); -d starts it in the background\n"
			       "and prints its CMD_ID (see 'sandboxctl logs').\n");
			return 0;
		default:
			return ctl_bad_option("exec", argv);
		}
	}
	if (optind >= argc)
		return ctl_usage_error("exec", "which sandbox?");
	const char *sandbox = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return ctl_usage_error("exec", "no command given");
	if (tty && detach)
		return ctl_usage_error("exec", "-t and -d do not go together: a detached command has no terminal here");
	struct ctl_command cmd = { .sandbox = sandbox, .argv = argv + optind, .argc = argc - optind, .env = env,
				   .nenv = nenv, .workdir = workdir, .user = user, .timeout = timeout };
	if (tty)
		return ctl_exec_tty(ctl, &cmd);
	if (detach)
		return ctl_exec_detached(ctl, &cmd, interactive);
	return ctl_exec_and_relay(ctl, &cmd, interactive);
}

static void delete_sandbox(struct ctl *ctl, const char *id)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", id);
	sbx_gen_kv_bool(g, "force", true);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.delete", g, &res);
}

int cmd_run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_CREATE_OPTIONS,
		{ "rm", no_argument, NULL, OPT_RM },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "interactive", no_argument, NULL, 'i' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct create_opts o;
	_cleanup_free_ char **lists = NULL;
	if (ctl_create_opts_init(&o, argc, &lists) < 0)
		return CTL_EXIT_FAIL;
	bool rm = false, interactive = false;
	double timeout = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+" CTL_CREATE_SHORT "ih", opts, NULL)) != -1) {
		if (ctl_create_option(&o, c, optarg))
			continue;
		switch (c) {
		case OPT_RM: rm = true; break;
		case 'i': interactive = true; break;
		case OPT_TIMEOUT:
			if (parse_timeout("run", optarg, &timeout))
				return CTL_EXIT_FAIL;
			break;
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl run [--rm] [--name NAME] [-e K=V]... [-l K=V]... [-w DIR] [-u USER]\n"
			       "                     [--timeout SECONDS] [--cpus N] [--memory SIZE] [--pids N] [--disk SIZE]\n"
			       "                     [--no-userns] [--cap-add CAP]... [--cap-drop CAP]... [--seccomp-profile P]\n"
			       "                     [-i] [IMAGE] -- CMD [ARG]...\n"
			       "Create a sandbox, run one command in it and exit with its exit code;\n"
			       "--rm deletes the sandbox afterwards.\n");
			return 0;
		default:
			return ctl_bad_option("run", argv);
		}
	}
	int dashdash = -1;
	/* getopt consumed a "--" that came right after the options. */
	if (optind > 1 && !strcmp(argv[optind - 1], "--"))
		dashdash = optind - 1;
	for (int i = optind; dashdash < 0 && i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			dashdash = i;
			break;
		}
	}
	int cmd_start;
	if (dashdash >= 0 && dashdash < optind) {
		cmd_start = optind;
	} else if (dashdash >= 0) {
		if (dashdash - optind > 1)
			return ctl_usage_error("run", "expected at most one IMAGE before '--'");
		if (dashdash - optind == 1) {
			if (o.image)
				return ctl_usage_error("run", "give the image either with --image or as an argument");
			o.image = argv[optind];
		}
		cmd_start = dashdash + 1;
	} else {
		if (optind < argc && !o.image)
			o.image = argv[optind++];
		cmd_start = optind;
	}
	if (cmd_start >= argc)
		return ctl_usage_error("run", "no command given");
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (ctl_gen_create_params(g, &o) != 0)
		return CTL_EXIT_FAIL;
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "sandbox.create", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	_cleanup_free_ char *id = strdup(ctl_str(res, "id") ? ctl_str(res, "id") : "");
	struct ctl_command cmd = { .sandbox = id, .argv = argv + cmd_start, .argc = argc - cmd_start, .timeout = timeout };
	int rc = ctl_exec_and_relay(ctl, &cmd, interactive);
	if (rm)
		delete_sandbox(ctl, id);
	else if (!ctl->json)
		fprintf(stderr, "sandbox %s kept; remove it with 'sandboxctl rm -f %s'\n", id, id);
	return rc;
}
