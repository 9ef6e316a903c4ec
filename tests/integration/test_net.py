#!/usr/bin/env python3
"""Networking: bridge and none modes, NAT to an "internet" host, egress
policy, published ports, the preview gateway, restart and clean-up.

Everything stays on this machine: the "internet" is a network namespace
made by the test, routed from the host through a veth pair, with
198.51.100.0/24 (TEST-NET-2) addresses; its "metadata service" answers on
169.254.169.254 inside it."""
import hashlib
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import sys
import threading
import time
import unittest
import urllib.request

from sbxtest import Daemon, DaemonError, SandboxdTestCase, main, wait_until

NOT_FOUND, EXISTS, BAD_STATE = 1, 2, 3
INVALID_PARAMS = -32602


# python3 -m http.server, without the reverse DNS lookup of its bind
# address that would stall in a namespace with no resolver.
HTTP_SERVER = """
import functools, http.server, socketserver, sys
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
handler.log_message = lambda *a: None
Server((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
"""


def run(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def have_tools():
    return shutil.which("ip") is not None


class Internet:
    """A netns with an HTTP server on INET:8080 and METADATA:80."""

    def __init__(self):
        tag = "%05x" % random.getrandbits(20)
        self.ns = "sbxinet-" + tag
        self.host_if = "sbi" + tag
        k = random.randrange(1, 63)
        self.host_ip = "198.51.100.%d" % (4 * k + 1)
        self.ip = "198.51.100.%d" % (4 * k + 2)
        self.metadata = "169.254.169.254"
        self.procs = []
        self.www = None

    def up(self):
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        run("ip", "addr", "add", self.host_ip + "/30", "dev", self.host_if)
        run("ip", "link", "set", self.host_if, "up")
        ns = ["ip", "netns", "exec", self.ns]
        run(*ns, "ip", "link", "set", "lo", "up")
        run(*ns, "ip", "addr", "add", self.ip + "/30", "dev", "eth0")
        run(*ns, "ip", "addr", "add", self.metadata + "/32", "dev", "lo")
        run(*ns, "ip", "link", "set", "eth0", "up")
        run(*ns, "ip", "route", "add", "default", "via", self.host_ip)
        run("ip", "route", "add", self.metadata + "/32", "via", self.ip)
        self.www = tempfile.mkdtemp(prefix="sbxinet-www-")
        with open(os.path.join(self.www, "hello.txt"), "w") as f:
            f.write("hello from the internet\n")
        for addr, port in ((self.ip, 8080), (self.ip, 53), (self.metadata, 80)):
            self.procs.append(subprocess.Popen(ns + [sys.executable, "-c", HTTP_SERVER, addr, str(port), self.www],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: self.host_get(self.ip, 8080) is not None, 10, message="internet http server")
        wait_until(lambda: self.host_get(self.metadata, 80) is not None, 10, message="metadata http server")

    def host_get(self, addr, port):
        try:
            with urllib.request.urlopen("http://%s:%d/hello.txt" % (addr, port), timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    def down(self):
        for p in self.procs:
            p.kill()
            p.wait()
        run("ip", "route", "del", self.metadata + "/32", check=False)
        run("ip", "link", "del", self.host_if, check=False)
        run("ip", "netns", "del", self.ns, check=False)
        if self.www:
            shutil.rmtree(self.www, ignore_errors=True)


class HostServer:
    """A TCP server on the host (0.0.0.0) that greets every client."""

    def __init__(self, addr="0.0.0.0"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            try:
                c.sendall(b"host-secret\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


def our_links():
    out = run("ip", "-o", "link").stdout
    return [l.split(":")[1].strip().split("@")[0] for l in out.splitlines()]


def nft_table(name):
    if not shutil.which("nft"):
        return None
    r = run("nft", "list", "table", "inet", name, check=False)
    return r.stdout if r.returncode == 0 else ""


class NetTestBase(SandboxdTestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not have_tools():
            raise unittest.SkipTest("needs root and iproute2")
        cls.inet = Internet()
        try:
            cls.inet.up()
        except Exception:
            cls.inet.down()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inet.down()

    def setUp(self):
        super().setUp()
        self.bridge = self.daemon.config["bridge"]
        self.table = "sandboxd-" + self.bridge

    def nc(self, sb, host, port, data="", timeout=3):
        """What a TCP client in the sandbox receives from host:port."""
        r = self.exec(sb, "printf '%s' | nc -w %d %s %d" % (data, timeout, host, port), timeout=timeout + 10)
        return r["stdout"]

    def http(self, sb, host, port, path="/hello.txt"):
        return self.nc(sb, host, port, "GET %s HTTP/1.0\\r\\n\\r\\n" % path)

    def reaches_internet(self, sb):
        return "hello from the internet" in self.http(sb, self.inet.ip, 8080)

    def gateway_request(self, gateway, host, path="/", headers=None, timeout=5):
        """Raw HTTP/1.0 request to the preview gateway: (status, headers, body)."""
        h, p = gateway.rsplit(":", 1)
        lines = ["GET %s HTTP/1.0" % path, "Host: %s" % host] + ["%s: %s" % kv for kv in (headers or {}).items()]
        with socket.create_connection((h, int(p)), timeout=timeout) as s:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        hl = head.decode(errors="replace").split("\r\n")
        status = int(hl[0].split()[1]) if hl and len(hl[0].split()) > 1 else 0
        hdrs = {}
        for l in hl[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs, body.decode(errors="replace")

    def start_httpd(self, sb, port=8000, text="inside hello"):
        self.sh(sb["id"], "mkdir -p /tmp/www && echo '%s' > /tmp/www/index.html && httpd -p %d -h /tmp/www" % (text, port))

    def assertNothingOfOursLeft(self, ids, subnet_prefix=None):
        links = our_links()
        for sid in ids:
            self.assertNotIn("sv" + sid, links)
        self.assertNotIn(self.bridge, links)
        table = nft_table(self.table)
        if table is not None:
            self.assertEqual(table, "", "nftables table left: %s" % table)
        routes = run("ip", "-4", "route").stdout
        self.assertNotIn(self.bridge, routes)
        addrs = run("ip", "-4", "-o", "addr").stdout
        self.assertNotIn(self.bridge, addrs)
        self.assertFalse(os.path.exists(os.path.join("/run/sandboxd-bridges", self.bridge)))


class BridgeTest(NetTestBase):
    def test_bridge_sandbox_has_address_route_and_resolver(self):
        self.assertIn("network.bridge", self.call("system.info")["features"])
        sb = self.create()
        net = sb["network"]
        self.assertEqual(net["mode"], "bridge")
        self.assertTrue(net["ip"].startswith(self.daemon.config["subnet"].rsplit(".", 1)[0]))
        self.assertEqual(net["gateway"], self.daemon.config["subnet"].rsplit(".", 1)[0] + ".1")
        out = self.sh(sb["id"], "ip -4 -o addr; ip route; cat /etc/resolv.conf")
        self.assertIn(net["ip"], out)
        self.assertIn("default via %s" % net["gateway"], out)
        self.assertIn("nameserver", out)
        self.assertNotIn("nameserver 127.", out)
        # MTU follows the host's uplink.
        uplink = run("ip", "-o", "route", "show", "default").stdout.split()
        if "dev" in uplink:
            dev = uplink[uplink.index("dev") + 1]
            with open("/sys/class/net/%s/mtu" % dev) as f:
                mtu = f.read().strip()
            self.assertIn("mtu %s" % mtu, self.sh(sb["id"], "ip link show eth0"))
        self.assertIn("sv" + sb["id"], our_links())

    def test_root_inside_cannot_change_the_network(self):
        # The network namespace belongs to the host's user namespace: even
        # CAP_NET_ADMIN inside a user namespace does not reach it.
        for params in ({}, {"cap_add": ["NET_ADMIN"]}):
            with self.subTest(**params):
                sb = self.create(**params)
                for cmd in ("ip addr add 10.1.2.3/32 dev eth0", "ip link set eth0 down",
                            "ip route del default", "ip link add x type dummy"):
                    r = self.exec(sb["id"], cmd)
                    self.assertNotEqual(r["exit_code"], 0, cmd)
                self.assertTrue(self.reaches_internet(sb["id"]))

    def test_none_has_only_loopback(self):
        sb = self.create(network={"mode": "none"})
        self.assertEqual(sb["network"]["mode"], "none")
        self.assertIsNone(sb["network"]["ip"])
        links = self.sh(sb["id"], "ip -o link").strip().splitlines()
        self.assertEqual(len(links), 1, links)
        self.assertIn("lo", links[0])
        self.assertNotIn("hello", self.http(sb["id"], self.inet.ip, 8080))
        self.assertRpcError(BAD_STATE, "net.publish", {"sandbox": sb["id"], "port": 80})

    def test_internet_through_nat(self):
        sb = self.create()
        self.assertTrue(self.reaches_internet(sb["id"]))

    def test_deny_out_blocks_and_changes_live(self):
        sb = self.create(network={"deny_out": [self.inet.ip + "/32"]})
        self.assertEqual(sb["network"]["deny_out"], [self.inet.ip + "/32"])
        self.assertFalse(self.reaches_internet(sb["id"]))
        up = self.call("sandbox.update", {"sandbox": sb["id"], "network": {"deny_out": []}})
        self.assertEqual(up["network"]["deny_out"], [])
        self.assertTrue(self.reaches_internet(sb["id"]))
        self.call("sandbox.update", {"sandbox": sb["id"], "network": {"deny_out": ["198.51.100.0/24"]}})
        self.assertFalse(self.reaches_internet(sb["id"]))
        # allow_out wins over a wider deny_out: an allow list.
        self.call("sandbox.update", {"sandbox": sb["id"],
                                     "network": {"deny_out": ["0.0.0.0/0"], "allow_out": [self.inet.ip]}})
        self.assertTrue(self.reaches_internet(sb["id"]))
        self.assertRpcError(INVALID_PARAMS, "sandbox.update",
                            {"sandbox": sb["id"], "network": {"deny_out": ["300.1.1.1/8"]}}, param="network")
        self.assertRpcError(INVALID_PARAMS, "sandbox.update",
                            {"sandbox": sb["id"], "network": {"mode": "none"}}, param="network")

    def test_forbidden_destinations(self):
        a = self.create()
        b = self.create()
        gw = a["network"]["gateway"]
        srv = HostServer()
        self.addCleanup(srv.close)
        try:
            # the server is there: the host itself reaches it
            with socket.create_connection(("127.0.0.1", srv.port), timeout=2) as s:
                self.assertIn(b"host-secret", s.recv(100))
            hits = srv.hits
            # the host's bridge address, its other addresses, its loopback
            host_addrs = [gw, self.inet.host_ip]
            src = run("ip", "-o", "route", "get", "192.0.2.123", check=False).stdout.split()
            if "src" in src:
                host_addrs.append(src[src.index("src") + 1])
            for addr in host_addrs + ["127.0.0.1"]:
                with self.subTest(addr=addr):
                    self.assertNotIn("host-secret", self.nc(a["id"], addr, srv.port, timeout=2))
            self.assertEqual(srv.hits, hits)
        finally:
            srv.close()
        # the cloud metadata address (reachable from the host)
        self.assertIsNotNone(self.inet.host_get(self.inet.metadata, 80))
        self.assertNotIn("hello", self.http(a["id"], self.inet.metadata, 80))
        # another sandbox (reachable from the host)
        self.start_httpd(b, 8000, "sandbox b")
        with urllib.request.urlopen("http://%s:8000/index.html" % b["network"]["ip"], timeout=3) as r:
            self.assertIn("sandbox b", r.read().decode())
        self.assertNotIn("sandbox b", self.http(a["id"], b["network"]["ip"], 8000, "/index.html"))
        # and the internet still works
        self.assertTrue(self.reaches_internet(a["id"]))

    def link_local(self, sb):
        """The sandbox's IPv6 link-local address on eth0, once usable (DAD
        done), or None."""
        out = ""
        for _ in range(50):
            out = self.sh(sb, "ip -6 addr show dev eth0 2>/dev/null || true")
            if "fe80::" in out and "tentative" not in out:
                return out.split("inet6 ", 1)[1].split("/", 1)[0]
            time.sleep(0.1)
        return None

    def test_ipv6_reaches_neither_the_host_nor_a_neighbour(self):
        # Sandboxes' links get IPv6 link-local addresses at both ends like
        # any interface, and so does the bridge; the policy must hold there
        # too.
        try:
            with open("/proc/sys/net/ipv6/conf/default/disable_ipv6") as f:
                if f.read().strip() != "0":
                    self.skipTest("IPv6 is disabled on this host")
        except FileNotFoundError:
            self.skipTest("this kernel has no IPv6")
        a = self.create()
        b = self.create()
        la, lb = self.link_local(a["id"]), self.link_local(b["id"])

        def host_link_local(dev):
            for _ in range(100):  # the host does duplicate address detection too
                found = [l.split("inet6 ", 1)[1].split("/", 1)[0]
                         for l in run("ip", "-o", "-6", "addr", "show", "dev", dev).stdout.splitlines()
                         if "inet6 fe80::" in l and "tentative" not in l]
                if found:
                    return found[0]
                time.sleep(0.1)
            return None

        # the host's end of a's own link, and the bridge
        targets = [(host_link_local("sv" + a["id"]), "sv" + a["id"]), (host_link_local(self.bridge), self.bridge)]
        self.assertTrue(la and lb and all(t for t, _ in targets),
                        "link-local addresses: a %r, b %r, host %r" % (la, lb, targets))
        srv = HostServer("::")
        self.addCleanup(srv.close)
        for addr, dev in targets:
            with self.subTest(target=dev):
                # the host reaches its own server over that address
                with socket.create_connection(("%s%%%s" % (addr, dev), srv.port), timeout=2) as s:
                    self.assertIn(b"host-secret", s.recv(100))
                hits = srv.hits
                self.assertNotIn("host-secret", self.nc(a["id"], "%s%%eth0" % addr, srv.port, timeout=2))
                self.assertEqual(srv.hits, hits)
        # b listens on all addresses; a cannot reach it over IPv6 either
        self.sh(b["id"], "(echo neighbour-secret | nc -l -p 7000 >/dev/null 2>&1 &)")
        time.sleep(0.3)
        self.assertNotIn("neighbour-secret", self.nc(a["id"], "%s%%eth0" % lb, 7000, timeout=2))
        # while the listener was there all along: b itself gets the greeting
        self.assertIn("neighbour-secret", self.nc(b["id"], "%s%%eth0" % lb, 7000, timeout=2))

    def test_publish_ports(self):
        sb = self.create()
        self.start_httpd(sb, 8000)
        res = self.call("net.publish", {"sandbox": sb["id"], "port": 8000})
        self.assertEqual(res["host_ip"], "127.0.0.1")
        hp = res["host_port"]
        with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % hp, timeout=3) as r:
            self.assertIn("inside hello", r.read().decode())
        ports = self.call("net.ports", {"sandbox": sb["id"]})["ports"]
        self.assertEqual(ports, [{"port": 8000, "host_port": hp, "host_ip": "127.0.0.1", "protocol": "tcp"}])
        self.assertEqual(self.inspect(sb["id"])["ports"], ports)
        self.assertRpcError(EXISTS, "net.publish", {"sandbox": sb["id"], "port": 8000})
        self.assertRpcError(INVALID_PARAMS, "net.publish", {"sandbox": sb["id"], "port": 0}, param="port")
        code, out, err = self.ctl("net", "ports", sb["id"])
        self.assertEqual(code, 0, err)
        self.assertIn("127.0.0.1:%d" % hp, out)
        self.call("net.unpublish", {"sandbox": sb["id"], "port": 8000})
        self.assertEqual(self.call("net.ports", {"sandbox": sb["id"]})["ports"], [])
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", hp), timeout=2).close()
        self.assertRpcError(NOT_FOUND, "net.unpublish", {"sandbox": sb["id"], "port": 8000})
        code, out, err = self.ctl("net", "publish", sb["id"], "8000")
        self.assertEqual(code, 0, err)
        self.assertRegex(out.strip(), r"^127\.0\.0\.1:\d+$")

    def test_preview_gateway(self):
        sb = self.create()
        self.start_httpd(sb, 8000)
        pv = self.call("net.preview", {"sandbox": sb["id"], "port": 8000, "expires_s": 600})
        host = "8000-%s.localhost" % sb["id"]
        # The URL names the link's own listener; the Host-routed form goes
        # through the shared one.
        self.assertRegex(pv["url"], r"^http://127\.0\.0\.1:\d+$")
        self.assertEqual(pv["gateway"], pv["url"][len("http://"):])
        self.assertRegex(pv["host_url"], r"^http://%s:\d+$" % host)
        shared = "127.0.0.1:" + pv["host_url"].rsplit(":", 1)[1]
        self.assertEqual(len(pv["token"]), 64)
        self.assertIsNotNone(pv["expires_at"])
        gw = pv["gateway"]
        # no token, a wrong one, a token of another port: 401
        self.assertEqual(self.gateway_request(gw, host, "/index.html")[0], 401)
        self.assertEqual(self.gateway_request(gw, host, "/index.html", {"X-Sandbox-Token": "0" * 64})[0], 401)
        other = self.call("net.preview", {"sandbox": sb["id"], "port": 8001})
        self.assertEqual(self.gateway_request(gw, host, "/index.html", {"X-Sandbox-Token": other["token"]})[0], 401)
        # the header
        st, _, body = self.gateway_request(gw, host, "/index.html", {"X-Sandbox-Token": pv["token"]})
        self.assertEqual(st, 200)
        self.assertIn("inside hello", body)
        # ?token= once: a cookie and a redirect to the clean URL
        st, hdrs, _ = self.gateway_request(gw, host, "/index.html?a=1&token=" + pv["token"])
        self.assertEqual(st, 302)
        self.assertEqual(hdrs["location"], "/index.html?a=1")
        cookie = hdrs["set-cookie"].split(";")[0]
        self.assertIn(pv["token"], cookie)
        st, _, body = self.gateway_request(gw, host, "/index.html", {"Cookie": cookie})
        self.assertEqual(st, 200)
        self.assertIn("inside hello", body)
        # the same through the shared listener
        st, _, body = self.gateway_request(shared, host, "/index.html", {"X-Sandbox-Token": pv["token"]})
        self.assertEqual(st, 200)
        self.assertIn("inside hello", body)
        # garbage and unknown hosts reach nothing
        self.assertEqual(self.gateway_request(shared, "example.com", "/")[0], 404)
        self.assertEqual(self.gateway_request(gw, "example.com", "/")[0], 421)
        h, p = gw.rsplit(":", 1)
        with socket.create_connection((h, int(p)), timeout=5) as s:
            s.sendall(b"\x00\x01garbage\r\n\r\n")
            self.assertIn(b"400", s.recv(100))
        # sandboxctl
        code, out, err = self.ctl("net", "preview", sb["id"], "8000")
        self.assertEqual(code, 0, err)
        self.assertIn(pv["url"], out)
        # a stopped sandbox: the link stays and says so
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        st, _, body = self.gateway_request(gw, host, "/index.html", {"X-Sandbox-Token": pv["token"]})
        self.assertEqual(st, 503)
        self.assertIn("is stopped", body)
        self.assertEqual(self.call("net.preview", {"sandbox": sb["id"], "port": 8000})["url"], pv["url"])
        # no network, no link
        none = self.create(network={"mode": "none"})
        self.assertRpcError(BAD_STATE, "net.preview", {"sandbox": none["id"], "port": 8000})

    def test_preview_expires(self):
        sb = self.create()
        self.start_httpd(sb, 8000)
        pv = self.call("net.preview", {"sandbox": sb["id"], "port": 8000, "expires_s": 1})
        host = "8000-%s.localhost" % sb["id"]
        time.sleep(1.5)
        self.assertEqual(self.gateway_request(pv["gateway"], host, "/", {"X-Sandbox-Token": pv["token"]})[0], 401)

    def test_preview_tokens_survive_restarts_and_stops(self):
        sb = self.create()
        self.start_httpd(sb, 8000)
        host = "8000-%s.localhost" % sb["id"]
        pv = self.call("net.preview", {"sandbox": sb["id"], "port": 8000, "expires_s": 600})
        short = self.call("net.preview", {"sandbox": sb["id"], "port": 8000, "expires_s": 1})
        path = os.path.join(self.daemon.state_dir, "sandboxes", sb["id"], "preview")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        for hard in (False, True):
            with self.subTest(hard=hard):
                self.daemon.restart(hard=hard)
                self.rpc = self.daemon.client()
                st, _, body = self.gateway_request(pv["gateway"], host, "/index.html", {"X-Sandbox-Token": pv["token"]})
                self.assertEqual(st, 200)
                self.assertIn("inside hello", body)
        time.sleep(1.2)
        self.assertEqual(self.gateway_request(pv["gateway"], host, "/", {"X-Sandbox-Token": short["token"]})[0], 401)
        # A stop keeps them, on disk too: a start and a restart find them.
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        self.assertTrue(os.path.exists(path))
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.daemon.restart(hard=True)
        self.rpc = self.daemon.client()
        self.start_httpd(sb, 8000)
        st = wait_until(lambda: (lambda r: r[0] != 502 and r)(self.gateway_request(
            pv["gateway"], host, "/index.html", {"X-Sandbox-Token": pv["token"]})), 10)[0]
        self.assertEqual(st, 200)

    def test_upgrade_passes_bytes_both_ways(self):
        sb = self.create()
        self.sh(sb["id"], "nc -ll -p 9000 -e /bin/cat </dev/null >/dev/null 2>&1 &")
        pv = self.call("net.preview", {"sandbox": sb["id"], "port": 9000})
        h, p = pv["gateway"].rsplit(":", 1)
        head = ("GET /ws HTTP/1.1\r\nHost: 9000-%s.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "X-Sandbox-Token: %s\r\n\r\n" % (sb["id"], pv["token"])).encode()

        # The gateway passes the head on without its own token.
        expected = head.replace(("X-Sandbox-Token: %s\r\n" % pv["token"]).encode(), b"")

        def connect():
            s = socket.create_connection((h, int(p)), timeout=5)
            s.sendall(head)
            got = b""
            while len(got) < len(expected):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            if got != expected:
                s.close()
                return None
            return s

        s = wait_until(connect, 10, message="echo server behind the gateway")
        with s:
            for i in range(5):
                msg = b"message %d\n" % i
                s.sendall(msg)
                self.assertEqual(s.recv(100), msg)
            big = os.urandom(2 << 20)
            received = bytearray()

            def reader():
                while len(received) < len(big):
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    received.extend(chunk)

            t = threading.Thread(target=reader)
            t.start()
            s.sendall(big)
            t.join(30)
            self.assertEqual(bytes(received), big)
        # A token in a cookie is taken out too; the app's cookies stay.
        with socket.create_connection((h, int(p)), timeout=5) as s2:
            s2.sendall(("GET / HTTP/1.1\r\nHost: 9000-%s.localhost\r\nCookie: a=1; sbx_preview_token=%s; b=2; "
                        "sbx_preview_token_%s_9000=%s\r\n\r\n" % (sb["id"], pv["token"], sb["id"], pv["token"])).encode())
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s2.recv(4096)
                if not chunk:
                    break
                got += chunk
            self.assertIn(b"Cookie: a=1; b=2\r\n", got)
            self.assertNotIn(pv["token"].encode(), got)

    def daemon_fds_and_threads(self):
        """The daemon's sockets and pipes, and its threads."""
        fds = 0
        for fd in os.listdir("/proc/%d/fd" % self.daemon.pid):
            try:
                fds += os.readlink("/proc/%d/fd/%s" % (self.daemon.pid, fd)).startswith(("socket:", "pipe:"))
            except OSError:
                pass
        with open("/proc/%d/status" % self.daemon.pid) as f:
            threads = int([l for l in f if l.startswith("Threads:")][0].split()[1])
        return fds, threads

    def gateway_connect(self, pv, port, sid):
        h, p = pv["gateway"].rsplit(":", 1)
        s = socket.create_connection((h, int(p)), timeout=10)
        s.sendall(("GET /big HTTP/1.0\r\nHost: %d-%s.localhost\r\nX-Sandbox-Token: %s\r\n\r\n"
                   % (port, sid, pv["token"])).encode())
        return s

    def test_gateway_large_transfers_arrive_whole(self):
        """64 MiB down from httpd, and 200 KiB and 16 MiB through an echo
        server with a half-close, compared by checksum; then a client that
        vanishes in the middle of a download, and a sandbox stopped under a
        live connection, leave no descriptor or thread behind in the daemon."""
        sb = self.create()
        sid = sb["id"]
        self.sh(sid, "mkdir -p /tmp/www && head -c 67108864 /dev/urandom > /tmp/www/big")
        want = self.exec(sid, "sha256sum /tmp/www/big")["stdout"].split()[0]
        self.sh(sid, "httpd -p 8000 -h /tmp/www")
        self.sh(sid, "nc -ll -p 9000 -e /bin/cat </dev/null >/dev/null 2>&1 &")
        pv = self.call("net.preview", {"sandbox": sid, "port": 8000})
        threads = self.daemon_fds_and_threads()[1]

        def download():
            with self.gateway_connect(pv, 8000, sid) as s:
                data = bytearray()
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    data += chunk
            return bytes(data) or None

        head, _, body = wait_until(download, 15, message="httpd behind the gateway").partition(b"\r\n\r\n")
        self.assertIn(b" 200 ", head.split(b"\r\n")[0] + b" ")
        self.assertEqual(len(body), 64 << 20)
        self.assertEqual(hashlib.sha256(body).hexdigest(), want)
        # What the daemon holds with no connection open (the first one made
        # what stays for all of them; each link has a listener).
        ev = self.call("net.preview", {"sandbox": sid, "port": 9000})
        wait_until(lambda: self.daemon_fds_and_threads()[1] == threads, 10, message="forwarding threads end")
        base = self.daemon_fds_and_threads()

        # Half-close: the client stops sending, the echo comes back whole,
        # then the end of the stream.
        h, p = ev["gateway"].rsplit(":", 1)
        marker = b"GET /echo HTTP/1.1\r\nHost: 9000-%s.localhost\r\nX-Sandbox-Token: %s\r\n\r\n" % (
            sid.encode(), ev["token"].encode())

        def echo_once(up):
            try:
                s = socket.create_connection((h, int(p)), timeout=10)
            except OSError:
                return None
            got = bytearray()

            def reader():
                while True:
                    try:
                        chunk = s.recv(1 << 20)
                    except OSError:
                        return
                    if not chunk:
                        return
                    got.extend(chunk)

            t = threading.Thread(target=reader)
            t.start()
            try:
                s.sendall(marker + up)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            t.join(60)
            s.close()
            return bytes(got) if len(got) else None

        # A short exchange and a bulk one (the daemon may move them differently).
        for size in (200 << 10, 16 << 20):
            up = os.urandom(size)
            expected = marker.replace(b"X-Sandbox-Token: %s\r\n" % ev["token"].encode(), b"") + up
            got = wait_until(lambda: echo_once(up), 15, message="echo server behind the gateway")
            self.assertEqual(len(got), len(expected))
            self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(expected).hexdigest())

        # A client that vanishes (reset) in the middle of a download.
        for _ in range(3):
            s = self.gateway_connect(pv, 8000, sid)
            s.recv(1 << 16)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        wait_until(lambda: self.daemon_fds_and_threads() == base, 10,
                   message="daemon back to %s (descriptors, threads)" % (base,))

        # A sandbox stopped under a connection that is not being read.
        s = self.gateway_connect(pv, 8000, sid)
        s.recv(1 << 16)
        self.assertGreater(self.daemon_fds_and_threads()[0], base[0])
        self.call("sandbox.stop", {"sandbox": sid})
        wait_until(lambda: self.daemon_fds_and_threads() == base, 10,
                   message="daemon back to %s (descriptors, threads) after the stop" % (base,))
        s.settimeout(10)
        with self.assertRaises(OSError):
            while s.recv(1 << 20):
                pass
            raise OSError("eof")
        s.close()
        self.call("system.ping")

    def test_nothing_left_after_delete_and_shutdown(self):
        a = self.create(network={"deny_out": ["198.51.100.0/24"]})
        b = self.create()
        self.call("net.publish", {"sandbox": b["id"], "port": 8000})
        table = nft_table(self.table)
        if table is not None:
            self.assertIn(a["network"]["ip"], table)
        self.call("sandbox.delete", {"sandbox": a["id"], "force": True})
        # The link goes with the sandbox's network namespace, which the
        # kernel tears down in the background.
        wait_until(lambda: "sv" + a["id"] not in our_links(), 10, message="a's link removed")
        table = nft_table(self.table)
        if table is not None:
            self.assertNotIn(a["network"]["ip"], table)
        self.assertIn("sv" + b["id"], our_links())
        self.daemon.stop()
        self.assertNothingOfOursLeft([a["id"], b["id"]])

    def test_restart_brings_network_back(self):
        sb = self.create(network={"deny_out": ["203.0.113.0/24"]})
        self.start_httpd(sb, 8000)
        hp = self.call("net.publish", {"sandbox": sb["id"], "port": 8000})["host_port"]
        for hard in (False, True):
            with self.subTest(hard=hard):
                self.daemon.restart(hard=hard)
                self.rpc = self.daemon.client()
                again = self.inspect(sb["id"])
                self.assertEqual(again["state"], "started")
                self.assertEqual(again["network"]["ip"], sb["network"]["ip"])
                self.assertEqual(again["network"]["deny_out"], ["203.0.113.0/24"])
                self.assertIn("sv" + sb["id"], our_links())
                self.assertTrue(self.reaches_internet(sb["id"]))
                with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % hp, timeout=3) as r:
                    self.assertIn("inside hello", r.read().decode())
                table = nft_table(self.table)
                if table is not None:
                    self.assertIn("203.0.113.0/24", table)

    def test_stop_start_keeps_address_and_network(self):
        sb = self.create()
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        wait_until(lambda: "sv" + sb["id"] not in our_links(), 10, message="the link removed")
        self.assertEqual(self.inspect(sb["id"])["network"]["ip"], sb["network"]["ip"])
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.assertIn(sb["network"]["ip"], self.sh(sb["id"], "ip -4 -o addr show eth0"))
        self.assertTrue(self.reaches_internet(sb["id"]))

    def test_addresses_are_not_reused_at_once(self):
        a = self.create()
        self.call("sandbox.delete", {"sandbox": a["id"], "force": True})
        b = self.create()
        self.assertNotEqual(a["network"]["ip"], b["network"]["ip"])
        self.daemon.restart(hard=False)
        self.rpc = self.daemon.client()
        c = self.create()
        self.assertNotIn(c["network"]["ip"], (a["network"]["ip"], b["network"]["ip"]))


class SandboxPortsTest(NetTestBase):
    """Preview links and published ports reach a port from inside the
    sandbox's network namespace: whatever address the service is bound
    to, loopback included; where nothing listens, the gateway says so."""

    def serve(self, sb, bind, text):
        d = "/tmp/www-%s" % bind.replace(":", "_").replace("[", "").replace("]", "")
        self.sh(sb["id"], "mkdir -p %s && echo '%s' > %s/index.html && httpd -p '%s' -h %s" % (d, text, d, bind, d))

    def preview_get(self, sb, port, path="/index.html", timeout=5, pv=None):
        pv = pv or self.call("net.preview", {"sandbox": sb["id"], "port": port})
        return self.gateway_request(pv["gateway"], "%d-%s.localhost" % (port, sb["id"]), path,
                                    {"X-Sandbox-Token": pv["token"]}, timeout=timeout)

    def test_every_binding_is_reached_through_links_and_ports(self):
        sb = self.create()
        binds = {8001: "127.0.0.1:8001", 8002: "8002", 8003: "[::1]:8003", 8004: "%s:8004" % sb["network"]["ip"]}
        for port, bind in binds.items():
            self.serve(sb, bind, "bound to " + bind)
        for port, bind in binds.items():
            with self.subTest(bind=bind):
                st, _, body = self.preview_get(sb, port)
                self.assertEqual(st, 200, body)
                self.assertIn("bound to " + bind, body)
                hp = self.call("net.publish", {"sandbox": sb["id"], "port": port})["host_port"]
                with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % hp, timeout=3) as r:
                    self.assertIn("bound to " + bind, r.read().decode())

    def test_nothing_listening_is_a_502_naming_sandbox_and_port(self):
        sb = self.create()
        st, hdrs, body = self.preview_get(sb, 8009)
        self.assertEqual(st, 502)
        self.assertEqual(body, "sandbox %s: nothing listens on port 8009\n" % sb["id"])
        self.assertEqual(hdrs["content-length"], str(len(body)))
        # A published raw TCP port can only close.
        hp = self.call("net.publish", {"sandbox": sb["id"], "port": 8009})["host_port"]
        with socket.create_connection(("127.0.0.1", hp), timeout=5) as s:
            self.assertEqual(s.recv(100), b"")
        # Once something listens, the same link and port work.
        self.serve(sb, "127.0.0.1:8009", "late")
        st, _, body = self.preview_get(sb, 8009)
        self.assertEqual(st, 200)
        self.assertIn("late", body)
        with urllib.request.urlopen("http://127.0.0.1:%d/index.html" % hp, timeout=3) as r:
            self.assertIn("late", r.read().decode())
        # A stopped sandbox: its published port closes at once.
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        with socket.create_connection(("127.0.0.1", hp), timeout=5) as s:
            self.assertEqual(s.recv(100), b"")

    def test_a_server_that_does_not_accept_is_waited_for(self):
        """A stopped server's accept queue fills (busybox httpd listens
        with a backlog of 9); further connections to it wait for room, up
        to 10 s, then get a 504."""
        sb = self.create()
        self.serve(sb, "127.0.0.1:8010", "busy")
        pid = self.sh(sb["id"], "pidof httpd").split()[0]
        pv = self.call("net.preview", {"sandbox": sb["id"], "port": 8010})
        results = []

        def request(i):
            try:
                results.append(self.preview_get(sb, 8010, timeout=30, pv=pv))
            except OSError as e:
                results.append((0, {}, repr(e)))

        for cont_after in (2, None):
            with self.subTest(cont_after=cont_after):
                del results[:]
                self.sh(sb["id"], "kill -STOP %s" % pid)
                threads = [threading.Thread(target=request, args=(i,)) for i in range(16)]
                for t in threads:
                    t.start()
                    time.sleep(0.05)
                if cont_after:
                    time.sleep(cont_after)
                    self.sh(sb["id"], "kill -CONT %s" % pid)
                    for t in threads:
                        t.join(30)
                    self.assertEqual(sorted(r[0] for r in results), [200] * 16, results)
                else:
                    wait_until(lambda: any(r[0] == 504 for r in results), 15, message="a 504")
                    self.sh(sb["id"], "kill -CONT %s" % pid)
                    for t in threads:
                        t.join(30)
                    codes = [r[0] for r in results]
                    self.assertEqual(len(codes), 16)
                    self.assertEqual(set(codes), {200, 504}, results)
                    self.assertGreaterEqual(codes.count(200), 10)
                    self.assertIn("sandbox %s: port 8010 did not answer within 10 s\n" % sb["id"],
                                  [r[2] for r in results])


class OwnershipTest(NetTestBase):
    """One daemon per bridge and per subnet: a second daemon configured
    with either refuses to start, names the daemon that holds it, and
    touches nothing of the first one's network."""

    LOCK_DIR = "/run/sandboxd-bridges"

    def assertRefused(self, daemon, *needles):
        with self.assertRaises(DaemonError):
            daemon.start()
        self.assertEqual(daemon.proc.returncode, 1)
        log = daemon.log()
        for n in needles:
            self.assertIn(n, log)

    def assertFirstIntact(self, sb, table):
        links = our_links()
        self.assertIn(self.bridge, links)
        self.assertIn("sv" + sb["id"], links)
        if table is not None:
            self.assertEqual(nft_table(self.table), table)
        self.assertTrue(self.reaches_internet(sb["id"]))
        with urllib.request.urlopen("http://%s:8000/index.html" % sb["network"]["ip"], timeout=3) as r:
            self.assertIn("first daemon", r.read().decode())

    def test_second_daemon_on_the_same_network_refuses_to_start(self):
        first = self.daemon
        sb = self.create()
        self.start_httpd(sb, 8000, "first daemon")
        table = nft_table(self.table)

        # Its own state and socket, the same bridge.
        second = self.new_daemon(start=False, config={"bridge": self.bridge, "subnet": first.config["subnet"]})
        self.assertRefused(second, "bridge %s is held by the sandboxd with pid %d" % (self.bridge, first.pid),
                           first.state_dir, first.socket)
        self.assertFirstIntact(sb, table)
        with open(os.path.join(self.LOCK_DIR, self.bridge)) as f:
            record = f.read()
        self.assertIn("pid=%d\n" % first.pid, record)
        self.assertIn("state_dir=%s\n" % first.state_dir, record)
        self.assertEqual(os.stat(self.LOCK_DIR).st_mode & 0o777, 0o700)
        # A bridge of its own, an overlapping subnet.
        wider = first.config["subnet"].rsplit(".", 2)[0] + ".0.0/16"
        third = self.new_daemon(start=False, config={"subnet": wider})
        self.assertRefused(third, "overlaps subnet %s of bridge %s, held by the sandboxd with pid %d"
                           % (first.config["subnet"], self.bridge, first.pid))
        self.assertNotIn(third.config["bridge"], our_links())
        self.assertFalse(os.path.exists(os.path.join(self.LOCK_DIR, third.config["bridge"])))
        self.assertFirstIntact(sb, table)

        # A crashed owner's bridge stays its own: its sandboxes still use it.
        first.kill9()
        self.assertRefused(second, "bridge %s was left by the sandboxd with state dir '%s'"
                           % (self.bridge, first.state_dir))
        self.assertIn(self.bridge, our_links())
        self.assertIn("sv" + sb["id"], our_links())
        first.start()
        self.rpc = first.client()
        self.assertFirstIntact(sb, table)

        # A clean stop gives the network up, record included.
        first.stop()
        self.assertFalse(os.path.exists(os.path.join(self.LOCK_DIR, self.bridge)))
        self.assertNotIn(self.bridge, our_links())
        second.start()
        with second.client() as c:
            other = c.call("sandbox.create", {})
            second.known_ids.add(other["id"])
            self.assertIn(self.bridge, our_links())
            r = c.call("process.exec", {"sandbox": other["id"], "command": "printf 'GET /hello.txt HTTP/1.0\\r\\n"
                                         "\\r\\n' | nc -w 3 %s 8080" % self.inet.ip})
            self.assertIn("hello from the internet", r["stdout"])
        # ... and the first daemon now is the one refused.
        self.assertRefused(first, "bridge %s is held by the sandboxd with pid %d" % (self.bridge, second.pid))
        second.stop()
        first.start()
        self.rpc = first.client()
        self.assertFirstIntact(sb, None)  # a new bridge, a new table


class ReadOnlyRunDaemon(Daemon):
    """A daemon in a mount namespace of its own where the directory of the
    network locks is a read-only file system."""

    def command(self):
        setup = ("mkdir -p /run/sandboxd-bridges && mount -t tmpfs -o ro,mode=0700 tmpfs /run/sandboxd-bridges "
                 "&& exec \"$@\"")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup, "sh"] + super().command()


class NoLockTest(SandboxdTestCase):
    """Where the lock cannot be had (a read-only /run), the daemon starts
    without bridge networking and touches no network state."""

    start_daemon = False

    def test_without_a_lock_there_is_no_bridge_networking(self):
        d = ReadOnlyRunDaemon()
        self.daemons.append(d)
        self.addCleanup(d.cleanup)
        d.start()
        self.assertIn("bridge networking is unavailable: network lock", d.log())
        with d.client() as c:
            self.assertNotIn("network.bridge", c.call("system.info")["features"])
            sb = c.call("sandbox.create", {})
            d.known_ids.add(sb["id"])
            self.assertEqual(sb["network"]["mode"], "none")
        self.assertNotIn(d.config["bridge"], our_links())
        self.assertEqual(nft_table("sandboxd-" + d.config["bridge"]), "" if shutil.which("nft") else None)

    def setUp(self):
        if not shutil.which("unshare") or not have_tools():
            self.skipTest("needs unshare(1) and iproute2")
        super().setUp()


class ForbiddenRangeTest(NetTestBase):
    """forbidden_out and dns from the configuration; allow_out opens a range."""

    def setUp(self):
        self.daemon_options = {"config": {"forbidden_out": "198.51.100.0/24", "dns": self.inet.ip}}
        super().setUp()

    def test_forbidden_range_dns_exception_and_allow_out(self):
        sb = self.create()
        self.assertEqual(self.sh(sb["id"], "grep nameserver /etc/resolv.conf"), "nameserver %s\n" % self.inet.ip)
        self.assertFalse(self.reaches_internet(sb["id"]))
        # port 53 of the resolver it was given stays reachable
        self.assertIn("hello from the internet", self.http(sb["id"], self.inet.ip, 53))
        self.call("sandbox.update", {"sandbox": sb["id"], "network": {"allow_out": [self.inet.ip + "/32"]}})
        self.assertTrue(self.reaches_internet(sb["id"]))
        # allow_out does not open other sandboxes
        other = self.create()
        self.call("sandbox.update", {"sandbox": sb["id"], "network": {"allow_out": ["0.0.0.0/0"]}})
        self.start_httpd(other, 8000, "neighbour")
        self.assertNotIn("neighbour", self.http(sb["id"], other["network"]["ip"], 8000, "/index.html"))


if __name__ == "__main__":
    main()
