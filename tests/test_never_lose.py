"""Never lose or corrupt a record silently (issue 9): servers that misbehave as real search
services do, and what the library does about each. Every case ends exact, or in an error
that says what happened; none ends "complete" with less than everything."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web

from callsessions import (
    CallSessionsClient,
    ConnectionFailedError,
    DecodeError,
    IncompletePullError,
    MissingIdError,
    RetryPolicy,
    SessionQuery,
)
from callsessions.sim import FaultConfig, SimConfig, SimServer

START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
SPAN = timedelta(days=2)


def sim_config(records: int = 5_000, **faults: Any) -> SimConfig:
    return SimConfig(
        records=records, seed=3, start=START, span=SPAN, faults=FaultConfig(**faults)
    )


def client_for(url: str, token: str, **settings: Any) -> CallSessionsClient:
    settings.setdefault("retry", RetryPolicy.no_wait())
    settings.setdefault("page_size", 250)
    settings.setdefault("offset_ceiling", 1_000)
    settings.setdefault("concurrency", 4)
    return CallSessionsClient(url, token=token, **settings)


QUERY = SessionQuery(start=START, end=START + SPAN)


async def pulled_ids(server: SimServer, **settings: Any) -> list[str]:
    async with client_for(server.url, server.token, **settings) as client:
        return [r["id"] async for r in client.sessions(QUERY, raw=True)]


# -- 1. a count capped at the offset ceiling ------------------------------------------------


@pytest.mark.parametrize("cap", [1_000, 1_500])
async def test_a_capped_count_is_a_lower_bound_and_the_window_is_split(cap: int) -> None:
    # The index reports at most `cap` hits, and serves no offset past the ceiling (1,000).
    async with SimServer(sim_config(records=5_000, count_cap=cap)) as server:
        ids = await pulled_ids(server)
        expected = server.matching_ids({})
    assert len(expected) == 5_000
    assert sorted(ids) == sorted(expected), "every record, once, not the capped count"


async def test_a_count_at_a_user_set_ceiling_is_split_too() -> None:
    # The server's ceiling is 10,000, ours 2,000: a count of exactly 2,000 proves nothing.
    async with SimServer(sim_config(records=6_000, count_cap=2_000)) as server:
        ids = await pulled_ids(server, offset_ceiling=2_000, page_size=500)
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 6_000


async def test_a_one_second_window_that_still_reports_the_cap_is_an_error() -> None:
    # Every record in one second, more than the ceiling: cannot be served by this endpoint.
    config = SimConfig(
        records=1_500, seed=1, start=START, span=timedelta(seconds=1), burst_fraction=0.0,
        faults=FaultConfig(count_cap=1_000),
    )
    async with SimServer(config) as server, client_for(server.url, server.token) as client:
        query = SessionQuery(start=START, end=START + timedelta(seconds=1))
        with pytest.raises(IncompletePullError, match="too short to split"):
            async for _ in client.sessions(query, raw=True):
                pass


# -- 2. records without an id ---------------------------------------------------------------


@pytest.mark.parametrize("null", [False, True])
async def test_a_record_without_id_stops_the_pull_and_names_the_window(null: bool) -> None:
    config = sim_config(records=2_000, missing_id_every=500, missing_id_null=null)
    async with SimServer(config) as server, client_for(server.url, server.token) as client:
        got: list[str] = []

        async def pull() -> None:
            async for r in client.sessions(QUERY, raw=True):
                got.append(r["id"])

        with pytest.raises(MissingIdError, match=r"have no 'id'") as info:
            await pull()
    assert info.value.window.startswith("[2026-01-0"), "the message names the window"
    assert len(got) < 2_000


async def test_structured_records_without_id_stop_the_pull_too() -> None:
    config = sim_config(records=1_000, missing_id_every=300)
    async with SimServer(config) as server, client_for(server.url, server.token) as client:
        with pytest.raises(MissingIdError):
            async for _ in client.sessions(QUERY):
                pass


# -- 6. answers no retry can heal -------------------------------------------------------------


async def test_an_html_200_is_retried_once_then_reported_with_its_title() -> None:
    async with SimServer(sim_config(records=500, rate_html_200=1.0)) as server:
        async with client_for(server.url, server.token) as client:
            with pytest.raises(DecodeError, match="HTML page") as info:
                await client.count(QUERY)
        assert server.stats.search_requests == 2, "one retry, not six"
    assert info.value.transient is False


async def _serve(handler: Any) -> tuple[web.AppRunner, str, list[int]]:
    hits: list[int] = []

    async def counted(request: web.Request) -> web.StreamResponse:
        hits.append(1)
        result: web.StreamResponse = await handler(request)
        return result

    app = web.Application()
    app.router.add_get("/api/v1/search/cis/calls", counted)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", hits


def _ok_json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


@pytest.mark.parametrize(
    ("answer", "shows"),
    [
        (lambda: _ok_json(b'{"count": "many", "items": []}'), "'count' is not an integer"),
        (lambda: _ok_json(b'{"count": 3, "items": {"a": 1}}'), "expected {'count', 'items'}"),
        (lambda: _ok_json(b'{"count": 1, "items": [{"id": "\xff\xfe"}]}'), "not valid UTF-8"),
        (
            lambda: web.Response(
                status=302, headers={"Location": "https://login.example.test/sso?next=%2Fx&t=1"}
            ),
            "a redirect to https://login.example.test/sso, not followed",
        ),
    ],
    ids=["count-not-int", "items-not-list", "invalid-utf8", "redirect"],
)
async def test_well_formed_wrong_answers_fail_after_at_most_one_retry(
    answer: Any, shows: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        result: web.StreamResponse = answer()
        return result

    runner, url, hits = await _serve(handler)
    try:
        async with client_for(url, "t0ken-not-shown") as client:
            with pytest.raises(DecodeError) as info:
                await client.fetch_page(SessionQuery(page_size=1))
    finally:
        await runner.cleanup()
    assert shows in str(info.value)
    assert "next=" not in str(info.value), "a redirect's query is never shown"
    assert len(hits) <= 2, f"{len(hits)} requests for an answer no retry can heal"


async def test_a_body_cut_short_is_still_retried_as_transient() -> None:
    calls: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(1)
        if len(calls) < 4:
            return _ok_json(b'{"count": 1, "items": [{"id": "a"')
        return _ok_json(b'{"count": 1, "items": [{"id": "a"}]}')

    runner, url, _ = await _serve(handler)
    try:
        async with client_for(url, "t") as client:
            page = await client.fetch_page(SessionQuery(page_size=1), raw=True)
    finally:
        await runner.cleanup()
    assert [r["id"] for r in page.items] == ["a"] and len(calls) == 4


async def test_a_body_over_the_size_cap_is_an_error_not_an_unbounded_read() -> None:
    big = b'{"count": 1, "items": [{"id": "' + b"x" * 50_000 + b'"}]}'

    async def handler(request: web.Request) -> web.StreamResponse:
        return _ok_json(big)

    runner, url, _ = await _serve(handler)
    try:
        async with client_for(url, "t", max_body_bytes=10_000) as client:
            with pytest.raises(DecodeError, match="larger than max_body_bytes"):
                await client.fetch_page(SessionQuery(page_size=1))
    finally:
        await runner.cleanup()


# -- 8. a count that lies upward ----------------------------------------------------------------


async def test_a_count_that_lies_upward_costs_a_bounded_effort_then_is_reported() -> None:
    async with SimServer(sim_config(records=3_000, count_extra=40)) as server:
        async with client_for(server.url, server.token, offset_ceiling=10_000) as client:
            stream = client.sessions(QUERY, raw=True)
            got: list[str] = []

            async def pull() -> None:
                async for r in stream:
                    got.append(r["id"])

            with pytest.raises(IncompletePullError) as info:
                await pull()
        requests = server.stats.search_requests
    assert sorted(got) == sorted(server.matching_ids({})), "everything real was delivered"
    assert info.value.problems, "the window is reported, not passed off as complete"
    # 3,000 records in pages of 250: 13 pages; re-walks may add at most 2x that per window.
    windows = len({str(p.window) for p in info.value.problems})
    assert requests <= 13 + 3 * 13 * windows + 10, f"{requests} requests"


# -- 12. values of an unexpected type are counted ---------------------------------------------


async def test_type_mismatches_are_counted_per_field_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from callsessions import MockTransport, json_response

    items = [
        {"id": "a", "duration": "12.5", "createdAt": "2026-01-01T00:00:01+00:00"},
        {"id": "b", "duration": 7, "createdAt": "yesterday", "price": "abc"},
        {"id": "c", "duration": "x", "createdAt": "2026-01-01T00:00:02+00:00"},
    ]

    def handler(request: Any, authorization: str | None) -> Any:
        return json_response(200, {"count": len(items), "items": items})

    async with CallSessionsClient(
        "https://example.test", token="t", transport=MockTransport(handler)
    ) as client:
        stream = client.sessions(SessionQuery(start=START, end=START + timedelta(days=1)))
        with caplog.at_level("WARNING", logger="callsessions"):
            records = [r async for r in stream]
    assert [r.duration for r in records] == ["12.5", 7, "x"], "kept as they came"
    assert dict(stream.summary.type_mismatches) == {"duration": 2, "createdAt": 1, "price": 1}
    warned = [m for m in caplog.messages if "unexpected type" in m]
    assert len(warned) == 3, "one warning per field, not per value"


async def test_a_throttled_pull_reports_its_learned_pace() -> None:
    # 20 requests/s per token on the simulator's clock, where each look is 20 ms later.
    ticks = iter(range(10**9))
    config = SimConfig(
        records=3_000, seed=3, start=START, span=SPAN,
        faults=FaultConfig(rate_limit=20, rate_limit_burst=3),
        clock=lambda: 1_800_000_000.0 + next(ticks) * 0.02,
    )
    async with SimServer(config) as server:
        async with client_for(server.url, server.token, concurrency=8) as client:
            stream = client.sessions(QUERY, raw=True)
            ids = [r["id"] async for r in stream]
            assert client.rate is not None, "the pace was learned from the 429s"
        assert sorted(ids) == sorted(server.matching_ids({}))
    from callsessions import PullSummary

    line = PullSummary(throttled=3, throttled_seconds=1.5, rate=4.9).line()
    assert "3 throttled, 1.5s waited, paced at 4.9 req/s" in line


# -- a host that does not answer (issue 14) -----------------------------------------------------


async def test_an_unreachable_host_is_announced_at_once_and_named_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}", "t0ken", retry=RetryPolicy.no_wait(attempts=4))
    with caplog.at_level("WARNING", logger="callsessions"):
        async with client:
            with pytest.raises(ConnectionFailedError) as info:
                await client.count(QUERY)
    notices = [m for m in caplog.messages if m.startswith("cannot connect to")]
    assert len(notices) == 1, "said once, not once per retry"
    assert f"127.0.0.1:{port}" in notices[0] and "attempt 2 of 4" in notices[0]
    assert f"host 127.0.0.1:{port}; gave up after 4 attempts" in str(info.value)
    assert "t0ken" not in str(info.value) + "".join(caplog.messages)


async def test_failures_that_do_not_heal_in_seconds_are_retried_once() -> None:
    from callsessions import MockTransport

    calls: list[int] = []

    def handler(request: Any, authorization: str | None) -> Any:
        calls.append(1)
        raise ConnectionFailedError("ClientConnectorDNSError: no such host", lasting=True)

    async with CallSessionsClient(
        "https://nowhere.example.test", token="t", transport=MockTransport(handler),
        retry=RetryPolicy.no_wait(attempts=6),
    ) as client:
        with pytest.raises(ConnectionFailedError, match="gave up after 2 attempts"):
            await client.count(QUERY)
    assert len(calls) == 2


def test_dns_and_tls_errors_are_mapped_as_lasting() -> None:
    import aiohttp

    from callsessions.http.transport import _map_error
    from callsessions.protocol.wire import HTTPRequest

    request = HTTPRequest("GET", "https://nowhere.example.test/api")
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("nowhere.example.test", 443, True, True, None, None, None, None)
    dns = aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))
    mapped = _map_error(dns, request)
    assert isinstance(mapped, ConnectionFailedError) and mapped.lasting
    reset = _map_error(aiohttp.ClientConnectionError("reset"), request)
    assert isinstance(reset, ConnectionFailedError) and not reset.lasting


# -- planning in one round trip (issue 15) -------------------------------------------------


@pytest.mark.parametrize("ahead", [True, False], ids=["count-ahead", "no-count-ahead"])
@pytest.mark.parametrize("how", ["sessions", "pull_to"])
async def test_a_small_pull_counts_with_its_first_page_and_never_asks_for_it_twice(
    tmp_path: Any, how: str, ahead: bool
) -> None:
    """A range that fits one window costs its pages and nothing more; with ``count_ahead``
    (the default) also the four bucket counts sent with its first page, in case it had not
    fitted."""
    async with SimServer(sim_config(records=3_000)) as server:
        async with client_for(
            server.url, server.token, offset_ceiling=10_000, count_ahead=ahead
        ) as client:
            if how == "sessions":
                ids = [r["id"] async for r in client.sessions(QUERY, raw=True)]
            else:
                await client.pull_to(QUERY, tmp_path / "calls.jsonl")
                lines = (tmp_path / "calls.jsonl").read_text().splitlines()
                ids = [orjson.loads(line)["id"] for line in lines]
        offsets = [r.params.get("offset") for r in server.stats.log]
        assert sorted(ids) == sorted(server.matching_ids({}))
    counts = [r for r in server.stats.log if r.params.get("limit") == "1"]
    assert server.stats.search_requests - len(counts) == 12, "3,000 records in pages of 250"
    # (one may be cancelled before it leaves, when the first page answers early)
    assert 1 <= len(counts) <= 4 if ahead else not counts
    assert all("offset" not in r.params for r in counts)
    assert offsets.count("0") == 1, "the first page came with the count, once"
