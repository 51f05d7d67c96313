"""Shared data and helpers for the authentication tests (``test_auth*.py``): the
credentials and tokens whose leaking is checked, a settable clock, and readers of the
requests the mocked server saw."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from _support import (
    SEARCH_PATH,
    MockHTTP,
    make_jwt,
)

SEARCH = re.compile(r"^https://analyse\.example\.test/api/v1/search/cis/calls(\?.*)?$")
NOW = 1_710_000_000.0
EMAIL = "robot-ops@clinic.example"
PASSWORD = "correct horse battery staple"
TOKEN_1 = make_jwt(NOW + 3600, sub="5d1e7c42", company_id=1234)
TOKEN_2 = make_jwt(NOW + 7200, sub="5d1e7c42", company_id=1234)
TOKEN_3 = make_jwt(NOW + 10800, sub="5d1e7c42", company_id=1234)
REFRESH_1 = "refresh-d3b07384-d9a0-4f6b"
REFRESH_2 = "refresh-9c2e8f1a-7b6c-5d4e"
STATIC_TOKEN = make_jwt(NOW + 3600, sub="static")
SECRETS = (PASSWORD, TOKEN_1, TOKEN_2, TOKEN_3, REFRESH_1, REFRESH_2, STATIC_TOKEN)
EMPTY_PAGE = {"count": 0, "items": []}
EXPIRED = {"error": "Token is expired.", "details": None}


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def assert_redacted(exc: BaseException) -> None:
    assert_no_secret(str(exc), repr(exc), str(exc.args))


def search_headers(mocked: MockHTTP) -> list[str]:
    """The Authorization header of each search request, in order."""
    return [
        kwargs["headers"].get("Authorization")
        for method, url, kwargs in mocked.calls()
        if method == "GET" and url.path == SEARCH_PATH
    ]


def posts(mocked: MockHTTP, url: str) -> list[dict[str, Any]]:
    return [kw for m, u, kw in mocked.calls() if m == "POST" and str(u) == url]


@pytest.fixture(name="no_secret_in_logs", autouse=True)
def no_secret_in_logs_fixture(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test of a module that imports this runs with DEBUG logging captured, and no
    secret may show in any record."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + str(record.exc_info)
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked into the log: {record.getMessage()}"
