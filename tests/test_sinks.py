"""The sinks of the command line: JSONL, CSV and SQLite, written, synced, resumed, finalized."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from callsessions._query import ALL_FIELDS
from callsessions._sinks import (
    CsvSink,
    JsonlSink,
    SqliteSink,
    columns_for,
    format_for,
    open_sink,
    read_ids,
)


def record(n: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"id-{n:04d}",
        "phone": f"7900000{n:04d}",
        "duration": n,
        "transferredToOperator": n % 2 == 0,
        "nps": None,
        "messages": [{"role": "bot", "text": 'Здравствуйте, "это" робот'}],
        "additional": {"k": n, "nested": {"a": [1, 2]}},
        "createdAt": "2026-01-01T03:00:00+03:00",
    }
    base.update(changes)
    return base


FIELDS = ("phone", "duration", "transferredToOperator", "nps", "messages", "additional")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.csv", "csv"),
        ("a.sqlite", "sqlite"),
        ("a.sqlite3", "sqlite"),
        ("a.db", "sqlite"),
        ("a.json", None),
        ("a.txt", None),
        ("a", None),
    ],
)
def test_format_follows_the_extension(name: str, kind: str | None) -> None:
    assert format_for(Path(name)) == kind


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.jsonl"):
        open_sink(tmp_path / "out.xml", None)


def test_columns_put_id_first() -> None:
    assert columns_for(("phone", "id", "status")) == ["id", "phone", "status"]
    assert columns_for(("phone",)) == ["id", "phone"]
    assert columns_for(None) == list(ALL_FIELDS)


# -- JSONL --------------------------------------------------------------------------------


def test_jsonl_writes_to_partial_and_renames_when_final(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    sink = JsonlSink(out)
    sink.open()
    sink.write([record(1), record(2)])
    assert not out.exists()
    assert sink.partial_path == tmp_path / "calls.jsonl.partial"
    assert sink.sync() == sink.partial_path.stat().st_size
    assert sink.finalize() == out
    assert not sink.partial_path.exists()
    lines = out.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == [record(1), record(2)]
    assert sink.written == 2


def test_jsonl_resume_cuts_back_to_the_synced_position(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    sink = JsonlSink(out)
    sink.open()
    sink.write([record(1)])
    position = sink.sync()
    sink.write([record(2)])  # never synced: the crash loses it
    sink.sync()
    sink.close()
    again = JsonlSink(out)
    again.open(resume_from=position)
    again.write([record(3)])
    again.finalize()
    assert read_ids(out) == ["id-0001", "id-0003"]


def test_jsonl_resume_refuses_a_shorter_file(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    (tmp_path / "calls.jsonl.partial").write_bytes(b"{}\n")
    with pytest.raises(ValueError, match="fewer than"):
        JsonlSink(out).open(resume_from=100)


def test_jsonl_resume_needs_the_partial_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        JsonlSink(tmp_path / "calls.jsonl").open(resume_from=10)
    sink = JsonlSink(tmp_path / "calls.jsonl")
    sink.open(resume_from=0)  # nothing was written yet: start the file
    sink.finalize()
    assert (tmp_path / "calls.jsonl").read_bytes() == b""


def test_write_before_open_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        JsonlSink(tmp_path / "x.jsonl").write([record(1)])
    with pytest.raises(RuntimeError, match="not open"):
        SqliteSink(tmp_path / "x.sqlite", None).sync()


# -- CSV ----------------------------------------------------------------------------------


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_csv_has_a_header_and_json_for_nested_values(tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    sink = CsvSink(out, FIELDS)
    sink.open()
    sink.write([record(1), record(2, phone=None)])
    sink.finalize()
    rows = read_csv(out)
    assert rows[0] == ["id", *FIELDS]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["id"] == "id-0001"
    assert first["duration"] == "1"
    assert first["transferredToOperator"] == "false"
    assert first["nps"] == ""
    assert json.loads(first["messages"]) == record(1)["messages"]
    assert json.loads(first["additional"]) == record(1)["additional"]
    second = dict(zip(rows[0], rows[2], strict=True))
    assert second["phone"] == ""
    assert second["transferredToOperator"] == "true"


def test_csv_ignores_fields_not_asked_for_and_fills_missing_ones(tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    sink = CsvSink(out, ("status",))
    sink.open()
    sink.write([record(1)])
    sink.finalize()
    assert read_csv(out) == [["id", "status"], ["id-0001", ""]]


def test_csv_resume_keeps_one_header(tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    sink = CsvSink(out, ("phone",))
    sink.open()
    sink.write([record(1)])
    position = sink.sync()
    sink.write([record(2)])
    sink.close()
    again = CsvSink(out, ("phone",))
    again.open(resume_from=position)
    again.write([record(3)])
    again.finalize()
    rows = read_csv(out)
    assert rows[0] == ["id", "phone"]
    assert [r[0] for r in rows[1:]] == ["id-0001", "id-0003"]
    assert read_ids(out) == ["id-0001", "id-0003"]


def test_csv_resume_from_zero_writes_the_header(tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    sink = CsvSink(out, ("phone",))
    sink.open(resume_from=0)
    sink.write([record(1)])
    sink.finalize()
    assert read_csv(out)[0] == ["id", "phone"]


# -- SQLite -------------------------------------------------------------------------------


def rows_of(path: Path) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return {r["id"]: dict(r) for r in db.execute("SELECT * FROM call_sessions")}
    finally:
        db.close()


def test_sqlite_upserts_so_each_call_is_kept_once(tmp_path: Path) -> None:
    out = tmp_path / "calls.sqlite"
    for duration in (10, 20):
        sink = SqliteSink(out, FIELDS)
        sink.open()
        sink.write([record(1, duration=duration), record(2, duration=duration)])
        sink.write([record(1, duration=duration)])
        assert sink.finalize() == out
    rows = rows_of(out)
    assert sorted(rows) == ["id-0001", "id-0002"]
    assert rows["id-0001"]["duration"] == 20
    assert rows["id-0001"]["transferredToOperator"] == 0
    assert rows["id-0001"]["nps"] is None
    assert json.loads(rows["id-0001"]["additional"]) == record(1)["additional"]
    db = sqlite3.connect(out)
    try:
        info = {r[1]: r for r in db.execute("PRAGMA table_info(call_sessions)")}
    finally:
        db.close()
    assert info["id"][5] == 1  # the primary key


def test_sqlite_adds_columns_for_new_fields(tmp_path: Path) -> None:
    out = tmp_path / "calls.sqlite"
    sink = SqliteSink(out, ("phone",))
    sink.open()
    sink.write([record(1)])
    sink.finalize()
    sink = SqliteSink(out, ("phone", "duration"))
    sink.open()
    sink.write([record(2)])
    sink.finalize()
    rows = rows_of(out)
    assert rows["id-0001"]["duration"] is None
    assert rows["id-0002"]["duration"] == 2


def test_sqlite_only_id_does_nothing_on_conflict(tmp_path: Path) -> None:
    out = tmp_path / "ids.db"
    sink = open_sink(out, ("id",))
    sink.open()
    sink.write([{"id": "a"}, {"id": "a"}, {"id": "b"}])
    sink.finalize()
    assert sorted(read_ids(out)) == ["a", "b"]


def test_sqlite_close_without_sync_rolls_back(tmp_path: Path) -> None:
    out = tmp_path / "calls.sqlite"
    sink = SqliteSink(out, ("phone",))
    sink.open()
    sink.write([record(1)])
    sink.sync()
    sink.write([record(2)])
    sink.close()
    sink.close()  # idempotent
    assert read_ids(out) == ["id-0001"]


def test_read_ids_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        read_ids(tmp_path / "x.txt")
