"""The bulk pull engine: the scheduler of a pull's requests. What to do with each page is
the window's walk (``protocol.walk``); this only decides when requests go out.

A *producer* task queues every window's page requests in order, from the plan's counts,
without waiting for a window's first page, as far ahead as a bounded room allows (so memory
is bounded, and requests flow while the caller works on earlier pages). The *consumer* (the
async generator the caller iterates) takes the queue in order, hands each page to its
window's walk, and at a window's end fetches what the walk still asks for (tail pages,
verification), then yields the window's last page ``final``; an incomplete window is raised
as ``IncompletePullError`` at the end, after everything else was delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from callsessions.errors import (
    DecodeError,
    IncompletePullError,
)
from callsessions.http.pipeline import RequestContext
from callsessions.protocol.planning import (
    PullPlan,
    PullSettings,
    Window,
    page_offsets,
)
from callsessions.protocol.records import Page
from callsessions.protocol.summary import PullSummary, WindowProblem
from callsessions.protocol.walk import WindowWalk, check_advanced, next_uncounted, page_ids
from callsessions.pull.checkpoint import Checkpoint
from callsessions.pull.queue import (
    END,
    Failure,
    PageFetcher,
    Parsed,
    PendingFetcher,
    PendingPage,
    WindowEnd,
    WindowStart,
    WindowState,
    discard,
    done,
    reap,
)
from callsessions.pull.stream import PullStream

__all__ = ["PullEngine", "PullStream", "PullSummary", "RequestContext", "WindowProblem"]

log = logging.getLogger("callsessions")

T = TypeVar("T")


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
        top: bool = True,
        fetch_pending: PendingFetcher[T] | None = None,
        delivered: set[Any] | None = None,
        date_of: Callable[[T], datetime | None] | None = None,
        first_page: PendingPage[T] | None = None,
    ) -> None:
        self.plan = plan
        #: the first window's first page, fetched already (planning counted with it)
        self.first_page = first_page
        self.settings: PullSettings = plan.settings
        self.fetch = fetch
        self.fetch_pending = fetch_pending
        #: ids delivered so far by the whole pull, when de-duplicating across windows
        self.delivered = delivered
        #: a record's value of the pull's date column (None when it is not in the record)
        self.date_of = date_of
        self.ident = ident
        self.ctx = ctx
        self.summary = ctx.summary
        self.concurrency = concurrency
        self.max_rewalks = max_rewalks
        self.checkpoint = checkpoint
        #: False for the engine that re-reads an over-full window as sub-windows
        self.top = top
        # Pages requested and not yet taken by the consumer: every place of the limiter
        # busy, plus as many answered pages waiting their turn, so that a freed place is
        # refilled when an answer arrives, not when the caller gets to it. This is what
        # bounds memory: the waiting pages are held as bytes (parsed only in their turn),
        # which also keeps the garbage collector's work small.
        self.depth = max(concurrency + 4, 2 * concurrency)
        self._room = asyncio.Semaphore(self.depth)
        self._tasks: set[asyncio.Future[Any]] = set()
        #: tail requests made when a window's first page arrived, by window index
        self._early_tails: dict[int, tuple[list[asyncio.Future[PendingPage[T]]], int]] = {}

    # -- producer ---------------------------------------------------------------------

    async def _fetch_pending(self, window: Window, offset: int, limit: int) -> PendingPage[T]:
        if self.fetch_pending is not None:
            return await self.fetch_pending(window, offset, limit)
        return Parsed(await self.fetch(window, offset, limit))

    def _spawn(
        self, window: Window, offset: int, limit: int, *, reuse: bool = False
    ) -> asyncio.Future[PendingPage[T]]:
        if reuse and self.first_page is not None:
            ready: asyncio.Future[PendingPage[T]] = asyncio.get_running_loop().create_future()
            ready.set_result(self.first_page)
            self.first_page = None
            return ready
        task = asyncio.ensure_future(self._fetch_pending(window, offset, limit))
        # Every request task is tracked until done, so that leaving early can cancel and
        # reap all of them, also one the producer holds while the queue is full.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _produce(self, queue: asyncio.Queue[Any], indexes: Iterable[int]) -> None:
        """Queue every page request of every window, in order, as far ahead as the room
        allows. A window's pages are known from the plan's count (exact or estimated), so
        they go out without waiting for its first page; the consumer checks that count
        against the pages' own and mends the difference. A window with no count learns it
        from its first page first."""
        try:
            for index in indexes:
                window = self.plan.windows[index]
                if window.count is not None:
                    await self._produce_planned(queue, index, window, window.count)
                else:
                    await self._produce_unplanned(queue, index, window)
        except Exception as exc:
            await queue.put(Failure(exc))
            return
        await queue.put(END)

    async def _produce_planned(
        self, queue: asyncio.Queue[Any], index: int, window: Window, count: int
    ) -> None:
        pages = page_offsets(max(count, 1), self.settings.page_size, self.settings.capacity)
        planned = pages[-1][0] + pages[-1][1]
        await queue.put(WindowStart(index, window, planned))
        for offset, limit in pages:
            await self._room.acquire()
            task = self._spawn(window, offset, limit, reuse=offset == 0 and index == 0)
            if offset == 0:
                task.add_done_callback(self._early_tail_callback(index, window, planned))
            await queue.put(task)
        await queue.put(WindowEnd(index, window, planned))

    async def _produce_unplanned(
        self, queue: asyncio.Queue[Any], index: int, window: Window
    ) -> None:
        P, ceiling = self.settings.page_size, self.settings.capacity
        await queue.put(WindowStart(index, window, None))
        page = await self.fetch(window, 0, P)
        await self._room.acquire()
        await queue.put(done(page))
        offset = 0
        if page.count is None:  # no count at all: page after page until a short one
            while (step := next_uncounted(window, self.settings, page, offset)) is not None:
                offset, limit = step
                previous, page = page, await self.fetch(window, offset, limit)
                check_advanced(window, previous, page, self.ident)
                await self._room.acquire()
                await queue.put(done(page))
            await queue.put(WindowEnd(index, window, offset + P))
            return
        pages = page_offsets(page.count, P, ceiling, P)
        for o, n in pages:
            await self._room.acquire()
            await queue.put(self._spawn(window, o, n))
        await queue.put(WindowEnd(index, window, pages[-1][0] + pages[-1][1] if pages else P))

    # -- consumer ---------------------------------------------------------------------

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        """The pull's pages in order; a window's last page has ``final=True``."""
        started = time.monotonic()
        indexes = (
            self.checkpoint.remaining
            if self.checkpoint is not None
            else range(len(self.plan.windows))
        )
        # Unbounded: the window markers are free, and pages are bounded by self._room.
        queue: asyncio.Queue[Any] = asyncio.Queue()
        producer = asyncio.ensure_future(self._produce(queue, indexes))
        held: Page[T] | None = None
        state: WindowState[T] | None = None
        try:
            while (item := await queue.get()) is not END:
                if isinstance(item, Failure):
                    raise item.error
                if isinstance(item, WindowStart):
                    state, held = self._state(item), None
                    continue
                assert state is not None
                if isinstance(item, WindowEnd):
                    async for page in self._end_window(state, item.covered, held):
                        self.summary.elapsed = time.monotonic() - started
                        yield page
                    held = None
                    continue
                fresh = await self._take_item(state, item)
                if fresh is None:
                    continue
                if held is not None:
                    self.summary.elapsed = time.monotonic() - started
                    yield held
                held = fresh
            await producer
            self._finish(started)
        finally:
            await reap(queue, producer, self._tasks)

    async def _take_item(self, state: WindowState[T], item: Any) -> Page[T] | None:
        """A page request from the queue, in its turn: the page of records not seen before
        (None when there is nothing to hand out)."""
        self._room.release()  # taken out of the waiting room
        if state.overflow is not None:
            discard(item)
            state.wasted += 1
            return None
        page = await self._parse(await item, state.window)
        if state.first and state.walk.overflows(page.count):
            # Too full to read below the ceiling: skip its pages, split it at the end.
            state.overflow, state.wasted = page.count, 1
            return None
        if state.first:
            self._spawn_tail(state, page.count)
        state.first = False
        return state.walk.take(page)

    async def _end_window(
        self, state: WindowState[T], covered: int, held: Page[T] | None
    ) -> AsyncGenerator[Page[T], None]:
        """A window's last pages: the sub-windows of an over-full one, or the page held back
        with what the tail and verification recovered; the last one is ``final``. The
        window is recorded in the checkpoint when the caller asks past it."""
        complete = True
        if state.overflow is not None:
            async for page in self._overflowed(state):
                if held is not None:
                    yield held
                held = page
        else:
            problems_before = len(self.summary.problems)
            extra = await self._complete(state, covered)
            complete = len(self.summary.problems) == problems_before
            if extra:
                base = held if held is not None else Page([], state.walk.count, 0, None)
                held = attrs.evolve(base, items=[*base.items, *extra])
        self.summary.windows += 1 if self.top else 0
        last = held if held is not None else Page([], state.walk.count, 0, None)
        yield attrs.evolve(last, window=state.index, final=True)
        # An incomplete window is not recorded: a resumed pull tries it again.
        if self.checkpoint is not None and complete:
            self.checkpoint.mark_done(state.index, len(state.walk.seen))

    def _finish(self, started: float) -> None:
        if self.ctx.limiter is not None:
            self.summary.lowest_concurrency = self.ctx.limiter.lowest
        self.summary.elapsed = time.monotonic() - started
        if self.top and self.summary.problems:
            raise IncompletePullError(
                f"{len(self.summary.problems)} window(s) incomplete: "
                + "; ".join(str(p) for p in self.summary.problems[:5]),
                list(self.summary.problems),
            )

    async def _parse(self, pending: PendingPage[T], window: Window) -> Page[T]:
        """Parse a page in its turn; a body that turns out broken is fetched again (the
        fetch parses under the retry policy)."""
        try:
            return pending.parse()
        except DecodeError as exc:
            self.summary.retries += 1
            log.info("refetching a page that did not parse: %s", exc)
            return await self.fetch(window, pending.offset, pending.limit)

    def _state(self, start: WindowStart) -> WindowState[T]:
        walk: WindowWalk[T] = WindowWalk(
            start.window,
            self.settings,
            self.ident,
            self.summary,
            date_of=self.date_of,
            delivered=self.delivered,
            max_rewalks=self.max_rewalks,
        )
        return WindowState(start.index, walk, planned=start.planned)

    def _early_tail_callback(
        self, index: int, window: Window, planned: int
    ) -> Callable[[asyncio.Future[PendingPage[T]]], None]:
        """When a window's first page arrives, read its count off the body's head and, if
        the plan's estimate was short, request the missing pages at once, before the caller
        even reaches the window."""

        def on_first(task: asyncio.Future[PendingPage[T]]) -> None:
            if task.cancelled() or task.exception() is not None:
                return
            hint = task.result().count_hint()
            if hint is not None and planned < hint and not self.settings.overflows(hint):
                self._early_tails[index] = self._tail_tasks(window, hint, planned)

        return on_first

    def _tail_tasks(
        self, window: Window, count: int, planned: int
    ) -> tuple[list[asyncio.Future[PendingPage[T]]], int]:
        tail = page_offsets(count, self.settings.page_size, self.settings.capacity, planned)
        end = tail[-1][0] + tail[-1][1] if tail else planned
        return [self._spawn(window, o, n) for o, n in tail], end

    def _spawn_tail(self, state: WindowState[T], count: int | None) -> None:
        """The first page's count is above the plan's estimate: request the missing pages
        now (unless that was done already when the page arrived)."""
        early = self._early_tails.pop(state.index, None)
        if early is not None:
            state.tail, state.tail_end = early
            return
        planned = state.planned
        if count is None or planned is None or count <= planned:
            return
        state.tail, state.tail_end = self._tail_tasks(state.window, count, planned)

    async def _complete(self, state: WindowState[T], covered: int) -> list[T]:
        """At a window's end: take the tail pages (and any the count still lacks), then
        verify the window."""
        walk, extra = state.walk, []
        for task in state.tail:
            extra.extend(walk.take(await self._parse(await task, state.window)).items)
        tail = walk.tail(max(covered, state.tail_end))
        for page in await asyncio.gather(*(self.fetch(state.window, o, n) for o, n in tail)):
            extra.extend(walk.take(page).items)
        while requests := walk.verification():
            log.info(
                "window %s: %d of %s ids, fetching %d pages again",
                state.window,
                len(walk.seen),
                walk.count,
                len(requests),
            )
            pages = await asyncio.gather(*(self.fetch(w, o, n) for w, o, n in requests))
            extra.extend(walk.take_verification(list(zip(requests, pages, strict=True))))
        problem = walk.problem()
        if problem is not None:
            log.warning("incomplete window %s", problem)
            self.summary.problems.append(problem)
        return extra

    async def _overflowed(self, state: WindowState[T]) -> AsyncGenerator[Page[T], None]:
        """Read an over-full window as sub-windows sized to its count, with an engine of
        their own (so they too are fetched concurrently, in order, and verified)."""
        window, count = state.window, state.overflow or 0
        subs = state.walk.split(count)
        self.summary.splits += 1
        self.summary.planning_requests += state.wasted
        log.debug("window %s holds %d records: split in %d", window, count, len(subs))
        nested = PullEngine(
            attrs.evolve(self.plan, windows=tuple(subs)),
            self.fetch,
            self.ident,
            self.ctx,
            concurrency=self.concurrency,
            max_rewalks=self.max_rewalks,
            top=False,
            fetch_pending=self.fetch_pending,
            delivered=self.delivered,
            date_of=self.date_of,
        )
        pages = nested.pages()
        try:
            async for page in pages:
                state.walk.seen.update(page_ids(page.items, self.ident, window))
                yield attrs.evolve(page, final=False)
        finally:
            await pages.aclose()
