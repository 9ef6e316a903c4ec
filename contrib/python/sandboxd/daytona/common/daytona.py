"""DaytonaConfig, CodeLanguage and the create params, as daytona_sdk has them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Union

from .sandbox import Resources

__all__ = ["CodeLanguage", "DaytonaConfig", "CreateSandboxBaseParams", "CreateSandboxFromImageParams",
           "CreateSandboxFromSnapshotParams"]


class CodeLanguage(str, Enum):
    PYTHON = "python"
    TYPESCRIPT = "typescript"
    JAVASCRIPT = "javascript"

    def __str__(self) -> str:
        return self.value


@dataclass
class DaytonaConfig:
    """Accepted and readable for compatibility; sandboxd needs none of it.
    The daemon's socket comes from ``socket`` (an extension), then
    $SANDBOXD_SOCKET, then /run/sandboxd/sandboxd.sock."""
    api_key: Optional[str] = None
    api_url: Optional[str] = None
    server_url: Optional[str] = None
    target: Optional[str] = None
    jwt_token: Optional[str] = None
    organization_id: Optional[str] = None
    socket: Optional[str] = None

    def __post_init__(self) -> None:
        if self.server_url and not self.api_url:
            self.api_url = self.server_url


@dataclass
class CreateSandboxBaseParams:
    name: Optional[str] = None
    language: Optional[Union[CodeLanguage, str]] = None
    os_user: Optional[str] = None
    env_vars: Optional[Dict[str, str]] = None
    labels: Optional[Dict[str, str]] = None
    public: Optional[bool] = None
    timeout: Optional[float] = None
    auto_stop_interval: Optional[int] = None
    auto_archive_interval: Optional[int] = None
    auto_delete_interval: Optional[int] = None
    volumes: Optional[List[Any]] = None
    network_block_all: Optional[bool] = None
    network_allow_list: Optional[str] = None
    ephemeral: Optional[bool] = None


@dataclass
class CreateSandboxFromImageParams(CreateSandboxBaseParams):
    """image is an image name known to sandboxd (``sandboxctl image ls``)."""
    image: Optional[str] = None
    resources: Optional[Resources] = None

    def __post_init__(self) -> None:
        if not self.image:
            raise TypeError("CreateSandboxFromImageParams needs image")
        if not isinstance(self.image, str):
            raise TypeError("sandboxd takes an image by name; declarative Image builds are not supported")


@dataclass
class CreateSandboxFromSnapshotParams(CreateSandboxBaseParams):
    """snapshot is an image name known to sandboxd: tag your image with the
    snapshot's name (``sandboxctl image import kortix/suna:0.1.3.30 ...``)."""
    snapshot: Optional[str] = None
    resources: Optional[Resources] = None
