"""Measurements 1 and 2 of ``benchmarks.run``: wall time against the roofline, and
against the platform guide's naive offset loop."""

from __future__ import annotations

import functools
import gc
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from callsessions import ALL_FIELDS, CallSessionsClient, SessionQuery

from ._run_common import (
    CONCURRENCIES,
    LATENCIES_MS,
    PAGE,
    SEARCH_PATH,
    end_for,
    log,
    repeat,
    stats,
    timed_pull,
)
from ._sim import SIM_START, SimProcess


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


# -- measurement 1 and 2: roofline and naive loop ----------------------------------------


async def _measure_latency(
    lat: int, sim_records: int, start: datetime, end: datetime, query: SessionQuery, repeats: int
) -> tuple[dict[Any, list[dict[str, Any]]], int, int]:
    """Every pull at one simulated latency ``lat`` (ms), on one simulator: the client at each
    concurrency and, at 200 ms, the naive loop, ``repeats`` times round-robin. Returns the
    runs by job key (a concurrency, or ``"naive"``), the plan's windows and planning requests.
    """
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
                c: functools.partial(timed_pull, client, plan, c) for c in CONCURRENCIES
            }
            session: aiohttp.ClientSession | None = None
            if lat == 200:
                session = aiohttp.ClientSession()
                jobs["naive"] = functools.partial(
                    naive_pull, session, sim.url, sim.token, start, end
                )
            try:
                res = await repeat(repeats, jobs)
            finally:
                if session is not None:
                    await session.close()
    return res, windows, plan_requests


def _cpu_per_page(
    runs: dict[tuple[int, int], list[dict[str, Any]]],
) -> tuple[dict[int, dict[str, float]], float, float]:
    """The CPU term of the roofline, from the zero-latency runs: per concurrency, the stats
    of wall seconds per page; then the best median of wall and of client process time per
    page (the roofline's and the client-CPU variant's cost of one page)."""
    per_page_wall = {
        c: stats([r["wall"] / r["requests"] for r in runs[(0, c)]]) for c in CONCURRENCIES
    }
    per_page_cpu = {
        c: stats([r["cpu"] / r["requests"] for r in runs[(0, c)]]) for c in CONCURRENCIES
    }
    cpu_per_page = min(v["median"] for v in per_page_wall.values())
    client_cpu_per_page = min(v["median"] for v in per_page_cpu.values())
    return per_page_wall, cpu_per_page, client_cpu_per_page


def _row(
    lat: int,
    c: int,
    rs: list[dict[str, Any]],
    cpu_per_page: float,
    client_cpu_per_page: float,
) -> dict[str, Any]:
    """One row of the roofline table: the runs at latency ``lat`` and concurrency ``c``
    against the ideal time, the lower bound and the client-CPU ideal."""
    wall = stats([r["wall"] for r in rs])
    p = statistics.median(r["requests"] for r in rs)
    ideal = max(math.ceil(p / c) * lat / 1000.0, p * cpu_per_page)
    ideal_cpu = max(math.ceil(p / c) * lat / 1000.0, p * client_cpu_per_page)
    # A lower bound any client obeys: nothing can be processed before the first answer
    # arrives (one L), and then every page still costs its CPU.
    bound = max(math.ceil(p / c) * lat / 1000.0, lat / 1000.0 + p * cpu_per_page)
    return {
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


def _speedups(rows: list[dict[str, Any]], naive_wall: dict[str, float]) -> list[dict[str, Any]]:
    """The client against the naive loop at 200 ms, one entry per concurrency (medians)."""
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
    return speedups


async def measure_roofline(cfg: dict[str, Any]) -> dict[str, Any]:
    """Measurements 1 and 2: the client's wall time at every latency and concurrency against
    the roofline (and a lower bound), and against the naive offset loop at 200 ms."""
    pages, repeats, sim_records = cfg["pages"], cfg["repeats"], cfg["sim_records"]
    start, end = SIM_START, end_for(pages * PAGE, sim_records)
    query = SessionQuery(start=start, end=end)
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
    naive_runs: list[dict[str, Any]] = []
    windows = 0
    plan_requests = 0
    for lat in (0, *LATENCIES_MS):
        res, windows, plan_requests = await _measure_latency(
            lat, sim_records, start, end, query, repeats
        )
        for c in CONCURRENCIES:
            runs[(lat, c)] = res[c]
        if lat == 200:
            naive_runs = res["naive"]

    # the CPU term of the roofline: seconds per page at zero latency
    per_page_wall, cpu_per_page, client_cpu_per_page = _cpu_per_page(runs)
    rows = [_row(lat, c, rs, cpu_per_page, client_cpu_per_page) for (lat, c), rs in runs.items()]
    naive_wall = stats([r["wall"] for r in naive_runs])
    speedups = _speedups(rows, naive_wall)
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
