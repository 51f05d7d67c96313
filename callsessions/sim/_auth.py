"""The IAM side: JWT-shaped access tokens, refresh tokens, and checking a bearer token.

Tokens are ``base64url(header).base64url(payload).base64url(HMAC-SHA512)``; the payload
carries ``exp``, ``iat``, ``sub``, ``company_id`` (and a ``jti`` so two tokens minted in the
same second differ). The real platform signs with RS512; clients never verify the signature,
so an HMAC keeps the simulator free of crypto dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from ._config import SimConfig

__all__ = ["AuthError", "TokenIssuer"]

EXPIRED = "Token is expired."
NOT_AUTHENTICATED = "User is not authenticated"


class AuthError(Exception):
    """A request the IAM rules refuse: answered with ``status`` and ``{"error", "details"}``."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Mints and checks tokens for one simulator."""

    def __init__(self, config: SimConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self._secret = config.jwt_secret.encode()
        self._refresh: dict[str, tuple[str, int, float]] = {}  # token -> (sub, company, exp)
        self._static = frozenset(config.static_tokens)

    def mint(self, sub: str, company_id: int, ttl: int) -> str:
        """A signed access token valid for ``ttl`` seconds from now."""
        now = int(self.clock())
        header = _b64(orjson.dumps({"alg": "HS512", "typ": "JWT"}))
        payload = _b64(
            orjson.dumps(
                {
                    "iat": now,
                    "exp": now + ttl,
                    "sub": sub,
                    "company_id": company_id,
                    "jti": secrets.token_hex(8),
                }
            )
        )
        signing_input = f"{header}.{payload}".encode("ascii")
        signature = _b64(hmac.new(self._secret, signing_input, hashlib.sha512).digest())
        return f"{header}.{payload}.{signature}"

    def decode(self, token: str) -> dict[str, Any]:
        """The payload of a well-signed token (expired or not); AuthError 401 otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthError(401, NOT_AUTHENTICATED, "malformed token")
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
        expected = _b64(hmac.new(self._secret, signing_input, hashlib.sha512).digest())
        if not hmac.compare_digest(expected, parts[2]):
            raise AuthError(401, NOT_AUTHENTICATED, "invalid token signature")
        try:
            payload = orjson.loads(_unb64(parts[1]))
        except (ValueError, orjson.JSONDecodeError):
            raise AuthError(401, NOT_AUTHENTICATED, "malformed token") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
            raise AuthError(401, NOT_AUTHENTICATED, "malformed token")
        return payload

    def check(self, token: str) -> None:
        """Accept a static token or a valid, unexpired JWT; AuthError 401 otherwise."""
        if token in self._static:
            return
        payload = self.decode(token)
        if payload["exp"] <= self.clock():
            raise AuthError(401, EXPIRED, None)

    def check_header(self, header: str | None) -> str:
        """Check an ``Authorization: Bearer <token>`` header; return the token."""
        if not header:
            raise AuthError(401, NOT_AUTHENTICATED, "missing Authorization header")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, NOT_AUTHENTICATED, "expected 'Authorization: Bearer <token>'")
        token = token.strip()
        self.check(token)
        return token

    def _ttl(self, raw: object) -> int:
        if raw is None:
            return self.config.token_ttl
        if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
            raise AuthError(400, "Invalid input parameters", {"ttl": "must be a positive integer"})
        return min(raw, self.config.max_token_ttl)

    def _pair(self, sub: str, company_id: int, ttl: int) -> dict[str, str]:
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = (sub, company_id, self.clock() + self.config.refresh_ttl)
        return {"token": self.mint(sub, company_id, ttl), "refreshToken": refresh}

    def login(self, body: object) -> dict[str, str]:
        """``POST /auth/login``: ``{"email", "password", "ttl", "companyId"?}``."""
        if not isinstance(body, dict):
            raise AuthError(400, "Invalid input parameters", "expected a JSON object")
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise AuthError(
                400, "Invalid input parameters", {"email": "required", "password": "required"}
            )
        ttl = self._ttl(body.get("ttl"))
        company = body.get("companyId", self.config.company_id)
        if company is None:
            company = self.config.company_id
        if isinstance(company, bool) or not isinstance(company, int):
            raise AuthError(400, "Invalid input parameters", {"companyId": "must be an integer"})
        if not (
            hmac.compare_digest(email.encode(), self.config.email.encode())
            and hmac.compare_digest(password.encode(), self.config.password.encode())
        ):
            raise AuthError(401, "Invalid credentials", None)
        return self._pair(self.config.user_id, company, ttl)

    def refresh(self, body: object, header: str | None) -> dict[str, str]:
        """``POST /auth/refresh``: ``{"refreshToken", "ttl"}`` and ``Authorization: <token>``.

        The current token must be well signed but may have expired (that is why one
        refreshes); a ``Bearer`` prefix is accepted. Refresh tokens stay valid until their
        own expiry (``refresh_ttl``); they are not rotated.
        """
        if not isinstance(body, dict) or not isinstance(body.get("refreshToken"), str):
            raise AuthError(400, "Invalid input parameters", {"refreshToken": "required"})
        ttl = self._ttl(body.get("ttl"))
        if not header:
            raise AuthError(401, NOT_AUTHENTICATED, "missing Authorization header")
        token = header.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if token not in self._static:
            self.decode(token)
        entry = self._refresh.get(body["refreshToken"])
        if entry is None or entry[2] <= self.clock():
            raise AuthError(401, "Invalid refresh token", None)
        return self._pair(entry[0], entry[1], ttl)
