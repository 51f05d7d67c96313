"""Benchmarks of the callsessions client against its simulator (issue 6).

Run from the repository root::

    .venv/bin/python -m benchmarks.run            # full run (~5-10 minutes)
    .venv/bin/python -m benchmarks.run --quick    # short run (~1-2 minutes)

Every figure is a ratio against a baseline measured in the same run: the machine is shared
and noisy. The simulators run as separate processes (``python -m callsessions.sim``) on
127.0.0.1 and are killed when the runner exits. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import orjson

from callsessions import ALL_FIELDS, CallSessionsClient, PullPlan, SessionQuery
from callsessions.protocol.convert import structure_sessions

from ._sim import SIM_SPAN, SIM_START, SimProcess, install_cleanup, stop_all

SEARCH_PATH = "/api/v1/search/cis/calls"
CONCURRENCIES = (1, 4, 8, 16)
LATENCIES_MS = (50, 200)
PAGE = 1000

PROFILES: dict[str, dict[str, Any]] = {
    # pages: pages of the roofline / naive range; repeats: runs of each timed measurement
    "quick": {
        "pages": 20,
        "repeats": 3,
        "sim_records": 200_000,
        "cpu_pages": 10,
        "memory_sizes": (20_000, 200_000),
        "planning_records": 1_000_000,
    },
    "full": {
        "pages": 50,
        "repeats": 5,
        "sim_records": 200_000,
        "cpu_pages": 10,
        "memory_sizes": (20_000, 200_000),
        "planning_records": 1_000_000,
    },
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median and spread ((max - min) / median) of repeated measurements."""
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / med if med else 0.0,
        "n": len(values),
    }


def end_for(records_wanted: int, sim_records: int) -> datetime:
    """The end of a range from the simulator's start holding about ``records_wanted``."""
    return SIM_START + SIM_SPAN * (records_wanted / sim_records)


# -- one timed pull ---------------------------------------------------------------------


async def timed_pull(
    client: CallSessionsClient, plan: PullPlan, concurrency: int, raw: Any = False
) -> dict[str, Any]:
    """Time ``client.sessions(plan)`` only (planning is done before the clock starts)."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    stream = client.sessions(plan, raw=raw, concurrency=concurrency)
    n = 0
    async with stream:
        async for _record in stream:
            n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = stream.summary
    return {
        "wall": wall,
        "cpu": cpu,
        "records": n,
        "pages": s.pages,
        "requests": s.requests,
        "windows": s.windows,
        "planning_requests": s.planning_requests,
        "splits": s.splits,
        "retries": s.retries,
        "complete": s.complete,
    }


async def naive_pull(
    session: aiohttp.ClientSession, url: str, token: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """The platform guide's loop, written plainly: request, add ``limit`` to ``offset``,
    stop at a short page. One request at a time."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    headers = {"Authorization": f"Bearer {token}"}
    offset, n, requests = 0, 0, 0
    while True:
        params = {
            "fields": ",".join(ALL_FIELDS),
            "from": start.isoformat(),
            "to": end.isoformat(),
            "limit": str(PAGE),
            "offset": str(offset),
        }
        async with session.get(url + SEARCH_PATH, params=params, headers=headers) as resp:
            resp.raise_for_status()
            body = await resp.read()
        requests += 1
        items = orjson.loads(body)["items"]
        n += len(items)
        if len(items) < PAGE:
            break
        offset += PAGE
    return {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "records": n,
        "requests": requests,
    }


async def repeat(
    repeats: int, jobs: dict[Any, Callable[[], Awaitable[dict[str, Any]]]]
) -> dict[Any, list[dict[str, Any]]]:
    """Run every job ``repeats`` times, round-robin, so noise spreads over all of them."""
    out: dict[Any, list[dict[str, Any]]] = {k: [] for k in jobs}
    for r in range(repeats):
        for key, job in jobs.items():
            out[key].append(await job())
        log(f"    repeat {r + 1}/{repeats} done")
    return out


# -- measurement 1 and 2: roofline and naive loop ----------------------------------------


async def measure_roofline(cfg: dict[str, Any]) -> dict[str, Any]:
    pages, repeats, sim_records = cfg["pages"], cfg["repeats"], cfg["sim_records"]
    start, end = SIM_START, end_for(pages * PAGE, sim_records)
    query = SessionQuery(start=start, end=end)
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
    naive_runs: list[dict[str, Any]] = []
    windows = 0
    plan_requests = 0
    for lat in (0, *LATENCIES_MS):
        # The L = 200 ms simulator also serves the naive loop, which walks the whole range
        # by offset: its ceiling is raised so that it can. The client keeps its own
        # default ceiling (10,000), so its requests are the same as against a real service.
        ceiling = 10_000_000 if lat == 200 else 10_000
        log(f"  simulator: {sim_records} records, latency {lat} ms, offset ceiling {ceiling}")
        with SimProcess(sim_records, latency_ms=lat, offset_ceiling=ceiling) as sim:
            async with CallSessionsClient(sim.url, token=sim.token) as client:
                plan = await client.plan(query)
                windows, plan_requests = len(plan.windows), plan.planning_requests
                await timed_pull(client, plan, 16)  # warm-up: connections, caches
                jobs: dict[Any, Callable[[], Awaitable[dict[str, Any]]]] = {
                    c: (lambda c=c, cl=client, pl=plan: timed_pull(cl, pl, c))
                    for c in CONCURRENCIES
                }
                session: aiohttp.ClientSession | None = None
                if lat == 200:
                    session = aiohttp.ClientSession()
                    jobs["naive"] = lambda s=session, u=sim.url, k=sim.token: naive_pull(
                        s, u, k, start, end
                    )
                try:
                    res = await repeat(repeats, jobs)
                finally:
                    if session is not None:
                        await session.close()
        for c in CONCURRENCIES:
            runs[(lat, c)] = res[c]
        if lat == 200:
            naive_runs = res["naive"]

    # the CPU term of the roofline: seconds per page at zero latency
    per_page_wall = {
        c: stats([r["wall"] / r["requests"] for r in runs[(0, c)]]) for c in CONCURRENCIES
    }
    per_page_cpu = {
        c: stats([r["cpu"] / r["requests"] for r in runs[(0, c)]]) for c in CONCURRENCIES
    }
    cpu_per_page = min(v["median"] for v in per_page_wall.values())
    client_cpu_per_page = min(v["median"] for v in per_page_cpu.values())

    rows = []
    for (lat, c), rs in runs.items():
        wall = stats([r["wall"] for r in rs])
        p = statistics.median(r["requests"] for r in rs)
        ideal = max(math.ceil(p / c) * lat / 1000.0, p * cpu_per_page)
        ideal_cpu = max(math.ceil(p / c) * lat / 1000.0, p * client_cpu_per_page)
        # A lower bound any client obeys: nothing can be processed before the first answer
        # arrives (one L), and then every page still costs its CPU.
        bound = max(math.ceil(p / c) * lat / 1000.0, lat / 1000.0 + p * cpu_per_page)
        rows.append(
            {
                "latency_ms": lat,
                "concurrency": c,
                "pages": p,
                "records": rs[0]["records"],
                "windows": rs[0]["windows"],
                "wall": wall,
                "ideal": ideal,
                "efficiency": ideal / wall["median"],
                "bound": bound,
                "efficiency_bound": bound / wall["median"],
                "ideal_client_cpu": ideal_cpu,
                "efficiency_client_cpu": ideal_cpu / wall["median"],
                "client_cpu_per_page": statistics.median(r["cpu"] / r["requests"] for r in rs),
                "complete": all(r["complete"] for r in rs),
            }
        )
    naive_wall = stats([r["wall"] for r in naive_runs])
    speedups = []
    for row in rows:
        if row["latency_ms"] == 200:
            speedups.append(
                {
                    "concurrency": row["concurrency"],
                    "client_wall": row["wall"]["median"],
                    "naive_wall": naive_wall["median"],
                    "speedup": naive_wall["median"] / row["wall"]["median"],
                }
            )
    return {
        "range": [start.isoformat(), end.isoformat()],
        "plan_windows": windows,
        "plan_planning_requests": plan_requests,
        "cpu_per_page_wall": cpu_per_page,
        "cpu_per_page_client_process_time": client_cpu_per_page,
        "per_page_wall_at_zero_latency": per_page_wall,
        "rows": rows,
        "naive": {
            "wall": naive_wall,
            "records": naive_runs[0]["records"],
            "requests": naive_runs[0]["requests"],
            "offset_ceiling_of_sim": 10_000_000,
        },
        "speedups": speedups,
    }


# -- measurement 3: CPU per record --------------------------------------------------------


async def capture_bodies(
    sim: SimProcess, start: datetime, end: datetime, pages: int
) -> list[bytes]:
    headers = {"Authorization": f"Bearer {sim.token}"}
    bodies = []
    async with aiohttp.ClientSession() as session:
        for k in range(pages):
            params = {
                "fields": ",".join(ALL_FIELDS),
                "from": start.isoformat(),
                "to": end.isoformat(),
                "sort": "+createdAt",
                "limit": str(PAGE),
                "offset": str(k * PAGE),
            }
            async with session.get(sim.url + SEARCH_PATH, params=params, headers=headers) as r:
                r.raise_for_status()
                bodies.append(await r.read())
    return bodies


PATHS = (
    "orjson_loads",
    "loads_plus_structure_sessions",
    "plain_http_plus_loads",
    "client_lines",
    "client_raw",
    "client_structured",
)


async def plain_fetch_loads(
    session: aiohttp.ClientSession, url: str, token: str, plan: PullPlan
) -> dict[str, Any]:
    """The least a raw pull must do: the same pages, fetched one by one with plain aiohttp
    and parsed with ``orjson.loads``; nothing else (no retries, no checks, no order)."""
    gc.collect()
    c0 = time.process_time()
    headers = {"Authorization": f"Bearer {token}"}
    n = 0
    for w in plan.windows:
        offset = 0
        while True:
            q = attrs.evolve(plan.query, start=w.start, end=w.end, offset=offset, page_size=PAGE)
            async with session.get(url + SEARCH_PATH, params=q.to_params(), headers=headers) as r:
                body = await r.read()
            items = orjson.loads(body)["items"]
            n += len(items)
            if len(items) < PAGE:
                break
            offset += PAGE
    return {"cpu": time.process_time() - c0, "records": n}


def cpu_loop(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        gc.collect()
        c0 = time.process_time()
        fn()
        out.append(time.process_time() - c0)
    return out


async def measure_cpu(cfg: dict[str, Any]) -> dict[str, Any]:
    sim_records, repeats = cfg["sim_records"], max(cfg["repeats"], 5)
    n_pages = cfg["cpu_pages"]
    start, end = SIM_START, end_for(cfg["pages"] * PAGE, sim_records)
    log(f"  simulator: {sim_records} records, latency 0 ms")
    with SimProcess(sim_records) as sim:
        bodies = await capture_bodies(sim, start, end, n_pages)
        n = sum(len(orjson.loads(b)["items"]) for b in bodies)
        mb = sum(len(b) for b in bodies) / 1e6

        def loads_only() -> None:
            for b in bodies:
                orjson.loads(b)

        def loads_structure() -> None:
            for b in bodies:
                structure_sessions(orjson.loads(b)["items"])

        loads_only()
        loads_structure()  # warm-up: allocator arenas, converter
        # The machine is shared: CPU time per operation drifts with the neighbours' load, so
        # every repeat measures all four paths back to back and the ratios are taken per
        # repeat (their median is reported), not across minutes.
        per: dict[str, list[float]] = {k: [] for k in PATHS}
        ratios: dict[str, list[float]] = {k: [] for k in PATHS}
        async with (
            CallSessionsClient(sim.url, token=sim.token) as client,
            aiohttp.ClientSession() as plain,
        ):
            plan = await client.plan(SessionQuery(start=start, end=end))
            await timed_pull(client, plan, 4)  # warm-up
            for r in range(repeats):
                t = {
                    "orjson_loads": sum(cpu_loop(loads_only, 2)) / (2 * n),
                    "loads_plus_structure_sessions": sum(cpu_loop(loads_structure, 2)) / (2 * n),
                }
                base = await plain_fetch_loads(plain, sim.url, sim.token, plan)
                t["plain_http_plus_loads"] = base["cpu"] / base["records"]
                paths: tuple[tuple[Any, str], ...] = (
                    ("lines", "client_lines"),
                    (True, "client_raw"),
                    (False, "client_structured"),
                )
                for raw, key in paths:
                    pull = await timed_pull(client, plan, 4, raw=raw)
                    t[key] = pull["cpu"] / pull["records"]
                    client_records = pull["records"]
                for k, v in t.items():
                    per[k].append(v)
                    ratios[k].append(v / t["orjson_loads"])
                log(f"    repeat {r + 1}/{repeats} done")
    per_record = {k: stats(v) for k, v in per.items()}
    return {
        "captured_pages": n_pages,
        "captured_records": n,
        "captured_mb": mb,
        "bytes_per_record": mb * 1e6 / n,
        "client_records_per_pull": client_records,
        "per_record_seconds": per_record,
        "ratio_to_loads": {k: statistics.median(v) for k, v in ratios.items()},
        "ratio_to_loads_spread": {k: stats(v)["spread"] for k, v in ratios.items()},
    }


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


# -- measurement 5: planning cost ---------------------------------------------------------


async def measure_planning(cfg: dict[str, Any]) -> dict[str, Any]:
    records = cfg["planning_records"]
    log(f"  simulator: {records} records, latency 0 ms, default ceiling")
    with SimProcess(records) as sim:
        # fields=id and raw records: the request count does not depend on them, the time does
        query = SessionQuery(start=SIM_START, end=SIM_START + SIM_SPAN, fields=("id",))
        async with CallSessionsClient(sim.url, token=sim.token) as client:
            t0 = time.perf_counter()
            plan = await client.plan(query)
            plan_wall = time.perf_counter() - t0
            pull = await timed_pull(client, plan, 8, raw=True)
    page_requests = pull["requests"] - pull["planning_requests"]
    planning = plan.planning_requests + pull["planning_requests"]
    return {
        "records": pull["records"],
        "plan_planning_requests": plan.planning_requests,
        "plan_windows": len(plan.windows),
        "pull_planning_requests": pull["planning_requests"],
        "pull_splits": pull["splits"],
        "pull_windows": pull["windows"],
        "page_requests": page_requests,
        "planning_share": planning / page_requests,
        "plan_wall": plan_wall,
        "pull_wall": pull["wall"],
        "complete": pull["complete"],
    }


# -- report -------------------------------------------------------------------------------


def fmt_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report(res: dict[str, Any]) -> str:
    out: list[str] = []
    t = res["targets"]
    if "roofline" in res:
        r = res["roofline"]
        out.append(
            f"1. Wall time against the roofline ({r['plan_windows']} windows, "
            f"{r['plan_planning_requests']} planning requests not timed). cpu_per_page = "
            f"{r['cpu_per_page_wall'] * 1e3:.1f} ms (wall at L=0, best C); client "
            f"process_time/page = {r['cpu_per_page_client_process_time'] * 1e3:.1f} ms"
        )
        rows = [
            [
                x["latency_ms"],
                x["concurrency"],
                int(x["pages"]),
                x["windows"],
                f"{x['wall']['median']:.3f}",
                f"{x['wall']['spread'] * 100:.0f}%",
                f"{x['ideal']:.3f}",
                f"{x['efficiency']:.2f}",
                f"{x['bound']:.3f}",
                f"{x['efficiency_bound']:.2f}",
            ]
            for x in r["rows"]
        ]
        out.append(
            fmt_table(
                [
                    "L ms",
                    "C",
                    "pages",
                    "windows",
                    "wall s",
                    "spread",
                    "ideal s",
                    "ideal/wall",
                    "bound s",
                    "bound/wall",
                ],
                rows,
            )
        )
        out.append(f"   target >= 0.9 at L > 0: {verdict(t['roofline'])}")
        out.append("")
        n = r["naive"]
        out.append(
            f"2. Against the naive loop (L=200 ms, {PAGE}-record pages, {n['records']} records, "
            f"{n['requests']} requests; sim offset ceiling raised to {n['offset_ceiling_of_sim']}"
            f" for the naive loop only): naive {n['wall']['median']:.2f} s "
            f"(spread {n['wall']['spread'] * 100:.0f}%)"
        )
        out.append(
            fmt_table(
                ["C", "client s", "naive s", "speed-up"],
                [
                    [
                        s["concurrency"],
                        f"{s['client_wall']:.3f}",
                        f"{s['naive_wall']:.2f}",
                        f"{s['speedup']:.1f}x",
                    ]
                    for s in r["speedups"]
                ],
            )
        )
        out.append(f"   target >= 6x at C=8: {verdict(t['naive'])}")
        out.append("")
    if "cpu" in res:
        c = res["cpu"]
        out.append(
            f"3. CPU per record ({c['captured_records']} captured records, "
            f"{c['bytes_per_record']:.0f} bytes/record; client pulls of "
            f"{c['client_records_per_pull']} records at C=4, L=0)"
        )
        rows = [
            [
                k,
                f"{v['median'] * 1e6:.2f}",
                f"{v['spread'] * 100:.0f}%",
                f"{c['ratio_to_loads'][k]:.2f}x",
            ]
            for k, v in c["per_record_seconds"].items()
        ]
        out.append(fmt_table(["path", "us/record", "spread", "vs orjson.loads"], rows))
        out.append(
            f"   target structured <= 2.5x: {verdict(t['cpu_structured'])}; "
            f"raw <= 1.3x: {verdict(t['cpu_raw'])}; lines <= 0.7x: {verdict(t['cpu_lines'])}"
        )
        out.append("")
    if "memory" in res:
        m = res["memory"]
        out.append(
            f"4. Peak RSS of a streaming pull (fresh process each; target at "
            f"C={m['concurrency']}, other C for diagnosis)"
        )
        rows = [
            [
                x["records"],
                x["concurrency"],
                x["pages"],
                x["baseline_mb"],
                x["peak_mb"],
                x["delta_mb"],
                f"{x['wall_s']:.1f}",
            ]
            for x in m["rows"] + m["other_concurrency"]
        ]
        out.append(
            fmt_table(["records", "C", "pages", "baseline MB", "peak MB", "delta MB", "s"], rows)
        )
        out.append(
            f"   growth {m['growth'] * 100:+.0f}%: same within 10%: {verdict(t['memory_flat'])}; "
            f"<= 40 MB above baseline: {verdict(t['memory_40mb'])}"
        )
        out.append("")
    if "planning" in res:
        p = res["planning"]
        out.append(
            f"5. Planning cost ({p['records']} records, {p['plan_windows']} planned windows, "
            f"{p['pull_windows']} pulled): plan {p['plan_planning_requests']} + pull "
            f"{p['pull_planning_requests']} ({p['pull_splits']} splits) planning requests for "
            f"{p['page_requests']} page requests = {p['planning_share'] * 100:.2f}%: "
            f"target <= 5%: {verdict(t['planning'])}"
        )
    return "\n".join(out)


def targets(res: dict[str, Any]) -> dict[str, bool]:
    t: dict[str, bool] = {}
    if "roofline" in res:
        r = res["roofline"]
        t["roofline"] = all(x["efficiency"] >= 0.9 for x in r["rows"] if x["latency_ms"] > 0)
        t["naive"] = all(s["speedup"] >= 6 for s in r["speedups"] if s["concurrency"] == 8)
    if "cpu" in res:
        t["cpu_structured"] = res["cpu"]["ratio_to_loads"]["client_structured"] <= 2.5
        t["cpu_raw"] = res["cpu"]["ratio_to_loads"]["client_raw"] <= 1.3
        # issue 15: a record only copied to a file (the JSONL path) <= 0.7x orjson.loads
        t["cpu_lines"] = res["cpu"]["ratio_to_loads"]["client_lines"] <= 0.7
    if "memory" in res:
        m = res["memory"]
        t["memory_flat"] = abs(m["growth"]) <= 0.10
        t["memory_40mb"] = all(x["delta_mb"] <= 40 for x in m["rows"])
    if "planning" in res:
        t["planning"] = res["planning"]["planning_share"] <= 0.05
    return t


MEASUREMENTS = {
    "roofline": measure_roofline,
    "cpu": measure_cpu,
    "memory": measure_memory,
    "planning": measure_planning,
}


async def run_all(cfg: dict[str, Any], only: Sequence[str]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for name in only:
        log(f"[{name}]")
        t0 = time.perf_counter()
        res[name] = await MEASUREMENTS[name](cfg)
        log(f"  {time.perf_counter() - t0:.1f} s")
    return res


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short run (~1-2 minutes)")
    parser.add_argument(
        "--json",
        default="benchmarks/results-latest.json",
        help="where to write the results (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(MEASUREMENTS),
        help="run only this measurement (repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1200.0,
        help="stop after this many seconds (default: %(default)s)",
    )
    ns = parser.parse_args(argv)
    install_cleanup()
    profile = "quick" if ns.quick else "full"
    cfg = PROFILES[profile]
    only = ns.only or list(MEASUREMENTS)
    info = machine()
    log(f"callsessions benchmarks ({profile}): {info['cpus']} cpus, Python {info['python']}")
    started = time.perf_counter()
    try:
        res = asyncio.run(asyncio.wait_for(run_all(cfg, only), ns.timeout))
    except TimeoutError:
        log(f"stopped after {ns.timeout:.0f} s (--timeout)")
        return 2
    finally:
        stop_all()
    info["loadavg_end"] = os.getloadavg()
    res["targets"] = targets(res)
    res["machine"] = info
    res["profile"] = profile
    res["config"] = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    res["command"] = " ".join(
        ["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
    )
    res["elapsed_s"] = time.perf_counter() - started
    path = Path(ns.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(res, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    print(report(res))
    print(
        f"\n{profile} run: {res['elapsed_s']:.0f} s; machine: {info['cpus']} cpus, Python "
        f"{info['python']}, load {info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f}"
    )
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
