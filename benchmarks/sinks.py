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

``--stages`` adds the steps of a Parquet write, each timed apart on the same pages (rows
``parquet: ...``): building the Arrow batches from the dicts (``record_batch``), writing
the spool's lz4 parts, reading them back and writing the final zstd file (the last two
are ``finalize``'s join). The rest of the ``parquet`` row is fsyncs and file handling.
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
    # ``Path`` drops the trailing "/" that makes the target a dataset directory
    sink = open_sink(f"{out}/" if target.endswith("/") else out, None, format=part)
    wall, cpu = time.perf_counter(), time.process_time()
    sink.open()
    for n, page in enumerate(pages, 1):
        sink.write(page)
        if n % WINDOW_PAGES == 0:
            sink.commit(f"w{n:06d}")
    sink.finalize()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if sink.path.is_dir() != target.endswith("/"):  # a figure of another sink is worse than none
        raise RuntimeError(f"{name}: open_sink made a {type(sink).__name__}")
    size = _size(sink.path)
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink()
    return {"cpu": cpu, "wall": wall, "bytes": size}


def _named_run(
    name: str, pages: list[list[dict[str, Any]]], folder: Path
) -> dict[str, dict[str, float]]:
    return {name: run_sink(name, pages, folder)}


def run_loads(pages: list[list[dict[str, Any]]]) -> dict[str, float]:
    bodies = [orjson.dumps({"count": len(p), "items": p}) for p in pages]
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        orjson.loads(body)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu": cpu, "wall": wall, "bytes": sum(len(b) for b in bodies)}


def run_stages(pages: list[list[dict[str, Any]]], folder: Path) -> dict[str, dict[str, float]]:
    """The CPU seconds of each step of a Parquet write (see the module docstring)."""
    import pyarrow.parquet as pq

    from callsessions.sinks.arrow import arrow_schema, record_batch
    from callsessions.sinks.base import MismatchCounter, columns_for
    from callsessions.sinks.parquet import SPOOL_COMPRESSION
    from callsessions.sinks.parts import DEFAULT_ROW_GROUP_ROWS, parquet_writer

    schema = arrow_schema(columns_for(None))
    per_batch = DEFAULT_ROW_GROUP_ROWS // PAGE
    spent = dict.fromkeys(("columns", "spool write", "spool read", "final write"), 0.0)
    parts = []
    for start in range(0, len(pages), WINDOW_PAGES):
        window = pages[start : start + WINDOW_PAGES]
        clock = time.process_time()
        groups = [window[i : i + per_batch] for i in range(0, len(window), per_batch)]
        rows = [[record for page in group for record in page] for group in groups]
        batches = [record_batch(group, schema, MismatchCounter()) for group in rows]
        spent["columns"] += time.process_time() - clock
        parts.append(folder / f"stage-{start}.parquet")
        clock = time.process_time()
        with open(parts[-1], "wb") as fh:
            writer = parquet_writer(fh, schema, SPOOL_COMPRESSION, statistics=False)
            for batch in batches:
                writer.write_batch(batch, row_group_size=batch.num_rows)
            writer.close()
        spent["spool write"] += time.process_time() - clock
    with open(folder / "stage-final.parquet", "wb") as fh:
        writer = parquet_writer(fh, schema)
        for part in parts:  # one part at a time, as the join holds them
            clock = time.process_time()
            table = pq.ParquetFile(part).read()
            spent["spool read"] += time.process_time() - clock
            clock = time.process_time()
            writer.write_table(table, row_group_size=DEFAULT_ROW_GROUP_ROWS)
            spent["final write"] += time.process_time() - clock
        clock = time.process_time()
        writer.close()
        spent["final write"] += time.process_time() - clock
    for path in [*parts, folder / "stage-final.parquet"]:
        path.unlink()
    return {f"parquet: {k}": {"cpu": v, "wall": v, "bytes": 0.0} for k, v in spent.items()}


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
    parser.add_argument("--stages", action="store_true", help="time Parquet's steps apart")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args(argv)
    names = ns.only or list(SINKS)
    pages = make_pages(ns.records, ns.seed)
    count = sum(len(p) for p in pages)
    gc.collect()
    gc.freeze()
    runs: dict[str, list[dict[str, float]]] = {}
    jobs: list[Callable[[], dict[str, dict[str, float]]]] = [
        lambda: {"orjson.loads": run_loads(pages)}
    ]
    with tempfile.TemporaryDirectory(prefix="sinks-bench-") as tmp:
        jobs += [functools.partial(_named_run, name, pages, Path(tmp)) for name in names]
        if ns.stages:
            jobs.append(functools.partial(run_stages, pages, Path(tmp)))
        for _ in range(ns.repeats):  # round-robin, so a noisy minute hits every sink
            for job in jobs:
                for name, result in job().items():
                    runs.setdefault(name, []).append(result)
    base_cpu, _ = _median(runs["orjson.loads"], "cpu")
    print(
        f"{count:,} simulator records in pages of {PAGE}, a commit every {WINDOW_PAGES} pages; "
        f"median of {ns.repeats}; Python {sys.version.split()[0]}"
    )
    header = (
        "sink                 | CPU us/rec | spread | best | records/s (CPU) | wall us/rec "
        "| x loads |    MB"
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
            f"{name:<20} | {row['cpu_us_per_record']:10.2f} | {spread:5.0%} | "
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
