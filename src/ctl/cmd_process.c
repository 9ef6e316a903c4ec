/* sandboxctl's background commands: exec -d and exec -t, logs, ps, kill,
 * and the session verbs. An interactive terminal is the sandbox's own pty
 * master handed over the socket, so keystrokes go straight to the kernel
 * with no daemon in between. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"

enum { OPT_JSON = 300, OPT_OFFSET, OPT_SIGNAL };

int ctl_exec_detached(struct ctl *ctl, const struct ctl_command *c, bool keep_stdin)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	if (ctl_gen_command(g, c, NULL) < 0)
		return CTL_EXIT_FAIL;
	if (keep_stdin)
		sbx_gen_kv_bool(g, "stdin", true);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "process.spawn", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json)
		ctl_print_json(res);
	else
		printf("%s\n", ctl_str(res, "cmd_id"));
	return 0;
}

static struct termios saved_tio;
static bool tio_saved;

static void restore_terminal(void)
{
	if (tio_saved)
		tcsetattr(0, TCSAFLUSH, &saved_tio);
	tio_saved = false;
}

/* The exit status of a command that has ended, as exec reports it. */
static int wait_exit_code(struct ctl *ctl, const char *sandbox, const char *cmd_id)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", sandbox);
	sbx_gen_kv_str(g, "cmd_id", cmd_id);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "process.wait", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	return (int)ctl_int(res, "exit_code", CTL_EXIT_FAIL);
}

/* Copy between our terminal and the sandbox's until the program ends. */
static int relay_terminal(int master)
{
	bool in_open = true;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	char buf[65536];
	for (;;) {
		struct pollfd p[3] = { { .fd = master, .events = POLLIN },
				       { .fd = in_open ? 0 : -1, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			struct winsize ws;
			if (ioctl(0, TIOCGWINSZ, &ws) == 0)
				ioctl(master, TIOCSWINSZ, &ws);
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n <= 0) /* EIO: the last process holding the terminal has gone */
				break;
			if (sbx_write_all(1, buf, (size_t)n) < 0)
				break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				in_open = false;
				/* Our input ended (a pipe): end of file for the program. */
				if (!isatty(0))
					sbx_write_all(master, "\x04", 1);
				continue;
			}
			if (sbx_write_all(master, buf, (size_t)n) < 0)
				break;
		}
	}
	if (sfd >= 0)
		close(sfd);
	return 0;
}

int ctl_exec_tty(struct ctl *ctl, const struct ctl_command *c)
{
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	bool term = isatty(0);
	if (term)
		ioctl(0, TIOCGWINSZ, &ws);
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	/* The program draws for our terminal. */
	const char *t = getenv("TERM");
	if (ctl_gen_command(g, c, t && *t ? t : "xterm") < 0)
		return CTL_EXIT_FAIL;
	sbx_gen_kv_bool(g, "tty", true);
	sbx_gen_kv_bool(g, "attach", true);
	sbx_gen_kv_int(g, "rows", ws.ws_row ? ws.ws_row : 24);
	sbx_gen_kv_int(g, "cols", ws.ws_col ? ws.ws_col : 80);
	yajl_gen_map_close(g);
	if (!ctl->connected) {
		yajl_val r;
		_cleanup_json_ yajl_val ping = ctl_call(ctl, "system.ping", NULL, &r);
		if (!ping)
			return CTL_EXIT_FAIL;
	}
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	_cleanup_free_ char *text = strndup((const char *)buf, len);
	sbx_error *err = NULL;
	yajl_val res;
	int master = -1;
	_cleanup_json_ yajl_val root = sbx_client_call_fd(&ctl->client, "process.spawn", text, -1, &res, &master, &err);
	if (!root) {
		ctl_fail("%s", err ? err->msg : "request failed");
		sbx_error_free(err);
		return CTL_EXIT_FAIL;
	}
	if (master < 0)
		return ctl_fail("sandboxd did not hand over the terminal");
	_cleanup_free_ char *cmd_id = strdup(ctl_str(res, "cmd_id") ? ctl_str(res, "cmd_id") : "");
	if (term && tcgetattr(0, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tio_saved = true;
		atexit(restore_terminal);
		tcsetattr(0, TCSAFLUSH, &raw);
	}
	relay_terminal(master);
	close(master);
	restore_terminal();
	return wait_exit_code(ctl, c->sandbox, cmd_id);
}

int cmd_logs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' }, { "offset", required_argument, NULL, OPT_OFFSET },
		{ "help", no_argument, NULL, 'h' },   { NULL, 0, NULL, 0 },
	};
	bool follow = false;
	long long offset = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': follow = true; break;
		case OPT_OFFSET: {
			char *end;
			offset = strtoll(optarg, &end, 10);
			if (*end || offset < 0)
				return ctl_usage_error("logs", "invalid --offset '%s'", optarg);
			break;
		}
		case 'h':
			printf("Usage: sandboxctl logs [-f] [--offset N] SANDBOX CMD_ID\n"
			       "Print the output a background command has logged, stdout to stdout and stderr to\n"
			       "stderr; -f keeps following it until the command ends.\n");
			return 0;
		default:
			return ctl_bad_option("logs", argv);
		}
	}
	if (argc - optind != 2)
		return ctl_usage_error("logs", "give SANDBOX and CMD_ID");
	const char *sandbox = argv[optind], *cmd_id = argv[optind + 1];
	for (;;) {
		_cleanup_gen_ yajl_gen g = sbx_gen_new();
		yajl_gen_map_open(g);
		sbx_gen_kv_str(g, "sandbox", sandbox);
		sbx_gen_kv_str(g, "cmd_id", cmd_id);
		sbx_gen_kv_int(g, "offset", offset);
		sbx_gen_kv_str(g, "encoding", "base64");
		if (follow)
			sbx_gen_kv_bool(g, "follow", true);
		yajl_gen_map_close(g);
		yajl_val res;
		_cleanup_json_ yajl_val root = ctl_call(ctl, "process.logs", g, &res);
		if (!root)
			return CTL_EXIT_FAIL;
		fflush(stdout);
		if (ctl_write_b64(ctl_str(res, "stdout"), 1) || ctl_write_b64(ctl_str(res, "stderr"), 2))
			return CTL_EXIT_FAIL;
		offset = ctl_int(res, "offset", offset);
		yajl_val more = sbx_json_get(res, "more");
		if (!follow && more && YAJL_IS_TRUE(more))
			continue;
		break;
	}
	if (!follow)
		return 0;
	for (;;) {
		sbx_error *err = NULL;
		_cleanup_json_ yajl_val msg = sbx_client_next(&ctl->client, &err);
		if (!msg) {
			ctl_fail("%s", err ? err->msg : "connection lost");
			sbx_error_free(err);
			return CTL_EXIT_FAIL;
		}
		const char *method = ctl_str(msg, "method");
		yajl_val params = sbx_json_get(msg, "params");
		if (!method || !params || strcmp(ctl_str(params, "cmd_id") ? ctl_str(params, "cmd_id") : "", cmd_id))
			continue;
		if (!strcmp(method, "process.exit"))
			return 0;
		if (!strcmp(method, "process.output")) {
			const char *stream = ctl_str(params, "stream");
			if (ctl_write_b64(ctl_str(params, "data"), stream && !strcmp(stream, "stderr") ? 2 : 1))
				return CTL_EXIT_FAIL;
		}
	}
}

int cmd_ps(struct ctl *ctl, int argc, char **argv)
{
	/* Without a sandbox: the sandboxes, as 'ps' always listed. */
	if (argc == 1 || (argc >= 2 && argv[1][0] == '-' && strcmp(argv[1], "--json")))
		return cmd_ls(ctl, argc, argv);
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: ctl->json = true; break;
		case 'h':
			printf("Usage: sandboxctl ps [--json] SANDBOX\n"
			       "List the background commands of a sandbox (without SANDBOX: list sandboxes).\n");
			return 0;
		default:
			return ctl_bad_option("ps", argv);
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error("ps", "give one SANDBOX");
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", argv[optind]);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "process.list", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
		return 0;
	}
	static const char *const headers[] = { "CMD_ID", "PID", "STATUS", "STARTED", "COMMAND" };
	struct ctl_table *t = ctl_table_new(headers, 5);
	yajl_val list = sbx_json_get(res, "processes");
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val p = list->u.array.values[i];
		char pid[24], status[64], ago[64];
		struct sbx_buf cmd = { 0 };
		snprintf(pid, sizeof(pid), "%lld", ctl_int(p, "pid", 0));
		yajl_val ex = sbx_json_get(p, "exited");
		if (!ex || !YAJL_IS_TRUE(ex))
			snprintf(status, sizeof(status), "running");
		else if (ctl_str(p, "signal"))
			snprintf(status, sizeof(status), "killed (%s)", ctl_str(p, "signal"));
		else if (sbx_json_get(p, "lost"))
			snprintf(status, sizeof(status), "lost");
		else
			snprintf(status, sizeof(status), "exited (%lld)", ctl_int(p, "exit_code", -1));
		ctl_ago(ctl_str(p, "started_at"), ago, sizeof(ago));
		yajl_val argvv = sbx_json_get(p, "argv");
		for (size_t j = 0; argvv && YAJL_IS_ARRAY(argvv) && j < argvv->u.array.len; j++) {
			yajl_val a = argvv->u.array.values[j];
			if (YAJL_IS_STRING(a))
				sbx_buf_printf(&cmd, "%s%s", j ? " " : "", YAJL_GET_STRING(a));
		}
		if (cmd.len > 60)
			cmd.len = 60;
		sbx_buf_append(&cmd, "", 0);
		for (size_t k = 0; k < cmd.len; k++)
			if (cmd.data[k] == '\n' || cmd.data[k] == '\t')
				cmd.data[k] = ' ';
		const char *row[] = { ctl_str(p, "cmd_id"), pid, status, ago, cmd.data ? cmd.data : "" };
		ctl_table_add(t, row);
		sbx_buf_free(&cmd);
	}
	ctl_table_print(t);
	return 0;
}

int cmd_kill(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = { { "signal", required_argument, NULL, 's' },
					       { "all", no_argument, NULL, 'a' },
					       { "help", no_argument, NULL, 'h' },
					       { NULL, 0, NULL, 0 } };
	const char *sig = "TERM";
	bool all = false;
	int c;
	while ((c = getopt_long(argc, argv, "+s:ah", opts, NULL)) != -1) {
		switch (c) {
		case 's': sig = optarg; break;
		case 'a': all = true; break;
		case 'h':
			printf("Usage: sandboxctl kill [-s SIGNAL] SANDBOX CMD_ID\n"
			       "       sandboxctl kill --all [-s SIGNAL] SANDBOX\n"
			       "Send a signal (default TERM) to every process of a background command, or with\n"
			       "--all to every process of the sandbox but its init (a sandbox at its pids limit).\n");
			return 0;
		default:
			return ctl_bad_option("kill", argv);
		}
	}
	if (!all && argc - optind != 2)
		return ctl_usage_error("kill", "give SANDBOX and CMD_ID, or --all and SANDBOX");
	if (all && argc - optind != 1)
		return ctl_usage_error("kill", "with --all, give only SANDBOX");
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", argv[optind]);
	if (all)
		sbx_gen_kv_bool(g, "all", true);
	else
		sbx_gen_kv_str(g, "cmd_id", argv[optind + 1]);
	sbx_gen_kv_str(g, "signal", !strncmp(sig, "SIG", 3) ? sig + 3 : sig);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "process.kill", g, &res);
	return root ? 0 : CTL_EXIT_FAIL;
}

static int session_simple(struct ctl *ctl, const char *method, const char *sandbox, const char *id)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", sandbox);
	if (id)
		sbx_gen_kv_str(g, "session_id", id);
	yajl_gen_map_close(g);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, method, g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
	} else if (!strcmp(method, "session.create")) {
		printf("%s\n", ctl_str(res, "session_id"));
	} else if (!strcmp(method, "session.list")) {
		static const char *const headers[] = { "SESSION", "CWD", "RUNNING", "CREATED" };
		struct ctl_table *t = ctl_table_new(headers, 4);
		yajl_val list = sbx_json_get(res, "sessions");
		for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
			yajl_val s = list->u.array.values[i];
			yajl_val run = sbx_json_get(s, "running");
			char n[24], ago[64];
			snprintf(n, sizeof(n), "%zu", run && YAJL_IS_ARRAY(run) ? run->u.array.len : 0);
			ctl_ago(ctl_str(s, "created_at"), ago, sizeof(ago));
			const char *row[] = { ctl_str(s, "session_id"), ctl_str(s, "cwd"), n, ago };
			ctl_table_add(t, row);
		}
		ctl_table_print(t);
	}
	return 0;
}

static int session_exec(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "detach", no_argument, NULL, 'd' }, { "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },   { NULL, 0, NULL, 0 } };
	bool detach = false;
	double timeout = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+dt:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': detach = true; break;
		case 't': {
			char *end;
			timeout = strtod(optarg, &end);
			if (*end || timeout < 0)
				return ctl_usage_error("session", "invalid --timeout '%s'", optarg);
			break;
		}
		case 'h':
			printf("Usage: sandboxctl session exec [-d] [--timeout S] SANDBOX SESSION [--] COMMAND...\n");
			return 0;
		default:
			return ctl_bad_option("session", argv);
		}
	}
	if (argc - optind < 3)
		return ctl_usage_error("session", "give SANDBOX, SESSION and a command");
	const char *sandbox = argv[optind], *session = argv[optind + 1];
	int first = optind + 2;
	if (!strcmp(argv[first], "--"))
		first++;
	struct sbx_buf cmd = { 0 };
	for (int i = first; i < argc; i++)
		sbx_buf_printf(&cmd, "%s%s", i > first ? " " : "", argv[i]);
	sbx_buf_append(&cmd, "", 0);
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	yajl_gen_map_open(g);
	sbx_gen_kv_str(g, "sandbox", sandbox);
	sbx_gen_kv_str(g, "session_id", session);
	sbx_gen_kv_str(g, "command", cmd.data ? cmd.data : "");
	sbx_gen_kv_str(g, "encoding", "base64");
	if (detach)
		sbx_gen_kv_bool(g, "run_async", true);
	if (timeout > 0)
		sbx_gen_kv_double(g, "timeout_s", timeout);
	yajl_gen_map_close(g);
	sbx_buf_free(&cmd);
	yajl_val res;
	_cleanup_json_ yajl_val root = ctl_call(ctl, "session.exec", g, &res);
	if (!root)
		return CTL_EXIT_FAIL;
	if (ctl->json) {
		ctl_print_json(res);
		return 0;
	}
	if (detach) {
		printf("%s\n", ctl_str(res, "cmd_id"));
		return 0;
	}
	fflush(stdout);
	if (ctl_write_b64(ctl_str(res, "stdout"), 1) || ctl_write_b64(ctl_str(res, "stderr"), 2))
		return CTL_EXIT_FAIL;
	yajl_val to = sbx_json_get(res, "timed_out");
	if (to && YAJL_IS_TRUE(to))
		fprintf(stderr, "sandboxctl: command timed out after %g s and was killed\n", timeout);
	return (int)ctl_int(res, "exit_code", CTL_EXIT_FAIL);
}

int cmd_session(struct ctl *ctl, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	if (!sub || !strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		printf("Usage: sandboxctl session create SANDBOX [SESSION]\n"
		       "       sandboxctl session exec [-d] [--timeout S] SANDBOX SESSION [--] COMMAND...\n"
		       "       sandboxctl session ls SANDBOX\n"
		       "       sandboxctl session rm SANDBOX SESSION\n"
		       "A session keeps the working directory and exported variables of one command for the next.\n");
		return sub ? 0 : CTL_EXIT_FAIL;
	}
	if (!strcmp(sub, "exec"))
		return session_exec(ctl, argc - 1, argv + 1);
	if (!strcmp(sub, "create") && (argc == 3 || argc == 4))
		return session_simple(ctl, "session.create", argv[2], argc == 4 ? argv[3] : NULL);
	if ((!strcmp(sub, "ls") || !strcmp(sub, "list")) && argc == 3)
		return session_simple(ctl, "session.list", argv[2], NULL);
	if ((!strcmp(sub, "rm") || !strcmp(sub, "delete")) && argc == 4)
		return session_simple(ctl, "session.delete", argv[2], argv[3]);
	return ctl_usage_error("session", "unknown or incomplete session command '%s'", sub);
}
