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
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

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
from ._run_cpu import PATHS, capture_bodies, cpu_loop, measure_cpu, plain_fetch_loads
from ._run_memory import measure_memory, memory_child
from ._run_planning import measure_planning
from ._run_report import fmt_table, report, targets, verdict
from ._run_roofline import measure_roofline, naive_pull
from ._sim import install_cleanup, stop_all

# The measurements live in the modules above; their names stay importable from here.
__all__ = [
    "CONCURRENCIES",
    "LATENCIES_MS",
    "MEASUREMENTS",
    "PAGE",
    "PATHS",
    "PROFILES",
    "SEARCH_PATH",
    "capture_bodies",
    "cpu_loop",
    "end_for",
    "fmt_table",
    "log",
    "machine",
    "main",
    "measure_cpu",
    "measure_memory",
    "measure_planning",
    "measure_roofline",
    "memory_child",
    "naive_pull",
    "plain_fetch_loads",
    "repeat",
    "report",
    "run_all",
    "stats",
    "targets",
    "timed_pull",
    "verdict",
]

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
