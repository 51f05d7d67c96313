"""The adaptive rate limiter in a closed loop: many requesters, paced by
:class:`AdaptiveRateLimiter` on virtual time (``_ratelimit_support``), against a fake server
with a strict token bucket. ``test_slow_start`` reuses ``FakeServer``, ``Run`` and
``run_virtual`` from here; ``python tests/test_ratelimit.py`` prints the report's figures.
"""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from _ratelimit_support import run_virtual as run_virtual  # test_slow_start imports it here
from attrs import define, field

from callsessions.http.ratelimit import AdaptiveRateLimiter

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
    assert after_first_wave <= 0.025
    # 8 requesters against a burst of 2 meet 6-7 refusals before any limit can exist (2.3 %
    # of 300 on their own); what each cycle served, its burst taken out, keeps the rest low
    assert run.share <= 0.05
    assert limiter.rate is not None and rate / 1.5 <= limiter.rate <= rate * 1.5
    top = limiter.adapter.w_max
    assert top is not None and 0.9 * rate <= top <= 1.12 * rate  # the burst not read as rate


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
