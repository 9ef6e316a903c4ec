"""The Python client's own suite (contrib/python/tests), run here so that
the README's test command covers it: the client and the Daytona-compatible
facade against daemons from this build tree."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTESTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "contrib", "python", "tests")


def load_tests(loader, tests, pattern):
    if PYTESTS not in sys.path:
        sys.path.insert(0, PYTESTS)
    suite = unittest.TestSuite()
    for name in sorted(os.listdir(PYTESTS)):
        if name.startswith("test_") and name.endswith(".py"):
            suite.addTests(loader.loadTestsFromName(name[:-3]))
    return suite


if __name__ == "__main__":
    import sbxtest
    sbxtest.main()
