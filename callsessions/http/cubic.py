"""The arithmetic of adaptive pacing: pure classes with no clock of their own.

Time is always an argument (seconds on any monotonic clock), as in botocore's
``retries/throttling.py`` and ``adaptive.py``, so every class here is tested with plain
numbers, and a limiter shared through Redis can reuse the same arithmetic. (The token bucket,
pure too, is :class:`callsessions.http.ratelimit.TokenBucket`.)

- :class:`RateMeter` (:mod:`callsessions.http.meter`): successful sends per second.
- :class:`CubicCalculator`: a multiplicative cut on a throttle and CUBIC regrowth after it.
- :class:`RateAdapter`: the send rate of one pull, joining the two above: unlimited until the
  first throttle, then a slow start from the measured rate, then CUBIC; always within
  ``[min_rate, max_rate]``.
"""

from __future__ import annotations

import math
from typing import Literal

from .meter import RateMeter, _check_positive
from .served import ServedCycle

__all__ = ["CubicCalculator", "RateAdapter", "RateMeter", "ServedCycle"]


class CubicCalculator:
    """The send rate after a throttle: cut to ``beta * w_max``, then regrown along a cubic.

    ``rate_at(t) = w_max + scale * u * (x - K) ** 3``, ``x`` the time since the cut in units
    of ``period`` below ``w_max`` and of ``probe_period`` above it; ``K`` puts the curve at
    ``beta * w_max`` at the cut and back at ``w_max`` after ``K * period`` seconds. Below
    ``w_max`` the curve is concave (a quick recovery, then a plateau near the rate that was
    too much), above it convex (probing, faster and faster, for a server that now allows
    more).

    With ``relative=False`` and both periods 1, this is botocore's calculator exactly (``u =
    1``: rates in req/s, time in seconds). Its probing speed is absolute, far too fast for a
    server of 2 req/s and slow for one of 500. By default (``relative=True``) rates are in
    units of ``w_max`` (``u = w_max``), so every rate sees the same curve: with ``period``
    6 s and ``probe_period`` 20 s it is back at ``w_max`` 5.5 s after a cut, 10 % above
    12.6 s later, doubled 27 s later. The slow probe matters: a server's burst lets a probe
    run above its rate until the burst is spent, so a fast probe overshoots and is refused
    soon after every cut.
    """

    def __init__(
        self,
        w_max: float,
        start: float,
        *,
        beta: float = 0.7,
        scale: float = 0.4,
        period: float = 6.0,
        probe_period: float = 20.0,
        relative: bool = True,
    ) -> None:
        if not 0 < beta < 1:
            raise ValueError(f"beta must be in (0, 1), got {beta!r}")
        _check_positive("scale", scale)
        _check_positive("period", period)
        _check_positive("probe_period", probe_period)
        self.beta = beta
        self.scale = scale
        self.period = period
        self.probe_period = probe_period
        self.relative = relative
        self._w_max = max(0.0, w_max)
        self._start = start
        self._k = self._zero_point()

    @property
    def w_max(self) -> float:
        """The rate at the last cut (the top of the concave part)."""
        return self._w_max

    @property
    def k(self) -> float:
        """Periods from the cut until the curve is back at ``w_max``."""
        return self._k

    @property
    def start(self) -> float:
        """When the curve starts (the last cut, or the end of its pause)."""
        return self._start

    def _unit(self) -> float:
        return self._w_max if self.relative else 1.0

    def _zero_point(self, drop: float | None = None) -> float:
        unit = self._unit()
        if unit <= 0:
            return 0.0
        drop = self._w_max * (1 - self.beta) if drop is None else drop
        return math.pow(drop / (self.scale * unit), 1 / 3)

    def cut(
        self,
        w_max: float,
        now: float,
        *,
        resume_at: float | None = None,
        floor: float | None = None,
    ) -> float:
        """A throttle at ``now``: the curve now tops out at ``w_max``; answers where it
        starts, ``beta * w_max``, or ``floor`` when that is higher (up to ``w_max``): a rate
        the server was seen to serve need not be cut below.

        The curve starts at ``resume_at`` (the end of the server's ``Retry-After``) when that
        is later: a long pause must not count as time spent regrowing.
        """
        self._w_max = max(0.0, w_max)
        low = self._w_max * self.beta
        if floor is not None:
            low = max(low, min(floor, self._w_max))
        self._k = self._zero_point(self._w_max - low)
        self._start = now if resume_at is None else max(now, resume_at)
        return low

    def rate_at(self, now: float) -> float:
        """The rate along the curve at ``now`` (``beta * w_max`` until the curve starts)."""
        elapsed = max(0.0, now - self._start)
        recovery = self._k * self.period
        if elapsed <= recovery:
            x = elapsed / self.period
        else:
            x = self._k + (elapsed - recovery) / self.probe_period
        return self._w_max + self.scale * self._unit() * (x - self._k) ** 3


class RateAdapter:
    """The send rate of one pull, learned from what the server serves and refuses.

    - **unlimited** (``rate`` is ``max_rate``, None without a cap) until the first throttle;
    - the first throttle sets the rate to the **measured** rate of successes (answers coming
      back during its pause included) and starts a **slow start**: the rate doubles every
      ``doubling`` seconds of sending (that first measurement often saw only the burst);
    - a throttle in slow start ends it: the rate of one doubling ago was served (TCP's
      ``ssthresh = cwnd / 2``), so that is ``w_max`` (or what the cycle saw served, if more;
      no more than that cycle allows, :class:`ServedCycle`), and CUBIC takes over;
    - every later throttle is a **cut** to ``beta`` x the lower of the measured rate and the
      rate in force (``m``, no more than the cycle allows), as in botocore, with refinements
      on where the curve tops out next (``w_max``), for a server with a burst: refused while
      probing above ``w_max``, the new top is halfway from the old one to ``m`` (``m`` then
      includes the server's burst being spent); refused at or below ``w_max``, that top was
      too high and the new one is ``m * (1 + beta) / 2`` (TCP CUBIC's fast convergence);
      never below what a saturated cycle saw served, and no higher when probing with ``m`` at
      or below the top (fast convergence makes room for other flows; a token bucket has none);
    - throttles within ``cooldown`` s of a cut, or before its pause ends, answer requests
      sent before it: they do not cut again (six in-flight 429s make one cut);
    - above ``w_max`` the curve probes no faster than one refusal in ``probe_requests``
      requests (what it sends above a top at the server's rate spends the estimated burst
      after that many; ``probe_period`` s at the least): the same share at 2 req/s as at 20;
    - growth never runs ahead of use: the rate stays under ``growth_cap`` times the measured
      rate (or ``w_max``, whichever is higher), as in botocore;
    - always within ``[min_rate, max_rate]``.
    """

    def __init__(
        self,
        *,
        min_rate: float = 0.5,
        max_rate: float | None = None,
        beta: float = 0.7,
        scale: float = 0.4,
        period: float = 6.0,
        probe_period: float = 20.0,
        relative: bool = True,
        doubling: float = 1.0,
        cooldown: float = 1.0,
        growth_cap: float = 2.0,
        probe_requests: float = 100.0,
        meter: RateMeter | None = None,
    ) -> None:
        _check_positive("min_rate", min_rate)
        if max_rate is not None and max_rate < min_rate:
            raise ValueError(f"max_rate must be >= min_rate ({min_rate!r}), got {max_rate!r}")
        _check_positive("doubling", doubling)
        _check_positive("growth_cap", growth_cap)
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0, got {cooldown!r}")
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.cooldown = cooldown
        self.doubling = doubling
        self.growth_cap = growth_cap
        self.probe_requests = probe_requests
        self._probe_period = probe_period
        self.meter = meter if meter is not None else RateMeter()
        self.cycle = ServedCycle()
        #: the CUBIC curve, in use once the slow start is over
        self.cubic = CubicCalculator(
            0.0,
            0.0,
            beta=beta,
            scale=scale,
            period=period,
            probe_period=probe_period,
            relative=relative,
        )
        self._phase: Literal["unlimited", "slow start", "cubic"] = "unlimited"
        self._rate: float | None = max_rate
        self._slow_start = (0.0, 0.0)  # (rate, start) of the slow start
        self._quiet_until = -math.inf

    @property
    def rate(self) -> float | None:
        """The send rate in force (None while unlimited)."""
        return self._rate

    @property
    def phase(self) -> Literal["unlimited", "slow start", "cubic"]:
        return self._phase

    @property
    def w_max(self) -> float | None:
        """Where the CUBIC curve tops out (None before it takes over)."""
        return self.cubic.w_max if self._phase == "cubic" else None

    def begin(self, now: float) -> None:
        """The pull's first request leaves at ``now``."""
        self.cycle.begin(now)

    def on_success(self, now: float) -> float | None:
        """A request succeeded at ``now``; answers the new rate."""
        measured = self.meter.record(now)
        self.cycle.success(now)
        if self._phase == "cubic":
            target, base = self.cubic.rate_at(now), self.cubic.w_max
        elif self._phase == "slow start":
            base, start = self._slow_start
            if now <= start:  # answers still coming back during the first pause count too
                base = self._set(max(base, measured))
                self._slow_start = (base, start)
            target = base * 2.0 ** (max(0.0, now - start) / self.doubling)
        else:
            return self._rate
        return self._set(min(target, max(base, self.growth_cap * measured)))

    def on_throttle(
        self, now: float, resume_at: float | None = None, *, saturated: bool = True
    ) -> float:
        """A throttle arrived at ``now``; sending resumes at ``resume_at``. Answers the rate.

        ``saturated``: the pull was sending all the rate allowed (requests were waiting for
        it). Only then does what the cycle served tell the server's rate.
        """
        resume = now if resume_at is None else max(now, resume_at)
        if self._rate is not None and now < self._quiet_until:
            return self._rate
        self._quiet_until = max(now + self.cooldown, resume)
        measured = self.meter.rate_at(now)
        self.meter.pause(now, resume)
        served = self.cycle.close(now, resume)
        served, upper = (served, self.cycle.upper) if saturated else (None, None)
        current = self._rate
        if current is None or self._phase == "unlimited":
            rate = self._set(measured if current is None else min(measured, current))
            self._phase, self._slow_start = "slow start", (rate, resume)
            return rate
        if self._phase == "slow start":
            self._phase = "cubic"
            top = _lowered(min(current / 2, measured), current / 2, upper)
            top = top if served is None else max(top, min(served, current))
            return self._set(self._cut(top, now, resume, served))
        top, beta = self.cubic.w_max, self.cubic.beta
        m = _lowered(min(measured, current), top, upper)
        probing = current > top  # refused while probing above the last top
        if probing and m <= top:  # served less than the top: no more than the cycle saw
            new = m if served is None else min(m, served)
        else:  # halfway up to m (which includes the burst being spent), or fast convergence
            new = top + (m - top) / 2 if probing else m * (1 + beta) / 2
            new = new if served is None else max(new, min(served, m))
        low = self._cut(new, now, resume, served)
        if probing or served is not None:
            return self._set(low if probing else max(beta * m, min(low, m)))
        return self._set(beta * m)

    def _cut(self, top: float, now: float, resume: float, served: float | None) -> float:
        """``cubic.cut``, its probing first slowed to one refusal in ``probe_requests``
        requests (a 20 s curve at 2 req/s, burst 2, is refused after 34). A probe is refused
        once what it sent above the server's rate has spent the server's burst ``B``: from a
        top at that rate, the excess over ``t`` seconds is ``scale * u * t**4 / (4 * P**3)``
        for a period ``P``; ``t = probe_requests / top`` gives ``P``."""
        burst = max(1.0, self.cycle.burst or 1.0)
        unit = top if self.cubic.relative else 1.0
        seconds = self.probe_requests / max(top, 1e-9)
        needed = (self.cubic.scale * unit * seconds**4 / (4 * burst)) ** (1 / 3)
        self.cubic.probe_period = max(self._probe_period, needed)
        return self.cubic.cut(top, now, resume_at=resume, floor=served)

    def _set(self, rate: float) -> float:
        rate = max(self.min_rate, rate)
        if self.max_rate is not None:
            rate = min(self.max_rate, rate)
        self._rate = rate
        return rate


def _lowered(rate: float, top: float, upper: float | None) -> float:
    """``rate``, or ``upper`` when that is lower and below ``top`` too: a cycle whose server
    cannot have served as much as the top it aimed at shows that top was too high."""
    return min(rate, upper) if upper is not None and upper < top else rate
