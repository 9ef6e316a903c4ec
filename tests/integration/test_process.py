"""Background commands: process.spawn, logs (with follow), wait, kill, list,
stdin and resize, against a real daemon, including its restart."""

import os
import select
import unittest
import signal
import time

from sbxtest import RpcError, SandboxdTestCase, main, wait_until

NOT_FOUND, EXISTS, BAD_STATE, LIMIT, DENIED, TIMEOUT = 1, 2, 3, 4, 5, 6

# Volume tests: nothing in them depends on the cgroup version, and under the
# guest's emulated CPU they would take minutes each; the host runs them.
heavy = unittest.skipIf(os.environ.get("SBX_IN_VM"), "volume test: runs on the host, not under emulation")
BAD_PARAMS = -32602


class ProcessTestCase(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.sb = self.create()["id"]

    def spawn(self, command, client=None, **params):
        params["sandbox"] = self.sb
        if isinstance(command, str):
            params["command"] = command
        else:
            params["cmd"] = list(command)
        return self.call("process.spawn", params, client=client)

    def wait(self, cmd_id, timeout_s=30, client=None):
        return self.call("process.wait", {"sandbox": self.sb, "cmd_id": cmd_id, "timeout_s": timeout_s},
                         client=client, timeout=timeout_s + 10)

    def logs(self, cmd_id, **params):
        params.update(sandbox=self.sb, cmd_id=cmd_id)
        return self.call("process.logs", params)

    def all_logs(self, cmd_id, encoding="utf-8"):
        out, err, offset = "", "", 0
        while True:
            r = self.logs(cmd_id, offset=offset, encoding=encoding)
            out += r["stdout"]
            err += r["stderr"]
            offset = r["offset"]
            if not r["more"]:
                return out, err, r

    def listed(self, cmd_id):
        for p in self.call("process.list", {"sandbox": self.sb})["processes"]:
            if p["cmd_id"] == cmd_id:
                return p
        return None

    def sandbox_pids(self):
        """Host pids of every process in the sandbox's cgroup tree."""
        from sbxtest import cgroup_procs_recursive
        return cgroup_procs_recursive(self.daemon.sandbox_cgroup(self.sb))


class SpawnTest(ProcessTestCase):
    def test_spawn_returns_at_once_and_wait_gives_the_exit_code(self):
        # The command cannot end before it is told to: the answer came first.
        r = self.spawn("while [ ! -e /tmp/go ]; do sleep 0.05; done; echo done; exit 7")
        self.assertRegex(r["cmd_id"], "^[0-9a-f]{12}$")
        self.assertGreater(r["pid"], 1)
        p = self.listed(r["cmd_id"])
        self.assertFalse(p["exited"])
        self.assertIsNone(p["exit_code"])
        self.sh(self.sb, "touch /tmp/go")
        w = self.wait(r["cmd_id"])
        self.assertEqual((w["exited"], w["exit_code"], w["signal"], w["timed_out"]), (True, 7, None, False))
        p = self.listed(r["cmd_id"])
        self.assertTrue(p["exited"])
        self.assertEqual(p["exit_code"], 7)
        self.assertEqual(p["argv"][:2], ["/bin/sh", "-c"])
        self.assertTrue(p["started_at"].endswith("Z"))
        self.assertTrue(p["finished_at"].endswith("Z"))

    def test_stdout_and_stderr_stay_separate(self):
        r = self.spawn("for i in 1 2 3; do echo out$i; echo err$i >&2; done")
        self.wait(r["cmd_id"])
        out, err, last = self.all_logs(r["cmd_id"])
        self.assertEqual(out, "out1\nout2\nout3\n")
        self.assertEqual(err, "err1\nerr2\nerr3\n")
        self.assertTrue(last["exited"])
        self.assertEqual(last["exit_code"], 0)
        self.assertEqual(last["dropped_bytes"], 0)

    def test_logs_from_an_offset_return_only_new_output(self):
        r = self.spawn(["sh", "-c", "echo one; sleep 1; echo two"])
        wait_until(lambda: self.logs(r["cmd_id"])["stdout"] == "one\n", timeout=10)
        first = self.logs(r["cmd_id"])
        self.wait(r["cmd_id"])
        second = self.logs(r["cmd_id"], offset=first["offset"])
        self.assertEqual(second["stdout"], "two\n")
        self.assertGreater(second["offset"], first["offset"])
        third = self.logs(r["cmd_id"], offset=second["offset"])
        self.assertEqual((third["stdout"], third["stderr"]), ("", ""))
        # An offset far beyond the end is not an error: nothing is there.
        self.assertEqual(self.logs(r["cmd_id"], offset=10 ** 12)["stdout"], "")

    def test_base64_logs_keep_every_byte(self):
        import base64
        r = self.spawn("printf '\\000\\377\\n'")
        self.wait(r["cmd_id"])
        got = self.logs(r["cmd_id"], encoding="base64")
        self.assertEqual(base64.b64decode(got["stdout"]), b"\x00\xff\n")
        self.assertIn("\ufffd", self.logs(r["cmd_id"])["stdout"])

    @heavy
    def test_multibyte_characters_are_never_split(self):
        # 300 KiB of two-byte characters crosses many read and record
        # boundaries; none may turn into U+FFFD.
        r = self.spawn("i=0; while [ $i -lt 3000 ]; do printf '%s' "
                       "'ééééééééééééééééééééééééééééééééééééééééééééééééé'; i=$((i+1)); done")
        self.wait(r["cmd_id"])
        out, _, _ = self.all_logs(r["cmd_id"])
        self.assertNotIn("\ufffd", out)
        self.assertEqual(len(out), 3000 * 49)

    def test_stdin_is_dev_null_without_a_pipe(self):
        r = self.spawn("cat; echo rc=$?")
        w = self.wait(r["cmd_id"], timeout_s=10)
        self.assertEqual(w["exit_code"], 0)
        self.assertEqual(self.logs(r["cmd_id"])["stdout"], "rc=0\n")
        self.assertRpcError(BAD_STATE, "process.stdin", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "data": "x"})

    def test_stdin_pipe(self):
        r = self.spawn(["sh", "-c", "while read l; do echo got:$l; done; echo end"], stdin=True)
        self.call("process.stdin", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "data": "a\nb\n"})
        wait_until(lambda: "got:b" in self.logs(r["cmd_id"])["stdout"], timeout=10)
        self.assertFalse(self.listed(r["cmd_id"])["exited"])
        self.call("process.stdin", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "data": "Ywo=",
                                    "encoding": "base64", "eof": True})
        self.assertEqual(self.wait(r["cmd_id"])["exit_code"], 0)
        self.assertEqual(self.logs(r["cmd_id"])["stdout"], "got:a\ngot:b\ngot:c\nend\n")
        # Input to a command that has ended.
        self.assertRpcError(BAD_STATE, "process.stdin", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "data": "x"})

    def test_stdin_text_is_written_then_closed(self):
        r = self.spawn("tr a-z A-Z", stdin="hello\n")
        self.wait(r["cmd_id"])
        self.assertEqual(self.logs(r["cmd_id"])["stdout"], "HELLO\n")

    def test_timeout_kills_the_whole_tree(self):
        r = self.spawn("setsid sleep 300 & sleep 300", timeout_s=0.5)
        w = self.wait(r["cmd_id"])
        self.assertTrue(w["timed_out"])
        self.assertEqual(w["signal"], "KILL")
        self.assertEqual(w["exit_code"], 128 + 9)
        wait_until(lambda: not [p for p in self.sandbox_pids() if _cmdline(p).startswith(b"sleep\0")], timeout=10,
                   message="setsid'd grandchild survived the timeout")

    def test_a_command_that_closes_stdout_but_keeps_running(self):
        r = self.spawn("echo before; exec >&- 2>&-; sleep 1; exit 4")
        wait_until(lambda: self.logs(r["cmd_id"])["stdout"] == "before\n", timeout=10)
        self.assertFalse(self.listed(r["cmd_id"])["exited"])
        self.assertEqual(self.wait(r["cmd_id"])["exit_code"], 4)

    def test_background_children_keep_logging_after_the_command_ends(self):
        r = self.spawn("(sleep 1; echo late) & echo early")
        w = self.wait(r["cmd_id"])
        self.assertEqual(w["exit_code"], 0)
        wait_until(lambda: self.logs(r["cmd_id"])["stdout"] == "early\nlate\n", timeout=10)

    def test_wait_timeout(self):
        r = self.spawn("sleep 30")
        t = time.monotonic()
        self.assertRpcError(TIMEOUT, "process.wait", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "timeout_s": 0.3})
        self.assertLess(time.monotonic() - t, 5)
        self.call("process.kill", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "signal": "KILL"})
        self.assertEqual(self.wait(r["cmd_id"])["signal"], "KILL")

    def test_bad_input(self):
        r = self.spawn("true")
        self.wait(r["cmd_id"])
        sb = self.sb
        for method in ("process.logs", "process.wait", "process.kill", "process.stdin", "process.resize"):
            with self.subTest(method=method):
                self.assertRpcError(NOT_FOUND, method, {"sandbox": sb, "cmd_id": "000000000000", "data": "x",
                                                        "rows": 5, "cols": 5})
                self.assertRpcError(BAD_PARAMS, method, {"sandbox": sb}, param="cmd_id")
        self.assertRpcError(BAD_STATE, "process.kill", {"sandbox": sb, "cmd_id": r["cmd_id"]})
        self.assertRpcError(BAD_PARAMS, "process.kill", {"sandbox": sb, "cmd_id": r["cmd_id"], "signal": "NOPE"},
                            param="signal")
        self.assertRpcError(BAD_STATE, "process.resize", {"sandbox": sb, "cmd_id": r["cmd_id"], "rows": 5, "cols": 5})
        self.assertRpcError(BAD_PARAMS, "process.spawn", {"sandbox": sb, "cmd": []}, param="cmd")
        self.assertRpcError(BAD_PARAMS, "process.spawn", {"sandbox": sb, "command": "x", "attach": True},
                            param="attach")
        self.assertRpcError(BAD_PARAMS, "process.exec", {"sandbox": sb, "command": "x", "stdin": True},
                            param="stdin")
        self.assertRpcError(BAD_PARAMS, "process.logs", {"sandbox": sb, "cmd_id": r["cmd_id"], "offset": -1},
                            param="offset")
        self.assertRpcError(NOT_FOUND, "process.list", {"sandbox": "nosuch"})
        self.call("sandbox.stop", {"sandbox": sb})
        self.assertRpcError(BAD_STATE, "process.spawn", {"sandbox": sb, "command": "true"})
        # What ran is still listed, and its log readable, while stopped.
        self.assertEqual(self.listed(r["cmd_id"])["exit_code"], 0)
        self.logs(r["cmd_id"])

    def test_unclaimed_commands_keep_a_missing_program_error(self):
        r = self.spawn(["/no/such/program"])
        w = self.wait(r["cmd_id"])
        self.assertEqual(w["exit_code"], 127)
        self.assertIn("/no/such/program", self.logs(r["cmd_id"])["stderr"])


class KillTest(ProcessTestCase):
    def test_kill_reaches_the_whole_tree(self):
        r = self.spawn("setsid sleep 301 & (trap '' HUP; exec sleep 302) & sleep 303")
        wait_until(lambda: len([p for p in self.sandbox_pids() if _cmdline(p).startswith(b"sleep\0")]) == 3,
                   timeout=10)
        k = self.call("process.kill", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "signal": "KILL"})
        self.assertGreaterEqual(k["signaled"], 3)
        w = self.wait(r["cmd_id"])
        self.assertEqual(w["signal"], "KILL")
        wait_until(lambda: not [p for p in self.sandbox_pids() if _cmdline(p).startswith(b"sleep\0")], timeout=10)

    def test_a_process_that_ignores_term(self):
        before = set(self.sandbox_pids())
        r = self.spawn("trap '' TERM; echo ready; while :; do sleep 0.1; done")
        wait_until(lambda: self.logs(r["cmd_id"])["stdout"] == "ready\n", timeout=10)
        self.call("process.kill", {"sandbox": self.sb, "cmd_id": r["cmd_id"]})
        time.sleep(0.5)
        self.assertFalse(self.listed(r["cmd_id"])["exited"])
        self.call("process.kill", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "signal": "SIGKILL"})
        w = self.wait(r["cmd_id"])
        self.assertEqual((w["exit_code"], w["signal"]), (137, "KILL"))
        # The shell is gone; its last `sleep` may still be on its way out
        # (an exiting process has no command line but is still in the
        # group), and a kill reaches whatever of the command is left.
        wait_until(lambda: not set(self.sandbox_pids()) - before, timeout=10)
        self.assertRpcError(BAD_STATE, "process.kill", {"sandbox": self.sb, "cmd_id": r["cmd_id"]})

    def test_term_by_number_and_name(self):
        for sig in ("TERM", "15", "SIGTERM", "INT"):
            with self.subTest(sig=sig):
                r = self.spawn("sleep 300")
                wait_until(lambda: [p for p in self.sandbox_pids() if _cmdline(p).startswith(b"sleep\0")], timeout=10)
                self.call("process.kill", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "signal": sig})
                self.assertIn(self.wait(r["cmd_id"])["signal"], ("TERM", "INT"))

    def test_stop_ends_running_commands_and_records_it(self):
        r = self.spawn("sleep 300")
        self.call("sandbox.stop", {"sandbox": self.sb, "timeout_s": 1})
        w = self.wait(r["cmd_id"])
        self.assertTrue(w["exited"])
        self.assertIsNotNone(w["signal"])


class FollowTest(ProcessTestCase):
    def follow(self, client, cmd_id, offset=0, encoding="utf-8"):
        rid = client.request("process.logs", {"sandbox": self.sb, "cmd_id": cmd_id, "follow": True,
                                              "offset": offset, "encoding": encoding})
        head = client.result(rid)
        self.assertTrue(head["following"])
        out = {"stdout": "", "stderr": ""}
        deadline = time.monotonic() + 30
        while True:
            while client.notifications:
                n = client.notifications.pop(0)
                if n["params"]["cmd_id"] != cmd_id:
                    continue
                if n["method"] == "process.exit":
                    return out, n["params"]
                self.assertEqual(n["method"], "process.output")
                out[n["params"]["stream"]] += n["params"]["data"]
            client._pump(deadline)

    def test_follow_streams_output_then_exit(self):
        r = self.spawn("echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c; exit 2")
        c = self.daemon.client()
        out, ex = self.follow(c, r["cmd_id"])
        self.assertEqual(out, {"stdout": "a\nc\n", "stderr": "b\n"})
        self.assertEqual((ex["exit_code"], ex["signal"]), (2, None))
        c.close()

    def test_follow_of_an_ended_command_replays_and_ends(self):
        r = self.spawn("echo x; echo y >&2")
        self.wait(r["cmd_id"])
        c = self.daemon.client()
        out, ex = self.follow(c, r["cmd_id"])
        self.assertEqual(out, {"stdout": "x\n", "stderr": "y\n"})
        self.assertEqual(ex["exit_code"], 0)
        # From an offset: only what follows it.
        first = self.logs(r["cmd_id"])
        self.assertEqual(self.follow(c, r["cmd_id"], offset=first["offset"])[0], {"stdout": "", "stderr": ""})
        c.close()

    @heavy
    def test_follow_a_flood_while_it_is_written(self):
        # 32 MiB of yes, followed live: every byte arrives, in order, and the
        # follower ends with the command (a record half written at the end
        # of the log must be waited for, not re-read in a loop).
        size = 32 * 1024 * 1024
        r = self.spawn("yes | head -c %d" % size, log_limit_mb=64)
        c = self.daemon.client(timeout=60)
        out, ex = self.follow(c, r["cmd_id"])
        self.assertEqual(len(out["stdout"]), size)
        self.assertEqual(out["stdout"][:4], "y\ny\n")
        self.assertEqual(out["stdout"].count("y\n"), size // 2)
        self.assertEqual(ex["exit_code"], 0)
        self.assertEqual(ex["dropped_bytes"], 0)
        c.close()

    def test_many_followers_and_one_that_vanishes(self):
        r = self.spawn("i=0; while [ $i -lt 50 ]; do echo line$i; i=$((i+1)); sleep 0.02; done")
        base = self.daemon.settled_fd_count(self.rpc)
        gone = self.daemon.client()
        gone.request("process.logs", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "follow": True})
        gone.close()  # a client that disconnects while following
        clients = [self.daemon.client() for _ in range(3)]
        for c in clients:
            out, ex = self.follow(c, r["cmd_id"])
            self.assertEqual(out["stdout"], "".join("line%d\n" % i for i in range(50)))
            c.close()
        self.wait(r["cmd_id"])
        self.assertLessEqual(self.daemon.settled_fd_count(self.rpc), base)

    @heavy
    def test_a_follower_that_does_not_read_holds_nothing_up(self):
        # 64 MiB to a client that never reads: the daemon stays responsive
        # and its memory does not follow the output.
        r = self.spawn("head -c 67108864 /dev/zero | tr '\\0' 'x'")
        lazy = self.daemon.client()
        lazy.request("process.logs", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "follow": True})
        self.wait(r["cmd_id"], timeout_s=60)
        t = time.monotonic()
        self.call("system.ping")
        self.assertLess(time.monotonic() - t, 1)
        rss = _rss_kib(self.daemon.pid)
        # (AddressSanitizer keeps freed memory in quarantine, so that the
        # buffers the output passed through stay resident: no bound there.)
        if "libasan" not in open("/proc/%d/maps" % self.daemon.pid).read():
            self.assertLess(rss, 64 * 1024, "daemon RSS %d KiB" % rss)
        lazy.close()
        self.call("system.ping")


class BoundsTest(ProcessTestCase):
    daemon_options = {"config": {"command_log_mb": "4"}}

    @heavy
    def test_100mb_in_a_second_keeps_the_newest_and_counts_the_rest(self):
        r = self.spawn("head -c 104857600 /dev/zero | tr '\\0' 'y'; echo; echo tail-marker")
        w = self.wait(r["cmd_id"], timeout_s=60)
        self.assertEqual(w["exit_code"], 0)
        out, _, last = self.all_logs(r["cmd_id"])
        self.assertTrue(out.endswith("\ntail-marker\n"))
        self.assertLessEqual(len(out), 4 * 1024 * 1024)
        self.assertGreater(len(out), 3 * 1024 * 1024)
        self.assertGreater(last["dropped_bytes"], 95 * 1024 * 1024)
        self.assertEqual(last["dropped_bytes"] + len(out), 104857600 + len("\ntail-marker\n"))
        # Blocks on disk stay near the cap, whatever the file's length says.
        path = os.path.join(self.daemon.state_dir, "sandboxes", self.sb, "cmds", r["cmd_id"], "output")
        st = os.stat(path)
        self.assertGreater(st.st_size, 100 * 1024 * 1024)
        self.assertLess(st.st_blocks * 512, 5 * 1024 * 1024)
        # An offset inside what was dropped starts at the oldest output kept.
        self.assertEqual(self.logs(r["cmd_id"], offset=0, max_bytes=16)["stdout"], "y" * 16)

    @heavy
    def test_commands_beyond_the_kept_number_drop_the_oldest_ended(self):
        ids = [self.spawn("true")["cmd_id"] for _ in range(260)]
        for i in ids[-5:]:
            self.wait(i)
        listed = [p["cmd_id"] for p in self.call("process.list", {"sandbox": self.sb})["processes"]]
        self.assertEqual(len(listed), 256)
        self.assertEqual(listed[-1], ids[-1])
        self.assertNotIn(ids[0], listed)


class TerminalTest(ProcessTestCase):
    def test_tty_with_stdin_and_resize(self):
        r = self.spawn(["/bin/sh"], tty=True, rows=30, cols=100)
        self.call("process.stdin", {"sandbox": self.sb, "cmd_id": r["cmd_id"],
                                    "data": "stty size; tty; echo $((6*7))\n"})
        wait_until(lambda: "42" in self.logs(r["cmd_id"])["stdout"], timeout=10)
        out = self.logs(r["cmd_id"])["stdout"]
        self.assertIn("30 100", out)
        self.assertIn("/dev/pts/", out)
        self.call("process.resize", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "rows": 50, "cols": 120})
        self.call("process.stdin", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "data": "stty size; exit 5\n"})
        self.assertEqual(self.wait(r["cmd_id"])["exit_code"], 5)
        self.assertIn("50 120", self.logs(r["cmd_id"])["stdout"])
        self.assertRpcError(BAD_PARAMS, "process.resize", {"sandbox": self.sb, "cmd_id": r["cmd_id"], "rows": 0,
                                                           "cols": 5}, param="rows")

    def test_attach_hands_over_the_terminal(self):
        rid = self.rpc.request("process.spawn", {"sandbox": self.sb, "cmd": ["/bin/sh"], "tty": True,
                                                 "attach": True})
        res = self.rpc.result(rid)
        self.assertTrue(res["fd"])
        fd = self.rpc.take_fd()
        try:
            os.write(fd, b"echo hi-$((1+2)); exit 7\n")
            out = b""
            while True:
                r, _, _ = select.select([fd], [], [], 10)
                self.assertTrue(r, "no output from the terminal: %r" % out)
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the program has gone
                    break
                if not chunk:
                    break
                out += chunk
            self.assertIn(b"hi-3", out)
        finally:
            os.close(fd)
        self.assertEqual(self.wait(res["cmd_id"])["exit_code"], 7)
        self.assertRpcError(BAD_STATE, "process.logs", {"sandbox": self.sb, "cmd_id": res["cmd_id"]})

    def test_closing_an_attached_terminal_hangs_up_the_program(self):
        rid = self.rpc.request("process.spawn", {"sandbox": self.sb, "cmd": ["/bin/sh"], "tty": True,
                                                 "attach": True})
        res = self.rpc.result(rid)
        os.close(self.rpc.take_fd())
        w = self.wait(res["cmd_id"])
        self.assertEqual(w["signal"], "HUP")

    def test_the_terminal_comes_from_the_sandbox_devpts(self):
        r = self.spawn(["/bin/sh", "-c", "ls /dev/pts; tty"], tty=True)
        self.wait(r["cmd_id"])
        out = self.logs(r["cmd_id"])["stdout"]
        self.assertIn("/dev/pts/0", out)


class RestartTest(ProcessTestCase):
    def test_restart_while_20_commands_run_loses_nothing(self):
        ids = [self.spawn("i=0; while [ $i -lt 30 ]; do echo $i; i=$((i+1)); sleep 0.1; done; exit 3")["cmd_id"]
               for _ in range(20)]
        piped = self.spawn(["sh", "-c", "while read l; do echo got:$l; done; exit 9"], stdin=True)["cmd_id"]
        self.call("process.stdin", {"sandbox": self.sb, "cmd_id": piped, "data": "before\n"})
        time.sleep(0.5)
        self.rpc.close()
        self.daemon.restart(hard=True)
        self.rpc = self.daemon.client()
        for i in ids:
            w = self.wait(i)
            self.assertEqual((w["exit_code"], w.get("lost")), (3, None), i)
            self.assertEqual(self.logs(i)["stdout"], "".join("%d\n" % n for n in range(30)), i)
        # Its stdin pipe survived: write to it through the new daemon.
        self.call("process.stdin", {"sandbox": self.sb, "cmd_id": piped, "data": "after\n", "eof": True})
        self.assertEqual(self.wait(piped)["exit_code"], 9)
        self.assertEqual(self.logs(piped)["stdout"], "got:before\ngot:after\n")
        # No zombie and no monitor left once everything ended.
        wait_until(lambda: not _monitors_of(self.daemon), timeout=10, message="monitors left running")
        self.assertEqual([p for p in self.sandbox_pids() if _state(p) == "Z"], [])

    def test_a_command_running_across_a_clean_restart_is_followed(self):
        # It goes on only when told to, however slow the restart is.
        r = self.spawn("while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after-restart; exit 4")
        self.rpc.close()
        self.daemon.stop()
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertFalse(self.listed(r["cmd_id"])["exited"])
        self.sh(self.sb, "touch /tmp/go")
        self.assertEqual(self.wait(r["cmd_id"])["exit_code"], 4)
        self.assertEqual(self.logs(r["cmd_id"])["stdout"], "after-restart\n")


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _monitors_of(daemon):
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().strip() != "sandbox-monitor":
                        continue
                if daemon.state_dir.encode() in _environ_or_fds(int(d)):
                    found.append(int(d))
            except OSError:
                pass
    return found


def _environ_or_fds(pid):
    """Paths the monitor has open: its log lives in the daemon's state dir."""
    out = b""
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out += os.readlink("/proc/%d/fd/%s" % (pid, fd)).encode() + b"\n"
            except OSError:
                pass
    except OSError:
        pass
    return out


if __name__ == "__main__":
    main()
