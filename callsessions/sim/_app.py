"""The aiohttp application: the search endpoint (lists and exports) and the IAM endpoints.

The state the handlers share and the statistics they record are ``_state.py``'s; its public
names are re-exported here, where they used to live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from aiohttp import web

from ._auth import AuthError
from ._config import SimConfig
from ._export import content_disposition, download_name, export_chunks, media_type
from ._faults import Decision
from ._params import ParamError, Query, parse_query
from ._query import Result
from ._responses import JSON_TYPE, error, fault_response, json_response, select
from ._state import RequestRecord, SimState, SimStats

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
