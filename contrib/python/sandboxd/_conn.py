"""One connection to sandboxd: JSON lines over a unix socket, many requests
in flight, replies matched by id, descriptors passed both ways.

A reader thread owns the receiving side.  It files every reply into the
slot of its request and hands notifications to a callback, so that any
number of threads (and event loops, through AsyncClient) can share one
connection.  Sending is serialized by a lock; a request's descriptors ride
on the first bytes of its line, as the protocol asks.
"""

from __future__ import annotations

import array
import asyncio
import binascii
import collections
import itertools
import json
import os
import socket
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import errors

DEFAULT_SOCKET = "/run/sandboxd/sandboxd.sock"
MAX_FDS = 16
_READ_CHUNK = 1 << 20
_ASK_LIMIT = 1 << 20
_KEEP_BUFFER = 32 << 20
_SMALL_TAIL = 256 << 10
_FD_SIZE = array.array("i").itemsize


def socket_path(path: Optional[str] = None) -> str:
    """The socket to use: the argument, then $SANDBOXD_SOCKET, then the
    packaged default."""
    if path:
        return os.fspath(path)
    env = os.environ.get("SANDBOXD_SOCKET")
    return env if env else DEFAULT_SOCKET


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


class Pending:
    """A request in flight.  result() blocks until its reply is in."""

    __slots__ = ("id", "method", "raw_data", "on_progress", "_flag", "_lock", "_reply", "_error",
                 "fd", "_callbacks", "_cb_lock", "into")

    def __init__(self, rid: int, method: str, raw_data: Union[bool, str] = False,
                 on_progress: Optional[Callable[[Dict[str, Any]], None]] = None):
        self.id = rid
        self.method = method
        self.raw_data = raw_data
        self.on_progress = on_progress
        # Where the raw bytes of an "encoding": "binary" reply go (a
        # writable buffer at least as long as the chunk asked for).
        self.into: Optional[memoryview] = None
        # A lock held until the reply is in: lighter than an Event, whose
        # wait allocates a lock per waiter (this is the per-call latency).
        self._flag = False
        self._lock = threading.Lock()
        self._lock.acquire()
        self._reply: Optional[Dict[str, Any]] = None
        self._error: Optional[BaseException] = None
        self.fd: Optional[int] = None
        self._callbacks: List[Callable[["Pending"], None]] = []
        self._cb_lock = threading.Lock()

    def done(self) -> bool:
        return self._flag

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once the reply is in (False when timeout passed first)."""
        if self._flag:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            self._lock.release()  # stays open for any other waiter
            return True
        return self._flag

    def _finish(self, reply: Optional[Dict[str, Any]], error: Optional[BaseException] = None) -> None:
        self._reply = reply
        self._error = error
        with self._cb_lock:
            self._flag = True
            cbs, self._callbacks = self._callbacks, []
        self._lock.release()
        for cb in cbs:
            try:
                cb(self)
            except Exception:  # a callback must not kill the reader
                pass

    def add_done_callback(self, cb: Callable[["Pending"], None]) -> None:
        """cb(pending) runs once the reply is in (on the reader thread, or
        at once when it already is)."""
        with self._cb_lock:
            if not self._flag:
                self._callbacks.append(cb)
                return
        cb(self)

    def result(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The result object; raises the error class of the daemon's answer,
        or ConnectionError when the connection went away first."""
        if not self.wait(timeout):
            raise errors.Timeout("no answer to %s within %s s" % (self.method, timeout), method=self.method)
        if self._error is not None:
            raise self._error
        reply = self._reply or {}
        if "error" in reply:
            self.close_fd()
            raise errors.error_from_reply(reply["error"], self.method)
        res = reply.get("result")
        return res if isinstance(res, dict) else {"value": res}

    def take_fd(self) -> Optional[int]:
        """The descriptor the reply brought (the caller owns it now)."""
        fd, self.fd = self.fd, None
        return fd

    def close_fd(self) -> None:
        fd = self.take_fd()
        if fd is not None:
            os.close(fd)


def _connect(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
    except OSError as e:
        sock.close()
        raise errors.ConnectionError("cannot connect to sandboxd at %s: %s" % (path, e.strerror or e)) from e
    return sock


class Connection:
    """A connected socket and its reader thread."""

    def __init__(self, path: str, on_notification: Optional[Callable[[Dict[str, Any]], None]] = None,
                 connect_timeout: float = 10.0):
        self._setup(path, on_notification, _connect(path, connect_timeout))
        self._reader = threading.Thread(target=self._read_loop, name="sandboxd-reader", daemon=True)
        self._reader.start()

    def _setup(self, path: str, on_notification: Optional[Callable[[Dict[str, Any]], None]],
               sock: socket.socket) -> None:
        self.path = path
        self.on_notification = on_notification
        self.sock = sock
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: Dict[int, Pending] = {}
        self._ids = itertools.count(1)
        self._fds: "collections.deque[int]" = collections.deque()
        self._dead: Optional[BaseException] = None
        self.max_message: Optional[int] = None
        self.features: Optional[frozenset] = None  # system.info's, once asked
        # What has been received and not yet taken as lines.
        self._buf = bytearray(_READ_CHUNK)
        self._start = self._end = self._scan = 0
        self._reader: Optional[threading.Thread] = None
        # The raw bytes that follow a binary fs.read reply, while they
        # come in: [reply, its Pending or None, target view, got, length].
        self._raw: Optional[List[Any]] = None

    # ------------------------------------------------------------------
    # sending

    @property
    def alive(self) -> bool:
        return self._dead is None

    def _register(self, method: str, raw_data: Union[bool, str], on_progress) -> Pending:
        with self._lock:
            if self._dead is not None:
                raise errors.ConnectionError(str(self._dead), method=method)
            p = Pending(next(self._ids), method, raw_data, on_progress)
            self._pending[p.id] = p
        return p

    def _unregister(self, p: Pending) -> None:
        with self._lock:
            self._pending.pop(p.id, None)

    def start(self, method: str, params: Optional[Dict[str, Any]] = None, fds: Sequence[int] = (),
              raw_data: Union[bool, str] = False, on_progress=None, bulk: Optional[bytes] = None,
              into: Optional[memoryview] = None, payload: Optional[Any] = None) -> Pending:
        """Send a request; return its Pending at once.  With bulk, params'
        last member is "data" and bulk (ASCII without escapes, such as
        base64 or hex) is its value, sent without copying it into the line.
        raw_data (True or "base64", or "hex"): the reply's result.data is
        that encoding of bytes, decoded where it lies into bytes.  into:
        for an fs.read with "encoding": "binary", the buffer its bytes are
        received into; result.data is then a memoryview of it (without
        into, a bytearray of their own).  payload: the raw bytes of an
        fs.write with "encoding": "binary" (params' "length" is set to their
        count), sent after the line and a newline."""
        if payload is not None:
            params = dict(params or {}, encoding="binary", length=len(payload))
        p = self._register(method, raw_data, on_progress)
        p.into = into
        head = b'{"jsonrpc":"2.0","id":%d,"method":%s' % (p.id, _dumps(method))
        if bulk is None:
            if params is not None:
                parts = [head, b',"params":', _dumps(params), b"}\n"]
            else:
                parts = [head, b"}\n"]
        else:
            pj = _dumps(params or {})
            sep = b"," if len(pj) > 2 else b""
            parts = [head, b',"params":', pj[:-1], sep, b'"data":"', bulk, b'"}}\n']
        size = sum(len(x) for x in parts)
        if payload is not None:
            parts += [payload, b"\n"]
            size = max(size, len(payload))
        if size > _ASK_LIMIT and self.max_message is None:
            self._learn_limit()
        if self.max_message is not None and size > self.max_message:
            self._unregister(p)
            raise errors.LimitExceeded("a %s request of %d bytes is longer than the daemon's limit of %d bytes"
                                       % (method, size, self.max_message), code=4, method=method)
        try:
            self._send(parts, fds)
        except OSError as e:
            self._unregister(p)
            self._die(errors.ConnectionError("lost the connection to sandboxd at %s: %s" % (self.path, e)))
            raise errors.ConnectionError("lost the connection to sandboxd at %s while sending %s: %s"
                                         % (self.path, method, e), method=method) from e
        return p

    def _learn_limit(self) -> None:
        """The daemon's message limit, asked once before the first big line
        (a longer one would be answered with an error that has no id), and
        its features, which say how file bytes may travel."""
        try:
            info = self.call("system.info", timeout=30)
            self.max_message = int((info.get("limits") or {}).get("max_message") or (16 << 20))
            self.features = frozenset(f for f in info.get("features") or () if isinstance(f, str))
        except errors.SandboxdError:
            self.max_message = 16 << 20
            self.features = frozenset()

    def binary_encoding(self) -> str:
        """How chunks of files go in JSON: hex where the daemon takes it
        (CPython decodes hex three times as fast as base64), else base64."""
        if self.features is None:
            self._learn_limit()
        return "hex" if "fs.encoding.hex" in (self.features or ()) else "base64"

    def write_encoding(self) -> str:
        """How chunks of files are written: raw bytes after the request
        line where the daemon takes them, else as binary_encoding() says."""
        if self.features is None:
            self._learn_limit()
        return "binary" if "fs.encoding.binary" in (self.features or ()) else self.binary_encoding()

    def read_encoding(self) -> str:
        """How chunks of files are read: raw bytes after the reply line
        where the daemon offers it (nothing to decode, half of hex's
        bytes), else as binary_encoding() says."""
        if self.features is None:
            self._learn_limit()
        return "binary" if "fs.encoding.binary" in (self.features or ()) else self.binary_encoding()

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, timeout: Optional[float] = None,
             **kw: Any) -> Dict[str, Any]:
        return self.start(method, params, **kw).result(timeout)

    def _send(self, parts: List[bytes], fds: Sequence[int]) -> None:
        with self._send_lock:
            if fds:
                anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", list(fds)).tobytes())]
                n = self.sock.sendmsg(parts, anc)
            else:
                n = self.sock.sendmsg(parts)
            # The rest without descriptors (sendmsg may stop anywhere),
            # piece by piece: joining them would copy megabytes.
            for part in parts:
                if n >= len(part):
                    n -= len(part)
                    continue
                with memoryview(part) as mv:
                    self.sock.sendall(mv[n:])
                n = 0

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (for tests of the daemon's framing)."""
        with self._send_lock:
            self.sock.sendall(data)

    # ------------------------------------------------------------------
    # receiving

    _ANC_SIZE = socket.CMSG_SPACE(MAX_FDS * _FD_SIZE)

    def _receive(self) -> bool:
        """One receive, and every whole line it completes handled; False
        when the daemon closed the connection.  Raises OSError (and
        BlockingIOError on a non-blocking socket with nothing to read)."""
        buf = self._buf
        start, end, scan = self._start, self._end, self._scan
        raw = self._raw
        if raw is not None and start == end and raw[2] is not None and raw[4] - raw[3] >= _READ_CHUNK:
            # A binary reply's bytes, nothing else buffered: straight into
            # where they go, with no copy through the line buffer.
            with raw[2][raw[3]:raw[4]] as dst:
                n, anc, _flags, _addr = self.sock.recvmsg_into([dst], self._ANC_SIZE)
            self._take_fds(anc)
            if n == 0:
                return False
            raw[3] += n
            if raw[3] == raw[4]:
                self._raw_done()
            return True
        if end == len(buf):
            if start > 0:
                # Through a memoryview: one memmove, where a slice of the
                # bytearray would first copy the piece into fresh memory
                # (page faults on every page of a multi-MiB line).
                with memoryview(buf) as whole:
                    whole[0:end - start] = whole[start:end]
                end -= start
                scan -= start
                start = 0
            else:
                buf.extend(bytes(len(buf)))
            self._start, self._end, self._scan = start, end, scan
        mv = memoryview(buf)
        try:
            n, anc, _flags, _addr = self.sock.recvmsg_into([mv[end:]], self._ANC_SIZE)
        finally:
            mv.release()
        self._take_fds(anc)
        if n == 0:
            return False
        end += n
        while True:
            if self._raw is not None:
                start = scan = self._raw_take(buf, start, end)
                if self._raw is not None:
                    break
                continue
            nl = buf.find(b"\n", scan, end)
            if nl < 0:
                scan = end
                break
            self._line(buf, start, nl)
            start = scan = nl + 1
        if start == end:
            # Keep the room a big line needed (replies of chunked
            # reads come one after another); only a huge one's goes.
            start = end = scan = 0
            if len(buf) > _KEEP_BUFFER:
                self._buf = bytearray(_READ_CHUNK)
        elif start > _READ_CHUNK and end - start <= _SMALL_TAIL:
            # The start of the next line, while it is short: to the front
            # now, so that a big line (a chunk's reply follows another)
            # fits whole instead of being moved when the buffer fills.
            with memoryview(buf) as whole:
                whole[0:end - start] = whole[start:end]
            end -= start
            scan -= start
            start = 0
        self._start, self._end, self._scan = start, end, scan
        return True

    def _take_fds(self, anc: List[Any]) -> None:
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(data[:len(data) - len(data) % _FD_SIZE])
                self._fds.extend(fds)

    def _raw_take(self, buf: bytearray, start: int, end: int) -> int:
        """Move what the buffer holds of the binary reply's bytes to their
        target; returns the new start."""
        raw = self._raw
        assert raw is not None
        n = min(end - start, raw[4] - raw[3])
        if n and raw[2] is not None:
            with memoryview(buf) as whole:
                raw[2][raw[3]:raw[3] + n] = whole[start:start + n]
        raw[3] += n
        if raw[3] == raw[4]:
            self._raw_done()
        return start + n

    def _raw_done(self) -> None:
        raw = self._raw
        assert raw is not None
        self._raw = None
        msg, p, target, _got, length = raw
        if p is None:
            return  # nobody waits for it (a request given up): the bytes are dropped
        msg["result"]["data"] = target[:length] if p.into is not None else target.obj
        self._dispatch(msg)

    def _raw_begin(self, buf: bytearray, start: int, nl: int) -> bool:
        """A binary fs.read reply's line: its bytes follow.  False when the
        line is not one after all."""
        try:
            msg = json.loads(bytes(buf[start:nl]))
            length = msg["result"]["length"]
        except (ValueError, KeyError, TypeError):
            return False
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            return False
        rid = msg.get("id")
        with self._lock:
            p = self._pending.get(rid) if isinstance(rid, int) else None
        target: Optional[memoryview] = None
        if p is not None:
            if p.into is not None and len(p.into) >= length:
                target = p.into
            else:
                p.into = None
                target = memoryview(bytearray(length))
        self._raw = [msg, p, target, 0, length]
        if length == 0:
            self._raw_done()
        return True

    def _read_failed(self, e: BaseException) -> BaseException:
        if isinstance(e, OSError):
            return errors.ConnectionError("lost the connection to sandboxd at %s: %s" % (self.path, e))
        return errors.ConnectionError("reading from sandboxd failed: %r" % (e,))

    def _closed_by_daemon(self) -> BaseException:
        return errors.ConnectionError("sandboxd at %s closed the connection" % self.path)

    def _read_loop(self) -> None:
        reason: BaseException
        try:
            while self._receive():
                pass
            reason = self._closed_by_daemon()
        except BaseException as e:  # OSError; anything else is a bug: fail every waiter loudly
            reason = self._read_failed(e)
        self._die(reason)

    _DATA_MARK = b',"result":{"data":"'
    _BINARY_MARK = b',"result":{"encoding":"binary",'

    def _line(self, buf: bytearray, start: int, nl: int) -> None:
        if nl == start or buf[start:nl].strip() == b"":
            return
        p: Optional[Pending] = None
        # A base64 fs.read reply, asked for as bytes: decode its data where
        # it lies instead of through a JSON string (data is its first member).
        if buf.startswith(b'{"jsonrpc":"2.0","id":', start, nl):
            if buf.find(self._BINARY_MARK, start, min(nl, start + 80)) > 0 and self._raw_begin(buf, start, nl):
                return
            cut = buf.find(self._DATA_MARK, start, min(nl, start + 64))
            if cut > 0:
                try:
                    rid = int(buf[start + 22:cut])
                except ValueError:
                    rid = None
                with self._lock:
                    p = self._pending.get(rid) if rid is not None else None
                if p is not None and p.raw_data:
                    msg = self._bulk_reply(buf, start, cut + len(self._DATA_MARK), nl, p.raw_data == "hex")
                    if msg is not None:
                        self._dispatch(msg)
                        return
        try:
            msg = json.loads(bytes(buf[start:nl]))
        except ValueError:
            return  # the daemon only sends JSON; ignore a line that is not
        self._dispatch(msg)

    @staticmethod
    def _bulk_reply(buf: bytearray, start: int, ds: int, nl: int, hex: bool = False) -> Optional[Dict[str, Any]]:
        """The reply with its data decoded (base64, or hex when asked for),
        or None to parse it the usual way."""
        de = buf.find(b'"', ds, nl)
        if de < 0:
            return None
        mv = memoryview(buf)
        try:
            data = binascii.a2b_hex(mv[ds:de]) if hex else binascii.a2b_base64(mv[ds:de])
            msg = json.loads(bytes(buf[start:ds - 1]) + b"null" + bytes(buf[de + 1:nl]))
        except (ValueError, binascii.Error):
            return None
        finally:
            mv.release()
        if not isinstance(msg, dict) or not isinstance(msg.get("result"), dict):
            return None
        msg["result"]["data"] = data
        return msg

    def _dispatch(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        if "id" not in msg:
            if "method" in msg:
                self._notification(msg)
            return
        rid = msg.get("id")
        with self._lock:
            p = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if p is None:
            return
        res = msg.get("result")
        if isinstance(res, dict) and res.get("fd") is True and self._fds:
            p.fd = self._fds.popleft()
        p._finish(msg)

    def _notification(self, msg: Dict[str, Any]) -> None:
        method = msg.get("method") or ""
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if method.endswith("progress"):
            rid = params.get("request_id", params.get("id"))
            with self._lock:
                targets = [p for p in self._pending.values()
                           if p.on_progress and (rid is None or rid == p.id)]
            for p in targets:
                try:
                    p.on_progress(params)  # type: ignore[misc]
                except Exception:
                    pass
        cb = self.on_notification
        if cb is not None:
            try:
                cb(msg)
            except Exception:  # a consumer's bug must not stop the reader
                pass

    def _die(self, reason: BaseException) -> None:
        with self._lock:
            if self._dead is not None:
                return
            self._dead = reason
            pending, self._pending = self._pending, {}
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for p in pending.values():
            p._finish(None, errors.ConnectionError("%s (while waiting for %s)" % (reason, p.method),
                                                   method=p.method))
        while self._fds:
            try:
                os.close(self._fds.popleft())
            except OSError:
                pass
        cb = self.on_notification
        if cb is not None:
            try:
                cb({"method": "$closed", "params": {"reason": str(reason)}})
            except Exception:
                pass

    def close(self) -> None:
        """Close the connection; requests still in flight fail with
        ConnectionError."""
        self._die(errors.ConnectionError("the connection to sandboxd at %s was closed" % self.path))
        if self._reader is not None and threading.current_thread() is not self._reader:
            self._reader.join(5)
        try:
            self.sock.close()
        except OSError:
            pass


class LoopConnection(Connection):
    """A connection read by an asyncio event loop itself: the loop watches
    the socket (add_reader) and files each reply as it comes, so that a
    reply wakes only the loop, where a reader thread would wake first
    itself and then the loop.  Made, used and read in the loop's thread;
    a line the socket cannot take at once waits in a queue that the loop
    sends when the socket is writable, so that no call blocks the loop."""

    def __init__(self, path: str, loop: Any, learn: Callable[[], "tuple[int, frozenset]"],
                 connect_timeout: float = 10.0):
        self._setup(path, None, _connect(path, connect_timeout))
        self.loop = loop
        self._learn = learn
        self._thread = threading.get_ident()
        # Lines (and the descriptors that ride on their first bytes, as
        # copies of the caller's) not yet taken by the socket.
        self._outq: "collections.deque[tuple[memoryview, List[int]]]" = collections.deque()
        self._fileno = self.sock.fileno()
        self.sock.setblocking(False)
        loop.add_reader(self._fileno, self._readable)

    def _learn_limit(self) -> None:
        # Never a call on this connection: its reply could only be read by
        # the loop that would be waiting for it.
        self.max_message, self.features = self._learn()

    def _readable(self) -> None:
        try:
            if not self._receive():
                self._die(self._closed_by_daemon())
        except BlockingIOError:
            pass
        except BaseException as e:
            self._die(self._read_failed(e))

    def _send(self, parts: List[bytes], fds: Sequence[int]) -> None:
        total = sum(len(x) for x in parts)
        n = 0
        if not self._outq:
            try:
                if fds:
                    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", list(fds)).tobytes())]
                    n = self.sock.sendmsg(parts, anc)
                else:
                    n = self.sock.sendmsg(parts)
            except (BlockingIOError, InterruptedError):
                n = 0
            if n == total:
                return
        rest = memoryview(b"".join(parts))[n:]
        # Descriptors go with the first byte: copies of them wait with the
        # line (the caller may close its own once this returns).
        keep = [os.dup(fd) for fd in fds] if fds and n == 0 else []
        self._outq.append((rest, keep))
        if len(self._outq) == 1:
            self.loop.add_writer(self._fileno, self._writable)

    def _writable(self) -> None:
        try:
            while self._outq:
                data, fds = self._outq[0]
                if fds:
                    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
                    n = self.sock.sendmsg([data], anc)
                    for fd in fds:
                        os.close(fd)
                else:
                    n = self.sock.send(data)
                if n < len(data):
                    self._outq[0] = (data[n:], [])
                    return
                self._outq.popleft()
            self.loop.remove_writer(self._fileno)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            self._die(errors.ConnectionError("lost the connection to sandboxd at %s: %s" % (self.path, e)))

    def _unwatch(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.remove_reader(self._fileno)
        self.loop.remove_writer(self._fileno)

    def _die(self, reason: BaseException) -> None:
        first = self._dead is None
        super()._die(reason)
        if not first:
            return
        while self._outq:
            for fd in self._outq.popleft()[1]:
                os.close(fd)
        if threading.get_ident() == self._thread:
            self._unwatch()
        else:
            try:
                self.loop.call_soon_threadsafe(self._unwatch)
            except RuntimeError:  # the loop is closed: nothing watches
                pass

    async def wait(self, p: Pending, timeout: Optional[float] = None) -> Dict[str, Any]:
        """A request's result, awaited in this connection's loop."""
        if not p.done():
            fut = self.loop.create_future()

            def wake(_p: Pending) -> None:
                if threading.get_ident() == self._thread:
                    if not fut.done():
                        fut.set_result(None)
                else:  # failed by a close() from another thread
                    try:
                        self.loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))
                    except RuntimeError:
                        pass
            p.add_done_callback(wake)
            if timeout is None:
                await fut
            else:
                try:
                    await asyncio.wait_for(fut, timeout)
                except asyncio.TimeoutError:
                    raise errors.Timeout("no answer to %s within %s s" % (p.method, timeout),
                                         method=p.method) from None
        return p.result(0)
