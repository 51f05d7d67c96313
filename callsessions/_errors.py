"""The exceptions of ``callsessions``, one tree.

::

    CallSessionsError                 base of everything raised on purpose
    ├── InvalidQueryError             bad input, raised before any request (also a ValueError)
    ├── APIError                      the server answered with an error status
    │   ├── BadRequestError           400, 422
    │   ├── AuthenticationError       401
    │   │   └── TokenExpiredError     401 "Token is expired."
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404
    │   ├── RateLimitedError          429, with ``retry_after`` (seconds or None)
    │   └── ServerError               5xx
    ├── TransportError                no usable HTTP response
    │   ├── ConnectionFailedError     refused, reset, closed in the middle of a body
    │   └── RequestTimeoutError       no complete answer in time
    ├── DecodeError                   a 2xx answer whose body is not what the API sends
    ├── PaginationError               a page walk that stops advancing, or ignores its range
    └── IncompletePullError           a window whose records could not all be gathered

Every error that belongs to a request carries ``method`` and ``path`` (the URL path,
never the query string's secrets, never a header) and shows them in its message and repr.
Tokens and passwords never appear in any of them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CallSessionsError",
    "ConnectionFailedError",
    "DecodeError",
    "IncompletePullError",
    "InvalidQueryError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "TokenExpiredError",
    "TransportError",
]


class CallSessionsError(Exception):
    """Base class of every error raised by callsessions."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (arq, Celery, ProcessPool): pickle and copy them
        # by their attributes, since their __init__ signatures differ from ``self.args``.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[CallSessionsError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class InvalidQueryError(CallSessionsError, ValueError):
    """A query parameter or a setting is invalid; raised before any request is sent.

    ``parameter`` names the parameter, ``value`` is the rejected value.
    """

    def __init__(self, parameter: str, value: object, problem: str) -> None:
        self.parameter = parameter
        self.value = value
        self.problem = problem
        super().__init__(f"{parameter}={value!r} is invalid: {problem}")


class _RequestError(CallSessionsError):
    """An error tied to one request: keeps method and path for messages."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        self.path = path
        self.message = message
        where = f"{method} {path}: " if method or path else ""
        super().__init__(f"{where}{message}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={self.method!r}, path={self.path!r}, "
            f"message={self.message!r})"
        )


class APIError(_RequestError):
    """The server answered with an error status.

    ``status`` is the HTTP status, ``error`` and ``details`` the body's fields of the same
    names (or None when the body had none).
    """

    def __init__(
        self,
        status: int,
        *,
        method: str = "",
        path: str = "",
        error: Any = None,
        details: Any = None,
    ) -> None:
        self.status = status
        self.error = error
        self.details = details
        text = f"HTTP {status}"
        if error is not None:
            text += f": {error}"
        if details not in (None, "", [], {}):
            text += f" (details: {_short(details)})"
        super().__init__(text, method=method, path=path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, method={self.method!r}, "
            f"path={self.path!r}, error={self.error!r})"
        )


class BadRequestError(APIError):
    """400 or 422: the server rejected the parameters."""


class AuthenticationError(APIError):
    """401: not authenticated (missing, invalid or expired token, wrong credentials)."""


class TokenExpiredError(AuthenticationError):
    """401 whose error says the token expired."""


class PermissionDeniedError(APIError):
    """403: authenticated, but not allowed."""


class NotFoundError(APIError):
    """404: wrong endpoint path or base URL, most often."""


class RateLimitedError(APIError):
    """429: throttled. ``retry_after`` is the server's Retry-After in seconds, or None."""

    def __init__(
        self,
        status: int,
        *,
        method: str = "",
        path: str = "",
        error: Any = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status, method=method, path=path, error=error, details=details)


class ServerError(APIError):
    """5xx: the server failed; usually worth a retry."""


class TransportError(_RequestError):
    """No usable HTTP response arrived."""


class ConnectionFailedError(TransportError):
    """The connection was refused, reset or closed before the whole body arrived."""


class RequestTimeoutError(TransportError):
    """No complete answer within the configured timeout."""


class DecodeError(_RequestError):
    """A successful status with a body that is not what the API sends (truncated JSON...)."""


class PaginationError(_RequestError):
    """A page walk that stops advancing (same offset again, or the same ids as the last
    page), or a server that does not apply the range asked for (a wrong wire name)."""


class IncompletePullError(CallSessionsError):
    """Some windows could not be gathered completely; ``problems`` says which and by how much."""

    def __init__(self, message: str, problems: list[Any] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


def _short(value: Any, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
