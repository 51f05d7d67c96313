"""Benchmarks of the command line and the raw JSONL path (issue 15).

Run from the repository root::

    .venv/bin/python -m benchmarks.cli            # full run (about 4 minutes)
    .venv/bin/python -m benchmarks.cli --quick    # short run (about 1.5 minutes)
    .venv/bin/python -m benchmarks.cli --profile  # also cProfile an in-process JSONL pull

Four measurements, each with its baseline in the same run (medians of round-robin repeats,
spread = (max - min) / median); the simulators are separate processes (``SimProcess``):

1. ``python -m callsessions pull ... --out X.jsonl`` (a real subprocess, wall time) against
   a naive sequential offset loop (plain aiohttp, ``offset += limit`` until a short page,
   each record written as a JSON line) at L = 100 ms, 60,000 records, 1000-record pages,
   C = 8. The simulator's offset ceiling is raised for the naive loop; the CLI keeps its
   default ceiling (10,000), so its requests are those a real service would see.
2. Start-up: ``callsessions --help``, ``pull --help`` and a failing pull (a port where
   nothing listens, ``--retry-wait 0``) against bare ``python -c pass``.
3. Planning: the requests of a CLI pull in the order the server received them (a logging
   proxy in front of the simulator at L = 100 ms), for a range that fits one window and one
   that does not: round trips before the first page request of a planned window.
4. JSONL output of 1,000,000 records (200,000 with ``--quick``) through the CLI at L = 0:
   records/s, the client's CPU seconds (``wait4`` rusage of the CLI process only) and the
   simulator's (``/proc/PID/stat``), against the physical floor: the same bytes read off
   the socket with plain aiohttp at C = 8 and written to a file, nothing parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ._cli_big import floor_fetch, measure_big, profile_jsonl, profiled_pull, report_big
from ._cli_common import (
    PAGE,
    PY,
    SEARCH_PATH,
    cli_pull_argv,
    count_lines,
    iso,
    log,
    prepare_bytecode,
    proc_cpu,
    run_child,
    stats,
)
from ._cli_pull import measure_cli_vs_naive, naive_loop, report_pull
from ._cli_startup import closed_port, measure_startup, report_startup
from ._sim import SIM_SPAN, SIM_START, SimProcess, install_cleanup, stop_all

# Measurements 1, 2 and 4 live in the modules above; their names stay importable from here.
__all__ = [
    "PAGE",
    "PROFILES",
    "PY",
    "SEARCH_PATH",
    "LoggingProxy",
    "cli_pull_argv",
    "closed_port",
    "count_lines",
    "first_page_round",
    "floor_fetch",
    "iso",
    "log",
    "main",
    "measure_big",
    "measure_cli_vs_naive",
    "measure_planning",
    "measure_startup",
    "naive_loop",
    "proc_cpu",
    "profile_jsonl",
    "profiled_pull",
    "proxied_cli_pull",
    "report_big",
    "report_planning",
    "report_pull",
    "report_startup",
    "rounds_of",
    "run_child",
    "stats",
]

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"repeats": 3, "startup_repeats": 10, "big": 200_000, "big_repeats": 2},
    "full": {"repeats": 5, "startup_repeats": 20, "big": 1_000_000, "big_repeats": 3},
}


# -- 3. planning round trips, from the server's side --------------------------------------


class LoggingProxy:
    """Forwards every request to the simulator and keeps (arrival, answer, params) in
    the order the server side received them."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.log: list[dict[str, Any]] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        entry: dict[str, Any] = {"t": time.perf_counter(), "params": dict(request.query)}
        self.log.append(entry)
        assert self._session is not None
        headers = {"Authorization": request.headers.get("Authorization", "")}
        async with self._session.get(self.upstream + request.path_qs, headers=headers) as up:
            body = await up.read()
            entry["answered"] = time.perf_counter()
            return web.Response(body=body, status=up.status, content_type="application/json")

    async def __aenter__(self) -> LoggingProxy:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


def rounds_of(entries: list[dict[str, Any]], lat_s: float) -> list[dict[str, Any]]:
    """Each request with its round: the number of latencies between the first request's
    arrival and its own (the client's CPU between rounds is small against 100 ms)."""
    t0 = entries[0]["t"]
    out = []
    for e in entries:
        p = e["params"]
        out.append({"round": int((e["t"] - t0) / lat_s + 0.5),
                    "ms": round((e["t"] - t0) * 1e3, 1), "limit": p.get("limit"),
                    "offset": p.get("offset", p.get("page")), "from": p.get("from"),
                    "to": p.get("to"), "fields": p.get("fields", "")[:40]})
    return out


async def proxied_cli_pull(sim: SimProcess, end: datetime, out: Path) -> list[dict[str, Any]]:
    async with LoggingProxy(sim.url) as proxy:
        env = dict(os.environ, CALLSESSIONS_TOKEN=sim.token)
        proc = await asyncio.create_subprocess_exec(
            *cli_pull_argv(proxy.url, end, out, "--concurrency", "8"), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()
        return rounds_of(proxy.log, sim.latency_ms / 1e3)


def first_planned_page(reqs: list[dict[str, Any]]) -> int | None:
    """The index of the first request for a page of a planned window: a full page (limit =
    page size) at an offset > 0, or of a range narrower than the whole; None if none."""
    whole = (reqs[0]["from"], reqs[0]["to"])
    for i, r in enumerate(reqs):
        if r["limit"] == str(PAGE) and (r["offset"] not in (None, "0")
                                         or (r["from"], r["to"]) != whole):
            return i
    return None  # the first page was the only page (one window, one page)


def first_page_round(reqs: list[dict[str, Any]]) -> int:
    """The round of the first request for a page of a planned window (0 if none)."""
    i = first_planned_page(reqs)
    return 0 if i is None else int(reqs[i]["round"])


def planning_waves(reqs: list[dict[str, Any]], lat_s: float) -> int:
    """Planning round trips, whatever each one's length: the waves of requests that reached
    the server before the first page of a planned window, a new wave starting where
    arrivals are more than half a latency apart (a request sent after an answer)."""
    i = first_planned_page(reqs)
    waves, last = 0, None
    for r in reqs if i is None else reqs[:i]:
        if last is None or r["ms"] - last > lat_s * 1e3 / 2:
            waves += 1
        last = r["ms"]
    return waves


def measure_planning(cfg: dict[str, Any], tmp: Path) -> dict[str, Any]:
    records, lat = 60_000, 100
    log(f"  3. planning: simulator {records} records, latency {lat} ms, behind a proxy")
    res: dict[str, Any] = {}
    with SimProcess(records, latency_ms=lat) as sim:
        for name, wanted in (("one window (5,000 records)", 5_000),
                             ("eight windows (60,000 records)", 60_000)):
            end = SIM_START + SIM_SPAN * (wanted / records)
            reqs = asyncio.run(proxied_cli_pull(sim, end, tmp / "plan.jsonl"))
            res[name] = {"requests": len(reqs), "first_page_round": first_page_round(reqs),
                         "planning_round_trips": planning_waves(reqs, lat / 1e3),
                         "lines": count_lines(tmp / "plan.jsonl"), "first": reqs[:12],
                         "last_round": reqs[-1]["round"]}
    return res


def report_planning(r: dict[str, Any]) -> list[str]:
    out = ["3. Planning (CLI pull behind a logging proxy, L = 100 ms; round = latencies "
           "since the first request)"]
    for name, row in r.items():
        trips = row["planning_round_trips"]
        out.append(f"   {name}: {row['requests']} requests, {row['lines']} lines; planning "
                   f"round trips before the first page of a planned window: {trips} (target "
                   f"1: {'MET' if trips <= 1 else 'MISSED'}); that page in round "
                   f"{row['first_page_round']}, last request in round {row['last_round']}")
        for q in row["first"][:6]:
            out.append(f"     round {q['round']} ({q['ms']:7.1f} ms): limit={q['limit']} "
                       f"offset={q['offset']} from={q['from']} to={q['to']}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cli", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 200k records in 4")
    ap.add_argument("--only", action="append", choices=["pull", "startup", "planning", "big"])
    ap.add_argument("--profile", action="store_true", help="also cProfile a JSONL pull")
    ap.add_argument("--json", default="benchmarks/results-cli-latest.json")
    ap.add_argument("--from-source", action="store_true",
                    help="remove the package's bytecode first instead of compiling it")
    args = ap.parse_args(argv)
    cfg = PROFILES["quick" if args.quick else "full"]
    only = args.only or ["pull", "startup", "planning", "big"]
    install_cleanup()
    t0 = time.monotonic()
    res: dict[str, Any] = {"profile": "quick" if args.quick else "full"}
    res["bytecode"] = prepare_bytecode(not args.from_source)
    lines: list[str] = [f"bytecode: {res['bytecode']}", ""]
    steps = {"pull": (measure_cli_vs_naive, report_pull),
             "startup": (measure_startup, report_startup),
             "planning": (measure_planning, report_planning),
             "big": (measure_big, report_big)}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cli-") as d:
            for name in only:
                measure, rep = steps[name]
                res[name] = measure(cfg, Path(d))
                lines += [*rep(res[name]), ""]
            if args.profile:
                res["cprofile"] = profile_jsonl(200_000, Path(d))
    finally:
        stop_all()
    res["seconds"] = time.monotonic() - t0
    Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    print("\n".join(lines))
    if args.profile:
        print(res["cprofile"])
    print(f"({res['seconds']:.0f} s; JSON in {args.json})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
