"""Results of the protocol's methods, as dataclasses.

Each class takes the members of the daemon's JSON object that it names;
members it does not know (from a newer daemon) stay readable in ``raw``,
the whole object as received.  See sandboxd-protocol(7) for what each
member means.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Type, TypeVar, Union

__all__ = [
    "SystemInfo", "Image", "Resources", "Network", "Port", "Sandbox", "Stats",
    "ExecResult", "Spawned", "Logs", "WaitResult", "ProcessInfo", "Session",
    "SessionExecResult", "FileInfo", "ReadResult", "Match", "FindResult",
    "SearchResult", "ReplaceResult", "ArchiveResult", "Preview", "Event",
    "Output", "Exit", "Notification",
]

T = TypeVar("T", bound="_Model")
_FIELDS: Dict[type, tuple] = {}


class _Model:
    """from_dict() for the dataclasses below."""

    # member name -> model class (or [model class] for a list of them)
    _nested: Dict[str, Any] = {}

    @classmethod
    def from_dict(cls: Type[T], d: Optional[Dict[str, Any]]) -> T:
        if d is None:
            d = {}
        kw = {}
        names = _FIELDS.get(cls)
        if names is None:
            names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                                         if f.name != "raw")
        for name in names:
            if name not in d:
                continue
            v = d[name]
            sub = cls._nested.get(name)
            if sub is not None and v is not None:
                if isinstance(sub, list):
                    v = [sub[0].from_dict(x) for x in v]
                else:
                    v = sub.from_dict(v)
            kw[name] = v
        obj = cls(**kw)  # type: ignore[call-arg]
        obj.raw = d  # type: ignore[attr-defined]
        return obj


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


@dataclass
class Resources(_Model):
    """A sandbox's limits; 0 is unlimited."""
    cpus: Optional[float] = None
    memory_mb: Optional[int] = None
    pids: Optional[int] = None
    disk_mb: Optional[int] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class SystemInfo(_Model):
    version: Optional[str] = None
    api_version: Optional[int] = None
    hostname: Optional[str] = None
    kernel: Optional[str] = None
    cgroup: Optional[str] = None
    cgroup_base: Optional[str] = None
    features: List[str] = field(default_factory=list)
    resource_defaults: Optional[Resources] = None
    sandboxes: Dict[str, int] = field(default_factory=dict)
    limits: Dict[str, int] = field(default_factory=dict)
    default_image: Optional[str] = None
    state_dir: Optional[str] = None
    started_at: Optional[str] = None
    pid: Optional[int] = None
    raw: Dict[str, Any] = _raw()
    _nested = {"resource_defaults": Resources}


@dataclass
class Image(_Model):
    name: Optional[str] = None
    id: Optional[str] = None
    size_bytes: Optional[int] = None
    created_at: Optional[str] = None
    layers: Optional[int] = None
    format: Optional[str] = None
    source: Optional[str] = None
    names: List[str] = field(default_factory=list)
    digest: Optional[str] = None
    exposed_ports: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = _raw()


@dataclass
class Network(_Model):
    mode: Optional[str] = None
    ip: Optional[str] = None
    gateway: Optional[str] = None
    allow_out: List[str] = field(default_factory=list)
    deny_out: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = _raw()


@dataclass
class Port(_Model):
    port: Optional[int] = None
    host_port: Optional[int] = None
    host_ip: Optional[str] = None
    protocol: Optional[str] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class Sandbox(_Model):
    id: str = ""
    name: Optional[str] = None
    state: Optional[str] = None
    image: Optional[str] = None
    created_at: Optional[str] = None
    started_at: Optional[str] = None
    last_activity_at: Optional[str] = None
    labels: Dict[str, str] = field(default_factory=dict)
    env: Dict[str, str] = field(default_factory=dict)
    user: Optional[str] = None
    workdir: Optional[str] = None
    hostname: Optional[str] = None
    resources: Optional[Resources] = None
    network: Optional[Network] = None
    ports: List[Port] = field(default_factory=list)
    auto_stop_min: Optional[int] = None
    auto_archive_min: Optional[int] = None
    auto_delete_min: Optional[int] = None
    ephemeral: Optional[bool] = None
    public: Optional[bool] = None
    security: Dict[str, Any] = field(default_factory=dict)
    init_pid: Optional[int] = None
    raw: Dict[str, Any] = _raw()
    _nested = {"resources": Resources, "network": Network, "ports": [Port]}


@dataclass
class Stats(_Model):
    state: Optional[str] = None
    cpu_usage_us: Optional[int] = None
    memory_bytes: Optional[int] = None
    memory_peak_bytes: Optional[int] = None
    memory_max_bytes: Optional[int] = None
    pids: Optional[int] = None
    pids_max: Optional[int] = None
    disk_bytes: Optional[int] = None
    disk_max_bytes: Optional[int] = None
    oom_kills: Optional[int] = None
    cpus: Optional[float] = None
    net: Dict[str, int] = field(default_factory=dict)
    raw: Dict[str, Any] = _raw()


@dataclass
class ExecResult(_Model):
    """process.exec.  With ``encoding="base64"`` stdout and stderr are the
    decoded bytes, otherwise text."""
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    stdout: Union[str, bytes] = ""
    stderr: Union[str, bytes] = ""
    timed_out: bool = False
    truncated: bool = False
    duration_ms: Optional[int] = None
    pid: Optional[int] = None
    raw: Dict[str, Any] = _raw()

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Spawned(_Model):
    """process.spawn, and session.exec with run_async."""
    cmd_id: str = ""
    pid: Optional[int] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class Logs(_Model):
    """process.logs (one answer).  Text, or bytes with encoding base64."""
    stdout: Union[str, bytes] = ""
    stderr: Union[str, bytes] = ""
    offset: int = 0
    exited: bool = False
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    timed_out: bool = False
    dropped_bytes: int = 0
    more: bool = False
    following: bool = False
    raw: Dict[str, Any] = _raw()


@dataclass
class WaitResult(_Model):
    cmd_id: Optional[str] = None
    exited: bool = False
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    timed_out: bool = False
    lost: bool = False
    raw: Dict[str, Any] = _raw()


@dataclass
class ProcessInfo(_Model):
    cmd_id: str = ""
    pid: Optional[int] = None
    argv: List[str] = field(default_factory=list)
    started_at: Optional[str] = None
    exited: bool = False
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    timed_out: bool = False
    finished_at: Optional[str] = None
    tty: bool = False
    stdin: bool = False
    session_id: Optional[str] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class Session(_Model):
    session_id: str = ""
    cwd: Optional[str] = None
    created_at: Optional[str] = None
    running: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = _raw()


@dataclass
class SessionExecResult(_Model):
    cmd_id: str = ""
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    timed_out: bool = False
    stdout: Union[str, bytes] = ""
    stderr: Union[str, bytes] = ""
    truncated: bool = False
    duration_ms: Optional[int] = None
    cwd: Optional[str] = None
    pid: Optional[int] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class FileInfo(_Model):
    name: str = ""
    path: str = ""
    type: Optional[str] = None
    kind: Optional[str] = None
    size: int = 0
    mode: Optional[int] = None
    mode_octal: Optional[str] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    owner: Optional[str] = None
    group: Optional[str] = None
    mtime: Optional[str] = None
    symlink_target: Optional[str] = None
    path_base64: Optional[str] = None
    name_base64: Optional[str] = None
    raw: Dict[str, Any] = _raw()

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"


@dataclass
class ReadResult(_Model):
    """fs.read of one piece: data is bytes with encoding base64, hex or
    binary, text with utf-8, and None when the file went into a passed
    descriptor."""
    data: Union[str, bytes, None] = None
    encoding: Optional[str] = None
    size: int = 0
    offset: int = 0
    length: int = 0
    eof: bool = False
    raw: Dict[str, Any] = _raw()


@dataclass
class Match(_Model):
    file: str = ""
    line: int = 0
    content: str = ""
    raw: Dict[str, Any] = _raw()


@dataclass
class FindResult(_Model):
    matches: List[Match] = field(default_factory=list)
    truncated: bool = False
    files_scanned: int = 0
    skipped: List[Dict[str, Any]] = field(default_factory=list)
    skipped_count: int = 0
    max_file_size: Optional[int] = None
    raw: Dict[str, Any] = _raw()
    _nested = {"matches": [Match]}


@dataclass
class SearchResult(_Model):
    files: List[str] = field(default_factory=list)
    truncated: bool = False
    raw: Dict[str, Any] = _raw()


@dataclass
class ReplaceResult(_Model):
    file: str = ""
    replaced: int = 0
    error: Optional[str] = None
    code: Optional[int] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class ArchiveResult(_Model):
    """fs.archive and fs.extract."""
    entries: int = 0
    skipped: int = 0
    bytes: int = 0
    raw: Dict[str, Any] = _raw()


@dataclass
class Preview(_Model):
    """net.preview: url (a base without a trailing slash), token,
    expires_at (None: the link's persistent token), gateway, host_url (the
    Host-routed form), port, public (no token needed)."""
    url: str = ""
    token: Optional[str] = None
    expires_at: Optional[str] = None
    gateway: Optional[str] = None
    host_url: Optional[str] = None
    port: Optional[int] = None
    public: Optional[bool] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class Event(_Model):
    """A notification of events.subscribe."""
    type: str = ""
    sandbox: Optional[str] = None
    name: Optional[str] = None
    state: Optional[str] = None
    time: Optional[str] = None
    message: Optional[str] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class Output(_Model):
    """A process.output notification of a followed command."""
    cmd_id: str = ""
    stream: str = "stdout"
    data: Union[str, bytes] = ""
    offset: Optional[int] = None
    sandbox: Optional[str] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class Exit(_Model):
    """The process.exit notification that ends a followed command's output."""
    cmd_id: str = ""
    exit_code: Optional[int] = None
    signal: Optional[str] = None
    timed_out: bool = False
    offset: Optional[int] = None
    dropped_bytes: int = 0
    sandbox: Optional[str] = None
    raw: Dict[str, Any] = _raw()


@dataclass
class Notification(_Model):
    """Any other message the daemon sends without an id (for instance
    progress of a long call)."""
    method: str = ""
    params: Dict[str, Any] = field(default_factory=dict)
    raw: Dict[str, Any] = _raw()
