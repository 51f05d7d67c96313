"""Downloads (``format=``), opened with real readers: csv, openpyxl, zipfile, json."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import aiohttp
import openpyxl
import orjson
import pytest

from callsessions.sim import SimServer

PARAMS = {"status": "ANSWERED", "fields": "id,phone,duration,createdAt,isFinished,messages,nps"}


async def download(
    http: aiohttp.ClientSession, sim: SimServer, params: dict[str, str]
) -> tuple[aiohttp.ClientResponse, bytes]:
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with http.get(sim.search_url, params=params, headers=headers) as resp:
        return resp, await resp.read()


def rows_of_csv(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


async def test_csv(sim: SimServer, http: aiohttp.ClientSession) -> None:
    resp, body = await download(http, sim, {**PARAMS, "format": "CSV"})
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == 'attachment; filename="calls.csv"'
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    rows = rows_of_csv(body.decode("utf-8"), ",")
    assert rows[0] == PARAMS["fields"].split(",")
    expected = sim.records(PARAMS)
    assert [r[0] for r in rows[1:]] == [r["id"] for r in expected]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["isFinished"] == "true"
    assert orjson.loads(first["messages"]) == expected[0]["messages"]
    assert first["nps"] == ("" if expected[0]["nps"] is None else str(expected[0]["nps"]))


async def test_csv_excel_has_bom_and_semicolons(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    resp, body = await download(http, sim, {**PARAMS, "format": "CSV_EXCEL", "filename": "отчёт"})
    assert body.startswith(b"\xef\xbb\xbf")
    rows = rows_of_csv(body.decode("utf-8-sig"), ";")
    assert rows[0] == PARAMS["fields"].split(",")
    assert len(rows) - 1 == sim.matching_count(PARAMS)
    assert (
        "filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.csv" in resp.headers["Content-Disposition"]
    )


async def test_xlsx_opens_in_openpyxl(sim: SimServer, http: aiohttp.ClientSession) -> None:
    resp, body = await download(http, sim, {**PARAMS, "format": "XLSX", "filename": "report"})
    assert resp.headers["Content-Disposition"] == 'attachment; filename="report.xlsx"'
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    book.close()
    assert list(rows[0]) == PARAMS["fields"].split(",")
    expected = sim.records(PARAMS)
    assert len(rows) - 1 == len(expected)
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["id"] == expected[0]["id"]
    assert first["duration"] == expected[0]["duration"]
    assert first["isFinished"] is True
    assert orjson.loads(first["messages"]) == expected[0]["messages"]


async def test_json_download(sim: SimServer, http: aiohttp.ClientSession) -> None:
    resp, body = await download(http, sim, {**PARAMS, "format": "JSON"})
    assert resp.headers["Content-Disposition"] == 'attachment; filename="calls.json"'
    assert orjson.loads(body) == sim.records(PARAMS)


async def test_empty_json_download(sim: SimServer, http: aiohttp.ClientSession) -> None:
    _, body = await download(http, sim, {"id": "none", "format": "JSON"})
    assert orjson.loads(body) == []


@pytest.mark.parametrize(("fmt", "ext"), [("CSV", "csv"), ("XLSX", "xlsx"), ("JSON", "json")])
async def test_zip_wraps_the_file(
    sim: SimServer, http: aiohttp.ClientSession, fmt: str, ext: str
) -> None:
    params = {**PARAMS, "format": fmt, "zip": "true", "filename": "dump"}
    resp, body = await download(http, sim, params)
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="dump.zip"'
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.namelist() == [f"dump.{ext}"]
        inner = archive.read(f"dump.{ext}")
    _, plain = await download(http, sim, {**params, "zip": "false"})
    if fmt == "XLSX":
        book = openpyxl.load_workbook(io.BytesIO(inner), read_only=True)
        assert book.active.max_row == sim.matching_count(PARAMS) + 1
        book.close()
    else:
        assert inner == plain


async def test_export_returns_every_match_ignoring_paging_and_ceiling(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    params = {"fields": "id", "format": "CSV", "limit": "5", "offset": "9999"}
    resp, body = await download(http, sim, params)
    assert resp.status == 200
    rows = rows_of_csv(body.decode(), ",")
    assert [r[0] for r in rows[1:]] == sim.matching_ids()
    assert sim.stats.endpoints["export"] == 1
    assert sim.stats.search_requests == 1


async def test_export_sort(sim: SimServer, http: aiohttp.ClientSession) -> None:
    params = {"fields": "id", "format": "CSV", "sort": "-duration"}
    _, body = await download(http, sim, params)
    assert [r[0] for r in rows_of_csv(body.decode(), ",")[1:]] == sim.matching_ids(params)


@pytest.mark.parametrize(
    "params",
    [
        {"format": "PDF"},
        {"format": "csv"},
        {"format": "CSV", "zip": "maybe"},
        {"format": "CSV", "filename": "../x"},
        {"format": "CSV", "limit": "0"},
    ],
)
async def test_bad_export_params_are_400(
    sim: SimServer, http: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    resp, body = await download(http, sim, params)
    assert resp.status == 400
    assert set(orjson.loads(body)) == {"error", "details"}


async def test_large_export_streams_in_chunks(http: aiohttp.ClientSession, clock: Any) -> None:
    from callsessions.sim import SimConfig

    async with SimServer(SimConfig(records=25_000, seed=3, clock=clock)) as sim:
        headers = {"Authorization": f"Bearer {sim.token}"}
        params = {"format": "CSV", "fields": "id,createdAt"}
        chunks = 0
        size = 0
        async with http.get(sim.search_url, params=params, headers=headers) as resp:
            async for chunk in resp.content.iter_any():
                chunks += 1
                size += len(chunk)
        assert chunks > 3
        assert size > 25_000 * 40
