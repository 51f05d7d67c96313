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
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from callsessions import ALL_FIELDS, CallSessionsClient, SessionQuery

from ._sim import SIM_SPAN, SIM_START, SimProcess, install_cleanup, stop_all

SEARCH_PATH = "/api/v1/search/cis/calls"
PAGE = 1000
PY = sys.executable
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"repeats": 3, "startup_repeats": 10, "big": 200_000, "big_repeats": 2},
    "full": {"repeats": 5, "startup_repeats": 20, "big": 1_000_000, "big_repeats": 3},
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median and spread ((max - min) / median) of repeated measurements."""
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med else 0.0
    return {"median": med, "min": min(values), "max": max(values), "spread": spread,
            "n": len(values)}


def iso(t: datetime) -> str:
    return t.isoformat()


def cli_pull_argv(url: str, end: datetime, out: Path, *extra: str) -> list[str]:
    return [PY, "-m", "callsessions", "pull", "--base-url", url, "--from", iso(SIM_START),
            "--to", iso(end), "--out", str(out), "--overwrite", "-q", *extra]


def run_child(argv: Sequence[str], token: str = "") -> dict[str, Any]:
    """Run ``argv`` to its end: wall time, and the CPU of that child alone (``wait4``)."""
    env = dict(os.environ, CALLSESSIONS_TOKEN=token) if token else dict(os.environ)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rc": proc.returncode,
            "stderr": err[-500:]}


def proc_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a live process, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


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


# -- 2. start-up -----------------------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


def measure_startup(cfg: dict[str, Any], tmp: Path) -> dict[str, Any]:
    port = closed_port()
    end = SIM_START + SIM_SPAN
    commands = {
        "python -c pass": [PY, "-c", "pass"],
        "python -c 'import aiohttp'": [PY, "-c", "import aiohttp"],
        "callsessions --help": [PY, "-m", "callsessions", "--help"],
        "callsessions pull --help": [PY, "-m", "callsessions", "pull", "--help"],
        "pull to a closed port": cli_pull_argv(f"http://127.0.0.1:{port}", end,
                                               tmp / "none.jsonl", "--retry-wait", "0"),
    }
    log("  2. start-up")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in commands}
    for _ in range(cfg["startup_repeats"]):
        for name, argv in commands.items():
            runs[name].append(run_child(argv, token="x"))
    base = stats([r["wall"] for r in runs["python -c pass"]])
    rows = {}
    for name, rs in runs.items():
        s = stats([r["wall"] for r in rs])
        rows[name] = {"wall": s, "over_python": s["median"] - base["median"],
                      "rc": sorted({r["rc"] for r in rs}),
                      "cpu": stats([r["cpu"] for r in rs])}
    return {"rows": rows, "closed_port_stderr": runs["pull to a closed port"][0]["stderr"]}


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
        out.append({"round": int((e["t"] - t0) / lat_s + 0.5), "limit": p.get("limit"),
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


def first_page_round(reqs: list[dict[str, Any]]) -> int:
    """The round of the first request for a page of a planned window: a full page
    (limit = page size) at an offset > 0, or of a range narrower than the whole."""
    whole = (reqs[0]["from"], reqs[0]["to"])
    for r in reqs:
        if r["limit"] == str(PAGE) and (r["offset"] not in (None, "0")
                                         or (r["from"], r["to"]) != whole):
            return int(r["round"])
    return 0  # the first page was the only page (one window, one page)


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
                         "lines": count_lines(tmp / "plan.jsonl"), "first": reqs[:12],
                         "last_round": reqs[-1]["round"]}
    return res


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


# -- report ---------------------------------------------------------------------------------


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


def report_startup(r: dict[str, Any]) -> list[str]:
    out = ["2. Start-up (wall of a subprocess; median, spread; over = minus python -c pass)"]
    out.append("   command                    | wall s | spread | over s | CPU s | exit")
    for name, row in r["rows"].items():
        out.append(f"   {name:<26} | {row['wall']['median']:.3f}  | {row['wall']['spread']:5.0%}"
                   f"  | {row['over_python']:+.3f} | {row['cpu']['median']:.3f} | {row['rc']}")
    for name in ("callsessions --help", "callsessions pull --help", "pull to a closed port"):
        over = r["rows"][name]["over_python"]
        out.append(f"   target <= 0.15 s over python, {name}: "
                   f"{'MET' if over <= 0.15 else 'MISSED'} ({over:+.3f} s)")
    return out


def report_planning(r: dict[str, Any]) -> list[str]:
    out = ["3. Planning (CLI pull behind a logging proxy, L = 100 ms; round = latencies "
           "since the first request)"]
    for name, row in r.items():
        out.append(f"   {name}: {row['requests']} requests, {row['lines']} lines, the first "
                   f"page request of a planned window in round {row['first_page_round']}, "
                   f"last request in round {row['last_round']}")
        for q in row["first"][:6]:
            out.append(f"     round {q['round']}: limit={q['limit']} offset={q['offset']} "
                       f"from={q['from']} to={q['to']}")
    return out


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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cli", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 200k records in 4")
    ap.add_argument("--only", action="append", choices=["pull", "startup", "planning", "big"])
    ap.add_argument("--profile", action="store_true", help="also cProfile a JSONL pull")
    ap.add_argument("--json", default="benchmarks/results-cli-latest.json")
    args = ap.parse_args(argv)
    cfg = PROFILES["quick" if args.quick else "full"]
    only = args.only or ["pull", "startup", "planning", "big"]
    install_cleanup()
    t0 = time.monotonic()
    res: dict[str, Any] = {"profile": "quick" if args.quick else "full"}
    lines: list[str] = []
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
