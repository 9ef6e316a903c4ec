/* sandboxd: command line, start-up, the signal plumbing and the loop.
 * Start-up order matters: lock the state dir, recover sandboxes, and only
 * then listen, so no client ever sees a half-recovered daemon. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "command.h"
#include "daemon.h"
#include "disk.h"
#include "layers.h"
#include "registry/images.h"
#include "trash.h"
#include "loopdevs.h"
#include "net.h"
#include "lifecycle.h"
#include "registry/sandbox.h"
#include "spawn.h"
#include "systemd.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sandboxd [OPTION]...\n"
		"Serve the sandboxd control protocol and run sandboxes.\n\n"
		"  -c, --config PATH          configuration file (default %s)\n"
		"  -s, --socket PATH          control socket (default %s)\n"
		"      --state-dir DIR        persistent state (default %s/lib/sandboxd)\n"
		"      --run-dir DIR          runtime files (default /run/sandboxd)\n"
		"      --init-path PATH       sandbox-init binary (default %s/sandbox-init)\n"
		"      --default-image-path P tarball imported as the default image when missing\n"
		"      --max-message BYTES    largest protocol message (default 16 MiB)\n"
		"  -f, --foreground           stay in the foreground and log to stderr\n"
		"  -l, --log-level LEVEL      error, warn, info or debug (default info)\n"
		"  -V, --version              print the version and exit\n"
		"  -h, --help                 print this help and exit\n\n"
		"See sandboxd(8), sandboxd.conf(5) and sandboxd-protocol(7).\n",
		SBX_DEFAULT_CONFIG, SBX_DEFAULT_SOCKET, LOCALSTATEDIR, PKGLIBEXECDIR);
}

/* Paths given relative on the command line are made absolute now: workers
 * change directory and overlay options need absolute paths. */
static int make_absolute(char **path, sbx_error **err)
{
	if ((*path)[0] == '/')
		return 0;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return sbx_error_errno(err, errno, "getcwd");
	char *abs = NULL;
	if (asprintf(&abs, "%s/%s", cwd, *path) < 0)
		return sbx_error_errno(err, ENOMEM, "path");
	free(*path);
	*path = abs;
	return 0;
}

#define SEALED_ENV "SANDBOXD_SEALED_FROM"

/* Every process sandboxd starts in a sandbox is a clone of sandboxd until
 * it calls execve, and /proc/self/exe of a clone is sandboxd's binary: a
 * script starting "#!/proc/self/exe" would run it inside the sandbox with
 * a handle on it (CVE-2019-5736). So the daemon runs from a sealed,
 * in-memory copy of itself, which nothing can write. */
static void run_from_sealed_copy(char **argv)
{
	if (getenv(SEALED_ENV))
		return;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	sbx_error *err = NULL;
	int fd = sbx_sealed_copy("/proc/self/exe", "sandboxd", &err);
	if (fd < 0) {
		fprintf(stderr, "sandboxd: warning: cannot run from a sealed copy: %s\n", err->msg);
		sbx_error_free(err);
		return;
	}
	setenv(SEALED_ENV, exe, 1);
	extern char **environ;
	syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
	fprintf(stderr, "sandboxd: warning: cannot run from a sealed copy: %s\n", strerror(errno));
	unsetenv(SEALED_ENV);
	close(fd);
}

/* Running from a build tree: find sandbox-init and the image beside us. */
static void default_beside_exe(char **path, const char *relative)
{
	if (access(*path, R_OK) == 0)
		return;
	char exe[PATH_MAX];
	const char *from = getenv(SEALED_ENV);
	if (from) {
		snprintf(exe, sizeof(exe), "%s", from);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return;
		exe[n] = '\0';
	}
	char *candidate = NULL;
	if (asprintf(&candidate, "%s/%s", dirname(exe), relative) < 0)
		return;
	if (access(candidate, R_OK) == 0) {
		free(*path);
		*path = candidate;
	} else {
		free(candidate);
	}
}

static int open_dir(const char *path, mode_t mode, int *fd, sbx_error **err)
{
	if (sbx_mkdir_p(path, mode, err) < 0)
		return -1;
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return sbx_error_errno(err, errno, "open '%s'", path);
	return 0;
}

static void tick(struct sbx_watch *t, void *data)
{
	struct sbx_daemon *d = data;
	sbx_sandboxes_tick(d);
	if (!sbx_loop_timer(d->loop, 1000, tick, d))
		sbx_warn("cannot re-arm the policy timer");
}

/* A default limit the host cannot enforce would make every create fail;
 * say so once, loudly, and run those sandboxes without it. */
static void adapt_defaults(struct sbx_daemon *d)
{
	struct {
		bool set;
		enum sbx_ctrl c;
		const char *key;
	} defs[] = {
		{ d->cfg.default_cpus > 0, SBX_CTRL_CPU, "default_cpus" },
		{ d->cfg.default_memory_mb > 0, SBX_CTRL_MEMORY, "default_memory_mb" },
		{ d->cfg.default_pids > 0, SBX_CTRL_PIDS, "default_pids" },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(defs); i++) {
		if (!defs[i].set || d->cg.ctrl[defs[i].c])
			continue;
		sbx_warn("the %s cgroup controller is not available; %s is ignored and sandboxes get no %s limit unless "
			 "they ask (and then they get an error)",
			 sbx_ctrl_name(defs[i].c), defs[i].key, sbx_ctrl_name(defs[i].c));
		if (defs[i].c == SBX_CTRL_CPU)
			d->cfg.default_cpus = 0;
		else if (defs[i].c == SBX_CTRL_MEMORY)
			d->cfg.default_memory_mb = 0;
		else
			d->cfg.default_pids = 0;
	}
	bool project = sbx_prjquota_supported(d->state_fd);
	if (!strcmp(d->cfg.disk_quota, "project") && !project)
		sbx_warn("disk_quota is 'project' but %s does not enforce project quotas (mount it with prjquota); "
			 "using disk images", d->cfg.state_dir);
	d->prjquota = project && strcmp(d->cfg.disk_quota, "loop") != 0;
	sbx_info("disk limits by %s", d->prjquota ? "project quota" : "loop-mounted ext4 images");
	if (d->cfg.default_disk_mb > 0 && !d->prjquota && !sbx_disk_supported()) {
		sbx_warn("disk limits need /dev/loop-control and mkfs.ext4: default_disk_mb is ignored");
		d->cfg.default_disk_mb = 0;
	}
}

struct sigctx {
	struct sbx_daemon *d;
	int fd;
};

static void sigfd_event(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sigctx *sc = data;
	struct signalfd_siginfo si;
	while (read(sc->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			sbx_info("SIGHUP: nothing to reload; configuration changes need a restart");
			continue;
		}
		sbx_info("received signal %s; shutting down (sandboxes keep running)", sbx_signal_name((int)si.ssi_signo));
		sc->d->shutting_down = true;
		sbx_loop_quit(sc->d->loop);
	}
}

/* Under socket activation the service manager's socket is the one served,
 * whatever the configuration says: its path is what logs, the network
 * lock and system.info name. */
static int take_activated_socket(struct sbx_daemon *d, sbx_error **err)
{
	int r = sbx_systemd_listen_fd(&d->listen_fd, err);
	if (r <= 0)
		return r;
	d->socket_activated = true;
	struct sockaddr_un addr;
	socklen_t len = sizeof(addr);
	memset(&addr, 0, sizeof(addr));
	if (getsockname(d->listen_fd, (struct sockaddr *)&addr, &len) < 0)
		return sbx_error_errno(err, errno, "name of the socket passed by the service manager");
	size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
	if (n == 0 || addr.sun_path[0] == '\0')
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
				     "the socket passed by the service manager has no path (ListenStream= a path)");
	_cleanup_free_ char *path = strndup(addr.sun_path, n);
	if (!path)
		return sbx_error_errno(err, ENOMEM, "socket path");
	if (strcmp(path, d->cfg.socket_path) != 0) {
		free(d->cfg.socket_path);
		d->cfg.socket_path = sbx_take_ptr(&path);
	}
	return 1;
}

int main(int argc, char **argv)
{
	static struct sbx_daemon daemon_state;
	struct sbx_daemon *d = &daemon_state;
	run_from_sealed_copy(argv);
	d->listen_fd = d->state_fd = d->run_fd = d->lock_fd = d->init_exe_fd = -1;
	d->monitor_exe_fd = d->inotify_fd = d->spare_fd = -1;
	sbx_error *err = NULL;
	if (sbx_config_defaults(&d->cfg) < 0) {
		fprintf(stderr, "sandboxd: out of memory\n");
		return 1;
	}

	enum { OPT_STATE = 256, OPT_RUN, OPT_INIT, OPT_IMAGE, OPT_MAXMSG };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },  { "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, OPT_STATE }, { "run-dir", required_argument, NULL, OPT_RUN },
		{ "init-path", required_argument, NULL, OPT_INIT },
		{ "default-image-path", required_argument, NULL, OPT_IMAGE },
		{ "max-message", required_argument, NULL, OPT_MAXMSG }, { "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' }, { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },	     { NULL, 0, NULL, 0 },
	};
	/* First pass: only --config, so that the file is read before flags. */
	bool config_given = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:s:fl:Vh", opts, NULL)) != -1) {
		if (c == 'c') {
			free(d->cfg.config_path);
			d->cfg.config_path = strdup(optarg);
			config_given = true;
		}
	}
	if (sbx_config_load(&d->cfg, d->cfg.config_path, config_given, &err) < 0) {
		fprintf(stderr, "sandboxd: %s\n", err->msg);
		return 1;
	}
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "c:s:fl:Vh", opts, NULL)) != -1) {
		static const char *const keys[] = { [OPT_STATE - 256] = "state_dir", [OPT_RUN - 256] = "run_dir",
						    [OPT_INIT - 256] = "init_path", [OPT_IMAGE - 256] = "default_image_path",
						    [OPT_MAXMSG - 256] = "max_message" };
		const char *key = NULL;
		switch (c) {
		case 'c':
			break;
		case 's':
			key = "socket";
			break;
		case 'f':
			d->cfg.foreground = true;
			break;
		case 'l':
			key = "log_level";
			break;
		case 'V':
			printf("sandboxd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_STATE:
		case OPT_RUN:
		case OPT_INIT:
		case OPT_IMAGE:
		case OPT_MAXMSG:
			key = keys[c - 256];
			break;
		default:
			usage(stderr);
			return 2;
		}
		if (key && sbx_config_set(&d->cfg, key, optarg, &err) < 0) {
			fprintf(stderr, "sandboxd: %s\n", err->msg);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sandboxd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "sandboxd: must run as root (it creates namespaces, mounts and cgroups)\n");
		return 1;
	}
	default_beside_exe(&d->cfg.init_path, "sandbox-init");
	default_beside_exe(&d->cfg.default_image_path, "../images/minimal.tar.gz");
	/* Not for the commands it starts. */
	unsetenv(SEALED_ENV);
	if (make_absolute(&d->cfg.state_dir, &err) < 0 || make_absolute(&d->cfg.run_dir, &err) < 0 ||
	    make_absolute(&d->cfg.socket_path, &err) < 0 || make_absolute(&d->cfg.default_image_path, &err) < 0 ||
	    make_absolute(&d->cfg.init_path, &err) < 0) {
		fprintf(stderr, "sandboxd: %s\n", err->msg);
		return 1;
	}
	sbx_systemd_notify_init();
	if (take_activated_socket(d, &err) < 0) {
		fprintf(stderr, "sandboxd: %s\n", err->msg);
		return 1;
	}

	/* Daemonize before anything holds fds; the parent exits when we serve. */
	int ready[2] = { -1, -1 };
	if (!d->cfg.foreground) {
		if (pipe2(ready, O_CLOEXEC) < 0) {
			perror("sandboxd: pipe");
			return 1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("sandboxd: fork");
			return 1;
		}
		if (pid > 0) {
			close(ready[1]);
			char buf[512];
			ssize_t n = sbx_read_all(ready[0], buf, sizeof(buf) - 1);
			if (n > 0 && buf[0] == 'R')
				return 0;
			buf[n > 0 ? n : 0] = '\0';
			fprintf(stderr, "sandboxd: %s\n", n > 0 ? buf : "failed to start (see the system log)");
			return 1;
		}
		close(ready[0]);
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
	}
	sbx_log_init("sandboxd", d->cfg.log_level, !d->cfg.foreground);
	/* Every sandbox holds a descriptor here: systemd's default soft limit
	 * of 1024 would stop the daemon at about a thousand. */
	sbx_fdbudget_init(&d->fds, d->cfg.max_sandboxes);
	umask(022);
	if (chdir("/") < 0)
		sbx_warn("chdir /: %m");
	signal(SIGPIPE, SIG_IGN);
	d->started_ns = sbx_now_ns();

	struct sigctx sc = { .d = d, .fd = -1 };
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	int rc = 1;
	if (open_dir(d->cfg.state_dir, 0711, &d->state_fd, &err) < 0 || open_dir(d->cfg.run_dir, 0711, &d->run_fd, &err) < 0)
		goto out;
	d->lock_fd = openat(d->state_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		sbx_error_errno(&err, errno, "lock state dir '%s'", d->cfg.state_dir);
		if (errno == EWOULDBLOCK)
			sbx_error_set(&err, SBX_ERR_EXISTS, "another sandboxd is already running with state dir '%s'",
				      d->cfg.state_dir);
		goto out;
	}
	d->loop = sbx_loop_new();
	sc.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (!d->loop || sc.fd < 0 || !sbx_loop_watch(d->loop, sc.fd, EPOLLIN, sigfd_event, &sc)) {
		sbx_error_errno(&err, errno, "event loop");
		goto out;
	}
	/* Daemons with different state dirs (tests, a second instance) get
	 * cgroup bases of their own. */
	char cgname[32] = "sandboxd";
	if (strcmp(d->cfg.state_dir, LOCALSTATEDIR "/lib/sandboxd") != 0) {
		uint32_t h = 2166136261u;
		for (const char *p = d->cfg.state_dir; *p; p++)
			h = (h ^ (unsigned char)*p) * 16777619u;
		snprintf(cgname, sizeof(cgname), "sandboxd-%08x", h);
	}
	if (sbx_cgroup_root_init(&d->cg, d->cfg.cgroup_parent, cgname, &err) < 0)
		goto out;
	d->init_exe_fd = sbx_init_exe_load(d->cfg.init_path, &err);
	if (d->init_exe_fd < 0)
		goto out;
	{
		/* sandbox-monitor is installed beside sandbox-init. */
		_cleanup_free_ char *dir = strdup(d->cfg.init_path), *mon = NULL;
		if (!dir || asprintf(&mon, "%s/sandbox-monitor", dirname(dir)) < 0) {
			sbx_error_errno(&err, ENOMEM, "monitor path");
			goto out;
		}
		d->monitor_exe_fd = sbx_sealed_copy(mon, "sandbox-monitor", &err);
		if (d->monitor_exe_fd < 0 || sbx_commands_init(d, &err) < 0)
			goto out;
	}
	if (sbx_seccomp_compile_default(&d->default_filter, &err) < 0)
		goto out;
	adapt_defaults(d);
	sbx_trash_empty(d);
	if (sbx_images_open_layers(d, &err) < 0 || sbx_images_load(d, &err) < 0 ||
	    sbx_images_ensure_default(d, &err) < 0 || sbx_net_init(d, &err) < 0 || sbx_sandboxes_recover(d, &err) < 0 ||
	    sbx_loopdevs_init(d, &err) < 0)
		goto out;
	sbx_images_release_orphans(d);
	sbx_net_recover(d);
	if (sbx_server_listen(d, &err) < 0)
		goto out;
	sbx_images_sweep_removed(d);

	sbx_info("sandboxd %s serving on %s%s (state %s, cgroup %s mode, base %s/%s)", PACKAGE_VERSION,
		 d->cfg.socket_path, d->socket_activated ? " (passed by the service manager)" : "", d->cfg.state_dir,
		 sbx_cgroup_mode_name(d->cg.mode), d->cg.mount, d->cg.base);
	tick(NULL, d);
	{
		/* Type=notify: ready once recovered and serving, not at fork. */
		char state[256];
		snprintf(state, sizeof(state), "READY=1\nSTATUS=serving on %s\nMAINPID=%d", d->cfg.socket_path,
			 (int)getpid());
		sbx_systemd_notify(state);
	}
	if (ready[1] >= 0) {
		sbx_write_all(ready[1], "R", 1);
		sbx_closep(&ready[1]);
	}
	rc = sbx_loop_run(d->loop) < 0 ? 1 : 0;
	sbx_systemd_notify("STOPPING=1\nSTATUS=shutting down; sandboxes keep running");
	sbx_events_close(d);
	sbx_server_close(d);
	sbx_net_shutdown(d);
	sbx_commands_fini(d);
	sbx_loopdevs_fini(d);
	sbx_cgroup_root_cleanup(&d->cg);
out:
	if (err) {
		sbx_error_log("%s", err->msg);
		if (ready[1] >= 0)
			sbx_write_all(ready[1], err->msg, strlen(err->msg));
		sbx_error_free(err);
	}
	sbx_closep(&ready[1]);
	sbx_loopdevs_fini(d);
	sbx_net_shutdown(d);
	sbx_cgroup_root_fini(&d->cg);
	sbx_layer_store_close(d->layers);
	sbx_config_free(&d->cfg);
	return rc;
}
