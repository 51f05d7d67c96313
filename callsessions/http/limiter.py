"""Adaptive concurrency: at most ``limit`` requests in flight, halved on a 429, grown back
by one after a run of successes (AIMD, as TCP does), never above the configured bound.
With ``initial`` it starts lower and grows by one each success until the bound or the
first 429 (TCP's slow start: the number in flight doubles every round trip), so that an
unknown rate limit is first met by a few requests, not by ``bound`` of them at once.
As TCP's congestion window (RFC 7661), the limit grows only while it is what holds
requests back: a success counts when the places are all taken or requests wait for one,
so that a few requests (a pull's planning, the tail of a window) do not raise a limit
they never used. Waiters are served first come, first served, so pages are requested in
order. A 429's wait also pauses new requests of the whole pull, so that one throttled
answer does not turn into a burst of them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

__all__ = ["AdaptiveLimiter"]


class AdaptiveLimiter:
    """A FIFO semaphore whose size adapts to throttling."""

    def __init__(
        self,
        bound: int,
        *,
        initial: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if bound < 1:
            raise ValueError("bound must be >= 1")
        self._sleep = sleep
        self._clock = clock
        #: no new request starts before this moment (the clock's time), after a 429
        self.paused_until = 0.0
        if initial is not None and initial < 1:
            raise ValueError("initial must be >= 1")
        self.bound = bound
        self.limit = bound if initial is None else min(bound, initial)
        #: growing by one a success (doubling each round trip) until the first throttle
        self.ramping = self.limit < bound
        self.in_flight = 0
        #: the smallest limit reached (for the summary)
        self.lowest = bound
        self._successes = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def acquire(self) -> None:
        while (pause := self.paused_until - self._now()) > 0:
            await self._sleep(pause)
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the place was granted just as we were cancelled
            else:
                fut.cancel()
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            fut = self._waiters.popleft()
            if fut.done():
                continue
            self.in_flight += 1
            fut.set_result(None)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one place for the duration of one request."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def limited(self) -> bool:
        """Whether every place is taken or a request waits for one (the limit is in use)."""
        waiting = sum(not fut.done() for fut in self._waiters)
        return self.in_flight + waiting >= self.limit

    def on_throttle(self, wait: float = 0.0) -> None:
        """A 429 arrived: halve the limit, and start no request for ``wait`` seconds."""
        if wait > 0:
            self.paused_until = max(self.paused_until, self._now() + wait)
        self.ramping = False
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._successes = 0

    def on_success(self) -> None:
        """A request succeeded: in the slow start the limit grows by one; after it, by one
        after ``limit`` successes in a row; in both, only while the limit holds requests
        back (see the module's docstring)."""
        if self.limit >= self.bound:
            self.ramping = False
            return
        if not self.limited():
            return
        if self.ramping:
            self.limit += 1
            self.ramping = self.limit < self.bound
            self._wake()
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()
