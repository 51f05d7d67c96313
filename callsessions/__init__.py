"""callsessions: async client, bulk puller and simulator for the TWIN call-session list API.

::

    from callsessions import CallSessionsClient, SessionQuery

    async with CallSessionsClient(base_url="https://analyse.twin24.ai", token=token) as client:
        async for call in client.sessions(SessionQuery(start=start, end=end)):
            ...
"""

from .__about__ import __version__
from ._auth import Auth, PasswordAuth, Secret, TokenAuth
from ._bulk import CheckpointError, PullOutcome, PullProgress
from ._checkpoint import Checkpoint
from ._client import CallSessionsClient, ClientConfig, ExportResult
from ._convert import make_converter, structure_session, unstructure_session
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CallSessionsError,
    ConnectionFailedError,
    DecodeError,
    IncompletePullError,
    InvalidQueryError,
    MissingIdError,
    NotFoundError,
    OutputLockedError,
    PaginationError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TokenExpiredError,
    TransportError,
)
from ._mock import MockTransport, json_response
from ._models import CallSession, Page
from ._planning import PullPlan, PullSettings, Window
from ._protocol import HTTPRequest, HTTPResponse
from ._pull import PullStream, PullSummary, WindowProblem
from ._query import (
    ALL_FIELDS,
    CallStatus,
    DateField,
    ExportFormat,
    SessionQuery,
    WireNames,
)
from ._retry import RetryPolicy
from ._transport import AiohttpTransport, StreamedResponse, Transport

__all__ = [
    "ALL_FIELDS",
    "APIError",
    "AiohttpTransport",
    "Auth",
    "AuthenticationError",
    "BadRequestError",
    "CallSession",
    "CallSessionsClient",
    "CallSessionsError",
    "CallStatus",
    "Checkpoint",
    "CheckpointError",
    "ClientConfig",
    "ConnectionFailedError",
    "DateField",
    "DecodeError",
    "ExportFormat",
    "ExportResult",
    "HTTPRequest",
    "HTTPResponse",
    "IncompletePullError",
    "InvalidQueryError",
    "MissingIdError",
    "MockTransport",
    "NotFoundError",
    "OutputLockedError",
    "Page",
    "PaginationError",
    "PasswordAuth",
    "PermissionDeniedError",
    "PullOutcome",
    "PullPlan",
    "PullProgress",
    "PullSettings",
    "PullStream",
    "PullSummary",
    "RateLimitedError",
    "RequestTimeoutError",
    "RetryPolicy",
    "Secret",
    "ServerError",
    "SessionQuery",
    "StreamedResponse",
    "TokenAuth",
    "TokenExpiredError",
    "Transport",
    "TransportError",
    "Window",
    "WindowProblem",
    "WireNames",
    "__version__",
    "json_response",
    "make_converter",
    "structure_session",
    "unstructure_session",
]
