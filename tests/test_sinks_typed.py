"""The typed Parquet output read back by its real consumers (pyarrow, DuckDB): the explicit
schema, exact values, row groups, column encodings, and values that do not fit. Resuming,
batch building and a simulated pull are in ``test_sinks_typed_resume``,
``test_sinks_typed_batch`` and ``test_sinks_typed_pull``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _sinks_data import exact_sum, odd_records, one, sim_records, utc, write_all

from callsessions.sinks import (
    ParquetSink,
    UnrepresentableValueError,
    decimal_text,
    open_sink,
    read_ids,
)

# -- Parquet ------------------------------------------------------------------------------


def test_parquet_has_the_explicit_schema_in_field_order(tmp_path: Path) -> None:
    out = tmp_path / "calls.parquet"
    fields = ("price", "phone", "id", "createdAt", "status", "messages", "nps", "isFinished")
    sink = open_sink(out, fields)
    write_all(sink, [odd_records()])
    assert sink.finalize() == out
    schema = pq.read_schema(out)
    assert schema.names == [
        "id",
        "price",
        "phone",
        "createdAt",
        "status",
        "messages",
        "nps",
        "isFinished",
    ]
    types = {f.name: f.type for f in schema}
    assert types["id"] == pa.string() and not schema.field("id").nullable
    assert types["phone"] == pa.string()
    assert types["price"] == pa.decimal128(18, 6)
    assert types["createdAt"] == pa.timestamp("us", tz="UTC")
    assert types["status"] == pa.dictionary(pa.int32(), pa.string())
    assert types["messages"] == pa.string()
    assert schema.field("messages").metadata == {b"callsessions.encoding": b"json"}
    assert types["nps"] == pa.int64()
    assert types["isFinished"] == pa.bool_()
    meta = pq.ParquetFile(out).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert not sink.partial_path.exists()


def test_parquet_values_read_back_exactly(tmp_path: Path) -> None:
    records = odd_records() + sim_records(500)
    out = tmp_path / "calls.parquet"
    sink = open_sink(out, None)
    write_all(sink, [records[:200], records[200:]])
    sink.finalize()
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    for got, sent in zip(rows, records, strict=True):
        assert got["phone"] == sent["phone"]
        assert got["taskName"] == sent["taskName"]
        assert got["createdAt"] == utc(sent["createdAt"])
        assert got["startedAt"] == utc(sent["startedAt"])
        expected = None if sent["price"] is None else Decimal(decimal_text(sent["price"]) or "")
        assert got["price"] == expected
        assert got["status"] == sent["status"]
        for nested in ("messages", "additional", "dialogResults", "markers"):
            back = None if got[nested] is None else json.loads(got[nested])
            assert back == sent[nested]
    assert sum(r["price"] for r in rows if r["price"] is not None) == exact_sum(records)
    assert sink.type_mismatches == {}  # type: ignore[attr-defined]


def test_duckdb_reads_the_parquet_file_typed(tmp_path: Path) -> None:
    records = odd_records() + sim_records(300)
    out = tmp_path / "calls.parquet"
    sink = open_sink(out, None)
    write_all(sink, [records])
    sink.finalize()
    db = duckdb.connect()
    kinds = dict(db.sql(f"SELECT column_name, column_type FROM (DESCRIBE '{out}')").fetchall())
    assert kinds["phone"] == "VARCHAR"
    assert kinds["price"] == "DECIMAL(18,6)"
    assert kinds["createdAt"] == "TIMESTAMP WITH TIME ZONE"
    assert kinds["duration"] == "BIGINT"
    assert kinds["isFinished"] == "BOOLEAN"
    total, count = one(db, f"SELECT sum(price), count(*) FROM '{out}'")
    assert (total, count) == (exact_sum(records), len(records))
    name, phone, created = one(db, f"SELECT taskName, phone, createdAt FROM '{out}' WHERE id='a1'")
    assert (name, phone) == ("Обзвон «Весна» 🌷", "0079001234567")
    assert created == datetime(2026, 1, 1, tzinfo=UTC)
    assert one(db, f"SELECT messages->>'$[0].role' FROM '{out}' WHERE id = 'a1'") == ("bot",)


def test_parquet_row_groups_hold_a_few_pages(tmp_path: Path) -> None:
    records = sim_records(2500)
    out = tmp_path / "calls.parquet"
    sink = ParquetSink(out, ("status", "price"), row_group_rows=1000)
    sink.open()
    for start in range(0, 2500, 300):  # pages of 300, windows of 900
        sink.write(records[start : start + 300])
        if start % 900 == 600:
            sink.commit(f"w{start}")
    sink.finalize()
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    assert read_ids(out) == [r["id"] for r in records]


def test_values_of_the_wrong_type_are_null_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = odd_records()[0]
    bad = [
        good | {"id": "b1", "duration": "12.5", "createdAt": "yesterday", "price": "abc"},
        good | {"id": "b2", "duration": 12.5, "createdAt": "2026-01-01T00:00:00", "phone": 79},
        good | {"id": "b3", "duration": 12.0, "isFinished": "yes", "nps": True, "status": 1},
    ]
    out = tmp_path / "calls.parquet"
    sink = open_sink(out, None)
    write_all(sink, [[good, *bad]])
    sink.finalize()
    rows = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    assert rows["b1"]["duration"] is None and rows["b1"]["createdAt"] is None
    assert rows["b1"]["price"] is None
    assert rows["b2"]["duration"] is None and rows["b2"]["createdAt"] is None
    assert rows["b2"]["phone"] is None
    assert rows["b3"]["duration"] == 12  # a whole float is an integer
    assert rows["b3"]["isFinished"] is None and rows["b3"]["nps"] is None
    assert rows["b3"]["status"] is None
    assert rows["a1"]["duration"] == 61
    assert sink.type_mismatches == {  # type: ignore[attr-defined]
        "duration": 2,
        "createdAt": 2,
        "price": 1,
        "phone": 1,
        "isFinished": 1,
        "nps": 1,
        "status": 1,
    }
    warned = [r.getMessage() for r in caplog.records if "type_mismatches" in r.getMessage()]
    assert len(warned) == 7  # once per field
    assert not any("79" in line or "abc" in line for line in warned)  # values are not logged


@pytest.mark.parametrize("price", ["1.0000001", "1234567890123", 1e13, "1e-7"])
def test_a_price_that_does_not_fit_is_an_error_not_a_rounding(tmp_path: Path, price: Any) -> None:
    out = tmp_path / "calls.parquet"
    sink = open_sink(out, ("price",))
    sink.open()
    sink.write([{"id": "x", "price": "1.5"}, {"id": "y", "price": price}])
    with pytest.raises(UnrepresentableValueError, match=r"price .* does not fit decimal\(18, 6\)"):
        sink.commit("w0")
    sink.close()
    assert not out.exists()


def test_a_record_without_id_is_an_error(tmp_path: Path) -> None:
    sink = open_sink(tmp_path / "calls.parquet", ("phone",))
    sink.open()
    sink.write([{"id": None, "phone": "1"}])
    with pytest.raises(UnrepresentableValueError, match="without a string 'id'"):
        sink.commit("w0")
    sink.close()


def test_an_empty_parquet_output_has_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "calls.parquet"
    sink = open_sink(out, ("phone", "price"))
    sink.open()
    sink.commit("w0")
    sink.finalize()
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema.names == ["id", "phone", "price"]


def test_parquet_columns_are_encoded_for_their_use(tmp_path: Path) -> None:
    out = tmp_path / "calls.parquet"
    records = sim_records(300)
    sink = ParquetSink(out, None)
    write_all(sink, [records])
    sink.finalize()
    meta = pq.ParquetFile(out).metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert all(c.compression == "ZSTD" for c in chunks.values())
    for unique in ("id", "createdAt", "linkToLog"):  # a dictionary would repeat every value
        assert "RLE_DICTIONARY" not in chunks[unique].encodings
    for repeated in ("status", "taskName", "price", "messages"):
        assert "RLE_DICTIONARY" in chunks[repeated].encodings
    created = sorted(datetime.fromisoformat(r["createdAt"]) for r in records)
    stats = chunks["createdAt"].statistics
    assert (stats.min, stats.max) == (created[0], created[-1])  # what DuckDB prunes with
    assert chunks["price"].is_stats_set and chunks["id"].is_stats_set
    assert not chunks["messages"].is_stats_set and not chunks["messagesAsString"].is_stats_set
