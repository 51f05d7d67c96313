"""Shared helpers for the foundation tests: recorded samples and hand-made JWTs.

A sample is one JSON file under ``tests/samples/``: ``{"status", "headers", "body"}`` for a
JSON body, or ``{"status", "headers", "body_text"}`` for a body that is not valid JSON (an
HTML error page, a truncated answer).
"""

from __future__ import annotations

import base64
import inspect
import json
from pathlib import Path
from typing import Any

import aiohttp
from aioresponses import CallbackResult, aioresponses
from attrs import frozen
from yarl import URL

from callsessions import HTTPResponse

SAMPLES = Path(__file__).parent / "samples"
SAMPLE_NAMES = sorted(p.stem for p in SAMPLES.glob("*.json"))

BASE_URL = "https://analyse.example.test"
AUTH_URL = "https://iam.example.test"
SEARCH_PATH = "/api/v1/search/cis/calls"
SEARCH_URL = BASE_URL + SEARCH_PATH
LOGIN_URL = AUTH_URL + "/api/v1/auth/login"
REFRESH_URL = AUTH_URL + "/api/v1/auth/refresh"


@frozen
class Sample:
    name: str
    status: int
    headers: dict[str, str]
    body: bytes

    def response(self) -> HTTPResponse:
        """As the transport hands it over: header names lower-cased, the whole body."""
        return HTTPResponse(
            status=self.status,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.body,
        )

    def json(self) -> Any:
        return json.loads(self.body)


def load_sample(name: str) -> Sample:
    doc = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    if "body_text" in doc:
        body = doc["body_text"].encode("utf-8")
    else:
        body = json.dumps(doc["body"], ensure_ascii=False).encode("utf-8")
    return Sample(name=name, status=doc["status"], headers=doc["headers"], body=body)


def sample_records(name: str) -> list[dict[str, Any]]:
    body = load_sample(name).json()
    items: list[dict[str, Any]] = body if isinstance(body, list) else body["items"]
    return items


def all_sample_records() -> list[dict[str, Any]]:
    return [
        record
        for name in ("page_first", "page_last", "page_bare_array")
        for record in sample_records(name)
    ]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(exp: float | None, **claims: Any) -> str:
    """An unsigned-looking JWT whose payload carries ``exp`` (and any other claims)."""
    payload = dict(claims)
    if exp is not None:
        payload["exp"] = exp
    header = _b64(json.dumps({"alg": "RS512", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    return f"{header}.{body}.{_b64(b'not-a-real-signature')}"


# -- aioresponses on aiohttp 3.14 ------------------------------------------------------------
# aioresponses 0.7.9 (the latest release) builds ``ClientResponse`` without the keyword-only
# ``stream_writer`` that aiohttp 3.14 requires (pnuckowski/aioresponses#289, still open).
# ``MockHTTP`` hands it a response class that supplies one; nothing else changes.

_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(aiohttp.ClientResponse).parameters


class _SentRequestWriter:
    """What a ClientResponse reads from the writer of a request that was already sent."""

    output_size = 0


class _CompatClientResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER:
            kwargs.setdefault("stream_writer", _SentRequestWriter())
        super().__init__(method, url, **kwargs)


class MockHTTP(aioresponses):
    """``aioresponses`` whose mocked responses build on aiohttp 3.14 too."""

    def add(self, url: Any, method: str = "GET", **kwargs: Any) -> None:  # type: ignore[override]
        if kwargs.get("response_class") is None:
            kwargs["response_class"] = _CompatClientResponse
        super().add(url, method, **kwargs)

    def calls(self) -> list[tuple[str, URL, dict[str, Any]]]:
        """Every request seen, as (method, URL with its query, request kwargs), in order
        per URL (aioresponses keeps them grouped by method and URL)."""
        return [
            (method, url, call.kwargs)
            for (method, url), recorded in self.requests.items()
            for call in recorded
        ]

    def count(self, url: str | None = None) -> int:
        """How many requests were seen (to ``url``, without its query, if given)."""
        return sum(
            len(recorded)
            for (_, seen), recorded in self.requests.items()
            if url is None or str(seen.with_query(None)) == url
        )


def callback_result(**kwargs: Any) -> CallbackResult:
    """A ``CallbackResult`` (what an aioresponses callback returns) that builds on 3.14."""
    kwargs.setdefault("response_class", _CompatClientResponse)
    return CallbackResult(**kwargs)
