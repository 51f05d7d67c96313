"""The arq window job and the coordinator, in one process: a real redis-server, the simulator
on the test's loop and arq workers on the same loop (the multi-process tests are in
``test_arq_distributed.py``): a real pull with its rerun, retries, permanent failures, the
lease, the directory checks and the reuse of a plan. (The pure parts are in
``test_arq_jobs_units.py``, other ways to run the jobs in ``test_arq_jobs_modes.py``.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix

from callsessions import CallSessionsClient, RetryPolicy
from callsessions.sim import FaultConfig, SimServer
from callsessions.sinks import (
    OutputMismatchError,
    read_manifest,
    window_key,
)
from callsessions.workers.arq import (
    run_distributed,
)
from callsessions.workers.window import (
    destination_hash,
    job_id_for,
    plan_fingerprint,
)

from ._arq_support import FAST, all_keys_and_values, attrs_evolve, make_plan, query, worker

# -- against redis-server and the simulator -------------------------------------------------


async def test_pull_is_exact_holds_no_secret_and_a_rerun_enqueues_nothing(
    sim: SimServer, redis_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    plan = await make_plan(sim)
    assert len(plan.windows) >= 4
    out = tmp_path / "calls"
    async with worker(redis_url, sim):
        summary = await run_distributed(plan, redis_url, out, poll_interval=0.05)
    assert summary.ok, summary.lines()
    assert (summary.windows, summary.done, summary.enqueued) == (len(plan.windows),) * 3
    assert plan.query.start is not None and plan.query.end is not None
    expected = sim.matching_ids({"from": plan.query.start.isoformat(),
                                 "to": plan.query.end.isoformat()})
    ids = [orjson.loads(line)["id"] for f in sorted(out.glob("part-*.jsonl"))
           for line in f.read_bytes().splitlines()]
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)
    manifest = read_manifest(out)
    assert manifest.metadata["complete"] is True
    assert manifest.metadata["plan_fingerprint"] == plan_fingerprint(plan)
    entries = manifest.metadata["windows"]
    assert [e["status"] for e in entries] == ["done"] * len(plan.windows)
    for entry, w in zip(entries, plan.windows, strict=True):
        truth = sim.matching_count({"from": w.start.isoformat(), "to": w.end.isoformat()})
        assert entry["count"] == entry["records"] == truth
        assert entry["planned"] == w.count  # the plan's estimate (split windows: a guess)
    blob = await all_keys_and_values(redis_client)
    assert sim.token.encode() not in blob and sim.token.split(".")[-1].encode() not in blob
    assert b"callsessions:progress:" in blob  # the scan saw the progress hash

    # Again: every window is proven done (results in Redis): nothing is enqueued or fetched.
    sim.stats.reset()
    async with worker(redis_url, sim):
        again = await run_distributed(plan, redis_url, out, poll_interval=0.05)
    assert again.ok and (again.enqueued, again.skipped) == (0, len(plan.windows))
    assert sim.stats.search_requests == 0

    # And with the results gone (expired), the previous manifest is the evidence.
    await redis_client.flushall()
    async with worker(redis_url, sim):
        third = await run_distributed(plan, redis_url, out, poll_interval=0.05)
    assert third.ok and third.enqueued == 0 and sim.stats.search_requests == 0
    def plain(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "tries"} for e in windows]

    assert plain(read_manifest(out).metadata["windows"]) == plain(entries)  # counts kept


async def test_a_transient_error_is_retried_to_its_bound_reported_and_rerun(
    sim: SimServer, redis_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    plan = (await make_plan(sim)).select([0, 1])
    sim.set_faults(FaultConfig(fail_first=10**6))  # every request: 503
    async with worker(redis_url, sim):
        summary = await run_distributed(plan, redis_url, tmp_path, poll_interval=0.05)
    assert not summary.ok and summary.exit_code == 1
    keys = [window_key(w) for w in plan.windows]
    assert [k for k, _ in summary.failed] == keys
    assert all("ServerError" in r and "(try 3)" in r for _, r in summary.failed)
    assert summary.retries == 2 * 2  # two windows, three tries each
    lines = summary.lines()
    assert all(any(k in line for line in lines[1:]) for k in keys)
    manifest = read_manifest(tmp_path)
    assert manifest.metadata["complete"] is False and manifest.parts == ()
    assert {e["status"] for e in manifest.metadata["windows"]} == {"failed"}
    assert not list(tmp_path.glob("part-*"))

    sim.set_faults(FaultConfig())
    async with worker(redis_url, sim):
        rerun = await run_distributed(plan, redis_url, tmp_path, poll_interval=0.05)
    assert rerun.ok and rerun.enqueued == 2 and rerun.retries == 0
    assert read_manifest(tmp_path).metadata["complete"] is True


async def test_a_window_that_fails_once_is_retried_by_arq(
    sim: SimServer, redis_url: str, tmp_path: Path
) -> None:
    plan = (await make_plan(sim)).select([0])
    sim.set_faults(FaultConfig(fail_first=1))  # the first request: 503, and no HTTP retry
    config = attrs_evolve(FAST, request_concurrency=1, http_retry=RetryPolicy.never())
    async with worker(redis_url, sim, config):
        summary = await run_distributed(plan, redis_url, tmp_path, poll_interval=0.05)
    assert summary.ok and summary.retries == 1 and summary.records == 727
    assert sim.stats.faults["fail_first"] == 1


async def test_a_permanent_error_fails_at_once(
    sim: SimServer, redis_url: str, tmp_path: Path
) -> None:
    plan = (await make_plan(sim)).select([0])
    async with worker(redis_url, sim, token="not-a-valid-token"):
        summary = await run_distributed(plan, redis_url, tmp_path, poll_interval=0.05)
    ((key, reason),) = summary.failed
    assert key == window_key(plan.windows[0])
    assert "AuthenticationError" in reason and "(try 1)" in reason
    assert "not-a-valid-token" not in reason and summary.retries == 0


async def test_the_job_holds_a_short_lease_instead_of_arqs_long_in_progress_key(
    sim: SimServer, redis_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    plan = (await make_plan(sim)).select([0])
    sim.latency = 0.3
    job_id = job_id_for(plan_fingerprint(plan), destination_hash(tmp_path, "jsonl"),
                        window_key(plan.windows[0]))
    config = attrs_evolve(FAST, lease=2.0, request_concurrency=1)
    async with worker(redis_url, sim, config):
        task = asyncio.ensure_future(
            run_distributed(plan, redis_url, tmp_path, poll_interval=0.05)
        )
        ttls = []
        while not task.done():
            ttl = await redis_client.pttl(in_progress_key_prefix + job_id)
            if ttl > 0:
                ttls.append(ttl)
            await asyncio.sleep(0.05)
        summary = await task
    assert summary.ok
    # arq alone would hold it for job_timeout + 10 s (1870 s here): the lease is 2 s.
    assert ttls and max(ttls) <= 2000
    assert await redis_client.exists(in_progress_key_prefix + job_id) == 0


async def test_directory_with_other_parts_or_files_is_refused(
    sim: SimServer, redis_url: str, tmp_path: Path
) -> None:
    plan = await make_plan(sim)
    (tmp_path / "part-20200101T000000Z_20200102T000000Z.jsonl").write_text("")
    with pytest.raises(OutputMismatchError, match="not this plan's jsonl parts"):
        await run_distributed(plan, redis_url, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputMismatchError, match="not parts of a call-session dataset"):
        await run_distributed(plan, redis_url, other)


async def test_a_query_is_planned_once_and_its_plan_reused_by_the_next_run(
    sim: SimServer, redis_url: str, tmp_path: Path
) -> None:
    async with (
        CallSessionsClient(sim.url, token=sim.token, offset_ceiling=1_000) as client,
        worker(redis_url, sim),
    ):
            first = await run_distributed(query(sim), redis_url, tmp_path, client=client,
                                          poll_interval=0.05)
            sim.stats.reset()
            second = await run_distributed(query(sim), redis_url, tmp_path, client=client,
                                           poll_interval=0.05)
    assert first.ok and second.ok and second.fingerprint == first.fingerprint
    assert second.enqueued == 0 and sim.stats.search_requests == 0  # no planning either
