"""Rate-limit benchmarks (issue 11): pulls against the simulator's per-token token bucket.

Run from the repository root::

    .venv/bin/python -m benchmarks.ratelimit            # full run (~10 minutes)
    .venv/bin/python -m benchmarks.ratelimit --quick    # short run (~2.5 minutes)

Side by side in one run, on buckets of (2/s, 2), (5/s, 5), (20/s, 10) and none, 250-record
pages, at the default concurrency and at 16: the client as it is (``adaptive``), and with
``initial_concurrency=1`` (``slow start``, the CLI's ``--slow-start``); today's
behaviour approximated through the client's ``rate_limiter=`` seam (``stand-in``, see
:class:`StandInLimiter`); and, in a full run, the real client of the last commit before the
limiter (``OLD_REF``, extracted with ``git archive`` to a temporary directory and run in a
child process). Then buckets whose rate halves or doubles in the middle of a pull.

The simulator runs in this process (``callsessions.sim.SimServer`` on 127.0.0.1): its
counters give the 429s and the served requests, ``matching_ids`` the ground truth, and
``update_faults`` changes the bucket mid-pull. Its bucket refills on the wall clock, so the
waits are real, by nature: 100 pages at 2/s take 50 s. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from callsessions import CallSessionsClient, RateLimitedError, RetryPolicy, SessionQuery
from callsessions.sim import FaultConfig, SimConfig, SimServer

from ._sim import SIM_SPAN, SIM_START, _die_with_parent

PAGE = 250
BAND = 0.25  # "the learned rate follows": within 25 % of the server's rate
SAMPLE_S = 0.05  # how often the learned rate and the simulator's counters are sampled
LEARN_S = 5.0  # 429s within this time of the first one count as learning the rate
DEFAULT_CONCURRENCY = 8  # ClientConfig().concurrency, shown in the table
#: the last commit before issue 11's limiter (the parent of 8a4ad91): "today" in the issue
OLD_REF = "d2823b30ec0fd4e35ac18f9db21d49e9b84ab42b"
OLD = "d2823b3"
#: the client with ``initial_concurrency=1`` (``--slow-start``)
SLOW = "slow start"

# rows: (rate, burst, pages), rate None = no bucket; changes: (name, rate before, burst
# before, rate after, burst after, pages served before the change, pages after it)
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "rows": [(2.0, 2, 20), (5.0, 5, 30), (20.0, 10, 80), (None, 0, 200)],
        "none_repeats": 2,
        "changes": [("halves", 10.0, 10, 5.0, 5, 60, 30), ("doubles", 5.0, 5, 10.0, 10, 30, 120)],
    },
    "full": {
        "rows": [(2.0, 2, 100), (5.0, 5, 200), (20.0, 10, 300), (None, 0, 300)],
        "none_repeats": 4,
        "changes": [
            ("halves", 10.0, 10, 5.0, 5, 150, 100),
            ("doubles", 5.0, 5, 10.0, 10, 80, 300),
        ],
    },
}
Sample = tuple[float, float | None, int, int]  # (seconds, learned rate, 200s, 429s)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class StandInLimiter:
    """Today's behaviour (before issue 11) through the client's ``rate_limiter=`` seam.

    Before issue 11 a 429 was a failed attempt: tenacity waited its ``Retry-After`` and tried
    again, at most ``RetryPolicy.attempts`` (6) times per request and within the pull's
    retry budget, while the concurrency limiter halved its limit and paused new requests for
    that ``Retry-After``; nothing paced requests per second. This limiter paces nothing
    (``acquire`` only honours that pause, ``on_success`` does nothing, ``rate`` is None) and
    turns each 429 back into a failure: ``on_throttle`` raises it, so it leaves the client's
    throttle path for the retry policy. (One whose ``on_throttle`` merely returned would
    make the client re-send every 429 at once, in a loop: a 429 no longer uses an attempt.)
    Everything else in the request path is the current code (concurrency slots served in
    order, the rate token taken inside the slot, the current planner and engine), and the
    stand-in turns out gentler than the real client of ``OLD_REF``, which a full run also
    measures.
    """

    def __init__(self) -> None:
        self.paused_until = -math.inf

    @property
    def rate(self) -> float | None:
        return None

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:  # another 429 may extend the pause while this one sleeps
            wait = self.paused_until - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def on_success(self) -> None:
        return None

    async def on_throttle(self, retry_after: float | None) -> None:
        if retry_after:
            now = asyncio.get_running_loop().time()
            self.paused_until = max(self.paused_until, now + retry_after)
        raise RateLimitedError(429, error="rate limited", retry_after=retry_after or None)


#: the simulator's latency per answer (s), ``--latency``: 0 by default (as in the table of
#: the first run); a real service answers in tens of milliseconds
LATENCY = [0.0]


def sim_config(records: int) -> SimConfig:
    """A week of ``records`` calls: ``records / 250`` pages, plus a partial page per window
    and the planning requests."""
    return SimConfig(records=records, seed=7, start=SIM_START, span=SIM_SPAN, latency=LATENCY[0])


def the_query() -> SessionQuery:
    return SessionQuery(start=SIM_START, end=SIM_START + SIM_SPAN, page_size=PAGE)


def timeout_for(pages: int, rate: float | None) -> float:
    return 60.0 if rate is None else 2.5 * pages / rate + 30.0


# -- one pull ------------------------------------------------------------------------------


async def sample(
    sim: SimServer, client: CallSessionsClient, t0: float, out: list[Sample],
    hook: Callable[[float, int], None] | None,
) -> None:
    """Every ``SAMPLE_S``: record a :data:`Sample`, then call ``hook(seconds, 200s)``."""
    while True:
        t = time.perf_counter() - t0
        out.append((t, client.rate, sim.stats.statuses[200], sim.stats.statuses[429]))
        if hook is not None:
            hook(t, sim.stats.statuses[200])
        await asyncio.sleep(SAMPLE_S)


async def pull_once(
    sim: SimServer, kind: str, concurrency: int | None, limit_s: float,
    hook: Callable[[float, int], None] | None = None,
) -> dict[str, Any]:
    """One whole pull (planning included) of the simulator's week, in this process."""
    sim.stats.reset()
    ids: list[Any] = []
    error: str | None = None
    samples: list[Sample] = []
    seam: dict[str, Any] = {}
    if kind == "stand-in":
        seam = {"rate_limiter": StandInLimiter(), "retry": RetryPolicy(attempts=6)}
    elif kind == SLOW:
        seam = {"initial_concurrency": 1}
    async with CallSessionsClient(sim.url, token=sim.token, **seam) as client:
        t0 = time.perf_counter()
        sampler = asyncio.create_task(sample(sim, client, t0, samples, hook))
        stream = client.sessions(the_query(), raw=True, concurrency=concurrency)
        deadline = asyncio.timeout(limit_s)
        try:
            async with deadline, stream:
                async for record in stream:
                    ids.append(record.get("id"))
        except Exception as exc:  # the verdict of the run: recorded, not raised
            error = "timeout" if deadline.expired() else f"{type(exc).__name__}: {exc}"[:160]
        wall = time.perf_counter() - t0
        sampler.cancel()
    if error is None and not stream.summary.complete:
        error = "incomplete"
    res = outcome(sim, kind, concurrency, ids, error, wall)
    res.update(final_rate=client.rate, samples=samples, summary=stream.summary.as_dict())
    first = next((t for t, _, _, refused in samples if refused), None)
    if first is not None:  # the 429s of the first LEARN_S seconds: finding the rate
        res["throttled_learning"] = max(n for t, _, _, n in samples if t <= first + LEARN_S)
    return res


def outcome(
    sim: SimServer, kind: str, concurrency: int | None, ids: list[Any], error: str | None,
    wall: float,
) -> dict[str, Any]:
    """The verdict of one pull: its ids against the ground truth; the simulator's counters."""
    truth = sim.matching_ids(dict(the_query().to_params()))  # paging is ignored
    refused, total = sim.stats.statuses[429], sim.stats.search_requests
    return {
        "client": kind, "concurrency": concurrency or DEFAULT_CONCURRENCY,
        "exact": len(ids) == len(set(ids)) and sorted(ids) == sorted(truth),
        "records": len(ids), "duplicates": len(ids) - len(set(ids)), "truth": len(truth),
        "exit_ok": error is None, "error": error, "requests": total,
        "served": sim.stats.statuses[200], "throttled": refused,
        "share_429": refused / total if total else 0.0, "wall": wall, "final_rate": None,
    }


# The client before issue 11, in a child process whose ``python -c`` runs in that client's
# source tree (so it imports that ``callsessions``); URL and token arrive on stdin.
OLD_CHILD = """
import asyncio, json, sys, time
from datetime import datetime
import callsessions
from callsessions import CallSessionsClient, SessionQuery

async def main(a):
    q = SessionQuery(start=datetime.fromisoformat(a["start"]),
                     end=datetime.fromisoformat(a["end"]), page_size=a["page"])
    ids, error, t0 = [], None, time.perf_counter()
    async with CallSessionsClient(a["url"], token=a["token"]) as client:
        stream = client.sessions(q, raw=True, concurrency=a["concurrency"])
        try:
            async with stream:
                async for r in stream:
                    ids.append(r.get("id"))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:160]
    error = error or (None if stream.summary.complete else "incomplete")
    print(json.dumps({"wall": time.perf_counter() - t0, "ids": ids, "error": error,
                      "source": callsessions.__file__}))

asyncio.run(main(json.loads(sys.stdin.read())))
"""


def old_source(ref: str | None) -> Path | None:
    """The ``callsessions`` package of commit ``ref`` extracted to a temporary directory
    (``git archive``, read-only: the working tree is not touched); None if unavailable."""
    if not ref:
        return None
    got = subprocess.run(["git", "archive", ref, "callsessions"], capture_output=True)
    if got.returncode != 0:
        log(f"  no old client: git archive {ref}: {got.stderr.decode()[:200]}")
        return None
    root = Path(tempfile.mkdtemp(prefix="callsessions-old-"))
    with tarfile.open(fileobj=io.BytesIO(got.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


async def old_pull(
    sim: SimServer, source: Path, concurrency: int | None, limit_s: float
) -> dict[str, Any]:
    """One pull by the client of ``source`` (see ``OLD_CHILD``), against ``sim``."""
    sim.stats.reset()
    args = {"url": sim.url, "token": sim.token, "concurrency": concurrency, "page": PAGE,
            "start": SIM_START.isoformat(), "end": (SIM_START + SIM_SPAN).isoformat()}
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OLD_CHILD, cwd=source, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(orjson.dumps(args)), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return outcome(sim, OLD, concurrency, [], "timeout", time.perf_counter() - t0)
    got = orjson.loads(out)
    if not str(got["source"]).startswith(str(source)):
        raise RuntimeError(f"the old client imported {got['source']}, not {source}")
    return outcome(sim, OLD, concurrency, got["ids"], got["error"], got["wall"])


# -- the table ---------------------------------------------------------------------


async def measure_bucket(
    rate: float | None, burst: int, pages: int, repeats: int, old: Path | None
) -> list[dict[str, Any]]:
    """Every client on one bucket. Without a bucket, ``repeats`` round-robin runs of each
    client in this process (the old one runs once: its process layout differs)."""
    clients: list[tuple[str, int | None]] = [
        (kind, conc) for kind in ("adaptive", SLOW, "stand-in", OLD) for conc in (None, 16)
    ]
    clients = [c for c in clients if c[0] != OLD or old is not None]
    runs: dict[tuple[str, int | None], list[dict[str, Any]]] = {c: [] for c in clients}
    async with SimServer(sim_config(pages * PAGE)) as sim:
        if rate is None:  # warm-up (not counted): connections, caches, the allocator
            await pull_once(sim, "stand-in", None, timeout_for(pages, rate))
        for r in range(repeats if rate is None else 1):
            for kind, conc in clients if r == 0 else [c for c in clients if c[0] != OLD]:
                sim.set_faults(FaultConfig(rate_limit=rate, rate_limit_burst=burst))  # full
                limit_s = timeout_for(pages, rate)
                if kind == OLD and old is not None:
                    res = await old_pull(sim, old, conc, limit_s)
                else:
                    res = await pull_once(sim, kind, conc, limit_s)
                    del res["samples"]
                runs[(kind, conc)].append(res)
                log(f"    {label(rate, burst)} {kind} c={res['concurrency']} run {r + 1}: "
                    f"{res['wall']:.1f} s, {res['throttled']} 429s, {res['error'] or 'ok'}")
    return [bucket_row(rate, burst, pages, rs) for rs in runs.values()]


def bucket_row(
    rate: float | None, burst: int, pages: int, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    """One line of the table: the run itself, or the median run of the repeats."""
    walls = [r["wall"] for r in runs]
    med = statistics.median(walls)
    row = dict(sorted(runs, key=lambda r: float(r["wall"]))[len(runs) // 2])
    row.update(
        bucket=label(rate, burst), rate_limit=rate, burst=burst, pages=pages, wall=med,
        wall_spread=(max(walls) - min(walls)) / med if med else 0.0, runs=len(runs),
        all_exact=all(r["exact"] and r["exit_ok"] for r in runs),
        wall_ratio=med / (row["served"] / rate) if rate and row["exit_ok"] else None,
    )
    return row


def label(rate: float | None, burst: int) -> str:
    return "none" if rate is None else f"{rate:g}/s, {burst}"


# -- a rate that changes mid-pull ----------------------------------------------------------


async def measure_change(
    name: str, before: tuple[float, int], after: tuple[float, int], pages: tuple[int, int]
) -> dict[str, Any]:
    """A pull whose bucket changes to ``after`` once ``pages[0]`` requests were served."""
    switch: dict[str, float] = {}
    async with SimServer(sim_config(sum(pages) * PAGE)) as sim:
        sim.set_faults(FaultConfig(rate_limit=before[0], rate_limit_burst=before[1]))

        def hook(t: float, served: int) -> None:
            if not switch and served >= pages[0]:
                sim.update_faults(rate_limit=after[0], rate_limit_burst=after[1])
                switch.update(t=t, served=served, refused=sim.stats.statuses[429])

        limit_s = 3 * sum(pages) / min(before[0], after[0]) + 60
        res = await pull_once(sim, "adaptive", None, limit_s, hook)
    res.update(name=name, before=list(before), after=list(after), pages_split=list(pages))
    res.update(follow(res.pop("samples"), switch, after[0], res))
    log(f"    {name}: {res['wall']:.1f} s, lag {fmt(res['lag_enter'])} s, {res['error'] or 'ok'}")
    return res


def follow(
    samples: list[Sample], switch: dict[str, float], new_rate: float, res: dict[str, Any]
) -> dict[str, Any]:
    """How the learned rate followed the change: the lag until it is within ``BAND`` of the
    new rate (first, and for good), the 429 share before and after, throughput after."""
    if not switch:
        return {"lag_enter": None, "lag_settled": None, "after_s": 0.0}
    ts = switch["t"]
    after = [(t - ts, r) for t, r, _, _ in samples if t >= ts]
    inside = [r is not None and abs(r / new_rate - 1.0) <= BAND for _, r in after]
    enter = next((dt for (dt, _), ok in zip(after, inside, strict=True) if ok), None)
    outside = [dt for (dt, _), ok in zip(after, inside, strict=True) if not ok]
    later = [dt for dt, _ in after if not outside or dt > outside[-1]]
    served_after = res["served"] - switch["served"]
    refused_after = res["throttled"] - switch["refused"]
    span = res["wall"] - ts
    return {
        "switch_at_s": ts, "lag_enter": enter, "lag_settled": later[0] if later else None,
        "after_s": span,
        "share_429_before": switch["refused"] / max(1.0, switch["served"] + switch["refused"]),
        "share_429_after": refused_after / max(1, served_after + refused_after),
        "served_rate_after": served_after / span if span > 0 else 0.0,
        "rate_trace": [(round(t, 2), r) for t, r, _, _ in samples[:: round(0.5 / SAMPLE_S)]],
    }


# -- report --------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def lag(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| bucket (rate, burst) | pages | client | C | exact | exit 0 | 429s / requests "
        f"| of which in the first {LEARN_S:g} s | wall s | wall / (requests ÷ rate) "
        "| final rate | targets |",
        "|" + "---|" * 12,
    ]
    for r in rows:
        spread = f" (±{r['wall_spread'] / 2:.0%}, {r['runs']} runs)" if r["runs"] > 1 else ""
        lines.append(
            f"| {r['bucket']} | {r['pages']} | {r['client']} | {r['concurrency']} "
            f"| {'yes' if r['exact'] else 'NO'} "
            f"| {'yes' if r['exit_ok'] else 'NO: ' + str(r['error']).split(':')[0]} "
            f"| {r['throttled']} / {r['requests']} ({r['share_429']:.1%}) "
            f"| {r.get('throttled_learning', '-')} "
            f"| {r['wall']:.{1 if r['rate_limit'] else 2}f}{spread} "
            f"| {fmt(r['wall_ratio'], '.3f')} "
            f"| {fmt(r['final_rate'])} | {verdict(r, rows)} |"
        )
    return "\n".join(lines)


def verdict(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The issue's targets, for the client as it is. Without a bucket, "within noise of
    today": the medians of the client and the stand-in (same concurrency) differ by no
    more than the larger half-range of the two (the ± shown)."""
    if row["client"] not in ("adaptive", SLOW):
        return ""
    if row["rate_limit"] is None:
        base = [r for r in rows if r["rate_limit"] is None and r["client"] == "stand-in"
                and r["concurrency"] == row["concurrency"]]
        noise = max([row["wall_spread"] * row["wall"] / 2]
                    + [b["wall_spread"] * b["wall"] / 2 for b in base])
        fast = bool(base) and row["wall"] - base[0]["wall"] <= noise
        return "met" if row["throttled"] == 0 and row["all_exact"] and fast else "MISSED"
    ok = row["exact"] and row["exit_ok"] and row["share_429"] <= 0.05
    return "met" if ok and row["wall_ratio"] <= 1.15 else "MISSED"


def change_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| change | bucket before → after | pages before + after | exact | exit 0 "
        "| lag into ±25 %: first / for good | 429 share before / after "
        "| served after ÷ new rate | final rate |",
        "|" + "---|" * 9,
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['name']} | {b[0]:g}/s, {b[1]} → {a[0]:g}/s, {a[1]} "
            f"| {r['pages_split'][0]} + {r['pages_split'][1]} "
            f"| {'yes' if r['exact'] else 'NO'} | {'yes' if r['exit_ok'] else 'NO'} "
            f"| {lag(r['lag_enter'])} / {lag(r['lag_settled'])} (of {r['after_s']:.0f} s) "
            f"| {r.get('share_429_before', 0):.1%} / {r.get('share_429_after', 0):.1%} "
            f"| {r.get('served_rate_after', 0) / a[0]:.2f} | {fmt(r['final_rate'])} |"
        )
    return "\n".join(lines)


async def run_all(cfg: dict[str, Any], old: Path | None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for rate, burst, pages in cfg["rows"]:
        log(f"  bucket {label(rate, burst)}, {pages} pages of {PAGE}")
        rows.extend(await measure_bucket(rate, burst, pages, cfg["none_repeats"], old))
    # The changing buckets run at the same time (each its own simulator and client): each
    # pull is paced by its bucket, not by the CPU (about 5 % of a core at 10 req/s).
    log("  rates that change: " + ", ".join(f"{c[0]} {c[1]:g}/s -> {c[3]:g}/s after {c[5]} "
                                            "pages" for c in cfg["changes"]))
    changes = await asyncio.gather(*(
        measure_change(name, (r1, b1), (r2, b2), (p1, p2))
        for name, r1, b1, r2, b2, p1, p2 in cfg["changes"]
    ))
    return {"rows": rows, "changes": list(changes)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ratelimit", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a short run (~2.5 minutes)")
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results-ratelimit-latest.json"),
        help="where to write the results (default: %(default)s)",
    )
    parser.add_argument(
        "--old-ref", help=f"also run the client of this commit (default: {OLD} in a full "
        "run, none with --quick; '' for none)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="the simulator's latency in seconds "
        "(default: %(default)s)",
    )
    ns = parser.parse_args(argv)
    LATENCY[0] = ns.latency
    profile = "quick" if ns.quick else "full"
    ref = ns.old_ref if ns.old_ref is not None else (None if ns.quick else OLD_REF)
    started = time.perf_counter()
    old = old_source(ref)
    try:
        res = asyncio.run(run_all(PROFILES[profile], old))
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    res.update(profile=profile, latency=ns.latency, old_ref=ref if old else None,
               elapsed_s=time.perf_counter() - started,
               command=" ".join(["python -m benchmarks.ratelimit", *(argv or sys.argv[1:])]))
    ns.json.parent.mkdir(parents=True, exist_ok=True)
    ns.json.write_bytes(orjson.dumps(res, option=orjson.OPT_INDENT_2))
    print(f"Rate limits ({profile} profile, {res['elapsed_s']:.0f} s), {PAGE}-record pages, "
          f"latency {ns.latency * 1000:g} ms:\n")
    print(table(res["rows"]) + "\n\n" + change_table(res["changes"]))
    print(f"\nresults: {ns.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
