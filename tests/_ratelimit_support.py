"""Helpers shared by the rate-limiter tests (``test_ratelimit*.py``): virtual time, a meter
fed at a steady rate, an adapter already in its CUBIC phase.

Nothing in those tests sleeps for real. Async tests run on :class:`VirtualTimeLoop`, an
asyncio loop whose clock jumps to the next timer whenever every task is waiting, so
``asyncio.sleep(1)`` takes no time and the limiter's defaults (the loop's clock and
``asyncio.sleep``) are the virtual ones; a few single-task tests inject a fake ``clock`` and
``sleep`` instead.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

from callsessions.http.limiter import AdaptiveLimiter
from callsessions.http.ratelimit import RateAdapter, RateMeter

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


# -- plain numbers -----------------------------------------------------------------------------


def feed(meter: RateMeter, rate: float, start: float, end: float) -> float:
    t = start
    while t < end - 1e-9:
        meter.record(t)
        t += 1.0 / rate
    return t


def cubic_adapter(
    top: float, measured: float, growth_cap: float = 100.0, burst: int = 1
) -> RateAdapter:
    """An adapter in the CUBIC phase with ``w_max`` = ``top``, its meter reading
    ``measured`` (a success every 1/measured s for 20 s), the server's burst estimated as
    ``burst`` (that many successes at once before the first refusal)."""
    adapter = RateAdapter(growth_cap=growth_cap)
    adapter.meter = RateMeter()
    for _ in range(burst):
        adapter.on_success(0.0)
    adapter.on_throttle(0.0)
    adapter.on_throttle(2.0)  # ends the slow start
    adapter.cubic.cut(top, 2.0)
    feed(adapter.meter, measured, 2.0, 22.0)
    return adapter


# -- the concurrency limiter in use -------------------------------------------------------------


async def crowd(limiter: AdaptiveLimiter, requests: int) -> list[asyncio.Task[None]]:
    """``requests`` tasks asking the limiter for a place: as many as it allows hold one,
    the rest wait in order (cancel them at the end of the test)."""
    tasks = [asyncio.create_task(limiter.acquire()) for _ in range(requests)]
    await asyncio.sleep(0)
    return tasks


async def succeed(limiter: AdaptiveLimiter) -> None:
    """One request in flight ends well: its place goes to the next waiter, then the
    success is counted (the pipeline's order)."""
    limiter.release()
    limiter.on_success()
    await asyncio.sleep(0)
