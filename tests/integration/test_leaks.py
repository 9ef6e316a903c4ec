"""Nothing leaks: file descriptors, processes, cgroups, directories."""

import os
import socket

from sbxtest import (RpcClient, SandboxdTestCase, cgroup_procs_recursive, image_tarball, main,
                     sandbox_init_processes, wait_until)


class LeakTest(SandboxdTestCase):

    def wait_fds(self, base, timeout=15):
        def ok():
            return self.daemon.fd_count() == base
        try:
            wait_until(ok, timeout)
        except AssertionError:
            self.fail("daemon holds %d fds, baseline %d:\n%s" % (
                self.daemon.fd_count(), base,
                "\n".join("%d -> %s" % kv for kv in sorted(self.daemon.fd_list().items()))))

    def leftovers(self, ids):
        """Everything of the given sandboxes still on the host, by kind."""
        found = {}
        inits = [pid for pid, sid in sandbox_init_processes().items() if sid in ids]
        if inits:
            found["sandbox-init processes"] = inits
        base = self.daemon.cgroup_base_path()
        cgs = sorted(d for d in os.listdir(base) if d.startswith("sbx-"))
        if cgs:
            found["cgroups"] = cgs
        for label, path in (("state/sandboxes", os.path.join(self.daemon.state_dir, "sandboxes")),
                            ("run/sandboxes", os.path.join(self.daemon.run_dir, "sandboxes")),
                            ("state/trash", os.path.join(self.daemon.state_dir, "trash"))):
            if os.path.isdir(path) and os.listdir(path):
                found[label] = sorted(os.listdir(path))
        return found

    def assertNoLeftovers(self, ids, timeout=10):
        try:
            wait_until(lambda: not self.leftovers(ids), timeout)
        except AssertionError:
            self.fail("left behind after deleting every sandbox: %r" % self.leftovers(ids))

    def test_fd_count_returns_to_baseline(self):
        sb = self.create("fds")["id"]
        self.exec(sb, ["true"])
        self.call("system.ping")
        base = self.daemon.settled_fd_count(self.rpc)

        for _ in range(30):                       # short connections
            with RpcClient(self.daemon.socket) as c:
                c.call("system.ping")
        for i in range(20):                       # execs of every kind
            self.exec(sb, "echo %d; echo e >&2" % i, stdin="in" if i % 2 else None)
        self.exec(sb, ["sh", "-c", "kill -9 $$"])
        self.exec(sb, ["no-such-command"])
        self.exec(sb, "yes | head -c 2000000", max_output_bytes=10)
        self.exec(sb, "setsid sleep 100 & sleep 100", timeout_s=0.2)
        self.exec(sb, ["true"], stdin="x" * 1000000)
        for _ in range(5):                        # failed execs
            try:
                self.exec(sb, ["true"], cwd="/no/such/dir")
            except Exception:
                pass
            try:
                self.exec(sb, ["true"], user="nosuchuser")
            except Exception:
                pass
        for _ in range(5):                        # clients leaving mid-exec
            c = RpcClient(self.daemon.socket)
            c.request("process.exec", {"sandbox": sb, "command": "sleep 0.3; echo gone"})
            c.close()
        for raw in (b"{bad\n", b"[1]\n", b"x" * (16 * 1024 * 1024 + 1) + b"\n"):   # bad input
            with RpcClient(self.daemon.socket) as c:
                c.send_raw(raw)
                c.recv_msg()
        for _ in range(3):                        # partial line then EOF
            c = RpcClient(self.daemon.socket)
            c.send_raw(b'{"jsonrpc":"2.0"')
            c.shutdown_write()
            c.recv_msg()
            c.close()
        for _ in range(3):                        # abrupt close with a request half sent
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.daemon.socket)
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"system.')
            s.close()
        other = self.create("other")["id"]        # a whole sandbox lifecycle
        self.exec(other, ["true"])
        self.call("sandbox.stop", {"sandbox": other})
        self.call("sandbox.start", {"sandbox": other})
        self.call("sandbox.delete", {"sandbox": other, "force": True})
        self.call("image.import", {"name": "tmpimg", "path": image_tarball()})   # worker processes
        self.call("image.remove", {"name": "tmpimg"})
        for _ in range(3):
            self.assertEqual(self.ctl("exec", sb, "--", "true")[0], 0)
        self.wait_fds(base)

    def test_fd_count_after_many_concurrent_execs(self):
        sb = self.create("many")["id"]
        self.exec(sb, ["true"])
        base = self.daemon.settled_fd_count(self.rpc)
        ids = [self.rpc.request("process.exec", {"sandbox": sb, "command": "sleep 0.5; echo %d" % i})
               for i in range(40)]
        # 40 commands in flight hold pipes and pidfds...
        wait_until(lambda: self.daemon.fd_count() > base + 40, 5)
        for i, rid in enumerate(ids):
            self.assertEqual(self.rpc.result(rid)["stdout"], "%d\n" % i)
        # ...and give them all back.
        self.wait_fds(base)

    def test_nothing_left_after_deleting_everything(self):
        a = self.create("a")["id"]
        b = self.create("b")["id"]
        c = self.create("c", start=False)["id"]
        d = self.create("d")["id"]
        ids = {a, b, c, d}
        self.sh(a, "sleep 1000 </dev/null >/dev/null 2>&1 & echo x > /workspace/x")
        self.exec(b, "setsid sleep 1000 & sleep 1000", timeout_s=0.2)
        self.call("sandbox.stop", {"sandbox": d})
        for sid in ids:
            self.call("sandbox.delete", {"sandbox": sid, "force": True})
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])
        self.assertNoLeftovers(ids)

    def test_nothing_left_after_restart_and_delete(self):
        ids = {self.create("r%d" % i)["id"] for i in range(3)}
        for sid in ids:
            self.sh(sid, "sleep 1000 </dev/null >/dev/null 2>&1 &")
        self.daemon.restart()
        self.rpc = self.daemon.client()
        for sid in ids:
            self.call("sandbox.delete", {"sandbox": sid, "force": True})
        self.assertNoLeftovers(ids)

    def test_no_processes_left_in_cgroups(self):
        sb = self.create("procs")
        cg = self.daemon.sandbox_cgroup(sb["id"])
        for i in range(10):
            self.exec(sb["id"], "sh -c 'sleep 0.1' & echo %d" % i)
        wait_until(lambda: cgroup_procs_recursive(cg) == [sb["init_pid"]], 5)
        self.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
        self.assertFalse(os.path.exists(cg))

    def test_failed_create_leaves_nothing(self):
        for params in ({"name": "x", "image": "nope"}, {"name": "bad name"}, {"network": {"deny_out": ["nope"]}}):
            reply = self.rpc.call_reply("sandbox.create", params)
            self.assertIn("error", reply)
        self.assertEqual(self.leftovers(set()), {})
        self.assertEqual(os.listdir(os.path.join(self.daemon.state_dir, "sandboxes")), [])


if __name__ == "__main__":
    main()
