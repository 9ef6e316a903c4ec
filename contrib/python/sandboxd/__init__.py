"""Python client of sandboxd, the Linux sandbox daemon.

    from sandboxd import Client

    with Client() as c:                       # $SANDBOXD_SOCKET or /run/sandboxd/sandboxd.sock
        sb = c.sandbox.create(labels={"team": "web"})
        print(c.process.exec(sb, "echo hello").stdout)
        c.fs.upload(sb, "data.csv", "/workspace/data.csv")
        c.sandbox.delete(sb, force=True)

AsyncClient offers the same methods as coroutines.  sandboxd.daytona is a
facade with the names and signatures of Daytona's Python SDK.
"""

from ._conn import DEFAULT_SOCKET, socket_path
from .aio import AsyncClient, AsyncProgressStream, AsyncStream, AsyncTerminal
from .client import Client, ProgressStream, Stream, Terminal
from .errors import (BadState, ConnectionError, Denied, Exists, InternalError, InvalidParams, InvalidRequest,
                     LimitExceeded, MethodNotFound, NotFound, ParseError, ProtocolError, SandboxdError, Timeout,
                     Unsupported, error_from_reply)
from .types import (ArchiveResult, Event, ExecResult, Exit, FileInfo, FindResult, Image, Logs, Match, Network,
                    Notification, Output, Port, Preview, ProcessInfo, ReadResult, ReplaceResult, Resources, Sandbox, SearchResult,
                    Session, SessionExecResult, Spawned, Stats, SystemInfo, WaitResult)

__version__ = "0.1.0"

__all__ = [
    "Client", "AsyncClient", "Stream", "AsyncStream", "ProgressStream", "AsyncProgressStream", "Terminal", "AsyncTerminal", "DEFAULT_SOCKET", "socket_path",
    "SandboxdError", "ConnectionError", "ProtocolError", "ParseError", "InvalidRequest", "MethodNotFound",
    "InvalidParams", "InternalError", "NotFound", "Exists", "BadState", "LimitExceeded", "Denied", "Timeout",
    "Unsupported", "error_from_reply",
    "ArchiveResult", "Event", "ExecResult", "Exit", "FileInfo", "FindResult", "Image", "Logs", "Match", "Network",
    "Notification", "Output", "Port", "Preview", "ProcessInfo", "ReadResult", "ReplaceResult", "Resources", "Sandbox",
    "SearchResult", "Session", "SessionExecResult", "Spawned", "Stats", "SystemInfo", "WaitResult",
]
