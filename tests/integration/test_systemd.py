"""sandboxd under a service manager: a listening socket passed in
LISTEN_FDS (socket activation, as sandboxd.socket does it), readiness
sent to NOTIFY_SOCKET (Type=notify), and log lines that keep their
priority when stderr is the journal (JOURNAL_STREAM).

The test plays the service manager: it binds and holds the socket and
the notification socket itself, so it needs no systemd."""

import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

import sbxtest
from sbxtest import Daemon, DaemonError, RpcClient, SandboxdTestCase, wait_until

# As systemd does it: the socket on fd 3 and LISTEN_PID the pid that
# execs the daemon (sandboxd runs itself from a sealed copy, and execve
# keeps the pid). argv[1] is where the socket is in the wrapper. Not a
# shell: dash cannot name a descriptor above 9 in a redirection, and the
# test runner may hold more than that open.
WRAPPER = """import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


class ManagedDaemon(Daemon):
    """A daemon started the way systemd starts the packaged unit: the
    socket is bound by us and passed as fd 3, readiness comes back on a
    datagram socket, and the socket outlives the daemon."""

    def __init__(self, passed="stream", env=None, **kw):
        super().__init__(**kw)
        self.config_socket = os.path.join(self.dir, "configured.sock")
        self.passed = passed
        self.extra_env = dict(env or {})
        self.listener = None
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        if passed == "stream":
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(self.socket)
            os.chmod(self.socket, 0o660)
            self.listener.listen(128)
        elif passed == "dgram":
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.listener.bind(self.socket)

    def command(self):
        cmd = super().command()
        # What the configuration says is overridden by what is passed.
        cmd[cmd.index("--socket") + 1] = self.config_socket
        return cmd

    def start(self, timeout=sbxtest.START_TIMEOUT):
        self.starts += 1
        self.start_failed = True
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path, **self.extra_env)
        pass_fds = ()
        argv = self.command()
        if self.listener is not None:
            env["LISTEN_FDS"] = "1"
            env["LISTEN_FDNAMES"] = "sandboxd.socket"
            fd = self.listener.fileno()
            pass_fds = (fd,)
            argv = [sys.executable, "-c", WRAPPER, str(fd)] + argv
        with open(self.log_path, "ab") as log:
            log.write(b"===== start %d =====\n" % self.starts)
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env, pass_fds=pass_fds)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise DaemonError("sandboxd exited with status %s during start-up:\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            try:
                with RpcClient(self.socket, timeout=2) as c:
                    c.call("system.ping")
                break
            except (OSError, sbxtest.ConnectionClosed, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise DaemonError("sandboxd did not serve within %.0f s:\n%s" % (timeout, self.log_tail()))
            time.sleep(0.05)
        self._info = None
        self.start_failed = False
        return self

    def notifications(self, timeout=0.0):
        """Datagrams received so far (waiting up to timeout for the first)."""
        out = []
        self.notify.settimeout(timeout if timeout else 0.0)
        try:
            while True:
                out.append(self.notify.recv(4096).decode())
                self.notify.settimeout(0.0)
        except (BlockingIOError, socket.timeout):
            pass
        return out

    def cleanup(self):
        super().cleanup()
        for s in (self.listener, self.notify):
            if s is not None:
                s.close()


class SocketActivationTest(SandboxdTestCase):
    start_daemon = False

    def managed(self, start=True, **kw):
        d = ManagedDaemon(**kw)
        self.daemons.append(d)
        self.addCleanup(d.cleanup)
        if start:
            d.start()
        return d

    def test_serves_the_passed_socket_and_reports_ready(self):
        d = self.managed()
        self.assertFalse(os.path.exists(d.config_socket), "the configured socket was bound as well")
        rc, out, err = d.ctl("info")
        self.assertEqual(rc, 0, err)
        self.assertIn("passed by the service manager", d.log())
        self.assertIn("serving on %s" % d.socket, d.log())
        msgs = d.notifications(timeout=5)
        self.assertTrue(msgs, "no notification")
        fields = dict(l.split("=", 1) for l in msgs[0].splitlines())
        self.assertEqual(fields.get("READY"), "1", msgs)
        self.assertEqual(fields.get("MAINPID"), str(d.pid), msgs)
        self.assertIn("serving on %s" % d.socket, fields.get("STATUS", ""))
        # What the daemon starts does not inherit the socket.
        with open("/proc/%d/fdinfo/3" % d.pid) as f:
            flags = int([l for l in f if l.startswith("flags:")][0].split()[1], 8)
        self.assertTrue(flags & 0o2000000, "fd 3 is not close-on-exec")

    def test_socket_outlives_a_restart_and_queued_clients_are_served(self):
        d = self.managed()
        self.daemon = d
        rpc = d.client()
        sb = self.create(client=rpc)
        init_pid = self.inspect(sb["id"], client=rpc)["init_pid"]
        d.notifications(timeout=5)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.notifications(timeout=5)[:1],
                         ["STOPPING=1\nSTATUS=shutting down; sandboxes keep running"])
        # The socket is the service manager's: it stays, and a client
        # connecting while no daemon runs waits instead of failing.
        self.assertTrue(os.path.exists(d.socket), "the daemon removed the passed socket")
        waiting = RpcClient(d.socket, timeout=60)
        rid = waiting.request("sandbox.inspect", {"sandbox": sb["id"]})
        d.start()
        reply = waiting.wait(rid)
        waiting.close()
        self.assertEqual(reply["result"]["state"], "started", reply)
        self.assertEqual(reply["result"]["init_pid"], init_pid, "the sandbox was not adopted")
        r = self.exec(sb["id"], ["echo", "still here"], client=d.client())
        self.assertEqual(r["stdout"], "still here\n")

    def test_unusable_descriptor_fails_start_up(self):
        d = self.managed(start=False, passed="dgram")
        with self.assertRaises(DaemonError) as cm:
            d.start(timeout=10)
        self.assertIn("exited with status 1", str(cm.exception))
        self.assertIn("is not a listening unix stream socket", d.log())
        self.assertEqual(d.notifications(), [], "READY sent by a daemon that did not start")

    def test_without_activation_the_daemon_binds_its_own_socket(self):
        # LISTEN_PID of another process (a parent's variables leaking down)
        # is not activation.
        d = self.managed(start=False, passed=None, env={"LISTEN_FDS": "1", "LISTEN_PID": "1"})
        d.command = lambda: Daemon.command(d)
        self.daemon = d
        d.start()
        self.assertNotIn("passed by the service manager", d.log())
        self.assertEqual(oct(os.stat(d.socket).st_mode & 0o777), "0o660")
        d.stop()
        self.assertFalse(os.path.exists(d.socket), "its own socket is removed at exit")


class JournalTest(SandboxdTestCase):
    start_daemon = False

    def start_with_stream(self, stream_of_log):
        d = ManagedDaemon(passed=None)
        d.command = lambda: Daemon.command(d)
        self.daemons.append(d)
        self.addCleanup(d.cleanup)
        # JOURNAL_STREAM names the stream systemd connected to stderr;
        # here the log file stands in for it.
        with open(d.log_path, "ab"):
            pass
        st = os.stat(d.log_path if stream_of_log else "/dev/null")
        d.extra_env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        d.start()
        self.daemon = d
        return d

    def test_priorities_when_stderr_is_the_journal(self):
        d = self.start_with_stream(True)
        d.ctl("inspect", "no-such-sandbox")  # a failed call: logged at debug
        d.stop()
        lines = [l for l in d.log().splitlines() if not l.startswith("=====")]
        self.assertTrue(lines)
        for l in lines:
            self.assertRegex(l, r"^<[3467]>(error|warn|info|debug): ", lines)
        self.assertTrue([l for l in lines if l.startswith("<6>info: sandboxd ")], lines)
        self.assertTrue([l for l in lines if l.startswith("<7>debug: ")], lines)

    def test_plain_lines_when_stderr_is_elsewhere(self):
        d = self.start_with_stream(False)
        d.stop()
        lines = [l for l in d.log().splitlines() if not l.startswith("=====")]
        self.assertTrue(lines)
        for l in lines:
            self.assertRegex(l, r"^\d{4}-\d\d-\d\dT[0-9:.]+Z sandboxd\[\d+\] (error|warn|info|debug): ", l)


if __name__ == "__main__":
    sbxtest.main()
