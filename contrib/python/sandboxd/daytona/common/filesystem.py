"""File models of the fs calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Union

__all__ = ["FileUpload", "FileInfo", "Match", "ReplaceResult", "SearchFilesResponse"]


@dataclass
class FileUpload:
    """source: bytes, a local path, or a binary file object."""
    source: Union[bytes, str, Any]
    destination: str


@dataclass
class FileInfo:
    name: str
    is_dir: bool
    size: int
    mode: str
    mod_time: str
    permissions: str
    owner: Optional[str] = None
    group: Optional[str] = None
    path: Optional[str] = None

    @property
    def is_directory(self) -> bool:
        return self.is_dir


@dataclass
class Match:
    file: str
    line: int
    content: str


@dataclass
class ReplaceResult:
    file: str
    success: bool
    error: Optional[str] = None


@dataclass
class SearchFilesResponse:
    files: List[str] = field(default_factory=list)
