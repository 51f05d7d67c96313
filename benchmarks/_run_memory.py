"""Measurement 4 of ``benchmarks.run``: the peak RSS of a streaming pull, each pull in a
fresh child process (``benchmarks._memory``)."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import Any

import orjson

from ._run_common import end_for, log
from ._sim import SIM_SPAN, SIM_START, SimProcess

# -- measurement 4: memory ----------------------------------------------------------------


async def memory_child(
    sim: SimProcess, end: datetime, concurrency: int, size: int
) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks._memory",
        sim.url,
        sim.token,
        SIM_START.isoformat(),
        end.isoformat(),
        str(concurrency),
    ]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), 300)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError("the memory child failed")
    row: dict[str, Any] = orjson.loads(stdout.decode().strip().splitlines()[-1])
    row["size"] = size
    log(
        f"    {row['records']} records at C={concurrency}: +{row['delta_mb']} MB over "
        f"{row['baseline_mb']} MB"
    )
    return row


async def measure_memory(cfg: dict[str, Any], concurrency: int = 4) -> dict[str, Any]:
    sim_records = max(cfg["sim_records"], max(cfg["memory_sizes"]))
    log(f"  simulator: {sim_records} records, latency 0 ms")
    out = []
    diagnostic = []
    with SimProcess(sim_records) as sim:
        for size in cfg["memory_sizes"]:
            end = end_for(size, sim_records) if size < sim_records else SIM_START + SIM_SPAN
            out.append(await memory_child(sim, end, concurrency, size))
        # Not a target: the largest pull at other concurrencies, to show what the peak
        # follows (the number of pages held, 2C+2 queued plus in flight, not the pull size).
        big = max(cfg["memory_sizes"])
        end = end_for(big, sim_records) if big < sim_records else SIM_START + SIM_SPAN
        for c in (1, 16):
            diagnostic.append(await memory_child(sim, end, c, big))
    small, large = out[0]["delta_mb"], out[-1]["delta_mb"]
    return {
        "concurrency": concurrency,
        "rows": out,
        "other_concurrency": diagnostic,
        "growth": (large - small) / small if small else float("inf"),
    }
