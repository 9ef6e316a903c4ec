"""sandboxctl verbs: create, ls, inspect, start, stop, rm, exec, run."""

import json
import time

from sbxtest import SandboxdTestCase, main, pid_alive


class CtlSandboxTest(SandboxdTestCase):
    def ok(self, *args, **kw):
        rc, out, err = self.ctl(*args, **kw)
        self.assertEqual(rc, 0, (args, out, err))
        return out

    def test_create_prints_id(self):
        out = self.ok("create")
        self.assertRegex(out, r"^[0-9a-f]{12}\n$")
        sb = self.inspect(out.strip())
        self.assertEqual((sb["state"], sb["image"]), ("started", "minimal"))

    def test_create_options(self):
        out = self.ok("create", "--name", "opts", "-e", "A=1", "--env", "B=x=y", "-l", "team=a", "--label", "t=2",
                      "-w", "/srv", "-u", "sandbox", "--hostname", "hn", "--image", "minimal")
        sb = self.inspect("opts")
        self.assertEqual(sb["id"], out.strip())
        self.assertEqual(sb["env"], {"A": "1", "B": "x=y"})
        self.assertEqual(sb["labels"], {"team": "a", "t": "2"})
        self.assertEqual((sb["workdir"], sb["user"], sb["hostname"]), ("/srv", "sandbox", "hn"))
        self.assertEqual(self.sh("opts", 'echo "$A $B $(id -un) $(pwd) $(hostname)"'), "1 x=y sandbox /srv hn\n")

    def test_create_positional_image_and_no_start(self):
        out = self.ok("create", "-n", "cold", "--no-start", "minimal")
        sb = self.inspect("cold")
        self.assertEqual((sb["id"], sb["state"]), (out.strip(), "stopped"))

    def test_create_json(self):
        out = self.ok("create", "--name", "js", "--json")
        sb = json.loads(out)
        self.assertEqual(sb, self.inspect("js"))
        out = self.ok("--json", "create", "--name", "js2")
        self.assertEqual(json.loads(out)["name"], "js2")

    def test_create_errors(self):
        self.create("taken")
        self.assertCtlFails(self.ctl("create", "--name", "taken"))
        self.assertCtlFails(self.ctl("create", "--name", "bad name"))
        self.assertCtlFails(self.ctl("create", "no-such-image"))
        self.assertCtlFails(self.ctl("create", "-e", "NOEQUALS"))
        self.assertCtlFails(self.ctl("create", "-l", "=v"))
        self.assertCtlFails(self.ctl("create", "--image", "minimal", "minimal"))
        self.assertCtlFails(self.ctl("create", "minimal", "extra"))
        self.assertEqual([s["name"] for s in self.call("sandbox.list")["sandboxes"]], ["taken"])

    def test_ls_table(self):
        a = self.create("alpha")
        b = self.create("beta", start=False)
        out = self.ok("ls")
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "NAME", "IMAGE", "STATE", "CREATED"])
        rows = {l.split()[1]: l.split() for l in lines[1:]}
        self.assertEqual(sorted(rows), ["alpha", "beta"])
        self.assertEqual(rows["alpha"][:4], [a["id"], "alpha", "minimal", "started"])
        self.assertEqual(rows["beta"][:4], [b["id"], "beta", "minimal", "stopped"])

    def test_ls_empty(self):
        self.assertEqual(self.ok("ls").split(), ["ID", "NAME", "IMAGE", "STATE", "CREATED"])
        self.assertEqual(self.ok("ls", "-q"), "")

    def test_ls_quiet_filters_json(self):
        a = self.create("a", labels={"team": "x", "env": "prod"})
        b = self.create("b", labels={"team": "x"}, start=False)
        c = self.create("c", labels={"team": "y"})
        self.assertEqual(sorted(self.ok("ls", "-q").split()), sorted([a["id"], b["id"], c["id"]]))
        self.assertEqual(sorted(self.ok("ls", "-q", "--label", "team=x").split()), sorted([a["id"], b["id"]]))
        self.assertEqual(self.ok("ls", "-q", "-l", "team=x", "-l", "env=prod").split(), [a["id"]])
        self.assertEqual(self.ok("ls", "-q", "--state", "stopped").split(), [b["id"]])
        self.assertEqual(sorted(self.ok("ls", "-q", "-s", "started").split()), sorted([a["id"], c["id"]]))
        self.assertEqual(self.ok("ls", "-q", "--label", "team=z"), "")
        js = json.loads(self.ok("ls", "--json", "--label", "team=y"))
        self.assertEqual(js, [self.inspect("c")])
        self.assertEqual(len(json.loads(self.ok("--json", "ls"))), 3)
        self.assertCtlFails(self.ctl("ls", "--state", "bogus"))
        self.assertCtlFails(self.ctl("ls", "--label", "novalue"))
        self.assertCtlFails(self.ctl("ls", "extra"))

    def test_ls_aliases(self):
        self.create("x")
        self.assertEqual(self.ok("list", "-q"), self.ok("ls", "-q"))
        self.assertEqual(self.ok("ps", "-q"), self.ok("ls", "-q"))

    def test_inspect(self):
        sb = self.create("insp")
        for ref in ("insp", sb["id"]):
            self.assertEqual(json.loads(self.ok("inspect", ref)), self.inspect("insp"))
        err = self.assertCtlFails(self.ctl("inspect", "missing"))
        self.assertIn("missing", err)
        self.assertCtlFails(self.ctl("inspect"))

    def test_stop_start_rm(self):
        a = self.create("one")
        b = self.create("two")
        self.assertEqual(self.ok("stop", "one", b["id"]), "one\n%s\n" % b["id"])
        self.assertEqual(self.inspect("one")["state"], "stopped")
        self.assertEqual(self.inspect("two")["state"], "stopped")
        self.assertFalse(pid_alive(a["init_pid"]))
        self.assertEqual(self.ok("start", "one", "two"), "one\ntwo\n")
        self.assertEqual(self.inspect("one")["state"], "started")
        self.assertEqual(self.sh("two", "echo up"), "up\n")
        self.assertCtlFails(self.ctl("rm", "one"))
        self.assertEqual(self.ok("rm", "-f", "one", "two"), "one\ntwo\n")
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_stop_with_timeout_and_force(self):
        self.create("slow")
        self.create("slow2")
        script = "sh -c 'trap \"\" TERM; : > /tmp/.armed; while :; do sleep 0.1; done' </dev/null >/dev/null 2>&1 & while [ ! -e /tmp/.armed ]; do sleep 0.01; done"
        self.sh("slow", script)
        self.sh("slow2", script)
        t0 = time.monotonic()
        self.assertEqual(self.ok("stop", "-t", "1", "slow"), "slow\n")
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        t0 = time.monotonic()
        self.assertEqual(self.ok("stop", "-f", "slow2"), "slow2\n")
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(self.inspect("slow2")["state"], "stopped")
        self.assertCtlFails(self.ctl("stop", "-t", "abc", "slow"))
        self.assertCtlFails(self.ctl("stop", "-t", "-1", "slow"))

    def test_verb_errors(self):
        self.create("there")
        self.assertCtlFails(self.ctl("start", "there"))          # already started
        self.assertCtlFails(self.ctl("start", "missing"))
        self.assertCtlFails(self.ctl("stop", "missing"))
        self.assertCtlFails(self.ctl("rm", "missing"))
        self.assertCtlFails(self.ctl("stop"))
        self.assertCtlFails(self.ctl("rm"))
        self.assertCtlFails(self.ctl("start"))

    def test_invalid_option_is_one_line(self):
        self.create("sb")
        for args in (("create", "--bogus-option"), ("ls", "--bogus-option"), ("stop", "--bogus-option", "sb"),
                     ("rm", "--bogus-option", "sb"), ("exec", "--bogus-option", "sb", "true"),
                     ("run", "--bogus-option", "--", "true"), ("image", "ls", "--bogus-option"),
                     ("--bogus-option", "ls")):
            with self.subTest(args=args):
                self.assertCtlFails(self.ctl(*args))
        self.assertEqual(self.inspect("sb")["state"], "started")

    def test_partial_failure_in_a_list(self):
        self.create("real")
        rc, out, err = self.ctl("stop", "missing", "real")
        self.assertEqual(rc, 125)
        self.assertEqual(out, "real\n")
        self.assertEqual(err.count("\n"), 1)
        self.assertEqual(self.inspect("real")["state"], "stopped")

    def test_rm_json(self):
        self.create("js")
        rc, out, err = self.ctl("rm", "-f", "--json", "js")
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out), {})


class CtlExecTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.create("ex")

    def test_exec_relays_output_and_exit_code(self):
        rc, out, err = self.ctl("exec", "ex", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
        self.assertEqual((rc, out, err), (7, "out\n", "err\n"))

    def test_exec_without_double_dash(self):
        rc, out, err = self.ctl("exec", "ex", "echo", "a b", "c")
        self.assertEqual((rc, out, err), (0, "a b c\n", ""))

    def test_exec_options_after_sandbox_are_the_command(self):
        rc, out, err = self.ctl("exec", "ex", "ls", "-d", "/tmp")
        self.assertEqual((rc, out), (0, "/tmp\n"))

    def test_exec_binary_output_is_exact(self):
        rc, out, err = self.ctl("exec", "ex", "--", "sh", "-c",
                                "printf '%s'" % "".join("\\%03o" % b for b in range(256)), input=b"")
        self.assertEqual(rc, 0)
        self.assertEqual(out, bytes(range(256)))

    def test_exec_signal_exit_code(self):
        rc, out, err = self.ctl("exec", "ex", "--", "sh", "-c", "kill -9 $$")
        self.assertEqual(rc, 137)
        rc, out, err = self.ctl("exec", "ex", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(rc, 143)

    def test_exec_env_workdir_user(self):
        self.sh("ex", "mkdir -p /workspace/sub")
        rc, out, err = self.ctl("exec", "-e", "X=1", "--env", "Y=two words", "-w", "sub", "-u", "sandbox", "ex", "--",
                                "sh", "-c", 'echo "$X|$Y|$(pwd)|$(id -u)"')
        self.assertEqual((rc, out, err), (0, "1|two words|/workspace/sub|1000\n", ""))
        rc, out, err = self.ctl("exec", "--workdir", "/tmp", "--user", "1000:100", "ex", "--",
                                "sh", "-c", 'echo "$(pwd) $(id -u):$(id -g)"')
        self.assertEqual((rc, out), (0, "/tmp 1000:100\n"))

    def test_exec_timeout(self):
        t0 = time.monotonic()
        rc, out, err = self.ctl("exec", "--timeout", "0.5", "ex", "--", "sh", "-c", "echo started; sleep 30")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(rc, 137)
        self.assertEqual(out, "started\n")
        self.assertIn("timed out", err)
        self.assertCtlFails(self.ctl("exec", "--timeout", "soon", "ex", "true"))

    def test_exec_stdin(self):
        rc, out, err = self.ctl("exec", "-i", "ex", "--", "sh", "-c", "tr a-z A-Z", input="hello\nworld\n")
        self.assertEqual((rc, out, err), (0, "HELLO\nWORLD\n", ""))
        rc, out, err = self.ctl("exec", "ex", "--", "cat", input="ignored\n")
        self.assertEqual((rc, out), (0, ""))

    def test_exec_json(self):
        rc, out, err = self.ctl("exec", "--json", "ex", "--", "sh", "-c", "echo o; echo e >&2; exit 3")
        self.assertEqual(rc, 3)
        r = json.loads(out)
        self.assertEqual((r["stdout"], r["stderr"], r["exit_code"], r["signal"]), ("o\n", "e\n", 3, None))
        rc, out, err = self.ctl("--json", "exec", "ex", "--", "true")
        self.assertEqual(json.loads(out)["exit_code"], 0)

    def test_exec_command_not_found(self):
        rc, out, err = self.ctl("exec", "ex", "--", "no-such-cmd")
        self.assertEqual(rc, 127)
        self.assertIn("no-such-cmd", err)

    def test_exec_own_errors(self):
        self.create("cold", start=False)
        self.assertCtlFails(self.ctl("exec", "missing", "--", "true"))
        self.assertCtlFails(self.ctl("exec", "cold", "--", "true"))
        self.assertCtlFails(self.ctl("exec", "ex", "--"))
        self.assertCtlFails(self.ctl("exec"))
        self.assertCtlFails(self.ctl("exec", "-u", "nosuchuser", "ex", "--", "true"))
        self.assertCtlFails(self.ctl("exec", "-w", "/does/not/exist", "ex", "--", "true"))
        self.assertCtlFails(self.ctl("exec", "-e", "BROKEN", "ex", "--", "true"))

    def test_exec_large_output(self):
        rc, out, err = self.ctl("exec", "ex", "--", "sh", "-c", "head -c 500000 /dev/zero | tr '\\0' x")
        self.assertEqual(rc, 0)
        self.assertEqual(out, "x" * 500000)


class CtlRunTest(SandboxdTestCase):
    def test_run_rm(self):
        rc, out, err = self.ctl("run", "--rm", "minimal", "--", "sh", "-c", "hostname; echo e >&2; exit 4")
        self.assertEqual(rc, 4)
        self.assertRegex(out, r"^[0-9a-f]{12}\n$")   # hostname is the id of an unnamed sandbox
        self.assertEqual(err, "e\n")
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_run_without_image_uses_the_default(self):
        # With nothing between the options and "--", the default image is used
        # and everything after "--" is the command.
        rc, out, err = self.ctl("run", "--rm", "--", "echo", "hi")
        self.assertEqual((rc, out, err), (0, "hi\n", ""))
        rc, out, err = self.ctl("run", "--rm", "nosuchimage", "--", "true")
        self.assertCtlFails((rc, out, err))
        self.assertIn("nosuchimage", err)
        rc, out, err = self.ctl("run", "--rm", "--image", "minimal", "--", "echo", "hi")
        self.assertEqual((rc, out, err), (0, "hi\n", ""))
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_run_keeps_sandbox_without_rm(self):
        rc, out, err = self.ctl("run", "--name", "kept", "minimal", "--", "echo", "hi")
        self.assertEqual((rc, out), (0, "hi\n"))
        sb = self.inspect("kept")
        self.assertEqual(sb["state"], "started")
        self.assertIn(sb["id"], err)

    def test_run_options(self):
        rc, out, err = self.ctl("run", "--rm", "--name", "r", "-e", "K=V", "-l", "a=b", "-w", "/opt", "-u", "sandbox",
                                "--hostname", "rh", "minimal", "--", "sh", "-c",
                                'echo "$K $(pwd) $(id -un) $(hostname)"')
        self.assertEqual((rc, out, err), (0, "V /opt sandbox rh\n", ""))
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_run_image_option_and_positional(self):
        rc, out, err = self.ctl("run", "--rm", "--image", "minimal", "--", "true")
        self.assertEqual(rc, 0)
        rc, out, err = self.ctl("run", "--rm", "minimal", "--", "true")
        self.assertEqual(rc, 0)
        rc, out, err = self.ctl("run", "--rm", "minimal", "echo", "no-dashes")
        self.assertEqual((rc, out), (0, "no-dashes\n"))
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_run_timeout_and_stdin(self):
        rc, out, err = self.ctl("run", "--rm", "--timeout", "0.5", "minimal", "--", "sleep", "30")
        self.assertEqual(rc, 137)
        self.assertIn("timed out", err)
        rc, out, err = self.ctl("run", "--rm", "-i", "minimal", "--", "wc", "-l", input="1\n2\n3\n")
        self.assertEqual((rc, out.strip()), (0, "3"))
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_run_errors(self):
        self.assertCtlFails(self.ctl("run", "--rm"))
        self.assertCtlFails(self.ctl("run", "--rm", "minimal", "--"))
        self.assertCtlFails(self.ctl("run", "--rm", "no-such-image", "--", "true"))
        self.assertCtlFails(self.ctl("run", "--rm", "a", "b", "--", "true"))
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_run_json(self):
        rc, out, err = self.ctl("run", "--rm", "--json", "minimal", "--", "sh", "-c", "echo j; exit 2")
        self.assertEqual(rc, 2)
        r = json.loads(out)
        self.assertEqual((r["stdout"], r["exit_code"]), ("j\n", 2))
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])


if __name__ == "__main__":
    main()
