"""Requests and responses of process and session calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, TypeVar, Union

__all__ = ["CodeRunParams", "SessionExecuteRequest", "ExecutionArtifacts", "ExecuteResponse",
           "SessionExecuteResponse", "SessionCommandLogsResponse", "Command", "Session", "PtySessionInfo",
           "OutputHandler"]

T = TypeVar("T")
OutputHandler = Union[Callable[[T], None], Callable[[T], Awaitable[None]]]


@dataclass
class CodeRunParams:
    argv: Optional[List[str]] = None
    env: Optional[Dict[str, str]] = None


@dataclass
class SessionExecuteRequest:
    """run_async (or the older var_async): answer at once with cmd_id.
    cwd: the command starts there (as a ``cd`` in the session would)."""
    command: str = ""
    run_async: Optional[bool] = None
    var_async: Optional[bool] = None
    cwd: Optional[str] = None
    suppress_input_echo: Optional[bool] = None

    @property
    def is_async(self) -> bool:
        return bool(self.run_async or self.var_async)


@dataclass
class ExecutionArtifacts:
    stdout: str = ""
    charts: Optional[List[Any]] = None


@dataclass
class ExecuteResponse:
    """exit_code, result (the program's standard output only), and, beyond
    daytona_sdk, stdout and stderr apart."""
    exit_code: int
    result: str
    artifacts: Optional[ExecutionArtifacts] = None
    stdout: str = ""
    stderr: str = ""
    additional_properties: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionExecuteResponse:
    cmd_id: str
    output: Optional[str] = None
    stdout: Optional[str] = None
    stderr: Optional[str] = None
    exit_code: Optional[int] = None
    additional_properties: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionCommandLogsResponse:
    output: Optional[str] = None
    stdout: Optional[str] = None
    stderr: Optional[str] = None


@dataclass
class Command:
    id: str
    command: str
    exit_code: Optional[int] = None


@dataclass
class Session:
    session_id: str
    commands: List[Command] = field(default_factory=list)


@dataclass
class PtySessionInfo:
    id: str
    cwd: Optional[str] = None
    envs: Dict[str, str] = field(default_factory=dict)
    cols: int = 80
    rows: int = 24
    created_at: Optional[str] = None
    active: bool = True
    lazy_start: bool = False
