"""callsessions: async client, bulk puller and simulator for the TWIN call-session list API.

::

    from callsessions import CallSessionsClient, SessionQuery

    async with CallSessionsClient(base_url="https://analyse.twin24.ai", token=token) as client:
        async for call in client.sessions(SessionQuery(start=start, end=end)):
            ...
"""

from callsessions.__about__ import __version__
from callsessions.client import CallSessionsClient, ClientConfig, ExportResult
from callsessions.errors import (
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
from callsessions.http.auth import Auth, PasswordAuth, Secret, TokenAuth
from callsessions.http.mock import MockTransport, json_response
from callsessions.http.retry import RetryPolicy
from callsessions.http.transport import AiohttpTransport, StreamedResponse, Transport
from callsessions.protocol.convert import structure_session, unstructure_session
from callsessions.protocol.planning import PullPlan, PullSettings, Window
from callsessions.protocol.query import (
    ALL_FIELDS,
    CallStatus,
    DateField,
    ExportFormat,
    SessionQuery,
    WireNames,
)
from callsessions.protocol.records import CallSession, Page
from callsessions.protocol.wire import HTTPRequest, HTTPResponse
from callsessions.pull.bulk import CheckpointError, PullOutcome, PullProgress
from callsessions.pull.checkpoint import Checkpoint
from callsessions.pull.engine import PullStream, PullSummary, WindowProblem

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
    "structure_session",
    "unstructure_session",
]
