"""The aiohttp application: the search endpoint, exports, the IAM endpoints, and statistics."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import orjson
from aiohttp import web

from ._auth import AuthError, TokenIssuer
from ._config import FaultConfig, SimConfig
from ._data import Dataset
from ._export import content_disposition, download_name, export_chunks, media_type
from ._faults import Decision, FaultEngine
from ._query import ParamError, Query, QueryEngine, Result, parse_query
from ._render import PageRenderer
from ._responses import JSON_TYPE, error, fault_response, json_response, select

__all__ = [
    "LOGIN_PATH",
    "REFRESH_PATH",
    "SEARCH_PATH",
    "RequestRecord",
    "SimState",
    "SimStats",
    "make_app",
]

SEARCH_PATH = "/api/v1/search/cis/calls"
LOGIN_PATH = "/api/v1/auth/login"
REFRESH_PATH = "/api/v1/auth/refresh"
EXPORT_BATCH = 1000


@attrs.frozen
class RequestRecord:
    """One request the simulator answered (kept in :attr:`SimStats.log`)."""

    endpoint: str
    params: Mapping[str, str]
    status: int
    fault: str | None


@attrs.define
class SimStats:
    """What the simulator received: counters by endpoint, status and fault, and a log.

    Endpoints are ``search`` (a list request), ``export`` (a ``format=`` download),
    ``login`` and ``refresh``. The log keeps the last ``log_size`` requests.
    """

    endpoints: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[int] = attrs.field(factory=Counter)
    faults: Counter[str] = attrs.field(factory=Counter)
    log: deque[RequestRecord] = attrs.field(factory=lambda: deque(maxlen=10_000))

    @property
    def search_requests(self) -> int:
        """Requests to the search endpoint, lists and exports together."""
        return self.endpoints["search"] + self.endpoints["export"]

    @property
    def total(self) -> int:
        """Every request answered."""
        return sum(self.endpoints.values())

    def record(
        self, endpoint: str, params: Mapping[str, str], status: int, fault: str | None
    ) -> None:
        """Count one answered request."""
        self.endpoints[endpoint] += 1
        self.statuses[status] += 1
        if fault is not None:
            self.faults[fault] += 1
        self.log.append(RequestRecord(endpoint, dict(params), status, fault))

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.endpoints.clear()
        self.statuses.clear()
        self.faults.clear()
        self.log.clear()


class SimState:
    """One simulator's data, auth, faults and statistics (shared by its handlers)."""

    def __init__(self, config: SimConfig, dataset: Dataset | None = None) -> None:
        self.config = config
        self.dataset = dataset if dataset is not None else Dataset.from_config(config)
        self.queries = QueryEngine(self.dataset)
        self.issuer = TokenIssuer(config, config.clock)
        self.fault_engine = FaultEngine(config.faults, config.seed, config.clock)
        self.stats = SimStats()
        self.latency = config.latency
        self.jitter = config.jitter
        self._latency_rng = random.Random(f"callsessions-sim-latency-{config.seed}")
        #: encoded list bodies by (data version, query): a search index answers a repeated
        #: query from its cache too, and it keeps the simulator's own CPU from dominating
        #: client benchmarks on a small machine. Bounded; bypassed when ties are shuffled.
        self.page_cache: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self.page_cache_size = 64
        #: renders list bodies without a dict per record, and keeps rendered records
        self.renderer = PageRenderer(self.dataset, int(config.record_cache_mb * (1 << 20)))

    @property
    def faults(self) -> FaultConfig:
        """The faults in force."""
        return self.fault_engine.faults

    @faults.setter
    def faults(self, faults: FaultConfig) -> None:
        self.fault_engine.set(faults)

    def set_faults(self, faults: FaultConfig | None = None, **fields: Any) -> FaultConfig:
        """Replace the faults: with ``faults``, or a ``FaultConfig(**fields)``.

        ``set_faults()`` turns every fault off. Returns the faults now in force. Takes effect
        from the next request (a pull may be running): the random draws are reseeded,
        ``fail_first`` restarts, and every token's rate-limit bucket is reset to a full one of
        the new ``rate_limit_burst`` (so a changed ``rate_limit`` is enforced after one burst).
        """
        if faults is None:
            faults = FaultConfig(**fields)
        elif fields:
            faults = attrs.evolve(faults, **fields)
        self.fault_engine.set(faults)
        return faults

    def update_faults(self, **changes: Any) -> FaultConfig:
        """Change some of the faults in force by name, keeping the others.

        Like :meth:`set_faults` it reseeds the draws and resets the rate-limit buckets, e.g.
        ``update_faults(rate_limit=5.0)`` halves a limit of 10 requests/s mid-pull.
        """
        return self.set_faults(attrs.evolve(self.faults, **changes))

    @property
    def token(self) -> str:
        """A token that is always valid (the first static token), or a fresh JWT."""
        if self.config.static_tokens:
            return self.config.static_tokens[0]
        return self.mint_token()

    def mint_token(self, ttl: int | None = None) -> str:
        """A JWT for the configured user, valid ``ttl`` seconds (default ``token_ttl``)."""
        return self.issuer.mint(
            self.config.user_id,
            self.config.company_id,
            self.config.token_ttl if ttl is None else ttl,
        )

    def query(self, params: Mapping[str, str]) -> tuple[Query, Result]:
        """Parse wire parameters (ParamError on invalid input) and evaluate them, unpaged."""
        query = parse_query(params)
        return query, self.queries.evaluate(query)

    def page_body(self, params: Mapping[str, str]) -> bytes:
        """The body of a 200 list answer to these wire parameters now, under the faults in
        force (no fault drawn: not truncated, ties not shuffled); ParamError if invalid."""
        query = parse_query(params, offset_ceiling=self.config.offset_ceiling)
        return self.list_body(params, query, self.queries.evaluate(query))

    def list_body(
        self,
        params: Mapping[str, str],
        query: Query,
        result: Result,
        shuffle: random.Random | None = None,
    ) -> bytes:
        """The list body for a parsed query and its result: from the page cache, or
        rendered (``shuffle``: ties shuffled with it, never cached)."""
        faults = self.faults
        # the faults that change a 200's body are part of the key: a change is seen at once
        key = (self.dataset.version, faults.body_key(), tuple(sorted(params.items())))
        cached = self.page_cache.get(key) if shuffle is None else None
        if cached is not None:
            self.page_cache.move_to_end(key)
            return cached
        start, stop = query.offset, query.offset + query.limit
        if shuffle is not None:
            rids = result.shuffled_rids(start, stop, shuffle)
        else:
            rids = result.rids(start, stop)
        count = faults.reported_count(result.count)
        body = self.renderer.body(count, rids, query.fields, faults)
        if shuffle is None and self.page_cache_size:
            self.page_cache[key] = body
            while len(self.page_cache) > self.page_cache_size:
                self.page_cache.popitem(last=False)
        return body

    def matching_ids(self, params: Mapping[str, str] | None = None) -> list[str]:
        """Ids of every record matching these wire parameters right now, in sort order.

        The ground truth: paging, ``format``, the offset ceiling and the faults are ignored
        (records served without an id are listed with their true id); ties keep the stable
        order.
        """
        _, result = self.query(params or {})
        id_of = self.dataset.id_of
        return [id_of(rid) for rid in result.rids(0, result.count)]

    def matching_count(self, params: Mapping[str, str] | None = None) -> int:
        """How many records match these wire parameters right now (the true count)."""
        return self.query(params or {})[1].count

    def reported_count(self, params: Mapping[str, str] | None = None) -> int:
        """The ``count`` a list answer reports for these parameters now (``count_cap`` and
        ``count_extra`` applied), which may differ from :meth:`matching_count`."""
        return self.faults.reported_count(self.matching_count(params))

    def ids_served_without_id(self, params: Mapping[str, str] | None = None) -> list[str]:
        """True ids of the matching records served without one (``missing_id_every``),
        in sort order; empty when that fault is off."""
        faults = self.faults
        if not faults.missing_id_every:
            return []
        _, result = self.query(params or {})
        id_of = self.dataset.id_of
        return [id_of(rid) for rid in result.rids(0, result.count) if faults.id_missing(rid)]

    def insert(self, n: int = 1, **kwargs: Any) -> list[str]:
        """Insert ``n`` records (see :meth:`Dataset.insert`); return their ids."""
        return self.dataset.insert(n, **kwargs)

    def records(
        self, params: Mapping[str, str] | None = None, *, served: bool = False
    ) -> list[dict[str, Any]]:
        """Full records matching these wire parameters (fields honoured), in sort order.

        The true records, every one with its id; ``served=True`` gives them as the list
        endpoint sends them, without the ids that ``missing_id_every`` withholds.
        """
        query, result = self.query(params or {})
        faults = self.faults if served else None
        return select(self.dataset, result.rids(0, result.count), query.fields, faults)

    async def delay(self) -> None:
        """Sleep the configured latency plus jitter."""
        wait = self.latency
        if self.jitter:
            wait += self._latency_rng.random() * self.jitter
        if wait > 0:
            await asyncio.sleep(wait)


STATE_KEY = web.AppKey("callsessions_sim_state", SimState)


async def _close_mid_body(
    request: web.Request, status: int, headers: Mapping[str, str], body: bytes, length: int
) -> web.StreamResponse:
    """Send the headers (announcing ``length`` bytes) and ``body``, then close the connection."""
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await resp.prepare(request)
    await resp.write(body)
    if request.transport is not None:
        request.transport.close()
    return resp


def _query_params(request: web.Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in request.query.items():
        params.setdefault(key, value)
    return params


async def _search(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    params = _query_params(request)
    endpoint = "export" if params.get("format") else "search"
    status = 500
    fault: str | None = None
    try:
        await state.delay()
        try:
            token = state.issuer.check_header(request.headers.get("Authorization"))
        except AuthError as exc:
            status = exc.status
            return error(exc.status, exc.message, exc.details)
        decision = state.fault_engine.decide(token, export=endpoint == "export")
        fault = decision.kind
        if decision.insert:
            state.dataset.insert(decision.insert)
        if decision.status is not None:
            status = decision.status
            return fault_response(decision)
        if decision.kind == "stall":
            await asyncio.sleep(state.faults.stall_seconds)
        try:
            query = parse_query(params, offset_ceiling=state.config.offset_ceiling)
        except ParamError as exc:
            status = 400
            return error(400, exc.message, exc.details)
        result = state.queries.evaluate(query)
        if query.format is not None:
            status = 200
            return await _export(request, state, query, result, decision)
        body = state.list_body(params, query, result, decision.shuffle)
        status = 200
        if decision.kind == "truncated":
            return web.Response(status=200, body=body[: len(body) // 2], content_type=JSON_TYPE)
        if decision.kind == "disconnect":
            headers = {"Content-Type": JSON_TYPE}
            return await _close_mid_body(request, 200, headers, body[: len(body) // 2], len(body))
        return web.Response(status=200, body=body, content_type=JSON_TYPE)
    finally:
        state.stats.record(endpoint, params, status, fault)


def _batches(
    state: SimState, result: Result, fields: tuple[str, ...]
) -> Iterator[list[dict[str, Any]]]:
    faults = state.faults if state.faults.apply_to_export else None
    for start in range(0, result.count, EXPORT_BATCH):
        yield select(state.dataset, result.rids(start, start + EXPORT_BATCH), fields, faults)


async def _export(
    request: web.Request, state: SimState, query: Query, result: Result, decision: Decision
) -> web.StreamResponse:
    """Stream every matching record as a file (``limit``/``offset``/``page`` do not apply)."""
    assert query.format is not None
    name = download_name(query.format, query.filename, query.zip)
    headers = {
        "Content-Type": media_type(query.format, query.zip),
        "Content-Disposition": content_disposition(name),
    }
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    chunks = export_chunks(
        _batches(state, result, query.fields),
        query.fields,
        query.format,
        zipped=query.zip,
        filename=query.filename,
        total=result.count,
    )
    for chunk in chunks:
        if not chunk:
            continue
        if decision.kind in ("truncated", "disconnect"):
            await resp.write(chunk[: max(1, len(chunk) // 2)])
            if decision.kind == "disconnect" and request.transport is not None:
                request.transport.close()
                return resp
            break
        await resp.write(chunk)
    chunks.close()
    await resp.write_eof()
    return resp


async def _read_json(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise AuthError(400, "Invalid input parameters", "the body is not valid JSON") from None


async def _iam(
    request: web.Request, endpoint: str, issue: Callable[[SimState, Any], dict[str, str]]
) -> web.Response:
    """One IAM call (login or refresh): read the JSON body, issue a token pair, count it."""
    state = request.app[STATE_KEY]
    status = 500
    try:
        body = await _read_json(request)
        pair = issue(state, body)
        status = 200
        return json_response(200, pair)
    except AuthError as exc:
        status = exc.status
        return error(exc.status, exc.message, exc.details)
    finally:
        state.stats.record(endpoint, {}, status, None)


async def _login(request: web.Request) -> web.Response:
    return await _iam(request, "login", lambda state, body: state.issuer.login(body))


async def _refresh(request: web.Request) -> web.Response:
    authorization = request.headers.get("Authorization")
    return await _iam(
        request, "refresh", lambda state, body: state.issuer.refresh(body, authorization)
    )


def make_app(config: SimConfig | None = None, *, state: SimState | None = None) -> web.Application:
    """The simulator as an aiohttp application (build a fresh :class:`SimState` if needed).

    Routes: ``GET /api/v1/search/cis/calls`` (lists and ``format=`` downloads),
    ``POST /api/v1/auth/login`` and ``POST /api/v1/auth/refresh``. The state is at
    ``app[STATE_KEY]``.
    """
    if state is None:
        state = SimState(config if config is not None else SimConfig())
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_get(SEARCH_PATH, _search)
    app.router.add_post(LOGIN_PATH, _login)
    app.router.add_post(REFRESH_PATH, _refresh)
    return app
