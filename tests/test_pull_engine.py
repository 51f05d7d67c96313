"""The pull engine alone, on hand-made ``fetch`` functions: windows that stay short, wrong or
missing estimates, calls that move between windows, the dedupe option; and the wire peeks
(the count hint, a body cut short) that the engine relies on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from _pull_support import START, range_query

from callsessions import (
    CallSessionsClient,
    Checkpoint,
    IncompletePullError,
    InvalidQueryError,
    MockTransport,
    Page,
    PullPlan,
    PullSettings,
    PullSummary,
    SessionQuery,
    Window,
)
from callsessions.http.retry import RetryBudget
from callsessions.protocol.wire import looks_complete, peek_count
from callsessions.pull.engine import PullEngine, RequestContext


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
