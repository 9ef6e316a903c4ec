"""The bash completion of sandboxctl (contrib/bash-completion/sandboxctl):
verbs, options read from each verb's --help, option values, and sandbox
and image names asked of the daemon named by --socket."""

import os
import subprocess
import unittest

import sbxtest
from sbxtest import SandboxdTestCase, sandboxctl_path

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
SCRIPT = os.path.join(sbxtest.SRCDIR, "contrib", "bash-completion", "sandboxctl")

DRIVER = r"""
. %s
. %s
compopt() { :; }  # only valid inside a real completion
comp() {
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    COMPREPLY=(); _sandboxctl sandboxctl
    printf '%%s\n' "${COMPREPLY[*]}"
}
"""


@unittest.skipUnless(os.path.exists(BASH_COMPLETION), "bash-completion is not installed")
class CompletionTest(SandboxdTestCase):
    def complete(self, *lines):
        """Completions of each line (a list of words, the last being
        completed), as sorted lists."""
        script = DRIVER % (BASH_COMPLETION, SCRIPT)
        for words in lines:
            script += "comp %s\n" % " ".join("'%s'" % w for w in words)
        env = dict(os.environ)
        env.pop("SANDBOXD_SOCKET", None)
        p = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [sorted(l.split()) for l in p.stdout.splitlines()]

    def test_verbs_options_and_names(self):
        self.create(name="web-1")
        self.create(name="worker", start=False)
        ctl, sock = sandboxctl_path(), self.daemon.socket
        g = [ctl, "--socket", sock]
        got = self.complete(
            [ctl, ""],
            [ctl, "--so"],
            g + ["st"],
            g + ["stop", ""],
            g + ["rm", "-f", "wo"],
            g + ["exec", "-w", "/tmp", ""],
            g + ["exec", "web-1", "--", ""],
            g + ["create", "--net"],
            g + ["create", "--network", ""],
            g + ["create", "--name", "x", ""],
            g + ["image", ""],
            g + ["image", "rm", ""],
            g + ["image", "import", "--format", ""],
            g + ["fs", "find", "-"],
            g + ["net", "preview", ""],
            g + ["cp", "web"],
            [ctl, "stop", ""],  # no --socket: another daemon (none), no names
        )
        self.assertIn("exec", got[0])
        self.assertIn("image", got[0])
        self.assertEqual(got[1], ["--socket"])
        self.assertEqual(got[2], ["start", "stats", "stop"])
        self.assertEqual(got[3], ["web-1", "worker"])
        self.assertEqual(got[4], ["worker"])
        self.assertEqual(got[5], ["web-1", "worker"])
        self.assertEqual(got[6], [])
        self.assertEqual(got[7], ["--network"])
        self.assertEqual(got[8], ["bridge", "none"])
        self.assertEqual(got[9], ["minimal"])
        self.assertEqual(got[10], ["build", "export", "import", "inspect", "ls", "pull", "rm", "tag"])
        self.assertEqual(got[11], ["minimal"])
        self.assertEqual(got[12], ["auto", "dir", "docker-archive", "oci", "rootfs-tar"])
        self.assertEqual(got[13], ["-F", "-g", "-n"])
        self.assertEqual(got[14], ["web-1", "worker"])
        self.assertEqual(got[15], ["web-1:"])
        self.assertEqual(got[16], [])


if __name__ == "__main__":
    sbxtest.main()
