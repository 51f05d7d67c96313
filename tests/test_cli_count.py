"""``callsessions count`` and ``count --plan`` (issue 14, point 4): the number of matching
calls in one request, and a dry run of a pull that sends only counting requests and whose
windows and page requests are those the pull then makes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from _cli_support import (
    END,
    START,
    arun,
    environment_fixture,  # noqa: F401  (the fixture "environment")
    pull_args,
    sim_config,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
)

from callsessions.sim import FaultConfig, SimServer


def count_args(url: str, *extra: object, start: str = START.isoformat(),
               end: str = END.isoformat()) -> list[object]:
    return ["count", "--base-url", url, "--from", start, "--to", end, "--retry-wait", 0, *extra]


async def test_count_prints_the_number_after_one_request(
    sim: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await arun(capsys, *count_args(sim.url, "--status", "ANSWERED"))
    assert result.code == 0, result.err
    assert result.out == f"{len(truth(sim, status='ANSWERED'))}\n"
    assert sim.stats.search_requests == 1
    (request,) = sim.stats.log
    assert request.params["limit"] == "1" and request.params["status"] == "ANSWERED"


async def test_count_plan_is_a_dry_run_that_predicts_the_pull(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pace = ["--page-size", 200, "--offset-ceiling", 1_000, "--concurrency", 4]
    result = await arun(capsys, *count_args(sim.url, "--plan", "--json", *pace))
    assert result.code == 0, result.err
    data = json.loads(result.out)
    plan = data["plan"]
    assert data["count"] == plan["count"] == len(truth(sim))
    assert plan["windows"] > 1 and plan["page_size"] == 200
    assert plan["planning_requests"] > 1  # the total, then the buckets
    assert plan["estimated_seconds"] >= 0 and plan["latency_seconds"] > 0
    # Only planning requests: counts of one record, and the planner counts the range with
    # the request of its first page (which a pull of one window would use as its first).
    pages = [r for r in sim.stats.log if r.params["limit"] != "1"]
    assert len(pages) <= 1 and all(r.params["offset"] == "0" for r in pages)
    assert sim.stats.search_requests == 1 + plan["planning_requests"]

    before = sim.stats.search_requests
    report = tmp_path / "summary.json"
    pulled = await arun(
        capsys, *pull_args(sim.url, tmp_path / "calls.jsonl", "--quiet", summary_json=report,
                           concurrency=4)
    )
    assert pulled.code == 0, pulled.err
    summary = json.loads(report.read_text())
    assert summary["windows"] == plan["windows"]
    assert sim.stats.search_requests - before == summary["requests"]
    assert summary["planning_requests"] >= plan["planning_requests"]  # + splits while pulling
    # Windows laid out from bucket counts hold estimated counts: the pages are close.
    assert plan["estimated"] is True
    pages = summary["requests"] - summary["planning_requests"]
    assert abs(pages - plan["page_requests"]) <= max(2, plan["page_requests"] // 4), (pages, plan)


@pytest.mark.parametrize(
    ("options", "planning"),
    [((), "planning took 5 requests)"), (("--no-count-ahead",), "planning took 1 request)")],
    ids=["count-ahead", "no-count-ahead"],
)
async def test_count_plan_for_people_says_one_window_not_one_windows(
    sim: SimServer, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], planning: str
) -> None:
    """A range in one window: its first page counts it; by default four bucket counts went
    with it (in case it needed windows), and the plan says what planning cost."""
    hour = (START + timedelta(hours=1)).isoformat()
    result = await arun(capsys, *count_args(sim.url, "--plan", *options, end=hour))
    assert result.code == 0, result.err
    number, plan_line, estimate = result.out.splitlines()
    assert int(number) == len(sim.matching_ids({"from": START.isoformat(), "to": hour}))
    assert plan_line.startswith("plan: 1 window, 1 page of up to 1,000 records: 1 page request")
    assert planning in plan_line
    assert estimate.startswith("estimate: ~") and " 8 in flight" in estimate


async def test_count_plan_refuses_what_a_pull_refuses_before_any_request(
    sim: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await arun(capsys, *count_args(sim.url, "--plan", "--sort=-duration"))
    assert result.code == 2
    assert "--sort" in result.err and "sort the output afterwards" in result.err
    assert "fetch_page" not in result.err and len(result.err_lines) == 1
    assert sim.stats.total == 0


async def test_count_at_the_ceiling_is_a_lower_bound(capsys: pytest.CaptureFixture[str]) -> None:
    async with SimServer(sim_config(faults=FaultConfig(count_cap=1_000))) as capped:
        result = await arun(capsys, *count_args(capped.url, "--offset-ceiling", 1_000))
    assert result.code == 0, result.err
    number, note = result.out.splitlines()
    assert number == "1000" and note.startswith("(at least")


async def test_count_without_a_service_or_credentials_exits_2(
    sim: SimServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_url = await arun(capsys, "count", "--from", START.isoformat(), "--to", END.isoformat())
    assert no_url.code == 2 and "--base-url" in no_url.err and "CALLSESSIONS_BASE_URL" in no_url.err
    monkeypatch.delenv("CALLSESSIONS_TOKEN")
    no_token = await arun(capsys, *count_args(sim.url))
    assert no_token.code == 2 and "CALLSESSIONS_TOKEN" in no_token.err
    assert sim.stats.total == 0
