"""One window of a plan into one part file: the unit of work of a distributed pull.

Nothing here needs arq or Redis, so the same function serves an arq job, a process of a plain
``asyncio.TaskGroup`` or a test::

    plan = PullPlan.from_json(plan_json)
    result = await pull_window(client, plan.select([i]), "calls/")

The window's records are gathered in memory (a window holds at most ~80 % of the offset
ceiling: 8,000 records by default), verified (the walk's own verification, then: every record
has an id, no id twice) and only then written, as ``part-<window key>.<ext>``, to a temporary
name renamed into place (``callsessions.sinks.write_part``). A retried window therefore
*replaces* its part: a crash or a kill at any moment leaves either the previous complete part
or none, never a half-written one and never a record twice.

Names shared by the workers and the coordinator live here too: the plan's fingerprint, the
run's destination hash and the job id of a window.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from attrs import frozen

from callsessions import CallSessionsClient, CallSessionsError, IncompletePullError, PullPlan
from callsessions.sinks import window_key, write_part

__all__ = [
    "PartFormat",
    "WindowFailedError",
    "WindowResult",
    "destination_hash",
    "job_id_for",
    "plan_fingerprint",
    "pull_window",
]

PartFormat = Literal["jsonl", "parquet"]

#: what a job reports as it goes: records gathered so far and the pull's summary
PageCallback = Callable[[int, Any], Awaitable[None]]


class WindowFailedError(CallSessionsError):
    """A window that a worker gave up on (a permanent error, or its last try failed).

    ``window`` is the window's key, ``reason`` a one-line cause (the error's type and message,
    which never hold a token)."""

    def __init__(self, window: str, reason: str) -> None:
        self.window = window
        self.reason = reason
        super().__init__(f"window {window} failed: {reason}")


def plan_fingerprint(plan: PullPlan) -> str:
    """A short, stable name of a plan: the first 16 hex digits of the SHA-256 of
    ``plan.to_json()``. The same plan always gets the same fingerprint, on any machine."""
    return hashlib.sha256(plan.to_json()).hexdigest()[:16]


def destination_hash(out_dir: str | os.PathLike[str], format: PartFormat) -> str:
    """8 hex digits naming where a run writes (the absolute directory and the part format),
    so two coordinators pulling one plan into two directories never share a job."""
    where = f"{Path(out_dir).resolve()}\n{format}"
    return hashlib.sha256(where.encode()).hexdigest()[:8]


def job_id_for(fingerprint: str, destination: str, key: str) -> str:
    """The arq job id of one window: ``callsessions:<plan fingerprint>:<destination>:<window
    key>``. Deterministic, so enqueueing a window twice yields one job (arq refuses a job id
    that is queued, running or has a result)."""
    return f"callsessions:{fingerprint}:{destination}:{key}"


@frozen
class WindowResult:
    """What one pulled window produced: its key, its part file (name in the directory), the
    records written, the server's count of the window (summed over the parts it was split
    in when it overflowed; None when the server sent none) and what it cost."""

    window: str
    file: str
    records: int
    count: int | None
    requests: int
    retries: int
    throttled: int
    elapsed: float

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "file": self.file,
            "records": self.records,
            "count": self.count,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "elapsed": round(self.elapsed, 3),
        }

    @classmethod
    def from_json(cls, data: Any) -> WindowResult:
        """A result from ``to_json``'s dict; ValueError for anything else."""
        try:
            count = data["count"]
            result = cls(
                window=str(data["window"]),
                file=str(data["file"]),
                records=int(data["records"]),
                count=None if count is None else int(count),
                requests=int(data["requests"]),
                retries=int(data["retries"]),
                throttled=int(data["throttled"]),
                elapsed=float(data["elapsed"]),
            )
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"not a window result: {data!r}") from None
        if Path(result.file).name != result.file or result.records < 0:
            raise ValueError(f"not a window result: {data!r}")
        return result


def check_ids(key: str, records: Sequence[dict[str, Any]]) -> None:
    """Every record has an id and no id comes twice; else IncompletePullError (the walk
    guarantees both, so this is a last line of defence before a part is written)."""
    ids = [r.get("id") for r in records]
    missing = sum(1 for i in ids if i is None)
    if missing:
        raise IncompletePullError(f"window {key}: {missing} record(s) without an id")
    if len(set(ids)) != len(ids):
        raise IncompletePullError(f"window {key}: {len(ids) - len(set(ids))} duplicate id(s)")


async def pull_window(
    client: CallSessionsClient,
    plan: PullPlan,
    out_dir: str | os.PathLike[str],
    *,
    format: PartFormat = "jsonl",
    on_page: PageCallback | None = None,
) -> WindowResult:
    """Pull the single window of ``plan`` (``plan.select([i])``) and write it as its part of
    ``out_dir``, replacing any earlier part of that window.

    ``on_page(records_so_far, summary)`` is awaited after every page (progress). Errors of the
    pull propagate (an incomplete window raises ``IncompletePullError``); nothing is written
    unless the window is complete and verified.
    """
    if len(plan.windows) != 1:
        raise ValueError(f"pull_window takes a plan of one window, not {len(plan.windows)}")
    key = window_key(plan.windows[0])
    started = time.monotonic()
    records: list[dict[str, Any]] = []
    counts: list[int | None] = []
    stream = client.pages(plan, raw=True)
    async with stream:
        async for page in stream:
            records.extend(page.items)
            if page.offset == 0:  # the first page of the window, or of a part it was split in
                counts.append(page.count)
            if on_page is not None:
                await on_page(len(records), stream.summary)
    check_ids(key, records)
    info = await asyncio.to_thread(
        write_part, Path(out_dir), key, records, format, plan.query.fields
    )
    summary = stream.summary
    known = [c for c in counts if c is not None]
    return WindowResult(
        window=key,
        file=info.file,
        records=info.records,
        count=sum(known) if known and len(known) == len(counts) else None,
        requests=summary.requests,
        retries=summary.retries,
        throttled=summary.throttled,
        elapsed=time.monotonic() - started,
    )
