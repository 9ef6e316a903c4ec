#!/usr/bin/env python3
"""More bridged sandboxes than a Linux bridge has ports (1023): every one
gets networking, reaches the outside through its gateway, reaches none of
its neighbours (pairs on both sides of the 1023rd), and keeps all of that
across restarts of the daemon.

Bounded: 1100 sandboxes, created one after another over one connection
(about half a minute on two cores), checked with a few requests in flight
at a time."""
import random
import resource
import urllib.request

from sbxtest import RpcError, main
from test_net import NetTestBase, run

N = 1100
# Pairs (from, to) of sandbox indexes: neighbours in creation order, pairs
# that straddle the 1023rd sandbox, and the first and the last.
PAIRS = [(1, 0), (1022, 1023), (1023, 1022), (1024, 1021), (1099, 0), (0, 1099), (1050, 1051)]
SAMPLE = [0, 511, 1021, 1022, 1023, 1024, 1060, 1099]


class ManySandboxesTest(NetTestBase):
    def setUp(self):
        # The daemon holds a descriptor per sandbox; it inherits this limit.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < N + 200:
            self.skipTest("the open file limit (%d) is too low for %d sandboxes"
                          % (resource.getrlimit(resource.RLIMIT_NOFILE)[0], N))
        subnet = "10.%d.%d.0/20" % (random.randrange(100, 200), 16 * random.randrange(16))
        # No disk limits: on a file system without project quotas each would
        # be a loop device, which is not what this test is about.
        self.daemon_options = {"config": {"max_sandboxes": N + 100, "subnet": subnet, "default_disk_mb": 0},
                               "log_level": "info"}
        super().setUp()

    def run_all(self, requests, window=8, timeout=60, method="process.exec"):
        """Requests {key: params}, a few in flight: {key: result}."""
        c = self.daemon.client(timeout=timeout)
        pending, results, todo = {}, {}, list(requests.items())
        while todo or pending:
            while todo and len(pending) < window:
                key, params = todo.pop()
                pending[c.request(method, params)] = key
            rid = next(iter(pending))
            results[pending.pop(rid)] = c.result(rid, timeout)
        c.close()
        return results

    def http_cmd(self, host, port, path):
        return "printf 'GET %s HTTP/1.0\\r\\n\\r\\n' | nc -w 3 %s %d" % (path, host, port)

    def assertReachOut(self, sbs, indexes):
        res = self.run_all({i: {"sandbox": sbs[i]["id"], "command": self.http_cmd(self.inet.ip, 8080, "/hello.txt")}
                            for i in indexes})
        failed = sorted(i for i, r in res.items() if "hello from the internet" not in r["stdout"])
        self.assertEqual(failed, [], "sandboxes that did not get out through their gateway (by index): %s; "
                         "the first: %r" % (failed[:20], res[failed[0]] if failed else None))

    def assertNoNeighbour(self, sbs):
        for t in sorted({t for _, t in PAIRS}):
            with urllib.request.urlopen("http://%s:8000/index.html" % sbs[t]["network"]["ip"], timeout=5) as r:
                self.assertIn("neighbour %d" % t, r.read().decode())
        res = self.run_all({(f, t): {"sandbox": sbs[f]["id"],
                                     "command": self.http_cmd(sbs[t]["network"]["ip"], 8000, "/index.html")}
                            for f, t in PAIRS}, window=len(PAIRS))
        reached = [k for k, r in res.items() if "neighbour" in r["stdout"]]
        self.assertEqual(reached, [], "sandboxes reached a neighbour (from, to)")

    def assertEveryRoute(self, sbs):
        """Each sandbox's address is routed to its own link, and only there."""
        routes = {}
        for line in run("ip", "-o", "-4", "route", "show", "table", "main").stdout.splitlines():
            f = line.split()
            if "dev" in f:
                routes.setdefault(f[0], []).append(f[f.index("dev") + 1])
        wrong = [i for i, sb in enumerate(sbs) if routes.get(sb["network"]["ip"]) != ["sv" + sb["id"]]]
        self.assertEqual(wrong, [], "sandboxes (by index) without their one route")

    def test_more_sandboxes_than_a_bridge_has_ports(self):
        c = self.daemon.client(timeout=120)
        sbs = []
        for i in range(N):
            try:
                sb = c.call("sandbox.create", {})
            except RpcError as e:
                self.fail("create #%d failed: %s" % (i + 1, e))
            self.daemon.known_ids.add(sb["id"])
            sbs.append(sb)
        ips = [sb["network"]["ip"] for sb in sbs]
        self.assertEqual(len(set(ips)), N)
        self.assertEqual({sb["network"]["gateway"] for sb in sbs}, {sbs[0]["network"]["gateway"]})

        self.assertEveryRoute(sbs)
        self.assertReachOut(sbs, range(N))
        for t in sorted({t for _, t in PAIRS}):
            self.start_httpd(sbs[t], 8000, "neighbour %d" % t)
        self.assertNoNeighbour(sbs)

        # Restart recovery brings every link back, the first sandboxes' and
        # the last ones' alike: after a crash, and after a clean stop (which
        # removes them all).
        for hard in (True, False):
            with self.subTest(hard=hard):
                c.close()
                if hard:
                    self.daemon.kill9()
                else:
                    self.daemon.stop(timeout=60)
                self.daemon.start(timeout=180)
                c = self.daemon.client(timeout=120)
                states = {sb["id"]: sb["state"] for sb in c.call("sandbox.list")["sandboxes"]}
                self.assertEqual(set(states.values()), {"started"})
                self.assertEqual(len(states), N)
                self.assertEveryRoute(sbs)
                self.assertReachOut(sbs, SAMPLE)
                self.assertNoNeighbour(sbs)
        c.close()
        # Deleted a few at a time (their stops overlap).
        self.run_all({sb["id"]: {"sandbox": sb["id"], "force": True} for sb in sbs}, window=16,
                     method="sandbox.delete")
        with self.daemon.client() as c:
            self.assertEqual(c.call("sandbox.list")["sandboxes"], [])


if __name__ == "__main__":
    main()
