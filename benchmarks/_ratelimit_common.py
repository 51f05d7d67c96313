"""What the pulls of ``benchmarks.ratelimit`` share: the constants, the simulator's
configuration and query, the sampler of the learned rate and the verdict of one pull."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from callsessions import CallSessionsClient, SessionQuery
from callsessions.sim import SimConfig, SimServer

from ._sim import SIM_SPAN, SIM_START

PAGE = 250
BAND = 0.25  # "the learned rate follows": within 25 % of the server's rate
SAMPLE_S = 0.05  # how often the learned rate and the simulator's counters are sampled
LEARN_S = 5.0  # 429s within this time of the first one count as learning the rate
DEFAULT_CONCURRENCY = 8  # ClientConfig().concurrency, shown in the table
#: the client with ``initial_concurrency=1`` (``--slow-start``)
SLOW = "slow start"
Sample = tuple[float, float | None, int, int]  # (seconds, learned rate, 200s, 429s)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
