"""The bulk pull, proven against the simulator: every record of the ground truth, once.

Each test compares the exact set of ids the client delivered with the simulator's own
answer for the same range, and checks that no id came twice.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest

from callsessions import (
    CallSession,
    CallSessionsClient,
    Checkpoint,
    IncompletePullError,
    InvalidQueryError,
    MockTransport,
    Page,
    PaginationError,
    PullPlan,
    PullSettings,
    PullSummary,
    RetryPolicy,
    ServerError,
    SessionQuery,
    Window,
    WireNames,
)
from callsessions.http.retry import RetryBudget
from callsessions.protocol.wire import looks_complete, peek_count
from callsessions.pull.engine import PullEngine, RequestContext
from callsessions.sim import FaultConfig, SimConfig, SimServer

START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def sim_config(records: int = 6_000, **changes: Any) -> SimConfig:
    return SimConfig(records=records, seed=7, start=START, span=timedelta(days=3), **changes)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
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


async def test_resume_from_checkpoint_delivers_the_rest(sim: SimServer, tmp_path: Any) -> None:
    query = range_query()
    path = tmp_path / "pull.checkpoint"
    async with client_for(sim) as client:
        plan = await client.plan(query)
        assert len(plan.windows) >= 3
        checkpoint = Checkpoint.open(path, plan)
        first_run: list[str] = []
        stream = client.pages(plan, checkpoint=checkpoint)
        async with stream:
            async for page in stream:
                first_run.extend(s.id for s in page.items if s.id)
                if page.final and page.window == 1:
                    # Interrupted here: window 1 was handed over but not yet acknowledged.
                    break
        assert sorted(Checkpoint.open(path).done) == [0]

        resumed = Checkpoint.open(path, plan)
        second_run = await pull_ids_with(client, plan, resumed)
    expected = truth(sim, query)
    assert set(first_run) | set(second_run) == set(expected)
    assert len(second_run) == len(set(second_run))
    window0 = {i for i in expected if i in set(first_run)} - set(second_run)
    assert window0, "finished windows were not pulled again"
    overlap = set(first_run) & set(second_run)
    assert len(overlap) <= (plan.windows[1].count or 0) + 10, "only the unacknowledged window again"
    assert sorted(Checkpoint.open(path).done) == list(range(len(plan.windows)))


async def pull_ids_with(
    client: CallSessionsClient, plan: PullPlan, checkpoint: Checkpoint
) -> list[str]:
    return [s.id async for s in client.sessions(plan, checkpoint=checkpoint) if s.id]


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


async def test_a_server_that_ignores_the_offset_is_caught(sim: SimServer) -> None:
    # A wrong wire name for the offset: the server ignores it and sends page 1 again.
    wire = WireNames(offset="skip")
    async with client_for(sim, wire_names=wire) as client:
        with pytest.raises(PaginationError, match="ignores the offset"):
            await pull_ids(client, range_query())


async def test_a_dead_server_fails_the_pull_quickly() -> None:
    faults = FaultConfig(fail_first=100_000)
    async with SimServer(sim_config(records=20_000, faults=faults)) as server:
        policy = RetryPolicy.no_wait(budget=20)
        async with client_for(server, retry=policy) as client:
            with pytest.raises(ServerError):
                await pull_ids(client, range_query())
        assert server.stats.search_requests <= 20 + 4 * 6, "the retry budget stops it"


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


Checker = Callable[[list[str]], None]


async def test_a_window_that_stays_short_is_reported_and_not_checkpointed(tmp_path: Any) -> None:
    """A server whose count promises two records it never serves: the window is walked
    again, sliced, then reported; the pull raises at the end, after delivering the rest,
    and the checkpoint does not mark the short window as done."""
    t0 = START
    stamps = {f"a{i}": t0 + timedelta(minutes=i) for i in range(10)}
    stamps |= {f"b{i}": t0 + timedelta(days=1, minutes=i) for i in range(3)}
    windows = (
        Window(t0, t0 + timedelta(days=1)),
        Window(t0 + timedelta(days=1), t0 + timedelta(days=2)),
    )

    async def fetch(window: Window, offset: int, limit: int) -> Page[dict[str, Any]]:
        inside = [
            k
            for k, t in sorted(stamps.items(), key=lambda kv: kv[1])
            if window.start <= t < window.end
        ]
        phantom = 2 if window.start < t0 + timedelta(days=1) else 0
        items = [{"id": k} for k in inside[offset : offset + limit]]
        return Page(items=items, count=len(inside) + phantom, offset=offset, limit=limit)

    plan = PullPlan(
        query=SessionQuery(start=t0, end=t0 + timedelta(days=2)),
        windows=windows,
        settings=PullSettings(page_size=4, offset_ceiling=40),
    )
    checkpoint = Checkpoint.open(tmp_path / "cp", plan)
    summary = PullSummary()
    ctx = RequestContext(summary=summary, budget=RetryBudget(tokens=10))
    engine: PullEngine[dict[str, Any]] = PullEngine(
        plan, fetch, lambda r: r["id"], ctx, concurrency=2, max_rewalks=2, checkpoint=checkpoint
    )
    got: list[str] = []

    async def consume() -> None:
        async for page in engine.pages():
            got.extend(r["id"] for r in page.items)

    with pytest.raises(IncompletePullError, match="1 window") as info:
        await consume()
    assert sorted(got) == sorted(stamps), "everything that exists was delivered, once"
    assert len(got) == len(set(got))
    (problem,) = info.value.problems
    assert (problem.expected, problem.gathered) == (12, 10)
    assert summary.rewalks >= 2
    assert Checkpoint.open(tmp_path / "cp").done == {1: 3}, "only the complete window is done"


async def test_a_damaged_checkpoint_is_a_clear_error(tmp_path: Any) -> None:
    path = tmp_path / "cp"
    path.write_bytes(b'{"plan": {"version": 1}')
    with pytest.raises(InvalidQueryError, match="damaged"):
        Checkpoint.open(path)


@pytest.mark.parametrize("ceiling", [20, 40])
@pytest.mark.parametrize("estimate", [0, 3, 10, 31, 500])
async def test_a_wrong_estimate_is_mended_by_the_pages_own_count(
    estimate: int, ceiling: int
) -> None:
    """Pages go out by the plan's estimate; the first page's count decides what is really
    read: missing pages are fetched at the window's end, surplus pages come back empty, an
    over-full window is split."""
    t0 = START
    stamps = {f"r{i:03}": t0 + timedelta(seconds=7 * i) for i in range(31)}
    calls: list[tuple[int, int]] = []

    async def fetch(window: Window, offset: int, limit: int) -> Page[dict[str, Any]]:
        calls.append((offset, limit))
        inside = sorted(k for k, t in stamps.items() if window.start <= t < window.end)
        items = [{"id": k} for k in inside[offset : offset + limit]]
        return Page(items=items, count=len(inside), offset=offset, limit=limit)

    window = Window(t0, t0 + timedelta(hours=1), count=estimate, estimated=True)
    plan = PullPlan(
        query=SessionQuery(start=t0, end=t0 + timedelta(hours=1)),
        windows=(window,),
        settings=PullSettings(page_size=4, offset_ceiling=ceiling),
    )
    ctx = RequestContext(summary=PullSummary(), budget=RetryBudget(tokens=10))
    engine: PullEngine[dict[str, Any]] = PullEngine(
        plan, fetch, lambda r: r["id"], ctx, concurrency=3
    )
    got = [r["id"] async for page in engine.pages() for r in page.items]
    assert got == sorted(stamps), "every record once, in order"
    assert ctx.summary.problems == []
    assert ctx.summary.records == 31
    assert all(offset + limit <= ceiling for offset, limit in calls), "never past the ceiling"
    if ceiling == 20:
        # 31 records do not fit under a ceiling of 20: the window is split (here more than
        # once, since all records sit in its first minutes), and the skipped requests are
        # counted as planning.
        assert ctx.summary.splits >= 1
        assert ctx.summary.planning_requests >= 1
    else:
        assert ctx.summary.splits == 0
        # Each offset read once at most, whatever the estimate said.
        assert len(calls) == len(set(calls))


@pytest.mark.parametrize(
    ("body", "count"),
    [
        (b'{"count":5798,"items":[]}', 5798),
        (b' {\n "count" : 12 , "items": []}', 12),
        (b'{"items":[],"count":3}', None),  # not first: no hint, the parse decides
        (b"[]", None),
        (b'{"count":"12"}', None),
        (b"", None),
    ],
)
def test_count_hint_is_read_only_from_the_head(body: bytes, count: int | None) -> None:
    assert peek_count(body) == count


@pytest.mark.parametrize(
    ("body", "complete"),
    [
        (b'{"count":1,"items":[{"id":"a"}]}', True),
        (b'[{"id":"a"}]\n', True),
        (b'{"count":1,"items":[{"id":"a"', False),
        (b"", False),
        (b"<html></html>", False),
    ],
)
def test_a_body_cut_short_is_noticed_before_parsing(body: bytes, complete: bool) -> None:
    assert looks_complete(body) is complete


@pytest.mark.parametrize("server_counts", [True, False], ids=["count", "bare-array"])
async def test_windows_without_a_planned_count(server_counts: bool) -> None:
    """A plan without counts (the server sent none when planning): the first page decides,
    or, for a server that never sends a count, the walk goes on until a short page."""
    t0 = START
    stamps = {f"r{i:03}": t0 + timedelta(seconds=i) for i in range(23)}
    calls: list[int] = []

    async def fetch(window: Window, offset: int, limit: int) -> Page[dict[str, Any]]:
        calls.append(offset)
        inside = sorted(k for k, t in stamps.items() if window.start <= t < window.end)
        items = [{"id": k} for k in inside[offset : offset + limit]]
        count = len(inside) if server_counts else None
        return Page(items=items, count=count, offset=offset, limit=limit)

    plan = PullPlan(
        query=SessionQuery(start=t0, end=t0 + timedelta(minutes=1)),
        windows=(Window(t0, t0 + timedelta(minutes=1)),),
        settings=PullSettings(page_size=5, offset_ceiling=100),
    )
    ctx = RequestContext(summary=PullSummary(), budget=RetryBudget(tokens=10))
    engine: PullEngine[dict[str, Any]] = PullEngine(
        plan, fetch, lambda r: r["id"], ctx, concurrency=2
    )
    got = [r["id"] async for page in engine.pages() for r in page.items]
    assert got == sorted(stamps)
    assert sorted(calls) == [0, 5, 10, 15, 20]
    assert ctx.summary.records == 23


@pytest.mark.parametrize(("dedupe", "expected_twice"), [("window", 1), ("pull", 0)])
async def test_a_call_that_moves_between_windows(dedupe: str, expected_twice: int) -> None:
    """With a mutable date column (updatedAt), a call updated while pulling shows up in a
    later window too: per-window de-duplication delivers it twice, dedupe="pull" once."""
    t0 = START
    first = {f"a{i}": t0 + timedelta(minutes=i) for i in range(5)}
    second = {f"b{i}": t0 + timedelta(hours=2, minutes=i) for i in range(5)} | {
        "a2": t0 + timedelta(hours=2, minutes=30)  # updated while pulling: now in window 2
    }

    async def fetch(window: Window, offset: int, limit: int) -> Page[dict[str, Any]]:
        stamps = first if window.start == t0 else second
        inside = sorted(k for k, t in stamps.items() if window.start <= t < window.end)
        return Page(
            items=[{"id": k} for k in inside[offset : offset + limit]],
            count=len(inside),
            offset=offset,
            limit=limit,
        )

    plan = PullPlan(
        query=SessionQuery(start=t0, end=t0 + timedelta(hours=4), date_field="updatedAt"),
        windows=(
            Window(t0, t0 + timedelta(hours=1), count=5),
            Window(t0 + timedelta(hours=1), t0 + timedelta(hours=4), count=6),
        ),
        settings=PullSettings(page_size=3, offset_ceiling=30),
    )
    ctx = RequestContext(summary=PullSummary(), budget=RetryBudget(tokens=10))
    engine: PullEngine[dict[str, Any]] = PullEngine(
        plan,
        fetch,
        lambda r: r["id"],
        ctx,
        concurrency=2,
        delivered=set() if dedupe == "pull" else None,
    )
    got = [r["id"] async for page in engine.pages() for r in page.items]
    assert got.count("a2") == 1 + expected_twice
    assert set(got) == set(first) | set(second)
    assert ctx.summary.problems == []


def _unused(_request: Any, _authorization: Any) -> Any:
    raise AssertionError("no request expected")


async def test_dedupe_option_is_checked() -> None:
    async with CallSessionsClient(
        "https://api.test", token="t", transport=MockTransport(_unused)
    ) as client:
        with pytest.raises(InvalidQueryError, match="dedupe"):
            await client.sessions(range_query(), dedupe="all").__anext__()  # type: ignore[arg-type,call-overload]


async def test_resume_from_a_query_uses_the_checkpoint_plan(sim: SimServer, tmp_path: Any) -> None:
    query = range_query()
    async with client_for(sim) as client:
        plan = await client.plan(query)
        checkpoint = Checkpoint.open(tmp_path / "cp", plan)
        checkpoint.mark_done(0, plan.windows[0].count or 0)
        before = sim.stats.search_requests
        ids = [s.id async for s in client.sessions(query, checkpoint=checkpoint) if s.id]
        first_window = set(truth(sim, attrs.evolve(query, end=plan.windows[0].end)))
        assert set(ids) == set(truth(sim, query)) - first_window
        planning = [r for r in list(sim.stats.log)[before:] if r.params.get("limit") == "1"]
        assert planning == [], "no planning again when resuming"
        other = range_query(statuses=["BUSY"])
        with pytest.raises(InvalidQueryError, match="another query"):
            await client.sessions(other, checkpoint=checkpoint).__anext__()


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
