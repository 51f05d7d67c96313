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
import math
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from callsessions import CallSessionsClient, RateLimitedError, RetryPolicy
from callsessions.sim import FaultConfig, SimServer

from ._ratelimit_common import (
    BAND,
    DEFAULT_CONCURRENCY,
    LATENCY,
    LEARN_S,
    PAGE,
    SAMPLE_S,
    SLOW,
    Sample,
    log,
    outcome,
    sample,
    sim_config,
    the_query,
    timeout_for,
)
from ._ratelimit_old import OLD, OLD_CHILD, OLD_REF, old_pull, old_source
from ._ratelimit_report import change_table, fmt, label, lag, table, verdict

# Parts live in the modules above; their names stay importable from here.
__all__ = [
    "BAND",
    "DEFAULT_CONCURRENCY",
    "LATENCY",
    "LEARN_S",
    "OLD",
    "OLD_CHILD",
    "OLD_REF",
    "PAGE",
    "PROFILES",
    "SAMPLE_S",
    "SLOW",
    "Sample",
    "StandInLimiter",
    "bucket_row",
    "change_table",
    "fmt",
    "follow",
    "label",
    "lag",
    "log",
    "main",
    "measure_bucket",
    "measure_change",
    "old_pull",
    "old_source",
    "outcome",
    "pull_once",
    "run_all",
    "sample",
    "sim_config",
    "table",
    "the_query",
    "timeout_for",
    "verdict",
]

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


# -- one pull ------------------------------------------------------------------------------


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
        # before issue 11 a pull started with all of its concurrency in flight
        seam = {"rate_limiter": StandInLimiter(), "retry": RetryPolicy(attempts=6),
                "initial_concurrency": None}
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
