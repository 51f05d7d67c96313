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
    │   │   └── ThrottledOutError     429s only, for ``max_stall`` seconds: given up
    │   └── ServerError               5xx
    ├── TransportError                no usable HTTP response
    │   ├── ConnectionFailedError     refused, reset, closed in the middle of a body
    │   └── RequestTimeoutError       no complete answer in time
    ├── DecodeError                   a 2xx answer whose body is not what the API sends
    │                                 (``transient``: cut short, worth a retry; else not)
    ├── PaginationError               a page walk that stops advancing, or ignores its range
    │   └── MissingIdError            a record without ``id``: it cannot be verified
    ├── IncompletePullError           a window whose records could not all be gathered
    └── OutputLockedError             another pull is writing the same output (also an OSError)

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
    "MissingIdError",
    "NotFoundError",
    "OutputLockedError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "ThrottledOutError",
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


class ThrottledOutError(RateLimitedError):
    """The server refused every request (429) for ``max_stall`` seconds and served none:
    the pull gives up on throttling. (Throttling alone is never a failure.)"""

    stalled = True

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(429, method=method, path=path, error=message)


class ServerError(APIError):
    """5xx: the server failed; usually worth a retry."""


class TransportError(_RequestError):
    """No usable HTTP response arrived."""


class ConnectionFailedError(TransportError):
    """The connection was refused, reset or closed before the whole body arrived.

    ``lasting`` is True for failures that do not heal in seconds (a host name that does not
    resolve, a TLS handshake that fails): they are retried once at most."""

    def __init__(
        self, message: str, *, method: str = "", path: str = "", lasting: bool = False
    ) -> None:
        self.lasting = lasting
        super().__init__(message, method=method, path=path)


class RequestTimeoutError(TransportError):
    """No complete answer within the configured timeout."""


class DecodeError(_RequestError):
    """A successful status with a body that is not what the API sends.

    ``transient`` is True for a body cut short (JSON that ends early, fewer bytes than its
    Content-Length): a retry may well get it whole. A well-formed wrong answer (an HTML page,
    a ``count`` that is not an integer, a redirect) is not transient: it is retried at most
    once, then reported with what came back.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", transient: bool = False
    ) -> None:
        self.transient = transient
        super().__init__(message, method=method, path=path)


class PaginationError(_RequestError):
    """A page walk that stops advancing (same offset again, or the same ids as the last
    page), or a server that does not apply the range asked for (a wrong wire name)."""


class MissingIdError(PaginationError):
    """A record came back without ``id`` (absent or null): it can be neither de-duplicated
    nor counted towards its window, so the pull stops rather than pass it silently.
    ``window`` names the window (its text form)."""

    def __init__(self, message: str, *, window: str = "", method: str = "", path: str = "") -> None:
        self.window = window
        super().__init__(message, method=method, path=path)


class IncompletePullError(CallSessionsError):
    """Some windows could not be gathered completely; ``problems`` says which and by how much."""

    def __init__(self, message: str, problems: list[Any] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


class OutputLockedError(CallSessionsError, OSError):
    """Another process holds the lock of the output a pull or an export would write.
    ``path`` is the output, ``pid`` the holder's process id when it could be read."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f" (pid {pid})" if pid is not None else ""
        CallSessionsError.__init__(self, f"another pull is writing {path}{holder}")

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _short(value: Any, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
