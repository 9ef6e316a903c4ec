/* Filter compilation with libseccomp and loading of the result. The default
 * profile allows what ordinary programs, package managers, compilers and
 * language runtimes use, and answers EPERM to the rest, as Docker does. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp_filter.h"
#include "util.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define NS_FLAGS                                                                                                  \
	((uint64_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |       \
		    CLONE_NEWCGROUP | 0x00000080 /* CLONE_NEWTIME */))

static const char *const allowed[] = {
	"accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "cachestat", "capget",
	"capset", "chdir", "chmod", "chown", "chroot", "clock_adjtime", "clock_getres", "clock_gettime",
	"clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd",
	"eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync",
	"fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync",
	"ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu",
	"getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername",
	"getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
	"get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
	"gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
	"inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get",
	"ioprio_set", "io_setup", "io_submit", "kcmp", "kill", "landlock_add_rule", "landlock_create_ruleset",
	"landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
	"lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
	"memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
	"modify_ldt", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend",
	"mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
	"name_to_handle_at", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_getfd",
	"pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
	"ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_madvise", "process_mrelease",
	"process_vm_readv", "process_vm_writev", "pselect6", "ptrace", "pwrite64", "pwritev", "pwritev2", "read",
	"readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
	"removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
	"rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid",
	"setdomainname", "setgid", "setgroups", "sethostname", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
	"setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
	"setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
	"signalfd4", "socketpair", "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync",
	"sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
	"timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime",
	"timerfd_settime", "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "utime",
	"utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev", NULL,
};

static int add_rule(scmp_filter_ctx ctx, const char *name, uint32_t action, unsigned int nargs,
		    const struct scmp_arg_cmp *args, sbx_error **err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* a syscall this libseccomp does not know: nothing to allow */
	int r = seccomp_rule_add_array(ctx, action, nr, nargs, args);
	if (r < 0 && r != -EEXIST)
		return sbx_error_errno(err, -r, "seccomp rule for %s", name);
	return 0;
}

static int export_bpf(scmp_filter_ctx ctx, struct sbx_bpf *out, sbx_error **err)
{
	_cleanup_close_ int mfd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	if (mfd < 0)
		return sbx_error_errno(err, errno, "memfd_create");
	int r = seccomp_export_bpf(ctx, mfd);
	if (r < 0)
		return sbx_error_errno(err, -r, "export seccomp filter");
	off_t size = lseek(mfd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) || size / (off_t)sizeof(struct sock_filter) > 0xffff)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "seccomp filter of unexpected size %lld", (long long)size);
	out->insns = malloc((size_t)size);
	if (!out->insns)
		return sbx_error_errno(err, ENOMEM, "seccomp filter");
	if (pread(mfd, out->insns, (size_t)size, 0) != (ssize_t)size) {
		free(out->insns);
		out->insns = NULL;
		return sbx_error_errno(err, errno ? errno : EIO, "read seccomp filter");
	}
	out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	return 0;
}

static scmp_filter_ctx new_ctx(uint32_t default_action, sbx_error **err)
{
	scmp_filter_ctx ctx = seccomp_init(default_action);
	if (!ctx) {
		sbx_error_set(err, SBX_ERR_INTERNAL, "seccomp_init failed");
		return NULL;
	}
	/* no_new_privs is set by us, before loading, in every process. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	/* Only the native ABI: i386 (int 0x80) and x32 calls are refused. */
	seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
	return ctx;
}

int sbx_seccomp_compile_default(struct sbx_bpf *out, sbx_error **err)
{
	scmp_filter_ctx ctx = new_ctx(SCMP_ACT_ERRNO(EPERM), err);
	if (!ctx)
		return -1;
	int rc = -1;
	for (const char *const *n = allowed; *n; n++)
		if (add_rule(ctx, *n, SCMP_ACT_ALLOW, 0, NULL, err) < 0)
			goto out;
	/* fork and threads, never new namespaces. */
	struct scmp_arg_cmp no_ns = SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0);
	if (add_rule(ctx, "clone", SCMP_ACT_ALLOW, 1, &no_ns, err) < 0 ||
	    add_rule(ctx, "unshare", SCMP_ACT_ALLOW, 1, &no_ns, err) < 0)
		goto out;
	/* clone3 passes its flags in memory a filter cannot read: ENOSYS makes
	 * libc fall back to clone, whose flags it can. */
	if (add_rule(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS), 0, NULL, err) < 0)
		goto out;
	struct scmp_arg_cmp not_vsock = SCMP_A0(SCMP_CMP_NE, AF_VSOCK);
	if (add_rule(ctx, "socket", SCMP_ACT_ALLOW, 1, &not_vsock, err) < 0)
		goto out;
	static const uint64_t personas[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(personas); i++) {
		struct scmp_arg_cmp p = SCMP_A0(SCMP_CMP_EQ, personas[i]);
		if (add_rule(ctx, "personality", SCMP_ACT_ALLOW, 1, &p, err) < 0)
			goto out;
	}
	rc = export_bpf(ctx, out, err);
out:
	seccomp_release(ctx);
	return rc;
}

int sbx_seccomp_compile(const struct sbx_seccomp_profile *p, struct sbx_bpf *out, sbx_error **err)
{
	scmp_filter_ctx ctx = new_ctx(p->default_action, err);
	if (!ctx)
		return -1;
	int rc = -1;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct sbx_seccomp_rule *r = &p->rules[i];
		if (r->action == p->default_action)
			continue; /* libseccomp refuses rules that change nothing */
		for (char **n = r->names; n && *n; n++)
			if (add_rule(ctx, *n, r->action, r->nargs, r->args, err) < 0)
				goto out;
	}
	rc = export_bpf(ctx, out, err);
out:
	seccomp_release(ctx);
	return rc;
}

void sbx_seccomp_profile_free(struct sbx_seccomp_profile *p)
{
	for (size_t i = 0; i < p->nrules; i++) {
		for (char **n = p->rules[i].names; n && *n; n++)
			free(*n);
		free(p->rules[i].names);
	}
	free(p->rules);
	p->rules = NULL;
	p->nrules = 0;
}

void sbx_bpf_free(struct sbx_bpf *b)
{
	free(b->insns);
	b->insns = NULL;
	b->len = 0;
}

int sbx_seccomp_load(const struct sbx_bpf *b, sbx_error **err)
{
	if (!b)
		return 0; /* unconfined, by request */
	if (!b->insns || !b->len)
		return sbx_error_set(err, SBX_ERR_INTERNAL, "seccomp filter missing; refusing to run unfiltered");
	struct sock_fprog prog = { .len = b->len, .filter = b->insns };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return sbx_error_errno(err, errno, "load seccomp filter");
	return 0;
}
