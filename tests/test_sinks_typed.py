"""The typed Parquet output read back by its real consumers (pyarrow, DuckDB), resumed after
crashes and kills; the package without pyarrow; a simulated pull into every output."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from _sinks_data import exact_sum, odd_records, one, sim_records, utc, write_all
from hypothesis import given, settings
from hypothesis import strategies as st

from callsessions import CallSessionsClient, ClientConfig, RetryPolicy, SessionQuery
from callsessions.sim import SimConfig, SimServer
from callsessions.sinks import (
    ParquetSink,
    UnrepresentableValueError,
    decimal_text,
    open_sink,
    read_ids,
    read_manifest,
    window_key,
)
from callsessions.sinks.arrow import arrow_schema, record_batch
from callsessions.sinks.base import MismatchCounter

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


def test_parquet_resume_is_exact(tmp_path: Path) -> None:
    records = sim_records(900)
    w = [records[0:300], records[300:600], records[600:900]]
    out = tmp_path / "calls.parquet"
    sink = ParquetSink(out, None, row_group_rows=100)
    position = write_all(sink, w[:2])
    sink.write(w[2][:150])  # a third window, cut short by a "crash"
    later = sink.commit("w2")  # committed, but the checkpoint kept `position`
    sink.write(w[2][150:])
    sink.close()
    assert len(later["parts"]) == 3 and len(position["parts"]) == 2
    again = ParquetSink(out, None, row_group_rows=100)
    again.open(resume_from=json.loads(json.dumps(position)))  # as a checkpoint stores it
    assert sorted(p.name for p in again.partial_path.iterdir()) == [
        "part-w0.parquet",
        "part-w1.parquet",
    ]
    again.write(w[2])
    again.commit("w2")
    assert not out.exists()
    again.finalize()
    assert read_ids(out) == [r["id"] for r in records]


def test_a_retried_window_is_written_once(tmp_path: Path) -> None:
    records = sim_records(20)
    out = tmp_path / "calls.parquet"
    sink = open_sink(out, ("phone",))
    sink.open()
    sink.write(records[:10])
    sink.commit("w0")
    sink.write(records[10:15])
    sink.commit("w1")
    sink.write(records[10:20])  # window w1 again, re-walked with more records
    position = sink.commit("w1")
    assert [p["window"] for p in position["parts"]] == ["w0", "w1"]
    sink.finalize()
    assert read_ids(out) == [r["id"] for r in records]


def test_resume_refuses_a_missing_or_changed_part(tmp_path: Path) -> None:
    out = tmp_path / "calls.parquet"
    sink = ParquetSink(out, ("phone",))
    position = write_all(sink, [sim_records(10)])
    sink.close()
    (sink.partial_path / "part-w0.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        ParquetSink(out, ("phone",)).open(resume_from=position)
    changed = {"parts": [{"window": "w0", "file": "part-w0.parquet", "records": 99}]}
    write_all(ParquetSink(out, ("phone",)), [sim_records(10)])
    with pytest.raises(ValueError, match="holds 10 records, not the 99"):
        ParquetSink(out, ("phone",)).open(resume_from=changed)


_KILLED_CHILD = """
import json, os, signal, sys
from pathlib import Path
from callsessions.sim import Dataset
from callsessions.sinks import ParquetSink
data = Dataset(600, seed=5)
records = [data.record(i) for i in range(600)]
sink = ParquetSink(Path(sys.argv[1]), None, row_group_rows=50)
sink.open()
for n in range(2):
    sink.write(records[n * 200:(n + 1) * 200])
    position = sink.commit(f"w{n}")
print(json.dumps(position), flush=True)
sink.write(records[400:550])  # three row groups of the third window reach the disk
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_parquet_pull_leaves_no_parquet_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "calls.parquet"
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, str(out)], capture_output=True, text=True, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert not out.exists()
    spool = out.with_name("calls.parquet.partial")
    parts = sorted(p.name for p in spool.iterdir() if p.name.startswith("part-"))
    assert parts == ["part-w0.parquet", "part-w1.parquet"]
    temps = [p.name for p in spool.iterdir() if not p.name.startswith("part-")]
    assert len(temps) == 1
    assert temps[0].startswith(".inprogress-") and temps[0].endswith(".parquet.tmp")
    records = sim_records(600)
    sink = ParquetSink(out, None)
    sink.open(resume_from=json.loads(child.stdout))
    sink.write(records[400:])
    sink.commit("w2")
    sink.finalize()
    assert read_ids(out) == [r["id"] for r in records]
    assert not spool.exists()


def test_a_failed_join_leaves_no_parquet_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "calls.parquet"
    sink = ParquetSink(out, ("phone",), row_group_rows=10)
    write_all(sink, [sim_records(30)])
    real = pq.ParquetWriter.write_table
    calls = []

    def failing(self: Any, table: Any, row_group_size: Any = None) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real(self, table, row_group_size=row_group_size)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        sink.finalize()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.parquet.partial"]
    (tmp_path / ".calls.parquet.0123.tmp").write_bytes(b"PAR1 cut")  # as a kill leaves it
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    again = ParquetSink(out, ("phone",))
    again.open()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.parquet.partial"]


def test_the_package_works_without_pyarrow(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pyarrow"] = None  # as if it were not installed
        from pathlib import Path
        import callsessions
        from callsessions.sinks import open_sink
        out = Path(sys.argv[1])
        for target in (out / "calls.parquet", str(out / "calls") + "/"):
            try:
                open_sink(target, None)
            except ValueError as exc:
                print(exc)
        sink = open_sink(str(out / "parts") + "/", None, format="jsonl")
        sink.open(); sink.write([{"id": "a"}]); sink.commit("w0"); sink.finalize()
        print(sorted(p.name for p in out.iterdir()))
        """
    )
    got = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    lines = got.stdout.splitlines()
    assert "pip install 'callsessions[parquet]'" in lines[0]
    assert "pip install 'callsessions[parquet]' (or use jsonl parts)" in lines[1]
    assert lines[2] == "['parts']"


# -- a pull from the simulator, through the client, into every output -----------------------

SIM_START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "target", ["calls.parquet", "calls/", "calls.sqlite", "calls.jsonl.gz", "calls.csv.gz"]
)
async def test_a_simulated_pull_lands_exactly_in_every_output(tmp_path: Path, target: str) -> None:
    config = SimConfig(
        records=3_000, seed=11, start=SIM_START, span=timedelta(days=2), offset_ceiling=1_000
    )
    query = SessionQuery(start=SIM_START, end=SIM_START + timedelta(days=2))
    settings = ClientConfig(page_size=200, offset_ceiling=1_000, retry=RetryPolicy.no_wait())
    async with SimServer(config) as sim:
        async with CallSessionsClient(sim.url, token=sim.token, config=settings) as client:
            plan = await client.plan(query)
            assert len(plan.windows) >= 3
            sink = open_sink(f"{tmp_path}/{target}", query.fields)
            await asyncio.to_thread(sink.open)
            async with client.pages(plan, raw=True) as stream:
                async for page in stream:
                    await asyncio.to_thread(sink.write, page.items)
                    if page.final:
                        assert page.window is not None
                        key = window_key(plan.windows[page.window])
                        await asyncio.to_thread(sink.commit, key)
            await asyncio.to_thread(sink.finalize)
        span = {"from": SIM_START.isoformat(), "to": (SIM_START + timedelta(days=2)).isoformat()}
        expected = sim.matching_ids(span)
    got = read_ids(tmp_path / target)
    assert sorted(got) == sorted(expected) and len(got) == len(expected)
    if target == "calls/":
        manifest = read_manifest(tmp_path / "calls")
        assert [p.window for p in manifest.parts] == [window_key(w) for w in plan.windows]


@settings(max_examples=100, deadline=None)
@given(
    moments=st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(1971, 1, 1),
                max_value=datetime(2099, 12, 31),
                timezones=st.just(UTC),
            ),
            st.integers(min_value=-14 * 60, max_value=14 * 60),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_arrow_times_are_the_same_by_either_path(moments: list[tuple[datetime, int]]) -> None:
    texts = [m.astimezone(timezone(timedelta(minutes=o))).isoformat() for m, o in moments]
    schema = arrow_schema(["id", "createdAt"])
    records = [{"id": str(n), "createdAt": t} for n, t in enumerate(texts)]
    counter = MismatchCounter()
    fast = record_batch(records, schema, counter).column(1).to_pylist()  # Arrow's cast
    odd = [*records, {"id": "x", "createdAt": "2026-01-01T00:00:00"}]  # no offset: per value
    slow = record_batch(odd, schema, counter).column(1).to_pylist()
    assert fast == slow[:-1] == [m for m, _ in moments]
    assert slow[-1] is None and counter.counts == {"createdAt": 1}


# -- how a batch is built: the one-pass (struct) path against the per-column path ---------

_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
_MOMENTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=_OFFSETS
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
_FIELDS: dict[str, Any] = {
    "phone": st.none() | st.text(max_size=12),
    "duration": st.none() | st.integers(-(2**63), 2**63 - 1),
    "status": st.none() | st.sampled_from(["ANSWERED", "BUSY", "НОВЫЙ"]),
    "isFinished": st.none() | st.booleans(),
    "createdAt": st.none() | _MOMENTS.map(lambda m: m.isoformat()),
    "price": st.none()
    | st.decimals(min_value=-(10**12) + 1, max_value=10**12 - 1, places=6).map(str),
    "messages": _JSON,
}
_RECORD = st.fixed_dictionaries(_FIELDS)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(_RECORD, min_size=1, max_size=12))
def test_the_one_pass_path_gives_what_the_per_column_path_gives(
    records: list[dict[str, Any]],
) -> None:
    columns = ["id", *_FIELDS]
    schema = arrow_schema(columns)
    rows = [{"id": str(n), **r} for n, r in enumerate(records)]
    counter = MismatchCounter()
    fast = record_batch(rows, schema, counter).to_pylist()
    # one wrong value anywhere sends every struct column through the per-column path
    slow = record_batch([*rows, {"id": "x", "phone": 79}], schema, counter).to_pylist()
    assert fast == slow[:-1]
    assert counter.counts == {"phone": 1}
    for got, sent in zip(fast, rows, strict=True):
        assert got["createdAt"] == utc(sent["createdAt"])
        assert got["price"] == (None if sent["price"] is None else Decimal(sent["price"]))
        back = None if got["messages"] is None else json.loads(got["messages"])
        assert back == sent["messages"] and (back is None) == (got["messages"] is None)


_BY_ARROW = [
    "2026-01-01T03:00:00+03:00",
    "2026-01-01T03:00:00+0300",
    "2026-01-01 03:00:00-05:30",
    "2025-12-31T19:00:00.250-05:00",
    "2026-01-01T03:00:00.123456+05:45",
    "2026-01-01T03:00:00-00:00",
    "2026-01-01T03:00:00+14:00",
    "2026-01-01T03:00Z",
]
_BY_PYTHON = ["2026-01-01T03:00:00.1234567Z", "2026-01-01T03:00:00+03:30:15", "20260101T030000Z"]


@pytest.mark.parametrize("text", _BY_ARROW + _BY_PYTHON)
def test_times_equal_pythons_fromisoformat_in_utc(text: str) -> None:
    expected = datetime.fromisoformat(text).astimezone(UTC)
    if text in _BY_ARROW:  # the fast path: Arrow's own parser, exact
        assert pc.cast(pa.array([text]), pa.timestamp("us", tz="UTC")).to_pylist() == [expected]
    else:  # Arrow refuses these: the batch is parsed by Python, value by value
        with pytest.raises(pa.ArrowInvalid):
            pc.cast(pa.array([text]), pa.timestamp("us", tz="UTC"))
    schema = arrow_schema(["id", "createdAt"])
    counter = MismatchCounter()
    batch = record_batch([{"id": "a", "createdAt": text}], schema, counter)
    assert batch.column(1).to_pylist() == [expected] and counter.counts == {}


def test_nested_values_are_compact_json_text_and_none_is_null() -> None:
    values: list[Any] = [None, "null", [], {"ключ": "знач 🌷"}, [None, 1.5], Decimal("1.50")]
    values.append({"n": {}})
    rows = [{"id": str(n), "additional": v} for n, v in enumerate(values)]
    batch = record_batch(rows, arrow_schema(["id", "additional"]), MismatchCounter())
    assert batch.column(1).to_pylist() == [
        None,  # a missing value, not the JSON text `null`
        '"null"',
        "[]",
        '{"ключ":"знач 🌷"}',
        "[null,1.5]",
        '"1.50"',  # what JSON has no type for is written as its text
        '{"n":{}}',
    ]
    assert batch.column(1).validate(full=True) is None  # valid UTF-8


def test_integers_are_exact_and_floats_are_never_truncated() -> None:
    durations = [2**63 - 1, -(2**63), 12.0, 12.5, 2**63, "7", None]
    rows = [{"id": str(n), "duration": d} for n, d in enumerate(durations)]
    counter = MismatchCounter()
    batch = record_batch(rows, arrow_schema(["id", "duration"]), counter)
    assert batch.column(1).to_pylist() == [2**63 - 1, -(2**63), 12, None, None, None, None]
    assert counter.counts == {"duration": 3}
    # the only odd value of its batch: a typed conversion of the records would truncate it
    alone = [{"id": "a", "duration": 1, "phone": "1"}, {"id": "b", "duration": 12.5}]
    batch = record_batch(alone, arrow_schema(["id", "duration", "phone"]), counter)
    assert batch.column(1).to_pylist() == [1, None]
    assert counter.counts == {"duration": 4}


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
