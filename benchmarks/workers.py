"""Distributed pulls on arq workers (issue 13): throughput with 3 workers against 1, and the
shared rate limit against one limit per worker.

Run from the repository root (needs ``redis-server`` on PATH)::

    .venv/bin/python -m benchmarks.workers               # about 2 minutes on 2 cores
    .venv/bin/python -m benchmarks.workers --only limiter --json /tmp/w.json

1. **Throughput** (``throughput``). A simulator process with 200 ms latency per answer;
   a plan of about 60 windows (offset ceiling 1,000, pages of 100 records, 3 fields),
   made before the clock starts. The same plan is pulled into a new directory by worker
   processes (``python -m callsessions.workers worker --concurrency 2
   --request-concurrency 2``), all started and polling before the clock starts: first 1
   worker, then 3. Timed: ``run_distributed`` from enqueueing to the verified manifest.
   Speed-up = wall(1 worker) / wall(3 workers); the target is 2.5x (3x is the ceiling: the
   pull is latency-bound on purpose, the machine has 2 cores).
2. **Limiter** (``limiter``). A simulator (in this process, on a thread, so its counters
   can be read) with a per-token bucket of 10 requests/s (burst 10); 3 workers pull the
   same plan (about 250 requests), once sharing one limit in Redis (the default) and once
   with ``--no-shared-limiter`` (each process learns its own limit, as jobs with their own
   clients do). Reported: the share of answers that were 429, requests, wall time.

One run of each (the figures are ratios and shares measured in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks._sim import SIM_START, SimProcess, install_cleanup
from callsessions import CallSessionsClient, PullPlan, SessionQuery
from callsessions.sim import FaultConfig, SimConfig
from callsessions.testing import SimFactory
from callsessions.workers.arq import run_distributed
from tests.redis_server import running_redis_server

FIELDS = ["id", "createdAt", "status"]
TARGET = 2.5


@contextmanager
def worker_processes(
    n: int, queue: str, base_url: str, token: str, extra: Sequence[str] = ()
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` worker processes, each polling the queue before this yields; stopped after."""
    env = {**os.environ, "CALLSESSIONS_BASE_URL": base_url, "CALLSESSIONS_TOKEN": token}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        logs = [Path(tmp) / f"w{i}.log" for i in range(n)]
        procs = []
        for log in logs:
            with log.open("wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "callsessions.workers", "worker", "--queue", queue,
                     "--concurrency", "2", "--request-concurrency", "2", "--poll-delay", "0.05",
                     "--retry-defer", "0", "-v", *extra],
                    env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                ))
        try:
            deadline = time.monotonic() + 60
            while not all(b"Starting worker" in log.read_bytes() for log in logs):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("workers did not start: " + logs[0].read_text())
                time.sleep(0.05)
            yield procs
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


async def make_plan(url: str, token: str, hours: float, page_size: int, ceiling: int) -> PullPlan:
    query = SessionQuery(start=SIM_START, end=SIM_START + timedelta(hours=hours),
                         fields=FIELDS, page_size=page_size)
    async with CallSessionsClient(url, token=token, offset_ceiling=ceiling) as client:
        return await client.plan(query)


def timed_pull(plan: PullPlan, queue: str) -> tuple[float, Any]:
    """Wall time of one distributed pull of ``plan`` into a fresh directory, and its summary."""
    with tempfile.TemporaryDirectory(prefix="bench-out-") as out:
        started = time.perf_counter()
        summary = asyncio.run(run_distributed(plan, queue, out, poll_interval=0.05))
        wall = time.perf_counter() - started
    if not summary.ok:
        raise RuntimeError("; ".join(summary.lines()))
    return wall, summary


def throughput(records: int) -> dict[str, Any]:
    ceiling = 1_000
    with SimProcess(records, latency_ms=200, offset_ceiling=ceiling) as sim, \
            running_redis_server() as queue:
        hours = 24 * 7 * min(1.0, 48_000 / records)
        plan = asyncio.run(make_plan(sim.url, sim.token, hours, 100, ceiling))
        out: dict[str, Any] = {"windows": len(plan.windows), "records": plan.estimated_total}
        for n in (1, 3):
            with worker_processes(n, queue, sim.url, sim.token):
                wall, summary = timed_pull(plan, queue)
            out[f"workers_{n}"] = {
                "wall": round(wall, 2),
                "requests": summary.requests,
                "records_per_s": round(summary.records / wall),
                "workers_used": len(summary.workers),
            }
            print(f"  {n} worker(s): {wall:6.1f} s, {summary.requests} requests, "
                  f"{summary.records / wall:7.0f} records/s", flush=True)
        out["speedup"] = round(out["workers_1"]["wall"] / out["workers_3"]["wall"], 2)
        out["target"] = TARGET
        return out


def limiter(records: int) -> dict[str, Any]:
    config = SimConfig(records=records, seed=5, offset_ceiling=2_000)
    out: dict[str, Any] = {}
    with SimFactory() as factory, running_redis_server() as queue:
        sim = factory(config)
        token = sim.mint_token(3600)
        hours = 35 * 60_000 / records
        plan = asyncio.run(make_plan(sim.url, token, hours, 50, 2_000))
        out["requests_planned"] = sum((w.count or 0) // 50 + 1 for w in plan.windows)
        for mode, extra in (("shared", ()), ("per_worker", ("--no-shared-limiter",))):
            with worker_processes(3, queue, sim.url, token, extra):
                sim.set_faults(FaultConfig(rate_limit=10, rate_limit_burst=10))
                sim.reset_stats()
                wall, summary = timed_pull(plan, queue)
                stats = sim.stats
            total, throttled = stats.search_requests, stats.statuses[429]
            out[mode] = {
                "wall": round(wall, 2),
                "requests": total,
                "throttled": throttled,
                "share_429": round(throttled / total, 4),
                "served_per_s": round((total - throttled) / wall, 2),
                "window_retries": summary.retries,
            }
            print(f"  {mode:10s}: {throttled:4d} of {total:4d} answers 429 "
                  f"({throttled / total:6.1%}), {wall:5.1f} s, {summary.retries} window retries",
                  flush=True)
            sim.set_faults(FaultConfig())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["throughput", "limiter"])
    parser.add_argument("--records", type=int, default=60_000, help="simulator records")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    install_cleanup()
    only = args.only or ["throughput", "limiter"]
    results: dict[str, Any] = {}
    if "throughput" in only:
        print("throughput, 200 ms latency, concurrency 2 x 2 per worker:", flush=True)
        results["throughput"] = t = throughput(args.records)
        verdict = "ok" if t["speedup"] >= TARGET else "BELOW TARGET"
        print(f"  speed-up 3 vs 1: {t['speedup']}x over {t['windows']} windows "
              f"(target {TARGET}x): {verdict}")
    if "limiter" in only:
        print("3 workers, per-token bucket of 10 requests/s:", flush=True)
        results["limiter"] = limiter(args.records)
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
