"""The wire protocol: framing, envelopes, error codes and bad input."""

import json
import os
import socket
import time

from sbxtest import SandboxdTestCase, main

PARSE, INVALID, NO_METHOD, BAD_PARAMS = -32700, -32600, -32601, -32602


class EnvelopeTest(SandboxdTestCase):
    def assertNullIdError(self, raw, code, client=None):
        c = client or self.rpc
        c.send_raw(raw)
        reply = c.wait_null()
        self.assertEqual(reply["jsonrpc"], "2.0", reply)
        self.assertIsNone(reply["id"], reply)
        self.assertNotIn("result", reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        self.assertTrue(reply["error"]["message"])
        return reply

    def assertStillServes(self, client=None):
        c = client or self.rpc
        self.assertEqual(c.call("system.ping"), {})

    def test_malformed_json(self):
        for raw in (b"{bad\n", b'{"jsonrpc":"2.0","id":1,"method":"system.ping"\n', b"\x01\x02\n",
                    b"{'single':'quotes'}\n", b'{"a":1}}\n', b"nul\n"):
            with self.subTest(raw=raw):
                self.assertNullIdError(raw, PARSE)
        self.assertStillServes()

    def test_invalid_utf8_line(self):
        self.assertNullIdError(b'{"jsonrpc":"2.0","id":1,"method":"system.ping","params":{"x":"\xff"}}\n', PARSE)
        self.assertStillServes()

    def test_nul_byte_in_line(self):
        self.assertNullIdError(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\x00\n', PARSE)
        self.assertStillServes()

    def test_non_object_messages(self):
        for raw in (b"[1,2]\n", b'"system.ping"\n', b"42\n", b"null\n", b"true\n",
                    b'[{"jsonrpc":"2.0","id":1,"method":"system.ping"}]\n'):
            with self.subTest(raw=raw):
                self.assertNullIdError(raw, INVALID)
        self.assertStillServes()

    def test_bad_envelopes_echo_the_id(self):
        cases = [
            {"id": 11, "method": "system.ping"},                                # no jsonrpc
            {"jsonrpc": "1.0", "id": 12, "method": "system.ping"},              # wrong version
            {"jsonrpc": 2.0, "id": 13, "method": "system.ping"},                # version not a string
            {"jsonrpc": "2.0", "id": 14},                                       # no method
            {"jsonrpc": "2.0", "id": 15, "method": 7},                          # method not a string
            {"jsonrpc": "2.0", "id": 16, "method": "system.ping", "params": [1]},   # params an array
            {"jsonrpc": "2.0", "id": 17, "method": "system.ping", "params": "x"},   # params a string
        ]
        for msg in cases:
            with self.subTest(msg=msg):
                self.rpc.send(msg)
                reply = self.rpc.wait(msg["id"])
                self.assertEqual(reply["error"]["code"], INVALID, reply)
        self.assertStillServes()

    def test_bad_id_types(self):
        for bad in ({"a": 1}, [1], True):
            with self.subTest(id=bad):
                self.assertNullIdError(
                    json.dumps({"jsonrpc": "2.0", "id": bad, "method": "system.ping"}).encode() + b"\n", INVALID)
        self.assertStillServes()

    def test_id_is_echoed_exactly(self):
        for rid in ("abc", "", 0, -5, 2 ** 53, "ünïcode ✓"):
            with self.subTest(id=rid):
                self.rpc.send({"jsonrpc": "2.0", "id": rid, "method": "system.ping"})
                reply = self.rpc.wait(rid)
                self.assertEqual(reply, {"jsonrpc": "2.0", "id": rid, "result": {}})

    def test_null_id_is_carried_out(self):
        self.rpc.send({"jsonrpc": "2.0", "id": None, "method": "sandbox.create", "params": {"name": "nullid"}})
        reply = self.rpc.wait_null()
        self.assertEqual(reply["result"]["name"], "nullid")
        self.daemon.known_ids.add(reply["result"]["id"])
        self.assertEqual(self.inspect("nullid")["id"], reply["result"]["id"])

    def test_fractional_id_echoed(self):
        self.rpc.send_raw(b'{"jsonrpc":"2.0","id":1.5,"method":"system.ping"}\n')
        self.assertEqual(json.loads(self.rpc.recv_line()), {"jsonrpc": "2.0", "id": 1.5, "result": {}})

    def test_fd_flag_without_descriptor(self):
        self.assertRpcError(BAD_PARAMS, "system.ping", {"fd": True}, param="fd")
        self.assertStillServes()

    def test_passed_descriptors_never_pile_up(self):
        base = self.daemon.settled_fd_count(self.rpc)
        r, w = os.pipe()
        try:
            # Claimed by a request that then ignores it, and stray ones no
            # request claims: both are closed, the queue stays bounded.
            for i in range(40):
                rid = self.rpc.request("system.ping", {"fd": True} if i % 2 else {}, fds=[r, w])
                self.assertEqual(self.rpc.result(rid), {})
        finally:
            os.close(r)
            os.close(w)
        c = self.daemon.client()
        self.assertLessEqual(self.daemon.settled_fd_count(c), base + 1 + 16)
        self.rpc.close()
        c.call("system.ping")
        self.assertLessEqual(self.daemon.settled_fd_count(c), base + 1)
        c.close()

    def test_unknown_methods(self):
        # Unknown names, and names of the protocol not implemented by this version.
        for method in ("no.such", "", "system", "system.ping ", "SYSTEM.PING", "sandbox.nope",
                       "process.nope", "events.unsubscribe"):
            with self.subTest(method=method):
                self.rpc.send({"jsonrpc": "2.0", "id": "m", "method": method})
                reply = self.rpc.wait("m")
                self.assertEqual(reply["error"]["code"], NO_METHOD, reply)
                self.assertNotIn("result", reply)
        self.assertStillServes()

    def test_notification_gets_no_reply(self):
        self.rpc.send({"jsonrpc": "2.0", "method": "system.ping"})
        self.rpc.send({"jsonrpc": "2.0", "method": "no.such.method"})
        self.rpc.send({"jsonrpc": "2.0", "id": 99, "method": "system.ping"})
        first = self.rpc.recv_msg()
        self.assertEqual(first, {"jsonrpc": "2.0", "id": 99, "result": {}})

    def test_notification_does_not_act(self):
        self.rpc.send({"jsonrpc": "2.0", "method": "sandbox.create", "params": {"name": "ghost"}})
        self.assertStillServes()
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_blank_lines_and_crlf(self):
        self.rpc.send_raw(b"\n\n   \n\t\n")
        self.rpc.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\r\n')
        self.rpc.send_raw(b'  {"jsonrpc":"2.0","id":2,"method":"system.ping"}   \n')
        self.assertEqual(self.rpc.recv_msg(), {"jsonrpc": "2.0", "id": 1, "result": {}})
        self.assertEqual(self.rpc.recv_msg(), {"jsonrpc": "2.0", "id": 2, "result": {}})

    def test_many_messages_in_one_write(self):
        data = b"".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": "system.ping"}).encode() + b"\n"
                        for i in range(200))
        self.rpc.send_raw(data)
        for i in range(200):
            self.assertEqual(self.rpc.result(i), {})

    def test_message_split_byte_by_byte(self):
        data = json.dumps({"jsonrpc": "2.0", "id": "split", "method": "system.ping"}).encode() + b"\n"
        for b in data:
            self.rpc.send_raw(bytes([b]))
            time.sleep(0.001)
        self.assertEqual(self.rpc.result("split"), {})

    def test_reply_is_one_line_of_json(self):
        self.rpc.send({"jsonrpc": "2.0", "id": 1, "method": "system.info"})
        line = self.rpc.recv_line()
        self.assertNotIn(b"\n", line)
        self.assertEqual(json.loads(line)["id"], 1)

    def test_partial_line_then_eof(self):
        c = self.daemon.client()
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"')
        c.shutdown_write()
        reply = c.recv_msg()
        self.assertIsNone(reply["id"])
        self.assertEqual(reply["error"]["code"], INVALID, reply)
        self.assertTrue(c.expect_eof(), "daemon did not close the connection")
        self.assertEqual(c.buf, b"", "unexpected extra output")
        self.assertStillServes()

    def test_complete_request_then_eof_is_answered(self):
        c = self.daemon.client()
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\n')
        c.shutdown_write()
        self.assertEqual(c.recv_msg(), {"jsonrpc": "2.0", "id": 1, "result": {}})
        self.assertTrue(c.expect_eof())

    def test_slow_request_then_eof_is_answered(self):
        sb = self.create("eof")
        c = self.daemon.client()
        c.request("process.exec", {"sandbox": sb["id"], "command": "sleep 0.5; echo done"}, id="x")
        c.shutdown_write()
        reply = c.wait("x")
        self.assertEqual(reply["result"]["stdout"], "done\n")
        self.assertTrue(c.expect_eof())

    def test_trailing_whitespace_then_eof_is_not_an_error(self):
        c = self.daemon.client()
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\n  ')
        c.shutdown_write()
        self.assertEqual(c.recv_msg(), {"jsonrpc": "2.0", "id": 1, "result": {}})
        self.assertTrue(c.expect_eof())
        self.assertEqual(c.null_replies, [])

    def test_connect_and_close_without_sending(self):
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.daemon.socket)
            s.close()
        self.assertStillServes()

    def test_large_valid_message_under_default_limit(self):
        sb = self.create("big")
        text = "x" * (4 * 1024 * 1024)
        r = self.exec(sb["id"], ["wc", "-c"], stdin=text)
        self.assertEqual(r["stdout"].strip(), str(len(text)))


class OversizeTest(SandboxdTestCase):
    daemon_options = {"max_message": 4096}

    @staticmethod
    def ping_line(total, rid=1):
        """A ping request whose line is exactly total bytes long, newline excluded."""
        head = '{"jsonrpc":"2.0","id":%s,"method":"system.ping","params":{"pad":"' % json.dumps(rid)
        tail = '"}}'
        return (head + "p" * (total - len(head) - len(tail)) + tail).encode()

    def test_limit_reported_in_info(self):
        self.assertEqual(self.call("system.info")["limits"]["max_message"], 4096)

    def test_line_at_limit_is_accepted(self):
        line = self.ping_line(4096)
        self.assertEqual(len(line), 4096)
        self.rpc.send_raw(line + b"\n")
        self.assertEqual(self.rpc.result(1), {})

    def test_line_over_limit_is_rejected_and_connection_stays(self):
        line = self.ping_line(4097, rid=7)
        self.rpc.send_raw(line + b"\n")
        reply = self.rpc.wait_null()
        self.assertEqual(reply["error"]["code"], INVALID, reply)
        self.assertEqual(self.rpc.call("system.ping"), {})
        self.assertNotIn(json.dumps(7), self.rpc.replies)

    def test_huge_line_in_pieces(self):
        # 1 MiB without a newline, sent in chunks, then the end of the line and a ping.
        chunk = b"y" * 65536
        self.rpc.send_raw(b'{"jsonrpc":"2.0","id":5,"method":"system.ping","params":{"pad":"')
        for _ in range(16):
            self.rpc.send_raw(chunk)
        self.rpc.send_raw(b'"}}\n')
        reply = self.rpc.wait_null()
        self.assertEqual(reply["error"]["code"], INVALID, reply)
        self.assertEqual(self.rpc.call("system.ping"), {})
        # The oversized line is reported once, not once per chunk.
        self.assertEqual(self.rpc.null_replies, [])
        self.assertEqual(self.rpc.order.count(None), 1)

    def test_oversized_line_between_good_ones(self):
        data = (self.ping_line(100, rid="a") + b"\n" + self.ping_line(5000, rid="b") + b"\n"
                + self.ping_line(100, rid="c") + b"\n")
        self.rpc.send_raw(data)
        self.assertEqual(self.rpc.result("a"), {})
        self.assertEqual(self.rpc.result("c"), {})
        self.assertEqual(self.rpc.wait_null()["error"]["code"], INVALID)
        self.assertNotIn(json.dumps("b"), self.rpc.replies)

    def test_oversized_partial_line_then_eof(self):
        c = self.daemon.client()
        c.send_raw(b"z" * 10000)
        c.shutdown_write()
        reply = c.recv_msg()
        self.assertIsNone(reply["id"])
        self.assertEqual(reply["error"]["code"], INVALID)
        self.assertTrue(c.expect_eof())
        self.assertEqual(c.buf, b"", "more than one reply to one oversized line")
        self.assertEqual(self.rpc.call("system.ping"), {})

    def test_reply_may_exceed_request_limit(self):
        sb = self.create("bigout")
        r = self.exec(sb["id"], "head -c 100000 /dev/zero | tr '\\0' a")
        self.assertEqual(r["stdout"], "a" * 100000)


class ParamsTest(SandboxdTestCase):
    """Missing and wrong-typed parameters: -32602 with data.param."""

    def check(self, method, params, param):
        with self.subTest(method=method, params=params):
            self.assertRpcError(BAD_PARAMS, method, params, param=param)

    def test_sandbox_param_required(self):
        for method in ("sandbox.start", "sandbox.stop", "sandbox.delete", "sandbox.inspect", "process.exec"):
            self.check(method, {}, "sandbox")
            self.check(method, None, "sandbox")
            self.check(method, {"sandbox": None}, "sandbox")
            self.check(method, {"sandbox": 5}, "sandbox")
            self.check(method, {"sandbox": ["a"]}, "sandbox")
            self.check(method, {"sandbox": {"id": "a"}}, "sandbox")

    def test_create_params(self):
        cases = [
            ({"name": 5}, "name"), ({"name": ""}, "name"), ({"image": []}, "image"), ({"image": 1}, "image"),
            ({"start": "yes"}, "start"), ({"start": 1}, "start"), ({"labels": []}, "labels"),
            ({"labels": "a=b"}, "labels"), ({"labels": {"a": 1}}, "labels"), ({"labels": {"a": None}}, "labels"),
            ({"env": "A=B"}, "env"), ({"env": {"A": 1}}, "env"), ({"env": {"A=B": "x"}}, "env"),
            ({"env": {"": "x"}}, "env"), ({"user": 0}, "user"), ({"user": ""}, "user"),
            ({"user": "a/b"}, "user"), ({"workdir": "relative"}, "workdir"), ({"workdir": 1}, "workdir"),
            ({"workdir": ""}, "workdir"), ({"hostname": "bad host"}, "hostname"),
            ({"hostname": "x" * 64}, "hostname"), ({"hostname": ""}, "hostname"), ({"hostname": 1}, "hostname"),
            ({"network": "none"}, "network"), ({"network": {"mode": "carrier-pigeon"}}, "network"),
            ({"resources": "big"}, "resources"),
            ({"auto_stop_min": "15"}, "auto_stop_min"), ({"auto_stop_min": -1}, "auto_stop_min"),
            ({"auto_stop_min": 1.5}, "auto_stop_min"), ({"auto_archive_min": -1}, "auto_archive_min"),
            ({"auto_delete_min": -2}, "auto_delete_min"), ({"auto_delete_min": "never"}, "auto_delete_min"),
            ({"ephemeral": "no"}, "ephemeral"),
        ]
        for params, param in cases:
            self.check("sandbox.create", params, param)
        self.assertEqual(self.call("sandbox.list")["sandboxes"], [])

    def test_stop_delete_params(self):
        sb = self.create("p")
        self.check("sandbox.stop", {"sandbox": sb["id"], "force": "yes"}, "force")
        self.check("sandbox.stop", {"sandbox": sb["id"], "timeout_s": "1"}, "timeout_s")
        self.check("sandbox.stop", {"sandbox": sb["id"], "timeout_s": -1}, "timeout_s")
        self.check("sandbox.delete", {"sandbox": sb["id"], "force": 1}, "force")
        self.assertEqual(self.inspect(sb["id"])["state"], "started")

    def test_list_params(self):
        self.check("sandbox.list", {"labels": "a=b"}, "labels")
        self.check("sandbox.list", {"labels": {"a": 2}}, "labels")
        self.check("sandbox.list", {"state": 5}, "state")
        self.check("sandbox.list", {"state": "bogus"}, "state")

    def test_exec_params(self):
        sb = self.create("p")["id"]
        cases = [
            ({"cmd": "ls"}, "cmd"), ({"cmd": [1]}, "cmd"), ({"cmd": ["ls", None]}, "cmd"), ({"cmd": []}, "cmd"),
            ({"cmd": ["true"], "command": "true"}, "cmd"), ({}, "cmd"), ({"command": 5}, "command"),
            ({"command": ["true"]}, "command"),
            ({"cmd": ["true"], "cwd": 5}, "cwd"), ({"cmd": ["true"], "env": []}, "env"),
            ({"cmd": ["true"], "env": {"A": 1}}, "env"), ({"cmd": ["true"], "env": {"A=B": "c"}}, "env"),
            ({"cmd": ["true"], "env": {"": "c"}}, "env"),
            ({"cmd": ["true"], "user": 5}, "user"), ({"cmd": ["true"], "stdin": 5}, "stdin"),
            ({"cmd": ["true"], "stdin": ["a"]}, "stdin"),
            ({"cmd": ["true"], "timeout_s": "1"}, "timeout_s"), ({"cmd": ["true"], "timeout_s": -1}, "timeout_s"),
            ({"cmd": ["true"], "max_output_bytes": 1.5}, "max_output_bytes"),
            ({"cmd": ["true"], "max_output_bytes": -1}, "max_output_bytes"),
            ({"cmd": ["true"], "max_output_bytes": "10"}, "max_output_bytes"),
            ({"cmd": ["true"], "encoding": "latin1"}, "encoding"), ({"cmd": ["true"], "encoding": 5}, "encoding"),
        ]
        for params, param in cases:
            params = dict(params, sandbox=sb)
            self.check("process.exec", params, param)

    def test_image_params(self):
        self.check("image.inspect", {}, "name")
        self.check("image.inspect", {"name": 5}, "name")
        self.check("image.remove", {}, "name")
        self.check("image.remove", {"name": ["minimal"]}, "name")
        self.check("image.remove", {"name": "minimal", "force": "yes"}, "force")
        self.check("image.import", {"path": "/tmp"}, "name")
        self.check("image.import", {"name": 1, "path": "/tmp"}, "name")
        self.check("image.import", {"name": "x"}, "path")
        self.check("image.import", {"name": "x", "path": 5}, "path")
        self.check("image.import", {"name": "x", "path": "/tmp", "format": 5}, "format")
        self.check("image.import", {"name": "x", "path": "/tmp", "fd": "no"}, "fd")
        self.check("image.import", {"name": "x", "path": "relative/dir"}, "path")
        self.check("image.import", {"name": "bad name", "path": "/tmp"}, "name")
        self.check("image.import", {"name": "../up", "path": "/tmp"}, "name")
        self.check("image.import", {"name": "x", "path": "/tmp", "format": "bogus"}, "format")
        self.assertEqual([i["name"] for i in self.call("image.list")["images"]], ["minimal"])

    def test_extra_unknown_params_are_ignored(self):
        self.assertEqual(self.call("system.ping", {"unexpected": [1, 2, 3]}), {})
        sb = self.create("extra", colour="blue")
        self.assertEqual(self.inspect(sb["id"], )["name"], "extra")


if __name__ == "__main__":
    main()
