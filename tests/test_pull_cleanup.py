"""The bulk pull stopped early: a break (with or without the context manager), an
exception in the loop body, a cancelled task. Nothing is left running and nothing more is
sent.
"""

from __future__ import annotations

import asyncio

import pytest
from _pull_support import (
    client_for,
    client_tasks,
    range_query,
    sim_fixture,  # noqa: F401  (the fixture "sim")
)

from callsessions import CallSession
from callsessions.sim import SimServer


async def test_early_break_cancels_everything(sim: SimServer) -> None:
    sim.latency = 0.02
    async with client_for(sim, concurrency=4) as client:
        stream = client.sessions(range_query())
        async with stream:
            async for _ in stream:
                break
        await asyncio.sleep(0)
        others = client_tasks()
        assert others == [], f"tasks left behind: {others}"
        # The simulator counts a request when its handler ends: those in flight at the
        # break (at most `concurrency`) show up a little later, and then nothing more.
        requests_at_break = sim.stats.search_requests
        await asyncio.sleep(0.1)
        settled = sim.stats.search_requests
        assert settled <= requests_at_break + 4
        await asyncio.sleep(0.1)
        assert sim.stats.search_requests == settled, "nothing more was sent"


async def test_plain_break_without_context_manager_cleans_up(sim: SimServer) -> None:
    async with client_for(sim) as client:
        async for _ in client.sessions(range_query()):
            break
        # The event loop closes the dropped generator by itself, within a few ticks.
        for _ in range(100):
            if not client_tasks():
                break
            await asyncio.sleep(0)
        others = client_tasks()
        assert others == []


async def test_exception_in_loop_body_cleans_up(sim: SimServer) -> None:
    async with client_for(sim) as client:
        stream = client.sessions(range_query())

        async def body() -> None:
            async with stream:
                async for _ in stream:
                    raise RuntimeError("caller failed")

        with pytest.raises(RuntimeError, match="caller failed"):
            await body()
        others = client_tasks()
        assert others == []


async def test_cancelling_the_pulling_task_cleans_up(sim: SimServer) -> None:
    sim.latency = 0.05
    got: list[CallSession] = []
    async with client_for(sim) as client:
        started = asyncio.Event()

        async def consume() -> None:
            async for s in client.sessions(range_query()):
                got.append(s)
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        others = client_tasks()
        assert others == []
