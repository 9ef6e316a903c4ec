"""The debian and agent images built from images/*/recipe, and the agent
image at work in a real sandbox, reached only through preview links.

The images are built once per run with images/build-recipe.py and cached
under $SANDBOXD_IMAGE_CACHE (default /var/cache/sandboxd-images), keyed by
the recipes, the builder and the mirrors, so later runs reuse them; each is
built at most once a run. Both are written into one OCI image layout, read
back with skopeo; small recipes of Debian's essential packages go through
umoci. The agent image is imported into a daemon from that layout, as a
layered image whose command (supervisord) the daemon starts as the
sandbox's service; one sandbox is created from it with the environment
an agent backend (SUNA) passes, and supervisord is also started the way
that backend starts it, in a session, where it must fail harmlessly.
Every test is skipped, saying so, only when the host's Debian mirror
cannot be reached and nothing is cached.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import uuid
import zipfile

import agentproto as ap
import sbxtest
from sbxtest import Daemon, SRCDIR, wait_until

BUILDER = os.path.join(SRCDIR, "images", "build-recipe.py")
CACHE = os.environ.get("SANDBOXD_IMAGE_CACHE", "/var/cache/sandboxd-images")
EX_MIRROR = 75
SUPERVISORD = "exec /usr/bin/supervisord -n -c /etc/supervisor/conf.d/supervisord.conf"
VNC_PASSWORD = str(uuid.uuid4())
# What SUNA passes to every sandbox it creates (empty values on purpose).
SUNA_ENV = {
    "CHROME_PERSISTENT_SESSION": "true", "RESOLUTION": "1048x768x24", "RESOLUTION_WIDTH": "1048",
    "RESOLUTION_HEIGHT": "768", "VNC_PASSWORD": VNC_PASSWORD, "ANONYMIZED_TELEMETRY": "false",
    "CHROME_PATH": "", "CHROME_USER_DATA": "", "CHROME_DEBUGGING_PORT": "9222",
    "CHROME_DEBUGGING_HOST": "localhost", "CHROME_CDP": "",
}
PAGE = """<!doctype html><html><head><title>sandboxd agent test</title>
<style>body{margin:0;background:#fff}div{position:absolute;top:0;width:200px;height:200px}</style></head>
<body><div style="left:0;background:rgb(255,0,128)"></div><div style="left:300px;background:rgb(0,160,0)"></div>
</body></html>"""

_state = {}


def build(recipe, cache=CACHE, extra=()):
    """Run the builder; returns its JSON result list, or raises SkipTest
    when the mirror cannot be reached."""
    p = subprocess.run([sys.executable, BUILDER, "--json", "--cache", cache] + list(extra) +
                       [recipe if os.path.isabs(recipe) else os.path.join(SRCDIR, "images", recipe)],
                       capture_output=True, text=True)
    if p.returncode == EX_MIRROR:
        raise unittest.SkipTest("the Debian mirror cannot be reached, nothing cached: %s" % p.stderr.strip())
    if p.returncode != 0:
        raise AssertionError("build-recipe.py %s failed (%d):\n%s" % (recipe, p.returncode, p.stderr[-3000:]))
    return json.loads(p.stdout)


def images():
    """{name: info} of debian and agent, built (or found in the cache) once."""
    if "skip" in _state:
        raise unittest.SkipTest(_state["skip"])
    if "images" not in _state:
        if shutil.which("mmdebstrap") is None:
            # Installing it is a set-up step of the host (README); a test
            # run does not install packages.
            raise AssertionError("mmdebstrap is not installed: apt-get install mmdebstrap")
        try:
            t0 = time.monotonic()
            res = build("agent")
            _state["build_s"] = time.monotonic() - t0
        except unittest.SkipTest as e:
            _state["skip"] = str(e)
            raise
        imgs = {r["name"]: r for r in res}
        # Both images in one OCI layout, as an importer receives them; the
        # second build finds everything in the cache and only writes.
        layout = tempfile.mkdtemp(prefix="sbxtest-%d-layout-" % os.getpid(), dir="/var/tmp")
        unittest.addModuleCleanup(shutil.rmtree, layout, True)
        for name in ("agent", "debian"):
            top = build(name, extra=["--oci-layout", layout])[-1]
            imgs[name]["manifest_digest"] = top["manifest_digest"]
        _state["layout"] = layout
        _state["images"] = imgs
    return _state["images"]


def check_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root: mmdebstrap and sandboxd")


def tar_names(path):
    with tarfile.open(path, "r:") as tf:
        return {m.name: m for m in tf}


class RecipeTest(unittest.TestCase):
    """The recipe reader, and what the builder makes of the two recipes."""

    def check(self, text, files=(), base=None):
        with tempfile.TemporaryDirectory() as d:
            if base:
                os.mkdir(os.path.join(d, "base"))
                with open(os.path.join(d, "base", "recipe"), "w") as f:
                    f.write(base)
            os.mkdir(os.path.join(d, "img"))
            with open(os.path.join(d, "img", "recipe"), "w") as f:
                f.write(text)
            for name in files:
                with open(os.path.join(d, "img", name), "w") as f:
                    f.write("x\n")
            p = subprocess.run([sys.executable, BUILDER, "--check", os.path.join(d, "img")],
                               capture_output=True, text=True)
            return p.returncode, p.stdout, p.stderr

    def test_recipe_errors_name_the_line(self):
        cases = [
            ("SUITE=bookworm\nFROM=debian\n", "recipe:2: unknown key FROM"),
            ("PACKAGES=bash\n", "needs SUITE"),
            ("SUITE=bookworm\nPACKAGES=bash Bad_Name\n", "recipe:2: bad package name 'Bad_Name'"),
            ("SUITE=bookworm\nUSER=root\nUSER=nobody\n", "recipe:3: USER given twice"),
            ("SUITE=bookworm\nADD=../etc/passwd /x 0644\n", "must be a file of the recipe directory"),
            ("SUITE=bookworm\nADD=missing /x 0644\n", "is not a regular file"),
            ("SUITE=bookworm\nWORKDIR=relative\n", "WORKDIR must be an absolute path"),
            ("SUITE=bookworm\nWORKDIR=/a/../b\n", "must not contain . or .."),
            ("SUITE=bookworm\nEXPOSE=70000\n", "bad port '70000'"),
            ("SUITE=bookworm\nENV=1X=y\n", "ENV takes NAME=value"),
            ("SUITE=bookworm\njust words\n", "recipe:2: expected KEY=value"),
            ("BASE=img\n", "bad BASE 'img'"),
            ("BASE=missing\n", "No such file or directory"),
            ("SUITE=bookworm\nVARIANT=everything\n", "VARIANT must be one of"),
            ("SUITE=bookworm\nREMOVE=etc/motd\n", "REMOVE must be an absolute path"),
            ("SUITE=bookworm\nREMOVE=/usr/../etc\n", "must not contain . or .."),
            ("SUITE=bookworm\nREMOVE=/\n", "REMOVE of / would leave nothing"),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                rc, out, err = self.check(text)
                self.assertEqual(rc, 1, (text, out, err))
                self.assertIn(want, err)
                self.assertEqual(err.count("\n"), 1, err)
        rc, _, err = self.check("BASE=base\nSUITE=trixie\n", base="SUITE=bookworm\n")
        self.assertIn("SUITE trixie differs from its base's bookworm", err)

    def test_config_merges_base_and_own_values(self):
        rc, out, err = self.check("BASE=base\nENV=A=own\nENV=C=3\nEXPOSE=80 8080/tcp\nCMD=/bin/sh -c true\n"
                                  "ADD=f /etc/f 0600\n", files=["f"],
                                  base="SUITE=bookworm\nENV=A=base\nENV=B=2\nWORKDIR=/w\nEXPOSE=22\n")
        self.assertEqual(rc, 0, err)
        cfg = json.loads(out)
        self.assertEqual(cfg["Env"], ["B=2", "A=own", "C=3"])
        self.assertEqual(cfg["WorkingDir"], "/w")
        self.assertEqual(cfg["User"], "root")
        self.assertEqual(cfg["Cmd"], ["/bin/sh", "-c", "true"])
        self.assertEqual(sorted(cfg["ExposedPorts"]), ["22/tcp", "80/tcp", "8080/tcp"])


def builder_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_recipe", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class LayerDiffTest(unittest.TestCase):
    """The layer arithmetic of the builder on small trees made here: what a
    recipe on a base keeps, removes and must carry along."""

    EPOCH = 1704067200

    @staticmethod
    def make_tar(path, entries):
        """entries: (name, kind, data-or-target, mode, mtime)"""
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
            for name, kind, data, mode, mtime in entries:
                ti = tarfile.TarInfo(name)
                ti.mode, ti.mtime, ti.uname, ti.gname = mode, mtime, "someone", "group"
                if kind == "dir":
                    ti.type = tarfile.DIRTYPE
                    tf.addfile(ti)
                elif kind == "file":
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
                elif kind == "symlink":
                    ti.type, ti.linkname = tarfile.SYMTYPE, data
                    tf.addfile(ti)
                elif kind == "hardlink":
                    ti.type, ti.linkname = tarfile.LNKTYPE, data
                    tf.addfile(ti)
                elif kind == "chr":
                    ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
                    tf.addfile(ti)

    def test_diff_whiteouts_parents_and_hard_links(self):
        m = builder_module()
        t = self.EPOCH - 100
        later = self.EPOCH + 5000  # clamped to the epoch
        base = [("./", "dir", None, 0o755, t), ("./etc", "dir", None, 0o755, t),
                ("./etc/keep", "file", b"same", 0o644, t), ("./etc/change", "file", b"old", 0o644, t),
                ("./etc/gone", "file", b"x", 0o644, t), ("./opt", "dir", None, 0o755, t),
                ("./opt/tree", "dir", None, 0o755, t), ("./opt/tree/a", "file", b"a", 0o644, t),
                ("./usr", "dir", None, 0o755, t), ("./usr/bin", "dir", None, 0o755, t),
                ("./usr/bin/tool", "file", b"tool", 0o755, t), ("./usr/bin/same-link", "symlink", "tool", 0o777, t),
                ("./dev", "dir", None, 0o755, t), ("./dev/null", "chr", None, 0o666, t)]
        full = [("./", "dir", None, 0o755, t), ("./etc", "dir", None, 0o755, t),
                ("./etc/keep", "file", b"same", 0o644, t), ("./etc/change", "file", b"new", 0o644, later),
                ("./opt", "dir", None, 0o755, t),
                ("./usr", "dir", None, 0o755, t), ("./usr/bin", "dir", None, 0o755, t),
                ("./usr/bin/tool", "file", b"tool", 0o755, t), ("./usr/bin/tool2", "hardlink", "usr/bin/tool", 0o755, t),
                ("./usr/bin/same-link", "symlink", "tool", 0o777, t),
                ("./usr/share", "dir", None, 0o755, later), ("./usr/share/new", "file", b"n", 0o600, later),
                ("./dev", "dir", None, 0o755, t), ("./dev/null", "chr", None, 0o666, t)]
        with tempfile.TemporaryDirectory() as d:
            bp, fp = os.path.join(d, "base.tar"), os.path.join(d, "full.tar")
            self.make_tar(bp, base)
            self.make_tar(fp, full)
            bidx, fidx = m.index_tar(bp, self.EPOCH), m.index_tar(fp, self.EPOCH)
            self.assertNotIn("dev/null", fidx)  # device nodes are the runtime's
            entries, whiteouts = m.diff_layer(bidx, fidx)
            self.assertEqual(sorted(whiteouts), ["etc/.wh.gone", "opt/.wh.tree"])
            names = sorted(e.name for e in entries)
            # changed and new entries, the directories above them, and the
            # file a new hard link points to
            self.assertEqual(names, ["etc", "etc/change", "opt", "usr", "usr/bin", "usr/bin/tool", "usr/bin/tool2",
                                     "usr/share", "usr/share/new"])
            self.assertEqual(m.apply_layer(bidx, entries, whiteouts), {n: e.sig() for n, e in fidx.items()})
            layer = os.path.join(d, "layer.tar")
            m.write_tar(layer, fp, entries, whiteouts)
            with tarfile.open(layer) as tf:
                members = tf.getmembers()
                order = [x.name for x in members]
                self.assertEqual(order, ["etc", "etc/.wh.gone", "etc/change", "opt", "opt/.wh.tree", "usr", "usr/bin",
                                         "usr/bin/tool", "usr/bin/tool2", "usr/share", "usr/share/new"])
                for x in members:
                    self.assertEqual((x.uname, x.gname), ("", ""))
                    self.assertLessEqual(x.mtime, self.EPOCH)
                self.assertEqual(tf.extractfile("etc/change").read(), b"new")
                self.assertTrue(tf.getmember("usr/bin/tool2").islnk())
            # The same input gives the same bytes.
            again = os.path.join(d, "again.tar")
            m.write_tar(again, fp, entries, whiteouts)
            self.assertEqual(m.sha256_file(again), m.sha256_file(layer))

    def test_a_wrong_layer_is_caught(self):
        m = builder_module()
        t = self.EPOCH - 1
        with tempfile.TemporaryDirectory() as d:
            bp, fp = os.path.join(d, "base.tar"), os.path.join(d, "full.tar")
            self.make_tar(bp, [("a", "file", b"1", 0o644, t), ("b", "file", b"2", 0o644, t)])
            self.make_tar(fp, [("a", "file", b"1", 0o644, t)])
            bidx, fidx = m.index_tar(bp, self.EPOCH), m.index_tar(fp, self.EPOCH)
            entries, whiteouts = m.diff_layer(bidx, fidx)
            self.assertEqual(whiteouts, [".wh.b"])
            self.assertNotEqual(m.apply_layer(bidx, entries, []), {n: e.sig() for n, e in fidx.items()})


def run_tool(argv, **kw):
    """Run another project's tool on what the builder wrote; skip when the
    host lacks it (contrib/install-deps.sh installs both)."""
    if shutil.which(argv[0]) is None:
        raise unittest.SkipTest("%s is not installed (contrib/install-deps.sh installs it)" % argv[0])
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(argv), p.returncode, p.stderr[-3000:]))
    return p.stdout


def umoci_unpack(layout, tag, bundle):
    """Unpack with umoci, as root, the way an OCI runtime's tooling would;
    returns (rootfs path, the runtime config umoci made of the image's)."""
    run_tool(["umoci", "unpack", "--image", "%s:%s" % (layout, tag), bundle])
    with open(os.path.join(bundle, "config.json")) as f:
        return os.path.join(bundle, "rootfs"), json.load(f)


def layout_index(layout):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    return {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}


def layout_blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


class OciLayoutTest(unittest.TestCase):
    """The OCI image the builder writes, from layers made here of small
    trees (no mmdebstrap): read back by skopeo and unpacked by umoci."""

    EPOCH = 1704067200
    CONFIG = {"Env": ["PATH=/usr/bin:/bin", "GREETING=hi"], "User": "root", "WorkingDir": "/work",
              "Cmd": ["/bin/serve", "--port", "8080"], "ExposedPorts": {"8080/tcp": {}}}

    def setUp(self):
        self.m = builder_module()
        self.tmp = tempfile.mkdtemp(prefix="sbxtest-oci-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        t = self.EPOCH - 10
        base = [("etc", "dir", None, 0o755, t), ("etc/motd", "file", b"welcome\n", 0o644, t),
                ("etc/keep", "file", b"keep\n", 0o644, t), ("usr", "dir", None, 0o755, t),
                ("etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\n", 0o644, t),
                ("etc/group", "file", b"root:x:0:\n", 0o644, t),
                ("usr/share", "dir", None, 0o755, t), ("usr/share/doc", "dir", None, 0o755, t),
                ("usr/share/doc/a", "file", b"a", 0o644, t), ("bin", "dir", None, 0o755, t),
                ("bin/tool", "file", b"#!/bin/sh\n", 0o755, t)]
        full = [e for e in base if not e[0].startswith("usr/share/doc") and e[0] != "etc/motd"]
        full += [("etc/added", "file", b"added\n", 0o600, t), ("bin/tool", "file", b"#!/bin/sh\nv2\n", 0o755, t)]
        full = [e for e in full if not (e[0] == "bin/tool" and e[2] == b"#!/bin/sh\n")]
        bp, fp = os.path.join(self.tmp, "base.tar"), os.path.join(self.tmp, "full.tar")
        LayerDiffTest.make_tar(bp, base)
        LayerDiffTest.make_tar(fp, full)
        bidx, fidx = self.m.index_tar(bp, self.EPOCH), self.m.index_tar(fp, self.EPOCH)
        base_layer = os.path.join(self.tmp, "base-layer.tar")
        self.m.write_tar(base_layer, bp, bidx.values())
        entries, whiteouts = self.m.diff_layer(bidx, fidx)
        self.assertEqual(sorted(whiteouts), ["etc/.wh.motd", "usr/share/.wh.doc"])
        top_layer = os.path.join(self.tmp, "top-layer.tar")
        self.m.write_tar(top_layer, fp, entries, whiteouts)
        info = lambda name, path: {"name": name, "layer_path": path, "layer_bytes": os.path.getsize(path),
                                   "layer_digest": "sha256:" + self.m.sha256_file(path)}
        self.chain = [info("base", base_layer), info("top", top_layer)]

    def image(self, chain=None, config=None):
        return self.m.oci_image(chain or self.chain, config or self.CONFIG, self.EPOCH)

    def write(self, out, tag, image=None):
        return self.m.write_layout(out, tag, image or self.image(), self.m.Progress(False))

    def test_skopeo_reads_layout_and_archive(self):
        out = os.path.join(self.tmp, "layout")
        desc = self.write(out, "top")
        for ref in ("oci:%s:top" % out, "oci-archive:%s" % self.archive()):
            with self.subTest(ref=ref):
                raw = json.loads(run_tool(["skopeo", "inspect", "--raw", ref]))
                self.assertEqual([l["digest"] for l in raw["layers"]], [c["layer_digest"] for c in self.chain])
                self.assertEqual([l["mediaType"] for l in raw["layers"]],
                                 ["application/vnd.oci.image.layer.v1.tar"] * 2)
                inspected = json.loads(run_tool(["skopeo", "inspect", ref]))
                self.assertEqual(inspected["Digest"], desc["digest"])
                self.assertEqual(inspected["Created"], "2024-01-01T00:00:00Z")
                cfg = json.loads(run_tool(["skopeo", "inspect", "--config", ref]))
                self.assertEqual(cfg["config"], self.CONFIG)
                self.assertEqual(cfg["rootfs"]["diff_ids"], [c["layer_digest"] for c in self.chain])

    def archive(self, name="image.tar"):
        path = os.path.join(self.tmp, name)
        self.m.write_archive(path, "top", self.image(), self.EPOCH, self.m.Progress(False))
        return path

    def test_umoci_applies_layers_and_whiteouts(self):
        out = os.path.join(self.tmp, "layout")
        self.write(out, "top")
        rootfs, spec = umoci_unpack(out, "top", os.path.join(self.tmp, "bundle"))
        found = set()
        for dirpath, dirs, files in os.walk(rootfs):
            for n in dirs + files:
                found.add(os.path.relpath(os.path.join(dirpath, n), rootfs))
        self.assertEqual(found, {"etc", "etc/keep", "etc/added", "etc/passwd", "etc/group", "usr", "usr/share", "bin",
                                 "bin/tool"})
        with open(os.path.join(rootfs, "bin/tool"), "rb") as f:
            self.assertEqual(f.read(), b"#!/bin/sh\nv2\n")
        self.assertEqual(os.stat(os.path.join(rootfs, "etc/added")).st_mode & 0o777, 0o600)
        self.assertEqual(spec["process"]["args"], self.CONFIG["Cmd"])
        self.assertEqual(spec["process"]["cwd"], "/work")
        self.assertIn("GREETING=hi", spec["process"]["env"])

    def test_same_input_same_bytes(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        da, db = self.write(a, "top"), self.write(b, "top")
        self.assertEqual(da, db)
        for name in ("index.json", "oci-layout"):
            with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), name)
        self.assertEqual(sorted(os.listdir(os.path.join(a, "blobs", "sha256"))),
                         sorted(os.listdir(os.path.join(b, "blobs", "sha256"))))
        self.assertEqual(self.m.sha256_file(self.archive("1.tar")), self.m.sha256_file(self.archive("2.tar")))
        # Every blob is what its name says.
        for name in os.listdir(os.path.join(a, "blobs", "sha256")):
            self.assertEqual(self.m.sha256_file(os.path.join(a, "blobs", "sha256", name)), name)
        cfg = json.loads(layout_blob(a, json.loads(layout_blob(a, da["digest"]))["config"]["digest"]))
        self.assertEqual(cfg["created"], "2024-01-01T00:00:00Z")
        self.assertEqual([h["created_by"] for h in cfg["history"]], ["sandboxd recipe base", "sandboxd recipe top"])

    def test_images_share_a_layout_and_their_base_layer(self):
        out = os.path.join(self.tmp, "layout")
        self.write(out, "base", self.image(self.chain[:1], {"Cmd": ["/bin/sh"]}))
        first = self.write(out, "top")
        idx = layout_index(out)
        self.assertEqual(sorted(idx), ["base", "top"])
        base_m = json.loads(layout_blob(out, idx["base"]["digest"]))
        top_m = json.loads(layout_blob(out, idx["top"]["digest"]))
        self.assertEqual(base_m["layers"][0], top_m["layers"][0])
        # Naming an image again replaces it, and what only the old one
        # used goes away; the shared layers stay.
        old_cfg = top_m["config"]["digest"]
        again = self.write(out, "top", self.image(config=dict(self.CONFIG, Cmd=["/bin/other"])))
        self.assertNotEqual(again["digest"], first["digest"])
        idx = layout_index(out)
        self.assertEqual((sorted(idx), idx["top"]["digest"]), (["base", "top"], again["digest"]))
        blobs = set(os.listdir(os.path.join(out, "blobs", "sha256")))
        self.assertNotIn(first["digest"].split(":")[1], blobs)
        self.assertNotIn(old_cfg.split(":")[1], blobs)
        for c in self.chain:
            self.assertIn(c["layer_digest"].split(":")[1], blobs)
        self.assertEqual(json.loads(run_tool(["skopeo", "inspect", "oci:%s:base" % out]))["Layers"],
                         [self.chain[0]["layer_digest"]])

    def test_prune_keeps_the_newest_other_result_and_no_unfinished_one(self):
        cache = os.path.join(self.tmp, "cache")
        entries = ["img-%016x" % i for i in range(4)] + ["img-%016x.tmp-123" % 9, "other-%016x" % 1,
                                                           "img-notakey", "debs"]
        for i, e in enumerate(entries):
            os.makedirs(os.path.join(cache, e))
            os.utime(os.path.join(cache, e), (1000 + i, 1000 + i))
        self.m.prune(cache, "img", os.path.join(cache, "img-%016x" % 0))
        self.assertEqual(sorted(os.listdir(cache)), sorted(["img-%016x" % 0, "img-%016x" % 3, "other-%016x" % 1,
                                                            "img-notakey", "debs"]))

    def cli(self, *args):
        p = subprocess.run([sys.executable, BUILDER] + list(args), capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    def test_cli_refuses_bad_outputs_before_building(self):
        rdir = os.path.join(self.tmp, "img")
        os.mkdir(rdir)
        with open(os.path.join(rdir, "recipe"), "w") as f:
            f.write("SUITE=bookworm\n")
        cache = os.path.join(self.tmp, "cache")
        notlayout = os.path.join(self.tmp, "full-of-things")
        os.mkdir(notlayout)
        with open(os.path.join(notlayout, "precious"), "w") as f:
            f.write("x")
        cases = [(["--oci-layout", notlayout], 1, "neither empty nor an OCI image layout"),
                 (["--oci-layout", os.path.join(self.tmp, "no", "such")], 1, "no such directory"),
                 (["--oci-archive", self.tmp], 1, "is a directory"),
                 (["--oci-layout", os.path.join(self.tmp, "l"), "--tag", "Bad Name"], 1,
                  "is not a valid image reference name"),
                 (["--tag", "x"], 2, "--tag names the image in --oci-layout or --oci-archive"),
                 (["--progress", "--json"], 2, "not allowed with")]
        for args, status, msg in cases:
            with self.subTest(args=args):
                rc, out, err = self.cli("--cache", cache, *(args + [rdir]))
                self.assertEqual(rc, status, err)
                self.assertIn(msg, err)
                self.assertFalse(os.path.exists(cache), "a build started")
        with open(os.path.join(notlayout, "precious")) as f:
            self.assertEqual(f.read(), "x")
        # With --progress the error is the last line of stdout too.
        rc, out, err = self.cli("--progress", "--cache", cache, os.path.join(self.tmp, "missing"))
        self.assertEqual(rc, 1)
        last = json.loads(out.splitlines()[-1])
        self.assertEqual((last["phase"], last["status"], last["bytes"]), ("error", 1, 0))
        self.assertIn("No such file or directory", last["message"])


class ImageBuildTest(unittest.TestCase):
    """The layers the two recipes give."""

    def setUp(self):
        check_root()
        self.images = images()

    def test_agent_layer_holds_only_what_debian_lacks(self):
        deb, agent = self.images["debian"], self.images["agent"]
        self.assertEqual(agent["diff_ids"], [deb["layer_digest"], agent["layer_digest"]])
        self.assertLess(agent["layer_bytes"], agent["rootfs_bytes"])
        names = tar_names(agent["layer_path"])
        self.assertIn("usr/lib/chromium/chromium", names)
        self.assertIn("etc/supervisor/conf.d/supervisord.conf", names)
        self.assertEqual(names["etc/supervisor/conf.d/supervisord.conf"].mode, 0o644)
        self.assertEqual(names["usr/local/lib/sandboxd-agent/chromium.sh"].mode, 0o755)
        # Files of the base that the agent recipe left alone are not in it.
        for unchanged in ("usr/bin/bash", "usr/bin/python3.11", "usr/bin/node"):
            self.assertNotIn(unchanged, names)
        # ... but the package database the installs changed is.
        self.assertIn("var/lib/dpkg/status", names)
        for m in names.values():
            self.assertFalse(m.ischr() or m.isblk(), m.name)
            self.assertLessEqual(m.mtime, agent["epoch"], m.name)
            self.assertEqual((m.uname, m.gname), ("", ""), m.name)

    def test_images_hold_what_the_recipes_ask(self):
        deb = self.images["debian"]
        with open(os.path.join(deb["dir"], "packages.txt")) as f:
            pkgs = {l.split("=")[0] for l in f.read().split()}
        for p in ("bash", "python3", "python3-pip", "python3-venv", "nodejs", "npm", "git", "curl",
                  "ca-certificates", "procps", "tmux", "jq"):
            self.assertIn(p, pkgs)
        with open(os.path.join(self.images["agent"]["dir"], "packages.txt")) as f:
            pkgs = {l.split("=")[0] for l in f.read().split()}
        for p in ("chromium", "xvfb", "x11vnc", "novnc", "websockify", "supervisor", "poppler-utils",
                  "fonts-liberation"):
            self.assertIn(p, pkgs)
        names = tar_names(deb["rootfs"])
        self.assertIn("workspace", names)
        self.assertTrue(names["workspace"].isdir())
        for gone in ("etc/resolv.conf", "etc/hostname", "var/log/dpkg.log", "dev/null"):
            self.assertNotIn(gone, names)

    def test_oci_layout_holds_both_images_sharing_debian(self):
        layout = _state["layout"]
        idx = layout_index(layout)
        self.assertEqual(sorted(idx), ["agent", "debian"])
        for name in ("agent", "debian"):
            self.assertEqual(idx[name]["digest"], self.images[name]["manifest_digest"])
        agent_m = json.loads(layout_blob(layout, idx["agent"]["digest"]))
        deb_m = json.loads(layout_blob(layout, idx["debian"]["digest"]))
        # The agent image's bottom layer is the debian image's, the same blob.
        self.assertEqual([l["digest"] for l in agent_m["layers"]], self.images["agent"]["diff_ids"])
        self.assertEqual(agent_m["layers"][0], deb_m["layers"][0])
        self.assertEqual(len(os.listdir(os.path.join(layout, "blobs", "sha256"))), 2 * 2 + 2)
        # What another project's tool reads in it.
        ref = "oci:%s:agent" % layout
        self.assertEqual(json.loads(run_tool(["skopeo", "inspect", ref]))["Layers"], self.images["agent"]["diff_ids"])
        cfg = json.loads(run_tool(["skopeo", "inspect", "--config", ref]))
        self.assertEqual(cfg["created"], "2024-01-01T00:00:00Z")
        self.assertEqual(cfg["rootfs"]["diff_ids"], self.images["agent"]["diff_ids"])
        c = cfg["config"]
        self.assertEqual(c["Cmd"], ["/usr/bin/supervisord", "-n", "-c", "/etc/supervisor/conf.d/supervisord.conf"])
        self.assertEqual((c["WorkingDir"], c["User"]), ("/workspace", "root"))
        for e in ("DISPLAY=:99", "RESOLUTION=1024x768x24", "CHROME_DEBUGGING_PORT=9222", "LANG=C.UTF-8"):
            self.assertIn(e, c["Env"])
        self.assertEqual(sorted(c["ExposedPorts"]), ["6080/tcp", "8080/tcp", "9222/tcp"])
        deb = json.loads(run_tool(["skopeo", "inspect", "--config", "oci:%s:debian" % layout]))["config"]
        self.assertEqual((deb["Cmd"], deb["WorkingDir"]), (["/bin/bash"], "/workspace"))
        self.assertNotIn("ExposedPorts", deb)

    def test_debian_builds_reproducibly(self):
        """A new build of the debian recipe, from scratch, gives the layer
        and manifest digests of the one in the cache. A run that built
        debian itself leaves the comparison to the next run (each image is
        built at most once a run), unless SBX_TEST_IMAGE_REBUILD=1.
        Packages are shared with the cache."""
        deb = self.images["debian"]
        if not deb["cached"] and os.environ.get("SBX_TEST_IMAGE_REBUILD") != "1":
            self.skipTest("debian was built in this run; the next run compares a new build with it "
                          "(SBX_TEST_IMAGE_REBUILD=1: build it a second time now)")
        with tempfile.TemporaryDirectory(prefix="sbxtest-%d-repro-" % os.getpid(), dir="/var/tmp") as tmp:
            again = build("debian", cache=tmp, extra=["--debs", os.path.join(CACHE, "debs")])[0]
            with open(os.path.join(deb["dir"], "packages.txt")) as f:
                cached_pkgs = f.read()
            with open(os.path.join(again["dir"], "packages.txt")) as f:
                new_pkgs = f.read()
            if cached_pkgs != new_pkgs:
                # The mirror moved on since the cached build: compare two
                # fresh builds instead.
                deb = again
                shutil.move(again["dir"], again["dir"] + ".first")
                again = build("debian", cache=tmp, extra=["--debs", os.path.join(CACHE, "debs"), "--force"])[0]
            self.assertEqual(again["layer_digest"], deb["layer_digest"])
            self.assertEqual(again["rootfs_digest"], deb["rootfs_digest"])
            self.assertEqual(again["manifest_digest"], deb["manifest_digest"])


class SmallRecipeTest(unittest.TestCase):
    """Two small recipes through mmdebstrap: a base of Debian's essential
    packages and one on it that removes, adds and configures. Built twice,
    the top one gives the same layer and manifest digests; umoci applies
    the layers (whiteouts included) and makes a runtime config of the
    image's. Results stay in the cache under stable keys, so a later run
    builds only the top one, once (forced), and compares with the cached."""

    def setUp(self):
        check_root()
        if "skip" in _state:
            raise unittest.SkipTest(_state["skip"])
        if shutil.which("mmdebstrap") is None:
            raise AssertionError("mmdebstrap is not installed: apt-get install mmdebstrap")

    def test_built_twice_the_same_and_unpacked_by_umoci(self):
        with tempfile.TemporaryDirectory(prefix="sbxtest-%d-recipe-" % os.getpid(), dir="/var/tmp") as tmp:
            files = {"sbxtest-base/recipe": "SUITE=bookworm\nVARIANT=essential\nENV=PATH=/usr/bin:/bin\n"
                                            "CMD=/bin/sh\n",
                     "sbxtest-top/recipe": "BASE=sbxtest-base\nREMOVE=/etc/motd\nREMOVE=/usr/share/doc/dash\n"
                                           "ADD=note.txt /opt/sbxtest/note.txt 0640\nENV=NOTE=/opt/sbxtest/note.txt\n"
                                           "WORKDIR=/srv/work\nEXPOSE=8000\n",
                     "sbxtest-top/note.txt": "added by a recipe\n"}
            for path, text in files.items():
                os.makedirs(os.path.join(tmp, os.path.dirname(path)), exist_ok=True)
                with open(os.path.join(tmp, path), "w") as f:
                    f.write(text)
            top = os.path.join(tmp, "sbxtest-top")
            a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
            try:
                first = build(top, extra=["--oci-layout", a])
            except unittest.SkipTest as e:
                _state["skip"] = str(e)
                raise
            second = build(top, extra=["--oci-layout", b, "--force"])
            self.assertFalse(second[-1]["cached"])
            self.assertTrue(second[0]["cached"])  # --force builds the named recipe, not its base
            self.assertEqual(first[0]["layer_digest"], second[0]["layer_digest"])
            self.assertEqual(first[-1]["layer_whiteouts"], 2)
            for key in ("layer_digest", "rootfs_digest", "manifest_digest", "config_digest"):
                self.assertEqual(first[-1][key], second[-1][key], key)
            with open(os.path.join(a, "index.json"), "rb") as fa, open(os.path.join(b, "index.json"), "rb") as fb:
                self.assertEqual(fa.read(), fb.read())
            names = tar_names(first[-1]["layer_path"])
            self.assertIn("etc/.wh.motd", names)
            self.assertIn("usr/share/doc/.wh.dash", names)
            self.assertNotIn("usr/bin/dash", names)  # the base's, unchanged
            self.assertEqual(json.loads(run_tool(["skopeo", "inspect", "oci:%s:sbxtest-top" % a]))["Layers"],
                             first[-1]["diff_ids"])
            rootfs, spec = umoci_unpack(a, "sbxtest-top", os.path.join(tmp, "bundle"))
            self.assertFalse(os.path.lexists(os.path.join(rootfs, "etc/motd")))
            self.assertFalse(os.path.lexists(os.path.join(rootfs, "usr/share/doc/dash")))
            self.assertTrue(os.path.isdir(os.path.join(rootfs, "usr/share/doc/bash")))
            self.assertTrue(os.path.isfile(os.path.join(rootfs, "usr/bin/dash")))
            self.assertTrue(os.path.isdir(os.path.join(rootfs, "srv/work")))
            note = os.path.join(rootfs, "opt/sbxtest/note.txt")
            with open(note) as f:
                self.assertEqual(f.read(), "added by a recipe\n")
            self.assertEqual(os.stat(note).st_mode & 0o777, 0o640)
            for dirpath, dirs, fs in os.walk(rootfs):
                for n in dirs + fs:
                    self.assertFalse(n.startswith(".wh."), os.path.join(dirpath, n))
            self.assertEqual(spec["process"]["args"], ["/bin/sh"])  # the base's CMD
            self.assertEqual(spec["process"]["cwd"], "/srv/work")
            self.assertIn("NOTE=/opt/sbxtest/note.txt", spec["process"]["env"])


class AgentSandboxTest(unittest.TestCase):
    """One sandbox of the agent image, created with SUNA's environment and
    reached only through preview links. Tests run in name order; each one
    leaves the sandbox as it found it."""

    @classmethod
    def shared(cls):
        if "sandbox" in _state:
            return _state["sandbox"]
        imgs = images()
        d = Daemon()
        unittest.addModuleCleanup(d.cleanup)
        d.start()
        s = {"daemon": d}
        _state["sandbox"] = s
        rpc = d.client(timeout=120)
        s["rpc"] = rpc
        # The layered image, from the OCI layout the recipes were written to.
        img = rpc.call("image.import", {"name": "agent", "path": _state["layout"], "ref": "agent"}, timeout=600)
        s["image"] = img
        t0 = time.monotonic()
        sb = rpc.call("sandbox.create", {"image": "agent", "name": "agent", "env": SUNA_ENV})
        d.known_ids.add(sb["id"])
        s["id"] = sb["id"]
        # The image's command is the sandbox's service; SUNA starts the same
        # command in a session as well, asynchronously: one of the two wins.
        rpc.call("session.create", {"sandbox": sb["id"], "session_id": "supervisord-session"})
        rpc.call("session.exec", {"sandbox": sb["id"], "session_id": "supervisord-session",
                                  "command": SUPERVISORD, "run_async": True})
        cls.new_links(s)
        s["version"] = cls.wait_devtools(s)
        s["cdp_s"] = time.monotonic() - t0
        return s

    @staticmethod
    def new_links(s):
        s["links"] = {}
        for port in (6080, 8080, 9222):
            pv = s["rpc"].call("net.preview", {"sandbox": s["id"], "port": port})
            s["links"][port] = (pv["gateway"], pv["url"].split("//", 1)[1].split("/", 1)[0], pv["token"])

    @staticmethod
    def wait_devtools(s):
        def devtools():
            try:
                st, _, body = ap.http_get(*s["links"][9222][:2], path="/json/version", token=s["links"][9222][2])
            except OSError:
                return None
            return st == 200 and json.loads(body)

        return wait_until(devtools, 90, 0.1, "DevTools did not answer through the 9222 preview link")

    def setUp(self):
        check_root()
        self.s = self.shared()
        self.rpc = self.s["rpc"]
        self.sid = self.s["id"]

    def failure_context(self):
        s = _state.get("sandbox")
        if not s:
            return ""
        out = s["daemon"].log_tail(40)
        try:
            r = self.rpc.call("process.exec", {"sandbox": self.sid, "command":
                                               "supervisorctl -c /etc/supervisor/conf.d/supervisord.conf status;"
                                               " tail -n 20 /var/log/supervisor/*.log"})
            out += "\n--- inside the sandbox ---\n" + r["stdout"] + r["stderr"]
        except Exception as e:
            out += "\n(inside the sandbox: %s)" % e
        return out

    def get(self, port, path):
        gw, host, token = self.s["links"][port]
        return ap.http_get(gw, host, path, token)

    def sh(self, command, timeout=120):
        r = self.rpc.call("process.exec", {"sandbox": self.sid, "command": command, "timeout_s": timeout},
                          timeout=timeout + 10)
        self.assertEqual((r["exit_code"], r["signal"]), (0, None), "%r: %r" % (command, r))
        return r["stdout"]

    def health(self):
        st, _, body = self.get(8080, "/health")
        return st, json.loads(body)

    def test_1_health(self):
        st, h = wait_until(lambda: (lambda r: r[0] == 200 and r)(self.health()), 30, 0.2,
                           "/health did not report every program running")
        self.assertEqual(h["status"], "healthy")
        self.assertEqual(sorted(h["services"]), ["chromium", "devtools", "http", "novnc", "vnc", "xvfb"])
        # Without the token the gateway forwards nothing.
        gw, host, _ = self.s["links"][8080]
        self.assertEqual(ap.http_get(gw, host, "/health")[0], 401)

    def test_2_devtools_version(self):
        st, _, body = self.get(9222, "/json/version")
        self.assertEqual(st, 200)
        v = json.loads(body)
        self.assertRegex(v["Browser"], r"^Chrome/\d+\.")
        self.assertIn("Protocol-Version", v)
        # The WebSocket URL names the preview host, so a client can use it.
        self.assertTrue(v["webSocketDebuggerUrl"].startswith("ws://%s/devtools/browser/" % self.s["links"][9222][1]),
                        v["webSocketDebuggerUrl"])

    def test_3_screenshot_of_a_workspace_page(self):
        self.rpc.call("fs.write", {"sandbox": self.sid, "path": "/workspace/agent-test.html", "data": PAGE})
        st, _, body = self.get(8080, "/agent-test.html")
        self.assertEqual((st, body.decode()), (200, PAGE))
        gw, host, token = self.s["links"][9222]
        st, _, body = ap.http_get(gw, host, "/json/version", token)
        path = "/" + json.loads(body)["webSocketDebuggerUrl"].split("/", 3)[3]
        ws = ap.WebSocket(gw, host, path, token)
        try:
            png = ap.screenshot(ap.CDP(ws), "http://localhost:8080/agent-test.html")
        finally:
            ws.close()
        w, h, rows = ap.png_decode(png)
        self.assertGreaterEqual((w, h), (400, 200))
        near = lambda px, want: all(abs(a - b) <= 8 for a, b in zip(px, want))
        self.assertTrue(near(rows[100][100], (255, 0, 128)), rows[100][100])
        self.assertTrue(near(rows[100][400], (0, 160, 0)), rows[100][400])
        self.assertTrue(near(rows[100][250], (255, 255, 255)), rows[100][250])

    def test_4_novnc_and_vnc_password(self):
        for page in ("/vnc_lite.html", "/vnc.html"):
            st, _, body = self.get(6080, page)
            self.assertEqual(st, 200, page)
            self.assertIn(b"noVNC", body)
        gw, host, token = self.s["links"][6080]
        ws = ap.WebSocket(gw, host, "/websockify", token, protocols=["binary"])
        try:
            banner, ok, init = ap.RFB(ws).handshake(VNC_PASSWORD)
        finally:
            ws.close()
        self.assertRegex(banner, rb"^RFB 003\.00[378]\n$")
        self.assertTrue(ok, "VNC refused VNC_PASSWORD")
        self.assertEqual(init[:2], (1048, 768))  # RESOLUTION=1048x768x24
        ws = ap.WebSocket(gw, host, "/websockify", token, protocols=["binary"])
        try:
            self.assertFalse(ap.RFB(ws).handshake("not-" + VNC_PASSWORD)[1], "a wrong password was accepted")
        finally:
            ws.close()

    def test_4_novnc_as_a_browser_opens_it(self):
        """The iframe URL an agent backend hands a browser: the token once as
        a query parameter becomes a cookie, and noVNC's WebSocket carries it."""
        gw, host, token = self.s["links"][6080]
        query = "password=%s&autoconnect=true&scale=local" % VNC_PASSWORD
        st, hdrs, _ = ap.http_get(gw, host, "/vnc_lite.html?%s&token=%s" % (query, token))
        self.assertEqual(st, 302)
        self.assertEqual(hdrs["location"], "/vnc_lite.html?" + query)
        cookie = hdrs["set-cookie"].split(";")[0]
        st, _, body = ap.http_get(gw, host, hdrs["location"], headers={"Cookie": cookie})
        self.assertEqual(st, 200)
        self.assertIn(b"websockify", body)  # the path the page's WebSocket takes
        ws = ap.WebSocket(gw, host, "/websockify", protocols=["binary"], headers={"Cookie": cookie})
        try:
            self.assertTrue(ap.RFB(ws).handshake(VNC_PASSWORD)[1])
        finally:
            ws.close()

    def test_5_languages_and_tools(self):
        self.assertEqual(self.sh("python3 -c 'import sys; print(sys.version_info[0] * 10 + 7)'"), "37\n")
        self.assertEqual(self.sh("node -e 'console.log([1, 2, 3].map(x => x * 2).join())'"), "2,4,6\n")
        self.rpc.call("fs.write", {"sandbox": self.sid, "path": "/workspace/sbxdemo-1.0-py3-none-any.whl",
                                   "data": base64.b64encode(self.wheel()).decode(), "encoding": "base64"})
        out = self.sh("python3 -m venv /tmp/venv && /tmp/venv/bin/pip install --no-index -q "
                      "/workspace/sbxdemo-1.0-py3-none-any.whl && /tmp/venv/bin/python -c "
                      "'import sbxdemo; print(sbxdemo.hello())'")
        self.assertEqual(out.splitlines()[-1], "hello from a wheel")
        out = self.sh("cd /workspace && rm -rf repo && git init -q repo && cd repo && echo hi > a && git add a && "
                      "git -c user.email=t@example.com -c user.name=t commit -qm first && git log --format=%s")
        self.assertEqual(out, "first\n")
        out = self.sh("bash -lc 'cat <<EOF\nhome=$HOME pwd=$(pwd)\nEOF'")
        self.assertEqual(out, "home=/root pwd=/workspace\n")

    @staticmethod
    def wheel():
        files = {"sbxdemo/__init__.py": b"def hello():\n    return 'hello from a wheel'\n",
                 "sbxdemo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: sbxdemo\nVersion: 1.0\n",
                 "sbxdemo-1.0.dist-info/WHEEL":
                     b"Wheel-Version: 1.0\nGenerator: sbxtest\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
        record = ["%s,sha256=%s,%d" % (n, base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode(),
                                       len(d)) for n, d in files.items()]
        files["sbxdemo-1.0.dist-info/RECORD"] = ("\n".join(record + ["sbxdemo-1.0.dist-info/RECORD,,"]) + "\n").encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, d in files.items():
                z.writestr(n, d)
        return buf.getvalue()

    def test_6_supervisord_again_exits_and_services_stay(self):
        status = "supervisorctl -c /etc/supervisor/conf.d/supervisord.conf status"
        before = self.sh(status)
        self.rpc.call("session.create", {"sandbox": self.sid, "session_id": "supervisord-again"})
        r = self.rpc.call("session.exec", {"sandbox": self.sid, "session_id": "supervisord-again",
                                           "command": SUPERVISORD, "timeout_s": 30}, timeout=40)
        self.assertNotEqual(r["exit_code"], 0, r)
        self.assertIn("Another program is already listening", r["stdout"] + r["stderr"])
        pids = lambda text: sorted(l.split("pid ")[1].split(",")[0] for l in text.splitlines())
        self.assertEqual(pids(self.sh(status)), pids(before))
        self.assertEqual(self.health()[0], 200)
        self.assertEqual(self.get(9222, "/json/version")[0], 200)
        self.assertEqual(self.get(6080, "/vnc_lite.html")[0], 200)

    def test_7_fits_the_default_limits(self):
        st = self.rpc.call("sandbox.stats", {"sandbox": self.sid})
        self.assertEqual(st["oom_kills"], 0)
        # The sandbox was created without resources: these are the defaults.
        self.assertEqual((st["memory_max_bytes"], st["pids_max"]), (1024 << 20, 1024))
        self.assertLess(st["memory_peak_bytes"], st["memory_max_bytes"] * 0.75,
                        "an agent sandbox's peak is close to its memory limit: %r" % st)
        self.assertLess(st["pids"], st["pids_max"] // 2, st)

    # How many supervisords run: a child of one between its fork and its
    # exec of a program is named supervisord too, and is not counted.
    MAIN_SUPERVISORDS = ("for p in $(pgrep -x supervisord); do pp=$(ps -o ppid= -p $p | tr -d ' '); "
                         "[ -n \"$pp\" ] && [ \"$(ps -o comm= -p $pp)\" != supervisord ] && echo $p; "
                         "done | wc -l")

    def test_0_layered_image_and_its_service(self):
        """The agent image came in as layers (debian's first), and its
        command, supervisord, runs as the sandbox's service: one
        supervisord whichever of it and SUNA's session one started first."""
        img = self.s["image"]
        self.assertEqual(img["format"], "oci")
        self.assertEqual(img["layers"], 2)
        self.assertEqual(sorted(img["exposed_ports"]), ["6080/tcp", "8080/tcp", "9222/tcp"])
        info = self.rpc.call("sandbox.inspect", {"sandbox": self.sid})
        self.assertEqual(info["service"]["cmd"],
                         ["/usr/bin/supervisord", "-n", "-c", "/etc/supervisor/conf.d/supervisord.conf"])
        r = self.rpc.call("process.exec", {"sandbox": self.sid, "command": self.MAIN_SUPERVISORDS})
        self.assertEqual(r["stdout"].strip(), "1", r)

    def test_9_supervisords_started_at_once_make_one(self):
        """The service and a backend's session start supervisord at the
        same moment after a start: one of them runs, the others exit saying
        why, and every program runs once."""
        rpc = self.rpc
        sb = rpc.call("sandbox.create", {"image": "agent", "name": "agent-race", "env": SUNA_ENV,
                                         "service": False})
        self.s["daemon"].known_ids.add(sb["id"])
        self.addCleanup(rpc.call, "sandbox.delete", {"sandbox": sb["id"], "force": True}, 60)
        # Four at once, from one shell: all of them read their configuration
        # and look for a running one within the same few milliseconds.
        rpc.call("session.create", {"sandbox": sb["id"], "session_id": "race"})
        rpc.call("session.exec", {"sandbox": sb["id"], "session_id": "race", "run_async": True, "command":
                                  "for i in 1 2 3 4; do (%s > /tmp/sv$i.log 2>&1; echo $? > /tmp/sv$i.rc) & done; "
                                  "wait" % SUPERVISORD.replace("exec ", "")})

        def sh(cmd):
            return rpc.call("process.exec", {"sandbox": sb["id"], "command": cmd})["stdout"]
        wait_until(lambda: sh("ls /tmp/sv*.rc 2>/dev/null | wc -l").strip() == "3", 60, 0.5,
                   "three of the four supervisords ended")
        time.sleep(2)
        out = sh("for i in 1 2 3 4; do [ -e /tmp/sv$i.rc ] && echo \"$i $(cat /tmp/sv$i.rc) "
                 "$(grep -c 'Another program is already listening' /tmp/sv$i.log)\"; done")
        ended = [l.split() for l in out.splitlines()]
        self.assertEqual(len(ended), 3, out)
        for i, rc, said in ended:
            self.assertNotEqual(rc, "0", out)
            self.assertEqual(said, "1", out)
        status = "supervisorctl -c /etc/supervisor/conf.d/supervisord.conf status; " + self.MAIN_SUPERVISORDS

        def settled():
            r = sh(status)
            lines = r.splitlines()
            return sum(" RUNNING " in l for l in lines) == 6 and lines[-1] == "1" and r
        wait_until(settled, 60, 0.5, "one supervisord with its six programs running")
        # And it stays so: the programs do not fight over their ports.
        time.sleep(3)
        r = sh(status)
        self.assertEqual((sum(" RUNNING " in l for l in r.splitlines()), r.splitlines()[-1]), (6, "1"), r)

    def test_8_stop_start_and_supervisord_again(self):
        """What an agent backend does after an auto-stop: start the sandbox
        and run the supervisord command in a session of the same name. The
        image's service is started again at the start as well."""
        self.rpc.call("sandbox.stop", {"sandbox": self.sid}, timeout=60)
        self.rpc.call("sandbox.start", {"sandbox": self.sid}, timeout=60)
        try:
            self.rpc.call("session.create", {"sandbox": self.sid, "session_id": "supervisord-session"})
        except sbxtest.RpcError as e:
            # Sessions (a cwd and exports) outlive a stop today, so the
            # backend's create fails and the old session is used.
            self.assertEqual(e.code, 2, e)
        self.rpc.call("session.exec", {"sandbox": self.sid, "session_id": "supervisord-session",
                                       "command": SUPERVISORD, "run_async": True})
        self.new_links(self.s)  # links end when a sandbox stops
        self.assertIn("Browser", self.wait_devtools(self.s))
        wait_until(lambda: self.health()[0] == 200, 30, 0.2, "/health after a restart")
        gw, host, token = self.s["links"][6080]
        ws = ap.WebSocket(gw, host, "/websockify", token, protocols=["binary"])
        try:
            self.assertTrue(ap.RFB(ws).handshake(VNC_PASSWORD)[1])
        finally:
            ws.close()


if __name__ == "__main__":
    sbxtest.main()
