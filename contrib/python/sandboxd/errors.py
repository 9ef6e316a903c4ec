"""Exceptions: one class per error code of the sandboxd protocol.

Every error the daemon answers becomes an instance of the class for its
``code``, carrying the daemon's ``message`` (``str(e)`` is that message),
``code``, ``data`` and the ``method`` that failed.  Branch on the class, not
on the message: its wording may change between versions.
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, Optional, Type

__all__ = [
    "SandboxdError",
    "ConnectionError",
    "ProtocolError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "NotFound",
    "Exists",
    "BadState",
    "LimitExceeded",
    "Denied",
    "Timeout",
    "Unsupported",
    "error_from_reply",
    "ERROR_CLASSES",
]


class SandboxdError(Exception):
    """Base class of every error this package raises."""

    code: Optional[int] = None

    def __init__(self, message: str, code: Optional[int] = None, data: Any = None,
                 method: Optional[str] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data
        self.method = method

    @property
    def errno(self) -> Optional[int]:
        """The errno of the failed system call, when the daemon gave one."""
        if isinstance(self.data, dict) and isinstance(self.data.get("errno"), int):
            return self.data["errno"]
        return None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return "%s(%r, code=%r)" % (type(self).__name__, self.message, self.code)


class ConnectionError(SandboxdError, builtins.ConnectionError):
    """The daemon cannot be reached, or went away while a call was in
    flight.  The next call connects again."""


class ProtocolError(SandboxdError):
    """A JSON-RPC level error: the request itself was malformed."""


class ParseError(ProtocolError):
    """-32700: the daemon could not parse a line as JSON."""
    code = -32700


class InvalidRequest(ProtocolError):
    """-32600: not a valid request (wrong envelope, message too long)."""
    code = -32600


class MethodNotFound(SandboxdError):
    """-32601: the daemon does not implement this method (yet)."""
    code = -32601


class InvalidParams(SandboxdError, builtins.ValueError):
    """-32602: a parameter is missing, of the wrong type or out of range;
    ``param`` names it when the daemon said which."""
    code = -32602

    @property
    def param(self) -> Optional[str]:
        if isinstance(self.data, dict) and isinstance(self.data.get("param"), str):
            return self.data["param"]
        return None


class InternalError(SandboxdError):
    """-32603: a failure the caller cannot fix; the daemon logged it."""
    code = -32603


class NotFound(SandboxdError, builtins.LookupError):
    """1: no such sandbox, image, process, session, user or path."""
    code = 1


class Exists(SandboxdError):
    """2: the name or path is already taken (or a directory is not empty)."""
    code = 2


class BadState(SandboxdError):
    """3: the object is in the wrong state for this (e.g. exec in a stopped
    sandbox, delete of a running one without force)."""
    code = 3


class LimitExceeded(SandboxdError):
    """4: a configured limit was hit (sandbox count, pids, space, size)."""
    code = 4


class Denied(SandboxdError, builtins.PermissionError):
    """5: a path escapes the sandbox, or the kernel or policy said no."""
    code = 5


class Timeout(SandboxdError, builtins.TimeoutError):
    """6: the operation's own deadline passed."""
    code = 6


class Unsupported(SandboxdError):
    """7: this host or daemon version cannot do it."""
    code = 7


ERROR_CLASSES: Dict[int, Type[SandboxdError]] = {
    cls.code: cls  # type: ignore[misc]
    for cls in (ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError,
                NotFound, Exists, BadState, LimitExceeded, Denied, Timeout, Unsupported)
}


def error_from_reply(error: Dict[str, Any], method: Optional[str] = None) -> SandboxdError:
    """The exception for the ``error`` member of a JSON-RPC reply."""
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = "sandboxd answered error %r" % (code,)
    cls = ERROR_CLASSES.get(code, SandboxdError) if isinstance(code, int) else SandboxdError
    return cls(message, code=code if isinstance(code, int) else None,
               data=error.get("data") if isinstance(error, dict) else None, method=method)
