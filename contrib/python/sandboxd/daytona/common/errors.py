"""The exception classes of daytona_sdk, raised by the facade.

The daemon's errors are translated: not found (code 1) becomes
DaytonaNotFoundError and its message always contains "not found", an
existing name DaytonaConflictError, bad parameters DaytonaBadRequestError,
a refusal DaytonaForbiddenError, a deadline DaytonaTimeoutError, a daemon
that cannot be reached DaytonaConnectionError; the rest DaytonaError.  The
daemon's exception stays in ``__cause__`` and ``sandboxd_error``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

__all__ = ["DaytonaError", "DaytonaBadRequestError", "DaytonaAuthenticationError", "DaytonaForbiddenError",
           "DaytonaNotFoundError", "DaytonaConflictError", "DaytonaValidationError", "DaytonaRateLimitError",
           "DaytonaServerError", "DaytonaTimeoutError", "DaytonaConnectionError"]


class DaytonaError(Exception):
    def __init__(self, message: str, status_code: Optional[int] = None,
                 headers: Optional[Mapping[str, Any]] = None):
        super().__init__(message)
        self.status_code = status_code
        self.headers = dict(headers or {})
        self.sandboxd_error: Optional[BaseException] = None


class DaytonaBadRequestError(DaytonaError):
    pass


class DaytonaAuthenticationError(DaytonaError):
    pass


class DaytonaForbiddenError(DaytonaError):
    pass


class DaytonaNotFoundError(DaytonaError):
    pass


class DaytonaConflictError(DaytonaError):
    pass


class DaytonaValidationError(DaytonaError):
    pass


class DaytonaRateLimitError(DaytonaError):
    pass


class DaytonaServerError(DaytonaError):
    pass


class DaytonaTimeoutError(DaytonaError):
    pass


class DaytonaConnectionError(DaytonaError):
    pass
