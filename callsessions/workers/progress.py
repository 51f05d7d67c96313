"""Progress of a distributed pull, kept in Redis so that one coordinator sees every machine.

Workers write, the coordinator reads. One Redis hash per run,
``callsessions:progress:<plan fingerprint>:<destination>``, holds one field per window (its
key) whose value is a small JSON object (:class:`WindowProgress`): state, records gathered,
the worker (``host:pid``), the try, requests, 429s, the shared rate and the worker's clock.
A job writes it when it starts, at most every ``interval`` seconds while it pulls, and when it
ends (done, retrying or failed), so a window costs a handful of ``HSET``\\s, whatever its size.
Nothing secret is in it: no token, no password, no URL.

The coordinator folds the hash and the job results into :class:`DistributedProgress` (records
done / planned, windows done, workers active, throttling); :class:`ProgressBar` shows it as
one tqdm bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, cast

import orjson
import redis.asyncio as aioredis
from attrs import frozen

__all__ = [
    "PROGRESS_PREFIX",
    "DistributedProgress",
    "ProgressBar",
    "ProgressReporter",
    "WindowProgress",
    "progress_key",
    "read_progress",
]

PROGRESS_PREFIX = "callsessions:progress:"

State = Literal["running", "retrying", "done", "failed"]


def progress_key(fingerprint: str, destination: str) -> str:
    """The Redis hash holding the progress of one run (a plan into one destination)."""
    return f"{PROGRESS_PREFIX}{fingerprint}:{destination}"


@frozen
class WindowProgress:
    """The last word of a worker about one window."""

    state: State
    records: int
    worker: str
    attempt: int
    requests: int = 0
    throttled: int = 0
    rate: float | None = None
    #: the worker's wall clock (s) when it wrote this
    updated: float = 0.0
    error: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "state": self.state,
                "records": self.records,
                "worker": self.worker,
                "attempt": self.attempt,
                "requests": self.requests,
                "throttled": self.throttled,
                "rate": self.rate,
                "updated": round(self.updated, 3),
                "error": self.error,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> WindowProgress | None:
        """The progress in ``raw``; None for anything that is not one (never raises)."""
        try:
            d = orjson.loads(raw)
            return cls(
                state=d["state"],
                records=int(d["records"]),
                worker=str(d["worker"]),
                attempt=int(d["attempt"]),
                requests=int(d.get("requests", 0)),
                throttled=int(d.get("throttled", 0)),
                rate=None if d.get("rate") is None else float(d["rate"]),
                updated=float(d.get("updated", 0.0)),
                error=d.get("error"),
            )
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            return None


class ProgressReporter:
    """Writes one window's progress for one try (the worker side).

    ``update`` is cheap to call after every page: it writes at most every ``interval``
    seconds. ``finish`` always writes. Every write refreshes the hash's TTL.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        window: str,
        *,
        worker: str,
        attempt: int,
        interval: float = 0.5,
        ttl: float = 86400.0,
        rate: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._key = key
        self._window = window
        self.worker = worker
        self.attempt = attempt
        self._interval = interval
        self._ttl_ms = max(1000, round(ttl * 1000))
        self._rate = rate
        self._clock = clock
        self._last = -float("inf")

    async def _write(
        self, state: State, records: int, summary: Any, error: str | None = None
    ) -> None:
        progress = WindowProgress(
            state=state,
            records=records,
            worker=self.worker,
            attempt=self.attempt,
            requests=int(getattr(summary, "requests", 0)),
            throttled=int(getattr(summary, "throttled", 0)),
            rate=self._rate(),
            updated=self._clock(),
            error=error,
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key, self._window, progress.to_bytes().decode())
            pipe.pexpire(self._key, self._ttl_ms)
            await pipe.execute()

    async def start(self) -> None:
        """The try has begun (0 records)."""
        self._last = time.monotonic()
        await self._write("running", 0, None)

    async def update(self, records: int, summary: Any) -> None:
        """``records`` gathered so far; written when ``interval`` has passed since the last."""
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            await self._write("running", records, summary)

    async def finish(
        self, state: State, records: int, summary: Any, error: str | None = None
    ) -> None:
        """The try ended: ``done``, ``retrying`` (arq runs it again) or ``failed``."""
        await self._write(state, records, summary, error)


async def read_progress(redis: aioredis.Redis, key: str) -> dict[str, WindowProgress]:
    """Every window's progress of one run, by window key (unreadable entries left out)."""
    raw = await cast(Awaitable[dict[Any, Any]], redis.hgetall(key))
    out: dict[str, WindowProgress] = {}
    for field, value in raw.items():
        progress = WindowProgress.from_bytes(value)
        if progress is not None:
            out[field.decode() if isinstance(field, bytes) else str(field)] = progress
    return out


@frozen
class DistributedProgress:
    """One snapshot of a distributed pull, as the coordinator sees it."""

    #: records in finished windows plus those gathered so far by running ones
    records: int
    #: the plan's estimated total
    planned: int
    windows: int
    windows_done: int
    windows_failed: int
    #: distinct workers that reported on a running window recently
    workers_active: int
    #: 429s answered to this run's jobs so far
    throttled: int
    #: the shared rate limit last reported (requests/s), None while unlimited
    rate: float | None
    #: extra tries of windows (retries and kill recoveries) so far
    retries: int


def snapshot(
    progress: Mapping[str, WindowProgress],
    finished: Mapping[str, int],
    *,
    planned: int,
    windows: int,
    failed: int,
    stale_after: float,
    now: float | None = None,
) -> DistributedProgress:
    """Fold the workers' progress and the finished windows (key -> records) into a snapshot.
    A running entry older than ``stale_after`` seconds (a killed worker's last word) does not
    count its worker as active."""
    now = time.time() if now is None else now
    records = sum(finished.values())
    active: set[str] = set()
    throttled = retries = 0
    rate: float | None = None
    latest = -float("inf")
    for key, p in progress.items():
        throttled += p.throttled
        retries += max(0, p.attempt - 1)
        if key not in finished and p.state == "running":
            records += p.records
            if now - p.updated <= stale_after:
                active.add(p.worker)
        if p.updated > latest:
            latest, rate = p.updated, p.rate
    return DistributedProgress(
        records=records,
        planned=planned,
        windows=windows,
        windows_done=len(finished),
        windows_failed=failed,
        workers_active=len(active),
        throttled=throttled,
        rate=rate,
        retries=retries,
    )


class ProgressBar:
    """A tqdm bar for ``run_distributed(on_progress=...)``: records done / planned, with
    windows, active workers and throttling beside it. Call ``close`` at the end."""

    def __init__(self, *, file: Any = None, desc: str = "pull") -> None:
        from tqdm import tqdm

        self._bar: Any = tqdm(
            total=0,
            unit="rec",
            unit_scale=True,
            desc=desc,
            file=file if file is not None else sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )

    def __call__(self, p: DistributedProgress) -> None:
        bar = self._bar
        if bar.total != p.planned:
            bar.total = p.planned
        bar.n = p.records
        text = f"windows {p.windows_done}/{p.windows}, workers {p.workers_active}"
        if p.windows_failed:
            text += f", {p.windows_failed} failed"
        if p.throttled:
            rate = f" at {p.rate:.3g}/s" if p.rate is not None else ""
            text += f", {p.throttled} throttled{rate}"
        bar.set_postfix_str(text, refresh=False)
        bar.refresh()

    def close(self) -> None:
        self._bar.close()
