#!/usr/bin/env python3
"""Sharing the host: sandboxd beside podman, Docker and firewalld.

Each test class runs in a network namespace of its own, made by the test
and entered by this process (setns), so that everything started from it
(sandboxd, dockerd, podman, firewalld, nft, iptables) sees a host network
of its own: its own links, routes, nftables rules, FORWARD policy and
ip_forward. Nothing host-wide of the machine running the suite changes
(other suites running before or after, or other work on the machine, keep
their firewall), and a class's mess goes with its namespace. A namespace
is a complete network stack, so this is the host network as those
programs know it; what they share with the machine (dockerd's data root,
podman's storage, a D-Bus for firewalld) is private to the test.

The namespace is entered with setns(2) alone, not with `ip netns exec`,
which also mounts a sysfs of the namespace over /sys and so hides the
cgroup hierarchies: dockerd then refuses to start ("Devices cgroup isn't
mounted").

The "outside" is one more namespace, routed as the default route through
a veth pair, with a web server on 198.51.100.x:8080 (as in test_net.py).
"""
import ctypes
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import xml.etree.ElementTree as ET

from sbxtest import (SRCDIR, Daemon, DaemonError, RpcClient, SandboxdTestCase, image_tarball, main,
                     sandboxctl_path, wait_until)

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

HTTP_SERVER = """
import functools, http.server, socketserver, sys
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
handler.log_message = lambda *a: None
Server((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
"""


def http_get_script(ip, timeout):
    """A shell line fetching http://IP:8080/hello.txt with busybox nc (the
    static busybox's wget crashes in glibc's static NSS)."""
    return "printf 'GET /hello.txt HTTP/1.0\\r\\n\\r\\n' | nc -w %d %s 8080" % (timeout, ip)


def run(*cmd, check=True, timeout=120, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout, env=env)


def setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


def ruleset_without_sandboxd():
    """`nft list ruleset` without counters and without sandboxd's own tables."""
    text = run("nft", "-s", "list", "ruleset").stdout
    out, skip = [], False
    for line in text.splitlines():
        if re.match(r"^table inet sandboxd-", line):
            skip = True
        if not skip:
            out.append(line)
        if skip and line == "}":
            skip = False
    return "\n".join(out)


class HostNamespace:
    """A network namespace this process enters; left and deleted at the end."""

    def __init__(self):
        self.name = "sbxhost-%05x" % random.getrandbits(20)
        self.orig = None

    def enter(self):
        run("ip", "netns", "add", self.name)
        self.orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd)
        finally:
            os.close(fd)
        run("ip", "link", "set", "lo", "up")

    def leave(self):
        if self.orig is not None:
            setns(self.orig)
            os.close(self.orig)
            self.orig = None
        run("ip", "netns", "del", self.name, check=False)


class Outside:
    """The internet: a namespace routed from the host namespace, with a web
    server on IP:8080, and the host's default route through it."""

    def __init__(self):
        tag = "%05x" % random.getrandbits(20)
        self.ns = "sbxout-" + tag
        self.link = "sbo" + tag
        k = random.randrange(1, 63)
        self.host_ip = "198.51.100.%d" % (4 * k + 1)
        self.ip = "198.51.100.%d" % (4 * k + 2)
        self.proc = None
        self.www = None

    def up(self):
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        run("ip", "addr", "add", self.host_ip + "/30", "dev", self.link)
        run("ip", "link", "set", self.link, "up")
        ns = ["ip", "netns", "exec", self.ns]
        run(*ns, "ip", "link", "set", "lo", "up")
        run(*ns, "ip", "addr", "add", self.ip + "/30", "dev", "eth0")
        run(*ns, "ip", "link", "set", "eth0", "up")
        run(*ns, "ip", "route", "add", "default", "via", self.host_ip)
        run("ip", "route", "add", "default", "via", self.ip)
        self.www = tempfile.mkdtemp(prefix="sbxout-www-")
        with open(os.path.join(self.www, "hello.txt"), "w") as f:
            f.write("hello from outside\n")
        self.proc = subprocess.Popen(ns + [sys.executable, "-c", HTTP_SERVER, self.ip, "8080", self.www],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.get() is not None, 10, message="outside web server")

    def get(self):
        try:
            with urllib.request.urlopen("http://%s:8080/hello.txt" % self.ip, timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    def down(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        run("ip", "link", "del", self.link, check=False)
        run("ip", "netns", "del", self.ns, check=False)
        if self.www:
            shutil.rmtree(self.www, ignore_errors=True)


def runc_runtime():
    """The OCI runtime podman can use here. crun (podman's default) refuses a
    hybrid cgroup host whose v2 hierarchy has a controller (this one has
    hugetlb there): runc does not."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return None
    return "runc" if shutil.which("runc") else None


class Podman:
    """podman with a storage of its own (its network config is the host's
    default network "podman", 10.88.0.0/16) and a container that keeps the
    network up."""

    def __init__(self):
        self.store = tempfile.mkdtemp(prefix="sbxtest-podman-")
        self.cmd = ["podman", "--root", os.path.join(self.store, "root"), "--runroot",
                    os.path.join(self.store, "run"), "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        rt = runc_runtime()
        if rt:
            self.cmd += ["--runtime", rt]
        self.name = "sbxtest-%05x" % random.getrandbits(20)
        self.image = "localhost/sbxtest-minimal"

    def __call__(self, *args, check=True, timeout=120):
        return run(*(self.cmd + list(args)), check=check, timeout=timeout)

    # Without CAP_SYS_RESOURCE (as under some CI sandboxes) the runtime
    # cannot raise the containers' limits to podman's defaults.
    LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]

    def start(self):
        img = image_tarball()
        if not img:
            raise unittest.SkipTest("images/minimal.tar.gz is not built")
        p = self("import", img, self.image, check=False)
        if p.returncode:
            raise unittest.SkipTest("podman import failed: %s" % p.stderr.strip()[-300:])
        p = self("run", "-d", "--name", self.name, *self.LIMITS, self.image, "sleep", "3600", check=False)
        if p.returncode:
            raise unittest.SkipTest("podman cannot run a container here: %s" % p.stderr.strip()[-300:])

    def reaches(self, ip, timeout=5):
        """What a podman container gets from http://IP:8080/hello.txt."""
        p = self("exec", self.name, "sh", "-c", http_get_script(ip, timeout), check=False, timeout=timeout + 60)
        return p.stdout

    def bridge(self):
        """The link holding podman's 10.88.0.1 (podman0, cni-podman0)."""
        for line in run("ip", "-4", "-o", "addr", "show").stdout.splitlines():
            if " 10.88.0.1/" in line:
                return line.split()[1]
        return None

    def stop(self):
        self("rm", "-f", "-t", "0", self.name, check=False)
        self("system", "reset", "--force", check=False, timeout=300)
        shutil.rmtree(self.store, ignore_errors=True)


class Dockerd:
    """dockerd with its data, exec root and socket in a directory of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbxtest-docker-")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.proc = None
        self.log = os.path.join(self.dir, "dockerd.log")
        # dockerd writes its trust key there whatever its data root.
        self.key_existed = os.path.exists("/etc/docker/key.json")

    def start(self):
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "--data-root", os.path.join(self.dir, "root"), "--exec-root",
                 os.path.join(self.dir, "exec"), "--pidfile", os.path.join(self.dir, "pid"), "-H",
                 "unix://" + self.sock], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise unittest.SkipTest("dockerd cannot run here: %s" % self.tail())
            if self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise unittest.SkipTest("dockerd did not answer within 60 s: %s" % self.tail())

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                lines = [l for l in f.read().splitlines() if "module=grpc" not in l]
            return "\n".join(lines[-8:])
        except OSError:
            return "?"

    def docker(self, *args, check=True, timeout=120):
        return run("docker", "-H", "unix://" + self.sock, *args, check=check, timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        subprocess.run(["umount", "-R", os.path.join(self.dir, "root")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if not self.key_existed:
            try:
                os.unlink("/etc/docker/key.json")
            except OSError:
                pass


class Firewalld:
    """firewalld on a D-Bus of its own, with a configuration directory of its
    own that holds sandboxd's zone file."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbxtest-firewalld-")
        self.bus = "unix:path=" + os.path.join(self.dir, "bus")
        self.dbus = self.fw = None
        self.log = os.path.join(self.dir, "firewalld.log")

    def env(self):
        e = dict(os.environ)
        e["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus
        return e

    def cmd(self, *args, check=True):
        return run("firewall-cmd", *args, check=check, env=self.env(), timeout=60)

    def start(self):
        for tool in ("firewalld", "firewall-cmd", "dbus-daemon"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is not installed (Debian packages firewalld and dbus)" % tool)
        zones = os.path.join(self.dir, "etc", "zones")
        os.makedirs(zones)
        shutil.copy(os.path.join(SRCDIR, "contrib", "firewalld", "sandboxd.xml"), zones)
        self.dbus = subprocess.Popen(["dbus-daemon", "--config-file=/usr/share/dbus-1/system.conf",
                                      "--address=" + self.bus, "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: os.path.exists(os.path.join(self.dir, "bus")), 10, message="D-Bus socket")
        with open(self.log, "wb") as log:
            self.fw = subprocess.Popen(["firewalld", "--nofork", "--nopid", "--system-config",
                                        os.path.join(self.dir, "etc"), "--log-target", "console"],
                                       stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.fw.poll() is not None:
                raise unittest.SkipTest("firewalld cannot run here: %s" % self.tail())
            if self.cmd("--state", check=False).returncode == 0:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus
                return
            time.sleep(0.3)
        raise unittest.SkipTest("firewalld did not come up within 90 s: %s" % self.tail())

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-6:])
        except OSError:
            return "?"

    def stop(self):
        os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        for p in (self.fw, self.dbus):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class HostNetCase(SandboxdTestCase):
    """A host network of the class's own (see the module's docstring)."""

    start_daemon = False
    host = outside = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root")
        for tool in ("ip", "nft", "iptables"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is not installed" % tool)
        cls.host = HostNamespace()
        cls.outside = Outside()
        try:
            cls.host.enter()
            cls.outside.up()
            cls.set_up_host()
        except BaseException:
            try:
                cls.tear_down_host()
            finally:
                cls.outside.down()
                cls.host.leave()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.tear_down_host()
        finally:
            if cls.outside:
                cls.outside.down()
            cls.host.leave()

    @classmethod
    def set_up_host(cls):
        pass

    @classmethod
    def tear_down_host(cls):
        pass

    def use(self, d):
        """Make d the daemon the helpers (exec, sh, call) talk to."""
        self.daemon = d
        self.rpc = d.client()
        return d

    def start_sandboxd(self, **config):
        return self.use(self.new_daemon(config=config))

    def url(self):
        return "http://%s:8080/hello.txt" % self.outside.ip

    def egress(self, sb, timeout=5):
        """Whether the sandbox fetches the outside's page."""
        r = self.exec(sb["id"], http_get_script(self.outside.ip, timeout), timeout=timeout + 20)
        return "hello from outside" in r["stdout"]

    def published_port_works(self, sb):
        self.sh(sb["id"], "mkdir -p /tmp/www && echo published > /tmp/www/index.html && httpd -p 8000 -h /tmp/www")
        port = self.call("net.publish", {"sandbox": sb["id"], "port": 8000})["host_port"]

        def fetch():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=3) as r:
                    return r.read().decode()
            except OSError:
                return ""
        return "published" in wait_until(fetch, 10, message="published port")

    def preview_works(self, sb):
        link = self.call("net.preview", {"sandbox": sb["id"], "port": 8000})
        req = urllib.request.Request(link["url"] + "/", headers={"X-Sandbox-Token": link["token"]})
        with urllib.request.urlopen(req, timeout=5) as r:
            return "published" in r.read().decode()

    def doctor(self, *args, daemon=None):
        """sandboxctl doctor ARGS...: (exit code, parsed --json output, text output)."""
        sock = (daemon or self.daemon).socket if (daemon or getattr(self, "daemon", None)) else "/nonexistent"
        base = [sandboxctl_path(), "--socket", sock, "doctor"]
        p = subprocess.run(base + list(args) + ["--json"], capture_output=True, text=True, timeout=120)
        t = subprocess.run(base + list(args), capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, t.returncode, (p.stderr, t.stderr))
        self.assertEqual(len(t.stdout.splitlines()), len(json.loads(p.stdout)["checks"]), t.stdout)
        return p.returncode, json.loads(p.stdout), t.stdout

    def local_config(self, **settings):
        """A sandboxd.conf for sandboxctl doctor --local: a private state dir."""
        d = tempfile.mkdtemp(prefix="sbxtest-%d-doctor-" % os.getpid())
        self.addCleanup(shutil.rmtree, d, True)
        settings.setdefault("state_dir", os.path.join(d, "state"))
        settings.setdefault("preview_listen", "127.0.0.1:0")
        path = os.path.join(d, "sandboxd.conf")
        with open(path, "w") as f:
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))
        return path

    def checks(self, report, name):
        return [c for c in report["checks"] if c["name"] == name]


def iptables_nft():
    p = run("iptables", "-V", check=False)
    return p.returncode == 0 and "nf_tables" in p.stdout


# --------------------------------------------------------------------------


class ZoneFileTest(unittest.TestCase):
    """The firewalld zone shipped in contrib/, whether or not firewalld runs."""

    def test_zone_file_shape(self):
        path = os.path.join(SRCDIR, "contrib", "firewalld", "sandboxd.xml")
        root = ET.parse(path).getroot()
        self.assertEqual(root.tag, "zone")
        # sandboxd's own table filters the links' traffic: the zone lets it be.
        self.assertEqual(root.get("target"), "ACCEPT")
        self.assertEqual(root.findtext("short"), "sandboxd")
        self.assertTrue(root.findtext("description"))
        # Bound at run time (sv+), never in the file: a stopped sandboxd
        # leaves no link in the zone.
        self.assertEqual(root.findall("interface"), [])
        self.assertEqual(root.findall("source"), [])
        for child in root:
            self.assertIn(child.tag, ("short", "description"))


class CleanHostTest(HostNetCase):
    """A host with nothing else on its network."""

    def test_doctor_on_a_clean_host(self):
        conf = self.local_config()
        rc, rep, text = self.doctor("--local", "--config", conf)
        self.assertEqual(rc, 0, text)
        self.assertTrue(rep["ok"])
        self.assertFalse(rep["daemon"])
        names = [c["name"] for c in rep["checks"]]
        for want in ("cgroup", "userns", "overlayfs", "nftables", "ip_forward", "subnet", "forward", "preview",
                     "space"):
            self.assertIn(want, names, text)
        for c in rep["checks"]:
            self.assertIn(c["status"], ("ok", "warn"), c)
            self.assertEqual(c["fix"] is None, c["status"] == "ok", c)
            # (the text and the JSON come from two runs: numbers such as the
            # free space may differ)
            msg = re.sub(r"\d+", r"\\d+", re.escape(c["message"]))
            self.assertRegex(text, r"(?m)^%-4s  %-10s %s$" % (c["status"], c["name"], msg))
        self.assertIn("sandboxd would take 10.200.0.0/16", self.checks(rep, "subnet")[0]["message"])
        self.assertIn("no other table filters forwarded traffic", self.checks(rep, "forward")[0]["message"])

        # With the daemon up, it answers: the same checks and its socket.
        d = self.start_sandboxd(subnet=None)
        rc, rep, text = self.doctor()
        self.assertEqual(rc, 0, text)
        self.assertTrue(rep["daemon"])
        names = [c["name"] for c in rep["checks"]]
        for want in ("daemon", "cgroup", "userns", "overlayfs", "nftables", "ip_forward", "subnet", "forward",
                     "preview", "socket", "space"):
            self.assertIn(want, names, text)
        subnet = re.search(r"subnet (\S+), the first free subnet of subnet_pool", d.log()).group(1)
        self.assertIn("%s on bridge %s" % (subnet, d.config["bridge"]), self.checks(rep, "subnet")[0]["message"])
        # The same through the protocol.
        res = self.call("system.doctor")
        self.assertTrue(res["ok"])
        self.assertEqual([c["name"] for c in res["checks"]], names[1:])

    def test_subnet_kept_across_restarts_and_moved_when_taken(self):
        d = self.start_sandboxd(subnet=None, subnet_pool="10.201.0.0/16:24")
        sb = self.create(start=True)
        ip = sb["network"]["ip"]
        self.assertTrue(ip.startswith("10.201.0."), sb["network"])
        with open(os.path.join(d.state_dir, "net-subnet")) as f:
            self.assertEqual(f.read().strip(), "10.201.0.0/24")
        # A restart keeps the subnet and the address.
        d.stop()
        d.start()
        self.use(d)
        self.assertEqual(self.inspect(sb["id"])["network"]["ip"], ip)
        self.assertTrue(self.egress(sb))
        # Another network takes the kept subnet while sandboxd is down: at
        # its start it moves to a free one, and the sandbox gets an address
        # there (and keeps its egress).
        d.stop()
        run("ip", "link", "add", "sbxother0", "type", "bridge")
        self.addCleanup(run, "ip", "link", "del", "sbxother0", check=False)
        run("ip", "addr", "add", "10.201.0.1/24", "dev", "sbxother0")
        run("ip", "link", "set", "sbxother0", "up")
        d.start()
        self.use(d)
        self.assertIn("subnet 10.201.0.0/24, kept from an earlier start, now overlaps address 10.201.0.1/24 of "
                      "sbxother0", d.log())
        net = self.inspect(sb["id"])["network"]
        self.assertTrue(net["ip"].startswith("10.201.1."), net)
        self.assertIsNone(net["conflict"])
        self.assertTrue(self.egress(sb))

    def test_network_taken_later_is_reported(self):
        d = self.start_sandboxd(subnet=None, subnet_pool="10.202.0.0/16:24")
        sb = self.create(start=True)
        self.assertIsNone(sb["network"]["conflict"])
        # A network started after sandboxd takes part of its subnet.
        run("ip", "link", "add", "sbxlater0", "type", "bridge")
        self.addCleanup(run, "ip", "link", "del", "sbxlater0", check=False)
        run("ip", "link", "set", "sbxlater0", "up")
        run("ip", "route", "add", "10.202.0.0/25", "dev", "sbxlater0")
        wait_until(lambda: "now overlaps route 10.202.0.0/25 dev sbxlater0" in d.log(), 10,
                   message="the log names the network that took the subnet")
        self.assertIn("route 10.202.0.0/25 dev sbxlater0", self.inspect(sb["id"])["network"]["conflict"])
        rc, rep, text = self.doctor()
        self.assertEqual(rc, 1, text)
        self.assertIn("fail  subnet", text)
        self.assertIn("sbxlater0", " ".join(c["message"] for c in self.checks(rep, "subnet")))
        run("ip", "link", "del", "sbxlater0")
        wait_until(lambda: self.inspect(sb["id"])["network"]["conflict"] is None, 10,
                   message="the conflict goes with the route")
        self.assertEqual(self.doctor()[0], 0)


class ChurnTest(HostNetCase):
    """A host whose links and routes change all the time (containers come
    and go): the kernel marks a dump of its links or addresses that a change
    cuts, and that is no reason for sandboxd not to start."""

    @classmethod
    def set_up_host(cls):
        # Enough links and routes that a dump takes several reads.
        batch = "".join("link add sbxchurn%d type bridge\nlink set sbxchurn%d up\n" % (i, i) for i in range(60))
        batch += "".join("route add 198.18.%d.%d/32 dev sbxchurn0\n" % (i // 250, i % 250) for i in range(3000))
        subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True, capture_output=True)

    def test_daemon_starts_while_links_and_routes_change(self):
        add = "".join("link add sbxflap%d type bridge\naddr add 198.19.%d.1/24 dev sbxflap%d\n" % (i, i, i)
                      for i in range(40))
        dir = tempfile.mkdtemp(prefix="sbx-churn-")
        self.addCleanup(shutil.rmtree, dir, True)
        with open(os.path.join(dir, "add"), "w") as f:
            f.write(add)
        with open(os.path.join(dir, "del"), "w") as f:
            f.write("".join("link del sbxflap%d\n" % i for i in range(40)))
        churn = subprocess.Popen(["sh", "-c", "while :; do ip -batch add; ip -batch del; done"], cwd=dir,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def stop_churn():
            os.killpg(churn.pid, signal.SIGKILL)
            churn.wait()
        self.addCleanup(stop_churn)
        # sandboxctl doctor reads the links, addresses and routes as the
        # daemon does at its start, and says what it read. Without a second
        # reading of a cut dump, about one run in twenty failed here.
        conf = self.local_config()
        cut = []
        for i in range(150):
            p = subprocess.run([sandboxctl_path(), "doctor", "--local", "--config", conf, "--json"],
                               capture_output=True, text=True, timeout=60)
            subnet = self.checks(json.loads(p.stdout), "subnet")[0]
            if "sandboxd would take" not in subnet["message"]:
                cut.append(subnet["message"])
        self.assertEqual(cut, [])
        for i in range(3):
            with self.subTest(start=i):
                d = self.start_sandboxd(subnet=None, subnet_pool="10.203.0.0/16:24")
                self.assertIn("the first free subnet of subnet_pool", d.log())
                d.stop()


class AdminTableTest(HostNetCase):
    """An administrator's own inet filter table with a forward policy drop:
    no documented place for others' rules, so sandboxd says what drops and
    how to fix it, and touches nothing."""

    @classmethod
    def set_up_host(cls):
        run("nft", "add", "table", "inet", "filter")
        run("nft", "add", "chain", "inet", "filter", "forward",
            "{ type filter hook forward priority 0; policy drop; }")
        run("nft", "add", "rule", "inet", "filter", "forward", "iifname", "lo", "accept")

    def test_drop_is_named_with_its_fix(self):
        before = ruleset_without_sandboxd()
        d = self.start_sandboxd()
        m = re.search(r"firewall: table inet filter chain forward drops sandbox traffic: the policy drop of chain "
                      r"forward; fix: (nft '[^']*'); (nft '[^']*') \(and the same in the file that loads table "
                      r"filter", d.log())
        self.assertIsNotNone(m, d.log())
        sb = self.create(start=True)
        self.assertFalse(self.egress(sb, timeout=2))
        rc, rep, text = self.doctor()
        self.assertEqual(rc, 1, text)
        self.assertRegex(text, r"(?m)^fail  forward    table inet filter chain forward drops sandbox traffic")
        self.assertEqual(ruleset_without_sandboxd(), before)
        # The fix, run as the log writes it.
        for cmd in m.groups():
            run("sh", "-c", cmd)
        self.assertTrue(self.egress(sb))
        wait_until(lambda: "the forward chains of other tables let sandbox traffic through" in d.log(), 10,
                   message="sandboxd sees the fix")
        self.assertEqual(self.doctor()[0], 0)
        after_fix = ruleset_without_sandboxd()
        d.stop()
        self.assertEqual(ruleset_without_sandboxd(), after_fix)


class PodmanTest(HostNetCase):
    """podman's default network up (10.88.0.0/16, sandboxd's old default)."""

    @classmethod
    def set_up_host(cls):
        if not shutil.which("podman"):
            raise unittest.SkipTest("podman is not installed (Debian package podman)")
        cls.podman = Podman()
        try:
            cls.podman.start()
        except BaseException:
            cls.podman.stop()
            raise

    @classmethod
    def tear_down_host(cls):
        if getattr(cls, "podman", None):
            cls.podman.stop()

    def test_sandboxd_picks_another_subnet(self):
        link = self.podman.bridge()
        self.assertIsNotNone(link, run("ip", "-4", "-o", "addr").stdout)
        # A pool that starts with podman's network: sandboxd skips it.
        d = self.start_sandboxd(subnet=None, subnet_pool="10.88.0.0/15:16")
        self.assertIn("subnet 10.89.0.0/16, the first free subnet of subnet_pool", d.log())
        sb = self.create(start=True)
        self.assertTrue(sb["network"]["ip"].startswith("10.89."), sb["network"])
        self.assertTrue(self.egress(sb))
        self.assertTrue(self.published_port_works(sb))
        self.assertTrue(self.preview_works(sb))
        # podman's containers keep theirs.
        self.assertIn("hello from outside", self.podman.reaches(self.outside.ip))
        # The default pool is nowhere near podman's.
        d2 = self.use(self.new_daemon(config={"subnet": None}))
        self.assertRegex(d2.log(), r"subnet (10\.2[0-2][0-9]|172\.(2[89]|3[01]))\.0\.0/16, the first free")
        self.assertTrue(self.egress(self.create(start=True)))

    def test_explicit_overlapping_subnet_refuses_to_start(self):
        link = self.podman.bridge()
        d = self.new_daemon(start=False, config={"subnet": "10.88.0.0/16"})
        with self.assertRaises(DaemonError):
            d.start()
        self.assertIn("subnet 10.88.0.0/16 (sandboxd.conf) overlaps address 10.88.0.1/16 of %s, which another "
                      "network of this host uses" % link, d.log())
        # A part of it is refused too.
        d = self.new_daemon(start=False, config={"subnet": "10.88.200.0/24"})
        with self.assertRaises(DaemonError):
            d.start()
        self.assertIn("overlaps address 10.88.0.1/16 of %s" % link, d.log())

    def test_doctor_beside_podman(self):
        link = self.podman.bridge()
        rc, rep, text = self.doctor("--local", "--config", self.local_config(subnet="10.88.0.0/16"))
        self.assertEqual(rc, 1, text)
        self.assertFalse(rep["ok"])
        sub = self.checks(rep, "subnet")[0]
        self.assertEqual(sub["status"], "fail")
        self.assertIn("overlaps address 10.88.0.1/16 of %s" % link, sub["message"])
        self.assertIn("subnet_pool", sub["fix"])
        self.assertRegex(text, r"(?m)^fail  subnet .*%s.*; fix: " % link)
        # Left to pick: fine.
        rc, rep, text = self.doctor("--local", "--config",
                                    self.local_config(subnet_pool="10.88.0.0/15:16"))
        self.assertEqual(rc, 0, text)
        self.assertIn("sandboxd would take 10.89.0.0/16", self.checks(rep, "subnet")[0]["message"])


class DockerDropTest(HostNetCase):
    """dockerd running, forwarding turned on by dockerd (so FORWARD policy
    DROP), and podman's network beside it."""

    @classmethod
    def set_up_host(cls):
        for tool in ("dockerd", "docker"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is not installed (Debian package docker.io)" % tool)
        if not iptables_nft():
            raise unittest.SkipTest("iptables is not iptables-nft: dockerd's rules would be out of nftables' sight")
        cls.podman = cls.dockerd = None
        if shutil.which("podman"):
            cls.podman = Podman()
            try:
                cls.podman.start()
            except unittest.SkipTest:
                cls.podman.stop()
                cls.podman = None
        # dockerd sets the FORWARD policy to DROP when it is the one that
        # turns forwarding on.
        run("sysctl", "-qw", "net.ipv4.ip_forward=0")
        cls.dockerd = Dockerd()
        cls.dockerd.start()
        if "policy DROP" not in run("iptables", "-L", "FORWARD").stdout:
            raise AssertionError("dockerd did not set the FORWARD policy to DROP:\n%s" % run("iptables", "-S").stdout)
        if cls.podman:
            # podman's netavark lets its own containers through the DROP.
            if "hello from outside" not in cls.podman.reaches(cls.outside.ip):
                raise AssertionError("a podman container does not reach the outside under dockerd's DROP")

    @classmethod
    def tear_down_host(cls):
        if getattr(cls, "dockerd", None):
            cls.dockerd.stop()
        if getattr(cls, "podman", None):
            cls.podman.stop()

    def test_without_rules_sandbox_traffic_is_dropped_and_said(self):
        d = self.start_sandboxd(iptables_forward="false")
        self.assertIn("firewall: table ip filter chain FORWARD drops sandbox traffic: the policy drop of chain "
                      "FORWARD; fix: iptables -I DOCKER-USER -i sv+ -s %s -j ACCEPT" % d.config["subnet"], d.log())
        sb = self.create(start=True)
        self.assertFalse(self.egress(sb, timeout=2))
        rc, rep, text = self.doctor()
        self.assertEqual(rc, 1, text)
        self.assertRegex(text, r"(?m)^fail  forward    table ip filter chain FORWARD drops sandbox traffic: the "
                               r"policy drop of chain FORWARD; sandboxes have no egress; fix: iptables -I DOCKER-USER")
        # Without the daemon: what sandboxd would leave as it is.
        rc, rep, text = self.doctor("--local", "--config", self.local_config(iptables_forward="false"))
        self.assertEqual(rc, 0, text)
        self.assertRegex(text, r"(?m)^warn  forward    table ip filter chain FORWARD drops sandbox traffic")

    def test_egress_and_ports_under_drop_and_neighbours_untouched(self):
        before = ruleset_without_sandboxd()
        rc, rep, text = self.doctor("--local", "--config", self.local_config())
        self.assertEqual(rc, 0, text)
        self.assertIn("sandboxd adds accept rules for", self.checks(rep, "forward")[0]["message"])
        self.assertIn("to chain DOCKER-USER", self.checks(rep, "forward")[0]["message"])

        d = self.start_sandboxd()
        tag = "sandboxd " + d.config["bridge"]
        self.assertIn("accept rules for %s added to its chain DOCKER-USER, with the comment \"%s\""
                      % (d.config["subnet"], tag), d.log())
        sb = self.create(start=True)
        self.assertTrue(self.egress(sb))
        self.assertTrue(self.published_port_works(sb))
        self.assertTrue(self.preview_works(sb))
        # iptables, and so dockerd, still read and change the table.
        rules = run("iptables", "-S", "DOCKER-USER").stdout
        self.assertIn("-A DOCKER-USER -s %s -i sv+ -m comment --comment \"%s\" -j ACCEPT" % (d.config["subnet"], tag),
                      rules)
        self.dockerd.docker("network", "create", "sbxtest-net")
        self.dockerd.docker("network", "rm", "sbxtest-net")
        rc, rep, text = self.doctor()
        self.assertEqual(rc, 0, text)
        self.assertIn("table ip filter chain FORWARD lets sandbox traffic through", text)
        if self.podman:
            self.assertIn("hello from outside", self.podman.reaches(self.outside.ip))

        # Rules flushed under it (a firewall script, an admin) come back.
        run("iptables", "-F", "DOCKER-USER")
        wait_until(lambda: tag in run("iptables", "-S", "DOCKER-USER").stdout, 10,
                   message="sandboxd adds its rules again")
        self.assertTrue(self.egress(sb))
        run("iptables", "-A", "DOCKER-USER", "-j", "RETURN")  # dockerd's own, flushed above

        d.stop()
        self.assertIn("accept rules with the comment \"%s\" removed from table ip filter" % tag, d.log())
        self.assertEqual(ruleset_without_sandboxd(), before)
        if self.podman:
            self.assertIn("hello from outside", self.podman.reaches(self.outside.ip))

    def test_docker_containers_keep_egress(self):
        img = image_tarball()
        p = self.dockerd.docker("import", img, "sbxtest-minimal", check=False)
        if p.returncode:
            self.skipTest("docker import: %s" % p.stderr.strip()[-300:])
        probe = ["run", "--rm", "--ulimit", "nofile=1024:1024", "sbxtest-minimal", "sh", "-c",
                 http_get_script(self.outside.ip, 5)]
        p = self.dockerd.docker(*probe, check=False)
        if p.returncode and "hello" not in p.stdout and ("OCI" in p.stderr or "runtime" in p.stderr):
            self.skipTest("docker cannot run a container here: %s" % p.stderr.strip()[-300:])
        self.assertIn("hello from outside", p.stdout, p.stderr)
        self.start_sandboxd()
        self.assertTrue(self.egress(self.create(start=True)))
        p = self.dockerd.docker(*probe, check=False)
        self.assertIn("hello from outside", p.stdout, p.stderr)


class FirewalldTest(HostNetCase):
    """firewalld running with its default zone (public), which rejects
    forwarded traffic from links it has no zone for."""

    @classmethod
    def set_up_host(cls):
        cls.fw = Firewalld()
        try:
            cls.fw.start()
        except BaseException:
            cls.fw.stop()
            raise

    @classmethod
    def tear_down_host(cls):
        if getattr(cls, "fw", None):
            cls.fw.stop()

    def test_sandboxes_join_the_zone_while_sandboxd_runs(self):
        d = self.start_sandboxd(firewalld_zone="")
        self.assertRegex(d.log(), r"firewall: table inet firewalld chain filter_FORWARD drops sandbox traffic: "
                                  r"a reject rule .* in chain filter_FWD_public")
        sb = self.create(start=True)
        self.assertFalse(self.egress(sb, timeout=2))
        d.stop()

        d = self.start_sandboxd()
        self.assertIn("links sv+ put in its zone sandboxd while sandboxd runs", d.log())
        self.assertIn("sv+", self.fw.cmd("--zone=sandboxd", "--list-interfaces").stdout)
        sb = self.create(start=True)
        self.assertTrue(self.egress(sb))
        # A reload forgets runtime bindings: sandboxd binds again.
        self.fw.cmd("--reload")
        wait_until(lambda: "sv+" in self.fw.cmd("--zone=sandboxd", "--list-interfaces").stdout, 20,
                   message="sandboxd binds its links again after a reload")
        self.assertTrue(self.egress(sb))
        self.assertEqual(self.doctor()[0], 0)
        d.stop()
        self.assertIn("links sv+ taken out of firewalld's zone sandboxd", d.log())
        self.assertNotIn("sv+", self.fw.cmd("--zone=sandboxd", "--list-interfaces").stdout)


if __name__ == "__main__":
    main()
