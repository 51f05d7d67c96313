"""Frozen configuration of the simulator: the data set, the IAM side and the faults."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

__all__ = ["FaultConfig", "SimConfig"]


def _rate(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within 0..1, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _aware(instance: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime")


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        return (values,)
    return tuple(values)


@attrs.frozen(kw_only=True)
class FaultConfig:
    """What goes wrong, and how often. Every rate is a probability in 0..1 per request.

    Everything is off by default. The random faults (``rate_*``) are exclusive: for each
    search or export request the simulator draws one number from a seeded ``random.Random``
    and picks at most one of them, so their sum must not exceed 1. Fault decisions never
    touch the IAM endpoints.

    * ``rate_429``: 429 with ``Retry-After: <retry_after>`` (whole seconds).
    * ``rate_429_bare``: 429 without ``Retry-After``.
    * ``rate_500``: 500 with a JSON error body (the application failed).
    * ``rate_502`` / ``rate_503``: 502 / 503 with an HTML body, as a gateway sends them.
    * ``rate_disconnect``: the headers and part of the body are sent, then the connection is
      closed, so the client sees a payload error.
    * ``rate_truncated``: status 200 with a JSON body cut in half and a ``Content-Length`` that
      matches the cut body: a valid HTTP response carrying invalid JSON. (For an export, the
      file simply ends early.)
    * ``rate_stall``: the response is delayed by ``stall_seconds`` (longer than a client's
      timeout), then sent normally.
    * ``rate_html_200``: status 200 with ``Content-Type: text/html`` and a small HTML login
      page (with a ``<title>``) instead of the answer, as a captive portal or a misconfigured
      proxy sends it. It hits exports too (unless ``apply_to_export`` is off).
    * ``fail_first``: the first N search/export requests after the faults were set answer
      ``fail_first_status`` (503 by default), before any random draw.
    * ``rate_limit``: requests per second allowed per token (token bucket holding
      ``rate_limit_burst`` requests, refilled at ``rate_limit`` per second on the simulator's
      clock); beyond it the answer is 429 with ``Retry-After``. ``None`` turns it off.
      Setting new faults at run time (``SimServer.set_faults`` / ``update_faults``) may change
      both; doing so **resets every token's bucket to full** (the new limit applies from the
      next request, after one full burst), as a gateway that reloads its limits forgets the
      old counters.
    * ``shuffle_ties``: records with equal sort keys come back in a different order on every
      request, as a sharded search index may return them.
    * ``insert_every`` / ``insert_count``: every ``insert_every``-th search request first
      inserts ``insert_count`` new records with ``createdAt`` inside the data set's span
      (live data: offsets shift while a pull runs). 0 turns it off.
    * ``count_cap``: the reported ``count`` of a list answer is at most this many records, as
      Elasticsearch's default ``track_total_hits`` reports at most 10,000 hits (without saying
      "greater than or equal" here: the body keeps its ``{"count", "items"}`` shape). Pages
      are unaffected and the ``offset_ceiling`` still applies on its own. ``None``: no cap.
    * ``count_extra``: the reported ``count`` is this many records too high, as a stale count
      that still includes deleted records; the pages hold only the real records, so a walk
      ends on a short page before the count is reached. Applied before ``count_cap``:
      ``count = min(true_count + count_extra, count_cap)``.
    * ``missing_id_every``: every N-th record of the data set (the records whose rid, their
      stable insertion number, satisfies ``(rid + 1) % N == 0``; independent of the seed and
      the same on every request, inserted records included) is served without its ``id`` key
      even when ``id`` is in ``fields``, in lists and downloads alike. With
      ``missing_id_null`` the key is kept as ``"id": null``. 0 turns it off. The records
      still exist: the ground truth (``SimServer.matching_ids``, ``matching_count``,
      ``records``) keeps their ids, filters on ``id`` still find them, and
      ``SimServer.ids_served_without_id`` lists the ones served without one.
    * ``apply_to_export``: whether the faults above also hit ``format=`` downloads.
    * ``seed``: seed of the fault decisions; ``None`` derives it from :attr:`SimConfig.seed`.
    """

    rate_429: float = attrs.field(default=0.0, validator=_rate)
    rate_429_bare: float = attrs.field(default=0.0, validator=_rate)
    retry_after: int = attrs.field(default=1, validator=_non_negative)
    rate_500: float = attrs.field(default=0.0, validator=_rate)
    rate_502: float = attrs.field(default=0.0, validator=_rate)
    rate_503: float = attrs.field(default=0.0, validator=_rate)
    rate_disconnect: float = attrs.field(default=0.0, validator=_rate)
    rate_truncated: float = attrs.field(default=0.0, validator=_rate)
    rate_stall: float = attrs.field(default=0.0, validator=_rate)
    stall_seconds: float = attrs.field(default=30.0, validator=_non_negative)
    fail_first: int = attrs.field(default=0, validator=_non_negative)
    fail_first_status: int = attrs.field(default=503)
    rate_limit: float | None = attrs.field(default=None)
    rate_limit_burst: int = attrs.field(default=1, validator=_non_negative)
    shuffle_ties: bool = False
    insert_every: int = attrs.field(default=0, validator=_non_negative)
    insert_count: int = attrs.field(default=1, validator=_non_negative)
    rate_html_200: float = attrs.field(default=0.0, validator=_rate)
    count_cap: int | None = attrs.field(default=None)
    count_extra: int = attrs.field(default=0, validator=_non_negative)
    missing_id_every: int = attrs.field(default=0, validator=_non_negative)
    missing_id_null: bool = False
    apply_to_export: bool = True
    seed: int | None = None

    def __attrs_post_init__(self) -> None:
        total = sum(rate for _, rate in self.random_rates())
        if total > 1.0 + 1e-9:
            raise ValueError(f"the random fault rates add up to {total:.3f}, more than 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be > 0 or None")
        if self.count_cap is not None and self.count_cap < 1:
            raise ValueError("count_cap must be >= 1 or None")
        if self.fail_first_status not in (429, 500, 502, 503):
            raise ValueError("fail_first_status must be one of 429, 500, 502, 503")

    def random_rates(self) -> list[tuple[str, float]]:
        """The exclusive random faults as ``(kind, rate)`` pairs, in draw order."""
        return [
            ("429", self.rate_429),
            ("429_bare", self.rate_429_bare),
            ("500", self.rate_500),
            ("502", self.rate_502),
            ("503", self.rate_503),
            ("disconnect", self.rate_disconnect),
            ("truncated", self.rate_truncated),
            ("stall", self.rate_stall),
            ("html_200", self.rate_html_200),
        ]

    def reported_count(self, true_count: int) -> int:
        """The ``count`` a list answer reports for ``true_count`` matching records."""
        count = true_count + self.count_extra
        return count if self.count_cap is None else min(count, self.count_cap)

    def body_key(self) -> tuple[object, ...]:
        """The settings that change the body of a normal list answer (for caching it)."""
        return (self.count_cap, self.count_extra, self.missing_id_every, self.missing_id_null)

    def id_missing(self, rid: int) -> bool:
        """Whether record ``rid`` is served without its id (see ``missing_id_every``)."""
        every = self.missing_id_every
        return every > 0 and (rid + 1) % every == 0


@attrs.frozen(kw_only=True)
class SimConfig:
    """Everything the simulator needs, fixed at start (faults can change at run time).

    The data set holds ``records`` calls whose ``createdAt`` lies in ``[start, start + span)``;
    ``burst_fraction`` of them are packed into bursts of calls sharing one second, so sorting
    by ``createdAt`` has many ties. Date-times are rendered with the UTC offset ``tz_offset``
    (seconds, Moscow time by default). ``clock`` is the simulator's notion of "now" (token
    expiry and the per-token rate limit); tests inject a controllable one. ``latency`` and
    ``jitter`` (seconds) delay every search/export answer by ``latency + U(0, jitter)``.
    ``record_cache_mb`` bounds the rendered list records kept for reuse (a record with every
    field is about 1.3 kB: a million would take about 1.4 GB; 0 keeps none). It changes the
    simulator's CPU, never what it answers.
    """

    records: int = attrs.field(default=10_000, validator=_non_negative)
    seed: int = 0
    start: datetime = attrs.field(
        factory=lambda: datetime(2026, 1, 1, tzinfo=UTC), validator=_aware
    )
    span: timedelta = timedelta(days=7)
    burst_fraction: float = attrs.field(default=0.3, validator=_rate)
    tz_offset: int = 3 * 3600
    offset_ceiling: int = attrs.field(default=10_000, validator=_non_negative)
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.0, validator=_non_negative)
    token_ttl: int = attrs.field(default=7 * 86400, validator=_non_negative)
    max_token_ttl: int = attrs.field(default=30 * 86400, validator=_non_negative)
    refresh_ttl: int = attrs.field(default=30 * 86400, validator=_non_negative)
    email: str = "demo@example.com"
    password: str = "demo-password"
    user_id: str = "1001"
    company_id: int = 1
    static_tokens: tuple[str, ...] = attrs.field(
        default=("sim-static-token",), converter=_str_tuple
    )
    jwt_secret: str = "callsessions-sim-secret"
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    record_cache_mb: float = attrs.field(default=256.0, validator=_non_negative)
    clock: Callable[[], float] = attrs.field(default=time.time, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.span <= timedelta(0):
            raise ValueError("span must be positive")
