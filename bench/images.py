#!/usr/bin/env python3
"""Layered images: import of a Debian-based OCI layout against `umoci
unpack` of the same layout, a pull from a registry on loopback against
`skopeo copy` alone, and sandbox.create from that image against from
`minimal`.

Run as root from the top of a built tree:

    bench/images.py [--builddir DIR] [--runs N] [--creates N] [--rootfs TAR] [--out FILE]

1. layout    a Debian root file system (the newest debian build in
             /var/cache/sandboxd-images, or --rootfs) made into an OCI
             layout by umoci (one gzip layer), once, untimed
2. import    N times: image.import of the layout into an empty layer store
             (the image removed and its layer gone between runs), against
             `umoci unpack` of the same layout into a new bundle
3. pull      the layout pushed by skopeo to docker-registry on loopback;
             N times: image.pull into an empty store, against
             `skopeo copy docker://... oci:DIR` into a new directory
4. create    N times each: sandbox.create (started) from the Debian image
             and from `minimal`, each deleted after

Prints a Markdown section (and appends it to --out). Python 3 stdlib only.
"""

import argparse
import glob
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))
sys.dont_write_bytecode = True

import sbxtest  # noqa: E402

MiB = 1 << 20


def sh(cmd, cwd=None):
    subprocess.run(cmd, cwd=cwd, check=True, shell=isinstance(cmd, str), stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def stats(xs):
    return "%.2f | %.2f | %.2f" % (statistics.mean(xs), statistics.median(xs), min(xs))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def debian_rootfs():
    found = sorted(glob.glob("/var/cache/sandboxd-images/debian-*/rootfs.tar"), key=os.path.getmtime)
    if not found:
        sys.exit("no Debian root file system: build one with images/build-recipe.py images/debian, or give --rootfs")
    return found[-1]


def wait_store_empty(d, timeout=120):
    p = os.path.join(d.state_dir, "layers", "layers", "sha256")
    deadline = time.monotonic() + timeout
    while os.path.isdir(p) and os.listdir(p):
        if time.monotonic() > deadline:
            sys.exit("layers were not released")
        time.sleep(0.1)


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--builddir", default=SRCDIR)
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--creates", type=int, default=10)
    a.add_argument("--rootfs", help="a Debian root file system tar")
    a.add_argument("--out", help="append the section to this file")
    args = a.parse_args()
    os.environ["SBX_BUILDDIR"] = os.path.abspath(args.builddir)
    if os.geteuid() != 0:
        sys.exit("run as root")
    for tool in ("umoci", "skopeo", "docker-registry"):
        if not shutil.which(tool):
            sys.exit("needs %s (apt-get install umoci skopeo docker-registry)" % tool)
    rootfs = args.rootfs or debian_rootfs()
    work = tempfile.mkdtemp(dir="/var/tmp", prefix="sbxbench-images-")
    reg = None
    d = sbxtest.Daemon(log_level="info")
    try:
        # 1. the layout, made by umoci
        t0 = time.monotonic()
        sh("umoci init --layout L && umoci new --image L:debian && umoci unpack --image L:debian b &&"
           " tar -xf '%s' -C b/rootfs --numeric-owner && umoci repack --image L:debian b && rm -rf b" % rootfs, work)
        t_layout = time.monotonic() - t0
        layout = os.path.join(work, "L")
        blob_bytes = sum(os.path.getsize(f) for f in glob.glob(os.path.join(layout, "blobs", "sha256", "*")))

        d.start()
        rpc = d.client(timeout=600)

        # 2. import vs umoci unpack
        imports, unpacks = [], []
        for i in range(args.runs):
            imports.append(timed(lambda: rpc.call("image.import", {"path": layout, "name": "debian", "progress": False},
                                                  timeout=600)))
            if i < args.runs - 1:
                rpc.call("image.remove", {"name": "debian"})
                wait_store_empty(d)
            bundle = os.path.join(work, "bundle")
            unpacks.append(timed(lambda: sh(["umoci", "unpack", "--image", layout + ":debian", bundle])))
            shutil.rmtree(bundle)
        info = rpc.call("image.inspect", {"name": "debian"})

        # 3. pull vs skopeo copy
        port = free_port()
        cfg = os.path.join(work, "registry.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\n"
                    "http:\n  addr: 127.0.0.1:%d\n" % (work, port))
        reg = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        ref = "127.0.0.1:%d/bench/debian:1" % port
        sh(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:%s:debian" % layout, "docker://" + ref])
        pulls, copies = [], []
        for i in range(args.runs):
            if rpc.call("image.list")["images"] and any(ref in im["names"] for im in rpc.call("image.list")["images"]):
                rpc.call("image.remove", {"name": ref})
            # An empty store: the layer of the import above goes too.
            if any(im["name"] == "debian" for im in rpc.call("image.list")["images"]):
                rpc.call("image.remove", {"name": "debian"})
            wait_store_empty(d)
            pulls.append(timed(lambda: rpc.call("image.pull", {"ref": ref, "insecure": True, "progress": False},
                                                timeout=600)))
            dst = os.path.join(work, "copy")
            copies.append(timed(lambda: sh(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref,
                                            "oci:%s:x" % dst])))
            shutil.rmtree(dst)

        # 4. create from the Debian image vs from minimal
        creates = {"debian (pulled, 1 layer)": [], "minimal": []}
        for i in range(args.creates):
            for image, key in ((ref, "debian (pulled, 1 layer)"), ("minimal", "minimal")):
                t0 = time.monotonic()
                sb = rpc.call("sandbox.create", {"image": image, "service": False}, timeout=120)
                creates[key].append(time.monotonic() - t0)
                rpc.call("sandbox.delete", {"sandbox": sb["id"], "force": True}, timeout=120)

        out = ["## Layered images: import, pull, create", "",
               "Command: `bench/images.py --builddir %s --runs %d --creates %d%s%s`" % (
                   args.builddir, args.runs, args.creates, " --rootfs " + args.rootfs if args.rootfs else "",
                   " --out " + args.out if args.out else ""), "",
               "- date: %s UTC; host %s, %d CPUs, kernel %s; load average at the end %s" % (
                   time.strftime("%Y-%m-%d %H:%M", time.gmtime()), platform.node(), os.cpu_count(),
                   platform.release(), " ".join("%.2f" % x for x in os.getloadavg())),
               "- image: a Debian root file system (`%s`, %d MiB) made into an OCI layout by umoci in %.0f s "
               "(one gzip layer; blobs %d MiB); file content after import %d MiB" % (
                   rootfs, os.path.getsize(rootfs) // MiB, t_layout, blob_bytes // MiB, info["size_bytes"] // MiB),
               "",
               "Seconds; %d runs each, every import and pull into an empty layer store." % args.runs, "",
               "| what | mean | median | min |", "|---|---:|---:|---:|",
               "| `image.import` of the layout (verify, unpack into the layer store) | %s |" % stats(imports),
               "| `umoci unpack` of the same layout into a bundle | %s |" % stats(unpacks),
               "| `image.pull` from docker-registry on loopback (skopeo copy + import) | %s |" % stats(pulls),
               "| `skopeo copy docker://… oci:…` alone | %s |" % stats(copies),
               "",
               "`sandbox.create` (started), milliseconds, %d runs each, one connection:" % args.creates, "",
               "| image | mean | median | min |", "|---|---:|---:|---:|"]
        for k, xs in creates.items():
            out.append("| %s | %s |" % (k, stats([x * 1000 for x in xs])))
        out.append("")
        text = "\n".join(out)
        print(text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text)
    finally:
        if reg:
            reg.terminate()
            reg.wait()
        try:
            d.delete_all()
        except Exception:
            pass
        d.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
