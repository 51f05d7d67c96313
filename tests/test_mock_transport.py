"""The one-method transport seam, driven by a fake with behaviour (no HTTP at all)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from callsessions import (
    CallSessionsClient,
    ExportFormat,
    HTTPRequest,
    HTTPResponse,
    MockTransport,
    RetryPolicy,
    ServerError,
    SessionQuery,
    json_response,
)

START = datetime.fromisoformat("2026-05-01T00:00:00+00:00")
RECORDS = [
    {"id": f"id-{i:04}", "createdAt": (START + timedelta(minutes=i)).isoformat()}
    for i in range(137)
]


def fake_api(request: HTTPRequest, authorization: str | None) -> HTTPResponse:
    """A tiny honest server: auth, from/to, offset and limit."""
    if authorization != "Bearer t0ken":
        return json_response(401, {"error": "User is not authenticated"})
    params = dict(request.params)
    lo = datetime.fromisoformat(params.get("from", "1970-01-01T00:00:00+00:00"))
    hi = datetime.fromisoformat(params.get("to", "2999-01-01T00:00:00+00:00"))
    rows = [r for r in RECORDS if lo <= datetime.fromisoformat(r["createdAt"]) < hi]
    offset, limit = int(params.get("offset", 0)), int(params.get("limit", 10))
    return json_response(200, {"count": len(rows), "items": rows[offset : offset + limit]})


async def test_a_full_pull_through_the_seam() -> None:
    transport = MockTransport(fake_api)
    async with CallSessionsClient("https://api.test", token="t0ken", transport=transport) as c:
        query = SessionQuery(start=START, end=START + timedelta(days=1), page_size=20)
        ids = [s.id async for s in c.sessions(query)]
    assert ids == [r["id"] for r in RECORDS]
    assert transport.closed, "like httpx, the client closes the transport it was given"
    assert all(r.path == "/api/v1/search/cis/calls" for r in transport.requests)
    assert all("t0ken" not in repr(r) for r in transport.requests)


async def test_async_handler_and_retries() -> None:
    answers = iter([json_response(503, {"error": "busy"}), json_response(502, {"error": "x"})])

    async def flaky(request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        return next(answers, None) or fake_api(request, authorization)

    transport = MockTransport(flaky)
    async with CallSessionsClient(
        "https://api.test", token="t0ken", transport=transport, retry=RetryPolicy.no_wait()
    ) as c:
        page = await c.fetch_page(SessionQuery(page_size=5))
    assert [r.id for r in page.items] == [r["id"] for r in RECORDS[:5]]
    assert len(transport.requests) == 3

    transport = MockTransport(lambda _r, _a: json_response(500, {"error": "down"}))
    async with CallSessionsClient(
        "https://api.test", token="t0ken", transport=transport, retry=RetryPolicy.never()
    ) as c:
        with pytest.raises(ServerError, match="down"):
            await c.fetch_page(SessionQuery(page_size=5))
    assert len(transport.requests) == 1


async def test_export_streams_through_the_seam(tmp_path: Path) -> None:
    body = b"id\n" + b"".join(f"{r['id']}\n".encode() for r in RECORDS)

    def export(request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        assert dict(request.params)["format"] == "CSV"
        headers = {"content-disposition": 'attachment; filename="calls.csv"'}
        return HTTPResponse(200, headers, body)

    async with CallSessionsClient(
        "https://api.test", token="t0ken", transport=MockTransport(export)
    ) as c:
        result = await c.export(
            SessionQuery(export_format=ExportFormat.CSV), tmp_path / "out.csv", chunk_size=100
        )
    assert (tmp_path / "out.csv").read_bytes() == body
    assert result.filename == "calls.csv" and result.bytes == len(body)
