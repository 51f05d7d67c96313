"""Shared helpers for the HTTP client tests (``test_client_http*.py``): the static token
the client sends, the search URL pattern, serving a recorded sample for it, and the
``client`` fixture (a module uses it by importing ``client_fixture``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from _support import BASE_URL, MockHTTP, load_sample

from callsessions import CallSessionsClient, RetryPolicy

TOKEN = "eyJhbGciOiJSUzUxMiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2VjcmV0LXNpZ25hdHVyZQ"
SEARCH = re.compile(r"^https://analyse\.example\.test/api/v1/search/cis/calls(\?.*)?$")


@pytest.fixture(name="client")
async def client_fixture() -> AsyncIterator[CallSessionsClient]:
    """A client with the static token and three attempts, retried without waiting."""
    async with CallSessionsClient(
        BASE_URL, token=TOKEN, retry=RetryPolicy.no_wait(attempts=3)
    ) as c:
        yield c


def mock_sample(mocked: MockHTTP, name: str, *, repeat: bool = False) -> None:
    sample = load_sample(name)
    mocked.get(
        SEARCH,
        status=sample.status,
        headers=sample.headers,
        body=sample.body,
        repeat=repeat,
    )
