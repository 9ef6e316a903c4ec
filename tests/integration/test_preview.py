#!/usr/bin/env python3
"""Preview links as agent backends use them: public sandboxes served
without a token, private ones with it (daytona_sdk's header too), a link
that keeps its URL and token across stops, starts and daemon restarts until
delete or revocation, a 503 while its sandbox is stopped, URLs that
Python's urllib reaches on this host as it is, and the Host-routed form for
operators with a wildcard domain."""
import os
import signal
import socket
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from sbxtest import DaemonError, SandboxdTestCase, main, pid_alive, wait_until

NOT_FOUND, BAD_STATE, LIMIT = 1, 3, 4
INVALID_PARAMS = -32602

# busybox httpd with a page, a page in a directory and a CGI that prints
# its query; an echo server (stands in for websockify) on 6080.
SERVICES = r"""
mkdir -p /www/sub /www/cgi-bin
echo index > /www/index.html
echo page > /www/sub/page.html
printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "q=$QUERY_STRING"\n' > /www/cgi-bin/q
chmod 755 /www/cgi-bin/q
httpd -p 8080 -h /www
nc -ll -p 6080 -e /bin/cat </dev/null >/dev/null 2>&1 &
"""

WS_HEAD = ("GET /websockify HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n")


def fetch(url, headers=None, timeout=10):
    """(status, body, headers) of a GET with urllib; HTTP errors included,
    and status 0 when no connection could be made."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode(), None


def fetch_when_up(url, headers=None, timeout=15):
    """(status, body) of the first GET that is not refused, nor answered
    by the gateway for a sandbox still starting its services (502)."""
    last = []

    def attempt():
        r = fetch(url, headers)
        last[:] = [r[:2]]
        return r[0] not in (0, 502) and r[:2]
    try:
        return wait_until(attempt, timeout, 0.05)
    except AssertionError:
        return last[0]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


def raw_request(addr, head, want):
    """Sends head to addr (host, port) and reads until want bytes came."""
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(head)
        got = b""
        while len(got) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


class PreviewTestBase(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        if "network.bridge" not in self.call("system.info")["features"]:
            self.skipTest("bridge networking is unavailable on this host")

    def serve(self, sb):
        self.sh(sb["id"], SERVICES)
        wait_until(lambda: self.exec(sb["id"], "netstat -tln | grep -c ':6080 '")["stdout"].strip() == "1", 10,
                   message="the services in the sandbox")

    def preview(self, sb, port, **kw):
        return self.call("net.preview", dict(sandbox=sb["id"], port=port, **kw))

    def websocket_echo(self, url, extra=""):
        u = urllib.parse.urlsplit(url)
        head = (WS_HEAD % (u.netloc, extra)).encode()
        expected = (WS_HEAD % (u.netloc, "")).encode()
        frame = b"\x81\x85\x01\x02\x03\x04" + bytes(c ^ k for c, k in zip(b"hello", b"\x01\x02\x03\x04"))
        with socket.create_connection((u.hostname, u.port or 80), timeout=10) as s:
            s.sendall(head)
            got = b""
            while len(got) < len(expected):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            self.assertEqual(got, expected)  # the head, without the gateway's credentials
            s.sendall(frame)
            self.assertEqual(s.recv(100), frame)


class PublicAndPrivateTest(PreviewTestBase):
    def test_public_sandbox_is_served_without_a_token(self):
        sb = self.create(public=True)
        self.assertIs(sb["public"], True)
        self.serve(sb)
        pv = self.preview(sb, 8080)
        self.assertIs(pv["public"], True)
        url = pv["url"]
        self.assertFalse(url.endswith("/"))
        self.assertEqual(fetch_when_up(url + "/index.html"), (200, b"index\n"))
        self.assertEqual(fetch(url + "/sub/page.html")[:2], (200, b"page\n"))
        self.assertEqual(fetch(url + "/cgi-bin/q?x=1&y=two")[:2], (200, b"q=x=1&y=two\n"))
        # A "token" that is not the gateway's belongs to the app.
        self.assertEqual(fetch(url + "/cgi-bin/q?token=mine")[:2], (200, b"q=token=mine\n"))
        self.websocket_echo(self.preview(sb, 6080)["url"])
        # The Host-routed form of the same sandbox needs no token either.
        host = urllib.parse.urlsplit(pv["host_url"])
        st, _, body = self.gateway_request("127.0.0.1:%d" % host.port, host.netloc, "/index.html")
        self.assertEqual((st, body), (200, b"index\n"))

    def test_private_sandbox_needs_the_token(self):
        sb = self.create()
        self.assertIs(sb["public"], False)
        self.serve(sb)
        pv = self.preview(sb, 8080)
        self.assertIs(pv["public"], False)
        url, token = pv["url"], pv["token"]
        wait_until(lambda: fetch(url + "/index.html", {"X-Sandbox-Token": token})[0] == 200, 10)
        self.assertEqual(fetch(url + "/index.html")[0], 401)
        self.assertEqual(fetch(url + "/index.html", {"X-Sandbox-Token": "0" * 64})[0], 401)
        self.assertEqual(fetch(url + "/index.html", {"X-Daytona-Preview-Token": "0" * 64})[0], 401)
        # A token of another port of the same sandbox opens nothing here.
        other = self.preview(sb, 6080)
        self.assertEqual(fetch(url + "/index.html", {"X-Sandbox-Token": other["token"]})[0], 401)
        # Each way of giving it: the gateway's header, daytona_sdk's header,
        # ?token= (once, then a cookie of this link), the cookie.
        for h in ("X-Sandbox-Token", "X-Daytona-Preview-Token"):
            self.assertEqual(fetch(url + "/cgi-bin/q?a=1", {h: token})[:2], (200, b"q=a=1\n"), h)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(url + "/sub/page.html?a=1&token=" + token, timeout=10)
            self.fail("no redirect")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 302)
            self.assertEqual(e.headers["Location"], "/sub/page.html?a=1")
            cookie = e.headers["Set-Cookie"].split(";")[0]
        self.assertEqual(cookie, "sbx_preview_token_%s_8080=%s" % (sb["id"], token))
        self.assertEqual(fetch(url + "/sub/page.html", {"Cookie": cookie})[:2], (200, b"page\n"))
        # Neither header reaches the app.
        self.websocket_echo(other["url"], "X-Daytona-Preview-Token: %s\r\n" % other["token"])
        self.websocket_echo(other["url"], "X-Sandbox-Token: %s\r\n" % other["token"])

    def test_public_changes_with_update_and_survives_a_restart(self):
        sb = self.create()
        self.serve(sb)
        url = self.preview(sb, 8080)["url"]
        wait_until(lambda: fetch(url + "/index.html")[0] == 401, 10)
        self.assertIs(self.call("sandbox.update", {"sandbox": sb["id"], "public": True})["public"], True)
        self.assertEqual(fetch(url + "/index.html")[:2], (200, b"index\n"))
        for hard in (True, False):
            self.daemon.restart(hard=hard)
            self.rpc = self.daemon.client()
            self.assertIs(self.inspect(sb["id"])["public"], True)
            self.assertEqual(fetch_when_up(url + "/index.html"), (200, b"index\n"))
        self.call("sandbox.update", {"sandbox": sb["id"], "public": False})
        self.assertEqual(fetch(url + "/index.html")[0], 401)
        self.assertRpcError(INVALID_PARAMS, "sandbox.update", {"sandbox": sb["id"], "public": "yes"}, param="public")
        self.assertRpcError(INVALID_PARAMS, "sandbox.create", {"public": 1}, param="public")
        self.assertIs(self.inspect(sb["id"])["public"], False)

    def test_url_is_reachable_by_urllib_as_this_host_is(self):
        """The default URL names an address: nothing to resolve. (Names
        under localhost need nss-myhostname, which stock Debian lacks.)"""
        sb = self.create(public=True)
        self.serve(sb)
        url = self.preview(sb, 8080)["url"]
        host = urllib.parse.urlsplit(url).hostname
        socket.getaddrinfo(host, None)  # raises when it does not resolve
        self.assertRegex(url, r"^http://127\.0\.0\.1:\d+$")
        self.assertEqual(fetch_when_up(url + "/index.html"), (200, b"index\n"))

    def gateway_request(self, gateway, host, path="/", headers=None):
        h, p = gateway.rsplit(":", 1)
        lines = ["GET %s HTTP/1.0" % path, "Host: %s" % host] + ["%s: %s" % kv for kv in (headers or {}).items()]
        with socket.create_connection((h, int(p)), timeout=10) as s:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b"".join(iter(lambda: s.recv(65536), b""))
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), head, body

    def test_a_link_answers_to_local_names_only(self):
        """A page whose name was made to resolve to 127.0.0.1 (DNS
        rebinding) sends that name as Host: refused."""
        sb = self.create(public=True)
        self.serve(sb)
        pv = self.preview(sb, 8080)
        port = urllib.parse.urlsplit(pv["url"]).port
        wait_until(lambda: fetch(pv["url"] + "/index.html")[0] == 200, 10)
        for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "8080-%s.localhost" % sb["id"], "[::1]"):
            self.assertEqual(self.gateway_request(pv["gateway"], host, "/index.html")[0], 200, host)
        st, _, body = self.gateway_request(pv["gateway"], "evil.example:%d" % port, "/index.html")
        self.assertEqual(st, 421)
        self.assertIn(b"preview domain", body)


class PersistentLinkTest(PreviewTestBase):
    def test_same_url_and_token_across_stop_start_and_restarts(self):
        sb = self.create()
        self.serve(sb)
        pv = self.preview(sb, 8080)
        self.assertIsNone(pv["expires_at"])
        url, token = pv["url"], pv["token"]
        hdr = {"X-Daytona-Preview-Token": token}
        self.assertEqual(fetch_when_up(url + "/index.html", hdr), (200, b"index\n"))
        self.assertEqual(self.preview(sb, 8080), pv)  # asked again: the same link
        path = os.path.join(self.daemon.state_dir, "sandboxes", sb["id"], "preview")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

        # Stopped: a 503 that names the state, and the same link after.
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        st, body, headers = fetch(url + "/index.html", hdr)
        self.assertEqual(st, 503)
        self.assertEqual(body, b"sandbox %s is stopped; port 8080 is reached again once it is started\n"
                         % sb["id"].encode())
        self.assertEqual(fetch(url + "/index.html")[0], 401)  # the state is for holders of the token
        self.assertEqual(self.preview(sb, 8080), pv)  # asked while stopped: the same
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.serve(sb)
        self.assertEqual(fetch_when_up(url + "/index.html", hdr), (200, b"index\n"))

        # A daemon killed, and one stopped cleanly: the same again.
        for hard in (True, False):
            with self.subTest(hard=hard):
                self.daemon.restart(hard=hard)
                self.rpc = self.daemon.client()
                self.assertEqual(self.inspect(sb["id"])["state"], "started")
                self.assertEqual(fetch(url + "/index.html", hdr)[:2], (200, b"index\n"))
                again = self.preview(sb, 8080)
                self.assertEqual((again["url"], again["token"]), (url, token))

        # Stopped while the daemon was away: the link stays, with a 503.
        init = self.inspect(sb["id"])["init_pid"]
        self.daemon.kill9()
        os.kill(init, signal.SIGKILL)
        wait_until(lambda: not pid_alive(init), 5, message="init gone")
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.inspect(sb["id"])["state"], "stopped")
        self.assertEqual(fetch(url + "/index.html", hdr)[0], 503)
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.serve(sb)
        self.assertEqual(fetch_when_up(url + "/index.html", hdr), (200, b"index\n"))
        self.assertEqual(self.preview(sb, 8080)["token"], token)

    def test_expiring_tokens_share_the_link(self):
        sb = self.create()
        self.serve(sb)
        pv = self.preview(sb, 8080)
        short = self.preview(sb, 8080, expires_s=1)
        self.assertEqual(short["url"], pv["url"])
        self.assertNotEqual(short["token"], pv["token"])
        self.assertIsNotNone(short["expires_at"])
        long = self.preview(sb, 8080, expires_s=600)
        self.assertNotEqual(long["token"], short["token"])
        for t in (pv, short, long):
            self.assertEqual(fetch_when_up(pv["url"] + "/index.html", {"X-Sandbox-Token": t["token"]})[0], 200)
        time.sleep(1.3)
        self.assertEqual(fetch(pv["url"] + "/index.html", {"X-Sandbox-Token": short["token"]})[0], 401)
        # The longer one outlives a stop, a start and a restart.
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.daemon.restart(hard=True)
        self.rpc = self.daemon.client()
        self.serve(sb)
        self.assertEqual(fetch_when_up(pv["url"] + "/index.html", {"X-Sandbox-Token": long["token"]})[0], 200)
        self.assertEqual(self.preview(sb, 8080)["token"], pv["token"])
        self.assertRpcError(INVALID_PARAMS, "net.preview", {"sandbox": sb["id"], "port": 8080, "rotate": True,
                                                            "expires_s": 5}, param="rotate")


class RevocationTest(PreviewTestBase):
    def test_rotate_unpreview_and_delete(self):
        sb = self.create()
        self.serve(sb)
        pv = self.preview(sb, 8080)
        other = self.preview(sb, 6080)
        url = pv["url"]
        wait_until(lambda: fetch(url + "/index.html", {"X-Sandbox-Token": pv["token"]})[0] == 200, 10)
        # rotate: a new persistent token at the same URL; the old one is void.
        rot = self.preview(sb, 8080, rotate=True)
        self.assertEqual(rot["url"], url)
        self.assertNotEqual(rot["token"], pv["token"])
        self.assertEqual(fetch(url + "/index.html", {"X-Sandbox-Token": pv["token"]})[0], 401)
        self.assertEqual(fetch(url + "/index.html", {"X-Sandbox-Token": rot["token"]})[0], 200)
        self.assertEqual(self.preview(sb, 8080)["token"], rot["token"])
        # unpreview of one port: its listener closes, its connections end
        # (a WebSocket in the middle of its life); the other link stays.
        u = urllib.parse.urlsplit(other["url"])
        live = socket.create_connection((u.hostname, u.port), timeout=10)
        head = (WS_HEAD % (u.netloc, "X-Sandbox-Token: %s\r\n" % other["token"])).encode()
        live.sendall(head)
        self.assertTrue(live.recv(65536).startswith(b"GET /websockify"))
        self.assertEqual(self.call("net.unpreview", {"sandbox": sb["id"], "port": 6080}), {"revoked": 1})
        live.settimeout(10)
        self.assertEqual(live.recv(100), b"")
        live.close()
        self.assertFalse(self.port_open(u.port))
        host = urllib.parse.urlsplit(other["host_url"])
        st = PublicAndPrivateTest.gateway_request(self, "127.0.0.1:%d" % host.port, host.netloc, "/",
                                                  {"X-Sandbox-Token": other["token"]})[0]
        self.assertEqual(st, 401)
        self.assertEqual(fetch(url + "/index.html", {"X-Sandbox-Token": rot["token"]})[:2], (200, b"index\n"))
        self.assertRpcError(NOT_FOUND, "net.unpreview", {"sandbox": sb["id"], "port": 6080})
        # Revoked on disk too: a restart does not bring it back.
        self.daemon.restart(hard=True)
        self.rpc = self.daemon.client()
        self.assertFalse(self.port_open(u.port))
        fresh = self.preview(sb, 6080)
        self.assertNotEqual(fresh["token"], other["token"])
        self.assertEqual(fetch(url + "/index.html", {"X-Sandbox-Token": rot["token"]})[:2], (200, b"index\n"))
        # delete: every link goes, with the file.
        self.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
        for link in (fresh, rot):
            self.assertFalse(self.port_open(urllib.parse.urlsplit(link["url"]).port), link["url"])
        host = urllib.parse.urlsplit(fresh["host_url"])
        self.assertEqual(PublicAndPrivateTest.gateway_request(
            self, "127.0.0.1:%d" % host.port, host.netloc, "/index.html", {"X-Sandbox-Token": fresh["token"]})[0],
            404)
        self.assertRpcError(NOT_FOUND, "net.preview", {"sandbox": sb["id"], "port": 8080})
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "sandboxes", sb["id"])))

    def test_unpreview_without_port_revokes_every_link(self):
        sb = self.create(public=True)
        links = [self.preview(sb, p) for p in (8080, 6080, 9000)]
        self.assertEqual(self.call("net.unpreview", {"sandbox": sb["id"]}), {"revoked": 3})
        self.assertEqual(self.call("net.unpreview", {"sandbox": sb["id"]}), {"revoked": 0})
        for link in links:
            self.assertFalse(self.port_open(urllib.parse.urlsplit(link["url"]).port))
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "sandboxes", sb["id"], "preview")))

    @staticmethod
    def port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            return False


class CtlTest(PreviewTestBase):
    def ctl_ok(self, *args):
        code, out, err = self.ctl(*args)
        self.assertEqual(code, 0, err)
        return out

    def fields(self, out):
        return {k: v.strip() for k, v in (line.split(":", 1) for line in out.splitlines())}

    def test_sandboxctl_public_preview_rotate_unpreview(self):
        sid = self.ctl_ok("create", "--public").strip()
        self.daemon.known_ids.add(sid)
        self.assertIs(self.inspect(sid)["public"], True)
        first = self.fields(self.ctl_ok("net", "preview", sid, "8080"))
        self.assertRegex(first["url"], r"^http://127\.0\.0\.1:\d+$")
        self.assertEqual((first["expires_at"], first["public"]), ("never", "yes (no token needed)"))
        self.assertEqual(self.fields(self.ctl_ok("net", "preview", sid, "8080")), first)
        rotated = self.fields(self.ctl_ok("net", "preview", sid, "8080", "--rotate"))
        self.assertEqual(rotated["url"], first["url"])
        self.assertNotEqual(rotated["token"], first["token"])
        self.assertIs(self.call("sandbox.update", {"sandbox": sid})["public"], True)
        self.ctl_ok("update", "--private", sid)
        self.assertIs(self.inspect(sid)["public"], False)
        self.assertEqual(self.fields(self.ctl_ok("net", "preview", sid, "8080"))["public"], "no")
        self.ctl_ok("update", "--public", sid)
        self.assertIs(self.inspect(sid)["public"], True)
        self.assertEqual(self.ctl_ok("net", "unpreview", sid, "8080"), "1 revoked\n")
        self.ctl_ok("net", "preview", sid, "9000")
        self.ctl_ok("net", "preview", sid, "9001")
        self.assertEqual(self.ctl_ok("net", "unpreview", sid), "2 revoked\n")
        code, out, err = self.ctl("net", "unpreview", sid, "8080")
        self.assertNotEqual(code, 0)
        self.assertIn("has no preview link", err)


class GatewayConfigTest(PreviewTestBase):
    def use_daemon(self, **config):
        self.daemon.stop()
        d = self.new_daemon(config=config)
        self.daemon = d
        self.rpc = d.client()
        return d

    def test_pool_exhausted_and_freed(self):
        self.use_daemon(preview_ports="%d-%d" % self.free_ports(2))
        sb = self.create()
        a, b = self.preview(sb, 1), self.preview(sb, 2)
        self.assertNotEqual(a["url"], b["url"])
        err = self.assertRpcError(LIMIT, "net.preview", {"sandbox": sb["id"], "port": 3})
        self.assertIn("preview_ports", err["message"])
        self.call("net.unpreview", {"sandbox": sb["id"], "port": 1})
        self.assertEqual(self.preview(sb, 3)["url"], a["url"])

    def free_ports(self, n):
        """n consecutive free ports of the default range."""
        for first in range(32767 - n, 30000, -n - 7):
            if all(not RevocationTest.port_open(p) for p in range(first, first + n)):
                return first, first + n - 1
        self.skipTest("no %d free ports in 30000-32767" % n)

    def test_a_taken_port_is_waited_for(self):
        lo, hi = self.free_ports(1)
        self.use_daemon(preview_ports="%d-%d" % (lo, hi))
        sb = self.create(public=True)
        self.serve(sb)
        url = self.preview(sb, 8080)["url"]
        wait_until(lambda: fetch(url + "/index.html")[0] == 200, 10)
        self.daemon.stop()
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", lo))
        squatter.listen(1)
        try:
            self.daemon.start()
            self.rpc = self.daemon.client()
            wait_until(lambda: "waits for its address" in self.daemon.log(), 10, message="the warning")
            self.assertEqual(self.preview(sb, 8080)["url"], url)  # the URL it was given
        finally:
            squatter.close()
        self.assertEqual(fetch_when_up(url + "/index.html"), (200, b"index\n"))

    def test_host_form_for_a_wildcard_domain(self):
        self.use_daemon(preview_domain="preview.example.test")
        sb = self.create(public=True)
        self.serve(sb)
        pv = self.preview(sb, 8080)
        self.assertRegex(pv["url"], r"^http://8080-%s\.preview\.example\.test:\d+$" % sb["id"])
        self.assertEqual(pv["url"], pv["host_url"])
        u = urllib.parse.urlsplit(pv["url"])
        st, _, body = wait_until(lambda: PublicAndPrivateTest.gateway_request(self, pv["gateway"], u.netloc,
                                                                                "/index.html"), 10)
        self.assertEqual((st, body), (200, b"index\n"))
        # the port form on request: the domain is the URL's host
        d = self.use_daemon(preview_domain="preview.example.test", preview_url="port")
        sb = self.create(public=True)
        self.assertRegex(self.preview(sb, 8080)["url"], r"^http://preview\.example\.test:\d+$")
        d = self.use_daemon(preview_url="host")
        sb = self.create()
        self.assertRegex(self.preview(sb, 8080)["url"], r"^http://8080-%s\.localhost:\d+$" % sb["id"])

    def test_a_link_of_the_host_form_gets_a_port_and_keeps_it(self):
        """Links handed out under preview_url = host (or by earlier
        versions) keep their URL; asked for under the port form they get a
        port of their own, kept across restarts, and the same token."""
        d = self.use_daemon(preview_url="host")
        sb = self.create()
        self.serve(sb)
        old = self.preview(sb, 8080)
        self.assertEqual(old["url"], old["host_url"])
        d.stop()
        d.config["preview_url"] = "port"
        with open(d.config_path, "w") as f:
            f.write("".join("%s = %s\n" % kv for kv in d.config.items()))
        d.start()
        self.rpc = d.client()
        new = self.preview(sb, 8080)
        self.assertRegex(new["url"], r"^http://127\.0\.0\.1:\d+$")
        self.assertEqual(new["token"], old["token"])
        for hard in (True, False):
            d.restart(hard=hard)
            self.rpc = d.client()
            got = self.preview(sb, 8080)  # (the shared listener's port is the kernel's choice here)
            self.assertEqual((got["url"], got["token"]), (new["url"], new["token"]))
        hdr = {"X-Sandbox-Token": old["token"]}
        self.assertEqual(fetch_when_up(new["url"] + "/index.html", hdr), (200, b"index\n"))
        host = urllib.parse.urlsplit(self.preview(sb, 8080)["host_url"])
        st, _, body = PublicAndPrivateTest.gateway_request(self, "127.0.0.1:%d" % host.port, host.netloc,
                                                          "/index.html", hdr)
        self.assertEqual((st, body), (200, b"index\n"))

    def test_bad_configuration_is_refused(self):
        self.daemon.stop()
        for cfg, text in (({"preview_url": "dns"}, "preview_url"), ({"preview_ports": "9-1"}, "preview_ports"),
                          ({"preview_ports": "", "preview_url": "port"}, "preview_ports"),
                          ({"preview_listen": "localhost:1"}, "preview_listen")):
            with self.subTest(cfg=cfg):
                d = self.new_daemon(start=False, config=cfg)
                with self.assertRaises(DaemonError):
                    d.start()
                self.assertIn(text, d.log())


if __name__ == "__main__":
    main()
