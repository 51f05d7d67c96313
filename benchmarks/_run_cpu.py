"""Measurement 3 of ``benchmarks.run``: the client's CPU per record against
``orjson.loads`` of the same pages."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import attrs
import orjson

from callsessions import ALL_FIELDS, CallSessionsClient, PullPlan, SessionQuery
from callsessions.protocol.convert import structure_sessions

from ._run_common import PAGE, SEARCH_PATH, end_for, log, stats, timed_pull
from ._sim import SIM_START, SimProcess

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
    "client_structured_gc_off",
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


def _parsers(bodies: list[bytes]) -> tuple[Callable[[], None], Callable[[], None]]:
    """The two in-memory paths over the captured pages, as ``cpu_loop`` times them:
    ``orjson.loads`` alone, and ``orjson.loads`` plus ``structure_sessions``."""

    def loads_only() -> None:
        for b in bodies:
            orjson.loads(b)

    def loads_structure() -> None:
        for b in bodies:
            structure_sessions(orjson.loads(b)["items"])

    return loads_only, loads_structure


# The client's pull paths: the ``raw`` argument of ``timed_pull`` and the key in ``PATHS``.
_CLIENT_PATHS: tuple[tuple[Any, str], ...] = (
    ("lines", "client_lines"),
    (True, "client_raw"),
    (False, "client_structured"),
)


async def _one_repeat(
    client: CallSessionsClient,
    plain: aiohttp.ClientSession,
    sim: SimProcess,
    plan: PullPlan,
    parsers: tuple[Callable[[], None], Callable[[], None]],
    n: int,
) -> tuple[dict[str, float], int]:
    """One repeat: every path of ``PATHS`` measured back to back, in CPU seconds per record
    (``n`` records in the captured pages). Returns those and the records of a client pull."""
    loads_only, loads_structure = parsers
    t = {
        "orjson_loads": sum(cpu_loop(loads_only, 2)) / (2 * n),
        "loads_plus_structure_sessions": sum(cpu_loop(loads_structure, 2)) / (2 * n),
    }
    base = await plain_fetch_loads(plain, sim.url, sim.token, plan)
    t["plain_http_plus_loads"] = base["cpu"] / base["records"]
    for raw, key in _CLIENT_PATHS:
        pull = await timed_pull(client, plan, 4, raw=raw)
        t[key] = pull["cpu"] / pull["records"]
        client_records = pull["records"]
    # Diagnosis, not a target: the same structured pull with the cyclic collector off. On
    # CPython 3.11 its collections run inside the allocations of orjson.loads and of the
    # records, while a page's thousands of young containers are all alive, and walk them;
    # the difference is what the collector costs the structured path.
    gc.disable()
    try:
        pull = await timed_pull(client, plan, 4, raw=False)
    finally:
        gc.enable()
    t["client_structured_gc_off"] = pull["cpu"] / pull["records"]
    return t, client_records


async def measure_cpu(cfg: dict[str, Any]) -> dict[str, Any]:
    """Measurement 3: CPU seconds per record of each path in ``PATHS``, and their ratios to
    ``orjson.loads`` of the same pages."""
    sim_records, repeats = cfg["sim_records"], max(cfg["repeats"], 5)
    n_pages = cfg["cpu_pages"]
    start, end = SIM_START, end_for(cfg["pages"] * PAGE, sim_records)
    log(f"  simulator: {sim_records} records, latency 0 ms")
    with SimProcess(sim_records) as sim:
        bodies = await capture_bodies(sim, start, end, n_pages)
        n = sum(len(orjson.loads(b)["items"]) for b in bodies)
        mb = sum(len(b) for b in bodies) / 1e6
        parsers = _parsers(bodies)
        for parse in parsers:
            parse()  # warm-up: allocator arenas, converter
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
                t, client_records = await _one_repeat(client, plain, sim, plan, parsers, n)
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
