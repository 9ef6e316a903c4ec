"""The protocol's methods, grouped by family as the protocol groups them:
``client.sandbox.create(...)`` calls ``sandbox.create``.

Each method here builds its params and says how to read the result; the
client it belongs to (Client or AsyncClient) decides how to wait: a
Client's methods return the result, an AsyncClient's return an awaitable
of it.  Methods that take several requests or a stream (file transfers,
followed logs, events, terminals) live in the clients themselves.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from . import types as t

SandboxRef = Union[str, t.Sandbox, Any]
Command = Union[str, Sequence[str]]


def sandbox_id(ref: SandboxRef) -> str:
    """A sandbox reference as the protocol takes it: an id or name string,
    or any object with an ``id``."""
    if isinstance(ref, str):
        return ref
    sid = getattr(ref, "id", None)
    if isinstance(sid, str) and sid:
        return sid
    raise TypeError("a sandbox is named by its id or name (a string) or an object with .id, not %r" % (ref,))


def params(**kw: Any) -> Dict[str, Any]:
    """Keyword arguments as params, without those left at None."""
    out: Dict[str, Any] = {}
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, t.Resources):
            v = {f: getattr(v, f) for f in ("cpus", "memory_mb", "pids", "disk_mb") if getattr(v, f) is not None}
        out[k] = v
    return out


def command_params(cmd: Command) -> Dict[str, Any]:
    if isinstance(cmd, str):
        return {"command": cmd}
    argv = [os.fspath(a) if not isinstance(a, str) else a for a in cmd]
    if not argv:
        raise ValueError("an empty argument vector")
    return {"cmd": argv}


def _b64(data: Union[str, bytes, None]) -> Union[bytes, None]:
    if data is None or isinstance(data, bytes):
        return data
    return binascii.a2b_base64(data)


def _decoded(obj: t._Model, names: Iterable[str], encoding: Optional[str]) -> Any:
    if encoding == "base64":
        for n in names:
            setattr(obj, n, _b64(getattr(obj, n)))
    return obj


def _none(res: Dict[str, Any], _p: Any = None) -> None:
    return None


class Call:
    """One request: method, params, and how to turn its result into the
    value the caller gets."""

    __slots__ = ("method", "params", "parse", "fds", "raw_data", "on_progress", "timeout")

    def __init__(self, method: str, p: Optional[Dict[str, Any]], parse: Callable[[Dict[str, Any], Any], Any],
                 fds: Sequence[int] = (), raw_data: Union[bool, str] = False, on_progress: Optional[Callable] = None,
                 timeout: Optional[float] = None):
        self.method = method
        self.params = p
        self.parse = parse
        self.fds = fds
        self.raw_data = raw_data
        self.on_progress = on_progress
        self.timeout = timeout


class Family:
    def __init__(self, client: Any):
        self._client = client

    def _do(self, call: Call) -> Any:
        return self._client._do(call)


class SystemAPI(Family):
    def info(self) -> t.SystemInfo:
        """system.info: versions, host, cgroup mode, features, limits."""
        return self._do(Call("system.info", None, lambda r, _: t.SystemInfo.from_dict(r)))

    def ping(self) -> None:
        """system.ping."""
        return self._do(Call("system.ping", None, _none))


class ImageAPI(Family):
    def list(self) -> List[t.Image]:
        """image.list."""
        return self._do(Call("image.list", None, lambda r, _: [t.Image.from_dict(x) for x in r.get("images", [])]))

    def inspect(self, name: str) -> t.Image:
        """image.inspect."""
        return self._do(Call("image.inspect", {"name": name}, lambda r, _: t.Image.from_dict(r)))

    def import_(self, name: Optional[str], path: Union[str, "os.PathLike[str]", int, Any], *,
                format: Optional[str] = None, ref: Optional[str] = None,
                on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                timeout: Optional[float] = None) -> t.Image:
        """image.import of a root file system (tarball or directory), an OCI
        image layout or a docker save archive; name None takes the layout's
        or archive's own. path is a path on the daemon's host, or an open
        descriptor (an int, or an object with fileno()) of a file, a
        directory, a pipe or a socket, which is passed to the daemon: it
        then need not see this process's files. on_progress gets the params
        of progress notifications the daemon sends while it works."""
        fd = path if isinstance(path, int) else path.fileno() if hasattr(path, "fileno") else None
        if fd is not None:
            return self._do(Call("image.import", params(name=name, fd=True, format=format, ref=ref),
                                 lambda r, _: t.Image.from_dict(r), fds=[fd], on_progress=on_progress,
                                 timeout=timeout))
        path = os.path.abspath(os.fspath(path))
        return self._do(Call("image.import", params(name=name, path=path, format=format, ref=ref),
                             lambda r, _: t.Image.from_dict(r), on_progress=on_progress, timeout=timeout))

    def pull(self, ref: str, *, name: Optional[str] = None, insecure: Optional[bool] = None,
             authfile: Optional[str] = None, timeout_s: Optional[int] = None,
             on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
             timeout: Optional[float] = None) -> t.Image:
        """image.pull from a registry (the daemon does the transfer)."""
        return self._do(Call("image.pull", params(ref=ref, name=name, insecure=insecure, authfile=authfile,
                                                  timeout_s=timeout_s),
                             lambda r, _: t.Image.from_dict(r), on_progress=on_progress, timeout=timeout))

    def tag(self, name: str, tag: str) -> t.Image:
        """image.tag: another name for an image."""
        return self._do(Call("image.tag", {"name": name, "tag": tag}, lambda r, _: t.Image.from_dict(r)))

    def export(self, name: str, path: str, *, format: Optional[str] = None, tag: Optional[str] = None,
               on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
               timeout: Optional[float] = None) -> Dict[str, Any]:
        """image.export as an OCI layout (format "oci-dir" or "oci-tar");
        on_progress gets the params of its progress notifications."""
        return self._do(Call("image.export", params(name=name, path=path, format=format, tag=tag),
                             lambda r, _: r, on_progress=on_progress, timeout=timeout))

    def remove(self, name: str, force: bool = False) -> None:
        """image.remove."""
        return self._do(Call("image.remove", params(name=name, force=force or None), _none))


class SandboxAPI(Family):
    def create(self, image: Optional[str] = None, *, name: Optional[str] = None, start: Optional[bool] = None,
               labels: Optional[Mapping[str, str]] = None, env: Optional[Mapping[str, str]] = None,
               user: Optional[str] = None, workdir: Optional[str] = None, hostname: Optional[str] = None,
               resources: Union[t.Resources, Mapping[str, Any], None] = None,
               network: Optional[Mapping[str, Any]] = None, auto_stop_min: Optional[int] = None,
               auto_archive_min: Optional[int] = None, auto_delete_min: Optional[int] = None,
               ephemeral: Optional[bool] = None, userns: Optional[bool] = None,
               cap_add: Optional[Sequence[str]] = None, cap_drop: Optional[Sequence[str]] = None,
               seccomp_profile: Optional[str] = None, public: Optional[bool] = None, **extra: Any) -> t.Sandbox:
        """sandbox.create (and start, unless start=False); public=True
        serves its preview links without a token.  Members the protocol
        gains later can be passed as extra keywords."""
        p = params(image=image, name=name, start=start, labels=dict(labels) if labels is not None else None,
                   env=dict(env) if env is not None else None, user=user, workdir=workdir, hostname=hostname,
                   resources=resources if isinstance(resources, t.Resources) else
                   (dict(resources) if resources is not None else None),
                   network=dict(network) if network is not None else None, auto_stop_min=auto_stop_min,
                   auto_archive_min=auto_archive_min, auto_delete_min=auto_delete_min, ephemeral=ephemeral,
                   userns=userns, cap_add=list(cap_add) if cap_add is not None else None,
                   cap_drop=list(cap_drop) if cap_drop is not None else None, seccomp_profile=seccomp_profile,
                   public=public, **extra)
        return self._do(Call("sandbox.create", p, lambda r, _: t.Sandbox.from_dict(r)))

    def start(self, sandbox: SandboxRef) -> t.Sandbox:
        """sandbox.start."""
        return self._do(Call("sandbox.start", {"sandbox": sandbox_id(sandbox)}, lambda r, _: t.Sandbox.from_dict(r)))

    def stop(self, sandbox: SandboxRef, *, force: bool = False, timeout_s: Optional[float] = None) -> None:
        """sandbox.stop: answers when every process is gone."""
        return self._do(Call("sandbox.stop", params(sandbox=sandbox_id(sandbox), force=force or None,
                                                    timeout_s=timeout_s), _none))

    def delete(self, sandbox: SandboxRef, *, force: bool = False) -> None:
        """sandbox.delete (force: kill it first if it runs)."""
        return self._do(Call("sandbox.delete", params(sandbox=sandbox_id(sandbox), force=force or None), _none))

    def pause(self, sandbox: SandboxRef) -> t.Sandbox:
        """sandbox.pause."""
        return self._do(Call("sandbox.pause", {"sandbox": sandbox_id(sandbox)}, lambda r, _: t.Sandbox.from_dict(r)))

    def resume(self, sandbox: SandboxRef) -> t.Sandbox:
        """sandbox.resume."""
        return self._do(Call("sandbox.resume", {"sandbox": sandbox_id(sandbox)},
                             lambda r, _: t.Sandbox.from_dict(r)))

    def list(self, labels: Optional[Mapping[str, str]] = None, state: Optional[str] = None) -> List[t.Sandbox]:
        """sandbox.list, filtered by labels (all must match) and state."""
        p = params(labels=dict(labels) if labels else None, state=state)
        return self._do(Call("sandbox.list", p,
                             lambda r, _: [t.Sandbox.from_dict(x) for x in r.get("sandboxes", [])]))

    def inspect(self, sandbox: SandboxRef) -> t.Sandbox:
        """sandbox.inspect."""
        return self._do(Call("sandbox.inspect", {"sandbox": sandbox_id(sandbox)},
                             lambda r, _: t.Sandbox.from_dict(r)))

    def update(self, sandbox: SandboxRef, *, labels: Optional[Mapping[str, str]] = None,
               resources: Union[t.Resources, Mapping[str, Any], None] = None,
               auto_stop_min: Optional[int] = None, auto_archive_min: Optional[int] = None,
               auto_delete_min: Optional[int] = None, network: Optional[Mapping[str, Any]] = None,
               public: Optional[bool] = None, **extra: Any) -> t.Sandbox:
        """sandbox.update: only what is given changes."""
        p = params(sandbox=sandbox_id(sandbox), labels=dict(labels) if labels is not None else None,
                   resources=resources if isinstance(resources, t.Resources) else
                   (dict(resources) if resources is not None else None),
                   auto_stop_min=auto_stop_min, auto_archive_min=auto_archive_min, auto_delete_min=auto_delete_min,
                   network=dict(network) if network is not None else None, public=public, **extra)
        return self._do(Call("sandbox.update", p, lambda r, _: t.Sandbox.from_dict(r)))

    def stats(self, sandbox: SandboxRef) -> t.Stats:
        """sandbox.stats."""
        return self._do(Call("sandbox.stats", {"sandbox": sandbox_id(sandbox)}, lambda r, _: t.Stats.from_dict(r)))

    def touch(self, sandbox: SandboxRef) -> None:
        """sandbox.touch: counts as activity for auto-stop."""
        return self._do(Call("sandbox.touch", {"sandbox": sandbox_id(sandbox)}, _none))

    def archive(self, sandbox: SandboxRef) -> t.Sandbox:
        """sandbox.archive (in the contract; daemons that lack it answer
        MethodNotFound)."""
        return self._do(Call("sandbox.archive", {"sandbox": sandbox_id(sandbox)},
                             lambda r, _: t.Sandbox.from_dict(r) if "id" in r else None))

    def snapshot(self, sandbox: SandboxRef, image: str) -> t.Image:
        """sandbox.snapshot (in the contract; daemons that lack it answer
        MethodNotFound)."""
        return self._do(Call("sandbox.snapshot", {"sandbox": sandbox_id(sandbox), "image": image},
                             lambda r, _: t.Image.from_dict(r)))


class ProcessAPI(Family):
    def exec(self, sandbox: SandboxRef, cmd: Command, *, cwd: Optional[str] = None,
             env: Optional[Mapping[str, str]] = None, user: Optional[str] = None, stdin: Optional[str] = None,
             timeout_s: Optional[float] = None, max_output_bytes: Optional[int] = None,
             encoding: Optional[str] = None) -> t.ExecResult:
        """process.exec: run a command (an argv list, or a string for
        /bin/sh -c) and answer when it exits.  With encoding="base64" the
        output comes back as bytes."""
        p = params(sandbox=sandbox_id(sandbox), cwd=cwd, env=dict(env) if env is not None else None, user=user,
                   stdin=stdin, timeout_s=timeout_s, max_output_bytes=max_output_bytes, encoding=encoding)
        p.update(command_params(cmd))
        return self._do(Call("process.exec", p,
                             lambda r, _: _decoded(t.ExecResult.from_dict(r), ("stdout", "stderr"), encoding)))

    def spawn(self, sandbox: SandboxRef, cmd: Command, *, cwd: Optional[str] = None,
              env: Optional[Mapping[str, str]] = None, user: Optional[str] = None,
              stdin: Union[bool, str, None] = None, timeout_s: Optional[float] = None, tty: Optional[bool] = None,
              rows: Optional[int] = None, cols: Optional[int] = None, log_limit_mb: Optional[int] = None,
              **extra: Any) -> t.Spawned:
        """process.spawn: start a background command whose output the daemon
        keeps; see logs(), follow(), wait().  For an attached terminal use
        terminal()."""
        p = params(sandbox=sandbox_id(sandbox), cwd=cwd, env=dict(env) if env is not None else None, user=user,
                   stdin=stdin, timeout_s=timeout_s, tty=tty, rows=rows, cols=cols, log_limit_mb=log_limit_mb,
                   **extra)
        p.update(command_params(cmd))
        return self._do(Call("process.spawn", p, lambda r, _: t.Spawned.from_dict(r)))

    def logs(self, sandbox: SandboxRef, cmd_id: str, *, offset: int = 0, encoding: Optional[str] = None,
             max_bytes: Optional[int] = None) -> t.Logs:
        """process.logs: one answer from offset on (see .more and .offset)."""
        p = params(sandbox=sandbox_id(sandbox), cmd_id=cmd_id, offset=offset or None, encoding=encoding,
                   max_bytes=max_bytes)
        return self._do(Call("process.logs", p,
                             lambda r, _: _decoded(t.Logs.from_dict(r), ("stdout", "stderr"), encoding)))

    def wait(self, sandbox: SandboxRef, cmd_id: str, *, timeout_s: Optional[float] = None) -> t.WaitResult:
        """process.wait: answers when the command has ended (Timeout after
        timeout_s; the command keeps running)."""
        return self._do(Call("process.wait", params(sandbox=sandbox_id(sandbox), cmd_id=cmd_id, timeout_s=timeout_s),
                             lambda r, _: t.WaitResult.from_dict(r)))

    def kill(self, sandbox: SandboxRef, cmd_id: str, signal: Union[str, int, None] = None) -> int:
        """process.kill of the command's whole tree; returns how many
        processes got the signal."""
        return self._do(Call("process.kill", params(sandbox=sandbox_id(sandbox), cmd_id=cmd_id, signal=signal),
                             lambda r, _: int(r.get("signaled", 0))))

    def list(self, sandbox: SandboxRef) -> List[t.ProcessInfo]:
        """process.list: background and session commands, oldest first."""
        return self._do(Call("process.list", {"sandbox": sandbox_id(sandbox)},
                             lambda r, _: [t.ProcessInfo.from_dict(x) for x in r.get("processes", [])]))

    def stdin(self, sandbox: SandboxRef, cmd_id: str, data: Union[str, bytes] = "", *, eof: bool = False) -> int:
        """process.stdin: write to a spawned command's input (bytes are sent
        as base64); returns how many bytes were written."""
        p = params(sandbox=sandbox_id(sandbox), cmd_id=cmd_id, eof=eof or None)
        if isinstance(data, (bytes, bytearray, memoryview)):
            p["data"] = base64.b64encode(bytes(data)).decode("ascii")
            p["encoding"] = "base64"
        else:
            p["data"] = data
        return self._do(Call("process.stdin", p, lambda r, _: int(r.get("written", 0))))

    def resize(self, sandbox: SandboxRef, cmd_id: str, rows: int, cols: int) -> None:
        """process.resize of a logged terminal (an attached one is resized
        through its Terminal)."""
        return self._do(Call("process.resize", {"sandbox": sandbox_id(sandbox), "cmd_id": cmd_id,
                                                "rows": rows, "cols": cols}, _none))


class SessionAPI(Family):
    def create(self, sandbox: SandboxRef, session_id: Optional[str] = None, *, cwd: Optional[str] = None,
               env: Optional[Mapping[str, str]] = None) -> t.Session:
        """session.create: a shell state (directory, exported variables) that
        each command of the session starts from."""
        p = params(sandbox=sandbox_id(sandbox), session_id=session_id, cwd=cwd,
                   env=dict(env) if env is not None else None)
        return self._do(Call("session.create", p, lambda r, _: t.Session.from_dict(r)))

    def exec(self, sandbox: SandboxRef, session_id: str, command: str, *, run_async: bool = False,
             timeout_s: Optional[float] = None, max_output_bytes: Optional[int] = None,
             encoding: Optional[str] = None) -> Union[t.SessionExecResult, t.Spawned]:
        """session.exec: a SessionExecResult, or with run_async a Spawned
        at once (read its output with process.logs)."""
        p = params(sandbox=sandbox_id(sandbox), session_id=session_id, command=command,
                   run_async=run_async or None, timeout_s=timeout_s, max_output_bytes=max_output_bytes,
                   encoding=encoding)
        if run_async:
            return self._do(Call("session.exec", p, lambda r, _: t.Spawned.from_dict(r)))
        return self._do(Call("session.exec", p, lambda r, _: _decoded(t.SessionExecResult.from_dict(r),
                                                                      ("stdout", "stderr"), encoding)))

    def list(self, sandbox: SandboxRef) -> List[t.Session]:
        """session.list."""
        return self._do(Call("session.list", {"sandbox": sandbox_id(sandbox)},
                             lambda r, _: [t.Session.from_dict(x) for x in r.get("sessions", [])]))

    def delete(self, sandbox: SandboxRef, session_id: str) -> int:
        """session.delete: ends its running commands; returns how many
        processes were killed."""
        return self._do(Call("session.delete", {"sandbox": sandbox_id(sandbox), "session_id": session_id},
                             lambda r, _: int(r.get("killed", 0))))


def _read_result(encoding: Optional[str]) -> Callable[[Dict[str, Any], Any], t.ReadResult]:
    def parse(r: Dict[str, Any], _p: Any) -> t.ReadResult:
        rr = t.ReadResult.from_dict(r)
        if (encoding or "utf-8") == "base64" and isinstance(rr.data, str):
            rr.data = binascii.a2b_base64(rr.data)
        elif encoding == "hex" and isinstance(rr.data, str):
            rr.data = binascii.a2b_hex(rr.data)
        elif isinstance(rr.data, (bytearray, memoryview)):
            rr.data = bytes(rr.data)  # "binary": the bytes that followed the reply
        return rr
    return parse


class FsAPI(Family):
    def list(self, sandbox: SandboxRef, path: Optional[str] = None, *, depth: Optional[int] = None,
             max_entries: Optional[int] = None) -> List[t.FileInfo]:
        """fs.list: a directory's entries, sorted by name (depth levels
        down; 0 for all)."""
        p = params(sandbox=sandbox_id(sandbox), path=path, depth=depth, max_entries=max_entries)
        return self._do(Call("fs.list", p, lambda r, _: [t.FileInfo.from_dict(x) for x in r.get("entries", [])]))

    def stat(self, sandbox: SandboxRef, path: str) -> t.FileInfo:
        """fs.stat (of a final symbolic link itself)."""
        return self._do(Call("fs.stat", {"sandbox": sandbox_id(sandbox), "path": path},
                             lambda r, _: t.FileInfo.from_dict(r)))

    def read(self, sandbox: SandboxRef, path: str, *, offset: Optional[int] = None, length: Optional[int] = None,
             encoding: str = "base64") -> t.ReadResult:
        """fs.read of one piece (at most 8 MiB): bytes with base64 (the
        default), hex (where system.info lists fs.encoding.hex) or binary
        (raw bytes after the reply; fs.encoding.binary), text with utf-8.
        download() moves whole files."""
        p = params(sandbox=sandbox_id(sandbox), path=path, offset=offset, length=length, encoding=encoding)
        raw = encoding if encoding in ("base64", "hex", "binary") else False
        return self._do(Call("fs.read", p, _read_result(encoding), raw_data=raw))

    def write(self, sandbox: SandboxRef, path: str, data: Union[str, bytes], *, offset: Optional[int] = None,
              append: Optional[bool] = None, truncate: Optional[bool] = None, mode: Union[int, str, None] = None,
              create_parents: Optional[bool] = None) -> t.FileInfo:
        """fs.write of one piece: text as it is, bytes as base64.
        upload() moves whole files of any size."""
        p = params(sandbox=sandbox_id(sandbox), path=path, offset=offset, append=append, truncate=truncate,
                   mode=mode, create_parents=create_parents)
        if isinstance(data, (bytes, bytearray, memoryview)):
            p["encoding"] = "base64"
            p["data"] = binascii.b2a_base64(data, newline=False).decode("ascii")
        else:
            p["data"] = data
        return self._do(Call("fs.write", p, lambda r, _: t.FileInfo.from_dict(r)))

    def mkdir(self, sandbox: SandboxRef, path: str, *, mode: Union[int, str, None] = None,
              parents: bool = False) -> t.FileInfo:
        """fs.mkdir (Exists unless parents)."""
        p = params(sandbox=sandbox_id(sandbox), path=path, mode=mode, parents=parents or None)
        return self._do(Call("fs.mkdir", p, lambda r, _: t.FileInfo.from_dict(r)))

    def remove(self, sandbox: SandboxRef, path: str, *, recursive: bool = False) -> None:
        """fs.remove (a non-empty directory needs recursive)."""
        p = params(sandbox=sandbox_id(sandbox), path=path, recursive=recursive or None)
        return self._do(Call("fs.remove", p, _none))

    def move(self, sandbox: SandboxRef, src: str, dst: str, *, overwrite: bool = False) -> t.FileInfo:
        """fs.move (into dst when it is a directory, as mv does)."""
        p = params(sandbox=sandbox_id(sandbox), src=src, dst=dst, overwrite=overwrite or None)
        return self._do(Call("fs.move", p, lambda r, _: t.FileInfo.from_dict(r)))

    def chmod(self, sandbox: SandboxRef, path: str, mode: Union[int, str, None] = None, *,
              owner: Union[str, int, None] = None, group: Union[str, int, None] = None) -> t.FileInfo:
        """fs.chmod: mode as an integer (0o644) or octal string ("644"),
        owner and group as names or ids inside the sandbox."""
        if isinstance(mode, str) and not mode.startswith("0"):
            mode = "0" + mode
        p = params(sandbox=sandbox_id(sandbox), path=path, mode=mode, owner=owner, group=group)
        return self._do(Call("fs.chmod", p, lambda r, _: t.FileInfo.from_dict(r)))

    def find(self, sandbox: SandboxRef, path: Optional[str], pattern: str, *, literal: Optional[bool] = None,
             glob: Optional[str] = None, max_results: Optional[int] = None,
             max_file_size: Optional[int] = None) -> t.FindResult:
        """fs.find: lines matching a regular expression (or a plain string
        with literal) in the files below path."""
        p = params(sandbox=sandbox_id(sandbox), path=path, pattern=pattern, literal=literal, glob=glob,
                   max_results=max_results, max_file_size=max_file_size)
        return self._do(Call("fs.find", p, lambda r, _: t.FindResult.from_dict(r)))

    def search(self, sandbox: SandboxRef, path: Optional[str], glob: str, *,
               max_results: Optional[int] = None) -> t.SearchResult:
        """fs.search: paths whose name matches a glob."""
        p = params(sandbox=sandbox_id(sandbox), path=path, glob=glob, max_results=max_results)
        return self._do(Call("fs.search", p, lambda r, _: t.SearchResult.from_dict(r)))

    def replace(self, sandbox: SandboxRef, files: Sequence[str], pattern: str, new_value: str, *,
                literal: Optional[bool] = None) -> List[t.ReplaceResult]:
        """fs.replace in each file; a file that cannot be changed gets
        .error and the others go on."""
        p = params(sandbox=sandbox_id(sandbox), files=list(files), pattern=pattern, new_value=new_value,
                   literal=literal)
        return self._do(Call("fs.replace", p,
                             lambda r, _: [t.ReplaceResult.from_dict(x) for x in r.get("results", [])]))


class NetAPI(Family):
    def publish(self, sandbox: SandboxRef, port: int, *, host_port: Optional[int] = None,
                host_ip: Optional[str] = None) -> t.Port:
        """net.publish: listen on host_ip:host_port (0: any free port) and
        join each connection to the sandbox's port."""
        p = params(sandbox=sandbox_id(sandbox), port=port, host_port=host_port, host_ip=host_ip)
        return self._do(Call("net.publish", p, lambda r, _: t.Port.from_dict(r)))

    def unpublish(self, sandbox: SandboxRef, port: int) -> None:
        """net.unpublish."""
        return self._do(Call("net.unpublish", {"sandbox": sandbox_id(sandbox), "port": port}, _none))

    def ports(self, sandbox: SandboxRef) -> List[t.Port]:
        """net.ports."""
        return self._do(Call("net.ports", {"sandbox": sandbox_id(sandbox)},
                             lambda r, _: [t.Port.from_dict(x) for x in r.get("ports", [])]))

    def preview(self, sandbox: SandboxRef, port: int, *, expires_s: Optional[int] = None,
                rotate: Optional[bool] = None, **extra: Any) -> t.Preview:
        """net.preview: the link of a sandbox port, its URL and token. The
        same URL and token every time, across stops and daemon restarts,
        until the sandbox is deleted or the link revoked; rotate=True gives
        it a new token, expires_s a further token that ends then."""
        p = params(sandbox=sandbox_id(sandbox), port=port, expires_s=expires_s, rotate=rotate, **extra)
        return self._do(Call("net.preview", p, lambda r, _: t.Preview.from_dict(r)))

    def unpreview(self, sandbox: SandboxRef, port: Optional[int] = None) -> int:
        """net.unpreview: revokes the link of port (None: every link of the
        sandbox); how many links went."""
        return self._do(Call("net.unpreview", params(sandbox=sandbox_id(sandbox), port=port),
                             lambda r, _: int(r.get("revoked", 0))))
