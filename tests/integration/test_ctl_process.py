"""sandboxctl exec -d, exec -it (driven through tmux), logs, ps, kill and
the session verbs."""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from sbxtest import SandboxdTestCase, main, sandboxctl_path, wait_until


class CtlProcessTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.sb = self.create(name="box")["id"]

    def ok(self, *args, **kw):
        rc, out, err = self.ctl(*args, **kw)
        self.assertEqual(rc, 0, (args, out, err))
        return out

    def test_detach_logs_ps_kill(self):
        cmd_id = self.ok("exec", "-d", "box", "--", "sh", "-c", "echo hello; echo oops >&2; sleep 300").strip()
        self.assertRegex(cmd_id, "^[0-9a-f]{12}$")
        wait_until(lambda: self.ctl("logs", "box", cmd_id)[1] == "hello\n", timeout=10)
        rc, out, err = self.ctl("logs", "box", cmd_id)
        self.assertEqual((rc, out, err), (0, "hello\n", "oops\n"))
        table = self.ok("ps", "box")
        self.assertEqual(table.splitlines()[0].split(), ["CMD_ID", "PID", "STATUS", "STARTED", "COMMAND"])
        row = [l for l in table.splitlines() if l.startswith(cmd_id)]
        self.assertEqual(len(row), 1)
        self.assertIn("running", row[0])
        self.ok("kill", "-s", "KILL", "box", cmd_id)
        w = self.call("process.wait", {"sandbox": "box", "cmd_id": cmd_id, "timeout_s": 10})
        self.assertEqual(w["signal"], "KILL")
        self.assertIn("killed (KILL)", self.ok("ps", "box"))
        self.assertCtlFails(self.ctl("kill", "box", cmd_id))
        self.assertCtlFails(self.ctl("logs", "box", "000000000000"))
        self.assertCtlFails(self.ctl("logs", "box"))
        # 'ps' alone still lists sandboxes.
        self.assertIn("box", self.ok("ps"))

    def test_logs_follow_ends_with_the_command(self):
        cmd_id = self.ok("exec", "-d", "box", "--", "sh", "-c",
                         "for i in 1 2 3; do echo $i; sleep 0.2; done; echo e >&2").strip()
        rc, out, err = self.ctl("logs", "-f", "box", cmd_id, timeout=30)
        self.assertEqual((rc, out, err), (0, "1\n2\n3\n", "e\n"))

    def test_logs_keep_binary_output(self):
        cmd_id = self.ok("exec", "-d", "box", "--", "sh", "-c", "printf '\\000\\377'").strip()
        self.call("process.wait", {"sandbox": "box", "cmd_id": cmd_id})
        rc, out, err = self.ctl("logs", "box", cmd_id, input=b"")
        self.assertEqual(out, b"\x00\xff")

    def test_session_verbs(self):
        self.assertEqual(self.ok("session", "create", "box", "s1"), "s1\n")
        self.assertEqual(self.ok("session", "exec", "box", "s1", "--", "cd /tmp && export V=7"), "")
        rc, out, err = self.ctl("session", "exec", "box", "s1", "--", 'echo "$(pwd) $V"; exit 3')
        self.assertEqual((rc, out), (3, "/tmp 7\n"))
        cmd_id = self.ok("session", "exec", "-d", "box", "s1", "--", "sleep 300").strip()
        self.assertRegex(cmd_id, "^[0-9a-f]{12}$")
        table = self.ok("session", "ls", "box")
        self.assertRegex(table, r"s1\s+/tmp\s+1\s")
        self.ok("session", "rm", "box", "s1")
        self.assertCtlFails(self.ctl("session", "exec", "box", "s1", "true"))
        self.assertCtlFails(self.ctl("session", "frobnicate", "box"))


@unittest.skipUnless(shutil.which("tmux"), "needs tmux to drive an interactive terminal")
class CtlTerminalTest(SandboxdTestCase):
    """sandboxctl exec -it in a real terminal: tmux is the user."""

    def setUp(self):
        super().setUp()
        self.create(name="box")
        self.tmp = tempfile.mkdtemp(prefix="sbxtty-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # Its own server on a socket in the test's directory: nothing of it
        # stays in /tmp/tmux-UID after the test.
        self.server = os.path.join(self.tmp, "tmux.sock")
        self.exit_file = os.path.join(self.tmp, "exit")
        shell = ("'%s' --socket '%s' exec -it box -- /bin/sh; echo EXIT=$? > '%s'; sleep 60"
                 % (sandboxctl_path(), self.daemon.socket, self.exit_file))
        self.tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", shell)
        self.addCleanup(self.tmux, "kill-server", check=False)
        self.wait_screen(r"/workspace #\s*$")

    def tmux(self, *args, check=True):
        env = dict(os.environ, TERM="xterm")
        env.pop("TMUX", None)
        return subprocess.run(["tmux", "-S", self.server] + list(args), capture_output=True, text=True,
                              check=check, env=env, timeout=20)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def wait_screen(self, pattern, timeout=15):
        wait_until(lambda: any(re.search(pattern, l) for l in self.screen().splitlines()), timeout=timeout,
                   message="screen never matched %r:\n%s" % (pattern, self.screen()))

    def type(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)
        self.tmux("send-keys", "-t", "t", "Enter")

    def test_type_read_ctrl_c_resize_exit(self):
        self.type("echo $((6*7))")
        self.wait_screen(r"^42$")
        self.type("tty")
        self.wait_screen(r"^/dev/pts/\d+$")
        # Ctrl-C reaches the program on the terminal, not sandboxctl.
        self.type("sleep 300")
        time.sleep(0.5)
        self.tmux("send-keys", "-t", "t", "C-c")
        self.type("echo after-interrupt")
        self.wait_screen(r"^after-interrupt$")
        self.assertFalse(os.path.exists(self.exit_file))
        self.type("stty size")
        self.wait_screen(r"^30 100$")
        # The window size follows the outer terminal (SIGWINCH).
        self.tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
        time.sleep(0.3)
        self.type("stty size")
        self.wait_screen(r"^40 120$")
        self.type("exit 3")
        wait_until(lambda: os.path.exists(self.exit_file) and open(self.exit_file).read().strip(), timeout=10)
        with open(self.exit_file) as f:
            self.assertEqual(f.read().strip(), "EXIT=3")


if __name__ == "__main__":
    main()
