"""Who may talk to the daemon: root and members of socket_group, checked
by the daemon on every connection (SO_PEERCRED, SO_PEERGROUPS) whatever
the socket file's mode. The clients here run with made-up uids and
groups (root may set any), so no account is needed except for the test
of a group given by name."""

import json
import os
import random
import re
import shutil
import subprocess
import time
import unittest

import sbxtest
from sbxtest import SandboxdTestCase, sandboxctl_path, wait_until

GID = 47000 + random.randrange(1000)  # the socket group of these tests
MEMBER_UID = 48000 + random.randrange(1000)
OUTSIDER_UID = MEMBER_UID + 1000

# A raw client: connects N times and prints each first line it gets.
RAW_CLIENT = r"""
import socket, sys
path, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\n')
    except OSError:
        pass
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.decode().strip())
    s.close()
"""


class PeerCheckTest(SandboxdTestCase):
    daemon_options = {"config": {"socket_group": str(GID)}}

    def setUp(self):
        super().setUp()
        # Another user must reach the socket and run sandboxctl: a copy
        # beside the socket, whatever the checkout's directory modes.
        self.ctl_copy = os.path.join(self.daemon.dir, "sandboxctl")
        shutil.copy(sandboxctl_path(), self.ctl_copy)
        os.chmod(self.ctl_copy, 0o755)
        # The file mode lets everyone in: only the daemon's check is left.
        os.chmod(self.daemon.socket, 0o666)

    def as_user(self, uid, gid, groups, *args, timeout=60):
        p = subprocess.run([self.ctl_copy, "--socket", self.daemon.socket] + list(args), capture_output=True,
                           text=True, timeout=timeout, user=uid, group=gid, extra_groups=list(groups),
                           cwd="/", env={"PATH": "/usr/bin:/bin"})
        return p.returncode, p.stdout, p.stderr

    def raw_as_user(self, uid, gid, n):
        # The system's python: a checkout's interpreter may sit under /root.
        p = subprocess.run(["/usr/bin/python3", "-c", RAW_CLIENT, self.daemon.socket, str(n)], capture_output=True,
                           text=True, timeout=60, user=uid, group=gid, extra_groups=[], cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(l) for l in p.stdout.splitlines()]

    def refusals(self):
        return [l for l in self.daemon.log().splitlines() if "refused a connection from" in l]

    def test_supplementary_member_may_create_and_run(self):
        rc, out, err = self.as_user(MEMBER_UID, 100, [GID], "run", "--rm", "--", "sh", "-c", "echo hi from $(id -u)")
        self.assertEqual((rc, out, err), (0, "hi from 0\n", ""))
        self.assertIn("sandbox.create - by uid %d" % MEMBER_UID, self.daemon.log())
        self.assertEqual(self.refusals(), [])

    def test_primary_group_member_is_allowed(self):
        rc, out, err = self.as_user(MEMBER_UID, GID, [], "info")
        self.assertEqual(rc, 0, err)
        self.assertIn("version:", out)

    def test_outsider_is_refused_even_with_mode_0666(self):
        self.assertEqual(os.stat(self.daemon.socket).st_mode & 0o777, 0o666)
        rc, out, err = self.as_user(OUTSIDER_UID, OUTSIDER_UID, [GID + 1], "ls")
        self.assertNotEqual(rc, 0)
        self.assertIn("permission denied: uid %d is neither root nor a member of group '%d'" % (OUTSIDER_UID, GID),
                      err)
        self.assertEqual(out, "")
        lines = self.refusals()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("(uid %d, gid %d)" % (OUTSIDER_UID, OUTSIDER_UID), lines[0])
        # The raw protocol: one error line, code 5 (denied), id null, then EOF.
        reply = self.raw_as_user(OUTSIDER_UID, OUTSIDER_UID, 1)[0]
        self.assertEqual(reply["id"], None)
        self.assertEqual(reply["error"]["code"], 5)
        # The daemon goes on serving everyone else.
        self.call("system.ping")
        rc, out, err = self.ctl("ls")
        self.assertEqual(rc, 0, err)

    def test_refusals_are_logged_without_flooding(self):
        replies = self.raw_as_user(OUTSIDER_UID, OUTSIDER_UID, 30)
        self.assertEqual(len(replies), 30)
        self.assertTrue(all(r["error"]["code"] == 5 for r in replies), replies)
        self.assertEqual(len(self.refusals()), 1, self.refusals())
        time.sleep(5.2)
        self.raw_as_user(OUTSIDER_UID, OUTSIDER_UID, 1)
        lines = self.refusals()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("29 more refused since the last such line", lines[1])


class RootOnlyTest(SandboxdTestCase):
    """A socket_group that does not exist, or an empty one: root only."""

    daemon_options = {"config": {"socket_group": "sbxtest-no-such-group"}}

    def test_nobody_but_root(self):
        ctl = os.path.join(self.daemon.dir, "sandboxctl")
        shutil.copy(sandboxctl_path(), ctl)
        os.chmod(ctl, 0o755)
        os.chmod(self.daemon.socket, 0o666)
        p = subprocess.run([ctl, "--socket", self.daemon.socket, "info"], capture_output=True, text=True,
                           timeout=60, user=MEMBER_UID, group=MEMBER_UID, extra_groups=[GID], cwd="/")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("permission denied: only root may connect (socket_group 'sbxtest-no-such-group' does not "
                      "exist)", p.stderr)
        self.assertIn("socket_group 'sbxtest-no-such-group' does not exist: only root may connect",
                      self.daemon.log())
        rc, out, err = self.ctl("info")
        self.assertEqual(rc, 0, err)


class NamedGroupTest(SandboxdTestCase):
    """The group by name, as the package configures it ("sandboxd"); the
    socket file gets the group too."""

    start_daemon = False

    def setUp(self):
        super().setUp()
        if not shutil.which("groupadd"):
            self.skipTest("groupadd is not installed")
        self.group = "sbxt%06x" % random.getrandbits(24)
        subprocess.run(["groupadd", "--system", self.group], check=True)
        self.addCleanup(subprocess.run, ["groupdel", self.group])
        self.gid = int(subprocess.run(["getent", "group", self.group], capture_output=True, text=True,
                                      check=True).stdout.split(":")[2])
        self.daemon = self.new_daemon(config={"socket_group": self.group})

    def test_member_of_named_group(self):
        st = os.stat(self.daemon.socket)
        self.assertEqual((st.st_gid, st.st_mode & 0o777), (self.gid, 0o660))
        ctl = os.path.join(self.daemon.dir, "sandboxctl")
        shutil.copy(sandboxctl_path(), ctl)
        os.chmod(ctl, 0o755)
        for groups, ok in (([self.gid], True), ([], False)):
            p = subprocess.run([ctl, "--socket", self.daemon.socket, "info"], capture_output=True, text=True,
                               timeout=60, user=MEMBER_UID, group=MEMBER_UID, extra_groups=groups, cwd="/")
            self.assertEqual(p.returncode == 0, ok, p.stderr)


if __name__ == "__main__":
    sbxtest.main()
