/* sandboxctl entry point: global options, then one verb. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sandboxctl [--socket PATH] [--json] COMMAND [ARG]...\n\n"
		"Commands:\n"
		"  info                          show the daemon and host\n"
		"  doctor [--json]               check what this host needs, with the fix for each problem\n"
		"  create [OPTIONS] [IMAGE]      create (and start) a sandbox, print its id\n"
		"  ls [-a] [--label k=v]         list sandboxes\n"
		"  inspect SANDBOX               show one sandbox as JSON\n"
		"  start SANDBOX...              start stopped sandboxes\n"
		"  stop [-t SECONDS] SANDBOX...  stop sandboxes (TERM, then KILL)\n"
		"  rm [-f] SANDBOX...            delete sandboxes\n"
		"  pause | resume SANDBOX...     freeze or thaw every process of sandboxes\n"
		"  archive SANDBOX...            pack stopped sandboxes' files away; start restores them\n"
		"  snapshot SANDBOX IMAGE        an image of a sandbox's files (it keeps running)\n"
		"  fork [OPTIONS] SANDBOX        a new sandbox from a snapshot of one, print its id\n"
		"  update [OPTIONS] SANDBOX      change limits and labels of a sandbox\n"
		"  stats [--watch] [SANDBOX...]  live resource usage\n"
		"  exec [OPTIONS] SANDBOX -- CMD...  run a command in a sandbox (-it: a terminal, -d: background)\n"
		"  ps SANDBOX                    list a sandbox's background commands\n"
		"  logs [-f] SANDBOX CMD_ID      output of a background command\n"
		"  kill [-s SIG] SANDBOX CMD_ID  signal a background command's processes\n"
		"  kill --all [-s SIG] SANDBOX   signal every process of a sandbox but its init\n"
		"  session create|exec|ls|rm     shells whose cwd and exports persist\n"
		"  run [--rm] [OPTIONS] [IMAGE] -- CMD...  create a sandbox and run a command\n"
		"  image ls | import NAME PATH | rm NAME\n"
		"  cp SRC DST                    copy files and directories; SANDBOX:PATH on one side\n"
		"  fs ls|stat|cat|write|rm|mkdir|mv|find SANDBOX ...  files inside a sandbox\n\n"
		"  net publish|unpublish|ports|preview|unpreview  published ports and preview links\n\n"
		"Global options:\n"
		"  -s, --socket PATH   daemon socket (default $SANDBOXD_SOCKET or /run/sandboxd/sandboxd.sock)\n"
		"      --json          machine-readable output\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this help\n\n"
		"See sandboxctl(1).\n");
}

int ctl_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("sandboxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_FAIL;
}

int ctl_bad_option(const char *verb, char **argv)
{
	if (optopt && optopt != '?')
		return ctl_usage_error(verb, "unknown option or missing value for '-%c'", optopt);
	return ctl_usage_error(verb, "unknown option or missing value for '%s'", argv[optind - 1]);
}

int ctl_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	fputs("sandboxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'sandboxctl %s --help'\n", verb);
	return CTL_EXIT_FAIL;
}

yajl_val ctl_call(struct ctl *ctl, const char *method, yajl_gen params, yajl_val *result)
{
	return ctl_call_fd(ctl, method, params, -1, result);
}

yajl_val ctl_call_fd(struct ctl *ctl, const char *method, yajl_gen params, int send_fd, yajl_val *result)
{
	sbx_error *err = NULL;
	if (!ctl->connected) {
		if (sbx_client_connect(&ctl->client, ctl->socket, &err) < 0) {
			ctl_fail("%s (is sandboxd running? set SANDBOXD_SOCKET or --socket)", err->msg);
			sbx_error_free(err);
			return NULL;
		}
		ctl->connected = true;
	}
	ctl->client.on_notification = ctl->on_notification;
	ctl->client.notification_ctx = ctl->notification_ctx;
	const unsigned char *buf = NULL;
	size_t len = 0;
	_cleanup_free_ char *text = NULL;
	if (params) {
		yajl_gen_get_buf(params, &buf, &len);
		text = strndup((const char *)buf, len);
	}
	yajl_val root = send_fd < 0 ? sbx_client_call(&ctl->client, method, text, result, &err)
				    : sbx_client_call_fd(&ctl->client, method, text, send_fd, result, NULL, &err);
	if (!root) {
		ctl_fail("%s", err ? err->msg : "request failed");
		sbx_error_free(err);
	}
	return root;
}

static const struct {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
} verbs[] = {
	{ "info", cmd_info }, { "doctor", cmd_doctor }, { "create", cmd_create }, { "ls", cmd_ls },	  { "list", cmd_ls },
	{ "ps", cmd_ps },     { "inspect", cmd_inspect }, { "start", cmd_start }, { "stop", cmd_stop },
	{ "rm", cmd_rm },     { "delete", cmd_rm },     { "exec", cmd_exec },	  { "run", cmd_run },
	{ "image", cmd_image }, { "images", cmd_image }, { "pause", cmd_pause }, { "archive", cmd_archive }, { "snapshot", cmd_snapshot }, { "fork", cmd_fork }, { "resume", cmd_resume },
	{ "unpause", cmd_resume }, { "update", cmd_update }, { "stats", cmd_stats },
	{ "net", cmd_net },
	{ "logs", cmd_logs }, { "kill", cmd_kill }, { "session", cmd_session },
	{ "cp", cmd_cp },     { "fs", cmd_fs },
};

int main(int argc, char **argv)
{
	struct ctl ctl = { .socket = sbx_client_default_socket() };
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },	    { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	/* Errors are reported by us, in one line. */
	opterr = 0;
	/* '+': stop at the verb; its options are its own. */
	while ((c = getopt_long(argc, argv, "+s:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'V':
			printf("sandboxctl %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return ctl_fail("unknown option '%s'; see 'sandboxctl --help'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_FAIL;
	}
	const char *verb = argv[optind];
	for (size_t i = 0; i < SBX_ARRAY_SIZE(verbs); i++) {
		if (!strcmp(verbs[i].name, verb)) {
			int rest = argc - optind;
			char **rargv = argv + optind;
			optind = 0; /* reset getopt for the verb (0 also re-inits GNU getopt) */
			int rc = verbs[i].fn(&ctl, rest, rargv);
			if (ctl.connected)
				sbx_client_close(&ctl.client);
			fflush(stdout);
			return rc;
		}
	}
	return ctl_fail("unknown command '%s'; see 'sandboxctl --help'", verb);
}
