"""The client against the simulator: exports streamed to disk, and real login flows."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook

from callsessions import (
    BadRequestError,
    CallSessionsClient,
    ExportFormat,
    PasswordAuth,
    RetryPolicy,
    SessionQuery,
    TokenExpiredError,
)
from callsessions.sim import FaultConfig, SimConfig, SimServer

START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
END = START + timedelta(days=1)


class Clock:
    """The simulator's clock and the client's, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = SimConfig(records=3_000, seed=3, start=START, span=timedelta(days=2))
    async with SimServer(config) as server:
        yield server


def expected_ids(sim: SimServer) -> list[str]:
    return sim.matching_ids({"from": START.isoformat(), "to": END.isoformat()})


def export_query(fmt: ExportFormat, **changes: Any) -> SessionQuery:
    return SessionQuery(
        start=START, end=END, fields=["id", "phone", "status"], export_format=fmt, **changes
    )


@pytest.mark.parametrize(
    ("fmt", "delimiter", "bom"),
    [(ExportFormat.CSV, ",", False), (ExportFormat.CSV_EXCEL, ";", True)],
)
async def test_csv_exports_stream_to_disk(
    sim: SimServer, tmp_path: Path, fmt: ExportFormat, delimiter: str, bom: bool
) -> None:
    target = tmp_path / "calls.csv"
    progress: list[int] = []
    async with CallSessionsClient(sim.url, token=sim.token) as client:
        result = await client.export(
            export_query(fmt, filename="calls"),
            target,
            on_progress=lambda d, _t: progress.append(d),
        )
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bom
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=delimiter))
    assert [r["id"] for r in rows] == expected_ids(sim)
    assert result.bytes == len(raw) == progress[-1]
    assert progress == sorted(progress)
    assert result.filename == "calls.csv"
    assert list(tmp_path.iterdir()) == [target], "no temporary file left behind"


async def test_xlsx_in_a_zip(sim: SimServer, tmp_path: Path) -> None:
    target = tmp_path / "calls.zip"
    async with CallSessionsClient(sim.url, token=sim.token) as client:
        result = await client.export(export_query(ExportFormat.XLSX, zip=True), target)
    assert result.filename is not None and result.filename.endswith(".zip")
    with zipfile.ZipFile(target) as archive:
        (name,) = archive.namelist()
        assert name.endswith(".xlsx")
        book = load_workbook(io.BytesIO(archive.read(name)), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    ids = [row[header.index("id")] for row in body]
    assert ids == expected_ids(sim)


async def test_json_export(sim: SimServer, tmp_path: Path) -> None:
    target = tmp_path / "calls.json"
    async with CallSessionsClient(sim.url, token=sim.token) as client:
        await client.export(export_query(ExportFormat.JSON), target)
    data = orjson.loads(target.read_bytes())
    assert [r["id"] for r in data] == expected_ids(sim)


async def test_a_broken_download_is_retried_and_never_left_half_written(
    sim: SimServer, tmp_path: Path
) -> None:
    sim.set_faults(FaultConfig(fail_first=1, fail_first_status=503, rate_disconnect=0.5, seed=4))
    target = tmp_path / "calls.csv"
    async with CallSessionsClient(
        sim.url, token=sim.token, retry=RetryPolicy.no_wait(attempts=20)
    ) as client:
        await client.export(export_query(ExportFormat.CSV), target)
    rows = list(csv.DictReader(io.StringIO(target.read_text("utf-8"))))
    assert [r["id"] for r in rows] == expected_ids(sim)
    assert sim.stats.statuses[503] >= 1, "the first answer failed and was retried"
    assert list(tmp_path.iterdir()) == [target]


async def test_a_refused_export_leaves_no_file(sim: SimServer, tmp_path: Path) -> None:
    target = tmp_path / "calls.csv"
    target.write_text("an older file\n")
    # A status newer than the library passes the client's checks; this server refuses it.
    query = export_query(ExportFormat.CSV, extra_statuses=["NOT_A_STATUS"])
    async with CallSessionsClient(sim.url, token=sim.token) as client:
        with pytest.raises(BadRequestError) as info:
            await client.export(query, target)
    assert info.value.status == 400
    assert target.read_text() == "an older file\n", "the old file is untouched"
    assert list(tmp_path.iterdir()) == [target]


async def test_password_login_and_renewal_after_expiry(tmp_path: Path) -> None:
    clock = Clock()
    config = SimConfig(records=500, seed=5, start=START, span=timedelta(days=1), clock=clock)
    async with SimServer(config) as server:
        auth = PasswordAuth(
            config.email, config.password, auth_url=server.url, ttl=3600, clock=clock
        )
        async with CallSessionsClient(server.url, auth=auth, retry=RetryPolicy.no_wait()) as client:
            first = await client.fetch_page(SessionQuery(page_size=5))
            assert first.count == 500
            assert auth.logins == 1
            # An hour later the token is due: refreshed before it is used.
            clock.now += 3600
            await client.fetch_page(SessionQuery(page_size=5))
            assert auth.refreshes == 1
            assert server.stats.endpoints["refresh"] == 1
            assert server.stats.statuses[401] == 0, "refreshed before expiry, no 401 needed"


async def test_expired_token_is_renewed_once_and_the_request_repeated() -> None:
    clock = Clock()
    config = SimConfig(records=200, seed=6, start=START, span=timedelta(days=1), clock=clock)
    async with SimServer(config) as server:
        # The client's clock lags behind the server's: it believes the token is still good.
        client_clock = Clock()
        auth = PasswordAuth(
            config.email, config.password, auth_url=server.url, ttl=600, clock=client_clock
        )
        async with CallSessionsClient(server.url, auth=auth, retry=RetryPolicy.no_wait()) as client:
            await client.fetch_page(SessionQuery(page_size=1))
            clock.now += 3600
            page = await client.fetch_page(SessionQuery(page_size=1))
            assert page.count == 200
            assert server.stats.statuses[401] == 1, "one 401, then one repeat that worked"
            assert auth.refreshes + auth.logins == 2


async def test_a_static_expired_token_fails_clearly() -> None:
    clock = Clock()
    config = SimConfig(records=10, seed=6, clock=clock, static_tokens=())
    async with SimServer(config) as server:
        token = server.mint_token(ttl=60)
        clock.now += 120
        async with CallSessionsClient(server.url, token=token) as client:
            with pytest.raises(TokenExpiredError) as info:
                await client.fetch_page(SessionQuery(page_size=1))
        assert token not in str(info.value) and token not in repr(info.value)
        assert server.stats.statuses[401] == 1, "not retried"


async def test_many_concurrent_requests_share_one_login() -> None:
    config = SimConfig(records=100, seed=8)
    async with SimServer(config) as server:
        auth = PasswordAuth(config.email, config.password, auth_url=server.url)
        async with CallSessionsClient(server.url, auth=auth) as client:
            pages = await asyncio.gather(
                *(client.fetch_page(SessionQuery(page_size=1, offset=i)) for i in range(10))
            )
        assert [p.count for p in pages] == [100] * 10
        assert server.stats.endpoints["login"] == 1
