"""Successful sends per second, smoothed over short time buckets (botocore's
``RateClocker``, counting successes only): pure arithmetic with time as an argument, as in
:mod:`callsessions.http.cubic`, which uses it."""

from __future__ import annotations

import math

__all__ = ["RateMeter"]


def _check_positive(name: str, value: float) -> None:
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


class RateMeter:
    """Successful sends per second of sending time, smoothed over buckets of ``width`` s.

    Each closed bucket's rate (its count over ``width``; an idle gap is a run of empty
    buckets) is blended into an exponential average with weight ``smoothing``, as botocore's
    ``RateClocker`` does. Two differences: time spent in a
    server's pause (:meth:`pause`) is not sending time, so a 1 s ``Retry-After`` does not halve
    the measured rate; and during the first ``warmup`` seconds the answer is the count over
    ``warmup``, so a burst served in the first 50 ms does not read as 200 req/s.

    Times passed to one meter must not go backwards.
    """

    def __init__(self, width: float = 0.5, smoothing: float = 0.3, warmup: float = 1.0) -> None:
        _check_positive("width", width)
        _check_positive("smoothing", smoothing)
        if smoothing > 1:
            raise ValueError(f"smoothing must be <= 1, got {smoothing!r}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup!r}")
        self._width = width
        self._smoothing = smoothing
        self._warmup = warmup
        self._start: float | None = None  # sending time of the first record
        self._bucket = 0  # index of the open bucket, on sending time
        self._count = 0.0  # records in the open bucket
        self._total = 0.0
        self._average: float | None = None
        self._paused = 0.0  # seconds of pauses that have ended
        self._pause: tuple[float, float] | None = None  # the pause not yet over

    def pause(self, start: float, end: float) -> None:
        """Nothing is sent from ``start`` to ``end``: that time does not count."""
        if end <= start:
            return
        if self._pause is not None:
            a, b = self._pause
            if start <= b:  # overlapping pauses are one
                self._pause = (a, max(b, end))
                return
            self._paused += b - a
        self._pause = (start, end)

    def record(self, now: float, amount: float = 1.0) -> float:
        """Count ``amount`` successes at ``now``; answers the rate."""
        active = self._active(now)
        if self._start is None:
            self._start = active
            self._bucket = math.floor(active / self._width)
        self._advance(active)
        self._count += amount
        self._total += amount
        return self._rate(active)

    def rate_at(self, now: float) -> float:
        """The measured rate at ``now`` (0.0 before any record)."""
        active = self._active(now)
        if self._start is None:
            return 0.0
        self._advance(active)
        return self._rate(active)

    def _active(self, now: float) -> float:
        """``now`` on the sending-time clock (paused time taken out)."""
        if self._pause is None:
            return now - self._paused
        a, b = self._pause
        if now >= b:
            self._paused += b - a
            self._pause = None
            return now - self._paused
        return now - self._paused - max(0.0, now - a)

    def _rate(self, active: float) -> float:
        assert self._start is not None
        elapsed = active - self._start
        if elapsed < self._warmup or self._average is None:
            return self._total / max(self._warmup, elapsed, self._width)
        return self._average

    def _advance(self, active: float) -> None:
        bucket = math.floor(active / self._width)
        if bucket <= self._bucket:
            return
        current = self._count / self._width
        if self._average is None:
            self._average = current
        else:
            self._average = self._smoothing * current + (1 - self._smoothing) * self._average
        # the buckets after it, up to the open one, were empty
        self._average *= (1 - self._smoothing) ** (bucket - self._bucket - 1)
        self._count = 0.0
        self._bucket = bucket
