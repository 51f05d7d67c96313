"""What one throttle cycle shows a server serving, its burst taken out: pure arithmetic with
time as an argument, as in :mod:`callsessions.http.cubic`, which uses it."""

from __future__ import annotations

import math
from collections import deque

__all__ = ["ServedCycle"]


class ServedCycle:
    """The server's rate as one throttle cycle saw it, its burst taken out.

    A cycle runs from one cut to the next. The server's bucket holds at most its capacity
    ``B`` at any moment and is empty at the refusal that closes the cycle, so the successes
    of any stretch ``[t, end]`` of the cycle, ``S``, are at most ``B + R * (end - t)``: the
    rate ``R`` is at least ``(S - B) / (end - t)`` for every ``t``, and :meth:`close` answers
    the largest of those (over stretches of ``min_time`` seconds or more). The stretch that
    begins at the refusal opening the cycle, when the bucket held less than one token, needs
    no ``B`` (that token is slack: up to 1.5 successes over the cycle with the half below).
    The measured rate counts the capacity spent as rate, and overshoots most where the burst is
    large against the rate.

    ``B`` is estimated from the first two refusals: the ``S0`` successes before the first
    (and during its pause: answers to requests sent in that burst) are ``B + R * e0``, over
    the ``e0`` seconds from the pull's first request (its first success when the limiter
    was not told, :meth:`begin`); the tightest stretch of the next cycle is
    ``B + R * T``; the two give ``B`` (at least 1, at most ``S0``) when ``T`` is longer
    than ``e0`` by ``min_time`` or more. Otherwise ``S0`` stands for ``B`` when ``e0`` is
    short (the burst was spent at once, as a pull's first requests spend it), and the cycle
    tells nothing when it is not.

    The estimate counts half a success for the refused request: the bucket held between 0
    and 1 token at the refusal. :attr:`upper` counts the whole one (the refusal came just
    before a token was due). The two differ by half a success over the stretch: little in
    a long cycle, much in a short one (traced at 2 req/s, burst 2: three successes, one past
    the burst, gave 1.56 and 2.08 for a server of 2). The estimate is where sending may
    resume; only ``upper`` below a top says that top was too high (taken as the top, 1.56
    cost a 100-page pull 20 % of its time: the probe above a top climbs slowly, by design).
    """

    def __init__(self, min_time: float = 0.5, keep: int = 4096) -> None:
        self.min_time = min_time
        #: the latest successes kept of a cycle (a long one at a high rate keeps its end)
        self.keep = keep
        self._burst: float | None = None  # B, once the cycle after the first gave it
        self._start: float | None = None  # the first request sent, or else the first success
        self._s0 = 0  # successes of the first burst
        self._e0 = 0.0  # seconds from the first request (or success) to the first refusal
        self._after_first = False  # the open cycle is the one after the first refusal
        self._refused: float | None = None  # the refusal that opened this cycle
        self._resume = -math.inf
        self._times: deque[float] = deque(maxlen=keep)  # this cycle's latest successes
        self._served = 0  # this cycle's successes
        self._began: float | None = None  # this cycle's first success
        #: the last closed cycle's estimate with the refused request counted whole: the high
        #: end of what it tells of the server's rate (None: it told nothing)
        self.upper: float | None = None

    @property
    def burst(self) -> float | None:
        """The server's capacity as estimated (None before the first refusal)."""
        if self._burst is not None:
            return self._burst
        return float(self._s0) if self._refused is not None else None

    def begin(self, now: float) -> None:
        """The pull sent its first request at ``now``: the first burst is timed from there
        (its first answer comes back after the server began serving it)."""
        if self._start is None:
            self._start = now

    def success(self, now: float) -> None:
        if self._start is None:
            self._start = now
        if self._refused is None:
            self._s0 += 1
        elif now > self._resume:
            self._times.append(now)
            self._served += 1
            if self._began is None:
                self._began = now
        elif self._after_first:
            self._s0 += 1  # an answer to a request sent in the first burst

    def close(self, now: float, resume: float) -> float | None:
        """A cut at ``now``, sending again from ``resume``: the open cycle ends and the next
        begins. Answers the least rate the server can have to have served the cycle (half a
        success added for the one it refused), or None when the cycle had no stretch of
        ``min_time`` seconds (too few answers to tell)."""
        estimate = self._estimate(now)
        self.upper = None if estimate is None else max(estimate, self._reading(now, 1.0))
        if self._refused is None:
            self._e0 = now - (self._start if self._start is not None else now)
            self._after_first = True
        else:
            self._after_first = False
        self._refused, self._resume = now, resume
        self._times.clear()
        self._served, self._began = 0, None
        return estimate

    def _estimate(self, now: float) -> float | None:
        if self._refused is None or self._began is None:
            return None
        span = now - self._began
        if span < self.min_time:
            return None
        if self._burst is None:  # B is not known yet: from S0, if it can be told
            if span >= self._e0 + self.min_time:
                burst = float(self._s0)
                for _ in range(8):  # B from S0 = B + R * e0; a few rounds settle it
                    rate = self._best(now, burst, self._e0 + self.min_time)
                    burst = min(float(self._s0), max(1.0, self._s0 - rate * self._e0))
                self._burst = burst
            elif self._e0 <= span / 4:  # the first burst came fast: S0 is about B
                self._burst = float(self._s0)
            else:
                return None
        return self._reading(now, 0.5)

    def _reading(self, now: float, refused: float) -> float:
        """What the open cycle shows (``B`` known), the refused request counted as
        ``refused`` of a success: the tightest stretch from a success, or the whole cycle
        from the refusal that opened it."""
        assert self._refused is not None
        assert self._burst is not None
        whole = (self._served + refused) / (now - self._refused)
        return max(self._best(now, self._burst, self.min_time, refused), whole)

    def _best(self, now: float, burst: float, shortest: float, refused: float = 0.5) -> float:
        """The largest ``(S + refused - burst) / (now - t)`` over stretches from a success at
        ``t`` that last ``shortest`` seconds or more (``refused``: what the refused request
        counts for)."""
        best = 0.0
        n = len(self._times)
        for k, t in enumerate(self._times):
            if now - t < shortest:
                break
            best = max(best, (n - k + refused - burst) / (now - t))
        return best
