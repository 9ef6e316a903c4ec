/* Forked workers for slow file work, so the loop keeps serving. A worker
 * only runs its function and exits; it never touches sockets or the loop. */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "syscalls.h"

struct worker {
	struct sbx_daemon *d;
	int pidfd;
	int report_fd;
	struct sbx_watch *w;
	sbx_worker_done done;
	void *ctx;
};

/* The child's side of the report: "<code> <message>" on failure. */
__attribute__((noreturn)) static void worker_child(int report_fd, sbx_worker_fn fn, void *arg)
{
	sbx_error *werr = NULL;
	if (fn(arg, &werr) < 0) {
		dprintf(report_fd, "%d %s", werr ? werr->code : SBX_ERR_INTERNAL,
			werr && werr->msg ? werr->msg : "worker failed");
		_exit(1);
	}
	_exit(0);
}

/* The parent's side: the report, or how the child ended. */
static int worker_result(const char *text, ssize_t n, bool exited_ok, const char *how, int status, sbx_error **err)
{
	if (n > 0) {
		int code = SBX_ERR_INTERNAL, off = 0;
		if (sscanf(text, "%d %n", &code, &off) >= 1 && off > 0)
			return sbx_error_set(err, code, "%s", text + off);
		return sbx_error_set(err, SBX_ERR_INTERNAL, "%s", text);
	}
	if (!exited_ok)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "worker process died (%s %d)", how, status);
	return 0;
}

static void worker_exited(struct sbx_watch *w, uint32_t events, void *data)
{
	struct worker *wk = data;
	sbx_loop_unwatch(w);
	char text[2048];
	ssize_t n = read(wk->report_fd, text, sizeof(text) - 1);
	text[n > 0 ? n : 0] = '\0';
	siginfo_t si = { 0 };
	waitid((idtype_t)P_PIDFD, (id_t)wk->pidfd, &si, WEXITED);
	sbx_error *err = NULL;
	worker_result(text, n, si.si_code == CLD_EXITED && si.si_status == 0,
		      si.si_code == CLD_EXITED ? "exit" : "signal", si.si_status, &err);
	close(wk->pidfd);
	close(wk->report_fd);
	wk->done(wk->d, wk->ctx, err);
	sbx_error_free(err);
	free(wk);
}

int sbx_worker_start(struct sbx_daemon *d, sbx_worker_fn fn, void *arg, sbx_worker_done done, void *ctx,
		     sbx_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	int pidfd = -1;
	struct clone_args args = { .flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd, .exit_signal = SIGCHLD };
	pid_t pid = sbx_clone3(&args);
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return sbx_error_errno(err, e, "fork worker");
	}
	if (pid == 0) {
		/* Hold nothing of the daemon's: not the state lock (a new daemon
		 * must start while we finish), not a client's socket. */
		if (p[1] != 3 && dup2(p[1], 3) < 0)
			_exit(1);
		p[1] = 3;
		sbx_close_range(4, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		worker_child(p[1], fn, arg);
	}
	close(p[1]);
	struct worker *wk = calloc(1, sizeof(*wk));
	if (wk) {
		wk->d = d;
		wk->pidfd = pidfd;
		wk->report_fd = p[0];
		wk->done = done;
		wk->ctx = ctx;
		wk->w = sbx_loop_watch(d->loop, pidfd, EPOLLIN, worker_exited, wk);
	}
	if (!wk || !wk->w) {
		/* Cannot track it: wait for it here rather than leak a zombie. */
		waitid((idtype_t)P_PIDFD, (id_t)pidfd, NULL, WEXITED);
		close(pidfd);
		close(p[0]);
		free(wk);
		return sbx_error_errno(err, ENOMEM, "track worker");
	}
	return 0;
}

int sbx_worker_run_sync(sbx_worker_fn fn, void *arg, sbx_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return sbx_error_errno(err, e, "fork worker");
	}
	if (pid == 0) {
		close(p[0]);
		worker_child(p[1], fn, arg);
	}
	close(p[1]);
	char text[2048];
	ssize_t n = sbx_read_all(p[0], text, sizeof(text) - 1);
	close(p[0]);
	text[n > 0 ? n : 0] = '\0';
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return worker_result(text, n, WIFEXITED(status) && WEXITSTATUS(status) == 0,
			     WIFEXITED(status) ? "exit" : "signal",
			     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), err);
}

/* Workers with a result: the child writes it to a pipe that the loop
 * drains as it comes (a result may be bigger than a pipe holds); its error
 * comes back as "<code> <errno> <param|-> <message>" on a second pipe. */
#define WORKER_OUT_MAX ((size_t)96 << 20)

struct out_worker {
	struct sbx_daemon *d;
	int pidfd;
	int out_fd;
	int report_fd;
	struct sbx_watch *w;
	struct sbx_buf out;
	bool overflow;
	sbx_worker_out_done done;
	sbx_worker_chunk_fn chunk; /* or NULL: the whole result goes to done */
	void *ctx;
};

__attribute__((noreturn)) static void out_worker_child(int out_fd, int report_fd, sbx_worker_out_fn fn, void *arg)
{
	sbx_error *werr = NULL;
	if (fn(arg, out_fd, &werr) < 0) {
		dprintf(report_fd, "%d %d %s %s", werr ? werr->code : SBX_ERR_INTERNAL, werr ? werr->errnum : 0,
			werr && werr->param ? werr->param : "-", werr && werr->msg ? werr->msg : "worker failed");
		_exit(1);
	}
	_exit(0);
}

static void out_worker_finish(struct out_worker *wk)
{
	char text[4096];
	ssize_t n = read(wk->report_fd, text, sizeof(text) - 1);
	text[n > 0 ? n : 0] = '\0';
	siginfo_t si = { 0 };
	while (waitid((idtype_t)P_PIDFD, (id_t)wk->pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	sbx_error *err = NULL;
	if (n > 0) {
		int code = SBX_ERR_INTERNAL, errnum = 0, off = 0;
		char param[64] = "-";
		if (sscanf(text, "%d %d %63s %n", &code, &errnum, param, &off) >= 3 && off > 0) {
			if (strcmp(param, "-"))
				sbx_error_param(&err, param, "%s", text + off);
			else
				sbx_error_set(&err, code, "%s", text + off);
			err->code = code;
			err->errnum = errnum;
		} else {
			sbx_error_set(&err, SBX_ERR_INTERNAL, "%s", text);
		}
	} else if (si.si_code != CLD_EXITED || si.si_status != 0) {
		sbx_error_set(&err, SBX_ERR_INTERNAL, "worker process died (%s %d)",
			      si.si_code == CLD_EXITED ? "exit" : "signal", si.si_status);
	} else if (wk->overflow) {
		sbx_error_set(&err, SBX_ERR_LIMIT, "result larger than %zu bytes", WORKER_OUT_MAX);
	}
	close(wk->pidfd);
	close(wk->report_fd);
	close(wk->out_fd);
	wk->done(wk->d, wk->ctx, err, err ? NULL : &wk->out);
	sbx_error_free(err);
	sbx_buf_free(&wk->out);
	free(wk);
}

static void out_worker_readable(struct sbx_watch *w, uint32_t events, void *data)
{
	struct out_worker *wk = data;
	(void)events;
	for (;;) {
		if (sbx_buf_reserve(&wk->out, 1 << 20) < 0) {
			wk->overflow = true;
			break;
		}
		ssize_t n = read(wk->out_fd, wk->out.data + wk->out.len, wk->out.cap - wk->out.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break; /* EOF: the child is exiting */
		wk->out.len += (size_t)n;
		wk->out.data[wk->out.len] = '\0';
		if (wk->chunk)
			wk->chunk(wk->d, wk->ctx, &wk->out);
		if (wk->out.len > WORKER_OUT_MAX) {
			wk->overflow = true;
			sbx_pidfd_send_signal(wk->pidfd, SIGKILL, NULL, 0);
			break;
		}
	}
	sbx_loop_unwatch(w);
	wk->w = NULL;
	out_worker_finish(wk);
}

static int start_out(struct sbx_daemon *d, const int *keep_fds, size_t nkeep, sbx_worker_out_fn fn, void *arg,
		     sbx_worker_chunk_fn chunk, sbx_worker_out_done done, void *ctx, sbx_error **err)
{
	int op[2], rp[2];
	if (pipe2(op, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "pipe");
	if (pipe2(rp, O_CLOEXEC) < 0) {
		int e = errno;
		close(op[0]);
		close(op[1]);
		return sbx_error_errno(err, e, "pipe");
	}
	int pidfd = -1;
	struct clone_args args = { .flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd, .exit_signal = SIGCHLD };
	pid_t pid = sbx_clone3(&args);
	if (pid < 0) {
		int e = errno;
		close(op[0]);
		close(op[1]);
		close(rp[0]);
		close(rp[1]);
		return sbx_error_errno(err, e, "fork worker");
	}
	if (pid == 0) {
		/* Keep only the two pipes and the descriptors the job needs. */
		unsigned int keep[72];
		size_t nk = 0;
		keep[nk++] = (unsigned int)op[1];
		keep[nk++] = (unsigned int)rp[1];
		for (size_t i = 0; i < nkeep && nk < SBX_ARRAY_SIZE(keep); i++)
			if (keep_fds[i] >= 0)
				keep[nk++] = (unsigned int)keep_fds[i];
		for (size_t i = 1; i < nk; i++)
			for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
				unsigned int t = keep[j];
				keep[j] = keep[j - 1];
				keep[j - 1] = t;
			}
		unsigned int from = 3;
		for (size_t i = 0; i < nk; i++) {
			if (keep[i] > from)
				sbx_close_range(from, keep[i] - 1, 0);
			if (keep[i] + 1 > from)
				from = keep[i] + 1;
		}
		sbx_close_range(from, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_IGN);
		out_worker_child(op[1], rp[1], fn, arg);
	}
	close(op[1]);
	close(rp[1]);
	sbx_set_nonblock(op[0], true);
	fcntl(op[0], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups for big results; best effort */
	struct out_worker *wk = calloc(1, sizeof(*wk));
	if (wk) {
		wk->d = d;
		wk->pidfd = pidfd;
		wk->out_fd = op[0];
		wk->report_fd = rp[0];
		wk->done = done;
		wk->chunk = chunk;
		wk->ctx = ctx;
		wk->w = sbx_loop_watch(d->loop, op[0], EPOLLIN, out_worker_readable, wk);
	}
	if (!wk || !wk->w) {
		sbx_pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
		waitid((idtype_t)P_PIDFD, (id_t)pidfd, NULL, WEXITED);
		close(pidfd);
		close(op[0]);
		close(rp[0]);
		free(wk);
		return sbx_error_errno(err, ENOMEM, "track worker");
	}
	return 0;
}

int sbx_worker_start_out(struct sbx_daemon *d, const int *keep_fds, size_t nkeep, sbx_worker_out_fn fn, void *arg,
			 sbx_worker_out_done done, void *ctx, sbx_error **err)
{
	return start_out(d, keep_fds, nkeep, fn, arg, NULL, done, ctx, err);
}

int sbx_worker_start_stream(struct sbx_daemon *d, const int *keep_fds, size_t nkeep, sbx_worker_out_fn fn, void *arg,
			    sbx_worker_chunk_fn chunk, sbx_worker_out_done done, void *ctx, sbx_error **err)
{
	return start_out(d, keep_fds, nkeep, fn, arg, chunk, done, ctx, err);
}
