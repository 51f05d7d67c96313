"""The planner and the limiter, as pure logic (no server, mostly no event loop)."""

from __future__ import annotations

import asyncio
import itertools
import math
from datetime import datetime, timedelta

import pytest
from _ratelimit_support import crowd, succeed
from hypothesis import given, settings
from hypothesis import strategies as st

from callsessions import InvalidQueryError, PullPlan, PullSettings, SessionQuery, Window
from callsessions.http.limiter import AdaptiveLimiter
from callsessions.http.retry import RetryBudget, RetryPolicy
from callsessions.protocol.planning import (
    bucket_count,
    layout_windows,
    page_offsets,
    split_times,
    split_window,
)

T0 = datetime.fromisoformat("2026-03-01T00:00:00+00:00")

settings_strategy = st.builds(
    PullSettings,
    page_size=st.integers(1, 1000),
    offset_ceiling=st.integers(1000, 20_000),
    fill=st.floats(0.1, 1.0),
)


@given(
    count=st.integers(0, 50_000),
    page_size=st.integers(1, 1000),
    ceiling=st.integers(1, 20_000),
)
def test_page_offsets_cover_the_window_below_the_ceiling(
    count: int, page_size: int, ceiling: int
) -> None:
    pages = page_offsets(count, page_size, max(ceiling, page_size))
    ceiling = max(ceiling, page_size)
    covered = sum(limit for _, limit in pages)
    assert covered >= min(count, ceiling)
    for offset, limit in pages:
        assert offset + limit <= ceiling
        assert 1 <= limit <= page_size
    offsets = [o for o, _ in pages]
    assert offsets == sorted(set(offsets))
    if pages:
        assert offsets[0] == 0


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 60_000), min_size=1, max_size=32),
    seconds=st.integers(32, 30 * 86_400),
    plan_settings=settings_strategy,
)
def test_layout_covers_the_range_and_keeps_every_record(
    counts: list[int], seconds: int, plan_settings: PullSettings
) -> None:
    points = split_times(T0, T0 + timedelta(seconds=seconds), len(counts), timedelta(seconds=1))
    buckets = [
        Window(a, b, count=c) for (a, b), c in zip(itertools.pairwise(points), counts, strict=False)
    ]
    windows = layout_windows(buckets, plan_settings)
    # Contiguous, ordered, and covering exactly the buckets' range.
    assert windows[0].start == buckets[0].start
    assert windows[-1].end == buckets[-1].end
    for a, b in itertools.pairwise(windows):
        assert a.end == b.start
        assert a.start < a.end
    # No record is lost or invented by the estimates.
    assert sum(w.count or 0 for w in windows) == sum(b.count or 0 for b in buckets)
    # Windows that could be cut are planned under the target (or hold one bucket's share).
    for w in windows:
        if w.length > timedelta(seconds=math.ceil((w.count or 0) / plan_settings.target) + 1):
            assert (w.count or 0) <= plan_settings.target


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 200_000),
    seconds=st.integers(1, 10 * 86_400),
    plan_settings=settings_strategy,
)
def test_split_window_is_contiguous_and_sums(
    count: int, seconds: int, plan_settings: PullSettings
) -> None:
    window = Window(T0, T0 + timedelta(seconds=seconds))
    parts = split_window(window, count, plan_settings)
    assert parts[0].start == window.start
    assert parts[-1].end == window.end
    for a, b in itertools.pairwise(parts):
        assert a.end == b.start
    if len(parts) > 1:
        assert sum(p.count or 0 for p in parts) == count
        # Cuts fall on whole seconds.
        assert all(p.start.microsecond == 0 for p in parts[1:])
    else:
        assert seconds == 1 or count <= plan_settings.target


def test_a_one_second_window_cannot_be_split() -> None:
    w = Window(T0, T0 + timedelta(seconds=1))
    assert split_window(w, 1_000_000, PullSettings()) == [w]


@given(total=st.integers(0, 10_000_000), plan_settings=settings_strategy)
def test_bucket_count_is_bounded(total: int, plan_settings: PullSettings) -> None:
    n = bucket_count(total, plan_settings)
    assert 4 <= n <= plan_settings.max_buckets or plan_settings.max_buckets < 4


def test_planning_cost_for_a_million_records_stays_under_five_percent() -> None:
    s = PullSettings()
    buckets = bucket_count(1_000_000, s)
    assert (1 + buckets) / (1_000_000 / s.page_size) <= 0.05


def test_plan_json_round_trip_and_parts() -> None:
    query = SessionQuery(start=T0, end=T0 + timedelta(days=1), statuses=["ANSWERED"])
    windows = tuple(
        Window(T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1), count=h) for h in range(24)
    )
    plan = PullPlan(query=query, windows=windows, planning_requests=5)
    again = PullPlan.from_json(plan.to_json())
    assert again == plan
    assert [w.count for w in again.windows] == list(range(24))
    parts = [plan.part(i, 5).windows for i in range(5)]
    assert sorted(w for p in parts for w in p) == sorted(windows)
    with pytest.raises(InvalidQueryError, match="index"):
        plan.part(5, 5)
    with pytest.raises(InvalidQueryError, match="not a callsessions plan"):
        PullPlan.from_json(b'{"version": 99}')


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 500, "offset_ceiling": 100}, "offset_ceiling"),
        ({"fill": 0.0}, "fill"),
        ({"resolution": timedelta(0)}, "resolution"),
    ],
)
def test_pull_settings_validate(changes: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidQueryError) as info:
        PullSettings(**changes)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


async def test_limiter_halves_on_throttle_and_grows_back() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.on_throttle()
    assert limiter.limit == 4
    limiter.on_throttle()
    limiter.on_throttle()
    limiter.on_throttle()
    assert limiter.limit == 1 and limiter.lowest == 1
    waiting = await crowd(limiter, 200)  # requests held back: the limit is in use
    await succeed(limiter)
    assert limiter.limit == 2
    for _ in range(100):
        await succeed(limiter)
    assert limiter.limit == 8, "never above the bound"
    for task in waiting:
        task.cancel()


async def test_limiter_bounds_requests_in_flight_in_order() -> None:
    limiter = AdaptiveLimiter(2)
    order: list[int] = []
    peak = 0
    gate = asyncio.Event()

    async def job(i: int) -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            order.append(i)
            await gate.wait()

    tasks = [asyncio.create_task(job(i)) for i in range(6)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert limiter.in_flight == 2 and order == [0, 1]
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 2
    assert order == list(range(6)), "first come, first served"
    assert limiter.in_flight == 0


async def test_limiter_cancelled_waiter_gives_back_nothing_it_did_not_take() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release()
    assert limiter.in_flight == 0
    await limiter.acquire()
    assert limiter.in_flight == 1


def test_retry_budget_spends_and_refills() -> None:
    budget = RetryBudget(tokens=2, refill=0.5)
    assert budget.try_spend() and budget.try_spend()
    assert not budget.try_spend()
    budget.on_success()
    assert not budget.try_spend()
    budget.on_success()
    assert budget.try_spend()
    for _ in range(100):
        budget.on_success()
    assert budget.tokens == 2, "never above its capacity"


def test_no_wait_policy_never_waits() -> None:
    policy = RetryPolicy.no_wait()
    assert all(policy.wait_for(n, None) == 0 for n in range(1, 10))


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=5.0, jitter=0.0)
    assert [policy.wait_for(n, None) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_a_throttle_pauses_new_requests_for_its_wait() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # a clock moved by hand: no real waiting
        slept.append(seconds)
        now[0] += seconds

    limiter = AdaptiveLimiter(4, sleep=sleep, clock=lambda: now[0])
    limiter.on_throttle(2.5)
    assert limiter.limit == 2
    async with limiter.slot():
        pass
    assert slept == [2.5], "the next request waited out the server's Retry-After"
    limiter.on_throttle(0.0)
    async with limiter.slot():
        pass
    assert slept == [2.5], "no wait asked, none taken"
