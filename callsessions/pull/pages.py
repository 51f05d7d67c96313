"""The pages of a pull: the engine (``engine.PullEngine``) fed by the request pipeline.

``pull_pages`` plans the source (or takes a plan, or a checkpoint's plan), and gives the
engine two ways to fetch a page: parsed at once, or kept as bytes until its turn comes
(``_Body``), so that pages waiting in the queue are compact.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import attrs
from attrs import frozen

from callsessions.errors import InvalidQueryError
from callsessions.http.config import MAX_CONCURRENCY
from callsessions.http.limiter import AdaptiveLimiter
from callsessions.http.pipeline import RequestContext, RequestPipeline
from callsessions.protocol.planning import PullPlan, Window
from callsessions.protocol.query import SessionQuery, snake_case
from callsessions.protocol.rawpage import parse_raw_page
from callsessions.protocol.records import CallSession, Page
from callsessions.protocol.summary import PullSummary
from callsessions.protocol.wire import HTTPRequest, HTTPResponse, parse_page, peek_count
from callsessions.pull.checkpoint import Checkpoint
from callsessions.pull.engine import PullEngine
from callsessions.pull.planner import plan_with_first_page, pull_query

__all__ = ["Dedupe", "pull_pages"]

log = logging.getLogger("callsessions")

RawRecord = dict[str, Any]
#: a record kept as the server's bytes: (id, the date column's text, its JSON)
RawLine = tuple[str | None, str | None, bytes]
#: what a pull hands out: records (False), wire dicts (True), or wire bytes ("lines")
Kind = bool | Literal["lines"]
#: "window": drop ids seen twice within a window (windows are disjoint on the date column);
#: "pull": also across windows, keeping every id delivered (memory grows with the pull)
Dedupe = Literal["window", "pull"]


async def pull_pages(
    pipeline: RequestPipeline,
    source: SessionQuery | PullPlan,
    raw: Kind,
    concurrency: int | None,
    checkpoint: Checkpoint | None,
    summary: PullSummary,
    dedupe: Dedupe = "window",
    first_page: bytes | None = None,
) -> AsyncGenerator[Page[Any], None]:
    """Every page of a pull, in order, each record once (see ``client.sessions``).

    ``raw="lines"`` hands out ``RawLine`` tuples: the records' own JSON bytes with their
    id and date text read without building dicts (for outputs that only copy records).
    ``first_page`` is the body of the first window's first page when planning fetched it
    already (``plan_with_first_page``)."""
    config = pipeline.config
    if dedupe not in ("window", "pull"):
        raise InvalidQueryError("dedupe", dedupe, "allowed: window, pull")
    bound = concurrency if concurrency is not None else config.concurrency
    if isinstance(bound, bool) or not isinstance(bound, int) or not 1 <= bound <= MAX_CONCURRENCY:
        raise InvalidQueryError(
            "concurrency", bound, f"must be an integer from 1 to {MAX_CONCURRENCY}"
        )
    if not isinstance(source, PullPlan | SessionQuery):
        raise InvalidQueryError("source", source, "must be a SessionQuery or a PullPlan")
    limiter = AdaptiveLimiter(bound, initial=config.initial_concurrency)
    ctx = attrs.evolve(pipeline.fresh_context(limiter), summary=summary)
    if checkpoint is not None:
        # Resuming: the checkpoint's plan is pulled (no planning again), provided it was
        # made for this source.
        _check_checkpoint_source(checkpoint, source, lambda q: pull_query(q, config.page_size))
        plan = checkpoint.plan
    elif isinstance(source, PullPlan):
        plan = source
    else:
        query = pull_query(source, config.page_size)
        plan, first_page = await plan_with_first_page(pipeline, query, ctx)
    fetcher = _Fetcher(pipeline, ctx, plan.query, raw, summary)
    lines = raw == "lines"
    engine: PullEngine[Any] = PullEngine(
        plan,
        fetcher.fetch,
        _line_id if lines else _raw_id if raw else _record_id,
        ctx,
        concurrency=bound,
        max_rewalks=config.max_rewalks,
        checkpoint=checkpoint,
        fetch_pending=fetcher.fetch_pending,
        delivered=set() if dedupe == "pull" else None,
        date_of=_line_date if lines else _date_reader(fetcher.date_field, bool(raw)),
        first_page=fetcher.ready(plan, first_page),
    )
    pages = engine.pages()
    try:
        async for page in pages:
            yield page
    finally:
        await pages.aclose()


class _Fetcher:
    """How the engine gets a page of the pull: parsed at once (tail pages, verification)
    or kept as bytes until its turn (the planned pages)."""

    def __init__(
        self,
        pipeline: RequestPipeline,
        ctx: RequestContext,
        base: SessionQuery,
        raw: Kind,
        summary: PullSummary,
    ) -> None:
        self.pipeline, self.ctx, self.base, self.raw = pipeline, ctx, base, raw
        self.summary = summary
        self.date_field = base.effective_date_field.value
        #: for raw lines: the date column to read off each record's bytes
        self.lines_of = self.date_field if raw == "lines" else None
        #: where structured records count their type mismatches
        self.into = None if raw else summary

    def request(self, window: Window, offset: int, limit: int) -> HTTPRequest:
        query = attrs.evolve(self.base, start=window.start, end=window.end, offset=offset)
        return self.pipeline.request_for(attrs.evolve(query, page_size=limit))

    async def fetch(self, window: Window, offset: int, limit: int) -> Page[Any]:
        req = self.request(window, offset, limit)
        if self.lines_of is not None:
            # Parsed under the retry policy, so that a broken body is fetched again.
            def parsed(response: HTTPResponse) -> Page[Any]:
                if response.status != 200:
                    parse_page(response, method=req.method, path=req.path)  # raises
                return _Body(response.body, offset, limit, None, req.path, self.lines_of).parse()

            return await self.pipeline.checked(req, self.ctx, parsed)
        data = await self.pipeline.page_data(req, self.ctx)
        items: list[Any] = data.items if self.raw else _structured(data.items, self.summary)
        return Page(items=items, count=data.count, offset=offset, limit=limit)

    async def fetch_pending(self, window: Window, offset: int, limit: int) -> _Body:
        req = self.request(window, offset, limit)
        body = await self.pipeline.body(req, self.ctx)
        return _Body(body, offset, limit, self.into, req.path, self.lines_of)

    def ready(self, plan: PullPlan, body: bytes | None) -> _Body | None:
        """The first window's first page, when planning fetched it already."""
        if body is None or not plan.windows:
            return None
        size = plan.settings.page_size
        path = self.request(plan.windows[0], 0, size).path
        return _Body(body, 0, size, self.into, path, self.lines_of)


@frozen
class _Body:
    """A page body that arrived whole, parsed (and structured) only when its turn comes, so
    that pages waiting in a pull's queue are compact bytes, not thousands of objects."""

    body: bytes
    offset: int
    limit: int
    #: where structured records count their type mismatches; None for raw records
    structure_into: PullSummary | None
    path: str
    #: for ``RawLine`` items: the date column's wire name (None: dicts or records)
    lines_of: str | None = None

    def count_hint(self) -> int | None:
        return peek_count(self.body)

    def parse(self) -> Page[Any]:
        if self.lines_of is not None:
            raw = parse_raw_page(
                self.body, date_field=self.lines_of, check_utf8=True, method="GET", path=self.path
            )
            lines = list(zip(raw.ids, raw.dates, raw.raw_items, strict=True))
            return Page(items=lines, count=raw.count, offset=self.offset, limit=self.limit)
        data = parse_page(HTTPResponse(200, {}, self.body), method="GET", path=self.path)
        into = self.structure_into
        items: list[Any] = data.items if into is None else _structured(data.items, into)
        return Page(items=items, count=data.count, offset=self.offset, limit=self.limit)


def _structured(items: list[RawRecord], summary: PullSummary) -> list[CallSession]:
    """Structure a page, counting values of an unexpected type in the summary; the first of
    each field is logged once as a warning (the record keeps the value as it came)."""
    counts = summary.type_mismatches
    known = len(counts)
    from callsessions.protocol.convert import structure_sessions  # cattrs: not for raw pulls

    records = structure_sessions(items, counts)
    if len(counts) > known:
        for name in list(counts)[known:]:
            log.warning(
                "field %s: a value of an unexpected type was kept as it came (counted in "
                "summary.type_mismatches)",
                name,
            )
    return records


#: a ``RawLine``'s id: called for every record of a page (by ``page_ids``), so a C getter
_line_id: Callable[[RawLine], Any] = operator.itemgetter(0)


def _line_date(line: RawLine) -> datetime | None:
    text = line[1]
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _raw_id(record: RawRecord) -> Any:
    return record.get("id")


def _record_id(record: CallSession) -> Any:
    return record.id


def _date_reader(wire_name: str, raw: bool) -> Callable[[Any], datetime | None]:
    """Read a record's date column (wire dicts or records), as an aware datetime."""
    attr = snake_case(wire_name)

    def read(record: Any) -> datetime | None:
        value = record.get(wire_name) if raw else getattr(record, attr, None)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return None
        if not isinstance(value, datetime):
            return None
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    return read


def _check_checkpoint_source(
    checkpoint: Checkpoint,
    source: SessionQuery | PullPlan,
    as_pulled: Callable[[SessionQuery], SessionQuery],
) -> None:
    """A checkpoint resumes only the pull it was written for."""
    have = checkpoint.plan
    if isinstance(source, PullPlan):
        same = source == have
    else:
        wanted = as_pulled(source)
        # A range left open was found while planning: compare with what was found.
        wanted = attrs.evolve(
            wanted,
            start=wanted.start if wanted.start is not None else have.query.start,
            end=wanted.end if wanted.end is not None else have.query.end,
        )
        same = wanted == have.query
    if not same:
        raise InvalidQueryError(
            "checkpoint", str(checkpoint.path), "was written for another query or plan"
        )
