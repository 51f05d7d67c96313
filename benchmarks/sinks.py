"""Write cost of every sink, per record, beside ``orjson.loads`` of the same records.

Run from the repository root::

    .venv/bin/python -m benchmarks.sinks                 # 120,000 records, 3 repeats
    .venv/bin/python -m benchmarks.sinks --records 20000 --repeats 1 --only parquet

The records are the simulator's (``callsessions.sim.Dataset``, all 29 fields, realistic
transcripts), cut in pages of 1000 as the API sends them. The baseline is ``orjson.loads``
of each page's body (``{"count", "items"}``): the least any pull spends on a record. Each
sink gets the pages in order, a ``commit`` every 8 pages (the planner's windows hold about
8,000 records) and a ``finalize``; the time is the process CPU time (``process_time``) and
the wall time of all of that, so Parquet's final join of its spooled parts is included.
The records are generated before the clock starts and frozen out of the garbage
collector's sight (``gc.freeze``), as a pull holds one page at a time, not 120,000
records. The machine is shared: every figure is the median of the repeats, with the
spread ``(max - min) / median`` and the best run, and the ratio to the baseline measured
in the same run.
"""

from __future__ import annotations

import argparse
import functools
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from callsessions.sim import Dataset
from callsessions.sinks import open_sink

PAGE = 1000
WINDOW_PAGES = 8

#: name -> (output path inside the run's folder, part format of a dataset directory)
SINKS: dict[str, tuple[str, str | None]] = {
    "jsonl": ("calls.jsonl", None),
    "jsonl.gz": ("calls.jsonl.gz", None),
    "csv": ("calls.csv", None),
    "csv.gz": ("calls.csv.gz", None),
    "sqlite": ("calls.sqlite", None),
    "parquet": ("calls.parquet", None),
    "dataset-parquet": ("calls-parquet/", "parquet"),
    "dataset-jsonl": ("calls-jsonl/", "jsonl"),
}


def make_pages(records: int, seed: int) -> list[list[dict[str, Any]]]:
    """The simulator's records, in pages of ``PAGE``, as fresh dicts (as decoded)."""
    data = Dataset(records, seed=seed)
    items = [data.record(rid) for rid in range(len(data))]
    # Decoded once more, so that nested values are not shared between records (as in a pull).
    return [orjson.loads(orjson.dumps(items[i : i + PAGE])) for i in range(0, len(items), PAGE)]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return path.stat().st_size


def run_sink(name: str, pages: list[list[dict[str, Any]]], folder: Path) -> dict[str, float]:
    """One write of every page through sink ``name``; CPU and wall seconds, size."""
    target, part = SINKS[name]
    out = folder / target
    sink = open_sink(str(out), None, format=part)
    wall, cpu = time.perf_counter(), time.process_time()
    sink.open()
    for n, page in enumerate(pages, 1):
        sink.write(page)
        if n % WINDOW_PAGES == 0:
            sink.commit(f"w{n:06d}")
    sink.finalize()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    size = _size(sink.path)
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink()
    return {"cpu": cpu, "wall": wall, "bytes": size}


def run_loads(pages: list[list[dict[str, Any]]]) -> dict[str, float]:
    bodies = [orjson.dumps({"count": len(p), "items": p}) for p in pages]
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        orjson.loads(body)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu": cpu, "wall": wall, "bytes": sum(len(b) for b in bodies)}


def _median(runs: list[dict[str, float]], key: str) -> tuple[float, float]:
    values = [r[key] for r in runs]
    mid = statistics.median(values)
    return mid, (max(values) - min(values)) / mid if mid else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sinks", description=__doc__)
    parser.add_argument("--records", type=int, default=120_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", action="append", choices=sorted(SINKS), help="repeatable")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args(argv)
    names = ns.only or list(SINKS)
    pages = make_pages(ns.records, ns.seed)
    count = sum(len(p) for p in pages)
    gc.collect()
    gc.freeze()
    runs: dict[str, list[dict[str, float]]] = {"orjson.loads": [], **{n: [] for n in names}}
    jobs: list[tuple[str, Callable[[], dict[str, float]]]] = [
        ("orjson.loads", lambda: run_loads(pages))
    ]
    with tempfile.TemporaryDirectory(prefix="sinks-bench-") as tmp:
        jobs += [(name, functools.partial(run_sink, name, pages, Path(tmp))) for name in names]
        for _ in range(ns.repeats):  # round-robin, so a noisy minute hits every sink
            for name, job in jobs:
                runs[name].append(job())
    base_cpu, _ = _median(runs["orjson.loads"], "cpu")
    print(
        f"{count:,} simulator records in pages of {PAGE}, a commit every {WINDOW_PAGES} pages; "
        f"median of {ns.repeats}; Python {sys.version.split()[0]}"
    )
    header = (
        "sink             | CPU us/rec | spread | best | records/s (CPU) | wall us/rec | x loads"
        " |    MB"
    )
    print(header)
    print("-" * len(header))
    results: dict[str, Any] = {"records": count, "repeats": ns.repeats, "sinks": {}}
    for name, measured in runs.items():
        cpu, spread = _median(measured, "cpu")
        best = min(r["cpu"] for r in measured)
        wall, _ = _median(measured, "wall")
        size = measured[0]["bytes"]
        row = {
            "cpu_us_per_record": cpu / count * 1e6,
            "best_cpu_us_per_record": best / count * 1e6,
            "wall_us_per_record": wall / count * 1e6,
            "records_per_s": count / cpu if cpu else 0.0,
            "spread": spread,
            "vs_loads": cpu / base_cpu if base_cpu else 0.0,
            "bytes": size,
        }
        results["sinks"][name] = row
        print(
            f"{name:<16} | {row['cpu_us_per_record']:10.2f} | {spread:5.0%} | "
            f"{row['best_cpu_us_per_record']:4.1f} | "
            f"{row['records_per_s']:15,.0f} | {row['wall_us_per_record']:11.2f} | "
            f"{row['vs_loads']:6.2f}x | {size / 2**20:6.1f}"
        )
    print("(orjson.loads MB: the JSON bodies of the pages)")
    if ns.json is not None:
        ns.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
