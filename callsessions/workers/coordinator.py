"""The coordinator of a distributed pull: enqueue one job per window, wait, verify, report.

::

    async with CallSessionsClient(base_url, token=token) as client:
        summary = await run_distributed(query, "redis://HOST:6379/0", "calls/", client=client)
    print(*summary.lines(), sep="\\n")
    raise SystemExit(summary.exit_code)

Step by step:

1. **Plan**: a ``PullPlan`` is taken as it is; a ``SessionQuery`` is planned with ``client``,
   unless the directory already holds a plan of that query (``.callsessions-plan.json``,
   written at the start of every run): then that plan is reused, so running the same command
   again continues the same pull even if the data changed meanwhile.
2. **What is missing**: a window's part counts as done only with evidence tied to this plan's
   fingerprint: a successful job result in Redis, or the previous manifest of this plan, that
   names the same file with the same number of records as the file holds. Every other window
   is enqueued (a stale failed result is removed first; a job already queued or running is
   left alone and waited for: job ids are deterministic, enqueueing is idempotent).
3. **Wait** for every job's result, feeding ``on_progress`` from the workers' progress hash.
4. **Verify** each window: a successful result, its part present with the records the job
   wrote (at least the server's count); then no id in two parts.
5. **Manifest**: ``_manifest.json`` lists the verified parts and, in its metadata, the plan
   fingerprint, ``complete`` and every window (count planned, file, records, status, error).

Parts are on a file system every worker and the coordinator share, at the same path.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix

from callsessions import CallSessionsClient, InvalidQueryError, PullPlan, SessionQuery
from callsessions.sinks import (
    MANIFEST,
    PartInfo,
    read_ids,
    read_manifest,
    window_key,
    write_manifest,
)
from callsessions.sinks.parts import count_records

from .directory import (
    PLAN_FILE,
    check_directory,
    load_plan,
    part_files,
    prepare_dir,
    resolve_plan,
    save_plan,
)
from .jobs import JOB_NAME, QUEUE_NAME, JobSpec, dumps, error_text, loads
from .progress import DistributedProgress, progress_key, read_progress, snapshot
from .summary import DistributedSummary, WindowOutcome
from .window import (
    PartFormat,
    WindowResult,
    destination_hash,
    job_id_for,
    plan_fingerprint,
)

__all__ = ["PLAN_FILE", "load_plan", "run_distributed"]

ProgressCallback = Callable[[DistributedProgress], None]


async def _connect(
    redis: ArqRedis | aioredis.Redis | str, queue_name: str
) -> tuple[ArqRedis, bool]:
    """The ArqRedis a run uses, with this package's JSON serializer, and whether the run owns
    it: a pool opened from a URL is closed at the end, a caller's client is left open."""
    options: dict[str, Any] = {
        "job_serializer": dumps,
        "job_deserializer": loads,
        "default_queue_name": queue_name,
    }
    if isinstance(redis, str):
        return await create_pool(RedisSettings.from_dsn(redis), **options), True
    return ArqRedis(connection_pool=redis.connection_pool, **options), False


def _outcome_of(key: str, raw: bytes | None) -> WindowOutcome | None:
    """A window's outcome from its stored arq result (None when there is none)."""
    if raw is None:
        return None
    try:
        data = loads(raw)
        tries = int(data.get("t") or 1)
        if data.get("s"):
            result = WindowResult.from_json(data.get("r"))
            worker = str(data["r"].get("worker", ""))
            return WindowOutcome(key, "done", result=result, tries=tries, worker=worker)
        return WindowOutcome(key, "failed", error=error_text(data.get("r")), tries=tries)
    except (ValueError, TypeError, AttributeError, KeyError):
        return WindowOutcome(key, "failed", error="unreadable job result")


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


class _Run:
    """One coordinator run: the plan's names, the pool, and what is known per window."""

    def __init__(
        self, plan: PullPlan, pool: ArqRedis, out: Path, format: PartFormat, queue_name: str
    ) -> None:
        self.plan = plan
        self.pool = pool
        self.out = out
        self.format: PartFormat = format
        self.queue_name = queue_name
        self.fingerprint = plan_fingerprint(plan)
        self.destination = destination_hash(out, format)
        self.progress_key = progress_key(self.fingerprint, self.destination)
        self.keys = [window_key(w) for w in plan.windows]
        self.job_ids = {k: job_id_for(self.fingerprint, self.destination, k) for k in self.keys}
        self.outcomes: dict[str, WindowOutcome] = {}

    async def results(self, keys: Sequence[str]) -> dict[str, WindowOutcome]:
        """The stored outcomes of these windows' jobs, and ``lost`` for a job that has
        neither a result nor a job entry (read in one transaction: no finish in between)."""
        found: dict[str, WindowOutcome] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            async with self.pool.pipeline(transaction=True) as pipe:
                pipe.mget([result_key_prefix + self.job_ids[k] for k in chunk])
                for k in chunk:
                    pipe.exists(job_key_prefix + self.job_ids[k])
                raw, *queued = await pipe.execute()
            for k, value, exists in zip(chunk, raw, queued, strict=True):
                outcome = _outcome_of(k, value)
                if outcome is None and not exists:
                    outcome = WindowOutcome(k, "lost", error="no job and no result in Redis")
                if outcome is not None:
                    found[k] = outcome
        return found

    def previous_manifest(self) -> dict[str, tuple[int, int | None]]:
        """Window -> (records, server count) of the parts the previous manifest of this plan
        called done."""
        try:
            manifest = read_manifest(self.out)
        except (FileNotFoundError, ValueError):
            return {}
        if manifest.metadata.get("plan_fingerprint") != self.fingerprint:
            return {}
        counts = {w.get("window"): w.get("count") for w in manifest.metadata.get("windows", [])
                  if isinstance(w, dict) and w.get("status") == "done"}
        return {
            p.window: (p.records, _int_or_none(counts[p.window]))
            for p in manifest.parts
            if p.window in counts
        }

    def spec(self, index: int) -> dict[str, Any]:
        one = self.plan.select([index])
        return JobSpec(
            plan=one.to_json().decode(),
            window=self.keys[index],
            out=str(self.out),
            format=self.format,
            progress=self.progress_key,
        ).to_json()

    async def enqueue(self, indexes: Sequence[int], stale: Sequence[str]) -> int:
        """Remove stale results, enqueue these windows; how many jobs were new."""
        if stale:
            await self.pool.delete(*[result_key_prefix + self.job_ids[k] for k in stale])
        new = 0
        for i in indexes:
            job = await self.pool.enqueue_job(
                JOB_NAME, self.spec(i), _job_id=self.job_ids[self.keys[i]],
                _queue_name=self.queue_name,
            )
            new += job is not None
        return new


def _parts(run: _Run) -> dict[str, str]:
    """Window key -> part file name in the run's format."""
    ext = f".{run.format}"
    return {k: f for k, f in part_files(run.out) if f.endswith(ext)}


def _done_before(
    run: _Run, stored: dict[str, WindowOutcome]
) -> dict[str, tuple[PartInfo, int | None]]:
    """The windows whose part is already good, with the server's count: a successful result
    of this plan's job, or the previous manifest of this plan, names the file, with as many
    records as it holds."""
    previous = run.previous_manifest()
    good: dict[str, tuple[PartInfo, int | None]] = {}
    for key, file in _parts(run).items():
        outcome = stored.get(key)
        result = outcome.result if outcome is not None else None
        claims: list[tuple[int, int | None]] = []
        if key in previous:
            claims.append(previous[key])
        if result is not None and result.file == file:
            claims.append((result.records, result.count))
        if claims:
            records = count_records(run.out / file)
            for claimed, count in claims:
                if claimed == records:
                    good[key] = (PartInfo(key, file, records), count)
                    break
    return good


async def _plan_work(run: _Run) -> tuple[list[int], int]:
    """Mark the windows whose parts are already good as done (skipped); enqueue the rest.
    Returns the indexes to wait for and how many jobs were newly enqueued."""
    stored = await run.results(run.keys)
    good = await asyncio.to_thread(_done_before, run, stored)
    await asyncio.to_thread((run.out / MANIFEST).unlink, missing_ok=True)  # not complete now
    todo: list[int] = []
    stale: list[str] = []
    for i, key in enumerate(run.keys):
        outcome = stored.get(key)
        if key in good:
            part, count = good[key]
            result = outcome.result if outcome is not None else None
            run.outcomes[key] = WindowOutcome(
                key, "done", result=result, skipped=True, part=part, count=count
            )
            continue
        todo.append(i)
        if outcome is not None and outcome.status != "lost":
            stale.append(key)
    return todo, await run.enqueue(todo, stale)


async def _wait(
    run: _Run,
    todo: Sequence[int],
    *,
    poll_interval: float,
    deadline: float | None,
    on_progress: ProgressCallback | None,
    stale_after: float,
) -> None:
    """Poll results (and progress) until every window of ``todo`` has one, or the deadline."""
    pending = [run.keys[i] for i in todo]
    lost_once: set[str] = set()
    while True:
        found = await run.results(pending) if pending else {}
        for key, outcome in found.items():
            if outcome.status == "lost" and key not in lost_once:
                lost_once.add(key)  # tolerate one odd read; twice in a row is real
                continue
            run.outcomes[key] = outcome
        pending = [k for k in pending if k not in run.outcomes]
        if on_progress is not None:
            on_progress(await _snapshot(run, stale_after))
        if not pending or (deadline is not None and time.monotonic() >= deadline):
            break
        await asyncio.sleep(poll_interval)


async def _snapshot(run: _Run, stale_after: float) -> DistributedProgress:
    progress = await read_progress(run.pool, run.progress_key)
    finished = {
        k: o.result.records if o.result else (o.part.records if o.part else 0)
        for k, o in run.outcomes.items()
        if o.status == "done"
    }
    failed = sum(1 for o in run.outcomes.values() if o.status != "done")
    return snapshot(
        progress,
        finished,
        planned=run.plan.estimated_total,
        windows=len(run.keys),
        failed=failed,
        stale_after=stale_after,
    )


def _verify(run: _Run, verify_ids: bool) -> int:
    """Check every finished window against its part; count ids found in two parts."""
    parts = _parts(run)
    for key in run.keys:
        o = run.outcomes.get(key)
        if o is None:
            run.outcomes[key] = WindowOutcome(key, "pending", error="no result before timeout")
            continue
        if o.status != "done" or o.skipped:
            continue
        assert o.result is not None
        file = parts.get(key)
        part = None if file is None else PartInfo(key, file, count_records(run.out / file))
        if part is None or part.file != o.result.file or part.records != o.result.records:
            held = "no part" if part is None else f"a part of {part.records} records"
            o.mark_failed(
                f"the job wrote {o.result.records} records to {o.result.file} but {run.out} "
                f"holds {held}: do all workers share this directory?"
            )
        elif o.result.count is not None and o.result.records < o.result.count:
            o.mark_failed(f"{o.result.records} records, fewer than the count {o.result.count}")
        else:
            o.part = part
    if not verify_ids:
        return 0
    seen: Counter[str] = Counter()
    for key in run.keys:
        o = run.outcomes[key]
        if o.status == "done" and o.part is not None:
            seen.update(read_ids(run.out / o.part.file))
    return sum(n - 1 for n in seen.values() if n > 1)


def _write_manifest(run: _Run, duplicates: int) -> Path:
    """Write the manifest (step 5): the verified parts, every window's outcome, and
    ``complete`` only when every window is done and no id is in two parts."""
    complete = duplicates == 0 and all(o.status == "done" for o in run.outcomes.values())
    windows = []
    for key, window in zip(run.keys, run.plan.windows, strict=True):
        windows.append(run.outcomes[key].manifest_entry(window.count))
    parts = [o.part for o in run.outcomes.values() if o.status == "done" and o.part]
    metadata = {"plan_fingerprint": run.fingerprint, "complete": complete, "windows": windows}
    write_manifest(
        run.out, parts, fields=run.plan.query.fields, format=run.format, metadata=metadata
    )
    return run.out / MANIFEST


async def run_distributed(
    plan: PullPlan | SessionQuery,
    redis: ArqRedis | aioredis.Redis | str,
    out_dir: str | os.PathLike[str],
    *,
    client: CallSessionsClient | None = None,
    format: PartFormat = "jsonl",
    queue_name: str = QUEUE_NAME,
    poll_interval: float = 0.5,
    max_wait: float | None = None,
    on_progress: ProgressCallback | None = None,
    verify_ids: bool = True,
    stale_after: float = 60.0,
) -> DistributedSummary:
    """Pull ``plan`` (or plan the query with ``client``) on arq workers into the dataset
    directory ``out_dir`` (see the module docstring), and say what happened.

    ``redis`` is a URL or a client (its connections are used, with this package's JSON
    serializer). ``max_wait`` bounds the wait in seconds (None: until every window has a
    result); windows without one are reported ``pending`` and stay queued, so running again
    waits for them. ``on_progress`` gets a snapshot every ``poll_interval`` seconds.
    ``verify_ids=False`` skips reading every id back (memory ~100 bytes an id).
    A failed window does not raise: ``summary.failed`` names it and ``exit_code`` is 1.
    """
    started = time.monotonic()
    if format not in ("jsonl", "parquet"):
        raise InvalidQueryError("format", format, "allowed: jsonl, parquet")
    out = prepare_dir(out_dir)
    chosen, source = await resolve_plan(plan, client, out)
    pool, owned = await _connect(redis, queue_name)
    try:
        run = _Run(chosen, pool, out, format, queue_name)
        check_directory(out, chosen, format, run.keys)
        save_plan(out, chosen, source)
        todo, enqueued = await _plan_work(run)
        await _wait(
            run,
            todo,
            poll_interval=poll_interval,
            deadline=None if max_wait is None else started + max_wait,
            on_progress=on_progress,
            stale_after=stale_after,
        )
        duplicates = await asyncio.to_thread(_verify, run, verify_ids)
        manifest = await asyncio.to_thread(_write_manifest, run, duplicates)
    finally:
        if owned:
            await pool.aclose()
    return DistributedSummary.of(
        out_dir=out,
        manifest=manifest,
        fingerprint=run.fingerprint,
        outcomes=[run.outcomes[k] for k in run.keys],
        planned=chosen.estimated_total,
        enqueued=enqueued,
        duplicates=duplicates,
        elapsed=time.monotonic() - started,
    )
