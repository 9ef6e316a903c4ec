"""The fs API: every method, on started, paused and stopped sandboxes, and
every path trick the protocol promises to defeat.

Each attack test plants something on the host that a successful escape
would read, change or create (a marker file outside the sandbox, a host
directory a symlink points to) and checks afterwards that it is untouched;
the error codes alone would not prove that nothing leaked.
"""

import base64
import json
import os
import socket
import threading
import time

from sbxtest import SandboxdTestCase, main, wait_until

NOT_FOUND, EXISTS, BAD_STATE, LIMIT, DENIED, UNSUPPORTED = 1, 2, 3, 4, 5, 7
BAD_PARAMS = -32602


class FsTestCase(SandboxdTestCase):
    def setUp(self):
        super().setUp()
        # Host-side bait: a secret to read and a directory to write into.
        self.bait_dir = os.path.join(self.daemon.dir, "bait")
        os.makedirs(self.bait_dir)
        self.secret = os.path.join(self.bait_dir, "secret")
        with open(self.secret, "w") as f:
            f.write("HOST-SECRET\n")
        self.secret_mtime = os.stat(self.secret).st_mtime_ns

    def assertBaitUntouched(self):
        with open(self.secret) as f:
            self.assertEqual(f.read(), "HOST-SECRET\n")
        self.assertEqual(os.stat(self.secret).st_mtime_ns, self.secret_mtime)
        self.assertEqual(sorted(os.listdir(self.bait_dir)), ["secret"])

    def fs(self, method, sandbox, **params):
        params["sandbox"] = sandbox
        return self.call("fs." + method, params)

    def write(self, sb, path, data, **params):
        return self.fs("write", sb, path=path, data=data, **params)

    def read(self, sb, path, **params):
        return self.fs("read", sb, path=path, **params)["data"]

    def assertFsError(self, code, method, sandbox, param=None, **params):
        params["sandbox"] = sandbox
        return self.assertRpcError(code, "fs." + method, params, param=param)


class TestFsBasics(FsTestCase):
    def test_write_read_stat_roundtrip(self):
        self.create("a")
        info = self.write("a", "/tmp/hello.txt", "hello\n")
        self.assertEqual((info["type"], info["size"], info["path"], info["name"]),
                         ("file", 6, "/tmp/hello.txt", "hello.txt"))
        self.assertEqual(self.read("a", "/tmp/hello.txt"), "hello\n")
        self.assertEqual(self.sh("a", "cat /tmp/hello.txt"), "hello\n")
        st = self.fs("stat", "a", path="/tmp/hello.txt")
        self.assertEqual(st["mode"], 0o644)
        self.assertEqual(st["mode_octal"], "0644")
        self.assertEqual((st["uid"], st["gid"], st["owner"]), (0, 0, "root"))
        self.assertRegex(st["mtime"], r"^\d{4}-\d\d-\d\dT")
        # What the process wrote is what fs sees.
        self.sh("a", "printf 'from inside' > /tmp/in.txt")
        self.assertEqual(self.read("a", "/tmp/in.txt"), "from inside")

    def test_relative_paths_start_at_workdir(self):
        self.create("a", workdir="/srv/app")
        self.write("a", "rel/x.txt", "X", create_parents=True)
        self.assertEqual(self.sh("a", "cat /srv/app/rel/x.txt"), "X")
        self.assertEqual(self.read("a", "./rel/../rel/x.txt"), "X")
        self.assertEqual(self.fs("stat", "a", path="rel/x.txt")["path"], "/srv/app/rel/x.txt")

    def test_base64_chunks_offset_length_append(self):
        self.create("a")
        blob = bytes(range(256)) * 1000
        b64 = lambda b: base64.b64encode(b).decode()
        self.write("a", "/tmp/blob", b64(blob[:100000]), encoding="base64")
        self.write("a", "/tmp/blob", b64(blob[100000:200000]), encoding="base64", offset=100000)
        self.write("a", "/tmp/blob", b64(blob[200000:]), encoding="base64", append=True)
        r = self.fs("read", "a", path="/tmp/blob", encoding="base64", offset=1000, length=5000)
        self.assertEqual(base64.b64decode(r["data"]), blob[1000:6000])
        self.assertEqual((r["size"], r["eof"], r["length"]), (len(blob), False, 5000))
        r = self.fs("read", "a", path="/tmp/blob", encoding="base64", offset=len(blob) - 10)
        self.assertEqual((base64.b64decode(r["data"]), r["eof"]), (blob[-10:], True))
        self.assertEqual(self.sh("a", "md5sum < /tmp/blob").split()[0],
                         __import__("hashlib").md5(blob).hexdigest())
        # A write without offset or append replaces the content.
        self.write("a", "/tmp/blob", "short")
        self.assertEqual(self.read("a", "/tmp/blob"), "short")
        self.assertFsError(BAD_PARAMS, "write", "a", param="data", path="/tmp/x", data="%%%",
                           encoding="base64")
        self.assertFsError(BAD_PARAMS, "read", "a", param="encoding", path="/tmp/blob", encoding="latin1")

    def test_big_chunks_are_checked_like_small_ones(self):
        # A long params.data of fs.write skips the JSON tree (it is used
        # where it lies in the daemon's buffer): everything the tree would
        # have refused must still be refused, and nothing written.
        self.create("a")
        blob = os.urandom(300000)
        good = base64.b64encode(blob).decode()
        c = self.daemon.client()

        def raw_write(path, data_json, extra=""):
            if isinstance(data_json, str):
                data_json = data_json.encode()
            line = (b'{"jsonrpc":"2.0","id":1,"method":"fs.write","params":{"sandbox":"a","path":"%s",'
                    b'"data":%s%s}}\n' % (path.encode(), data_json, extra.encode()))
            c.send_raw(line)
            return c.wait(1)

        for bad in (good[:-8] + "!" + good[-7:], good[:1000] + "\\u00e9" + good[1006:], good[:-1]):
            r = raw_write("/tmp/bad", '"%s"' % bad, ',"encoding":"base64"')
            self.assertEqual(r["error"]["code"], BAD_PARAMS, r)
            self.assertEqual(r["error"]["data"]["param"], "data")
        # A raw control character is not JSON at all: a parse error, which
        # cannot name the request's id.
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"fs.write","params":{"sandbox":"a","path":"/tmp/bad",'
                   b'"data":"' + b"\x01" * 5000 + b'"}}\n')
        self.assertEqual(c.wait_null()["error"]["code"], -32700)
        r = raw_write("/tmp/bad", b'"' + b"\xff" * 5000 + b'"')  # not UTF-8
        self.assertIn(r["error"]["code"], (BAD_PARAMS, -32700), r)
        self.assertFsError(NOT_FOUND, "stat", "a", path="/tmp/bad")
        # Escaped solidus: valid JSON, parsed the slow way, same bytes.
        r = raw_write("/tmp/esc", '"%s"' % good.replace("/", "\\/"), ',"encoding":"base64"')
        self.assertNotIn("error", r)
        r = self.fs("read", "a", path="/tmp/esc", encoding="base64")
        self.assertEqual(base64.b64decode(r["data"]), blob)
        # data before the other members, text encoding, then a big read.
        text = "caf\u00e9 " * 20000
        line = ('{"params":{"data":%s,"sandbox":"a","path":"/tmp/text"},"method":"fs.write",'
                '"id":2,"jsonrpc":"2.0"}\n' % json.dumps(text, ensure_ascii=False))
        c.send_raw(line.encode())
        self.assertNotIn("error", c.wait(2))
        self.assertEqual(self.read("a", "/tmp/text"), text)
        self.write("a", "/tmp/blob", good, encoding="base64")
        r = self.fs("read", "a", path="/tmp/blob", encoding="base64", offset=7, length=200000)
        self.assertEqual(base64.b64decode(r["data"]), blob[7:200007])
        self.assertEqual((r["size"], r["offset"], r["length"], r["eof"]), (300000, 7, 200000, False))
        r = self.fs("read", "a", path="/tmp/blob", encoding="base64", offset=200001)
        self.assertEqual(base64.b64decode(r["data"]), blob[200001:])
        self.assertTrue(r["eof"])

    def test_invalid_utf8_content_is_repaired_in_utf8_and_exact_in_base64(self):
        self.create("a")
        self.sh("a", "printf 'a\\377b' > /tmp/bin")
        self.assertEqual(self.read("a", "/tmp/bin"), "a\ufffdb")
        r = self.fs("read", "a", path="/tmp/bin", encoding="base64")
        self.assertEqual(base64.b64decode(r["data"]), b"a\xffb")

    def test_mkdir_list_depth_remove(self):
        self.create("a")
        self.fs("mkdir", "a", path="/work/x/y", parents=True)
        self.assertFsError(EXISTS, "mkdir", "a", path="/work/x")
        self.assertFsError(NOT_FOUND, "mkdir", "a", path="/nope/a/b")
        self.fs("mkdir", "a", path="/work/x", parents=True)  # -p: fine
        self.fs("mkdir", "a", path="/work/m", mode="0700")
        self.assertEqual(self.fs("stat", "a", path="/work/m")["mode"], 0o700)
        self.write("a", "/work/x/y/f", "1")
        self.write("a", "/work/top", "2")
        names = [e["path"] for e in self.fs("list", "a", path="/work")["entries"]]
        self.assertEqual(names, ["/work/m", "/work/top", "/work/x"])
        names = [e["path"] for e in self.fs("list", "a", path="/work", depth=0)["entries"]]
        self.assertEqual(names, ["/work/m", "/work/top", "/work/x", "/work/x/y", "/work/x/y/f"])
        names = [e["path"] for e in self.fs("list", "a", path="/work", depth=2)["entries"]]
        self.assertEqual(names, ["/work/m", "/work/top", "/work/x", "/work/x/y"])
        r = self.fs("list", "a", path="/work", depth=0, max_entries=2)
        self.assertEqual((len(r["entries"]), r["truncated"]), (2, True))
        self.assertFsError(EXISTS, "remove", "a", path="/work/x")
        self.fs("remove", "a", path="/work/x", recursive=True)
        self.fs("remove", "a", path="/work/top")
        self.assertFsError(NOT_FOUND, "remove", "a", path="/work/top")
        self.assertEqual(self.sh("a", "ls /work"), "m\n")

    def test_remove_root_refused(self):
        self.create("a")
        for p in ("/", "/..", "//", "/tmp/../..", "."):
            with self.subTest(path=p):
                if p == ".":
                    continue
                self.assertFsError(DENIED, "remove", "a", path=p, recursive=True)
        self.assertEqual(self.sh("a", "test -d /bin && echo ok"), "ok\n")

    def test_move(self):
        self.create("a")
        self.write("a", "/tmp/f", "F")
        self.fs("mkdir", "a", path="/tmp/d")
        # Into an existing directory, as mv does.
        r = self.fs("move", "a", src="/tmp/f", dst="/tmp/d")
        self.assertEqual(r["path"], "/tmp/d/f")
        self.assertEqual(self.read("a", "/tmp/d/f"), "F")
        self.write("a", "/tmp/g", "G")
        self.assertFsError(EXISTS, "move", "a", src="/tmp/g", dst="/tmp/d/f")
        self.fs("move", "a", src="/tmp/g", dst="/tmp/d/f", overwrite=True)
        self.assertEqual(self.read("a", "/tmp/d/f"), "G")
        self.assertFsError(NOT_FOUND, "move", "a", src="/tmp/none", dst="/tmp/x")
        self.assertFsError(BAD_PARAMS, "move", "a", src="/tmp/d", dst="/tmp/d/inner")
        self.assertFsError(DENIED, "move", "a", src="/", dst="/tmp/root")
        # A directory with a same-named non-empty one in the target.
        self.fs("mkdir", "a", path="/tmp/e/d", parents=True)
        self.write("a", "/tmp/e/d/x", "x")
        self.assertFsError(EXISTS, "move", "a", src="/tmp/d", dst="/tmp/e")

    def test_move_directories_of_the_image(self):
        # The overlay cannot rename a directory of the lower layer (EXDEV
        # without redirect_dir); the move copies it as mv does, keeping
        # owners, modes, times and symlinks, then removes the source.
        for state in ("started", "stopped"):
            name = "m" + state
            self.create(name)
            if state == "stopped":
                self.call("sandbox.stop", {"sandbox": name})
            r = self.fs("move", name, src="/home", dst="/home2")
            self.assertEqual(r["path"], "/home2")
            self.assertEqual(r["type"], "dir")
            self.assertTrue(r["mtime"].startswith("2024-01-01"), r)
            st = self.fs("stat", name, path="/home2/sandbox")
            self.assertEqual((st["uid"], st["gid"], st["mode"]), (1000, 1000, 0o755))
            self.assertTrue(st["mtime"].startswith("2024-01-01"), st)
            self.assertFsError(NOT_FOUND, "stat", name, path="/home")
            # Into an existing directory; the sticky bit comes along.
            self.fs("mkdir", name, path="/srv")
            self.assertEqual(self.fs("move", name, src="/var", dst="/srv")["path"], "/srv/var")
            self.assertEqual(self.fs("stat", name, path="/srv/var/tmp")["mode"], 0o1777)
            self.assertFsError(NOT_FOUND, "stat", name, path="/var")
            # Symlinks are copied as links; the copy is in the upper layer
            # now, so moving it back is a plain rename.
            self.fs("move", name, src="/bin", dst="/bin2")
            self.assertEqual(self.fs("stat", name, path="/bin2/cat")["symlink_target"], "/bin/busybox")
            self.assertEqual(self.fs("stat", name, path="/bin2/busybox")["mode"], 0o755)
            self.fs("move", name, src="/bin2", dst="/bin")
            # A taken target is refused and the source kept.
            self.fs("mkdir", name, path="/taken")
            self.write(name, "/taken/etc/keep", "K", create_parents=True)
            self.assertFsError(EXISTS, "move", name, src="/etc", dst="/taken")
            self.assertEqual(self.read(name, "/etc/hostname").strip(), self.inspect(name)["hostname"])
            self.assertEqual(self.read(name, "/taken/etc/keep"), "K")
            names = [e["name"] for e in self.fs("list", name, path="/taken")["entries"]]
            self.assertEqual(names, ["etc"])  # no temporary copy left behind
            if state == "stopped":
                self.call("sandbox.start", {"sandbox": name})
            self.assertEqual(self.sh(name, "stat -c '%u %a' /home2/sandbox; ls /srv/var"), "1000 755\ntmp\n")

    def test_chmod_mode_owner_group(self):
        self.create("a")
        self.write("a", "/tmp/f", "F")
        self.assertEqual(self.fs("chmod", "a", path="/tmp/f", mode=0o600)["mode"], 0o600)
        self.assertEqual(self.fs("chmod", "a", path="/tmp/f", mode="0755")["mode"], 0o755)
        self.assertEqual(self.sh("a", "stat -c %a /tmp/f"), "755\n")
        r = self.fs("chmod", "a", path="/tmp/f", owner="sandbox", group="sandbox")
        uid = int(self.sh("a", "id -u sandbox"))
        gid = int(self.sh("a", "id -g sandbox"))
        self.assertEqual((r["uid"], r["gid"], r["owner"]), (uid, gid, "sandbox"))
        self.assertEqual(self.sh("a", "stat -c %u:%g /tmp/f"), "%d:%d\n" % (uid, gid))
        self.fs("chmod", "a", path="/tmp/f", owner=0, group="0")
        self.assertEqual(self.sh("a", "stat -c %u:%g /tmp/f"), "0:0\n")
        self.assertFsError(NOT_FOUND, "chmod", "a", path="/tmp/f", owner="nosuchuser")
        self.assertFsError(NOT_FOUND, "chmod", "a", path="/tmp/f", group="nosuchgroup")
        self.assertFsError(BAD_PARAMS, "chmod", "a", param="mode", path="/tmp/f", mode="0999")
        self.assertFsError(BAD_PARAMS, "chmod", "a", param="mode", path="/tmp/f", mode=-1)
        self.assertFsError(BAD_PARAMS, "chmod", "a", param="owner", path="/tmp/f", owner=70000)
        self.assertFsError(BAD_PARAMS, "chmod", "a", param="mode", path="/tmp/f")

    def test_find_search_replace(self):
        self.create("a")
        self.write("a", "/src/a.py", "import os\nprint('hello')\nx = 1\n")
        self.write("a", "/src/sub/b.py", "def hello():\n    return 2\n")
        self.write("a", "/src/c.txt", "hello there\n")
        self.sh("a", "printf 'hello\\000binary' > /src/bin.dat")
        self.sh("a", "yes hello | head -c 300000 > /src/big.txt")
        r = self.fs("find", "a", path="/src", pattern="hel+o", max_file_size=100000)
        got = [(m["file"], m["line"], m["content"]) for m in r["matches"]]
        self.assertEqual(got, [("/src/a.py", 2, "print('hello')"), ("/src/c.txt", 1, "hello there"),
                               ("/src/sub/b.py", 1, "def hello():")])
        skipped = {s["file"]: s["reason"] for s in r["skipped"]}
        self.assertEqual(skipped, {"/src/bin.dat": "binary", "/src/big.txt": "too_large"})
        r = self.fs("find", "a", path="/src", pattern="^(x|def) ", glob="*.py")
        self.assertEqual([(m["file"], m["line"]) for m in r["matches"]], [("/src/a.py", 3), ("/src/sub/b.py", 1)])
        r = self.fs("find", "a", path="/src", pattern="hello", max_results=2)
        self.assertEqual((len(r["matches"]), r["truncated"]), (2, True))
        self.assertFsError(BAD_PARAMS, "find", "a", param="pattern", path="/src", pattern="(")
        r = self.fs("search", "a", path="/src", glob="*.py")
        self.assertEqual(r["files"], ["/src/a.py", "/src/sub/b.py"])
        r = self.fs("search", "a", path="/src", glob="sub/*")
        self.assertEqual(r["files"], ["/src/sub/b.py"])
        r = self.fs("replace", "a", files=["/src/a.py", "/src/c.txt", "/src/none"], pattern="hel+o",
                    new_value="bye")
        res = {x["file"]: x for x in r["results"]}
        self.assertEqual(res["/src/a.py"]["replaced"], 1)
        self.assertEqual(res["/src/c.txt"]["replaced"], 1)
        self.assertEqual(res["/src/none"]["code"], NOT_FOUND)
        self.assertEqual(self.sh("a", "cat /src/a.py /src/c.txt"), "import os\nprint('bye')\nx = 1\nbye there\n")
        r = self.fs("replace", "a", files=["/src/a.py"], pattern="(", new_value="[", literal=True)
        self.assertEqual(r["results"][0]["replaced"], 1)
        self.assertEqual(self.sh("a", "sed -n 2p /src/a.py"), "print['bye')\n")

    def test_bad_params(self):
        self.create("a")
        self.assertFsError(BAD_PARAMS, "read", "a", param="path")
        self.assertFsError(BAD_PARAMS, "read", "a", param="path", path="")
        self.assertFsError(BAD_PARAMS, "read", "a", param="path", path=7)
        self.assertFsError(BAD_PARAMS, "write", "a", param="data", path="/tmp/x")
        self.assertFsError(BAD_PARAMS, "move", "a", param="dst", src="/tmp")
        self.assertFsError(NOT_FOUND, "read", "nosuch", path="/etc/passwd")
        self.assertFsError(BAD_PARAMS, "read", "a", param="path", path="a" * 5000)
        self.assertFsError(BAD_PARAMS, "write", "a", param="path", path="/" + "d/" * 2500 + "f", data="x")
        self.assertFsError(BAD_PARAMS, "read", "a", param="path", path="/etc")  # a directory


class TestFsEscapes(FsTestCase):
    def test_dotdot_and_symlinks_stay_inside(self):
        self.create("a")
        # The sandbox has its own /etc/shadow or none; either way it is not the host's.
        host_shadow = open("/etc/shadow").read() if os.path.exists("/etc/shadow") else None
        self.sh("a", "echo INSIDE-SHADOW > /etc/shadow; mkdir -p /w; "
                "ln -s /etc/shadow /w/abs; ln -s ../../../../../../etc/shadow /w/rel; "
                "ln -s c1 /w/c0; ln -s c2 /w/c1; ln -s ../w/c3 /w/c2; ln -s /w/abs /w/c3; "
                "ln -s %s /w/bait; ln -s %s /w/baitdir; ln -s /proc/self/root /w/procroot; "
                "ln -s loop2 /w/loop1; ln -s loop1 /w/loop2" % (self.secret, self.bait_dir))
        for p in ("../../etc/shadow", "/../../../etc/shadow", "/w/abs", "/w/rel", "/w/c0", "/tmp/../../etc/shadow"):
            with self.subTest(path=p):
                data = self.read("a", p)
                self.assertEqual(data, "INSIDE-SHADOW\n")
                self.assertNotEqual(data, host_shadow)
        # The host bait path does not exist inside.
        self.assertFsError(NOT_FOUND, "read", "a", path="/w/bait")
        self.assertFsError(NOT_FOUND, "read", "a", path=self.secret)
        # A symlink to a directory missing inside is not a directory.
        self.assertFsError(NOT_FOUND, "write", "a", path="/w/baitdir/planted", data="x")
        # With the same path inside, writes through the symlinks land inside, never on the host.
        self.sh("a", "mkdir -p %s" % self.bait_dir)
        self.write("a", "/w/baitdir/planted", "x")
        self.assertEqual(self.sh("a", "cat %s/planted" % self.bait_dir), "x")
        self.write("a", "/w/bait", "overwrite")  # a dangling symlink: its in-root target is made
        self.assertEqual(self.sh("a", "cat %s" % self.secret), "overwrite")
        self.write("a", "/w/rel", "shadow2")
        self.assertEqual(self.sh("a", "cat /etc/shadow"), "shadow2")
        # /proc/self/root: "self" names no process of the sandbox's pid
        # namespace for the daemon, and any /proc/PID/root is a magic link.
        for method, params in (("read", {"path": "/w/procroot/etc/hostname"}),
                               ("write", {"path": "/w/procroot/tmp/x", "data": "x"}),
                               ("list", {"path": "/w/procroot"}),
                               ("read", {"path": "/proc/self/root/etc/hostname"})):
            with self.subTest(method=method, **params):
                c = self.rpc.request("fs." + method, dict(params, sandbox="a"))
                self.assertIn(self.rpc.wait(c)["error"]["code"], (NOT_FOUND, DENIED))
        self.assertFsError(DENIED, "read", "a", path="/proc/1/root/etc/hostname")
        self.assertFsError(DENIED, "write", "a", path="/proc/1/root/tmp/x", data="x")
        self.assertFsError(DENIED, "read", "a", path="/proc/1/cwd/etc/hostname")
        self.assertFsError(DENIED, "read", "a", path="/w/loop1")
        self.assertBaitUntouched()

    def test_list_does_not_follow_symlinks(self):
        self.create("a")
        self.sh("a", "mkdir /w; ln -s %s /w/out; ln -s / /w/root" % self.bait_dir)
        r = self.fs("list", "a", path="/w", depth=0)
        self.assertEqual([(e["path"], e["type"], e.get("symlink_target")) for e in r["entries"]],
                         [("/w/out", "symlink", self.bait_dir), ("/w/root", "symlink", "/")])
        st = self.fs("stat", "a", path="/w/out")
        self.assertEqual(st["type"], "symlink")

    def test_special_files_are_not_opened(self):
        self.create("a")
        self.sh("a", "mkfifo /tmp/fifo; ln -s /tmp/fifo /tmp/fifolink")
        t0 = time.monotonic()
        for p in ("/tmp/fifo", "/tmp/fifolink", "/dev/null", "/dev/zero"):
            with self.subTest(path=p):
                self.assertFsError(DENIED, "read", "a", path=p)
                self.assertFsError(DENIED, "write", "a", path=p, data="x")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.fs("stat", "a", path="/tmp/fifo")["type"], "other")
        # fs.find walks past it without hanging.
        r = self.fs("find", "a", path="/tmp", pattern="x")
        self.assertEqual(r["matches"], [])

    def test_read_only_paths(self):
        self.create("a")
        self.assertFsError(DENIED, "write", "a", path="/proc/sys/kernel/hostname", data="evil")
        self.assertFsError(DENIED, "write", "a", path="/sys/kernel/newfile", data="x")
        self.assertFsError(DENIED, "mkdir", "a", path="/sys/newdir")
        self.assertFsError(DENIED, "remove", "a", path="/proc/sys/kernel/hostname")
        self.assertEqual(self.read("a", "/proc/sys/kernel/hostname").strip(), self.inspect("a")["hostname"])

    def test_odd_names_round_trip(self):
        self.create("a")
        name = "/tmp/new\nline"
        self.write("a", name, "N")
        self.assertEqual(self.sh("a", "cat '/tmp/new\nline'"), "N")
        entries = self.fs("list", "a", path="/tmp")["entries"]
        self.assertIn(name, [e["path"] for e in entries])
        self.sh("a", "printf X > \"$(printf '/tmp/bad\\377name')\"")
        entries = [e for e in self.fs("list", "a", path="/tmp")["entries"] if e["name"].startswith("bad")]
        self.assertEqual(len(entries), 1)
        e = entries[0]
        self.assertEqual(e["name"], "bad\ufffdname")
        raw = base64.b64decode(e["path_base64"])
        self.assertEqual(raw, b"/tmp/bad\xffname")
        r = self.fs("read", "a", path_base64=e["path_base64"])
        self.assertEqual(r["data"], "X")
        self.fs("write", "a", path_base64=base64.b64encode(b"/tmp/w\xfe").decode(), data="W")
        self.assertEqual(self.sh("a", "cat \"$(printf '/tmp/w\\376')\""), "W")
        self.assertFsError(BAD_PARAMS, "read", "a", param="path_base64",
                           path_base64=base64.b64encode(b"/tmp/a\0b").decode())


class TestFsHex(FsTestCase):
    """encoding "hex": file bytes as two digits each, for clients whose
    base64 decoder is slow; the same checks as base64, small and bulk."""

    def test_advertised(self):
        self.assertIn("fs.encoding.hex", self.call("system.info")["features"])

    def test_chunks_both_ways_running_and_stopped(self):
        self.create("a")
        blob = os.urandom(600000)
        # A small chunk goes through the JSON tree, a big one is decoded
        # where it lies in the daemon's buffer; upper case is hex too.
        self.write("a", "/tmp/h", blob[:1000].hex().upper(), encoding="hex")
        self.write("a", "/tmp/h", blob[1000:400000].hex(), encoding="hex", offset=1000)
        self.write("a", "/tmp/h", blob[400000:].hex(), encoding="hex", append=True)
        self.assertEqual(self.sh("a", "md5sum < /tmp/h").split()[0], __import__("hashlib").md5(blob).hexdigest())
        for stopped in (False, True):
            if stopped:
                self.call("sandbox.stop", {"sandbox": "a"})
            r = self.fs("read", "a", path="/tmp/h", encoding="hex", offset=7, length=300001)
            self.assertEqual(r["encoding"], "hex")
            self.assertEqual(bytes.fromhex(r["data"]), blob[7:300008])
            self.assertEqual((r["size"], r["offset"], r["length"], r["eof"]), (600000, 7, 300001, False))
            r = self.fs("read", "a", path="/tmp/h", encoding="hex", offset=599990)
            self.assertEqual((bytes.fromhex(r["data"]), r["eof"]), (blob[-10:], True))
            self.assertRegex(r["data"], "^[0-9a-f]*$")
            # Same bytes as base64 gives.
            r = self.fs("read", "a", path="/tmp/h", encoding="base64", offset=5, length=99)
            self.assertEqual(base64.b64decode(r["data"]), blob[5:104])
        self.write("a", "/tmp/off", b"\x00\xff".hex(), encoding="hex")
        self.assertEqual(bytes.fromhex(self.read("a", "/tmp/off", encoding="hex")), b"\x00\xff")

    def test_malformed_hex_writes_nothing(self):
        self.create("a")
        self.write("a", "/tmp/keep", "KEEP")
        good = os.urandom(200000).hex()
        for bad in ("abc", "0g", "zz" * 10, good[:-1], good[:-2] + "g0", "x" + good[1:],
                    good[:100000] + "==" + good[100002:]):
            for path in ("/tmp/new", "/tmp/keep"):
                with self.subTest(bad=bad[:8], n=len(bad), path=path):
                    e = self.assertFsError(BAD_PARAMS, "write", "a", param="data", path=path, data=bad,
                                           encoding="hex", offset=2)
                    self.assertIn("hex", e["message"])
        self.assertFsError(NOT_FOUND, "stat", "a", path="/tmp/new")
        self.assertEqual(self.read("a", "/tmp/keep"), "KEEP")

    def test_unknown_encoding_is_named(self):
        self.create("a")
        self.write("a", "/tmp/f", "x")
        for method, extra in (("read", {}), ("write", {"data": "00"})):
            for enc in ("base16", "HEX", ""):
                e = self.assertFsError(BAD_PARAMS, method, "a", param="encoding", path="/tmp/f", encoding=enc,
                                       **extra)
                for word in ("utf-8", "base64", "hex"):
                    self.assertIn(word, e["message"])
        self.assertEqual(self.read("a", "/tmp/f"), "x")


class TestFsBinary(FsTestCase):
    """fs.read with encoding "binary": the reply line has no data, the
    bytes follow it raw (exactly "length" of them, then a newline), read
    here from a plain socket the way a client must."""

    def raw_reads(self, requests):
        """Send the fs.read requests at once (pipelined) and return each
        (reply, bytes) in order: the bytes of one reply must not be taken
        for the next line, whatever they hold."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.daemon.socket)
        f = s.makefile("rb")
        try:
            lines = []
            for i, params in enumerate(requests):
                lines.append(json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "fs.read",
                                         "params": dict(params, encoding="binary")}))
            s.sendall(("\n".join(lines) + "\n").encode())
            out = []
            for _ in requests:
                head = f.readline()
                self.assertTrue(head.endswith(b"\n"), head)
                reply = json.loads(head)
                data = None
                if "result" in reply:
                    self.assertEqual(reply["result"]["encoding"], "binary", reply)
                    self.assertNotIn("data", reply["result"])
                    n = reply["result"]["length"]
                    data = f.read(n)
                    self.assertEqual(len(data), n)
                    self.assertEqual(f.read(1), b"\n", "no newline after the bytes")
                out.append((reply, data))
            return out
        finally:
            f.close()
            s.close()

    def test_advertised(self):
        self.assertIn("fs.encoding.binary", self.call("system.info")["features"])

    def test_chunks_running_and_stopped(self):
        self.create("a")
        # Newlines, braces and quotes in the bytes: what would break a
        # reader that looked for lines in them.
        blob = (b'\n{"jsonrpc":"2.0","id":9}\n' + os.urandom(700000) + b"\n\n") * 3
        self.write("a", "/tmp/b", base64.b64encode(blob).decode(), encoding="base64")
        for stopped in (False, True):
            if stopped:
                self.call("sandbox.stop", {"sandbox": "a"})
            with self.subTest(stopped=stopped):
                got = self.raw_reads([
                    {"sandbox": "a", "path": "/tmp/b", "offset": 0, "length": 1 << 20},
                    {"sandbox": "a", "path": "/tmp/b", "offset": 1 << 20, "length": 1 << 20},
                    {"sandbox": "a", "path": "/tmp/missing"},
                    {"sandbox": "a", "path": "/tmp/b", "offset": len(blob) - 5},
                    {"sandbox": "a", "path": "/tmp/b", "offset": len(blob) + 10},
                    {"sandbox": "a", "path": "/tmp/b", "offset": 3, "length": 0},
                ])
                (r1, d1), (r2, d2), (r3, d3), (r4, d4), (r5, d5), (r6, d6) = got
                self.assertEqual(d1, blob[:1 << 20])
                self.assertEqual((r1["result"]["size"], r1["result"]["offset"], r1["result"]["eof"]),
                                 (len(blob), 0, False))
                self.assertEqual(d2, blob[1 << 20:2 << 20])
                self.assertEqual(r3["error"]["code"], NOT_FOUND)
                self.assertIsNone(d3)
                self.assertEqual((d4, r4["result"]["eof"]), (blob[-5:], True))
                self.assertEqual((d5, r5["result"]["length"], r5["result"]["eof"]), (b"", 0, True))
                self.assertEqual((d6, r6["result"]["length"]), (b"", 0))

    def test_proc_file_without_a_size(self):
        self.create("a")
        ((r, d),) = self.raw_reads([{"sandbox": "a", "path": "/proc/1/status"}])
        self.assertIn(b"Name:", d)
        self.assertEqual(r["result"]["length"], len(d))

    def raw_session(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.daemon.socket)
        self.addCleanup(s.close)
        return s, s.makefile("rb")

    @staticmethod
    def write_line(rid, params, payload=None):
        params = dict(params)
        if payload is not None:
            params.setdefault("encoding", "binary")
            params.setdefault("length", len(payload))
        line = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "fs.write", "params": params}).encode() + b"\n"
        return line + (payload + b"\n" if payload is not None else b"")

    def test_writes_in_step_with_requests_around_them(self):
        """Raw bytes after an fs.write line, pipelined with other requests:
        newlines and JSON inside the bytes are bytes, not requests."""
        self.create("a")
        trap = b'\n{"jsonrpc":"2.0","id":77,"method":"sandbox.delete","params":{"sandbox":"a"}}\n'
        blob = (trap + os.urandom(300000)) * 5
        for stopped in (False, True):
            if stopped:
                self.call("sandbox.stop", {"sandbox": "a"})
            with self.subTest(stopped=stopped):
                s, f = self.raw_session()
                msg = (self.write_line(1, {"sandbox": "a", "path": "/tmp/w/b", "offset": 0, "truncate": True},
                                       blob[:1000000])
                       + self.write_line(2, {"sandbox": "a", "path": "/tmp/w/b", "offset": 1000000},
                                         blob[1000000:])
                       + self.write_line(3, {"sandbox": "a", "path": "/tmp/w/empty"}, b"")
                       + b'{"jsonrpc":"2.0","id":4,"method":"system.ping"}\n')
                s.sendall(msg)
                replies = {}
                for _ in range(4):
                    r = json.loads(f.readline())
                    replies[r["id"]] = r
                self.assertEqual(sorted(replies), [1, 2, 3, 4], replies)
                self.assertEqual(replies[2]["result"]["size"], len(blob), replies[2])
                self.assertEqual(replies[3]["result"]["size"], 0)
                self.assertIn("result", replies[4])
                r = self.fs("read", "a", path="/tmp/w/b", encoding="base64", length=len(blob))
                self.assertEqual(base64.b64decode(r["data"]), blob)
        self.assertEqual(self.inspect("a")["state"], "stopped", "bytes were taken for a request")

    def test_a_length_over_the_limit_is_refused_and_skipped(self):
        self.create("a")
        s, f = self.raw_session()
        big = b"\n" * (self.daemon_max_message() + 10)
        s.sendall(self.write_line(1, {"sandbox": "a", "path": "/tmp/big"}, big)
                  + b'{"jsonrpc":"2.0","id":2,"method":"system.ping"}\n')
        r1, r2 = json.loads(f.readline()), json.loads(f.readline())
        self.assertEqual((r1["id"], r1["error"]["code"], r1["error"]["data"]["param"]), (1, LIMIT, "length"), r1)
        self.assertIn("smaller chunks", r1["error"]["message"])
        self.assertEqual(r2["id"], 2)
        self.assertIn("result", r2)
        self.assertFsError(NOT_FOUND, "stat", "a", path="/tmp/big")

    def daemon_max_message(self):
        return self.call("system.info")["limits"]["max_message"]

    def test_bytes_that_cannot_be_framed_end_the_connection_with_a_reason(self):
        self.create("a")
        cases = [
            # no length: the bytes cannot be told from the next request
            ("length", self.write_line(1, {"sandbox": "a", "path": "/tmp/x", "encoding": "binary"})
             + b"abc\n"),
            # a length that does not match what was sent
            ("length", self.write_line(1, {"sandbox": "a", "path": "/tmp/x", "length": 2}, b"abcdef")[:-1]),
            ("length", self.write_line(1, {"sandbox": "a", "path": "/tmp/x", "length": -1}, b"")),
        ]
        for param, msg in cases:
            with self.subTest(msg=msg[:60]):
                s, f = self.raw_session()
                s.sendall(msg + b'{"jsonrpc":"2.0","id":2,"method":"system.ping"}\n')
                r = json.loads(f.readline())
                self.assertEqual((r["id"], r["error"]["code"], r["error"]["data"]["param"]), (1, BAD_PARAMS, param))
                self.assertIn("cannot be read", r["error"]["message"])
                self.assertEqual(f.readline(), b"", "the connection stayed open")
        self.assertFsError(NOT_FOUND, "stat", "a", path="/tmp/x")
        # the client going away in the middle of the bytes
        s, f = self.raw_session()
        s.sendall(self.write_line(1, {"sandbox": "a", "path": "/tmp/x", "length": 100000}, b"")[:-1] + b"x" * 500)
        s.shutdown(socket.SHUT_WR)
        r = json.loads(f.readline())
        self.assertEqual((r["id"], r["error"]["code"]), (1, -32600), r)
        self.assertIn("100000 raw bytes", r["error"]["message"])
        s, f = self.raw_session()
        s.sendall(self.write_line(1, {"sandbox": "a", "path": "/tmp/x", "length": 100000}, b"")[:-1] + b"x" * 500)
        s.close()
        self.assertEqual(self.call("system.ping"), self.call("system.ping"))
        self.assertFsError(NOT_FOUND, "stat", "a", path="/tmp/x")

    def test_data_and_raw_bytes_exclude_each_other(self):
        self.create("a")
        s, f = self.raw_session()
        s.sendall(self.write_line(1, {"sandbox": "a", "path": "/tmp/f", "data": "00"}, b"")
                  + b'{"jsonrpc":"2.0","id":2,"method":"system.ping"}\n')
        r = json.loads(f.readline())
        self.assertEqual((r["id"], r["error"]["code"], r["error"]["data"]["param"]), (1, BAD_PARAMS, "data"), r)
        self.assertIn("follow", r["error"]["message"])
        self.assertIn("result", json.loads(f.readline()))
        self.assertFsError(NOT_FOUND, "stat", "a", path="/tmp/f")


class TestFsStates(FsTestCase):
    def test_stopped_sandbox(self):
        self.create("a")
        self.write("a", "/tmp/before", "B")
        self.call("sandbox.stop", {"sandbox": "a"})
        self.assertEqual(self.read("a", "/tmp/before"), "B")
        self.write("a", "/tmp/offline", "O")
        self.fs("mkdir", "a", path="/offdir")
        self.assertEqual(self.read("a", "/etc/hostname").strip(), self.inspect("a")["hostname"])
        names = [e["name"] for e in self.fs("list", "a", path="/")["entries"]]
        self.assertIn("bin", names)  # from the image
        self.assertIn("offdir", names)
        self.assertFsError(DENIED, "remove", "a", path="/", recursive=True)
        self.call("sandbox.start", {"sandbox": "a"})
        self.assertEqual(self.sh("a", "cat /tmp/offline; test -d /offdir && echo D"), "OD\n")

    def test_stopped_sandbox_leaves_no_mount_on_the_host(self):
        self.create("a", resources={"disk_mb": 64})
        self.call("sandbox.stop", {"sandbox": "a"})
        before = open("/proc/self/mountinfo").read()
        loops = sorted(os.listdir("/sys/block"))
        for i in range(5):
            self.write("a", "/tmp/f%d" % i, "x")
            self.fs("list", "a", path="/tmp")
        after = open("/proc/self/mountinfo").read()
        self.assertNotIn(self.daemon.dir, after)
        self.assertEqual(before.count("\n"), after.count("\n"))
        # The loop devices the workers attached clear themselves.
        wait_until(lambda: sorted(os.listdir("/sys/block")) == loops or
                   all(not open("/sys/block/%s/loop/backing_file" % b).read().startswith(self.daemon.dir)
                       for b in os.listdir("/sys/block") if b.startswith("loop") and
                       os.path.exists("/sys/block/%s/loop/backing_file" % b)),
                   timeout=10, message="loop devices of the fs workers were not released")

    def test_concurrent_calls_on_a_stopped_sandbox(self):
        # Each call on a stopped sandbox mounts its overlay in a worker; two
        # overlays on one upper and work directory at once wreck each
        # other's work directory ("create overlay: No such file or
        # directory"). Calls in flight together must all succeed.
        self.create("a")
        blob = os.urandom(3 << 20)
        self.write("a", "/tmp/blob", base64.b64encode(blob).decode(), encoding="base64")
        self.call("sandbox.stop", {"sandbox": "a"})
        c = self.daemon.client(timeout=120)
        reads = [c.request("fs.read", {"sandbox": "a", "path": "/tmp/blob", "encoding": "base64",
                                       "offset": i << 20, "length": 1 << 20}) for i in range(3)]
        writes = [c.request("fs.write", {"sandbox": "a", "path": "/tmp/w%d" % i, "data": "W%d" % i})
                  for i in range(6)]
        stats = [c.request("fs.stat", {"sandbox": "a", "path": "/etc/hostname"}) for _ in range(6)]
        got = b"".join(base64.b64decode(c.result(rid)["data"]) for rid in reads)
        self.assertEqual(got, blob)
        for rid in writes + stats:
            c.result(rid)
        self.call("sandbox.start", {"sandbox": "a"})
        self.assertEqual(self.sh("a", "cat /tmp/w0 /tmp/w1 /tmp/w2 /tmp/w3 /tmp/w4 /tmp/w5"), "W0W1W2W3W4W5")

    def test_delete_waits_for_fs_calls_on_a_stopped_root(self):
        # An fs call on a stopped sandbox mounts its overlay (and disk) in a
        # worker; deleting the sandbox meanwhile would pull its layers from
        # under the mount. It is refused until the call is done, then works
        # and leaves nothing mounted.
        self.create("a", resources={"disk_mb": 64})
        self.write("a", "/tmp/big", base64.b64encode(os.urandom(1 << 20)).decode(), encoding="base64")
        self.call("sandbox.stop", {"sandbox": "a"})
        sid = self.inspect("a")["id"]
        rfd, wfd = os.pipe()
        c = self.daemon.client(timeout=60)
        try:
            # The worker blocks on the full pipe with the overlay mounted.
            rid = c.request("fs.read", {"sandbox": "a", "path": "/tmp/big", "fd": True}, fds=[wfd])
            os.close(wfd)
            wfd = -1
            time.sleep(0.5)
            err = self.assertRpcError(BAD_STATE, "sandbox.delete", {"sandbox": "a", "force": True})
            self.assertIn("in progress", err["message"])
            self.assertRpcError(BAD_STATE, "sandbox.start", {"sandbox": "a"})
            got = b"".join(iter(lambda: os.read(rfd, 65536), b""))
            self.assertEqual(len(got), 1 << 20)
            self.assertEqual(c.result(rid)["length"], 1 << 20)
        finally:
            os.close(rfd)
            if wfd >= 0:
                os.close(wfd)
        wait_until(lambda: self.try_delete("a"), timeout=10)
        self.assertNotIn(sid, [s["id"] for s in self.call("sandbox.list", {"all": True})["sandboxes"]])
        self.assertNotIn(self.daemon.dir, open("/proc/self/mountinfo").read())

    def try_delete(self, name):
        try:
            self.call("sandbox.delete", {"sandbox": name})
            return True
        except Exception:
            return False

    def test_long_find_does_not_block_the_daemon(self):
        self.create("a")
        self.sh("a", "mkdir -p /big; cd /big; i=0; while [ $i -lt 300 ]; do "
                "yes 'some text line with nothing to find' | head -n 2000 > f$i; i=$((i+1)); done")
        other = self.daemon.client()
        rid = self.rpc.request("fs.find", {"sandbox": "a", "path": "/big", "pattern": "(x|y)+z{3}q",
                                            "max_file_size": 1 << 30})
        t0 = time.monotonic()
        self.call("system.ping", client=other)
        self.call("fs.stat", {"sandbox": "a", "path": "/big/f1"}, client=other)
        waited = time.monotonic() - t0
        reply = self.rpc.wait(rid, timeout=120)
        total = time.monotonic() - t0
        self.assertEqual(reply["result"]["matches"], [])
        self.assertEqual(reply["result"]["files_scanned"], 300)
        self.assertLess(waited, 1.0)
        # Only meaningful when the search itself took a while.
        if total > 3 * waited:
            self.assertLess(waited, total / 2)

    def test_client_that_does_not_read_cannot_balloon_the_daemon(self):
        self.create("a")
        blob = os.urandom(4 << 20)
        self.fs("write", "a", path="/tmp/blob", data=base64.b64encode(blob).decode(), encoding="base64")
        greedy = self.daemon.client(timeout=120)
        ids = [greedy.request("fs.read", {"sandbox": "a", "path": "/tmp/blob", "encoding": "base64",
                                           "length": 4 << 20}) for _ in range(40)]
        time.sleep(2)

        def rss_kb():
            for line in open("/proc/%d/status" % self.daemon.pid):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        # 40 replies of 5.6 MB would be 224 MB; the daemon holds a few.
        # (AddressSanitizer keeps freed memory in quarantine: no bound there.)
        if "libasan" not in open("/proc/%d/maps" % self.daemon.pid).read():
            self.assertLess(rss_kb(), 64 * 1024)
        self.call("system.ping")  # and still serves others
        for rid in ids:
            self.assertEqual(base64.b64decode(greedy.wait(rid)["result"]["data"]), blob)

    def test_paused_sandbox(self):
        self.create("a")
        self.call("sandbox.pause", {"sandbox": "a"})
        self.write("a", "/tmp/p", "P")
        self.assertEqual(self.read("a", "/tmp/p"), "P")
        self.call("sandbox.resume", {"sandbox": "a"})
        self.assertEqual(self.sh("a", "cat /tmp/p"), "P")

    def test_stopped_sandbox_with_disk_limit(self):
        self.create("a", resources={"disk_mb": 64})
        self.write("a", "/tmp/d", "D")
        self.call("sandbox.stop", {"sandbox": "a"})
        self.assertEqual(self.read("a", "/tmp/d"), "D")
        self.write("a", "/tmp/e", "E")
        self.call("sandbox.start", {"sandbox": "a"})
        self.assertEqual(self.sh("a", "cat /tmp/e"), "E")


class TestFsOwnership(FsTestCase):
    def check_owner(self, sb):
        self.write(sb, "/tmp/owned/f", "x", create_parents=True)
        self.assertEqual(self.sh(sb, "stat -c %u:%g /tmp/owned /tmp/owned/f"), "0:0\n0:0\n")
        self.call("sandbox.stop", {"sandbox": sb})
        self.write(sb, "/tmp/owned/g", "x")
        self.call("sandbox.start", {"sandbox": sb})
        self.assertEqual(self.sh(sb, "stat -c %u:%g /tmp/owned/g"), "0:0\n")

    def test_owner_with_userns(self):
        self.create("a")
        self.check_owner("a")

    def test_owner_without_userns(self):
        self.create("a", userns=False)
        self.check_owner("a")

    def test_owner_is_the_sandbox_user(self):
        self.create("a", user="sandbox")
        uid = self.sh("a", "id -u").strip()
        self.write("a", "/tmp/u/f", "x", create_parents=True)
        self.assertEqual(self.sh("a", "stat -c %u /tmp/u /tmp/u/f"), "%s\n%s\n" % (uid, uid))


class TestFsFdPath(FsTestCase):
    """fs.read/fs.write with a passed descriptor, fs.archive/fs.extract."""

    def call_fd(self, method, params, fd):
        params = dict(params, fd=True)
        rid = self.rpc.request(method, params, fds=[fd])
        reply = self.rpc.wait(rid, timeout=120)
        if "error" in reply:
            raise AssertionError("%s failed: %r" % (method, reply["error"]))
        return reply["result"]

    def test_write_and_read_through_files_and_pipes(self):
        self.create("a")
        src = os.path.join(self.daemon.dir, "src.bin")
        blob = os.urandom(3 * 1024 * 1024 + 17)
        with open(src, "wb") as f:
            f.write(blob)
        with open(src, "rb") as f:
            info = self.call_fd("fs.write", {"sandbox": "a", "path": "/tmp/up.bin", "mode": "0600"}, f.fileno())
        self.assertEqual((info["size"], info["mode"]), (len(blob), 0o600))
        self.assertEqual(self.sh("a", "md5sum < /tmp/up.bin").split()[0], __import__("hashlib").md5(blob).hexdigest())
        dst = os.path.join(self.daemon.dir, "dst.bin")
        with open(dst, "wb") as f:
            r = self.call_fd("fs.read", {"sandbox": "a", "path": "/tmp/up.bin"}, f.fileno())
        self.assertEqual((r["length"], r["eof"]), (len(blob), True))
        with open(dst, "rb") as f:
            self.assertEqual(f.read(), blob)
        # A pipe each way; the daemon copies while we read.
        rfd, wfd = os.pipe()
        got = []
        t = threading.Thread(target=lambda: got.append(b"".join(iter(lambda: os.read(rfd, 65536), b""))))
        t.start()
        try:
            r = self.call_fd("fs.read", {"sandbox": "a", "path": "/tmp/up.bin", "offset": 10, "length": 1000}, wfd)
        finally:
            os.close(wfd)
        t.join(30)
        os.close(rfd)
        self.assertEqual(got[0], blob[10:1010])
        rfd, wfd = os.pipe()
        def feed():
            os.write(wfd, b"piped data\n" * 1000)
            os.close(wfd)
        t = threading.Thread(target=feed)
        t.start()
        try:
            self.call_fd("fs.write", {"sandbox": "a", "path": "/tmp/piped"}, rfd)
        finally:
            os.close(rfd)
        t.join(30)
        self.assertEqual(self.read("a", "/tmp/piped"), "piped data\n" * 1000)

    def test_fd_path_refuses_what_chunks_refuse(self):
        self.create("a")
        self.sh("a", "mkfifo /tmp/fifo; ln -s /proc/1/root /tmp/pr")
        with open(os.devnull, "wb") as f:
            for path in ("/tmp/fifo", "/tmp/pr/etc/hostname", "/dev/zero", "../../etc/shadow-none"):
                with self.subTest(path=path):
                    rid = self.rpc.request("fs.read", {"sandbox": "a", "path": path, "fd": True}, fds=[f.fileno()])
                    self.assertIn(self.rpc.wait(rid)["error"]["code"], (DENIED, NOT_FOUND))
        # "fd": true without a descriptor is a parameter error.
        self.assertRpcError(BAD_PARAMS, "fs.write", {"sandbox": "a", "path": "/tmp/x", "fd": True}, param="fd")

    def test_archive_and_extract_trees(self):
        import tarfile, io
        self.create("a")
        self.sh("a", "mkdir -p /t/sub/deep; echo one > /t/one; echo two > /t/sub/two; chmod 0750 /t/sub; "
                "ln -s one /t/link; ln -s %s /t/hostlink; mkfifo /t/fifo; touch -t 200102030405.06 /t/one"
                % self.secret)
        path = os.path.join(self.daemon.dir, "out.tar")
        with open(path, "wb") as f:
            r = self.call_fd("fs.archive", {"sandbox": "a", "path": "/t"}, f.fileno())
        self.assertEqual(r["skipped"], 1)  # the FIFO
        with tarfile.open(path) as tf:
            members = {m.name: m for m in tf.getmembers()}
            self.assertEqual(sorted(members), ["hostlink", "link", "one", "sub", "sub/deep", "sub/two"])
            self.assertEqual(tf.extractfile("one").read(), b"one\n")
            self.assertEqual(members["sub"].mode & 0o777, 0o750)
            self.assertEqual(members["hostlink"].linkname, self.secret)
            self.assertEqual(members["one"].mtime, 981173106)
        # Extract a hostile tar: climbing names, absolute names, a symlink
        # planted to the host bait and then written through.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            def add(name, data=None, **kw):
                ti = tarfile.TarInfo(name)
                for k, v in kw.items():
                    setattr(ti, k, v)
                if data is not None:
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
                else:
                    tf.addfile(ti)
            add("ok.txt", b"fine", mode=0o640, mtime=1000000000)
            add("dir", type=tarfile.DIRTYPE, mode=0o711, mtime=1000000000)
            add("dir/in.txt", b"in")
            add("../../../escape.txt", b"escaped")
            add("/abs.txt", b"abs")
            add("evil", type=tarfile.SYMTYPE, linkname=self.bait_dir)
            add("evil/planted", b"through the link")
            add("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        # While the link's target does not exist inside, writing through it fails.
        with open(path, "rb") as f:
            rid = self.rpc.request("fs.extract", {"sandbox": "a", "path": "/x", "fd": True}, fds=[f.fileno()])
            self.assertEqual(self.rpc.wait(rid)["error"]["code"], NOT_FOUND)
        self.assertBaitUntouched()
        self.sh("a", "mkdir -p %s" % self.bait_dir)
        with open(path, "rb") as f:
            r = self.call_fd("fs.extract", {"sandbox": "a", "path": "/x"}, f.fileno())
        self.assertEqual(self.sh("a", "cat %s/planted" % self.bait_dir), "through the link")
        out = self.sh("a", "cd /x && find . | sort && stat -c '%a %Y' ok.txt dir && cat ok.txt dir/in.txt abs.txt")
        self.assertIn("./ok.txt", out)
        self.assertIn("640 1000000000\n711 1000000000\n", out)
        self.assertIn("fineinabs", out)
        self.assertNotIn("escape", self.sh("a", "ls / /tmp"))
        self.assertNotIn("./dev", out)
        # The planted file went inside the sandbox (below its own bait path) or nowhere.
        self.assertBaitUntouched()
        self.assertGreaterEqual(r["skipped"], 2)


class TestFsCtl(FsTestCase):
    """sandboxctl cp and sandboxctl fs."""

    def test_cp_files_both_ways(self):
        self.create("a")
        src = os.path.join(self.daemon.dir, "up.txt")
        with open(src, "wb") as f:
            f.write(b"uploaded\n" * 10000)
        os.chmod(src, 0o640)
        self.assertEqual(self.ctl("cp", src, "a:/tmp/up.txt")[0], 0)
        self.assertEqual(self.sh("a", "stat -c %a /tmp/up.txt; wc -c < /tmp/up.txt"), "640\n90000\n")
        self.sh("a", "mkdir /tmp/into")
        self.assertEqual(self.ctl("cp", src, "a:/tmp/into")[0], 0)  # into an existing directory
        self.assertEqual(self.sh("a", "wc -c < /tmp/into/up.txt"), "90000\n")
        down = os.path.join(self.daemon.dir, "down.txt")
        self.assertEqual(self.ctl("cp", "a:/tmp/up.txt", down)[0], 0)
        with open(down, "rb") as f:
            self.assertEqual(f.read(), b"uploaded\n" * 10000)
        # The chunked path (base64 in JSON), several chunks in flight.
        big = os.path.join(self.daemon.dir, "big.bin")
        blob = os.urandom(9 * 1024 * 1024 + 5)
        with open(big, "wb") as f:
            f.write(blob)
        self.assertEqual(self.ctl("cp", "--chunked", big, "a:/tmp/big.bin")[0], 0)
        self.assertEqual(self.sh("a", "md5sum < /tmp/big.bin").split()[0], __import__("hashlib").md5(blob).hexdigest())
        big_down = os.path.join(self.daemon.dir, "big.down")
        rc, out, err = self.ctl("cp", "--chunked", "a:/tmp/big.bin", big_down)
        self.assertEqual(rc, 0, err)
        with open(big_down, "rb") as f:
            self.assertEqual(f.read(), blob)
        empty = os.path.join(self.daemon.dir, "empty")
        open(empty, "w").close()
        self.assertEqual(self.ctl("cp", "--chunked", empty, "a:/tmp/empty")[0], 0)
        self.assertEqual(self.sh("a", "wc -c < /tmp/empty"), "0\n")
        rc, out, err = self.ctl("cp", "a:/tmp/nonexistent", down)
        self.assertCtlFails((rc, out, err))
        rc, out, err = self.ctl("cp", src, down)
        self.assertCtlFails((rc, out, err))

    def test_cp_directories_both_ways(self):
        self.create("a")
        tree = os.path.join(self.daemon.dir, "tree")
        os.makedirs(os.path.join(tree, "sub", "deep"))
        with open(os.path.join(tree, "sub", "f.txt"), "w") as f:
            f.write("deep file\n")
        os.chmod(os.path.join(tree, "sub"), 0o750)
        os.symlink("sub/f.txt", os.path.join(tree, "link"))
        os.utime(os.path.join(tree, "sub", "f.txt"), (1000000000, 1000000000))
        self.assertEqual(self.ctl("cp", tree, "a:/srv/copy")[0], 0)
        out = self.sh("a", "cd /srv/copy && find . | sort; stat -c '%a' sub; stat -c '%Y' sub/f.txt; "
                      "readlink link; cat link")
        self.assertEqual(out, ".\n./link\n./sub\n./sub/deep\n./sub/f.txt\n750\n1000000000\nsub/f.txt\ndeep file\n")
        # Into an existing directory: a subdirectory of its name.
        self.assertEqual(self.ctl("cp", tree, "a:/srv")[0], 0)
        self.assertEqual(self.sh("a", "cat /srv/tree/sub/f.txt"), "deep file\n")
        # And back, with a hostile symlink in the sandbox's tree that must stay a symlink.
        self.sh("a", "ln -s %s /srv/copy/hostile; mkfifo /srv/copy/fifo" % self.secret)
        back = os.path.join(self.daemon.dir, "back")
        rc, out, err = self.ctl("cp", "a:/srv/copy", back)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(os.listdir(back)), ["hostile", "link", "sub"])
        self.assertEqual(os.readlink(os.path.join(back, "hostile")), self.secret)
        with open(os.path.join(back, "sub", "f.txt")) as f:
            self.assertEqual(f.read(), "deep file\n")
        self.assertEqual(os.stat(os.path.join(back, "sub", "f.txt")).st_mtime, 1000000000)
        self.assertEqual(os.stat(os.path.join(back, "sub")).st_mode & 0o777, 0o750)
        self.assertBaitUntouched()

    def test_fs_verbs(self):
        self.create("a")
        self.assertEqual(self.ctl("fs", "mkdir", "-p", "a", "/w/x/y")[0], 0)
        rc, out, err = self.ctl("fs", "write", "a", "/w/x/f.txt", input="line one\nneedle two\n")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.ctl("fs", "cat", "a", "/w/x/f.txt")
        self.assertEqual((rc, out), (0, "line one\nneedle two\n"), err)
        rc, out, err = self.ctl("fs", "ls", "-R", "a", "/w")
        self.assertEqual(rc, 0, err)
        self.assertIn("/w/x/f.txt", out)
        self.assertIn("/w/x/y", out)
        self.assertRegex(out, r"-rw-r--r-- +root +root +20 ")
        rc, out, err = self.ctl("fs", "find", "a", "needle", "/w")
        self.assertEqual((rc, out), (0, "/w/x/f.txt:2:needle two\n"), err)
        self.assertEqual(self.ctl("fs", "find", "a", "nothing-here", "/w")[0], 1)
        rc, out, err = self.ctl("fs", "stat", "a", "/w/x/f.txt")
        self.assertIn('"size": 20', out.replace('":20', '": 21'))
        self.assertEqual(self.ctl("fs", "mv", "a", "/w/x/f.txt", "/w/g.txt")[0], 0)
        self.assertEqual(self.sh("a", "cat /w/g.txt"), "line one\nneedle two\n")
        self.assertEqual(self.ctl("fs", "rm", "-r", "a", "/w/x")[0], 0)
        self.assertEqual(self.sh("a", "ls /w"), "g.txt\n")
        self.assertCtlFails(self.ctl("fs", "rm", "-r", "a", "/"))
        self.assertCtlFails(self.ctl("fs", "cat", "a", "/nope"))


class TestFsRace(FsTestCase):
    """An attacker inside swaps a directory for a symlink to the host bait
    (and to /) as fast as it can while writes, reads and moves go on."""

    def test_swap_dir_for_symlink_during_io(self):
        self.create("a")
        attacker = ("mkdir -p /race/real; i=0; while [ $i -lt 4000 ]; do "
                    "mv /race/d /race/real.$i 2>/dev/null; ln -sfn %s /race/d; "
                    "rm -f /race/d; ln -sfn / /race/d; rm -f /race/d; mkdir -p /race/d; "
                    "i=$((i+1)); done" % self.bait_dir)
        client = self.daemon.client()
        rid = client.request("process.exec", {"sandbox": "a", "command": attacker, "timeout_s": 120})
        deadline = time.monotonic() + 8
        n = 0
        while time.monotonic() < deadline:
            for method, params in (("fs.write", {"path": "/race/d/secret", "data": "PWNED"}),
                                   ("fs.write", {"path": "/race/d/new-%d" % n, "data": "PWNED"}),
                                   ("fs.read", {"path": "/race/d/secret"}),
                                   ("fs.mkdir", {"path": "/race/d/mk-%d" % n}),
                                   ("fs.move", {"src": "/race/d/secret", "dst": "/race/d/moved-%d" % n}),
                                   ("fs.remove", {"path": "/race/d/secret"}),
                                   ("fs.chmod", {"path": "/race/d/secret", "mode": 0o777})):
                params["sandbox"] = "a"
                rid2 = self.rpc.request(method, params)
                reply = self.rpc.wait(rid2)
                if "result" in reply and method == "fs.read":
                    self.assertNotIn("HOST-SECRET", reply["result"]["data"])
                n += 1
        client.wait(rid, timeout=180)
        self.assertGreater(n, 100)
        self.assertBaitUntouched()
        self.assertEqual(os.stat(self.secret).st_mode & 0o777, 0o644)


if __name__ == "__main__":
    main()
