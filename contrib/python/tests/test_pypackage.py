"""The package as it ships: the wheel builds offline with the system's
setuptools, installs, imports (facade module paths included), and its
sources parse as Python 3.9."""

import ast
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import support


def builder():
    """An interpreter with setuptools and wheel (Debian's python3-setuptools
    and python3-wheel), to build without reaching a package index."""
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.access(py, os.X_OK) and subprocess.run(
                [py, "-c", "import setuptools, wheel, pip"], capture_output=True).returncode == 0:
            return py
    return None


class PackageTest(unittest.TestCase):
    def test_sources_parse_as_python_39(self):
        files = glob.glob(os.path.join(support.PKG, "sandboxd", "**", "*.py"), recursive=True)
        self.assertGreater(len(files), 10)
        for f in files:
            with open(f) as fh:
                ast.parse(fh.read(), f, feature_version=(3, 9))

    def test_wheel_builds_offline_and_installs(self):
        py = builder()
        if py is None:
            self.skipTest("no interpreter with setuptools, wheel and pip (apt-get install python3-setuptools "
                          "python3-wheel python3-pip)")
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "src")
            shutil.copytree(support.PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
            p = subprocess.run([py, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w",
                                os.path.join(tmp, "dist"), src], capture_output=True, text=True, env=env,
                               timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            wheels = glob.glob(os.path.join(tmp, "dist", "sandboxd-*.whl"))
            self.assertEqual(len(wheels), 1)
            names = zipfile.ZipFile(wheels[0]).namelist()
            for want in ("sandboxd/__init__.py", "sandboxd/py.typed", "sandboxd/daytona/common/pty.py",
                         "sandboxd/daytona/_async.py"):
                self.assertIn(want, names)
            meta = [n for n in names if n.endswith("METADATA")][0]
            text = zipfile.ZipFile(wheels[0]).read(meta).decode()
            self.assertIn("License: MIT", text)
            self.assertIn("Requires-Python: >=3.9", text)
            self.assertNotIn("Requires-Dist", text)  # standard library only
            target = os.path.join(tmp, "site")
            p = subprocess.run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--target", target,
                                wheels[0]], capture_output=True, text=True, env=env, timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            code = ("import sandboxd, sandboxd.daytona\n"
                    "from sandboxd.daytona.common.pty import PtySize\n"
                    "from sandboxd.daytona import AsyncDaytona, DaytonaConfig, SandboxState\n"
                    "AsyncDaytona(DaytonaConfig(api_key=None))\n"
                    "assert SandboxState.STARTED == 'started' and PtySize(rows=1, cols=2).cols == 2\n"
                    "print(sandboxd.__file__)")
            p = subprocess.run([py, "-c", code], capture_output=True, text=True,
                               env=dict(env, PYTHONPATH=target), cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.strip().startswith(target), p.stdout)


if __name__ == "__main__":
    unittest.main()
