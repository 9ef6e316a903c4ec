"""The Daytona-compatible facade, driven as an agent backend drives
daytona_sdk: the scenario is written only against sandboxd.daytona's
names (the daemon's own client is used for set-up and for checking).

Some behaviours need daemon features that are not everywhere yet; those
tests check for the feature (system.info features, or a probe of the
daemon) and skip, saying which, when it is missing:

- preview.public: a sandbox created with public=True serves its preview
  links without a token;
- preview.daytona_header: the gateway takes the token in the
  X-Daytona-Preview-Token header;
- preview.persistent: a preview link keeps its url and token across stop,
  start and daemon restarts;
- a preview URL whose host resolves on this machine (probe: getaddrinfo);
- a session id created again after a stop and start (probe);
- sandbox.archive (probe: the method exists).
"""

import asyncio
import json
import os
import socket
import time
import unittest
import urllib.error
import urllib.request
import uuid

import support
from support import DaemonTestCase, wait_until

import sandboxd
from sandboxd.daytona import (AsyncDaytona, CodeRunParams, CreateSandboxFromImageParams,
                              CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig, DaytonaConflictError,
                              DaytonaError, DaytonaNotFoundError, DaytonaTimeoutError, FileUpload, Resources,
                              SandboxState, SessionExecuteRequest)
from sandboxd.daytona.common.pty import PtySize

SNAPSHOT = "kortix/suna:0.1.3.30"

SERVICE = """#!/bin/sh
# a supervisord stand-in: starts the services and stays in the foreground
mkdir -p /www/sub /www/cgi-bin
echo index > /www/index.html
echo page > /www/sub/page.html
printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho "q=$QUERY_STRING"\\n' > /www/cgi-bin/q
chmod 755 /www/cgi-bin/q
httpd -f -p 8080 -h /www &
nc -ll -p 6080 -e /bin/cat </dev/null >/dev/null 2>&1 &
echo services-up
wait
"""

FAKE_PYTHON = """#!/bin/sh
# stands in for python3 in the busybox image: runs the code as shell
[ "$1" = -u ] && shift
[ "$1" = - ] && shift
exec sh -s "$@"
"""


def features(sock):
    with sandboxd.Client(sock) as c:
        return set(c.system.info().features)


class FacadeTestCase(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with sandboxd.Client(cls.daemon.socket) as c:
            c.image.import_(SNAPSHOT, support.image_tarball())
        cls._old_socket = os.environ.get("SANDBOXD_SOCKET")
        os.environ["SANDBOXD_SOCKET"] = cls.daemon.socket
        cls.features = features(cls.daemon.socket)

    @classmethod
    def tearDownClass(cls):
        if cls._old_socket is None:
            os.environ.pop("SANDBOXD_SOCKET", None)
        else:
            os.environ["SANDBOXD_SOCKET"] = cls._old_socket
        super().tearDownClass()

    def setUp(self):
        self.c = sandboxd.Client(self.daemon.socket)
        self.addCleanup(self.c.close)

    def params(self, **kw):
        p = dict(snapshot=SNAPSHOT, public=True, labels={"id": str(uuid.uuid4())},
                 env_vars={"VNC_PASSWORD": "pw-123", "CHROME_PATH": "", "RESOLUTION": "1048x768x24"},
                 auto_stop_interval=15, auto_archive_interval=30)
        p.update(kw)
        return CreateSandboxFromSnapshotParams(**p)

    def cleanup_sandbox(self, sid):
        def drop():
            try:
                self.c.sandbox.delete(sid, force=True)
            except sandboxd.SandboxdError:
                pass
        self.addCleanup(drop)

    # capabilities ------------------------------------------------------------

    def need_feature(self, name, what):
        if name not in self.features:
            self.skipTest("the daemon does not announce '%s' in system.info features: %s" % (name, what))

    def need_resolvable(self, url):
        host = urllib.request.urlparse(url).hostname
        try:
            socket.getaddrinfo(host, None)
        except OSError as e:
            self.skipTest("the preview host %s does not resolve on this machine (%s): the daemon's preview "
                          "domain needs a name that stock Debian resolves" % (host, e))

    def probe_session_reuse(self):
        """Can a session id be created again after a stop and start?"""
        sb = self.c.sandbox.create()
        try:
            self.c.session.create(sb, "probe")
            self.c.sandbox.stop(sb, force=True)
            self.c.sandbox.start(sb)
            try:
                self.c.session.create(sb, "probe")
                return True
            except sandboxd.Exists:
                return False
        finally:
            self.c.sandbox.delete(sb, force=True)

    def has_archive(self):
        try:
            self.c.sandbox.archive("no-such-sandbox-for-probe")
        except sandboxd.MethodNotFound:
            return False
        except sandboxd.SandboxdError:
            return True
        return True

    # helpers ---------------------------------------------------------------------

    def gateway_get(self, url, path, headers):
        """GET through the gateway's address with the URL's host in Host
        (for the parts that do not depend on the name resolving). A URL
        that names an address is the address to connect to."""
        pv_host = urllib.request.urlparse(url)
        try:
            socket.inet_aton(pv_host.hostname)
            h, p = pv_host.hostname, pv_host.port or 80
        except OSError:
            gw = self.c.net.preview(pv_host.hostname.split("-", 1)[1].split(".")[0], 80).gateway
            h, p = gw.rsplit(":", 1)
        lines = ["GET %s HTTP/1.0" % path, "Host: %s" % pv_host.netloc] + ["%s: %s" % kv for kv in headers.items()]
        with socket.create_connection((h, int(p)), timeout=5) as s:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b"".join(iter(lambda: s.recv(65536), b""))
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body


class BackendScriptTest(FacadeTestCase):
    def test_backend_script(self):
        """What an agent backend does over a sandbox's life, through the
        facade: create from a snapshot, start a service in a session,
        files, commands, preview links, stop and restart, archive, delete."""
        daytona = AsyncDaytona(DaytonaConfig(api_key="unused", api_url="https://app.daytona.io/api",
                                             target="us"))  # before any loop, as at import time
        self.assertEqual((daytona._api_key, daytona._target), ("unused", "us"))
        has_archive = self.has_archive()
        session_reuse = self.probe_session_reuse()

        async def script():
            project = str(uuid.uuid4())
            sandbox = await daytona.create(self.params(labels={"id": project}))
            self.cleanup_sandbox(sandbox.id)
            self.assertEqual(sandbox.state, SandboxState.STARTED)
            self.assertEqual(sandbox.state, "started")
            raw = self.c.sandbox.inspect(sandbox.id)
            self.assertEqual((raw.image, raw.auto_stop_min, raw.auto_archive_min), (SNAPSHOT, 15, 30))
            self.assertEqual(raw.env["CHROME_PATH"], "")

            got = await daytona.get(sandbox.id)
            self.assertEqual((got.id, got.labels["id"], got.target), (sandbox.id, project, "us"))
            for attr in ("created_at", "updated_at", "cpu", "memory", "disk"):
                self.assertIsNotNone(getattr(got, attr), attr)
            self.assertEqual((got.cpu, got.memory, got.disk), (1, 1, 10))  # daemon defaults, in cores and GiB
            self.assertEqual([s.id for s in (await daytona.list({"id": project})).items], [sandbox.id])
            self.assertEqual((await daytona.find_one(labels={"id": project})).id, sandbox.id)

            # a supervisord-like service, started by an async session command
            await sandbox.fs.upload_file(SERVICE.encode(), "/usr/local/bin/svc")
            await sandbox.fs.set_file_permissions("/usr/local/bin/svc", "755")
            await sandbox.process.create_session("supervisord-session")
            t0 = time.monotonic()
            cmd = await sandbox.process.execute_session_command(
                "supervisord-session", SessionExecuteRequest(command="exec /usr/local/bin/svc", var_async=True))
            self.assertLess(time.monotonic() - t0, 5)
            self.assertTrue(cmd.cmd_id)
            info = await sandbox.process.get_session_command("supervisord-session", cmd.cmd_id)
            self.assertIsNone(info.exit_code)
            logs = await wait_async(lambda: sandbox.process.get_session_command_logs(
                session_id="supervisord-session", command_id=cmd.cmd_id), lambda l: "services-up" in l.output)
            self.assertIn("services-up", logs.output)

            # files: into missing directories, listed, read, removed
            await asyncio.gather(*[sandbox.fs.upload_file(b"file %d" % i, "/workspace/uploads/d%d/f.txt" % (i % 4))
                                   for i in range(20)])
            await sandbox.fs.upload_file(b'{"a": 1}', "/workspace/uploads/deep/er/x.json")
            files = await sandbox.fs.list_files("/workspace/uploads")
            self.assertEqual(sorted(f.name for f in files), ["d0", "d1", "d2", "d3", "deep"])
            self.assertTrue(all(f.is_dir for f in files))
            self.assertIsNotNone(str(files[0].mod_time))
            self.assertEqual(getattr(files[0], "permissions"), "0755")
            self.assertEqual(json.loads((await sandbox.fs.download_file("/workspace/uploads/deep/er/x.json"))
                                        .decode()), {"a": 1})
            fi = await sandbox.fs.get_file_info("/workspace/uploads/deep/er/x.json")
            self.assertEqual((fi.size, fi.is_dir), (8, False))
            await sandbox.fs.create_folder("/workspace", "755")  # exists: fine
            await sandbox.fs.create_folder("/workspace/a/b/c", "755")
            await sandbox.fs.make_dir("/workspace/made")
            await sandbox.fs.move_files("/workspace/uploads/deep/er/x.json", "/workspace/made/y.json")
            await sandbox.fs.upload_file(b"old text here", "/workspace/made/t.txt")
            matches = await sandbox.fs.find_files("/workspace/made", "text")
            self.assertEqual([(m.file, m.line) for m in matches], [("/workspace/made/t.txt", 1)])
            self.assertEqual((await sandbox.fs.search_files("/workspace", "*.json")).files, ["/workspace/made/y.json"])
            rr = await sandbox.fs.replace_in_files(["/workspace/made/t.txt"], "old", "new")
            self.assertTrue(rr[0].success)
            self.assertEqual(await sandbox.fs.download_file("/workspace/made/t.txt"), b"new text here")
            await sandbox.fs.upload_files([FileUpload(source=b"1", destination="/workspace/m/1"),
                                           FileUpload(source=b"2", destination="/workspace/m/2")])
            await sandbox.fs.delete_file("/workspace/made/t.txt")
            await sandbox.fs.delete_folder("/workspace/uploads")
            for path in ("/workspace/made/t.txt", "/workspace/uploads/d0/f.txt"):
                with self.assertRaises(DaytonaNotFoundError) as cm:
                    await sandbox.fs.get_file_info(path)
                self.assertIn("not found", str(cm.exception).lower())
            with self.assertRaises(DaytonaNotFoundError) as cm:
                await sandbox.fs.list_files("/workspace/uploads")
            self.assertIn("not found", str(cm.exception).lower())

            # commands: env and cwd, output apart from errors, exit codes
            r = await sandbox.process.exec('echo "$SECRET" && pwd && echo "$VNC_PASSWORD"', env={"SECRET": "s3"},
                                           cwd="/workspace/made", timeout=30)
            self.assertEqual((r.exit_code, r.result), (0, "s3\n/workspace/made\npw-123\n"))
            r = await sandbox.process.exec("""printf '{"ok": true}'; echo 'a warning' >&2""")
            self.assertEqual(json.loads(r.result), {"ok": True})
            self.assertEqual(r.stderr, "a warning\n")
            self.assertEqual((await sandbox.process.exec("exit 7")).exit_code, 7)
            r = await sandbox.process.exec("netstat -tln | grep -c ':8080 '")
            self.assertEqual(r.result.strip(), "1")
            with self.assertRaises(DaytonaTimeoutError):
                await sandbox.process.exec("sleep 111 & sleep 112", timeout=1)
            self.assertEqual((await sandbox.process.exec("ps | grep -c '[s]leep 11'")).result.strip(), "0")
            # session commands: sync with output, heredocs, state carried over
            req = SessionExecuteRequest(command="cd /tmp && export K=v\ncat <<EOF\nhere $K\nEOF\ncat", var_async=False)
            r = await sandbox.process.execute_session_command(session_id="supervisord-session", req=req, timeout=30)
            self.assertEqual((r.exit_code, r.output), (0, "here v\n"))
            r = await sandbox.process.execute_session_command(
                "supervisord-session", SessionExecuteRequest(command="pwd; echo $K", cwd="/workspace"))
            self.assertEqual(r.output, "/workspace\nv\n")
            with self.assertRaises(DaytonaError) as cm:
                await sandbox.process.execute_session_command("no-such-session", SessionExecuteRequest(command="true"))
            self.assertIn("not found", str(cm.exception).lower())

            # preview links (through the gateway's address; resolving the
            # name and going without a token are tested apart)
            for port in (6080, 8080):
                link = await sandbox.get_preview_link(port)
                self.assertFalse(link.url.endswith("/"))
                self.assertIn("url='%s'" % link.url, str(link))
                self.assertEqual(len(link.token), 64)
            status, body = self.gateway_get(link.url, "/sub/page.html", {"X-Sandbox-Token": link.token})
            self.assertEqual((status, body), (200, b"page\n"))

            # stop, then get-or-start as backends do, and the service again
            await daytona.stop(sandbox)
            sandbox = await daytona.get(sandbox.id)
            self.assertIn(sandbox.state, [SandboxState.ARCHIVED, SandboxState.STOPPED, SandboxState.ARCHIVING])
            await daytona.start(sandbox)
            for _ in range(30):
                sandbox = await daytona.get(sandbox.id)
                if sandbox.state == SandboxState.STARTED:
                    break
                await asyncio.sleep(1)
            self.assertEqual(sandbox.state, SandboxState.STARTED)
            if session_reuse:
                await sandbox.process.create_session("supervisord-session")
            else:  # today's daemon keeps the session: see test_session_id_reused_after_restart
                with self.assertRaises(DaytonaConflictError):
                    await sandbox.process.create_session("supervisord-session")
            await sandbox.process.execute_session_command(
                "supervisord-session", SessionExecuteRequest(command="exec /usr/local/bin/svc", run_async=True))
            r = await wait_async(lambda: sandbox.process.exec("netstat -tln | grep -c ':8080 '"),
                                 lambda r: r.result.strip() == "1")
            self.assertEqual((await sandbox.fs.download_file("/workspace/made/y.json")), b'{"a": 1}')

            # archive: stopped first
            await sandbox.stop()
            await sandbox.wait_for_sandbox_stop()
            if has_archive:
                await sandbox.archive()
                await wait_async(sandbox.refresh_data, lambda _: sandbox.state == SandboxState.ARCHIVED)
                await daytona.start(sandbox)
                self.assertEqual(await sandbox.fs.download_file("/workspace/made/y.json"), b'{"a": 1}')
            else:
                with self.assertRaises(DaytonaError) as cm:
                    await sandbox.archive()
                self.assertIn("sandbox.archive", str(cm.exception))
                self.assertNotIn("not found", str(cm.exception))
                await sandbox.refresh_data()
                self.assertEqual(sandbox.state, SandboxState.STOPPED)

            # delete, and "not found" afterwards
            sid = sandbox.id
            await daytona.delete(sandbox)
            with self.assertRaises(DaytonaNotFoundError) as cm:
                await daytona.get(sid)
            self.assertIn("not found", str(cm.exception).lower())
            with self.assertRaises(DaytonaNotFoundError):
                await sandbox.process.exec("true")
            with self.assertRaises(DaytonaNotFoundError):
                await sandbox.fs.list_files("/")
            await daytona.close()
        asyncio.run(script())

    def test_pty_session(self):
        async def main():
            daytona = AsyncDaytona()
            sb = await daytona.create(self.params())
            self.cleanup_sandbox(sb.id)
            got = []

            async def on_data(b):
                got.append(b)
            pty = await sb.process.create_pty_session(id="terminal_ab12", on_data=on_data,
                                                      pty_size=PtySize(cols=120, rows=40))
            await pty.send_input("stty size\n")
            await wait_async(lambda: asyncio.sleep(0), lambda _: b"40 120" in b"".join(got))
            await pty.resize(PtySize(cols=100, rows=30))
            await pty.send_input("stty size\n")
            await wait_async(lambda: asyncio.sleep(0), lambda _: b"30 100" in b"".join(got))
            self.assertEqual([p.id for p in await sb.process.list_pty_sessions()], ["terminal_ab12"])
            with self.assertRaises(DaytonaConflictError):
                await sb.process.create_pty_session(id="terminal_ab12", on_data=on_data)
            await pty.kill()
            res = await asyncio.wait_for(pty.wait(), 10)
            self.assertEqual(res.exit_code, 137)
            self.assertFalse(pty.is_connected())
            await pty.disconnect()
            p2 = await sb.process.create_pty_session(id="second", on_data=lambda b: None)
            await p2.send_input("exit 3\n")
            self.assertEqual((await asyncio.wait_for(p2.wait(), 10)).exit_code, 3)
            await daytona.delete(sb)
            await daytona.close()
        asyncio.run(main())

    def test_sessions_and_code(self):
        async def main():
            daytona = AsyncDaytona()
            sb = await daytona.create(CreateSandboxFromImageParams(image=SNAPSHOT, resources=Resources(
                cpu=2, memory=2, disk=3), auto_stop_interval=0, env_vars={"E": "1"}))
            self.cleanup_sandbox(sb.id)
            raw = self.c.sandbox.inspect(sb.id)
            self.assertEqual((raw.resources.cpus, raw.resources.memory_mb, raw.resources.disk_mb, raw.auto_stop_min),
                             (2, 2048, 3072, 0))
            self.assertEqual((sb.cpu, sb.memory, sb.disk), (2, 2, 3))
            await sb.set_autostop_interval(45)
            self.assertEqual((self.c.sandbox.inspect(sb.id).auto_stop_min, sb.auto_stop_interval), (45, 45))
            # commands and session commands count as activity for auto-stop
            before = self.c.sandbox.inspect(sb.id).last_activity_at
            await asyncio.sleep(0.01)
            await sb.process.exec("true")
            after_exec = self.c.sandbox.inspect(sb.id).last_activity_at
            self.assertGreater(after_exec, before)
            await sb.process.create_session("cmd_1a2b3c4d")
            await asyncio.sleep(0.01)
            r = await sb.process.execute_session_command("cmd_1a2b3c4d", SessionExecuteRequest(
                command="echo out; echo err >&2; exit 2"))
            self.assertGreater(self.c.sandbox.inspect(sb.id).last_activity_at, after_exec)
            self.assertEqual((r.exit_code, r.stdout, r.stderr, r.output), (2, "out\n", "err\n", "out\nerr\n"))
            a = await sb.process.execute_session_command("cmd_1a2b3c4d", SessionExecuteRequest(
                command="for i in 1 2 3; do echo $i; sleep 0.1; done; echo e >&2", run_async=True))
            outs, errs = [], []
            await sb.process.get_session_command_logs_async("cmd_1a2b3c4d", a.cmd_id, outs.append, errs.append)
            self.assertEqual(("".join(outs), "".join(errs)), ("1\n2\n3\n", "e\n"))
            done = await sb.process.get_session_command("cmd_1a2b3c4d", a.cmd_id)
            self.assertEqual(done.exit_code, 0)
            sess = await sb.process.get_session("cmd_1a2b3c4d")
            self.assertEqual([c.id for c in sess.commands], [r.cmd_id, a.cmd_id])
            self.assertEqual([s.session_id for s in await sb.process.list_sessions()], ["cmd_1a2b3c4d"])
            await sb.process.delete_session("cmd_1a2b3c4d")
            with self.assertRaises(DaytonaNotFoundError) as cm:
                await sb.process.get_session("cmd_1a2b3c4d")
            self.assertIn("not found", str(cm.exception))
            # process.start: a background command (some backends call it)
            st = await sb.process.start("echo started > /tmp/s")
            self.assertTrue(st.cmd_id)
            await wait_async(lambda: sb.process.exec("cat /tmp/s"), lambda r: r.result == "started\n")
            # code_run through the sandbox's python3 (a stand-in here)
            await sb.fs.upload_file(FAKE_PYTHON.encode(), "/usr/local/bin/python3")
            await sb.fs.set_file_permissions("/usr/local/bin/python3", "755")
            r = await sb.process.code_run('echo "code $1 $E"', CodeRunParams(argv=["arg"], env={"E": "2"}))
            self.assertEqual((r.exit_code, r.result), (0, "code arg 2\n"))
            await daytona.delete(sb)
            await daytona.close()
        asyncio.run(main())

    def test_sync_operator_script(self):
        """The blocking Daytona(), as operator scripts use it."""
        daytona = Daytona()
        tag = str(uuid.uuid4())
        made = [daytona.create(self.params(labels={"op": tag})) for _ in range(2)]
        for s in made:
            self.cleanup_sandbox(s.id)
        listed = daytona.list({"op": tag})
        self.assertEqual(len(listed), 2)
        self.assertEqual(len(listed.items), 2)
        self.assertEqual({s.id for s in listed}, {s.id for s in made})
        sb = listed[0]
        self.assertEqual(getattr(sb, "state"), "started")
        self.assertEqual(sb.process.exec("echo sync").result, "sync\n")
        sb.fs.upload_file(b"x", "/workspace/q/x")
        self.assertEqual(sb.fs.download_file("/workspace/q/x"), b"x")
        pty = sb.process.create_pty_session(id="op", pty_size=PtySize(rows=20, cols=70))
        pty.send_input("stty size; exit 4\n")
        seen = []
        res = pty.wait(on_data=seen.append, timeout=10)
        self.assertEqual(res.exit_code, 4)
        self.assertIn(b"20 70", b"".join(seen))
        sb.stop()
        sb.wait_for_sandbox_stop()
        self.assertEqual(daytona.get(sb.id).state, SandboxState.STOPPED)
        if self.has_archive():
            sb.archive()
            self.assertEqual(daytona.get(sb.id).state, SandboxState.ARCHIVED)
            sb.start()
            self.assertEqual(sb.fs.download_file("/workspace/q/x"), b"x")
            sb.stop()
        else:
            with self.assertRaises(DaytonaError) as cm:
                sb.archive()
            self.assertIn("sandbox.archive", str(cm.exception))
        for s in made:
            daytona.delete(daytona.get(s.id))
        with self.assertRaises(DaytonaNotFoundError):
            daytona.get(made[0].id)
        self.assertEqual(len(daytona.list({"op": tag})), 0)
        daytona.close()


class DaemonFeatureTest(FacadeTestCase):
    """Behaviours that wait for daemon features (see the module's doc)."""

    def serve(self, sandbox):
        sandbox.fs.upload_file(SERVICE.encode(), "/usr/local/bin/svc")
        sandbox.fs.set_file_permissions("/usr/local/bin/svc", "755")
        sandbox.process.start("/usr/local/bin/svc")
        wait_until(lambda: sandbox.process.exec("netstat -tln | grep -c ':6080 '").result.strip() == "1", 10)

    def test_public_preview_without_token(self):
        """urllib, no token: paths, a query, a WebSocket upgrade."""
        daytona = Daytona()
        sb = daytona.create(self.params(public=True))
        self.cleanup_sandbox(sb.id)
        if "preview.public" not in self.features and not sb.public:
            self.skipTest("the daemon neither announces 'preview.public' nor reports the sandbox public: "
                          "public sandboxes' previews still need a token")
        self.serve(sb)
        link = sb.get_preview_link(8080)
        self.need_resolvable(link.url)
        self.assertFalse(link.url.endswith("/"))

        def get(path):
            with urllib.request.urlopen(link.url + path, timeout=10) as r:
                return r.status, r.read()
        self.assertEqual(wait_until(lambda: get("/index.html"), 10), (200, b"index\n"))
        self.assertEqual(get("/sub/page.html"), (200, b"page\n"))
        self.assertEqual(get("/cgi-bin/q?x=1&y=two"), (200, b"q=x=1&y=two\n"))
        ws = sb.get_preview_link(6080)
        u = urllib.request.urlparse(ws.url)
        head = ("GET /websockify HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" % u.netloc).encode()
        with socket.create_connection((u.hostname, u.port or 80), timeout=10) as s:
            s.sendall(head)
            got = b""
            while len(got) < len(head):  # the echo service sends the request back
                got += s.recv(65536)
            self.assertEqual(got, head)
            frame = b"\x81\x85" + b"\x01\x02\x03\x04" + bytes(c ^ k for c, k in zip(b"hello", b"\x01\x02\x03\x04"))
            s.sendall(frame)
            self.assertEqual(s.recv(100), frame)
        daytona.close()

    def test_private_preview_with_daytona_header(self):
        self.need_feature("preview.daytona_header", "the gateway does not take X-Daytona-Preview-Token")
        daytona = Daytona()
        sb = daytona.create(self.params(public=False))
        self.cleanup_sandbox(sb.id)
        self.serve(sb)
        link = sb.get_preview_link(8080)
        self.assertEqual(self.gateway_get(link.url, "/index.html", {})[0], 401)
        self.assertEqual(wait_until(lambda: self.gateway_get(link.url, "/index.html",
                                                             {"X-Daytona-Preview-Token": link.token}), 10),
                         (200, b"index\n"))
        daytona.close()

    def test_preview_link_survives_stop_start_and_daemon_restart(self):
        self.need_feature("preview.persistent", "preview tokens end when the sandbox stops")
        daytona = Daytona()
        sb = daytona.create(self.params(public=False))
        self.cleanup_sandbox(sb.id)
        self.serve(sb)
        link = sb.get_preview_link(8080)
        sb.stop()
        sb.start()
        self.daemon.restart(hard=True)
        self.serve(sb)
        again = sb.get_preview_link(8080)
        self.assertEqual((again.url, again.token), (link.url, link.token))
        self.assertEqual(wait_until(lambda: self.gateway_get(link.url, "/index.html",
                                                             {"X-Sandbox-Token": link.token}), 10),
                         (200, b"index\n"))
        daytona.close()

    def test_session_id_reused_after_restart(self):
        if not self.probe_session_reuse():
            self.skipTest("the daemon keeps a sandbox's sessions across stop and start: create_session with "
                          "an id used before the stop answers 'exists'")
        daytona = Daytona()
        sb = daytona.create(self.params())
        self.cleanup_sandbox(sb.id)
        sb.process.create_session("supervisord-session")
        sb.process.execute_session_command("supervisord-session",
                                           SessionExecuteRequest(command="exec sleep 300", var_async=True))
        daytona.stop(sb)
        daytona.start(sb)
        sb.process.create_session("supervisord-session")
        r = sb.process.execute_session_command("supervisord-session", SessionExecuteRequest(command="echo again"))
        self.assertEqual(r.output, "again\n")
        daytona.close()


async def wait_async(make, ok, interval=0.1, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        v = await make()
        if ok(v):
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %s s (last: %r)" % (timeout, v))
        await asyncio.sleep(interval)


if __name__ == "__main__":
    unittest.main()
