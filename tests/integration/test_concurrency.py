"""Many requests in flight, many connections, and clients that go away."""

import json
import os
import socket
import tarfile
import threading
import time

from sbxtest import RpcClient, SandboxdTestCase, image_tarball, main, wait_until


class InFlightTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.create("busy")

    def test_slow_exec_does_not_block_ping_on_same_connection(self):
        t0 = time.monotonic()
        slow = self.rpc.request("process.exec", {"sandbox": "busy", "cmd": ["sleep", "2"]}, id="slow")
        ping = self.rpc.request("system.ping", id="ping")
        first = self.rpc.recv_msg()
        self.assertEqual(first, {"jsonrpc": "2.0", "id": "ping", "result": {}})
        self.assertLess(time.monotonic() - t0, 1.0)
        r = self.rpc.result(slow)
        self.assertEqual(r["exit_code"], 0)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)

    def test_replies_out_of_order(self):
        self.rpc.request("process.exec", {"sandbox": "busy", "command": "sleep 1.5; echo A"}, id="a")
        self.rpc.request("process.exec", {"sandbox": "busy", "command": "sleep 0.7; echo B"}, id="b")
        self.rpc.request("process.exec", {"sandbox": "busy", "command": "echo C"}, id="c")
        self.rpc.request("sandbox.inspect", {"sandbox": "busy"}, id="d")
        got = [self.rpc.recv_msg() for _ in range(4)]
        ids = [m["id"] for m in got]
        self.assertEqual(sorted(ids[:2]), ["c", "d"])
        self.assertEqual(ids[2:], ["b", "a"])
        out = {m["id"]: m["result"].get("stdout") for m in got}
        self.assertEqual((out["a"], out["b"], out["c"]), ("A\n", "B\n", "C\n"))

    def test_parallel_execs_on_one_connection_run_concurrently(self):
        t0 = time.monotonic()
        ids = [self.rpc.request("process.exec", {"sandbox": "busy", "command": "sleep 1; echo %d" % i})
               for i in range(8)]
        for i, rid in enumerate(ids):
            self.assertEqual(self.rpc.result(rid)["stdout"], "%d\n" % i)
        self.assertLess(time.monotonic() - t0, 4.0)

    def test_pipelined_mixed_requests(self):
        reqs = []
        for i in range(30):
            reqs.append(self.rpc.request("process.exec", {"sandbox": "busy", "cmd": ["echo", str(i)]}))
            reqs.append(self.rpc.request("system.ping"))
            reqs.append(self.rpc.request("no.such.method"))
        for n, rid in enumerate(reqs):
            reply = self.rpc.wait(rid)
            kind = n % 3
            if kind == 0:
                self.assertEqual(reply["result"]["stdout"], "%d\n" % (n // 3))
            elif kind == 1:
                self.assertEqual(reply["result"], {})
            else:
                self.assertEqual(reply["error"]["code"], -32601)

    def test_same_id_reused_sequentially(self):
        for i in range(5):
            self.rpc.request("process.exec", {"sandbox": "busy", "cmd": ["echo", str(i)]}, id="same")
            self.assertEqual(self.rpc.result("same")["stdout"], "%d\n" % i)


class BusySandboxesTest(SandboxdTestCase):
    def test_many_execs_in_sandboxes_full_of_busy_processes(self):
        # Two sandboxes of half a core each run 300 busy loops, the way a
        # browser with many processes would: a command's set-up there gets a
        # sliver of CPU and takes seconds. Eight execs at once all run, the
        # daemon answers pings all along, and the deletes end at once.
        for name in ("load1", "load2"):
            self.create(name, network={"mode": "none"}, resources={"cpus": 0.5})
            self.call("process.spawn", {"sandbox": name,
                                        "command": "for i in $(seq 300); do (while :; do :; done) & done; wait"})
        for name in ("load1", "load2"):
            wait_until(lambda: self.call("sandbox.stats", {"sandbox": name})["pids"] >= 300, 60)
        results, errors = {}, []

        def one(k):
            try:
                with RpcClient(self.daemon.socket, timeout=180) as c:
                    results[k] = c.call("process.exec", {"sandbox": "load%d" % (1 + k % 2), "command": "echo %d" % k})
            except Exception as e:  # reported below
                errors.append("exec %d: %r" % (k, e))

        threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        worst = 0.0
        while any(t.is_alive() for t in threads):
            t0 = time.monotonic()
            self.call("system.ping", timeout=30)
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.2)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual({k: r["stdout"] for k, r in results.items()}, {k: "%d\n" % k for k in range(8)})
        self.assertLess(worst, 2.0, "the daemon was held up %.1f s while commands were being set up" % worst)
        for name in ("load1", "load2"):
            t0 = time.monotonic()
            self.call("sandbox.delete", {"sandbox": name, "force": True}, timeout=60)
            self.assertLess(time.monotonic() - t0, 15)


class ConnectionsTest(SandboxdTestCase):
    def test_many_connections_in_parallel(self):
        sbs = [self.create("s%d" % i)["id"] for i in range(3)]
        errors = []

        def worker(n):
            try:
                with RpcClient(self.daemon.socket) as c:
                    for j in range(5):
                        sb = sbs[(n + j) % len(sbs)]
                        r = c.call("process.exec", {"sandbox": sb, "command": "echo T%d-%d; hostname" % (n, j)})
                        if r["stdout"] != "T%d-%d\ns%d\n" % (n, j, sbs.index(sb)):
                            errors.append((n, j, r))
            except Exception as e:  # reported below
                errors.append((n, repr(e)))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_slow_client_does_not_block_others(self):
        self.create("x")
        clients = [self.daemon.client() for _ in range(6)]
        t0 = time.monotonic()
        ids = [c.request("process.exec", {"sandbox": "x", "cmd": ["sleep", "1.5"]}) for c in clients]
        other = self.daemon.client()
        self.assertEqual(other.call("system.ping"), {})
        self.assertEqual(other.call("process.exec", {"sandbox": "x", "cmd": ["echo", "hi"]})["stdout"], "hi\n")
        self.assertLess(time.monotonic() - t0, 1.0)
        for c, rid in zip(clients, ids):
            self.assertEqual(c.result(rid)["exit_code"], 0)
        self.assertLess(time.monotonic() - t0, 4.0)

    def test_parallel_creates_and_deletes(self):
        errors = []
        made = []

        def worker(n):
            try:
                with RpcClient(self.daemon.socket) as c:
                    sb = c.call("sandbox.create", {"name": "par%d" % n})
                    made.append(sb["id"])
                    r = c.call("process.exec", {"sandbox": sb["id"], "cmd": ["hostname"]})
                    if r["stdout"] != "par%d\n" % n:
                        errors.append(r)
                    c.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.daemon.known_ids.update(made)
        self.assertEqual(errors, [])
        self.assertEqual(len(set(made)), 8)
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_client_that_never_reads(self):
        self.create("noisy")
        lazy = socket.socket(socket.AF_UNIX)
        lazy.connect(self.daemon.socket)
        req = {"jsonrpc": "2.0", "id": 1, "method": "process.exec",
               "params": {"sandbox": "noisy", "command": "head -c 800000 /dev/zero | tr '\\0' q"}}
        for i in range(4):
            req["id"] = i
            lazy.sendall(json.dumps(req).encode() + b"\n")
        # Others are served while that client's replies pile up unread.
        for _ in range(3):
            self.assertEqual(self.call("process.exec", {"sandbox": "noisy", "cmd": ["echo", "ok"]})["stdout"],
                             "ok\n")
        lazy.close()
        self.assertEqual(self.call("system.ping"), {})

    def test_disconnect_during_exec(self):
        self.create("drop")
        base = self.daemon.settled_fd_count(self.rpc)
        for i in range(5):
            c = RpcClient(self.daemon.socket)
            c.request("process.exec", {"sandbox": "drop",
                                       "command": "sleep 1; echo %d > /workspace/done-%d" % (i, i)})
            time.sleep(0.05)
            c.close()
        # The daemon keeps serving others meanwhile.
        t0 = time.monotonic()
        self.assertEqual(self.call("system.ping"), {})
        self.assertEqual(self.call("process.exec", {"sandbox": "drop", "cmd": ["echo", "x"]})["stdout"], "x\n")
        self.assertLess(time.monotonic() - t0, 0.9)
        # The requests are finished even though nobody waits for them...
        wait_until(lambda: self.sh("drop", "ls /workspace | grep -c done- || true").strip() == "5", 10)
        self.assertEqual(self.sh("drop", "cat /workspace/done-*"), "0\n1\n2\n3\n4\n")
        # ...and nothing of them stays open in the daemon.
        wait_until(lambda: self.daemon.fd_count() == base, 10,
                   message="fd count %d, baseline %d: %r" % (self.daemon.fd_count(), base, self.daemon.fd_list()))

    def test_disconnect_during_exec_with_output(self):
        self.create("drop2")
        c = RpcClient(self.daemon.socket)
        c.request("process.exec", {"sandbox": "drop2",
                                   "command": "for i in $(seq 20); do head -c 100000 /dev/zero; sleep 0.02; done"})
        time.sleep(0.1)
        c.close()
        wait_until(lambda: "seq" not in self.sh("drop2", "ps -o args") and
                   "head" not in self.sh("drop2", "ps -o args"), 10)
        self.assertEqual(self.call("system.ping"), {})

    def test_disconnect_during_stop(self):
        self.create("stopme")
        self.sh("stopme", "sh -c 'trap \"\" TERM; : > /tmp/.armed; while :; do sleep 0.1; done' </dev/null >/dev/null 2>&1 & while [ ! -e /tmp/.armed ]; do sleep 0.01; done")
        c = RpcClient(self.daemon.socket)
        c.request("sandbox.stop", {"sandbox": "stopme", "timeout_s": 1})
        c.close()
        wait_until(lambda: self.inspect("stopme")["state"] == "stopped", 10)
        self.call("sandbox.start", {"sandbox": "stopme"})
        self.assertEqual(self.sh("stopme", "echo ok"), "ok\n")

    def test_connection_closes_promptly_while_an_import_runs(self):
        # A tar of many empty files takes the daemon a while to unpack.
        path = os.path.join(self.daemon.dir, "many.tar")
        with tarfile.open(path, "w") as t:
            for i in range(50):
                info = tarfile.TarInfo("d%d" % i)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
                for j in range(100):
                    info = tarfile.TarInfo("d%d/f%d" % (i, j))
                    info.mode = 0o644
                    t.addfile(info)
        a = self.daemon.client()
        a.call("system.ping")
        c = self.daemon.client()
        t0 = time.monotonic()
        rid = c.request("image.import", {"name": "many", "path": path})
        c.call("system.ping")                 # the import is under way now
        a.send_raw(b'{"jsonrpc":"2.0"')
        a.shutdown_write()
        self.assertEqual(a.recv_msg()["error"]["code"], -32600)
        t1 = time.monotonic()
        closed = a.expect_eof(10)
        latency = time.monotonic() - t1
        c.result(rid, timeout=60)
        import_time = time.monotonic() - t0
        self.assertTrue(closed)
        self.assertLess(latency, 0.5, "the daemon's close reached the client only after %.2f s, when an "
                        "unrelated image import (%.2f s) ended" % (latency, import_time))

    def test_disconnect_during_import(self):
        c = RpcClient(self.daemon.socket)
        c.request("image.import", {"name": "abandoned", "path": image_tarball()})
        c.close()
        wait_until(lambda: "abandoned" in [i["name"] for i in self.call("image.list")["images"]], 20)
        sb = self.create(image="abandoned")
        self.assertEqual(self.sh(sb["id"], "echo imported"), "imported\n")


if __name__ == "__main__":
    main()
