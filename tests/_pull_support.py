"""Helpers shared by the bulk-pull tests (``test_pull*.py``): the simulator's settings, a
client for it, the ground truth for a query, the exactly-once check, and the ``sim`` fixture
(a module uses it by importing ``sim_fixture``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from callsessions import CallSessionsClient, Checkpoint, PullPlan, RetryPolicy, SessionQuery
from callsessions.sim import SimConfig, SimServer

START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def sim_config(records: int = 6_000, **changes: Any) -> SimConfig:
    return SimConfig(records=records, seed=7, start=START, span=timedelta(days=3), **changes)


@pytest.fixture(name="sim")
async def sim_fixture() -> AsyncIterator[SimServer]:
    """A simulator of ``sim_config()``, on loopback, for one test."""
    async with SimServer(sim_config()) as server:
        yield server


def client_for(server: SimServer, **settings: Any) -> CallSessionsClient:
    settings.setdefault("retry", RetryPolicy.no_wait())
    settings.setdefault("page_size", 250)
    settings.setdefault("offset_ceiling", 2_000)
    settings.setdefault("concurrency", 4)
    return CallSessionsClient(server.url, token=server.token, **settings)


def range_query(**changes: Any) -> SessionQuery:
    return SessionQuery(start=START, end=START + timedelta(days=3), **changes)


def client_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the client still alive (the in-process simulator's server has its own)."""
    out = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        where = code.co_filename if code is not None else ""
        if task is asyncio.current_task() or "aiohttp/web" in where or "/sim/" in where:
            continue
        out.append(task)
    return out


def truth(server: SimServer, query: SessionQuery) -> list[str]:
    params = {k: v for k, v in query.to_params() if k not in ("fields", "limit", "sort")}
    return server.matching_ids(params)


def assert_exactly_once(got: list[str], expected: list[str] | set[str]) -> None:
    dupes = [k for k, n in _counts(got).items() if n > 1]
    assert not dupes, f"{len(dupes)} ids delivered twice, e.g. {dupes[:3]}"
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    assert not missing, f"{len(missing)} ids missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} ids not in the ground truth"


def _counts(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


async def pull_ids(client: CallSessionsClient, source: SessionQuery | PullPlan) -> list[str]:
    stream = client.sessions(source)
    return [s.id async for s in stream if s.id is not None]


async def pull_ids_with(
    client: CallSessionsClient, plan: PullPlan, checkpoint: Checkpoint
) -> list[str]:
    return [s.id async for s in client.sessions(plan, checkpoint=checkpoint) if s.id]
