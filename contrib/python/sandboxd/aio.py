"""The asyncio client."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import threading
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple, TypeVar, Union

from . import _api
from . import errors
from . import types as t
from ._api import Call, SandboxRef, sandbox_id
from ._conn import LoopConnection, Pending
from .client import (DEFAULT_CHUNK, DEFAULT_WINDOW, Client, Dest, PathLike, Progress, Source, _set_winsize,
                     event_item, output_item, terminal_params)

R = TypeVar("R")


async def _wait(p: Pending, timeout: Optional[float] = None) -> Dict[str, Any]:
    """Await a request's reply from any event loop: the reader thread wakes
    the loop that waits."""
    if not p.done():
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[None]" = loop.create_future()

        def wake(_p: Pending) -> None:
            def set_it() -> None:
                if not fut.done():
                    fut.set_result(None)
            try:
                loop.call_soon_threadsafe(set_it)
            except RuntimeError:  # the loop is gone; nobody waits any more
                pass
        p.add_done_callback(wake)
        if timeout is None:
            await fut
        else:
            try:
                await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise errors.Timeout("no answer to %s within %s s" % (p.method, timeout), method=p.method) from None
    return p.result(0)


class AsyncClient:
    """An asyncio client of sandboxd.

    It may be created anywhere, before any event loop runs (at import time
    of a module, say), and used from any loop, even several.  Calls made
    in a loop share one connection of that loop, multiplexed by id, whose
    replies the loop reads itself (no thread between the socket and the
    awaiting coroutine); whole-file transfers and streams go through the
    blocking Client made from the same socket (``.sync``).  Every method
    of Client is here as a coroutine; streams are async iterators and
    terminals have coroutine read and write.
    """

    def __init__(self, socket: Optional[PathLike] = None, *, timeout: Optional[float] = None):
        self.sync = Client(socket, timeout=timeout)
        self._lconn: Optional[LoopConnection] = None  # of the loop used last
        self._lconns: Dict[int, LoopConnection] = {}  # by id() of their loop
        self._lock = threading.Lock()
        self.system = _api.SystemAPI(self)
        self.image = _api.ImageAPI(self)
        self.sandbox = _api.SandboxAPI(self)
        self.process = AsyncProcessAPI(self)
        self.session = _api.SessionAPI(self)
        self.fs = AsyncFsAPI(self)
        self.net = _api.NetAPI(self)
        self.events = AsyncEventsAPI(self)

    @property
    def socket_path(self) -> str:
        return self.sync.socket_path

    @property
    def timeout(self) -> Optional[float]:
        return self.sync.timeout

    def _loop_connection(self) -> LoopConnection:
        """The running loop's connection, made when it has none (or lost
        it); those of loops closed meanwhile are closed."""
        loop = asyncio.get_running_loop()
        c = self._lconn
        if c is not None and c.loop is loop and c.alive:
            return c
        with self._lock:
            c = self._lconns.get(id(loop))
            if c is None or c.loop is not loop or not c.alive:
                for k, old in list(self._lconns.items()):
                    if old is c or old.loop.is_closed() or not old.alive:
                        del self._lconns[k]
                        old.close()
                c = LoopConnection(self.sync.socket_path, loop, self._limits)
                self._lconns[id(loop)] = c
            self._lconn = c
        return c

    def _limits(self) -> Tuple[int, frozenset]:
        """The daemon's message limit and features, asked on the blocking
        client's connection (whose reader thread answers it)."""
        conn = self.sync._connection()
        if conn.features is None or conn.max_message is None:
            conn._learn_limit()
        return conn.max_message or (16 << 20), conn.features or frozenset()

    async def _do(self, call: Call) -> Any:
        conn = self._loop_connection()
        p = conn.start(call.method, call.params, call.fds, call.raw_data, call.on_progress)
        timeout = call.timeout if call.timeout is not None else self.sync.timeout
        res = await conn.wait(p, timeout)
        return call.parse(res, p)

    async def call(self, method: str, params: Any = None, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Any method by name; returns the result object as sent."""
        return await self._do(Call(method, params, lambda r, _: r, timeout=timeout))

    async def ping(self) -> None:
        await self.system.ping()

    def progress(self, method: str, params: Any = None) -> "AsyncProgressStream":
        """Client.progress for asyncio: an async iterator of the call's
        progress notifications, ending with its reply (``await .result()``)."""
        return AsyncProgressStream(self, method, params)

    async def _in_thread(self, fn: Callable[..., R], *args: Any, **kw: Any) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kw))

    def close(self) -> None:
        with self._lock:
            conns = list(self._lconns.values())
            self._lconns.clear()
            self._lconn = None
        for c in conns:
            c.close()
        self.sync.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class AsyncStream:
    """An async iterator over notifications on a connection of its own.
    It subscribes when first iterated (or on start() / async with)."""

    def __init__(self, client: AsyncClient, method: str, params: Dict[str, Any],
                 convert: Callable[[Dict[str, Any]], Any], final: Optional[Callable[[Any], bool]] = None):
        self._client = client
        self._method = method
        self._params = params
        self._convert = convert
        self._final = final
        self._q: Optional["asyncio.Queue[Dict[str, Any]]"] = None
        self._conn: Any = None
        self._ended = False
        self.result: Optional[Dict[str, Any]] = None

    async def start(self) -> "AsyncStream":
        """Subscribe now; returns once the daemon has answered."""
        if self._conn is not None:
            return self
        loop = asyncio.get_running_loop()
        q: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
        self._q = q

        def put(msg: Dict[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, msg)
            except RuntimeError:
                pass
        self._conn = self._client.sync._new_connection(put)
        try:
            self.result = await _wait(self._conn.start(self._method, self._params), 60)
        except BaseException:
            self._conn.close()
            raise
        return self

    def __aiter__(self) -> "AsyncStream":
        return self

    async def __anext__(self) -> Any:
        if self._ended:
            raise StopAsyncIteration
        await self.start()
        assert self._q is not None
        while True:
            msg = await self._q.get()
            if msg.get("method") == "$closed":
                self._ended = True
                raise errors.ConnectionError(msg["params"]["reason"])
            item = self._convert(msg)
            if item is None:
                continue
            if self._final is not None and self._final(item):
                self.close()
            return item

    def close(self) -> None:
        self._ended = True
        if self._conn is not None:
            self._conn.on_notification = None
            self._conn.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "AsyncStream":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class AsyncProgressStream:
    def __init__(self, client: AsyncClient, method: str, params: Any):
        self._client = client
        self.method = method
        self._params = params
        self._q: Optional["asyncio.Queue[Optional[Dict[str, Any]]]"] = None
        self.pending: Optional[Pending] = None

    def _start(self) -> None:
        if self.pending is not None:
            return
        loop = asyncio.get_running_loop()
        q: "asyncio.Queue[Optional[Dict[str, Any]]]" = asyncio.Queue()
        self._q = q

        def put(item: Optional[Dict[str, Any]]) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:
                pass
        self.pending = self._client.sync._connection().start(self.method, self._params, on_progress=put)
        self.pending.add_done_callback(lambda _p: put(None))

    def __aiter__(self) -> "AsyncProgressStream":
        return self

    async def __anext__(self) -> t.Notification:
        self._start()
        assert self._q is not None
        item = await self._q.get()
        if item is None:
            self._q.put_nowait(None)
            raise StopAsyncIteration
        return t.Notification(method=self.method + ".progress", params=item, raw=item)

    async def result(self) -> Dict[str, Any]:
        self._start()
        assert self.pending is not None
        return await _wait(self.pending)


class AsyncEventsAPI(_api.Family):
    def subscribe(self, sandbox: Optional[SandboxRef] = None) -> AsyncStream:
        """events.subscribe as an async iterator of Event."""
        p = {"sandbox": sandbox_id(sandbox)} if sandbox is not None else {}
        return AsyncStream(self._client, "events.subscribe", p, event_item)


class AsyncTerminal:
    """Terminal for asyncio: read() and write() wait on the loop for the
    descriptor instead of blocking."""

    def __init__(self, client: AsyncClient, sandbox: str, cmd_id: str, fd: int, pid: Optional[int] = None):
        self._client = client
        self.sandbox = sandbox
        self.cmd_id = cmd_id
        self.pid = pid
        os.set_blocking(fd, False)
        self._fd: Optional[int] = fd

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the terminal is closed")
        return self._fd

    async def _ready(self, writing: bool) -> None:
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        fut: "asyncio.Future[None]" = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)
        (loop.add_writer if writing else loop.add_reader)(fd, ready)
        try:
            await fut
        finally:
            (loop.remove_writer if writing else loop.remove_reader)(fd)

    async def read(self, n: int = 65536) -> bytes:
        """Up to n bytes of output; b"" at the end."""
        while True:
            try:
                return os.read(self.fileno(), n)
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno == errno.EIO:
                    return b""
                raise
            await self._ready(False)

    async def write(self, data: Union[str, bytes]) -> int:
        b = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        mv = memoryview(b)
        while mv:
            try:
                n = os.write(self.fileno(), mv)
                mv = mv[n:]
            except BlockingIOError:
                await self._ready(True)
        return len(b)

    def resize(self, rows: int, cols: int) -> None:
        _set_winsize(self.fileno(), rows, cols)

    async def kill(self, signal: Union[str, int] = "KILL") -> int:
        return await self._client.process.kill(self.sandbox, self.cmd_id, signal)

    async def wait(self, timeout: Optional[float] = None) -> t.WaitResult:
        return await self._client.process.wait(self.sandbox, self.cmd_id, timeout_s=timeout)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class AsyncProcessAPI(_api.ProcessAPI):
    def follow(self, sandbox: SandboxRef, cmd_id: str, *, offset: int = 0,
               encoding: Optional[str] = None) -> AsyncStream:
        """process.logs with follow, as an async iterator of Output ending
        with one Exit."""
        p = _api.params(sandbox=sandbox_id(sandbox), cmd_id=cmd_id, offset=offset or None, follow=True,
                        encoding=encoding)
        return AsyncStream(self._client, "process.logs", p, output_item(encoding),
                           final=lambda x: isinstance(x, t.Exit))

    def terminal(self, sandbox: SandboxRef, cmd: _api.Command = ("/bin/sh", "-l"), *, rows: int = 24,
                 cols: int = 80, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 user: Optional[str] = None, timeout_s: Optional[float] = None) -> Awaitable[AsyncTerminal]:
        """Run cmd on a terminal of the sandbox whose master comes here."""
        p = terminal_params(sandbox, cmd, rows, cols, cwd, env, user, timeout_s)

        def parse(r: Dict[str, Any], pend: Pending) -> AsyncTerminal:
            fd = pend.take_fd()
            if fd is None:
                raise errors.SandboxdError("sandboxd did not pass the terminal's descriptor", method="process.spawn")
            return AsyncTerminal(self._client, p["sandbox"], r["cmd_id"], fd, r.get("pid"))
        return self._do(Call("process.spawn", p, parse))


class AsyncFsAPI(_api.FsAPI):
    """fs.* as coroutines; whole-file transfers run the blocking client's in
    a worker thread, on the same connection (progress is called there)."""

    async def upload(self, sandbox: SandboxRef, source: Source, path: str, *, mode: Union[int, str, None] = None,
                     progress: Optional[Progress] = None, transfer: str = "auto", chunk_size: int = DEFAULT_CHUNK,
                     window: int = DEFAULT_WINDOW) -> t.FileInfo:
        c: AsyncClient = self._client
        return await c._in_thread(c.sync.fs.upload, sandbox, source, path, mode=mode, progress=progress,
                                  transfer=transfer, chunk_size=chunk_size, window=window)

    async def download(self, sandbox: SandboxRef, path: str, dest: Dest = None, *,
                       progress: Optional[Progress] = None, transfer: str = "auto",
                       chunk_size: int = DEFAULT_CHUNK, window: int = DEFAULT_WINDOW) -> Union[bytes, int]:
        c: AsyncClient = self._client
        return await c._in_thread(c.sync.fs.download, sandbox, path, dest, progress=progress, transfer=transfer,
                                  chunk_size=chunk_size, window=window)

    async def write(self, sandbox: SandboxRef, path: str, data: Union[str, bytes], **kw: Any) -> t.FileInfo:
        c: AsyncClient = self._client
        if len(data) > (256 << 10):  # a big line is sent from a thread, not the loop
            return await c._in_thread(c.sync.fs.write, sandbox, path, data, **kw)
        return await super().write(sandbox, path, data, **kw)

    async def archive(self, sandbox: SandboxRef, path: str, dest: Any) -> t.ArchiveResult:
        c: AsyncClient = self._client
        return await c._in_thread(c.sync.fs.archive, sandbox, path, dest)

    async def extract(self, sandbox: SandboxRef, path: str, source: Any) -> t.ArchiveResult:
        c: AsyncClient = self._client
        return await c._in_thread(c.sync.fs.extract, sandbox, path, source)
