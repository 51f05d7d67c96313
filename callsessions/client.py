"""The client: a thin façade joining the wings (http, pull, sinks) behind one object."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs

from callsessions.errors import InvalidQueryError
from callsessions.http.auth import Auth, Secret, TokenAuth
from callsessions.http.config import MAX_CONCURRENCY, ClientConfig
from callsessions.http.download import ExportResult, download
from callsessions.http.pipeline import RequestPipeline
from callsessions.http.ratelimit import RateLimiter
from callsessions.http.transport import AiohttpTransport, Transport
from callsessions.protocol.planning import PullPlan
from callsessions.protocol.query import SessionQuery
from callsessions.protocol.records import CallSession, Page
from callsessions.protocol.summary import PullSummary
from callsessions.pull.bulk import PullOutcome, PullProgress, pull_to
from callsessions.pull.checkpoint import Checkpoint
from callsessions.pull.engine import PullStream
from callsessions.pull.pages import Dedupe, RawLine, pull_pages
from callsessions.pull.planner import plan_pull, pull_query

if TYPE_CHECKING:
    import aiohttp

    from callsessions.sinks import Sink

__all__ = ["MAX_CONCURRENCY", "CallSessionsClient", "ClientConfig", "ExportResult"]

RawRecord = dict[str, Any]

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
            await client.pull_to(SessionQuery(start=a, end=b), "calls.parquet")

    ``base_url`` is the service root; the endpoint path is appended. Authenticate with
    ``token`` (a JWT) or ``auth`` (``PasswordAuth`` for email and password). Give
    ``session`` to use your own aiohttp session (it is not closed here) or ``transport``
    for any other HTTP stack or a fake, and ``rate_limiter`` to share one pace between
    processes. Settings come as ``config=ClientConfig(...)`` or as its field names.
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
        if config is not None and settings:
            raise InvalidQueryError(
                "settings", sorted(settings), "give config= or its fields as keywords, not both"
            )
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
        transport = transport or AiohttpTransport(
            session,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            max_connections=config.max_connections,
            max_body_bytes=config.max_body_bytes,
        )
        self._pipeline = RequestPipeline(self.base_url, config, transport, self.auth, rate_limiter)
        #: counters of requests made outside pulls (fetch_page, count, plan)
        self.stats: PullSummary = self._pipeline.stats
        self._closed = False

    @property
    def rate(self) -> float | None:
        """The pace of this client's requests (requests/s): learned from 429s, or
        ``max_rate``; None while unlimited."""
        return self._pipeline.rate.rate

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
            await self._pipeline.transport.aclose()

    # -- single requests --------------------------------------------------------------

    @overload
    async def fetch_page(
        self, query: SessionQuery, *, raw: Literal[False] = False
    ) -> Page[CallSession]: ...

    @overload
    async def fetch_page(self, query: SessionQuery, *, raw: Literal[True]) -> Page[RawRecord]: ...

    async def fetch_page(
        self, query: SessionQuery, *, raw: bool = False
    ) -> Page[CallSession] | Page[RawRecord]:
        """One request, as the query says (its offset or page, its page size; the
        client's ``page_size`` when it sets none, as in a pull)."""
        if query.page_size is None:
            query = attrs.evolve(query, page_size=self.config.page_size)
        pipe = self._pipeline
        data = await pipe.page_data(pipe.request_for(query), pipe.context())
        size = query.page_size or self.config.page_size
        offset = query.offset if query.offset is not None else (query.page or 0) * size
        if raw:
            items: list[Any] = data.items
        else:
            from callsessions.protocol.convert import structure_sessions  # cattrs, lazily

            items = structure_sessions(data.items)
        return Page(items=items, count=data.count, offset=offset, limit=size)

    async def count(self, query: SessionQuery) -> int | None:
        """How many records match (one ``limit=1`` request); None if the server won't say."""
        return await self._pipeline.count(query, self._pipeline.context())

    # -- bulk pulls -------------------------------------------------------------------

    def pull_query(self, query: SessionQuery) -> SessionQuery:
        """The query as a pull runs it: no paging of its own, ``id`` among the fields, and
        sorted by the date column first (pages of a window must follow a stable order)."""
        return pull_query(query, self.config.page_size)

    async def plan(self, query: SessionQuery) -> PullPlan:
        """Plan a pull: find the range (if the query leaves it open), count it, and cut it
        into windows that each fit under the offset ceiling. The plan is a JSON-able value."""
        return await plan_pull(self._pipeline, self.pull_query(query), self._pipeline.context())

    async def _plan_counted(self, query: SessionQuery) -> tuple[PullPlan, PullSummary]:
        """Plan ``query`` and say what planning cost (its own counters, not ``stats``)."""
        ctx = self._pipeline.fresh_context()
        return await plan_pull(self._pipeline, self.pull_query(query), ctx), ctx.summary

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

    @overload
    def pages(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: Literal["lines"],
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[Page[RawLine]]: ...

    def pages(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: bool | Literal["lines"] = False,
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[Page[Any]]:
        """Every page of a pull, in order, each record once (see ``sessions``)."""
        summary = PullSummary()
        pages = pull_pages(self._pipeline, source, raw, concurrency, checkpoint, summary, dedupe)
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

    @overload
    def sessions(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: Literal["lines"],
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[RawLine]: ...

    def sessions(
        self,
        source: SessionQuery | PullPlan,
        *,
        raw: bool | Literal["lines"] = False,
        concurrency: int | None = None,
        checkpoint: Checkpoint | None = None,
        dedupe: Dedupe = "window",
    ) -> PullStream[Any]:
        """Every matching call session, once, in date order (a record recovered by a
        verification re-walk comes at the end of its window).

        ``source`` is a query (planned first) or a plan from ``plan()`` (or a part of one).
        Pages are fetched ``concurrency`` at a time; memory stays bounded by the pages in
        flight. ``id`` is added to the query's fields if missing (it is needed to drop
        duplicates). ``raw=True`` yields the wire dicts without structuring; ``raw="lines"``
        yields ``(id, date text, the record's JSON bytes)`` tuples, never building a dict
        (for copying records to a file: ``b"\n".join`` of the bytes is JSON Lines). With a
        ``checkpoint``, finished windows are skipped and each window is recorded when done.
        ``dedupe="pull"`` also drops an id already delivered by an earlier window (a call
        whose date column changed during the pull, as ``updatedAt`` can), at the cost of
        keeping every id in memory. The stream's ``summary`` says what happened; an
        incomplete window raises
        ``IncompletePullError`` after everything else was delivered.
        """
        summary = PullSummary()
        pages = pull_pages(self._pipeline, source, raw, concurrency, checkpoint, summary, dedupe)
        return PullStream(pages, summary, records=True)

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
            self._pipeline,
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
        when complete, so ``path`` never holds a partial file; ``path`` is locked while it
        is written. ``on_progress(done, total)`` is called per chunk (``total`` from
        Content-Length, or None). Transient failures restart the download.
        """
        if query.export_format is None:
            raise InvalidQueryError("export_format", None, "export() needs a file format")
        pipe = self._pipeline
        request = pipe.request_for(query)
        return await download(pipe, request, path, pipe.context(), on_progress, chunk_size)


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
