"""The rate limiter's arithmetic on plain numbers: the token bucket, the meter of successes
per second, and the CUBIC curve of cuts, recovery and probes.
"""

from __future__ import annotations

import pytest
from _ratelimit_support import feed

from callsessions.http.ratelimit import CubicCalculator, RateMeter, TokenBucket

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


def test_meter_counts_successes_per_second() -> None:
    meter = RateMeter()
    assert meter.rate_at(0.0) == 0.0
    feed(meter, 4.0, 0.0, 10.0)
    assert meter.rate_at(10.0) == pytest.approx(4.0, rel=0.05)


def test_meter_warmup_reads_a_burst_over_one_second() -> None:
    meter = RateMeter(warmup=1.0)
    for i in range(10):
        meter.record(i * 0.005)  # ten answers in 50 ms: the server's burst
    assert meter.rate_at(0.05) == pytest.approx(10.0)  # not 200/s


def test_meter_leaves_pauses_out_and_counts_idle_gaps() -> None:
    paused, plain = RateMeter(), RateMeter()
    for meter in (paused, plain):
        feed(meter, 4.0, 0.0, 5.0)
    paused.pause(5.0, 6.0)
    for meter in (paused, plain):
        feed(meter, 4.0, 6.0, 7.0)
    assert paused.rate_at(7.0) == pytest.approx(4.0, rel=0.05)
    # the second without sending reads as a slow bucket
    assert plain.rate_at(7.0) < 0.92 * paused.rate_at(7.0)
    idle = RateMeter()
    feed(idle, 4.0, 0.0, 5.0)
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
