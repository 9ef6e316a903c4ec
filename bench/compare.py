#!/usr/bin/env python3
"""Two builds of sandboxd side by side: is the second one slower?

    sudo bench/compare.py --before /tmp/mainbuild --after build [-n 200] [--out bench/RESULTS.md]

Both daemons run at once, each with its own state, run directory, socket,
bridge and subnet, from a copy of its build's binaries and image. The lines
of bench/run.py's full cycle are timed for each on one socket connection
(`sandbox.create`, which starts the sandbox; `process.exec` of `true`;
`sandbox.delete` with force), plus `process.exec` of `true` into a sandbox
that stays running. The two builds take turns in rounds, the first of a
round switching every round, so that a slow spell of the shared machine
lands on both alike.

The section is written to --out between its own markers, keeping the rest
of the file (bench/run.py keeps this section in turn).
"""

import argparse
import contextlib
import datetime
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import run as bench  # noqa: E402  (helpers: summarize, Cleanup, Client, log, check_exec)

CMP_BEGIN = "<!-- comparison section: written by bench/compare.py -->"
CMP_END = "<!-- end of comparison section -->"
PHASES = ("create", "exec", "delete", "exec_running")
LABELS = {
    "create": "`sandbox.create` (creates and starts)",
    "exec": "`process.exec` of `true` (in the cycle)",
    "delete": "`sandbox.delete` with force",
    "exec_running": "`process.exec` of `true` into a running sandbox",
}


def old_section(text):
    """This script's section of a report, markers included, or None."""
    i = text.find(CMP_BEGIN)
    j = text.find(CMP_END)
    if i < 0 or j < i:
        return None
    return text[i:j + len(CMP_END)]


def splice(text, section):
    old = old_section(text)
    if old is not None:
        return text.replace(old, section)
    return text.rstrip("\n") + "\n\n" + section + "\n"


def git_rev(builddir):
    """The commit of the tree a build directory sits in, when it is a git
    checkout."""
    for d in (builddir, os.path.dirname(builddir)):
        p = subprocess.run(["git", "-C", d, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.strip()
    return None


class Daemon:
    """A private sandboxd from a snapshot of one build tree."""

    def __init__(self, name, builddir, tmp, index, cleanup):
        self.name = name
        self.builddir = builddir
        top = os.path.join(tmp, name)
        os.makedirs(os.path.join(top, "build", "src"))
        os.makedirs(os.path.join(top, "build", "images"))
        src = os.path.join(top, "build", "src")
        for exe in ("sandboxd", "sandbox-init", "sandbox-monitor"):
            shutil.copy2(os.path.join(builddir, "src", exe), os.path.join(src, exe))
        image = os.path.join(top, "build", "images", "minimal.tar.gz")
        shutil.copy2(os.path.join(builddir, "images", "minimal.tar.gz"), image)
        self.sock = os.path.join(top, "sock")
        self.log = os.path.join(top, "log")
        conf = os.path.join(top, "sandboxd.conf")
        with open(conf, "w") as fh:
            fh.write("bridge = sbxcmp%d\nsubnet = 10.252.%d.0/24\npreview_listen = 127.0.0.1:0\n"
                     % (index, (os.getpid() % 120) * 2 + index))
        argv = [os.path.join(src, "sandboxd"), "-f", "--config", conf, "--state-dir", os.path.join(top, "state"),
                "--run-dir", os.path.join(top, "run"), "--socket", self.sock, "--log-level", "warn",
                "--init-path", os.path.join(src, "sandbox-init"), "--default-image-path", image]
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True)
        cleanup.push("sandboxd %s (pid %d)" % (name, self.proc.pid), self.stop)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise bench.BenchError("sandboxd %s exited at start: %s" % (name, self.tail()))
            try:
                self.client = bench.Client(self.sock)
                self.client.call("system.ping")
                break
            except (OSError, bench.BenchError):
                if time.monotonic() > deadline:
                    raise bench.BenchError("sandboxd %s did not answer: %s" % (name, self.tail()))
                time.sleep(0.05)
        self.samples = {k: [] for k in PHASES}
        self.rounds = []  # per round, the samples of each line
        # CPU time of the daemon and of its reaped children (inits, exec
        # helpers, workers), per cycle and per exec: far steadier than
        # latency on a busy machine.
        self.cpu = {"cycle": [0, 0], "exec_running": [0, 0]}
        self.running = self.client.call("sandbox.create", {"image": "minimal"})["id"]

    def tail(self):
        with contextlib.suppress(OSError), open(self.log, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")
        return ""

    def alive(self):
        if self.proc.poll() is not None:
            raise bench.BenchError("sandboxd %s died (exit %s): %s" % (self.name, self.proc.returncode, self.tail()))

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.proc.pid) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15])  # utime stime cutime cstime

    def block(self, k, warm):
        """warm untimed and k timed cycles, then as many execs into the
        running sandbox."""
        c = self.client
        start = {k: len(v) for k, v in self.samples.items()}
        cpu0 = self.cpu_ticks()
        for i in range(warm + k):
            t0 = time.perf_counter_ns()
            sid = c.call("sandbox.create", {"image": "minimal"})["id"]
            t1 = time.perf_counter_ns()
            bench.check_exec(c.call("process.exec", {"sandbox": sid, "cmd": ["true"]}))
            t2 = time.perf_counter_ns()
            c.call("sandbox.delete", {"sandbox": sid, "force": True})
            t3 = time.perf_counter_ns()
            if i >= warm:
                self.samples["create"].append((t1 - t0) / 1e6)
                self.samples["exec"].append((t2 - t1) / 1e6)
                self.samples["delete"].append((t3 - t2) / 1e6)
        cpu1 = self.cpu_ticks()
        self.cpu["cycle"][0] += cpu1 - cpu0
        self.cpu["cycle"][1] += warm + k
        for i in range(warm + k):
            t0 = time.perf_counter_ns()
            bench.check_exec(c.call("process.exec", {"sandbox": self.running, "cmd": ["true"]}))
            if i >= warm:
                self.samples["exec_running"].append((time.perf_counter_ns() - t0) / 1e6)
        self.cpu["exec_running"][0] += self.cpu_ticks() - cpu1
        self.cpu["exec_running"][1] += warm + k
        self.rounds.append({k: v[start[k]:] for k, v in self.samples.items()})
        self.alive()

    def stop(self):
        with contextlib.suppress(Exception):
            c = bench.Client(self.sock)
            for sb in c.call("sandbox.list").get("sandboxes", []):
                c.call("sandbox.delete", {"sandbox": sb["id"], "force": True})
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def median_ratio_interval(before_rounds, after_rounds, reps=2000, seed=1):
    """A 95 % bootstrap interval of median(after) / median(before), the
    rounds resampled whole: samples within a round share the machine's
    state of the moment, so they are not independent of each other."""
    rnd = random.Random(seed)
    n = len(before_rounds)
    ratios = []
    for _ in range(reps):
        pick = [rnd.randrange(n) for _ in range(n)]
        b = statistics.median([x for i in pick for x in before_rounds[i]])
        a = statistics.median([x for i in pick for x in after_rounds[i]])
        ratios.append(a / b)
    ratios.sort()
    return ratios[int(0.025 * reps)], ratios[int(0.975 * reps) - 1]


def rounds_slower(before_rounds, after_rounds):
    """In how many rounds the median of after was above that of before."""
    return sum(statistics.median(a) > statistics.median(b) for b, a in zip(before_rounds, after_rounds))


def render(r, command, args):
    L = [CMP_BEGIN, "## Before and after: two builds in one run", ""]
    L.append("Command: `%s` (%s UTC); load average at start / end: %s / %s on %d CPUs."
             % (command, r["started"], r["load0"], r["load1"], os.cpu_count() or 1))
    L.append("")
    L.append("before: `%s`%s; after: `%s`%s. Both daemons ran at once, each from a copy of its build's binaries "
             "and image, with its own state, socket, bridge and subnet, default settings and the image `minimal`. "
             "%d timed create+exec+delete cycles and %d execs into a running sandbox per build, on one socket "
             "connection each, after warm-up; the two builds took turns in %d rounds, the first of a round "
             "switching every round. Milliseconds; the ratio is after / before of the medians, with a 95 %% "
             "bootstrap interval (rounds resampled whole), and the rounds in which after's median was the higher."
             % (r["before_dir"], " (%s)" % r["before_rev"] if r["before_rev"] else "", r["after_dir"],
                " (%s)" % r["after_rev"] if r["after_rev"] else "", args.iterations, args.iterations, args.rounds))
    L.append("")
    L.append("| line | before median | after median | before mean | after mean | before p95 | after p95 "
             "| after / before (median) | rounds after slower |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in PHASES:
        b, a = r["before"][k], r["after"][k]
        lo, hi = r["interval"][k]
        L.append("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f (%.2f-%.2f) | %d of %d |"
                 % (LABELS[k], b["median"], a["median"], b["mean"], a["mean"], b["p95"], a["p95"],
                    a["median"] / b["median"], lo, hi, r["rounds_slower"][k], args.rounds))
    L.append("")
    tck = os.sysconf("SC_CLK_TCK")
    L.append("CPU time of each daemon and its reaped children (inits, exec helpers, workers), warm-up included, "
             "in ms: per create+exec+delete cycle %.2f before, %.2f after (%.2f); per exec into a running sandbox "
             "%.2f before, %.2f after (%.2f)."
             % tuple(x for k in ("cycle", "exec_running")
                     for x in (r["cpu"]["before"][k] * 1000 / tck, r["cpu"]["after"][k] * 1000 / tck,
                               r["cpu"]["after"][k] / r["cpu"]["before"][k] if r["cpu"]["before"][k] else float("nan"))))
    L.append("")
    slower = [LABELS[k] for k in PHASES if r["interval"][k][0] > 1.0]
    if slower:
        L.append("Slower after (the whole interval above 1): %s." % ", ".join(slower))
    else:
        L.append("No line is slower after: no interval lies wholly above 1.")
    if float(r["load0"].split()[0]) > (os.cpu_count() or 1):
        L.append("")
        L.append("The machine was busy with other work during this run (load average above its %d CPUs): "
                 "compare the two builds within the run, not absolute times." % (os.cpu_count() or 1))
    L.append(CMP_END)
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description="Two builds of sandboxd in one run: create, exec, delete.")
    ap.add_argument("--before", required=True, help="build tree of the baseline (src/sandboxd, images/)")
    ap.add_argument("--after", required=True, help="build tree to compare with it")
    ap.add_argument("--before-label", help="what the baseline is (default: its git commit, if any)")
    ap.add_argument("--after-label", help="what the other build is (default: its git commit, if any)")
    ap.add_argument("--iterations", "-n", type=int, default=200, help="timed cycles per build (default 200)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds the builds take turns in (default 10)")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    if args.iterations < args.rounds or args.rounds < 1:
        ap.error("--iterations must be at least --rounds, which must be at least 1")
    if os.geteuid() != 0:
        print("bench/compare.py: must run as root", file=sys.stderr)
        return 2
    command = shlex.join([sys.argv[0]] + sys.argv[1:])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, bench.on_signal)
    cleanup = bench.Cleanup()
    tmp = tempfile.mkdtemp(prefix="sbxcompare-", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    cleanup.push("temporary directory", bench.remove_tempdir, tmp)
    try:
        r = {"load0": " ".join("%.2f" % x for x in os.getloadavg()),
             "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")}
        dirs = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
        for k in ("before", "after"):
            r[k + "_dir"] = dirs[k]
            r[k + "_rev"] = getattr(args, k + "_label") or git_rev(dirs[k])
        daemons = [Daemon("before", dirs["before"], tmp, 0, cleanup), Daemon("after", dirs["after"], tmp, 1, cleanup)]
        per = [args.iterations // args.rounds + (1 if i < args.iterations % args.rounds else 0)
               for i in range(args.rounds)]
        warm0 = max(5, args.iterations // 20)
        for rnd in range(args.rounds):
            order = daemons if rnd % 2 == 0 else daemons[::-1]
            bench.log("round %d of %d: %s" % (rnd + 1, args.rounds, ", ".join(d.name for d in order)))
            for d in order:
                d.block(per[rnd], warm0 if rnd == 0 else 2)
        r["load1"] = " ".join("%.2f" % x for x in os.getloadavg())
        for d in daemons:
            r[d.name] = {k: bench.summarize(v) for k, v in d.samples.items()}
        r["cpu"] = {d.name: {k: v[0] / v[1] for k, v in d.cpu.items()} for d in daemons}
        br = {k: [x[k] for x in daemons[0].rounds] for k in PHASES}
        ar = {k: [x[k] for x in daemons[1].rounds] for k in PHASES}
        r["interval"] = {k: median_ratio_interval(br[k], ar[k]) for k in PHASES}
        r["rounds_slower"] = {k: rounds_slower(br[k], ar[k]) for k in PHASES}
        for k in PHASES:
            bench.log("  %-13s before median %7.2f  after median %7.2f ms"
                      % (k, r["before"][k]["median"], r["after"][k]["median"]))
        cleanup.run()
        text = ""
        with contextlib.suppress(OSError), open(args.out) as fh:
            text = fh.read()
        section = render(r, command, args)
        with open(args.out + ".tmp", "w") as fh:
            fh.write(splice(text, section))
        os.replace(args.out + ".tmp", args.out)
        print(section)
        return 0
    except KeyboardInterrupt:
        bench.log("interrupted; cleaning up")
        return 130
    except (bench.BenchError, OSError, subprocess.SubprocessError) as e:
        bench.log("error: %s" % e)
        return 1
    finally:
        cleanup.run()


if __name__ == "__main__":
    sys.exit(main())
