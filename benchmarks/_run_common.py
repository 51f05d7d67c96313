"""What the measurements of ``benchmarks.run`` share: the constants of the runs, the
statistics of repeated measurements, one timed pull of the client and the round-robin
repeater."""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from callsessions import CallSessionsClient, PullPlan

from ._sim import SIM_SPAN, SIM_START

SEARCH_PATH = "/api/v1/search/cis/calls"
CONCURRENCIES = (1, 4, 8, 16)
LATENCIES_MS = (50, 200)
PAGE = 1000


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
