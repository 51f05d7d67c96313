"""Shared helpers for the foundation tests: recorded samples and hand-made JWTs.

A sample is one JSON file under ``tests/samples/``: ``{"status", "headers", "body"}`` for a
JSON body, or ``{"status", "headers", "body_text"}`` for a body that is not valid JSON (an
HTML error page, a truncated answer).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from attrs import frozen

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
