"""The client: joins query, protocol, records, transport, retries and the pull engine."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import re
import secrets
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import attrs
from attrs import field, frozen

from callsessions.errors import (
    CallSessionsError,
    ConnectionFailedError,
    InvalidQueryError,
    PaginationError,
    RateLimitedError,
    ThrottledOutError,
    TokenExpiredError,
)
from callsessions.http.auth import Auth, Secret, TokenAuth
from callsessions.http.limiter import AdaptiveLimiter
from callsessions.http.ratelimit import AdaptiveRateLimiter, RateLimiter
from callsessions.http.retry import RetryBudget, RetryPolicy
from callsessions.http.transport import DEFAULT_MAX_BODY, AiohttpTransport, Transport
from callsessions.protocol.convert import structure_sessions
from callsessions.protocol.planning import (
    ONE_SECOND,
    PullPlan,
    PullSettings,
    Window,
    bucket_count,
    layout_windows,
    range_check,
    split_times,
)
from callsessions.protocol.query import (
    DEFAULT_WIRE_NAMES,
    MAX_PAGE_SIZE,
    SORT_KEYS,
    SessionQuery,
    WireNames,
    snake_case,
)
from callsessions.protocol.records import CallSession, Page
from callsessions.protocol.wire import (
    DEFAULT_ENDPOINT_PATH,
    HTTPRequest,
    HTTPResponse,
    PageData,
    build_page_request,
    check_body,
    error_from_response,
    parse_page,
    peek_count,
)
from callsessions.pull.bulk import PullOutcome, PullProgress, pull_to
from callsessions.pull.checkpoint import Checkpoint
from callsessions.pull.engine import PullEngine, PullStream, PullSummary, RequestContext

from ._files import OutputLock

if TYPE_CHECKING:
    import aiohttp

    from callsessions.sinks import Sink

__all__ = ["CallSessionsClient", "ClientConfig", "ExportResult"]

log = logging.getLogger("callsessions")

RawRecord = dict[str, Any]
#: "window": drop ids seen twice within a window (windows are disjoint on the date column);
#: "pull": also across windows, keeping every id delivered (memory grows with the pull)
Dedupe = Literal["window", "pull"]
R = TypeVar("R")


#: the most requests in flight a pull may be given: pages waiting their turn grow with it
MAX_CONCURRENCY = 256


def _positive(name: str, most: float = math.inf) -> Callable[[object, object, float], None]:
    def check(_inst: object, _attr: object, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidQueryError(name, value, "must be a positive number")
        if not value < math.inf or value > most:
            raise InvalidQueryError(name, value, f"must be finite and at most {most:g}")

    return check


@frozen(kw_only=True)
class ClientConfig:
    """Everything about how the client talks to the service. Change a copy with
    ``attrs.evolve(config, concurrency=4)`` or pass the same names to the client.

    ``endpoint_path`` is appended to the base URL. ``wire_names`` maps parameters to their
    query-string names. ``timeout`` bounds one request in seconds. ``page_size`` is used by
    pulls when the query sets none; ``concurrency`` bounds requests in flight in a pull (it
    adapts down on 429s); ``offset_ceiling`` is the deepest ``offset + limit`` the service
    serves; ``max_rewalks`` bounds the re-walks of a window whose ids fall short.
    """

    endpoint_path: str = DEFAULT_ENDPOINT_PATH
    wire_names: WireNames = DEFAULT_WIRE_NAMES
    timeout: float = field(default=60.0, validator=_positive("timeout"))
    connect_timeout: float = field(default=10.0, validator=_positive("connect_timeout"))
    max_connections: int = field(default=32, validator=_positive("max_connections"))
    max_body_bytes: int = field(default=DEFAULT_MAX_BODY, validator=_positive("max_body_bytes"))
    retry: RetryPolicy = field(factory=RetryPolicy)
    page_size: int = MAX_PAGE_SIZE
    concurrency: int = field(default=8, validator=_positive("concurrency", MAX_CONCURRENCY))
    offset_ceiling: int = 10_000
    max_rewalks: int = 3
    window_fill: float = 0.8
    window_resolution: timedelta = ONE_SECOND
    max_buckets: int = 32
    max_rate: float | None = None
    max_stall: float = field(default=600.0, validator=_positive("max_stall"))

    def __attrs_post_init__(self) -> None:
        if not self.endpoint_path.startswith("/"):
            raise InvalidQueryError("endpoint_path", self.endpoint_path, "must start with /")
        if not isinstance(self.wire_names, WireNames):
            raise InvalidQueryError("wire_names", self.wire_names, "must be a WireNames")
        if self.max_rate is not None:
            _positive("max_rate")(self, None, self.max_rate)
        if self.max_rewalks < 0:
            raise InvalidQueryError("max_rewalks", self.max_rewalks, "must be >= 0")
        self.pull_settings()  # validates page_size, offset_ceiling, fill, resolution

    def pull_settings(self, page_size: int | None = None) -> PullSettings:
        return PullSettings(
            page_size=page_size or self.page_size,
            offset_ceiling=self.offset_ceiling,
            fill=self.window_fill,
            resolution=self.window_resolution,
            max_buckets=self.max_buckets,
        )


@frozen
class ExportResult:
    """A finished export: where it is, its size, and the server's file name and type."""

    path: Path
    bytes: int
    filename: str | None
    content_type: str | None


# No user info, query or fragment: a service root never needs them, and credentials in a
# URL end up in logs. No "@" anywhere, so "https://user:pa/ss@host" cannot pass as a path.
_URL = re.compile(r"^https?://[^/@\s?#]+(/[^?#\s@]*)?$")


class CallSessionsClient:
    """Async client of the call-session list.

    ::

        async with CallSessionsClient(base_url="https://analyse.twin24.ai", token=t) as client:
            page = await client.fetch_page(SessionQuery(page_size=10))
            async for call in client.sessions(SessionQuery(start=a, end=b)):
                ...

    ``base_url`` is the service root; the endpoint path is appended. Authenticate with
    ``token`` (a JWT) or ``auth`` (``PasswordAuth`` for email and password). Give
    ``session`` to use your own aiohttp session (it is not closed here) or ``transport``
    for any other HTTP stack or a fake. Other keywords are ``ClientConfig`` fields.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | Secret | None = None,
        auth: Auth | None = None,
        session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        rate_limiter: RateLimiter | None = None,
        config: ClientConfig | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(base_url, str) or not _URL.match(base_url):
            raise InvalidQueryError(
                "base_url",
                _redact_url(base_url),
                "must be an http(s) URL with no credentials, query or fragment",
            )
        if token is not None and auth is not None:
            raise InvalidQueryError("token", "***", "give token or auth, not both")
        if session is not None and transport is not None:
            raise InvalidQueryError("session", session, "give session or transport, not both")
        self.base_url = base_url.rstrip("/")
        self.auth: Auth | None = TokenAuth(token) if token is not None else auth
        config = config or ClientConfig()
        if settings:
            try:
                config = attrs.evolve(config, **settings)
            except TypeError as exc:
                names = ", ".join(a.name for a in attrs.fields(ClientConfig))
                raise InvalidQueryError(
                    "settings", sorted(settings), f"{exc}; known: {names}"
                ) from None
        self.config = config
        self._transport: Transport = transport or AiohttpTransport(
            session,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            max_connections=config.max_connections,
            max_body_bytes=config.max_body_bytes,
        )
        self._budget = RetryBudget.for_policy(config.retry)
        #: paces every request of this client (pulls, planning, single pages) to the
        #: server's rate: learned from 429s, capped by ``max_rate``; one shared by many
        #: processes (``callsessions.workers.RedisRateLimiter``) can be given instead
        self._rate: RateLimiter = rate_limiter or _default_rate_limiter(config)
        now = getattr(self._rate, "now", None)
        self._clock: Callable[[], float] = now if callable(now) else time.monotonic
        #: the clock's time of this client's last served request (None before any)
        self._last_success: float | None = None
        #: counters of requests made outside pulls (fetch_page, count, plan)
        self.stats = PullSummary()
        self._closed = False

    @property
    def rate(self) -> float | None:
        """The pace of this client's requests (requests/s): learned from 429s, or
        ``max_rate``; None while unlimited."""
        return self._rate.rate

    def __repr__(self) -> str:
        return f"CallSessionsClient(base_url={self.base_url!r}, auth={self.auth!r})"

    async def __aenter__(self) -> CallSessionsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this client created it."""
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    # -- single requests --------------------------------------------------------------

    async def _send_plain(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        return await self._transport.send(request, authorization)

    async def _send_authed(self, request: HTTPRequest, ctx: RequestContext) -> HTTPResponse:
        """One attempt: send with the current credentials; on 401 "token expired", renew
        them once and repeat the request once."""
        authorization = await self.auth.authorization(self._send_plain) if self.auth else None
        ctx.summary.requests += 1
        response = await self._transport.send(request, authorization)
        if response.status == 401 and self.auth is not None and authorization is not None:
            error = error_from_response(response, method=request.method, path=request.path)
            if isinstance(error, TokenExpiredError) and await self.auth.renew(
                self._send_plain, authorization
            ):
                log.info("token expired: renewed, repeating %s %s", request.method, request.path)
                authorization = await self.auth.authorization(self._send_plain)
                ctx.summary.requests += 1
                response = await self._transport.send(request, authorization)
        return response

    async def _get_page_data(self, request: HTTPRequest, ctx: RequestContext) -> PageData:
        """One page request under the retry policy, the budget and the limiter."""

        def parse(response: HTTPResponse) -> PageData:
            return parse_page(response, method=request.method, path=request.path)

        return await self._get_checked(request, ctx, parse)

    async def _get_body(self, request: HTTPRequest, ctx: RequestContext) -> bytes:
        """One page request like ``_get_page_data``, but its body is kept as bytes to parse
        later: only the status is checked, and that the body is not visibly cut short."""

        def check(response: HTTPResponse) -> bytes:
            if response.status != 200:
                parse_page(response, method=request.method, path=request.path)  # raises
            check_body(response.body, method=request.method, path=request.path)
            return response.body

        return await self._get_checked(request, ctx, check)

    async def _get_checked(
        self, request: HTTPRequest, ctx: RequestContext, check: Callable[[HTTPResponse], R]
    ) -> R:
        """Send under the rate limiter, the retry policy, the budget and the concurrency
        limiter; ``check`` turns the response into the result or raises (an error it raises
        may be retried). A 429 is not a failure: it slows the pace (and pauses for its
        Retry-After) and the request goes again, without using an attempt or the budget,
        until the server has served nothing for ``max_stall`` seconds."""

        async def attempt() -> R:
            while True:
                try:
                    # The rate's token is taken inside the concurrency slot, right before the
                    # request leaves: a request that waited for a slot must not hold a token
                    # granted before a 429 paused everyone.
                    if ctx.limiter is None:
                        await self._rate.acquire()
                        response = await self._send_authed(request, ctx)
                    else:
                        async with ctx.limiter.slot():
                            await self._rate.acquire()
                            response = await self._send_authed(request, ctx)
                    data = check(response)
                except RateLimitedError as exc:
                    if not await self._throttled(exc, ctx):
                        raise
                    continue
                await self._rate.on_success()
                self._last_success = self._clock()
                ctx.budget.on_success()
                if ctx.limiter is not None:
                    ctx.limiter.on_success()
                return data

        def on_retry(exc: BaseException, wait: float) -> None:
            ctx.summary.retries += 1
            if isinstance(exc, RateLimitedError):
                ctx.summary.throttled += 1
                ctx.summary.throttled_seconds += wait
            log.info("retrying in %.2fs after %s", wait, exc)

        result: R = await self.config.retry.retrying(ctx.budget, on_retry)(attempt)
        return result

    async def _throttled(self, exc: RateLimitedError, ctx: RequestContext) -> bool:
        """A 429: slow the pace (the rate limiter also pauses for its Retry-After). While
        the server is serving (a success within ``max_stall``), the request simply goes
        again: True, and it uses no attempt and no retry budget. Otherwise False: the retry
        policy decides, as for any failure. When it has served nothing for ``max_stall``
        after serving before, ``ThrottledOutError``."""
        wait = min(exc.retry_after or 0.0, self.config.retry.retry_after_cap)
        if ctx.limiter is not None:
            ctx.limiter.on_throttle(0.0)  # fewer in flight too; the rate limiter paces
        await self._rate.on_throttle(wait)
        if self._last_success is None:
            return False
        if self._clock() - self._last_success > self.config.max_stall:
            raise ThrottledOutError(
                f"the server has served nothing for {self.config.max_stall:g} s and refused "
                f"{ctx.summary.throttled + 1} requests with 429 (rate limited): giving up; "
                "try again later or lower max_rate",
                method=exc.method,
                path=exc.path,
            )
        ctx.summary.throttled += 1
        ctx.summary.throttled_seconds += wait
        ctx.summary.retries += 1
        log.debug("throttled (rate %s req/s): %s", self._rate.rate, exc)
        return True

    def _request_for(self, query: SessionQuery) -> HTTPRequest:
        return build_page_request(
            query,
            base_url=self.base_url,
            endpoint_path=self.config.endpoint_path,
            wire=self.config.wire_names,
        )

    def _context(self) -> RequestContext:
        return RequestContext(summary=self.stats, budget=self._budget)

    @overload
    async def fetch_page(
        self, query: SessionQuery, *, raw: Literal[False] = False
    ) -> Page[CallSession]: ...

    @overload
    async def fetch_page(self, query: SessionQuery, *, raw: Literal[True]) -> Page[RawRecord]: ...

    async def fetch_page(
        self, query: SessionQuery, *, raw: bool = False
    ) -> Page[CallSession] | Page[RawRecord]:
        """One request, as the query says (its offset or page, its page size)."""
        data = await self._get_page_data(self._request_for(query), self._context())
        return self._page(query, data, raw)

    @staticmethod
    def _page(query: SessionQuery, data: PageData, raw: bool) -> Page[Any]:
        offset = (
            query.offset
            if query.offset is not None
            else (query.page or 0) * (query.page_size or 10)
        )
        items: list[Any] = data.items if raw else structure_sessions(data.items)
        return Page(items=items, count=data.count, offset=offset, limit=query.page_size or 10)

    async def count(self, query: SessionQuery) -> int | None:
        """How many records match (one ``limit=1`` request); None if the server won't say."""
        return await self._count(query, self._context())

    async def _count(self, query: SessionQuery, ctx: RequestContext) -> int | None:
        probe = attrs.evolve(query, fields=("id",), page_size=1, offset=None, page=None)
        data = await self._get_page_data(self._request_for(probe), ctx)
        ctx.summary.planning_requests += 1
        return data.count

    # -- bulk pulls -------------------------------------------------------------------

    def pull_query(self, query: SessionQuery) -> SessionQuery:
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
            # The date column first; the other sort keys only break its ties, so that pages
            # of a window follow one order even where many calls share a second.
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
        page_size = query.page_size or self.config.page_size
        return attrs.evolve(query.with_id_field(), sort=sort, page_size=page_size)

    async def plan(self, query: SessionQuery) -> PullPlan:
        """Plan a pull: find the range (if the query leaves it open), count it, and cut it
        into windows that each fit under the offset ceiling. The plan is a JSON-able value."""
        q = self.pull_query(query)
        ctx = self._context()
        return await self._plan(q, ctx)

    async def _plan_counted(self, query: SessionQuery) -> tuple[PullPlan, PullSummary]:
        """Plan ``query`` and say what planning cost (its own counters, not ``stats``)."""
        budget = RetryBudget.for_policy(self.config.retry)
        ctx = RequestContext(summary=PullSummary(), budget=budget)
        return await self._plan(self.pull_query(query), ctx), ctx.summary

    async def _plan(self, q: SessionQuery, ctx: RequestContext) -> PullPlan:
        assert q.page_size is not None
        settings = self.config.pull_settings(q.page_size)
        start, end = q.start, q.end
        if start is None or end is None:
            found = await self._bounds(q, ctx)
            if found is None:
                return PullPlan(query=q, windows=(), settings=settings)
            start = start or found[0]
            end = end or found[1]
            if not start < end:
                return PullPlan(query=q, windows=(), settings=settings)
            q = attrs.evolve(q, start=start, end=end)
        before = ctx.summary.planning_requests
        total = await self._count(q, ctx)
        if total is None or not settings.overflows(total):
            windows: list[Window] = [Window(start, end, count=total)]
        else:
            points = split_times(start, end, bucket_count(total, settings), settings.resolution)
            buckets = [Window(a, b) for a, b in itertools.pairwise(points)]
            limiter_sem = asyncio.Semaphore(self.config.concurrency)

            async def counted(w: Window) -> Window:
                async with limiter_sem:
                    n = await self._count(attrs.evolve(q, start=w.start, end=w.end), ctx)
                return attrs.evolve(w, count=n or 0)

            buckets = list(await asyncio.gather(*(counted(b) for b in buckets)))
            if range_check(total, [b.count or 0 for b in buckets]) == "suspect":
                tiny = attrs.evolve(q, start=start, end=start + settings.resolution)
                ignored = await self._count(tiny, ctx) == total
            else:
                ignored = False
            if ignored:
                # Disjoint parts cannot hold more than the whole (records inserted while
                # counting aside): the server is not filtering by the range.
                raise PaginationError(
                    f"the parts of the range hold {sum(b.count or 0 for b in buckets)} "
                    f"records, the whole range {total}: the server ignores the range (check "
                    "the wire names of start, end and date_field)"
                )
            windows = layout_windows(buckets, settings)
        return PullPlan(
            query=q,
            windows=tuple(windows),
            settings=settings,
            planning_requests=ctx.summary.planning_requests - before,
        )

    async def _bounds(
        self, q: SessionQuery, ctx: RequestContext
    ) -> tuple[datetime, datetime] | None:
        """The first and last date of the matching records (two ``limit=1`` requests)."""
        key = q.effective_date_field.value
        attr = {"createdAt": "created_at", "updatedAt": "updated_at", "startedAt": "started_at"}[
            key
        ]
        found: list[datetime] = []
        for sign in ("+", "-"):
            probe = attrs.evolve(q, fields=("id", key), page_size=1, sort=(sign + key,))
            data = await self._get_page_data(self._request_for(probe), ctx)
            ctx.summary.planning_requests += 1
            if not data.items:
                return None
            record = structure_sessions(data.items)[0]
            moment = getattr(record, attr)
            if not isinstance(moment, datetime):
                raise CallSessionsError(f"cannot find the range: {key} is missing or not a date")
            if moment.tzinfo is None:  # a date-time without an offset: taken as UTC
                moment = moment.replace(tzinfo=UTC)
            found.append(moment)
        first = found[0].replace(microsecond=0)
        last = found[1].replace(microsecond=0) + ONE_SECOND
        return first, last

    @overload
    def pages(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: Literal[False] = False,
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[Page[CallSession]]: ...

    @overload
    def pages(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: Literal[True],
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[Page[RawRecord]]: ...

    def pages(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: bool = False,
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[Page[CallSession]] | PullStream[Page[RawRecord]]:
        """Every page of a pull, in order, each record once (see ``sessions``)."""
        summary = PullSummary()
        pages = self._pages(source, raw, concurrency, checkpoint, summary, dedupe)
        return PullStream(pages, summary, records=False)

    @overload
    def sessions(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: Literal[False] = False,
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[CallSession]: ...

    @overload
    def sessions(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: Literal[True],
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[RawRecord]: ...

    def sessions(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: bool = False,
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[CallSession] | PullStream[RawRecord]:
        """Every matching call session, once, in date order (a record recovered by a
        verification re-walk comes at the end of its window).

        ``source`` is a query (planned first) or a plan from ``plan()`` (or a part of one).
        Pages are fetched ``concurrency`` at a time; memory stays bounded by the pages in
        flight. ``id`` is added to the query's fields if missing (it is needed to drop
        duplicates). ``raw=True`` yields the wire dicts without structuring. With a
        ``checkpoint``, finished windows are skipped and each window is recorded when done.
        ``dedupe="pull"`` also drops an id already delivered by an earlier window (a call
        whose date column changed during the pull, as ``updatedAt`` can), at the cost of
        keeping every id in memory. The stream's ``summary`` says what happened; an
        incomplete window raises
        ``IncompletePullError`` after everything else was delivered.
        """
        summary = PullSummary()
        pages = self._pages(source, raw, concurrency, checkpoint, summary, dedupe)
        return PullStream(pages, summary, records=True)

    async def _pages(
        self,
        source: SessionQuery | PullPlan,
        raw: bool,
        concurrency: int | None,
        checkpoint: Checkpoint | None,
        summary: PullSummary,
        dedupe: Dedupe = "window",
    ) -> AsyncGenerator[Page[Any], None]:
        if dedupe not in ("window", "pull"):
            raise InvalidQueryError("dedupe", dedupe, "allowed: window, pull")
        bound = concurrency if concurrency is not None else self.config.concurrency
        if isinstance(bound, bool) or not isinstance(bound, int) or not 1 <= bound <= 256:
            raise InvalidQueryError("concurrency", bound, "must be an integer from 1 to 256")
        ctx = RequestContext(
            summary=summary,
            budget=RetryBudget.for_policy(self.config.retry),
            limiter=AdaptiveLimiter(bound),
        )
        if not isinstance(source, PullPlan | SessionQuery):
            raise InvalidQueryError("source", source, "must be a SessionQuery or a PullPlan")
        if checkpoint is not None:
            # Resuming: the checkpoint's plan is pulled (no planning again), provided it was
            # made for this source.
            _check_checkpoint_source(checkpoint, source, self.pull_query)
            plan = checkpoint.plan
        elif isinstance(source, PullPlan):
            plan = source
        else:
            plan = await self._plan(self.pull_query(source), ctx)
        base = plan.query

        async def fetch(window: Window, offset: int, limit: int) -> Page[Any]:
            query = attrs.evolve(
                base, start=window.start, end=window.end, offset=offset, page_size=limit
            )
            data = await self._get_page_data(self._request_for(query), ctx)
            items: list[Any] = data.items if raw else _structured(data.items, summary)
            return Page(items=items, count=data.count, offset=offset, limit=limit)

        async def fetch_pending(window: Window, offset: int, limit: int) -> _Body:
            query = attrs.evolve(
                base, start=window.start, end=window.end, offset=offset, page_size=limit
            )
            request = self._request_for(query)
            body = await self._get_body(request, ctx)
            return _Body(body, offset, limit, None if raw else summary, request.path)

        engine: PullEngine[Any] = PullEngine(
            plan,
            fetch,
            _raw_id if raw else _record_id,
            ctx,
            concurrency=bound,
            max_rewalks=self.config.max_rewalks,
            checkpoint=checkpoint,
            fetch_pending=fetch_pending,
            delivered=set() if dedupe == "pull" else None,
            date_of=_date_reader(base.effective_date_field.value, raw),
        )
        pages = engine.pages()
        try:
            async for page in pages:
                yield page
        finally:
            await pages.aclose()

    async def pull_to(
        self,
        source: SessionQuery | PullPlan,
        out: str | os.PathLike[str] | Sink,
        *,
        resume: bool = False,
        dedupe: Dedupe = "window",
        concurrency: int | None = None,
        max_items: int | None = None,
        format: str | None = None,
        progress: PullProgress | None = None,
    ) -> PullOutcome:
        """Pull every matching call into ``out`` and complete it: the nightly job.

        ``out`` is a path whose extension picks the format (``.jsonl``, ``.csv``,
        ``.sqlite``, ``.parquet``, gzip, a directory for one part per window, ``-`` for
        stdout) or a ``Sink``. The output is locked for the run (``<out>.lock``; a second run
        raises ``OutputLockedError`` at once), written window by window, and nothing
        incomplete ever looks complete. Progress is kept in ``<out>.checkpoint``: after an
        interruption, ``resume=True`` continues where the last finished window ended; without
        it a leftover checkpoint is a ``CheckpointError``. ``max_items`` stops after that
        many records with a complete, valid output. ``format`` picks a directory's part
        format (``parquet`` or ``jsonl``). ``progress`` hears of every page.
        Returns a ``PullOutcome``; an incomplete window raises ``IncompletePullError``.
        """
        return await pull_to(
            self,
            source,
            out,
            resume=resume,
            dedupe=dedupe,
            concurrency=concurrency,
            max_items=max_items,
            format=format,
            progress=progress,
        )

    # -- export -----------------------------------------------------------------------

    async def export(
        self,
        query: SessionQuery,
        path: str | os.PathLike[str],
        *,
        on_progress: Callable[[int, int | None], None] | None = None,
        chunk_size: int = 1 << 16,
    ) -> ExportResult:
        """Stream the server's export file (``query.export_format``) to ``path``.

        The body goes to a temporary file beside ``path`` and is renamed into place only
        when complete, so ``path`` never holds a partial file. ``on_progress(done, total)``
        is called per chunk (``total`` from Content-Length, or None). Transient failures
        restart the download under the retry policy.
        """
        if query.export_format is None:
            raise InvalidQueryError("export_format", None, "export() needs a file format")
        target = _check_target(path)
        request = self._request_for(query)
        ctx = self._context()
        with OutputLock(target):
            return await self._download(request, target, ctx, on_progress, chunk_size)

    async def _download(
        self,
        request: HTTPRequest,
        target: Path,
        ctx: RequestContext,
        on_progress: Callable[[int, int | None], None] | None,
        chunk_size: int,
    ) -> ExportResult:
        """The export's body into ``target``, under the retry policy."""

        async def attempt() -> ExportResult:
            authorization = await self.auth.authorization(self._send_plain) if self.auth else None
            ctx.summary.requests += 1
            async with self._transport.stream(request, authorization, chunk_size) as resp:
                if resp.status >= 400:
                    body = b""
                    async for chunk in resp.chunks:
                        body += chunk
                        if len(body) > 1 << 16:
                            break
                    raise error_from_response(
                        HTTPResponse(resp.status, resp.headers, body),
                        method=request.method,
                        path=request.path,
                    )
                total_header = resp.headers.get("content-length")
                total = int(total_header) if total_header and total_header.isdigit() else None
                # Not mkstemp: its 0600 would keep a BI tool running as another user out;
                # this file gets the umask's mode, like every other output.
                tmp_name = str(target.with_name(f".{target.name}.{secrets.token_hex(6)}.part"))
                fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                done = 0
                try:
                    with os.fdopen(fd, "wb") as out:
                        async for chunk in resp.chunks:
                            out.write(chunk)
                            done += len(chunk)
                            if on_progress is not None:
                                on_progress(done, total)
                        out.flush()
                        os.fsync(out.fileno())
                    if total is not None and done != total:
                        raise ConnectionFailedError(
                            f"body ended after {done} of {total} bytes",
                            method=request.method,
                            path=request.path,
                        )
                    os.replace(tmp_name, target)
                except BaseException:
                    _discard(tmp_name)
                    raise
                return ExportResult(
                    path=target,
                    bytes=done,
                    filename=_disposition_filename(resp.headers.get("content-disposition")),
                    content_type=resp.headers.get("content-type"),
                )

        def on_retry(exc: BaseException, wait: float) -> None:
            ctx.summary.retries += 1
            log.info("export: retrying in %.2fs after %s", wait, exc)

        result: ExportResult = await self.config.retry.retrying(ctx.budget, on_retry)(attempt)
        return result


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

    def count_hint(self) -> int | None:
        return peek_count(self.body)

    def parse(self) -> Page[Any]:
        data = parse_page(HTTPResponse(200, {}, self.body), method="GET", path=self.path)
        into = self.structure_into
        items: list[Any] = data.items if into is None else _structured(data.items, into)
        return Page(items=items, count=data.count, offset=self.offset, limit=self.limit)


def _structured(items: list[RawRecord], summary: PullSummary) -> list[CallSession]:
    """Structure a page, counting values of an unexpected type in the summary; the first of
    each field is logged once as a warning (the record keeps the value as it came)."""
    counts = summary.type_mismatches
    known = len(counts)
    records = structure_sessions(items, counts)
    if len(counts) > known:
        for name in list(counts)[known:]:
            log.warning(
                "field %s: a value of an unexpected type was kept as it came (counted in "
                "summary.type_mismatches)",
                name,
            )
    return records


class _SkippedTime:
    """A clock whose sleeps are skipped: they move the clock on instead of waiting. A
    policy without waits (``RetryPolicy.no_wait()``, for tests) paces on this."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def clock(self) -> float:
        return time.monotonic() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)


def _default_rate_limiter(config: ClientConfig) -> AdaptiveRateLimiter:
    retry = config.retry
    if retry.max_wait == 0 and retry.retry_after_cap == 0:
        skipped = _SkippedTime()
        return AdaptiveRateLimiter(
            max_rate=config.max_rate, clock=skipped.clock, sleep=skipped.sleep
        )
    return AdaptiveRateLimiter(max_rate=config.max_rate)


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
    pull_query: Callable[[SessionQuery], SessionQuery],
) -> None:
    """A checkpoint resumes only the pull it was written for."""
    have = checkpoint.plan
    if isinstance(source, PullPlan):
        same = source == have
    else:
        wanted = pull_query(source)
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


def _check_target(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.is_dir():
        raise InvalidQueryError("path", str(target), "is a directory")
    if not target.parent.exists():
        raise InvalidQueryError("path", str(target), "its folder does not exist")
    return target


def _discard(name: str) -> None:
    Path(name).unlink(missing_ok=True)


_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


def _disposition_filename(value: str | None) -> str | None:
    if not value:
        return None
    match = _FILENAME.search(value)
    return match.group(1) if match else None


def _redact_url(url: object) -> object:
    """A rejected base URL as it may be shown: no user info, no query, no fragment."""
    if not isinstance(url, str):
        return url
    shown = url.split("#", 1)[0].split("?", 1)[0]
    had_query = shown != url
    if "@" in shown:
        scheme, sep, rest = shown.partition("://")
        # Everything up to the last "@" before the path may be credentials (even a "/").
        host = rest.rsplit("@", 1)[1] if sep else shown.rsplit("@", 1)[1]
        shown = f"{scheme}{sep}***@{host}" if sep else f"***@{host}"
    if had_query:
        shown += "?***"
    return shown
