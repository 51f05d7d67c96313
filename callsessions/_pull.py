"""The bulk pull engine: windows walked concurrently, in order, verified, checkpointed.

A *producer* task walks the plan's windows in order. For each window it fetches the first
page (which tells the window's count), splits the window if it would need an offset past
the ceiling, and otherwise spawns one task per remaining page. Tasks go into a bounded queue
in order, so memory is bounded by the queue, and requests start as soon as the adaptive
limiter has room, also while the caller is still busy with earlier pages (prefetch).

The *consumer* (the async generator the caller iterates) takes the queue in order, drops
records already seen in the window, and when a window ends, verifies that the unique ids
gathered match the window's count. A window that falls short is walked again, then split into
single-page slices, a bounded number of times; what still cannot be completed is reported in
the summary and raised as ``IncompletePullError`` at the end, never passed off as complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs
import orjson
from attrs import define, field, frozen

from ._errors import IncompletePullError, InvalidQueryError, PaginationError
from ._limiter import AdaptiveLimiter
from ._models import Page
from ._planning import PullPlan, PullSettings, Window, page_offsets, split_window
from ._retry import RetryBudget

__all__ = ["Checkpoint", "PullStream", "PullSummary", "WindowProblem"]

log = logging.getLogger("callsessions")

T = TypeVar("T")


@frozen
class WindowProblem:
    """A window that could not be gathered completely: how many records its count promised
    and how many unique ones arrived."""

    window: Window
    expected: int
    gathered: int
    reason: str

    def __str__(self) -> str:
        return f"{self.window}: {self.gathered} of {self.expected} records ({self.reason})"


@define
class PullSummary:
    """What a pull did. ``requests`` counts every HTTP attempt, retries included;
    ``planning_requests`` those spent counting and splitting rather than on pages."""

    records: int = 0
    windows: int = 0
    pages: int = 0
    requests: int = 0
    planning_requests: int = 0
    retries: int = 0
    throttled: int = 0
    throttled_seconds: float = 0.0
    rewalks: int = 0
    splits: int = 0
    duplicates_dropped: int = 0
    lowest_concurrency: int = 0
    elapsed: float = 0.0
    problems: list[WindowProblem] = field(factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["problems"] = [str(p) for p in self.problems]
        return out

    def line(self) -> str:
        """One human line: records, windows, requests, retries, time, throughput."""
        rate = self.records / self.elapsed if self.elapsed > 0 else 0.0
        text = (
            f"{self.records} records in {self.windows} windows, {self.requests} requests "
            f"({self.planning_requests} planning), {self.retries} retries"
        )
        if self.throttled:
            text += f" ({self.throttled} throttled, {self.throttled_seconds:.1f}s waited)"
        if self.rewalks:
            text += f", {self.rewalks} re-walks"
        text += f", {self.elapsed:.1f}s, {rate:,.0f} records/s"
        if self.problems:
            text += f"; INCOMPLETE: {len(self.problems)} window(s)"
        return text


@define
class RequestContext:
    """What the single-request path shares within one pull: counters, the retry budget and
    the limiter."""

    summary: PullSummary
    budget: RetryBudget
    limiter: AdaptiveLimiter | None = None


class Checkpoint:
    """Finished windows of a plan, kept in a JSON file written atomically.

    A pull given a checkpoint skips the windows it lists and records each window when the
    caller has taken all of its records (asked for the next one after them). ``state`` is
    free-form JSON saved with each mark (a sink's byte offset, say).
    """

    def __init__(self, path: str | os.PathLike[str], plan: PullPlan) -> None:
        self.path = Path(path)
        self.plan = plan
        self.done: dict[int, int] = {}
        self.state: dict[str, Any] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str], plan: PullPlan | None = None) -> Checkpoint:
        """Load ``path`` if it exists (its plan wins), else start one for ``plan``."""
        p = Path(path)
        if p.exists():
            try:
                raw = orjson.loads(p.read_bytes())
                cp = cls(p, PullPlan.from_json(orjson.dumps(raw["plan"])))
                cp.done = {int(k): int(v) for k, v in raw.get("done", {}).items()}
                cp.state = dict(raw.get("state", {}))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidQueryError(
                    "checkpoint", str(p), f"is damaged ({type(exc).__name__}); remove it"
                ) from None
            if plan is not None and cp.plan.query != plan.query:
                raise InvalidQueryError(
                    "checkpoint",
                    str(p),
                    "was written for a different query; remove it or pull without resuming",
                )
            return cp
        if plan is None:
            raise InvalidQueryError("checkpoint", str(p), "does not exist")
        return cls(p, plan)

    @property
    def remaining(self) -> list[int]:
        return [i for i in range(len(self.plan.windows)) if i not in self.done]

    def mark_done(self, index: int, count: int) -> None:
        self.done[index] = count
        self.save()

    def save(self) -> None:
        data = {
            "plan": orjson.loads(self.plan.to_json()),
            "done": {str(k): v for k, v in sorted(self.done.items())},
            "state": self.state,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


#: fetch(window, offset, limit) -> Page of records (structured or raw)
PageFetcher = Callable[[Window, int, int], Awaitable[Page[T]]]


@frozen
class _WindowStart:
    index: int
    window: Window
    count: int | None


@frozen
class _WindowEnd:
    index: int
    window: Window
    closes: bool


@frozen
class _Failure:
    error: BaseException


_END = object()


class PullStream(Generic[T]):
    """The async iterator of a pull. Iterate it for pages (``client.pages``) or records
    (``client.sessions``); ``summary`` says what happened so far. Leaving early is clean:
    use ``async with`` (or call ``aclose``) to cancel in-flight requests at once; a plain
    ``break`` is cleaned up by the event loop when the stream is dropped."""

    def __init__(self, source: AsyncIterator[T], summary: PullSummary) -> None:
        self._source = source
        self.summary = summary

    def __aiter__(self) -> PullStream[T]:
        return self

    async def __anext__(self) -> T:
        return await self._source.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> PullStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PullEngine(Generic[T]):
    """Runs one pull of a plan; ``pages()`` is the ordered async generator of pages."""

    def __init__(
        self,
        plan: PullPlan,
        fetch: PageFetcher[T],
        ident: Callable[[T], Any],
        ctx: RequestContext,
        *,
        concurrency: int,
        max_rewalks: int = 3,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.plan = plan
        self.settings: PullSettings = plan.settings
        self.fetch = fetch
        self.ident = ident
        self.ctx = ctx
        self.summary = ctx.summary
        self.concurrency = concurrency
        self.max_rewalks = max_rewalks
        self.checkpoint = checkpoint
        # Pages waiting in order: enough to keep every place of the limiter busy while the
        # caller works on the oldest, and no more (this is what bounds memory).
        self.depth = 2 * concurrency + 2
        self._tasks: set[asyncio.Future[Any]] = set()

    # -- producer ---------------------------------------------------------------------

    def _spawn(self, window: Window, offset: int, limit: int) -> asyncio.Task[Page[T]]:
        task = asyncio.ensure_future(self.fetch(window, offset, limit))
        # Every request task is tracked until done, so that leaving early can cancel and
        # reap all of them, also one the producer holds while the queue is full.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _produce(self, queue: asyncio.Queue[Any], indexes: Iterable[int]) -> None:
        P = self.settings.page_size
        stack: list[tuple[int, Window, bool]] = [
            (i, self.plan.windows[i], True) for i in reversed(list(indexes))
        ]
        ahead: dict[tuple[int, Window], asyncio.Task[Page[T]]] = {}
        try:
            while stack:
                index, window, closes = stack.pop()
                first_task = ahead.pop((index, window), None) or self._spawn(window, 0, P)
                if stack and (stack[-1][0], stack[-1][1]) not in ahead:
                    nxt = stack[-1]
                    ahead[(nxt[0], nxt[1])] = self._spawn(nxt[1], 0, P)
                try:
                    first = await first_task
                except Exception as exc:
                    await queue.put(_Failure(exc))
                    return
                count = first.count
                if count is not None and count > self.settings.capacity:
                    subs = split_window(window, count, self.settings)
                    if len(subs) == 1:
                        await queue.put(
                            _Failure(
                                IncompletePullError(
                                    f"window {window} holds {count} records, more than the "
                                    f"offset ceiling {self.settings.offset_ceiling} allows, and "
                                    "is too short to split further; raise offset_ceiling or "
                                    "narrow the query",
                                    [WindowProblem(window, count, 0, "over the offset ceiling")],
                                )
                            )
                        )
                        return
                    self.summary.splits += 1
                    self.summary.planning_requests += 1
                    log.debug("window %s holds %d records: split in %d", window, count, len(subs))
                    for k in range(len(subs) - 1, -1, -1):
                        stack.append((index, subs[k], closes and k == len(subs) - 1))
                    continue
                await queue.put(_WindowStart(index, window, count))
                await queue.put(_done(first))
                if count is None:
                    await self._walk_without_count(queue, window, first)
                else:
                    for offset, limit in page_offsets(count, P, self.settings.capacity, P):
                        await queue.put(self._spawn(window, offset, limit))
                await queue.put(_WindowEnd(index, window, closes))
            await queue.put(_END)
        finally:
            for task in ahead.values():
                task.cancel()
            await asyncio.gather(*ahead.values(), return_exceptions=True)

    async def _walk_without_count(
        self, queue: asyncio.Queue[Any], window: Window, first: Page[T]
    ) -> None:
        """A server that sends no count: walk page after page until a short page."""
        P = self.settings.page_size
        page, offset = first, 0
        while page.limit is not None and len(page.items) >= page.limit:
            offset += P
            if offset + 1 > self.settings.capacity:
                raise IncompletePullError(
                    f"window {window} reaches the offset ceiling and the server sends no "
                    "count to split it by; use a narrower range",
                    [WindowProblem(window, offset, offset, "no count, over the ceiling")],
                )
            previous = [self.ident(r) for r in page.items]
            page = await self.fetch(window, offset, min(P, self.settings.capacity - offset))
            if page.items and [self.ident(r) for r in page.items] == previous:
                raise PaginationError(
                    f"the page at offset {offset} repeats the previous page's ids: the "
                    "server ignores the offset (check the wire names)"
                )
            await queue.put(_done(page))

    # -- consumer ---------------------------------------------------------------------

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        started = time.monotonic()
        indexes = (
            self.checkpoint.remaining
            if self.checkpoint is not None
            else range(len(self.plan.windows))
        )
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.depth)
        producer = asyncio.ensure_future(self._produce(queue, indexes))
        held: Page[T] | None = None
        seen: set[Any] = set()
        count: int | None = None
        previous_ids: list[Any] | None = None
        incomplete: set[int] = set()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    raise item.error
                if isinstance(item, _WindowStart):
                    seen, count, previous_ids, held = set(), item.count, None, None
                    continue
                if isinstance(item, _WindowEnd):
                    problems_before = len(self.summary.problems)
                    extra = await self._verify(item.window, seen, count)
                    if len(self.summary.problems) > problems_before:
                        incomplete.add(item.index)
                    page = held if held is not None else Page([], count, 0, None)
                    if extra:
                        page = attrs.evolve(page, items=[*page.items, *extra])
                    self.summary.records += len(extra)
                    if item.closes:
                        self.summary.windows += 1
                    self.summary.elapsed = time.monotonic() - started
                    yield attrs.evolve(page, window=item.index, final=item.closes)
                    held = None
                    # An incomplete window is not recorded: a resumed pull tries it again.
                    done = item.closes and item.index not in incomplete
                    if done and self.checkpoint is not None:
                        self.checkpoint.mark_done(item.index, len(seen))
                    continue
                page = await item
                ids = [self.ident(r) for r in page.items]
                if previous_ids is not None and ids and ids == previous_ids:
                    raise PaginationError(
                        f"the page at offset {page.offset} holds exactly the ids of the "
                        "previous page: the server ignores the offset (check the wire names)"
                    )
                previous_ids = ids
                fresh = [r for r, i in zip(page.items, ids, strict=True) if i not in seen]
                seen.update(ids)
                self.summary.duplicates_dropped += len(page.items) - len(fresh)
                self.summary.records += len(fresh)
                self.summary.pages += 1
                if page.count is not None:
                    # The largest count seen: pages complete out of order, and with records
                    # inserted meanwhile only the newest count covers every id gathered.
                    count = page.count if count is None else max(count, page.count)
                if held is not None:
                    self.summary.elapsed = time.monotonic() - started
                    yield held
                held = attrs.evolve(page, items=fresh) if len(fresh) != len(page.items) else page
            await producer
            if self.ctx.limiter is not None:
                self.summary.lowest_concurrency = self.ctx.limiter.lowest
            self.summary.elapsed = time.monotonic() - started
            if self.summary.problems:
                raise IncompletePullError(
                    f"{len(self.summary.problems)} window(s) incomplete: "
                    + "; ".join(str(p) for p in self.summary.problems[:5]),
                    list(self.summary.problems),
                )
        finally:
            producer.cancel()
            pending: list[Any] = [producer, *self._tasks]
            while not queue.empty():
                left = queue.get_nowait()
                if isinstance(left, asyncio.Future):
                    pending.append(left)
            for fut in pending:
                fut.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _verify(self, window: Window, seen: set[Any], count: int | None) -> list[T]:
        """Make the window's unique ids reach its count: re-walk, then split into slices
        that fit one page. Returns the records found on the way (not seen before)."""
        if count is None or len(seen) >= count:
            return []
        extra: list[T] = []
        P = self.settings.page_size
        for _ in range(self.max_rewalks):
            if count is None or len(seen) >= count:
                return extra
            self.summary.rewalks += 1
            log.info("window %s: %d of %d ids, walking it again", window, len(seen), count)
            first = await self.fetch(window, 0, P)
            count = max(count, first.count or 0)
            rest = page_offsets(count, P, self.settings.capacity, P)
            pages = [first, *await asyncio.gather(*(self.fetch(window, o, n) for o, n in rest))]
            for page in pages:
                self.summary.pages += 1
                extra.extend(self._take_new(page.items, seen))
        if len(seen) < count:
            # Slices small enough for one page each: one request returns all their records,
            # so neither shuffled ties nor shifting offsets can hide one.
            one_page = attrs.evolve(self.settings, offset_ceiling=P, fill=1.0)
            slices: list[tuple[Window, int]] = [(window, count)]
            for _ in range(self.max_rewalks + 4):
                if not slices or len(seen) >= count:
                    break
                self.summary.rewalks += 1
                parts = [p for w, c in slices for p in split_window(w, max(c, P + 1), one_page)]
                pages = await asyncio.gather(*(self.fetch(p, 0, P) for p in parts))
                slices = []
                for part, page in zip(parts, pages, strict=True):
                    self.summary.pages += 1
                    extra.extend(self._take_new(page.items, seen))
                    overflow = page.count is not None and page.count > len(page.items)
                    if overflow and part.length > self.settings.resolution:
                        slices.append((part, page.count or 0))
        if len(seen) < count:
            problem = WindowProblem(
                window, count, len(seen), "unique ids fell short after re-walks"
            )
            log.warning("incomplete window %s", problem)
            self.summary.problems.append(problem)
        return extra

    def _take_new(self, items: list[T], seen: set[Any]) -> list[T]:
        out = []
        for r in items:
            key = self.ident(r)
            if key not in seen:
                seen.add(key)
                out.append(r)
            else:
                self.summary.duplicates_dropped += 1
        return out


def _done(page: Page[T]) -> asyncio.Future[Page[T]]:
    fut: asyncio.Future[Page[T]] = asyncio.get_running_loop().create_future()
    fut.set_result(page)
    return fut
