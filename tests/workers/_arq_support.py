"""Shared helpers for the arq job tests (``test_arq_jobs*.py``): a fast worker
configuration, the simulator's query and plan, an arq worker on the test's loop, and a
dump of everything in Redis to search for secrets."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

import attrs
import redis.asyncio as aioredis

from callsessions import CallSessionsClient, PullPlan, RetryPolicy, SessionQuery
from callsessions.sim import SimServer
from callsessions.workers.arq import (
    WorkerConfig,
    close_worker,
    create_worker,
)

FIELDS = ["id", "createdAt", "status"]
FAST = WorkerConfig(
    concurrency=2,
    request_concurrency=2,
    max_tries=3,
    retry_defer=0.0,
    lease=5.0,
    poll_delay=0.05,
    progress_interval=0.0,
    http_retry=RetryPolicy.no_wait(attempts=2),
)


def query(sim: SimServer) -> SessionQuery:
    return SessionQuery(
        start=sim.config.start, end=sim.config.start + sim.config.span,
        fields=FIELDS, page_size=250,
    )


async def make_plan(sim: SimServer) -> PullPlan:
    async with CallSessionsClient(sim.url, token=sim.token, offset_ceiling=1_000) as client:
        return await client.plan(query(sim))


@contextlib.asynccontextmanager
async def worker(
    redis_url: str, sim: SimServer, config: WorkerConfig = FAST, token: str | None = None
) -> AsyncIterator[Any]:
    """An arq worker for this package's jobs, running on the test's loop until the block ends."""
    w = create_worker(
        redis_url, base_url=sim.url, token=token or sim.token, config=config,
        handle_signals=False,
    )
    task = asyncio.ensure_future(w.async_run())
    try:
        yield w
    finally:
        w.handle_sig(signal.SIGUSR1)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await close_worker(w)


async def all_keys_and_values(client: aioredis.Redis) -> bytes:
    """Every key and every value in Redis, as one blob to search."""
    blob = b""
    for key in await client.keys("*"):
        kind = (await client.type(key)).decode()
        blob += key + b"\n"
        if kind == "string":
            blob += await client.get(key) or b""
        elif kind == "hash":
            for f, v in (await client.hgetall(key)).items():  # type: ignore[misc]
                blob += f + b"=" + v + b"\n"
        elif kind == "zset":
            blob += b" ".join(await client.zrange(key, 0, -1))
        else:
            raise AssertionError(f"unexpected {kind} key {key!r}")
    return blob


def attrs_evolve(config: WorkerConfig, **changes: Any) -> WorkerConfig:
    return attrs.evolve(config, **changes)
