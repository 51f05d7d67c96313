"""Other ways to run the arq window jobs, against a real redis-server and the simulator:
under arq's own worker with credentials from the environment, parquet parts through the
caller's Redis client, a worker that cannot see the directory, no workers at all, and no
arq at all (a task group of ``pull_window``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq import Retry
from arq.connections import RedisSettings
from arq.constants import result_key_prefix
from arq.worker import create_worker as arq_create_worker

from callsessions import CallSessionsClient
from callsessions.sim import SimServer
from callsessions.sinks import (
    PartInfo,
    read_ids,
    window_key,
    write_manifest,
)
from callsessions.workers.arq import (
    JOB_NAME,
    WorkerSettings,
    WorkerState,
    close_worker,
    loads,
    pull_window_job,
    run_distributed,
)
from callsessions.workers.jobs import JobSpec
from callsessions.workers.window import (
    WindowFailedError,
    pull_window,
)

from ._arq_support import FAST, attrs_evolve, make_plan, worker


async def test_worker_settings_run_under_arqs_own_worker_with_env_credentials(
    sim: SimServer, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = (await make_plan(sim)).select([0, 1])
    monkeypatch.setenv("CALLSESSIONS_BASE_URL", sim.url)
    monkeypatch.setenv("CALLSESSIONS_TOKEN", sim.token)
    assert [getattr(f, "name", None) for f in WorkerSettings.functions] == [JOB_NAME]
    coordinator = asyncio.ensure_future(
        run_distributed(plan, redis_url, tmp_path, poll_interval=0.05)
    )
    client = aioredis.Redis.from_url(redis_url)
    try:
        for _ in range(500):  # the coordinator enqueues first: a burst worker would see none
            if await client.zcard(WorkerSettings.queue_name):
                break
            await asyncio.sleep(0.02)
        w = arq_create_worker(WorkerSettings, redis_settings=RedisSettings.from_dsn(redis_url),
                              burst=True, handle_signals=False, poll_delay=0.05)
        await w.async_run()
        await close_worker(w)
        summary = await coordinator
        truth = sum(sim.matching_count({"from": x.start.isoformat(), "to": x.end.isoformat()})
                    for x in plan.windows)
        assert summary.ok and summary.records == truth
        results = await client.keys(result_key_prefix + "callsessions:*")
        assert len(results) == 2  # arq kept both results, as JSON
        stored = [loads(await client.get(k)) for k in results]
        assert [r["s"] for r in stored] == [True, True]
    finally:
        await client.aclose()

async def test_parquet_parts_through_the_callers_redis_client(
    sim: SimServer, redis_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    plan = (await make_plan(sim)).select([0, 1])
    async with worker(redis_url, sim):
        summary = await run_distributed(plan, redis_client, tmp_path, format="parquet",
                                        poll_interval=0.05)
    assert summary.ok, summary.lines()
    assert sorted(p.name for p in tmp_path.glob("part-*")) == sorted(
        f"part-{window_key(w)}.parquet" for w in plan.windows
    )
    truth = sorted(sim.matching_ids({"from": plan.windows[0].start.isoformat(),
                                     "to": plan.windows[-1].end.isoformat()}))
    assert sorted(read_ids(tmp_path)) == truth
    assert await redis_client.ping()  # the caller's client is still open


async def test_a_worker_that_cannot_see_the_directory_says_so(
    sim: SimServer, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    plan = (await make_plan(sim)).select([0])
    key = window_key(plan.windows[0])
    spec = JobSpec(plan=plan.to_json().decode(), window=key, out=str(tmp_path / "elsewhere"),
                   format="jsonl", progress="callsessions:progress:test").to_json()
    config = attrs_evolve(FAST, max_tries=2)
    sim.stats.reset()  # forget the planning requests
    async with CallSessionsClient(sim.url, token=sim.token) as client:
        ctx: dict[str, Any] = {"redis": redis_client, "job_id": "j", "job_try": 1,
                               "callsessions": WorkerState(config, client, "h:1", None)}
        with pytest.raises(Retry):  # a try with tries left: arq runs it again
            await pull_window_job(ctx, spec)
        ctx["job_try"] = 2
        with pytest.raises(WindowFailedError, match=r"is not on h:1.*same path") as failed:
            await pull_window_job(ctx, spec)
    assert failed.value.window == key
    assert sim.stats.search_requests == 0  # nothing was pulled for nothing


async def test_without_workers_windows_are_pending_and_the_rerun_waits_for_the_same_jobs(
    sim: SimServer, redis_url: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    plan = (await make_plan(sim)).select([0, 1])
    first = await run_distributed(plan, redis_url, tmp_path, poll_interval=0.05, max_wait=0.3)
    assert first.exit_code == 1 and first.enqueued == 2
    assert [r for _, r in first.failed] == ["pending: no result before timeout"] * 2
    assert await redis_client.zcard("callsessions:queue") == 2  # the jobs stay queued
    async with worker(redis_url, sim):
        second = await run_distributed(plan, redis_url, tmp_path, poll_interval=0.05)
    assert second.ok and second.enqueued == 0  # the queued jobs were not enqueued twice
    assert await redis_client.zcard("callsessions:queue") == 0


async def test_without_arq_a_task_group_of_pull_window_gives_the_same_dataset(
    sim: SimServer, tmp_path: Path
) -> None:
    """The README's arq-free recipe: one ``pull_window`` per window, then the manifest."""
    plan = await make_plan(sim)
    async with CallSessionsClient(sim.url, token=sim.token) as client, asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(pull_window(client, plan.select([i]), tmp_path))
                 for i in range(len(plan.windows))]
    results = [t.result() for t in tasks]
    write_manifest(tmp_path, [PartInfo(r.window, r.file, r.records) for r in results],
                   fields=plan.query.fields, format="jsonl")
    assert plan.query.start is not None and plan.query.end is not None
    truth = sim.matching_ids({"from": plan.query.start.isoformat(),
                              "to": plan.query.end.isoformat()})
    assert sorted(read_ids(tmp_path)) == sorted(truth)
    assert all(r.count == r.records for r in results)
