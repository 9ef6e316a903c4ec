#!/usr/bin/env python3
"""Snapshots, forks and archives: how long a running sandbox is paused by
sandbox.snapshot with a 100 MB and a 1 GB writable layer, how long a fork
takes, and archive and restore time and size against `tar --zstd` of the
same directory. Writes its section of bench/RESULTS.md.

    sudo bench/snapshots.py --builddir build [--sizes 100,1024] [--out bench/RESULTS.md]

It starts a daemon of its own (the integration tests' harness) in a
temporary directory. Layers are half random bytes (incompressible) and half
text (compressible), in 16 MB files, written by a process in the sandbox;
during the snapshot a second process keeps writing a small file in a loop.
The sandboxes have no disk limit, so their writable layer is a plain
directory that tar reads as it is.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
MARK_BEGIN = "<!-- snapshots section: written by bench/snapshots.py -->"
MARK_END = "<!-- end of snapshots section -->"

WRITER = ("(i=0; while :; do i=$((i+1)); echo $i > /root/c.tmp; mv /root/c.tmp /root/counter; done) "
          "</dev/null >/dev/null 2>&1 &")


def mb(n):
    return "%.1f MB" % (n / 1e6)


def run_size(t, size_mb, tmp):
    name = "bench%d" % size_mb
    rpc = t.rpc
    sb = rpc.call("sandbox.create", {"name": name, "resources": {"disk_mb": 0}})
    files = max(1, size_mb // 16)
    script = ("mkdir -p /data && i=0; while [ $i -lt %d ]; do "
              "if [ $((i %% 2)) = 0 ]; then head -c 16000000 /dev/urandom > /data/f$i; "
              "else yes 'a line of text that compresses rather well, number '$i | head -c 16000000 > /data/f$i; fi; "
              "i=$((i+1)); done" % files)
    rpc.call("process.exec", {"sandbox": name, "command": script, "timeout_s": 1800}, timeout=1900)
    rpc.call("process.exec", {"sandbox": name, "command": WRITER})
    upper = os.path.join(t.daemon.state_dir, "sandboxes", sb["id"], "upper")
    layer = int(subprocess.run(["du", "-sb", upper], capture_output=True, text=True).stdout.split()[0])
    r = {"size_mb": size_mb, "layer_bytes": layer}

    t0 = time.perf_counter()
    res = rpc.call("sandbox.snapshot", {"sandbox": name, "image": "bench-snap-%d" % size_mb}, timeout=1800)
    r["snapshot_s"] = time.perf_counter() - t0
    r["pause_ms"] = res["snapshot"]["pause_ms"]

    t0 = time.perf_counter()
    fork = rpc.call("sandbox.fork", {"sandbox": name, "name": name + "-fork"}, timeout=1800)
    r["fork_s"] = time.perf_counter() - t0
    t.daemon.known_ids.add(fork["id"])
    rpc.call("sandbox.delete", {"sandbox": name + "-fork", "force": True}, timeout=600)

    rpc.call("sandbox.stop", {"sandbox": name}, timeout=120)
    # tar --zstd of the same directory, synced as the archive is.
    out = os.path.join(tmp, "layer.tar.zst")
    t0 = time.perf_counter()
    subprocess.run(["tar", "--zstd", "--xattrs", "--xattrs-include=*", "--acls", "--sparse", "-cf", out, "-C",
                    os.path.dirname(upper), "upper"], check=True)
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)  # the archive's own file is synced the same way
    os.close(fd)
    r["tar_s"] = time.perf_counter() - t0
    r["tar_bytes"] = os.path.getsize(out)
    dest = os.path.join(tmp, "untar")
    os.mkdir(dest)
    t0 = time.perf_counter()
    subprocess.run(["tar", "--zstd", "--xattrs", "--xattrs-include=*", "--acls", "-xpf", out, "-C", dest],
                   check=True)
    subprocess.run(["sync", "-f", dest], check=True)
    r["untar_s"] = time.perf_counter() - t0
    shutil.rmtree(dest)
    os.unlink(out)

    t0 = time.perf_counter()
    rpc.call("sandbox.archive", {"sandbox": name}, timeout=1800)
    r["archive_s"] = time.perf_counter() - t0
    r["archive_bytes"] = rpc.call("sandbox.inspect", {"sandbox": name})["archive"]["size_bytes"]
    t0 = time.perf_counter()
    rpc.call("sandbox.start", {"sandbox": name}, timeout=1800)
    r["restore_start_s"] = time.perf_counter() - t0
    rpc.call("sandbox.stop", {"sandbox": name}, timeout=120)
    t0 = time.perf_counter()
    rpc.call("sandbox.start", {"sandbox": name}, timeout=120)
    r["plain_start_s"] = time.perf_counter() - t0
    rpc.call("sandbox.delete", {"sandbox": name, "force": True}, timeout=600)
    rpc.call("image.remove", {"name": "bench-snap-%d" % size_mb})
    for img in rpc.call("image.list")["images"]:
        if img["name"].startswith(name + "-fork"):
            rpc.call("image.remove", {"name": img["name"]})
    return r


def render(results, cmd, load0, load1):
    lines = [MARK_BEGIN, "", "## Snapshots, forks and archives", "",
             "Command: `%s`. Each layer: half random bytes, half text, in 16 MB files; a process in the sandbox "
             "writes a file in a loop during the snapshot. No disk limit (the writable layer is a plain directory); "
             "the file system of the state dir has no reflinks (ext4), so the clone is a copy in the kernel." % cmd,
             "",
             "| writable layer | snapshot pause | snapshot total | fork (snapshot + create + start) | archive | archive size "
             "| start from archive (restore + start) | start, not archived | `tar --zstd` + fsync | its size | untar + syncfs |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append("| %s | %d ms | %.2f s | %.2f s | %.2f s | %s | %.2f s | %.3f s | %.2f s | %s | %.2f s |" % (
            mb(r["layer_bytes"]), r["pause_ms"], r["snapshot_s"], r["fork_s"], r["archive_s"], mb(r["archive_bytes"]),
            r["restore_start_s"], r["plain_start_s"], r["tar_s"], mb(r["tar_bytes"]), r["untar_s"]))
    lines += ["",
              "The pause is the time the sandbox's group is frozen: the writable layer is cloned meanwhile; making "
              "a layer of the clone (a tar written, hashed and unpacked into the layer store) follows with the "
              "sandbox running, and is most of the snapshot's total. The archive keeps what `tar --xattrs --acls "
              "--sparse` keeps (and trusted.* attributes); both are zstd at its default level 3. Both sides sync as "
              "the daemon does: the archive file is fsynced, an unpacked tree is synced with syncfs (which also "
              "flushes whatever else is dirty on that file system).",
              "",
              "Load average %s at the start and %s at the end (2 cores, shared with other work): compare within "
              "the run." % (load0, load1), "", MARK_END]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", default=TOP)
    ap.add_argument("--sizes", default="100,1024", help="layer sizes in MB, comma-separated")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    sys.argv = [sys.argv[0], "--builddir", os.path.abspath(args.builddir)]
    sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
    import sbxtest  # noqa: E402

    class T:
        pass

    t = T()
    t.daemon = sbxtest.Daemon(log_level="info")
    t.daemon.start()
    t.rpc = t.daemon.client(timeout=3600)
    load0 = " ".join(open("/proc/loadavg").read().split()[:3])
    results = []
    tmp = tempfile.mkdtemp(prefix="sbxbench-snap-", dir=t.daemon.state_dir)
    try:
        for s in args.sizes.split(","):
            r = run_size(t, int(s), tmp)
            print(r, flush=True)
            results.append(r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        t.daemon.cleanup()
    load1 = " ".join(open("/proc/loadavg").read().split()[:3])
    cmd = "bench/snapshots.py --builddir build --sizes %s" % args.sizes
    section = render(results, cmd, load0, load1)
    text = open(args.out).read() if os.path.exists(args.out) else ""
    if MARK_BEGIN in text and MARK_END in text:
        text = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END) + "\n?", lambda m: section, text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(args.out, "w") as f:
        f.write(text)
    print(section)


if __name__ == "__main__":
    main()
