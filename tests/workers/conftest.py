"""Fixtures for the worker tests: a real redis-server (one per session, flushed per test),
and the simulator of the job tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio as aioredis
from redis_server import running_redis_server

from callsessions.sim import SimConfig, SimServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server for the whole session; its URL ``redis://127.0.0.1:<port>/0``.

    Fails (never skips) with an install hint when ``redis-server`` is not on PATH.
    """
    with running_redis_server() as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's server, emptied (FLUSHALL) before the test, so tests are independent."""
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on the emptied server, closed after the test."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    """The simulator of the job tests: 3,000 calls under a ceiling of 1,000, so a pull of
    them has several windows (``test_arq_distributed`` defines its own)."""
    async with SimServer(SimConfig(records=3_000, seed=7, offset_ceiling=1_000)) as server:
        yield server
