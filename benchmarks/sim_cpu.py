"""CPU of the simulator per 1000-record list page (issue 15), against ``orjson.dumps``.

Run from the repository root::

    .venv/bin/python -m benchmarks.sim_cpu                 # about a minute on 2 cores
    .venv/bin/python -m benchmarks.sim_cpu --quick         # shorter
    .venv/bin/python -m benchmarks.sim_cpu --sim-path DIR  # the HTTP part against another
                                                           # copy of callsessions/sim in DIR

Every page is a *miss* of the simulator's page cache (distinct offsets). Figures are
milliseconds of CPU per page (median over ``--repeats``, with the spread ``(max - min) /
median``); the same-run baseline is ``orjson.dumps`` of the same page's records as dicts,
built beforehand (the encoder alone: what a server that kept its documents as dicts would
pay at least).

1. **In process** (``time.process_time``), for all 29 fields, six fields and ``id,createdAt``:
   ``dicts`` builds each record with ``Dataset.record``, projects it and encodes the page
   with orjson: the simulator's path before the list renderer, kept for downloads and the
   ground truth (same bytes); ``render, cold`` is ``SimState.page_body`` on a fresh
   simulator (nothing rendered yet); ``render, cached`` the same pages shifted by half a
   page (a page-cache miss whose records were rendered before).
2. **Over HTTP**: the simulator as a child process (``python -m callsessions.sim``), pages
   requested one at a time with aiohttp, its CPU read from ``/proc/PID/stat`` (10 ms ticks:
   use enough pages): cold, cached (shifted), and with ``--record-cache-mb 0`` (shifted).
   ``--sim-path DIR`` runs the simulator found in ``DIR`` (e.g. an older copy: then the
   cache-off row is skipped, as an older simulator may not know the option).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from callsessions.sim import FIELDS, SimConfig, SimState

from ._sim import SIM_SPAN, SIM_START, SimProcess, install_cleanup

PAGE = 1000
SEARCH_PATH = "/api/v1/search/cis/calls"
PROJECTIONS: dict[str, tuple[str, ...]] = {
    "all 29 fields": FIELDS,
    "6 fields": ("id", "phone", "status", "createdAt", "duration", "price"),
    "id,createdAt": ("id", "createdAt"),
}


def _stats(values: list[float]) -> dict[str, float]:
    median = statistics.median(values)
    return {"median": median, "spread": (max(values) - min(values)) / median if median else 0.0}


def _per_page(run: Callable[[], int]) -> float:
    """CPU milliseconds per page of ``run`` (which returns how many pages it made)."""
    t0 = time.process_time()
    pages = run()
    return (time.process_time() - t0) / pages * 1e3


def _params(fields: tuple[str, ...], offset: int) -> dict[str, str]:
    return {"fields": ",".join(fields), "limit": str(PAGE), "offset": str(offset)}


def _projection(state_of: Callable[[], SimState], fields: tuple[str, ...], pages: int,
                repeats: int) -> dict[str, dict[str, float]]:
    """Section 1 for one projection: every variant, ``repeats`` times round-robin."""
    dataset = state_of().dataset
    records = dataset.count
    offsets = [i * PAGE for i in range(pages)]
    pages_of_rids = [dataset.order[o : o + PAGE].tolist() for o in offsets]
    built = [[{f: r[f] for f in fields} for r in map(dataset.record, rids)]
             for rids in pages_of_rids]

    def encode_only() -> int:
        for items in built:
            orjson.dumps({"count": records, "items": items})
        return pages

    def dicts() -> int:
        for rids in pages_of_rids:
            items = [{f: r[f] for f in fields} for r in map(dataset.record, rids)]
            orjson.dumps({"count": records, "items": items})
        return pages

    times: dict[str, list[float]] = {"orjson.dumps": [], "dicts": [], "render, cold": [],
                                     "render, cached": []}
    for _ in range(repeats):
        state = state_of()
        state.page_body(_params(fields, records - PAGE))  # warm up the code paths

        def cold(state: SimState = state) -> int:
            for offset in offsets:
                state.page_body(_params(fields, offset))
            return len(offsets)

        def cached(state: SimState = state) -> int:  # after cold(): records rendered
            for offset in offsets[:-1]:
                state.page_body(_params(fields, offset + PAGE // 2))
            return len(offsets) - 1

        times["orjson.dumps"].append(_per_page(encode_only))
        times["dicts"].append(_per_page(dicts))
        times["render, cold"].append(_per_page(cold))
        times["render, cached"].append(_per_page(cached))
    return {k: _stats(v) for k, v in times.items()}


def in_process(records: int, pages: int, repeats: int) -> dict[str, Any]:
    """Section 1: every projection (a fresh simulator per repeat, on one data set)."""
    config = SimConfig(records=records, seed=7, offset_ceiling=10_000_000)
    dataset = SimState(config).dataset
    return {name: _projection(lambda: SimState(config, dataset), fields, pages, repeats)
            for name, fields in PROJECTIONS.items()}


class _Child(SimProcess):
    """A simulator child, optionally from another directory and with extra options."""

    def __init__(self, records: int, sim_path: str | None, extra: list[str]) -> None:
        super().__init__(records, offset_ceiling=10_000_000)
        self.sim_path = sim_path
        self.extra = extra

    @property
    def argv(self) -> list[str]:
        argv = super().argv + self.extra
        if self.sim_path is None:
            return argv
        code = (f"import sys; sys.path.insert(0, {self.sim_path!r}); "
                "from callsessions.sim._cli import main; main()")
        return [sys.executable, "-c", code, *argv[3:]]


async def _fetch(url: str, token: str, offsets: list[int]) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        for offset in offsets:
            params = _params(FIELDS, offset)
            params.update({"from": SIM_START.isoformat(), "to": (SIM_START + SIM_SPAN).isoformat()})
            async with http.get(url + SEARCH_PATH, params=params, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()
    return len(offsets)


def _proc_cpu(pid: int | None) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _http_row(child: SimProcess, offsets: list[int]) -> float:
    c0 = _proc_cpu(child.pid)
    n = asyncio.run(_fetch(child.url, child.token, offsets))
    return (_proc_cpu(child.pid) - c0) / n * 1e3


def over_http(records: int, pages: int, repeats: int, sim_path: str | None) -> dict[str, Any]:
    """Section 2: the simulator's own CPU per page, all fields, one request at a time."""
    offsets = [i * PAGE for i in range(pages)]
    shifted = [o + PAGE // 2 for o in offsets[:-1]]
    times: dict[str, list[float]] = {"cold": [], "cached": []}
    if sim_path is None:
        times["cache off"] = []
    for _ in range(repeats):
        with _Child(records, sim_path, []) as child:
            asyncio.run(_fetch(child.url, child.token, [records - PAGE]))  # warm-up
            times["cold"].append(_http_row(child, offsets))
            times["cached"].append(_http_row(child, shifted))
        if sim_path is None:
            with _Child(records, None, ["--record-cache-mb", "0"]) as child:
                asyncio.run(_fetch(child.url, child.token, [records - PAGE]))
                times["cache off"].append(_http_row(child, shifted))
    return {k: _stats(v) for k, v in times.items()}


def _print(results: dict[str, Any]) -> None:
    print("\n1. in process: CPU ms per 1000-record page (page-cache misses)")
    print(f"   {'projection':16} {'variant':16} {'ms/page':>8} {'spread':>7} "
          f"{'/orjson':>8} {'dicts/this':>10}")
    for name, rows in results["in_process"].items():
        base = rows["orjson.dumps"]["median"]
        dicts = rows["dicts"]["median"]
        for variant, s in rows.items():
            print(f"   {name:16} {variant:16} {s['median']:8.2f} {s['spread']:7.0%} "
                  f"{s['median'] / base:7.2f}x {dicts / s['median']:9.2f}x")
    if "http" in results:
        print("\n2. over HTTP: the simulator's CPU ms per page, all fields, C = 1")
        for variant, s in results["http"].items():
            print(f"   {variant:16} {s['median']:8.2f} {s['spread']:7.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--pages", type=int, default=40, help="pages per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats of 20 pages")
    parser.add_argument("--no-http", action="store_true", help="skip section 2")
    parser.add_argument("--sim-path", help="run the HTTP part on the simulator in this dir")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args()
    if ns.quick:
        ns.pages, ns.repeats = 20, 3
    ns.pages = min(ns.pages, ns.records // PAGE)
    install_cleanup()
    results: dict[str, Any] = {"records": ns.records, "pages": ns.pages,
                               "repeats": ns.repeats, "command": " ".join(sys.argv)}
    results["in_process"] = in_process(ns.records, ns.pages, ns.repeats)
    if not ns.no_http:
        results["http"] = over_http(ns.records, ns.pages, ns.repeats, ns.sim_path)
    _print(results)
    if ns.json is not None:
        ns.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
