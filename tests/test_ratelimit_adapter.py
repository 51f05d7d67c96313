"""The rate adapter on plain numbers: unlimited until the first throttle, slow start, the
CUBIC cut rules, the floor and caps (also under random events), and the probe cycle.
"""

from __future__ import annotations

import math

import pytest
from _ratelimit_support import cubic_adapter
from hypothesis import given, settings
from hypothesis import strategies as st

from callsessions.http.ratelimit import RateAdapter
from callsessions.http.served import ServedCycle


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


@pytest.mark.parametrize(
    ("spacing", "saturated", "told"),
    [(0.1, True, False), (0.009, False, False), (0.009, True, True)],
)
def test_adapter_slow_start_then_cubic_cuts(spacing: float, saturated: bool, told: bool) -> None:
    adapter = RateAdapter(doubling=1.0, growth_cap=100.0)
    _ = [adapter.on_success(i * spacing) for i in range(10)]
    first = adapter.on_throttle(10 * spacing, resume_at=2.0)  # the burst, refused at its end
    assert first >= 10.0  # 10 or more a second
    assert adapter.on_success(3.0) == pytest.approx(2 * first)  # doubles each second of sending
    assert adapter.on_success(3.5) == pytest.approx(2 * first * math.sqrt(2))
    measured = adapter.meter.rate_at(3.5)  # 12 successes: far less than was allowed
    assert measured < first * math.sqrt(2)
    rate = adapter.on_throttle(3.5, resume_at=4.5, saturated=saturated)
    assert adapter.phase == "cubic"
    if not told:
        # the top is the rate of one doubling ago, but never above what was served
        assert adapter.w_max == pytest.approx(measured)
        assert rate == pytest.approx(0.7 * measured)
    else:
        # a burst spent at once, then a pull sending all it may: two answers since the first
        # refusal, and the refused one, are the most the server can serve (the top); with
        # half the refused one, what it served, and sending resumes there
        assert adapter.w_max == pytest.approx(3.0 / (3.5 - 10 * spacing))
        assert rate == pytest.approx(2.5 / (3.5 - 10 * spacing))


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


class _Cycle(ServedCycle):
    """A cycle that shows the server serving ``served`` req/s (None: it told nothing)."""

    def __init__(self, served: float | None) -> None:
        super().__init__()
        self.served = served

    def close(self, now: float, resume: float) -> float | None:
        self.upper = None
        return self.served


@pytest.mark.parametrize(
    ("top", "current", "measured", "served", "new_top", "new_rate"),
    [
        # m = min(measured, current)
        (10.0, 12.0, 16.0, None, 11.0, 0.7 * 11.0),  # probing above the top: halfway to m
        (10.0, 12.0, 8.0, None, 8.0, 0.7 * 8.0),  # probing, but served less than the top: m
        (10.0, 9.0, 8.0, None, 8.0 * 0.85, 0.7 * 8.0),  # refused below the top: fast convergence
        # the cycle saw 7.6 served: the top is not set below it, and sending resumes there
        (10.0, 9.0, 8.0, 7.6, 7.6, 7.6),
        (10.0, 12.0, 8.0, 7.6, 7.6, 7.6),  # probing: the top is no higher than that either
        (10.0, 12.0, 16.0, 11.8, 11.8, 11.8),  # probing, halfway to m is below what was served
        (10.0, 9.0, 8.0, 5.0, 8.0 * 0.85, 0.7 * 8.0),  # never below fast convergence
    ],
)
def test_adapter_cut_rules(
    top: float, current: float, measured: float, served: float | None, new_top: float,
    new_rate: float,
) -> None:
    adapter = cubic_adapter(top, measured)
    adapter.cycle = _Cycle(served)
    adapter._rate = current  # the rate in force at the throttle
    assert adapter.meter.rate_at(22.0) == pytest.approx(measured)
    assert adapter.on_throttle(22.0, resume_at=23.0) == pytest.approx(new_rate)
    assert adapter.w_max == pytest.approx(new_top)


def test_a_slow_start_ends_no_lower_than_what_its_cycle_saw_served() -> None:
    """Against a strict server (burst 1) the first 429 comes after one success: the slow start
    begins at about 1 req/s and is refused at 5.75 for a server of 5. One doubling ago (2.9)
    was served, but the cycle saw 4.3 served: the top starts there, not at 2.9 (traced at
    5/s, burst 1: a pull at 1.67 of its ideal time, 1.23 with this rule)."""
    adapter = RateAdapter(doubling=1.0, growth_cap=100.0)
    adapter.on_success(0.0)
    adapter.on_throttle(0.01, resume_at=1.0)  # slow start from the measured rate
    adapter.cycle = _Cycle(4.3)
    adapter._rate = 5.75
    assert adapter.on_throttle(4.5, resume_at=5.5) == pytest.approx(4.3)
    assert adapter.phase == "cubic" and adapter.w_max == pytest.approx(4.3)
    told_nothing = RateAdapter(doubling=1.0, growth_cap=100.0)
    told_nothing.on_success(0.0)
    told_nothing.on_throttle(0.01, resume_at=1.0)
    told_nothing.cycle = _Cycle(None)
    told_nothing._rate = 5.75
    told_nothing.on_throttle(4.5, resume_at=5.5)
    assert told_nothing.w_max is not None and told_nothing.w_max <= 5.75 / 2


def test_adapter_floor_cap_and_growth_cap() -> None:
    adapter = RateAdapter(min_rate=0.5, max_rate=8.0)
    assert adapter.rate == 8.0  # the cap applies from the start
    for i in range(30):
        adapter.on_throttle(i * 2.0)
    assert adapter.rate == 0.5  # never below the floor
    app_limited = cubic_adapter(10.0, 2.0, growth_cap=2.0)  # the pull only uses 2 req/s
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


@pytest.mark.parametrize(
    ("top", "burst", "stretched"),
    [(1.0, 1, True), (2.0, 2, True), (5.0, 5, True), (20.0, 10, False), (10.0, 30, False)],
)
def test_a_probe_spends_the_servers_burst_after_a_hundred_requests(
    top: float, burst: int, stretched: bool
) -> None:
    """A probe costs one refusal when what it sent above the server's rate has spent the
    server's burst. Sent from a top at the server's rate, that takes at least
    ``probe_requests`` (100) requests: at 2 req/s, burst 2, a 20 s curve would spend it
    after 34 requests; at 20 req/s, burst 10, the 20 s curve already takes longer."""
    adapter = cubic_adapter(top, top, burst=burst)
    assert adapter.cycle.burst == burst
    adapter._rate = top * 0.9  # refused below the top: the next top is lower
    adapter.on_throttle(22.0, resume_at=23.0)
    new_top = adapter.w_max
    assert new_top is not None and new_top < top
    curve = adapter.cubic
    above = curve.start + curve.k * curve.period  # where the curve passes the top

    def excess(seconds: float, steps: int = 4000) -> float:  # sent above the top
        dt = seconds / steps
        return sum((curve.rate_at(above + (i + 0.5) * dt) - new_top) * dt for i in range(steps))

    hundred = 100.0 / new_top  # seconds of 100 requests at the top
    assert excess(hundred) <= burst * 1.001
    assert (curve.probe_period > 20.0) is stretched
    if stretched:  # no slower than that needs
        assert excess(hundred) == pytest.approx(burst, rel=0.01)
    else:
        assert curve.probe_period == 20.0
