"""The bulk pull, proven against the simulator: every record of the ground truth, once.

Each test compares the exact set of ids the client delivered with the simulator's own
answer for the same range, and checks that no id came twice. Here: plain and filtered
pulls, planning and splitting windows, raw mode, plans shared by workers. Faults, clean-up,
resuming and the engine alone are in ``test_pull_faults``, ``test_pull_cleanup``,
``test_pull_resume`` and ``test_pull_engine``.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

import attrs
import pytest
from _pull_support import (
    START,
    assert_exactly_once,
    client_for,
    pull_ids,
    range_query,
    sim_config,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
)

from callsessions import IncompletePullError, PullPlan, SessionQuery
from callsessions.sim import SimServer


async def test_plain_multi_day_pull_is_exact_and_ordered(sim: SimServer) -> None:
    query = range_query()
    async with client_for(sim) as client:
        stream = client.sessions(query)
        records = [s async for s in stream]
    ids = [r.id for r in records if r.id is not None]
    assert len(ids) == len(records) == 6_000
    assert_exactly_once(ids, truth(sim, query))
    created = [r.created_at for r in records]
    assert all(isinstance(c, datetime) for c in created)
    assert created == sorted(created), "records must come out in date order"  # type: ignore[type-var]
    summary = stream.summary
    assert summary.records == 6_000
    assert summary.windows >= 3, "6,000 records under a 2,000 ceiling need several windows"
    assert summary.complete and summary.problems == []
    assert summary.requests == sim.stats.search_requests


async def test_filters_are_pulled_exactly(sim: SimServer) -> None:
    query = range_query(statuses=["ANSWERED", "BUSY"], fields=["status", "phone"])
    async with client_for(sim) as client:
        records = [s async for s in client.sessions(query)]
    assert {r.status for r in records} <= {"ANSWERED", "BUSY"}
    assert all(r.id is not None for r in records), "id is added to the fields"
    assert_exactly_once([r.id for r in records if r.id], truth(sim, query))


async def test_window_over_the_ceiling_is_split_not_truncated() -> None:
    async with SimServer(sim_config(records=12_000)) as server:
        query = range_query()
        # A plan made with a roomy ceiling, pulled by a client that knows the real, low one:
        # every planned window overflows and must be split at pull time.
        async with client_for(server, offset_ceiling=10_000) as planner:
            plan = await planner.plan(query)
        low = attrs.evolve(plan, settings=attrs.evolve(plan.settings, offset_ceiling=1_000))
        async with client_for(server, offset_ceiling=1_000) as client:
            stream = client.sessions(low)
            ids = [s.id async for s in stream if s.id]
        assert_exactly_once(ids, truth(server, query))
        assert stream.summary.splits >= 1
        assert server.stats.statuses[400] == 0, "never asked past the ceiling"


async def test_unsplittable_overflow_is_reported() -> None:
    async with SimServer(sim_config(records=100)) as server:
        burst = START + timedelta(hours=5, seconds=7)
        server.insert(created=[burst] * 300)
        query = SessionQuery(start=burst, end=burst + timedelta(seconds=1))
        async with client_for(server, page_size=100, offset_ceiling=200) as client:
            with pytest.raises(IncompletePullError, match="too short to split") as info:
                await pull_ids(client, query)
        assert info.value.problems and info.value.problems[0].expected == 300


async def test_planning_cost_is_small_for_a_large_range() -> None:
    async with SimServer(sim_config(records=60_000)) as server:
        async with client_for(server, page_size=500, offset_ceiling=5_000) as client:
            plan = await client.plan(range_query())
        assert plan.estimated_total == 60_000
        page_requests = 60_000 // 500
        assert plan.planning_requests <= 0.15 * page_requests
        assert all(w.count is not None and w.count <= 5_000 for w in plan.windows)
        starts = [w.start for w in plan.windows]
        assert starts == sorted(starts)
        for a, b in itertools.pairwise(plan.windows):
            assert a.end == b.start, "windows are contiguous"


async def test_prefetch_at_concurrency_one(sim: SimServer) -> None:
    async with client_for(sim, concurrency=1) as client:
        stream = client.pages(range_query())
        async with stream:
            first = await stream.__anext__()
            assert first.items
            sent_then = sim.stats.search_requests
            # The caller is busy; the next pages go out meanwhile.
            for _ in range(50):
                await asyncio.sleep(0.005)
                if sim.stats.search_requests > sent_then:
                    break
            assert sim.stats.search_requests > sent_then


async def test_raw_mode_yields_wire_dicts(sim: SimServer) -> None:
    query = range_query(fields=["phone", "createdAt"])
    async with client_for(sim) as client:
        rows = [r async for r in client.sessions(query, raw=True)]
    assert all(isinstance(r, dict) and set(r) == {"id", "phone", "createdAt"} for r in rows)
    assert_exactly_once([r["id"] for r in rows], truth(sim, query))


async def test_plan_survives_json_and_splits_across_workers(sim: SimServer) -> None:
    query = range_query()
    async with client_for(sim) as client:
        plan = await client.plan(query)
    wire = plan.to_json()
    restored = PullPlan.from_json(wire)
    assert restored == plan

    async def worker(i: int, n: int) -> list[str]:
        async with client_for(sim) as own:
            return await pull_ids(own, PullPlan.from_json(wire).part(i, n))

    parts = await asyncio.gather(*(worker(i, 3) for i in range(3)))
    everything = [i for part in parts for i in part]
    assert_exactly_once(everything, truth(sim, query))


async def test_range_left_open_is_found(sim: SimServer) -> None:
    async with client_for(sim) as client:
        plan = await client.plan(SessionQuery())
        ids = await pull_ids(client, plan)
    assert_exactly_once(ids, sim.matching_ids({}))


async def test_summary_line_reads_well(sim: SimServer) -> None:
    async with client_for(sim) as client:
        stream = client.sessions(range_query())
        _ = [s async for s in stream]
    line = stream.summary.line()
    assert line.startswith("6000 records in ")
    assert "requests" in line and "records/s" in line
