"""The command line's typed outputs, read back by the tools analysts use (pyarrow, DuckDB),
and the trial knobs: Parquet, a dataset directory, stdout, --max-items, --max-rate."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli_support import (
    TOKEN,
    arun,
    assert_exactly,
    pull_args,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
)

from callsessions.sim import SimServer


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSESSIONS_TOKEN", TOKEN)


async def test_pull_into_parquet_is_exact_and_typed(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.parquet"
    result = await arun(capsys, *pull_args(sim.url, out))
    assert result.code == 0, result.err
    table = pq.read_table(out)
    assert_exactly(table.column("id").to_pylist(), truth(sim))
    assert table.schema.field("createdAt").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("phone").type == pa.string()
    assert pa.types.is_decimal(table.schema.field("price").type)
    expected = sum(
        (Decimal(str(r["price"])) for r in sim.records({}) if r.get("price") is not None),
        Decimal(0),
    )
    rows = duckdb.sql(f"SELECT sum(price) FROM '{out}'").fetchall()
    assert Decimal(rows[0][0]) == expected, "DuckDB sums the exact decimals"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.parquet"]


async def test_pull_into_a_directory_writes_one_part_per_window_and_a_manifest(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "calls") + "/"
    result = await arun(capsys, *pull_args(sim.url, out, format="jsonl"))  # type: ignore[arg-type]
    assert result.code == 0, result.err
    folder = Path(out)
    manifest = json.loads((folder / "_manifest.json").read_text())
    parts = sorted(folder.glob("part-*.jsonl"))
    assert len(parts) > 1
    ids = [json.loads(line)["id"] for p in parts for line in p.read_text().splitlines()]
    assert_exactly(ids, truth(sim))
    assert sum(p["records"] for p in manifest["parts"]) == len(ids)


async def test_max_items_stops_with_a_complete_valid_output(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    result = await arun(capsys, *pull_args(sim.url, out, max_items=250))
    assert result.code == 0, result.err
    lines = out.read_text().splitlines()
    assert len(lines) == 250 and all(json.loads(line)["id"] for line in lines)
    assert "max_items" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.jsonl"]


async def test_stdout_output_is_jsonl_for_pipes(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await arun(capsys, *pull_args(sim.url, "-", max_items=300))  # type: ignore[arg-type]
    assert result.code == 0, result.err
    ids = [json.loads(line)["id"] for line in result.out.splitlines()]
    assert len(ids) == len(set(ids)) == 300
    assert list(tmp_path.iterdir()) == [], "no checkpoint, no lock for stdout"


async def test_max_rate_caps_the_pace(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = await arun(capsys, *pull_args(sim.url, tmp_path / "a.jsonl", max_rate="0"))
    assert bad.code == 2 and "--max-rate" in bad.err
