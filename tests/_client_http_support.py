"""Shared helpers for the HTTP client tests (``test_client_http*.py``): the static token
the client sends, the search URL pattern, and serving a recorded sample for it."""

from __future__ import annotations

import re

from _support import MockHTTP, load_sample

TOKEN = "eyJhbGciOiJSUzUxMiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2VjcmV0LXNpZ25hdHVyZQ"
SEARCH = re.compile(r"^https://analyse\.example\.test/api/v1/search/cis/calls(\?.*)?$")


def mock_sample(mocked: MockHTTP, name: str, *, repeat: bool = False) -> None:
    sample = load_sample(name)
    mocked.get(
        SEARCH,
        status=sample.status,
        headers=sample.headers,
        body=sample.body,
        repeat=repeat,
    )
