"""Density: many idle sandboxes on one host (the density section of
RESULTS.md).

A daemon of its own, with default settings but max_sandboxes, creates idle
sandboxes from `minimal` one after another over one connection. At each
step (100, 500, 1000, then every 1000) it records: host memory per sandbox
(the rise of MemTotal - MemAvailable since before the first create, divided
by the count), the kernel's unreclaimable slab and the sandboxes' own
processes (PSS) for comparison, the daemon's RSS and descriptors, create
latency over the last 100 creates (p50, p95), exec of `true` into the
oldest and the newest sandbox (p50, p99 of 1000 each), the time of
`sandboxctl ls`, and the daemon's CPU time over 5 idle seconds (what the
once-a-second tick costs). Then every sandbox is deleted over one
connection, and loop devices and descriptors are counted again, and once
more after the daemon stops.

Imported by run.py (--density N, --long, --density-only); standard library
only.
"""

import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import time

STEPS = (100, 500, 1000, 2000, 3000, 4000, 5000)
EXECS_PER_STEP = 1000  # a p99 of 200 is their second-largest: one stray delay moves it
WINDOW = 100  # creates between two samples of host memory
IDLE_SECONDS = 5
BEGIN = "<!-- density section: written by bench/run.py (--density-only rewrites just this) -->"
END = "<!-- end of density section -->"


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])  # kB
    return out


def host_used_kb():
    m = meminfo()
    return m["MemTotal"] - m["MemAvailable"]


def loop_devices():
    return sorted(n for n in os.listdir("/sys/block") if n.startswith("loop"))


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def host_tasks():
    """Every thread on the host (the total of /proc/loadavg)."""
    with open("/proc/loadavg") as f:
        return int(f.read().split()[3].split("/")[1])


def memory_cgroups():
    with open("/proc/cgroups") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == "memory":
                return int(fields[2])
    return 0


def proc_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid):
    with contextlib.suppress(OSError), open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class Density:
    def __init__(self, b, count, network, log, Client, RpcError, BenchError):
        self.b = b
        self.count = count
        self.network = network
        self.log = log
        self.Client = Client
        self.RpcError = RpcError
        self.BenchError = BenchError
        self.ids = []
        self.steps = []
        self.creates_ms = []
        self.r = {"count": count, "network": network}

    # -- the daemon -------------------------------------------------------

    def start_daemon(self):
        d = os.path.join(self.b.tmp, "density")
        os.mkdir(d)
        self.dir = d
        self.sock = os.path.join(d, "sock")
        conf = os.path.join(d, "sandboxd.conf")
        with open(conf, "w") as fh:
            fh.write("bridge = sbxdense\nsubnet = 10.253.0.0/16\npreview_listen = 127.0.0.1:0\n"
                     "max_sandboxes = %d\n" % (self.count + 10))
        self.argv = [self.b.sandboxd, "-f", "--config", conf, "--state-dir", os.path.join(d, "state"),
                     "--run-dir", os.path.join(d, "run"), "--socket", self.sock, "--log-level", "warn"]
        self.log_path = os.path.join(d, "log")
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        self.b.cleanup.push("density sandboxd (pid %d)" % self.proc.pid, self.stop_daemon)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise self.BenchError("the density daemon exited at start: %s" % self.tail())
            with contextlib.suppress(OSError, self.BenchError):
                c = self.Client(self.sock, timeout=600)
                c.call("system.ping")
                self.client = c
                return
            if time.monotonic() > deadline:
                raise self.BenchError("the density daemon does not answer: %s" % self.tail())
            time.sleep(0.05)

    def tail(self):
        with contextlib.suppress(OSError), open(self.log_path, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-5:])
        return ""

    def stop_daemon(self):
        if self.ids:  # an error midway: delete what is left before stopping
            with contextlib.suppress(Exception):
                for sid in list(self.ids):
                    self.client.call("sandbox.delete", {"sandbox": sid, "force": True})
                    self.ids.remove(sid)
        with contextlib.suppress(Exception):
            self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- measuring --------------------------------------------------------

    def exec_ms(self, sid):
        t = time.perf_counter_ns()
        r = self.client.call("process.exec", {"sandbox": sid, "cmd": ["true"]})
        dt = (time.perf_counter_ns() - t) / 1e6
        if r.get("exit_code") != 0:
            raise self.BenchError("exec into %s: %r" % (sid, r))
        return dt

    def ls_ms(self):
        best = []
        for _ in range(3):
            t = time.perf_counter_ns()
            p = subprocess.run([self.b.sandboxctl, "--socket", self.sock, "ls"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=300)
            best.append((time.perf_counter_ns() - t) / 1e6)
            if p.returncode != 0:
                raise self.BenchError("sandboxctl ls: %s" % p.stderr.strip())
            lines = len(p.stdout.splitlines()) - 1
            if lines != len(self.ids):
                raise self.BenchError("sandboxctl ls listed %d sandboxes, not %d" % (lines, len(self.ids)))
        return statistics.median(best)

    def idle_cpu_ms(self):
        hz = os.sysconf("SC_CLK_TCK")
        t0 = proc_ticks(self.proc.pid)
        time.sleep(IDLE_SECONDS)
        return (proc_ticks(self.proc.pid) - t0) * 1000 / hz / IDLE_SECONDS

    def sandboxes_pss_kb(self):
        total = 0
        for pid in self.init_pids:
            total += pss_kb(pid)
        return total

    def execs(self, prefix):
        """p50 and p99 of EXECS_PER_STEP execs into the oldest and into the
        newest sandbox, taking turns, under prefix + old_/new_."""
        times = {"old": [], "new": []}
        for _ in range(EXECS_PER_STEP):
            times["old"].append(self.exec_ms(self.ids[0]))
            times["new"].append(self.exec_ms(self.ids[-1]))
        out = {}
        for which, t in times.items():
            out["%s%s_p50" % (prefix, which)] = statistics.median(t)
            out["%s%s_p99" % (prefix, which)] = pct(t, 99)
        return out

    def step(self, n):
        prev = self.steps[-1]["n"] if self.steps else 0
        window = self.creates_ms[-100:]
        execs = self.execs("exec_")
        info = self.client.call("system.info")
        used = host_used_kb()
        m = meminfo()
        s = {
            "n": n,
            "create_p50": statistics.median(window),
            "create_p95": pct(window, 95),
            **execs,
            "ls_ms": self.ls_ms(),
            "host_kb_each": (used - self.used0) / n,
            "marginal_kb": statistics.median([w for c, w in self.windows if c > prev and c <= n] or [0]),
            "sunreclaim_kb_each": (m["SUnreclaim"] - self.m0["SUnreclaim"]) / n,
            "pss_kb_each": self.sandboxes_pss_kb() / n,
            "daemon_rss_kb": rss_kb(self.proc.pid),
            "fds": info["descriptors"]["used"],
            "fd_limit": info["descriptors"]["limit"],
            "loop_devices": len(loop_devices()),
            "idle_cpu_ms": self.idle_cpu_ms(),
        }
        # The same execs again after those quiet seconds: the first set
        # follows 100 creates at once, whose work the kernel is often still
        # finishing (cgroups, RCU), and its tail shows that as much as sandboxd.
        s.update(self.execs("quiet_"))
        self.steps.append(s)
        self.log("density %5d: create p50 %.1f ms p95 %.1f ms; exec oldest p50 %.2f p99 %.2f, newest p50 %.2f "
                 "p99 %.2f ms (after %d s quiet: %.2f / %.2f, %.2f / %.2f); ls %.0f ms; %.0f KiB host memory each; "
                 "daemon %.1f ms CPU/s idle"
                 % (n, s["create_p50"], s["create_p95"], s["exec_old_p50"], s["exec_old_p99"], s["exec_new_p50"],
                    s["exec_new_p99"], IDLE_SECONDS, s["quiet_old_p50"], s["quiet_old_p99"], s["quiet_new_p50"],
                    s["quiet_new_p99"], s["ls_ms"], s["host_kb_each"], s["idle_cpu_ms"]))

    def run(self):
        r = self.r
        r["load_start"] = load_average()
        r["loops_before"] = loop_devices()
        self.start_daemon()
        info = self.client.call("system.info")
        r["fds_before"] = info["descriptors"]["used"]
        r["fd_limit"] = info["descriptors"]["limit"]
        r["cgroup"] = info["cgroup"]
        r["disk"] = "project quota" if "disk.project_quota" in info["features"] else "loop-mounted ext4 images"
        r["defaults"] = info["resource_defaults"]
        time.sleep(1)
        self.used0 = self.last_used = host_used_kb()
        self.m0 = meminfo()
        self.windows = []  # (count, KiB per sandbox over the last WINDOW creates)
        self.init_pids = []
        steps = [s for s in STEPS if s < self.count] + [self.count]
        params = {"network": {"mode": self.network}}
        t_all = time.monotonic()
        for n in steps:
            while len(self.ids) < n:
                t = time.perf_counter_ns()
                sb = self.client.call("sandbox.create", params)
                self.creates_ms.append((time.perf_counter_ns() - t) / 1e6)
                self.ids.append(sb["id"])
                self.init_pids.append(sb["init_pid"])
                if len(self.ids) % WINDOW == 0:
                    used = host_used_kb()
                    self.windows.append((len(self.ids), (used - self.last_used) / WINDOW))
                    self.last_used = used
            self.step(n)
        r["create_total_s"] = time.monotonic() - t_all
        r["loops_full"] = len(loop_devices())
        r["tasks_full"] = host_tasks()
        r["memcgs_full"] = memory_cgroups()
        t = time.monotonic()
        deletes = []
        while self.ids:
            t1 = time.perf_counter_ns()
            self.client.call("sandbox.delete", {"sandbox": self.ids[-1], "force": True})
            deletes.append((time.perf_counter_ns() - t1) / 1e6)
            self.ids.pop()
        r["delete_all_s"] = time.monotonic() - t
        r["delete_p50"] = statistics.median(deletes)
        r["delete_p95"] = pct(deletes, 95)
        # Loop devices go in the background once detached: wait a little.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.client.call("system.info")["loop_devices"]:
            time.sleep(0.2)
        info = self.client.call("system.info")
        r["loops_after_delete"] = loop_devices()
        r["daemon_loops_after_delete"] = info["loop_devices"]
        self.client.call("system.ping")
        time.sleep(0.5)
        r["fds_after_delete"] = self.client.call("system.info")["descriptors"]["used"]
        self.stop_daemon()
        r["loops_after_stop"] = loop_devices()
        r["steps"] = self.steps
        r["load_end"] = load_average()
        return r


def render(r, command):
    L = [BEGIN, "", "## Density: %d idle sandboxes" % r["count"], ""]
    L.append("Command: `%s` (the default run makes 1000 sandboxes, `--long` 5000). Sandboxes from `minimal`, "
             "created one after another over one connection with default settings (resources %s, disk limits by "
             "%s) and network mode `%s`; cgroup %s; the daemon's open-file limit %d."
             % (command, json.dumps(r["defaults"], separators=(", ", ": ")), r["disk"], r["network"], r["cgroup"],
                r["fd_limit"]))
    if r["network"] == "none":
        L.append("")
        L.append("Network mode `none`: the sandboxes still get their own network namespace with a loopback "
                 "device, but no link to the host. Networking for more than 1023 sandboxes (a routed veth pair "
                 "each) is measured in ARCHITECTURE.md and tested by `tests/integration/test_net_scale.py`.")
    L += ["", ("| sandboxes | create p50 | create p95 | exec oldest p50 / p99 | exec newest p50 / p99 | "
               "exec after %d s quiet, oldest / newest p50 / p99 | `sandboxctl ls` | host memory per sandbox "
               "added | average since the start | unreclaimable slab (average) | processes (PSS) each | daemon RSS "
               "| daemon descriptors | loop devices | daemon CPU idle |") % IDLE_SECONDS,
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in r["steps"]:
        L.append("| %d | %.1f ms | %.1f ms | %.2f / %.2f ms | %.2f / %.2f ms | %.2f / %.2f, %.2f / %.2f ms | "
                 "%.0f ms | %.0f KiB | %.0f KiB | %.0f KiB | %.0f KiB | %.1f MiB | %d | %d | %.1f ms/s |"
                 % (s["n"], s["create_p50"], s["create_p95"], s["exec_old_p50"], s["exec_old_p99"],
                    s["exec_new_p50"], s["exec_new_p99"], s["quiet_old_p50"], s["quiet_old_p99"],
                    s["quiet_new_p50"], s["quiet_new_p99"], s["ls_ms"], s["marginal_kb"], s["host_kb_each"],
                    s["sunreclaim_kb_each"], s["pss_kb_each"], s["daemon_rss_kb"] / 1024, s["fds"],
                    s["loop_devices"], s["idle_cpu_ms"]))
    L.append("")
    L.append("Create latency is over the last 100 creates before each count; exec is `process.exec` of `true`, "
             "%d times each into the oldest and the newest sandbox, right after the creates and again after "
             "the quiet seconds in which the daemon's idle CPU is measured. Host memory is MemTotal − MemAvailable: "
             "\"added\" is the median, over the windows of %d creates since the previous count, of its rise per "
             "sandbox in the window; \"average\" is its rise since before the first create divided by the count. "
             "Other work on the machine moves both, the average most (its window is the whole run); the median "
             "of short windows is the steadier of the two, and as memory per sandbox grows with their number it "
             "is also the larger. Daemon CPU idle is its CPU time per second over %d s with nothing asked of it."
             % (EXECS_PER_STEP, WINDOW, IDLE_SECONDS))
    L.append("")
    L.append("The machine: load average %s at the start and %s at the end (2 cores here, shared with other "
             "work); with all %d sandboxes the host ran %d threads and had %d memory cgroups. Every memory cgroup "
             "keeps a shrinker map as large as the highest shrinker id, and every file system instance registers "
             "a shrinker, so kernel memory per sandbox grows with the number of memory cgroups on the host, not "
             "only with the sandbox's own."
             % (r["load_start"], r["load_end"], r["count"], r["tasks_full"], r["memcgs_full"]))
    L.append("")
    L.append("All %d created in %.1f s; deleted one after another in %.1f s (per delete p50 %.1f ms, p95 %.1f ms)."
             % (r["count"], r["create_total_s"], r["delete_all_s"], r["delete_p50"], r["delete_p95"]))
    L.append("")
    lb, ld, ls = len(r["loops_before"]), len(r["loops_after_delete"]), len(r["loops_after_stop"])
    L.append("| | daemon descriptors | loop devices on the host | loop devices the daemon holds |")
    L.append("|---|---:|---:|---:|")
    L.append("| before the first create | %d | %d | 0 |" % (r["fds_before"], lb))
    L.append("| with all %d | %d | %d | |" % (r["count"], r["steps"][-1]["fds"], r["loops_full"]))
    L.append("| after delete-all | %d | %d | %d |" % (r["fds_after_delete"], ld, r["daemon_loops_after_delete"]))
    L.append("| after the daemon stopped | | %d | |" % ls)
    L.append("")
    first = r["steps"][0]
    last = r["steps"][-1]
    ratio_old = last["exec_old_p99"] / first["exec_old_p99"]
    ratio_new = last["exec_new_p99"] / first["exec_new_p99"]
    q_old = last["quiet_old_p99"] / first["quiet_old_p99"]
    q_new = last["quiet_new_p99"] / first["quiet_new_p99"]
    ok_exec = max(ratio_old, ratio_new, q_old, q_new) <= 3
    mem = max(last["marginal_kb"], last["host_kb_each"])
    ok_mem = mem <= 1024
    L.append("Goal: %d idle sandboxes, each answering exec with a p99 within 3× its value at %d, and at most 1 MiB "
             "of host memory each. Exec p99 at %d against %d: the oldest sandbox %.2f ms against %.2f ms (%.1f×), "
             "the newest %.2f ms against %.2f ms (%.1f×); after the quiet seconds %.2f against %.2f ms (%.1f×) "
             "and %.2f against %.2f ms (%.1f×); exec p50 right after the creates %.2f against %.2f ms (%.2f×): %s "
             "(all four p99 ratios at most 3). Host memory: %.0f KiB per sandbox added at the end, "
             "%.0f KiB on average (the larger counts): %s."
             % (r["count"], first["n"], last["n"], first["n"], last["exec_old_p99"], first["exec_old_p99"],
                ratio_old, last["exec_new_p99"], first["exec_new_p99"], ratio_new,
                last["quiet_old_p99"], first["quiet_old_p99"], q_old, last["quiet_new_p99"], first["quiet_new_p99"],
                q_new, last["exec_old_p50"], first["exec_old_p50"], last["exec_old_p50"] / first["exec_old_p50"],
                "met" if ok_exec else "not met",
                last["marginal_kb"], last["host_kb_each"], "met" if ok_mem else "not met"))
    L.append("")
    L.append(END)
    return "\n".join(L) + "\n"


def splice(text, section):
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + section + ("\n" + tail if tail else "")
    return text.rstrip("\n") + "\n\n" + section


def old_section(text):
    if BEGIN in text and END in text:
        return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END + "\n"
    return None
