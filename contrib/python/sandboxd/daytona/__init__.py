"""A facade with the names and signatures of Daytona's Python SDK
(daytona_sdk), over sandboxd: a backend written for daytona_sdk runs with
its import changed from ``daytona_sdk`` to ``sandboxd.daytona``.

See contrib/python/README.md for what differs.
"""

from ._async import (AsyncDaytona, AsyncFileSystem, AsyncPaginatedSandboxes, AsyncProcess, AsyncPtyHandle,
                     AsyncSandbox)
from ._sync import Daytona, FileSystem, PaginatedSandboxes, Process, PtyHandle, Sandbox
from .common.daytona import (CodeLanguage, CreateSandboxBaseParams, CreateSandboxFromImageParams,
                             CreateSandboxFromSnapshotParams, DaytonaConfig)
from .common.errors import (DaytonaAuthenticationError, DaytonaBadRequestError, DaytonaConflictError,
                            DaytonaConnectionError, DaytonaError, DaytonaForbiddenError, DaytonaNotFoundError,
                            DaytonaRateLimitError, DaytonaServerError, DaytonaTimeoutError, DaytonaValidationError)
from .common.filesystem import FileInfo, FileUpload, Match, ReplaceResult, SearchFilesResponse
from .common.process import (CodeRunParams, Command, ExecuteResponse, ExecutionArtifacts, OutputHandler,
                             PtySessionInfo, Session, SessionCommandLogsResponse, SessionExecuteRequest,
                             SessionExecuteResponse)
from .common.pty import PtyResult, PtySize
from .common.sandbox import PortPreviewUrl, Resources, SandboxState

# daytona_sdk's older name of the same state enum.
WorkspaceState = SandboxState

__all__ = [
    "AsyncDaytona", "AsyncSandbox", "AsyncProcess", "AsyncFileSystem", "AsyncPtyHandle", "AsyncPaginatedSandboxes",
    "Daytona", "Sandbox", "Process", "FileSystem", "PtyHandle", "PaginatedSandboxes",
    "DaytonaConfig", "CodeLanguage", "CreateSandboxBaseParams", "CreateSandboxFromImageParams",
    "CreateSandboxFromSnapshotParams", "Resources", "SandboxState", "WorkspaceState", "PortPreviewUrl",
    "SessionExecuteRequest", "SessionExecuteResponse", "SessionCommandLogsResponse", "ExecuteResponse",
    "ExecutionArtifacts", "CodeRunParams", "Command", "Session", "PtySessionInfo", "OutputHandler",
    "PtySize", "PtyResult", "FileUpload", "FileInfo", "Match", "ReplaceResult", "SearchFilesResponse",
    "DaytonaError", "DaytonaNotFoundError", "DaytonaTimeoutError", "DaytonaConflictError",
    "DaytonaBadRequestError", "DaytonaForbiddenError", "DaytonaConnectionError", "DaytonaRateLimitError",
    "DaytonaAuthenticationError", "DaytonaServerError", "DaytonaValidationError",
]
