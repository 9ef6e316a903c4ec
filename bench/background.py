"""Background commands for bench/run.py: round trips of process.spawn and
session.exec, and the output throughput of process.logs with follow.

measure(bench) runs against the benchmark's daemon and returns a dict;
render(bench) turns bench.commands into report lines.
"""

import base64
import json
import os
import pty
import select
import socket
import statistics
import subprocess
import time

FOLLOW_BYTES = 512 * 1024 * 1024
ROUND_TRIPS = 100
WARMUP = 10
KEYSTROKES = 300
# A program that echoes each byte itself (raw mode, no echo by the line
# discipline), so the byte really reaches it and comes back.
RAW_ECHO = "stty raw -echo && echo ready && exec cat"


def _summary(xs):
    xs = sorted(xs)
    return {"n": len(xs), "mean": statistics.fmean(xs), "median": statistics.median(xs),
            "p95": xs[max(0, int(0.95 * len(xs) + 0.999) - 1)], "min": xs[0]}


def _round_trips(fn):
    out = []
    for i in range(WARMUP + ROUND_TRIPS):
        t0 = time.perf_counter_ns()
        fn()
        if i >= WARMUP:
            out.append((time.perf_counter_ns() - t0) / 1e6)
    return _summary(out)


def _follow(sock_path, sandbox, cmd_id, encoding="utf-8", decode=True):
    """Bytes of output received through process.output notifications and
    the seconds until process.exit, decoding every message as a client must
    (decode=False only splits lines: what the daemon alone can deliver)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    f = s.makefile("rb", buffering=1 << 20)
    t0 = time.perf_counter()
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "process.logs",
                          "params": {"sandbox": sandbox, "cmd_id": cmd_id, "follow": True,
                                     "encoding": encoding}}).encode() + b"\n")
    got = 0
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError("daemon closed the connection while following")
        if not decode:
            if b'"method":"process.exit"' in line:
                break
            if b'"method":"process.output"' in line:
                got += len(line)
            continue
        msg = json.loads(line)
        m = msg.get("method")
        if m == "process.output":
            data = msg["params"]["data"]
            got += len(base64.b64decode(data)) if encoding == "base64" else len(data)
        elif m == "process.exit":
            break
        elif "error" in msg:
            raise RuntimeError("process.logs: %s" % msg["error"].get("message"))
    dt = time.perf_counter() - t0
    f.close()
    s.close()
    return got, dt


def _read_until(fd, want, timeout=10.0):
    buf = b""
    end = time.monotonic() + timeout
    while want not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError("no %r from the terminal (got %r)" % (want, buf[-200:]))
        buf += os.read(fd, 4096)
    return buf


def keystrokes(argv):
    """Milliseconds from writing one byte into a terminal until the program
    behind it has echoed it back, for each of KEYSTROKES bytes. argv runs on
    the slave side of a fresh pty as its controlling terminal."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0))
    os.close(slave)
    try:
        _read_until(master, b"ready")
        time.sleep(0.2)  # whatever else the start printed
        while select.select([master], [], [], 0)[0]:
            os.read(master, 4096)
        out = []
        for i in range(WARMUP + KEYSTROKES):
            ch = b"abcdefghijklmnopqrstuvwxyz"[i % 26:i % 26 + 1]
            t0 = time.perf_counter_ns()
            os.write(master, ch)
            _read_until(master, ch)
            if i >= WARMUP:
                out.append((time.perf_counter_ns() - t0) / 1e6)
        return _summary(out)
    finally:
        os.write(master, b"\x04")  # raw mode: not an EOF; the kill ends it
        p.kill()
        p.wait()
        os.close(master)


def _hwm_kb(pid):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def measure(b):
    c = b.client
    sb = b.create_sandbox()["id"]
    res = {}
    try:
        def spawn_wait():
            r = c.call("process.spawn", {"sandbox": sb, "cmd": ["true"]})
            w = c.call("process.wait", {"sandbox": sb, "cmd_id": r["cmd_id"], "timeout_s": 30})
            if w.get("exit_code") != 0:
                raise RuntimeError("spawned true exited %r" % (w,))
        res["spawn_wait"] = _round_trips(spawn_wait)
        c.call("session.create", {"sandbox": sb, "session_id": "bench"})

        def session_exec():
            r = c.call("session.exec", {"sandbox": sb, "session_id": "bench", "command": "true"})
            if r.get("exit_code") != 0:
                raise RuntimeError("session true exited %r" % (r,))
        res["session_exec"] = _round_trips(session_exec)

        # Keystroke round trip through `sandboxctl exec -it` (the sandbox's
        # terminal handed over by descriptor, relayed by sandboxctl) against
        # the same program on a local terminal.
        res["keys_ctl"] = keystrokes([b.sandboxctl, "-s", b.sock, "exec", "-it", sb, "--", "sh", "-c", RAW_ECHO])
        res["keys_local"] = keystrokes(["sh", "-c", RAW_ECHO])

        # Output throughput: `yes` into the log and out to a following
        # client at the same time, then the same log replayed.
        cmd = "yes | head -c %d" % FOLLOW_BYTES
        hwm0 = _hwm_kb(b.daemon.pid)
        r = c.call("process.spawn", {"sandbox": sb, "command": cmd, "log_limit_mb": 1024})
        got, dt = _follow(b.sock, sb, r["cmd_id"])
        res["follow_live"] = {"bytes": got, "seconds": dt}
        got, dt = _follow(b.sock, sb, r["cmd_id"])
        res["follow_replay"] = {"bytes": got, "seconds": dt}
        got, dt = _follow(b.sock, sb, r["cmd_id"], encoding="base64")
        res["follow_b64"] = {"bytes": got, "seconds": dt}
        _, dt = _follow(b.sock, sb, r["cmd_id"], decode=False)
        res["follow_raw"] = {"bytes": FOLLOW_BYTES, "seconds": dt}
        # sandboxctl writes into a pipe whose reader only counts: gathering
        # 512 MiB into one Python object would time the reader's own
        # reallocations, not the client.
        t0 = time.perf_counter()
        p = subprocess.Popen([b.sandboxctl, "-s", b.sock, "logs", "-f", sb, r["cmd_id"]],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        got = 0
        while True:
            chunk = os.read(p.stdout.fileno(), 1 << 20)
            if not chunk:
                break
            got += len(chunk)
        p.stdout.close()
        p.wait()
        res["follow_ctl"] = {"bytes": got, "seconds": time.perf_counter() - t0}
        res["hwm_kb"] = (hwm0, _hwm_kb(b.daemon.pid))
    finally:
        b.delete_sandbox(sb)
    return res


def render(b):
    R = getattr(b, "commands", None)
    if not R:
        return []
    ex = b.results.get("exec_socket")
    bw = b.results.get("bwrap")
    L = ["## Background commands and their output", ""]
    L.append("Round trips on one socket connection, %d iterations after %d warm-up ones, in "
             "milliseconds. A background command has a monitor process of its own that writes its log "
             "and exit status into the state directory, which the one-shot `process.exec` does without."
             % (ROUND_TRIPS, WARMUP))
    L.append("")
    L.append("| what | mean | median | p95 | min |")
    L.append("|---|---:|---:|---:|---:|")
    rows = [("`process.spawn` of `true` + `process.wait`", R["spawn_wait"]),
            ("`session.exec` of `true` (a fresh shell, cwd and exports carried over)", R["session_exec"])]
    if ex:
        rows.append(("reference: `process.exec` of `true` (table 2)", ex))
    if bw:
        rows.append(("reference: bwrap start of /bin/true (table 1)", bw))
    for name, s in rows:
        L.append("| %s | %.2f | %.2f | %.2f | %.2f |" % (name, s["mean"], s["median"], s["p95"], s["min"]))
    L.append("")
    if "keys_ctl" in R:
        L.append("Keystroke round trip: one byte written into a terminal until the program behind it "
                 "(`stty raw -echo; cat`, which echoes every byte itself) has sent it back, %d bytes one "
                 "after the other, in milliseconds." % KEYSTROKES)
        L.append("")
        L.append("| what | mean | median | p95 | min |")
        L.append("|---|---:|---:|---:|---:|")
        for key, name in (("keys_ctl", "`sandboxctl exec -it SANDBOX -- sh -c '...'`: the sandbox's own pty, "
                                       "relayed by sandboxctl"),
                          ("keys_local", "the same program on a local pty, no sandbox")):
            v = R[key]
            L.append("| %s | %.3f | %.3f | %.3f | %.3f |" % (name, v["mean"], v["median"], v["p95"], v["min"]))
        L.append("")
        L.append("sandboxctl holds the terminal's master descriptor, passed over the socket: a keystroke "
                 "costs one relay hop in sandboxctl and no daemon work; %.3f ms against %.3f ms (median) is "
                 "far below what a person can notice." % (R["keys_ctl"]["median"], R["keys_local"]["median"]))
        L.append("")
    L.append("Output throughput of `process.logs` with `follow`: `yes | head -c %d` (%d MiB) in a "
             "sandbox, received as `process.output` notifications (UTF-8 text in JSON) by a client that "
             "decodes every message."
             % (FOLLOW_BYTES, FOLLOW_BYTES >> 20))
    L.append("")
    L.append("| what | MiB | seconds | MB/s |")
    L.append("|---|---:|---:|---:|")
    for key, name in (("follow_live", "followed while `yes` runs; Python client, `json.loads` of UTF-8 text"),
                      ("follow_replay", "the same log replayed after the command ended; the same client"),
                      ("follow_b64", "replayed with `encoding: base64`; Python client, `json.loads` + `b64decode`"),
                      ("follow_ctl", "replayed by `sandboxctl logs -f` (base64, yajl) into a pipe whose reader counts the bytes"),
                      ("follow_raw", "replayed to a client that only splits lines: what the daemon delivers")):
        v = R[key]
        L.append("| %s | %d | %.2f | %.0f |" % (name, v["bytes"] >> 20, v["seconds"], v["bytes"] / v["seconds"] / 1e6))
    L.append("")
    L.append("Text that is almost all escapes (`y\\n`) is the worst case for a JSON decoder: the Python "
             "client spends most of the time in `json.loads`, which is why base64 is faster to receive "
             "than text here; the last line is the daemon's own rate, reading the log, escaping or encoding "
             "and writing to the socket.")
    L.append("")
    L.append("The daemon's peak RSS was %.1f MiB before these and %.1f MiB after them: output is read from "
             "the log in bounded chunks and sent as fast as the client takes it."
             % (R["hwm_kb"][0] / 1024, R["hwm_kb"][1] / 1024))
    L.append("")
    return L
