"""The async :class:`AdaptiveRateLimiter` on virtual time (``_ratelimit_support``): free while
unlimited, Retry-After honoured, waiters spread and served in order after a pause, jitter,
cancelled waiters leaking nothing, and the stall and pause statistics.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from _ratelimit_support import run_virtual

from callsessions.http.ratelimit import AdaptiveRateLimiter, RateLimiter


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


def test_a_pause_ends_at_its_draw_of_jitter_at_the_rate_its_late_answers_raise() -> None:
    """The first 429 of a pull can come before the answers to its first requests (the
    first page is slow, a count refused at once): the rate read then is low, and so one
    interval of jitter is long. Answers arriving during the pause raise the rate; the
    pause then ends where the same draw falls at the new rate, never later than it would
    have, and the paused time counts only what was paused."""

    async def first_release(late_answers: int) -> tuple[float, float, float | None]:
        limiter = AdaptiveRateLimiter(rand=lambda: 0.8)
        loop = asyncio.get_running_loop()
        await limiter.on_success()  # 1 success in the first second: 1 req/s
        await limiter.on_throttle(1.0)
        for _ in range(late_answers):  # answers to requests sent in that first burst
            await limiter.on_success()
        await limiter.acquire()
        return loop.time(), limiter.paused_seconds, limiter.rate

    alone, paused_alone, rate_alone = run_virtual(first_release(0))
    assert rate_alone == pytest.approx(1.0)
    assert alone == pytest.approx(1.0 + 0.8 / 1.0)  # one interval at 1 req/s, drawn 0.8
    assert paused_alone == pytest.approx(alone)
    raised, paused_raised, rate_raised = run_virtual(first_release(3))
    assert rate_raised == pytest.approx(4.0)  # 4 successes in the first second
    assert raised == pytest.approx(1.0 + 0.8 / 4.0)  # the same draw, at 4 req/s
    assert paused_raised == pytest.approx(raised)


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
