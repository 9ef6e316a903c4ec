"""The README's two set-up commands, as a new user on a fresh machine reads
them: they run as root as written (a fresh Debian used as root has no
sudo), the test command is the one CI runs, and the scripts they name
exist and need nothing they do not install."""

import os
import re
import unittest

import sbxtest

SRCDIR = sbxtest.SRCDIR


def read(path):
    with open(os.path.join(SRCDIR, path)) as f:
        return f.read()


def section(text, title):
    """The body of the '## title' section of a markdown text."""
    m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(title), text, re.S | re.M)
    if not m:
        raise AssertionError("README has no '## %s' section" % title)
    return m.group(1)


def commands(body):
    """The command lines of the sh blocks of a section."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        lines += [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
    return lines


class ReadmeCommandsTest(unittest.TestCase):
    def setUp(self):
        self.readme = read("README.md")

    def test_quick_start_is_one_command_without_sudo(self):
        cmds = commands(section(self.readme, "Quick start"))
        self.assertEqual(cmds, ["./contrib/quickstart.sh"])

    def test_test_command_is_one_command_without_sudo(self):
        cmds = commands(section(self.readme, "Tests"))
        self.assertEqual(cmds[0], "./tests/run-all.sh")
        for c in cmds:
            self.assertNotRegex(c, r"(^|\s)sudo\s", "README test section: %r" % c)

    def test_ci_runs_the_readme_test_command(self):
        ci = read(".ci/run")
        self.assertRegex(ci, r"(?m)^exec \./tests/run-all\.sh\s*$")

    def test_scripts_exist_and_never_call_sudo(self):
        for path in ("contrib/quickstart.sh", "tests/run-all.sh", "contrib/install-deps.sh",
                     "tests/vm/run.sh", "tests/vm/test-paths.sh"):
            full = os.path.join(SRCDIR, path)
            self.assertTrue(os.access(full, os.X_OK), "%s is not executable" % path)
            for n, line in enumerate(read(path).splitlines(), 1):
                code = line.split("#", 1)[0]
                self.assertNotRegex(code, r"(^|[\s;&|(])sudo\s", "%s:%d calls sudo" % (path, n))

    def test_no_readme_command_assumes_sudo(self):
        # sudo may be named for non-root users in prose, never in a command.
        for block in re.findall(r"```sh\n(.*?)```", self.readme, re.S):
            for line in block.splitlines():
                self.assertNotRegex(line, r"^\s*sudo\s", "README command assumes sudo: %r" % line)



class TreeTest(unittest.TestCase):
    def test_build_outputs_are_not_tracked(self):
        """A build must not dirty the checkout: the programs it makes are
        not in git."""
        if not os.path.isdir(os.path.join(SRCDIR, ".git")) and not os.path.isfile(os.path.join(SRCDIR, ".git")):
            self.skipTest("not a git checkout")
        import subprocess
        out = subprocess.run(["git", "-C", SRCDIR, "ls-files", "--", "src/sandboxd", "src/sandboxctl",
                              "src/sandbox-init", "src/sandbox-monitor", "images/minimal.tar.gz"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            self.skipTest("git cannot read this checkout: %s" % out.stderr.strip())
        self.assertEqual(out.stdout, "", "build outputs tracked in git")

if __name__ == "__main__":
    sbxtest.main()
