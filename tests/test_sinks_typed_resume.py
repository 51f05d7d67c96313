"""The typed Parquet output resumed after crashes and kills: exactly the committed windows
are kept, a retried window is written once, a missing or changed part is refused, and a
killed pull or a failed join leaves no Parquet file and no temporary behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from _sinks_data import sim_records, write_all

from callsessions.sinks import ParquetSink, open_sink, read_ids


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
