#!/usr/bin/env python3
"""Build time and size of the debian and agent images, and what one agent
sandbox costs: time from sandbox.create to DevTools and to noVNC answering
through preview links, and its memory when idle.

Run as root from the top of a built tree:

    bench/agent_image.py [--builddir DIR] [--runs N] [--idle S] [--no-build]

1. build     images/build-recipe.py --force for debian, then agent, into a
             temporary cache that shares the package cache (so it times
             mmdebstrap and the layer work, not the download), both into
             one OCI layout; their layer and manifest digests compared
             with those of the cached build
2. images    layer and flattened sizes, import time of the flattened tarball
3. start     N times: sandbox.create with the environment SUNA passes,
             supervisord started in a session as SUNA does, then polled
             through the preview gateway: GET /json/version on 9222, and
             the RFB banner over a WebSocket on 6080
4. memory    after --idle seconds: the sandbox's memory cgroup (usage, and
             its anon, shmem, file cache and kernel parts), pids, and the
             peak after one CDP screenshot

Prints a Markdown section for bench/RESULTS.md. Python 3 stdlib only.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))
sys.dont_write_bytecode = True

import agentproto as ap  # noqa: E402
import sbxtest  # noqa: E402

CACHE = os.environ.get("SANDBOXD_IMAGE_CACHE", "/var/cache/sandboxd-images")
BUILDER = os.path.join(SRCDIR, "images", "build-recipe.py")
SUPERVISORD = "exec /usr/bin/supervisord -n -c /etc/supervisor/conf.d/supervisord.conf"
ENV = {"CHROME_PERSISTENT_SESSION": "true", "RESOLUTION": "1048x768x24", "RESOLUTION_WIDTH": "1048",
       "RESOLUTION_HEIGHT": "768", "VNC_PASSWORD": "bench-vnc-pw", "ANONYMIZED_TELEMETRY": "false",
       "CHROME_PATH": "", "CHROME_USER_DATA": "", "CHROME_DEBUGGING_PORT": "9222",
       "CHROME_DEBUGGING_HOST": "localhost", "CHROME_CDP": ""}
MiB = 1 << 20


def builder(recipe, cache, *extra):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, BUILDER, "--json", "--cache", cache] + list(extra) +
                       [os.path.join(SRCDIR, "images", recipe)], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("build of %s failed:\n%s" % (recipe, p.stderr))
    return time.monotonic() - t0, json.loads(p.stdout)


def memory_cgroup(pid):
    """The v1 memory cgroup directory or the v2 one of a process."""
    with open("/proc/%d/cgroup" % pid) as f:
        lines = f.read().splitlines()
    for l in lines:
        _, ctrls, path = l.split(":", 2)
        if "memory" in ctrls.split(","):
            return "v1", "/sys/fs/cgroup/memory" + path
    for l in lines:
        if l.startswith("0::"):
            return "v2", sbxtest.host_cgroup_mount() + l[3:]
    return None, None


def read_stat(path):
    out = {}
    with open(path) as f:
        for l in f:
            k, v = l.split()
            out[k] = int(v)
    return out


def memory_breakdown(pid):
    kind, d = memory_cgroup(pid)
    st = read_stat(os.path.join(d, "memory.stat"))
    if kind == "v1":
        with open(os.path.join(d, "memory.usage_in_bytes")) as f:
            usage = int(f.read())
        with open(os.path.join(d, "memory.kmem.usage_in_bytes")) as f:
            kernel = int(f.read())
        return {"usage": usage, "anon": st["total_rss"], "shmem": st["total_shmem"],
                "file": st["total_cache"] - st["total_shmem"], "kernel": kernel}
    with open(os.path.join(d, "memory.current")) as f:
        usage = int(f.read())
    return {"usage": usage, "anon": st["anon"], "shmem": st["shmem"], "file": st["file"] - st["shmem"],
            "kernel": st.get("kernel", st.get("slab", 0) + st.get("kernel_stack", 0) + st.get("pagetables", 0))}


def one_start(rpc, d, n):
    t0 = time.monotonic()
    sb = rpc.call("sandbox.create", {"image": "agent", "name": "bench-agent-%d" % n, "env": ENV})
    d.known_ids.add(sb["id"])
    t_create = time.monotonic() - t0
    rpc.call("session.create", {"sandbox": sb["id"], "session_id": "supervisord-session"})
    rpc.call("session.exec", {"sandbox": sb["id"], "session_id": "supervisord-session", "command": SUPERVISORD,
                              "run_async": True})
    links = {}
    for port in (6080, 9222):
        pv = rpc.call("net.preview", {"sandbox": sb["id"], "port": port})
        links[port] = (pv["gateway"], pv["url"].split("//", 1)[1].split("/", 1)[0], pv["token"])
    t_cdp = t_vnc = None
    while (t_cdp is None or t_vnc is None) and time.monotonic() - t0 < 120:
        if t_cdp is None:
            try:
                gw, host, token = links[9222]
                if ap.http_get(gw, host, "/json/version", token, timeout=2)[0] == 200:
                    t_cdp = time.monotonic() - t0
            except OSError:
                pass
        if t_vnc is None:
            try:
                gw, host, token = links[6080]
                ws = ap.WebSocket(gw, host, "/websockify", token, protocols=["binary"], timeout=2)
                try:
                    if ap.RFB(ws).read(12, timeout=2).startswith(b"RFB "):
                        t_vnc = time.monotonic() - t0
                finally:
                    ws.close()
            except (OSError, ap.WebSocketError, TimeoutError):
                pass
        time.sleep(0.05)
    return sb, links, t_create, t_cdp, t_vnc


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--builddir", default=SRCDIR)
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--idle", type=int, default=30)
    a.add_argument("--no-build", action="store_true", help="use the cached images, do not time a build")
    args = a.parse_args()
    os.environ["SBX_BUILDDIR"] = os.path.abspath(args.builddir)
    if os.geteuid() != 0:
        sys.exit("run as root")
    out = ["## Agent image (%s)" % time.strftime("%Y-%m-%d"), "",
           "Host: %s, %d CPUs, kernel %s." % (platform.node(), os.cpu_count(), platform.release()), ""]

    _, cached = builder("agent", CACHE)
    imgs = {r["name"]: r for r in cached}
    imgs["debian"]["manifest_digest"] = builder("debian", CACHE)[1][-1]["manifest_digest"]
    if not args.no_build:
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="sbxbench-img-") as tmp:
            debs = os.path.join(CACHE, "debs")
            layout = os.path.join(tmp, "layout")
            t_deb, res_deb = builder("debian", tmp, "--force", "--debs", debs, "--oci-layout", layout)
            # debian is in this cache now: this times agent's own layer
            t_agent, res = builder("agent", tmp, "--debs", debs, "--oci-layout", layout)
            fresh = {"debian": res_deb[-1], "agent": res[-1]}
            blobs = sum(os.path.getsize(os.path.join(layout, "blobs", "sha256", b))
                        for b in os.listdir(os.path.join(layout, "blobs", "sha256")))
        rows = []
        for name, t in (("debian", t_deb), ("agent", t_agent)):
            r, c = fresh[name], imgs[name]
            same = r["layer_digest"] == c["layer_digest"] and r["manifest_digest"] == c["manifest_digest"]
            rows.append("| %s | %.0f s | %d MiB | %d MiB | `%s` | `%s` | %s |" % (
                name + (", on debian" if name == "agent" else ""), t, r["layer_bytes"] / MiB,
                r["image_bytes"] / MiB, r["layer_digest"][:19], r["manifest_digest"][:19],
                "yes" if same else "no (or the mirror moved)"))
        out += ["Build with `--force` into an empty cache sharing the downloaded packages, each image written "
                "into one OCI layout; digests compared with an earlier build of the same recipes:", "",
                "| image | build | own layer | image (all layers) | layer digest | manifest digest | same as before |",
                "|---|---|---|---|---|---|---|"] + rows
        out += ["", "The layout holding both images: %d MiB (the debian layer once)." % (blobs // MiB), ""]

    d = sbxtest.Daemon(log_level="info")
    try:
        d.start()
        rpc = d.client(timeout=300)
        t0 = time.monotonic()
        rpc.call("image.import", {"name": "agent", "path": imgs["agent"]["rootfs"]}, timeout=600)
        t_import = time.monotonic() - t0
        info = rpc.call("image.inspect", {"name": "agent"})
        out += ["| image | layer | flattened tar | on disk after import |", "|---|---|---|---|",
                "| debian | %d MiB | %d MiB | |" % (imgs["debian"]["layer_bytes"] // MiB, imgs["debian"]["rootfs_bytes"] // MiB),
                "| agent | %d MiB | %d MiB | %d MiB |" % (imgs["agent"]["layer_bytes"] // MiB, imgs["agent"]["rootfs_bytes"] // MiB,
                                                       info.get("size_bytes", 0) // MiB),
                "", "Import of the agent's flattened tarball: %.1f s." % t_import, ""]

        rows = []
        for n in range(args.runs):
            sb, links, t_create, t_cdp, t_vnc = one_start(rpc, d, n)
            rows.append((t_create, t_cdp, t_vnc))
            if n < args.runs - 1:
                rpc.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
        fmt = lambda v: "%.2f" % v if v is not None else "no answer"
        out += ["| run | sandbox.create | to DevTools (/json/version via preview) | to noVNC (RFB banner via preview) |",
                "|---|---|---|---|"]
        out += ["| %d | %s s | %s s | %s s |" % (i + 1, fmt(c), fmt(p), fmt(v)) for i, (c, p, v) in enumerate(rows)]
        out.append("")

        time.sleep(args.idle)
        pid = rpc.call("sandbox.inspect", {"sandbox": sb["id"]})["init_pid"]
        idle = memory_breakdown(pid)
        stats = rpc.call("sandbox.stats", {"sandbox": sb["id"]})
        gw, host, token = links[9222]
        url = json.loads(ap.http_get(gw, host, "/json/version", token)[2])["webSocketDebuggerUrl"]
        ws = ap.WebSocket(gw, host, "/" + url.split("/", 3)[3], token)
        try:
            ap.screenshot(ap.CDP(ws), "http://localhost:8080/health")
        finally:
            ws.close()
        after = rpc.call("sandbox.stats", {"sandbox": sb["id"]})
        out += ["Memory of one idle agent sandbox after %d s (its memory cgroup; image files' page cache is shared "
                "by every sandbox of the image and counted where it was first read):" % args.idle, "",
                "| total | anon | shmem (/dev/shm, X) | file cache | kernel | pids | peak after a CDP screenshot |",
                "|---|---|---|---|---|---|---|",
                "| %d MiB | %d MiB | %d MiB | %d MiB | %d MiB | %d of %d | %d MiB of %d MiB |" % (
                    idle["usage"] // MiB, idle["anon"] // MiB, idle["shmem"] // MiB, idle["file"] // MiB,
                    idle["kernel"] // MiB, stats["pids"], stats["pids_max"], after["memory_peak_bytes"] // MiB,
                    after["memory_max_bytes"] // MiB), ""]
    finally:
        d.cleanup()
    print("\n".join(out))


if __name__ == "__main__":
    main()
