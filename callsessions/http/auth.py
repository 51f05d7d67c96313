"""Authentication: a static token, or email and password against the IAM service.

An ``Auth`` hands the client the ``Authorization`` value for each request and, when the
server says the token expired, gets a fresh one once. Secrets live in ``Secret`` wrappers
whose ``repr`` and ``str`` are masked, so they never reach a log line, an exception or a
repr by accident.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from callsessions.errors import APIError, DecodeError, InvalidQueryError
from callsessions.protocol.wire import (
    HTTPRequest,
    HTTPResponse,
    error_from_response,
    join_url,
    jwt_expiry,
)

__all__ = ["Auth", "PasswordAuth", "Secret", "TokenAuth"]

#: How the client lets an ``Auth`` talk to the IAM service.
Send = Callable[[HTTPRequest, str | None], Awaitable[HTTPResponse]]


class Secret:
    """A string that does not show itself: ``repr`` and ``str`` give ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise InvalidQueryError("secret", "***", "must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        """The secret itself; only for putting on the wire."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


class Auth(Protocol):
    """Supplies the ``Authorization`` header and renews it once when told it expired."""

    async def authorization(self, send: Send) -> str:
        """The header value for the next request (logging in or refreshing if due)."""
        ...

    async def renew(self, send: Send, rejected: str) -> bool:
        """The value ``rejected`` was refused as expired: get a new one. False if impossible."""
        ...


class TokenAuth:
    """A fixed bearer token. It cannot be renewed: an expired one is an error."""

    def __init__(self, token: str | Secret) -> None:
        self._token = token if isinstance(token, Secret) else Secret(token)

    async def authorization(self, send: Send) -> str:
        return "Bearer " + self._token.reveal()

    async def renew(self, send: Send, rejected: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "TokenAuth(token=***)"


class PasswordAuth:
    """Email and password against the IAM service, with refresh before the JWT's ``exp``.

    ``auth_url`` is the IAM service root (``https://iam.twin24.ai``); ``ttl`` the lifetime
    asked for, in seconds. A token is refreshed ``refresh_margin`` seconds before it expires;
    if the refresh is refused, the client logs in again. Concurrent requests share one login.
    """

    def __init__(
        self,
        email: str,
        password: str | Secret,
        *,
        auth_url: str,
        ttl: int = 86_400,
        company_id: int | None = None,
        refresh_margin: float = 60.0,
        login_path: str = "/api/v1/auth/login",
        refresh_path: str = "/api/v1/auth/refresh",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(email, str) or "@" not in email:
            raise InvalidQueryError("email", email, "must be an email address")
        if not auth_url.startswith(("http://", "https://")):
            raise InvalidQueryError("auth_url", auth_url, "must be an http(s) URL")
        if ttl <= 0:
            raise InvalidQueryError("ttl", ttl, "must be a positive number of seconds")
        self.email = email
        self._password = password if isinstance(password, Secret) else Secret(password)
        self._login_url = join_url(auth_url, login_path)
        self._refresh_url = join_url(auth_url, refresh_path)
        self._ttl = ttl
        self._company_id = company_id
        self._margin = refresh_margin
        self._clock = clock
        self._token: Secret | None = None
        self._refresh_token: Secret | None = None
        self._expires_at: float | None = None
        self._lock = asyncio.Lock()
        #: how many times a token was obtained: logins and refreshes
        self.logins = 0
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"PasswordAuth(email={self.email!r}, password=***, url={self._login_url!r})"

    def _header(self) -> str:
        assert self._token is not None
        return "Bearer " + self._token.reveal()

    def _due(self) -> bool:
        if self._token is None:
            return True
        return self._expires_at is not None and self._clock() >= self._expires_at - self._margin

    async def authorization(self, send: Send) -> str:
        if self._due():
            async with self._lock:
                if self._due():
                    await self._renew_locked(send)
        return self._header()

    async def renew(self, send: Send, rejected: str) -> bool:
        async with self._lock:
            if self._token is not None and self._header() != rejected:
                return True  # another request renewed it meanwhile
            await self._renew_locked(send, force=True)
        return True

    async def _renew_locked(self, send: Send, force: bool = False) -> None:
        if self._token is not None and self._refresh_token is not None:
            try:
                await self._refresh(send)
                return
            except APIError as exc:
                # Refused (401, or 400/403/422 for a revoked or unknown refresh token):
                # log in again. Throttling and server errors are not a refusal.
                if exc.status == 429 or not 400 <= exc.status < 500:
                    raise
        await self._login(send)

    async def _login(self, send: Send) -> None:
        body: dict[str, Any] = {
            "email": self.email,
            "password": self._password.reveal(),
            "ttl": self._ttl,
        }
        if self._company_id is not None:
            body["companyId"] = self._company_id
        request = HTTPRequest("POST", self._login_url, json=body)
        self._store(await send(request, None), request)
        self.logins += 1

    async def _refresh(self, send: Send) -> None:
        assert self._token is not None
        assert self._refresh_token is not None
        body = {"refreshToken": self._refresh_token.reveal(), "ttl": self._ttl}
        request = HTTPRequest("POST", self._refresh_url, json=body)
        self._store(await send(request, self._token.reveal()), request)
        self.refreshes += 1

    def _store(self, response: HTTPResponse, request: HTTPRequest) -> None:
        where: dict[str, Any] = {"method": request.method, "path": request.path}
        if response.status >= 400:
            raise error_from_response(response, method=request.method, path=request.path)
        try:
            data = orjson.loads(response.body)
            token, refresh = data["token"], data.get("refreshToken")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise DecodeError("login answer without a 'token'", transient=True, **where) from None
        if not isinstance(token, str) or not token:
            raise DecodeError("login answer without a 'token'", transient=True, **where)
        self._token = Secret(token)
        self._refresh_token = Secret(refresh) if isinstance(refresh, str) and refresh else None
        exp = jwt_expiry(token)
        self._expires_at = exp if exp is not None else self._clock() + self._ttl
