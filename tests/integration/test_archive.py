"""Archives of stopped sandboxes: sandbox.archive packs the writable layer
away and frees it, a start brings every file back, auto_archive_min does
it on its own (across a restart), and a daemon killed in the middle of
either leaves the sandbox as it was."""

import json
import os
import stat
import threading
import time

from sbxtest import RpcError, SandboxdTestCase, main, wait_until

BAD_STATE = 3

# Every kind of file an overlay upper layer holds, made from inside.
MAKE_FILES = r"""
set -e
mkdir -p /data/empty /data/deep/er
echo hello > /data/file
chmod 4750 /data/file
chown 1000:2000 /data/file
ln /data/file /data/hardlink
ln -s file /data/symlink
ln -s /nowhere /data/dangling
mkfifo -m 640 /data/fifo
truncate -s 64M /data/sparse
echo middle | dd of=/data/sparse bs=1 seek=30000000 conv=notrunc 2>/dev/null
chmod 711 /data/empty
rm /etc/os-release
rm -rf /home && mkdir /home && echo new > /home/opaque-file
yes 'compressible line of text' | head -c 8000000 > /data/text
"""


def walk(root):
    """Every entry below root: what must survive an archive and a restore."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            info = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "nlink": st.st_nlink}
            if stat.S_ISREG(st.st_mode):
                info.update(size=st.st_size, blocks=st.st_blocks, mtime=st.st_mtime_ns)
                with open(p, "rb") as f:
                    info["head"] = f.read(64)
            if stat.S_ISLNK(st.st_mode):
                info["target"] = os.readlink(p)
            if stat.S_ISCHR(st.st_mode):
                info["rdev"] = st.st_rdev
                # overlayfs links new whiteouts to one shared inode in its
                # work directory (scratch, not packed): only their count of
                # names differs.
                del info["nlink"]
            info["xattrs"] = {k: os.getxattr(p, k, follow_symlinks=False)
                              for k in sorted(os.listxattr(p, follow_symlinks=False))}
            out[rel] = info
    return out


class ArchiveTest(SandboxdTestCase):
    def sbdir(self, sb_id):
        return os.path.join(self.daemon.state_dir, "sandboxes", sb_id)

    def layer_bytes(self, sb_id):
        total = 0
        for dirpath, _, filenames in os.walk(os.path.join(self.sbdir(sb_id), "upper")):
            for n in filenames:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
        return total

    def test_round_trip_keeps_every_kind_of_file(self):
        # No disk limit: the layer is a plain directory the walk can read.
        sb = self.create("keep", resources={"disk_mb": 0})
        self.sh("keep", MAKE_FILES)
        self.call("sandbox.stop", {"sandbox": "keep"})
        upper = os.path.join(self.sbdir(sb["id"]), "upper")
        os.setxattr(os.path.join(upper, "data/file"), "user.note", b"kept")
        before = walk(upper)
        # The walk saw what it must: a whiteout, an opaque directory, holes.
        self.assertTrue(stat.S_ISCHR(before["etc/os-release"]["mode"]), before["etc/os-release"])
        self.assertTrue(any(k.endswith("overlay.opaque") for k in before["home"]["xattrs"]), before["home"])
        self.assertEqual(before["data/file"]["nlink"], 2)
        self.assertLess(before["data/sparse"]["blocks"] * 512, 1 << 20)
        layer = self.layer_bytes(sb["id"])

        code, out, err = self.ctl("archive", "keep")
        self.assertEqual(code, 0, err)
        st = self.inspect("keep")
        self.assertEqual(st["state"], "archived")
        self.assertGreater(st["archive"]["size_bytes"], 0)
        # The layer is gone from disk; the archive is smaller than it was.
        wait_until(lambda: not os.path.exists(upper), message="upper/ still there")
        path = os.path.join(self.sbdir(sb["id"]), "archive.tar.zst")
        self.assertEqual(os.path.getsize(path), st["archive"]["size_bytes"])
        self.assertLess(st["archive"]["size_bytes"], layer / 4)
        self.assertEqual(self.call("sandbox.list", {"state": "archived"})["sandboxes"][0]["id"], sb["id"])
        # Files cannot be reached while archived; the error says why.
        err = self.assertRpcError(BAD_STATE, "fs.read", {"sandbox": "keep", "path": "/data/file"})
        self.assertIn("archived: its files are packed away; start it", err["message"])

        self.call("sandbox.start", {"sandbox": "keep"})
        st = self.inspect("keep")
        self.assertEqual(st["state"], "started")
        self.assertIsNone(st["archive"])
        self.assertFalse(os.path.exists(path))
        self.assertEqual(self.sh("keep", "cat /data/file /data/symlink /home/opaque-file; "
                                         "test -p /data/fifo && test ! -e /etc/os-release && echo ok"),
                         "hello\nhello\nnew\nok\n")
        self.call("sandbox.stop", {"sandbox": "keep"})
        after = walk(upper)
        self.assertEqual(sorted(after), sorted(before))
        # Each start writes these anew.
        for k in ("etc/hosts", "etc/resolv.conf", "etc/hostname"):
            before.pop(k, None)
        for k in before:
            self.assertEqual(after[k], before[k], k)

    def test_states_events_and_refusals(self):
        sb = self.create("ev")
        self.sh("ev", "echo x > /root/x")
        self.assertRpcError(BAD_STATE, "sandbox.archive", {"sandbox": "ev"})
        self.call("sandbox.stop", {"sandbox": "ev"})
        sub = self.daemon.client()
        sub.call("events.subscribe", {"sandbox": sb["id"]})
        self.call("sandbox.archive", {"sandbox": "ev"})
        # Again: nothing to do, the same answer.
        self.assertEqual(self.call("sandbox.archive", {"sandbox": "ev"})["state"], "archived")
        self.assertRpcError(BAD_STATE, "process.exec", {"sandbox": "ev", "cmd": ["true"]})
        self.call("sandbox.start", {"sandbox": "ev"})
        types = []
        deadline = time.time() + 10
        while "started" not in types and time.time() < deadline:
            msg = sub.recv_msg(timeout=10)
            if msg.get("method") == "event":
                types.append(msg["params"]["type"])
        self.assertEqual(types, ["archiving", "archived", "restoring", "restored", "started"])
        self.assertEqual(self.sh("ev", "cat /root/x"), "x\n")
        # An archived sandbox is deleted with its archive.
        self.call("sandbox.stop", {"sandbox": "ev"})
        self.call("sandbox.archive", {"sandbox": "ev"})
        self.call("sandbox.delete", {"sandbox": "ev"})
        wait_until(lambda: not os.path.exists(self.sbdir(sb["id"])))

    def test_disk_limited_sandbox_round_trip(self):
        sb = self.create("disk", resources={"disk_mb": 64})
        self.sh("disk", "echo on-disk > /root/f; head -c 1000000 /dev/urandom > /root/r; md5sum /root/r > /root/sum")
        self.call("sandbox.stop", {"sandbox": "disk"})
        d = self.sbdir(sb["id"])
        img = os.path.exists(os.path.join(d, "disk.img"))
        self.call("sandbox.archive", {"sandbox": "disk"})
        if img:
            wait_until(lambda: not os.path.exists(os.path.join(d, "disk.img")))
        self.call("sandbox.start", {"sandbox": "disk"})
        self.assertEqual(self.sh("disk", "cat /root/f; md5sum -c /root/sum >/dev/null && echo same"),
                         "on-disk\nsame\n")

    def test_auto_archive_min_counts_across_a_restart(self):
        sb = self.create("auto", auto_archive_min=3)
        self.sh("auto", "echo auto > /root/a")
        self.call("sandbox.stop", {"sandbox": "auto"})
        time.sleep(1.5)
        self.assertEqual(self.inspect("auto")["state"], "stopped")
        # The daemon is down while the time passes: what it saved tells it
        # how long the sandbox has been stopped.
        self.daemon.stop()
        path = os.path.join(self.sbdir(sb["id"]), "sandbox.json")
        with open(path) as f:
            rec = json.load(f)
        rec["activity_ns"] -= 4 * 60 * 10**9
        with open(path, "w") as f:
            json.dump(rec, f)
        self.daemon.start()
        self.rpc = self.daemon.client()
        wait_until(lambda: self.inspect("auto")["state"] == "archived", timeout=20,
                   message="not archived after the restart")
        self.call("sandbox.start", {"sandbox": "auto"})
        self.assertEqual(self.sh("auto", "cat /root/a"), "auto\n")

    def big_sandbox(self, name):
        sb = self.create(name)
        self.sh(name, "for i in 1 2 3 4 5 6; do head -c 40000000 /dev/urandom > /root/r$i; done; "
                      "md5sum /root/r* > /root/sums", timeout=120)
        self.call("sandbox.stop", {"sandbox": name})
        return sb

    def wait_for_path(self, path, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                return True
            time.sleep(0.005)
        return False

    def test_kill9_during_archive_leaves_it_stopped(self):
        sb = self.big_sandbox("killa")
        d = self.sbdir(sb["id"])
        c = self.daemon.client()
        c.request("sandbox.archive", {"sandbox": "killa"})
        self.assertTrue(self.wait_for_path(os.path.join(d, "archive.tar.zst.part")), "no .part file seen")
        self.daemon.kill9()
        self.daemon.start()
        self.rpc = self.daemon.client()
        st = self.inspect("killa")
        self.assertEqual(st["state"], "stopped")
        self.assertFalse(os.path.exists(os.path.join(d, "archive.tar.zst.part")))
        self.assertFalse(os.path.exists(os.path.join(d, "archive.tar.zst")))
        self.call("sandbox.start", {"sandbox": "killa"})
        self.sh("killa", "md5sum -c /root/sums >/dev/null")

    def test_kill9_during_restore_leaves_it_archived(self):
        sb = self.big_sandbox("killr")
        d = self.sbdir(sb["id"])
        self.call("sandbox.archive", {"sandbox": "killr"}, timeout=120)
        c = self.daemon.client()
        c.request("sandbox.start", {"sandbox": "killr"})
        self.assertTrue(self.wait_for_path(os.path.join(d, "restore.part")), "no restore directory seen")
        self.daemon.kill9()
        self.daemon.start()
        self.rpc = self.daemon.client()
        st = self.inspect("killr")
        self.assertEqual(st["state"], "archived")
        self.assertFalse(os.path.exists(os.path.join(d, "restore.part")))
        wait_until(lambda: not os.path.exists(os.path.join(d, "upper")))
        self.call("sandbox.start", {"sandbox": "killr"}, timeout=120)
        self.sh("killr", "md5sum -c /root/sums >/dev/null")
        self.assertFalse(os.path.exists(os.path.join(d, "archive.tar.zst")))


if __name__ == "__main__":
    main()
