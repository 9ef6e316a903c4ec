"""Attempts to break out of a sandbox, each of which must fail.

Every test plays the part of hostile code inside a sandbox (root inside
included) and checks that the defence meant to stop it holds: system calls
the seccomp filter refuses, device nodes, kernel settings in /proc, set-user-ID
programs and file capabilities, the runtime binary behind /proc/PID/exe
(CVE-2019-5736), descriptors and working directories leaked into a command
(CVE-2024-21626), signals to host processes, neighbouring sandboxes, the id
mapping of the user namespace, and the weaker settings (userns false,
unconfined seccomp, cap_add) that must still not open the host.

System calls busybox cannot make are tried by a small static program built
on the host with cc at test time and copied into the sandbox; tests that
need it are skipped when no compiler (or no static C library) is available.
"""

import atexit
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import tempfile
import time
import unittest

import sbxtest
from sbxtest import Daemon, SandboxdTestCase, main, pid_alive, wait_until

NOT_FOUND, DENIED = 1, 5
BAD_PARAMS = -32602

# CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP
DEFAULT_CAPS = 0x800405fb
DEFAULT_CAP_NAMES = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                     "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP"]
USERNS_START, USERNS_SIZE = 1000000000, 65536

# --------------------------------------------------------------------------
# Helpers built on the host and run inside a sandbox

# probe NAME...: makes each named system call with harmless arguments, each
# in a forked child, and prints "NAME OK", "NAME E<errno name>" or
# "NAME SIG<signal>" per line ("chroot_escape ESCAPED" if climbing out of a
# nested chroot reaches a root other than the sandbox's).
PROBE_C = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/reboot.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static long i386_getpid(void)
{
	long ret = 20; /* __NR_getpid of the i386 ABI */
	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
	return ret;
}

static long attempt(const char *what, int *err)
{
	static char buf[4096];
	uint64_t zero[16];
	memset(zero, 0, sizeof(zero));
	errno = 0;
	long r = -1;
	if (!strcmp(what, "mount"))
		r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0UL, NULL);
	else if (!strcmp(what, "umount2"))
		r = syscall(SYS_umount2, "/proc/keys", 2 /* MNT_DETACH */);
	else if (!strcmp(what, "unshare_user"))
		r = syscall(SYS_unshare, CLONE_NEWUSER);
	else if (!strcmp(what, "unshare_mnt"))
		r = syscall(SYS_unshare, CLONE_NEWNS);
	else if (!strcmp(what, "unshare_net"))
		r = syscall(SYS_unshare, CLONE_NEWNET);
	else if (!strcmp(what, "setns_mnt") || !strcmp(what, "setns_net")) {
		int fd = open(!strcmp(what, "setns_mnt") ? "/proc/self/ns/mnt" : "/proc/self/ns/net", O_RDONLY);
		if (fd < 0)
			return *err = errno, -1;
		r = syscall(SYS_setns, fd, 0);
	} else if (!strcmp(what, "clone_newuser") || !strcmp(what, "clone_newns")) {
		unsigned long f = !strcmp(what, "clone_newuser") ? CLONE_NEWUSER : CLONE_NEWNS;
		r = syscall(SYS_clone, f | SIGCHLD, 0UL, NULL, NULL, 0UL);
		if (r == 0)
			_exit(0);
	} else if (!strcmp(what, "clone3")) {
		uint64_t args[11];
		memset(args, 0, sizeof(args));
		args[4] = SIGCHLD; /* exit_signal */
		r = syscall(SYS_clone3, args, sizeof(args));
		if (r == 0)
			_exit(0);
	} else if (!strcmp(what, "ptrace_init")) {
		/* Only ever aimed at a sandbox's own init. */
		char comm[32] = "";
		int cf = open("/proc/1/cmdline", O_RDONLY);
		if (cf < 0 || read(cf, comm, sizeof(comm) - 1) < 12 || strncmp(comm, "sandbox-init", 12))
			return *err = ESRCH, -1;
		close(cf);
		r = ptrace(PTRACE_ATTACH, 1, NULL, NULL);
		if (r == 0) {
			waitpid(1, NULL, __WALL);
			ptrace(PTRACE_DETACH, 1, NULL, NULL);
		}
	} else if (!strcmp(what, "bpf"))
		r = syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, zero, 48);
	else if (!strcmp(what, "keyctl"))
		r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
	else if (!strcmp(what, "add_key"))
		r = syscall(SYS_add_key, "user", "probe", "x", 1, -2 /* process keyring */);
	else if (!strcmp(what, "request_key"))
		r = syscall(SYS_request_key, "user", "probe", NULL, 0);
	else if (!strcmp(what, "kexec_load"))
		r = syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL);
	else if (!strcmp(what, "kexec_file_load"))
		r = syscall(SYS_kexec_file_load, -1, -1, 0UL, "", 0UL);
	else if (!strcmp(what, "init_module"))
		r = syscall(SYS_init_module, buf, 16UL, "");
	else if (!strcmp(what, "finit_module"))
		r = syscall(SYS_finit_module, 0, "", 0);
	else if (!strcmp(what, "delete_module"))
		r = syscall(SYS_delete_module, "probe_no_such_module", 0);
	else if (!strcmp(what, "reboot"))
		r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, NULL);
	else if (!strcmp(what, "swapon"))
		r = syscall(SYS_swapon, "/tmp/no-such-swap", 0);
	else if (!strcmp(what, "perf_event_open")) {
		uint32_t attr[32];
		memset(attr, 0, sizeof(attr));
		attr[0] = 1; /* PERF_TYPE_SOFTWARE */
		attr[1] = sizeof(attr);
		r = syscall(SYS_perf_event_open, attr, 0, -1, -1, 0UL);
	} else if (!strcmp(what, "userfaultfd"))
		r = syscall(SYS_userfaultfd, O_CLOEXEC);
	else if (!strcmp(what, "io_uring_setup")) {
		uint32_t params[30];
		memset(params, 0, sizeof(params));
		r = syscall(SYS_io_uring_setup, 1, params);
	} else if (!strcmp(what, "open_by_handle_at")) {
		struct { unsigned int bytes; int type; unsigned char h[8]; } fh = { 8, 1, { 2, 0, 0, 0, 0, 0, 0, 0 } };
		r = syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY);
	} else if (!strcmp(what, "socket_vsock"))
		r = socket(AF_VSOCK, SOCK_STREAM, 0);
	else if (!strcmp(what, "i386_getpid")) {
		long v = i386_getpid();
		r = v < 0 ? (errno = (int)-v, -1) : 0;
	} else if (!strcmp(what, "x32_getpid"))
		r = syscall(39 | 0x40000000);
	else if (!strcmp(what, "pivot_root"))
		r = syscall(SYS_pivot_root, "/tmp", "/tmp");
	else if (!strcmp(what, "fsopen"))
		r = syscall(SYS_fsopen, "tmpfs", 0);
	else if (!strcmp(what, "fsmount"))
		r = syscall(SYS_fsmount, -1, 0, 0);
	else if (!strcmp(what, "open_tree"))
		r = syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */);
	else if (!strcmp(what, "move_mount"))
		r = syscall(SYS_move_mount, AT_FDCWD, "/tmp", AT_FDCWD, "/mnt", 0);
	else if (!strcmp(what, "mount_setattr"))
		r = syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, zero, 32UL);
	else if (!strcmp(what, "acct"))
		r = syscall(SYS_acct, NULL);
	else if (!strcmp(what, "syslog"))
		r = syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	else if (!strcmp(what, "iopl"))
		r = syscall(SYS_iopl, 3);
	else if (!strcmp(what, "ioperm"))
		r = syscall(SYS_ioperm, 0x80UL, 1UL, 1);
	else if (!strcmp(what, "settimeofday"))
		r = syscall(SYS_settimeofday, NULL, NULL);
	else if (!strcmp(what, "clock_settime")) {
		struct timespec ts = { 0, 0 };
		r = syscall(SYS_clock_settime, CLOCK_REALTIME, &ts);
	} else if (!strcmp(what, "personality_linux32"))
		r = syscall(SYS_personality, 0x0008UL /* PER_LINUX32 */);
	else if (!strcmp(what, "quotactl"))
		r = syscall(SYS_quotactl, 0, "/", 0, NULL);
	else if (!strcmp(what, "set_mempolicy"))
		r = syscall(SYS_set_mempolicy, 0 /* MPOL_DEFAULT */, NULL, 0UL);
	else if (!strcmp(what, "personality_norandom"))
		r = syscall(SYS_personality, 0x0040000UL /* ADDR_NO_RANDOMIZE */);
	else if (!strcmp(what, "setfcap")) {
		/* Every capability, permitted, on /tmp/busybox-fcap. */
		uint32_t cap[5] = { 0x02000000 /* VFS_CAP_REVISION_2, not effective */, 0xffffffff, 0, 0x1ff, 0 };
		r = syscall(SYS_setxattr, "/tmp/busybox-fcap", "security.capability", cap, sizeof(cap), 0);
	} else if (!strcmp(what, "chroot_escape")) {
		/* The classic way out of a chroot: chroot deeper, step back up
		 * with a descriptor of the old root, climb, chroot there. */
		struct stat before, after;
		int fd = open("/", O_RDONLY | O_DIRECTORY);
		if (fd < 0 || stat("/", &before) < 0)
			return *err = errno, -1;
		mkdir("/tmp/jail", 0700);
		if (chroot("/tmp/jail") < 0)
			return *err = errno, -1;
		if (fchdir(fd) < 0)
			return *err = errno, -1;
		for (int i = 0; i < 256; i++)
			if (chdir("..") < 0)
				return *err = errno, -1;
		if (chroot(".") < 0 || stat("/", &after) < 0)
			return *err = errno, -1;
		if (after.st_dev != before.st_dev || after.st_ino != before.st_ino)
			return *err = -2, -1;
		r = 0;
	} else if (!strcmp(what, "getpid"))
		r = syscall(SYS_getpid) > 0 ? 0 : -1;
	else
		return *err = -1, -1;
	*err = errno;
	return r;
}

/* Each call is made in a forked child: one that succeeds (a process, a
 * namespace) or kills its caller cannot disturb the next. */
static void run_one(const char *what)
{
	int p[2];
	if (pipe(p) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		int e = 0;
		long r = attempt(what, &e);
		char line[160];
		int n;
		if (e == -1)
			n = snprintf(line, sizeof(line), "%s UNKNOWN\n", what);
		else if (e == -2)
			n = snprintf(line, sizeof(line), "%s ESCAPED\n", what);
		else if (r >= 0)
			n = snprintf(line, sizeof(line), "%s OK\n", what);
		else
			n = snprintf(line, sizeof(line), "%s %s\n", what, strerrorname_np(e) ? strerrorname_np(e) : "E?");
		if (write(p[1], line, (size_t)n) < 0)
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	char buf[256];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	if (n > 0) {
		buf[n] = 0;
		fputs(buf, stdout);
	} else if (WIFSIGNALED(st)) {
		printf("%s SIG%s\n", what, sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
	} else {
		printf("%s NOREPORT\n", what);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		run_one(argv[i]);
	return 0;
}
'''

# Run as the ELF interpreter (PT_INTERP) of a host binary that a process in
# the sandbox was made to execute through "#!/proc/self/exe": it reports
# what /proc/self/exe is and whether it can be opened for writing, then
# leaves a shell holding an O_PATH descriptor of that binary (fd 7) that
# keeps trying to reopen it for writing, as in CVE-2019-5736.
PAYLOAD_C = r'''
/* Run as the ELF interpreter of a host binary that a process inside the
 * sandbox was tricked into executing: /proc/self/exe is that binary. */
#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_dup2 33
#define SYS_fork 57
#define SYS_execve 59
#define SYS_exit 60
#define SYS_readlink 89
#define SYS_setsid 112

static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

static unsigned long slen(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void put(int fd, const char *s)
{
	sys3(SYS_write, fd, (long)s, (long)slen(s));
}

static void putnum(int fd, long v)
{
	char b[24];
	int i = 23;
	b[i] = 0;
	if (v < 0) {
		put(fd, "-");
		v = -v;
	}
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	put(fd, b + i);
}

void payload_main(void)
{
	int rep = (int)sys3(SYS_open, (long)"/tmp/cve-report", 01 | 0100 | 01000 /* O_WRONLY|O_CREAT|O_TRUNC */, 0644);
	char link[512];
	long n = sys3(SYS_readlink, (long)"/proc/self/exe", (long)link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	put(rep, "exe=");
	put(rep, link);
	put(rep, "\n");
	/* Straight away, while this process still executes it. */
	long w = sys3(SYS_open, (long)"/proc/self/exe", 01 /* O_WRONLY */, 0);
	put(rep, "direct="); /* the errno, or 0 when it opened */
	putnum(rep, w < 0 ? -w : 0);
	put(rep, "\n");
	/* Keep a handle on the binary for later, in a process that executes
	 * something else: the shell loop tries to reopen it for writing. */
	long h = sys3(SYS_open, (long)"/proc/self/exe", 010000000 /* O_PATH */, 0);
	put(rep, "handle=");
	putnum(rep, h);
	put(rep, "\n");
	sys3(SYS_close, rep, 0, 0);
	if (h >= 0) {
		sys3(SYS_dup2, h, 7, 0);
		if (sys3(SYS_fork, 0, 0, 0) == 0) {
			sys3(SYS_setsid, 0, 0, 0);
			int nul = (int)sys3(SYS_open, (long)"/dev/null", 02, 0);
			sys3(SYS_dup2, nul, 0, 0);
			sys3(SYS_dup2, nul, 1, 0);
			sys3(SYS_dup2, nul, 2, 0);
			char *argv[] = { "sh", "/tmp/cve-loop.sh", 0 };
			char *envp[] = { "PATH=/bin:/usr/bin:/sbin:/usr/sbin", 0 };
			sys3(SYS_execve, (long)"/bin/sh", (long)argv, (long)envp);
			sys3(SYS_exit, 127, 0, 0);
		}
	}
	sys3(SYS_exit, 0, 0, 0);
}

__asm__(".globl _start\n_start:\n\tand $-16, %rsp\n\tcall payload_main\n\thlt\n");
'''

_built = {}
_build_dir = []


def _compile(name, source, flags):
    """Path of the helper built from source, or raise SkipTest saying why not."""
    if name not in _built:
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            _built[name] = (None, "no C compiler (cc) on the host to build the %s helper" % name)
        else:
            if not _build_dir:
                d = tempfile.mkdtemp(prefix="sbxsecurity-")
                atexit.register(shutil.rmtree, d, True)
                _build_dir.append(d)
            src = os.path.join(_build_dir[0], name + ".c")
            out = os.path.join(_build_dir[0], name)
            with open(src, "w") as f:
                f.write(source)
            p = subprocess.run([cc] + flags + ["-o", out, src], capture_output=True, text=True, timeout=180)
            if p.returncode != 0:
                last = (p.stderr.strip().splitlines() or ["exit status %d" % p.returncode])[-1]
                _built[name] = (None, "cannot build the %s helper with %s (static C library missing?): %s"
                                % (name, cc, last))
            else:
                _built[name] = (out, None)
    path, reason = _built[name]
    if not path:
        raise unittest.SkipTest(reason)
    return path


def probe_binary():
    return _compile("probe", PROBE_C, ["-static", "-O1"])


_host_i386 = []


def host_i386_outcome():
    """What the probe's int 0x80 getpid gives on the host itself, outside
    any sandbox: OK where the kernel runs 32-bit system calls, SIGSEGV where
    it has no IA-32 emulation (then no sandbox can reach that ABI either)."""
    if not _host_i386:
        r = subprocess.run([probe_binary(), "i386_getpid"], capture_output=True, text=True, timeout=30)
        _host_i386.append(r.stdout.split(" ", 1)[1].strip() if r.stdout.startswith("i386_getpid ") else "?")
    return _host_i386[0]


def payload_binary():
    return _compile("payload", PAYLOAD_C, ["-static", "-nostdlib", "-fno-stack-protector", "-fno-builtin",
                                            "-fno-pie", "-no-pie", "-O1"])


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def status_fields(text):
    """/proc/PID/status as a dict."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


class CopiedBinaryDaemon(Daemon):
    """A daemon run from its own copy of sandboxd, so that an attack on the
    runtime binary can only ever damage that copy."""

    def __init__(self, **options):
        super().__init__(**options)
        self.exe = os.path.join(self.dir, "sandboxd")
        shutil.copy2(sbxtest.sandboxd_path(), self.exe)

    def command(self):
        cmd = super().command()
        cmd[0] = self.exe
        return cmd

    def restore_binary(self):
        """Put an intact copy in place (a new inode: whatever still holds
        the old one cannot reach it)."""
        tmp = self.exe + ".new"
        shutil.copy2(sbxtest.sandboxd_path(), tmp)
        os.replace(tmp, self.exe)


class SecurityTestCase(SandboxdTestCase):
    def host_root(self, sb, client=None):
        """The sandbox's root directory as the host sees it."""
        return "/proc/%d/root" % self.inspect(sb, client=client)["init_pid"]

    def owner_inside_root(self, sb, client=None):
        sec = self.inspect(sb, client=client)["security"]
        return sec.get("uid_base", 0) if sec["userns"] else 0

    def plant(self, sb, path, data=None, src=None, mode=0o644, owner=None, client=None):
        """Write a file into a running sandbox from the host, as host root,
        then give it to owner (a host uid; default: the sandbox's root)."""
        host = self.host_root(sb, client=client) + path
        if src is not None:
            with open(src, "rb") as f:
                data = f.read()
        if isinstance(data, str):
            data = data.encode()
        with open(host, "wb") as f:
            f.write(data)
        uid = self.owner_inside_root(sb, client=client) if owner is None else owner
        os.chown(host, uid, uid)
        os.chmod(host, mode)  # after chown, which clears set-user-ID bits
        return host

    def install_probe(self, sb, client=None):
        self.plant(sb, "/tmp/probe", src=probe_binary(), mode=0o755, client=client)

    def probe(self, sb, names, client=None, **params):
        """{name: outcome} of each system call tried by the probe inside sb."""
        r = self.exec(sb, ["/tmp/probe"] + list(names), client=client, **params)
        self.assertEqual((r["exit_code"], r["signal"]), (0, None), r)
        got = {}
        for line in r["stdout"].splitlines():
            name, outcome = line.split(" ", 1)
            got[name] = outcome
        self.assertEqual(sorted(got), sorted(names), r)
        return got

    def assertOutcomes(self, got, expected):
        for name, want in expected.items():
            with self.subTest(syscall=name):
                if name == "i386_getpid" and host_i386_outcome() == "SIGSEGV":
                    want = "SIGSEGV"  # the kernel has no 32-bit system calls at all
                allowed = want if isinstance(want, (tuple, set, frozenset)) else (want,)
                self.assertIn(got[name], allowed, "%s: got %s, expected %s" % (name, got[name], " or ".join(allowed)))

    def status(self, sb, path="/proc/self/status", **params):
        return status_fields(self.sh(sb, "cat " + path, **params))

    def fails(self, sb, script, message=None, **params):
        """Run script; assert it fails; return its stderr. With message,
        assert that stderr contains it (a str or a tuple of alternatives)."""
        r = self.exec(sb, script, **params)
        self.assertNotEqual(r["exit_code"], 0, "%r succeeded: %r" % (script, r))
        if message is not None:
            alts = message if isinstance(message, tuple) else (message,)
            self.assertTrue(any(m in r["stderr"] for m in alts),
                            "%r: expected %s in stderr, got %r" % (script, " or ".join(map(repr, alts)), r["stderr"]))
        return r["stderr"]


# --------------------------------------------------------------------------
# Seccomp, capabilities, no_new_privs


# What the default filter answers. clone3 and the foreign ABIs answer ENOSYS
# (so that the C library falls back to clone, whose flags a filter can read);
# everything else EPERM.
DEFAULT_REFUSED = {
    "mount": "EPERM", "umount2": "EPERM", "pivot_root": "EPERM",
    "unshare_user": "EPERM", "unshare_mnt": "EPERM", "unshare_net": "EPERM",
    "setns_mnt": "EPERM", "setns_net": "EPERM",
    "clone_newuser": "EPERM", "clone_newns": "EPERM", "clone3": "ENOSYS",
    "fsopen": "EPERM", "fsmount": "EPERM", "open_tree": "EPERM", "move_mount": "EPERM", "mount_setattr": "EPERM",
    "bpf": "EPERM", "perf_event_open": "EPERM", "userfaultfd": "EPERM", "io_uring_setup": "EPERM",
    "keyctl": "EPERM", "add_key": "EPERM", "request_key": "EPERM",
    "kexec_load": "EPERM", "kexec_file_load": "EPERM",
    "init_module": "EPERM", "finit_module": "EPERM", "delete_module": "EPERM",
    "reboot": "EPERM", "swapon": "EPERM", "acct": "EPERM", "syslog": "EPERM", "quotactl": "EPERM",
    "iopl": "EPERM", "ioperm": "EPERM", "settimeofday": "EPERM", "clock_settime": "EPERM",
    "open_by_handle_at": "EPERM", "socket_vsock": "EPERM", "set_mempolicy": "EPERM",
    "personality_norandom": "EPERM",
    "i386_getpid": "ENOSYS", "x32_getpid": "ENOSYS",
}

# Without any filter, the user namespace and the namespaces owned by the
# host still refuse these (ENOSYS where this kernel lacks the feature).
UNCONFINED_REFUSED = {
    "mount": "EPERM", "umount2": "EPERM", "pivot_root": "EPERM",
    "unshare_mnt": "EPERM", "unshare_net": "EPERM", "setns_mnt": "EPERM", "setns_net": "EPERM",
    "clone_newns": "EPERM", "fsopen": "EPERM", "fsmount": "EPERM", "open_tree": "EPERM", "move_mount": "EPERM",
    "mount_setattr": "EPERM", "open_by_handle_at": "EPERM",
    "reboot": "EPERM", "swapon": "EPERM", "acct": "EPERM", "settimeofday": "EPERM", "clock_settime": "EPERM",
    "kexec_load": ("EPERM", "ENOSYS"), "init_module": ("EPERM", "ENOSYS"), "finit_module": ("EPERM", "ENOSYS"),
    "iopl": ("EPERM", "ENOSYS"), "ioperm": ("EPERM", "ENOSYS"),
}


class SeccompTest(SecurityTestCase):
    def test_process_status(self):
        self.create("s")
        root = self.status("s")
        self.assertEqual(root["Seccomp"], "2")
        self.assertEqual(root["NoNewPrivs"], "1")
        for k in ("CapPrm", "CapEff", "CapBnd", "CapInh"):
            self.assertEqual(int(root[k], 16), DEFAULT_CAPS, k)
        self.assertEqual(int(root["CapAmb"], 16), 0)
        user = self.status("s", user="sandbox")
        self.assertEqual((user["Seccomp"], user["NoNewPrivs"]), ("2", "1"))
        for k in ("CapPrm", "CapEff", "CapAmb"):
            self.assertEqual(int(user[k], 16), 0, k)
        self.assertEqual(int(user["CapBnd"], 16), DEFAULT_CAPS)
        init = self.status("s", "/proc/1/status")
        self.assertEqual((init["Name"], init["Seccomp"], init["NoNewPrivs"]), ("sandbox-init", "2", "1"))
        self.assertEqual(int(init["CapBnd"], 16), DEFAULT_CAPS)
        nofile = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])  # capped by the daemon's own
        self.assertEqual(self.sh("s", "ulimit -c; ulimit -n"), "0\n%d\n" % nofile)

    def test_default_filter_refuses(self):
        self.create("s")
        self.install_probe("s")
        got = self.probe("s", list(DEFAULT_REFUSED) + ["getpid"])
        self.assertEqual(got["getpid"], "OK")  # the probe itself works
        self.assertOutcomes(got, DEFAULT_REFUSED)
        # The same for a user without capabilities.
        self.assertOutcomes(self.probe("s", list(DEFAULT_REFUSED), user="sandbox"), DEFAULT_REFUSED)

    def test_busybox_namespace_and_mount_tools_fail(self):
        self.create("s")
        self.fails("s", "mount -t tmpfs none /tmp", "permission denied")
        self.fails("s", "umount /proc/keys", "Operation not permitted")
        self.fails("s", "umount -l /proc/sys", "Operation not permitted")
        self.fails("s", "mount -o remount,rw /sys", "permission denied")
        self.fails("s", "unshare -m true", "Operation not permitted")
        self.fails("s", "unshare -U true", "Operation not permitted")
        self.fails("s", "nsenter -t 1 -m true", "Operation not permitted")
        self.fails("s", "nsenter -t 1 -n true", "Operation not permitted")
        self.assertEqual(self.sh("s", "wc -c < /proc/keys"), "0\n")

    def test_unconfined_still_refused_by_namespaces(self):
        # Defence in depth: with no filter at all, the mount, PID and network
        # namespaces belong to the host and root inside lacks the
        # capabilities that matter there.
        sb = self.create("s", seccomp_profile="unconfined")
        self.assertEqual(sb["security"]["seccomp"], "unconfined")
        self.assertEqual(self.status("s")["Seccomp"], "0")
        self.install_probe("s")
        self.assertOutcomes(self.probe("s", list(UNCONFINED_REFUSED)), UNCONFINED_REFUSED)
        self.fails("s", "mount -t tmpfs none /tmp", "permission denied")
        self.fails("s", "umount /proc/keys", "Operation not permitted")
        self.fails("s", "nsenter -t 1 -m true", "Operation not permitted")

    def test_every_capability_and_no_filter_still_cannot_reach_the_host_mounts(self):
        # cap_add ALL gives root inside every capability, but only in its own
        # user namespace. It may make a mount namespace of its own; there the
        # masks stay locked and proc and sysfs (owned by the host) cannot be
        # mounted or made writable.
        sb = self.create("s", seccomp_profile="unconfined", cap_add=["ALL"])
        self.assertIn("CAP_SYS_ADMIN", sb["security"]["capabilities"])
        self.assertIn("CAP_MKNOD", sb["security"]["capabilities"])
        self.install_probe("s")
        self.assertOutcomes(self.probe("s", ["mount", "umount2", "pivot_root", "setns_mnt", "setns_net",
                                             "open_tree", "move_mount", "mount_setattr", "reboot", "swapon"]),
                            {n: "EPERM" for n in ("mount", "umount2", "pivot_root", "setns_mnt", "setns_net",
                                                  "open_tree", "move_mount", "mount_setattr", "reboot", "swapon")})
        host_hostname = open("/proc/sys/kernel/hostname").read()
        script = ("unshare -m sh -c '"
                  "umount /proc/keys 2>&1; umount -l /proc/keys 2>&1; umount -l /proc/sys 2>&1; "
                  "echo keys=$(wc -c < /proc/keys); "
                  "mount -t proc proc /tmp 2>&1 || echo proc-refused; "
                  "mount -t sysfs sysfs /tmp 2>&1 || echo sysfs-refused; "
                  "mount -o remount,rw /proc/sys 2>&1 || echo procsys-refused; "
                  "mount -o remount,rw /sys 2>&1 || echo sys-refused; "
                  "echo evil > /proc/sys/kernel/hostname 2>&1 || echo hostname-refused; "
                  "mknod /tmp/sda b 8 0 2>&1 || echo mknod-refused'")
        out = self.sh("s", script)
        for word in ("keys=0", "proc-refused", "sysfs-refused", "procsys-refused", "sys-refused",
                     "hostname-refused", "mknod-refused"):
            self.assertIn(word, out)
        self.assertEqual(open("/proc/sys/kernel/hostname").read(), host_hostname)
        # Nested user namespaces are allowed without a filter; from there too
        # proc cannot be mounted.
        out = self.sh("s", "unshare -Urmpf sh -c 'mount -t proc proc /proc 2>&1 || echo proc-refused'")
        self.assertIn("proc-refused", out)

    def test_ptrace(self):
        self.create("s")
        self.install_probe("s")
        # Without capabilities, init (root) cannot be traced.
        self.assertEqual(self.probe("s", ["ptrace_init"], user="sandbox")["ptrace_init"], "EPERM")
        # Root may trace init (same ids and capabilities, as in Docker); it
        # gains nothing by it: init holds no descriptor of the daemon, runs
        # under the same filter, no_new_privs and capabilities.
        got = self.probe("s", ["ptrace_init"])["ptrace_init"]
        self.assertIn(got, ("OK", "EPERM"))
        init = self.status("s", "/proc/1/status")
        self.assertEqual((init["Seccomp"], init["NoNewPrivs"]), ("2", "1"))
        self.assertEqual(int(init["CapPrm"], 16) & ~DEFAULT_CAPS, 0)
        self.assertEqual(self.sh("s", "ls /proc/1/fd; for f in 0 1 2; do readlink /proc/1/fd/$f; done"),
                         "0\n1\n2\n/dev/null\n/dev/null\n/dev/null\n")


# --------------------------------------------------------------------------
# Devices


DEVICE_BINDS = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}


class DeviceTest(SecurityTestCase):
    def test_mknod_refused(self):
        self.create("s")
        self.fails("s", "mknod /tmp/sda b 8 0", "Operation not permitted")
        self.fails("s", "mknod /dev/mem c 1 1", "Operation not permitted")
        self.fails("s", "mknod /tmp/sda b 8 0", "Operation not permitted", user="sandbox")
        # CAP_MKNOD inside a user namespace does not cover device nodes: the
        # kernel wants it in the initial namespace.
        self.create("m", cap_add=["MKNOD"])
        self.fails("m", "mknod /tmp/sda b 8 0", "Operation not permitted")
        self.fails("m", "mknod /dev/kmsg c 1 11", "Operation not permitted")

    def test_nodes_made_without_userns_do_not_open(self):
        # Host root with CAP_MKNOD can make nodes, but every writable place
        # is mounted nodev.
        self.create("m", userns=False, cap_add=["MKNOD"])
        for path in ("/tmp/sda", "/dev/sda", "/dev/shm/sda", "/workspace/sda", "/var/tmp/sda"):
            with self.subTest(path=path):
                self.sh("m", "mknod %s b 8 0" % path)
                self.fails("m", "head -c 1 %s" % path, "Permission denied")
        self.sh("m", "mknod /tmp/mem c 1 1")
        self.fails("m", "head -c 1 /tmp/mem", "Permission denied")
        self.fails("m", "echo x > /tmp/mem", "Permission denied")

    def test_every_mount_is_nodev_but_the_checked_nodes(self):
        self.create("s")
        for line in self.sh("s", "cat /proc/self/mountinfo").splitlines():
            left, right = line.split(" - ")
            f = left.split()
            root, point, opts = f[3], f[4], f[5].split(",")
            fstype = right.split()[0]
            with self.subTest(mount=point):
                if fstype == "devtmpfs":
                    # Only single checked nodes of the host's /dev are bound in.
                    self.assertIn("/dev" + root, DEVICE_BINDS, line)
                    continue
                if fstype == "devpts":
                    self.assertIn("nosuid", opts)
                    continue
                self.assertIn("nodev", opts, line)


# --------------------------------------------------------------------------
# /proc and /sys


MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/key-users", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/latency_stats", "/proc/kallsyms", "/proc/kpagecount",
                "/proc/kpageflags", "/proc/kpagecgroup", "/proc/vmallocinfo"]
MASKED_DIRS = ["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
               "/sys/kernel/debug", "/sys/kernel/security"]


class ProcTest(SecurityTestCase):
    def test_kernel_settings_cannot_be_written(self):
        self.create("s")
        before = {p: open(p).read() for p in ("/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern",
                                               "/proc/sys/kernel/domainname")}
        for path, value in (("/proc/sys/kernel/hostname", "evil"),
                            ("/proc/sys/kernel/core_pattern", "|/tmp/evil"),
                            ("/proc/sys/kernel/domainname", "evil"),
                            ("/proc/sys/vm/overcommit_memory", "1"),
                            ("/proc/sys/net/ipv4/ip_forward", "1"),
                            ("/proc/sysrq-trigger", "h")):
            with self.subTest(path=path):
                err = self.fails("s", "echo '%s' > %s" % (value, path))
                if os.path.exists(path):
                    self.assertTrue("Read-only file system" in err or "Permission denied" in err, err)
                else:
                    self.assertIn("can't create", err)
        for p, v in before.items():
            self.assertEqual(open(p).read(), v, p)
        self.fails("s", "touch /sys/kernel/x; echo 1 > /sys/kernel/mm/ksm/run", "Read-only file system")

    def test_masked_files_are_the_null_device(self):
        self.create("s")
        for path in MASKED_FILES:
            with self.subTest(path=path):
                r = self.exec("s", "stat -c '%%F %%t:%%T' %s && wc -c < %s" % (path, path))
                if not os.path.exists(path):
                    # Nothing on this kernel to hide; the sandbox has none either.
                    self.assertNotEqual(r["exit_code"], 0, r)
                    continue
                self.assertEqual(r["stdout"], "character special file 1:3\n0\n", r)
        # What is behind the mask on the host is not empty.
        with open("/proc/keys") as f:
            self.assertTrue(f.read())
        for path in MASKED_DIRS:
            with self.subTest(path=path):
                r = self.exec("s", "ls -A %s" % path)
                if os.path.isdir(path):
                    self.assertEqual((r["exit_code"], r["stdout"]), (0, ""), r)
                    # A read-only mount of a removed directory: nothing can
                    # be made in it, whichever check the kernel makes first.
                    self.fails("s", "touch %s/x" % path, ("Read-only file system", "No such file or directory"))
                    self.fails("s", "mkdir %s/y" % path, ("Read-only file system", "No such file or directory"))
                    self.fails("s", "chmod 777 %s" % path, "Read-only file system")
                else:
                    self.assertNotEqual(r["exit_code"], 0, r)

    def test_masks_cannot_be_removed(self):
        self.create("s")
        for path in ("/proc/keys", "/proc/kallsyms", "/proc/acpi", "/sys/firmware", "/proc/sys"):
            with self.subTest(path=path):
                self.fails("s", "umount %s" % path, "Operation not permitted")
                self.fails("s", "umount -l %s" % path, "Operation not permitted")
        self.assertEqual(self.sh("s", "wc -c < /proc/kallsyms; ls -A /sys/firmware"), "0\n")


# --------------------------------------------------------------------------
# Privilege through set-user-ID programs and file capabilities


class PrivilegeTest(SecurityTestCase):
    def test_setuid_root_binary_gives_nothing(self):
        self.create("s")
        root = self.host_root("s")
        # A set-user-ID and set-group-ID copy of busybox owned by root inside.
        self.plant("s", "/tmp/busybox-suid", src=root + "/bin/busybox", mode=0o6755)
        self.assertEqual(self.sh("s", "stat -c '%a %u %g' /tmp/busybox-suid"), "6755 0 0\n")
        for user, uid in (("sandbox", "1000"), ("nobody", "65534")):
            with self.subTest(user=user):
                out = self.sh("s", "/tmp/busybox-suid id -u; /tmp/busybox-suid id -g; "
                                   "/tmp/busybox-suid grep -E '^Cap(Prm|Eff)' /proc/self/status", user=user)
                lines = out.splitlines()
                self.assertEqual(lines[0], uid, out)
                self.assertEqual(lines[1], uid, out)
                self.assertEqual(lines[2:], ["CapPrm:\t0000000000000000", "CapEff:\t0000000000000000"], out)
                # Nor can it become root by other means.
                self.fails("s", "/tmp/busybox-suid su -c 'id -u' root </dev/null", user=user)
                self.fails("s", "/tmp/busybox-suid chown 1000 /etc/passwd", "Operation not permitted", user=user)

    def test_file_capabilities_give_nothing(self):
        self.create("s")
        self.install_probe("s")
        # Root inside (with SETFCAP) puts every capability on a program.
        self.sh("s", "cp /bin/busybox /tmp/busybox-fcap && chmod 755 /tmp/busybox-fcap")
        self.assertEqual(self.probe("s", ["setfcap"])["setfcap"], "OK")
        for user in ("sandbox", "nobody"):
            with self.subTest(user=user):
                out = self.sh("s", "/tmp/busybox-fcap grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status", user=user)
                self.assertEqual(out, "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
                                      "CapAmb:\t0000000000000000\n")
        out = self.sh("s", "/tmp/busybox-fcap grep -E '^Cap(Prm|Bnd)' /proc/self/status")
        self.assertEqual(out, "CapPrm:\t%016x\nCapBnd:\t%016x\n" % (DEFAULT_CAPS, DEFAULT_CAPS))

    def test_cap_drop_all(self):
        sb = self.create("s", cap_drop=["ALL"])
        self.assertEqual(sb["security"]["capabilities"], [])
        st = self.status("s")
        for k in ("CapPrm", "CapEff", "CapBnd", "CapInh", "CapAmb"):
            self.assertEqual(int(st[k], 16), 0, k)
        self.assertEqual(self.sh("s", "id -u"), "0\n")
        self.fails("s", "chown 1000 /etc/passwd", "Operation not permitted")
        self.fails("s", "echo x > /home/sandbox/x", "Permission denied")  # no DAC_OVERRIDE
        self.fails("s", "su sandbox -c true", "Operation not permitted")  # no SETUID
        self.sh("s", "sleep 30 </dev/null >/dev/null 2>&1 &", user="sandbox")
        self.fails("s", "kill -0 $(pidof sleep)", "Operation not permitted")  # no KILL

    def test_capability_names(self):
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"cap_add": ["CAP_NO_SUCH_THING"]}, param="cap_add")
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"cap_add": ["CHOWN", ""]}, param="cap_add")
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"cap_drop": ["bogus"]}, param="cap_drop")
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"cap_add": "ALL"}, param="cap_add")
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        sb = self.create("s", cap_add=["net_raw"], cap_drop=["CAP_CHOWN", "kill"])
        caps = sb["security"]["capabilities"]
        self.assertIn("CAP_NET_RAW", caps)
        self.assertNotIn("CAP_CHOWN", caps)
        self.assertNotIn("CAP_KILL", caps)
        want = (DEFAULT_CAPS | 1 << 13) & ~(1 << 0) & ~(1 << 5)
        self.assertEqual(int(self.status("s")["CapEff"], 16), want)
        self.assertEqual(self.inspect("s")["security"]["capabilities"], caps)

    def test_add_all_without_userns_is_what_host_root_has(self):
        # "ALL" means every capability the host's root has; a host (or a
        # container running the tests) may lack some, which must not make
        # the sandbox fail to start.
        with open("/proc/self/status") as f:
            bnd = int([l.split()[1] for l in f if l.startswith("CapBnd:")][0], 16)
        sb = self.create("s", userns=False, cap_add=["ALL"])
        self.assertEqual(int(self.status("s")["CapEff"], 16), bnd)

    def test_drop_all_then_add_leaves_exactly_the_added(self):
        # Drops apply before adds, as with docker's --cap-drop ALL --cap-add X.
        sb = self.create("s", cap_drop=["ALL"], cap_add=["CHOWN"])
        self.assertEqual(sb["security"]["capabilities"], ["CAP_CHOWN"])
        self.assertEqual(int(self.status("s")["CapEff"], 16), 1 << 0)
        rc, out, err = self.daemon.ctl("run", "--rm", "--cap-drop", "ALL", "--cap-add", "KILL", "--",
                                       "grep", "CapBnd", "/proc/self/status")
        self.assertEqual((rc, out), (0, "CapBnd:\t%016x\n" % (1 << 5)), err)
        rc, out, err = self.daemon.ctl("run", "--rm", "--no-userns", "--seccomp-profile", "unconfined", "--",
                                       "grep", "-E", "^Seccomp:", "/proc/self/status")
        self.assertEqual((rc, out), (0, "Seccomp:\t0\n"), err)


# --------------------------------------------------------------------------
# Entering a sandbox: the runtime binary and what a command inherits


class ExecEntryTest(SecurityTestCase):
    def test_command_inherits_no_daemon_descriptor(self):
        self.create("s")
        # The shell's own descriptors, listed by its children while the
        # shell waits with nothing else open (no pipeline, no command
        # substitution, whose pipes would come and go in the listing).
        out = self.sh("s", "ls /proc/$$/fd; for n in 0 1 2; do readlink /proc/$$/fd/$n; done")
        self.assertEqual(re.sub(r"pipe:\[[0-9]+\]", "pipe", out), "0\n1\n2\npipe\npipe\npipe\n")
        self.assertEqual(self.sh("s", "ls /proc/1/fd; readlink /proc/1/fd/0"), "0\n1\n2\n/dev/null\n")
        self.assertEqual(self.sh("s", "for n in $(seq 3 64); do cd /proc/self/fd/$n 2>/dev/null && echo $n; done; "
                                      "cd /proc/1/fd/3 2>/dev/null && echo init; true"), "")

    def test_working_directory_is_resolved_inside(self):
        self.create("s")
        self.assertEqual(self.sh("s", "for l in $$/cwd $$/root 1/cwd 1/root; do readlink /proc/$l; done"),
                         "/workspace\n/\n/\n/\n")
        self.sh("s", "ln -s / /tmp/up; ln -s /etc /tmp/etc; ln -s /proc/self/cwd /tmp/cwd; ln -s ../../../.. /tmp/dots")
        for cwd, want in (("/../../..", "/"), ("../../../../..", "/"), ("/tmp/up/../..", "/"),
                          ("/tmp/etc", "/etc"), ("/tmp/dots", "/")):
            with self.subTest(cwd=cwd):
                self.assertEqual(self.sh("s", "pwd -P; readlink /proc/$$/cwd", cwd=cwd), "%s\n%s\n" % (want, want))
        # Magic links of /proc lead to whatever a process holds: refused
        # (ELOOP), or absent when that descriptor is not open.
        for cwd in ["/proc/self/fd/%d" % n for n in range(3, 12)] + \
                ["/proc/self/cwd", "/proc/self/root", "/proc/1/root", "/proc/1/cwd/..", "/tmp/cwd",
                 "/proc/thread-self/fd/3", "/proc/thread-self/cwd"]:
            with self.subTest(cwd=cwd):
                reply = self.rpc.call_reply("process.exec", {"sandbox": "s", "cmd": ["pwd"], "cwd": cwd})
                self.assertIn("error", reply, "cwd %s was entered: %r" % (cwd, reply))
                err = reply["error"]
                self.assertIn((err["code"], err.get("data", {}).get("errno")), ((DENIED, 40), (NOT_FOUND, 2)), err)

    def test_chroot_leads_back_to_the_sandbox_root(self):
        # Root inside has SYS_CHROOT; the sandbox root is a pivot_root, not a
        # chroot, so climbing out of a nested chroot ends at the same root.
        self.create("s")
        self.install_probe("s")
        self.assertEqual(self.probe("s", ["chroot_escape"])["chroot_escape"], "OK")
        self.sh("s", "mkdir -p /tmp/j/bin && cp /bin/busybox /tmp/j/bin/ && ln -s busybox /tmp/j/bin/sh")
        self.assertEqual(self.sh("s", "chroot /tmp/j /bin/sh -c 'cd /../../..; /bin/busybox ls /'"), "bin\n")

    def test_daemon_environment_does_not_leak(self):
        canary = "SBX_SECURITY_CANARY_%06x" % random.getrandbits(24)
        os.environ[canary] = "host-secret"
        try:
            d = self.new_daemon()
        finally:
            del os.environ[canary]
        c = d.client()
        c.call("sandbox.create", {"name": "s"})
        env = c.call("process.exec", {"sandbox": "s", "command": "env; cat /proc/1/environ | tr '\\0' '\\n'"})
        self.assertNotIn(canary, env["stdout"])
        self.assertNotIn("host-secret", env["stdout"])
        self.assertIn(canary, open("/proc/%d/environ" % d.pid).read())  # the daemon does have it

    def test_init_binary_cannot_be_written(self):
        for userns in (True, False):
            with self.subTest(userns=userns):
                name = "u" if userns else "n"
                self.create(name, userns=userns)
                self.assertEqual(self.sh(name, "readlink /proc/1/exe"), "/memfd:sandbox-init (deleted)\n")
                self.fails(name, "echo x >> /proc/1/exe", ("Permission denied", "Text file busy",
                                                           "Operation not permitted"))
                self.fails(name, "echo x > /proc/1/exe", ("Permission denied", "Text file busy",
                                                          "Operation not permitted"))
                self.fails(name, "printf x 1<> /proc/1/exe", ("Permission denied", "Text file busy",
                                                             "Operation not permitted"))

    def test_entering_processes_expose_no_host_binary(self):
        # While commands keep entering the sandbox, a process inside watches
        # /proc for one whose executable is a host file and tries to open
        # every executable for writing (CVE-2019-5736).
        self.create("s")
        binaries = {p: sha256(p) for p in (sbxtest.sandboxd_path(), sbxtest.init_path())}
        watcher = ("end=$(( $(date +%s) + 4 )); "
                   "while [ $(date +%s) -lt $end ]; do for p in /proc/[0-9]*; do "
                   "[ $p = /proc/$$ ] && continue; "
                   "l=$(readlink $p/exe 2>/dev/null) || continue; echo \"L $l\"; "
                   "if true 2>/dev/null >> $p/exe; then echo \"W ${p#/proc/} $l\"; fi; "
                   "done; echo R; done")
        c = self.daemon.client(timeout=60)
        rid = c.request("process.exec", {"sandbox": "s", "command": watcher})
        time.sleep(0.2)
        n = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            self.exec("s", ["sleep", "0.02"], user="sandbox" if n % 2 else "root")
            n += 1
        r = c.result(rid)
        self.assertEqual(r["exit_code"], 0, r)
        self.assertIs(r["truncated"], False)
        self.assertGreater(r["stdout"].count("R\n"), 20)
        links = set(l[2:] for l in r["stdout"].splitlines() if l.startswith("L "))
        writes = [l for l in r["stdout"].splitlines() if l.startswith("W ")]
        self.assertGreater(n, 5)
        self.assertIn("/memfd:sandbox-init (deleted)", links)
        self.assertIn("/bin/busybox", links)  # it did see the commands
        self.assertEqual(writes, [], "executables of processes opened for writing")
        for link in links:
            self.assertTrue(link == "/memfd:sandbox-init (deleted)" or link.startswith(("/bin/", "/usr/", "/sbin/")),
                            "a process inside runs %r" % link)
        for p, h in binaries.items():
            self.assertEqual(sha256(p), h, p)


class RuntimeBinaryTest(SecurityTestCase):
    """The CVE-2019-5736 attack itself: a command the daemon starts is a
    script whose interpreter is "#!/proc/self/exe" (in the original attack,
    /bin/sh overwritten so), so the kernel executes whatever binary the
    starting process still runs from. A planted ELF interpreter
    (/lib64/ld-linux-x86-64.so.2) then gets control with /proc/self/exe
    naming that binary, and keeps a handle to reopen it for writing once
    nothing executes it any more (here: when the daemon is stopped, as for
    an upgrade).

    The daemon of these tests runs from a private copy of sandboxd, so that
    only the copy can be damaged."""

    start_daemon = False

    def setUp(self):
        super().setUp()
        payload_binary()  # skip early without a compiler
        self.daemon = CopiedBinaryDaemon()
        self.daemons.append(self.daemon)
        self.addCleanup(self.daemon.cleanup)
        self.daemon.start()
        self.rpc = self.daemon.client()

    LOOP = ("i=0\n"
            "while [ $i -lt 100 ]; do\n"
            "  if printf PWNED 2>/tmp/cve-lasterr 1<>/proc/$$/fd/7; then echo written > /tmp/cve-result; exit 0; fi\n"
            "  i=$((i+1)); sleep 0.05\n"
            "done\n"
            "echo gave-up > /tmp/cve-result\n")

    def attack(self, userns):
        d = self.daemon
        sb = self.create("s", userns=userns)
        root = "/proc/%d/root" % sb["init_pid"]
        before = sha256(d.exe)
        self.sh("s", "mkdir -p /lib64")
        self.plant("s", "/lib64/ld-linux-x86-64.so.2", src=payload_binary(), mode=0o755)
        self.plant("s", "/tmp/cve-loop.sh", self.LOOP, mode=0o755)
        self.plant("s", "/tmp/evil", "#!/proc/self/exe\n", mode=0o755)
        r = self.exec("s", ["/tmp/evil"])
        report = {}
        if os.path.exists(root + "/tmp/cve-report"):
            for line in open(root + "/tmp/cve-report").read().splitlines():
                k, _, v = line.partition("=")
                report[k] = v
        lasterr = ""
        if "handle" in report and int(report["handle"]) >= 0:
            wait_until(lambda: os.path.exists(root + "/tmp/cve-lasterr"), 5)
            time.sleep(0.2)
            lasterr = open(root + "/tmp/cve-lasterr").read()
        # The daemon goes away (an upgrade, a crash); its sandboxes stay.
        d.kill9()
        result = ""
        try:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                if os.path.exists(root + "/tmp/cve-result"):
                    result = open(root + "/tmp/cve-result").read()
                    break
                time.sleep(0.05)
            after = sha256(d.exe)
        finally:
            d.restore_binary()
            d.start()
            self.rpc = d.client()
        return r, report, lasterr, result, before, after

    def test_daemon_binary_cannot_be_overwritten(self):
        r, report, lasterr, result, before, after = self.attack(userns=True)
        self.assertEqual(after, before, "the sandbox overwrote the daemon's binary: exec %r, report %r, %r"
                         % (r, report, lasterr))
        self.assertNotEqual(result.strip(), "written")
        if report.get("exe") == self.daemon.exe:
            # The host binary is owned by an id the sandbox does not map.
            self.assertEqual(report.get("direct"), "13", report)  # EACCES
            self.assertIn("Permission denied", lasterr)

    def test_daemon_binary_cannot_be_overwritten_without_userns(self):
        # userns false makes root inside host root; the runtime binary must
        # still be out of its reach (runc answers this attack with a sealed
        # copy of itself, as sandboxd does for init).
        r, report, lasterr, result, before, after = self.attack(userns=False)
        self.assertEqual(after, before,
                         "a sandbox with userns false overwrote the daemon's binary once the daemon stopped: "
                         "the command the daemon started executed %r through '#!/proc/self/exe' "
                         "(opening it for writing at once: errno %s; loop result %r)"
                         % (report.get("exe"), report.get("direct"), result.strip()))
        self.assertNotEqual(result.strip(), "written")


# --------------------------------------------------------------------------
# Host processes, neighbours


class ProcessTest(SecurityTestCase):
    def test_host_processes_cannot_be_signalled(self):
        self.create("s")
        inside = set(int(p) for p in self.sh("s", "ls /proc | grep -E '^[0-9]+$'").split())
        self.assertIn(1, inside)
        self.assertLess(len(inside), 10)
        self.assertEqual(self.sh("s", "cat /proc/1/comm"), "sandbox-init\n")
        host = {"daemon": self.call("system.info")["pid"], "test runner": os.getpid(),
                "test runner's parent": os.getppid()}
        for what, pid in host.items():
            if pid in inside:
                continue  # the same number names a sandbox process here
            with self.subTest(target=what):
                self.fails("s", "kill -0 %d" % pid, "No such process")
                self.fails("s", "kill -9 %d" % pid, "No such process")
        # Everything root inside can signal at once: only its own processes.
        self.sh("s", "sleep 123 </dev/null >/dev/null 2>&1 &")
        self.exec("s", "kill -9 -1; sleep 0.2")
        self.assertNotIn("sleep 123", self.sh("s", "ps -o args"))
        self.assertTrue(pid_alive(self.daemon.pid))
        self.call("system.ping")
        # Its init does not die of a signal from inside either.
        self.exec("s", "kill -9 1; kill -TERM 1; kill -INT 1; kill -PWR 1; sleep 0.2")
        # Given time to act on them (it would stop once alone), init stays.
        time.sleep(0.5)
        sb = self.inspect("s")
        self.assertEqual(sb["state"], "started")
        self.assertTrue(pid_alive(sb["init_pid"]))
        self.assertEqual(self.sh("s", "echo alive"), "alive\n")

    def test_sandbox_cannot_stall_the_daemon_for_its_neighbours(self):
        # Every command's user and groups are looked up in the sandbox's own
        # /etc/passwd and /etc/group. A sparse /etc/group of half a gigabyte
        # costs the sandbox no disk space; reading it must not keep the
        # daemon from serving everyone else.
        self.create("hostile")
        self.create("neighbour")
        self.sh("hostile", "dd if=/dev/zero of=/tmp/g bs=1M count=0 seek=512 2>/dev/null && cat /etc/group >> /tmp/g "
                           "&& mv /tmp/g /etc/group")
        slow = self.daemon.client(timeout=60)
        rid = slow.request("process.exec", {"sandbox": "hostile", "cmd": ["true"]})
        time.sleep(0.05)
        other = self.daemon.client()
        t = time.monotonic()
        other.call("system.ping")
        ping = time.monotonic() - t
        t = time.monotonic()
        out = other.call("process.exec", {"sandbox": "neighbour", "cmd": ["echo", "served"]})["stdout"]
        neighbour = time.monotonic() - t
        reply = slow.wait(rid)
        self.assertEqual(out, "served\n")
        self.assertLess(ping, 1.0, "the daemon answered system.ping only after %.1f s while a command entered a "
                                   "sandbox with a 512 MiB sparse /etc/group (exec reply: %r)" % (ping, reply))
        self.assertLess(neighbour, 1.0, "an exec in a neighbouring sandbox took %.1f s" % neighbour)

    def test_neighbour_is_invisible(self):
        a = self.create("a")
        b = self.create("b")
        marker = "marker-%08x" % random.getrandbits(32)
        self.sh("b", "echo secret > /workspace/%s; echo secret > /tmp/%s; echo secret > /dev/shm/%s; "
                     "sleep 4321 </dev/null >/dev/null 2>&1 &" % (marker, marker, marker))
        wait_until(lambda: "sleep 4321" in self.sh("b", "ps -o args"), 5)
        self.assertNotEqual(a["security"]["uid_base"], b["security"]["uid_base"])
        self.assertNotIn("4321", self.sh("a", "ps -o args"))
        self.assertEqual(self.sh("a", "find / -xdev -name '%s*' 2>/dev/null; ls /dev/shm /tmp /workspace "
                                      "| grep %s; true" % (marker, marker)), "")
        self.assertEqual(self.sh("a", "cat /proc/[0-9]*/root/workspace/%s /proc/[0-9]*/root/tmp/%s 2>/dev/null; true"
                                 % (marker, marker)), "")
        # The host pid of b's init is no process of a's.
        out = self.sh("a", "cat /proc/%d/cmdline 2>/dev/null | tr '\\0' ' '; true" % b["init_pid"])
        self.assertNotIn(b["id"], out)
        # a's root cannot read b's writable layer through the host ids either:
        # nothing of the host's file system is there to start from.
        self.fails("a", "ls %s" % self.daemon.state_dir, "No such file or directory")


    def test_message_queues_are_the_sandboxs_own(self):
        # /dev/mqueue shows the IPC namespace of whoever mounted it: mounted
        # from the host's, a sandbox's queues would be the host's.
        host_mq = tempfile.mkdtemp(prefix="sbx-mq-")
        self.addCleanup(os.rmdir, host_mq)
        subprocess.run(["mount", "-t", "mqueue", "none", host_mq], check=True)
        self.addCleanup(subprocess.run, ["umount", host_mq])
        for userns in (True, False):
            with self.subTest(userns=userns):
                a = self.create(userns=userns)
                b = self.create(userns=userns)
                marker = "mq-%08x" % random.getrandbits(32)
                self.sh(a["id"], "touch /dev/mqueue/%s && ls /dev/mqueue" % marker)
                self.assertIn(marker, self.sh(a["id"], "ls /dev/mqueue"))
                self.assertNotIn(marker, os.listdir(host_mq))
                self.assertNotIn(marker, self.sh(b["id"], "ls /dev/mqueue"))
                # The queue belongs to the sandbox's IPC namespace, the
                # one its processes use.
                ns_a = os.readlink("/proc/%d/ns/ipc" % a["init_pid"])
                self.assertNotEqual(ns_a, os.readlink("/proc/self/ns/ipc"))


# --------------------------------------------------------------------------
# Ids: the user namespace and what lands on disk


class IdMappingTest(SecurityTestCase):
    def test_host_root_file_is_not_writable_by_root_inside(self):
        self.create("s")
        host = self.plant("s", "/tmp/host-owned", "host\n", mode=0o644, owner=0)
        hostdir = self.host_root("s") + "/tmp/host-dir"
        os.mkdir(hostdir, 0o755)
        self.assertEqual(self.sh("s", "stat -c '%u:%g %U' /tmp/host-owned /tmp/host-dir; cat /tmp/host-owned"),
                         "65534:65534 nobody\n65534:65534 nobody\nhost\n")
        # CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_CHOWN inside do not reach ids
        # the namespace does not map.
        self.fails("s", "echo x >> /tmp/host-owned", "Permission denied")
        self.fails("s", "echo x > /tmp/host-owned", "Permission denied")
        self.fails("s", "chmod 666 /tmp/host-owned", "Operation not permitted")
        self.fails("s", "chown 0:0 /tmp/host-owned", "Operation not permitted")
        self.fails("s", "touch /tmp/host-dir/x", "Permission denied")
        self.fails("s", "chmod 777 /tmp/host-dir", "Operation not permitted")
        st = os.stat(host)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, 0, 0o644))
        with open(host) as f:
            self.assertEqual(f.read(), "host\n")

    def test_files_on_disk_belong_to_the_mapped_ids(self):
        sb = self.create("s", resources={"disk_mb": 0})
        base = sb["security"]["uid_base"]
        self.assertEqual(base % USERNS_SIZE, USERNS_START % USERNS_SIZE)
        self.assertGreaterEqual(base, USERNS_START)
        self.sh("s", "echo r > /tmp/by-root; mkdir /workspace/dir-by-root; echo changed >> /etc/os-release")
        self.sh("s", "echo u > /tmp/by-user; mkdir /home/sandbox/dir-by-user", user="sandbox")
        self.sh("s", "chown 1234:4321 /tmp/by-root")
        upper = os.path.join(self.daemon.state_dir, "sandboxes", sb["id"], "upper")
        expect = {"tmp/by-root": (base + 1234, base + 4321), "workspace/dir-by-root": (base, base),
                  "etc/os-release": (base, base), "tmp/by-user": (base + 1000, base + 1000),
                  "home/sandbox/dir-by-user": (base + 1000, base + 1000)}
        for rel, ids in expect.items():
            with self.subTest(path=rel):
                st = os.lstat(os.path.join(upper, rel))
                self.assertEqual((st.st_uid, st.st_gid), ids)
        # The shared image keeps its own ownership, untouched by the sandbox.
        image = self.call("image.inspect", {"name": sb["image"]})
        rootfs = os.path.join(self.daemon.state_dir, "images", image["id"], "rootfs")
        for rel in ("bin/busybox", "etc/os-release", "etc/passwd"):
            with self.subTest(image_path=rel):
                st = os.lstat(os.path.join(rootfs, rel))
                self.assertEqual((st.st_uid, st.st_gid), (0, 0))
        with open(os.path.join(rootfs, "etc/os-release")) as f:
            self.assertNotIn("changed", f.read())
        # Inside, the same files look root-owned.
        self.assertEqual(self.sh("s", "stat -c %u:%g /bin/busybox /etc/os-release /tmp/by-user"),
                         "0:0\n0:0\n1000:1000\n")
        # And the processes run as the mapped ids on the host.
        st = status_fields(open("/proc/%d/status" % sb["init_pid"]).read())
        self.assertEqual(st["Uid"].split(), [str(base)] * 4)
        self.assertEqual(st["Gid"].split(), [str(base)] * 4)

    def test_each_sandbox_has_its_own_range(self):
        a = self.create("a")
        b = self.create("b")
        c = self.create("c", start=False)
        bases = {n: s["security"]["uid_base"] for n, s in (("a", a), ("b", b), ("c", c))}
        self.assertEqual(len(set(bases.values())), 3, bases)
        for n, base in bases.items():
            self.assertEqual((base - USERNS_START) % USERNS_SIZE, 0, bases)
        for n, s in (("a", a), ("b", b)):
            with open("/proc/%d/uid_map" % s["init_pid"]) as f:
                self.assertEqual(f.read().split(), ["0", str(bases[n]), str(USERNS_SIZE)])
            with open("/proc/%d/gid_map" % s["init_pid"]) as f:
                self.assertEqual(f.read().split(), ["0", str(bases[n]), str(USERNS_SIZE)])
            self.assertEqual(self.sh(n, "cat /proc/self/uid_map").split(), ["0", str(bases[n]), str(USERNS_SIZE)])
        # A stopped sandbox keeps its range (its files on disk carry it).
        self.call("sandbox.stop", {"sandbox": "a"})
        d = self.create("d")
        self.assertNotIn(d["security"]["uid_base"], bases.values())
        # A deleted one frees it.
        self.call("sandbox.delete", {"sandbox": "b", "force": True})
        e = self.create("e")
        self.assertEqual(e["security"]["uid_base"], bases["b"])
        self.sh("e", "test ! -e /workspace/x && touch /workspace/x")

    def test_without_userns_still_confined(self):
        sb = self.create("s", userns=False)
        sec = sb["security"]
        self.assertIs(sec["userns"], False)
        self.assertNotIn("uid_base", sec)
        self.assertEqual(sec["capabilities"], DEFAULT_CAP_NAMES)
        self.assertEqual(sec["seccomp"], "default")
        self.assertEqual(self.sh("s", "cat /proc/self/uid_map /proc/self/gid_map").split(),
                         ["0", "0", "4294967295"] * 2)
        st = self.status("s")
        self.assertEqual((st["Seccomp"], st["NoNewPrivs"]), ("2", "1"))
        for k in ("CapPrm", "CapEff", "CapBnd"):
            self.assertEqual(int(st[k], 16), DEFAULT_CAPS, k)
        self.install_probe("s")
        refused = {n: DEFAULT_REFUSED[n] for n in ("mount", "umount2", "unshare_user", "unshare_mnt", "setns_mnt",
                                                   "clone_newuser", "clone3", "pivot_root", "bpf", "keyctl",
                                                   "kexec_load", "init_module", "open_by_handle_at", "reboot",
                                                   "socket_vsock", "i386_getpid", "x32_getpid")}
        self.assertOutcomes(self.probe("s", list(refused)), refused)
        self.fails("s", "mount -t tmpfs none /tmp", "permission denied")
        self.fails("s", "echo evil > /proc/sys/kernel/hostname", "Read-only file system")
        self.fails("s", "mknod /tmp/sda b 8 0", "Operation not permitted")
        host_status = status_fields(open("/proc/%d/status" % sb["init_pid"]).read())
        self.assertEqual(host_status["Uid"].split(), ["0"] * 4)


# --------------------------------------------------------------------------
# Custom seccomp profiles


class ProfileTest(SecurityTestCase):
    def write_profile(self, name, content):
        path = os.path.join(self.daemon.dir, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path

    NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 71}]}

    def test_profile_errno(self):
        path = self.write_profile("no-mkdir.json", self.NO_MKDIR)
        sb = self.create("s", seccomp_profile=path)
        self.assertEqual(sb["security"]["seccomp"], path)
        self.fails("s", "mkdir /tmp/d", "Protocol error")  # EPROTO, the profile's errno
        self.fails("s", "mkdir /tmp/d", "Protocol error", user="sandbox")
        self.assertEqual(self.sh("s", "touch /tmp/f && echo ok"), "ok\n")
        self.assertEqual(self.status("s")["Seccomp"], "2")
        self.assertEqual(self.status("s", "/proc/1/status")["Seccomp"], "2")
        # Only the native ABI, whatever the profile allows.
        self.install_probe("s")
        self.assertOutcomes(self.probe("s", ["i386_getpid", "x32_getpid", "getpid"]),
                            {"i386_getpid": "ENOSYS", "x32_getpid": "ENOSYS", "getpid": "OK"})

    def test_profile_still_applies_after_daemon_restart(self):
        path = self.write_profile("no-mkdir.json", self.NO_MKDIR)
        self.create("s", seccomp_profile=path)
        self.fails("s", "mkdir /tmp/d", "Protocol error")
        self.daemon.restart()
        self.rpc = self.daemon.client()
        self.assertEqual(self.inspect("s")["security"]["seccomp"], path)
        st = self.status("s")
        self.assertEqual(st["Seccomp"], "2", "a command entered after a daemon restart runs without the "
                                             "sandbox's seccomp profile")
        self.fails("s", "mkdir /tmp/d2", "Protocol error")
        self.assertEqual(self.status("s", user="sandbox")["Seccomp"], "2")

    def test_unusable_profiles_are_refused(self):
        cases = {
            "malformed": self.write_profile("malformed.json", "{not json"),
            "unknown action": self.write_profile("action.json", {"defaultAction": "SCMP_ACT_BOGUS"}),
            "no default action": self.write_profile("nodefault.json", {"syscalls": []}),
            "bad rule": self.write_profile("rule.json", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [17]}),
        }
        for what, path in cases.items():
            with self.subTest(profile=what):
                err = self.assertRpcError(BAD_PARAMS, "sandbox.create", {"name": "p", "seccomp_profile": path},
                                          param="seccomp_profile")
                self.assertIn(path, err["message"])
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"seccomp_profile": "relative/profile.json"},
                            param="seccomp_profile")
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"seccomp_profile": ""}, param="seccomp_profile")
        err = self.assertRpcError(NOT_FOUND, "sandbox.create",
                                  {"seccomp_profile": os.path.join(self.daemon.dir, "missing.json")})
        self.assertEqual(err["data"]["errno"], 2)
        # Nothing of the refused sandboxes is left.
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertEqual(self.daemon.sandbox_ids_on_disk(), [])


if __name__ == "__main__":
    main()
