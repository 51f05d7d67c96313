"""Pacing a pull to the server's rate limit: requests per second, learned from 429s.

Limiting requests *in flight* does not limit requests *per second*; this does. One
:class:`AdaptiveRateLimiter` serves a whole pull (all its windows and its planning). Every
request waits in :meth:`~AdaptiveRateLimiter.acquire` (first come, first served) and reports
its answer with :meth:`~AdaptiveRateLimiter.on_success` or
:meth:`~AdaptiveRateLimiter.on_throttle`:

- no limit until the first throttle (unless ``max_rate`` caps it from the start);
- then a token bucket paces requests at a rate learned as the AWS SDKs' adaptive retry mode
  does (botocore ``retries/adaptive.py``): set from the measured rate of successes, cut on
  a throttle, regrown along a CUBIC curve on success, within ``[min_rate, max_rate]`` (the
  arithmetic is in :mod:`callsessions.http.cubic`, pure, with time as an argument);
- a 429's ``Retry-After`` pauses every new request until it has passed, and when the pause
  ends the waiters go out one bucket interval apart (the bucket holds one token at most at
  that moment, and the end of the pause is jittered), never all at once.

:class:`RateLimiter` is the seam: the four members a pipeline uses, all async so that a
limiter shared through Redis by many worker processes can implement them too.

Why not ``aiolimiter``: its ``AsyncLimiter`` reads the event loop's clock and schedules its
own timers, so it cannot run on an injected clock; its rate and burst are fixed at
construction (changing them means writing its private slots); and it has no pause. What is
left of it once those are added around it is the ten lines of :class:`TokenBucket`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from attrs import frozen

from .cubic import CubicCalculator, RateAdapter, RateMeter
from .meter import _check_positive

__all__ = [
    "AdaptiveRateLimiter",
    "CubicCalculator",
    "RateAdapter",
    "RateLimitStats",
    "RateLimiter",
    "RateMeter",
    "TokenBucket",
]


#: Floating-point slack: a bucket this close to one token has one (a sleep of exactly the
#: computed wait must never come back a hair short and sleep again for 1e-17 s).
_EPS = 1e-9


class TokenBucket:
    """A token bucket filled at ``rate`` tokens/s up to ``capacity`` tokens.

    ``try_take(now)`` answers "may a request go at ``now``?": it takes a token and answers
    0.0, or takes nothing and answers how many seconds until a token is there. Changing the
    rate first credits the tokens earned at the old rate (as botocore does), so a rate change
    never rewrites the past.
    """

    def __init__(
        self, rate: float, capacity: float = 1.0, *, now: float = 0.0, tokens: float | None = None
    ) -> None:
        _check_positive("rate", rate)
        if not capacity >= 1:
            raise ValueError(f"capacity must be >= 1 (one request), got {capacity!r}")
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity if tokens is None else min(tokens, capacity)
        self._stamp = now

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def capacity(self) -> float:
        return self._capacity

    def tokens(self, now: float) -> float:
        """The tokens in the bucket at ``now``."""
        self._refill(now)
        return self._tokens

    def set_rate(self, rate: float, now: float) -> None:
        """Fill at ``rate`` from ``now`` on (tokens earned until ``now`` are kept)."""
        _check_positive("rate", rate)
        self._refill(now)
        self._rate = rate

    def reset(self, now: float, tokens: float = 0.0) -> None:
        """Hold ``tokens`` (at most ``capacity``) at ``now`` and fill from then on.

        ``now`` may lie in the future (the end of a pause): the bucket stays as it is until
        then, so a pause never piles up tokens for a burst.
        """
        self._tokens = min(tokens, self._capacity)
        self._stamp = now

    def wait_time(self, now: float) -> float:
        """Seconds from ``now`` until a token is there (0.0 if there is one)."""
        self._refill(now)
        ahead = max(0.0, self._stamp - now)  # reset to a time still to come
        if self._tokens >= 1.0 - _EPS:
            return ahead
        return ahead + (1.0 - self._tokens) / self._rate

    def try_take(self, now: float) -> float:
        """Take a token and answer 0.0, or take nothing and answer the seconds to wait."""
        wait = self.wait_time(now)
        if wait == 0.0:
            self._tokens = max(0.0, self._tokens - 1.0)
        return wait

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now


@runtime_checkable
class RateLimiter(Protocol):
    """What a request pipeline needs from a rate limiter (in-process or shared)."""

    async def acquire(self) -> None:
        """Wait until one request may be sent."""

    async def on_success(self) -> None:
        """The server served a request."""

    async def on_throttle(self, retry_after: float | None) -> None:
        """The server refused a request (429), asking to wait ``retry_after`` seconds."""

    @property
    def rate(self) -> float | None:
        """Requests per second in force; None while unlimited."""


@frozen
class RateLimitStats:
    """What a pull's summary reports about throttling."""

    #: 429s seen
    throttles: int
    #: seconds during which no new request could start because of a Retry-After
    paused_seconds: float
    #: the rate in force (req/s), None if the pull was never limited
    rate: float | None
    #: the clock's time of the last success, None before any
    last_success: float | None


class AdaptiveRateLimiter:
    """An in-process :class:`RateLimiter` for one pull.

    ``min_rate`` is the floor of the learned rate; ``max_rate`` a cap (a contract's stated
    limit) that applies from the start. ``burst`` is the bucket's capacity in requests (1:
    strictly paced). ``jitter`` spreads the end of each pause over that fraction of one
    interval at the new rate. ``clock``, ``sleep`` and ``rand`` (uniform in [0, 1), for the
    jitter) are injectable so that tests run on virtual time; by default the running loop's
    monotonic time, :func:`asyncio.sleep` and :func:`random.random`. ``adapter`` replaces
    the default :class:`RateAdapter` (then ``min_rate``/``max_rate`` are the adapter's).
    """

    def __init__(
        self,
        *,
        min_rate: float = 0.5,
        max_rate: float | None = None,
        burst: float = 1.0,
        jitter: float = 1.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        adapter: RateAdapter | None = None,
    ) -> None:
        if jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {jitter!r}")
        self._adapter = adapter or RateAdapter(min_rate=min_rate, max_rate=max_rate)
        self._burst = burst
        self._jitter = jitter
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._bucket: TokenBucket | None = None
        if self._adapter.rate is not None:  # a cap from the start: a full bucket
            self._bucket = TokenBucket(self._adapter.rate, burst, now=-math.inf)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._started: float | None = None
        #: no request starts before this time (the clock's), after a Retry-After
        self.paused_until = -math.inf
        self.throttles = 0
        self.paused_seconds = 0.0
        self.last_success: float | None = None
        self.last_throttle: float | None = None
        #: the last pause: when its Retry-After ends, and its jitter draw (see _rejitter)
        self._pause: tuple[float, float] | None = None

    # -- what the summary and the progress bar read ------------------------------------------

    @property
    def rate(self) -> float | None:
        """Requests per second in force; None while unlimited."""
        return self._adapter.rate

    @property
    def adapter(self) -> RateAdapter:
        return self._adapter

    @property
    def waiting(self) -> int:
        """Requests waiting in :meth:`acquire`."""
        return len(self._waiters)

    def now(self) -> float:
        """The limiter's clock."""
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def is_paused(self, now: float | None = None) -> bool:
        """Whether a Retry-After holds new requests back at ``now``."""
        return (self.now() if now is None else now) < self.paused_until

    def stalled_for(self, now: float | None = None) -> float:
        """Seconds the server has served nothing while refusing requests (0.0 otherwise).

        Counted from the last success, or from the first use of the limiter if nothing was
        ever served, and only while the last answer was a throttle: a caller gives up on
        throttling when this passes its ``max_stall``.
        """
        if self.last_throttle is None:
            return 0.0
        if self.last_success is not None and self.last_success >= self.last_throttle:
            return 0.0
        since = self.last_success if self.last_success is not None else self._started
        since = self.last_throttle if since is None else since
        return max(0.0, (self.now() if now is None else now) - since)

    def stats(self) -> RateLimitStats:
        return RateLimitStats(self.throttles, self.paused_seconds, self.rate, self.last_success)

    # -- the RateLimiter protocol --------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for this request's turn (first come, first served) and for its token.

        Cancelling a waiting ``acquire`` takes nothing: the token is taken in the same step
        as the return, and the next waiter takes over the head of the line.
        """
        now = self._touch()
        if not self._waiters and self._try_take(now) == 0.0:
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        if len(self._waiters) == 1:
            turn.set_result(None)
        try:
            await turn
            while (wait := self._try_take(self.now())) > 0.0:
                await self._sleep(wait)
        finally:
            self._leave(turn)

    async def on_success(self) -> None:
        now = self._touch()
        self.last_success = now
        rate = self._adapter.on_success(now)
        if rate is not None:
            self._bucket_at(rate, now)
            self._rejitter(now, rate)

    async def on_throttle(self, retry_after: float | None) -> None:
        """A 429: cut the rate and pause new requests for ``retry_after`` seconds."""
        now = self._touch()
        self.throttles += 1
        self.last_throttle = now
        pause = max(0.0, retry_after) if retry_after is not None else 0.0
        rate = self._adapter.on_throttle(now, now + pause, saturated=self._saturated(now))
        bucket = self._bucket_at(rate, now)
        if pause > 0.0:
            draw = self._rand()
            end = now + pause + self._jitter * draw / rate
            if end > self.paused_until:
                self.paused_seconds += end - max(now, self.paused_until)
                self.paused_until = end
                self._pause = (now + pause, draw)
            bucket.reset(self.paused_until, tokens=1.0)
        elif not self.is_paused(now):
            bucket.reset(now, tokens=0.0)

    # -- internals -------------------------------------------------------------------------------

    def _touch(self) -> float:
        now = self.now()
        if self._started is None:
            self._started = now
            self._adapter.begin(now)
        return now

    def _try_take(self, now: float) -> float:
        """0.0 if a request may go at ``now`` (its token taken), else the seconds to wait."""
        if now < self.paused_until:
            return self.paused_until - now
        return self._bucket.try_take(now) if self._bucket is not None else 0.0

    def _rejitter(self, now: float, rate: float) -> None:
        """A pause's jitter is one interval at the rate in force, drawn when the 429 came.
        Answers still coming back during the pause can raise that rate (the first 429 of a
        pull often comes before the answers to its first requests): the pause then ends
        where the same draw falls at the new rate, so that a low first reading does not
        hold the whole pull back by up to one interval at it."""
        if self._pause is None or now >= self.paused_until:
            return
        base, draw = self._pause
        end = max(now, base + self._jitter * draw / rate)
        if end < self.paused_until:
            self.paused_seconds -= self.paused_until - end
            self.paused_until = end
            if self._bucket is not None:
                self._bucket.reset(end, tokens=1.0)

    def _saturated(self, now: float) -> bool:
        """Whether the pull was sending all it was allowed: requests wait in line, or the
        bucket is spent (always, while unlimited: then nothing held requests back)."""
        if self._waiters or self._bucket is None:
            return True
        return self._bucket.tokens(now) < 1.0

    def _bucket_at(self, rate: float, now: float) -> TokenBucket:
        if self._bucket is None:
            self._bucket = TokenBucket(rate, self._burst, now=now, tokens=0.0)
        else:
            self._bucket.set_rate(rate, now)
        return self._bucket

    def _leave(self, turn: asyncio.Future[None]) -> None:
        """Take ``turn`` out of the line; hand the head of the line to the next waiter."""
        if self._waiters and self._waiters[0] is turn:
            self._waiters.popleft()
            while self._waiters and self._waiters[0].done():
                # a waiter cancelled before its turn: its own ``_leave`` will find it gone
                self._waiters.popleft()
            if self._waiters:
                self._waiters[0].set_result(None)
        else:
            turn.cancel()
            with contextlib.suppress(ValueError):  # already dropped by the head's _leave
                self._waiters.remove(turn)
