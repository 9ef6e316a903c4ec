"""What the Python client's tests share: the package from this checkout,
and real daemons started from the build tree by the end-to-end harness
(tests/integration/sbxtest.py), one per test class."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
TOP = os.path.dirname(os.path.dirname(PKG))
for p in (PKG, os.path.join(TOP, "tests", "integration")):
    if p not in sys.path:
        sys.path.insert(0, p)
sys.dont_write_bytecode = True

import sbxtest  # noqa: E402

builddir = sbxtest.builddir
image_tarball = sbxtest.image_tarball
wait_until = sbxtest.wait_until


def needs_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root: sandboxd creates namespaces, mounts and cgroups")
    for p in (sbxtest.sandboxd_path(), sbxtest.init_path()):
        if not os.access(p, os.X_OK):
            raise AssertionError("%s is not built; run make first (build dir %s)" % (p, builddir()))


class DaemonTestCase(unittest.TestCase):
    """One daemon for the whole class (started in setUpClass, everything of
    it removed in tearDownClass); each test may make more."""

    daemon_options = {}

    @classmethod
    def setUpClass(cls):
        needs_root()
        cls.daemons = []
        cls.daemon = cls.new_daemon(**cls.daemon_options)

    @classmethod
    def new_daemon(cls, start=True, **options):
        d = sbxtest.Daemon(**options)
        cls.daemons.append(d)
        if start:
            d.start()
        return d

    @classmethod
    def tearDownClass(cls):
        for d in getattr(cls, "daemons", []):
            d.cleanup()

    def failure_context(self):
        out = []
        for i, d in enumerate(getattr(self, "daemons", [])):
            lines = (d.log_snapshot or d.log()).splitlines()[-60:]
            out.append("--- sandboxd log %d (%s), last %d lines ---" % (i, d.dir, len(lines)))
            out += lines
        return "\n".join(out)
