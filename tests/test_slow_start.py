"""The slow start of a pull's concurrency (issue 11): a pull begins with one request in
flight and doubles every round trip until its bound or the first 429, so that a server's
unknown rate limit is met by a few requests rather than by the whole concurrency at once.

The closed loop runs on the virtual-time loop of ``test_ratelimit`` (nothing sleeps for
real): requesters hold a concurrency slot of :class:`AdaptiveLimiter` around each request
to a fake token-bucket server, paced by :class:`AdaptiveRateLimiter`, as the pipeline does.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from _ratelimit_support import crowd, succeed
from test_ratelimit import FakeServer, Run, run_virtual

from callsessions import ClientConfig, InvalidQueryError
from callsessions.http.config import INITIAL_CONCURRENCY
from callsessions.http.limiter import AdaptiveLimiter
from callsessions.http.ratelimit import AdaptiveRateLimiter


async def test_the_limit_grows_by_one_a_success_until_the_bound() -> None:
    limiter = AdaptiveLimiter(8, initial=1)
    assert limiter.limit == 1 and limiter.ramping
    tasks = await crowd(limiter, 40)
    seen = []
    for _ in range(10):
        await succeed(limiter)
        seen.append((limiter.limit, limiter.in_flight))
    assert seen == [(n, n) for n in (2, 3, 4, 5, 6, 7, 8, 8, 8, 8)]
    assert not limiter.ramping
    assert limiter.lowest == 8, "a slow start is not a cut"
    for task in tasks:
        task.cancel()


async def test_a_throttle_ends_the_slow_start() -> None:
    limiter = AdaptiveLimiter(16, initial=1)
    tasks = await crowd(limiter, 40)
    for _ in range(5):
        await succeed(limiter)
    assert limiter.limit == 6
    limiter.on_throttle()
    assert limiter.limit == 3 and not limiter.ramping
    for _ in range(3):  # three requests in flight end: the next ones are still held back
        limiter.release()
    await asyncio.sleep(0)
    for _ in range(2):
        await succeed(limiter)
    assert limiter.limit == 3, "after it, one more only after `limit` successes in a row"
    await succeed(limiter)
    assert limiter.limit == 4
    for task in tasks:
        task.cancel()


async def test_the_limit_grows_only_while_it_holds_requests_back() -> None:
    """As TCP's window (RFC 7661): five requests at once under a limit of 8 (a pull's
    planning: its first page and four counts) do not raise it; 16 pages after them do,
    one place a success, so the limit doubles in one round trip."""
    limiter = AdaptiveLimiter(16, initial=8)
    planning = await crowd(limiter, 5)
    assert limiter.in_flight == 5
    for _ in range(5):
        await succeed(limiter)
    assert (limiter.limit, limiter.in_flight) == (8, 0) and limiter.ramping
    pages = await crowd(limiter, 40)
    assert limiter.in_flight == 8, "the first wave is the initial window"
    for _ in range(8):
        await succeed(limiter)
    assert (limiter.limit, limiter.in_flight) == (16, 16)
    assert not limiter.ramping
    for task in [*planning, *pages]:
        task.cancel()


async def test_after_a_cut_a_window_not_in_use_does_not_grow() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.on_throttle()
    assert limiter.limit == 4
    for _ in range(12):  # one request at a time: never more than one place in use
        await limiter.acquire()
        await succeed(limiter)
    assert limiter.limit == 4
    tasks = await crowd(limiter, 20)
    for _ in range(4):
        await succeed(limiter)
    assert limiter.limit == 5
    for task in tasks:
        task.cancel()


def test_without_initial_it_starts_at_the_bound() -> None:
    limiter = AdaptiveLimiter(8)
    assert limiter.limit == 8 and not limiter.ramping
    assert AdaptiveLimiter(4, initial=10).limit == 4
    with pytest.raises(ValueError, match="initial"):
        AdaptiveLimiter(4, initial=0)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, 257])
def test_initial_concurrency_is_checked(value: object) -> None:
    with pytest.raises(InvalidQueryError) as info:
        ClientConfig(initial_concurrency=value)  # type: ignore[arg-type]
    assert info.value.parameter == "initial_concurrency"


def test_a_pull_starts_at_eight_in_flight_by_default() -> None:
    """TCP's initial window: at the default concurrency (8) nothing changes; above it the
    first wave is 8. A full slow start (1) costs a short pull at 100-200 ms 20-25 % of its
    time, so it is the CLI's ``--slow-start``, not the default."""
    assert ClientConfig().initial_concurrency == INITIAL_CONCURRENCY == 8
    assert ClientConfig().concurrency == INITIAL_CONCURRENCY
    assert ClientConfig(initial_concurrency=1).initial_concurrency == 1
    assert ClientConfig(initial_concurrency=None).initial_concurrency is None


async def _closed_loop(
    initial: int | None, requesters: int, rate: float | None, burst: float, seed: int
) -> tuple[Run, int]:
    """``requesters`` tasks pull until 200 requests were served; answers the run and the
    most requests ever in flight at once before the first 429."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    server = FakeServer(rate, burst)
    pacer = AdaptiveRateLimiter(rand=rng.random)
    slots = AdaptiveLimiter(requesters, initial=initial)
    run = Run()
    first_429: list[float] = []
    peak = 0

    async def requester() -> None:
        nonlocal peak
        while run.ok < 200:
            async with slots.slot():
                await pacer.acquire()
                sent = loop.time()
                if not first_429:
                    peak = max(peak, slots.in_flight)
                await asyncio.sleep(0.02 * rng.uniform(0.25, 0.75))
                retry_after = server.answer(loop.time())
                await asyncio.sleep(0.02 * rng.uniform(0.25, 0.75))
            if retry_after is None:
                run.ok += 1
                run.wall = loop.time()
                slots.on_success()
                await pacer.on_success()
            else:
                run.throttled += 1
                if not first_429 or sent < first_429[0]:
                    run.first_wave += 1
                    first_429[:1] = first_429[:1] or [loop.time()]
                slots.on_throttle()
                await pacer.on_throttle(retry_after)

    await asyncio.gather(*(requester() for _ in range(requesters)))
    return run, peak


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("rate", "burst"), [(2.0, 2.0), (5.0, 5.0)])
def test_the_first_wave_of_429s_is_small(rate: float, burst: float, seed: int) -> None:
    """16 requesters against a bucket of 2 or 5: all at once, the first 429 is met by about
    14 (or 11) refusals; with the slow start by 1-6."""
    at_once, _ = run_virtual(_closed_loop(None, 16, rate, burst, seed))
    slow, _ = run_virtual(_closed_loop(1, 16, rate, burst, seed))
    default, _ = run_virtual(_closed_loop(INITIAL_CONCURRENCY, 16, rate, burst, seed))
    assert at_once.first_wave >= 10
    assert slow.first_wave <= 6
    assert default.ok >= 200 and default.share <= 0.08, "the initial window overshoots less"
    assert slow.ok >= 200 and slow.share <= 0.05
    assert slow.ok / slow.wall >= 0.85 * rate, "the pace is still the server's"


def test_without_a_limit_the_slow_start_reaches_the_bound_and_costs_little() -> None:
    at_once, peak_at_once = run_virtual(_closed_loop(None, 16, None, 0.0, 0))
    slow, peak_slow = run_virtual(_closed_loop(1, 16, None, 0.0, 0))
    default, peak_default = run_virtual(_closed_loop(INITIAL_CONCURRENCY, 16, None, 0.0, 0))
    assert at_once.throttled == slow.throttled == default.throttled == 0
    assert peak_at_once == peak_slow == peak_default == 16
    # 200 requests at 16 in flight are ~13 round trips; the slow start adds about 3, the
    # initial window of 8 at most one
    assert slow.wall <= at_once.wall * 1.35
    assert default.wall <= at_once.wall * 14 / 13


@pytest.mark.parametrize(("argv", "initial"), [([], 8), (["--slow-start"], 1)])
def test_the_command_line_slow_start(argv: list[str], initial: int | None) -> None:
    from callsessions.cli.options import config_from
    from callsessions.cli.parser import build_parser

    dates = ["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"]
    ns = build_parser().parse_args(["pull", "--out", "x.jsonl", *dates, *argv])
    assert config_from(ns).initial_concurrency == initial
