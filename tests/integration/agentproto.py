"""Protocol clients for checking the agent image from outside a sandbox,
through the preview gateway: HTTP/1.1 requests, a WebSocket client (RFC
6455), a Chrome DevTools Protocol session, the RFB (VNC) handshake with VNC
authentication (DES), and a PNG decoder for screenshots.

Python 3 standard library only; shared by tests/integration and bench/.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time
import zlib


# --------------------------------------------------------------------------
# HTTP through the preview gateway


def _connect(gateway, timeout):
    host, port = gateway.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def http_get(gateway, host, path="/", token=None, headers=None, timeout=10):
    """GET over a fresh connection: returns (status, {lowercased header:
    value}, body bytes). The body ends where Content-Length or the chunked
    encoding says, or at the end of the connection (servers such as
    Chromium's DevTools keep connections open whatever the client asks)."""
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Connection: close"]
    if token:
        lines.append("X-Sandbox-Token: %s" % token)
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    with _connect(gateway, timeout) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""

        def more():
            chunk = s.recv(1 << 16)
            if not chunk:
                raise EOFError
            return chunk

        try:
            while b"\r\n\r\n" not in data:
                data += more()
            head, _, body = data.partition(b"\r\n\r\n")
            hl = head.decode("latin-1").split("\r\n")
            hdrs = {}
            for line in hl[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            if "content-length" in hdrs:
                while len(body) < int(hdrs["content-length"]):
                    body += more()
            elif hdrs.get("transfer-encoding", "").lower() == "chunked":
                out = b""
                while True:
                    while b"\r\n" not in body:
                        body += more()
                    size_line, _, body = body.partition(b"\r\n")
                    n = int(size_line.split(b";")[0], 16)
                    while len(body) < n + 2:
                        body += more()
                    if n == 0:
                        break
                    out, body = out + body[:n], body[n + 2:]
                body = out
            else:
                while True:
                    body += more()
        except EOFError:
            if b"\r\n\r\n" not in data:
                raise ConnectionError("connection closed before a whole response head: %r" % data[:200])
    parts = hl[0].split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, hdrs, body


# --------------------------------------------------------------------------
# WebSocket (RFC 6455), client side


class WebSocketError(Exception):
    pass


class WebSocket:
    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, gateway, host, path, token=None, protocols=None, timeout=15, headers=None):
        self.sock = _connect(gateway, timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16))
        lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: %s" % key.decode(), "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(protocols))
        if token:
            lines.append("X-Sandbox-Token: %s" % token)
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WebSocketError("connection closed during the handshake: %r" % self.buf[:300])
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        hl = head.decode("latin-1").split("\r\n")
        if len(hl[0].split()) < 2 or hl[0].split()[1] != "101":
            raise WebSocketError("handshake refused: %s" % head.decode("latin-1")[:500])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in hl[1:])}
        want = base64.b64encode(hashlib.sha1(key + self.GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise WebSocketError("bad Sec-WebSocket-Accept %r" % hdrs.get("sec-websocket-accept"))
        self.protocol = hdrs.get("sec-websocket-protocol")

    def send(self, payload, opcode=None):
        if opcode is None:
            opcode = 1 if isinstance(payload, str) else 2
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.sock.sendall(head + mask + masked)

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no WebSocket data in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise WebSocketError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout=30):
        """The next whole message: (opcode, payload bytes). Pings are answered."""
        deadline = time.monotonic() + timeout
        parts, first_op = [], None
        while True:
            b0, b1 = self._read(2, deadline)
            fin, op, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b1 & 0x80:
                raise WebSocketError("the server masked a frame")
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            payload = self._read(n, deadline)
            if op == 9:
                self.send(payload, 10)
                continue
            if op == 10:
                continue
            if op == 8:
                raise WebSocketError("closed by the server: %r" % payload[:200])
            if op != 0:
                first_op = op
            parts.append(payload)
            if fin:
                return first_op, b"".join(parts)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# Chrome DevTools Protocol


class CDP:
    """A CDP connection over a WebSocket; events are kept, results matched by id."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.events = []

    def call(self, method, params=None, session=None, timeout=30):
        mid = self.next_id
        self.next_id += 1
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            _, data = self.ws.recv(max(0.1, deadline - time.monotonic()))
            reply = json.loads(data)
            if reply.get("id") == mid:
                if "error" in reply:
                    raise RuntimeError("CDP %s: %r" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, session=None, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                    return self.events.pop(i)
            _, data = self.ws.recv(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(data))


def screenshot(cdp, url, timeout=30):
    """Open url in a new tab, wait for its load event and return a PNG of it."""
    target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    try:
        session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        cdp.call("Page.enable", session=session)
        cdp.call("Page.navigate", {"url": url}, session=session)
        cdp.wait_event("Page.loadEventFired", session=session, timeout=timeout)
        shot = cdp.call("Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout)
        return base64.b64decode(shot["data"])
    finally:
        cdp.call("Target.closeTarget", {"targetId": target})


# --------------------------------------------------------------------------
# PNG


def png_decode(data):
    """(width, height, rows) of an 8-bit RGB or RGBA, non-interlaced PNG;
    rows[y][x] is an (r, g, b) tuple."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack("!I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack("!I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("PNG chunk %r: bad CRC" % kind)
        if kind == b"IHDR":
            hdr = struct.unpack("!IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("unsupported PNG: depth %d, colour type %d, interlace %d" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(h):
        ftype, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


# --------------------------------------------------------------------------
# DES (one block, encryption only), for VNC authentication

_PC1 = [57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44,
        36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20,
        12, 4]
_PC2 = [14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37,
        47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32]
_SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
_IP = [58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48,
       40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13,
       5, 63, 55, 47, 39, 31, 23, 15, 7]
_FP = [_IP.index(i) + 1 for i in range(1, 65)]
_E = [((4 * i + j - 1) % 32) + 1 for i in range(8) for j in range(6)]
_P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22,
      11, 4, 25]
_S = [
    "e4d12fb83a6c5907 0f74e2d1a6cb9538 41e8d62bfc973a50 fc8249175b3ea06d",
    "f18e6b34972dc05a 3d47f28ec01a69b5 0e7ba4d158c6932f d8a13f42b67c05e9",
    "a09e63f51dc7b428 d709346a285ecbf1 d6498f30b12c5ae7 1ad069874fe3b52c",
    "7de3069a1285bc4f d8b56f03472c1ae9 a690cb7df13e5284 3f06a1d8945bc72e",
    "2c417ab6853fd0e9 eb2c47d150fa3986 421bad78f9c5630e b8c71e2d6f09a453",
    "c1af92680d34e75b af427c9561de0b38 9ef528c3704a1db6 432c95fabe17608d",
    "4b2ef08d3c975a61 d0b7491ae35c2f86 14bdc37eaf680592 6bd814a7950fe23c",
    "d2846fb1a93e50c7 1fd8a374c56b0e92 7b419ce206adf358 21e74a8dfc90356b",
]
_SBOX = [[[int(c, 16) for c in row] for row in s.split()] for s in _S]


def _permute(bits, table):
    return [bits[i - 1] for i in table]


def _bits(data):
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def des_encrypt_block(key, block):
    """DES-encrypt one 8-byte block with an 8-byte key."""
    k = _permute(_bits(key), _PC1)
    c, d = k[:28], k[28:]
    subkeys = []
    for s in _SHIFTS:
        c, d = c[s:] + c[:s], d[s:] + d[:s]
        subkeys.append(_permute(c + d, _PC2))
    b = _permute(_bits(block), _IP)
    left, right = b[:32], b[32:]
    for sk in subkeys:
        x = [e ^ k for e, k in zip(_permute(right, _E), sk)]
        out = []
        for i in range(8):
            chunk = x[6 * i:6 * i + 6]
            row = chunk[0] * 2 + chunk[5]
            col = chunk[1] * 8 + chunk[2] * 4 + chunk[3] * 2 + chunk[4]
            v = _SBOX[i][row][col]
            out += [(v >> 3) & 1, (v >> 2) & 1, (v >> 1) & 1, v & 1]
        left, right = right, [l ^ f for l, f in zip(left, _permute(out, _P))]
    bits = _permute(right + left, _FP)
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, 64, 8))


def vnc_auth_response(password, challenge):
    """The answer to a VNC authentication challenge: DES with the first 8
    bytes of the password (each byte's bits reversed) as key."""
    key = (password.encode("latin-1") + b"\0" * 8)[:8]
    key = bytes(int("{:08b}".format(b)[::-1], 2) for b in key)
    return des_encrypt_block(key, challenge[:8]) + des_encrypt_block(key, challenge[8:16])


class RFB:
    """RFB over a WebSocket (noVNC's websockify), far enough to log in."""

    def __init__(self, ws):
        self.ws = ws
        self.buf = b""

    def read(self, n, timeout=15):
        while len(self.buf) < n:
            _, data = self.ws.recv(timeout)
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def handshake(self, password):
        """Returns (banner, auth_ok, server_init or None); server_init is
        (width, height, desktop name)."""
        banner = self.read(12)
        if not banner.startswith(b"RFB "):
            raise WebSocketError("no RFB banner: %r" % banner)
        self.ws.send(b"RFB 003.008\n")
        ntypes = self.read(1)[0]
        if ntypes == 0:
            n = struct.unpack("!I", self.read(4))[0]
            raise WebSocketError("server refused: %r" % self.read(n))
        types = self.read(ntypes)
        if 2 not in types:
            raise WebSocketError("no VNC authentication offered: %r" % types)
        self.ws.send(b"\x02")
        challenge = self.read(16)
        self.ws.send(vnc_auth_response(password, challenge))
        result = struct.unpack("!I", self.read(4))[0]
        if result != 0:
            return banner, False, None
        self.ws.send(b"\x01")  # ClientInit: shared
        w, h = struct.unpack("!HH", self.read(4))
        self.read(16)  # pixel format
        n = struct.unpack("!I", self.read(4))[0]
        return banner, True, (w, h, self.read(n).decode("latin-1"))


# FIPS 46 / NBS test vector, checked whenever this module is loaded: a DES
# slip would otherwise look like a wrong VNC password.
assert des_encrypt_block(bytes.fromhex("133457799BBCDFF1"),
                         bytes.fromhex("0123456789ABCDEF")) == bytes.fromhex("85E813540F0AB405")
