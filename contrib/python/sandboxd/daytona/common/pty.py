"""PtySize and PtyResult, as daytona_sdk.common.pty has them."""

from dataclasses import dataclass
from typing import Optional

__all__ = ["PtySize", "PtyResult"]


@dataclass
class PtySize:
    """A terminal's size."""
    rows: int
    cols: int


@dataclass
class PtyResult:
    """How a PTY session ended."""
    exit_code: Optional[int] = None
    error: Optional[str] = None
