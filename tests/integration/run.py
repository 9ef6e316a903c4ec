#!/usr/bin/env python3
"""Run the sandboxd end-to-end tests.

    python3 tests/integration/run.py [--builddir DIR] [-k PATTERN]... [-v] [-x]

Discovers tests/integration/test_*.py, prints one line per test, the details
of every failure with the daemon's log, and ends with the line
"N passed, N failed, N skipped" (failed counts errors too).
Exit status: 0 when nothing failed, 1 otherwise, 77 when every test was
skipped (for example when not run as root).
"""

import argparse
import faulthandler
import fnmatch
import glob
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))


class Watchdog(threading.Thread):
    """A test that runs past SBX_TEST_WATCHDOG seconds (default 1200) is
    stuck, not slow (every call in the tests has a bound well below that):
    the stacks of this process and the state of the host's processes are
    printed, the test's daemons are killed so that a wait on them ends, and
    if the test still does not end the run stops, instead of holding the
    suite until an outer timeout says nothing."""

    def __init__(self, limit):
        super().__init__(daemon=True)
        self.limit = limit
        self.test = None
        self.started = 0.0
        self.lock = threading.Lock()

    def begin(self, test):
        with self.lock:
            self.test, self.started = test, time.monotonic()

    def end(self):
        with self.lock:
            self.test = None

    def report(self, tid, ran):
        out = sys.stdout
        out.write("\nrun.py: %s has run for %.0f s; stacks and processes follow\n" % (tid, ran))
        out.flush()
        faulthandler.dump_traceback(file=out, all_threads=True)
        for cmd in (["ps", "-eo", "pid,ppid,stat,wchan:32,args"], ["dmesg"]):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
                lines = r.stdout.splitlines()
                out.write("--- %s\n%s\n" % (" ".join(cmd), "\n".join(l[:200] for l in lines[-60:])))
            except (OSError, subprocess.SubprocessError) as e:
                out.write("--- %s: %s\n" % (" ".join(cmd), e))
        out.flush()

    def run(self):
        fired = None
        while True:
            time.sleep(5)
            with self.lock:
                test, started = self.test, self.started
            if test is None:
                fired = None
                continue
            ran = time.monotonic() - started
            if ran < self.limit:
                continue
            if fired is not test:
                fired = test
                self.report(test.id(), ran)
                import sbxtest  # loaded by then: every test module imports it
                for d in list(getattr(sbxtest, "_live_daemons", [])):
                    try:
                        os.kill(d.pid, signal.SIGKILL)
                    except (OSError, TypeError):
                        pass
            elif ran > self.limit + 120:
                sys.stdout.write("run.py: %s is still stuck; stopping the run\n" % test.id())
                sys.stdout.flush()
                os._exit(3)


class _Between:
    def __init__(self, tid):
        self.tid = tid

    def id(self):
        return "what runs after " + self.tid


class Result(unittest.TestResult):
    """Collects one outcome per test, whatever its subtests did."""

    def __init__(self, stream, verbose=False, failfast=False):
        super().__init__()
        self.stream = stream
        self.verbose = verbose
        self.failfast = failfast
        self.outcomes = {}  # test id -> "pass" | "fail" | "skip"
        self.details = []   # (test id, text) of every failure not printed yet
        self.started = 0.0
        # Set for each test; errors outside any test (a class's set-up) come
        # before the first one too, and are counted at the end.
        self._kind = None
        self._notes = []

    def _out(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    watchdog = None

    def startTest(self, test):
        super().startTest(test)
        self.started = time.monotonic()
        if self.watchdog:
            self.watchdog.begin(test)
        self._kind = None
        self._notes = []

    def _mark(self, kind, test, text=None):
        # A failure anywhere in a test wins over anything else it reported.
        order = {"pass": 0, "skip": 1, "fail": 2}
        if self._kind is None or order[kind] > order[self._kind]:
            self._kind = kind
        if text:
            self._notes.append(text)

    def _err_text(self, test, err):
        return "".join(traceback.format_exception(*err))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._mark("pass", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._mark("fail", test, "FAIL: %s\n%s" % (test.id(), self._err_text(test, err)))

    def addError(self, test, err):
        super().addError(test, err)
        self._mark("fail", test, "ERROR: %s\n%s" % (test.id(), self._err_text(test, err)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._mark("skip", test, None)
        self._skip_reason = reason

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._mark("pass", test)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._mark("fail", test, "UNEXPECTED SUCCESS: %s" % test.id())

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self._mark("fail", test, "%s: %s\n%s" % (kind, subtest.id(), self._err_text(test, err)))

    def stopTest(self, test):
        super().stopTest(test)
        tid = test.id()
        if self.watchdog:
            # Class and module clean-ups run between tests: watched too.
            self.watchdog.begin(_Between(tid))
        kind = self._kind or "pass"
        elapsed = time.monotonic() - self.started
        label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[kind]
        line = "%-4s %s (%.2fs)" % (label, tid, elapsed)
        if kind == "skip":
            line += ": " + getattr(self, "_skip_reason", "")
        self._out(line)
        self.outcomes[tid] = kind
        if kind == "fail":
            text = "\n".join(self._notes)
            ctx = getattr(test, "failure_context", None)
            if callable(ctx):
                try:
                    text += "\n" + ctx()
                except Exception as e:  # the report must not fail
                    text += "\n(no daemon log: %s)" % e
            if self.verbose:
                self._out(text)
            else:
                self.details.append((tid, text))
            if self.failfast:
                self.stop()


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def filter_suite(suite, patterns):
    if not patterns:
        return suite
    pats = [p if any(c in p for c in "*?[") else "*%s*" % p for p in patterns]
    keep = unittest.TestSuite()
    for t in iter_tests(suite):
        tid = t.id()
        if any(fnmatch.fnmatchcase(tid, p) for p in pats):
            keep.addTest(t)
    return keep


def host_leftovers(before_tmp):
    """What this run left on the host after every test cleaned up: temporary
    directories, cgroup parents of its daemons, and their sandbox processes."""
    found = []
    prefix = "sbxtest-%d-" % os.getpid()
    for mount in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        for d in glob.glob(os.path.join(mount, prefix + "*")):
            found.append("cgroup %s" % d)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cgroup" % pid) as f:
                cg = [l[3:].strip() for l in f if l.startswith("0::")]
        except OSError:
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (OSError, IndexError):
            continue
        if cg and cg[0].startswith("/" + prefix) and not zombie:
            found.append("process %s in cgroup %s" % (pid, cg[0]))
    now = set(glob.glob(os.path.join(tempfile.gettempdir(), prefix + "*")))
    for d in sorted(now - before_tmp):
        found.append("directory %s" % d)
    return found


def earlier_outcomes():
    """The tests an earlier, interrupted run of the same suite ended: the file
    SBX_TEST_DONE names holds its lines "PASS|SKIP|FAIL <test id> ..."
    (tests/vm/run.sh writes it when it boots a stalled guest again). They are
    not run again, and count as they ended then."""
    path = os.environ.get("SBX_TEST_DONE")
    done = {}
    if not path or not os.path.exists(path):
        return done
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("PASS", "SKIP", "FAIL"):
                done[parts[1]] = parts[0].lower()
    return done


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the sandboxd end-to-end tests.")
    ap.add_argument("--builddir", help="build tree holding src/sandboxd (default: the source tree, "
                    "or $SBX_BUILDDIR)")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose id matches (substring or glob); may be repeated")
    ap.add_argument("-v", "--verbose", action="store_true", help="print failure details as they happen")
    ap.add_argument("-x", "--failfast", action="store_true", help="stop at the first failure")
    args = ap.parse_args(argv)
    # Patterns may also come from the environment (space-separated), for
    # wrappers such as tests/vm/run.sh that pass a command through.
    if not args.patterns and os.environ.get("SBX_TEST_FILTER"):
        args.patterns = os.environ["SBX_TEST_FILTER"].split()

    if args.builddir:
        os.environ["SBX_BUILDDIR"] = os.path.abspath(args.builddir)
    os.environ.setdefault("SBX_BUILDDIR", SRCDIR)
    sys.path.insert(0, HERE)

    loader = unittest.TestLoader()
    suite = loader.discover(start_dir=HERE, pattern="test_*.py", top_level_dir=HERE)
    suite = filter_suite(suite, args.patterns)
    done = earlier_outcomes()
    carried = {}
    if done:
        rest = unittest.TestSuite()
        for t in iter_tests(suite):
            if t.id() in done:
                carried[t.id()] = done[t.id()]
            else:
                rest.addTest(t)
        suite = rest

    print("sandboxd integration tests, build dir %s" % os.environ["SBX_BUILDDIR"], flush=True)
    before_tmp = set(glob.glob(os.path.join(tempfile.gettempdir(), "sbxtest-%d-*" % os.getpid())))
    result = Result(sys.stdout, verbose=args.verbose, failfast=args.failfast)
    if carried:
        print("%d tests ended in an earlier run (%s): counted as they ended, not run again" %
              (len(carried), os.environ["SBX_TEST_DONE"]), flush=True)
        result.outcomes.update(carried)
        for tid in sorted(t for t, k in carried.items() if k == "fail"):
            result.details.append((tid, "FAIL: %s failed in an earlier run (its details are printed there)" % tid))
    result.watchdog = Watchdog(float(os.environ.get("SBX_TEST_WATCHDOG", "1200")))
    result.watchdog.start()
    t0 = time.monotonic()
    try:
        suite.run(result)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130   # daemons still running are cleaned up at exit
    result.watchdog.end()
    elapsed = time.monotonic() - t0
    leftovers = []
    if os.geteuid() == 0:
        deadline = time.monotonic() + 5
        while True:
            leftovers = host_leftovers(before_tmp)
            if not leftovers or time.monotonic() > deadline:
                break
            time.sleep(0.1)

    outcomes = list(result.outcomes.values())
    # Errors outside any test (module import, class set-up) count as failures.
    def owner(t):  # a subtest belongs to its test
        return getattr(t, "test_case", t).id()

    outside = [(t, e) for t, e in result.errors + result.failures if owner(t) not in result.outcomes]
    for test, err in outside:
        result.details.append((test.id(), "ERROR: %s\n%s" % (test.id(), err)))
    if leftovers:
        result.details.append(("host clean-up", "FAIL: the run left things on the host:\n  "
                               + "\n  ".join(leftovers)))
    passed = outcomes.count("pass")
    failed = outcomes.count("fail") + len(outside) + (1 if leftovers else 0)
    skipped = outcomes.count("skip") + sum(1 for t, _ in result.skipped if owner(t) not in result.outcomes)

    if result.details:
        print("\n" + "=" * 70)
        for tid, text in result.details:
            print(text.rstrip())
            print("-" * 70)
    print("\nran %d tests in %.1f s" % (passed + failed + skipped, elapsed))
    if passed + failed + skipped == 0:
        sys.stdout.flush()
        print("no tests matched", file=sys.stderr)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    if failed:
        return 1
    if passed == 0 and skipped > 0:
        return 77
    if passed == 0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
