"""Outputs that only copy records (JSON Lines) get the server's own bytes: the same records
as the full parse, one per line, whatever the server's layout; broken bytes never copied."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from callsessions import CallSessionsClient, DecodeError, RetryPolicy, SessionQuery
from callsessions.sim import SimConfig, SimServer

START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
QUERY = SessionQuery(start=START, end=START + timedelta(days=1))

ODD = [
    {"id": "a1", "createdAt": "2026-01-01T04:00:00+03:00", "text": "Привет \"ты\"\n😀"},
    {"id": "a2", "createdAt": "2026-01-01T02:00:00Z", "additional": {"id": "not-me", "x": [1]}},
    {"id": "a3", "createdAt": "2026-01-01T03:00:00+00:00", "phone": "+7\u0031"},
]


async def serve(body: bytes) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "10"))
        return web.Response(body=body if limit > 1 else count_only, content_type="application/json")

    count_only = orjson.dumps({"count": len(ODD), "items": ODD[:1]})
    app = web.Application()
    app.router.add_get("/api/v1/search/cis/calls", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "layout", [0, orjson.OPT_INDENT_2], ids=["compact", "pretty-printed"]
)
async def test_jsonl_lines_are_the_records_whatever_the_layout(tmp_path: Path, layout: int) -> None:
    body = orjson.dumps({"count": len(ODD), "items": ODD}, option=layout)
    runner, url = await serve(body)
    out = tmp_path / "calls.jsonl"
    try:
        async with CallSessionsClient(url, token="t", retry=RetryPolicy.no_wait()) as client:
            outcome = await client.pull_to(QUERY, out)
    finally:
        await runner.cleanup()
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(ODD) + 1, "one record a line"
    assert [json.loads(line) for line in lines[:-1]] == ODD
    assert outcome.summary.records == len(ODD)


async def test_invalid_utf8_is_never_copied_into_the_file(tmp_path: Path) -> None:
    body = b'{"count": 1, "items": [{"id": "a1", "createdAt": "2026-01-01T01:00:00Z", '
    body += b'"x": "\xff"}]}'
    runner, url = await serve(body)
    out = tmp_path / "calls.jsonl"
    try:
        async with CallSessionsClient(url, token="t", retry=RetryPolicy.no_wait()) as client:
            with pytest.raises(DecodeError, match="UTF-8"):
                await client.pull_to(QUERY, out)
    finally:
        await runner.cleanup()
    assert not out.exists()


async def test_a_simulator_pull_into_jsonl_equals_the_dict_pull(tmp_path: Path) -> None:
    config = SimConfig(records=3_000, seed=5, start=START, span=timedelta(days=1))
    async with SimServer(config) as sim:
        settings: dict[str, Any] = {"retry": RetryPolicy.no_wait(), "page_size": 250,
                                    "offset_ceiling": 1_000}
        async with CallSessionsClient(sim.url, token=sim.token, **settings) as client:
            await client.pull_to(QUERY, tmp_path / "calls.jsonl")
            dicts = [r async for r in client.sessions(QUERY, raw=True)]
    copied = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert copied == dicts and len(copied) == 3_000
