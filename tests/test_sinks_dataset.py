"""The dataset directory: one part per window, a manifest, resumes that drop uncommitted
parts, foreign directories refused, parts written by workers; read by pyarrow and DuckDB."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from _sinks_data import exact_sum, odd_records, one, sim_records, write_all

from callsessions.sinks import (
    DatasetSink,
    OutputMismatchError,
    open_sink,
    read_ids,
    read_manifest,
    scan_parts,
    write_manifest,
    write_part,
)

# -- dataset directory --------------------------------------------------------------------


def test_dataset_directory_of_parquet_parts(tmp_path: Path) -> None:
    records = odd_records() + sim_records(400)
    out = tmp_path / "calls"
    sink = open_sink(f"{out}/", None, metadata={"plan": "abc123"})
    assert isinstance(sink, DatasetSink)
    keys = ["20260101T000000Z_20260101T060000Z", "20260101T060000Z_20260101T120000Z"]
    sink.open()
    sink.write(records[:203])
    sink.commit(keys[0])
    assert not (out / "_manifest.json").exists()
    sink.write(records[203:])
    sink.commit(keys[1])
    sink.finalize()
    files = sorted(p.name for p in out.iterdir())
    assert files == ["_manifest.json", *(f"part-{k}.parquet" for k in keys)]
    manifest = read_manifest(out)
    assert manifest.format == "parquet" and manifest.metadata == {"plan": "abc123"}
    assert [(p.window, p.records) for p in manifest.parts] == [(keys[0], 203), (keys[1], 200)]
    assert manifest.fields[0] == "id" and manifest.records == len(records)
    table = pads.dataset(out, format="parquet").to_table()
    assert table.schema.field("price").type == pa.decimal128(18, 6)
    db = duckdb.connect()
    total, count = one(db, f"SELECT sum(price), count(*) FROM read_parquet('{out}/*.parquet')")
    assert (total, count) == (exact_sum(records), len(records))
    assert read_ids(out) == [r["id"] for r in records]


def test_dataset_directory_of_jsonl_parts(tmp_path: Path) -> None:
    records = odd_records()
    out = tmp_path / "calls"
    out.mkdir()  # an existing (empty) directory is a dataset directory
    sink = open_sink(out, None, format="jsonl")
    write_all(sink, [records[:1], records[1:]])
    sink.finalize()
    assert read_manifest(out).format == "jsonl"
    got = (
        duckdb.connect()
        .sql(f"SELECT id, taskName FROM read_json_auto('{out}/part-*.jsonl') ORDER BY id")
        .fetchall()
    )
    assert got == [("a1", "Обзвон «Весна» 🌷"), ("a2", None), ("a3", "Обзвон «Весна» 🌷")]
    assert read_ids(out) == ["a1", "a2", "a3"]


def test_dataset_resume_drops_uncommitted_parts(tmp_path: Path) -> None:
    records = sim_records(300)
    out = tmp_path / "calls"
    out.mkdir()
    sink = DatasetSink(out, ("phone",), row_group_rows=20)
    position = write_all(sink, [records[:100], records[100:200]])
    sink.write(records[200:230])
    sink.commit("w2")  # renamed into place, but the checkpoint kept `position`
    sink.write(records[230:260])
    sink._writer._flush_rows()  # type: ignore[union-attr]  # a part in progress on disk
    assert any(p.name.startswith(".inprogress-") for p in out.iterdir())
    again = DatasetSink(out, ("phone",))
    again.open(resume_from=position)
    assert sorted(p.name for p in out.iterdir()) == ["part-w0.parquet", "part-w1.parquet"]
    again.write(records[200:])
    again.commit("w2")
    again.finalize()
    assert read_ids(out) == [r["id"] for r in records]
    assert [p.records for p in read_manifest(out).parts] == [100, 100, 100]
    sink.close()  # the crashed writer's file handle (its file is gone)


def test_a_fresh_pull_replaces_an_earlier_dataset(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    out.mkdir()
    first = DatasetSink(out, None, format="jsonl")
    write_all(first, [odd_records(), odd_records()])
    first.finalize()
    second = DatasetSink(out, None, format="jsonl")
    write_all(second, [odd_records()[:1]])
    second.finalize()
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "part-w0.jsonl"]
    assert read_ids(out) == ["a1"]


def test_a_directory_of_other_files_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    sink = open_sink(out, None, format="jsonl")
    with pytest.raises(OutputMismatchError, match=r"'notes\.txt'.*new or empty directory"):
        sink.open()
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_workers_write_parts_and_a_coordinator_the_manifest(tmp_path: Path) -> None:
    records = sim_records(90)
    out = tmp_path / "calls"
    out.mkdir()
    infos = [
        write_part(out, f"w{n}", records[n * 30 : (n + 1) * 30], "parquet", ("phone",))
        for n in (2, 0, 1)  # in any order
    ]
    write_part(out, "w1", records[30:60], "parquet", ("phone",))  # a retried job: replaced
    assert sorted(p.records for p in infos) == [30, 30, 30]
    assert [(p.window, p.records) for p in scan_parts(out)] == [("w0", 30), ("w1", 30), ("w2", 30)]
    manifest = write_manifest(out, infos, fields=("phone",), format="parquet", metadata={"jobs": 3})
    assert read_manifest(out) == manifest
    assert read_ids(out) == [r["id"] for r in records]
    assert (out / "_manifest.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
