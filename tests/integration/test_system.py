"""system.info, system.ping, and `sandboxctl info`."""

import json
import os
import signal
import socket
import subprocess

from sbxtest import RFC3339_RE, SandboxdTestCase, main, pid_alive, sandboxd_path, wait_until


def host_cgroup_mode():
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "v2"
    if os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        return "hybrid"
    return "v1"


class SystemTest(SandboxdTestCase):
    def test_ping_returns_empty_object(self):
        reply = self.rpc.call_reply("system.ping")
        self.assertEqual(reply, {"jsonrpc": "2.0", "id": 1, "result": {}})

    def test_ping_with_null_and_empty_params(self):
        self.assertEqual(self.call("system.ping", {}), {})
        rid = self.rpc.request("system.ping", None)
        self.rpc.send({"jsonrpc": "2.0", "id": "p", "method": "system.ping", "params": None})
        self.assertEqual(self.rpc.result(rid), {})
        self.assertEqual(self.rpc.result("p"), {})

    def test_info_fields(self):
        info = self.call("system.info")
        self.assertIsInstance(info["version"], str)
        self.assertTrue(info["version"])
        self.assertEqual(info["api_version"], 1)
        self.assertEqual(info["hostname"], socket.gethostname())
        self.assertEqual(info["kernel"], os.uname().release)
        self.assertEqual(info["cgroup"], host_cgroup_mode())
        self.assertEqual(info["cgroup_base"], self.daemon.cgroup_parent)
        self.assertIsInstance(info["features"], list)
        for f in info["features"]:
            self.assertIsInstance(f, str)
        self.assertEqual(info["sandboxes"], {"total": 0, "started": 0})
        self.assertEqual(info["limits"]["max_message"], 16 * 1024 * 1024)
        self.assertEqual(info["default_image"], "minimal")
        self.assertEqual(info["state_dir"], self.daemon.state_dir)
        self.assertRegex(info["started_at"], RFC3339_RE)
        self.assertEqual(info["pid"], self.daemon.pid)

    def test_info_counts_sandboxes(self):
        a = self.create("a")
        self.create("b")
        self.create("c", start=False)
        self.assertEqual(self.call("system.info")["sandboxes"], {"total": 3, "started": 2})
        self.call("sandbox.stop", {"sandbox": a["id"]})
        self.assertEqual(self.call("system.info")["sandboxes"], {"total": 3, "started": 1})
        self.call("sandbox.delete", {"sandbox": a["id"]})
        self.assertEqual(self.call("system.info")["sandboxes"], {"total": 2, "started": 1})

    def test_cgroup_base_directory_exists(self):
        info = self.call("system.info")
        mount = "/sys/fs/cgroup" if info["cgroup"] == "v2" else "/sys/fs/cgroup/unified"
        self.assertTrue(os.path.isdir(os.path.join(mount, info["cgroup_base"])))

    def test_ctl_info_human(self):
        rc, out, err = self.ctl("info")
        self.assertEqual((rc, err), (0, ""))
        info = self.call("system.info")
        self.assertIn("version:        %s (api 1)\n" % info["version"], out)
        self.assertIn("cgroup:         %s\n" % info["cgroup"], out)
        self.assertIn("state dir:      %s\n" % self.daemon.state_dir, out)
        self.assertIn("default image:  minimal\n", out)
        self.assertIn("sandboxes:      0 (0 started)\n", out)

    def test_ctl_info_json_both_spellings(self):
        for args in (("--json", "info"), ("info", "--json")):
            rc, out, err = self.ctl(*args)
            self.assertEqual((rc, err), (0, ""), args)
            info = json.loads(out)
            self.assertEqual(info["api_version"], 1)
            self.assertEqual(info["pid"], self.daemon.pid)

    def test_ctl_socket_from_environment(self):
        rc, out, err = self.ctl("--json", "info", use_env_socket=True)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(json.loads(out)["state_dir"], self.daemon.state_dir)

    def test_ctl_unknown_verb(self):
        self.assertCtlFails(self.ctl("frobnicate"))

    def test_ctl_info_extra_argument(self):
        self.assertCtlFails(self.ctl("info", "extra"))

    def test_ctl_without_daemon(self):
        self.daemon.stop()
        err = self.assertCtlFails(self.ctl("info"))
        self.assertIn(self.daemon.socket, err)
        err = self.assertCtlFails(self.ctl("ls"))

    def test_ctl_version_and_help(self):
        rc, out, err = self.ctl("--version")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("sandboxctl "), out)
        rc, out, err = self.ctl("--help")
        self.assertEqual(rc, 0)
        self.assertIn("Usage: sandboxctl", out)


class DaemonCommandLineTest(SandboxdTestCase):
    """sandboxd's own options, exit statuses and signals (sandboxd(8))."""

    def run_daemon(self, *args):
        return subprocess.run([sandboxd_path()] + list(args), capture_output=True, text=True, timeout=30)

    def test_version_and_help(self):
        p = self.run_daemon("--version")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, "sandboxd %s\n" % self.call("system.info")["version"])
        p = self.run_daemon("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--state-dir", p.stdout)

    def test_invalid_command_lines(self):
        d = self.daemon
        base = ["-f", "--config", d.config_path, "--state-dir", d.state_dir + "-x", "--run-dir", d.run_dir + "-x",
                "--socket", d.socket + "-x"]
        for extra in (["--bogus"], ["--max-message", "100"], ["--max-message", "lots"], ["--log-level", "chatty"],
                      ["stray-argument"]):
            with self.subTest(args=extra):
                p = self.run_daemon(*(base + extra))
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertFalse(os.path.exists(d.socket + "-x"))

    def test_invalid_configuration_file(self):
        d = self.daemon
        bad = os.path.join(d.dir, "bad.conf")
        for text in ("no_such_setting = 1\n", "max_sandboxes = 0\n", "this line has no equals sign\n"):
            with self.subTest(config=text):
                with open(bad, "w") as f:
                    f.write(text)
                p = self.run_daemon("-f", "--config", bad, "--state-dir", d.state_dir + "-y", "--run-dir",
                                    d.run_dir + "-y", "--socket", d.socket + "-y")
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertTrue(p.stderr.strip(), "no reason given on stderr")

    def test_sighup_is_ignored(self):
        self.create("hup")
        os.kill(self.daemon.pid, signal.SIGHUP)
        wait_until(lambda: "SIGHUP" in self.daemon.log(), 5)
        self.assertTrue(self.daemon.running())
        self.assertEqual(self.sh("hup", "echo still"), "still\n")

    def test_sigint_and_sigquit_shut_down_cleanly(self):
        for sig in (signal.SIGINT, signal.SIGQUIT):
            with self.subTest(signal=sig):
                sb = self.create("sig%d" % sig)
                self.daemon.proc.send_signal(sig)
                self.assertEqual(self.daemon.proc.wait(15), 0)
                self.assertFalse(os.path.exists(self.daemon.socket))
                self.assertTrue(pid_alive(sb["init_pid"]))
                self.daemon.start()
                self.rpc = self.daemon.client()
                self.assertEqual(self.inspect(sb["id"])["init_pid"], sb["init_pid"])


class DefaultCgroupTest(SandboxdTestCase):
    """Without cgroup_parent the daemon settles in the documented place."""

    daemon_options = {"own_cgroup": False}

    def test_default_cgroup_base(self):
        with open("/proc/self/cgroup") as f:
            own = [l[3:].strip() for l in f if l.startswith("0::")]
        if own != ["/"]:
            self.skipTest("harness is not in the root cgroup (%r); default base differs" % own)
        info = self.call("system.info")
        # "sandboxd" for the default state dir; a daemon with another state
        # dir (as here) gets a base of its own, named after a hash of it.
        self.assertRegex(info["cgroup_base"], r"^sandboxd-[0-9a-f]{8}$")
        sb = self.create("dflt")
        path = self.daemon.sandbox_cgroup(sb["id"])
        self.assertEqual(path, os.path.join(self.daemon.cgroup_mount(), info["cgroup_base"], "sbx-" + sb["id"]))
        self.assertTrue(os.path.isdir(path))
        self.assertIn(sb["init_pid"], [int(p) for p in open(os.path.join(path, "cgroup.procs")).read().split()])
        self.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
        self.assertFalse(os.path.exists(path))
        # A clean shutdown removes the base it made.
        base = os.path.join(self.daemon.cgroup_mount(), info["cgroup_base"])
        self.daemon.stop()
        self.assertFalse(os.path.exists(base))


if __name__ == "__main__":
    main()
