"""Layered images through the daemon and sandboxctl, with inputs made by
other tools: OCI layouts built by umoci (whiteouts, an opaque directory),
docker save archives written by skopeo, pulls from Debian's docker-registry
on loopback, exports read back by skopeo and umoci, and each kind of bad
input with a check that the layer store holds nothing new."""

import atexit
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import unittest

from sbxtest import SandboxdTestCase, image_tarball, main, wait_until

NOT_FOUND, EXISTS, BAD_STATE, DENIED, TIMEOUT, UNSUPPORTED = 1, 2, 3, 5, 6, 7
BAD_PARAMS = -32602

TOOLS = ("umoci", "skopeo", "zstd")
REGISTRY_TOOLS = ("docker-registry", "htpasswd")


def have(*tools):
    return all(shutil.which(t) for t in tools)


def sh(script, cwd):
    r = subprocess.run(["sh", "-ec", script], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s\n%s%s" % (script, r.stdout, r.stderr))
    return r.stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


FIX = None


def fixtures():
    """Made once: L (umoci layout: base = the minimal image plus a, keep,
    d/x, d/y; v2 = base + whiteout of /a + opaque /d holding z + a config;
    other = base + /other), L.tar, and v2 as docker archives (plain, gzip,
    zstd) written by skopeo."""
    global FIX
    if FIX:
        return FIX
    d = tempfile.mkdtemp(prefix="sbx-oci-fix-")
    atexit.register(shutil.rmtree, d, True)
    sh("umoci init --layout L; umoci new --image L:base; umoci unpack --image L:base b1;"
       "tar -xzf '%s' -C b1/rootfs --numeric-owner;"
       "mkdir -p b1/rootfs/d b1/rootfs/work; echo a > b1/rootfs/a; echo k > b1/rootfs/keep;"
       "echo x > b1/rootfs/d/x; echo y > b1/rootfs/d/y; umoci repack --image L:base b1; rm -rf b1;"
       "umoci tag --image L:base v2; umoci insert --image L:v2 --whiteout /a;"
       "mkdir src; echo z > src/z; umoci insert --image L:v2 --opaque src /d;"
       "umoci config --image L:v2 --config.env FOO=bar --config.env PATH=/usr/bin:/bin --config.workingdir /work"
       " --config.user 1000:1000 --config.exposedports 8080/tcp"
       " --config.entrypoint /bin/sh --config.cmd -c --config.cmd 'echo service-ran > /tmp/svc; sleep 1000';"
       "umoci tag --image L:base other; mkdir src2; echo o > src2/other; umoci insert --image L:other src2/other /other;"
       "skopeo copy -q oci:L:v2 docker-archive:d.tar:img:v2;"
       "gzip -c d.tar > d.tar.gz; zstd -q -c d.tar > d.tar.zst;"
       "tar -C L -cf L.tar ." % image_tarball(), d)
    FIX = d
    return d


def index_digest(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        for m in json.load(f)["manifests"]:
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return m["digest"]
    raise KeyError(tag)


def blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":"))


def write_blob(layout, data):
    dg = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob(layout, dg), "wb") as f:
        f.write(data)
    return dg, len(data)


def single_layer_layout(path, layer_tar, media_type="application/vnd.oci.image.layer.v1.tar"):
    """A layout of one image of one hand-made layer (bad inputs only)."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    ldg, lsize = write_blob(path, layer_tar)
    diff = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    cdg, csize = write_blob(path, cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg, "size": csize},
                      "layers": [{"mediaType": media_type, "digest": ldg, "size": lsize}]}).encode()
    mdg, msize = write_blob(path, man)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      "digest": mdg, "size": msize,
                                                      "annotations": {"org.opencontainers.image.ref.name": "bad"}}]}, f)
    return path


def tar_of(*members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name, type=tarfile.REGTYPE, data=b"", linkname="", devmajor=0, devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mode = 0o644
    ti.linkname = linkname
    ti.devmajor, ti.devminor = devmajor, devminor
    if type == tarfile.REGTYPE:
        ti.size = len(data)
        return ti, data
    return ti, None


@unittest.skipUnless(have(*TOOLS), "needs umoci, skopeo and zstd (apt-get install umoci skopeo zstd)")
class LayeredImageTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.fix = fixtures()
        self.layout = os.path.join(self.fix, "L")
        self.work = os.path.join(self.daemon.dir, "work")
        os.mkdir(self.work)

    # the store as it is on disk
    def store(self):
        root = os.path.join(self.daemon.state_dir, "layers")
        layers = sorted(os.listdir(os.path.join(root, "layers", "sha256"))) \
            if os.path.isdir(os.path.join(root, "layers", "sha256")) else []
        tmp = sorted(os.listdir(os.path.join(root, "tmp"))) if os.path.isdir(os.path.join(root, "tmp")) else []
        imgs = sorted(n for n in os.listdir(os.path.join(self.daemon.state_dir, "images")))
        return {"layers": layers, "tmp": tmp, "images": imgs}

    def owners(self, diff_id):
        p = os.path.join(self.daemon.state_dir, "layers", "layers", "sha256", diff_id.split(":")[1], "refs")
        return sorted(os.listdir(p)) if os.path.isdir(p) else None

    def settled_store(self):
        """The store once releases in workers are done."""
        last = [None]

        def same():
            now = self.store()
            ok = now == last[0]
            last[0] = now
            return ok
        wait_until(same, timeout=20, interval=0.3)
        return last[0]

    def assertNothingNew(self, before, what):
        self.assertEqual(self.settled_store(), before, what)

    def import_(self, path, **params):
        params["path"] = path
        return self.call("image.import", params, timeout=120)

    # ---- imports ----

    def test_oci_layout_dir_whiteouts_opaque_and_run(self):
        img = self.import_(self.layout, name="team/img:v2", ref="v2")
        self.assertEqual(img["name"], "team/img:v2")
        self.assertEqual(img["names"], ["team/img:v2"])
        self.assertEqual(img["format"], "oci")
        self.assertEqual(img["digest"], index_digest(self.layout, "v2"))
        self.assertEqual(img["layers"], 3)
        self.assertEqual(img["exposed_ports"], ["8080/tcp"])
        self.assertGreater(img["size_bytes"], 0)
        ins = self.call("image.inspect", {"name": "team/img:v2"})
        self.assertEqual(ins["config"]["exposed_ports"], ["8080/tcp"])
        self.assertEqual(ins["config"]["working_dir"], "/work")
        self.assertEqual(len(ins["layer_digests"]), 3)
        self.assertEqual(len(self.call("image.list")["images"]), 2)
        sb = self.create(image="team/img:v2", service=False, user="root", workdir="/")
        self.assertEqual(self.sh(sb["id"], "cat /keep"), "k\n")
        self.assertEqual(self.sh(sb["id"], "test -e /a && echo present || echo gone"), "gone\n")
        self.assertEqual(self.sh(sb["id"], "ls /d"), "z\n")
        self.assertEqual(self.sh(sb["id"], "echo new > /keep2; cat /keep2"), "new\n")

    def test_oci_layout_tar_and_docker_archives_share_layers(self):
        a = self.import_(os.path.join(self.fix, "L.tar"), name="fromtar", ref="v2")
        layers = self.store()["layers"]
        self.assertEqual(len(layers), 3)
        for f in ("d.tar", "d.tar.gz", "d.tar.zst"):
            with self.subTest(archive=f):
                img = self.import_(os.path.join(self.fix, f), name="dock-" + f.replace(".", "-"))
                self.assertEqual(img["format"], "docker-archive")
                self.assertEqual(img["layers"], 3)
                ins = self.call("image.inspect", {"name": img["name"]})
                self.assertEqual([l["diff_id"] for l in ins["layer_digests"]],
                                 [l["diff_id"] for l in self.call("image.inspect", {"name": "fromtar"})["layer_digests"]])
                # Layers already stored are not stored again.
                self.assertEqual(self.store()["layers"], layers)
        sb = self.create(image="dock-d-tar-zst", service=False, user="root", workdir="/")
        self.assertEqual(self.sh(sb["id"], "cat /keep; ls /d; test -e /a || echo nope"), "k\nz\nnope\n")
        self.assertTrue(a["digest"].startswith("sha256:"))

    def test_two_imports_of_one_layout_at_once(self):
        c2 = self.daemon.client()
        r1 = self.rpc.request("image.import", {"path": self.layout, "ref": "v2", "name": "one", "progress": False})
        r2 = c2.request("image.import", {"path": os.path.join(self.fix, "d.tar.gz"), "name": "two",
                                         "progress": False})
        a = self.rpc.result(r1, 120)
        b = c2.result(r2, 120)
        la = [l["diff_id"] for l in self.call("image.inspect", {"name": "one"})["layer_digests"]]
        lb = [l["diff_id"] for l in self.call("image.inspect", {"name": "two"})["layer_digests"]]
        self.assertEqual(la, lb)
        self.assertEqual(len(self.store()["layers"]), 3)
        for d in la:
            self.assertEqual(self.owners(d), sorted([a["id"], b["id"]]))
        # Both without a name, both taking the archive's own: one wins, the
        # other is refused and leaves no reference behind.
        c3 = self.daemon.client()
        r3 = self.rpc.request("image.import", {"path": os.path.join(self.fix, "d.tar"), "progress": False})
        r4 = c3.request("image.import", {"path": os.path.join(self.fix, "d.tar.zst"), "progress": False})
        replies = [self.rpc.wait(r3, 120), c3.wait(r4, 120)]
        ok = [r for r in replies if "result" in r]
        bad = [r for r in replies if "error" in r]
        self.assertEqual((len(ok), len(bad)), (1, 1), replies)
        self.assertEqual(bad[0]["error"]["code"], EXISTS)
        wait_until(lambda: all(len(self.owners(d)) == 3 for d in la), timeout=20, message="refs of the loser dropped")
        self.assertEqual(self.store()["tmp"], [])

    def test_archive_name_from_its_own_tags(self):
        img = self.import_(os.path.join(self.fix, "d.tar.gz"))
        self.assertIn("img:v2", img["names"][0])
        again = self.import_(os.path.join(self.fix, "d.tar.gz"), name="second")
        self.assertEqual(again["digest"], img["digest"])
        err = self.assertRpcError(EXISTS, "image.import", {"path": os.path.join(self.fix, "d.tar")},
                                  timeout=120)
        self.assertIn("already exists", err["message"])

    def test_shared_base_stored_once(self):
        v2 = self.import_(self.layout, name="v2", ref="v2")
        other = self.import_(self.layout, name="other", ref="other")
        l1 = [l["diff_id"] for l in self.call("image.inspect", {"name": "v2"})["layer_digests"]]
        l2 = [l["diff_id"] for l in self.call("image.inspect", {"name": "other"})["layer_digests"]]
        self.assertEqual(l1[0], l2[0])
        self.assertEqual(len(self.store()["layers"]), 4)
        self.assertEqual(self.owners(l1[0]), sorted([v2["id"], other["id"]]))
        # The base's files are on disk once: one inode for /keep in the store.
        inodes = set()
        for root, dirs, files in os.walk(os.path.join(self.daemon.state_dir, "layers", "layers")):
            if "keep" in files:
                inodes.add(os.stat(os.path.join(root, "keep")).st_ino)
        self.assertEqual(len(inodes), 1)
        # Both run, and see the same file.
        s1 = self.create(image="v2", service=False, user="root", workdir="/")
        s2 = self.create(image="other", service=False, user="root", workdir="/")
        self.assertEqual(self.sh(s1["id"], "cat /keep"), "k\n")
        self.assertEqual(self.sh(s2["id"], "cat /keep /other"), "k\no\n")

    def test_export_read_by_skopeo_and_umoci_and_reimported(self):
        img = self.import_(self.layout, name="team/img:v2", ref="v2")
        out = os.path.join(self.work, "out")
        r = self.call("image.export", {"name": "team/img:v2", "path": out, "tag": "v2"}, timeout=120)
        self.assertEqual(r["digest"], img["digest"])
        info = json.loads(subprocess.run(["skopeo", "inspect", "oci:%s:v2" % out], check=True,
                                         capture_output=True, text=True).stdout)
        self.assertEqual(info["Digest"], img["digest"])
        subprocess.run(["umoci", "unpack", "--image", out + ":v2", os.path.join(self.work, "bundle")], check=True,
                       capture_output=True)
        rootfs = os.path.join(self.work, "bundle", "rootfs")
        self.assertFalse(os.path.exists(os.path.join(rootfs, "a")))
        self.assertEqual(os.listdir(os.path.join(rootfs, "d")), ["z"])
        tar = os.path.join(self.work, "out.tar")
        self.call("image.export", {"name": "team/img:v2", "path": tar, "format": "oci-tar"}, timeout=120)
        subprocess.run(["skopeo", "inspect", "oci-archive:%s:latest" % tar], check=True, capture_output=True)
        err = self.assertRpcError(EXISTS, "image.export", {"name": "team/img:v2", "path": tar})
        self.assertIn("exists", err["message"])
        self.call("image.remove", {"name": "team/img:v2"})
        again = self.import_(out, name="again", ref="v2")
        self.assertEqual(again["digest"], img["digest"])
        fromtar = self.import_(tar, name="again2")
        self.assertEqual(fromtar["digest"], img["digest"])

    # ---- the image's config ----

    def test_config_gives_defaults_and_the_service(self):
        self.import_(self.layout, name="v2", ref="v2")
        sb = self.create(image="v2")
        self.assertEqual(sb["user"], "1000:1000")
        self.assertEqual(sb["workdir"], "/work")
        self.assertEqual(self.sh(sb["id"], "id -u; pwd; echo $FOO"), "1000\n/work\nbar\n")
        # The Entrypoint + Cmd runs as the sandbox's service.
        self.assertEqual(sb["service"]["cmd"], ["/bin/sh", "-c", "echo service-ran > /tmp/svc; sleep 1000"])
        wait_until(lambda: self.inspect(sb["id"])["service"]["running"], timeout=20, message="service running")
        wait_until(lambda: self.sh(sb["id"], "cat /tmp/svc 2>/dev/null || true") == "service-ran\n", timeout=20,
                   message="service output")
        svc = self.inspect(sb["id"])["service"]
        procs = self.call("process.list", {"sandbox": sb["id"]})
        self.assertIn(svc["cmd_id"], json.dumps(procs))
        # A create's own values win over the image's.
        own = self.create(image="v2", user="root", workdir="/", env={"FOO": "mine"}, service=False)
        self.assertEqual(self.sh(own["id"], "id -u; pwd; echo $FOO"), "0\n/\nmine\n")
        self.assertIsNone(own["service"])
        # A service that ends leaves the sandbox running and shows its exit.
        ends = self.create(image="v2", service=["/bin/sh", "-c", "echo bye; exit 3"])
        wait_until(lambda: self.inspect(ends["id"])["service"].get("exit_code") == 3, timeout=20,
                   message="service exit shown")
        self.assertEqual(self.inspect(ends["id"])["state"], "started")
        logs = self.call("process.logs", {"sandbox": ends["id"], "cmd_id": "service"})
        self.assertIn("bye", json.dumps(logs))
        # It starts again with the sandbox.
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        self.call("sandbox.start", {"sandbox": sb["id"]})
        wait_until(lambda: self.inspect(sb["id"])["service"]["running"], timeout=20, message="service again")
        self.assertRpcError(BAD_PARAMS, "sandbox.create", {"image": "v2", "service": "sh"}, param="service")

    # ---- names ----

    def test_tag_and_remove_names(self):
        img = self.import_(self.layout, name="registry.example.com:5000/team/img:v2", ref="v2")
        t = self.call("image.tag", {"name": img["id"], "tag": "kortix/suna:0.1.3.30"})
        self.assertEqual(t["names"], ["registry.example.com:5000/team/img:v2", "kortix/suna:0.1.3.30"])
        self.assertRpcError(EXISTS, "image.tag", {"name": "kortix/suna:0.1.3.30", "tag": "minimal"})
        self.assertRpcError(BAD_PARAMS, "image.tag", {"name": "kortix/suna:0.1.3.30", "tag": "Bad Name!"},
                            param="name")
        self.assertEqual(self.call("image.inspect", {"name": "kortix/suna:0.1.3.30"})["id"], img["id"])
        # Removing one name keeps the image and its layers.
        before = self.store()
        self.call("image.remove", {"name": "registry.example.com:5000/team/img:v2"})
        self.assertEqual(self.call("image.inspect", {"name": img["id"]})["names"], ["kortix/suna:0.1.3.30"])
        self.assertEqual(self.store(), before)
        # The names survive a restart.
        self.daemon.restart()
        self.rpc = self.daemon.client()
        self.assertEqual(self.call("image.inspect", {"name": "kortix/suna:0.1.3.30"})["id"], img["id"])
        # The last name takes the image and, with it, its layers.
        self.call("image.remove", {"name": "kortix/suna:0.1.3.30"})
        wait_until(lambda: self.store()["layers"] == [], timeout=20, message="layers released")

    def test_remove_in_use_names_sandboxes_and_layers_outlive_force(self):
        img = self.import_(self.layout, name="used", ref="v2")
        sb = self.create(image="used", name="web", service=False, user="root", workdir="/")
        err = self.assertRpcError(BAD_STATE, "image.remove", {"name": "used"})
        self.assertIn(sb["id"], err["message"])
        self.assertIn("web", err["message"])
        self.call("image.remove", {"name": "used", "force": True})
        # The sandbox holds its own references: its layers stay and it runs.
        time.sleep(1)
        self.assertEqual(len(self.store()["layers"]), 3)
        self.assertEqual(self.sh(sb["id"], "cat /keep"), "k\n")
        self.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
        wait_until(lambda: self.store()["layers"] == [], timeout=20, message="layers released after delete")
        self.assertTrue(img["id"])

    def test_restart_keeps_layered_images_and_sandboxes(self):
        self.import_(self.layout, name="v2", ref="v2")
        sb = self.create(image="v2", service=False, user="root", workdir="/")
        self.sh(sb["id"], "echo mine > /mine")
        self.daemon.restart()
        self.rpc = self.daemon.client()
        self.assertEqual(self.call("image.inspect", {"name": "v2"})["layers"], 3)
        self.assertEqual(len(self.store()["layers"]), 3)
        self.call("sandbox.stop", {"sandbox": sb["id"]})
        # The file calls on a stopped sandbox mount its layers too.
        self.assertEqual(self.call("fs.stat", {"sandbox": sb["id"], "path": "/keep"})["size"], 2)
        self.assertRpcError(NOT_FOUND, "fs.stat", {"sandbox": sb["id"], "path": "/a"})
        self.assertEqual(sorted(e["name"] for e in self.call("fs.list", {"sandbox": sb["id"], "path": "/d"})["entries"]),
                         ["z"])
        self.call("sandbox.start", {"sandbox": sb["id"]})
        self.assertEqual(self.sh(sb["id"], "cat /mine /keep; ls /d"), "mine\nk\nz\n")

    def test_crash_leftovers_are_dropped_at_start(self):
        img = self.import_(self.layout, name="v2", ref="v2")
        base = self.call("image.inspect", {"name": "v2"})["layer_digests"][0]["diff_id"]
        # A reference whose owner is gone (an import a crash cut short).
        refs = os.path.join(self.daemon.state_dir, "layers", "layers", "sha256", base.split(":")[1], "refs")
        open(os.path.join(refs, "0123456789ab"), "w").close()
        self.daemon.kill9()
        self.daemon.start()
        self.rpc = self.daemon.client()
        self.assertEqual(self.owners(base), [img["id"]])

    # ---- sandboxctl ----

    def test_ctl_image_verbs(self):
        rc, out, err = self.ctl("image", "import", "--ref", "v2", os.path.join(self.fix, "L.tar"), "team/img:v2",
                                timeout=120)
        self.assertEqual((rc, out), (0, "team/img:v2\n"), err)
        self.assertNotIn("\033", err)  # no progress bar without a terminal
        rc, out, err = self.ctl("image", "tag", "team/img:v2", "kortix/suna:0.1.3.30")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.ctl("image", "ls")
        self.assertEqual(rc, 0, err)
        digest = self.call("image.inspect", {"name": "team/img:v2"})["digest"]
        rows = [l.split() for l in out.splitlines()[1:]]
        self.assertIn(["team/img:v2", rows[0][1] if rows[0][0] == "team/img:v2" else rows[1][1], digest[7:19]],
                      [r[:3] for r in rows])
        self.assertIn("kortix/suna:0.1.3.30", out)
        self.assertTrue(any(r[0] == "team/img:v2" and "3" in r for r in rows), out)
        rc, out, err = self.ctl("image", "inspect", "kortix/suna:0.1.3.30")
        self.assertEqual(json.loads(out)["config"]["exposed_ports"], ["8080/tcp"])
        out_tar = os.path.join(self.work, "ctl.tar")
        rc, out, err = self.ctl("image", "export", "--tar", "--tag", "v9", "team/img:v2", out_tar, timeout=120)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "%s\t%s\n" % (out_tar, digest))
        subprocess.run(["skopeo", "inspect", "oci-archive:%s:v9" % out_tar], check=True, capture_output=True)
        sb = self.create(image="team/img:v2", name="web", service=False)
        self.ctl("image", "rm", "kortix/suna:0.1.3.30")
        err = self.assertCtlFails(self.ctl("image", "rm", "team/img:v2"))
        self.assertIn(sb["id"], err)
        self.assertIn("web", err)
        # Bad input is refused with one line, before anything is sent.
        err = self.assertCtlFails(self.ctl("image", "pull", "Bad::Ref"), rc=125)
        self.assertIn("ref", err)
        err = self.assertCtlFails(self.ctl("image", "import", "/nonexistent/layout", "x"))
        self.assertIn("/nonexistent/layout", err)
        err = self.assertCtlFails(self.ctl("image", "import", "--ref", "v2", self.layout, "team/img:v2"))
        self.assertIn("already exists", err)

    def ctl_on_a_terminal(self, *args):
        """sandboxctl with its standard error on a terminal: (exit code,
        standard output, what the terminal showed)."""
        import pty
        master, slave = pty.openpty()
        p = subprocess.Popen([self.daemon_ctl_path(), "--socket", self.daemon.socket] + list(args),
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        p.wait(timeout=120)
        os.close(master)
        out = p.stdout.read()
        p.stdout.close()
        return p.returncode, out, seen

    def test_ctl_progress_bar_on_a_terminal(self):
        rc, out, seen = self.ctl_on_a_terminal("image", "import", os.path.join(self.fix, "d.tar.gz"), "bar")
        self.assertEqual(rc, 0, seen)
        self.assertEqual(out, b"bar\n")
        self.assertIn(b"3/3 layers", seen)
        self.assertIn(b"\r\033[K", seen)
        # The export's too, and none with --no-progress.
        dest = os.path.join(self.work, "bar-out")
        rc, out, seen = self.ctl_on_a_terminal("image", "export", "bar", dest)
        self.assertEqual(rc, 0, seen)
        self.assertTrue(out.startswith(dest.encode() + b"\t"), out)
        self.assertIn(b"writing", seen)
        self.assertIn(b"3/3 layers", seen)
        rc, out, seen = self.ctl_on_a_terminal("image", "export", "--no-progress", "--tar", "bar", dest + ".tar")
        self.assertEqual(rc, 0, seen)
        self.assertNotIn(b"layers", seen)

    def daemon_ctl_path(self):
        from sbxtest import sandboxctl_path
        return sandboxctl_path()

    # ---- progress ----

    def test_progress_notifications_carry_the_request_id(self):
        rid = self.rpc.request("image.import", {"path": os.path.join(self.fix, "d.tar.gz"), "name": "p"})
        reply = self.rpc.wait(rid, 120)
        self.assertIn("result", reply, reply)
        notes = [n for n in self.rpc.notifications if n.get("method") == "image.import.progress"]
        self.assertTrue(notes, self.rpc.notifications)
        for n in notes:
            self.assertEqual(n["params"]["request_id"], rid)
        last = notes[-1]["params"]
        self.assertEqual(last["layers_done"], last["layers_total"])
        self.assertEqual(last["layers_total"], 3)
        # Turned off, none come.
        self.rpc.notifications.clear()
        rid = self.rpc.request("image.import", {"path": os.path.join(self.fix, "d.tar"), "name": "q",
                                                "progress": False})
        self.assertIn("result", self.rpc.wait(rid, 120))
        self.assertEqual([n for n in self.rpc.notifications if n.get("method", "").endswith("progress")], [])

    def test_export_progress_counts_every_layer_blob(self):
        self.import_(os.path.join(self.fix, "d.tar.gz"), name="xp")
        for fmt in ("oci-dir", "oci-tar"):
            self.rpc.notifications.clear()
            out = os.path.join(self.work, "xp-" + fmt)
            rid = self.rpc.request("image.export", {"name": "xp", "path": out, "format": fmt})
            reply = self.rpc.wait(rid, 120)
            self.assertIn("result", reply, reply)
            notes = [n["params"] for n in self.rpc.notifications if n.get("method") == "image.export.progress"]
            self.assertTrue(notes, self.rpc.notifications)
            self.assertTrue(all(p["request_id"] == rid and p["phase"] == "writing" for p in notes), notes)
            done = [p["bytes_done"] for p in notes]
            self.assertEqual(done, sorted(done), "progress went backwards")
            last = notes[-1]
            self.assertEqual((last["layers_done"], last["layers_total"]), (3, 3), last)
            self.assertEqual(last["bytes_done"], last["bytes_total"], last)
            # The total is what the layout holds of layer blobs: every blob
            # but the manifest and the config.
            if fmt == "oci-dir":
                blobs = os.path.join(out, "blobs", "sha256")
                with open(os.path.join(out, "index.json")) as f:
                    manifest = json.load(f)["manifests"][0]["digest"].split(":")[1]
                with open(os.path.join(blobs, manifest)) as f:
                    config = json.load(f)["config"]["digest"].split(":")[1]
                size = sum(os.path.getsize(os.path.join(blobs, b)) for b in os.listdir(blobs)
                           if b not in (manifest, config))
                self.assertEqual(last["bytes_total"], size)
        # Turned off, none come.
        self.rpc.notifications.clear()
        rid = self.rpc.request("image.export", {"name": "xp", "path": os.path.join(self.work, "xp-quiet"),
                                                "progress": False})
        self.assertIn("result", self.rpc.wait(rid, 120))
        self.assertEqual([n for n in self.rpc.notifications if n.get("method", "").endswith("progress")], [])

    def test_python_client_progress_pull_tag_export(self):
        sys_path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "contrib", "python")
        import sys
        if sys_path not in sys.path:
            sys.path.insert(0, sys_path)
        import sandboxd
        seen = []
        with sandboxd.Client(self.daemon.socket) as c:
            img = c.image.import_(None, os.path.join(self.fix, "d.tar.zst"), on_progress=seen.append, timeout=120)
            self.assertEqual(img.layers, 3)
            self.assertTrue(img.digest.startswith("sha256:"))
            self.assertEqual(img.exposed_ports, ["8080/tcp"])
            self.assertTrue(seen, "no progress reached on_progress")
            self.assertEqual(seen[-1]["layers_done"], 3)
            t = c.image.tag(img.name, "py/alias:1")
            self.assertEqual(t.names, [img.name, "py/alias:1"])
            told = []
            r = c.image.export("py/alias:1", os.path.join(self.work, "py-out"), on_progress=told.append,
                               timeout=120)
            self.assertEqual(r["digest"], img.digest)
            self.assertTrue(told, "no export progress reached on_progress")
            self.assertEqual(told[-1]["layers_done"], 3)

    # ---- bad input ----

    def bad(self, path, code, text, **params):
        before = self.store()
        params["path"] = path
        err = self.assertRpcError(code, "image.import", params, timeout=120)
        self.assertIn(text, err["message"])
        self.assertNothingNew(before, "after %s" % text)
        return err

    def copy_layout(self, name):
        dst = os.path.join(self.work, name)
        shutil.copytree(self.layout, dst)
        return dst

    def test_bad_truncated_and_corrupted(self):
        # A store that holds something already, so that "nothing new" means it.
        self.import_(self.layout, name="other", ref="other")
        with open(os.path.join(self.fix, "L.tar"), "rb") as f:
            data = f.read()
        cut = os.path.join(self.work, "cut.tar")
        with open(cut, "wb") as f:
            f.write(data[: len(data) * 2 // 3])
        self.bad(cut, BAD_PARAMS, "Truncated", name="cut", ref="v2")
        with open(os.path.join(self.fix, "d.tar.gz"), "rb") as f:
            gz = f.read()
        cutgz = os.path.join(self.work, "cut.tar.gz")
        with open(cutgz, "wb") as f:
            f.write(gz[: len(gz) // 2])
        self.bad(cutgz, BAD_PARAMS, "Truncated", name="cutgz")
        # A layer blob with one byte changed: its digest no longer matches.
        lay = self.copy_layout("corrupt")
        man = json.load(open(blob(lay, index_digest(lay, "v2"))))
        top = blob(lay, man["layers"][-1]["digest"])
        raw = bytearray(open(top, "rb").read())
        raw[len(raw) // 2] ^= 0xFF
        open(top, "wb").write(bytes(raw))
        self.bad(lay, BAD_PARAMS, "layer 3 of 3", name="corrupt", ref="v2")

    def test_bad_missing_blob_media_type_several_images(self):
        lay = self.copy_layout("missing")
        man = json.load(open(blob(lay, index_digest(lay, "v2"))))
        os.unlink(blob(lay, man["layers"][-1]["digest"]))
        self.bad(lay, NOT_FOUND, man["layers"][-1]["digest"][7:19], name="missing", ref="v2")
        # An unknown media type.
        lay = single_layer_layout(os.path.join(self.work, "mt"), tar_of(member("f", data=b"x")),
                                  media_type="application/x-unknown")
        self.bad(lay, UNSUPPORTED, "application/x-unknown", name="mt")
        # A layout of several images without ref, or with one it lacks.
        self.bad(self.layout, BAD_PARAMS, "holds 3 images", name="several")
        self.bad(self.layout, NOT_FOUND, "no image named 'nosuch'", name="several", ref="nosuch")

    def test_bad_layer_entries(self):
        cases = {
            "dotdot": (tar_of(member("../evil", data=b"x")), "../evil"),
            "abs-symlink-followed": (tar_of(member("l", tarfile.SYMTYPE, linkname="/etc"),
                                            member("l/evil", data=b"x")), "l/evil"),
            "device": (tar_of(member("dev", tarfile.CHRTYPE, devmajor=1, devminor=3)), "dev"),
            "hardlink-out": (tar_of(member("h", tarfile.LNKTYPE, linkname="../../etc/passwd")), "h"),
        }
        for name, (layer, entry) in cases.items():
            with self.subTest(case=name):
                lay = single_layer_layout(os.path.join(self.work, name), layer)
                self.bad(lay, DENIED, "entry '%s'" % entry, name=name)
        self.assertFalse(os.path.exists(os.path.join(self.daemon.state_dir, "evil")))

    # ---- from a passed descriptor ----

    def import_fd(self, fd, client=None, **params):
        c = client or self.rpc
        params["fd"] = True
        params.setdefault("progress", False)
        rid = c.request("image.import", params, fds=[fd])
        return c.wait(rid, 120)

    def feed(self, data, cut=None):
        """A pipe whose far end a thread fills with data (its first cut
        bytes only, when cut is given) and then closes."""
        r, w = os.pipe()

        body = data if cut is None else data[:cut]

        def write():
            try:
                for i in range(0, len(body), 65536):
                    os.write(w, body[i:i + 65536])
            except OSError:
                pass
            finally:
                os.close(w)
        t = threading.Thread(target=write, daemon=True)
        t.start()
        return r, t

    def test_import_from_a_passed_file_directory_and_pipe(self):
        fds_before = self.daemon.settled_fd_count(self.rpc)
        # A file: a compressed docker archive, read where it is.
        with open(os.path.join(self.fix, "d.tar.zst"), "rb") as f:
            rep = self.import_fd(f.fileno(), name="fromfile")
        self.assertIn("result", rep, rep)
        self.assertEqual(rep["result"]["format"], "docker-archive")
        self.assertEqual(rep["result"]["layers"], 3)
        # A directory: an OCI layout, opened by the client.
        dfd = os.open(self.layout, os.O_RDONLY | os.O_DIRECTORY)
        try:
            rep = self.import_fd(dfd, name="fromdir", ref="v2")
        finally:
            os.close(dfd)
        self.assertIn("result", rep, rep)
        self.assertEqual(rep["result"]["format"], "oci")
        self.assertEqual(rep["result"]["digest"], index_digest(self.layout, "v2"))
        # A pipe: a docker archive (its manifest comes last) and an OCI
        # layout tar, neither of which can be read in one pass.
        for f, params in (("d.tar.gz", {"name": "frompipe"}), ("L.tar", {"name": "frompipe2", "ref": "v2"})):
            with self.subTest(stream=f):
                with open(os.path.join(self.fix, f), "rb") as src:
                    data = src.read()
                r, t = self.feed(data)
                try:
                    rid = self.rpc.request("image.import", dict(params, fd=True), fds=[r])
                finally:
                    os.close(r)
                rep = self.rpc.wait(rid, 120)
                t.join(10)
                self.assertIn("result", rep, rep)
                self.assertEqual(rep["result"]["layers"], 3)
                # The copy of the stream is not kept with the image.
                self.assertEqual(sorted(os.listdir(os.path.join(self.daemon.state_dir, "images", rep["result"]["id"]))),
                                 sorted(os.listdir(os.path.join(self.daemon.state_dir, "images",
                                                                self.call("image.inspect", {"name": "fromdir"})["id"]))))
                phases = {n["params"]["phase"] for n in self.rpc.notifications
                          if n.get("method") == "image.import.progress" and n["params"]["request_id"] == rid}
                self.assertIn("receiving", phases)
        # The daemon keeps none of the passed descriptors (workers that
        # release layers may still be ending).
        wait_until(lambda: self.daemon.fd_count() == fds_before, timeout=20, message="descriptors back to %d" % fds_before)
        # All of them are the same image, and run.
        digests = {self.call("image.inspect", {"name": n})["digest"] for n in ("fromdir", "frompipe2")}
        self.assertEqual(len(digests), 1)
        sb = self.create(image="frompipe", service=False, user="root", workdir="/")
        self.assertEqual(self.sh(sb["id"], "cat /keep; ls /d"), "k\nz\n")
        self.assertEqual(self.store()["tmp"], [])

    def test_ctl_import_from_stdin_and_with_fd(self):
        with open(os.path.join(self.fix, "d.tar"), "rb") as f:
            data = f.read()
        rc, out, err = self.ctl("image", "import", "--no-progress", "-", "ctl-stdin", input=data, timeout=120)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), b"ctl-stdin")
        # --fd: opened by sandboxctl, with its caller's rights.
        rc, out, err = self.ctl("image", "import", "--no-progress", "--fd", "--ref", "v2",
                                os.path.join(self.fix, "L.tar"), "ctl-fd", timeout=120)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "ctl-fd")
        self.assertEqual(self.call("image.inspect", {"name": "ctl-fd"})["source"], "the passed file")
        self.assertEqual(self.call("image.inspect", {"name": "ctl-stdin"})["source"], "the passed stream")
        rc, out, err = self.ctl("image", "import", "--fd", os.path.join(self.work, "missing.tar"), "x")
        self.assertNotEqual(rc, 0)
        self.assertIn("missing.tar", err)

    def test_bad_passed_descriptors_leave_nothing(self):
        self.import_(self.layout, name="other", ref="other")
        before = self.store()
        fds_before = self.daemon.settled_fd_count(self.rpc)
        with open(os.path.join(self.fix, "L.tar"), "rb") as f:
            data = f.read()

        def bad(fd, code, text, param=None, **params):
            rep = self.import_fd(fd, **params)
            self.assertIn("error", rep, rep)
            self.assertEqual(rep["error"]["code"], code, rep)
            self.assertIn(text, rep["error"]["message"])
            if param:
                self.assertEqual(rep["error"]["data"]["param"], param, rep)
            self.assertNothingNew(before, text)

        # A stream cut short, and one that is empty.
        r, t = self.feed(data, cut=len(data) * 2 // 3)
        try:
            bad(r, BAD_PARAMS, "Truncated", name="cut", ref="v2")
        finally:
            os.close(r)
        r, t = self.feed(b"")
        try:
            bad(r, BAD_PARAMS, "empty", param="fd", name="empty")
        finally:
            os.close(r)
        # Not something that holds an image.
        nul = os.open("/dev/null", os.O_RDONLY)
        try:
            bad(nul, BAD_PARAMS, "neither a file", param="fd", name="devnull")
        finally:
            os.close(nul)
        # A directory cannot come through a pipe; a path and a descriptor
        # are one too many.
        r, t = self.feed(data)
        try:
            bad(r, BAD_PARAMS, "stream", param="format", name="d", format="dir")
        finally:
            os.close(r)
        with open(os.path.join(self.fix, "L.tar"), "rb") as f:
            bad(f.fileno(), BAD_PARAMS, "not both", param="path", name="both", path=os.path.join(self.fix, "L.tar"),
                ref="v2")
        # "fd": true with no descriptor is refused before the method runs.
        self.assertRpcError(BAD_PARAMS, "image.import", {"fd": True, "name": "none"}, param="fd")
        self.assertNothingNew(before, "no descriptor")
        wait_until(lambda: self.daemon.fd_count() == fds_before, timeout=20, message="descriptors back to %d" % fds_before)

    def test_bad_names_and_paths(self):
        before = self.store()
        self.assertRpcError(EXISTS, "image.import", {"path": self.layout, "name": "minimal", "ref": "v2"})
        self.assertRpcError(BAD_PARAMS, "image.import", {"path": self.layout, "name": "bad name", "ref": "v2"},
                            param="name")
        self.assertRpcError(BAD_PARAMS, "image.import", {"path": "relative", "name": "x"}, param="path")
        self.assertRpcError(NOT_FOUND, "image.import", {"path": "/nonexistent/x", "name": "x"})
        self.assertRpcError(BAD_PARAMS, "image.pull", {"ref": "UPPER/Case::bad"}, param="ref")
        self.assertNothingNew(before, "bad names")


@unittest.skipUnless(have(*TOOLS, *REGISTRY_TOOLS),
                     "needs docker-registry, skopeo, umoci, zstd and htpasswd "
                     "(apt-get install docker-registry skopeo umoci zstd apache2-utils)")
class PullTest(SandboxdTestCase):
    registries = []

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root")
        cls.fix = fixtures()
        cls.dir = tempfile.mkdtemp(prefix="sbx-registry-")
        sh("htpasswd -Bbc htpasswd agent s3cret", cls.dir)
        cls.open_port, cls.auth_port = free_port(), free_port()
        cls.registries = [cls.start_registry("open", cls.open_port, False),
                          cls.start_registry("auth", cls.auth_port, True)]
        layout = os.path.join(cls.fix, "L")
        sh("skopeo copy -q --dest-tls-verify=false oci:%s:v2 docker://127.0.0.1:%d/team/img:v2;"
           "skopeo copy -q --dest-tls-verify=false --dest-creds agent:s3cret oci:%s:v2 docker://127.0.0.1:%d/team/img:v2"
           % (layout, cls.open_port, layout, cls.auth_port), cls.dir)
        cls.digest = index_digest(layout, "v2")
        for name, pw in (("auth.json", "s3cret"), ("wrong.json", "nope")):
            import base64
            with open(os.path.join(cls.dir, name), "w") as f:
                json.dump({"auths": {"127.0.0.1:%d" % cls.auth_port:
                                     {"auth": base64.b64encode(("agent:" + pw).encode()).decode()}}}, f)

    @classmethod
    def start_registry(cls, name, port, auth):
        cfg = os.path.join(cls.dir, name + ".yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/%s-data\n"
                    "http:\n  addr: 127.0.0.1:%d\n" % (cls.dir, name, port))
            if auth:
                f.write("auth:\n  htpasswd:\n    realm: test\n    path: %s/htpasswd\n" % cls.dir)
        log = open(os.path.join(cls.dir, name + ".log"), "w")
        p = subprocess.Popen(["docker-registry", "serve", cfg], stdout=log, stderr=log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return p
            except OSError:
                time.sleep(0.1)
        p.kill()
        raise RuntimeError("docker-registry did not start")

    @classmethod
    def tearDownClass(cls):
        for p in cls.registries:
            p.terminate()
            p.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def pull(self, **params):
        return self.call("image.pull", params, timeout=180)

    def layers(self):
        p = os.path.join(self.daemon.state_dir, "layers", "layers", "sha256")
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def test_pull_plain_http_and_run(self):
        ref = "127.0.0.1:%d/team/img:v2" % self.open_port
        img = self.pull(ref=ref, insecure=True)
        self.assertEqual(img["name"], ref)
        self.assertEqual(img["format"], "pull")
        self.assertEqual(img["digest"], self.digest)
        self.assertEqual(img["layers"], 3)
        sb = self.create(image=ref, service=False, user="root", workdir="/")
        self.assertEqual(self.sh(sb["id"], "cat /keep; ls /d"), "k\nz\n")
        # Without insecure, the plain-HTTP registry is refused, saying why.
        err = self.assertRpcError(DENIED, "image.pull", {"ref": ref, "name": "again"}, timeout=180)
        self.assertIn("HTTP", err["message"])

    def test_pull_basic_auth_from_authfile(self):
        ref = "127.0.0.1:%d/team/img:v2" % self.auth_port
        img = self.pull(ref=ref, name="authed", insecure=True, authfile=os.path.join(self.dir, "auth.json"))
        self.assertEqual(img["digest"], self.digest)

    def test_pull_errors_leave_nothing(self):
        before = self.layers()
        ref = "127.0.0.1:%d/team/img:v2" % self.auth_port
        err = self.assertRpcError(DENIED, "image.pull", {"ref": ref, "insecure": True,
                                                          "authfile": os.path.join(self.dir, "wrong.json")},
                                  timeout=180)
        self.assertIn("wrong.json", err["message"])
        err = self.assertRpcError(NOT_FOUND, "image.pull",
                                  {"ref": "127.0.0.1:%d/team/img:nosuchtag" % self.open_port, "insecure": True},
                                  timeout=180)
        self.assertIn("nosuchtag", err["message"])
        err = self.assertRpcError(TIMEOUT, "image.pull", {"ref": "127.0.0.1:%d/team/img:v2" % free_port(),
                                                           "insecure": True}, timeout=180)
        self.assertIn("cannot reach", err["message"])
        self.assertRpcError(EXISTS, "image.pull", {"ref": "127.0.0.1:1/x:y", "name": "minimal"})
        self.assertRpcError(BAD_PARAMS, "image.pull", {"ref": "127.0.0.1:1/x:y", "authfile": "rel.json"},
                            param="authfile")
        self.assertEqual(self.layers(), before)
        self.assertEqual([n for n in os.listdir(os.path.join(self.daemon.state_dir, "images"))
                          if n.startswith("tmp-")], [])


@unittest.skipUnless(have("mmdebstrap", "umoci", "skopeo"), "needs mmdebstrap, umoci and skopeo")
class BuildTest(SandboxdTestCase):
    """image.build: the recipe builder (images/build-recipe.py) writes an
    OCI layout, which is imported. A build that is cached is quick; one
    that is not needs the Debian mirror (skipped when it is unreachable)."""

    def test_build_recipe_and_run(self):
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        recipe = os.path.join(top, "images", "debian")
        if not os.path.exists(os.path.join(recipe, "recipe")):
            self.skipTest("no images/debian recipe in this tree")
        rid = self.rpc.request("image.build", {"recipe": recipe, "name": "deb"})
        reply = self.rpc.wait(rid, 1800)
        err = reply.get("error")
        if err and err["code"] == TIMEOUT:
            self.skipTest("the Debian mirror cannot be reached: %s" % err["message"])
        self.assertIn("result", reply, reply)
        img = reply["result"]
        self.assertEqual(img["name"], "deb")
        self.assertEqual(img["format"], "oci")
        self.assertGreaterEqual(img["layers"], 1)
        phases = {n["params"]["phase"] for n in self.rpc.notifications if n.get("method") == "image.build.progress"}
        self.assertIn("building", phases)
        # The builder's own phases come through, and its layout does not
        # stay beside the image once the layers are stored.
        self.assertTrue(any(p.startswith("build-") for p in phases), phases)
        imgdir = os.path.join(self.daemon.state_dir, "images", img["id"])
        self.assertFalse(os.path.exists(os.path.join(imgdir, "layout")), os.listdir(imgdir))
        sb = self.create(image="deb", service=False)
        self.assertEqual(self.sh(sb["id"], "test -s /etc/debian_version && echo debian"), "debian\n")

    def test_ctl_build_recipe_name(self):
        """sandboxctl image build RECIPE [NAME], as sandboxctl(1) gives it."""
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        recipe = os.path.join(top, "images", "debian")
        rc, out, err = self.ctl("image", "build", recipe, "team/debian:12", timeout=1800)
        if rc != 0 and "mirror cannot be reached" in err:
            self.skipTest("the Debian mirror cannot be reached: %s" % err.strip())
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("team/debian:12\t"), out)
        self.assertEqual(self.call("image.inspect", {"name": "team/debian:12"})["format"], "oci")
        err = self.assertCtlFails(self.ctl("image", "build", recipe, "a", "b"), rc=125)
        self.assertIn("RECIPE", err)

    def test_build_bad_recipes(self):
        before = sorted(os.listdir(os.path.join(self.daemon.state_dir, "images")))
        self.assertRpcError(BAD_PARAMS, "image.build", {"recipe": "/nonexistent/recipe"}, param="recipe")
        self.assertRpcError(BAD_PARAMS, "image.build", {"recipe": "../x"}, param="recipe")
        d = os.path.join(self.daemon.dir, "recipes", "broken")
        os.makedirs(d)
        with open(os.path.join(d, "recipe"), "w") as f:
            f.write("NOT A RECIPE\n")
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        shutil.copy(os.path.join(top, "images", "build-recipe.py"), os.path.join(self.daemon.dir, "recipes"))
        err = self.assertRpcError(BAD_PARAMS, "image.build", {"recipe": d}, param="recipe", timeout=300)
        self.assertIn("failed", err["message"])
        self.assertEqual(sorted(os.listdir(os.path.join(self.daemon.state_dir, "images"))), before)


if __name__ == "__main__":
    main()
