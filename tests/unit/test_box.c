/* The sandbox model through its interface alone, linked with the library
 * and nothing of the daemon: a sandbox built from the minimal image,
 * started, a command run in it (its output and exit status read), stopped
 * and destroyed; and one recovered from its state file after its handle
 * was dropped, as after a restart of its owner. Needs root, cgroup v2,
 * overlayfs (and idmapped mounts for the user namespace case); skipped
 * (77) without them. */
#include "config.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box.h"
#include "caps.h"
#include "cgroup.h"
#include "image.h"
#include "layers.h"
#include "seccomp_filter.h"
#include "snapshot.h"
#include "spawn.h"
#include "syscalls.h"
#include "unit.h"
#include "userns.h"
#include "util.h"

#define USERNS_BASE 3200000u

static char dir[PATH_MAX];
static char image[PATH_MAX + 16];
static struct sbx_cgroup_root cg;
static struct sbx_box_host host;
static struct sbx_bpf filter;
static bool with_userns; /* idmapped mounts work here */

static void setup(void)
{
	sbx_error *err = NULL;
	unit_mkdtemp(dir, "box");
	char p[PATH_MAX + 16];
	snprintf(image, sizeof(image), "%s/image", dir);
	ck_assert_int_eq(mkdir(image, 0755), 0);
	ck_assert_msg(sbx_image_unpack_tar(UNIT_BUILDDIR "/images/minimal.tar.gz", -1, image, &err) == 0, "unpack: %s",
		      err ? err->msg : "?");
	snprintf(p, sizeof(p), "%s/state", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	int sfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof(p), "%s/run", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	int rfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(sfd, 0);
	ck_assert_int_ge(rfd, 0);
	/* A base group of the test's own, at the top, removed at the end. */
	char base[64];
	snprintf(base, sizeof(base), "sbx-unit-box-%d", (int)getpid());
	ck_assert_msg(sbx_cgroup_root_init(&cg, base, base, &err) == 0, "cgroup: %s", err ? err->msg : "?");
	ck_assert_msg(sbx_seccomp_compile_default(&filter, &err) == 0, "seccomp: %s", err ? err->msg : "?");
	int exe = sbx_init_exe_load(UNIT_BUILDDIR "/src/sandbox-init", &err);
	ck_assert_msg(exe >= 0, "init: %s", err ? err->msg : "?");
	char *state_dir = NULL, *run_dir = NULL;
	ck_assert_int_ge(asprintf(&state_dir, "%s/state", dir), 0);
	ck_assert_int_ge(asprintf(&run_dir, "%s/run", dir), 0);
	host = (struct sbx_box_host){
		.cg = &cg,
		.state_fd = sfd,
		.state_dir = state_dir,
		.run_fd = rfd,
		.run_dir = run_dir,
		.init_exe_fd = exe,
	};
}

/* In the runner's process, after every test: whatever a failed test left
 * running is killed, and every group removed. */
static void teardown(void)
{
	sbx_error *err = NULL;
	if (sbx_cgroup_kill_wait(&cg, cg.base, 5000, &err) < 0)
		fprintf(stderr, "test_box: %s\n", err->msg);
	sbx_error_free(err);
	int dfd = dup(cg.base_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", cg.base, de->d_name);
		sbx_cgroup_remove(&cg, path, NULL);
	}
	if (d)
		closedir(d);
	sbx_cgroup_root_cleanup(&cg);
	sbx_cgroup_root_fini(&cg);
	sbx_bpf_free(&filter);
	close(host.state_fd);
	close(host.run_fd);
	close(host.init_exe_fd);
	free((char *)host.state_dir);
	free((char *)host.run_dir);
	unit_rm_rf(dir);
}

static struct sbx_box *build(const char *id)
{
	const char *layers[] = { image, NULL };
	const char *env[] = { "GREETING=hello from the box", NULL };
	struct sbx_box_spec spec = {
		.id = id,
		.layers = layers,
		.hostname = "boxtest",
		.workdir = "/workspace",
		.user = "root",
		.env = env,
		.limits = { .pids = 64, .memory_bytes = 64 << 20 },
		.userns_base = with_userns ? USERNS_BASE : 0,
		.caps = sbx_caps_default(),
	};
	struct sbx_box *box = NULL;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_box_build(&host, &spec, &box, &err) == 0, "build: %s", err ? err->msg : "?");
	box->seccomp = &filter;
	return box;
}

/* Run a shell command in the box; its output (stdout and stderr) and exit
 * status. */
static int run(struct sbx_box *box, const char *script, char *out, size_t size)
{
	sbx_error *err = NULL;
	char group[600];
	ck_assert_msg(sbx_box_group(box, NULL, group, sizeof(group), &err) == 0, "group: %s", err ? err->msg : "?");
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)script, NULL };
	char **envp = sbx_box_env(box, NULL);
	char *cwd = sbx_box_cwd(box, NULL);
	struct sbx_exec_config ec = {
		.argv = argv,
		.envp = envp,
		.cwd = cwd,
		.user = box->user,
		.stdio = { devnull, p[1], p[1] },
		.extra_fd = -1,
	};
	struct sbx_spawned sp;
	int r = sbx_box_exec(box, group, &ec, &sp, 30000, &err);
	sbx_box_strv_free(envp);
	free(cwd);
	close(devnull);
	close(p[1]);
	ck_assert_msg(r == 0, "exec: %s", err ? err->msg : "?");
	size_t len = 0;
	for (;;) {
		ssize_t n = read(p[0], out + len, size - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(p[0]);
	siginfo_t si = { 0 };
	ck_assert_int_eq(waitid((idtype_t)P_PIDFD, (id_t)sp.pidfd, &si, WEXITED), 0);
	close(sp.pidfd);
	unlinkat(cg.mount_fd, group, AT_REMOVEDIR);
	ck_assert_int_eq(si.si_code, CLD_EXITED);
	return si.si_status;
}

static bool cgroup_exists(const char *path)
{
	struct stat st;
	return fstatat(cg.mount_fd, path, &st, 0) == 0;
}

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

START_TEST(build_start_exec_stop_destroy)
{
	sbx_error *err = NULL;
	struct sbx_box *box = build("0123456789ab");
	ck_assert(unit_exists(host.state_fd, "sandboxes/0123456789ab/upper"));
	ck_assert(unit_exists(host.state_fd, "sandboxes/0123456789ab/box"));
	ck_assert(!box->running);

	ck_assert_msg(sbx_box_start(box, &err) == 0, "start: %s", err ? err->msg : "?");
	ck_assert(box->running);
	ck_assert_int_gt(box->init_pid, 0);
	ck_assert_int_ge(box->init_pidfd, 0);
	ck_assert(cgroup_exists(box->cgroup));

	char out[4096];
	int status = run(box, "echo \"$GREETING on $(hostname) in $PWD as $(id -u)\"; echo oops >&2; "
			      "echo kept > /workspace/f; exit 3",
			 out, sizeof(out));
	ck_assert_int_eq(status, 3);
	ck_assert_str_eq(out, "hello from the box on boxtest in /workspace as 0\noops\n");
	/* The write went to the box's own writable layer, not the image. */
	ck_assert(unit_exists(host.state_fd, "sandboxes/0123456789ab/upper/workspace/f"));
	char img_f[PATH_MAX + 32];
	snprintf(img_f, sizeof(img_f), "%s/workspace/f", image);
	ck_assert(access(img_f, F_OK) < 0);

	pid_t init = box->init_pid;
	char cgpath[512];
	snprintf(cgpath, sizeof(cgpath), "%s", box->cgroup);
	ck_assert_msg(sbx_box_stop(box, 5000, &err) == 0, "stop: %s", err ? err->msg : "?");
	ck_assert(!box->running);
	ck_assert(!alive(init));
	ck_assert(!cgroup_exists(cgpath));
	ck_assert_int_eq(box->init_pidfd, -1);

	/* Stopped, it starts again with its files. */
	ck_assert_msg(sbx_box_start(box, &err) == 0, "restart: %s", err ? err->msg : "?");
	ck_assert_int_eq(run(box, "cat /workspace/f", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "kept\n");
	ck_assert_int_eq(sbx_box_stop(box, 0, &err), 0);

	ck_assert_msg(sbx_box_destroy(box, NULL, &err) == 0, "destroy: %s", err ? err->msg : "?");
	ck_assert(!unit_exists(host.state_fd, "sandboxes/0123456789ab"));
	ck_assert(!unit_exists(host.run_fd, "sandboxes/0123456789ab"));
	sbx_box_free(box);
}
END_TEST

START_TEST(recover_after_handle_dropped)
{
	sbx_error *err = NULL;
	struct sbx_box *box = build("00000000beef");
	ck_assert_msg(sbx_box_start(box, &err) == 0, "start: %s", err ? err->msg : "?");
	char out[4096];
	ck_assert_int_eq(run(box, "echo before > /tmp/mark; sleep 1000 >/dev/null 2>&1 &", out, sizeof(out)), 0);
	pid_t init = box->init_pid;
	/* The owner goes away: the handle is dropped, the sandbox runs on. */
	sbx_box_free(box);
	ck_assert(alive(init));

	struct sbx_box *again = NULL;
	ck_assert_msg(sbx_box_load(&host, "00000000beef", &again, &err) == 0, "load: %s", err ? err->msg : "?");
	ck_assert(again->running);
	ck_assert_int_eq(again->init_pid, init);
	ck_assert_str_eq(again->hostname, "boxtest");
	ck_assert_str_eq(again->layers[0], image);
	ck_assert_ptr_null(again->layers[1]);
	ck_assert_int_eq(again->limits.pids, 64);
	ck_assert_int_eq(again->init_pidfd, -1);
	ck_assert_int_eq(sbx_box_recover(again, true), 1);
	ck_assert_int_ge(again->init_pidfd, 0);
	again->seccomp = &filter;
	/* The same sandbox: its namespaces, its files, its background process. */
	ck_assert_int_eq(run(again, "cat /tmp/mark; grep -qx sleep /proc/[0-9]*/comm && echo sleeping; echo $GREETING", out,
			     sizeof(out)),
			 0);
	ck_assert_str_eq(out, "before\nsleeping\nhello from the box\n");
	ck_assert_int_eq(sbx_box_stop(again, 2000, &err), 0);
	ck_assert(!alive(init));
	sbx_box_free(again);

	/* Stopped on disk too: a later recovery finds nothing to adopt. */
	ck_assert_int_eq(sbx_box_load(&host, "00000000beef", &again, &err), 0);
	ck_assert(!again->running);
	ck_assert_int_eq(sbx_box_recover(again, true), 0);
	ck_assert_int_eq(sbx_box_destroy(again, NULL, &err), 0);
	sbx_box_free(again);
	ck_assert(!unit_exists(host.state_fd, "sandboxes/00000000beef"));
}
END_TEST

START_TEST(recover_after_init_died)
{
	sbx_error *err = NULL;
	struct sbx_box *box = build("0000000dead0");
	ck_assert_msg(sbx_box_start(box, &err) == 0, "start: %s", err ? err->msg : "?");
	char cgpath[512];
	snprintf(cgpath, sizeof(cgpath), "%s", box->cgroup);
	pid_t init = box->init_pid;
	int pidfd = sbx_box_abandon_init(box);
	sbx_box_free(box);
	/* Killed while nobody watched (and reaped: a zombie is gone too). */
	ck_assert_int_eq(sbx_pidfd_send_signal(pidfd, SIGKILL, NULL, 0), 0);
	ck_assert_int_eq(waitid((idtype_t)P_PIDFD, (id_t)pidfd, NULL, WEXITED), 0);
	close(pidfd);
	ck_assert(!alive(init));

	ck_assert_int_eq(sbx_box_load(&host, "0000000dead0", &box, &err), 0);
	ck_assert(box->running);
	ck_assert_int_eq(sbx_box_recover(box, true), 0);
	ck_assert(!box->running);
	ck_assert(!cgroup_exists(cgpath));
	sbx_box_free(box);
	/* What recovery found was saved. */
	ck_assert_int_eq(sbx_box_load(&host, "0000000dead0", &box, &err), 0);
	ck_assert(!box->running);
	ck_assert_int_eq(box->init_pid, 0);
	/* It starts again from its state. */
	box->seccomp = &filter;
	ck_assert_msg(sbx_box_start(box, &err) == 0, "start: %s", err ? err->msg : "?");
	char out[256];
	ck_assert_int_eq(run(box, "echo up", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "up\n");
	ck_assert_int_eq(sbx_box_destroy(box, NULL, &err), 0);
	ck_assert(!cgroup_exists(cgpath));
	sbx_box_free(box);
}
END_TEST

START_TEST(state_file_keeps_description)
{
	sbx_error *err = NULL;
	const char *layers[] = { "/a/top", "/b/with\nnewline", "/c\\back", NULL };
	const char *env[] = { "A=1", "MULTI=line one\nline two", NULL };
	struct sbx_box_spec spec = {
		.id = "aaaabbbbcccc",
		.layers = layers,
		.hostname = "h",
		.workdir = "/w",
		.user = "1000:1000",
		.env = env,
		.limits = { .cpus = 0.25, .memory_bytes = 1 << 30, .pids = 100 },
		.userns_base = 65536 * 7,
		.caps = 0x1234,
		.net = { .prefix = 16, .group = 42, .mtu = 1400, .host_name = "svaaaabbbbcccc" },
	};
	inet_pton(AF_INET, "10.7.0.3", &spec.net.ip);
	inet_pton(AF_INET, "10.7.0.1", &spec.net.gateway);
	struct sbx_box *box = NULL;
	ck_assert_msg(sbx_box_build(&host, &spec, &box, &err) == 0, "build: %s", err ? err->msg : "?");
	sbx_box_free(box);
	ck_assert_int_eq(sbx_box_load(&host, "aaaabbbbcccc", &box, &err), 0);
	for (int i = 0; layers[i]; i++)
		ck_assert_str_eq(box->layers[i], layers[i]);
	ck_assert_ptr_null(box->layers[3]);
	ck_assert_str_eq(box->env[1], env[1]);
	ck_assert_str_eq(box->user, "1000:1000");
	ck_assert(box->limits.cpus == 0.25);
	ck_assert_int_eq(box->limits.memory_bytes, 1 << 30);
	ck_assert_int_eq(box->userns_base, 65536 * 7);
	ck_assert_int_eq(box->caps, 0x1234);
	ck_assert_int_eq(box->net.ip.s_addr, spec.net.ip.s_addr);
	ck_assert_int_eq(box->net.gateway.s_addr, spec.net.gateway.s_addr);
	ck_assert_int_eq(box->net.prefix, 16);
	ck_assert_int_eq(box->net.group, 42);
	ck_assert_int_eq(box->net.mtu, 1400);
	ck_assert_str_eq(box->net.host_name, "svaaaabbbbcccc");
	/* The environment of a command: defaults, the box's, then extra. */
	const char *extra[] = { "A=2", "PATH=/x", NULL };
	char **e = sbx_box_env(box, extra);
	ck_assert_str_eq(e[0], "PATH=/x");
	ck_assert_str_eq(e[1], "HOSTNAME=h");
	ck_assert_str_eq(e[2], "A=2");
	ck_assert_str_eq(e[3], env[1]);
	ck_assert_ptr_null(e[4]);
	sbx_box_strv_free(e);
	char *cwd = sbx_box_cwd(box, "sub");
	ck_assert_str_eq(cwd, "/w/sub");
	free(cwd);
	ck_assert_int_eq(sbx_box_destroy(box, NULL, &err), 0);
	sbx_box_free(box);
	/* Unreadable or missing: an error, never a half-made box. */
	ck_assert_int_eq(sbx_box_load(&host, "aaaabbbbcccc", &box, &err), -1);
	ck_assert_int_eq(err->errnum, ENOENT);
	sbx_error_free(err);
}
END_TEST


/* The pids limit the kernel has for a box's group, in the hierarchy that
 * enforces it (v2, or the v1 twin on hybrid hosts); "" when none does. */
static const char *pids_max(const char *group)
{
	static char buf[64];
	char path[PATH_MAX + 600];
	buf[0] = '\0';
	if (!cg.ctrl[SBX_CTRL_PIDS])
		return buf;
	if (cg.mode == SBX_CGROUP_V2)
		snprintf(path, sizeof(path), "%s/%s/pids.max", cg.mount, group);
	else
		snprintf(path, sizeof(path), "%s/%s/pids.max", cg.v1_path[SBX_CTRL_PIDS], strrchr(group, '/') + 1);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static void freeze_all(bool frozen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cgroup.freeze", cg.base);
	int fd = openat(cg.mount_fd, path, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, frozen ? "1" : "0", 1), 1);
	close(fd);
}

START_TEST(start_in_steps)
{
	sbx_error *err = NULL;
	struct sbx_box *box = build("00000005a0e0");
	/* Every box's group is frozen: init's set-up cannot end. */
	freeze_all(true);
	struct sbx_box_starting st;
	ck_assert_msg(sbx_box_start_begin(box, &st, &err) == 0, "begin: %s", err ? err->msg : "?");
	ck_assert(box->starting);
	ck_assert(!box->running);
	ck_assert(cgroup_exists(box->cgroup));
	struct pollfd p = { .fd = st.init.report_fd, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 300), 0);
	ck_assert_int_eq(sbx_box_start_read(&st), 0);
	/* A change of limits while it starts reaches its group. */
	struct sbx_limits lim = box->limits;
	lim.pids = 99;
	ck_assert_int_eq(sbx_box_set_limits(box, &lim, &err), 0);
	if (cg.ctrl[SBX_CTRL_PIDS])
		ck_assert_str_eq(pids_max(box->cgroup), "99");
	freeze_all(false);
	while (!sbx_box_start_read(&st)) {
		p.revents = 0;
		ck_assert_int_eq(poll(&p, 1, 30000), 1);
	}
	ck_assert_msg(sbx_box_start_finish(box, &st, &err) == 0, "finish: %s", err ? err->msg : "?");
	ck_assert(box->running);
	ck_assert(!box->starting);
	char out[256];
	ck_assert_int_eq(run(box, "echo started", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "started\n");
	ck_assert_int_eq(sbx_box_destroy(box, NULL, &err), 0);
	sbx_box_free(box);

	/* Given up while frozen: init and its group go, the box is stopped. */
	box = build("00000005a0e1");
	freeze_all(true);
	ck_assert_int_eq(sbx_box_start_begin(box, &st, &err), 0);
	pid_t init = st.init.pid;
	char cgpath[512];
	snprintf(cgpath, sizeof(cgpath), "%s", box->cgroup);
	sbx_box_start_abort(box, &st);
	freeze_all(false);
	ck_assert(!box->starting);
	ck_assert(!box->running);
	ck_assert(!alive(init));
	ck_assert(!cgroup_exists(cgpath));
	ck_assert_msg(sbx_box_start(box, &err) == 0, "start after abort: %s", err ? err->msg : "?");
	ck_assert_int_eq(sbx_box_destroy(box, NULL, &err), 0);
	sbx_box_free(box);
}
END_TEST

/* A snapshot of a box whose process writes a file in a loop: the process
 * goes on, the captured layer holds a whole file (never a torn write), the
 * box is not left frozen, and the pause is reported. */
START_TEST(snapshot_while_writing)
{
	sbx_error *err = NULL;
	struct sbx_box *box = build("00000005a0f0");
	ck_assert_msg(sbx_box_start(box, &err) == 0, "start: %s", err ? err->msg : "?");
	char out[256];
	ck_assert_int_eq(run(box,
			     "mkdir -p /workspace/d && head -c 3000000 /dev/zero > /workspace/d/big && "
			     "ln /workspace/d/big /workspace/d/big2 && "
			     "(i=0; while :; do i=$((i+1)); echo \"line $i end\" > /workspace/c.tmp; "
			     "mv /workspace/c.tmp /workspace/counter; done) </dev/null >/dev/null 2>&1 & "
			     "sleep 0.3; echo ok",
			     out, sizeof(out)),
			 0);
	char store_path[PATH_MAX + 16];
	snprintf(store_path, sizeof(store_path), "%s/state/layers", dir);
	struct sbx_layer_store *store = NULL;
	ck_assert_msg(sbx_layer_store_open(store_path, &store, &err) == 0, "store: %s", err ? err->msg : "?");
	struct sbx_snapshot_info info;
	ck_assert_msg(sbx_box_snapshot(box, store, "snaptest", &info, &err) == 0, "snapshot: %s",
		      err ? err->msg : "?");
	ck_assert_int_ge(info.pause_ms, 0);
	ck_assert_int_lt(info.pause_ms, 10000);
	ck_assert_int_ge(info.files, 4);
	ck_assert_int_ge(info.bytes, 3000000);
	ck_assert(sbx_layer_exists(store, info.layer.diff_id));
	/* Not frozen any more, and still writing. */
	char events[64];
	snprintf(events, sizeof(events), "%s/cgroup.events", box->cgroup);
	const char *ev = unit_read(cg.mount_fd, events);
	ck_assert_ptr_nonnull(strstr(ev, "frozen 0"));
	char a[64], b[64];
	ck_assert_int_eq(run(box, "cat /workspace/counter", a, sizeof(a)), 0);
	usleep(200000);
	ck_assert_int_eq(run(box, "cat /workspace/counter", b, sizeof(b)), 0);
	ck_assert_str_ne(a, b);
	/* The layer: a whole line, the hard link kept, ids as seen inside. */
	char *tree = sbx_layer_tree_path(store, info.layer.diff_id);
	int tfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(tfd, 0);
	const char *line = unit_read(tfd, "workspace/counter");
	ck_assert_ptr_nonnull(line);
	long n = 0;
	char tail[8] = "";
	ck_assert_int_eq(sscanf(line, "line %ld %7s", &n, tail), 2);
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(tail, "end");
	struct stat st;
	ck_assert_int_eq(fstatat(tfd, "workspace/d/big", &st, 0), 0);
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(st.st_uid, 0);
	close(tfd);
	free(tree);
	/* A paused box stays paused through a snapshot. */
	ck_assert_int_eq(sbx_box_pause(box, true, &err), 0);
	ck_assert_msg(sbx_box_snapshot(box, store, "snaptest2", &info, &err) == 0, "snapshot: %s",
		      err ? err->msg : "?");
	ck_assert_int_eq(info.pause_ms, 0);
	ev = unit_read(cg.mount_fd, events);
	ck_assert_ptr_nonnull(strstr(ev, "frozen 1"));
	ck_assert_int_eq(sbx_box_pause(box, false, &err), 0);
	ck_assert_int_ge(sbx_layer_release_owner(store, "snaptest", &err), 0);
	ck_assert_int_ge(sbx_layer_release_owner(store, "snaptest2", &err), 0);
	sbx_layer_store_close(store);
	ck_assert_int_eq(sbx_box_destroy(box, NULL, &err), 0);
	sbx_box_free(box);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("box");
	TCase *tc = tcase_create("lifecycle");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, build_start_exec_stop_destroy);
	tcase_add_test(tc, recover_after_handle_dropped);
	tcase_add_test(tc, recover_after_init_died);
	tcase_add_test(tc, state_file_keeps_description);
	tcase_add_test(tc, start_in_steps);
	tcase_add_test(tc, snapshot_while_writing);
	suite_add_tcase(s, tc);
	return s;
}

/* In a child: can this host mount an idmapped tree? */
static bool idmap_works(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		char d[PATH_MAX];
		const char *t = getenv("TMPDIR");
		snprintf(d, sizeof(d), "%s/sbx-probe-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(d) || unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(1);
		int ns = sbx_userns_create(USERNS_BASE, SBX_USERNS_SIZE, NULL);
		int tree = open_tree(AT_FDCWD, d, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ns };
		int ok = ns >= 0 && tree >= 0 && mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0;
		rmdir(d);
		_exit(ok ? 0 : 1);
	}
	int status;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: test_box needs root\n");
		return 77;
	}
	if (access(UNIT_BUILDDIR "/images/minimal.tar.gz", R_OK) < 0 || access(UNIT_BUILDDIR "/src/sandbox-init", X_OK) < 0) {
		printf("SKIP: test_box needs the built minimal image and sandbox-init\n");
		return 77;
	}
	struct sbx_cgroup_root probe;
	sbx_error *err = NULL;
	char base[64];
	snprintf(base, sizeof(base), "sbx-unit-box-probe-%d", (int)getpid());
	if (sbx_cgroup_root_init(&probe, base, base, &err) < 0) {
		printf("SKIP: test_box needs a cgroup v2 hierarchy: %s\n", err ? err->msg : "?");
		sbx_error_free(err);
		return 77;
	}
	sbx_cgroup_root_cleanup(&probe);
	sbx_cgroup_root_fini(&probe);
	with_userns = idmap_works();
	if (!with_userns)
		printf("note: no idmapped mounts here; the sandboxes run without a user namespace\n");
	return unit_run(suite());
}
