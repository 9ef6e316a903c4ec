"""sandbox.create/start/stop/delete/list/inspect and what a sandbox looks like inside."""

import os
import time

from sbxtest import ID_RE, RFC3339_RE, SandboxdTestCase, main, pid_alive, proc_cmdline, wait_until

NOT_FOUND, EXISTS, BAD_STATE, LIMIT, UNSUPPORTED = 1, 2, 3, 4, 7
INVALID_PARAMS = -32602
BAD_PARAMS = -32602


class CreateTest(SandboxdTestCase):
    def test_create_defaults(self):
        sb = self.create()
        self.assertRegex(sb["id"], ID_RE)
        self.assertEqual(sb["name"], sb["id"])
        self.assertEqual(sb["state"], "started")
        self.assertEqual(sb["image"], "minimal")
        self.assertEqual(sb["labels"], {})
        self.assertEqual(sb["env"], {})
        self.assertEqual(sb["user"], "root")
        self.assertEqual(sb["workdir"], "/workspace")
        self.assertEqual(sb["hostname"], sb["id"])
        self.assertEqual(sb["network"]["mode"], "bridge")
        self.assertEqual(sb["ports"], [])
        self.assertEqual(sb["auto_stop_min"], 15)
        self.assertEqual(sb["auto_archive_min"], 10080)
        self.assertEqual(sb["auto_delete_min"], -1)
        for key in ("created_at", "started_at", "last_activity_at"):
            self.assertRegex(sb[key], RFC3339_RE, key)
        self.assertIsInstance(sb["init_pid"], int)
        self.assertTrue(pid_alive(sb["init_pid"]))
        self.assertEqual(proc_cmdline(sb["init_pid"]), [b"sandbox-init", sb["id"].encode()])

    def test_create_with_everything(self):
        sb = self.create("full", labels={"team": "a", "tier": "gold"}, env={"FOO": "bar", "EMPTY": ""},
                         user="sandbox", workdir="/srv/app", hostname="box-1.example",
                         auto_stop_min=0, auto_archive_min=5, auto_delete_min=0, network={"mode": "none"},
                         resources={})
        self.assertEqual(sb["name"], "full")
        self.assertEqual(sb["labels"], {"team": "a", "tier": "gold"})
        self.assertEqual(sb["env"], {"FOO": "bar", "EMPTY": ""})
        self.assertEqual(sb["user"], "sandbox")
        self.assertEqual(sb["workdir"], "/srv/app")
        self.assertEqual(sb["hostname"], "box-1.example")
        self.assertEqual((sb["auto_stop_min"], sb["auto_archive_min"], sb["auto_delete_min"]), (0, 5, 0))
        out = self.sh("full", 'echo "$FOO|$EMPTY|$(id -u)|$(pwd)|$(hostname)|$HOME"')
        self.assertEqual(out, "bar||1000|/srv/app|box-1.example|/home/sandbox\n")

    def test_create_stopped(self):
        sb = self.create("cold", start=False)
        self.assertEqual(sb["state"], "stopped")
        self.assertIsNone(sb["init_pid"])
        self.assertIsNone(sb["started_at"])
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(sb["id"])))
        self.assertRpcError(BAD_STATE, "process.exec", {"sandbox": "cold", "cmd": ["true"]})
        started = self.call("sandbox.start", {"sandbox": "cold"})
        self.assertEqual(started["state"], "started")
        self.assertEqual(self.sh("cold", "echo up"), "up\n")

    def test_image_not_found(self):
        err = self.assertRpcError(NOT_FOUND, "sandbox.create", {"name": "x", "image": "no-such-image"})
        self.assertIn("no-such-image", err["message"])
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertEqual(os.listdir(os.path.join(self.daemon.state_dir, "sandboxes")), [])

    def test_image_by_id(self):
        img = self.call("image.inspect", {"name": "minimal"})
        sb = self.create("byid", image=img["id"])
        self.assertEqual(sb["image"], "minimal")

    def test_duplicate_names(self):
        self.create("dup")
        err = self.assertRpcError(EXISTS, "sandbox.create", {"name": "dup"})
        self.assertIn("dup", err["message"])
        self.create("cold-dup", start=False)
        self.assertRpcError(EXISTS, "sandbox.create", {"name": "cold-dup"})
        self.assertEqual(len(self.call("sandbox.list")["sandboxes"]), 2)

    def test_name_reusable_after_delete(self):
        a = self.create("again")
        self.call("sandbox.delete", {"sandbox": "again", "force": True})
        b = self.create("again")
        self.assertNotEqual(a["id"], b["id"])

    def test_invalid_names(self):
        bad = ["a b", "a/b", "../x", "-abc", ".abc", "_abc", "abc!", "tab\there", "new\nline", "ünï", "a" * 64,
               "x" * 200, "a:b", "a@b", " lead", "trail "]
        for name in bad:
            with self.subTest(name=name):
                self.assertRpcError(BAD_PARAMS, "sandbox.create", {"name": name}, param="name")
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_names_that_look_like_ids(self):
        for name in ("0123456789ab", "abcdefabcdef", "000000000000"):
            with self.subTest(name=name):
                self.assertRpcError(BAD_PARAMS, "sandbox.create", {"name": name}, param="name")
        other = self.create()
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"name": other["id"]}, param="name")

    def test_valid_name_edge_cases(self):
        for name in ("a", "Z", "9", "a" * 63, "A-b_c.d", "0123456789abc", "0123456789a", "x.y.z"):
            with self.subTest(name=name):
                sb = self.create(name, start=False)
                self.assertEqual(sb["name"], name)
                self.assertEqual(self.inspect(name)["id"], sb["id"])

    def test_invalid_egress_list(self):
        self.assertRpcError(INVALID_PARAMS, "sandbox.create", {"network": {"mode": "bridge", "deny_out": ["10.0.0.0/99"]}})
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])


class LimitTest(SandboxdTestCase):
    daemon_options = {"config": {"max_sandboxes": 2}}

    def test_max_sandboxes(self):
        self.create("one")
        self.create("two", start=False)
        self.assertRpcError(LIMIT, "sandbox.create", {"name": "three"})
        self.call("sandbox.delete", {"sandbox": "two"})
        self.create("three")


class LifecycleTest(SandboxdTestCase):
    def test_inspect_by_id_and_name(self):
        sb = self.create("look")
        by_id = self.inspect(sb["id"])
        by_name = self.inspect("look")
        self.assertEqual(by_id, by_name)
        self.assertEqual(by_id["id"], sb["id"])
        self.assertEqual(by_id["init_pid"], sb["init_pid"])

    def test_not_found(self):
        for method in ("sandbox.inspect", "sandbox.start", "sandbox.stop", "sandbox.delete"):
            with self.subTest(method=method):
                err = self.assertRpcError(NOT_FOUND, method, {"sandbox": "nope"})
                self.assertIn("nope", err["message"])
        self.assertRpcError(NOT_FOUND, "process.exec", {"sandbox": "nope", "cmd": ["true"]})
        self.assertRpcError(NOT_FOUND, "sandbox.inspect", {"sandbox": "0123456789ab"})

    def test_stop_and_start(self):
        sb = self.create("cycle")
        init = sb["init_pid"]
        cg = self.daemon.sandbox_cgroup(sb["id"])
        self.assertTrue(os.path.isdir(cg))
        self.assertEqual(self.call("sandbox.stop", {"sandbox": "cycle"}), {})
        st = self.inspect("cycle")
        self.assertEqual(st["state"], "stopped")
        self.assertIsNone(st["init_pid"])
        self.assertFalse(pid_alive(init))
        self.assertFalse(os.path.exists(cg))
        self.assertFalse(os.path.exists(os.path.join(self.daemon.run_dir, "sandboxes", sb["id"])))
        self.assertRpcError(BAD_STATE, "process.exec", {"sandbox": "cycle", "cmd": ["true"]})
        started = self.call("sandbox.start", {"sandbox": "cycle"})
        self.assertEqual(started["state"], "started")
        self.assertNotEqual(started["init_pid"], init)
        self.assertTrue(pid_alive(started["init_pid"]))
        self.assertTrue(os.path.isdir(cg))
        self.assertEqual(self.sh("cycle", "cat /proc/1/comm"), "sandbox-init\n")

    def test_stop_stopped_sandbox_succeeds_at_once(self):
        self.create("idle", start=False)
        t0 = time.monotonic()
        self.assertEqual(self.call("sandbox.stop", {"sandbox": "idle"}), {})
        self.assertLess(time.monotonic() - t0, 1)
        self.assertEqual(self.inspect("idle")["state"], "stopped")

    def test_last_activity_advances(self):
        sb = self.create("act")
        before = self.inspect("act")["last_activity_at"]
        time.sleep(0.01)
        self.sh("act", "true")
        after = self.inspect("act")["last_activity_at"]
        self.assertGreater(after, before)
        self.assertEqual(self.inspect("act")["created_at"], sb["created_at"])

    def test_start_already_started(self):
        self.create("hot")
        self.assertRpcError(BAD_STATE, "sandbox.start", {"sandbox": "hot"})

    def test_files_persist_across_stop_start(self):
        self.create("keep")
        self.sh("keep", "echo data > /workspace/file; mkdir -p /opt/x; echo y > /opt/x/y; rm /bin/vi")
        self.call("sandbox.stop", {"sandbox": "keep"})
        self.call("sandbox.start", {"sandbox": "keep"})
        self.assertEqual(self.sh("keep", "cat /workspace/file /opt/x/y; test -e /bin/vi || echo gone"),
                         "data\ny\ngone\n")

    def test_tmp_is_writable_and_persists(self):
        self.create("tmp")
        self.sh("tmp", "echo t > /tmp/t")
        self.call("sandbox.stop", {"sandbox": "tmp"})
        self.call("sandbox.start", {"sandbox": "tmp"})
        self.assertEqual(self.sh("tmp", "cat /tmp/t; stat -c %a /tmp"), "t\n1777\n")

    def test_delete_running_needs_force(self):
        sb = self.create("busy")
        err = self.assertRpcError(BAD_STATE, "sandbox.delete", {"sandbox": "busy"})
        self.assertIn("busy", err["message"])
        self.assertEqual(self.inspect("busy")["state"], "started")
        self.assertRpcError(BAD_STATE, "sandbox.delete", {"sandbox": "busy", "force": False})
        self.assertEqual(self.call("sandbox.delete", {"sandbox": "busy", "force": True}), {})
        self.assertRpcError(NOT_FOUND, "sandbox.inspect", {"sandbox": sb["id"]})
        self.assertFalse(pid_alive(sb["init_pid"]))
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(sb["id"])))
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "sandboxes", sb["id"])))

    def test_delete_stopped(self):
        sb = self.create("old")
        self.call("sandbox.stop", {"sandbox": "old"})
        self.assertEqual(self.call("sandbox.delete", {"sandbox": sb["id"]}), {})
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertRpcError(NOT_FOUND, "sandbox.delete", {"sandbox": sb["id"]})

    def test_stop_force_is_immediate(self):
        self.create("stubborn")
        c = self.daemon.client()
        rid = c.request("process.exec", {"sandbox": "stubborn",
                                         "command": "trap '' TERM; while :; do sleep 0.1; done"})
        wait_until(lambda: "sleep" in self.sh("stubborn", "ps -o args"), 5)
        t0 = time.monotonic()
        self.assertEqual(self.call("sandbox.stop", {"sandbox": "stubborn", "force": True}), {})
        self.assertLess(time.monotonic() - t0, 2.0)
        r = c.result(rid)
        self.assertEqual((r["exit_code"], r["signal"]), (137, "KILL"))

    def test_delete_of_a_sandbox_starved_of_cpu_is_quick(self):
        # Killed processes still need CPU to exit: 200 busy loops under 1 %
        # of a core took seconds to die.
        sb = self.create("starved", network={"mode": "none"})
        self.call("process.spawn", {"sandbox": "starved",
                                    "command": "for i in $(seq 200); do (while :; do :; done) & done; wait"})
        wait_until(lambda: self.call("sandbox.stats", {"sandbox": "starved"})["pids"] >= 200, 60)
        self.call("sandbox.update", {"sandbox": "starved", "resources": {"cpus": 0.01}})
        t0 = time.monotonic()
        self.call("sandbox.delete", {"sandbox": "starved", "force": True}, timeout=60)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertFalse(pid_alive(sb["init_pid"]))

    def test_stop_timeout_kills_process_ignoring_term(self):
        self.create("stubborn")
        c = self.daemon.client()
        rid = c.request("process.exec", {"sandbox": "stubborn",
                                         "command": "trap '' TERM; while :; do sleep 0.1; done"})
        wait_until(lambda: "sleep" in self.sh("stubborn", "ps -o args"), 5)
        t0 = time.monotonic()
        self.assertEqual(self.call("sandbox.stop", {"sandbox": "stubborn", "timeout_s": 1.5}), {})
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 1.3)
        self.assertLess(elapsed, 5.0)
        r = c.result(rid)
        self.assertEqual((r["exit_code"], r["signal"]), (137, "KILL"))
        self.assertEqual(self.inspect("stubborn")["state"], "stopped")

    def test_stop_is_quick_when_processes_obey_term(self):
        self.create("polite")
        c = self.daemon.client()
        rid = c.request("process.exec", {"sandbox": "polite", "cmd": ["sleep", "1000"]})
        wait_until(lambda: "sleep 1000" in self.sh("polite", "ps -o args"), 5)
        t0 = time.monotonic()
        self.call("sandbox.stop", {"sandbox": "polite", "timeout_s": 20})
        self.assertLess(time.monotonic() - t0, 5.0)
        r = c.result(rid)
        self.assertEqual((r["exit_code"], r["signal"]), (143, "TERM"))

    def test_concurrent_stop_requests(self):
        self.create("twice")
        self.sh("twice", "sh -c 'trap \"\" TERM; : > /tmp/.armed; while :; do sleep 0.1; done' </dev/null >/dev/null 2>&1 & while [ ! -e /tmp/.armed ]; do sleep 0.01; done")
        c1, c2 = self.daemon.client(), self.daemon.client()
        r1 = c1.request("sandbox.stop", {"sandbox": "twice", "timeout_s": 30})
        time.sleep(0.2)
        t0 = time.monotonic()
        r2 = c2.request("sandbox.stop", {"sandbox": "twice", "force": True})
        self.assertEqual(c2.result(r2), {})
        self.assertEqual(c1.result(r1), {})
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(self.inspect("twice")["state"], "stopped")

    def test_start_and_exec_while_stopping(self):
        self.create("leaving")
        self.sh("leaving", "sh -c 'trap \"\" TERM; : > /tmp/.armed; while :; do sleep 0.1; done' </dev/null >/dev/null 2>&1 & while [ ! -e /tmp/.armed ]; do sleep 0.01; done")
        c = self.daemon.client()
        rid = c.request("sandbox.stop", {"sandbox": "leaving", "timeout_s": 2})
        wait_until(lambda: "stopping" in self.daemon.log(), 5)
        self.assertRpcError(BAD_STATE, "sandbox.start", {"sandbox": "leaving"})
        self.assertRpcError(BAD_STATE, "process.exec", {"sandbox": "leaving", "cmd": ["true"]})
        self.assertEqual(c.result(rid), {})
        self.assertEqual(self.inspect("leaving")["state"], "stopped")
        self.call("sandbox.start", {"sandbox": "leaving"})

    def test_delete_force_while_stopping(self):
        sb = self.create("leaving")
        self.sh("leaving", "sh -c 'trap \"\" TERM; : > /tmp/.armed; while :; do sleep 0.1; done' </dev/null >/dev/null 2>&1 & while [ ! -e /tmp/.armed ]; do sleep 0.01; done")
        c = self.daemon.client()
        rid = c.request("sandbox.stop", {"sandbox": "leaving", "timeout_s": 30})
        wait_until(lambda: "stopping" in self.daemon.log(), 5)
        t0 = time.monotonic()
        self.assertEqual(self.call("sandbox.delete", {"sandbox": "leaving", "force": True}), {})
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(c.result(rid), {})
        self.assertRpcError(NOT_FOUND, "sandbox.inspect", {"sandbox": sb["id"]})
        self.assertFalse(pid_alive(sb["init_pid"]))

    def test_failed_start_cleans_up(self):
        # A workdir that cannot be created makes the start fail.
        reply = self.rpc.call_reply("sandbox.create", {"name": "broken", "workdir": "/etc/passwd/sub"})
        self.assertIn("error", reply, reply)
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertEqual([d for d in os.listdir(self.daemon.cgroup_base_path()) if d.startswith("sbx-")], [])
        self.assertEqual(os.listdir(os.path.join(self.daemon.state_dir, "sandboxes")), [])
        self.assertEqual(self.create("broken")["name"], "broken")

    def test_delete_force_while_exec_running(self):
        sb = self.create("doomed")
        c = self.daemon.client()
        rid = c.request("process.exec", {"sandbox": "doomed", "cmd": ["sleep", "1000"]})
        wait_until(lambda: "sleep 1000" in self.sh("doomed", "ps -o args"), 5)
        self.assertEqual(self.call("sandbox.delete", {"sandbox": "doomed", "force": True}), {})
        r = c.result(rid)
        self.assertEqual((r["exit_code"], r["signal"]), (137, "KILL"))
        self.assertRpcError(NOT_FOUND, "sandbox.inspect", {"sandbox": sb["id"]})

    def test_init_dying_marks_sandbox_stopped(self):
        sb = self.create("fragile")
        os.kill(sb["init_pid"], 9)
        wait_until(lambda: self.inspect("fragile")["state"] == "stopped", 10)
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(sb["id"])))
        self.call("sandbox.start", {"sandbox": "fragile"})
        self.assertEqual(self.sh("fragile", "echo back"), "back\n")


class ListTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.a = self.create("a", labels={"team": "x", "env": "prod"})
        self.b = self.create("b", labels={"team": "x", "env": "dev"})
        self.c = self.create("c", labels={"team": "y"}, start=False)
        self.d = self.create("d")

    def names(self, params=None):
        return sorted(s["name"] for s in self.call("sandbox.list", params)["sandboxes"])

    def test_list_all(self):
        self.assertEqual(self.names(), ["a", "b", "c", "d"])
        self.assertEqual(self.names({}), ["a", "b", "c", "d"])
        full = {s["id"]: s for s in self.call("sandbox.list")["sandboxes"]}
        self.assertEqual(full[self.a["id"]], self.inspect("a"))

    def test_filter_by_labels(self):
        self.assertEqual(self.names({"labels": {"team": "x"}}), ["a", "b"])
        self.assertEqual(self.names({"labels": {"team": "x", "env": "prod"}}), ["a"])
        self.assertEqual(self.names({"labels": {"team": "y"}}), ["c"])
        self.assertEqual(self.names({"labels": {"team": "z"}}), [])
        self.assertEqual(self.names({"labels": {"env": ""}}), [])
        self.assertEqual(self.names({"labels": {"nosuch": "x"}}), [])
        self.assertEqual(self.names({"labels": {}}), ["a", "b", "c", "d"])

    def test_filter_by_state(self):
        self.assertEqual(self.names({"state": "started"}), ["a", "b", "d"])
        self.assertEqual(self.names({"state": "stopped"}), ["c"])
        self.assertEqual(self.names({"state": "paused"}), [])
        self.call("sandbox.stop", {"sandbox": "a"})
        self.assertEqual(self.names({"state": "stopped"}), ["a", "c"])

    def test_filter_by_state_and_labels(self):
        self.assertEqual(self.names({"state": "started", "labels": {"team": "x"}}), ["a", "b"])
        self.assertEqual(self.names({"state": "stopped", "labels": {"team": "x"}}), [])

    def test_deleted_disappear(self):
        self.call("sandbox.delete", {"sandbox": "b", "force": True})
        self.assertEqual(self.names(), ["a", "c", "d"])


class InsideTest(SandboxdTestCase):
    """What a process sees inside a sandbox."""

    def setUp(self):
        super().setUp()
        self.sb = self.create("inside")

    def test_pid1_is_sandbox_init(self):
        self.assertEqual(self.sh("inside", "cat /proc/1/comm"), "sandbox-init\n")
        self.assertEqual(self.sh("inside", "tr '\\0' ' ' < /proc/1/cmdline"), "sandbox-init %s " % self.sb["id"])

    def test_proc_is_fresh(self):
        out = self.sh("inside", "ps -o pid,args")
        lines = out.strip().splitlines()[1:]
        self.assertEqual(len(lines), 2, out)   # sandbox-init and ps itself
        self.assertTrue(lines[0].split()[0] == "1", out)

    def test_hostname(self):
        self.assertEqual(self.sh("inside", "hostname; cat /etc/hostname; cat /proc/sys/kernel/hostname"),
                         "inside\ninside\ninside\n")
        self.assertEqual(self.sh("inside", "echo $HOSTNAME"), "inside\n")

    def test_hostname_option(self):
        self.create("named", hostname="custom-host")
        self.assertEqual(self.sh("named", "hostname; cat /etc/hostname"), "custom-host\ncustom-host\n")
        self.assertIn("127.0.1.1\tcustom-host\n", self.sh("named", "cat /etc/hosts"))

    def test_etc_hosts(self):
        hosts = self.sh("inside", "cat /etc/hosts")
        self.assertIn("127.0.0.1\tlocalhost\n", hosts)
        self.assertIn("127.0.1.1\tinside\n", hosts)
        self.assertIn("::1\tlocalhost", hosts)

    def test_dev_is_minimal(self):
        names = set(self.sh("inside", "ls /dev").split())
        for n in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"):
            self.assertIn(n, names)
        for n in ("sda", "vda", "mem", "kmsg", "nvme0", "loop0"):
            self.assertNotIn(n, names)
        self.assertEqual(self.sh("inside", "head -c 5 /dev/zero | wc -c; echo x > /dev/null && echo ok"), "5\nok\n")
        r = self.exec("inside", "echo x > /dev/full")
        self.assertNotEqual(r["exit_code"], 0)

    def test_sys_is_read_only(self):
        r = self.exec("inside", "touch /sys/x; echo 1 > /sys/kernel/profiling")
        self.assertNotEqual(r["exit_code"], 0)
        self.assertIn("/sys type sysfs (ro,", self.sh("inside", "mount"))

    def test_root_is_overlay(self):
        self.assertRegex(self.sh("inside", "mount | grep ' on / '"), r"^\S+ on / type overlay ")

    def test_own_network_namespace(self):
        # bridge mode (the default): loopback and its end of the veth pair only
        ifaces = sorted(l.split(":")[0].strip() for l in self.sh("inside", "cat /proc/net/dev").splitlines()[2:])
        self.assertEqual(ifaces, ["eth0", "lo"])

    def test_own_cgroup_namespace(self):
        self.assertRegex(self.sh("inside", "grep '^0::' /proc/self/cgroup"), r"^0::/exec-\d+\n$")

    def test_image_users(self):
        out = self.sh("inside", "cut -d: -f1,3 /etc/passwd")
        self.assertEqual(out, "root:0\nsandbox:1000\nnobody:65534\n")


class IsolationTest(SandboxdTestCase):
    def test_files_are_private(self):
        self.create("left")
        self.create("right")
        self.sh("left", "echo secret > /workspace/only-left; echo changed > /etc/os-release")
        self.assertEqual(self.exec("right", ["cat", "/workspace/only-left"])["exit_code"], 1)
        self.assertNotIn("changed", self.sh("right", "cat /etc/os-release"))
        self.assertEqual(self.sh("left", "cat /etc/os-release"), "changed\n")
        # The image itself is untouched: a new sandbox sees the original.
        self.create("third")
        self.assertNotIn("changed", self.sh("third", "cat /etc/os-release"))

    def test_processes_are_private(self):
        self.create("left")
        self.create("right")
        c = self.daemon.client()
        rid = c.request("process.exec", {"sandbox": "left", "cmd": ["sleep", "123"]})
        wait_until(lambda: "sleep 123" in self.sh("left", "ps -o args"), 5)
        self.assertNotIn("sleep 123", self.sh("right", "ps -o args"))
        self.assertEqual(self.sh("right", "pidof sleep || echo none"), "none\n")
        self.call("sandbox.stop", {"sandbox": "left", "force": True})
        c.result(rid)

    def test_hostnames_are_private(self):
        self.create("left")
        self.create("right")
        # Root inside has no CAP_SYS_ADMIN by default (as in Docker): the
        # hostname is the sandbox's name and stays so.
        r = self.exec("left", ["hostname", "changed-left"])
        self.assertNotEqual(r["exit_code"], 0, r)
        self.assertEqual(self.sh("left", "hostname"), "left\n")
        # Given the capability, it changes its own hostname and nobody else's:
        # the UTS namespace belongs to the sandbox's user namespace.
        self.create("admin", cap_add=["SYS_ADMIN"])
        self.sh("admin", "hostname changed-admin")
        self.assertEqual(self.sh("admin", "hostname"), "changed-admin\n")
        self.assertEqual(self.sh("right", "hostname"), "right\n")
        self.assertEqual(os.uname().nodename, self.call("system.info")["hostname"])

    def test_host_files_not_visible(self):
        self.create("left")
        marker = os.path.join(self.daemon.dir, "host-marker")
        open(marker, "w").write("host")
        r = self.exec("left", ["cat", marker])
        self.assertNotEqual(r["exit_code"], 0)


class StartingTest(SandboxdTestCase):
    """A start whose init takes long to set up (here: every sandbox group
    frozen) holds no one else up; meanwhile the sandbox is starting, which
    stop, delete, start and the fs calls respect."""

    def freeze(self, frozen):
        with open(os.path.join(self.daemon.cgroup_base_path(), "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")

    def tearDown(self):
        self.freeze(False)
        super().tearDown()

    def listed(self, name):
        for sb in self.call("sandbox.list")["sandboxes"]:
            if sb["name"] == name:
                return sb
        return None

    def test_the_daemon_answers_while_a_sandbox_starts(self):
        self.freeze(True)
        slow = self.daemon.client(timeout=90)
        rid = slow.request("sandbox.create", {"name": "slow"})
        wait_until(lambda: self.listed("slow") is not None, 10, message="the starting sandbox is not listed")
        t = time.monotonic()
        self.call("system.ping")
        ping = time.monotonic() - t
        self.assertLess(ping, 1.0, "system.ping took %.1f s while a sandbox's init was setting up" % ping)
        other = self.create("quick", start=False)
        self.assertEqual(other["state"], "stopped")
        self.assertEqual(self.listed("slow")["state"], "creating")
        self.freeze(False)
        sb = slow.wait(rid)["result"]
        self.assertEqual(sb["state"], "started")
        self.daemon.known_ids.add(sb["id"])
        self.assertEqual(self.sh("slow", "echo up"), "up\n")

    def test_a_start_of_a_stopped_sandbox_does_not_block(self):
        self.create("cold", start=False)
        self.freeze(True)
        slow = self.daemon.client(timeout=90)
        rid = slow.request("sandbox.start", {"sandbox": "cold"})
        time.sleep(0.3)
        t = time.monotonic()
        self.assertEqual(self.inspect("cold")["state"], "stopped")
        self.assertLess(time.monotonic() - t, 1.0)
        self.freeze(False)
        self.assertEqual(slow.wait(rid)["result"]["state"], "started")
        self.assertEqual(self.sh("cold", "echo up"), "up\n")

    def test_calls_on_a_starting_sandbox(self):
        self.create("warm", start=False)
        self.freeze(True)
        slow = self.daemon.client(timeout=90)
        rid = slow.request("sandbox.start", {"sandbox": "warm"})
        time.sleep(0.3)
        for method, params in (("fs.list", {"path": "/"}), ("sandbox.start", {}), ("sandbox.delete", {}),
                               ("process.exec", {"cmd": ["true"]}), ("sandbox.pause", {})):
            params["sandbox"] = "warm"
            err = self.assertRpcError(BAD_STATE, method, params)
            self.assertIn("starting", err["message"], "%s: %s" % (method, err["message"]))
        # A stop and a forced delete wait for the start, then do their work.
        stopper = self.daemon.client(timeout=90)
        sid = stopper.request("sandbox.stop", {"sandbox": "warm"})
        deleter = self.daemon.client(timeout=90)
        did = deleter.request("sandbox.delete", {"sandbox": "warm", "force": True})
        time.sleep(0.2)
        self.freeze(False)
        started = slow.wait(rid)["result"]
        self.assertEqual(started["state"], "started")
        self.assertEqual(stopper.wait(sid).get("result"), {})
        self.assertEqual(deleter.wait(did).get("result"), {})
        self.assertIsNone(self.listed("warm"))
        wait_until(lambda: not pid_alive(started["init_pid"]), 5, message="the init of a deleted sandbox lives on")
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(started["id"])))


if __name__ == "__main__":
    main()
