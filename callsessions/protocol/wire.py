"""The wire protocol, as pure functions: no aiohttp, no asyncio.

Building a page request, turning a response ``(status, headers, body)`` into page data or a
typed error, reading ``Retry-After`` and a JWT's expiry. Everything here is testable
synchronously; the transport and the client only move bytes and call these.
"""

from __future__ import annotations

import base64
import email.utils
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
from attrs import frozen

from callsessions.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TokenExpiredError,
)
from callsessions.protocol.gcpause import gc_paused
from callsessions.protocol.query import DEFAULT_WIRE_NAMES, SessionQuery, WireNames

__all__ = [
    "DEFAULT_ENDPOINT_PATH",
    "HTTPRequest",
    "HTTPResponse",
    "PageData",
    "build_page_request",
    "check_body",
    "error_from_response",
    "jwt_expiry",
    "looks_complete",
    "parse_page",
    "parse_retry_after",
    "peek_count",
    "undecodable",
]

DEFAULT_ENDPOINT_PATH = "/api/v1/search/cis/calls"
TOKEN_EXPIRED_TEXT = "token is expired"


@frozen
class HTTPRequest:
    """One request, before the transport sends it. ``headers`` never hold the token here:
    the client adds ``Authorization`` at the last moment, in the transport call."""

    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        """The URL's path, for messages (no query string, no credentials)."""
        rest = self.url.split("://", 1)[-1]
        slash = rest.find("/")
        return rest[slash:].split("?", 1)[0] if slash >= 0 else "/"

    def __repr__(self) -> str:
        return f"HTTPRequest({self.method} {self.path}, params={list(self.params)!r})"


@frozen
class HTTPResponse:
    """What came back: status, headers (lower-cased names) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@frozen
class PageData:
    """A parsed list response: the raw records and the total count, if the body had one."""

    items: list[dict[str, Any]]
    count: int | None


def join_url(base_url: str, path: str) -> str:
    """Append an endpoint path to a service root: ``https://host/analyse`` + ``/api/...``."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def build_page_request(
    query: SessionQuery,
    *,
    base_url: str,
    endpoint_path: str = DEFAULT_ENDPOINT_PATH,
    wire: WireNames = DEFAULT_WIRE_NAMES,
) -> HTTPRequest:
    """The GET request for one page of ``query``."""
    return HTTPRequest(
        method="GET",
        url=join_url(base_url, endpoint_path),
        params=tuple(query.to_params(wire)),
        headers=(("Accept", "application/json"),),
    )


def parse_page(response: HTTPResponse, *, method: str = "GET", path: str = "") -> PageData:
    """Parse a list response, or raise the error it stands for.

    Accepts ``{"count": N, "items": [...]}`` and a bare JSON array (then ``count`` is None).
    A body cut short is a transient ``DecodeError``; any other body that is not a list
    response (an HTML page, a redirect, a ``count`` that is not an integer) is a
    non-transient one whose message shows what came back.
    """
    where: dict[str, Any] = {"method": method, "path": path}
    if response.status >= 400:
        raise error_from_response(response, method=method, path=path)
    if response.status != 200:
        raise DecodeError(f"unexpected HTTP {response.status}{_redirect_note(response)}", **where)
    try:
        with gc_paused():
            data = orjson.loads(response.body)
    except orjson.JSONDecodeError as exc:
        raise undecodable(response.body, str(exc), **where) from None
    if isinstance(data, list):
        items, count = data, None
    elif isinstance(data, dict) and isinstance(data.get("items"), list):
        items, count = data["items"], data.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise DecodeError(f"'count' is not an integer: {_short(count)}", **where)
    else:
        shape = type(data).__name__ if not isinstance(data, dict) else f"object with {sorted(data)}"
        raise DecodeError(f"expected {{'count', 'items'}} or a JSON array, got {shape}", **where)
    if items and not all(type(item) is dict for item in items):
        raise DecodeError("an item of 'items' is not a JSON object", **where)
    return PageData(items=items, count=count)


def undecodable(body: bytes, reason: str, *, method: str = "", path: str = "") -> DecodeError:
    """The error for a 200 body that is not JSON: transient when it looks cut short (it
    opens like JSON but ends early), otherwise a description of what it is."""
    where: dict[str, Any] = {"method": method, "path": path}
    head = body[:64].lstrip()[:1]
    if not body or (head in (b"{", b"[") and (not looks_complete(body) or "end" in reason)):
        detail = f": {reason}" if reason else ""
        return DecodeError(
            f"malformed JSON body ({len(body)} bytes), cut short{detail}", transient=True, **where
        )
    if head == b"<":
        title = _text_summary(body)
        return DecodeError(f"the body is an HTML page, not JSON ({title})", **where)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return DecodeError(f"the body ({len(body)} bytes) is not valid UTF-8", **where)
    return DecodeError(f"malformed JSON body ({len(body)} bytes): {reason}", **where)


def check_body(body: bytes, *, method: str = "", path: str = "") -> None:
    """Cheap checks of a 200 body kept as bytes to parse later: that it is JSON-shaped and
    whole. Raises the ``DecodeError`` ``parse_page`` would (without parsing)."""
    if not looks_complete(body):
        raise undecodable(body, "", method=method, path=path)


def _redirect_note(response: HTTPResponse) -> str:
    """For a 3xx: where it points (scheme, host and path; never the query, which may hold
    secrets). Redirects are not followed: the token must not travel to another host."""
    location = response.headers.get("location")
    if not 300 <= response.status < 400 or not location:
        return " for a list"
    shown = location.split("#", 1)[0].split("?", 1)[0]
    if "@" in shown:
        scheme, sep, rest = shown.partition("://")
        shown = f"{scheme}{sep}{rest.rsplit('@', 1)[1]}"
    return f" (a redirect to {shown}, not followed; check the base URL)"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_COUNT_AT_HEAD = re.compile(rb'^\s*\{\s*"count"\s*:\s*(\d{1,12})\s*[,}]')


def peek_count(body: bytes) -> int | None:
    """The ``count`` of a list body when it is the first key, read without parsing the
    rest (None otherwise). Only a hint for scheduling; the parsed count is what counts."""
    match = _COUNT_AT_HEAD.match(body[:128])
    return int(match.group(1)) if match else None


def looks_complete(body: bytes) -> bool:
    """A cheap check that a JSON body was not cut short: it opens and closes like an object
    or an array. It catches a body cut mid-way in nearly all cases; a full parse catches
    the rest, later."""
    head, tail = body[:64].lstrip(), body[-64:].rstrip()
    if not head or not tail:
        return False
    return (head[:1], tail[-1:]) in ((b"{", b"}"), (b"[", b"]"))


def error_from_response(
    response: HTTPResponse, *, method: str = "", path: str = "", now: float | None = None
) -> APIError:
    """The typed error for an error status, with the body's ``error`` and ``details``."""
    error: Any = None
    details: Any = None
    try:
        body = orjson.loads(response.body) if response.body else None
    except orjson.JSONDecodeError:
        body = None
        error = _text_summary(response.body)
    if isinstance(body, dict):
        error = body.get("error", body.get("message"))
        details = body.get("details")
    status = response.status
    kwargs: dict[str, Any] = {"method": method, "path": path, "error": error, "details": details}
    if status in (400, 422):
        return BadRequestError(status, **kwargs)
    if status == 401:
        said = error if isinstance(error, str) else orjson.dumps(error).decode() if error else ""
        if TOKEN_EXPIRED_TEXT in said.lower():
            return TokenExpiredError(status, **kwargs)
        return AuthenticationError(status, **kwargs)
    if status == 403:
        return PermissionDeniedError(status, **kwargs)
    if status == 404:
        return NotFoundError(status, **kwargs)
    if status == 429:
        if now is None:
            # An HTTP-date Retry-After is relative to the server's clock, not ours.
            now = _server_time(response.headers.get("date"))
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
        return RateLimitedError(status, retry_after=retry_after, **kwargs)
    if status >= 500:
        return ServerError(status, **kwargs)
    return APIError(status, **kwargs)


def _server_time(value: str | None) -> float | None:
    """The response's ``Date`` header as a timestamp, or None if absent or unreadable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() if when.tzinfo is not None else None


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _text_summary(body: bytes) -> str | None:
    """One short line for a body that is not JSON: an HTML page's title (a gateway's 502
    page, say), or the start of the text with white space folded."""
    found = _TITLE.search(body[:4096])
    raw = found.group(1) if found else body[:200]
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text[:200] or None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if absent/bad.

    A date in the past means 0; a negative or non-finite number is not a valid header (None).
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), read without verifying it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)
