"""Snapshots and forks of sandboxes: sandbox.snapshot makes an image of a
running sandbox's files while its processes go on (frozen only for a
clone of the writable layer), sandbox.fork makes a sandbox from one in a
call, and images that sandboxes or snapshots use cannot be removed."""

import json
import os
import time

from sbxtest import SandboxdTestCase, image_tarball, main, wait_until

BAD_STATE = 3
EXISTS = 2

WRITER = ("(i=0; while :; do i=$((i+1)); echo \"line $i end\" > /root/c.tmp; mv /root/c.tmp /root/counter; "
          "head -c 4096 /dev/zero >> /root/grow; done) </dev/null >/dev/null 2>&1 &")


class SnapshotTest(SandboxdTestCase):
    def test_snapshot_while_a_process_writes(self):
        self.create("src", env={"FROM": "src"}, workdir="/root")
        self.sh("src", "mkdir -p /data && head -c 2000000 /dev/urandom > /data/blob && md5sum /data/blob > /data/sum")
        self.sh("src", WRITER)
        wait_until(lambda: self.exec("src", "cat /root/counter")["exit_code"] == 0, message="the writer never wrote")
        before = int(self.sh("src", "cat /root/counter").split()[1])
        res = self.call("sandbox.snapshot", {"sandbox": "src", "image": "snaps/src:1"}, timeout=120)
        self.assertEqual(res["name"], "snaps/src:1")
        self.assertGreater(res["size_bytes"], 2000000)
        self.assertGreaterEqual(res["snapshot"]["pause_ms"], 0)
        self.assertGreater(res["snapshot"]["files"], 3)
        # The writer goes on: the sandbox noticed nothing but the pause.
        self.assertEqual(self.inspect("src")["state"], "started")
        wait_until(lambda: int(self.sh("src", "cat /root/counter").split()[1]) > before + 10,
                   message="the writer stopped")
        # The image lists and creates sandboxes like any other, with the
        # snapshotted sandbox's env and working directory.
        self.assertTrue({"sandbox.snapshot", "sandbox.fork", "sandbox.archive"} <= set(self.call("system.info")["features"]))
        names = [i["name"] for i in self.call("image.list")["images"]]
        self.assertIn("snaps/src:1", names)
        self.create("copy", image="snaps/src:1")
        out = self.sh("copy", "cat /root/counter; md5sum -c /data/sum >/dev/null && echo same; echo $FROM; pwd")
        lines = out.splitlines()
        w = lines[0].split()
        self.assertEqual((w[0], w[2]), ("line", "end"), out)
        self.assertGreater(int(w[1]), 0)
        self.assertEqual(lines[1:], ["same", "src", "/root"])
        # No writer runs in the copy: processes are not part of an image.
        self.assertNotIn("mv /root/c.tmp", self.sh("copy", "ps -o args"))

    def test_snapshot_of_a_stopped_and_of_a_paused_sandbox(self):
        self.create("s")
        self.sh("s", "echo stopped > /root/f")
        self.call("sandbox.stop", {"sandbox": "s"})
        self.call("sandbox.snapshot", {"sandbox": "s", "image": "s-stopped"}, timeout=120)
        self.assertEqual(self.inspect("s")["state"], "stopped")
        self.call("sandbox.start", {"sandbox": "s"})
        self.call("sandbox.pause", {"sandbox": "s"})
        res = self.call("sandbox.snapshot", {"sandbox": "s", "image": "s-paused"}, timeout=120)
        self.assertEqual(res["snapshot"]["pause_ms"], 0)
        self.assertEqual(self.inspect("s")["state"], "paused")
        self.call("sandbox.resume", {"sandbox": "s"})
        self.create("t", image="s-stopped")
        self.assertEqual(self.sh("t", "cat /root/f"), "stopped\n")
        # Exported as an OCI layout and imported again: the same files.
        out = os.path.join(self.daemon.dir, "exported")
        self.call("image.export", {"name": "s-stopped", "path": out}, timeout=120)
        self.assertTrue(os.path.exists(os.path.join(out, "index.json")))
        self.call("image.import", {"name": "s-again", "path": out, "format": "oci"}, timeout=120)
        self.create("u", image="s-again")
        self.assertEqual(self.sh("u", "cat /root/f"), "stopped\n")
        # A name in use is refused before anything is made.
        self.assertRpcError(EXISTS, "sandbox.snapshot", {"sandbox": "s", "image": "s-paused"})
        self.assertRpcError(-32602, "sandbox.snapshot", {"sandbox": "s", "image": "bad name!"})

    def test_fork_is_isolated(self):
        self.create("orig", labels={"team": "a"})
        self.sh("orig", "echo base > /root/shared")
        fork = self.call("sandbox.fork", {"sandbox": "orig", "name": "forked", "labels": {"team": "b"},
                                          "resources": {"memory_mb": 256}}, timeout=120)
        self.daemon.known_ids.add(fork["id"])
        self.assertEqual(fork["name"], "forked")
        self.assertEqual(fork["state"], "started")
        self.assertEqual(fork["labels"], {"team": "b"})
        self.assertEqual(fork["resources"]["memory_mb"], 256)
        self.assertEqual(self.sh("forked", "cat /root/shared"), "base\n")
        self.sh("orig", "echo from-orig > /root/shared; echo o > /root/only-orig")
        self.sh("forked", "echo from-fork > /root/shared; echo f > /root/only-fork")
        self.assertEqual(self.sh("orig", "cat /root/shared; ls /root"), "from-orig\nonly-orig\nshared\n")
        self.assertEqual(self.sh("forked", "cat /root/shared; ls /root"), "from-fork\nonly-fork\nshared\n")
        # A fork of a fork, from layers shared with its parent.
        self.call("sandbox.fork", {"sandbox": "forked", "name": "again"}, timeout=120)
        self.assertEqual(self.sh("again", "cat /root/shared"), "from-fork\n")

    def test_images_in_use_are_not_removed(self):
        self.create("user")
        self.call("sandbox.snapshot", {"sandbox": "user", "image": "snap-in-use"}, timeout=120)
        made = self.create("child", image="snap-in-use")
        err = self.assertRpcError(BAD_STATE, "image.remove", {"name": "snap-in-use"})
        self.assertIn(made["id"], err["message"])
        self.assertIn("child", err["message"])
        err = self.assertRpcError(BAD_STATE, "image.remove", {"name": "minimal"})
        self.assertIn("user", err["message"])
        self.call("sandbox.delete", {"sandbox": "child", "force": True})
        self.call("image.remove", {"name": "snap-in-use"})
        # The snapshot's layers are the snapshot's own: the sandbox it was
        # made from is untouched.
        self.assertEqual(self.sh("user", "echo ok"), "ok\n")

    def test_a_snapshot_outlives_its_base_image(self):
        # A snapshot holds its own references to the layers it is made of:
        # the image it came from can go once no sandbox uses it, when the
        # user insists (the snapshot is named).
        self.call("image.import", {"name": "base2", "path": image_tarball()}, timeout=120)
        self.create("b", image="base2")
        self.sh("b", "echo mine > /root/m")
        self.call("sandbox.snapshot", {"sandbox": "b", "image": "b-snap"}, timeout=120)
        err = self.assertRpcError(BAD_STATE, "image.remove", {"name": "base2"})
        self.assertIn("(b)", err["message"])
        self.call("sandbox.delete", {"sandbox": "b", "force": True})
        self.assertEqual(self.call("image.inspect", {"name": "b-snap"})["base_image"],
                         self.call("image.inspect", {"name": "base2"})["id"])
        err = self.assertRpcError(BAD_STATE, "image.remove", {"name": "base2"})
        self.assertIn("snapshots b-snap", err["message"])
        self.call("image.remove", {"name": "base2", "force": True})
        self.create("c", image="b-snap")
        self.assertEqual(self.sh("c", "cat /root/m; ls /bin/busybox"), "mine\n/bin/busybox\n")

    def test_a_daemon_killed_during_a_snapshot_leaves_the_sandbox_running(self):
        sb = self.create("frz")
        self.sh("frz", "head -c 50000000 /dev/urandom > /root/big")
        cg = self.daemon.sandbox_cgroup(sb["id"])
        c = self.daemon.client()
        c.request("sandbox.snapshot", {"sandbox": "frz", "image": "frz-snap"})
        time.sleep(0.2)
        self.daemon.kill9()
        # Its worker died with it, perhaps with the group frozen; the same
        # as the worst case, made sure of:
        with open(os.path.join(cg, "cgroup.freeze"), "w") as f:
            f.write("1")
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.inspect("frz")["state"], "started")
        with open(os.path.join(cg, "cgroup.events")) as f:
            self.assertIn("frozen 0", f.read())
        self.assertEqual(self.sh("frz", "echo alive"), "alive\n")
        # The half-made image is not there, and its name is free.
        self.assertNotIn("frz-snap", [i["name"] for i in self.call("image.list")["images"]])
        self.call("sandbox.snapshot", {"sandbox": "frz", "image": "frz-snap"}, timeout=120)

    def test_delete_waits_for_a_snapshot(self):
        self.create("busy")
        self.sh("busy", "head -c 100000000 /dev/urandom > /root/big")
        c = self.daemon.client()
        rid = c.request("sandbox.snapshot", {"sandbox": "busy", "image": "busy-snap"})
        time.sleep(0.05)
        err = self.assertRpcError(BAD_STATE, "sandbox.delete", {"sandbox": "busy", "force": True})
        self.assertIn("snapshot", err["message"])
        reply = c.wait(rid, timeout=120)
        self.assertIn("result", reply, reply)
        self.call("sandbox.delete", {"sandbox": "busy", "force": True})
        self.create("from-busy", image="busy-snap")
        self.assertEqual(self.sh("from-busy", "wc -c < /root/big").strip(), "100000000")

    def test_sandboxctl_snapshot_and_fork(self):
        self.create("cli")
        self.sh("cli", "echo cli > /root/f")
        code, out, err = self.ctl("snapshot", "cli", "cli-snap")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"^cli-snap [0-9a-f]{12} \(paused \d+ ms\)\n$")
        code, out, err = self.ctl("fork", "--name", "cli-fork", "--label", "k=v", "cli")
        self.assertEqual(code, 0, err)
        self.daemon.known_ids.add(out.strip())
        sb = self.inspect("cli-fork")
        self.assertEqual(sb["id"], out.strip())
        self.assertEqual(sb["labels"], {"k": "v"})
        self.assertEqual(self.sh("cli-fork", "cat /root/f"), "cli\n")
        self.assertCtlFails(self.ctl("snapshot", "cli"))


if __name__ == "__main__":
    main()
