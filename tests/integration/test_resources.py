"""Resource limits and accounting: memory and OOM, pids (fork bombs), CPU
share, disk quota, pause/resume, live updates and stats. These run on the
host (hybrid cgroups: v1 controllers) and in the cgroup v2 guest
(tests/vm), so every assertion is about behaviour, not about which files
the kernel offers."""

import os
import time
import unittest

import sbxtest
from sbxtest import SandboxdTestCase, wait_until

MiB = 1024 * 1024


class ResourceTests(SandboxdTestCase):

    def sh(self, sb, command, timeout=60, **kw):
        params = {"sandbox": sb, "command": command, "timeout_s": timeout}
        params.update(kw)
        return self.call("process.exec", params, timeout=timeout + 30)

    def stats(self, sb):
        return self.call("sandbox.stats", {"sandbox": sb})

    def test_defaults_are_reported_and_applied(self):
        info = self.call("system.info")
        self.assertIn(info["cgroup"], ("v1", "v2", "hybrid"))
        sb = self.create("defaults")
        d = info["resource_defaults"]
        self.assertEqual(sb["resources"]["memory_mb"], d["memory_mb"])
        self.assertEqual(sb["resources"]["pids"], d["pids"])
        st = self.stats(sb["id"])
        if d["memory_mb"]:
            self.assertEqual(st["memory_max_bytes"], d["memory_mb"] * MiB)

    def test_memory_limit_oom_kills_the_process_not_the_sandbox(self):
        sb = self.create("oom", resources={"memory_mb": 48})
        # A string that doubles until the shell is killed at the limit.
        r = self.sh(sb["id"], "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done", timeout=60)
        self.assertFalse(r["timed_out"], r)
        self.assertEqual(r["signal"], "KILL", r)
        self.assertEqual(r["exit_code"], 137, r)
        # The sandbox and the daemon live on.
        self.assertEqual(self.inspect(sb["id"])["state"], "started")
        self.assertEqual(self.sh(sb["id"], "echo alive")["stdout"], "alive\n")
        st = self.stats(sb["id"])
        self.assertEqual(st["oom_kills"], 1, st)
        self.assertEqual(st["memory_max_bytes"], 48 * MiB)
        self.assertGreaterEqual(st["memory_peak_bytes"], 40 * MiB, st)
        wait_until(lambda: "killed at the memory limit" in self.daemon.log(), timeout=10,
                   message="the OOM kill was not logged")
        self.call("system.ping")

    def test_fork_bomb_stops_at_pids_limit(self):
        sb = self.create("bomb", resources={"pids": 40})
        # The subshell forks until the kernel says no, then dies; what it
        # started stays, holding every pid the sandbox may have.
        r = self.sh(sb["id"], "(while :; do sleep 60 & done) 2>/dev/null; echo survived", timeout=30)
        self.assertFalse(r["timed_out"], r)
        self.assertEqual(r["stdout"], "survived\n", r)
        st = self.stats(sb["id"])
        self.assertLessEqual(st["pids"], 40, st)
        self.assertGreaterEqual(st["pids"], 30, st)
        # The host and the daemon stay responsive while the bomb is at the limit.
        t = time.monotonic()
        self.call("system.ping")
        self.assertLess(time.monotonic() - t, 5)
        # Whatever tries to fork more is refused, and nothing hangs.
        r = self.sh(sb["id"], "for i in $(seq 50); do sleep 1 & done 2>&1; echo end", timeout=30)
        self.assertIn("can't fork", r["stdout"] + r["stderr"], r)
        self.assertLessEqual(self.stats(sb["id"])["pids"], 40)
        self.call("sandbox.stop", {"sandbox": sb["id"], "timeout_s": 2}, timeout=60)
        self.assertEqual(self.inspect(sb["id"])["state"], "stopped")
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(sb["id"])))
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.assertEqual(self.sh(sb["id"], "echo back")["stdout"], "back\n")

    def test_cpu_share(self):
        sb = self.create("cpu", resources={"cpus": 0.5})
        before = self.stats(sb["id"])["cpu_usage_us"]
        t = time.monotonic()
        # Two busy loops: without the limit they would use both cores.
        r = self.sh(sb["id"], "busy() { while :; do :; done; }; busy & busy & sleep 3; kill %1 %2", timeout=30)
        wall = time.monotonic() - t
        self.assertEqual(r["exit_code"], 0, r)
        used = (self.stats(sb["id"])["cpu_usage_us"] - before) / 1e6
        share = used / wall
        self.assertGreater(share, 0.4, "cpu share %.2f over %.1f s" % (share, wall))
        self.assertLess(share, 0.6, "cpu share %.2f over %.1f s" % (share, wall))

    def test_disk_limit_enospc_and_neighbours_unaffected(self):
        a = self.create("disk-a", resources={"disk_mb": 32})
        b = self.create("disk-b", resources={"disk_mb": 32})
        r = self.sh(a["id"], "dd if=/dev/zero of=/fill bs=1M count=64; echo rc=$?")
        # A disk image fills up (ENOSPC); an ext4 project quota says EDQUOT.
        self.assertRegex(r["stderr"], "No space left on device|Disk quota exceeded", r)
        self.assertIn("rc=1", r["stdout"], r)
        st = self.stats(a["id"])
        self.assertEqual(st["disk_max_bytes"], 32 * MiB)
        self.assertGreater(st["disk_bytes"], 20 * MiB, st)
        r = self.sh(b["id"], "dd if=/dev/zero of=/ok bs=1M count=8 2>/dev/null; wc -c < /ok")
        self.assertEqual(r["stdout"].strip(), str(8 * MiB), r)
        # Space comes back when the file goes, and a stop/start keeps files.
        self.sh(a["id"], "rm /fill; echo kept > /workspace/note")
        self.call("sandbox.stop", {"sandbox": a["id"]}, timeout=60)
        self.call("sandbox.start", {"sandbox": a["id"]})
        self.assertEqual(self.sh(a["id"], "cat /workspace/note")["stdout"], "kept\n")
        r = self.sh(a["id"], "dd if=/dev/zero of=/again bs=1M count=8 2>/dev/null; wc -c < /again")
        self.assertEqual(r["stdout"].strip(), str(8 * MiB), r)

    def test_pause_freezes_and_resume_continues(self):
        sb = self.create("pause")
        self.call("process.exec", {"sandbox": sb["id"], "command":
                                   "sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done' "
                                   ">/dev/null 2>&1 &"})
        wait_until(lambda: self.sh(sb["id"], "cat /tmp/n 2>/dev/null")["stdout"].strip() not in ("", "0"))
        self.assertEqual(self.call("sandbox.pause", {"sandbox": sb["id"]})["state"], "paused")
        self.assertEqual(self.inspect(sb["id"])["state"], "paused")
        self.assertRpcError(3, "process.exec", {"sandbox": sb["id"], "cmd": ["true"]})
        self.assertRpcError(3, "sandbox.pause", {"sandbox": sb["id"]})
        upper = self.counter_on_host(sb["id"])
        first = upper()
        time.sleep(0.6)
        self.assertEqual(upper(), first, "the counter moved while paused")
        self.call("sandbox.resume", {"sandbox": sb["id"]})
        wait_until(lambda: upper() != first, timeout=10, message="the counter did not move after resume")
        # A paused sandbox stops cleanly too.
        self.call("sandbox.pause", {"sandbox": sb["id"]})
        self.call("sandbox.stop", {"sandbox": sb["id"], "timeout_s": 2}, timeout=60)
        self.assertEqual(self.inspect(sb["id"])["state"], "stopped")

    def counter_on_host(self, sb_id):
        """Read /tmp/n of a sandbox without running anything in it."""
        pid = self.inspect(sb_id)["init_pid"]
        path = "/proc/%d/root/tmp/n" % pid

        def read():
            with open(path) as f:
                return f.read().strip()
        return read

    def test_update_memory_live(self):
        sb = self.create("upd", resources={"memory_mb": 32})
        # tmpfs pages cannot be reclaimed without swap: past the limit, dd dies.
        hog = "dd if=/dev/zero of=/dev/shm/x bs=1M count=64 2>/dev/null; echo rc=$?"
        r = self.sh(sb["id"], hog)
        self.assertNotIn("rc=0", r["stdout"], r)
        self.sh(sb["id"], "rm -f /dev/shm/x")
        u = self.call("sandbox.update", {"sandbox": sb["id"], "resources": {"memory_mb": 256}})
        self.assertEqual(u["resources"]["memory_mb"], 256)
        self.assertEqual(self.stats(sb["id"])["memory_max_bytes"], 256 * MiB)
        r = self.sh(sb["id"], hog)
        self.assertIn("rc=0", r["stdout"], r)
        self.sh(sb["id"], "rm -f /dev/shm/x")
        self.call("sandbox.update", {"sandbox": sb["id"], "resources": {"memory_mb": 32}})
        self.assertEqual(self.stats(sb["id"])["memory_max_bytes"], 32 * MiB)
        r = self.sh(sb["id"], hog)
        self.assertNotIn("rc=0", r["stdout"], r)
        # Limits persist in the sandbox object and across stop/start.
        self.call("sandbox.stop", {"sandbox": sb["id"]}, timeout=60)
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.assertEqual(self.stats(sb["id"])["memory_max_bytes"], 32 * MiB)
        if "disk.project_quota" in self.call("system.info")["features"]:
            # A project quota changes live.
            u = self.call("sandbox.update", {"sandbox": sb["id"], "resources": {"disk_mb": 99}})
            self.assertEqual(u["resources"]["disk_mb"], 99)
            self.assertEqual(self.stats(sb["id"])["disk_max_bytes"], 99 * MiB)
        else:
            # A disk image has a fixed size.
            self.assertRpcError(7, "sandbox.update", {"sandbox": sb["id"], "resources": {"disk_mb": 99}})

    def test_stats_agree_with_usage(self):
        sb = self.create("stats", resources={"memory_mb": 512})
        base = self.stats(sb["id"])["memory_bytes"]
        # /dev/shm is memory: 48 MiB written there are 48 MiB used.
        self.sh(sb["id"], "dd if=/dev/zero of=/dev/shm/blob bs=1M count=48 2>/dev/null")
        st = self.stats(sb["id"])
        grown = st["memory_bytes"] - base
        self.assertGreater(grown, 48 * MiB * 0.9, st)
        self.assertLess(grown, 48 * MiB * 1.1, st)
        self.assertGreaterEqual(st["memory_peak_bytes"], st["memory_bytes"])
        self.assertGreaterEqual(st["pids"], 1)
        for k in ("cpu_usage_us", "disk_bytes", "oom_kills"):
            self.assertIsInstance(st[k], int)
        # A bridged sandbox's eth0 sees router solicitations and the like.
        self.assertEqual(sorted(st["net"]), ["rx_bytes", "tx_bytes"])
        self.assertTrue(all(isinstance(v, int) and v >= 0 for v in st["net"].values()), st["net"])

    def test_bad_resources(self):
        self.assertRpcError(-32602, "sandbox.create", {"resources": {"memory_mb": "big"}}, param="memory_mb")
        self.assertRpcError(-32602, "sandbox.create", {"resources": {"cpus": -1}}, param="cpus")
        self.assertRpcError(-32602, "sandbox.create", {"resources": {"memory_mb": 2}}, param="resources")
        self.assertRpcError(-32602, "sandbox.create", {"resources": {"gpus": 1}}, param="resources")
        self.assertRpcError(-32602, "sandbox.create", {"resources": 5}, param="resources")
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_ctl_stats_update_pause(self):
        rc, out, err = self.daemon.ctl("create", "--name", "c1", "--cpus", "0.5", "--memory", "128m",
                                       "--pids", "64", "--disk", "64m")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.daemon.ctl("stats", "c1")
        self.assertEqual(rc, 0, err)
        self.assertIn("MEM USAGE / LIMIT", out)
        self.assertIn("128.0 MiB", out)
        rc, out, err = self.daemon.ctl("update", "--memory", "1g", "c1")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.inspect("c1")["resources"]["memory_mb"], 1024)
        self.assertEqual(self.daemon.ctl("pause", "c1")[0], 0)
        self.assertEqual(self.inspect("c1")["state"], "paused")
        self.assertEqual(self.daemon.ctl("resume", "c1")[0], 0)
        rc, out, err = self.daemon.ctl("create", "--memory", "lots")
        self.assertEqual(rc, 125)
        self.assertIn("--memory", err)


class PidsLimitTest(SandboxdTestCase):
    """A sandbox at its pids limit: every new process is refused, and the way
    out must not need a delete."""

    def full_sandbox(self, name, pids, command):
        try:
            sb = self.create(name, network={"mode": "none"}, resources={"pids": pids})
        except sbxtest.RpcError as e:
            if e.code == 7:
                self.skipTest("no pids controller for sandboxd on this host: %s" % e.message)
            raise
        cmd = self.call("process.spawn", {"sandbox": name, "command": command})["cmd_id"]
        wait_until(lambda: self.call("sandbox.stats", {"sandbox": name})["pids"] >= pids - 2, 30,
                   message="the sandbox did not fill up to its pids limit")
        return sb, cmd

    def sleep_filled(self, name, pids):
        # The shell forks sleeps until the kernel refuses, and dies of it:
        # init and the sleeps hold every pid but one.
        sb, cmd = self.full_sandbox(name, pids, "while :; do sleep 1000 & done")
        for _ in range(20):
            self.call("process.wait", {"sandbox": name, "cmd_id": cmd, "timeout_s": 20}, timeout=30)
            if self.call("sandbox.stats", {"sandbox": name})["pids"] == pids - 1:
                return sb
            # A set-up process still held a pid when the shell hit the limit:
            # top up.
            cmd = self.call("process.spawn", {"sandbox": name, "command": "while :; do sleep 1000 & done"})["cmd_id"]
        self.fail("the sandbox did not settle one pid below its limit")

    def assertAtLimit(self, name, pids, method, params):
        params = dict(params, sandbox=name)
        err = self.assertRpcError(4, method, params)
        for part in ("pids limit of %d" % pids, "sandboxctl update --pids", "sandboxctl kill --all %s" % name):
            self.assertIn(part, err["message"], (method, err))
        self.assertEqual(err["data"].get("errno"), 11, err)

    def test_at_the_limit_commands_say_so_and_raising_it_helps(self):
        sb = self.sleep_filled("full", 16)
        self.call("session.create", {"sandbox": "full", "session_id": "s"})
        for method, params in (("process.exec", {"cmd": ["true"]}), ("process.spawn", {"cmd": ["true"]}),
                               ("session.exec", {"session_id": "s", "command": "true"})):
            self.assertAtLimit("full", 16, method, params)
        rc, out, err = self.daemon.ctl("exec", "full", "true")
        self.assertNotEqual(rc, 0)
        self.assertIn("pids limit of 16", err)
        # Raising the limit works at the limit, and commands run again.
        u = self.call("sandbox.update", {"sandbox": "full", "resources": {"pids": 32}})
        self.assertEqual(u["resources"]["pids"], 32)
        self.assertEqual(self.call("process.exec", {"sandbox": "full", "command": "echo room"})["stdout"], "room\n")
        self.assertEqual(self.inspect("full")["init_pid"], sb["init_pid"])

    def test_kill_all_empties_a_full_sandbox_but_keeps_it(self):
        sb = self.sleep_filled("sleepy", 16)
        self.assertAtLimit("sleepy", 16, "process.exec", {"cmd": ["true"]})
        rc, out, err = self.daemon.ctl("kill", "--all", "-s", "KILL", "sleepy")
        self.assertEqual(rc, 0, err)
        wait_until(lambda: self.call("sandbox.stats", {"sandbox": "sleepy"})["pids"] == 1, 10,
                   message="processes are left after kill --all")
        self.assertEqual(self.call("process.exec", {"sandbox": "sleepy", "command": "echo free"})["stdout"], "free\n")
        st = self.inspect("sleepy")
        self.assertEqual((st["state"], st["init_pid"]), ("started", sb["init_pid"]))

    def test_kill_all_stops_a_fork_bomb(self):
        # A shell of the sandbox dies when it cannot fork; this one is started
        # again and again, so that new processes take every pid that frees
        # up while the walk goes. TERM in rounds ends them all.
        sb, _ = self.full_sandbox("bomb", 32, "while :; do sh -c 'while :; do sleep 1000 & done' 2>/dev/null; done")
        time.sleep(1)
        self.assertGreaterEqual(self.call("sandbox.stats", {"sandbox": "bomb"})["pids"], 30)
        r = self.call("process.kill", {"sandbox": "bomb", "all": True})
        self.assertGreaterEqual(r["signaled"], 30, r)
        wait_until(lambda: self.call("sandbox.stats", {"sandbox": "bomb"})["pids"] == 1, 20,
                   message="the fork bomb survived kill --all")
        self.assertEqual(self.call("process.exec", {"sandbox": "bomb", "command": "echo calm"})["stdout"], "calm\n")
        self.assertEqual(self.inspect("bomb")["init_pid"], sb["init_pid"])

    def test_kill_all_bad_input(self):
        self.create("k", network={"mode": "none"}, start=False)
        self.assertRpcError(3, "process.kill", {"sandbox": "k", "all": True})
        self.call("sandbox.start", {"sandbox": "k"})
        self.assertRpcError(-32602, "process.kill", {"sandbox": "k", "all": True, "cmd_id": "x"}, param="cmd_id")
        self.assertRpcError(-32602, "process.kill", {"sandbox": "k", "all": True, "signal": "NOPE"}, param="signal")
        self.assertRpcError(-32602, "process.kill", {"sandbox": "k", "all": "yes"}, param="all")
        self.assertRpcError(-32602, "process.kill", {"sandbox": "k"}, param="cmd_id")
        self.assertEqual(self.call("process.kill", {"sandbox": "k", "all": True})["signaled"], 0)
        rc, out, err = self.daemon.ctl("kill", "--all", "k", "extra")
        self.assertEqual(rc, 125, err)


class DelegatedSubtreeTest(SandboxdTestCase):
    """Under systemd with Delegate=yes, sandboxd starts in a group of its own
    that it may manage: it moves itself to a leaf and puts sandboxes beside
    it (no internal processes), touching nothing above."""

    start_daemon = False

    def test_runs_inside_a_delegated_group(self):
        if not os.path.exists("/sys/fs/cgroup/cgroup.subtree_control"):
            self.skipTest("needs a pure cgroup v2 host (runs in the tests/vm guest)")
        deleg = "/sys/fs/cgroup/sbxdeleg-%d" % os.getpid()
        os.mkdir(deleg)
        self.addCleanup(self.remove_tree, deleg)
        # What systemd does for a delegated unit: controllers available to it.
        for c in ("cpu", "memory", "pids"):
            with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
                f.write("+" + c)
        d = self.new_daemon(start=False, own_cgroup=False)
        cmd = d.command()
        d.command = lambda: ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', deleg] + cmd
        d.start()
        self.daemon = d
        self.rpc = d.client()
        info = self.call("system.info")
        self.assertEqual(info["cgroup_base"], os.path.basename(deleg))
        with open("/proc/%d/cgroup" % info["pid"]) as f:
            self.assertEqual(f.read().strip(), "0::/%s/supervisor" % os.path.basename(deleg))
        sb = self.create("deleg", resources={"memory_mb": 64})
        path = os.path.join(deleg, "sbx-" + sb["id"])
        with open(os.path.join(path, "memory.max")) as f:
            self.assertEqual(int(f.read()), 64 * MiB)
        with open(os.path.join(deleg, "cgroup.procs")) as f:
            self.assertEqual(f.read().strip(), "", "processes left in the delegated group itself")
        self.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
        self.assertFalse(os.path.exists(path))
        # A restart: the group itself now has controllers enabled and takes no
        # process, so the service manager starts the daemon in the leaf
        # (systemd's DelegateSubgroup=supervisor), where it settles as before.
        d.stop()
        d.command = lambda: ["sh", "-c", 'echo $$ > "$0/supervisor/cgroup.procs" && exec "$@"', deleg] + cmd
        d.start()
        self.rpc = d.client()
        self.assertEqual(self.call("system.info")["cgroup_base"], os.path.basename(deleg))
        d.stop()

    def remove_tree(self, path):
        for sub in sorted((os.path.join(r, n) for r, ds, _ in os.walk(path) for n in ds), key=len, reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass
        try:
            os.rmdir(path)
        except OSError:
            pass


if __name__ == "__main__":
    sbxtest.main()
