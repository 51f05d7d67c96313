"""Fixtures shared by test modules of several topics (the folder is not a package: helpers
are imported from ``_support`` and the other ``_*_support`` modules)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _support import MockHTTP


@pytest.fixture
def mocked() -> Iterator[MockHTTP]:
    """The client's HTTP answered by ``_support.MockHTTP`` (aioresponses), nothing sent."""
    with MockHTTP() as m:
        yield m
