"""callsessions: async client, bulk puller and simulator for the TWIN call-session list API.

::

    from callsessions import CallSessionsClient, SessionQuery

    async with CallSessionsClient(base_url="https://analyse.twin24.ai", token=token) as client:
        async for call in client.sessions(SessionQuery(start=start, end=end)):
            ...
"""

from typing import TYPE_CHECKING, Any

from callsessions.__about__ import __version__

if TYPE_CHECKING:
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

#: public name -> the module that defines it. The façade imports lazily (PEP 562): a
#: command's start-up, or a pytest run that loads the plugin, pays only for what it uses.
_WHERE: dict[str, str] = {
    "ALL_FIELDS": "callsessions.protocol.query",
    "APIError": "callsessions.errors",
    "AiohttpTransport": "callsessions.http.transport",
    "Auth": "callsessions.http.auth",
    "AuthenticationError": "callsessions.errors",
    "BadRequestError": "callsessions.errors",
    "CallSession": "callsessions.protocol.records",
    "CallSessionsClient": "callsessions.client",
    "CallSessionsError": "callsessions.errors",
    "CallStatus": "callsessions.protocol.query",
    "Checkpoint": "callsessions.pull.checkpoint",
    "CheckpointError": "callsessions.pull.bulk",
    "ClientConfig": "callsessions.client",
    "ConnectionFailedError": "callsessions.errors",
    "DateField": "callsessions.protocol.query",
    "DecodeError": "callsessions.errors",
    "ExportFormat": "callsessions.protocol.query",
    "ExportResult": "callsessions.client",
    "HTTPRequest": "callsessions.protocol.wire",
    "HTTPResponse": "callsessions.protocol.wire",
    "IncompletePullError": "callsessions.errors",
    "InvalidQueryError": "callsessions.errors",
    "MissingIdError": "callsessions.errors",
    "MockTransport": "callsessions.http.mock",
    "NotFoundError": "callsessions.errors",
    "OutputLockedError": "callsessions.errors",
    "Page": "callsessions.protocol.records",
    "PaginationError": "callsessions.errors",
    "PasswordAuth": "callsessions.http.auth",
    "PermissionDeniedError": "callsessions.errors",
    "PullOutcome": "callsessions.pull.bulk",
    "PullPlan": "callsessions.protocol.planning",
    "PullProgress": "callsessions.pull.bulk",
    "PullSettings": "callsessions.protocol.planning",
    "PullStream": "callsessions.pull.engine",
    "PullSummary": "callsessions.pull.engine",
    "RateLimitedError": "callsessions.errors",
    "RequestTimeoutError": "callsessions.errors",
    "RetryPolicy": "callsessions.http.retry",
    "Secret": "callsessions.http.auth",
    "ServerError": "callsessions.errors",
    "SessionQuery": "callsessions.protocol.query",
    "StreamedResponse": "callsessions.http.transport",
    "TokenAuth": "callsessions.http.auth",
    "TokenExpiredError": "callsessions.errors",
    "Transport": "callsessions.http.transport",
    "TransportError": "callsessions.errors",
    "Window": "callsessions.protocol.planning",
    "WindowProblem": "callsessions.pull.engine",
    "WireNames": "callsessions.protocol.query",
    "json_response": "callsessions.http.mock",
    "structure_session": "callsessions.protocol.convert",
    "unstructure_session": "callsessions.protocol.convert",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'callsessions' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
