"""process.exec: output, exit status, encodings, stdin, env, cwd, user, timeouts."""

import base64
import hashlib
import os
import time

from sbxtest import RpcError, SandboxdTestCase, main, pid_alive, wait_until

NOT_FOUND, BAD_STATE, TIMEOUT = 1, 3, 6


class ExecTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.sb = self.create("ex", env={"SBX_ENV": "from-create", "SHARED": "create"})
        self.sid = self.sb["id"]

    def x(self, cmd, **kw):
        return self.exec("ex", cmd, **kw)

    # result shape, stdout/stderr, exit codes
    def test_result_fields(self):
        r = self.x(["echo", "hello"])
        self.assertEqual(set(r), {"exit_code", "signal", "stdout", "stderr", "timed_out", "truncated",
                                  "duration_ms", "pid"})
        self.assertEqual(r["exit_code"], 0)
        self.assertIsNone(r["signal"])
        self.assertEqual(r["stdout"], "hello\n")
        self.assertEqual(r["stderr"], "")
        self.assertIs(r["timed_out"], False)
        self.assertIs(r["truncated"], False)
        self.assertIsInstance(r["duration_ms"], int)
        self.assertGreaterEqual(r["duration_ms"], 0)
        self.assertIsInstance(r["pid"], int)
        self.assertGreater(r["pid"], 1)

    def test_stdout_and_stderr_are_separate(self):
        r = self.x("echo out1; echo err1 >&2; echo out2; printf err2 >&2")
        self.assertEqual(r["stdout"], "out1\nout2\n")
        self.assertEqual(r["stderr"], "err1\nerr2")

    def test_exit_codes(self):
        for code in (0, 1, 2, 42, 126, 127, 255):
            with self.subTest(code=code):
                r = self.x("exit %d" % code)
                self.assertEqual((r["exit_code"], r["signal"]), (code, None))
        self.assertEqual(self.x(["false"])["exit_code"], 1)

    def test_signal_deaths(self):
        for sig, num in (("KILL", 9), ("TERM", 15), ("SEGV", 11), ("INT", 2), ("HUP", 1), ("USR1", 10),
                         ("ABRT", 6)):
            with self.subTest(sig=sig):
                r = self.x(["sh", "-c", "kill -%s $$" % sig])
                self.assertEqual((r["exit_code"], r["signal"]), (128 + num, sig))
                self.assertIs(r["timed_out"], False)

    def test_command_not_found(self):
        r = self.x(["no-such-command", "arg"])
        self.assertEqual(r["exit_code"], 127)
        self.assertIn("no-such-command", r["stderr"])
        r = self.x(["/etc/passwd"])
        self.assertEqual(r["exit_code"], 126)

    def test_argv_is_not_shell_interpreted(self):
        r = self.x(["echo", "a  b", "$HOME", "*", "; exit 3", "'q'"])
        self.assertEqual(r["stdout"], "a  b $HOME * ; exit 3 'q'\n")
        self.assertEqual(r["exit_code"], 0)

    def test_command_is_run_by_sh(self):
        r = self.x("for i in 1 2 3; do printf $i; done; echo; echo $0")
        self.assertEqual(r["stdout"], "123\n/bin/sh\n")

    def test_by_id_and_name(self):
        self.assertEqual(self.exec(self.sid, ["hostname"])["stdout"], "ex\n")
        self.assertEqual(self.exec("ex", ["hostname"])["stdout"], "ex\n")

    def test_pid_is_host_pid(self):
        r = self.x("echo $$")
        self.assertNotEqual(int(r["stdout"]), r["pid"])
        self.assertGreater(r["pid"], 1)

    def test_duration(self):
        r = self.x(["sleep", "1"])
        self.assertGreaterEqual(r["duration_ms"], 900)
        self.assertLess(r["duration_ms"], 5000)

    def test_in_stopped_sandbox(self):
        self.call("sandbox.stop", {"sandbox": "ex"})
        err = self.assertRpcError(BAD_STATE, "process.exec", {"sandbox": "ex", "cmd": ["true"]})
        self.assertIn("ex", err["message"])

    def test_in_missing_sandbox(self):
        self.assertRpcError(NOT_FOUND, "process.exec", {"sandbox": "missing", "cmd": ["true"]})

    # output limits and encodings
    def test_max_output_bytes_truncates(self):
        r = self.x("yes | head -c 100000; yes e | head -c 50000 >&2", max_output_bytes=10)
        self.assertEqual(r["stdout"], "y\ny\ny\ny\ny\n")
        self.assertEqual(r["stderr"], "e\ne\ne\ne\ne\n")
        self.assertIs(r["truncated"], True)
        self.assertEqual(r["exit_code"], 0)

    def test_max_output_exact_fit_is_not_truncated(self):
        r = self.x("printf 0123456789", max_output_bytes=10)
        self.assertEqual(r["stdout"], "0123456789")
        self.assertIs(r["truncated"], False)
        r = self.x("printf 01234567890", max_output_bytes=10)
        self.assertEqual(r["stdout"], "0123456789")
        self.assertIs(r["truncated"], True)

    def test_max_output_zero(self):
        r = self.x("echo something; echo else >&2", max_output_bytes=0)
        self.assertEqual((r["stdout"], r["stderr"], r["truncated"]), ("", "", True))
        r = self.x(["true"], max_output_bytes=0)
        self.assertEqual((r["stdout"], r["truncated"]), ("", False))

    def test_default_output_limit(self):
        r = self.x("head -c 3000000 /dev/zero | tr '\\0' z")
        self.assertEqual(len(r["stdout"]), 1048576)
        self.assertEqual(set(r["stdout"]), {"z"})
        self.assertIs(r["truncated"], True)

    def test_truncation_with_base64(self):
        r = self.x("head -c 1000 /dev/zero", max_output_bytes=7, encoding="base64")
        self.assertEqual(base64.b64decode(r["stdout"]), b"\0" * 7)
        self.assertIs(r["truncated"], True)

    def test_base64_all_byte_values(self):
        script = "printf '%s'" % "".join("\\%03o" % b for b in range(256))
        r = self.x(script, encoding="base64")
        self.assertEqual(base64.b64decode(r["stdout"], validate=True), bytes(range(256)))
        self.assertEqual(r["stderr"], "")

    def test_base64_stderr(self):
        r = self.x("printf '\\377\\000x' >&2", encoding="base64")
        self.assertEqual(base64.b64decode(r["stderr"]), b"\xff\x00x")
        self.assertEqual(r["stdout"], "")

    def test_base64_large_binary_exact(self):
        self.sh("ex", "head -c 700001 /dev/urandom > /tmp/blob")
        digest = self.sh("ex", "sha256sum /tmp/blob").split()[0]
        r = self.x(["cat", "/tmp/blob"], encoding="base64")
        data = base64.b64decode(r["stdout"], validate=True)
        self.assertEqual(len(data), 700001)
        self.assertEqual(hashlib.sha256(data).hexdigest(), digest)
        self.assertIs(r["truncated"], False)

    def test_invalid_utf8_becomes_replacement_character(self):
        r = self.x("printf 'a\\377b\\376\\375c'")
        self.assertEqual(r["stdout"], "a\ufffdb\ufffd\ufffdc")
        r = self.x("printf '\\303' >&2")   # a truncated two-byte sequence
        self.assertEqual(r["stderr"], "\ufffd")
        r = self.x("printf '\\300\\257'")  # overlong encoding of '/'
        self.assertNotIn("/", r["stdout"])
        self.assertTrue(set(r["stdout"]) <= {"\ufffd"}, r["stdout"])

    def test_valid_utf8_is_preserved(self):
        text = "héllo wörld € 😀 日本"
        r = self.x(["printf", "%s", text])
        self.assertEqual(r["stdout"], text)

    def test_json_escapes_round_trip(self):
        text = "".join(chr(i) for i in range(1, 128)) + "\u2028\u2029\ufeff\"\\/\U0010ffff"
        r = self.x(["printf", "%s", text])
        self.assertEqual(r["stdout"], text)
        r = self.x(["cat"], stdin=text)
        self.assertEqual(r["stdout"], text)

    def test_utf8_is_default_encoding(self):
        self.assertEqual(self.x("printf '\\377'", encoding="utf-8")["stdout"], "\ufffd")
        self.assertEqual(self.x("printf '\\377'")["stdout"], "\ufffd")

    # stdin
    def test_stdin_text(self):
        r = self.x(["cat"], stdin="hello\nworld\n")
        self.assertEqual(r["stdout"], "hello\nworld\n")

    def test_stdin_unicode_and_no_newline(self):
        r = self.x(["cat"], stdin="ünï\tcode€")
        self.assertEqual(r["stdout"], "ünï\tcode€")
        r = self.x(["wc", "-c"], stdin="ünï")
        self.assertEqual(r["stdout"].strip(), str(len("ünï".encode())))

    def test_no_stdin_means_eof(self):
        t0 = time.monotonic()
        r = self.x(["cat"])
        self.assertEqual((r["stdout"], r["exit_code"]), ("", 0))
        self.assertLess(time.monotonic() - t0, 5)
        r = self.x(["cat"], stdin="")
        self.assertEqual((r["stdout"], r["exit_code"]), ("", 0))

    def test_large_stdin(self):
        data = "0123456789abcdef" * 131072  # 2 MiB
        r = self.x("sha256sum", stdin=data)
        self.assertEqual(r["stdout"].split()[0], hashlib.sha256(data.encode()).hexdigest())

    def test_stdin_not_read_does_not_hang(self):
        r = self.x(["true"], stdin="x" * (4 * 1024 * 1024), timeout_s=20)
        self.assertEqual((r["exit_code"], r["timed_out"]), (0, False))

    def test_strings_with_nul_are_not_truncated(self):
        # JSON strings may hold U+0000; a C string cannot. The daemon must
        # refuse such a value or pass it on whole, never cut it short.
        with self.subTest(param="stdin"):
            reply = self.rpc.call_reply("process.exec", {"sandbox": "ex", "cmd": ["cat"], "stdin": "a\u0000b",
                                                         "encoding": "base64"})
            if "error" in reply:
                self.assertEqual((reply["error"]["code"], reply["error"]["data"]["param"]), (-32602, "stdin"))
            else:
                self.assertEqual(base64.b64decode(reply["result"]["stdout"]), b"a\0b",
                                 "stdin was cut at the NUL byte")
        with self.subTest(param="cmd"):
            self.assertRpcError(-32602, "process.exec", {"sandbox": "ex", "cmd": ["echo", "a\u0000b"]}, param="cmd")
        with self.subTest(param="env"):
            self.assertRpcError(-32602, "process.exec", {"sandbox": "ex", "cmd": ["true"], "env": {"X": "a\u0000b"}},
                                param="env")
        with self.subTest(param="name"):
            self.assertRpcError(-32602, "sandbox.create", {"name": "ok\u0000/../evil"}, param="name")

    # environment
    def test_default_environment(self):
        env = dict(l.split("=", 1) for l in self.x(["env"])["stdout"].splitlines())
        self.assertEqual(env["PATH"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self.assertEqual(env["HOSTNAME"], "ex")
        self.assertEqual(env["HOME"], "/root")
        self.assertEqual(env["USER"], "root")
        self.assertEqual(env["SBX_ENV"], "from-create")

    def test_exec_env(self):
        r = self.x('echo "$FOO|$SPACED|$UNI|$SHARED|$SBX_ENV"',
                   env={"FOO": "bar", "SPACED": "a b  c", "UNI": "ü€", "SHARED": "exec"})
        self.assertEqual(r["stdout"], "bar|a b  c|ü€|exec|from-create\n")

    def test_exec_env_overrides_path_and_home(self):
        r = self.x('echo "$PATH|$HOME"', env={"PATH": "/bin", "HOME": "/tmp"})
        self.assertEqual(r["stdout"], "/bin|/tmp\n")

    def test_exec_env_does_not_stick(self):
        self.x(["true"], env={"ONCE": "1"})
        self.assertEqual(self.x('echo "[$ONCE]"')["stdout"], "[]\n")

    # working directory
    def test_default_cwd_is_workdir(self):
        self.assertEqual(self.x(["pwd"])["stdout"], "/workspace\n")

    def test_cwd_absolute(self):
        self.assertEqual(self.x(["pwd"], cwd="/tmp")["stdout"], "/tmp\n")
        self.assertEqual(self.x(["pwd"], cwd="/")["stdout"], "/\n")

    def test_cwd_relative_to_workdir(self):
        self.sh("ex", "mkdir -p /workspace/sub/deeper")
        self.assertEqual(self.x(["pwd"], cwd="sub")["stdout"], "/workspace/sub\n")
        self.assertEqual(self.x(["pwd"], cwd="sub/deeper")["stdout"], "/workspace/sub/deeper\n")

    def test_cwd_relative_to_custom_workdir(self):
        self.create("wd", workdir="/srv/app")
        self.sh("wd", "mkdir /srv/app/lib")
        self.assertEqual(self.exec("wd", ["pwd"])["stdout"], "/srv/app\n")
        self.assertEqual(self.exec("wd", ["pwd"], cwd="lib")["stdout"], "/srv/app/lib\n")

    def test_cwd_missing(self):
        err = self.assertRpcError(NOT_FOUND, "process.exec", {"sandbox": "ex", "cmd": ["pwd"], "cwd": "/nope"})
        self.assertIn("/nope", err["message"])
        self.assertRpcError(NOT_FOUND, "process.exec", {"sandbox": "ex", "cmd": ["pwd"], "cwd": "nope"})

    def test_cwd_cannot_escape_root(self):
        self.assertEqual(self.x(["pwd"], cwd="../../../..")["stdout"], "/\n")

    # users
    def ids(self, user):
        """(uid, gid, supplementary groups) of a process run as user."""
        out = self.x("id -u; id -g; grep '^Groups:' /proc/self/status", user=user)["stdout"].splitlines()
        return int(out[0]), int(out[1]), sorted(int(g) for g in out[2].split()[1:])

    def test_user_by_name(self):
        uid, gid, groups = self.ids("sandbox")
        self.assertEqual((uid, gid), (1000, 1000))
        self.assertIn(100, groups)   # member of "users" in the image's /etc/group
        self.assertEqual(self.x(["id", "-un"], user="sandbox")["stdout"], "sandbox\n")
        self.assertEqual(self.ids("nobody")[:2], (65534, 65534))
        self.assertEqual(self.ids("root")[:2], (0, 0))

    def test_user_by_uid(self):
        self.assertEqual(self.x(["id", "-u"], user="1000")["stdout"], "1000\n")
        self.assertEqual(self.x(["id", "-g"], user="1000")["stdout"], "1000\n")
        self.assertEqual(self.x(["id", "-u"], user="0")["stdout"], "0\n")

    def test_user_uid_gid(self):
        self.assertEqual(self.x("echo $(id -u):$(id -g)", user="1000:100")["stdout"], "1000:100\n")
        self.assertEqual(self.x("echo $(id -u):$(id -g)", user="sandbox:users")["stdout"], "1000:100\n")
        self.assertEqual(self.x("echo $(id -u):$(id -g)", user="1234:5678")["stdout"], "1234:5678\n")
        self.assertEqual(self.x("echo $(id -u):$(id -g)", user="4321")["stdout"], "4321:4321\n")

    def test_user_home_and_user_env(self):
        self.assertEqual(self.x('echo "$HOME $USER"', user="sandbox")["stdout"], "/home/sandbox sandbox\n")

    def test_user_unknown(self):
        err = self.assertRpcError(NOT_FOUND, "process.exec", {"sandbox": "ex", "cmd": ["id"], "user": "nosuch"})
        self.assertIn("nosuch", err["message"])
        self.assertRpcError(NOT_FOUND, "process.exec", {"sandbox": "ex", "cmd": ["id"], "user": "sandbox:nogrp"})

    def test_user_default_from_create(self):
        self.create("asuser", user="sandbox")
        self.assertEqual(self.exec("asuser", ["id", "-un"])["stdout"], "sandbox\n")
        self.assertEqual(self.exec("asuser", ["id", "-un"], user="root")["stdout"], "root\n")

    def test_empty_user_is_not_root(self):
        # create refuses user "" (-32602); exec must not quietly read it as root
        # when the sandbox's own user is someone else.
        self.create("unpriv", user="sandbox")
        reply = self.rpc.call_reply("process.exec", {"sandbox": "unpriv", "cmd": ["id", "-u"], "user": ""})
        if "error" in reply:
            self.assertEqual(reply["error"]["code"], -32602, reply)
            self.assertEqual(reply["error"]["data"]["param"], "user", reply)
        else:
            self.assertEqual(reply["result"]["stdout"], "1000\n", "exec with user \"\" ran as uid %s in a "
                             "sandbox whose user is 'sandbox'" % reply["result"]["stdout"].strip())

    def test_non_root_cannot_write_root_files(self):
        r = self.x("echo x > /etc/passwd", user="sandbox")
        self.assertNotEqual(r["exit_code"], 0)
        self.assertIn("Permission denied", r["stderr"])
        self.assertEqual(self.x("touch /home/sandbox/ok && echo ok", user="sandbox")["stdout"], "ok\n")

    # timeouts
    def test_timeout_kills(self):
        t0 = time.monotonic()
        r = self.x(["sleep", "30"], timeout_s=0.5)
        elapsed = time.monotonic() - t0
        self.assertIs(r["timed_out"], True)
        self.assertEqual((r["exit_code"], r["signal"]), (137, "KILL"))
        self.assertGreaterEqual(r["duration_ms"], 450)
        self.assertLess(elapsed, 5)

    def test_timeout_not_reached(self):
        r = self.x("echo fine", timeout_s=10)
        self.assertEqual((r["stdout"], r["timed_out"], r["exit_code"]), ("fine\n", False, 0))

    def test_timeout_keeps_output_so_far(self):
        r = self.x("echo before; echo err >&2; sleep 30", timeout_s=0.5)
        self.assertIs(r["timed_out"], True)
        self.assertEqual((r["stdout"], r["stderr"]), ("before\n", "err\n"))

    def test_timeout_kills_whole_tree(self):
        script = ("setsid sleep 1001 & (sleep 1002 &); sh -c 'trap \"\" HUP TERM; sleep 1003' </dev/null >/dev/null 2>&1 & "
                  "setsid sh -c 'sleep 1004 & sleep 1005' & sleep 1006")
        r = self.x(script, timeout_s=1)
        self.assertIs(r["timed_out"], True)
        self.assertEqual((r["exit_code"], r["signal"]), (137, "KILL"))

        def none_left():
            out = self.sh("ex", "ps -o args")
            return not any("sleep 100" in l for l in out.splitlines())
        wait_until(none_left, 5, message="processes of the timed-out command are still alive: %s"
                   % self.sh("ex", "ps -o pid,stat,args"))
        # Nothing of it left in the sandbox's cgroup either (only sandbox-init).
        procs = []
        for root, dirs, files in os.walk(self.daemon.sandbox_cgroup(self.sid)):
            procs += open(os.path.join(root, "cgroup.procs")).read().split()
        self.assertEqual(procs, [str(self.sb["init_pid"])])

    def test_timeout_exec_cgroup_is_removed(self):
        # After a timeout everything the command started is dead, so nothing
        # of it may remain, including its exec-N cgroup.
        base = self.daemon.sandbox_cgroup(self.sid)
        for attempt in range(8):
            r = self.x("for i in $(seq 40); do setsid sleep 100 & done; sleep 300", timeout_s=0.3)
            self.assertIs(r["timed_out"], True)
            try:
                wait_until(lambda: not [d for d in os.listdir(base) if d.startswith("exec-")], 3)
            except AssertionError:
                left = sorted(d for d in os.listdir(base) if d.startswith("exec-"))
                procs = {d: open(os.path.join(base, d, "cgroup.procs")).read().split() for d in left}
                self.fail("attempt %d: exec cgroups left after a timed-out command: %s (processes %r)"
                          % (attempt + 1, left, procs))

    def test_finished_exec_cgroup_is_removed(self):
        base = self.daemon.sandbox_cgroup(self.sid)
        for _ in range(5):
            self.x(["true"])
            self.x("echo a | cat; exit 3")
        # The reply may come just before the cleanup; it must follow promptly.
        wait_until(lambda: not [d for d in os.listdir(base) if d.startswith("exec-")], 3,
                   message="exec cgroups left: %r" % sorted(os.listdir(base)))

    def test_each_exec_has_its_own_cgroup(self):
        a = self.x("grep '^0::' /proc/self/cgroup")["stdout"]
        b = self.x("grep '^0::' /proc/self/cgroup")["stdout"]
        self.assertRegex(a, r"^0::/exec-\d+\n$")
        self.assertNotEqual(a, b)

    def test_background_process_outlives_exec(self):
        t0 = time.monotonic()
        r = self.x("sleep 1234 >/dev/null 2>&1 </dev/null & echo started")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(r["stdout"], "started\n")
        self.assertIn("sleep 1234", self.sh("ex", "ps -o args"))

    def test_background_holding_stdout_does_not_block_reply(self):
        t0 = time.monotonic()
        r = self.x("sleep 5 & echo quick")
        self.assertLess(time.monotonic() - t0, 4)
        self.assertEqual((r["exit_code"], r["stdout"]), (0, "quick\n"))


class SlowSetupTest(SandboxdTestCase):
    """A command's set-up (joining the sandbox, exec) can take long on a busy
    host or in a sandbox whose processes use all of its CPU share: it holds
    no one else up, has no fixed wall of its own, and a delete after it
    always finishes."""

    def freeze(self, sandbox_id, frozen):
        cg = self.daemon.sandbox_cgroup(sandbox_id)
        with open(os.path.join(cg, "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")
        want = "frozen %d" % (1 if frozen else 0)
        wait_until(lambda: want in open(os.path.join(cg, "cgroup.events")).read().splitlines(), 5)

    def test_stalled_setup_holds_no_one_up_and_then_runs(self):
        # A frozen group stands for a set-up that gets no CPU for a while.
        busy = self.create("stalled", network={"mode": "none"})
        self.create("calm", network={"mode": "none"})
        self.call("session.create", {"sandbox": "stalled", "session_id": "s"})
        self.freeze(busy["id"], True)
        self.addCleanup(lambda: os.path.isdir(self.daemon.sandbox_cgroup(busy["id"])) and
                        self.freeze(busy["id"], False))
        slow = self.daemon.client(timeout=120)
        # One command of each kind: exec, background, session.
        rid = slow.request("process.exec", {"sandbox": "stalled", "command": "echo ran"})
        spawn = slow.request("process.spawn", {"sandbox": "stalled", "command": "echo spawned"})
        session = slow.request("session.exec", {"sandbox": "stalled", "session_id": "s", "command": "echo session"})
        start = time.monotonic()
        # Meanwhile the daemon answers at once, other sandboxes included.
        self.call("system.ping", timeout=2)
        self.assertEqual(self.exec("calm", "echo calm", timeout=5)["stdout"], "calm\n")
        self.assertLess(time.monotonic() - start, 5)
        # Longer than any fixed wall a set-up used to have, and still waiting.
        time.sleep(max(0, start + 12 - time.monotonic()))
        with self.assertRaises(TimeoutError):
            slow.wait(rid, timeout=0.2)
        self.assertEqual(slow.replies, {}, "a set-up stalled for 12 s failed")
        self.freeze(busy["id"], False)
        r = slow.result(rid)
        self.assertEqual((r["exit_code"], r["stdout"]), (0, "ran\n"), r)
        cmd = slow.result(spawn)["cmd_id"]
        r = self.call("process.wait", {"sandbox": "stalled", "cmd_id": cmd, "timeout_s": 30}, timeout=60)
        self.assertEqual(r["exit_code"], 0, r)
        self.assertEqual(self.call("process.logs", {"sandbox": "stalled", "cmd_id": cmd})["stdout"], "spawned\n")
        r = slow.result(session)
        self.assertEqual((r["exit_code"], r["stdout"]), (0, "session\n"), r)

    def test_timeout_during_a_starved_setup_then_delete(self):
        # The sandbox's own busy processes leave its set-up almost no CPU
        # (1 % of a core among 30 busy loops): the set-up needs seconds of
        # wall time. The exec's timeout still holds, and the delete after
        # it finishes at once.
        sb = self.create("starved", network={"mode": "none"})
        self.call("process.spawn", {"sandbox": "starved",
                                    "command": "for i in $(seq 30); do (while :; do :; done) & done; wait"})
        wait_until(lambda: self.call("sandbox.stats", {"sandbox": "starved"})["pids"] >= 30, 60)
        self.call("sandbox.update", {"sandbox": "starved", "resources": {"cpus": 0.01}})
        self.call("session.create", {"sandbox": "starved", "session_id": "s"})
        for method, params in (("process.exec", {"command": "sleep 30"}),
                               ("session.exec", {"session_id": "s", "command": "sleep 30"}),
                               ("process.spawn", {"command": "sleep 30"})):
            params.update(sandbox="starved", timeout_s=3)
            start = time.monotonic()
            try:
                r = self.call(method, params, timeout=60)
                if method != "process.spawn":
                    self.assertIs(r["timed_out"], True, r)
            except RpcError as e:
                self.assertEqual(e.code, TIMEOUT, e)
                self.assertIn("set-up", e.message)
            self.assertLess(time.monotonic() - start, 8,
                            "%s: a timeout of 3 s did not hold during the set-up" % method)
        start = time.monotonic()
        self.call("sandbox.delete", {"sandbox": "starved", "force": True}, timeout=60)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        wait_until(lambda: not pid_alive(sb["init_pid"]), 5)


if __name__ == "__main__":
    main()
