"""Daytona and Sandbox: daytona_sdk's synchronous API.

Each call runs the asynchronous facade's coroutine on a private event loop
in a thread of its own, so these classes work the same in scripts and
inside code that already runs an event loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import queue
import threading
import time
from typing import Any, Callable, Coroutine, Dict, Iterator, List, Optional, TypeVar, Union

from ._async import AsyncDaytona, AsyncPaginatedSandboxes, AsyncPtyHandle, AsyncSandbox
from .common.daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, DaytonaConfig
from .common.errors import DaytonaError, DaytonaTimeoutError
from .common.process import PtySessionInfo
from .common.pty import PtyResult, PtySize

R = TypeVar("R")


class _Runner:
    """One event loop in a daemon thread, shared by every sync object."""

    _lock = threading.Lock()
    _loop: Optional[asyncio.AbstractEventLoop] = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=loop.run_forever, name="sandboxd-daytona", daemon=True)
                t.start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, R]) -> R:
        loop = cls.loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("a sync facade call from inside its own callback")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


class _Sync:
    """Proxy that runs the coroutine methods of an async facade object and
    passes attributes through."""

    def __init__(self, target: Any):
        object.__setattr__(self, "_a", target)

    def __getattr__(self, name: str) -> Any:
        v = getattr(self._a, name)
        if inspect.iscoroutinefunction(v):
            @functools.wraps(v)
            def call(*args: Any, **kw: Any) -> Any:
                return _Runner.run(v(*args, **kw))
            return call
        return v


class Process(_Sync):
    """process of a Sandbox: the same methods as AsyncProcess, blocking."""

    def create_pty_session(self, id: str, cwd: Optional[str] = None, envs: Optional[Dict[str, str]] = None,
                           pty_size: Optional[PtySize] = None,
                           on_data: Optional[Callable[[bytes], Any]] = None) -> "PtyHandle":
        q: "queue.Queue[Optional[bytes]]" = queue.Queue()

        def feed(data: bytes) -> None:
            q.put(data)
            if on_data is not None:
                on_data(data)

        async def make() -> AsyncPtyHandle:
            h = await self._a.create_pty_session(id=id, on_data=feed, cwd=cwd, envs=envs, pty_size=pty_size)

            def ended(_t: Any) -> None:
                q.put(None)
            h._task.add_done_callback(ended)
            return h
        return PtyHandle(_Runner.run(make()), q)


class PtyHandle:
    """A PTY session: iterate it for output, or wait(on_data=...)."""

    def __init__(self, handle: AsyncPtyHandle, q: "queue.Queue[Optional[bytes]]"):
        self._h = handle
        self._q = q
        self._ended = False

    @property
    def session_id(self) -> str:
        return self._h.session_id

    @property
    def exit_code(self) -> Optional[int]:
        return self._h.exit_code

    @property
    def error(self) -> Optional[str]:
        return self._h.error

    def is_connected(self) -> bool:
        return self._h.is_connected()

    def wait_for_connection(self, timeout: float = 10.0) -> None:
        return None

    def send_input(self, data: Union[str, bytes]) -> None:
        _Runner.run(self._h.send_input(data))

    def resize(self, pty_size: PtySize) -> PtySessionInfo:
        return _Runner.run(self._h.resize(pty_size))

    def kill(self) -> None:
        _Runner.run(self._h.kill())

    def __iter__(self) -> Iterator[bytes]:
        while not self._ended:
            item = self._q.get()
            if item is None:
                self._ended = True
                return
            yield item

    def wait(self, on_data: Optional[Callable[[bytes], None]] = None, timeout: Optional[float] = None) -> PtyResult:
        deadline = time.monotonic() + timeout if timeout else None
        while not self._ended:
            try:
                item = self._q.get(timeout=max(0.0, deadline - time.monotonic()) if deadline else None)
            except queue.Empty:
                break
            if item is None:
                self._ended = True
                break
            if on_data is not None:
                on_data(item)
        if self._ended:
            return _Runner.run(self._h.wait())
        return PtyResult(exit_code=self._h.exit_code, error=self._h.error)

    def disconnect(self) -> None:
        _Runner.run(self._h.disconnect())


class FileSystem(_Sync):
    """fs of a Sandbox: the same methods as AsyncFileSystem, blocking."""


class Sandbox(_Sync):
    """daytona_sdk's Sandbox: the attributes of AsyncSandbox, and its
    methods blocking."""

    def __init__(self, target: AsyncSandbox):
        super().__init__(target)
        object.__setattr__(self, "fs", FileSystem(target.fs))
        object.__setattr__(self, "process", Process(target.process))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._a, name, value)

    def __repr__(self) -> str:
        return "Sandbox(id=%r, name=%r, state=%r)" % (self._a.id, self._a.name, self._a.state.value)


class PaginatedSandboxes(AsyncPaginatedSandboxes):
    pass


class Daytona:
    """daytona_sdk's Daytona (blocking), for scripts: Daytona() reads its
    configuration from the environment, as daytona_sdk does."""

    def __init__(self, config: Optional[DaytonaConfig] = None):
        self._a = AsyncDaytona(config)

    @property
    def client(self) -> Any:
        return self._a.client.sync

    def create(self, params: Union[CreateSandboxFromSnapshotParams, CreateSandboxFromImageParams, None] = None,
               *, timeout: Optional[float] = 60, on_snapshot_create_logs: Optional[Callable[[str], None]] = None
               ) -> Sandbox:
        return Sandbox(_Runner.run(self._a.create(params, timeout=timeout)))

    def get(self, sandbox_id_or_name: str) -> Sandbox:
        return Sandbox(_Runner.run(self._a.get(sandbox_id_or_name)))

    def find_one(self, sandbox_id_or_name: Optional[str] = None, labels: Optional[Dict[str, str]] = None) -> Sandbox:
        return Sandbox(_Runner.run(self._a.find_one(sandbox_id_or_name, labels)))

    def list(self, labels: Optional[Dict[str, str]] = None, page: Optional[int] = None,
             limit: Optional[int] = None) -> PaginatedSandboxes:
        r = _Runner.run(self._a.list(labels, page, limit))
        return PaginatedSandboxes([Sandbox(x) for x in r.items], r.total, r.page, r.total_pages)

    def start(self, sandbox: Sandbox, timeout: Optional[float] = 60) -> None:
        sandbox.start(timeout)

    def stop(self, sandbox: Sandbox, timeout: Optional[float] = 60) -> None:
        sandbox.stop(timeout)

    def delete(self, sandbox: Sandbox, timeout: Optional[float] = 60) -> None:
        sandbox.delete(timeout)

    def archive(self, sandbox: Sandbox) -> None:
        sandbox.archive()

    def close(self) -> None:
        self._a.client.close()

    def __enter__(self) -> "Daytona":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
