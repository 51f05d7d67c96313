"""Text outputs beyond the plain ones: gzip members per commit, CSV prices as exact decimal
text, JSON Lines on standard output and a reader that goes away."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from _sinks_data import FIELDS, read_csv, record

from callsessions.sinks import (
    CsvSink,
    OutputClosedError,
    StdoutSink,
    decimal_text,
    open_sink,
    read_ids,
)

# -- gzip ---------------------------------------------------------------------------------


def gzip_members(data: bytes) -> int:
    """How many gzip members ``data`` holds (each must be complete)."""
    count = 0
    while data:
        inflater = zlib.decompressobj(31)
        inflater.decompress(data)
        assert inflater.eof, "a member is cut short"
        data = inflater.unused_data
        count += 1
    return count


@pytest.mark.parametrize("name", ["calls.jsonl.gz", "calls.csv.gz"])
def test_gzip_resume_continues_with_a_new_member(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    sink = open_sink(out, FIELDS)
    sink.open()
    sink.write([record(1)])
    sink.commit("w0")
    sink.write([record(2)])
    position = sink.commit("w1")
    sink.write([record(n) for n in range(3, 200)])  # the third window: compressed bytes on disk
    sink.close()  # ... and the process dies
    assert sink.partial_path.stat().st_size > position
    again = open_sink(out, FIELDS)
    again.open(resume_from=position)
    again.write([record(3)])
    again.commit("w2")
    again.finalize()
    assert gzip_members(out.read_bytes()) == 3
    assert read_ids(out) == ["id-0001", "id-0002", "id-0003"]
    if name.endswith(".csv.gz"):
        text = gzip.decompress(out.read_bytes()).decode()
        assert text.count("id,phone") == 1  # one header


def test_duckdb_reads_the_gzip_outputs_whole(tmp_path: Path) -> None:
    for name in ("calls.jsonl.gz", "calls.csv.gz"):
        sink = open_sink(tmp_path / name, FIELDS)
        sink.open()
        for n in range(1, 4):  # three members
            sink.write([record(n)])
            sink.commit(f"w{n}")
        sink.finalize()
    db = duckdb.connect()
    jsonl = db.sql(f"SELECT id FROM read_json_auto('{tmp_path}/calls.jsonl.gz')").fetchall()
    csv_ids = db.sql(f"SELECT id FROM read_csv('{tmp_path}/calls.csv.gz')").fetchall()
    assert jsonl == csv_ids == [("id-0001",), ("id-0002",), ("id-0003",)]


# -- CSV prices -----------------------------------------------------------------------------


def test_csv_price_is_its_exact_decimal_text(tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    prices: list[Any] = ["3.00", 86832.55, 0.1, 1e-07, 12, "abc", None]
    sink = CsvSink(out, ("price",))
    sink.open()
    sink.write([{"id": str(n), "price": p} for n, p in enumerate(prices)])
    sink.finalize()
    cells = [row[1] for row in read_csv(out)[1:]]
    assert cells == ["3.00", "86832.55", "0.1", "0.0000001", "12", "abc", ""]  # "abc" as sent
    assert sum(Decimal(c) for c in cells[:5]) == Decimal("86847.6500001")
    numbers = tmp_path / "numbers.csv"
    sink = CsvSink(numbers, ("price",))
    sink.open()
    sink.write([{"id": str(n), "price": p} for n, p in enumerate(prices[:5])])
    sink.finalize()
    typed = duckdb.connect().sql(
        f"SELECT sum(price) FROM read_csv('{numbers}', types={{'price': 'DECIMAL(18,7)'}})"
    )
    assert typed.fetchall() == [(Decimal("86847.6500001"),)]


def test_decimal_text() -> None:
    assert [decimal_text(v) for v in ("1.50", "1e3", 2.5, 7, True, "x", float("nan"))] == [
        "1.50",
        "1000",
        "2.5",
        "7",
        None,
        None,
        None,
    ]


# -- standard output ------------------------------------------------------------------------


def test_stdout_writes_json_lines_and_cannot_resume() -> None:
    stream = io.BytesIO()
    sink = StdoutSink(stream)
    sink.open()
    sink.write([record(1), record(2)])
    sink.commit("w0")  # flushes; there is no position
    assert sink.finalize() == Path("-")
    assert [json.loads(line)["id"] for line in stream.getvalue().splitlines()] == [
        "id-0001",
        "id-0002",
    ]
    with pytest.raises(ValueError, match="cannot be resumed"):
        StdoutSink(stream).open(resume_from=10)


class _ClosedPipe(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_is_a_distinct_error() -> None:
    sink = StdoutSink(_ClosedPipe())  # type: ignore[arg-type]
    sink.open()
    with pytest.raises(OutputClosedError) as caught:
        sink.write([record(1)])
    assert not isinstance(caught.value, OSError)
    sink.close()  # quiet, idempotent
    sink.close()


_PIPE_CHILD = """
import sys
from callsessions.sinks import OutputClosedError, open_sink
sink = open_sink("-", None)
sink.open()
try:
    for n in range(100_000):
        sink.write([{"id": str(n), "text": "x" * 100}])
        sink.commit("w")
except OutputClosedError as exc:
    print("closed:", exc, file=sys.stderr)
    raise SystemExit(0)
"""


def test_a_reader_that_goes_away_ends_the_writer_quietly() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _PIPE_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    assert json.loads(child.stdout.readline()) == {"id": "0", "text": "x" * 100}
    child.stdout.close()  # as `head -n 1` does
    assert child.wait(timeout=60) == 0
    assert child.stderr.read().decode() == (
        "closed: standard output was closed by its reader\n"
    )  # and no "Exception ignored ... BrokenPipeError" at exit
    child.stderr.close()
