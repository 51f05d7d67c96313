"""Planning a pull: the query as a pull runs it, its range, and its windows from counts.

The arithmetic is pure (``callsessions.protocol.planning``); this drives it with the count
requests it needs, through the client's request pipeline (so planning is paced and retried
like every other request).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import attrs

from callsessions.errors import CallSessionsError, InvalidQueryError, PaginationError
from callsessions.http.limiter import AdaptiveLimiter
from callsessions.http.pipeline import RequestContext, RequestPipeline
from callsessions.protocol.planning import (
    MIN_BUCKETS,
    ONE_SECOND,
    PullPlan,
    PullSettings,
    Window,
    bucket_count,
    layout_windows,
    range_check,
    split_times,
)
from callsessions.protocol.query import SORT_KEYS, SessionQuery, snake_case
from callsessions.protocol.wire import HTTPResponse, parse_page, peek_count

__all__ = ["plan_pull", "plan_with_first_page", "pull_query"]


def pull_query(query: SessionQuery, page_size: int) -> SessionQuery:
    """The query as a pull runs it: no paging of its own, ``id`` among the fields, and
    sorted by the date column first (pages of a window must follow a stable order)."""
    if query.offset is not None or query.page is not None:
        raise InvalidQueryError(
            "offset" if query.offset is not None else "page",
            query.offset if query.offset is not None else query.page,
            "a pull walks the pages itself: leave offset and page unset",
        )
    if query.export_format is not None:
        raise InvalidQueryError(
            "export_format", query.export_format, "a pull reads JSON: use export() for files"
        )
    date_key = query.effective_date_field.value
    if not query.sort:
        # The date column first; the other sort keys only break its ties, so that pages of
        # a window follow one order even where many calls share a second.
        sort: tuple[str, ...] = tuple(
            "+" + k for k in (date_key, *(k for k in SORT_KEYS if k != date_key))
        )
    elif query.sort[0] == "+" + date_key:
        sort = query.sort
    else:
        raise InvalidQueryError(
            "sort",
            ",".join(query.sort),
            f"a pull orders each window by its date column: the first sort key must be "
            f"+{date_key} (or leave sort unset); use fetch_page for other orders",
        )
    size = query.page_size or page_size
    return attrs.evolve(query.with_id_field(), sort=sort, page_size=size)


async def plan_pull(pipeline: RequestPipeline, q: SessionQuery, ctx: RequestContext) -> PullPlan:
    """Plan ``q`` (a ``pull_query``): find the range if it is open, count it, and cut it
    into windows that each fit under the offset ceiling, from bucket counts when it does
    not fit in one."""
    plan, _first = await plan_with_first_page(pipeline, q, ctx)
    return plan


async def plan_with_first_page(
    pipeline: RequestPipeline, q: SessionQuery, ctx: RequestContext
) -> tuple[PullPlan, bytes | None]:
    """``plan_pull``, counting the range with the request of its first page rather than a
    ``limit=1`` one: when the range fits in one window that page is the window's first,
    and is returned (its body) so that the pull does not ask for it again. A pull of a
    small range then starts with its pages after one round trip, not two."""
    assert q.page_size is not None
    config = pipeline.config
    settings = config.pull_settings(q.page_size)
    start, end = q.start, q.end
    if start is None or end is None:
        found = await _bounds(pipeline, q, ctx)
        if found is None:
            return PullPlan(query=q, windows=(), settings=settings), None
        start, end = start or found[0], end or found[1]
        if not start < end:
            return PullPlan(query=q, windows=(), settings=settings), None
        q = attrs.evolve(q, start=start, end=end)
    before = ctx.summary.planning_requests
    counts = _BucketCounts(pipeline, q, ctx)
    # The first page is asked for first (the limiter is first come, first served); with
    # ``count_ahead`` the fewest buckets a range needing windows is counted in go out with
    # it, so that such a range is planned in one round trip rather than two.
    first_task = asyncio.ensure_future(
        pipeline.body(pipeline.request_for(attrs.evolve(q, offset=0)), ctx)
    )
    ahead_points = split_times(start, end, MIN_BUCKETS, settings.resolution)
    ahead = counts.send(ahead_points) if config.count_ahead else []
    try:
        first = await first_task
    except BaseException:
        await counts.drop(ahead)
        raise
    ctx.summary.planning_requests += 1
    total = _count_of(first)
    if total is None or not settings.overflows(total):
        await counts.drop(ahead)  # the range fits in one window: its counts are not needed
        windows: list[Window] = [Window(start, end, count=total)]
    else:
        first = b""
        points = split_times(start, end, bucket_count(total, settings), settings.resolution)
        if not ahead or points != ahead_points:
            # A range this large is counted more finely (or nothing was counted ahead).
            await counts.drop(ahead)
            ahead = counts.send(points)
        windows = await _counted_windows(counts, ahead, total, settings)
    plan = PullPlan(
        query=q,
        windows=tuple(windows),
        settings=settings,
        planning_requests=ctx.summary.planning_requests - before,
    )
    return plan, first or None


class _BucketCounts:
    """The ``limit=1`` counts of a range's buckets, each a task, so that some can leave
    before the range's total is known and be dropped when it shows they are not needed."""

    def __init__(self, pipeline: RequestPipeline, q: SessionQuery, ctx: RequestContext) -> None:
        self.pipeline, self.q, self.ctx = pipeline, q, ctx
        # They go out together, as many at once as a pull's pages would.
        limiter = ctx.limiter or AdaptiveLimiter(pipeline.config.concurrency)
        self.counting = attrs.evolve(ctx, limiter=limiter)

    async def _one(self, a: datetime, b: datetime) -> Window:
        n = await self.pipeline.count(attrs.evolve(self.q, start=a, end=b), self.counting)
        return Window(a, b, count=n or 0)

    def send(self, points: list[datetime]) -> list[asyncio.Task[Window]]:
        """Count each bucket between neighbouring ``points``."""
        return [asyncio.ensure_future(self._one(a, b)) for a, b in itertools.pairwise(points)]

    async def tiny_count(self, total: int, resolution: timedelta) -> bool:
        """Whether the range's first ``resolution`` alone counts ``total``."""
        start = self.q.start
        assert start is not None
        tiny = attrs.evolve(self.q, start=start, end=start + resolution)
        return await self.pipeline.count(tiny, self.ctx) == total

    async def drop(self, tasks: list[asyncio.Task[Window]]) -> None:
        """Cancel the counts not needed (or orphaned by an error) and wait for them: what
        they raise is of no use to anyone. One cancelled before its answer is counted among
        the planning requests all the same (it may have reached the server): the cost
        reported is never less than the cost paid."""
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.ctx.summary.planning_requests += len(pending)


async def _counted_windows(
    counts: _BucketCounts,
    tasks: list[asyncio.Task[Window]],
    total: int,
    settings: PullSettings,
) -> list[Window]:
    """Windows laid out from the bucket counts ``tasks``, once they are checked against
    the range's ``total``."""
    try:
        buckets = list(await asyncio.gather(*tasks))
    except BaseException:
        await counts.drop(tasks)
        raise
    if range_check(total, [b.count or 0 for b in buckets]) == "suspect" and (
        await counts.tiny_count(total, settings.resolution)
    ):
        # Disjoint parts cannot hold more than the whole (records inserted while counting
        # aside): the server is not filtering by the range.
        raise PaginationError(
            f"the parts of the range hold {sum(b.count or 0 for b in buckets)} records, the "
            f"whole range {total}: the server ignores the range (check the wire names of "
            "start, end and date_field)"
        )
    return layout_windows(buckets, settings)


def _count_of(body: bytes) -> int | None:
    """The ``count`` of a page body: read off its head when it comes first, else parsed."""
    count = peek_count(body)
    if count is not None:
        return count
    return parse_page(HTTPResponse(200, {}, body)).count


async def _bounds(
    pipeline: RequestPipeline, q: SessionQuery, ctx: RequestContext
) -> tuple[datetime, datetime] | None:
    """The first and last date of the matching records (two ``limit=1`` requests)."""
    key = q.effective_date_field.value
    attr = snake_case(key)
    found: list[datetime] = []
    for sign in ("+", "-"):
        probe = attrs.evolve(q, fields=("id", key), page_size=1, sort=(sign + key,))
        data = await pipeline.page_data(pipeline.request_for(probe), ctx)
        ctx.summary.planning_requests += 1
        if not data.items:
            return None
        from callsessions.protocol.convert import structure_sessions

        moment = getattr(structure_sessions(data.items)[0], attr)
        if not isinstance(moment, datetime):
            raise CallSessionsError(f"cannot find the range: {key} is missing or not a date")
        if moment.tzinfo is None:  # a date-time without an offset: taken as UTC
            moment = moment.replace(tzinfo=UTC)
        found.append(moment)
    return found[0].replace(microsecond=0), found[1].replace(microsecond=0) + ONE_SECOND
