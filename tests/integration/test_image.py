"""image.list/inspect/import/remove and `sandboxctl image`."""

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

from sbxtest import ID_RE, RFC3339_RE, SandboxdTestCase, image_tarball, main, wait_until

NOT_FOUND, EXISTS, BAD_STATE, UNSUPPORTED = 1, 2, 3, 7
BAD_PARAMS = -32602


class ImageTest(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        self.work = os.path.join(self.daemon.dir, "work")
        os.mkdir(self.work)

    def rootfs_dir(self, marker="dir-image"):
        """The minimal image unpacked into a directory, plus /marker."""
        d = os.path.join(self.work, "rootfs-" + marker)
        os.mkdir(d)
        subprocess.run(["tar", "-xzf", image_tarball(), "-C", d, "--numeric-owner"], check=True)
        with open(os.path.join(d, "marker"), "w") as f:
            f.write(marker + "\n")
        return d

    def rootfs_tar(self, marker, compress=None):
        d = self.rootfs_dir(marker)
        out = os.path.join(self.work, marker + ".tar")
        subprocess.run(["tar", "-cf", out, "--numeric-owner", "-C", d, "."], check=True)
        if compress:
            subprocess.run([compress, "-q", out], check=True)
            out += {"gzip": ".gz", "zstd": ".zst", "xz": ".xz"}[compress]
            if compress == "zstd":
                os.unlink(out[:-4])
        return out

    def images(self):
        return sorted(i["name"] for i in self.call("image.list")["images"])

    def assertUsable(self, image, marker):
        sb = self.create(image=image)
        self.assertEqual(sb["image"], image)
        self.assertEqual(self.sh(sb["id"], "cat /marker"), marker + "\n")
        self.call("sandbox.delete", {"sandbox": sb["id"], "force": True})

    def leftover_imports(self):
        return [n for n in os.listdir(os.path.join(self.daemon.state_dir, "images")) if n.startswith("tmp-")]

    def test_list_default_image(self):
        imgs = self.call("image.list")["images"]
        self.assertEqual(len(imgs), 1)
        img = imgs[0]
        self.assertEqual(img["name"], "minimal")
        self.assertRegex(img["id"], ID_RE)
        self.assertGreater(img["size_bytes"], 100000)
        self.assertRegex(img["created_at"], RFC3339_RE)
        self.assertEqual(img["layers"], 1)

    def test_inspect(self):
        img = self.call("image.inspect", {"name": "minimal"})
        self.assertEqual(img, self.call("image.list")["images"][0])
        self.assertEqual(self.call("image.inspect", {"name": img["id"]}), img)

    def test_inspect_missing(self):
        err = self.assertRpcError(NOT_FOUND, "image.inspect", {"name": "nope"})
        self.assertIn("nope", err["message"])

    def test_import_dir(self):
        d = self.rootfs_dir("from-dir")
        img = self.call("image.import", {"name": "fromdir", "path": d, "format": "dir"})
        self.assertEqual(img["name"], "fromdir")
        self.assertRegex(img["id"], ID_RE)
        self.assertGreater(img["size_bytes"], 100000)
        self.assertEqual(self.call("image.inspect", {"name": "fromdir"}), img)
        self.assertEqual((img["format"], img["source"]), ("dir", d))
        self.assertEqual(self.images(), ["fromdir", "minimal"])
        self.assertUsable("fromdir", "from-dir")

    def test_import_dir_auto(self):
        d = self.rootfs_dir("auto-dir")
        self.call("image.import", {"name": "autodir", "path": d})
        self.assertUsable("autodir", "auto-dir")

    def test_import_plain_tar(self):
        t = self.rootfs_tar("plain-tar")
        img = self.call("image.import", {"name": "plain", "path": t, "format": "rootfs-tar"})
        self.assertEqual((img["format"], img["source"]), ("rootfs-tar", t))
        self.assertUsable("plain", "plain-tar")

    def test_import_gzip_tar_auto(self):
        t = self.rootfs_tar("gz-tar", compress="gzip")
        self.call("image.import", {"name": "gz", "path": t, "format": "auto"})
        self.assertUsable("gz", "gz-tar")

    def test_import_zstd_tar(self):
        if not shutil.which("zstd"):
            self.skipTest("zstd not installed")
        t = self.rootfs_tar("zst-tar", compress="zstd")
        self.call("image.import", {"name": "zst", "path": t})
        self.assertUsable("zst", "zst-tar")

    def test_import_name_with_tag(self):
        t = self.rootfs_tar("tagged")
        self.call("image.import", {"name": "library/busy-box_1.0:latest", "path": t})
        self.assertUsable("library/busy-box_1.0:latest", "tagged")

    def test_imported_image_is_independent_of_source(self):
        d = self.rootfs_dir("independent")
        self.call("image.import", {"name": "indep", "path": d})
        shutil.rmtree(d)
        self.assertUsable("indep", "independent")

    def test_import_missing_path(self):
        missing = os.path.join(self.work, "does-not-exist")
        err = self.assertRpcError(NOT_FOUND, "image.import", {"name": "x", "path": missing})
        self.assertIn(missing, err["message"])
        self.assertEqual(self.images(), ["minimal"])

    def test_import_wrong_format(self):
        d = self.rootfs_dir("wrong")
        t = self.rootfs_tar("wrong2")
        self.assertRpcError(BAD_PARAMS, "image.import", {"name": "x", "path": d, "format": "rootfs-tar"},
                            param="format")
        self.assertRpcError(BAD_PARAMS, "image.import", {"name": "x", "path": t, "format": "dir"}, param="format")
        self.assertRpcError(BAD_PARAMS, "image.import", {"name": "x", "path": t, "format": "zip"}, param="format")
        self.assertEqual(self.images(), ["minimal"])
        self.assertEqual(self.leftover_imports(), [])

    def test_import_rootfs_as_layout(self):
        # A plain root file system tar is no OCI layout or docker archive:
        # insisting on one says what it lacks and stores nothing.
        t = self.rootfs_tar("oci")
        for fmt in ("oci", "docker-archive"):
            with self.subTest(format=fmt):
                err = self.assertRpcError(BAD_PARAMS, "image.import", {"name": "x", "path": t, "format": fmt})
                self.assertIn("no index.json", err["message"])
        self.assertEqual(self.images(), ["minimal"])
        self.assertEqual(self.leftover_imports(), [])

    def test_import_corrupt_tarball(self):
        bad = os.path.join(self.work, "bad.tar.gz")
        with open(bad, "wb") as f:
            f.write(b"\x1f\x8b\x08\x00" + os.urandom(5000))
        rid = self.rpc.request("image.import", {"name": "broken", "path": bad})
        reply = self.rpc.wait(rid)
        self.assertIn("error", reply, reply)
        self.assertIsInstance(reply["error"]["code"], int)
        self.assertEqual(self.images(), ["minimal"])
        self.assertEqual(self.leftover_imports(), [])
        self.assertEqual(self.call("system.ping"), {})

    def test_import_not_a_tarball(self):
        txt = os.path.join(self.work, "notes.txt")
        with open(txt, "w") as f:
            f.write("this is not an archive\n" * 100)
        reply = self.rpc.call_reply("image.import", {"name": "text", "path": txt})
        self.assertIn("error", reply, reply)
        self.assertEqual(self.images(), ["minimal"])
        self.assertEqual(self.leftover_imports(), [])

    def hostile_tar(self, name, build):
        """A tar with an /etc directory and whatever build adds."""
        path = os.path.join(self.work, name + ".tar")
        with tarfile.open(path, "w") as t:
            info = tarfile.TarInfo("etc")
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            t.addfile(info)
            build(t)
        return path

    @staticmethod
    def add_file(t, name, data=b"escaped\n"):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))

    def assertImportDenied(self, path, outside):
        reply = self.rpc.call_reply("image.import", {"name": "hostile", "path": path})
        self.assertFalse(os.path.exists(outside), "archive entry was written outside the image: %s" % outside)
        self.assertIn("error", reply, reply)
        self.assertEqual(reply["error"]["code"], 5, reply)
        self.assertEqual(self.images(), ["minimal"])
        self.assertEqual(self.leftover_imports(), [])

    def test_import_refuses_dotdot_entries(self):
        outside = os.path.join(self.daemon.dir, "dotdot-escaped")
        rel = "../" * 30 + outside.lstrip("/")
        self.assertImportDenied(self.hostile_tar("dotdot", lambda t: self.add_file(t, rel)), outside)

    def test_import_refuses_absolute_entries(self):
        outside = os.path.join(self.daemon.dir, "absolute-escaped")
        self.assertImportDenied(self.hostile_tar("abs", lambda t: self.add_file(t, outside)), outside)

    def test_import_refuses_writes_through_symlinks(self):
        target = os.path.join(self.daemon.dir, "symlink-target")
        os.mkdir(target)

        def build(t):
            link = tarfile.TarInfo("escape")
            link.type = tarfile.SYMTYPE
            link.linkname = target
            t.addfile(link)
            self.add_file(t, "escape/planted")
        reply = self.rpc.call_reply("image.import", {"name": "hostile", "path": self.hostile_tar("symlink", build)})
        # Refusing the archive and replacing the symlink are both safe; writing
        # through it is not.
        self.assertEqual(os.listdir(target), [], "archive entry was written through a symlink: %r" % reply)
        if "error" in reply:
            self.assertEqual(reply["error"]["code"], 5, reply)
            self.assertEqual(self.leftover_imports(), [])

    def test_import_duplicate_name(self):
        d = self.rootfs_dir("dup")
        err = self.assertRpcError(EXISTS, "image.import", {"name": "minimal", "path": d})
        self.assertIn("minimal", err["message"])
        self.call("image.import", {"name": "dup", "path": d})
        self.assertRpcError(EXISTS, "image.import", {"name": "dup", "path": d})

    def test_concurrent_import_same_name(self):
        t = self.rootfs_tar("race", compress="gzip")
        c1, c2 = self.daemon.client(), self.daemon.client()
        r1 = c1.request("image.import", {"name": "race", "path": t})
        r2 = c2.request("image.import", {"name": "race", "path": t})
        replies = [c1.wait(r1), c2.wait(r2)]
        ok = [r for r in replies if "result" in r]
        failed = [r for r in replies if "error" in r]
        self.assertEqual(len(ok), 1, replies)
        self.assertEqual(failed[0]["error"]["code"], EXISTS)
        self.assertEqual(self.images(), ["minimal", "race"])

    def test_import_does_not_block_other_requests(self):
        t = self.rootfs_tar("slow", compress="gzip")
        c = self.daemon.client()
        rid = c.request("image.import", {"name": "slow", "path": t})
        self.assertEqual(self.call("system.ping"), {})
        self.assertEqual(c.result(rid)["name"], "slow")

    def test_remove_unused(self):
        d = self.rootfs_dir("rm")
        img = self.call("image.import", {"name": "gone", "path": d})
        self.assertEqual(self.call("image.remove", {"name": "gone"}), {})
        self.assertEqual(self.images(), ["minimal"])
        self.assertRpcError(NOT_FOUND, "image.inspect", {"name": "gone"})
        self.assertRpcError(NOT_FOUND, "sandbox.create", {"image": "gone"})
        wait_until(lambda: not os.path.exists(os.path.join(self.daemon.state_dir, "images", img["id"])), 10)

    def test_remove_by_id(self):
        d = self.rootfs_dir("rmid")
        img = self.call("image.import", {"name": "byid", "path": d})
        self.assertEqual(self.call("image.remove", {"name": img["id"]}), {})
        self.assertEqual(self.images(), ["minimal"])

    def test_remove_missing(self):
        self.assertRpcError(NOT_FOUND, "image.remove", {"name": "nope"})

    def test_remove_in_use(self):
        self.create("user")
        err = self.assertRpcError(BAD_STATE, "image.remove", {"name": "minimal"})
        self.assertIn("minimal", err["message"])
        self.assertRpcError(BAD_STATE, "image.remove", {"name": "minimal", "force": False})
        self.assertEqual(self.images(), ["minimal"])

    def test_remove_in_use_by_stopped_sandbox(self):
        self.create("cold", start=False)
        self.assertRpcError(BAD_STATE, "image.remove", {"name": "minimal"})

    def test_remove_in_use_forced(self):
        self.create("user")
        self.assertEqual(self.call("image.remove", {"name": "minimal", "force": True}), {})
        self.assertEqual(self.images(), [])
        # Removal happens in the background; once it is over, the running
        # sandbox must still work on its image's files.
        trash = os.path.join(self.daemon.state_dir, "trash")
        wait_until(lambda: not os.path.isdir(trash) or not os.listdir(trash), 10)
        self.assertEqual(self.sh("user", "echo still; head -1 /etc/os-release; id -un"),
                         'still\nNAME="sandboxd minimal"\nroot\n')
        self.assertRpcError(NOT_FOUND, "sandbox.create", {})

    def test_start_after_image_force_removed(self):
        self.create("orphaned", start=False)
        self.call("image.remove", {"name": "minimal", "force": True})
        err = self.assertRpcError(NOT_FOUND, "sandbox.start", {"sandbox": "orphaned"})
        self.assertEqual(self.inspect("orphaned")["state"], "stopped")
        self.assertEqual(self.call("sandbox.delete", {"sandbox": "orphaned"}), {})

    def test_reimport_after_remove(self):
        d = self.rootfs_dir("again")
        first = self.call("image.import", {"name": "again", "path": d})
        self.call("image.remove", {"name": "again"})
        second = self.call("image.import", {"name": "again", "path": d})
        self.assertNotEqual(first["id"], second["id"])
        self.assertUsable("again", "again")


class ImageCtlTest(SandboxdTestCase):
    """`sandboxctl image` verbs."""

    def setUp(self):
        super().setUp()
        self.work = os.path.join(self.daemon.dir, "work")
        os.mkdir(self.work)

    def test_ls(self):
        rc, out, err = self.ctl("image", "ls")
        self.assertEqual((rc, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "ID", "DIGEST", "SIZE", "LAYERS", "CREATED"])
        self.assertEqual(lines[1].split()[2], "-")  # a root file system image has no manifest digest
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[1].split()[0], "minimal")
        self.assertEqual(lines[1].split()[1], self.call("image.inspect", {"name": "minimal"})["id"])

    def test_ls_json(self):
        rc, out, err = self.ctl("image", "ls", "--json")
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out), self.call("image.list")["images"])
        rc, out2, err = self.ctl("--json", "image", "ls")
        self.assertEqual(json.loads(out2), json.loads(out))

    def test_inspect(self):
        rc, out, err = self.ctl("image", "inspect", "minimal")
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out), self.call("image.inspect", {"name": "minimal"}))
        self.assertCtlFails(self.ctl("image", "inspect", "nope"))

    def test_import_and_rm(self):
        plain = os.path.join(self.work, "img.tar")
        with gzip.open(image_tarball()) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        rc, out, err = self.ctl("image", "import", "viactl", plain)
        self.assertEqual((rc, out, err), (0, "viactl\n", ""))
        rc, out, err = self.ctl("image", "import", "--format", "rootfs-tar", "viactl2", plain)
        self.assertEqual((rc, out), (0, "viactl2\n"))
        self.assertEqual(self.call("image.inspect", {"name": "viactl2"})["name"], "viactl2")
        rc, out, err = self.ctl("image", "rm", "viactl", "viactl2")
        self.assertEqual((rc, out, err), (0, "viactl\nviactl2\n", ""))
        self.assertEqual([i["name"] for i in self.call("image.list")["images"]], ["minimal"])

    def test_import_relative_path(self):
        d = os.path.join(self.work, "rootfs")
        os.mkdir(d)
        subprocess.run(["tar", "-xzf", image_tarball(), "-C", d], check=True)
        rc, out, err = self.ctl("image", "import", "rel", "rootfs", cwd=self.work)
        self.assertEqual((rc, out, err), (0, "rel\n", ""))
        self.assertEqual(self.call("image.inspect", {"name": "rel"})["name"], "rel")
        sb = self.create(image="rel")
        self.assertEqual(self.sh(sb["id"], "cat /etc/os-release | head -1"), 'NAME="sandboxd minimal"\n')

    def test_import_json(self):
        rc, out, err = self.ctl("image", "import", "--json", "j", image_tarball())
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out), self.call("image.inspect", {"name": "j"}))

    def test_errors(self):
        self.assertCtlFails(self.ctl("image", "import", "x", os.path.join(self.work, "missing")))
        self.assertCtlFails(self.ctl("image", "import", "x", self.work, "--format", "oci"))
        self.assertCtlFails(self.ctl("image", "import", "onlyname"))
        self.assertCtlFails(self.ctl("image", "rm", "nope"))
        self.assertCtlFails(self.ctl("image", "frob"))
        self.assertCtlFails(self.ctl("image", "ls", "--bogus"))
        self.create("user")
        self.assertCtlFails(self.ctl("image", "rm", "minimal"))
        rc, out, err = self.ctl("image", "rm", "-f", "minimal")
        self.assertEqual((rc, out), (0, "minimal\n"))


def duplicate_names(path):
    """Names that occur more than once in a tarball, as tarfile reads them
    ("./a/" and "./a" are one name)."""
    seen, dups = set(), set()
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            name = os.path.normpath(m.name)
            (dups if name in seen else seen).add(name)
    return sorted(dups)


class ImageTarballTest(SandboxdTestCase):
    """The default image as other tools read it: every name once."""

    start_daemon = False

    def test_minimal_image_has_each_name_once(self):
        path = image_tarball()
        if not path:
            self.skipTest("images/minimal.tar.gz is not built")
        self.assertEqual(duplicate_names(path), [])
        if shutil.which("bsdtar"):
            names = subprocess.run(["bsdtar", "-tf", path], capture_output=True, text=True, check=True).stdout
            names = [os.path.normpath(n) for n in names.splitlines()]
            self.assertEqual(sorted(n for n in set(names) if names.count(n) > 1), [])
        with tarfile.open(path) as tf:
            home = tf.getmember("./home/sandbox")
            self.assertEqual((home.uid, home.gid, home.isdir()), (1000, 1000, True))
            self.assertEqual((tf.getmember("./etc/passwd").uid, tf.getmember("./home").uid), (0, 0))

    def test_podman_imports_minimal_image(self):
        path = image_tarball()
        if not path:
            self.skipTest("images/minimal.tar.gz is not built")
        if not shutil.which("podman"):
            self.skipTest("podman is not installed (Debian package podman)")
        store = tempfile.mkdtemp(prefix="sbxtest-podman-")
        self.addCleanup(shutil.rmtree, store, True)
        # A private store: nothing of this test lands in the host's images.
        podman = ["podman", "--root", os.path.join(store, "root"), "--runroot", os.path.join(store, "run"),
                  "--storage-driver", "vfs"]
        p = subprocess.run(podman + ["import", path, "sbxtest-minimal"], capture_output=True, text=True, timeout=120)
        self.addCleanup(subprocess.run, podman + ["system", "reset", "--force"], capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    main()
