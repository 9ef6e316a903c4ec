"""AsyncDaytona and AsyncSandbox: daytona_sdk's asynchronous API over an
AsyncClient of sandboxd."""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import os
import shlex
import stat as stat_mod
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, TypeVar, Union

from .. import errors as sx
from .. import types as st
from .._api import Call
from ..aio import AsyncClient, AsyncTerminal
from .common.daytona import (CodeLanguage, CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams,
                             DaytonaConfig)
from .common.errors import (DaytonaBadRequestError, DaytonaConflictError, DaytonaConnectionError, DaytonaError,
                            DaytonaForbiddenError, DaytonaNotFoundError, DaytonaTimeoutError)
from .common.filesystem import FileInfo, FileUpload, Match, ReplaceResult, SearchFilesResponse
from .common.process import (CodeRunParams, Command, ExecuteResponse, ExecutionArtifacts, PtySessionInfo, Session,
                             SessionCommandLogsResponse, SessionExecuteRequest, SessionExecuteResponse)
from .common.pty import PtyResult, PtySize
from .common.sandbox import PortPreviewUrl, Resources, SandboxState

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

LANGUAGE_LABEL = "code-toolbox-language"
MAX_ARCHIVE_MIN = 5256000
PTY_TAG = "pty:"
_PTY_SCRIPT = "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi"


def translate(e: sx.SandboxdError, prefix: str = "") -> DaytonaError:
    """The daytona_sdk exception for a daemon error.  A missing thing's
    message always says "not found", since backends sort errors by text."""
    msg = str(e)
    if isinstance(e, sx.NotFound):
        if "not found" not in msg.lower():
            msg = "not found: " + msg
        out: DaytonaError = DaytonaNotFoundError(prefix + msg, status_code=404)
    elif isinstance(e, sx.Exists):
        out = DaytonaConflictError(prefix + msg, status_code=409)
    elif isinstance(e, (sx.InvalidParams, sx.InvalidRequest)):
        out = DaytonaBadRequestError(prefix + msg, status_code=400)
    elif isinstance(e, sx.Denied):
        out = DaytonaForbiddenError(prefix + msg, status_code=403)
    elif isinstance(e, sx.Timeout):
        out = DaytonaTimeoutError(prefix + msg, status_code=408)
    elif isinstance(e, sx.ConnectionError):
        out = DaytonaConnectionError(prefix + msg)
    elif isinstance(e, sx.BadState):
        out = DaytonaError(prefix + msg + " (sandbox state)", status_code=409)
    else:
        out = DaytonaError(prefix + msg)
    out.sandboxd_error = e
    return out


def intercept(prefix: str) -> Callable[[F], F]:
    """Raise daemon errors of the wrapped coroutine as DaytonaError."""
    def deco(fn: F) -> F:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return await fn(*args, **kw)
            except sx.SandboxdError as e:
                raise translate(e, prefix) from e
        return wrapper  # type: ignore[return-value]
    return deco


async def _call_handler(cb: Optional[Callable[[Any], Any]], data: Any) -> None:
    if cb is None:
        return
    r = cb(data)
    if inspect.isawaitable(r):
        await r


def _gib(mb: Optional[int]) -> Optional[float]:
    if mb is None:
        return None
    v = mb / 1024
    return int(v) if v == int(v) else v


def file_info(fi: st.FileInfo) -> FileInfo:
    kind = {"dir": stat_mod.S_IFDIR, "symlink": stat_mod.S_IFLNK, "file": stat_mod.S_IFREG}.get(fi.type or "", 0)
    mode = fi.mode or 0
    return FileInfo(name=fi.name, is_dir=fi.is_dir, size=fi.size, mode=stat_mod.filemode(kind | mode),
                    mod_time=fi.mtime or "", permissions=fi.mode_octal or "%04o" % mode, owner=fi.owner,
                    group=fi.group, path=fi.path)


def octal_mode(mode: Union[str, int, None]) -> Union[str, int, None]:
    if isinstance(mode, str):
        return mode if mode.startswith("0") else "0" + mode
    return mode


def create_params(params: Union[CreateSandboxFromSnapshotParams, CreateSandboxFromImageParams, None],
                  target: Optional[str]) -> Dict[str, Any]:
    """sandbox.create params for daytona_sdk's create params: a snapshot or
    image name is an image name, intervals are minutes, resources are cores
    and GiB."""
    p: Dict[str, Any] = {}
    if params is None:
        return p
    image = getattr(params, "snapshot", None) or getattr(params, "image", None)
    if image:
        p["image"] = image
    if params.name:
        p["name"] = params.name
    labels = dict(params.labels or {})
    if params.language:
        labels[LANGUAGE_LABEL] = str(params.language.value if isinstance(params.language, CodeLanguage)
                                     else params.language)
    if labels:
        p["labels"] = labels
    if params.env_vars:
        p["env"] = {k: "" if v is None else str(v) for k, v in params.env_vars.items()}
    if params.os_user:
        p["user"] = params.os_user
    for src, dst in (("auto_stop_interval", "auto_stop_min"), ("auto_archive_interval", "auto_archive_min"),
                     ("auto_delete_interval", "auto_delete_min")):
        v = getattr(params, src)
        if v is None:
            continue
        if src != "auto_delete_interval" and v < 0:
            raise DaytonaError("%s must be a non-negative integer" % src)
        if src == "auto_archive_interval" and v == 0:
            v = MAX_ARCHIVE_MIN  # daytona_sdk: 0 is the longest interval
        p[dst] = int(v)
    if params.ephemeral:
        p["ephemeral"] = True
    if params.public is not None:
        p["public"] = bool(params.public)
    res: Optional[Resources] = getattr(params, "resources", None)
    if res is not None:
        r: Dict[str, Any] = {}
        if res.cpu is not None:
            r["cpus"] = res.cpu
        if res.memory is not None:
            r["memory_mb"] = int(res.memory * 1024)
        if res.disk is not None:
            r["disk_mb"] = int(res.disk * 1024)
        if res.gpu:
            raise DaytonaError("sandboxd sandboxes have no GPUs (Resources.gpu)")
        if r:
            p["resources"] = r
    if params.network_block_all:
        allow = [a.strip() for a in (params.network_allow_list or "").split(",") if a.strip()]
        p["network"] = {"deny_out": ["0.0.0.0/0"], "allow_out": allow}
    elif params.network_allow_list:
        p["network"] = {"allow_out": [a.strip() for a in params.network_allow_list.split(",") if a.strip()]}
    return p


class AsyncDaytona:
    """daytona_sdk's AsyncDaytona over sandboxd.  It may be built at import
    time, before an event loop runs, and used from any loop."""

    def __init__(self, config: Optional[DaytonaConfig] = None):
        if config is None:
            config = DaytonaConfig(api_key=os.environ.get("DAYTONA_API_KEY"),
                                   api_url=os.environ.get("DAYTONA_API_URL") or os.environ.get("DAYTONA_SERVER_URL"),
                                   target=os.environ.get("DAYTONA_TARGET"))
        self._config = config
        self._api_key = config.api_key
        self._api_url = config.api_url
        self._target = config.target
        self._client = AsyncClient(config.socket)
        self.default_language = CodeLanguage.PYTHON

    @property
    def client(self) -> AsyncClient:
        """The sandboxd AsyncClient underneath, for what Daytona lacks."""
        return self._client

    async def __aenter__(self) -> "AsyncDaytona":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self._client.close()

    def _wrap(self, sb: st.Sandbox) -> "AsyncSandbox":
        return AsyncSandbox(self, sb)

    @intercept("Failed to create sandbox: ")
    async def create(self, params: Union[CreateSandboxFromSnapshotParams, CreateSandboxFromImageParams, None] = None,
                     *, timeout: Optional[float] = 60,
                     on_snapshot_create_logs: Optional[Callable[[str], None]] = None) -> "AsyncSandbox":
        """Create and start a sandbox; a snapshot or image is an image name."""
        if timeout is not None and timeout < 0:
            raise DaytonaError("Timeout must be a non-negative number")
        p = create_params(params, self._target)
        sb = await self._client._do(_call("sandbox.create", p, timeout or None))
        return self._wrap(sb)

    @intercept("Failed to get sandbox: ")
    async def get(self, sandbox_id_or_name: str) -> "AsyncSandbox":
        if not sandbox_id_or_name:
            raise DaytonaError("sandbox_id_or_name is required")
        return self._wrap(await self._client.sandbox.inspect(sandbox_id_or_name))

    @intercept("Failed to find sandbox: ")
    async def find_one(self, sandbox_id_or_name: Optional[str] = None,
                       labels: Optional[Dict[str, str]] = None) -> "AsyncSandbox":
        if sandbox_id_or_name:
            return await self.get(sandbox_id_or_name)
        found = await self.list(labels)
        if not found.items:
            raise DaytonaNotFoundError("No sandbox found with labels %s (not found)" % (labels,), status_code=404)
        return found.items[0]

    @intercept("Failed to list sandboxes: ")
    async def list(self, labels: Optional[Dict[str, str]] = None, page: Optional[int] = None,
                   limit: Optional[int] = None) -> "AsyncPaginatedSandboxes":
        """Sandboxes with all these labels, oldest first; page and limit
        cut the list as daytona_sdk pages it."""
        if page is not None and page < 1:
            raise DaytonaError("page must be a positive integer")
        if limit is not None and limit < 1:
            raise DaytonaError("limit must be a positive integer")
        sbs = sorted(await self._client.sandbox.list(labels=labels), key=lambda s: (s.created_at or "", s.id))
        total = len(sbs)
        pg = page or 1
        if limit:
            sbs = sbs[(pg - 1) * limit:pg * limit]
            pages = max(1, -(-total // limit))
        else:
            pages = 1
        return AsyncPaginatedSandboxes([self._wrap(s) for s in sbs], total=total, page=pg, total_pages=pages)

    async def start(self, sandbox: "AsyncSandbox", timeout: Optional[float] = 60) -> None:
        await sandbox.start(timeout)

    async def stop(self, sandbox: "AsyncSandbox", timeout: Optional[float] = 60) -> None:
        await sandbox.stop(timeout)

    async def delete(self, sandbox: "AsyncSandbox", timeout: Optional[float] = 60) -> None:
        await sandbox.delete(timeout)

    async def archive(self, sandbox: "AsyncSandbox") -> None:
        await sandbox.archive()


class AsyncPaginatedSandboxes:
    """A page of sandboxes: ``.items`` as daytona_sdk has it, and also a
    sequence itself (len, iteration, indexing) as older versions returned."""

    def __init__(self, items: List[Any], total: int = 0, page: int = 1, total_pages: int = 1):
        self.items = items
        self.total = total
        self.page = page
        self.total_pages = total_pages

    @property
    def sandboxes(self) -> List[Any]:
        return self.items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Any:
        return iter(self.items)

    def __getitem__(self, i: Any) -> Any:
        return self.items[i]

    def __repr__(self) -> str:
        return "%s(items=%r, total=%d)" % (type(self).__name__, self.items, self.total)


def _call(method: str, p: Dict[str, Any], timeout: Optional[float] = None) -> Any:
    return Call(method, p, lambda r, _: st.Sandbox.from_dict(r), timeout=timeout)


class AsyncSandbox:
    """A sandbox as daytona_sdk's AsyncSandbox shows it: id, name, state
    (SandboxState), labels, env, cpu (cores), memory and disk (GiB),
    created_at, updated_at (the last activity), target, public,
    auto_*_interval (minutes); fs and process."""

    def __init__(self, daytona: AsyncDaytona, sb: st.Sandbox):
        self._daytona = daytona
        self._client = daytona._client
        self._apply(sb)
        self.fs = AsyncFileSystem(self)
        self.process = AsyncProcess(self)

    def _apply(self, sb: st.Sandbox) -> None:
        self._data = sb
        self.id = sb.id
        self.name = sb.name
        self.organization_id = ""
        self.snapshot = sb.image
        self.image = sb.image
        self.user = sb.user
        self.env = dict(sb.env or {})
        self.labels = dict(sb.labels or {})
        self.public = bool(sb.raw.get("public", False))
        self.target = self._daytona._target or "local"
        res = sb.resources or st.Resources()
        self.cpu = res.cpus
        self.gpu = 0
        self.memory = _gib(res.memory_mb)
        self.disk = _gib(res.disk_mb)
        self.state = SandboxState.from_daemon(sb.state)
        self.error_reason = sb.raw.get("error")
        self.backup_state = None
        self.backup_created_at = None
        self.auto_stop_interval = sb.auto_stop_min
        self.auto_archive_interval = sb.auto_archive_min
        self.auto_delete_interval = sb.auto_delete_min
        self.volumes: List[Any] = []
        self.build_info = None
        self.created_at = sb.created_at
        self.updated_at = sb.last_activity_at or sb.started_at or sb.created_at
        self.network_block_all = "0.0.0.0/0" in ((sb.network.deny_out if sb.network else None) or [])
        self.network_allow_list = ",".join((sb.network.allow_out if sb.network else None) or []) or None

    def __repr__(self) -> str:
        return "AsyncSandbox(id=%r, name=%r, state=%r)" % (self.id, self.name, self.state.value)

    @intercept("Failed to refresh sandbox data: ")
    async def refresh_data(self) -> None:
        self._apply(await self._client.sandbox.inspect(self.id))

    async def _refresh_safe(self) -> None:
        try:
            self._apply(await self._client.sandbox.inspect(self.id))
        except sx.NotFound:
            self.state = SandboxState.DESTROYED

    @intercept("Failed to start sandbox: ")
    async def start(self, timeout: Optional[float] = 60) -> None:
        if timeout is not None and timeout < 0:
            raise DaytonaError("Timeout must be a non-negative number")
        await self._refresh_safe()
        if self.state not in (SandboxState.STARTED,):
            if self.state == SandboxState.PAUSED:
                self._apply(await self._client.sandbox.resume(self.id))
            else:
                self._apply(await self._client._do(_call("sandbox.start", {"sandbox": self.id}, timeout or None)))
        await self.wait_for_sandbox_start(timeout)

    @intercept("Failed to stop sandbox: ")
    async def stop(self, timeout: Optional[float] = 60) -> None:
        if timeout is not None and timeout < 0:
            raise DaytonaError("Timeout must be a non-negative number")
        await self._client._do(Call("sandbox.stop", {"sandbox": self.id}, lambda r, _: None, timeout=timeout or None))
        await self._refresh_safe()
        await self.wait_for_sandbox_stop(timeout)

    @intercept("Failed to remove sandbox: ")
    async def delete(self, timeout: Optional[float] = 60) -> None:
        await self._client._do(Call("sandbox.delete", {"sandbox": self.id, "force": True}, lambda r, _: None,
                                    timeout=timeout or None))
        self.state = SandboxState.DESTROYED

    async def archive(self) -> None:
        """Archive a stopped sandbox (sandbox.archive).  A daemon that does
        not implement that method yet raises a DaytonaError that says so."""
        try:
            await self._client.sandbox.archive(self.id)
        except sx.MethodNotFound as e:
            err = DaytonaError("Failed to archive sandbox: this sandboxd does not implement the method "
                               "sandbox.archive yet; the sandbox stays stopped with its files", status_code=501)
            err.sandboxd_error = e
            raise err from e
        except sx.SandboxdError as e:
            raise translate(e, "Failed to archive sandbox: ") from e
        await self._refresh_safe()

    async def _wait_state(self, ok: List[str], what: str, timeout: Optional[float]) -> None:
        deadline = time.monotonic() + timeout if timeout else None
        while self.state.value not in ok:
            if self.state.value in ("error", "build_failed"):
                raise DaytonaError("Sandbox %s failed to %s with state: %s, error reason: %s"
                                   % (self.id, what, self.state.value, self.error_reason))
            if deadline is not None and time.monotonic() > deadline:
                raise DaytonaTimeoutError("Sandbox %s failed to %s within the %s seconds timeout period"
                                          % (self.id, what, timeout))
            await asyncio.sleep(0.1)
            await self._refresh_safe()

    @intercept("Failure during waiting for sandbox to start: ")
    async def wait_for_sandbox_start(self, timeout: Optional[float] = 60) -> None:
        await self._wait_state(["started"], "start", timeout)

    @intercept("Failure during waiting for sandbox to stop: ")
    async def wait_for_sandbox_stop(self, timeout: Optional[float] = 60) -> None:
        await self._wait_state(["stopped", "destroyed", "archived"], "stop", timeout)

    async def _update(self, **kw: Any) -> None:
        self._apply(await self._client.sandbox.update(self.id, **kw))

    @intercept("Failed to set auto-stop interval: ")
    async def set_autostop_interval(self, interval: int) -> None:
        """Minutes of inactivity before the sandbox stops; 0 never."""
        if not isinstance(interval, int) or interval < 0:
            raise DaytonaError("Auto-stop interval must be a non-negative integer")
        await self._update(auto_stop_min=interval)

    @intercept("Failed to set auto-archive interval: ")
    async def set_auto_archive_interval(self, interval: int) -> None:
        if not isinstance(interval, int) or interval < 0:
            raise DaytonaError("Auto-archive interval must be a non-negative integer")
        await self._update(auto_archive_min=interval or MAX_ARCHIVE_MIN)

    @intercept("Failed to set auto-delete interval: ")
    async def set_auto_delete_interval(self, interval: int) -> None:
        await self._update(auto_delete_min=-1 if interval < 0 else interval)

    @intercept("Failed to set labels: ")
    async def set_labels(self, labels: Dict[str, str]) -> Dict[str, str]:
        lab = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in labels.items()}
        if LANGUAGE_LABEL in self.labels and LANGUAGE_LABEL not in lab:
            lab[LANGUAGE_LABEL] = self.labels[LANGUAGE_LABEL]
        await self._update(labels=lab)
        return self.labels

    @intercept("Failed to refresh sandbox activity: ")
    async def refresh_activity(self) -> None:
        await self._client.sandbox.touch(self.id)

    @intercept("Failed to get preview link: ")
    async def get_preview_link(self, port: int) -> PortPreviewUrl:
        """A link through the daemon's preview gateway: .url, a base with
        no trailing slash, and .token (sent as X-Daytona-Preview-Token by
        clients of a private sandbox)."""
        pv = await self._client.net.preview(self.id, port)
        return PortPreviewUrl(url=pv.url.rstrip("/"), token=pv.token, sandbox_id=self.id, port=port)

    @intercept("Failed to get user home directory: ")
    async def get_user_home_dir(self) -> str:
        r = await self._client.process.exec(self.id, 'printf %s "$HOME"')
        return r.stdout or "/root"

    async def get_user_root_dir(self) -> str:
        return await self.get_user_home_dir()

    async def get_work_dir(self) -> str:
        return self._data.workdir or "/workspace"

    async def create_ssh_access(self, expires_in_minutes: Optional[int] = None) -> Any:
        raise DaytonaError("SSH access is not offered by sandboxd; use process.create_pty_session or "
                           "sandboxctl exec -it", status_code=501)

    async def revoke_ssh_access(self, token: Optional[str] = None) -> None:
        raise DaytonaError("SSH access is not offered by sandboxd", status_code=501)


def _decode(b: Union[str, bytes, None]) -> str:
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def _code_command(language: str, code: str, argv: Optional[List[str]]) -> str:
    b64 = base64.b64encode(code.encode("utf-8")).decode("ascii")
    args = " ".join(shlex.quote(a) for a in (argv or []))
    if language == "javascript":
        run = "node -e \"$(printf %%s %s | base64 -d)\" %s" % (b64, args)
    elif language == "typescript":
        run = ("f=$(mktemp --suffix=.ts 2>/dev/null || mktemp); printf %%s %s | base64 -d > \"$f\"; "
               "npx --yes ts-node -O '{\"module\":\"CommonJS\"}' \"$f\" %s; rc=$?; rm -f \"$f\"; exit $rc"
               % (b64, args))
    else:
        run = "printf %%s %s | base64 -d | python3 -u - %s" % (b64, args)
    return run


class AsyncProcess:
    """Commands, sessions and PTY sessions of one sandbox."""

    def __init__(self, sandbox: AsyncSandbox):
        self._sandbox = sandbox
        self._client = sandbox._client

    @property
    def _id(self) -> str:
        return self._sandbox.id

    @intercept("Failed to execute command: ")
    async def exec(self, command: str, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                   timeout: Optional[int] = None) -> ExecuteResponse:
        """Run command through /bin/sh -c.  .result holds only its standard
        output; .stdout and .stderr are apart.  A command still running
        after timeout seconds is killed with all it started and
        DaytonaTimeoutError raised."""
        r = await self._client.process.exec(self._id, command, cwd=cwd, env=env, timeout_s=timeout or None)
        out, err = _decode(r.stdout), _decode(r.stderr)
        if r.timed_out:
            raise DaytonaTimeoutError("command timed out after %s s and was killed (exit code %s); its output: %s"
                                      % (timeout, r.exit_code, (out + err)[-400:]), status_code=408)
        return ExecuteResponse(exit_code=r.exit_code if r.exit_code is not None else -1, result=out,
                               artifacts=ExecutionArtifacts(stdout=out, charts=[]), stdout=out, stderr=err,
                               additional_properties={"signal": r.signal, "truncated": r.truncated,
                                                      "duration_ms": r.duration_ms})

    async def code_run(self, code: str, params: Optional[CodeRunParams] = None,
                       timeout: Optional[int] = None) -> ExecuteResponse:
        """Run code in the sandbox's language (label code-toolbox-language,
        default python3)."""
        lang = self._sandbox.labels.get(LANGUAGE_LABEL, "python")
        cmd = _code_command(lang, code, params.argv if params else None)
        return await self.exec(cmd, env=params.env if params else None, timeout=timeout)

    async def start(self, command: str, cwd: Optional[str] = None,
                    env: Optional[Dict[str, str]] = None) -> SessionExecuteResponse:
        """Start a background command and answer at once with its cmd_id
        (not in daytona_sdk; some backends call it)."""
        try:
            sp = await self._client.process.spawn(self._id, command, cwd=cwd, env=env)
        except sx.SandboxdError as e:
            raise translate(e, "Failed to start command: ") from e
        return SessionExecuteResponse(cmd_id=sp.cmd_id)

    @intercept("Failed to create session: ")
    async def create_session(self, session_id: str) -> None:
        await self._client.session.create(self._id, session_id)

    async def _session(self, session_id: str) -> st.Session:
        for s in await self._client.session.list(self._id):
            if s.session_id == session_id:
                return s
        raise sx.NotFound("session '%s' not found in sandbox %s" % (session_id, self._id), code=1)

    async def _commands(self, session_id: str) -> List[Command]:
        out = []
        for p in await self._client.process.list(self._id):
            if p.session_id == session_id:
                out.append(Command(id=p.cmd_id, command=p.argv[-1] if p.argv else "",
                                   exit_code=p.exit_code if p.exited else None))
        return out

    @intercept("Failed to get session: ")
    async def get_session(self, session_id: str) -> Session:
        await self._session(session_id)
        return Session(session_id=session_id, commands=await self._commands(session_id))

    @intercept("Failed to list sessions: ")
    async def list_sessions(self) -> List[Session]:
        return [Session(session_id=s.session_id, commands=await self._commands(s.session_id))
                for s in await self._client.session.list(self._id)]

    @intercept("Failed to delete session: ")
    async def delete_session(self, session_id: str) -> None:
        await self._client.session.delete(self._id, session_id)

    @intercept("Failed to execute session command: ")
    async def execute_session_command(self, session_id: str, req: SessionExecuteRequest,
                                      timeout: Optional[int] = None) -> SessionExecuteResponse:
        """Run req.command in the session.  With run_async (or var_async)
        the answer comes at once with cmd_id, even for a command that execs
        a foreground daemon; otherwise with output (stdout then stderr),
        stdout, stderr and exit_code."""
        command = req.command
        if req.cwd:
            command = "cd -- %s || exit 1\n%s" % (shlex.quote(req.cwd), command)
        if req.is_async:
            sp = await self._client.session.exec(self._id, session_id, command, run_async=True,
                                                 timeout_s=timeout or None)
            return SessionExecuteResponse(cmd_id=sp.cmd_id)
        r = await self._client.session.exec(self._id, session_id, command, timeout_s=timeout or None)
        out, err = _decode(r.stdout), _decode(r.stderr)  # type: ignore[union-attr]
        if r.timed_out:  # type: ignore[union-attr]
            raise DaytonaTimeoutError("session command timed out after %s s and was killed" % timeout,
                                      status_code=408)
        return SessionExecuteResponse(cmd_id=r.cmd_id, output=out + err, stdout=out, stderr=err,
                                      exit_code=r.exit_code)  # type: ignore[union-attr]

    @intercept("Failed to get session command: ")
    async def get_session_command(self, session_id: str, command_id: str) -> Command:
        for c in await self._commands(session_id):
            if c.id == command_id:
                return c
        raise sx.NotFound("command '%s' not found in session '%s'" % (command_id, session_id), code=1)

    @intercept("Failed to get session command logs: ")
    async def get_session_command_logs(self, session_id: str, command_id: str) -> SessionCommandLogsResponse:
        out, err = [], []
        offset = 0
        while True:
            lg = await self._client.process.logs(self._id, command_id, offset=offset)
            out.append(_decode(lg.stdout))
            err.append(_decode(lg.stderr))
            if not lg.more or lg.offset == offset:
                break
            offset = lg.offset
        o, e = "".join(out), "".join(err)
        return SessionCommandLogsResponse(output=o + e, stdout=o, stderr=e)

    @intercept("Failed to get session command logs: ")
    async def get_session_command_logs_async(self, session_id: str, command_id: str,
                                             on_stdout: Callable[[str], Any], on_stderr: Callable[[str], Any]) -> None:
        """Call on_stdout / on_stderr (plain or async functions) with the
        command's output as it is written, until it ends."""
        async with self._client.process.follow(self._id, command_id) as stream:
            async for item in stream:
                if isinstance(item, st.Output):
                    await _call_handler(on_stdout if item.stream == "stdout" else on_stderr, _decode(item.data))

    @intercept("Failed to send session command input: ")
    async def send_session_command_input(self, session_id: str, command_id: str, data: str) -> None:
        await self._client.process.stdin(self._id, command_id, data)

    # --- PTY sessions -----------------------------------------------------

    def _pty_argv(self, pty_id: str) -> List[str]:
        return ["/bin/sh", "-c", _PTY_SCRIPT, PTY_TAG + pty_id]

    async def _pty_cmd(self, pty_id: str) -> st.ProcessInfo:
        for p in await self._client.process.list(self._id):
            if p.tty and not p.exited and p.argv[-1:] == [PTY_TAG + pty_id]:
                return p
        raise sx.NotFound("PTY session '%s' not found in sandbox %s" % (pty_id, self._id), code=1)

    @intercept("Failed to create PTY session: ")
    async def create_pty_session(self, id: str, on_data: Optional[Callable[[bytes], Any]] = None,
                                 cwd: Optional[str] = None, envs: Optional[Dict[str, str]] = None,
                                 pty_size: Optional[PtySize] = None) -> "AsyncPtyHandle":
        """A login shell on a terminal of the sandbox; on_data gets its
        output.  The terminal's master is passed over the socket to this
        process."""
        try:
            await self._pty_cmd(id)
        except sx.NotFound:
            pass
        else:
            raise sx.Exists("PTY session '%s' already exists" % id, code=2)
        size = pty_size or PtySize(rows=24, cols=80)
        env = dict(envs or {})
        env.setdefault("TERM", "xterm-256color")
        term = await self._client.process.terminal(self._id, self._pty_argv(id), rows=size.rows, cols=size.cols,
                                                   cwd=cwd, env=env)
        return AsyncPtyHandle(self, term, on_data, id, size)

    async def connect_pty_session(self, session_id: str, on_data: Optional[Callable[[bytes], Any]] = None) -> Any:
        raise DaytonaError("a PTY session's terminal belongs to the process that created it; sandboxd cannot "
                           "hand it to a second client", status_code=501)

    @intercept("Failed to list PTY sessions: ")
    async def list_pty_sessions(self) -> List[PtySessionInfo]:
        out = []
        for p in await self._client.process.list(self._id):
            if p.tty and not p.exited and p.argv and p.argv[-1].startswith(PTY_TAG):
                out.append(PtySessionInfo(id=p.argv[-1][len(PTY_TAG):], created_at=p.started_at))
        return out

    @intercept("Failed to get PTY session info: ")
    async def get_pty_session_info(self, session_id: str) -> PtySessionInfo:
        p = await self._pty_cmd(session_id)
        return PtySessionInfo(id=session_id, created_at=p.started_at)

    @intercept("Failed to kill PTY session: ")
    async def kill_pty_session(self, session_id: str) -> None:
        p = await self._pty_cmd(session_id)
        await self._client.process.kill(self._id, p.cmd_id, "KILL")

    async def resize_pty_session(self, session_id: str, pty_size: PtySize) -> PtySessionInfo:
        raise DaytonaError("resize a PTY session through its handle (handle.resize); its terminal belongs to the "
                           "process that created it", status_code=501)


class AsyncPtyHandle:
    """A PTY session: output goes to on_data as it comes; send_input types,
    resize changes the size, kill ends it, wait() gives its PtyResult."""

    def __init__(self, process: AsyncProcess, term: AsyncTerminal, on_data: Optional[Callable[[bytes], Any]],
                 session_id: str, size: PtySize):
        self._process = process
        self._term = term
        self._on_data = on_data
        self._session_id = session_id
        self._size = size
        self._exit_code: Optional[int] = None
        self._error: Optional[str] = None
        self._connected = True
        self._task = asyncio.get_running_loop().create_task(self._pump())

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def exit_code(self) -> Optional[int]:
        return self._exit_code

    @property
    def error(self) -> Optional[str]:
        return self._error

    def is_connected(self) -> bool:
        return self._connected

    async def wait_for_connection(self) -> None:
        return None

    async def _pump(self) -> None:
        try:
            while True:
                data = await self._term.read()
                if not data:
                    break
                await _call_handler(self._on_data, data)
            w = await self._term.wait()
            self._exit_code = w.exit_code
        except Exception as e:  # report through .error, as daytona_sdk does
            self._error = str(e)
        finally:
            self._connected = False

    async def send_input(self, data: Union[str, bytes]) -> None:
        if not self._connected:
            raise DaytonaConnectionError("PTY is not connected")
        try:
            await self._term.write(data)
        except OSError as e:
            raise DaytonaConnectionError("Failed to send input to PTY: %s" % e) from e

    async def resize(self, pty_size: PtySize) -> PtySessionInfo:
        try:
            self._term.resize(pty_size.rows, pty_size.cols)
        except (OSError, ValueError) as e:
            raise DaytonaError("Failed to resize PTY: %s" % e) from e
        self._size = pty_size
        return PtySessionInfo(id=self._session_id, cols=pty_size.cols, rows=pty_size.rows)

    async def kill(self) -> None:
        try:
            await self._term.kill("KILL")
        except sx.SandboxdError as e:
            if not isinstance(e, sx.BadState):  # already ended
                raise translate(e, "Failed to kill PTY: ") from e

    async def wait(self) -> PtyResult:
        await asyncio.shield(self._task)
        return PtyResult(exit_code=self._exit_code, error=self._error)

    async def disconnect(self) -> None:
        if not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._term.close()
        self._connected = False


class AsyncFileSystem:
    """Files of one sandbox.  Paths are absolute, or relative to its
    working directory."""

    def __init__(self, sandbox: AsyncSandbox):
        self._sandbox = sandbox
        self._client = sandbox._client

    @property
    def _id(self) -> str:
        return self._sandbox.id

    @intercept("Failed to create folder: ")
    async def create_folder(self, path: str, mode: str = "755") -> None:
        """mkdir -p with mode; an existing directory is fine."""
        await self._client.fs.mkdir(self._id, path, mode=octal_mode(mode), parents=True)

    async def make_dir(self, path: str, mode: str = "755") -> None:
        """Alias of create_folder (not in daytona_sdk)."""
        await self.create_folder(path, mode)

    @intercept("Failed to delete file: ")
    async def delete_file(self, path: str, recursive: bool = False) -> None:
        await self._client.fs.remove(self._id, path, recursive=recursive)

    async def delete_folder(self, path: str, recursive: bool = True) -> None:
        """Remove a directory and what it holds (not in daytona_sdk)."""
        await self.delete_file(path, recursive=recursive)

    @intercept("Failed to download file: ")
    async def download_file(self, remote_path: str, *args: Any, timeout: int = 30 * 60) -> Optional[bytes]:
        """download_file(remote_path) -> bytes, or download_file(remote_path,
        local_path) to write a local file (any size, bounded memory)."""
        local_path = None
        if args and isinstance(args[0], (str, os.PathLike)):
            local_path = args[0]
        if local_path is None:
            return await self._client.fs.download(self._id, remote_path)  # type: ignore[return-value]
        parent = os.path.dirname(os.fspath(local_path))
        if parent:
            os.makedirs(parent, exist_ok=True)
        await self._client.fs.download(self._id, remote_path, local_path)
        return None

    async def upload_file(self, file: Any, remote_path: Any, timeout: int = 30 * 60) -> None:
        """upload_file(data, path): data is bytes, a local path or a binary
        file object; missing parent directories are created.  The older
        order upload_file(path, bytes) is recognised too."""
        if isinstance(file, str) and isinstance(remote_path, (bytes, bytearray, memoryview)):
            file, remote_path = remote_path, file
        await self.upload_files([FileUpload(source=file, destination=remote_path)], timeout)

    @intercept("Failed to upload files: ")
    async def upload_files(self, files: List[FileUpload], timeout: int = 30 * 60) -> None:
        for f in files:
            await self._client.fs.upload(self._id, f.source, f.destination)

    @intercept("Failed to find files: ")
    async def find_files(self, path: str, pattern: str) -> List[Match]:
        """Lines containing pattern (a plain string) in the files below path."""
        r = await self._client.fs.find(self._id, path, pattern, literal=True)
        return [Match(file=m.file, line=m.line, content=m.content) for m in r.matches]

    @intercept("Failed to get file info: ")
    async def get_file_info(self, path: str) -> FileInfo:
        return file_info(await self._client.fs.stat(self._id, path))

    @intercept("Failed to list files: ")
    async def list_files(self, path: str) -> List[FileInfo]:
        return [file_info(x) for x in await self._client.fs.list(self._id, path)]

    @intercept("Failed to move files: ")
    async def move_files(self, source: str, destination: str) -> None:
        await self._client.fs.move(self._id, source, destination)

    @intercept("Failed to replace in files: ")
    async def replace_in_files(self, files: List[str], pattern: str, new_value: str) -> List[ReplaceResult]:
        """Replace every occurrence of the plain string pattern."""
        rs = await self._client.fs.replace(self._id, files, pattern, new_value, literal=True)
        return [ReplaceResult(file=r.file, success=r.error is None, error=r.error) for r in rs]

    @intercept("Failed to search files: ")
    async def search_files(self, path: str, pattern: str) -> SearchFilesResponse:
        r = await self._client.fs.search(self._id, path, pattern)
        return SearchFilesResponse(files=r.files)

    @intercept("Failed to set file permissions: ")
    async def set_file_permissions(self, path: str, mode: Optional[str] = None, owner: Optional[str] = None,
                                   group: Optional[str] = None) -> None:
        await self._client.fs.chmod(self._id, path, octal_mode(mode), owner=owner, group=group)
