"""The text sinks (JSONL, CSV, gzip, stdout), SQLite basics, choosing a sink, safe files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from _sinks_data import FIELDS, read_csv, record

from callsessions import ALL_FIELDS, Window
from callsessions.sinks import (
    FIELD_KINDS,
    CsvSink,
    DatasetSink,
    JsonlSink,
    ParquetSink,
    SqliteSink,
    StdoutSink,
    atomic_file,
    atomic_write,
    columns_for,
    format_for,
    open_sink,
    parse_window_key,
    read_ids,
    window_key,
)


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
    assert sink.commit("w") == sink.partial_path.stat().st_size
    assert sink.finalize() == out
    assert not sink.partial_path.exists()
    lines = out.read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == [record(1), record(2)]
    assert sink.written == 2


def test_jsonl_resume_cuts_back_to_the_committed_position(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    sink = JsonlSink(out)
    sink.open()
    sink.write([record(1)])
    position = sink.commit("w")
    sink.write([record(2)])  # after the position the checkpoint kept: dropped
    sink.commit("w")
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
        SqliteSink(tmp_path / "x.sqlite", None).commit("w")


# -- CSV ----------------------------------------------------------------------------------


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
    position = sink.commit("w")
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


def test_sqlite_close_without_commit_rolls_back(tmp_path: Path) -> None:
    out = tmp_path / "calls.sqlite"
    sink = SqliteSink(out, ("phone",))
    sink.open()
    sink.write([record(1)])
    sink.commit("w")
    sink.write([record(2)])
    sink.close()
    sink.close()  # idempotent
    assert read_ids(out) == ["id-0001"]


def test_read_ids_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        read_ids(tmp_path / "x.txt")


# -- choosing the sink ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.jsonl.gz", "jsonl.gz"),
        ("a.NDJSON.GZ", "jsonl.gz"),
        ("a.csv.gz", "csv.gz"),
        ("a.parquet", "parquet"),
        ("-", "stdout"),
        ("calls/", "dataset"),
        ("a.gz", None),
        (".jsonl", None),
    ],
)
def test_format_of_new_outputs(name: str, kind: str | None) -> None:
    assert format_for(name) == kind


def test_open_sink_picks_the_class(tmp_path: Path) -> None:
    assert isinstance(open_sink(tmp_path / "a.jsonl.gz", None), JsonlSink)
    assert isinstance(open_sink(tmp_path / "a.csv.gz", None), CsvSink)
    assert isinstance(open_sink("-", None), StdoutSink)
    assert isinstance(open_sink(tmp_path / "a.parquet", None), ParquetSink)
    assert isinstance(open_sink(tmp_path, None), DatasetSink)  # an existing directory
    assert isinstance(open_sink(tmp_path / "a.txt", None, format="jsonl"), JsonlSink)
    with pytest.raises(ValueError, match="parquet or jsonl parts"):
        open_sink(f"{tmp_path}/new/", None, format="csv")
    with pytest.raises(ValueError, match="unknown output format"):
        open_sink(tmp_path / "a.txt", None, format="xml")
    assert list(tmp_path.iterdir()) == []  # nothing was written by choosing


def test_field_kinds_cover_every_field_in_order() -> None:
    assert tuple(FIELD_KINDS) == ALL_FIELDS
    assert columns_for(("phone", "phone", "id")) == ["id", "phone"]


# -- window keys and atomic files -----------------------------------------------------------


def test_window_key_is_utc_and_filesystem_safe() -> None:
    msk = timezone(timedelta(hours=3))
    window = Window(datetime(2026, 1, 1, 3, tzinfo=msk), datetime(2026, 1, 1, 9, tzinfo=msk))
    assert window_key(window) == "20260101T000000Z_20260101T060000Z"
    same = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 6, tzinfo=UTC))
    assert window_key(same) == window_key(window)
    odd = Window(
        datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    )
    key = window_key(odd)
    assert key == "20260101T000000.250000Z_20260102T000000Z"
    assert parse_window_key(key) == (odd.start, odd.end)
    assert parse_window_key("tail") is None


def test_atomic_write_replaces_with_the_umask_mode(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    out.write_bytes(b"old")
    previous = os.umask(0o022)
    try:
        atomic_write(out, b"new")
    finally:
        os.umask(previous)
    assert out.read_bytes() == b"new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_atomic_file_keeps_the_old_file_on_an_error(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    out.write_bytes(b"old")

    def fail_halfway() -> None:
        with atomic_file(out) as fh:
            fh.write(b"half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_halfway()
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
