"""Daemon restarts: sandboxes outlive the daemon and are adopted again."""

import ctypes
import os
import random
import signal
import subprocess
import threading
import time

from sbxtest import (ConnectionClosed, DaemonError, RpcError, SandboxdTestCase, cgroup_procs_recursive, children_of,
                     main, pid_alive, sandbox_init_processes, wait_until)

BAD_STATE = 3


class RestartTest(SandboxdTestCase):
    def test_running_sandbox_survives_sigkill(self):
        sb = self.create("alive", labels={"k": "v"}, env={"E": "1"})
        self.sh("alive", "echo persisted > /workspace/f; sleep 4321 </dev/null >/dev/null 2>&1 &")
        init = sb["init_pid"]
        cg = self.daemon.sandbox_cgroup(sb["id"])
        before = self.inspect("alive")

        self.daemon.kill9()
        # While the daemon is down, the sandbox keeps running.
        self.assertTrue(pid_alive(init))
        self.assertGreaterEqual(len(cgroup_procs_recursive(cg)), 2)
        time.sleep(0.3)
        self.assertTrue(pid_alive(init))

        self.daemon.start()
        self.rpc = self.daemon.client()
        after = self.inspect("alive")
        self.assertEqual(after["state"], "started")
        self.assertEqual(after["init_pid"], init)
        for key in ("id", "name", "labels", "env", "image", "created_at", "started_at", "user", "workdir",
                    "hostname"):
            self.assertEqual(after[key], before[key], key)
        self.assertEqual(self.sh("alive", "cat /workspace/f; echo $E"), "persisted\n1\n")
        self.assertIn("sleep 4321", self.sh("alive", "ps -o args"))
        self.assertEqual(self.sh("alive", "cat /proc/1/comm"), "sandbox-init\n")

    def test_stopped_sandbox_stays_stopped(self):
        self.create("cold", start=False)
        sb = self.create("warm")
        self.sh("warm", "echo keep > /workspace/f")
        self.call("sandbox.stop", {"sandbox": "warm"})
        self.daemon.restart()
        self.rpc = self.daemon.client()
        for name in ("cold", "warm"):
            st = self.inspect(name)
            self.assertEqual(st["state"], "stopped", name)
            self.assertIsNone(st["init_pid"], name)
            self.assertRpcError(BAD_STATE, "process.exec", {"sandbox": name, "cmd": ["true"]})
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(sb["id"])))
        self.call("sandbox.start", {"sandbox": "warm"})
        self.assertEqual(self.sh("warm", "cat /workspace/f"), "keep\n")

    def test_files_persist_across_restart_and_stop_start(self):
        self.create("files")
        self.sh("files", "mkdir -p /data && echo one > /data/x")
        self.daemon.restart()
        self.rpc = self.daemon.client()
        self.sh("files", "echo two >> /data/x")
        self.call("sandbox.stop", {"sandbox": "files"})
        self.call("sandbox.start", {"sandbox": "files"})
        self.assertEqual(self.sh("files", "cat /data/x"), "one\ntwo\n")

    def test_graceful_shutdown_keeps_sandboxes(self):
        sb = self.create("term")
        self.assertEqual(self.daemon.stop(), 0)
        self.assertTrue(pid_alive(sb["init_pid"]))
        self.assertFalse(os.path.exists(self.daemon.socket))
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.inspect("term")["init_pid"], sb["init_pid"])
        self.assertEqual(self.sh("term", "echo ok"), "ok\n")

    def test_stop_and_delete_adopted_sandbox(self):
        a = self.create("a")
        b = self.create("b")
        self.daemon.restart()
        self.rpc = self.daemon.client()
        self.call("sandbox.stop", {"sandbox": "a"})
        self.assertEqual(self.inspect("a")["state"], "stopped")
        wait_until(lambda: not pid_alive(a["init_pid"]), 5)
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(a["id"])))
        self.call("sandbox.delete", {"sandbox": "b", "force": True})
        wait_until(lambda: not pid_alive(b["init_pid"]), 5)
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(b["id"])))
        self.call("sandbox.start", {"sandbox": "a"})
        self.assertEqual(self.sh("a", "echo again"), "again\n")

    def test_adopted_init_exit_is_noticed(self):
        sb = self.create("watched")
        self.daemon.restart()
        self.rpc = self.daemon.client()
        os.kill(sb["init_pid"], signal.SIGKILL)
        wait_until(lambda: self.inspect("watched")["state"] == "stopped", 10)

    def test_init_killed_while_daemon_down(self):
        sb = self.create("orphan")
        self.daemon.kill9()
        os.kill(sb["init_pid"], signal.SIGKILL)
        wait_until(lambda: not pid_alive(sb["init_pid"]), 5)
        self.daemon.start()
        self.rpc = self.daemon.client()
        st = self.inspect("orphan")
        self.assertEqual(st["state"], "stopped")
        self.assertIsNone(st["init_pid"])
        self.assertFalse(os.path.exists(self.daemon.sandbox_cgroup(sb["id"])))
        self.call("sandbox.start", {"sandbox": "orphan"})
        self.assertEqual(self.sh("orphan", "echo revived"), "revived\n")

    def test_many_restarts(self):
        sb = self.create("steady")
        for i in range(3):
            self.daemon.restart(hard=(i % 2 == 0))
            self.rpc = self.daemon.client()
            self.assertEqual(self.sh("steady", "echo %d >> /workspace/log; cat /workspace/log" % i),
                             "".join("%d\n" % j for j in range(i + 1)))
        self.assertEqual(self.inspect("steady")["init_pid"], sb["init_pid"])

    def test_exec_after_restart_does_not_join_old_exec_cgroup(self):
        # A command left running by an exec before the restart must not be
        # killed by the timeout of an unrelated exec after it.
        self.create("reuse")
        self.sh("reuse", "sleep 999 </dev/null >/dev/null 2>&1 &")
        old = self.sh("reuse", "pidof sleep").strip()
        self.daemon.restart()
        self.rpc = self.daemon.client()
        r = self.exec("reuse", "grep '^0::' /proc/self/cgroup; sleep 30", timeout_s=0.5)
        self.assertIs(r["timed_out"], True)
        self.assertEqual(self.sh("reuse", "pidof sleep || echo none").strip(), old,
                         "a background process from before the restart was killed by a later exec's "
                         "timeout (that exec ran in cgroup %s)" % r["stdout"].strip())

    def test_exec_interrupted_by_restart(self):
        self.create("inflight")
        c = self.daemon.client()
        c.request("process.exec", {"sandbox": "inflight", "command": "sleep 1; echo late > /workspace/late"})
        time.sleep(0.2)
        self.daemon.kill9()
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.sh("inflight", "echo fine"), "fine\n")
        # Whatever became of the old command, the sandbox keeps serving.
        wait_until(lambda: "sleep 1" not in self.sh("inflight", "ps -o args"), 5)
        self.assertEqual(self.inspect("inflight")["state"], "started")

    def test_second_daemon_on_same_state_dir_is_refused(self):
        self.create("mine")
        other_sock = os.path.join(self.daemon.dir, "other.sock")
        cmd = self.daemon.command()
        cmd[cmd.index("--socket") + 1] = other_sock
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already running", p.stdout + p.stderr)
        self.assertFalse(os.path.exists(other_sock))
        self.assertEqual(self.sh("mine", "echo unaffected"), "unaffected\n")

    def test_deleted_sandbox_stays_deleted(self):
        sb = self.create("temp")
        self.call("sandbox.delete", {"sandbox": "temp", "force": True})
        trash = os.path.join(self.daemon.state_dir, "trash")
        wait_until(lambda: not os.path.isdir(trash) or not os.listdir(trash), 10)
        self.daemon.restart()
        self.rpc = self.daemon.client()
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertNotIn(sb["id"], sandbox_init_processes().values())

    def test_restart_right_after_delete(self):
        # Deleting a sandbox with many files leaves its removal running in the
        # background; a daemon that dies meanwhile must still come back at once.
        sb = self.create("bulky")
        self.sh("bulky", "for i in $(seq 20); do mkdir /workspace/c$i; cp -a /bin /sbin /usr /workspace/c$i/; done")
        self.call("sandbox.delete", {"sandbox": "bulky", "force": True})
        self.daemon.kill9()
        try:
            self.daemon.start()
        except DaemonError:
            self.fail("sandboxd did not start again right after a delete and a crash: %s"
                      % self.daemon.log().splitlines()[-1])
        self.rpc = self.daemon.client()
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertNotIn(sb["id"], sandbox_init_processes().values())

    def edit_state(self, sandbox_id, edit):
        path = os.path.join(self.daemon.state_dir, "sandboxes", sandbox_id, "sandbox.json")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(edit(text))

    def test_unknown_saved_state_becomes_error(self):
        sb = self.create("odd", start=False)
        self.daemon.stop()
        self.edit_state(sb["id"], lambda t: t.replace('"state":"stopped"', '"state":"melted"'))
        self.daemon.start()
        self.rpc = self.daemon.client()
        st = self.inspect("odd")
        self.assertEqual(st["state"], "error")
        self.assertIn(sb["id"], [s["id"] for s in self.call("sandbox.list", {"state": "error"})["sandboxes"]])
        self.assertEqual(self.call("sandbox.delete", {"sandbox": "odd"}), {})
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "sandboxes", sb["id"])))

    def test_unreadable_saved_state_is_removed(self):
        # Documented in sandboxd(8): a sandbox whose state file cannot be
        # read is removed entirely at the next start.
        sb = self.create("garbled", start=False)
        self.daemon.stop()
        self.edit_state(sb["id"], lambda t: t[: len(t) // 2])
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "sandboxes", sb["id"])))

    def test_unreadable_state_of_running_sandbox_leaves_no_processes(self):
        # "Removed entirely" includes what runs: its init and its cgroup.
        sb = self.create("garbled")
        self.daemon.stop()
        self.edit_state(sb["id"], lambda t: t[: len(t) // 2])
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "sandboxes", sb["id"])))
        try:
            wait_until(lambda: not pid_alive(sb["init_pid"]) and
                       not os.path.exists(self.daemon.sandbox_cgroup(sb["id"])), 5)
        except AssertionError:
            self.fail("the sandbox was forgotten but still runs: init pid %d alive=%s, cgroup %s exists=%s"
                      % (sb["init_pid"], pid_alive(sb["init_pid"]), self.daemon.sandbox_cgroup(sb["id"]),
                         os.path.exists(self.daemon.sandbox_cgroup(sb["id"]))))

    def test_restart_keeps_imported_images(self):
        self.call("image.import", {"name": "copy", "path": os.path.join(self.daemon.state_dir, "images",
                                   self.call("image.inspect", {"name": "minimal"})["id"], "rootfs")})
        before = sorted((i["name"], i["id"]) for i in self.call("image.list")["images"])
        self.daemon.restart()
        self.rpc = self.daemon.client()
        self.assertEqual(sorted((i["name"], i["id"]) for i in self.call("image.list")["images"]), before)


class KilledMidDeleteTest(SandboxdTestCase):
    """sandboxd killed -9 while deletes are under way: at the next start each
    sandbox is gone or exactly as it was, never half deleted."""

    def assertGone(self, sid, init_pid, why):
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "sandboxes", sid)),
                         "%s: its state is still there" % why)
        try:
            wait_until(lambda: not pid_alive(init_pid) and not os.path.exists(self.daemon.sandbox_cgroup(sid)), 10)
        except AssertionError:
            self.fail("%s: sandbox %s was forgotten but its init %d or its cgroup is still there" % (why, sid, init_pid))

    def test_delete_cut_short_by_sigkill(self):
        # The kill lands at a range of moments after the delete was sent:
        # before the daemon reads it, while init and its processes die,
        # after. Each sandbox has processes to kill, which widens the window.
        seen = {}
        for i, delay_ms in enumerate((0, 1, 2, 3, 5, 8, 12, 20)):
            name = "cut%d" % i
            sb = self.create(name, network={"mode": "none"})
            self.sh(name, "for i in $(seq 40); do sleep 1000 </dev/null >/dev/null 2>&1 & done")
            c = self.daemon.client()
            c.request("sandbox.delete", {"sandbox": name, "force": True})
            time.sleep(delay_ms / 1000)
            self.daemon.kill9()
            self.daemon.start()
            self.rpc = self.daemon.client()
            present = {s["id"]: s for s in self.call("sandbox.list")["sandboxes"]}
            why = "killed %d ms after its delete was sent" % delay_ms
            if sb["id"] in present:
                now = present[sb["id"]]
                self.assertEqual((now["state"], now["init_pid"]), ("started", sb["init_pid"]),
                                 "%s, sandbox %s came back neither deleted nor as it was" % (why, name))
                self.assertEqual(self.sh(name, "echo still"), "still\n")
                self.call("sandbox.delete", {"sandbox": name, "force": True})
                seen["kept"] = seen.get("kept", 0) + 1
            else:
                self.assertGone(sb["id"], sb["init_pid"], why)
                seen["gone"] = seen.get("gone", 0) + 1
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [], seen)

    def test_ephemeral_sandbox_stopped_while_daemon_down_is_deleted(self):
        # An ephemeral sandbox is deleted when it stops, also when it stopped
        # while no daemon was there to see it.
        eph = self.create("eph", ephemeral=True, network={"mode": "none"})
        keep = self.create("keep", network={"mode": "none"})
        self.daemon.kill9()
        for sb in (eph, keep):
            os.kill(sb["init_pid"], signal.SIGKILL)
        wait_until(lambda: not pid_alive(eph["init_pid"]) and not pid_alive(keep["init_pid"]), 5)
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual([(s["name"], s["state"]) for s in self.call("sandbox.list")["sandboxes"]],
                         [("keep", "stopped")])
        self.assertGone(eph["id"], eph["init_pid"], "ephemeral sandbox stopped while the daemon was down")

    def test_storm_of_create_exec_delete_with_sigkills(self):
        # Four clients create, run commands in and delete sandboxes while
        # the daemon is killed -9 at random moments, three times. After each
        # start: every sandbox whose create was answered is started with the
        # same init unless its delete was sent; a delete that was sent left
        # it gone or exactly as before; nothing is stopped or half made.
        seed = int(os.environ.get("SBX_TEST_SEED", random.randrange(1 << 30)))
        rng = random.Random(seed)
        ctx = "seed %d (SBX_TEST_SEED)" % seed
        known = {}  # id -> {"name", "init_pid", "delete": None | "sent" | "done"}
        lock = threading.Lock()
        counter = [0]
        done = {"create": 0, "exec": 0, "delete": 0}

        def client_loop(k, stop, crng):
            try:
                c = self.daemon.client(timeout=60)
            except OSError:
                return
            try:
                while not stop.is_set():
                    with lock:
                        mine = [sid for sid, v in known.items() if v["owner"] == k and v["delete"] is None]
                    op = crng.random()
                    if not mine or (op < 0.35 and len(mine) < 3):
                        with lock:
                            counter[0] += 1
                            name = "st%d-%d" % (k, counter[0])
                            pending[name] = True
                        sb = c.call("sandbox.create", {"name": name, "network": {"mode": "none"}})
                        with lock:
                            pending.pop(name, None)
                            known[sb["id"]] = {"name": name, "init_pid": sb["init_pid"], "delete": None,
                                               "owner": k}
                            self.daemon.known_ids.add(sb["id"])
                            done["create"] += 1
                    elif op < 0.7:
                        sid = crng.choice(mine)
                        c.call("process.exec", {"sandbox": sid, "command": "echo hi; sleep 0.0%d" % crng.randrange(10)})
                        with lock:
                            done["exec"] += 1
                    else:
                        sid = crng.choice(mine)
                        with lock:
                            known[sid]["delete"] = "sent"
                        c.call("sandbox.delete", {"sandbox": sid, "force": True})
                        with lock:
                            known[sid]["delete"] = "done"
                            done["delete"] += 1
            except (ConnectionClosed, OSError, TimeoutError):
                pass  # the daemon was killed under this request
            except RpcError as e:
                errors.append("client %d: %s" % (k, e))

        for rnd in range(3):
            pending = {}
            errors = []
            stop = threading.Event()
            threads = [threading.Thread(target=client_loop, args=(k, stop, random.Random(rng.random())))
                       for k in range(4)]
            for t in threads:
                t.start()
            # Some of everything first, however slow the host; then a kill
            # at a random moment.
            before = dict(done)
            wait_until(lambda: errors or all(done[k] - before[k] >= 2 for k in done), 120,
                       message="the clients made no progress: %r; %s" % (done, ctx))
            time.sleep(rng.random() * 1.0)
            self.daemon.kill9()
            stop.set()
            for t in threads:
                t.join(60)
            self.assertEqual(errors, [], ctx)
            self.daemon.start()
            self.rpc = self.daemon.client()
            present = {s["id"]: s for s in self.call("sandbox.list")["sandboxes"]}
            for sid, s in present.items():
                self.daemon.known_ids.add(sid)
                self.assertEqual(s["state"], "started", "round %d: sandbox %s came back %s; %s"
                                 % (rnd, s["name"], s["state"], ctx))
            by_name = {s["name"]: s for s in present.values()}
            for name in pending:  # created or not; if it was, it is whole
                if name in by_name:
                    self.assertEqual(self.sh(name, "echo up"), "up\n")
            for sid, v in list(known.items()):
                if v["delete"] == "done":
                    self.assertNotIn(sid, present, "round %d: deleted sandbox %s is back; %s" % (rnd, v["name"], ctx))
                elif v["delete"] is None:
                    self.assertIn(sid, present, "round %d: sandbox %s, created and never deleted, is gone; %s"
                                  % (rnd, v["name"], ctx))
                if sid in present:
                    self.assertEqual(present[sid]["init_pid"], v["init_pid"],
                                     "round %d: sandbox %s was restarted, not kept; %s" % (rnd, v["name"], ctx))
                    self.assertEqual(self.sh(sid, "echo up"), "up\n")
                    v["delete"] = None
                else:
                    self.assertGone(sid, v["init_pid"], "round %d, sandbox %s; %s" % (rnd, v["name"], ctx))
                    del known[sid]
            for sid, s in present.items():
                if sid not in known:  # its create was answered after all, but the reply was lost
                    known[sid] = {"name": s["name"], "init_pid": s["init_pid"], "delete": None,
                                  "owner": int(s["name"][2:].split("-")[0])}
        # The storm did storm.
        self.assertTrue(done["create"] >= 8 and done["exec"] >= 8 and done["delete"] >= 4, done)


PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class StopAlwaysEndsTest(SandboxdTestCase):
    def test_delete_ends_when_init_cannot_exit(self):
        # init finishes exiting only once every process of its namespace is
        # reaped. Here the command of an exec outlives a killed daemon and
        # its new parent (a subreaper, as a supervisor may be) leaves it
        # unreaped: the delete must end all the same.
        sb = self.create("held", network={"mode": "none"})
        c = self.daemon.client()
        c.request("process.exec", {"sandbox": "held", "cmd": ["sleep", "4242"]})
        daemon_pid = self.daemon.pid
        cmd = wait_until(lambda: [p for p, argv in children_of(daemon_pid).items() if argv == [b"sleep", b"4242"]], 10)[0]
        adopted = []

        def reap():
            # The command first: init cannot end before it is reaped.
            set_subreaper(False)
            for pid in sorted(adopted, key=lambda p: p != cmd):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        if os.waitpid(pid, os.WNOHANG)[0] == pid:
                            break
                    except ChildProcessError:
                        break
                    time.sleep(0.02)
            adopted.clear()
        self.addCleanup(reap)
        set_subreaper(True)
        self.daemon.kill9()
        wait_until(lambda: cmd in children_of(os.getpid()), 5)
        set_subreaper(False)
        adopted += [p for p in children_of(os.getpid()) if p in (cmd, sb["init_pid"])]
        self.daemon.start()
        self.rpc = self.daemon.client()
        start = time.monotonic()
        self.call("sandbox.delete", {"sandbox": "held", "force": True}, timeout=60)
        self.assertLess(time.monotonic() - start, 20)
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertIn("did not exit within", self.daemon.log())
        # When the process is reaped at last, init goes, and its group with it.
        reap()
        wait_until(lambda: not pid_alive(sb["init_pid"]) and not os.path.exists(self.daemon.sandbox_cgroup(sb["id"])),
                   10)
        self.assertIn("slow to exit is gone", self.daemon.log())


if __name__ == "__main__":
    main()
