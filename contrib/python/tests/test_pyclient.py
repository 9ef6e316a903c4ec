"""The blocking and asyncio clients against a real daemon: every method,
every error class from a real bad request, streams, terminals, transfers,
reconnection, and many threads and coroutines on one client."""

import asyncio
import hashlib
import io
import json
import os
import socket
import tempfile
import threading
import time
import unittest

import support
from support import DaemonTestCase, wait_until

import sandboxd
from sandboxd import types as t


class ClientTest(DaemonTestCase):
    def setUp(self):
        self.c = sandboxd.Client(self.daemon.socket, timeout=60)
        self.addCleanup(self.c.close)

    def sandbox(self, **kw):
        sb = self.c.sandbox.create(**kw)
        self.addCleanup(lambda: self._drop(sb.id))
        return sb

    def _drop(self, sid):
        try:
            self.c.sandbox.delete(sid, force=True)
        except sandboxd.SandboxdError:
            pass

    # -- system, image --------------------------------------------------

    def test_system(self):
        info = self.c.system.info()
        self.assertIsInstance(info, t.SystemInfo)
        self.assertEqual(info.api_version, 1)
        self.assertIn("overlayfs", info.features)
        self.assertIsInstance(info.resource_defaults, t.Resources)
        self.assertEqual(info.raw["pid"], self.daemon.pid)
        self.assertIsNone(self.c.system.ping())
        self.assertEqual(self.c.call("system.ping"), {})

    def test_image_lifecycle(self):
        images = self.c.image.list()
        self.assertIn("minimal", [i.name for i in images])
        img = self.c.image.import_("team/tool:1.0", support.image_tarball())
        self.assertEqual((img.name, img.format), ("team/tool:1.0", "rootfs-tar"))
        self.assertEqual(self.c.image.inspect("team/tool:1.0").id, img.id)
        sb = self.sandbox(image="team/tool:1.0")
        self.assertEqual(sb.image, "team/tool:1.0")
        with self.assertRaises(sandboxd.BadState):
            self.c.image.remove("team/tool:1.0")
        self.c.sandbox.delete(sb, force=True)
        self.c.image.remove("team/tool:1.0")
        with self.assertRaises(sandboxd.NotFound):
            self.c.image.inspect("team/tool:1.0")

    def test_image_import_from_a_file_object_and_a_pipe(self):
        # The daemon reads what this process opened: an open file ...
        with open(support.image_tarball(), "rb") as f:
            img = self.c.image.import_("from-file", f)
        self.assertEqual((img.format, img.raw["source"]), ("rootfs-tar", "the passed file"))
        # ... and a pipe this process writes while the daemon reads.
        r, w = os.pipe()
        with open(support.image_tarball(), "rb") as f:
            data = f.read()

        def feed():
            with os.fdopen(w, "wb") as out:
                out.write(data)
        t = threading.Thread(target=feed)
        t.start()
        try:
            img = self.c.image.import_("from-pipe", r)
        finally:
            os.close(r)
            t.join()
        self.assertEqual((img.format, img.raw["source"]), ("rootfs-tar", "the passed stream"))
        sb = self.sandbox(image="from-pipe")
        self.assertEqual(self.c.process.exec(sb, "echo ok").stdout, "ok\n")

    # -- sandbox ----------------------------------------------------------

    def test_sandbox_lifecycle(self):
        sb = self.sandbox(name="life", labels={"team": "py"}, env={"GREETING": "hi"},
                          resources=sandboxd.Resources(cpus=0.5, memory_mb=256), auto_stop_min=5,
                          auto_archive_min=30)
        self.assertIsInstance(sb, t.Sandbox)
        self.assertEqual((sb.name, sb.state, sb.labels, sb.env), ("life", "started", {"team": "py"},
                                                                  {"GREETING": "hi"}))
        self.assertEqual((sb.resources.cpus, sb.resources.memory_mb), (0.5, 256))
        self.assertEqual((sb.auto_stop_min, sb.auto_archive_min), (5, 30))
        self.assertEqual(sb.network.mode, "bridge")
        self.assertEqual(self.c.sandbox.inspect("life").id, sb.id)
        self.assertEqual([s.id for s in self.c.sandbox.list(labels={"team": "py"})], [sb.id])
        self.assertEqual(self.c.sandbox.list(labels={"team": "nobody"}), [])
        self.assertIn(sb.id, [s.id for s in self.c.sandbox.list(state="started")])
        self.assertIs(sb.public, False)
        up = self.c.sandbox.update(sb, labels={"team": "py", "v": "2"}, auto_stop_min=0,
                                   resources={"memory_mb": 512}, public=True)
        self.assertEqual((up.labels["v"], up.auto_stop_min, up.resources.memory_mb, up.public), ("2", 0, 512, True))
        st = self.c.sandbox.stats(sb)
        self.assertIsInstance(st, t.Stats)
        self.assertEqual(st.state, "started")
        self.assertGreater(st.pids, 0)
        before = self.c.sandbox.inspect(sb).last_activity_at
        time.sleep(0.01)
        self.assertIsNone(self.c.sandbox.touch(sb))
        self.assertGreater(self.c.sandbox.inspect(sb).last_activity_at, before)
        self.assertEqual(self.c.sandbox.pause(sb).state, "paused")
        self.assertEqual(self.c.sandbox.resume(sb).state, "started")
        self.assertIsNone(self.c.sandbox.stop(sb, timeout_s=2))
        self.assertEqual(self.c.sandbox.inspect(sb).state, "stopped")
        self.assertEqual(self.c.sandbox.start(sb).state, "started")
        self.c.sandbox.delete(sb, force=True)
        with self.assertRaises(sandboxd.NotFound):
            self.c.sandbox.inspect(sb)

    def test_sandbox_snapshot_and_archive_as_the_daemon_has_them(self):
        """Both are in the contract; a daemon without them answers
        MethodNotFound, one with them does the work (a snapshot of a
        stopped sandbox, then its archive)."""
        sb = self.sandbox(start=False)
        try:
            img = self.c.sandbox.snapshot(sb, "snap-of-" + sb.id)
        except sandboxd.MethodNotFound as e:
            self.assertIn("sandbox.snapshot", str(e))
        else:
            self.assertEqual(img.name, "snap-of-" + sb.id)
            self.assertGreaterEqual(img.raw["snapshot"]["pause_ms"], 0)
        try:
            r = self.c.sandbox.archive(sb)
        except sandboxd.MethodNotFound as e:
            self.assertIn("sandbox.archive", str(e))
        else:
            self.assertEqual(self.c.sandbox.inspect(sb).state, "archived")
            self.assertEqual(r.id, sb.id)
            self.assertEqual(r.state, "archived")

    # -- processes --------------------------------------------------------

    def test_exec(self):
        sb = self.sandbox()
        r = self.c.process.exec(sb, "echo out; echo err >&2; exit 3")
        self.assertIsInstance(r, t.ExecResult)
        self.assertEqual((r.exit_code, r.stdout, r.stderr, r.ok), (3, "out\n", "err\n", False))
        r = self.c.process.exec(sb, ["sh", "-c", 'printf "%s|%s|%s" "$A" "$(pwd)" "$(cat)"'], cwd="/tmp",
                                env={"A": "b"}, stdin="input")
        self.assertEqual(r.stdout, "b|/tmp|input")
        r = self.c.process.exec(sb, ["printf", "\\000\\377"], encoding="base64")
        self.assertEqual(r.stdout, b"\x00\xff")
        r = self.c.process.exec(sb, "sleep 30", timeout_s=0.5)
        self.assertTrue(r.timed_out)

    def test_background_commands(self):
        sb = self.sandbox()
        sp = self.c.process.spawn(sb, "read line; echo got:$line; echo bye >&2", stdin=True)
        self.assertIsInstance(sp, t.Spawned)
        self.assertEqual(self.c.process.stdin(sb, sp.cmd_id, b"abc\n", eof=True), 4)
        w = self.c.process.wait(sb, sp.cmd_id, timeout_s=10)
        self.assertEqual((w.exited, w.exit_code), (True, 0))
        lg = self.c.process.logs(sb, sp.cmd_id)
        self.assertEqual((lg.stdout, lg.stderr, lg.exited), ("got:abc\n", "bye\n", True))
        lg2 = self.c.process.logs(sb, sp.cmd_id, offset=lg.offset)
        self.assertEqual((lg2.stdout, lg2.stderr), ("", ""))
        self.assertEqual(self.c.process.logs(sb, sp.cmd_id, encoding="base64").stdout, b"got:abc\n")
        slow = self.c.process.spawn(sb, ["sleep", "60"])
        with self.assertRaises(sandboxd.Timeout):
            self.c.process.wait(sb, slow.cmd_id, timeout_s=0.2)
        ids = [p.cmd_id for p in self.c.process.list(sb)]
        self.assertEqual(ids[:2], [sp.cmd_id, slow.cmd_id])
        self.assertGreaterEqual(self.c.process.kill(sb, slow.cmd_id, "KILL"), 1)
        self.assertEqual(self.c.process.wait(sb, slow.cmd_id).signal, "KILL")
        tty = self.c.process.spawn(sb, "stty size; sleep 0.5; stty size", tty=True, rows=10, cols=20)
        time.sleep(0.2)
        self.assertIsNone(self.c.process.resize(sb, tty.cmd_id, 30, 100))
        self.c.process.wait(sb, tty.cmd_id)
        self.assertEqual(self.c.process.logs(sb, tty.cmd_id).stdout.split(), ["10", "20", "30", "100"])

    def test_follow_logs(self):
        sb = self.sandbox()
        sp = self.c.process.spawn(sb, "for i in 1 2 3; do echo $i; echo e$i >&2; sleep 0.05; done; exit 4")
        items = list(self.c.process.follow(sb, sp.cmd_id))
        self.assertIsInstance(items[-1], t.Exit)
        self.assertEqual(items[-1].exit_code, 4)
        out = "".join(i.data for i in items[:-1] if i.stream == "stdout")
        err = "".join(i.data for i in items[:-1] if i.stream == "stderr")
        self.assertEqual((out, err), ("1\n2\n3\n", "e1\ne2\ne3\n"))
        with self.c.process.follow(sb, sp.cmd_id, offset=2, encoding="base64") as s:
            first = next(s)
            self.assertIsInstance(first.data, bytes)

    def test_events(self):
        with self.c.events.subscribe() as ev:
            sb = self.c.sandbox.create()
            self.c.sandbox.stop(sb)
            self.c.sandbox.delete(sb)
            types = [ev.next(timeout=10).type for _ in range(4)]
        self.assertEqual(types, ["created", "started", "stopped", "deleted"])
        sb = self.sandbox()
        with self.c.events.subscribe(sb) as ev:
            self.assertEqual(ev.result["sandbox"], sb.id)
            self.c.sandbox.pause(sb)
            e = ev.next(timeout=10)
            self.assertEqual((e.type, e.sandbox, e.state), ("paused", sb.id, "paused"))
            with self.assertRaises(sandboxd.Timeout):
                ev.next(timeout=0.2)

    def test_terminal(self):
        sb = self.sandbox()
        with self.c.process.terminal(sb, ["/bin/sh"], rows=33, cols=99) as term:
            term.write("stty size; echo done-$((6*7))\n")
            out = b""
            while b"done-42" not in out:
                out += term.read(timeout=10)
            self.assertIn(b"33 99", out)
            term.resize(50, 132)
            term.write("stty size; exit 7\n")
            while True:
                b = term.read(timeout=10)
                if not b:
                    break
                out += b
            self.assertIn(b"50 132", out)
            self.assertEqual(term.wait(timeout=10).exit_code, 7)
        long = self.c.process.terminal(sb, ["sleep", "60"])
        self.assertGreaterEqual(long.kill(), 1)
        self.assertEqual(long.wait().signal, "KILL")
        long.close()

    # -- sessions ---------------------------------------------------------

    def test_sessions(self):
        sb = self.sandbox()
        s = self.c.session.create(sb, "work", env={"MODE": "dev"})
        self.assertEqual((s.session_id, s.cwd), ("work", "/workspace"))
        r = self.c.session.exec(sb, "work", "cd /tmp && export NEXT=1")
        self.assertEqual((r.exit_code, r.cwd), (0, "/tmp"))
        r = self.c.session.exec(sb, "work", "echo $MODE$NEXT $(pwd)")
        self.assertEqual(r.stdout, "dev1 /tmp\n")
        bg = self.c.session.exec(sb, "work", "exec sleep 60", run_async=True)
        self.assertIsInstance(bg, t.Spawned)
        listed = self.c.session.list(sb)
        self.assertEqual([x.session_id for x in listed], ["work"])
        self.assertIn(bg.cmd_id, listed[0].running)
        self.assertGreaterEqual(self.c.session.delete(sb, "work"), 1)
        self.assertEqual(self.c.session.list(sb), [])

    # -- files --------------------------------------------------------------

    def test_fs_calls(self):
        sb = self.sandbox()
        info = self.c.fs.write(sb, "/workspace/a/b.txt", "hello TODO\nsecond\n")
        self.assertIsInstance(info, t.FileInfo)
        self.assertEqual((info.size, info.type), (18, "file"))
        self.assertEqual(self.c.fs.write(sb, "/workspace/a/raw.bin", b"\x00\x01\xff").size, 3)
        self.assertEqual(self.c.fs.read(sb, "/workspace/a/raw.bin").data, b"\x00\x01\xff")
        rr = self.c.fs.read(sb, "/workspace/a/b.txt", offset=6, length=4, encoding="utf-8")
        self.assertEqual((rr.data, rr.eof), ("TODO", False))
        self.assertTrue(self.c.fs.mkdir(sb, "/workspace/d/e", parents=True, mode="0700").is_dir)
        self.assertEqual(self.c.fs.stat(sb, "/workspace/d/e").mode, 0o700)
        with self.assertRaises(sandboxd.Exists):
            self.c.fs.mkdir(sb, "/workspace/d")
        self.assertEqual([e.name for e in self.c.fs.list(sb, "/workspace/a")], ["b.txt", "raw.bin"])
        self.assertEqual(len(self.c.fs.list(sb, "/workspace", depth=0)), 5)
        self.assertEqual(self.c.fs.move(sb, "/workspace/a/raw.bin", "/workspace/d").path, "/workspace/d/raw.bin")
        self.assertEqual(self.c.fs.chmod(sb, "/workspace/a/b.txt", "600").mode_octal, "0600")
        self.assertEqual(self.c.fs.chmod(sb, "/workspace/a/b.txt", owner="sandbox").owner, "sandbox")
        found = self.c.fs.find(sb, "/workspace", "TODO")
        self.assertEqual([(m.file, m.line) for m in found.matches], [("/workspace/a/b.txt", 1)])
        self.assertEqual(self.c.fs.search(sb, "/workspace", "*.bin").files, ["/workspace/d/raw.bin"])
        rep = self.c.fs.replace(sb, ["/workspace/a/b.txt", "/workspace/nope"], "TODO", "DONE", literal=True)
        self.assertEqual((rep[0].replaced, rep[1].code), (1, 1))
        self.assertEqual(self.c.fs.read(sb, "/workspace/a/b.txt", encoding="utf-8").data, "hello DONE\nsecond\n")
        self.assertIsNone(self.c.fs.remove(sb, "/workspace/d", recursive=True))
        with self.assertRaises(sandboxd.NotFound):
            self.c.fs.stat(sb, "/workspace/d")

    def test_fs_archive_and_extract(self):
        sb = self.sandbox()
        self.c.fs.write(sb, "/src/x/one.txt", "1")
        self.c.fs.write(sb, "/src/two.txt", "22")
        with tempfile.TemporaryDirectory() as tmp:
            tar = os.path.join(tmp, "src.tar")
            r = self.c.fs.archive(sb, "/src", tar)
            self.assertIsInstance(r, t.ArchiveResult)
            self.assertGreaterEqual(r.entries, 3)
            self.assertEqual(self.c.fs.extract(sb, "/dst", tar).entries, r.entries)
            buf = io.BytesIO()  # no descriptor: through a pipe
            self.c.fs.archive(sb, "/src", buf)
            self.assertGreater(len(buf.getvalue()), 1024)
            buf.seek(0)
            self.c.fs.extract(sb, "/dst2", buf)
        self.assertEqual(self.c.fs.read(sb, "/dst/x/one.txt", encoding="utf-8").data, "1")
        self.assertEqual(self.c.fs.read(sb, "/dst2/two.txt", encoding="utf-8").data, "22")

    def test_upload_and_download_every_kind(self):
        sb = self.sandbox()
        data = os.urandom(3 * 1024 * 1024 + 17)
        seen = []
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "src.bin")
            with open(src, "wb") as f:
                f.write(data)
            cases = [("path", src), ("bytes", data), ("bytesio", io.BytesIO(data)), ("file", open(src, "rb"))]
            for transfer in ("fd", "chunks"):
                for kind, source in cases:
                    with self.subTest(transfer=transfer, kind=kind):
                        if hasattr(source, "seek"):
                            source.seek(0)
                        dst = "/workspace/up/%s/%s.bin" % (transfer, kind)
                        info = self.c.fs.upload(sb, source, dst, transfer=transfer, chunk_size=1 << 20,
                                                progress=lambda d, tot: seen.append((d, tot)))
                        self.assertEqual(info.size, len(data))
                        self.assertEqual(seen[-1], (len(data), len(data)))
                        self.assertEqual(self.c.fs.download(sb, dst, transfer=transfer), data)
                        out = os.path.join(tmp, "out.bin")
                        self.assertEqual(self.c.fs.download(sb, dst, out, transfer=transfer), len(data))
                        with open(out, "rb") as f:
                            self.assertEqual(f.read(), data)
                        bio = io.BytesIO()
                        self.c.fs.download(sb, dst, bio, transfer=transfer, chunk_size=1 << 20)
                        self.assertEqual(bio.getvalue(), data)
            cases[-1][1].close()
            # a file object is read from its position on
            with open(src, "rb") as f:
                f.read(100)
                self.assertEqual(self.c.fs.upload(sb, f, "/workspace/tail.bin").size, len(data) - 100)
                self.assertEqual(f.tell(), len(data))
            self.assertEqual(self.c.fs.upload(sb, b"", "/workspace/empty", transfer="chunks").size, 0)
            self.assertEqual(self.c.fs.download(sb, "/workspace/empty", transfer="chunks"), b"")
            self.assertEqual(self.c.fs.upload(sb, b"x", "/workspace/mode", mode=0o600).mode, 0o600)
            with self.assertRaises(sandboxd.NotFound):
                self.c.fs.download(sb, "/workspace/none", os.path.join(tmp, "never"))
            self.assertFalse(os.path.exists(os.path.join(tmp, "never")))

    def test_without_descriptor_passing_files_go_in_chunks(self):
        """Through a relay that carries bytes but not descriptors (as a
        socket forwarded from another host does), transfer="auto" finds
        the daemon refusing fd and moves the file in chunks."""
        relay = ByteRelay(self.daemon.socket)
        self.addCleanup(relay.close)
        c = sandboxd.Client(relay.path)
        self.addCleanup(c.close)
        sb = self.sandbox()
        data = os.urandom(5 << 20)
        with self.assertRaises(sandboxd.InvalidParams) as cm:
            c.fs.upload(sb, data, "/workspace/x", transfer="fd")
        self.assertEqual(cm.exception.param, "fd")
        self.assertEqual(c.fs.upload(sb, data, "/workspace/x").size, len(data))
        self.assertIs(c.fd_passing, False)
        self.assertEqual(c.fs.download(sb, "/workspace/x"), data)

    def _spy_encodings(self, c):
        """The encoding of every fs.read and fs.write c sends from now on."""
        conn = c._connection()
        seen = []
        start = conn.start

        def spy(method, params=None, *a, **kw):
            if method in ("fs.read", "fs.write") and params:
                seen.append((method, params.get("encoding")))
            return start(method, params, *a, **kw)
        conn.start = spy
        return conn, seen

    def test_chunks_go_as_raw_bytes_where_the_daemon_has_them(self):
        sb = self.sandbox()
        # Newlines and whole JSON lines inside the file: the raw bytes of a
        # read must never be taken for a reply.
        line = b'{"jsonrpc":"2.0","id":3,"result":{"encoding":"binary","length":1}}\n'
        data = (line * 1000 + os.urandom(1 << 20) + b"\n") * 3 + b"tail"
        with sandboxd.Client(self.daemon.socket) as c:
            conn, seen = self._spy_encodings(c)
            self.assertEqual(c.fs.upload(sb, data, "/workspace/h.bin", transfer="chunks",
                                         chunk_size=1 << 20).size, len(data))
            self.assertEqual(c.fs.download(sb, "/workspace/h.bin", transfer="chunks", chunk_size=1 << 20), data)
            self.assertIn("fs.encoding.hex", conn.features)
            self.assertIn("fs.encoding.binary", conn.features)
            self.assertEqual(set(seen), {("fs.write", "binary"), ("fs.read", "binary")})
            self.assertGreaterEqual(len(seen), 2 * 4)  # 4 pieces each way, and reads past the end
            # one piece of each encoding by hand, the same bytes, and the
            # connection still in step after them
            for enc in ("hex", "binary", "base64"):
                r = c.fs.read(sb, "/workspace/h.bin", offset=3, length=100000, encoding=enc)
                self.assertEqual((r.data, r.encoding), (data[3:100003], enc))
            # hex up, where asked for, gives the same file
            conn.features = conn.features - {"fs.encoding.binary"}
            self.assertEqual(c.fs.upload(sb, data, "/workspace/h2.bin", transfer="chunks",
                                         chunk_size=1 << 20).size, len(data))
            self.assertEqual(("fs.write", "hex"), seen[-1])
            conn.features = conn.features | {"fs.encoding.binary"}
            self.assertEqual(c.fs.download(sb, "/workspace/h2.bin", transfer="chunks"), data)
            self.assertEqual(c.fs.read(sb, "/workspace/h.bin", offset=len(data) - 4, encoding="binary").data,
                             b"tail")
            self.assertEqual(c.system.ping(), c.system.ping())

    def test_raw_bytes_through_a_relay_in_small_pieces(self):
        """The bytes after a binary request or reply go in pieces of any
        size, mixed with the next line: the same file comes out, on the
        blocking and on the asyncio client."""
        relay = ByteRelay(self.daemon.socket, piece=4093)
        self.addCleanup(relay.close)
        sb = self.sandbox()
        data = os.urandom((2 << 20) + 11).replace(b"\x00", b"\n")
        c = sandboxd.Client(relay.path)
        self.addCleanup(c.close)
        self.assertEqual(c.fs.upload(sb, data, "/workspace/r.bin", transfer="chunks", chunk_size=(1 << 19) + 5,
                                     window=4).size, len(data))
        self.assertEqual(c.fs.download(sb, "/workspace/r.bin", transfer="chunks", chunk_size=(1 << 19) + 3,
                                       window=4), data)

        async def go():
            async with sandboxd.AsyncClient(relay.path) as ac:
                got = await ac.fs.download(sb, "/workspace/r.bin", transfer="chunks", chunk_size=1 << 20)
                piece = await ac.fs.read(sb, "/workspace/r.bin", offset=5, length=70000, encoding="binary")
                return got, piece.data
        got, piece = asyncio.run(go())
        self.assertEqual((got, piece), (data, data[5:70005]))

    def test_chunks_fall_back_to_hex_and_base64(self):
        """A daemon that does not list fs.encoding.binary (an older one)
        is read in hex; one without fs.encoding.hex either gets base64.
        The bytes are the same."""
        sb = self.sandbox()
        data = os.urandom((2 << 20) + 7)
        for missing, want in (((), {("fs.write", "binary"), ("fs.read", "binary")}),
                              ({"fs.encoding.binary"}, {("fs.write", "hex"), ("fs.read", "hex")}),
                              ({"fs.encoding.binary", "fs.encoding.hex"},
                               {("fs.write", "base64"), ("fs.read", "base64")})):
            with self.subTest(missing=sorted(missing)), sandboxd.Client(self.daemon.socket) as c:
                conn, seen = self._spy_encodings(c)
                conn._learn_limit()
                conn.features = conn.features - set(missing)
                self.assertEqual(c.fs.upload(sb, io.BytesIO(data), "/workspace/b.bin", transfer="chunks",
                                             chunk_size=1 << 20).size, len(data))
                self.assertEqual(c.fs.download(sb, "/workspace/b.bin", transfer="chunks", chunk_size=1 << 20),
                                 data)
                self.assertEqual(set(seen), want)

    # -- net ------------------------------------------------------------------

    def test_net(self):
        sb = self.sandbox()
        self.c.process.exec(sb, "mkdir -p /www && echo hi > /www/index.html && httpd -p 8080 -h /www")
        port = self.c.net.publish(sb, 8080)
        self.assertIsInstance(port, t.Port)
        self.assertEqual((port.port, port.host_ip), (8080, "127.0.0.1"))
        self.assertEqual([p.port for p in self.c.net.ports(sb)], [8080])

        def get():
            try:
                with socket.create_connection(("127.0.0.1", port.host_port), timeout=2) as s:
                    s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                    return b"".join(iter(lambda: s.recv(4096), b""))
            except OSError:
                return None
        self.assertIn(b"hi", wait_until(get, 10))
        pv = self.c.net.preview(sb, 8080)
        self.assertIsInstance(pv, t.Preview)
        self.assertEqual(len(pv.token), 64)
        self.assertTrue(pv.url.startswith("http://") and not pv.url.endswith("/"), pv.url)
        self.assertEqual(pv.host_url, "http://8080-%s.localhost:%s" % (sb.id, pv.host_url.rsplit(":", 1)[1]))
        self.assertEqual(self.c.net.preview(sb, 8080), pv)  # the same link, asked again
        rotated = self.c.net.preview(sb, 8080, rotate=True)
        self.assertEqual((rotated.url, rotated.public), (pv.url, False))
        self.assertNotEqual(rotated.token, pv.token)
        self.assertEqual(self.c.net.unpreview(sb, 8080), 1)
        self.assertEqual(self.c.net.unpreview(sb), 0)
        self.assertIsNone(self.c.net.unpublish(sb, 8080))
        self.assertEqual(self.c.net.ports(sb), [])

    # -- errors ---------------------------------------------------------------

    def test_every_error_class_from_a_real_bad_request(self):
        sb = self.sandbox(name="taken")
        tmp = tempfile.mkdtemp(prefix="sbxtest-export-")
        self.addCleanup(os.rmdir, tmp)
        cases = [
            (sandboxd.NotFound, lambda: self.c.sandbox.inspect("no-such-sandbox")),
            (sandboxd.Exists, lambda: self.c.sandbox.create(name="taken")),
            (sandboxd.BadState, lambda: self.c.sandbox.delete(sb)),
            (sandboxd.Denied, lambda: self.c.fs.remove(sb, "/", recursive=True)),
            (sandboxd.Timeout, lambda: self.c.process.wait(
                sb, self.c.process.spawn(sb, "sleep 30").cmd_id, timeout_s=0.1)),
            # minimal is a root file system image: only layered images export
            (sandboxd.Unsupported, lambda: self.c.image.export("minimal", os.path.join(tmp, "out"))),
            (sandboxd.InvalidParams, lambda: self.c.call("process.exec", {"sandbox": sb.id})),
            (sandboxd.MethodNotFound, lambda: self.c.call("no.such_method")),
            (sandboxd.InvalidRequest, lambda: self.c.call("system.ping", [1, 2])),
        ]
        for cls, fn in cases:
            with self.subTest(cls=cls.__name__):
                with self.assertRaises(cls) as cm:
                    fn()
                e = cm.exception
                self.assertEqual(e.code, cls.code)
                self.assertTrue(str(e))
                self.assertIsInstance(e, sandboxd.SandboxdError)
        with self.assertRaises(sandboxd.InvalidParams) as cm:
            self.c.call("process.exec", {"sandbox": sb.id})
        self.assertEqual(cm.exception.method, "process.exec")
        # the limit error, from a daemon that allows one sandbox
        d = self.new_daemon(config={"max_sandboxes": 1})
        with sandboxd.Client(d.socket) as c:
            c.sandbox.create(start=False)
            with self.assertRaises(sandboxd.LimitExceeded) as cm:
                c.sandbox.create(start=False)
            self.assertIn("1", str(cm.exception))
        # a line that is not JSON: the daemon answers -32700 with id null
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.daemon.socket)
            s.sendall(b"{not json\n")
            reply = json.loads(s.makefile("rb").readline())
        err = sandboxd.error_from_reply(reply["error"])
        self.assertIsInstance(err, sandboxd.ParseError)
        self.assertIsInstance(err, sandboxd.ProtocolError)
        # builtin bases, for code that catches those
        self.assertTrue(issubclass(sandboxd.Timeout, TimeoutError))
        self.assertTrue(issubclass(sandboxd.ConnectionError, ConnectionError))
        self.assertTrue(issubclass(sandboxd.NotFound, LookupError))

    def test_a_request_over_the_message_limit_is_refused_before_sending(self):
        d = self.new_daemon(max_message=1 << 20)
        with sandboxd.Client(d.socket) as c:
            sb = c.sandbox.create()
            with self.assertRaises(sandboxd.LimitExceeded) as cm:
                c.fs.write(sb, "/x", "y" * (2 << 20))
            self.assertIn("limit", str(cm.exception))
            c.system.ping()  # nothing was sent; the connection is fine
            # chunked uploads cut their pieces to the limit
            data = os.urandom(3 << 20)
            self.assertEqual(c.fs.upload(sb, data, "/y", transfer="chunks", chunk_size=8 << 20).size, len(data))
            self.assertEqual(c.fs.download(sb, "/y", transfer="chunks"), data)
            c.sandbox.delete(sb, force=True)

    # -- the connection ---------------------------------------------------------

    def test_socket_path_resolution(self):
        old = os.environ.get("SANDBOXD_SOCKET")
        try:
            os.environ["SANDBOXD_SOCKET"] = self.daemon.socket
            self.assertEqual(sandboxd.Client().socket_path, self.daemon.socket)
            sandboxd.Client().system.ping()
            self.assertEqual(sandboxd.Client("/elsewhere").socket_path, "/elsewhere")
            del os.environ["SANDBOXD_SOCKET"]
            self.assertEqual(sandboxd.Client().socket_path, "/run/sandboxd/sandboxd.sock")
            self.assertEqual(sandboxd.DEFAULT_SOCKET, "/run/sandboxd/sandboxd.sock")
        finally:
            if old is None:
                os.environ.pop("SANDBOXD_SOCKET", None)
            else:
                os.environ["SANDBOXD_SOCKET"] = old
        with self.assertRaises(sandboxd.ConnectionError) as cm:
            sandboxd.Client("/nonexistent/sock").system.ping()
        self.assertIn("/nonexistent/sock", str(cm.exception))

    def test_vanished_daemon_gives_connection_error_then_reconnects(self):
        d = self.new_daemon()
        c = sandboxd.Client(d.socket)
        sb = c.sandbox.create()
        errs = []

        def long_exec():
            try:
                c.process.exec(sb, "sleep 30")
            except sandboxd.SandboxdError as e:
                errs.append(e)
        th = threading.Thread(target=long_exec)
        th.start()
        time.sleep(0.3)
        d.kill9()
        th.join(10)
        self.assertEqual([type(e) for e in errs], [sandboxd.ConnectionError])
        with self.assertRaises(sandboxd.ConnectionError):
            c.system.ping()  # nobody listens
        d.start()
        self.assertEqual(c.sandbox.inspect(sb).state, "started")  # the next call reconnects
        c.sandbox.delete(sb, force=True)
        c.close()

    def test_100_threads_share_one_client(self):
        sb = self.sandbox()
        before = threading.active_count()
        results = {}
        errors = []

        def work(i):
            try:
                r = self.c.process.exec(sb, "echo %d" % i)
                self.c.fs.write(sb, "/workspace/t/%d" % i, "n%d" % i)
                results[i] = (r.stdout, self.c.fs.read(sb, "/workspace/t/%d" % i, encoding="utf-8").data)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(100)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(results, {i: ("%d\n" % i, "n%d" % i) for i in range(100)})
        # one connection: one reader thread, one socket at the daemon
        self.assertLessEqual(threading.active_count(), before)
        conns = [p for p in self.daemon.fd_list().values() if p.startswith("socket:")]
        self.assertLess(len(conns), 20)


class ProgressTest(DaemonTestCase):
    def test_progress_of_a_long_call(self):
        """Against the real daemon: the stream ends with the reply (this
        version sends no progress for an import yet)."""
        c = sandboxd.Client(self.daemon.socket)
        ps = c.progress("image.import", {"name": "prog", "path": support.image_tarball()})
        notes = list(ps)
        self.assertTrue(all(isinstance(n, t.Notification) for n in notes))
        self.assertEqual(ps.result()["name"], "prog")
        c.close()

    def test_progress_notifications_reach_their_call(self):
        """A stand-in daemon that sends progress notifications (as pulls
        will) for two calls at once, with and without a request id."""
        with FakeDaemon() as fake:
            c = sandboxd.Client(fake.path)
            seen = []
            img = c.image.import_("x", "/x.tar", on_progress=seen.append)
            self.assertEqual(img.name, "x")
            self.assertEqual([n["done"] for n in seen], [1, 2])
            ps = c.progress("image.import", {"name": "y", "path": "/y.tar"})
            self.assertEqual([n.params["done"] for n in ps], [1, 2])
            self.assertEqual(ps.result()["name"], "y")

            async def main():
                ac = sandboxd.AsyncClient(fake.path)
                aps = ac.progress("image.import", {"name": "z", "path": "/z.tar"})
                got = [n.params["done"] async for n in aps]
                return got, (await aps.result())["name"]
            self.assertEqual(asyncio.run(main()), ([1, 2], "z"))
            c.close()


class FakeDaemon:
    """Answers image.import with two progress notifications (naming the
    request by id) before the result."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbxfake-")
        self.path = os.path.join(self.dir, "sock")
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        with s, s.makefile("rwb") as f:
            for line in f:
                req = json.loads(line)
                if req["method"] == "image.import":
                    for done in (1, 2):
                        f.write(json.dumps({"jsonrpc": "2.0", "method": "image.progress", "params": {
                            "request_id": req["id"], "done": done, "total": 2}}).encode() + b"\n")
                    # another call's progress, which must not reach this one
                    f.write(json.dumps({"jsonrpc": "2.0", "method": "image.progress", "params": {
                        "request_id": req["id"] + 1000, "done": 99}}).encode() + b"\n")
                    res = {"name": req["params"]["name"], "id": "0123456789ab"}
                else:
                    res = {}
                f.write(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": res}).encode() + b"\n")
                f.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.srv.close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


class ByteRelay:
    """A unix socket that forwards bytes to another, without the
    descriptors passed along with them; piece: the most bytes it reads,
    and so forwards, at a time."""

    def __init__(self, target, piece=1 << 20):
        self.piece = piece
        self.dir = tempfile.mkdtemp(prefix="sbxrelay-")
        self.path = os.path.join(self.dir, "sock")
        self.target = target
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen(8)
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            b = socket.socket(socket.AF_UNIX)
            b.connect(self.target)
            self.socks += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(x, y, self.piece), daemon=True).start()

    @staticmethod
    def _pipe(x, y, piece):
        try:
            while True:
                data, _fds, _, _ = socket.recv_fds(x, piece, 4)
                for fd in _fds:
                    os.close(fd)
                if not data:
                    break
                y.sendall(data)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.srv.close()
        for s in self.socks:
            s.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


class AsyncClientTest(DaemonTestCase):
    def test_created_before_any_loop_and_used_from_two(self):
        ac = sandboxd.AsyncClient(self.daemon.socket)

        async def first():
            sb = await ac.sandbox.create(labels={"async": "1"})
            r = await ac.process.exec(sb, "echo $((1+1))")
            return sb, r.stdout
        sb, out = asyncio.run(first())
        self.assertEqual(out, "2\n")

        async def second():  # a new loop, the same client
            return [s.id for s in await ac.sandbox.list(labels={"async": "1"})]
        self.assertEqual(asyncio.run(second()), [sb.id])
        asyncio.run(ac.sandbox.delete(sb, force=True))
        ac.close()

    def test_every_family_async(self):
        async def main():
            async with sandboxd.AsyncClient(self.daemon.socket) as ac:
                info = await ac.system.info()
                self.assertEqual(info.api_version, 1)
                await ac.ping()
                self.assertTrue(await ac.image.list())
                sb = await ac.sandbox.create()
                self.assertEqual((await ac.sandbox.inspect(sb)).state, "started")
                await ac.session.create(sb, "s")
                r = await ac.session.exec(sb, "s", "export X=1; echo a")
                self.assertEqual(r.stdout, "a\n")
                sp = await ac.process.spawn(sb, "echo 1; sleep 0.1; echo 2")
                got = [x async for x in ac.process.follow(sb, sp.cmd_id)]
                self.assertEqual("".join(x.data for x in got[:-1]), "1\n2\n")
                self.assertIsInstance(got[-1], t.Exit)
                async with ac.events.subscribe(sb) as ev:
                    await ac.sandbox.pause(sb)
                    e = await asyncio.wait_for(ev.__anext__(), 10)
                    self.assertEqual(e.type, "paused")
                await ac.sandbox.resume(sb)
                term = await ac.process.terminal(sb, ["/bin/sh"], rows=12, cols=34)
                term.resize(13, 35)
                await term.write("stty size; echo hi-$((2+3)); exit 2\n")
                out = b""
                while True:
                    b = await asyncio.wait_for(term.read(), 10)
                    if not b:
                        break
                    out += b
                self.assertIn(b"hi-5", out)
                self.assertIn(b"13 35", out)
                self.assertEqual((await term.wait()).exit_code, 2)
                term.close()
                data = os.urandom(2 << 20)
                self.assertEqual((await ac.fs.upload(sb, data, "/w/x.bin")).size, len(data))
                self.assertEqual(await ac.fs.download(sb, "/w/x.bin"), data)
                await ac.fs.write(sb, "/w/big.txt", "y" * (300 << 10))
                self.assertEqual((await ac.fs.stat(sb, "/w/big.txt")).size, 300 << 10)
                self.assertEqual([e.name for e in await ac.fs.list(sb, "/w")], ["big.txt", "x.bin"])
                with self.assertRaises(sandboxd.NotFound):
                    await ac.fs.stat(sb, "/nope")
                pv = await ac.net.preview(sb, 80)
                self.assertEqual(len(pv.token), 64)
                self.assertEqual((await ac.call("system.ping")), {})
                await ac.sandbox.delete(sb, force=True)
        asyncio.run(main())

    def test_200_concurrent_execs_on_one_async_client(self):
        async def main():
            ac = sandboxd.AsyncClient(self.daemon.socket)
            sbs = [await ac.sandbox.create() for _ in range(2)]
            t0 = time.monotonic()
            rs = await asyncio.gather(*[ac.process.exec(sbs[i % 2], "echo %d" % i) for i in range(200)])
            elapsed = time.monotonic() - t0
            self.assertEqual([r.stdout for r in rs], ["%d\n" % i for i in range(200)])
            # slow ones do not hold up the others: 200 commands of 0.5 s
            t0 = time.monotonic()
            rs = await asyncio.gather(*[ac.process.exec(sbs[i % 2], "sleep 0.5; echo ok") for i in range(200)])
            self.assertEqual({r.stdout for r in rs}, {"ok\n"})
            self.assertLess(time.monotonic() - t0, 60)
            for sb in sbs:
                await ac.sandbox.delete(sb, force=True)
            ac.close()
            return elapsed
        asyncio.run(main())


class AsyncLoopReadingTest(DaemonTestCase):
    """AsyncClient's calls are read by the event loop itself: no reader
    thread, big lines queued without blocking the loop, descriptors passed
    from the loop, a vanished daemon failing the call and the next one
    connecting again."""

    def test_no_reader_thread_and_big_lines_in_order(self):
        async def main():
            ac = sandboxd.AsyncClient(self.daemon.socket)
            names = lambda: sorted(th.name for th in threading.enumerate())
            before = names()
            sb = await ac.sandbox.create()
            self.assertEqual((await ac.process.exec(sb, "echo hi")).stdout, "hi\n")
            self.assertEqual(names(), before)  # no thread between the socket and the loop
            # Lines longer than the socket takes at once (about 260 KiB
            # each), many at a time: the loop sends them as it can, in order,
            # while it reads the replies of the first ones.
            blobs = [os.urandom(200 << 10) for _ in range(12)]
            infos = await asyncio.gather(*[ac.fs.write(sb, "/w/%d" % i, b) for i, b in enumerate(blobs)])
            self.assertEqual([x.size for x in infos], [len(b) for b in blobs])
            for i, b in enumerate(blobs):
                self.assertEqual((await ac.fs.read(sb, "/w/%d" % i)).data, b)
            # A descriptor on a line that has to wait behind others goes
            # with it, though the caller closes its own at once.
            with tempfile.TemporaryFile() as f:
                f.write(b"through the loop")
                f.flush()
                f.seek(0)
                waits = [ac.fs.write(sb, "/w/q%d" % i, blobs[i]) for i in range(6)]
                tasks = [asyncio.ensure_future(w) for w in waits]
                await asyncio.sleep(0)  # they are sent (or queued) now
                from sandboxd._api import Call
                fd = os.dup(f.fileno())
                coro = ac._do(Call("fs.write", {"sandbox": sb.id, "path": "/w/fd", "fd": True},
                                   lambda r, _: r, fds=[fd]))
                task = asyncio.ensure_future(coro)
                await asyncio.sleep(0)
                os.close(fd)
                await task
                await asyncio.gather(*tasks)
            self.assertEqual((await ac.fs.read(sb, "/w/fd", encoding="utf-8")).data, "through the loop")
            await ac.sandbox.delete(sb, force=True)
            ac.close()
        asyncio.run(main())

    def test_vanished_daemon_then_reconnect(self):
        d = self.new_daemon()
        ac = sandboxd.AsyncClient(d.socket)

        async def main():
            sb = await ac.sandbox.create()
            long = asyncio.ensure_future(ac.process.exec(sb, "sleep 30"))
            await asyncio.sleep(0.3)
            d.kill9()
            with self.assertRaises(sandboxd.ConnectionError):
                await asyncio.wait_for(long, 10)
            with self.assertRaises(sandboxd.ConnectionError):
                await ac.system.ping()
            d.start()
            self.assertEqual((await ac.sandbox.inspect(sb)).state, "started")
            await ac.sandbox.delete(sb, force=True)
        asyncio.run(main())
        ac.close()


class BigUploadTest(DaemonTestCase):
    """1 GiB into a sandbox from a child process whose peak RSS is read at
    the end: over passed descriptors and in chunks, memory stays bounded."""

    CHILD = r"""
import os, sys, resource
sys.path.insert(0, %(pkg)r)
import sandboxd
c = sandboxd.Client(%(sock)r)
sb = c.sandbox.create(resources={"disk_mb": 0})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seen = []
info = c.fs.upload(sb, %(src)r, "/workspace/big.bin", transfer=%(transfer)r,
                   progress=lambda d, t: seen.append(d))
assert info.size == %(size)d, info
n = c.fs.download(sb, "/workspace/big.bin", %(dst)r, transfer=%(transfer)r)
assert n == %(size)d, n
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c.sandbox.delete(sb, force=True)
print(base, peak, len(seen), seen[-1])
"""

    def run_child(self, transfer, size):
        import subprocess
        import sys
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            src = os.path.join(tmp, "src.bin")
            dst = os.path.join(tmp, "dst.bin")
            with open(src, "wb") as f:  # random-ish content, made fast
                block = os.urandom(1 << 20)
                for i in range(size >> 20):
                    f.write(block[i % 4096:] + block[:i % 4096])
            code = self.CHILD % {"pkg": support.PKG, "sock": self.daemon.socket, "src": src, "dst": dst,
                                 "transfer": transfer, "size": size}
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr)
            base, peak, nprog, last = map(int, p.stdout.split())
            with open(src, "rb") as a, open(dst, "rb") as b:
                ha, hb = hashlib.sha256(), hashlib.sha256()
                for x, h in ((a, ha), (b, hb)):
                    for piece in iter(lambda: x.read(1 << 22), b""):
                        h.update(piece)
                self.assertEqual(ha.hexdigest(), hb.hexdigest())
        return base, peak, nprog, last

    def test_1gib_over_descriptors(self):
        size = 1 << 30
        base, peak, nprog, last = self.run_child("fd", size)
        self.assertEqual(last, size)
        self.assertLess(peak - base, 32 << 10, "peak RSS grew by %d KiB" % (peak - base))  # KiB

    def test_1gib_in_chunks(self):
        size = 1 << 30
        base, peak, nprog, last = self.run_child("chunks", size)
        self.assertEqual(last, size)
        self.assertGreater(nprog, 100)
        # a few chunks in flight, their base64 and JSON: far below the file
        self.assertLess(peak - base, 96 << 10, "peak RSS grew by %d KiB" % (peak - base))


if __name__ == "__main__":
    unittest.main()
