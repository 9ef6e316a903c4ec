"""Many sandboxes on one host: the daemon's descriptor budget, limit errors
for what the kernel refuses, and nothing left in the kernel afterwards
(loop devices)."""

import contextlib
import os
import time
import unittest

from sbxtest import (ConnectionClosed, Daemon, RpcClient, RpcError, SandboxdTestCase, children_of, main,
                     wait_until)

LIMIT = 4


class NofileDaemon(Daemon):
    """A daemon started with a given RLIMIT_NOFILE (soft, hard)."""

    def __init__(self, nofile, **kw):
        self.nofile = nofile
        super().__init__(**kw)

    def command(self):
        return ["prlimit", "--nofile=%d:%d" % self.nofile, "--"] + super().command()


def mount_lines(needle):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if needle in line]


def loop_devices():
    """{name: backing file or None} of every loop device on the host."""
    devs = {}
    for name in os.listdir("/sys/block"):
        if not name.startswith("loop"):
            continue
        try:
            with open("/sys/block/%s/loop/backing_file" % name) as f:
                devs[name] = f.read().strip()
        except OSError:
            devs[name] = None  # exists, not attached
    return devs


class DescriptorBudgetTest(SandboxdTestCase):
    start_daemon = False

    def nofile_daemon(self, soft, hard, **config):
        d = NofileDaemon((soft, hard), config=config)
        self.daemons.append(d)
        self.addCleanup(d.cleanup)
        d.start()
        self.daemon = d
        self.rpc = d.client(timeout=120)
        return d

    def test_soft_limit_raised_to_hard(self):
        d = self.nofile_daemon(1024, 4096)
        fds = self.call("system.info")["descriptors"]
        self.assertEqual(fds["limit"], 4096)
        self.assertGreater(fds["used"], 3)
        self.assertLess(fds["used"], 200)
        self.assertGreaterEqual(fds["reserve"], 64)
        with open("/proc/%d/limits" % d.pid) as f:
            line = [ln for ln in f if ln.startswith("Max open files")][0]
        self.assertEqual(line.split()[3:5], ["4096", "4096"])
        self.assertIn("soft limit raised from 1024 to 4096", d.log())
        rc, out, err = self.ctl("info")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"descriptors: +\d+ used of 4096 \(\d+ kept for existing sandboxes\)\n")

    def test_connections_past_the_limit_are_answered_and_closed(self):
        """Out of descriptors, accept fails; the waiting client gets one error
        line and EOF, and the loop does not spin on the listening socket."""
        d = self.nofile_daemon(256, 256)
        clients, refused = [], []
        for _ in range(300):
            c = RpcClient(d.socket, timeout=10)
            clients.append(c)
        self.addCleanup(lambda: [c.close() for c in clients])
        for c in clients:
            c.sock.settimeout(0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(refused) < 300 - 256:
            refused = [c for c in clients if c.buf or self._readable(c)]
            time.sleep(0.05)
        self.assertGreaterEqual(len(refused), 300 - 256)
        msg = refused[-1].recv_msg(timeout=5)
        self.assertEqual(msg["error"]["code"], LIMIT, msg)
        self.assertIn("open-file limit 256", msg["error"]["message"])
        self.assertTrue(refused[-1].expect_eof())
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu():
            with open("/proc/%d/stat" % d.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        # More clients knock while none can be accepted: they are answered,
        # and the daemon stays idle otherwise.
        more = [RpcClient(d.socket, timeout=10) for _ in range(20)]
        self.addCleanup(lambda: [c.close() for c in more])
        before = cpu()
        time.sleep(1.0)
        self.assertLess(cpu() - before, 0.3, "the daemon spins while it cannot accept")
        for c in more:
            self.assertTrue(c.expect_eof(), "a client past the limit was neither served nor closed")
        for c in clients:
            c.close()

        def ping():
            try:
                with RpcClient(d.socket, timeout=5) as c:
                    return c.call("system.ping") == {}
            except (ConnectionClosed, OSError):
                return False  # refused: the closed clients are not all reaped yet

        wait_until(ping, timeout=10, message="the daemon does not serve after clients left")

    @staticmethod
    def _readable(c):
        import select
        return bool(select.select([c.sock], [], [], 0)[0])

    def check_small_tables(self, d, sid):
        """The sandboxes' descriptors are parked above the low numbers (a
        quarter of the limit here), and a process sandboxd starts for a
        command gets a small table, not a copy of the daemon's: before,
        each one copied and closed a descriptor per sandbox."""
        pidfds = []
        for n in os.listdir("/proc/%d/fd" % d.pid):
            with contextlib.suppress(OSError):
                if os.readlink("/proc/%d/fd/%s" % (d.pid, n)) == "anon_inode:[pidfd]":
                    pidfds.append(int(n))
        high = [n for n in pidfds if n >= 256]
        # Up there first; only what does not fit goes low.
        self.assertGreaterEqual(len(high), min(len(pidfds), 1024 - 256) - 32,
                                "%d of %d pidfds parked" % (len(high), len(pidfds)))
        spawned = self.call("process.spawn", {"sandbox": sid, "cmd": ["sleep", "30"]})

        def fdsize(pid):
            with open("/proc/%d/status" % pid) as fh:
                return int(next(ln for ln in fh if ln.startswith("FDSize:")).split()[1])

        def monitors():
            return [p for p, argv in children_of(d.pid).items() if argv[:1] == [b"sandbox-monitor"]]

        wait_until(monitors, timeout=10, message="no monitor for the spawned command")
        self.assertGreaterEqual(fdsize(d.pid), 1024)
        for mon in monitors():
            self.assertLessEqual(fdsize(mon), 256, "the monitor %d got a copy of the daemon's table" % mon)
        # The command of an exec runs on a table as small.
        out = self.sh(sid, "grep FDSize /proc/self/status")
        self.assertLessEqual(int(out.split()[1]), 256, out)
        self.call("process.kill", {"sandbox": sid, "cmd_id": spawned["cmd_id"], "signal": "KILL"})
        self.call("process.wait", {"sandbox": sid, "cmd_id": spawned["cmd_id"], "timeout_s": 20})

    def test_creates_stop_before_existing_sandboxes_starve(self):
        """Soft and hard limit 1024: creates are refused with a limit error
        naming the limit while every existing sandbox still takes work."""
        d = self.nofile_daemon(1024, 1024, max_sandboxes=5000, default_disk_mb=0)
        fds_before = d.settled_fd_count(self.rpc)
        ids = []
        refusal = None
        for _ in range(1100):
            try:
                sb = self.call("sandbox.create", {"network": {"mode": "none"}, "auto_stop_min": 0})
            except RpcError as e:
                refusal = e
                break
            d.known_ids.add(sb["id"])
            ids.append(sb["id"])
        self.assertIsNotNone(refusal, "1100 creates under a limit of 1024 open files all succeeded")
        # First of all, the sandboxes that exist still answer.
        for sid in (ids[0], ids[-1]):
            self.assertEqual(self.sh(sid, "echo ok"), "ok\n")
        self.assertEqual(refusal.code, LIMIT, refusal.message)
        self.assertIn("RLIMIT_NOFILE", refusal.message)
        self.assertIn("LimitNOFILE", refusal.message)
        self.assertGreater(len(ids), 800)  # the reserve is a reserve, not half the limit
        # The refused create left nothing behind.
        on_disk = set(d.sandbox_ids_on_disk())
        self.assertEqual(on_disk, set(ids))
        groups = {n[4:] for n in os.listdir(d.cgroup_base_path()) if n.startswith("sbx-")}
        self.assertEqual(groups, set(ids))
        self.assertEqual(len(self.call("sandbox.list")["sandboxes"]), len(ids))
        self.assertEqual(mount_lines(d.run_dir), [])
        self.assertEqual([b for b in loop_devices().values() if b and b.startswith(d.dir)], [])
        info = self.call("system.info")["descriptors"]
        self.assertEqual(info["limit"], 1024)
        self.assertGreater(info["used"], 1024 - info["reserve"] - 64)
        # A second refusal, and the ones after it, are just as clear; a
        # bridged one leaves no port on the bridge either.
        err = self.assertRpcError(LIMIT, "sandbox.create", {"network": {"mode": "bridge"}})
        self.assertIn("RLIMIT_NOFILE", err["message"])
        brif = "/sys/class/net/%s/brif" % d.config["bridge"]
        if os.path.isdir(brif):
            self.assertEqual(os.listdir(brif), [])
        # A stopped sandbox holds no descriptor: made, but not started.
        stopped = self.call("sandbox.create", {"network": {"mode": "none"}, "start": False})
        d.known_ids.add(stopped["id"])
        err = self.assertRpcError(LIMIT, "sandbox.start", {"sandbox": stopped["id"]})
        self.assertIn("RLIMIT_NOFILE", err["message"])

        self.assertIn("leaves room for about", d.log())  # fewer than max_sandboxes
        # Work on the sandboxes that exist goes on: exec into the first and
        # the last, background commands and their logs, files, several
        # connections at once.
        for sid in (ids[0], ids[len(ids) // 2], ids[-1]):
            self.assertEqual(self.sh(sid, "echo ok"), "ok\n")
        clients = [d.client() for _ in range(4)]
        pending = [(c, c.request("process.exec", {"sandbox": sid, "cmd": ["cat", "/etc/hostname"]}))
                   for c, sid in zip(clients, (ids[0], ids[1], ids[-2], ids[-1]))]
        for c, rid in pending:
            self.assertEqual(c.result(rid)["exit_code"], 0)
        self.check_small_tables(d, ids[-1])
        spawned = self.call("process.spawn", {"sandbox": ids[-1], "cmd": ["sh", "-c", "echo from-bg"]})
        self.call("process.wait", {"sandbox": ids[-1], "cmd_id": spawned["cmd_id"], "timeout_s": 20})
        logs = self.call("process.logs", {"sandbox": ids[-1], "cmd_id": spawned["cmd_id"]})
        self.assertEqual(logs["stdout"], "from-bg\n")
        self.call("fs.write", {"sandbox": ids[0], "path": "/tmp/f", "data": "written"})
        self.assertEqual(self.call("fs.read", {"sandbox": ids[0], "path": "/tmp/f"})["data"], "written")
        rc, out, err = self.ctl("exec", ids[-1], "--", "true")
        self.assertEqual((rc, err), (0, ""))
        # Deleting makes room again.
        for sid in ids[-40:]:
            self.call("sandbox.delete", {"sandbox": sid, "force": True})
        del ids[-40:]
        sb = self.call("sandbox.create", {"network": {"mode": "none"}})
        d.known_ids.add(sb["id"])
        ids.append(sb["id"])
        self.assertEqual(self.sh(sb["id"], "echo new"), "new\n")

        # Everything deleted: the daemon holds what it held before.
        for sid in ids + [stopped["id"]]:
            self.call("sandbox.delete", {"sandbox": sid, "force": True})
        for c in clients:
            c.close()
        d.clients = [self.rpc]
        self.assertEqual(d.settled_fd_count(self.rpc), fds_before)


if __name__ == "__main__":
    main()


def loop_gone(name, daemon):
    """The device no longer exists, or is someone else's now."""
    if not os.path.exists("/sys/block/" + name):
        return True
    backing = loop_devices().get(name)
    return backing is not None and not backing.startswith(daemon.dir)


class LoopDeviceTest(SandboxdTestCase):
    """Loop devices the daemon makes for disk limits go away with their
    users: after a stop, a delete, a file call on a stopped sandbox, a
    failed start, and at the next start after a crash."""

    def setUp(self):
        super().setUp()
        feats = self.call("system.info")["features"]
        if "limit.disk" not in feats or "disk.project_quota" in feats:
            self.skipTest("disk limits here are not loop-mounted images")

    def ours(self):
        return {n for n, b in loop_devices().items() if b and b.startswith(self.daemon.dir)}

    def made_in_log(self):
        import re
        return {"loop" + m for m in re.findall(r"loop device (\d+) made for", self.daemon.log())}

    def assertGone(self, names, what):
        if names is None:
            wait_until(lambda: self.call("system.info")["loop_devices"] == len(self.ours()), timeout=15,
                       message="%s: the daemon still has loop devices: %d, %d of them attached"
                       % (what, self.call("system.info")["loop_devices"], len(self.ours())))
            return
        wait_until(lambda: all(loop_gone(n, self.daemon) for n in names), timeout=15,
                   message="%s: loop devices %s are still there: %r"
                   % (what, sorted(names), {n: loop_devices().get(n) for n in names if not loop_gone(n, self.daemon)}))

    def create_disk(self, **kw):
        sb = self.create(resources={"disk_mb": 64}, network={"mode": "none"}, **kw)
        return sb["id"]

    def test_devices_removed_after_stop_fs_delete_and_exit(self):
        a, b, c = self.create_disk(), self.create_disk(), self.create_disk()
        first = self.ours()
        self.assertEqual(len(first), 3)
        self.call("sandbox.stop", {"sandbox": a})
        self.assertEqual(len(self.ours()), 2)
        self.assertGone(first - self.ours(), "after a stop")
        self.assertGone(None, "after a stop")
        self.assertEqual(first, self.made_in_log())
        # A file call on the stopped sandbox mounts its disk in a worker.
        before = self.daemon.log().count("made for " + a)
        self.call("fs.write", {"sandbox": a, "path": "/workspace/x", "data": "offline"})
        self.assertEqual(self.call("fs.read", {"sandbox": a, "path": "/workspace/x"})["data"], "offline")
        self.assertEqual(self.daemon.log().count("made for " + a), before + 2)  # one per call
        self.assertGone(None, "after file calls on a stopped sandbox")
        self.assertGone(self.made_in_log() - first, "after file calls on a stopped sandbox")
        self.call("sandbox.start", {"sandbox": a})
        self.assertEqual(self.sh(a, "cat /workspace/x"), "offline")
        made = self.made_in_log()
        for sid in (a, b):
            self.call("sandbox.delete", {"sandbox": sid, "force": True})
        self.assertEqual(len(self.ours()), 1)
        fds = self.daemon.settled_fd_count(self.rpc)
        # The daemon stops with c running: its device stays, in use.
        self.daemon.stop()
        self.assertEqual(len(self.ours()), 1)
        self.assertGone(made - self.ours(), "after the daemon stopped")
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.sh(c, "echo still"), "still\n")
        self.call("sandbox.delete", {"sandbox": c, "force": True})
        self.assertGone(made, "after delete-all")
        self.assertEqual(self.ours(), set())
        self.assertGone(None, "after delete-all")
        self.assertEqual(self.call("system.info")["loop_devices"], 0)
        self.assertLessEqual(self.daemon.settled_fd_count(self.rpc), fds)

    def test_failed_start_leaves_no_device(self):
        sid = self.create_disk(start=False)
        self.unattached_before = {n for n, b in loop_devices().items() if b is None}
        # An image path that cannot be mounted makes the start fail after
        # the device was made: the disk image is not ext4 any more.
        with open(os.path.join(self.daemon.state_dir, "sandboxes", sid, "disk.img"), "r+b") as f:
            f.write(b"\0" * 65536)
        try:
            self.call("sandbox.start", {"sandbox": sid})
            self.fail("a start on a wiped disk image succeeded")
        except RpcError as e:
            err = e
        made = {n for n, b in loop_devices().items() if b is None} - self.unattached_before
        self.assertGone(made, "after a failed start (%s)" % err.message)
        self.assertGone(None, "after a failed start")
        self.assertEqual(len(self.made_in_log()), 1, err)

    def test_devices_left_by_a_crash_are_removed_at_start(self):
        ids = [self.create_disk(), self.create_disk()]
        made = self.ours()
        self.assertEqual(len(made), 2)
        self.daemon.kill9()
        # The sandboxes die while no daemon runs: their devices detach,
        # and nothing removes them until the next start.
        from sbxtest import sandbox_init_processes
        import signal
        for pid, sid in sandbox_init_processes().items():
            if sid in ids:
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: self.ours() == set(), timeout=15, message="devices stay attached")
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertGone(made, "at the start after a crash")
        self.assertGone(None, "at the start after a crash")
        self.assertIn("made by an earlier run", self.daemon.log())


class PidsGroupDaemon(Daemon):
    """A daemon started inside a cgroup of its own in the v1 pids hierarchy
    (hybrid hosts), where its forks are counted."""

    def __init__(self, group, **kw):
        self.pids_group = group
        super().__init__(**kw)

    def command(self):
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', self.pids_group] + super().command()


def rmdir_tree(path):
    for root, dirs, files in os.walk(path, topdown=False):
        try:
            os.rmdir(root)
        except OSError:
            pass


class KernelLimitTest(SandboxdTestCase):
    """What the kernel refuses a create is a limit error naming the limit."""

    start_daemon = False

    def test_process_limit_refuses_create_with_a_limit_error(self):
        probe = self.new_daemon()
        info = probe.info()
        if "limit.pids" not in info["features"]:
            self.skipTest("no pids controller for sandboxd here")
        probe.cleanup()
        if info["cgroup"] == "hybrid":
            group = "/sys/fs/cgroup/pids/sbxtest-pids-%d-%x" % (os.getpid(), int(time.time() * 1000))
            os.mkdir(group)
            self.addCleanup(rmdir_tree, group)
            d = PidsGroupDaemon(group)
            self.daemons.append(d)
            self.addCleanup(d.cleanup)
            d.start()
            limit_file = os.path.join(group, "pids.max")
            current = os.path.join(group, "pids.current")
        elif info["cgroup"] == "v2":
            d = self.new_daemon()
            limit_file = os.path.join(d.cgroup_base_path(), "pids.max")
            current = os.path.join(d.cgroup_base_path(), "pids.current")
        else:
            self.skipTest("cgroup mode %s" % info["cgroup"])
        self.daemon, self.rpc = d, d.client()
        first = self.create(network={"mode": "none"}, resources={"disk_mb": 0})
        with open(current) as f:
            now = int(f.read())
        with open(limit_file, "w") as f:
            f.write(str(now + 2))

        def lift():
            if os.path.exists(limit_file):  # the daemon removes a base it made
                with open(limit_file, "w") as f:
                    f.write("max")
        self.addCleanup(lift)
        err = None
        for _ in range(10):
            try:
                self.create(network={"mode": "none"}, resources={"disk_mb": 0})
            except RpcError as e:
                err = e
                break
        self.assertIsNotNone(err, "creates went on past pids.max")
        self.assertEqual(err.code, LIMIT, err.message)
        self.assertIn("pids.max", err.message)
        self.assertIn(os.path.dirname(limit_file), err.message)
        self.assertEqual(set(d.sandbox_ids_on_disk()), d.known_ids)  # the refused one left nothing
        with open(limit_file, "w") as f:
            f.write("max")
        sb = self.create(network={"mode": "none"}, resources={"disk_mb": 0})
        self.assertEqual(self.sh(sb["id"], "echo ok"), "ok\n")
        self.assertEqual(self.sh(first["id"], "echo ok"), "ok\n")
        self.delete_all_and_stop(d)

    def delete_all_and_stop(self, d):
        d.delete_all()
        d.stop()

    def set_sysctl(self, name, value):
        path = "/proc/sys/user/" + name
        with open(path) as f:
            old = f.read().strip()
        with open(path, "w") as f:
            f.write(str(value))
        self.addCleanup(lambda: open(path, "w").write(old))

    @unittest.skipUnless(os.environ.get("SBX_IN_VM"), "changes a host-wide sysctl: runs in the tests/vm guest only")
    def test_namespace_limits_refuse_create_with_a_limit_error(self):
        d = self.new_daemon()
        self.daemon, self.rpc = d, d.client()
        first = self.create(network={"mode": "none"})
        self.set_sysctl("max_user_namespaces", 0)
        err = self.assertRpcError(LIMIT, "sandbox.create", {"network": {"mode": "none"}})
        self.assertIn("user namespaces", err["message"])
        self.assertIn("user.max_user_namespaces = 0", err["message"])
        self.set_sysctl("max_user_namespaces", 100000)
        self.set_sysctl("max_net_namespaces", 0)
        err = self.assertRpcError(LIMIT, "sandbox.create", {"network": {"mode": "none"}})
        self.assertIn("user.max_net_namespaces = 0", err["message"])
        self.assertEqual(set(d.sandbox_ids_on_disk()), d.known_ids)
        self.assertEqual(self.sh(first["id"], "echo ok"), "ok\n")



class TickTest(SandboxdTestCase):
    """The once-a-second tick looks only at sandboxes with something to do,
    and still does it: groups of execs and commands whose processes
    outlived them are removed once those end."""

    def groups(self, sid, prefix):
        base = self.daemon.sandbox_cgroup(sid)
        return sorted(d for d in os.listdir(base) if d.startswith(prefix) and os.path.isdir(os.path.join(base, d)))

    def test_groups_outliving_their_exec_or_command_are_pruned(self):
        sid = self.create(network={"mode": "none"})["id"]
        cmd_sid = self.create(network={"mode": "none"})["id"]
        idle = self.create(network={"mode": "none"})["id"]
        r = self.exec(sid, "setsid sh -c 'sleep 2' </dev/null >/dev/null 2>&1 &")
        self.assertEqual(r["exit_code"], 0)
        self.assertEqual(len(self.groups(sid, "exec-")), 1)  # the sleep keeps it
        spawned = self.call("process.spawn", {"sandbox": cmd_sid, "cmd": [
            "sh", "-c", "setsid sh -c 'sleep 3' </dev/null >/dev/null 2>&1 & echo started"]})
        self.call("process.wait", {"sandbox": cmd_sid, "cmd_id": spawned["cmd_id"], "timeout_s": 20})
        self.assertEqual(len(self.groups(cmd_sid, "cmd-")), 1)
        left = lambda: self.groups(sid, "exec-") + self.groups(cmd_sid, "cmd-")  # noqa: E731
        wait_until(lambda: not left(), timeout=10, message="groups left: %r" % (left(),))
        self.assertEqual(self.groups(idle, ""), [])


class UsernsRangeTest(SandboxdTestCase):
    """Id ranges are handed out lowest free first, and a full pool is a
    limit error; a freed range is taken again."""

    daemon_options = {"config": {"userns_range": "1500000000:%d" % (65536 * 3)}}

    def base(self, sid):
        return self.inspect(sid)["security"]["uid_base"]

    def test_ranges_lowest_free_first_and_exhaustion(self):
        ids = [self.create(network={"mode": "none"}, start=False)["id"] for _ in range(3)]
        self.assertEqual(sorted(self.base(s) for s in ids), [1500000000 + 65536 * k for k in range(3)])
        err = self.assertRpcError(LIMIT, "sandbox.create", {"network": {"mode": "none"}, "start": False})
        self.assertIn("userns_range", err["message"])
        middle = [s for s in ids if self.base(s) == 1500000000 + 65536][0]
        self.call("sandbox.delete", {"sandbox": middle})
        again = self.create(network={"mode": "none"})["id"]
        self.assertEqual(self.base(again), 1500000000 + 65536)
        self.assertEqual(self.sh(again, "id -u"), "0\n")
        # A sandbox without a user namespace takes no range.
        self.create(network={"mode": "none"}, userns=False, start=False)


class SuperblockTest(SandboxdTestCase):
    """Every file system instance a sandbox mounts costs each memory cgroup
    on the host a slot in its shrinker map (about 16 bytes per cgroup per
    instance, in 1 KiB pieces), which with thousands of sandboxes grows
    with the square of their number: a sandbox makes as few as it can."""

    def test_few_file_system_instances_per_sandbox(self):
        sid = self.create(network={"mode": "none"}, resources={"disk_mb": 0})["id"]
        with open("/proc/self/mountinfo") as f:
            host = {line.split()[2] for line in f}
        mounts = [line.split() for line in self.sh(sid, "cat /proc/self/mountinfo").splitlines()]
        own = {}
        for m in mounts:
            fstype = m[m.index("-") + 1]
            # mqueue is the IPC namespace's own instance, made with it.
            if m[2] not in host and fstype != "mqueue":
                own.setdefault(m[2], []).append(m[4])
        # overlay /, proc, tmpfs /dev (with /dev/shm in it, and the removed
        # empty directory every masked directory shows), devpts, sysfs.
        self.assertLessEqual(len(own), 5, own)
        dev = [k for k, v in own.items() if "/dev" in v][0]
        for masked in ("/proc/acpi", "/sys/firmware", "/sys/kernel/security"):
            self.assertIn(masked, own[dev])
        # /dev/shm is a world-writable sticky directory of /dev, with room.
        self.assertEqual(self.sh(sid, "stat -c '%a' /dev/shm; stat -f -c '%b %S' /dev/shm"), "1777\n16400 4096\n")
        self.assertNotIn("/dev/shm", [m[4] for m in mounts])
        self.sh(sid, "dd if=/dev/zero of=/dev/shm/blob bs=1M count=32 2>/dev/null && rm /dev/shm/blob")
        self.assertEqual(self.sh(sid, "touch /proc/acpi/x 2>&1 || echo refused").strip().splitlines()[-1], "refused")
        self.assertEqual(self.sh(sid, "ls -A /sys/kernel/security /proc/acpi"), "/proc/acpi:\n\n/sys/kernel/security:\n")
        self.assertTrue(dev)
