/* clone3-based creation of sandboxes and of processes inside them. Child
 * code between clone and exec must only use what is safe after fork of a
 * single-threaded process; it never returns to the caller's code. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "hostlimit.h"
#include "inroot.h"
#include "passwd.h"
#include "spawn.h"
#include "syscalls.h"
#include "util.h"

/* In a child: write an error line for the parent and exit. */
__attribute__((noreturn)) static void child_fail(int report_fd, sbx_error *err)
{
	char line[1024];
	int n = snprintf(line, sizeof(line) - 1, "E%d %d %s", err ? err->code : SBX_ERR_INTERNAL,
			 err ? err->errnum : 0, err && err->msg ? err->msg : "unknown error");
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	sbx_write_all(report_fd, line, (size_t)n);
	_exit(126);
}

/* Mark every fd above stdio close-on-exec; without close_range (before
 * 5.11) walk /proc/self/fd. Nothing of sandboxd may reach sandbox code. */
static int cloexec_all(sbx_error **err)
{
	if (sbx_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sbx_error_errno(err, errno, "list open fds");
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return sbx_error_errno(err, errno, "list open fds");
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (fd > 2 && fd != dfd && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF) {
			int e = errno;
			closedir(d);
			return sbx_error_errno(err, e, "mark fd %d close-on-exec", fd);
		}
	}
	closedir(d);
	return 0;
}

/* Hybrid hosts: enter the sandbox's v1 groups before any of its code runs
 * (v1 has no CLONE_INTO_CGROUP). */
static int join_v1(const int fds[SBX_CTRL_COUNT], sbx_error **err)
{
	for (int c = 0; c < SBX_CTRL_COUNT; c++)
		if (fds[c] >= 0 && write(fds[c], "0", 1) != 1)
			return sbx_error_errno(err, errno, "join v1 %s cgroup", sbx_ctrl_name(c));
	return 0;
}

/* The last steps before sandbox code runs, for init and every command:
 * limits, no_new_privs, then the seccomp filter (after which setns, mount
 * and the like are refused anyway). */
static int lock_down(uint64_t caps, bool root, const struct sbx_bpf *filter, sbx_error **err)
{
	if (sbx_caps_apply(caps, root, err) < 0)
		return -1;
	struct rlimit core = { 0, 0 };
	struct rlimit nofile = { 65536, 65536 };
	struct rlimit cur;
	if (getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_max < nofile.rlim_max)
		nofile.rlim_cur = nofile.rlim_max = cur.rlim_max;
	if (setrlimit(RLIMIT_CORE, &core) < 0 || setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		return sbx_error_errno(err, errno, "set resource limits");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sbx_error_errno(err, errno, "set no_new_privs");
	return sbx_seccomp_load(filter, err);
}

/* Become root of the sandbox's user namespace (or stay host root without one). */
static int become_root(int userns_fd, sbx_error **err)
{
	if (userns_fd >= 0 && setns(userns_fd, CLONE_NEWUSER) < 0)
		return sbx_error_errno(err, errno, "join user namespace");
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return sbx_error_errno(err, errno, "become the sandbox's root");
	return 0;
}

static void reset_signals(void)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

/* Reports come over a socket so that a descriptor (a terminal's master)
 * can come with them; the first one received is kept in *fd_out. */
static ssize_t recv_report(int fd, char *buf, size_t size, int *fd_out)
{
	int got[1];
	size_t n_got = 0;
	ssize_t n = sbx_recv_with_fds(fd, buf, size, 0, got, 1, &n_got, NULL);
	if (n < 0 && errno == ENOTSOCK)
		return read(fd, buf, size); /* the init's report is a pipe */
	if (n_got && fd_out && *fd_out < 0)
		*fd_out = got[0];
	else if (n_got)
		close(got[0]);
	return n;
}

/* The line of a report that starts with tag, or NULL. */
static const char *report_line(const char *text, char tag)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (*l == tag)
			return l;
	return NULL;
}

/* Turn a line "E<code> <errno> <msg>" into an error; 0 if there is none. */
static int report_error(const char *text, sbx_error **err)
{
	const char *e = report_line(text, 'E');
	if (!e)
		return 0;
	int code = SBX_ERR_INTERNAL, errnum = 0, off = 0;
	if (sscanf(e, "E%d %d %n", &code, &errnum, &off) < 2 || off == 0)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "%.*s", (int)strcspn(e + 1, "\n"), e + 1);
	sbx_error_set(err, code, "%.*s", (int)strcspn(e + off, "\n"), e + off);
	if (err && *err)
		(*err)->errnum = errnum;
	return -1;
}

uint64_t sbx_proc_starttime(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_free_ char *data = NULL;
	if (sbx_read_file_at(AT_FDCWD, path, 4096, &data, NULL, NULL) < 0)
		return 0;
	/* comm may contain spaces and parens: fields start after the last ')'. */
	char *p = strrchr(data, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

int sbx_init_exe_load(const char *path, sbx_error **err)
{
	return sbx_sealed_copy(path, "sandbox-init", err);
}

int sbx_sealed_copy(const char *path, const char *name, sbx_error **err)
{
	_cleanup_close_ int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return sbx_error_errno(err, errno, "open binary '%s'", path);
	_cleanup_close_ int mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return sbx_error_errno(err, errno, "memfd_create");
	char buf[65536];
	for (;;) {
		ssize_t n = read(src, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sbx_error_errno(err, errno, "read '%s'", path);
		if (n == 0)
			break;
		if (sbx_write_all(mfd, buf, (size_t)n) < 0)
			return sbx_error_errno(err, errno, "copy init binary");
	}
	if (fchmod(mfd, 0555) < 0)
		return sbx_error_errno(err, errno, "chmod init memfd");
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		return sbx_error_errno(err, errno, "seal init memfd");
	return sbx_take_fd(&mfd);
}

__attribute__((noreturn)) static void init_child(const struct sbx_init_config *cfg, int report_fd)
{
	sbx_error *err = NULL;
	reset_signals();
	if (join_v1(cfg->v1_procs, &err) < 0)
		child_fail(report_fd, err);
	/* The cgroup namespace is made here, not at clone, so that it is rooted
	 * at the sandbox's groups in the v1 hierarchies too. */
	if (unshare(CLONE_NEWCGROUP) < 0) {
		sbx_hostlimit_error(&err, errno, CLONE_NEWCGROUP, -1, true, "new cgroup namespace");
		child_fail(report_fd, err);
	}
	if (setsid() < 0) {
		sbx_error_errno(&err, errno, "setsid");
		child_fail(report_fd, err);
	}
	/* With a user namespace, the UTS and IPC namespaces belong to it (its
	 * root may set its own hostname and owns its IPC), and are joined
	 * before the mounts: /dev/mqueue shows the mounter's IPC namespace,
	 * and mounted from the host's it would share the host's queues. */
	if (cfg->rootfs.userns_fd >= 0) {
		if (cfg->ipc_ns_fd <= 0 || cfg->uts_ns_fd <= 0) {
			sbx_error_set(&err, SBX_ERR_INTERNAL, "no IPC and UTS namespaces for the user namespace");
			child_fail(report_fd, err);
		}
		if (setns(cfg->ipc_ns_fd, CLONE_NEWIPC) < 0 || setns(cfg->uts_ns_fd, CLONE_NEWUTS) < 0) {
			sbx_error_errno(&err, errno, "join the sandbox's IPC and UTS namespaces");
			child_fail(report_fd, err);
		}
	}
	if (sbx_rootfs_setup(&cfg->rootfs, &err) < 0)
		child_fail(report_fd, err);
	if (become_root(cfg->rootfs.userns_fd, &err) < 0)
		child_fail(report_fd, err);
	if (sethostname(cfg->rootfs.hostname, strlen(cfg->rootfs.hostname)) < 0) {
		sbx_error_errno(&err, errno, "sethostname");
		child_fail(report_fd, err);
	}
	if (sbx_caps_limit_bounding(cfg->caps, &err) < 0)
		child_fail(report_fd, err);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		sbx_error_errno(&err, errno, "open /dev/null in sandbox");
		child_fail(report_fd, err);
	}
	for (int i = 0; i < 3; i++)
		dup2(devnull, i);
	/* Every fd inherited from sandboxd disappears at exec. */
	if (cloexec_all(&err) < 0 || lock_down(cfg->caps, true, cfg->seccomp, &err) < 0)
		child_fail(report_fd, err);
	char *const argv[] = { (char *)"sandbox-init", (char *)cfg->id, NULL };
	char *const envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	syscall(SYS_execveat, cfg->init_exe_fd, "", argv, envp, AT_EMPTY_PATH);
	sbx_error_errno(&err, errno, "exec sandbox-init");
	child_fail(report_fd, err);
}

int sbx_spawn_init_begin(const struct sbx_init_config *cfg, struct sbx_init_setup *st, sbx_error **err)
{
	memset(st, 0, sizeof(*st));
	st->report_fd = st->pidfd = -1;
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	_cleanup_close_ int rd = pipefd[0];
	_cleanup_close_ int wr = pipefd[1];
	if (sbx_set_nonblock(rd, true) < 0)
		return sbx_error_errno(err, errno, "set up the report pipe");

	int pidfd = -1;
	uint64_t ns = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET;
	if (cfg->rootfs.userns_fd < 0)
		ns |= CLONE_NEWUTS | CLONE_NEWIPC;
	struct clone_args args = {
		.flags = ns | CLONE_PIDFD | CLONE_INTO_CGROUP,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)cfg->cgroup_fd,
	};
	pid_t pid = sbx_clone3(&args);
	if (pid < 0)
		return sbx_hostlimit_error(err, errno, ns, cfg->cgroup_fd, true, "clone3 sandbox init");
	if (pid == 0) {
		close(rd);
		init_child(cfg, wr);
	}
	/* Closed at once: no other child of the caller may hold it, or the
	 * report would never end. */
	sbx_closep(&wr);
	st->report_fd = sbx_take_fd(&rd);
	st->pidfd = pidfd;
	st->pid = pid;
	return 0;
}

int sbx_spawn_init_read(struct sbx_init_setup *st)
{
	while (!st->eof) {
		char scratch[256];
		bool full = st->len >= sizeof(st->text) - 1;
		ssize_t n = full ? read(st->report_fd, scratch, sizeof(scratch))
				 : read(st->report_fd, st->text + st->len, sizeof(st->text) - 1 - st->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			st->eof = true;
			break;
		}
		if (!full) {
			st->len += (size_t)n;
			st->text[st->len] = '\0';
		}
	}
	return 1;
}

int sbx_spawn_init_finish(struct sbx_init_setup *st, struct sbx_spawned *out, sbx_error **err)
{
	sbx_closep(&st->report_fd);
	st->text[st->len] = '\0';
	if (report_error(st->text, err) < 0) {
		waitid((idtype_t)P_PIDFD, (id_t)st->pidfd, NULL, WEXITED);
		sbx_closep(&st->pidfd);
		return -1;
	}
	out->pid = st->pid;
	out->pidfd = sbx_take_fd(&st->pidfd);
	out->tty_fd = -1;
	out->starttime = sbx_proc_starttime(st->pid);
	return 0;
}

void sbx_spawn_init_abort(struct sbx_init_setup *st)
{
	if (st->pidfd >= 0) {
		sbx_pidfd_send_signal(st->pidfd, SIGKILL, NULL, 0);
		waitid((idtype_t)P_PIDFD, (id_t)st->pidfd, NULL, WEXITED);
	}
	sbx_closep(&st->pidfd);
	sbx_closep(&st->report_fd);
}

int sbx_spawn_init(const struct sbx_init_config *cfg, struct sbx_spawned *out, sbx_error **err)
{
	struct sbx_init_setup st;
	if (sbx_spawn_init_begin(cfg, &st, err) < 0)
		return -1;
	int64_t deadline = sbx_monotonic_ms() + SBX_INIT_SETUP_TIMEOUT_MS;
	while (!sbx_spawn_init_read(&st)) {
		int64_t left = deadline - sbx_monotonic_ms();
		if (left <= 0) {
			sbx_spawn_init_abort(&st);
			return sbx_error_set(err, SBX_ERR_TIMEOUT, "sandbox init did not start within %d s",
					     SBX_INIT_SETUP_TIMEOUT_MS / 1000);
		}
		struct pollfd p = { .fd = st.report_fd, .events = POLLIN };
		poll(&p, 1, (int)left);
	}
	return sbx_spawn_init_finish(&st, out, err);
}

/* The command process: inside every namespace of the sandbox already. */
__attribute__((noreturn)) static void exec_child(const struct sbx_exec_config *cfg, int report_fd, int master)
{
	sbx_error *err = NULL;
	reset_signals();
	/* Mount namespace entry put us at the sandbox root: resolve there. */
	_cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct sbx_user u;
	if (rootfd < 0) {
		sbx_error_errno(&err, errno, "open sandbox root");
		child_fail(report_fd, err);
	}
	if (sbx_user_resolve(rootfd, cfg->user, &u, &err) < 0)
		child_fail(report_fd, err);
	_cleanup_close_ int cwdfd = sbx_inroot_open(rootfd, cfg->cwd, O_PATH | O_DIRECTORY, 0);
	if (cwdfd < 0) {
		sbx_error_errno(&err, errno, "working directory '%s'", cfg->cwd);
		child_fail(report_fd, err);
	}
	if (fchdir(cwdfd) < 0) {
		sbx_error_errno(&err, errno, "chdir '%s'", cfg->cwd);
		child_fail(report_fd, err);
	}
	if (sbx_caps_limit_bounding(cfg->caps, &err) < 0)
		child_fail(report_fd, err);
	int stdio[3] = { cfg->stdio[0], cfg->stdio[1], cfg->stdio[2] };
	if (setsid() < 0) {
		sbx_error_errno(&err, errno, "setsid");
		child_fail(report_fd, err);
	}
	if (master >= 0) {
		/* TIOCGPTPEER opens the peer through the master's own devpts
		 * mount: no path in the sandbox is looked up for it. */
		int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) {
			sbx_error_errno(&err, errno, "open the terminal");
			child_fail(report_fd, err);
		}
		if (fchown(slave, u.uid, (gid_t)-1) < 0) {
			/* cosmetic: the terminal stays usable by its owner's root */
		}
		close(master);
		stdio[0] = stdio[1] = stdio[2] = slave;
	}
	if (setgroups(u.ngroups, u.groups) < 0 || setresgid(u.gid, u.gid, u.gid) < 0 ||
	    setresuid(u.uid, u.uid, u.uid) < 0) {
		sbx_error_errno(&err, errno, "switch to user '%s'", cfg->user ? cfg->user : "root");
		child_fail(report_fd, err);
	}
	for (int i = 0; i < 3; i++) {
		if (dup2(stdio[i], i) < 0) {
			sbx_error_errno(&err, errno, "dup2");
			child_fail(report_fd, err);
		}
	}
	if (cfg->extra_fd > 2 && dup2(cfg->extra_fd, SBX_EXEC_EXTRA_FD) < 0) {
		sbx_error_errno(&err, errno, "dup2");
		child_fail(report_fd, err);
	}
	if (cloexec_all(&err) < 0 || lock_down(cfg->caps, u.uid == 0, cfg->seccomp, &err) < 0)
		child_fail(report_fd, err);
	if (cfg->extra_fd > 2)
		fcntl(SBX_EXEC_EXTRA_FD, F_SETFD, 0);
	extern char **environ;
	environ = (char **)cfg->envp;
	if (!getenv("HOME"))
		setenv("HOME", u.home, 1);
	if (!getenv("USER") && u.name[0])
		setenv("USER", u.name, 1);
	execvp(cfg->argv[0], cfg->argv);
	int e = errno;
	dprintf(2, "sandboxd: exec '%s': %s\n", cfg->argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

/* In the exec helper, inside the sandbox's mount and user namespaces: a new
 * terminal from the sandbox's own devpts instance. The device is checked,
 * for /dev/pts is a place the sandbox can write to. */
static int open_pty_master(const struct sbx_exec_config *cfg, sbx_error **err)
{
	_cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return sbx_error_errno(err, errno, "open sandbox root");
	int fd = sbx_inroot_open(rootfd, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NOFOLLOW, 0);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open /dev/pts/ptmx");
	struct stat st;
	int unlock = 0;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2) {
		close(fd);
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "/dev/pts/ptmx in the sandbox is not a terminal multiplexer");
	}
	struct winsize ws = { .ws_row = cfg->rows ? cfg->rows : 24, .ws_col = cfg->cols ? cfg->cols : 80 };
	if (ioctl(fd, TIOCSPTLCK, &unlock) < 0 || ioctl(fd, TIOCSWINSZ, &ws) < 0) {
		int e = errno;
		close(fd);
		return sbx_error_errno(err, e, "set up the terminal");
	}
	return fd;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void sbx_close_all_but(const int *keep, size_t n)
{
	int fds[32];
	size_t m = 0;
	for (size_t i = 0; i < n && m < SBX_ARRAY_SIZE(fds); i++)
		if (keep[i] > 2)
			fds[m++] = keep[i];
	qsort(fds, m, sizeof(int), cmp_int);
	unsigned int from = 3;
	for (size_t i = 0; i < m; i++) {
		if ((unsigned int)fds[i] < from)
			continue; /* the same one twice */
		if ((unsigned int)fds[i] > from)
			sbx_close_range(from, (unsigned int)fds[i] - 1, 0);
		from = (unsigned int)fds[i] + 1;
	}
	sbx_close_range(from, ~0U, 0);
}

/* "P<pid>" with the terminal's master riding along when there is one. */
static void report_pid(int report_fd, pid_t pid, int master)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "P%d\n", (int)pid);
	if (master < 0)
		sbx_write_all(report_fd, line, (size_t)n); /* also a pipe */
	else
		sbx_send_with_fd(report_fd, line, (size_t)n, master, 0);
}

/* The lowest number a held copy takes: above the command's fixed ones
 * (0-2 and SBX_EXEC_EXTRA_FD) and the monitor's (0-8), so that placing
 * those never overwrites a copy still to be placed. */
#define HELD_MIN_FD 16

int sbx_fdhold_add(struct sbx_fdhold *h, int *fd)
{
	if (*fd < 0)
		return 0;
	if (h->n >= (int)SBX_ARRAY_SIZE(h->fds)) {
		errno = EMFILE;
		return -1;
	}
	int c = fcntl(*fd, F_DUPFD_CLOEXEC, HELD_MIN_FD);
	if (c < 0)
		return -1;
	h->fds[h->n++] = c;
	if (c > h->top)
		h->top = c;
	*fd = c;
	return 0;
}

void sbx_fdhold_release(struct sbx_fdhold *h)
{
	for (int i = 0; i < h->n; i++)
		sbx_closep(&h->fds[i]);
	h->n = 0;
}

int sbx_fdhold_unshare(const struct sbx_fdhold *h)
{
	if (sbx_close_range((unsigned int)h->top + 1, ~0U, CLOSE_RANGE_UNSHARE) == 0)
		return 0;
	return unshare(CLONE_FILES);
}

int sbx_spawn_exec_begin(const struct sbx_exec_config *cfg, struct sbx_exec_setup *st, sbx_error **err)
{
	memset(st, 0, sizeof(*st));
	st->report_fd = st->helper_pidfd = st->tty_fd = -1;
	st->tty = cfg->tty;
	if (!cfg->argv || !cfg->argv[0])
		return sbx_error_param(err, "cmd", "empty command");
	int pipefd[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pipefd) < 0)
		return sbx_error_errno(err, errno, "socketpair");
	_cleanup_close_ int rd = pipefd[0];
	_cleanup_close_ int wr0 = pipefd[1];
	int wr = wr0; /* the helper's end: held too */
	if (sbx_set_nonblock(rd, true) < 0 || sbx_fdhold_add(&st->held, &wr) < 0) {
		int e = errno;
		sbx_fdhold_release(&st->held);
		return sbx_error_errno(err, e, "set up the report socket");
	}
	sbx_closep(&wr0);
	/* The helper starts on sandboxd's table (CLONE_FILES) and keeps copies
	 * of the low numbers only, where these copies are (sbx_fdhold). */
	struct sbx_exec_config c = *cfg;
	int *mine[5 + SBX_CTRL_COUNT] = { &c.init_pidfd, &c.stdio[0], &c.stdio[1], &c.stdio[2], &c.extra_fd };
	for (int i = 0; i < SBX_CTRL_COUNT; i++)
		mine[5 + i] = &c.v1_procs[i];
	if (c.extra_fd <= 2)
		c.extra_fd = -1;
	for (size_t i = 0; i < SBX_ARRAY_SIZE(mine); i++) {
		if (sbx_fdhold_add(&st->held, mine[i]) < 0) {
			int e = errno;
			sbx_fdhold_release(&st->held);
			return sbx_error_errno(err, e, "set up the exec helper's descriptors");
		}
	}

	int helper_pidfd = -1;
	struct clone_args args = {
		.flags = CLONE_FILES | CLONE_PIDFD | CLONE_INTO_CGROUP,
		.pidfd = (uint64_t)(uintptr_t)&helper_pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)cfg->cgroup_fd,
	};
	pid_t helper = sbx_clone3(&args);
	if (helper < 0) {
		int e = errno;
		sbx_fdhold_release(&st->held);
		return sbx_error_errno(err, e, "clone3 exec helper");
	}
	if (helper == 0) {
		sbx_error *cerr = NULL;
		/* First a table of its own: nothing is closed or opened on the
		 * shared one. Without CLOSE_RANGE_UNSHARE, a whole copy. */
		if (sbx_fdhold_unshare(&st->held) < 0) {
			sbx_error_errno(&cerr, errno, "unshare the descriptor table");
			child_fail(wr, cerr);
		}
		close(rd);
		/* Not dumpable before entering: nothing inside may ptrace or open
		 * /proc/PID of a process that still holds sandboxd's memory. */
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		if (join_v1(c.v1_procs, &cerr) < 0)
			child_fail(wr, cerr);
		/* Namespaces of the initial user namespace first (that needs host
		 * root), then the sandbox's user namespace and those it owns. */
		int uts_ipc = CLONE_NEWUTS | CLONE_NEWIPC;
		if (setns(c.init_pidfd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP |
						 (c.userns ? 0 : uts_ipc)) < 0) {
			sbx_error_errno(&cerr, errno, "join sandbox namespaces");
			child_fail(wr, cerr);
		}
		if (c.userns && (setns(c.init_pidfd, CLONE_NEWUSER) < 0 || setns(c.init_pidfd, uts_ipc) < 0)) {
			sbx_error_errno(&cerr, errno, "join sandbox user namespace");
			child_fail(wr, cerr);
		}
		int master = -1;
		if (c.tty && (master = open_pty_master(&c, &cerr)) < 0)
			child_fail(wr, cerr);
		int keep[] = { wr, master, c.stdio[0], c.stdio[1], c.stdio[2], c.extra_fd };
		sbx_close_all_but(keep, SBX_ARRAY_SIZE(keep));
		/* CLONE_PARENT: the command becomes sandboxd's child, so sandboxd
		 * reaps it and reads its exit status; this helper just leaves. */
		struct clone_args cargs = { .flags = CLONE_PARENT, .exit_signal = 0 };
		pid_t cmd = sbx_clone3(&cargs);
		if (cmd < 0) {
			sbx_error_errno(&cerr, errno, "clone3 command");
			child_fail(wr, cerr);
		}
		if (cmd == 0)
			exec_child(&c, wr, master);
		report_pid(wr, cmd, master);
		_exit(0);
	}
	st->report_fd = sbx_take_fd(&rd);
	st->helper_pidfd = helper_pidfd;
	return 0;
}

int sbx_spawn_exec_read(struct sbx_exec_setup *st)
{
	while (!st->eof) {
		char scratch[256];
		bool full = st->len >= sizeof(st->text) - 1;
		/* A report never fills the buffer; more is read and dropped. */
		ssize_t n = full ? recv_report(st->report_fd, scratch, sizeof(scratch), &st->tty_fd)
				 : recv_report(st->report_fd, st->text + st->len, sizeof(st->text) - 1 - st->len,
					       &st->tty_fd);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		/* Whatever it said, it said it from a table of its own. */
		sbx_fdhold_release(&st->held);
		if (n <= 0) {
			st->eof = true;
			break;
		}
		if (!full) {
			st->len += (size_t)n;
			st->text[st->len] = '\0';
		}
		/* Known as soon as it is told: whatever happens next, the command
		 * is our unreaped child, to be killed and reaped if need be. */
		const char *p = st->cmd_pid ? NULL : report_line(st->text, 'P');
		if (p && strchr(p, '\n'))
			st->cmd_pid = atoi(p + 1);
	}
	return 1;
}

bool sbx_spawn_exec_helper_gone(struct sbx_exec_setup *st)
{
	if (st->helper_pidfd < 0)
		return true;
	siginfo_t si = { 0 };
	if (waitid((idtype_t)P_PIDFD, (id_t)st->helper_pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0)
		return false;
	sbx_closep(&st->helper_pidfd);
	sbx_fdhold_release(&st->held);
	return true;
}

static void setup_close(struct sbx_exec_setup *st)
{
	sbx_fdhold_release(&st->held);
	sbx_closep(&st->report_fd);
	sbx_closep(&st->helper_pidfd);
	sbx_closep(&st->tty_fd);
}

int sbx_spawn_exec_finish(struct sbx_exec_setup *st, struct sbx_spawned *out, sbx_error **err)
{
	pid_t cmd_pid = st->cmd_pid;
	int master = st->tty_fd;
	st->tty_fd = -1;
	setup_close(st);
	if (report_error(st->text, NULL) < 0 || cmd_pid <= 0)
		sbx_closep(&master);
	if (report_error(st->text, err) < 0) {
		/* It reported its failure and is on its way out. */
		if (cmd_pid > 0)
			waitpid(cmd_pid, NULL, 0);
		return -1;
	}
	if (cmd_pid <= 0)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "the exec helper ended before it started the command");
	/* Safe against pid reuse: it is our unreaped child. */
	int pidfd = sbx_pidfd_open(cmd_pid, 0);
	if (pidfd < 0) {
		int e = errno;
		sbx_closep(&master);
		kill(cmd_pid, SIGKILL);
		waitpid(cmd_pid, NULL, 0);
		return sbx_error_errno(err, e, "pidfd_open");
	}
	if (st->tty && master < 0) {
		close(pidfd);
		kill(cmd_pid, SIGKILL);
		waitpid(cmd_pid, NULL, 0);
		return sbx_error_set(err, SBX_ERR_INTERNAL, "the terminal did not come back from the exec helper");
	}
	out->tty_fd = master;
	out->pid = cmd_pid;
	out->pidfd = pidfd;
	out->starttime = 0;
	return 0;
}

void sbx_spawn_exec_abort(struct sbx_exec_setup *st)
{
	if (st->helper_pidfd >= 0) {
		sbx_pidfd_send_signal(st->helper_pidfd, SIGKILL, NULL, 0);
		waitid((idtype_t)P_PIDFD, (id_t)st->helper_pidfd, NULL, WEXITED);
		sbx_closep(&st->helper_pidfd);
	}
	if (st->report_fd >= 0)
		sbx_spawn_exec_read(st); /* the pid may have come meanwhile */
	if (st->cmd_pid > 0) {
		kill(st->cmd_pid, SIGKILL);
		waitpid(st->cmd_pid, NULL, 0);
		st->cmd_pid = 0;
	}
	setup_close(st);
}
