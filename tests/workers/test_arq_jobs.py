"""The arq window job and the coordinator, in one process: a real redis-server, the simulator
on the test's loop and arq workers on the same loop (the multi-process tests are in
``test_arq_distributed.py``). Retries, permanent failures, the lease, idempotent enqueueing,
the directory checks and the JSON job format."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import redis.asyncio as aioredis
from arq import Retry
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix, result_key_prefix
from arq.worker import create_worker as arq_create_worker

from callsessions import CallSessionsClient, PullPlan, RetryPolicy, SessionQuery
from callsessions.sim import FaultConfig, SimConfig, SimServer
from callsessions.sinks import (
    OutputMismatchError,
    PartInfo,
    read_ids,
    read_manifest,
    window_key,
    write_manifest,
)
from callsessions.workers.arq import (
    JOB_NAME,
    WorkerConfig,
    WorkerSettings,
    WorkerState,
    close_worker,
    create_worker,
    dumps,
    loads,
    pull_window_job,
    run_distributed,
)
from callsessions.workers.jobs import JobSpec, error_text
from callsessions.workers.progress import (
    DistributedProgress,
    ProgressBar,
    WindowProgress,
    snapshot,
)
from callsessions.workers.window import (
    WindowFailedError,
    destination_hash,
    job_id_for,
    plan_fingerprint,
    pull_window,
)

FIELDS = ["id", "createdAt", "status"]
FAST = WorkerConfig(
    concurrency=2,
    request_concurrency=2,
    max_tries=3,
    retry_defer=0.0,
    lease=5.0,
    poll_delay=0.05,
    progress_interval=0.0,
    http_retry=RetryPolicy.no_wait(attempts=2),
)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(records=3_000, seed=7, offset_ceiling=1_000)) as server:
        yield server


def query(sim: SimServer) -> SessionQuery:
    return SessionQuery(
        start=sim.config.start, end=sim.config.start + sim.config.span,
        fields=FIELDS, page_size=250,
    )


async def make_plan(sim: SimServer) -> PullPlan:
    async with CallSessionsClient(sim.url, token=sim.token, offset_ceiling=1_000) as client:
        return await client.plan(query(sim))


@contextlib.asynccontextmanager
async def worker(
    redis_url: str, sim: SimServer, config: WorkerConfig = FAST, token: str | None = None
) -> AsyncIterator[Any]:
    """An arq worker for this package's jobs, running on the test's loop until the block ends."""
    w = create_worker(
        redis_url, base_url=sim.url, token=token or sim.token, config=config,
        handle_signals=False,
    )
    task = asyncio.ensure_future(w.async_run())
    try:
        yield w
    finally:
        w.handle_sig(signal.SIGUSR1)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await close_worker(w)


async def all_keys_and_values(client: aioredis.Redis) -> bytes:
    """Every key and every value in Redis, as one blob to search."""
    blob = b""
    for key in await client.keys("*"):
        kind = (await client.type(key)).decode()
        blob += key + b"\n"
        if kind == "string":
            blob += await client.get(key) or b""
        elif kind == "hash":
            for f, v in (await client.hgetall(key)).items():  # type: ignore[misc]
                blob += f + b"=" + v + b"\n"
        elif kind == "zset":
            blob += b" ".join(await client.zrange(key, 0, -1))
        else:
            raise AssertionError(f"unexpected {kind} key {key!r}")
    return blob


# -- pure parts ---------------------------------------------------------------------------


async def test_job_ids_derive_from_plan_and_window(sim: SimServer, tmp_path: Path) -> None:
    plan = await make_plan(sim)
    again = PullPlan.from_json(plan.to_json())
    assert plan_fingerprint(again) == plan_fingerprint(plan)
    other = plan.select(range(len(plan.windows) - 1))
    assert plan_fingerprint(other) != plan_fingerprint(plan)
    dest = destination_hash(tmp_path, "jsonl")
    assert dest != destination_hash(tmp_path / "b", "jsonl")
    assert dest != destination_hash(tmp_path, "parquet")
    key = window_key(plan.windows[0])
    assert job_id_for(plan_fingerprint(plan), dest, key) == (
        f"callsessions:{plan_fingerprint(plan)}:{dest}:{key}"
    )


def test_jobs_and_results_are_json_with_errors_readable() -> None:
    raw = dumps({"s": False, "r": ValueError("window x: boom"), "a": ({"k": 1},)})
    data = loads(raw)
    assert data == {"s": False, "r": {"error": "ValueError", "message": "window x: boom"},
                    "a": [{"k": 1}]}
    assert error_text(data["r"]) == "window x: boom"
    assert error_text({"error": "TimeoutError", "message": ""}) == "TimeoutError"
    with pytest.raises(ValueError, match="not a callsessions window job"):
        JobSpec.from_json({"version": 1, "plan": "", "window": "w", "out": "o",
                           "format": "jsonl", "progress": "p"})


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    config = WorkerConfig(retry_defer=2.0, retry_defer_max=5.0)
    assert [config.backoff(t, lambda: 0.0) for t in (1, 2, 3, 4)] == [2.0, 4.0, 5.0, 5.0]
    assert config.backoff(1, lambda: 1.0) == 3.0
    assert WorkerConfig(retry_defer=0.0).backoff(3) == 0.0


def test_progress_snapshot_counts_running_and_finished_and_ignores_stale_workers() -> None:
    now = 1000.0
    progress = {
        "a": WindowProgress("done", 10, "h:1", 1, throttled=2, updated=now - 5),
        "b": WindowProgress("running", 4, "h:1", 2, updated=now - 1, rate=3.0),
        "c": WindowProgress("running", 7, "h:2", 1, updated=now - 100),  # killed worker
    }
    snap = snapshot(progress, {"a": 10}, planned=30, windows=3, failed=0, stale_after=60,
                    now=now)
    assert (snap.records, snap.windows_done, snap.workers_active) == (21, 1, 1)
    assert (snap.throttled, snap.retries, snap.rate) == (2, 1, 3.0)


def test_progress_bar_shows_records_windows_workers_and_throttling() -> None:
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(DistributedProgress(records=500, planned=1000, windows=4, windows_done=2,
                            windows_failed=1, workers_active=3, throttled=7, rate=9.5,
                            retries=0))
    bar.close()
    text = out.getvalue()
    assert "500/1.00k" in text and "windows 2/4, workers 3, 1 failed, 7 throttled at 9.5/s" in text


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


def attrs_evolve(config: WorkerConfig, **changes: Any) -> WorkerConfig:
    return attrs.evolve(config, **changes)


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
