"""The bulk pull through a faulty server: each fault alone, all mixed with live inserts,
stalls, a per-token rate limit, a dead server, and servers that ignore the offset or the
range. Every record of the ground truth still comes once, or the pull fails clearly.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

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

from callsessions import PaginationError, RetryPolicy, ServerError, SessionQuery, WireNames
from callsessions.sim import FaultConfig, SimServer

FAULTS = {
    "429 with Retry-After": FaultConfig(rate_429=0.25, retry_after=2),
    "429 without Retry-After": FaultConfig(rate_429_bare=0.25),
    "500": FaultConfig(rate_500=0.25),
    "502": FaultConfig(rate_502=0.25),
    "503": FaultConfig(rate_503=0.25),
    "connection closed mid-body": FaultConfig(rate_disconnect=0.25),
    "truncated JSON with 200": FaultConfig(rate_truncated=0.25),
    "shuffled ties": FaultConfig(shuffle_ties=True),
}


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
async def test_each_fault_alone_still_delivers_every_record_once(faults: FaultConfig) -> None:
    async with SimServer(sim_config(faults=faults)) as server:
        query = range_query()
        expected = truth(server, query)
        async with client_for(server) as client:
            stream = client.sessions(query)
            ids = [s.id async for s in stream if s.id]
        assert_exactly_once(ids, expected)
        assert stream.summary.records == len(ids)
        if faults.shuffle_ties:
            return
        # The faults really happened and were retried.
        assert sum(server.stats.faults.values()) > 0
        assert stream.summary.retries == sum(server.stats.faults.values())


async def test_stalled_responses_time_out_and_are_retried() -> None:
    faults = FaultConfig(rate_stall=0.1, stall_seconds=2.0)
    async with SimServer(sim_config(records=2_000, faults=faults)) as server:
        query = range_query()
        async with client_for(server, timeout=0.3) as client:
            stream = client.sessions(query)
            ids = [s.id async for s in stream if s.id]
        assert_exactly_once(ids, truth(server, query))
        assert server.stats.faults["stall"] > 0
        assert stream.summary.retries >= server.stats.faults["stall"]


async def test_all_faults_mixed_with_live_inserts() -> None:
    faults = FaultConfig(
        rate_429=0.04,
        rate_429_bare=0.03,
        rate_500=0.04,
        rate_502=0.03,
        rate_503=0.03,
        rate_disconnect=0.04,
        rate_truncated=0.04,
        shuffle_ties=True,
        insert_every=4,
        insert_count=3,
    )
    async with SimServer(sim_config(records=8_000, faults=faults)) as server:
        query = range_query()
        before = set(truth(server, query))
        async with client_for(server) as client:
            stream = client.sessions(query)
            ids = [s.id async for s in stream if s.id]
        assert stream.summary.complete
        assert stream.summary.records == len(ids), "the summary counts what was delivered"
        assert len(ids) == len(set(ids)), "no id twice"
        assert before <= set(ids), f"{len(before - set(ids))} records that existed are missing"
        assert set(ids) <= set(truth(server, query)), "only records that match"


async def test_live_inserts_every_existing_record_once() -> None:
    faults = FaultConfig(insert_every=2, insert_count=5)
    async with SimServer(sim_config(records=6_000, faults=faults)) as server:
        query = range_query()
        before = set(truth(server, query))
        async with client_for(server) as client:
            stream = client.sessions(query)
            ids = [s.id async for s in stream if s.id]
        assert len(ids) == len(set(ids))
        assert before <= set(ids)
        inserted = len(truth(server, query)) - len(before)
        assert inserted > 0, "the simulator inserted records during the pull"
        assert stream.summary.complete


async def test_per_token_rate_limit_is_absorbed() -> None:
    ticks = itertools.count()

    def clock() -> float:  # each look at the clock is 20 ms later: no real waiting
        return 1_800_000_000.0 + next(ticks) * 0.02

    faults = FaultConfig(rate_limit=20, rate_limit_burst=3)
    async with SimServer(sim_config(records=3_000, faults=faults, clock=clock)) as server:
        query = range_query()
        # No real waiting here, so a request may meet the limit many times in a row: 429s
        # while the server serves use no attempts, so the default attempt count is enough.
        policy = RetryPolicy.no_wait()
        async with client_for(server, concurrency=8, retry=policy) as client:
            stream = client.sessions(query)
            ids = [s.id async for s in stream if s.id]
        assert_exactly_once(ids, truth(server, query))
        assert server.stats.statuses[429] > 0
        assert stream.summary.throttled == server.stats.statuses[429]
        assert stream.summary.lowest_concurrency < 8, "429s cut the concurrency"


async def test_a_dead_server_fails_the_pull_quickly() -> None:
    faults = FaultConfig(fail_first=100_000)
    async with SimServer(sim_config(records=20_000, faults=faults)) as server:
        policy = RetryPolicy.no_wait(budget=20)
        async with client_for(server, retry=policy) as client:
            with pytest.raises(ServerError):
                await pull_ids(client, range_query())
        assert server.stats.search_requests <= 20 + 4 * 6, "the retry budget stops it"


async def test_a_server_that_ignores_the_offset_is_caught(sim: SimServer) -> None:
    # A wrong wire name for the offset: the server ignores it and sends page 1 again.
    wire = WireNames(offset="skip")
    async with client_for(sim, wire_names=wire) as client:
        with pytest.raises(PaginationError, match="ignores the offset"):
            await pull_ids(client, range_query())


async def test_a_server_that_ignores_the_range_is_caught_while_planning() -> None:
    # Wrong names for from/to: the simulator ignores them and counts everything, for the
    # whole range and for each of its parts alike.
    async with SimServer(sim_config(records=6_000)) as server:
        wire = WireNames(start="since", end="until")
        async with client_for(server, wire_names=wire) as client:
            with pytest.raises(PaginationError, match="ignores the range"):
                await client.plan(range_query())
        assert server.stats.search_requests <= 1 + 32, "it stopped after counting"


async def test_a_server_that_ignores_the_range_is_caught_on_the_first_page() -> None:
    # Few enough records for one window: nothing to compare while planning, but the first
    # page holds calls from outside the window.
    async with SimServer(sim_config(records=1_500)) as server:
        wire = WireNames(start="since", end="until")
        narrow = SessionQuery(start=START + timedelta(days=1), end=START + timedelta(days=2))
        async with client_for(server, wire_names=wire) as client:
            with pytest.raises(PaginationError, match="came back for the window"):
                await pull_ids(client, narrow)
            with pytest.raises(PaginationError, match="came back for the window"):
                async for _ in client.sessions(narrow, raw=True):
                    pass
