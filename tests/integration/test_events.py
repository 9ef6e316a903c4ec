"""events.subscribe: lifecycle notifications to a subscribed connection,
filtered by sandbox on request, gone with the connection."""

import time

import sbxtest
from sbxtest import SandboxdTestCase, wait_until


class EventTest(SandboxdTestCase):

    def events(self, client, want, timeout=15):
        """Collect event notifications until `want` of them have arrived."""
        deadline = time.monotonic() + timeout
        while len([n for n in client.notifications if n.get("method") == "event"]) < want:
            if time.monotonic() > deadline:
                self.fail("only %r arrived" % client.notifications)
            try:
                client._pump(min(deadline, time.monotonic() + 0.5))
            except TimeoutError:
                pass
        got = [n["params"] for n in client.notifications if n.get("method") == "event"]
        client.notifications.clear()
        return got

    def test_lifecycle_events_in_order(self):
        sub = self.daemon.client()
        self.assertEqual(sub.call("events.subscribe"), {"sandbox": None})
        sb = self.create("ev")
        self.call("sandbox.pause", {"sandbox": "ev"})
        self.call("sandbox.resume", {"sandbox": "ev"})
        self.call("sandbox.stop", {"sandbox": "ev"}, timeout=60)
        self.call("sandbox.start", {"sandbox": "ev"})
        self.call("sandbox.delete", {"sandbox": "ev", "force": True})
        got = self.events(sub, 8)
        self.assertEqual([e["type"] for e in got],
                         ["created", "started", "paused", "resumed", "stopped", "started", "stopped", "deleted"])
        for e in got:
            self.assertEqual((e["sandbox"], e["name"]), (sb["id"], "ev"))
            self.assertRegex(e["time"], sbxtest.RFC3339_RE)
        self.assertEqual(got[2]["state"], "paused")

    def test_filter_by_sandbox(self):
        self.create("mine")
        sub = self.daemon.client()
        self.assertEqual(sub.call("events.subscribe", {"sandbox": "mine"})["sandbox"], self.inspect("mine")["id"])
        self.create("other")
        self.call("sandbox.delete", {"sandbox": "other", "force": True})
        self.call("sandbox.stop", {"sandbox": "mine"}, timeout=60)
        self.assertEqual([e["type"] for e in self.events(sub, 1)], ["stopped"])
        self.assertRpcError(1, "events.subscribe", {"sandbox": "nosuch"})
        self.assertRpcError(-32602, "events.subscribe", {"sandbox": 5}, param="sandbox")

    def test_oom_event(self):
        sub = self.daemon.client()
        sub.call("events.subscribe")
        self.create("hog", resources={"memory_mb": 32})
        self.events(sub, 2)  # created, started
        r = self.call("process.exec", {"sandbox": "hog", "command": "x=aaaaaaaa; while :; do x=$x$x; done",
                                       "timeout_s": 60}, timeout=90)
        self.assertEqual(r["signal"], "KILL", r)
        got = self.events(sub, 1)
        self.assertEqual(got[0]["type"], "oom")
        self.assertIn("killed at the memory limit", got[0]["message"])

    def test_init_dying_is_an_error_event(self):
        sub = self.daemon.client()
        sub.call("events.subscribe")
        sb = self.create("fragile")
        self.events(sub, 2)
        import os
        import signal
        os.kill(sb["init_pid"], signal.SIGKILL)
        got = self.events(sub, 2)
        self.assertEqual([e["type"] for e in got], ["error", "stopped"])

    def test_closed_subscriber_costs_nothing(self):
        base = self.daemon.settled_fd_count(self.rpc)
        for _ in range(20):
            c = self.daemon.client()
            c.call("events.subscribe")
            c.close()
        self.create("after")
        self.call("sandbox.delete", {"sandbox": "after", "force": True})
        wait_until(lambda: self.daemon.settled_fd_count(self.rpc) <= base, 10,
                   message="subscribers' connections were not released")


if __name__ == "__main__":
    sbxtest.main()
