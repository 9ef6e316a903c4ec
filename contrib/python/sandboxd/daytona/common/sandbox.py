"""Resources, SandboxState and PortPreviewUrl."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

__all__ = ["Resources", "SandboxState", "PortPreviewUrl"]


@dataclass
class Resources:
    """cpu in cores, memory and disk in GiB (gpu is not supported)."""
    cpu: Optional[float] = None
    memory: Optional[float] = None
    disk: Optional[float] = None
    gpu: Optional[int] = None


class SandboxState(str, Enum):
    """A str enum with lowercase values: compares equal to the plain string."""
    CREATING = "creating"
    RESTORING = "restoring"
    DESTROYED = "destroyed"
    DESTROYING = "destroying"
    STARTED = "started"
    STOPPED = "stopped"
    STARTING = "starting"
    STOPPING = "stopping"
    ERROR = "error"
    BUILD_FAILED = "build_failed"
    PENDING_BUILD = "pending_build"
    BUILDING_SNAPSHOT = "building_snapshot"
    UNKNOWN = "unknown"
    PULLING_SNAPSHOT = "pulling_snapshot"
    ARCHIVED = "archived"
    ARCHIVING = "archiving"
    RESIZING = "resizing"
    PAUSED = "paused"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_daemon(cls, state: Optional[str]) -> "SandboxState":
        try:
            return cls(state or "unknown")
        except ValueError:
            return cls.UNKNOWN


@dataclass
class PortPreviewUrl:
    """url: a base without a trailing slash, to which paths and queries are
    appended; token: for a private sandbox, sent as X-Daytona-Preview-Token."""
    url: str
    token: Optional[str] = None
    sandbox_id: Optional[str] = None
    port: Optional[int] = None

    def __str__(self) -> str:
        return "url='%s' token='%s'" % (self.url, self.token or "")
