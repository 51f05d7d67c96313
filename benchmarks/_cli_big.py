"""Measurement 4 of ``benchmarks.cli``: JSONL output of a large pull at L = 0 against the
physical floor, and the optional cProfile of an in-process JSONL pull (``--profile``)."""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import time
from pathlib import Path
from typing import Any

import aiohttp

from callsessions import ALL_FIELDS, CallSessionsClient, SessionQuery

from ._cli_common import (
    PAGE,
    SEARCH_PATH,
    cli_pull_argv,
    count_lines,
    iso,
    log,
    proc_cpu,
    run_child,
    stats,
)
from ._sim import SIM_SPAN, SIM_START, SimProcess

# -- 4. 1M records of JSONL at L = 0, and the physical floor ------------------------------


async def floor_fetch(url: str, token: str, records: int, out: Path) -> dict[str, Any]:
    """Read every page of the range off the socket at C = 8 and write its bytes to a
    file, parsing nothing: what any client must at least spend."""
    t0, c0 = time.perf_counter(), time.process_time()
    headers = {"Authorization": f"Bearer {token}"}
    offsets = iter(range(0, records, PAGE))
    nbytes = 0
    async with aiohttp.ClientSession() as session:
        with out.open("wb") as f:

            async def worker() -> None:
                nonlocal nbytes
                for off in offsets:
                    params = {"fields": ",".join(ALL_FIELDS), "from": iso(SIM_START),
                              "to": iso(SIM_START + SIM_SPAN), "limit": str(PAGE),
                              "offset": str(off)}
                    async with session.get(url + SEARCH_PATH, params=params,
                                           headers=headers) as resp:
                        body = await resp.read()
                    f.write(body)
                    nbytes += len(body)

            await asyncio.gather(*(worker() for _ in range(8)))
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
            "bytes": nbytes}


def measure_big(cfg: dict[str, Any], tmp: Path) -> dict[str, Any]:
    records = cfg["big"]
    log(f"  4. JSONL of {records} records, latency 0, C = 8")
    out, floor_out = tmp / "big.jsonl", tmp / "floor.json"
    cli_runs, floor_runs = [], []
    # The cold run is not counted: it fills the simulator's cache of rendered records (1.4 GB
    # for a million), so that the counted runs measure the client, not the simulator.
    with SimProcess(records, offset_ceiling=10_000_000, record_cache_mb=1600) as sim:
        argv = cli_pull_argv(sim.url, SIM_START + SIM_SPAN, out, "--concurrency", "8")
        cold = run_child(argv, sim.token)
        asyncio.run(floor_fetch(sim.url, sim.token, records, floor_out))
        for r in range(cfg["big_repeats"]):
            s0 = proc_cpu(sim.pid)
            run = run_child(argv, sim.token)
            run["sim_cpu"] = proc_cpu(sim.pid) - s0
            cli_runs.append(run)
            s0 = proc_cpu(sim.pid)
            fl = asyncio.run(floor_fetch(sim.url, sim.token, records, floor_out))
            fl["sim_cpu"] = proc_cpu(sim.pid) - s0
            floor_runs.append(fl)
            log(f"    repeat {r + 1}/{cfg['big_repeats']}")
    lines, size = count_lines(out), out.stat().st_size
    wall = stats([c["wall"] for c in cli_runs])
    return {"records": records, "lines": lines, "bytes": size, "cold_wall": cold["wall"],
            "wall": wall, "records_per_s": lines / wall["median"],
            "client_cpu": stats([c["cpu"] for c in cli_runs]),
            "sim_cpu": stats([c["sim_cpu"] for c in cli_runs]),
            "floor_wall": stats([f["wall"] for f in floor_runs]),
            "floor_cpu": stats([f["cpu"] for f in floor_runs]),
            "floor_sim_cpu": stats([f["sim_cpu"] for f in floor_runs]),
            "floor_bytes": floor_runs[0]["bytes"], "rc": [c["rc"] for c in cli_runs]}


async def profiled_pull(url: str, token: str, out: Path) -> None:
    async with CallSessionsClient(url, token=token) as client:
        await client.pull_to(SessionQuery(start=SIM_START, end=SIM_START + SIM_SPAN), out,
                             concurrency=8)


def profile_jsonl(records: int, tmp: Path) -> str:
    """cProfile of an in-process ``pull_to`` into JSONL (after a warm-up pull); the event
    loop's thread only (the output's file writes run in the sink's own thread)."""
    log(f"  profile: pull_to of {records} records into JSONL")
    with SimProcess(records) as sim:
        asyncio.run(profiled_pull(sim.url, sim.token, tmp / "warm.jsonl"))
        (tmp / "prof.jsonl").unlink(missing_ok=True)
        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(profiled_pull(sim.url, sim.token, tmp / "prof.jsonl"))
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(18)
    return buf.getvalue()


def report_big(r: dict[str, Any]) -> list[str]:
    cl, sim = r["client_cpu"]["median"], r["sim_cpu"]["median"]
    fw, fc = r["floor_wall"]["median"], r["floor_cpu"]["median"]
    who = "the client" if cl > sim else "the simulator"
    return [
        f"4. JSONL of {r['records']} records at L = 0, C = 8 (CLI subprocess; "
        f"{r['lines']} lines, {r['bytes'] / 1e6:.0f} MB; cold first run {r['cold_wall']:.2f} s)",
        f"   wall {r['wall']['median']:.2f} s (spread {r['wall']['spread']:.0%}): "
        f"{r['records_per_s']:,.0f} records/s",
        f"   client CPU {cl:.2f} s ({cl / r['records'] * 1e6:.2f} us/record), simulator CPU "
        f"{sim:.2f} s: the bottleneck is {who}",
        f"   floor (aiohttp C = 8, bytes to a file, nothing parsed; {r['floor_bytes'] / 1e6:.0f}"
        f" MB): wall {fw:.2f} s, CPU {fc:.2f} s ({fc / r['records'] * 1e6:.2f} us/record), "
        f"simulator CPU {r['floor_sim_cpu']['median']:.2f} s",
        f"   client CPU / floor CPU = {cl / fc:.2f}x; wall / floor wall = "
        f"{r['wall']['median'] / fw:.2f}x",
    ]
