"""The typed SQLite output: declared types, UTC text times, exact prices, an index, foreign
tables refused untouched, the untyped layout of earlier versions migrated, resumes."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from _sinks_data import exact_sum, odd_records, one, sim_records, utc, write_all
from hypothesis import given, settings
from hypothesis import strategies as st

from callsessions.sinks import (
    OutputMismatchError,
    SqliteSink,
    UnrepresentableValueError,
    open_sink,
    read_ids,
)
from callsessions.sinks.sqlite import utc_text


def columns_of(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return {r[1]: r[2] for r in db.execute("PRAGMA table_info(call_sessions)")}
    finally:
        db.close()


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_sqlite_declares_types_and_indexes_created_at(tmp_path: Path) -> None:
    out = tmp_path / "calls.sqlite"
    sink = open_sink(out, None)
    write_all(sink, [odd_records()])
    sink.finalize()
    types = columns_of(out)
    assert types["id"] == "TEXT" and types["phone"] == "TEXT"
    for name in ("duration", "regionId", "timezone", "nps", "isFinished", "botDuration"):
        assert types[name] == "INTEGER"
    for name in ("createdAt", "price", "messages", "status"):
        assert types[name] == "TEXT"
    indexes = query(out, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    assert indexes == [("call_sessions_createdAt",)]


def test_sqlite_values_are_typed_and_times_are_utc_text(tmp_path: Path) -> None:
    records = odd_records() + sim_records(200)
    out = tmp_path / "calls.sqlite"
    sink = open_sink(out, None)
    write_all(sink, [records])
    sink.finalize()
    row = query(
        out,
        "SELECT phone, createdAt, startedAt, price, isFinished, typeof(isFinished), "
        "additional, taskName FROM call_sessions WHERE id = 'a1'",
    )[0]
    assert row[:6] == (
        "0079001234567",
        "2026-01-01T00:00:00.000000Z",
        "2026-01-01T00:00:00.250000Z",
        "86832.55",
        1,
        "integer",
    )
    assert json.loads(row[6]) == odd_records()[0]["additional"] and row[7] == "Обзвон «Весна» 🌷"
    assert query(out, "SELECT price FROM call_sessions WHERE id = 'a3'") == [("0.1",)]
    ordered = [
        r[0]
        for r in query(out, "SELECT createdAt FROM call_sessions ORDER BY createdAt")
        if r[0] is not None
    ]
    assert [utc(t) for t in ordered] == sorted(t for r in records if (t := utc(r["createdAt"])))
    prices = [Decimal(r[0]) for r in query(out, "SELECT price FROM call_sessions") if r[0]]
    assert sum(prices) == exact_sum(records)


def test_the_sqlite3_shell_reads_the_types(tmp_path: Path) -> None:
    shell = shutil.which("sqlite3")
    if shell is None:
        pytest.skip("the sqlite3 shell is not installed")
    out = tmp_path / "calls.sqlite"
    sink = open_sink(out, ("phone", "duration", "taskName", "price"))
    write_all(sink, [odd_records()])
    sink.finalize()
    sql = "SELECT typeof(phone), typeof(duration), taskName, price FROM call_sessions WHERE id='a1'"
    got = subprocess.run([shell, "-json", str(out), sql], capture_output=True, check=True)
    assert json.loads(got.stdout) == [
        {
            "typeof(phone)": "text",
            "typeof(duration)": "integer",
            "taskName": "Обзвон «Весна» 🌷",
            "price": "86832.55",
        }
    ]


def test_duckdb_reads_the_sqlite_file_when_its_extension_is_installed(tmp_path: Path) -> None:
    db = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        db.execute("LOAD sqlite_scanner")  # never downloads: autoinstall is off
    except duckdb.Error:
        pytest.skip("DuckDB's sqlite extension is not installed (it cannot be fetched offline)")
    out = tmp_path / "calls.sqlite"
    sink = open_sink(out, None)
    write_all(sink, [odd_records()])
    sink.finalize()
    db.execute(f"ATTACH '{out}' AS calls (TYPE sqlite)")
    kinds = dict(
        db.sql("SELECT column_name, column_type FROM (DESCRIBE calls.call_sessions)").fetchall()
    )
    assert kinds["taskName"] == "VARCHAR" and kinds["duration"] == "BIGINT"
    assert one(db, "SELECT taskName FROM calls.call_sessions WHERE id = 'a1'") == (
        "Обзвон «Весна» 🌷",
    )


def _foreign(path: Path, sql: str) -> bytes:
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (
            "CREATE TABLE call_sessions (id TEXT PRIMARY KEY, name TEXT); "
            "INSERT INTO call_sessions VALUES ('1', 'x')",
            'column "name" is not a call-session field',
        ),
        (
            "CREATE TABLE call_sessions (id TEXT PRIMARY KEY, duration TEXT)",
            'column "duration" is TEXT, expected INTEGER',
        ),
        ("CREATE TABLE call_sessions (id INTEGER, phone TEXT)", 'column "id" is INTEGER'),
        ("CREATE TABLE t (a); CREATE VIEW call_sessions AS SELECT a FROM t", "is a view"),
    ],
)
def test_a_foreign_table_is_refused_and_the_file_untouched(
    tmp_path: Path, sql: str, reason: str
) -> None:
    out = tmp_path / "theirs.db"
    before = _foreign(out, sql)
    stamp = out.stat().st_mtime_ns
    sink = open_sink(out, ("phone", "duration"))
    with pytest.raises(OutputMismatchError, match="call_sessions") as caught:
        sink.check()
    assert reason in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(OutputMismatchError, match=reason.replace("(", r"\(")):
        sink.open()
    assert out.read_bytes() == before and out.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "calls.db"
    out.write_bytes(b"not a database at all, but somebody's notes" * 100)
    with pytest.raises(OutputMismatchError, match="cannot be read as a SQLite database"):
        open_sink(out, None).open()
    assert out.read_bytes() == b"not a database at all, but somebody's notes" * 100


def test_a_table_of_the_untyped_layout_is_migrated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "callsessions.sinks")
    out = tmp_path / "calls.sqlite"
    db = sqlite3.connect(out)  # as callsessions 0.1 wrote it: no declared types
    db.execute("CREATE TABLE call_sessions (id TEXT PRIMARY KEY NOT NULL)")
    for column in ("phone", "duration", "isFinished", "createdAt", "price", "messages", "markers"):
        db.execute(f'ALTER TABLE call_sessions ADD COLUMN "{column}"')
    db.executemany(
        "INSERT INTO call_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("old1", "79001", 30, 1, "2026-01-01T03:00:00+03:00", "3.00", '[{"t": "да"}]', "x"),
            ("old2", None, None, 0, "2026-01-02T00:00:00Z", 2.5, None, None),
        ],
    )
    db.commit()
    db.close()
    sink = open_sink(out, ("phone", "duration", "status"))
    sink.open()
    sink.write([{"id": "new1", "phone": "1", "duration": 5, "status": "BUSY"}])
    sink.finalize()
    types = columns_of(out)
    assert types == {
        "id": "TEXT",
        "phone": "TEXT",
        "duration": "INTEGER",
        "isFinished": "INTEGER",
        "createdAt": "TEXT",
        "price": "TEXT",
        "messages": "TEXT",
        "markers": "TEXT",
        "status": "TEXT",
    }
    rows = query(
        out,
        "SELECT id, phone, duration, isFinished, createdAt, price, messages, markers,"
        " status FROM call_sessions ORDER BY id",
    )
    assert rows == [
        ("new1", "1", 5, None, None, None, None, None, "BUSY"),
        (
            "old1",
            "79001",
            30,
            1,
            "2026-01-01T00:00:00.000000Z",
            "3.00",
            '[{"t": "да"}]',
            '"x"',
            None,
        ),
        ("old2", None, None, 0, "2026-01-02T00:00:00.000000Z", "2.5", None, None, None),
    ]
    assert any("migrated call_sessions" in r.getMessage() for r in caplog.records)


def test_sqlite_resume_writes_the_unfinished_window_once(tmp_path: Path) -> None:
    records = sim_records(300)
    out = tmp_path / "calls.sqlite"
    sink = SqliteSink(out, ("phone", "createdAt"))
    position = write_all(sink, [records[:100], records[100:200]])
    sink.write(records[200:250])  # the third window, never committed: a crash
    sink.close()
    assert len(read_ids(out)) == 200
    again = open_sink(out, ("phone", "createdAt"))
    again.open(resume_from=position)
    again.write(records[200:])
    again.commit("w2")
    again.finalize()
    ids = read_ids(out)
    assert sorted(ids) == sorted(r["id"] for r in records) and len(ids) == 300


def test_sqlite_counts_wrong_types_and_refuses_a_record_without_id(tmp_path: Path) -> None:
    sink = SqliteSink(tmp_path / "calls.sqlite", ("duration", "createdAt", "price"))
    sink.open()
    sink.write([{"id": "1", "duration": "12.5", "createdAt": "yesterday", "price": "abc"}])
    sink.commit("w0")
    assert sink.type_mismatches == {"duration": 1, "createdAt": 1, "price": 1}
    with pytest.raises(UnrepresentableValueError, match="without a string 'id'"):
        sink.write([{"phone": "1"}])
    sink.close()
    assert query(sink.path, "SELECT * FROM call_sessions") == [("1", None, None, None)]


moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(moment=moments, offset=offsets, fraction=st.booleans(), zulu=st.booleans())
def test_utc_text_is_utc_in_one_width_whatever_the_offset(
    moment: datetime, offset: timedelta, fraction: bool, zulu: bool
) -> None:
    if not fraction:
        moment = moment.replace(microsecond=0)
    local = moment.astimezone(timezone(offset))
    text = local.isoformat()
    if zulu:
        text = moment.isoformat().replace("+00:00", "Z")
    got = utc_text(text)
    assert got is not None and len(got) == 27 and got.endswith("Z")
    assert datetime.fromisoformat(got) == moment
    assert utc_text(text.replace("T", " ")) == got  # the other separator ISO 8601 allows


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T03:00:00",  # no offset: the zone is unknown
        "2026-01-01T03:00:60+03:00",
        "2026-02-30T03:00:00+03:00",
        "2026-01-01T03:00:0a+03:00",
        "2026-01-01T03:00:٠١+03:00",
        "yesterday",
        "",
    ],
)
def test_utc_text_refuses_what_is_not_a_time_with_an_offset(text: str) -> None:
    assert utc_text(text) is None
    assert utc_text(text) is None  # and again, from the cache of minutes
