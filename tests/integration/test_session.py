"""Sessions: cwd and exported variables carry over between commands, and
nothing a command does can wedge the session."""

import os
import signal
import time

from sbxtest import SandboxdTestCase, main, pid_alive, wait_until, cgroup_procs_recursive

NOT_FOUND, EXISTS, BAD_STATE = 1, 2, 3
BAD_PARAMS = -32602


class SessionTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.sb = self.create()["id"]
        self.call("session.create", {"sandbox": self.sb, "session_id": "main"})

    def run_in(self, command, session="main", **params):
        params.update(sandbox=self.sb, session_id=session, command=command)
        return self.call("session.exec", params, timeout=60)

    def test_cd_and_export_carry_over(self):
        r = self.run_in("mkdir -p /tmp/w && cd /tmp/w && export FOO='a b' && BAR=unexported")
        self.assertEqual((r["exit_code"], r["cwd"]), (0, "/tmp/w"))
        r = self.run_in('pwd; echo "$FOO|${BAR:-unset}"')
        self.assertEqual(r["stdout"], "/tmp/w\na b|unset\n")
        # A failing command still leaves its state behind.
        r = self.run_in("cd /; export N=1; false")
        self.assertEqual(r["exit_code"], 1)
        self.assertEqual(self.run_in("pwd; echo $N")["stdout"], "/\n1\n")
        # exit N keeps both the code and the state.
        r = self.run_in("cd /tmp; exit 3")
        self.assertEqual((r["exit_code"], r["cwd"]), (3, "/tmp"))

    def test_sessions_are_independent(self):
        self.call("session.create", {"sandbox": self.sb, "session_id": "other", "env": {"X": "it's"}, "cwd": "/"})
        self.run_in("cd /tmp; export X=mine")
        r = self.run_in("pwd; echo $X", session="other")
        self.assertEqual(r["stdout"], "/\nit's\n")

    def test_stdout_and_stderr_and_code(self):
        r = self.run_in("echo out; echo err >&2; exit 4")
        self.assertEqual((r["stdout"], r["stderr"], r["exit_code"], r["signal"]), ("out\n", "err\n", 4, None))
        self.assertRegex(r["cmd_id"], "^[0-9a-f]{12}$")
        # The same output through process.logs.
        logs = self.call("process.logs", {"sandbox": self.sb, "cmd_id": r["cmd_id"]})
        self.assertEqual((logs["stdout"], logs["stderr"]), ("out\n", "err\n"))

    def test_heredoc_and_multiline_script(self):
        script = "cat <<'EOF' > /tmp/h.txt\nline one\n$NOT_EXPANDED\nEOF\nfor i in 1 2; do\n  echo n$i\ndone\ncat /tmp/h.txt"
        r = self.run_in(script)
        self.assertEqual(r["stdout"], "n1\nn2\nline one\n$NOT_EXPANDED\n")
        # An unterminated heredoc is the shell's error, not a hang.
        r = self.run_in("cat <<EOF\nnever ends")
        self.assertEqual(r["exit_code"], 0)

    def test_nothing_wedges_the_session(self):
        t = time.monotonic()
        r = self.run_in("cat; read x; echo read-done")  # stdin is /dev/null
        self.assertEqual(r["stdout"], "read-done\n")
        r = self.run_in("sleep 300 & echo started")  # a background job
        self.assertEqual(r["stdout"], "started\n")
        self.assertLess(time.monotonic() - t, 10)
        self.assertEqual(self.run_in("echo still-fine")["stdout"], "still-fine\n")

    def test_quick_commands_that_leave_a_child_always_finish(self):
        # The command ends before its monitor does (the child holds the
        # output open): only the recorded status can tell the daemon, even
        # when it lands before the daemon watches for it.
        for i in range(30):
            with self.subTest(i=i):
                r = self.call("session.exec", {"sandbox": self.sb, "session_id": "main",
                                               "command": "sleep 3 & echo %d" % i}, timeout=10)
                self.assertEqual((r["exit_code"], r["stdout"]), (0, "%d\n" % i))

    def test_run_async_and_a_concurrent_command(self):
        r = self.call("session.exec", {"sandbox": self.sb, "session_id": "main", "run_async": True,
                                       "command": "echo server-up; while [ ! -e /tmp/stop ]; do sleep 0.05; done; "
                                                  "echo server-done"})
        self.assertNotIn("exit_code", r)
        # A second command does not wait for the first, which runs until told.
        self.assertEqual(self.run_in("echo quick")["stdout"], "quick\n")
        listed = self.call("session.list", {"sandbox": self.sb})["sessions"]
        self.assertEqual([s["running"] for s in listed if s["session_id"] == "main"], [[r["cmd_id"]]])
        self.run_in("touch /tmp/stop")
        w = self.call("process.wait", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "timeout_s": 30})
        self.assertEqual(w["exit_code"], 0)
        logs = self.call("process.logs", {"sandbox": self.sb, "cmd_id": r["cmd_id"]})
        self.assertEqual(logs["stdout"], "server-up\nserver-done\n")

    def test_timeout(self):
        r = self.run_in("echo before; sleep 30", timeout_s=0.5)
        self.assertTrue(r["timed_out"])
        self.assertEqual(r["signal"], "KILL")
        self.assertEqual(r["stdout"], "before\n")

    def test_delete_ends_commands_but_not_detached_ones(self):
        self.call("session.exec", {"sandbox": self.sb, "session_id": "main", "run_async": True,
                                   "command": "setsid sleep 401 & (trap '' HUP; exec sleep 402) & sleep 403 & sleep 404"})
        cg = self.daemon.sandbox_cgroup(self.sb)

        def sleeps():
            out = set()
            for p in cgroup_procs_recursive(cg):
                try:
                    with open("/proc/%d/cmdline" % p, "rb") as f:
                        args = f.read().split(b"\0")
                except OSError:
                    continue
                if args[0] == b"sleep":
                    out.add(args[1].decode())
            return out

        wait_until(lambda: sleeps() == {"401", "402", "403", "404"}, timeout=10)
        r = self.call("session.delete", {"sandbox": self.sb, "session_id": "main"})
        self.assertGreaterEqual(r["killed"], 2)
        wait_until(lambda: sleeps() == {"401", "402"}, timeout=10,
                   message="after session.delete: %r" % (sleeps(),))
        self.assertRpcError(NOT_FOUND, "session.exec", {"sandbox": self.sb, "session_id": "main", "command": "true"})

    def test_bad_input(self):
        sb = self.sb
        self.assertRpcError(EXISTS, "session.create", {"sandbox": sb, "session_id": "main"})
        self.assertRpcError(BAD_PARAMS, "session.create", {"sandbox": sb, "session_id": "bad id"}, param="session_id")
        self.assertRpcError(BAD_PARAMS, "session.create", {"sandbox": sb, "session_id": "x", "env": {"A-B": "1"}},
                            param="env")
        self.assertRpcError(BAD_PARAMS, "session.create", {"sandbox": sb, "session_id": "x", "cwd": "rel"},
                            param="cwd")
        self.assertRpcError(NOT_FOUND, "session.exec", {"sandbox": sb, "session_id": "nope", "command": "true"})
        self.assertRpcError(BAD_PARAMS, "session.exec", {"sandbox": sb, "session_id": "main"}, param="command")
        self.assertRpcError(NOT_FOUND, "session.delete", {"sandbox": sb, "session_id": "nope"})
        self.assertRpcError(NOT_FOUND, "session.list", {"sandbox": "nosuch"})
        generated = self.call("session.create", {"sandbox": sb})["session_id"]
        self.assertTrue(generated)
        self.call("sandbox.stop", {"sandbox": sb})
        self.assertRpcError(BAD_STATE, "session.exec", {"sandbox": sb, "session_id": "main", "command": "true"})

    def test_state_survives_daemon_restart(self):
        self.run_in("cd /tmp && export KEEP=yes")
        self.rpc.close()
        self.daemon.restart(hard=True)
        self.rpc = self.daemon.client()
        self.assertEqual(self.run_in("pwd; echo $KEEP")["stdout"], "/tmp\nyes\n")
        self.daemon.restart(hard=False)
        self.rpc = self.daemon.client()
        self.assertEqual(self.run_in("pwd; echo $KEEP")["stdout"], "/tmp\nyes\n")

    def assertSessionFresh(self, session="main"):
        self.assertEqual(self.call("session.create", {"sandbox": self.sb, "session_id": session})["session_id"],
                         session)
        self.assertEqual(self.run_in("pwd; echo ${KEEP:-unset}", session=session)["stdout"], "/workspace\nunset\n")

    def test_sessions_end_when_the_sandbox_stops(self):
        # A backend creates its sessions again after every start, with the
        # ids it used before.
        self.call("session.create", {"sandbox": self.sb, "session_id": "other"})
        self.run_in("cd /tmp && export KEEP=yes")
        self.call("sandbox.stop", {"sandbox": self.sb})
        self.assertEqual(self.call("session.list", {"sandbox": self.sb})["sessions"], [])
        self.assertRpcError(BAD_STATE, "session.create", {"sandbox": self.sb, "session_id": "main"})
        self.call("sandbox.start", {"sandbox": self.sb})
        self.assertEqual(self.call("session.list", {"sandbox": self.sb})["sessions"], [])
        self.assertRpcError(NOT_FOUND, "session.exec", {"sandbox": self.sb, "session_id": "main", "command": "true"})
        self.assertSessionFresh("main")
        self.assertSessionFresh("other")
        # And again across a restart of the daemon while it is stopped.
        self.call("sandbox.stop", {"sandbox": self.sb})
        self.rpc.close()
        self.daemon.restart(hard=True)
        self.rpc = self.daemon.client()
        self.call("sandbox.start", {"sandbox": self.sb})
        self.assertSessionFresh("main")

    def test_sessions_end_when_the_sandbox_stopped_while_the_daemon_was_down(self):
        self.run_in("cd /tmp && export KEEP=yes")
        init = self.inspect(self.sb)["init_pid"]
        self.rpc.close()
        self.daemon.kill9()
        os.kill(init, signal.SIGKILL)
        wait_until(lambda: not pid_alive(init), 5)
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.inspect(self.sb)["state"], "stopped")
        self.call("sandbox.start", {"sandbox": self.sb})
        self.assertSessionFresh("main")


if __name__ == "__main__":
    main()
