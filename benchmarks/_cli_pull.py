"""Measurement 1 of ``benchmarks.cli``: a CLI pull into JSONL against a naive sequential
offset loop."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from callsessions import ALL_FIELDS

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

# -- 1. the CLI pull against a naive loop ----------------------------------------------


async def naive_loop(url: str, token: str, end: datetime, out: Path) -> dict[str, Any]:
    """The platform guide's loop, plainly: request, ``offset += limit``, stop at a short
    page; one request at a time, every record written as a JSON line."""
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    offset = n = requests = 0
    async with aiohttp.ClientSession() as session:
        with out.open("wb") as f:
            while True:
                params = {"fields": ",".join(ALL_FIELDS), "from": iso(SIM_START),
                          "to": iso(end), "limit": str(PAGE), "offset": str(offset)}
                async with session.get(url + SEARCH_PATH, params=params,
                                       headers=headers) as resp:
                    resp.raise_for_status()
                    body = await resp.read()
                requests += 1
                items = orjson.loads(body)["items"]
                for item in items:
                    f.write(orjson.dumps(item) + b"\n")
                n += len(items)
                if len(items) < PAGE:
                    break
                offset += PAGE
    return {"wall": time.perf_counter() - t0, "records": n, "requests": requests}


def measure_cli_vs_naive(cfg: dict[str, Any], tmp: Path) -> dict[str, Any]:
    records, lat = 60_000, 100
    end = SIM_START + SIM_SPAN
    log(f"  1. simulator: {records} records, latency {lat} ms, offset ceiling 10000000")
    cli_runs: list[dict[str, Any]] = []
    naive_runs: list[dict[str, Any]] = []
    with SimProcess(records, latency_ms=lat, offset_ceiling=10_000_000) as sim:
        argv = cli_pull_argv(sim.url, end, tmp / "cli.jsonl", "--concurrency", "8")
        run_child(argv, sim.token)  # warm-up: the simulator's page cache, the OS caches
        asyncio.run(naive_loop(sim.url, sim.token, end, tmp / "naive.jsonl"))
        for r in range(cfg["repeats"]):
            s0 = proc_cpu(sim.pid)
            cli_runs.append(run_child(argv, sim.token))
            cli_runs[-1]["sim_cpu"] = proc_cpu(sim.pid) - s0
            naive_runs.append(asyncio.run(naive_loop(sim.url, sim.token, end,
                                                     tmp / "naive.jsonl")))
            log(f"    repeat {r + 1}/{cfg['repeats']}")
    bad = [c for c in cli_runs if c["rc"] != 0]
    cli_lines, naive_lines = count_lines(tmp / "cli.jsonl"), count_lines(tmp / "naive.jsonl")
    cli, naive = stats([c["wall"] for c in cli_runs]), stats([n["wall"] for n in naive_runs])
    speedups = [n["wall"] / c["wall"] for c, n in zip(cli_runs, naive_runs, strict=True)]
    return {"records": records, "latency_ms": lat, "concurrency": 8, "cli": cli,
            "cli_cpu": stats([c["cpu"] for c in cli_runs]), "naive": naive,
            "sim_cpu_during_cli": stats([c["sim_cpu"] for c in cli_runs]),
            "naive_requests": naive_runs[0]["requests"], "cli_lines": cli_lines,
            "naive_lines": naive_lines, "failures": [b["stderr"] for b in bad],
            "speedup": naive["median"] / cli["median"], "speedup_per_repeat": stats(speedups),
            "round_trips_floor": (records // PAGE) / 8 * lat / 1e3}


def report_pull(r: dict[str, Any]) -> list[str]:
    c, n = r["cli"], r["naive"]
    ok = r["speedup"] >= 5
    return [
        f"1. CLI pull vs naive offset loop (L = {r['latency_ms']} ms, {r['records']} records, "
        f"{PAGE}-record pages, C = {r['concurrency']}; {r['naive_requests']} naive requests)",
        f"   CLI (subprocess, wall): {c['median']:.3f} s (spread {c['spread']:.0%}; "
        f"client CPU {r['cli_cpu']['median']:.2f} s, simulator CPU meanwhile "
        f"{r['sim_cpu_during_cli']['median']:.2f} s), {r['cli_lines']} lines",
        f"   naive loop (in-process): {n['median']:.3f} s (spread {n['spread']:.0%}), "
        f"{r['naive_lines']} lines",
        f"   speed-up {r['speedup']:.2f}x (per repeat: median "
        f"{r['speedup_per_repeat']['median']:.2f}x, {r['speedup_per_repeat']['min']:.2f}-"
        f"{r['speedup_per_repeat']['max']:.2f}x); 60 pages / C x L = "
        f"{r['round_trips_floor']:.2f} s. target >= 5x: {'MET' if ok else 'MISSED'}"
        + (f"; FAILED RUNS: {r['failures']}" if r["failures"] else ""),
    ]
