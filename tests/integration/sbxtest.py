"""Harness for the sandboxd end-to-end tests.

It starts real daemons from the build tree in private temporary directories,
talks to them over the raw protocol socket and through sandboxctl, and
cleans up after itself even when a test or the daemon misbehaves.

The build tree is taken from $SBX_BUILDDIR, or from --builddir DIR on the
command line of a test module run directly, and defaults to the top of the
source tree.  Python 3 standard library only.
"""

import atexit
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))

RPC_TIMEOUT = 30.0  # seconds a single reply may take unless a test says otherwise
START_TIMEOUT = 20.0
ID_RE = re.compile(r"^[0-9a-f]{12}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _builddir_from_argv(argv):
    for i, a in enumerate(argv):
        if a == "--builddir" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--builddir="):
            return a.split("=", 1)[1]
    return None


def builddir():
    d = os.environ.get("SBX_BUILDDIR") or _builddir_from_argv(sys.argv) or SRCDIR
    return os.path.abspath(d)


def binary(name):
    return os.path.join(builddir(), "src", name)


def sandboxd_path():
    return binary("sandboxd")


def sandboxctl_path():
    return binary("sandboxctl")


def init_path():
    return binary("sandbox-init")


def image_tarball():
    for base in (builddir(), SRCDIR):
        p = os.path.join(base, "images", "minimal.tar.gz")
        if os.path.exists(p):
            return p
    return None


def main():
    """unittest.main() for a test module run directly; accepts --builddir DIR."""
    argv = list(sys.argv)
    bd = _builddir_from_argv(argv)
    if bd:
        os.environ["SBX_BUILDDIR"] = os.path.abspath(bd)
        i = argv.index("--builddir") if "--builddir" in argv else None
        if i is not None:
            del argv[i:i + 2]
        else:
            argv = [a for a in argv if not a.startswith("--builddir=")]
    unittest.main(argv=argv)


# --------------------------------------------------------------------------
# Processes and cgroups on the host


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return False
    state = data[data.rindex(")") + 2:].split()[0]
    return state not in ("Z", "X")


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return None


def children_of(ppid):
    """{pid: argv} of the processes whose parent is ppid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                data = f.read()
        except OSError:
            continue
        if int(data[data.rindex(")") + 2:].split()[1]) == ppid:
            found[int(entry)] = proc_cmdline(int(entry)) or []
    return found


def sandbox_init_processes():
    """{pid: sandbox id} of every live sandbox-init process on the host."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        argv = proc_cmdline(pid)
        if argv and argv[0] == b"sandbox-init" and pid_alive(pid):
            found[pid] = argv[1].decode() if len(argv) > 1 else ""
    return found


def host_cgroup_mount():
    """Where the unified (v2) hierarchy is mounted, as sandboxd looks for it."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "/sys/fs/cgroup"
    return "/sys/fs/cgroup/unified"


def cgroup_procs_recursive(path):
    pids = []
    for root, dirs, files in os.walk(path):
        try:
            with open(os.path.join(root, "cgroup.procs")) as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return pids


def v1_cgroup_bases(state_dir):
    """On a hybrid host, the groups a daemon with this state dir makes in
    each v1 controller hierarchy (beside its v2 base, whatever
    cgroup_parent says): under this process's own group there, named as
    sandboxd names them (FNV-1a of the state dir)."""
    h = 2166136261
    for b in os.fsencode(state_dir):
        h = ((h ^ b) * 16777619) & 0xffffffff
    name = "sandboxd-%08x" % h
    out = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for ctrl in ("cpu", "memory", "pids"):
            if ctrl in parts[1].split(","):
                path = os.path.join("/sys/fs/cgroup", ctrl, parts[2].lstrip("/"), name)
                if os.path.isdir(path):
                    out.append(path)
    return out


def cgroup_kill_and_remove(path):
    """Kill everything below a cgroup directory and remove the tree."""
    if not os.path.isdir(path):
        return
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except OSError:
        for pid in cgroup_procs_recursive(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    deadline = time.monotonic() + 5
    while os.path.isdir(path) and time.monotonic() < deadline:
        for root, dirs, files in os.walk(path, topdown=False):
            try:
                os.rmdir(root)
            except OSError:
                pass
        if os.path.isdir(path):
            time.sleep(0.02)


def wait_until(predicate, timeout=10.0, interval=0.02, message=None):
    """Poll predicate until it returns a true value; return that value.
    Raises AssertionError with message (or a default) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(message or "condition not met within %.1f s" % timeout)
        time.sleep(interval)


# --------------------------------------------------------------------------
# Protocol client


class RpcError(Exception):
    def __init__(self, error, reply_id=None):
        self.error = error
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")
        self.id = reply_id
        super().__init__("JSON-RPC error %s: %s (data %r)" % (self.code, self.message, self.data))


class ConnectionClosed(Exception):
    pass


class RpcClient:
    """A raw JSON-lines connection to the daemon. Many requests may be in
    flight; replies are matched by id and notifications are set aside."""

    def __init__(self, path, timeout=RPC_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.eof = False
        self.next_id = 1
        self.replies = {}  # id (json-encoded) -> reply
        self.null_replies = []  # replies with "id": null, in order
        self.notifications = []
        self.order = []  # ids of replies in the order they arrived
        self.fds = []  # descriptors received (SCM_RIGHTS), oldest first

    # sending
    def send(self, obj):
        """Send one message (a dict or any JSON value) as a line."""
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def send_raw(self, data, fds=None):
        if fds:
            n = socket.send_fds(self.sock, [data], list(fds))
            data = data[n:]
        if data:
            self.sock.sendall(data)

    def request(self, method, params=None, id=None, fds=None):
        """Send a request and return its id without waiting; fds go with
        its bytes as SCM_RIGHTS."""
        if id is None:
            id = self.next_id
            self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send_raw(json.dumps(msg).encode() + b"\n", fds)
        return id

    def take_fd(self):
        """The oldest received descriptor (the caller owns it)."""
        return self.fds.pop(0)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    # receiving
    def _fill(self, deadline):
        if self.eof:
            raise ConnectionClosed("connection closed by the daemon")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply from sandboxd within the time limit")
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise TimeoutError("no reply from sandboxd within the time limit")
        try:
            chunk, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 16)
            self.fds.extend(fds)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by the daemon")
        self.buf += chunk

    def recv_line(self, timeout=None):
        """The next raw line (without the newline)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv_msg(self, timeout=None):
        """The next message of any kind, decoded."""
        return json.loads(self.recv_line(timeout))

    def _pump(self, deadline):
        """Read one message and file it."""
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        if isinstance(msg, dict) and "id" not in msg and "method" in msg:
            self.notifications.append(msg)
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        self.order.append(rid)
        if rid is None:
            self.null_replies.append(msg)
        else:
            self.replies[json.dumps(rid)] = msg

    def wait(self, id, timeout=None):
        """The full reply (envelope) for request id."""
        key = json.dumps(id)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while key not in self.replies:
            self._pump(deadline)
        return self.replies.pop(key)

    def wait_null(self, timeout=None):
        """The next reply whose id is null (errors for unparseable lines)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.null_replies:
            self._pump(deadline)
        return self.null_replies.pop(0)

    def result(self, id, timeout=None):
        reply = self.wait(id, timeout)
        if "error" in reply:
            raise RpcError(reply["error"], id)
        return reply["result"]

    def call(self, method, params=None, timeout=None):
        """Send a request and return its result; raises RpcError."""
        return self.result(self.request(method, params), timeout)

    def call_reply(self, method, params=None, timeout=None):
        """Send a request and return the whole reply envelope."""
        return self.wait(self.request(method, params), timeout)

    def expect_eof(self, timeout=5.0):
        """True when the daemon closes the connection (after any pending lines)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# Daemon


_counter = [0]
_live_daemons = []


@atexit.register
def _cleanup_live_daemons():
    """Daemons of tests that never reached their clean-up (an interrupted run)."""
    for d in list(_live_daemons):
        try:
            d.cleanup()
        except Exception:
            pass


class DaemonError(Exception):
    pass


BRIDGE_LOCK_DIR = "/run/sandboxd-bridges"


def _bridge_record(bridge):
    """The owner record in a bridge's lock file: {"pid", "state_dir", ...}."""
    try:
        with open(os.path.join(BRIDGE_LOCK_DIR, bridge)) as f:
            return dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
    except OSError:
        return {}


def _host_prefixes():
    """The IPv4 prefixes routed on this host or held by its addresses, as
    (network, prefix length) pairs of integers."""
    import ipaddress
    found = []
    for cmd in (["ip", "-4", "-o", "route", "show", "table", "main"], ["ip", "-4", "-o", "addr", "show"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in out.splitlines():
            words = line.split()
            cand = words[3] if cmd[3] == "addr" and len(words) > 3 else (words[0] if words else "")
            try:
                n = ipaddress.ip_network(cand, strict=False)
            except ValueError:
                continue
            if n.prefixlen >= 8:
                found.append(n)
    return found


def free_test_subnet():
    """A random 10.100-199.x.0/24 that overlaps nothing on the host: sandboxd
    refuses a configured subnet another network uses."""
    import ipaddress
    taken = _host_prefixes()
    for _ in range(200):
        cand = ipaddress.ip_network("10.%d.%d.0/24" % (100 + random.randrange(100), random.randrange(256)))
        if not any(cand.overlaps(t) for t in taken):
            return str(cand)
    return str(cand)


class Daemon:
    """One sandboxd in a private temporary directory.

    Each instance gets its own state dir, run dir, socket, configuration
    file and cgroup parent, so tests never see each other's sandboxes and
    leaks can be measured exactly."""

    def __init__(self, max_message=None, config=None, extra_args=(), own_cgroup=True, log_level="debug"):
        _counter[0] += 1
        self.dir = tempfile.mkdtemp(prefix="sbxtest-%d-" % os.getpid())
        os.chmod(self.dir, 0o755)
        self.state_dir = os.path.join(self.dir, "state")
        self.run_dir = os.path.join(self.dir, "run")
        self.socket = os.path.join(self.dir, "sock")
        self.log_path = os.path.join(self.dir, "sandboxd.log")
        self.config_path = os.path.join(self.dir, "sandboxd.conf")
        self.max_message = max_message
        self.extra_args = list(extra_args)
        self.log_level = log_level
        self.cgroup_parent = None
        if own_cgroup:
            self.cgroup_parent = "sbxtest-%d-%d-%06x" % (os.getpid(), _counter[0], random.getrandbits(24))
        cfg = dict(config or {})
        if self.cgroup_parent:
            cfg.setdefault("cgroup_parent", self.cgroup_parent)
        # A bridge, subnet and gateway port of its own: daemons of concurrent
        # tests (and a system daemon on sbx0) never share network state.
        self.net_tag = "%06x" % random.getrandbits(24)
        cfg.setdefault("bridge", "sbt" + self.net_tag)
        cfg.setdefault("subnet", free_test_subnet())
        cfg.setdefault("preview_listen", "127.0.0.1:0")
        # Links' own listeners from a window of the default range.
        first = 30000 + 256 * random.randrange(10)
        cfg.setdefault("preview_ports", "%d-%d" % (first, first + 255))
        # None leaves a setting out (to the daemon's default).
        cfg = {k: v for k, v in cfg.items() if v is not None}
        self.config = cfg
        with open(self.config_path, "w") as f:
            for k, v in cfg.items():
                f.write("%s = %s\n" % (k, v))
        self.proc = None
        self.clients = []
        self.known_ids = set()
        self.log_snapshot = ""
        self.starts = 0
        self.start_failed = False
        self._info = None
        self.cgroup_base_seen = None
        _live_daemons.append(self)

    # lifecycle
    def command(self):
        cmd = [sandboxd_path(), "-f", "--config", self.config_path, "--state-dir", self.state_dir,
               "--run-dir", self.run_dir, "--socket", self.socket, "--log-level", self.log_level,
               "--init-path", init_path()]
        img = image_tarball()
        if img:
            cmd += ["--default-image-path", img]
        if self.max_message is not None:
            cmd += ["--max-message", str(self.max_message)]
        return cmd + self.extra_args

    def start(self, timeout=START_TIMEOUT):
        if self.running():
            raise DaemonError("daemon already running")
        self.starts += 1
        self.start_failed = True
        with open(self.log_path, "ab") as log:
            log.write(b"===== start %d =====\n" % self.starts)
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise DaemonError("sandboxd exited with status %s during start-up:\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            try:
                with RpcClient(self.socket, timeout=2) as c:
                    c.call("system.ping")
                break
            except (OSError, ConnectionClosed, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise DaemonError("sandboxd did not serve on %s within %.0f s:\n%s"
                                  % (self.socket, timeout, self.log_tail()))
            time.sleep(0.01)
        self._info = None
        self.start_failed = False
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, timeout=15.0):
        """SIGTERM, then SIGKILL if it does not exit. Returns the exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_clients()
        return self.proc.returncode

    def kill9(self):
        """SIGKILL the daemon; its sandboxes are left running."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_clients()

    def restart(self, hard=True):
        if hard:
            self.kill9()
        else:
            self.stop()
        return self.start()

    # talking to it
    def client(self, timeout=RPC_TIMEOUT):
        c = RpcClient(self.socket, timeout=timeout)
        self.clients.append(c)
        return c

    def _close_clients(self):
        for c in self.clients:
            c.close()
        self.clients = []

    def ctl(self, *args, input=None, timeout=60, env=None, use_env_socket=False, cwd=None):
        """Run sandboxctl against this daemon; returns (rc, stdout, stderr) as text
        (bytes when input is bytes)."""
        e = dict(os.environ)
        e.pop("SANDBOXD_SOCKET", None)
        if env:
            e.update(env)
        argv = [sandboxctl_path()]
        if use_env_socket:
            e["SANDBOXD_SOCKET"] = self.socket
        else:
            argv += ["--socket", self.socket]
        argv += [str(a) for a in args]
        binary_io = isinstance(input, bytes)
        p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=e,
                           text=not binary_io, cwd=cwd)
        return p.returncode, p.stdout, p.stderr

    def info(self):
        if self._info is None:
            with RpcClient(self.socket) as c:
                self._info = c.call("system.info")
            self.cgroup_base_seen = self._info["cgroup_base"]
        return self._info

    # host-side views
    def cgroup_mount(self):
        return "/sys/fs/cgroup" if self.info()["cgroup"] == "v2" else "/sys/fs/cgroup/unified"

    def cgroup_base_path(self):
        return os.path.join(self.cgroup_mount(), self.info()["cgroup_base"])

    def sandbox_cgroup(self, sandbox_id):
        return os.path.join(self.cgroup_base_path(), "sbx-" + sandbox_id)

    def fd_list(self):
        fds = {}
        base = "/proc/%d/fd" % self.pid
        for fd in os.listdir(base):
            try:
                fds[int(fd)] = os.readlink(os.path.join(base, fd))
            except OSError:
                pass
        return fds

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def settled_fd_count(self, client):
        """The fd count once the daemon is idle: a round trip on an open
        connection first, so that work finishing after a reply was sent
        (closing pipes, pidfds) is done."""
        client.call("system.ping")
        n = self.fd_count()
        for _ in range(50):
            time.sleep(0.01)
            m = self.fd_count()
            if m == n:
                return n
            n = m
        return n

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return self.log_snapshot

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    # cleanup
    def sandbox_ids_on_disk(self):
        try:
            return [d for d in os.listdir(os.path.join(self.state_dir, "sandboxes")) if ID_RE.match(d)]
        except OSError:
            return []

    def delete_all(self, timeout=30):
        with RpcClient(self.socket, timeout=timeout) as c:
            for sb in c.call("sandbox.list")["sandboxes"]:
                self.known_ids.add(sb["id"])
                try:
                    c.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
                except RpcError:
                    pass

    def cleanup(self):
        """Delete every sandbox, stop the daemon, and make sure nothing of
        this daemon is left on the host, whatever state it is in."""
        if self in _live_daemons:
            _live_daemons.remove(self)
        self.known_ids.update(self.sandbox_ids_on_disk())
        try:
            if (not self.running() and self.proc is not None and not self.start_failed
                    and os.path.isdir(self.state_dir)):
                self.start()
            if self.running():
                self.delete_all()
        except Exception:
            pass
        self.stop()
        self.log_snapshot = self.log()
        # Whatever a broken daemon left behind.
        for pid, sid in sandbox_init_processes().items():
            if sid in self.known_ids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        mount = host_cgroup_mount()
        # A daemon that could not remove its own (killed, or stopped with
        # sandboxes left) leaves its v1 groups: each memory group costs the
        # kernel memory for as long as it exists.
        for path in v1_cgroup_bases(self.state_dir):
            cgroup_kill_and_remove(path)
        if self.cgroup_parent:
            cgroup_kill_and_remove(os.path.join(mount, self.cgroup_parent))
        elif self.cgroup_base_seen:
            for sid in self.known_ids:
                cgroup_kill_and_remove(os.path.join(mount, self.cgroup_base_seen, "sbx-" + sid))
        # Network state of a daemon that could not shut down cleanly, unless
        # the bridge's lock record names another daemon (one refused to
        # start on a bridge that was not its own).
        bridge = self.config.get("bridge")
        record = _bridge_record(bridge) if bridge else {}
        if record.get("state_dir", self.state_dir) != self.state_dir:
            bridge = None
        if bridge:
            cmds = [["ip", "link", "del", "sv" + sid] for sid in self.known_ids]
            cmds += [["ip", "link", "del", bridge], ["nft", "delete", "table", "inet", "sandboxd-" + bridge]]
            for cmd in cmds:
                try:
                    subprocess.run(cmd, capture_output=True)
                except OSError:
                    pass
            try:
                os.unlink(os.path.join(BRIDGE_LOCK_DIR, bridge))
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Test case base


class SandboxdTestCase(unittest.TestCase):
    """Each test gets a fresh daemon (self.daemon) and a connected raw
    client (self.rpc). Subclasses set daemon_options to change how the
    daemon is started."""

    daemon_options = {}
    start_daemon = True

    def setUp(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: sandboxd creates namespaces, mounts and cgroups")
        for p in (sandboxd_path(), sandboxctl_path(), init_path()):
            if not os.access(p, os.X_OK):
                self.fail("%s is not built; run make first (build dir %s)" % (p, builddir()))
        self.daemons = []
        if self.start_daemon:
            self.daemon = self.new_daemon(**self.daemon_options)
            self.rpc = self.daemon.client()

    def new_daemon(self, start=True, **options):
        d = Daemon(**options)
        self.daemons.append(d)
        self.addCleanup(d.cleanup)
        if start:
            d.start()
        return d

    def failure_context(self):
        """Log tails of this test's daemons, for failure reports."""
        out = []
        for i, d in enumerate(getattr(self, "daemons", [])):
            text = d.log_snapshot or d.log()
            lines = text.splitlines()[-60:]
            out.append("--- sandboxd log %d (%s), last %d lines ---" % (i, d.dir, len(lines)))
            out += lines
        return "\n".join(out)

    # protocol helpers
    def call(self, method, params=None, client=None, timeout=None):
        return (client or self.rpc).call(method, params, timeout=timeout)

    def assertRpcError(self, code, method, params=None, param=None, client=None, timeout=None):
        """Call method and check it fails with code (and data.param when given).
        Returns the error object."""
        c = client or self.rpc
        rid = c.request(method, params)
        reply = c.wait(rid, timeout)
        self.assertEqual(reply.get("jsonrpc"), "2.0", reply)
        self.assertEqual(reply.get("id"), rid, reply)
        self.assertNotIn("result", reply, "%s %r succeeded: %r" % (method, params, reply))
        err = reply.get("error")
        self.assertIsInstance(err, dict, reply)
        self.assertEqual(err.get("code"), code, "%s %r: %r" % (method, params, err))
        self.assertIsInstance(err.get("message"), str, err)
        self.assertTrue(err["message"], err)
        if param is not None:
            self.assertIsInstance(err.get("data"), dict, err)
            self.assertEqual(err["data"].get("param"), param, "%s %r: %r" % (method, params, err))
        return err

    def create(self, name=None, client=None, **params):
        if name is not None:
            params["name"] = name
        sb = self.call("sandbox.create", params, client=client)
        self.daemon.known_ids.add(sb["id"])
        return sb

    def inspect(self, sandbox, client=None):
        return self.call("sandbox.inspect", {"sandbox": sandbox}, client=client)

    def exec(self, sandbox, cmd, client=None, timeout=None, **params):
        """process.exec with cmd (a list) or command (a string)."""
        params["sandbox"] = sandbox
        if isinstance(cmd, str):
            params["command"] = cmd
        else:
            params["cmd"] = list(cmd)
        return self.call("process.exec", params, client=client, timeout=timeout)

    def sh(self, sandbox, script, **params):
        """Run a shell script; assert it succeeded; return its stdout."""
        r = self.exec(sandbox, script, **params)
        self.assertEqual((r["exit_code"], r["signal"]), (0, None),
                         "script %r failed: %r" % (script, r))
        return r["stdout"]

    def ctl(self, *args, **kw):
        return self.daemon.ctl(*args, **kw)

    def assertCtlFails(self, result, rc=125):
        """sandboxctl's own failure: its exit code and exactly one line on stderr."""
        code, out, err = result
        self.assertEqual(code, rc, result)
        self.assertEqual(err.count("\n"), 1, "expected one line on stderr: %r" % (err,))
        self.assertTrue(err.startswith("sandboxctl: "), err)
        return err
