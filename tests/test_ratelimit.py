"""The adaptive rate limiter: pure arithmetic on plain numbers, the async limiter on virtual
time, and a closed loop against a fake server with a strict token bucket.

Nothing here sleeps for real. Async tests run on :class:`VirtualTimeLoop`, an asyncio loop
whose clock jumps to the next timer whenever every task is waiting, so ``asyncio.sleep(1)``
takes no time and the limiter's defaults (the loop's clock and ``asyncio.sleep``) are the
virtual ones; a few single-task tests inject a fake ``clock`` and ``sleep`` instead.
"""

from __future__ import annotations

import asyncio
import math
import random
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from attrs import define, field
from hypothesis import given, settings
from hypothesis import strategies as st

from callsessions.http.ratelimit import (
    AdaptiveRateLimiter,
    CubicCalculator,
    RateAdapter,
    RateLimiter,
    RateMeter,
    TokenBucket,
)

T = TypeVar("T")


# -- virtual time ------------------------------------------------------------------------------


class _VirtualSelector(selectors.DefaultSelector):
    """Never blocks: when the loop would wait ``timeout`` seconds, time jumps instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        events: list[Any] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError("virtual time: every task waits and no timer is set (deadlock)")
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return float(self._virtual.now)


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# -- TokenBucket -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "capacity", "tokens", "now", "wait"),
    [
        (2.0, 1.0, None, 0.0, 0.0),  # full: go
        (2.0, 1.0, 0.0, 0.0, 0.5),  # empty: one interval
        (2.0, 1.0, 0.0, 0.25, 0.25),  # half refilled
        (2.0, 1.0, 0.0, 0.5, 0.0),
        (10.0, 3.0, 0.0, 0.05, 0.05),
        (0.5, 1.0, 0.5, 0.0, 1.0),  # the floor rate: 2 s an interval
    ],
)
def test_bucket_wait(
    rate: float, capacity: float, tokens: float | None, now: float, wait: float
) -> None:
    bucket = TokenBucket(rate, capacity, now=0.0, tokens=tokens)
    assert bucket.wait_time(now) == pytest.approx(wait)
    assert bucket.try_take(now) == pytest.approx(wait)
    if wait == 0.0:  # the token was taken: the next one is a whole interval away at most
        assert 0.0 < bucket.wait_time(now) <= 1.0 / rate + 1e-12 or bucket.tokens(now) >= 1


def test_bucket_caps_refill_and_keeps_tokens_across_rate_changes() -> None:
    bucket = TokenBucket(10.0, 3.0, now=0.0, tokens=0.0)
    assert bucket.tokens(100.0) == 3.0  # never more than capacity
    slow = TokenBucket(1.0, 1.0, now=0.0, tokens=0.0)
    slow.set_rate(4.0, 0.5)  # 0.5 token earned at 1/s, the rest at 4/s
    assert slow.wait_time(0.5) == pytest.approx(0.125)


def test_bucket_reset_to_the_end_of_a_pause_holds_one_token_from_then() -> None:
    bucket = TokenBucket(5.0, 10.0, now=0.0)
    bucket.reset(10.0, tokens=1.0)
    assert bucket.try_take(9.0) == pytest.approx(1.0)  # not before the pause ends
    assert bucket.try_take(10.0) == 0.0
    assert bucket.try_take(10.0) == pytest.approx(0.2)  # then one interval, no burst
    assert bucket.tokens(10.0) == 0.0


@pytest.mark.parametrize(("rate", "capacity"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_bucket_rejects_bad_settings(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match=r"rate|capacity"):
        TokenBucket(rate, capacity)


# -- RateMeter ---------------------------------------------------------------------------------


def _feed(meter: RateMeter, rate: float, start: float, end: float) -> float:
    t = start
    while t < end - 1e-9:
        meter.record(t)
        t += 1.0 / rate
    return t


def test_meter_counts_successes_per_second() -> None:
    meter = RateMeter()
    assert meter.rate_at(0.0) == 0.0
    _feed(meter, 4.0, 0.0, 10.0)
    assert meter.rate_at(10.0) == pytest.approx(4.0, rel=0.05)


def test_meter_warmup_reads_a_burst_over_one_second() -> None:
    meter = RateMeter(warmup=1.0)
    for i in range(10):
        meter.record(i * 0.005)  # ten answers in 50 ms: the server's burst
    assert meter.rate_at(0.05) == pytest.approx(10.0)  # not 200/s


def test_meter_leaves_pauses_out_and_counts_idle_gaps() -> None:
    paused, plain = RateMeter(), RateMeter()
    for meter in (paused, plain):
        _feed(meter, 4.0, 0.0, 5.0)
    paused.pause(5.0, 6.0)
    for meter in (paused, plain):
        _feed(meter, 4.0, 6.0, 7.0)
    assert paused.rate_at(7.0) == pytest.approx(4.0, rel=0.05)
    # the second without sending reads as a slow bucket
    assert plain.rate_at(7.0) < 0.92 * paused.rate_at(7.0)
    idle = RateMeter()
    _feed(idle, 4.0, 0.0, 5.0)
    assert idle.rate_at(10.0) < 1.0


# -- CubicCalculator ---------------------------------------------------------------------------


def test_cubic_cut_recovery_and_probe() -> None:
    cubic = CubicCalculator(0.0, 0.0)
    assert cubic.cut(10.0, 0.0) == pytest.approx(7.0)
    recovery = cubic.k * cubic.period
    assert recovery == pytest.approx(5.45, abs=0.01)
    table = [(0.0, 7.0), (recovery, 10.0), (recovery + 12.6, 11.0), (recovery + 27.1, 20.0)]
    for t, rate in table:
        assert cubic.rate_at(t) == pytest.approx(rate, rel=0.01)
    rates = [cubic.rate_at(t / 4) for t in range(200)]
    assert rates == sorted(rates)  # regrowth never dips


def test_cubic_waits_for_the_pause_and_is_scale_free() -> None:
    cubic = CubicCalculator(0.0, 0.0)
    cubic.cut(10.0, 0.0, resume_at=5.0)
    assert cubic.rate_at(3.0) == cubic.rate_at(5.0) == pytest.approx(7.0)
    small, large = CubicCalculator(2.0, 0.0), CubicCalculator(200.0, 0.0)
    for t in (0.0, 3.0, 9.0, 30.0):
        assert small.rate_at(t) / 2.0 == pytest.approx(large.rate_at(t) / 200.0)


def test_cubic_absolute_mode_is_botocore() -> None:
    cubic = CubicCalculator(0.0, 0.0, relative=False, period=1.0, probe_period=1.0)
    assert cubic.cut(10.0, 0.0) == pytest.approx(7.0)
    k = (10.0 * 0.3 / 0.4) ** (1 / 3)
    for t in (0.0, 1.0, 3.0, 5.0):
        assert cubic.rate_at(t) == pytest.approx(0.4 * (t - k) ** 3 + 10.0)


# -- RateAdapter -------------------------------------------------------------------------------


def test_adapter_unlimited_until_the_first_throttle_then_measured() -> None:
    adapter = RateAdapter()
    for i in range(10):
        assert adapter.on_success(i * 0.09) is None
    assert adapter.on_throttle(0.9, resume_at=1.9) == pytest.approx(10.0)  # 10 in 1 s
    assert adapter.phase == "slow start"
    assert adapter.on_throttle(1.0, resume_at=2.0) == pytest.approx(10.0)  # in-flight: no cut
    # an answer still in flight comes back during the pause: it counts, but nothing grows
    assert adapter.on_success(1.5) == pytest.approx(11.0)
    assert adapter.on_success(1.9) == pytest.approx(12.0)


def test_adapter_slow_start_then_cubic_cuts() -> None:
    adapter = RateAdapter(doubling=1.0, growth_cap=100.0)
    _ = [adapter.on_success(i * 0.1) for i in range(10)]
    adapter.on_throttle(1.0, resume_at=2.0)  # 10/s
    assert adapter.on_success(3.0) == pytest.approx(20.0)  # doubles each second of sending
    assert adapter.on_success(3.5) == pytest.approx(20.0 * math.sqrt(2))
    measured = adapter.meter.rate_at(3.5)  # 12 successes: far less than was allowed
    assert measured < 10.0 * math.sqrt(2)
    rate = adapter.on_throttle(3.5, resume_at=4.5)
    assert adapter.phase == "cubic"
    # the top is the rate of one doubling ago, but never above what was served
    assert adapter.w_max == pytest.approx(measured)
    assert rate == pytest.approx(0.7 * measured)


def test_adapter_slow_start_ends_at_one_doubling_ago_when_that_was_served() -> None:
    adapter = RateAdapter(doubling=1.0, growth_cap=100.0)
    _ = [adapter.on_success(i * 0.1) for i in range(10)]
    adapter.on_throttle(1.0, resume_at=2.0)  # 10/s
    t = 2.0
    while t < 3.5:  # the server serves all that is sent: 10/s doubling every second
        t += 1.0 / (10.0 * 2.0 ** (t - 2.0))
        adapter.on_success(t)
    assert adapter.meter.rate_at(t) > 10.0 * 2.0 ** (t - 3.0)
    adapter.on_throttle(t, resume_at=t + 1.0)
    assert adapter.w_max == pytest.approx(10.0 * 2.0 ** (t - 2.0) / 2, rel=0.01)


def _cubic_adapter(top: float, measured: float, growth_cap: float = 100.0) -> RateAdapter:
    """An adapter in the CUBIC phase with ``w_max`` = ``top``, its meter reading
    ``measured`` (a success every 1/measured s for 20 s)."""
    adapter = RateAdapter(growth_cap=growth_cap)
    adapter.meter = RateMeter()
    adapter.on_success(0.0)
    adapter.on_throttle(0.0)
    adapter.on_throttle(2.0)  # ends the slow start
    adapter.cubic.cut(top, 2.0)
    _feed(adapter.meter, measured, 2.0, 22.0)
    return adapter


@pytest.mark.parametrize(
    ("top", "current", "measured", "new_top", "new_rate"),
    [
        # m = min(measured, current)
        (10.0, 12.0, 16.0, 11.0, 0.7 * 11.0),  # probing above the top: halfway to m
        (10.0, 12.0, 8.0, 8.0, 0.7 * 8.0),  # probing, but served less than the top: m
        (10.0, 9.0, 8.0, 8.0 * 0.85, 0.7 * 8.0),  # refused below the top: fast convergence
    ],
)
def test_adapter_cut_rules(
    top: float, current: float, measured: float, new_top: float, new_rate: float
) -> None:
    adapter = _cubic_adapter(top, measured)
    adapter._rate = current  # the rate in force at the throttle
    assert adapter.meter.rate_at(22.0) == pytest.approx(measured)
    assert adapter.on_throttle(22.0, resume_at=23.0) == pytest.approx(new_rate)
    assert adapter.w_max == pytest.approx(new_top)


def test_adapter_floor_cap_and_growth_cap() -> None:
    adapter = RateAdapter(min_rate=0.5, max_rate=8.0)
    assert adapter.rate == 8.0  # the cap applies from the start
    for i in range(30):
        adapter.on_throttle(i * 2.0)
    assert adapter.rate == 0.5  # never below the floor
    app_limited = _cubic_adapter(10.0, 2.0, growth_cap=2.0)  # the pull only uses 2 req/s
    assert app_limited.on_success(200.0) == pytest.approx(10.0)  # max(w_max, 2 x 2/s)


events = st.lists(
    st.tuples(st.floats(0.0, 5.0), st.booleans(), st.one_of(st.none(), st.floats(0.0, 3.0))),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(events=events, cap=st.one_of(st.none(), st.floats(0.5, 50.0)))
def test_adapter_rate_stays_within_floor_and_cap(
    events: list[tuple[float, bool, float | None]], cap: float | None
) -> None:
    adapter = RateAdapter(min_rate=0.5, max_rate=cap)
    now, throttled = 0.0, False
    for dt, ok, retry_after in events:
        now += dt
        if ok:
            rate = adapter.on_success(now)
        else:
            rate = adapter.on_throttle(now, None if retry_after is None else now + retry_after)
            throttled = True
        if rate is None:
            assert cap is None and not throttled
        else:
            assert 0.5 <= rate <= (cap if cap is not None else math.inf)


# -- AdaptiveRateLimiter on virtual time --------------------------------------------------------


def test_limiter_is_a_rate_limiter_and_free_while_unlimited() -> None:
    async def main() -> tuple[float, float | None]:
        limiter = AdaptiveRateLimiter()
        assert isinstance(limiter, RateLimiter)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(limiter.acquire() for _ in range(100)))
        for _ in range(100):
            await limiter.on_success()
        return loop.time(), limiter.rate

    assert run_virtual(main()) == (0.0, None)  # no waiting, no rate


def test_limiter_honours_retry_after_with_an_injected_clock_and_sleep() -> None:
    now = [0.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    async def main() -> None:
        limiter = AdaptiveRateLimiter(clock=lambda: now[0], sleep=sleep, rand=lambda: 0.0)
        for _ in range(4):
            await limiter.acquire()
            await limiter.on_success()
        now[0] = 0.5
        await limiter.on_throttle(2.0)
        assert limiter.rate == pytest.approx(4.0)  # 4 served in the first second
        assert limiter.is_paused()
        await limiter.acquire()
        assert now[0] == pytest.approx(2.5)  # the whole Retry-After, then at once
        await limiter.acquire()
        assert now[0] == pytest.approx(2.75)  # then one interval at 4 req/s
        assert limiter.stats().throttles == 1
        assert limiter.stats().paused_seconds == pytest.approx(2.0)

    asyncio.run(main())
    assert sum(sleeps) == pytest.approx(2.25)


async def _release_times(limiter: AdaptiveRateLimiter, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(n)))
    return times


@pytest.mark.parametrize("burst", [1.0, 3.0])
def test_after_a_pause_the_waiters_go_out_spread_at_the_rate(burst: float) -> None:
    async def main() -> tuple[list[float], float]:
        limiter = AdaptiveRateLimiter(burst=burst, rand=random.Random(7).random)
        for _ in range(5):
            await limiter.on_success()
        await limiter.on_throttle(1.0)  # the rate becomes 5 req/s
        rate = limiter.rate
        assert rate is not None
        return await _release_times(limiter, 40), rate

    times, rate = run_virtual(main())
    assert rate == pytest.approx(5.0)
    assert min(times) >= 1.0  # nobody before the Retry-After has passed
    interval = 1.0 / rate
    most = max(sum(1 for t in times if s <= t <= s + interval + 1e-9) for s in times)
    assert most <= burst + 1  # at most one token piled up, never a burst of the waiters
    assert times[-1] - times[0] == pytest.approx(39 * interval, rel=0.01)


def test_the_end_of_a_pause_is_jittered_within_one_interval() -> None:
    async def first_release(u: float) -> float:
        limiter = AdaptiveRateLimiter(rand=lambda: u)
        for _ in range(4):
            await limiter.on_success()
        await limiter.on_throttle(1.0)  # 4 req/s
        await limiter.acquire()
        return asyncio.get_running_loop().time()

    assert run_virtual(first_release(0.0)) == pytest.approx(1.0)
    assert run_virtual(first_release(0.5)) == pytest.approx(1.125)
    with pytest.raises(ValueError, match="jitter"):
        AdaptiveRateLimiter(jitter=-1.0)


def test_waiters_are_served_first_come_first_served() -> None:
    async def main() -> list[int]:
        limiter = AdaptiveRateLimiter(max_rate=10.0)  # capped from the start
        order: list[int] = []

        async def one(i: int) -> None:
            await limiter.acquire()
            order.append(i)

        tasks = []
        for i in range(30):
            tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.sleep(0)  # they arrive in this order
        await asyncio.gather(*tasks)
        assert asyncio.get_running_loop().time() == pytest.approx(2.9)  # 1 token, then 10/s
        return order

    assert run_virtual(main()) == list(range(30))


def test_cancelling_a_waiter_leaks_no_slot() -> None:
    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveRateLimiter(max_rate=1.0)
        done: dict[str, float] = {}

        async def one(name: str) -> None:
            await limiter.acquire()
            done[name] = loop.time()

        await one("a")  # takes the only token at t=0
        head, middle, tail = (asyncio.ensure_future(one(n)) for n in ("head", "mid", "tail"))
        await asyncio.sleep(0.5)
        head.cancel()  # the head of the line, asleep on the bucket
        middle.cancel()  # a waiter not yet at the head
        await asyncio.gather(head, middle, return_exceptions=True)
        await tail
        assert limiter.waiting == 0
        await one("after")
        return done

    done = run_virtual(main())
    assert done == {"a": 0.0, "tail": 1.0, "after": 2.0}  # the cancelled took nothing


def test_cancelling_the_head_during_a_pause_hands_over_the_line() -> None:
    async def main() -> tuple[list[float], float | None]:
        limiter = AdaptiveRateLimiter(max_rate=4.0, rand=lambda: 0.0)
        for _ in range(4):
            await limiter.on_success()
        await limiter.on_throttle(3.0)
        loop = asyncio.get_running_loop()
        waiters = [asyncio.ensure_future(limiter.acquire()) for _ in range(3)]
        await asyncio.sleep(1.0)
        waiters[0].cancel()
        times = []
        for w in waiters[1:]:
            await w
            times.append(loop.time())
        return times, limiter.rate

    times, rate = run_virtual(main())
    assert rate == pytest.approx(4.0)
    assert times == pytest.approx([3.0, 3.25])


def test_throttle_without_retry_after_empties_the_bucket() -> None:
    async def main() -> tuple[float, float | None]:
        limiter = AdaptiveRateLimiter(max_rate=8.0)
        for _ in range(2):
            await limiter.acquire()
            await limiter.on_success()
        await limiter.on_throttle(None)  # 2 served in the first second: 2 req/s
        start = asyncio.get_running_loop().time()
        await limiter.acquire()
        assert not limiter.is_paused()
        return asyncio.get_running_loop().time() - start, limiter.rate

    assert run_virtual(main()) == pytest.approx((0.5, 2.0))


def test_stall_is_time_without_a_success_while_refused() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveRateLimiter(rand=lambda: 0.0)  # no jitter
        await limiter.acquire()  # the pull starts at t=0
        await asyncio.sleep(1.0)
        await limiter.on_throttle(4.0)
        assert limiter.stalled_for(5.0) == pytest.approx(5.0)  # nothing ever served
        await asyncio.sleep(5.0)
        await limiter.on_success()
        assert limiter.stalled_for() == 0.0
        await asyncio.sleep(1.0)
        await limiter.on_throttle(1.0)
        await limiter.on_throttle(3.0)  # overlapping pauses count once
        assert limiter.stalled_for(loop.time() + 2.0) == pytest.approx(3.0)
        stats = limiter.stats()
        assert stats.throttles == 3
        assert stats.last_success == pytest.approx(6.0)
        assert stats.paused_seconds == pytest.approx(4.0 + 3.0)

    run_virtual(main())


# -- the closed loop: many requesters against a fake server with a strict token bucket ----------


@define
class FakeServer:
    """The project simulator's per-token limit: a bucket of ``burst`` requests refilled at
    ``rate``/s; a refused request takes no token and is told ``Retry-After`` in whole seconds
    (at least 1). ``rate`` None: no limit."""

    rate: float | None
    burst: float
    tokens: float = field(init=False)
    stamp: float = 0.0

    def __attrs_post_init__(self) -> None:
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if self.rate is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def answer(self, now: float) -> float | None:
        """None: served; else the Retry-After of a 429."""
        if self.rate is None:
            return None
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return float(max(1, math.ceil((1.0 - self.tokens) / self.rate)))

    def set_rate(self, rate: float, now: float) -> None:
        self._refill(now)
        self.rate = rate


@define
class Run:
    ok: int = 0
    throttled: int = 0
    #: 429s for requests sent before the first 429 came back (no limiter can stop those)
    first_wave: int = 0
    wall: float = 0.0
    rates: list[tuple[float, float | None]] = field(factory=list)

    @property
    def share(self) -> float:
        return self.throttled / (self.ok + self.throttled)


async def closed_loop(
    rate: float | None,
    burst: float,
    successes: int,
    *,
    requesters: int = 8,
    seed: int = 0,
    change: tuple[float, float] | None = None,
    latency: float = 0.02,
) -> tuple[Run, AdaptiveRateLimiter]:
    """``requesters`` loop acquire -> ask the server -> on_success / on_throttle until
    ``successes`` requests were served; ``change`` = (at, new rate) changes the server."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    server = FakeServer(rate, burst)
    limiter = AdaptiveRateLimiter(rand=rng.random)
    run = Run()
    first_429: list[float] = []

    async def requester() -> None:
        while run.ok < successes:
            await limiter.acquire()
            sent = loop.time()
            await asyncio.sleep(latency * rng.uniform(0.25, 0.75))
            retry_after = server.answer(loop.time())
            await asyncio.sleep(latency * rng.uniform(0.25, 0.75))
            if retry_after is None:
                run.ok += 1
                run.wall = loop.time()
                await limiter.on_success()
            else:
                run.throttled += 1
                if not first_429 or sent < first_429[0]:
                    run.first_wave += 1
                    first_429[:1] = first_429[:1] or [loop.time()]
                await limiter.on_throttle(retry_after)
            run.rates.append((loop.time(), limiter.rate))

    async def changer() -> None:
        if change is not None:
            await asyncio.sleep(change[0])
            server.set_rate(change[1], loop.time())

    changing = asyncio.ensure_future(changer())
    await asyncio.gather(*(requester() for _ in range(requesters)))
    changing.cancel()
    return run, limiter


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("rate", "burst"), [(2.0, 2.0), (5.0, 5.0), (20.0, 10.0)])
def test_closed_loop_paces_to_the_server(rate: float, burst: float, seed: int) -> None:
    run, limiter = run_virtual(closed_loop(rate, burst, 300, seed=seed))
    assert run.ok >= 300
    assert run.ok / run.wall >= 0.87 * rate
    after_first_wave = (run.throttled - run.first_wave) / (run.ok + run.throttled)
    assert after_first_wave <= 0.04
    # 8 requesters against a burst of 2 meet 6-7 refusals before any limit can exist:
    # 2.3 % of 300 on their own, which leaves (2, 2) at 5.2-5.8 % in all
    assert run.share <= (0.06 if rate == 2.0 else 0.05)
    assert limiter.rate is not None and rate / 1.5 <= limiter.rate <= rate * 1.5


def test_closed_loop_without_a_limit_is_not_slowed() -> None:
    run, limiter = run_virtual(closed_loop(None, 0.0, 400, requesters=8, latency=0.02))
    assert run.throttled == 0 and limiter.rate is None
    assert run.wall == pytest.approx(400 / 8 * 0.02, rel=0.1)  # latency-bound, no pacing


def _lag(run: Run, at: float, new: float) -> float | None:
    for t, r in run.rates:
        if t > at and r is not None and new / 1.25 <= r <= new * 1.25:
            return t - at
    return None


@pytest.mark.parametrize(
    ("before", "after", "burst", "max_lag"),
    [(10.0, 5.0, 5.0, 10.0), (20.0, 10.0, 10.0, 10.0), (5.0, 10.0, 5.0, 45.0),
     (10.0, 20.0, 10.0, 45.0)],
)
def test_closed_loop_follows_a_server_whose_rate_changes(
    before: float, after: float, burst: float, max_lag: float
) -> None:
    at = 60.0
    total = int(before * at + after * 90)
    run, _ = run_virtual(closed_loop(before, burst, total, change=(at, after)))
    lag = _lag(run, at, after)
    assert lag is not None and lag <= max_lag
    end = [r for t, r in run.rates if t > run.wall - 20.0 and r is not None]
    assert after / 1.5 <= sum(end) / len(end) <= after * 1.5
    served_late = sum(1 for t, r in run.rates if t > at + max_lag) / (run.wall - at - max_lag)
    assert served_late >= 0.75 * after  # answers per second, once it has followed


if __name__ == "__main__":  # the figures of the report: python tests/test_ratelimit.py
    cases = [(2.0, 2.0, 100), (5.0, 5.0, 200), (20.0, 10.0, 300)]  # the table
    cases += [(2.0, 2.0, 300), (5.0, 5.0, 300), (5.0, 1.0, 300)]
    for n in (4, 8, 16):
        for r, b, k in cases:
            runs = [run_virtual(closed_loop(r, b, k, requesters=n, seed=s))[0] for s in range(5)]
            print(
                f"n={n:2} R={r:4} B={b:4} {k} served: 429 share "
                f"{min(x.share for x in runs):.3f}-{max(x.share for x in runs):.3f} "
                f"(first wave {min(x.first_wave for x in runs)}-{max(x.first_wave for x in runs)}) "
                f"served/s / R {min(x.ok / x.wall / r for x in runs):.3f}-"
                f"{max(x.ok / x.wall / r for x in runs):.3f}"
            )
    for before, after, b in ((10.0, 5.0, 5.0), (5.0, 10.0, 5.0), (20.0, 10.0, 10.0),
                             (10.0, 20.0, 10.0), (4.0, 2.0, 2.0), (2.0, 4.0, 2.0)):
        lags = []
        for s in range(5):
            run, _ = run_virtual(
                closed_loop(before, b, int(before * 60 + after * 90), seed=s, change=(60, after))
            )
            lags.append(_lag(run, 60.0, after))
        print(f"{before} -> {after} req/s (burst {b}) at t=60 s: lag to within 25 % {lags}")


@pytest.mark.parametrize(("top", "stretched"), [(1.0, True), (2.0, True), (20.0, False)])
def test_probing_takes_at_least_sixty_requests_a_cycle(top: float, stretched: bool) -> None:
    """A probe above the top costs about one refusal: at 2 req/s a 20 s cycle would refuse
    one request in 40, so the cycle is stretched to 60 requests at the top's rate."""
    adapter = _cubic_adapter(top, top)
    adapter._rate = top * 0.9  # refused below the top: the next top is lower
    adapter.on_throttle(22.0, resume_at=23.0)
    new_top = adapter.w_max
    assert new_top is not None and new_top < top
    assert adapter.cubic.probe_period == pytest.approx(max(20.0, 60.0 / new_top))
    assert (adapter.cubic.probe_period > 20.0) is stretched
