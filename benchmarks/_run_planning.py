"""Measurement 5 of ``benchmarks.run``: the planning requests of a large pull against
its page requests."""

from __future__ import annotations

import time
from typing import Any

from callsessions import CallSessionsClient, SessionQuery

from ._run_common import log, timed_pull
from ._sim import SIM_SPAN, SIM_START, SimProcess

# -- measurement 5: planning cost ---------------------------------------------------------


async def measure_planning(cfg: dict[str, Any]) -> dict[str, Any]:
    records = cfg["planning_records"]
    log(f"  simulator: {records} records, latency 0 ms, default ceiling")
    with SimProcess(records) as sim:
        # fields=id and raw records: the request count does not depend on them, the time does
        query = SessionQuery(start=SIM_START, end=SIM_START + SIM_SPAN, fields=("id",))
        async with CallSessionsClient(sim.url, token=sim.token) as client:
            t0 = time.perf_counter()
            plan = await client.plan(query)
            plan_wall = time.perf_counter() - t0
            pull = await timed_pull(client, plan, 8, raw=True)
    page_requests = pull["requests"] - pull["planning_requests"]
    planning = plan.planning_requests + pull["planning_requests"]
    return {
        "records": pull["records"],
        "plan_planning_requests": plan.planning_requests,
        "plan_windows": len(plan.windows),
        "pull_planning_requests": pull["planning_requests"],
        "pull_splits": pull["splits"],
        "pull_windows": pull["windows"],
        "page_requests": page_requests,
        "planning_share": planning / page_requests,
        "plan_wall": plan_wall,
        "pull_wall": pull["wall"],
        "complete": pull["complete"],
    }
