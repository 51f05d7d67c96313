"""``callsessions count [--plan]``: how many calls match, and what a pull of them would do.

Without ``--plan`` one request (a page of one record) gives the number, printed alone on
stdout. With ``--plan`` the client plans the pull exactly as ``pull`` would (the same
options, the same planner) and the plan is described: windows, pages, page requests, the
planning requests it took, and an estimate of the pages' time: rounds of ``--concurrency``
requests at the round trip measured on the count request. A dry run: only the planner's
requests are sent (counts of one record, and the range's first page, with which it counts
the range). The estimate is a floor for large pages, whose bodies take longer to
transfer and parse than a one-record answer.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from callsessions.cli.lines import EXIT_FAILURE, EXIT_OK, CommandError, plural
from callsessions.cli.options import Credentials, base_url_of, config_from, query_from
from callsessions.cli.run import prepared, run_command

if TYPE_CHECKING:
    from callsessions import ClientConfig, PullPlan, SessionQuery

__all__ = ["cmd_count", "describe_plan", "plan_figures"]


def plan_figures(plan: PullPlan, concurrency: int, latency: float) -> dict[str, Any]:
    """What a pull of ``plan`` would send: pages per window as the engine requests them
    (at least one per window, none past the offset ceiling), and the estimate."""
    size, ceiling = plan.settings.page_size, plan.settings.offset_ceiling
    pages = sum(
        math.ceil(min(max(w.count or 0, 1), ceiling) / size) for w in plan.windows
    )
    rounds = math.ceil(pages / concurrency) if pages else 0
    return {
        "count": plan.estimated_total,
        #: some windows' counts are shares of a counted bucket: the pages are approximate
        "estimated": any(w.estimated for w in plan.windows),
        "windows": len(plan.windows),
        "page_size": size,
        "pages": pages,
        "page_requests": pages,
        "planning_requests": plan.planning_requests,
        "concurrency": concurrency,
        "latency_seconds": round(latency, 4),
        "estimated_seconds": round(rounds * latency, 2),
    }


def describe_plan(figures: dict[str, Any]) -> list[str]:
    """The plan's figures as lines for a person."""
    latency_ms = figures["latency_seconds"] * 1000
    about = "~" if figures["estimated"] else ""
    windows = plural(figures["windows"], "window")
    pages = about + plural(figures["pages"], "page")
    requests = about + plural(figures["page_requests"], "page request")
    planning = plural(figures["planning_requests"], "request")
    return [
        f"plan: {windows}, {pages} of up to {figures['page_size']:,} records: {requests} "
        f"(planning took {planning})",
        f"estimate: ~{figures['estimated_seconds']:.1f}s for the pages at "
        f"{figures['concurrency']} in flight and {latency_ms:.0f} ms a request (the round trip "
        "of the count; full pages take longer, and 429s slow a pull down)",
    ]


async def _count(
    base_url: str, credentials: Credentials, config: ClientConfig, query: SessionQuery,
    plan: bool,
) -> dict[str, Any]:
    from callsessions import CallSessionsClient

    async with CallSessionsClient(base_url, auth=credentials.auth(), config=config) as client:
        started = time.monotonic()
        total = await client.count(query)
        latency = time.monotonic() - started
        if total is None:
            raise CommandError("the service answered without a count", EXIT_FAILURE)
        result: dict[str, Any] = {
            "count": total,
            # a search index caps its totals at the offset ceiling: then it is a lower bound
            "at_least": total == config.offset_ceiling,
        }
        if plan:
            made = await client.plan(query)
            result["plan"] = plan_figures(made, config.concurrency, latency)
        return result


def _print(result: dict[str, Any], as_json: bool, quiet: bool) -> None:
    if as_json:
        import orjson

        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    print(result["count"])
    if quiet:
        return
    if result["at_least"]:
        print("(at least: the count reaches the offset ceiling, where search indexes cap totals)")
    if "plan" in result:
        figures = result["plan"]
        if figures["count"] != result["count"]:
            print(f"({figures['count']:,} by the plan's counts of its parts)")
        for line in describe_plan(figures):
            print(line)
    sys.stdout.flush()


def cmd_count(ns: argparse.Namespace) -> int:
    """``callsessions count``."""

    def prepare() -> tuple[str, Credentials, ClientConfig, SessionQuery]:
        query = query_from(ns)
        config = config_from(ns)
        base_url = base_url_of(ns, os.environ)
        if ns.plan:
            from callsessions import CallSessionsClient

            # what a pull refuses (a --sort it cannot walk), refused before any request
            CallSessionsClient(base_url, token="x", config=config).pull_query(query)
        return base_url, Credentials.from_environment(ns.auth_url, os.environ), config, query

    base_url, credentials, config, query = prepared(prepare)

    async def work() -> int:
        result = await _count(base_url, credentials, config, query, ns.plan)
        _print(result, ns.json, ns.quiet)
        return EXIT_OK

    return run_command(ns, work, lambda: "interrupted")
