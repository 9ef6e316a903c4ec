"""The blocking client."""

from __future__ import annotations

import binascii
import collections
import errno
import fcntl
import functools
import io
import os
import queue
import select
import stat as stat_mod
import struct
import termios
import threading
from typing import Any, BinaryIO, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _api
from . import errors
from . import types as t
from ._api import Call, SandboxRef, sandbox_id
from ._conn import Connection, Pending, socket_path

Progress = Callable[[int, Optional[int]], None]
PathLike = Union[str, "os.PathLike[str]"]
Source = Union[PathLike, bytes, bytearray, memoryview, BinaryIO]
Dest = Union[PathLike, BinaryIO, None]

DEFAULT_CHUNK = 4 << 20
DEFAULT_WINDOW = 3
_PIPE_PIECE = 1 << 20
_PROGRESS_TICK = 0.1


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


class _Base:
    """What Client and AsyncClient share: the socket path, the one shared
    connection (made again after it broke), and whether descriptors can be
    passed to the daemon."""

    def __init__(self, socket: Optional[PathLike] = None, *, timeout: Optional[float] = None):
        self.socket_path = socket_path(os.fspath(socket) if socket is not None else None)
        self.timeout = timeout
        self._conn: Optional[Connection] = None
        self._conn_lock = threading.Lock()
        # None: not known yet; False once the daemon refused a descriptor
        # (a socket forwarded from another host cannot carry them).
        self.fd_passing: Optional[bool] = None

    def _connection(self) -> Connection:
        c = self._conn
        if c is not None and c.alive:
            return c
        with self._conn_lock:
            c = self._conn
            if c is None or not c.alive:
                if c is not None:
                    c.close()
                c = Connection(self.socket_path)
                self._conn = c
            return c

    def _new_connection(self, on_notification: Callable[[Dict[str, Any]], None]) -> Connection:
        return Connection(self.socket_path, on_notification=on_notification)

    def close(self) -> None:
        """Close the shared connection (a later call opens a new one)."""
        with self._conn_lock:
            c, self._conn = self._conn, None
        if c is not None:
            c.close()

    def _max_message(self, conn: Connection) -> int:
        if conn.max_message is None:
            conn._learn_limit()
        return conn.max_message or (16 << 20)


class Client(_Base):
    """A blocking client of sandboxd.

    One Client holds one connection, shared by every thread that uses it:
    requests are sent whole under a lock and their replies matched by id,
    so a long command in one thread holds up no other.  Methods are grouped
    as the protocol groups them: ``client.sandbox.create()``,
    ``client.process.exec()``, ``client.fs.upload()``...  A daemon that went
    away gives ConnectionError; the next call connects again.

    The socket is the argument, then $SANDBOXD_SOCKET, then
    /run/sandboxd/sandboxd.sock.
    """

    def __init__(self, socket: Optional[PathLike] = None, *, timeout: Optional[float] = None):
        super().__init__(socket, timeout=timeout)
        self.system = _api.SystemAPI(self)
        self.image = _api.ImageAPI(self)
        self.sandbox = _api.SandboxAPI(self)
        self.process = ProcessAPI(self)
        self.session = _api.SessionAPI(self)
        self.fs = FsAPI(self)
        self.net = _api.NetAPI(self)
        self.events = EventsAPI(self)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _do(self, call: Call) -> Any:
        p = self._connection().start(call.method, call.params, call.fds, call.raw_data, call.on_progress)
        timeout = call.timeout if call.timeout is not None else self.timeout
        return call.parse(p.result(timeout), p)

    def call(self, method: str, params: Any = None, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Any method by name, for what this version of the package does not
        wrap; returns the result object as the daemon sent it."""
        return self._do(Call(method, params, lambda r, _: r, timeout=timeout))

    def ping(self) -> None:
        self.system.ping()

    def progress(self, method: str, params: Any = None) -> "ProgressStream":
        """Start a long call (image.import, and pulls and builds as the
        daemon gains them) and iterate over the progress notifications it
        sends while it runs; the iteration ends with the reply, whose
        result is then ``.result()``."""
        return ProgressStream(self._connection(), method, params)


# ----------------------------------------------------------------------
# Streams


class ProgressStream:
    """Progress notifications (Notification) of one call in flight."""

    def __init__(self, conn: Connection, method: str, params: Any):
        self._q: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self.pending = conn.start(method, params, on_progress=self._q.put)
        self.pending.add_done_callback(lambda _p: self._q.put(None))
        self.method = method

    def __iter__(self) -> Iterator[t.Notification]:
        while True:
            item = self._q.get()
            if item is None:
                return
            yield t.Notification(method=self.method + ".progress", params=item, raw=item)

    def result(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        return self.pending.result(timeout)


class Stream:
    """An iterator over notifications on a connection of its own (closing
    the stream closes it, which is how the daemon stops sending).  Usable
    as a context manager."""

    def __init__(self, client: _Base, method: str, params: Dict[str, Any], convert: Callable[[Dict[str, Any]], Any],
                 final: Optional[Callable[[Any], bool]] = None):
        self._q: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self._convert = convert
        self._final = final
        self._ended = False
        self._conn = client._new_connection(self._q.put)
        try:
            self.result = self._conn.call(method, params, timeout=60)
        except BaseException:
            self._conn.close()
            raise

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: Optional[float] = None) -> Any:
        """The next item; Timeout when none came within timeout seconds."""
        if self._ended:
            raise StopIteration
        while True:
            try:
                msg = self._q.get(timeout=timeout)
            except queue.Empty:
                raise errors.Timeout("nothing from sandboxd within %s s" % timeout) from None
            if msg.get("method") == "$closed":
                self._ended = True
                raise errors.ConnectionError(msg["params"]["reason"])
            item = self._convert(msg)
            if item is None:
                continue
            if self._final is not None and self._final(item):
                self.close()
                self._ended = True
            return item

    def close(self) -> None:
        c = self._conn
        c.on_notification = None
        c.close()
        self._ended = True

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def output_item(encoding: Optional[str]) -> Callable[[Dict[str, Any]], Any]:
    def convert(msg: Dict[str, Any]) -> Any:
        m = msg.get("method")
        p = msg.get("params") or {}
        if m == "process.output":
            o = t.Output.from_dict(p)
            if encoding == "base64" and isinstance(o.data, str):
                o.data = binascii.a2b_base64(o.data)
            return o
        if m == "process.exit":
            return t.Exit.from_dict(p)
        return None
    return convert


def event_item(msg: Dict[str, Any]) -> Optional[t.Event]:
    if msg.get("method") == "event":
        return t.Event.from_dict(msg.get("params") or {})
    return None


class EventsAPI(_api.Family):
    def subscribe(self, sandbox: Optional[SandboxRef] = None) -> Stream:
        """events.subscribe: an iterator of Event (created, started,
        stopped, paused, resumed, deleted, oom, auto_stop, error) for one
        sandbox or all of them, until close()."""
        p = {"sandbox": sandbox_id(sandbox)} if sandbox is not None else {}
        return Stream(self._client, "events.subscribe", p, event_item)


# ----------------------------------------------------------------------
# Terminals


def _set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """The master side of a terminal of the sandbox, handed over the socket
    (process.spawn with tty and attach): bytes go between this process and
    the kernel with no daemon in between.  Closing it hangs the terminal up."""

    def __init__(self, client: Client, sandbox: str, cmd_id: str, fd: int, pid: Optional[int] = None):
        self._client = client
        self.sandbox = sandbox
        self.cmd_id = cmd_id
        self.pid = pid
        self._fd: Optional[int] = fd

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the terminal is closed")
        return self._fd

    def read(self, n: int = 65536, timeout: Optional[float] = None) -> bytes:
        """Up to n bytes of output; b"" once the program has ended and its
        output is read.  Timeout when nothing came within timeout seconds."""
        fd = self.fileno()
        if timeout is not None:
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                raise errors.Timeout("no terminal output within %s s" % timeout)
        try:
            return os.read(fd, n)
        except OSError as e:
            if e.errno == errno.EIO:  # every slave side closed: the end
                return b""
            raise

    def write(self, data: Union[str, bytes]) -> int:
        """Type data (text is sent as UTF-8); returns its length."""
        b = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        fd = self.fileno()
        mv = memoryview(b)
        while mv:
            n = os.write(fd, mv)
            mv = mv[n:]
        return len(b)

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal's size (the program gets SIGWINCH)."""
        _set_winsize(self.fileno(), rows, cols)

    def kill(self, signal: Union[str, int] = "KILL") -> int:
        return self._client.process.kill(self.sandbox, self.cmd_id, signal)

    def wait(self, timeout: Optional[float] = None) -> t.WaitResult:
        """Wait for the program to end (process.wait)."""
        return self._client.process.wait(self.sandbox, self.cmd_id, timeout_s=timeout)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def terminal_params(sandbox: SandboxRef, cmd: _api.Command, rows: int, cols: int, cwd: Optional[str],
                    env: Optional[Dict[str, str]], user: Optional[str], timeout_s: Optional[float]) -> Dict[str, Any]:
    p = _api.params(sandbox=sandbox_id(sandbox), cwd=cwd, env=dict(env) if env is not None else None, user=user,
                    timeout_s=timeout_s, tty=True, attach=True, rows=rows, cols=cols)
    p.update(_api.command_params(cmd))
    return p


class ProcessAPI(_api.ProcessAPI):
    def follow(self, sandbox: SandboxRef, cmd_id: str, *, offset: int = 0,
               encoding: Optional[str] = None) -> Stream:
        """process.logs with follow: an iterator of Output pieces as they are
        written, ending with one Exit."""
        p = _api.params(sandbox=sandbox_id(sandbox), cmd_id=cmd_id, offset=offset or None, follow=True,
                        encoding=encoding)
        return Stream(self._client, "process.logs", p, output_item(encoding),
                      final=lambda x: isinstance(x, t.Exit))

    def terminal(self, sandbox: SandboxRef, cmd: _api.Command = ("/bin/sh", "-l"), *, rows: int = 24,
                 cols: int = 80, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 user: Optional[str] = None, timeout_s: Optional[float] = None) -> Terminal:
        """Run cmd on a new terminal of the sandbox and hand its master over:
        a Terminal to read, write, resize and wait on."""
        p = terminal_params(sandbox, cmd, rows, cols, cwd, env, user, timeout_s)

        def parse(r: Dict[str, Any], pend: Pending) -> Terminal:
            fd = pend.take_fd()
            if fd is None:
                raise errors.SandboxdError("sandboxd did not pass the terminal's descriptor", method="process.spawn")
            return Terminal(self._client, p["sandbox"], r["cmd_id"], fd, r.get("pid"))
        return self._do(Call("process.spawn", p, parse))


# ----------------------------------------------------------------------
# Files


class _Feeder(threading.Thread):
    """Copies a source that has no descriptor of its own (bytes, a file
    object) into a pipe whose read end goes to the daemon."""

    def __init__(self, source: Any, wfd: int, limit: Optional[int] = None):
        super().__init__(name="sandboxd-feeder", daemon=True)
        self.source = source
        self.wfd = wfd
        self.count = 0
        self.error: Optional[BaseException] = None
        self.stop = threading.Event()

    def _write_all(self, mv: memoryview) -> bool:
        while mv:
            if self.stop.is_set():
                return False
            _, w, _ = select.select([], [self.wfd], [], _PROGRESS_TICK)
            if not w:
                continue
            try:
                n = os.write(self.wfd, mv[:_PIPE_PIECE])
            except BlockingIOError:
                continue
            self.count += n
            mv = mv[n:]
        return True

    def run(self) -> None:
        try:
            src = self.source
            if isinstance(src, memoryview):
                self._write_all(src)
                return
            buf = bytearray(_PIPE_PIECE)
            while not self.stop.is_set():
                n = _readinto(src, buf)
                if not n:
                    return
                with memoryview(buf) as mv:
                    if not self._write_all(mv[:n]):
                        return
        except OSError as e:
            if e.errno != errno.EPIPE:
                self.error = e
        except BaseException as e:
            self.error = e
        finally:
            os.close(self.wfd)


def _readinto(f: Any, buf: bytearray) -> int:
    ri = getattr(f, "readinto", None)
    if ri is not None:
        return ri(buf) or 0
    data = f.read(len(buf))
    if not data:
        return 0
    buf[:len(data)] = data
    return len(data)


def _regular_fd(f: Any) -> Optional[int]:
    """The descriptor of a file object that is a seekable regular file."""
    try:
        fd = f.fileno()
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            return None
        return fd
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        return None


def _fd_refused(e: errors.SandboxdError) -> bool:
    return isinstance(e, errors.Unsupported) or (isinstance(e, errors.InvalidParams) and e.param == "fd")


class _Window:
    """Chunk requests in flight on one connection, oldest first."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.q: Deque[Tuple[Pending, Any]] = collections.deque()

    def full(self) -> bool:
        return len(self.q) >= self.size

    def drain_one(self) -> Tuple[Dict[str, Any], Any]:
        p, tag = self.q.popleft()
        return p.result(), tag

    def abandon(self) -> None:
        for p, _ in self.q:
            try:
                p.result()
            except errors.SandboxdError:
                pass
        self.q.clear()


class FsAPI(_api.FsAPI):
    """fs.* methods, and whole-file transfers: upload() and download() move
    files of any size with bounded memory, over passed descriptors when the
    daemon can take them, otherwise in chunks (hex where the daemon takes
    it, else base64)."""

    def upload(self, sandbox: SandboxRef, source: Source, path: str, *, mode: Union[int, str, None] = None,
               progress: Optional[Progress] = None, transfer: str = "auto", chunk_size: int = DEFAULT_CHUNK,
               window: int = DEFAULT_WINDOW) -> t.FileInfo:
        """Write source into the sandbox's file path (missing parent
        directories are created): a local path, bytes, or a binary file
        object (read from its current position to its end).

        transfer: "fd" passes a descriptor (the daemon's worker copies the
        bytes in the kernel), "chunks" sends hex or base64 pieces of chunk_size
        with window requests in flight, "auto" tries fd first.
        progress(done, total) is called as bytes go (total None when
        unknown)."""
        client: Client = self._client
        sid = sandbox_id(sandbox)
        if transfer not in ("auto", "fd", "chunks"):
            raise ValueError("transfer is 'auto', 'fd' or 'chunks'")
        opened = None
        if _is_path(source):
            opened = open(os.fspath(source), "rb")  # type: ignore[arg-type]
            source = opened
        try:
            start_pos = None
            if not isinstance(source, (bytes, bytearray, memoryview)):
                try:
                    start_pos = source.tell()  # type: ignore[union-attr]
                except (AttributeError, OSError, io.UnsupportedOperation):
                    start_pos = None
            if transfer != "chunks" and client.fd_passing is not False:
                try:
                    return self._upload_fd(sid, source, path, mode, progress)
                except errors.SandboxdError as e:
                    if transfer == "fd" or not _fd_refused(e):
                        raise
                    client.fd_passing = False
                    if start_pos is not None:
                        source.seek(start_pos)  # type: ignore[union-attr]
                    elif not isinstance(source, (bytes, bytearray, memoryview)):
                        raise
            return self._upload_chunks(sid, source, path, mode, progress, chunk_size, window)
        finally:
            if opened is not None:
                opened.close()

    def _total(self, source: Any) -> Optional[int]:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return memoryview(source).nbytes
        fd = _regular_fd(source)
        if fd is not None:
            try:
                return os.fstat(fd).st_size - source.tell()
            except OSError:
                return None
        try:
            pos = source.tell()
            end = source.seek(0, os.SEEK_END)
            source.seek(pos)
            return end - pos
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None

    def _upload_fd(self, sid: str, source: Any, path: str, mode: Any, progress: Optional[Progress]) -> t.FileInfo:
        client: Client = self._client
        total = self._total(source)
        fd = _regular_fd(source)
        feeder = None
        if fd is not None:
            pos = source.tell()
            source.seek(pos)  # drops what a buffered reader read ahead
            os.lseek(fd, pos, os.SEEK_SET)
            send_fd = fd
        else:
            rfd, wfd = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(wfd, False)
            src = memoryview(source).cast("B") if isinstance(source, (bytes, bytearray, memoryview)) else source
            feeder = _Feeder(src, wfd)
            send_fd = rfd
        p = _api.params(sandbox=sid, path=path, fd=True, mode=mode, create_parents=True)
        try:
            pend = client._connection().start("fs.write", p, [send_fd])
        finally:
            if feeder is not None:
                os.close(send_fd)
        if feeder is not None:
            feeder.start()

        def done_now() -> int:
            if feeder is not None:
                return feeder.count
            try:
                return os.lseek(fd, 0, os.SEEK_CUR) - pos  # the worker reads through our description
            except OSError:
                return 0
        try:
            res = self._wait_progress(pend, progress, done_now, total)
        finally:
            if feeder is not None:
                feeder.stop.set()
                feeder.join()
        if feeder is not None and feeder.error is not None:
            raise feeder.error
        info = t.FileInfo.from_dict(res)
        if fd is not None:
            source.seek(pos + info.size)
        if progress:
            progress(info.size, total if total is not None else info.size)
        return info

    def _wait_progress(self, pend: Pending, progress: Optional[Progress], done_now: Callable[[], int],
                       total: Optional[int]) -> Dict[str, Any]:
        if progress is None:
            return pend.result(self._client.timeout)
        while not pend.wait(_PROGRESS_TICK):
            progress(done_now(), total)
        return pend.result()

    def _upload_chunks(self, sid: str, source: Any, path: str, mode: Any, progress: Optional[Progress],
                       chunk_size: int, window: int) -> t.FileInfo:
        client: Client = self._client
        conn = client._connection()
        limit = client._max_message(conn)
        enc = conn.write_encoding()
        encode = binascii.b2a_hex if enc == "hex" else functools.partial(binascii.b2a_base64, newline=False)
        room = limit - 4096
        chunk_size = max(1, min(chunk_size, room if enc == "binary" else room // 2 if enc == "hex" else room // 4 * 3))
        total = self._total(source)
        mv = memoryview(source).cast("B") if isinstance(source, (bytes, bytearray, memoryview)) else None
        buf = bytearray(chunk_size) if mv is None else None
        win = _Window(window)
        offset = 0
        done = 0
        last: Dict[str, Any] = {}
        first = True
        try:
            while True:
                if mv is not None:
                    piece = mv[offset:offset + chunk_size]
                else:
                    n = _readinto(source, buf)  # type: ignore[arg-type]
                    piece = memoryview(buf)[:n]  # type: ignore[index]
                if not piece and not first:
                    break
                p = _api.params(sandbox=sid, path=path, offset=offset, truncate=True if first else None,
                                encoding=enc, mode=mode if first else None, create_parents=True)
                while win.full():
                    last, n_done = win.drain_one()
                    done += n_done
                    if progress:
                        progress(done, total)
                if enc == "binary":
                    # Raw, after the line: the socket takes the bytes before
                    # start() returns, so buf is free for the next piece.
                    pend = conn.start("fs.write", p, payload=piece)
                else:
                    pend = conn.start("fs.write", p, bulk=encode(piece))
                win.q.append((pend, len(piece)))
                offset += len(piece)
                first = False
                if len(piece) < chunk_size and mv is not None:
                    break
                if mv is None and len(piece) == 0:
                    break
            while win.q:
                last, n_done = win.drain_one()
                done += n_done
                if progress:
                    progress(done, total)
        except BaseException:
            win.abandon()
            raise
        info = t.FileInfo.from_dict(last)
        if info.size != offset:
            info = self.stat(sid, path)
        return info

    def download(self, sandbox: SandboxRef, path: str, dest: Dest = None, *,
                 progress: Optional[Progress] = None, transfer: str = "auto", chunk_size: int = DEFAULT_CHUNK,
                 window: int = DEFAULT_WINDOW) -> Union[bytes, int]:
        """Read the sandbox's file path: into dest (a local path, created or
        truncated, or a binary file object written from its position),
        returning the byte count, or, without dest, as bytes.  transfer and
        progress as for upload()."""
        client: Client = self._client
        sid = sandbox_id(sandbox)
        if transfer not in ("auto", "fd", "chunks"):
            raise ValueError("transfer is 'auto', 'fd' or 'chunks'")
        opened = None
        out: Any = dest
        if dest is None:
            out = io.BytesIO()
        elif _is_path(dest):
            opened = open(os.fspath(dest), "wb")  # type: ignore[arg-type]
            out = opened
        try:
            start_pos = None
            try:
                start_pos = out.tell()
            except (AttributeError, OSError, io.UnsupportedOperation):
                pass
            n = None
            if transfer != "chunks" and client.fd_passing is not False:
                try:
                    n = self._download_fd(sid, path, out, progress)
                except errors.SandboxdError as e:
                    if transfer == "fd" or not _fd_refused(e):
                        raise
                    client.fd_passing = False
                    if start_pos is not None:
                        out.seek(start_pos)
                        out.truncate()
            if n is None:
                n = self._download_chunks(sid, path, out, progress, chunk_size, window)
            if dest is None:
                return out.getvalue()
            return n
        except BaseException:
            if opened is not None:
                opened.close()
                opened = None
                try:
                    os.unlink(os.fspath(dest))  # type: ignore[arg-type]
                except OSError:
                    pass
            raise
        finally:
            if opened is not None:
                opened.close()

    def _download_fd(self, sid: str, path: str, out: Any, progress: Optional[Progress]) -> int:
        client: Client = self._client
        fd = _regular_fd(out)
        total = None
        if progress is not None:
            total = self.stat(sid, path).size
        p = _api.params(sandbox=sid, path=path, fd=True)
        if fd is not None:
            out.flush()
            pos = out.tell()
            os.lseek(fd, pos, os.SEEK_SET)
            pend = client._connection().start("fs.read", p, [fd])
            res = self._wait_progress(pend, progress,
                                      lambda: max(0, os.lseek(fd, 0, os.SEEK_CUR) - pos), total)
            n = int(res.get("length", res.get("size", 0)))
            out.seek(pos + n)
        else:
            rfd, wfd = os.pipe2(os.O_CLOEXEC)
            try:
                pend = client._connection().start("fs.read", p, [wfd])
            except BaseException:
                os.close(rfd)
                raise
            finally:
                os.close(wfd)
            n = 0
            try:
                n = self._pump(rfd, pend, out, progress, total)
            finally:
                os.close(rfd)
            res = pend.result()
        if progress:
            progress(n, total if total is not None else n)
        return n

    def _pump(self, rfd: int, pend: Pending, out: Any, progress: Optional[Progress], total: Optional[int]) -> int:
        """Copy the pipe into out until the daemon has answered and the pipe
        is empty (the reply comes after the worker wrote everything)."""
        n = 0
        ticks = 0
        while True:
            r, _, _ = select.select([rfd], [], [], _PROGRESS_TICK)
            if r:
                data = os.read(rfd, _PIPE_PIECE)
                if not data:
                    return n
                out.write(data)
                n += len(data)
            ticks += 1
            if progress and (ticks % 16 == 0 or not r):
                progress(n, total)
            if not r and pend.done():
                os.set_blocking(rfd, False)
                while True:
                    try:
                        data = os.read(rfd, _PIPE_PIECE)
                    except BlockingIOError:
                        return n
                    if not data:
                        return n
                    out.write(data)
                    n += len(data)

    def _download_chunks(self, sid: str, path: str, out: Any, progress: Optional[Progress], chunk_size: int,
                         window: int) -> int:
        client: Client = self._client
        conn = client._connection()
        chunk_size = max(1, min(chunk_size, 8 << 20))
        enc = conn.read_encoding()
        total = self.stat(sid, path).size if progress else None
        win = _Window(window)
        # Binary chunks are received into these, one per request in
        # flight, used over and over: no fresh memory per chunk.
        spare: List[memoryview] = []
        if enc == "binary":
            spare = [memoryview(bytearray(chunk_size)) for _ in range(win.size)]
        offset = 0
        written = 0
        eof = False
        try:
            while True:
                while not eof and not win.full():
                    p = {"sandbox": sid, "path": path, "offset": offset, "length": chunk_size, "encoding": enc}
                    into = spare.pop() if spare else None
                    win.q.append((conn.start("fs.read", p, raw_data=enc, into=into), (offset, into)))
                    offset += chunk_size
                    if len(win.q) == 1 and offset == chunk_size:
                        break  # learn the size (and errors) from the first answer
                if not win.q:
                    break
                res, (at, into) = win.drain_one()
                data = res.get("data") or b""
                if isinstance(data, str):
                    data = binascii.a2b_hex(data) if enc == "hex" else binascii.a2b_base64(data)
                if at != written:
                    raise errors.SandboxdError("piece at %d arrived out of order (expected %d)" % (at, written))
                out.write(data)
                if into is not None:
                    spare.append(into)
                written += len(data)
                if progress:
                    progress(written, total)
                if res.get("eof") or len(data) < chunk_size:
                    eof = True
                    win.abandon()
                    break
        except BaseException:
            win.abandon()
            raise
        return written

    def _tar_fd(self, method: str, sid: str, path: str, target: Any, writing: bool) -> t.ArchiveResult:
        """fs.archive (writing=True: the daemon writes the tar into target)
        and fs.extract (it reads the tar from target)."""
        client: Client = self._client
        opened = None
        if _is_path(target):
            opened = open(os.fspath(target), "wb" if writing else "rb")
            target = opened
        try:
            fd = _regular_fd(target) if not isinstance(target, int) else target
            p = {"sandbox": sid, "path": path, "fd": True}
            if fd is not None:
                if not isinstance(target, int):
                    if writing:
                        target.flush()
                    pos = target.tell()
                    target.seek(pos)
                    os.lseek(fd, pos, os.SEEK_SET)
                res = client._connection().call(method, p, fds=[fd])
                if not isinstance(target, int):
                    target.seek(os.lseek(fd, 0, os.SEEK_CUR))
                return t.ArchiveResult.from_dict(res)
            rfd, wfd = os.pipe2(os.O_CLOEXEC)
            if writing:
                try:
                    pend = client._connection().start(method, p, [wfd])
                except BaseException:
                    os.close(rfd)
                    raise
                finally:
                    os.close(wfd)
                try:
                    self._pump(rfd, pend, target, None, None)
                finally:
                    os.close(rfd)
                return t.ArchiveResult.from_dict(pend.result())
            os.set_blocking(wfd, False)
            feeder = _Feeder(target, wfd)
            try:
                pend = client._connection().start(method, p, [rfd])
            except BaseException:
                os.close(wfd)
                raise
            finally:
                os.close(rfd)
            feeder.start()
            try:
                res = pend.result()
            finally:
                feeder.stop.set()
                feeder.join()
            if feeder.error is not None:
                raise feeder.error
            return t.ArchiveResult.from_dict(res)
        finally:
            if opened is not None:
                opened.close()

    def archive(self, sandbox: SandboxRef, path: str, dest: Union[PathLike, BinaryIO, int]) -> t.ArchiveResult:
        """fs.archive: the directory (or file) path as a pax tar stream into
        dest (a local path, a binary file object or a descriptor)."""
        return self._tar_fd("fs.archive", sandbox_id(sandbox), path, dest, True)

    def extract(self, sandbox: SandboxRef, path: str, source: Union[PathLike, BinaryIO, int]) -> t.ArchiveResult:
        """fs.extract: unpack a tar stream (a local path, a binary file
        object or a descriptor) below the directory path."""
        return self._tar_fd("fs.extract", sandbox_id(sandbox), path, source, False)
