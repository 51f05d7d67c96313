"""The bulk pull into an output: the nightly job's workflow as one library call.

``await client.pull_to(query, "calls.jsonl")`` plans the range (or loads the checkpoint
of an interrupted run), locks the output, walks every window, writes each window through the
sink and commits it, records the window in the checkpoint, and completes the output at the
end. File work (writes, fsyncs, renames) runs in a worker thread, so requests keep flowing
while a window is made durable. Every check that can fail does so before the first request.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import attrs
import orjson
from attrs import frozen

from callsessions._files import OutputLock
from callsessions.errors import CallSessionsError, IncompletePullError
from callsessions.http.pipeline import RequestPipeline
from callsessions.protocol.planning import PullPlan
from callsessions.protocol.query import SessionQuery
from callsessions.protocol.records import Page
from callsessions.pull.checkpoint import Checkpoint
from callsessions.pull.engine import PullStream, PullSummary
from callsessions.pull.pages import pull_pages
from callsessions.pull.planner import plan_with_first_page, pull_query

if TYPE_CHECKING:
    from callsessions.sinks import Sink

__all__ = ["CheckpointError", "PullOutcome", "PullProgress", "checkpoint_path", "pull_to"]

log = logging.getLogger("callsessions")

T = TypeVar("T")

#: a ``RawLine``'s bytes (its third member), read for every record written
_LINE_BYTES = operator.itemgetter(2)


class CheckpointError(CallSessionsError, ValueError):
    """The output's checkpoint does not allow this run: one is left from an interrupted pull
    (and ``resume`` is off), it belongs to another query or format, or it is damaged. Raised
    before any request; nothing is changed."""


class PullProgress(Protocol):
    """What ``pull_to`` reports as it goes (the CLI's progress bar is one)."""

    def start(self, total: int, done: int) -> None:
        """The plan's estimated total, and how many records an earlier run wrote."""

    def advance(self, records: int, summary: PullSummary) -> None:
        """``records`` more were written; ``summary`` is the pull's so far."""


@frozen
class PullOutcome:
    """What a finished ``pull_to`` did: its summary (planning included), the output, how
    many records an interrupted earlier run had written, whether the output was found
    complete already (nothing pulled), and whether ``max_items`` stopped it early."""

    summary: PullSummary
    path: Path
    resumed_records: int = 0
    already_complete: bool = False
    stopped_at_max_items: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary.as_dict(),
            "output": str(self.path),
            "resumed_records": self.resumed_records,
            "already_complete": self.already_complete,
            "stopped_at_max_items": self.stopped_at_max_items,
        }

    def line(self) -> str:
        if self.already_complete:
            return f"{self.path} was completed by an earlier run: nothing to pull"
        text = self.summary.line()
        if self.resumed_records:
            n = self.resumed_records
            text += f" (resumed after {n} {'record' if n == 1 else 'records'})"
        if self.stopped_at_max_items:
            text += " (stopped at max_items)"
        return f"{text} -> {self.path}"


def checkpoint_path(out: Path) -> Path:
    """Where a pull into ``out`` keeps its progress: ``<out>.checkpoint``."""
    return out.with_name(out.name + ".checkpoint")


def _described(query: SessionQuery) -> Any:
    return orjson.loads(orjson.dumps(query.describe()))


async def pull_to(
    pipeline: RequestPipeline,
    source: SessionQuery | PullPlan,
    out: str | os.PathLike[str] | Sink,
    *,
    resume: bool = False,
    dedupe: Literal["window", "pull"] = "window",
    concurrency: int | None = None,
    max_items: int | None = None,
    format: str | None = None,
    progress: PullProgress | None = None,
) -> PullOutcome:
    """Pull ``source`` into ``out`` (a path whose extension picks the format, or a sink),
    resumable from ``<out>.checkpoint``, through ``pipeline``; see
    ``CallSessionsClient.pull_to``."""
    started = time.monotonic()
    if max_items is not None and (isinstance(max_items, bool) or max_items < 1):
        raise CheckpointError(f"max_items must be a positive integer, got {max_items!r}")
    from callsessions.sinks import format_for, open_sink

    query = source.query if isinstance(source, PullPlan) else source
    if isinstance(out, str | os.PathLike):
        fmt = format_for(out)
        sink = open_sink(out, query.fields, format=format)
    else:
        sink, fmt = out, type(out).__name__
    resumable = sink.path != Path("-")
    lock = OutputLock(sink.path) if resumable else None
    if lock is not None:
        lock.acquire()
    # One thread does all of the output's file work, in order (an SQLite connection, say,
    # belongs to the thread that opened it); the event loop goes on meanwhile.
    io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callsessions-sink")
    try:
        sink.check()
        run = _Run(pipeline, sink, fmt, resumable, progress, dedupe, concurrency, max_items, io)
        return await run.go(source, _described(query), resume, started)
    finally:
        io.shutdown(wait=True)
        if lock is not None:
            lock.release()


class _Run:
    """One ``pull_to``: the sink, the checkpoint and the stream between them."""

    def __init__(
        self,
        pipeline: RequestPipeline,
        sink: Sink,
        fmt: str | None,
        resumable: bool,
        progress: PullProgress | None,
        dedupe: Literal["window", "pull"],
        concurrency: int | None,
        max_items: int | None,
        io: ThreadPoolExecutor,
    ) -> None:
        self._io = io
        self.pipeline = pipeline
        self.sink = sink
        #: the output's format, as the checkpoint records it
        self.format = fmt
        #: False for stdout: no checkpoint, no lock
        self.resumable = resumable
        self.progress = progress
        self.dedupe: Literal["window", "pull"] = dedupe
        self.concurrency = concurrency
        self.max_items = max_items
        self.cp_path = checkpoint_path(sink.path)
        #: the body of the first page, when planning counted with it (see ``planner``)
        self.first_page: bytes | None = None

    async def _off(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the output's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def _prechecks(self, resume: bool) -> Checkpoint | None:
        """The checkpoint to resume (None: a new pull), checked before any request."""
        cp_exists = self.resumable and self.cp_path.exists()
        leftover = self.sink.partial_path
        partial = leftover if leftover != self.sink.path and leftover.exists() else None
        if cp_exists and not resume:
            others = f" and {partial}" if partial is not None else ""
            raise CheckpointError(
                f"{self.cp_path} is left from an interrupted pull: add --resume to continue "
                f"it, or delete it{others} to start over"
            )
        if partial is not None and not cp_exists:
            raise CheckpointError(
                f"{partial} is left from an interrupted pull but has no checkpoint, so it "
                "cannot be resumed: delete it"
            )
        if not cp_exists:
            if resume:
                log.info("nothing to resume at %s: starting a new pull", self.cp_path)
            return None
        try:
            return Checkpoint.load(self.cp_path)
        except ValueError as exc:
            raise CheckpointError(
                f"cannot read the checkpoint {self.cp_path} ({exc}); delete it to start over"
            ) from None

    async def go(
        self, source: SessionQuery | PullPlan, described: Any, resume: bool, started: float
    ) -> PullOutcome:
        cp = self._prechecks(resume)
        planning = PullSummary()
        if cp is not None:
            if cp.incomplete:
                raise IncompletePullError(
                    f"the pull recorded in {self.cp_path} ended incomplete "
                    f"({'; '.join(cp.incomplete[:3])}); delete it and its partial output "
                    "and pull again"
                )
            reason = cp.mismatch(described, self.format)
            if reason is not None:
                raise CheckpointError(
                    f"{self.cp_path}: {reason}; give the same options as the interrupted "
                    "pull, or delete it to start over"
                )
            if cp.finalizing and not self.sink.partial_path.exists() and self.sink.path.exists():
                # It crashed between completing the output and removing this file.
                await self._off(cp.remove)
                return PullOutcome(planning, self.sink.path, sum(cp.done.values()), True)
            log.info("resuming: %d of %d windows done", len(cp.done), len(cp.plan.windows))
            await self._off(self.sink.open, cp.position)
        else:
            if isinstance(source, PullPlan):
                plan = source
            else:
                ctx = self.pipeline.fresh_context()
                query = pull_query(source, self.pipeline.config.page_size)
                plan, self.first_page = await plan_with_first_page(self.pipeline, query, ctx)
                planning = ctx.summary
            cp = Checkpoint(self.cp_path, plan)
            cp.source, cp.format = described, self.format
            if self.resumable:
                await self._off(cp.save)
            await self._off(self.sink.open, None)
        resumed = sum(cp.done.values())
        try:
            summary, stopped = await self._stream(cp)
            cp.finalizing = True
            if self.resumable:
                await self._off(cp.save)
            await self._off(self.sink.finalize)
        finally:
            await self._off(self.sink.close)
        await self._off(cp.remove)
        overall = _merged(summary, planning, started)
        overall.rate = self.pipeline.rate.rate
        # Values a typed output could not hold (written as null there), by field.
        overall.type_mismatches.update(getattr(self.sink, "type_mismatches", None) or {})
        return PullOutcome(overall, self.sink.path, resumed, False, stopped)

    async def _stream(self, cp: Checkpoint) -> tuple[PullSummary, bool]:
        """Walk the windows not done yet; commit and record each one as it ends."""
        todo = cp.remaining
        resumed = sum(cp.done.values())
        if self.progress is not None:
            self.progress.start(cp.plan.estimated_total, resumed)
        summary = PullSummary()
        # An output that only copies records gets their own bytes: never decoded to dicts
        # and encoded again (the id and the date column are read without building them).
        write_lines = getattr(self.sink, "write_lines", None)
        kind: Any = "lines" if write_lines is not None else True
        # The first page of a fresh plan came with its count: not asked for again.
        first = self.first_page if len(todo) == len(cp.plan.windows) else None
        pages = pull_pages(
            self.pipeline,
            cp.plan.select(todo),
            kind,
            self.concurrency,
            None,
            summary,
            self.dedupe,
            first_page=first,
        )
        stream: PullStream[Page[Any]] = PullStream(pages, summary, records=False)
        in_window, written = 0, 0
        try:
            async with stream:
                async for page in stream:
                    items = page.items
                    if self.max_items is not None and written + len(items) >= self.max_items:
                        items = items[: self.max_items - written]
                    if write_lines is not None:
                        await self._off(write_lines, list(map(_LINE_BYTES, items)))
                    else:
                        await self._off(self.sink.write, items)
                    in_window += len(items)
                    written += len(items)
                    if self.progress is not None:
                        self.progress.advance(len(items), stream.summary)
                    stop = self.max_items is not None and written >= self.max_items
                    if page.final or stop:
                        index = todo[page.window if page.window is not None else 0]
                        await self._commit(cp, index, in_window, stream.summary, stop)
                        in_window = 0
                    if stop:
                        return stream.summary, True
        except IncompletePullError as exc:
            cp.incomplete = [str(p) for p in exc.problems] or [str(exc)]
            if self.resumable:
                await self._off(cp.save)
            raise
        return stream.summary, False

    async def _commit(
        self, cp: Checkpoint, index: int, records: int, summary: PullSummary, partial: bool
    ) -> None:
        """A window ended: make it durable in the output, then record it."""
        from callsessions.sinks import window_key

        key = window_key(cp.plan.windows[index])
        cp.position = await self._off(self.sink.commit, key)
        if summary.problems:
            # A window fell short: its records are in the output, but it must never be
            # resumed (that would write them twice). Saved now, in case the process dies.
            cp.incomplete = [str(p) for p in summary.problems]
        elif not partial:
            cp.done[index] = records
        if self.resumable:
            await self._off(cp.save)


def _merged(pull: PullSummary, planning: PullSummary, started: float) -> PullSummary:
    """The pull's summary with the planning requests added and the whole elapsed time."""
    return attrs.evolve(
        pull,
        requests=pull.requests + planning.requests,
        planning_requests=pull.planning_requests + planning.planning_requests,
        retries=pull.retries + planning.retries,
        throttled=pull.throttled + planning.throttled,
        throttled_seconds=pull.throttled_seconds + planning.throttled_seconds,
        elapsed=time.monotonic() - started,
    )

