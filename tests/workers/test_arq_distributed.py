"""Issue 13's acceptance: three worker processes (``python -m callsessions.workers worker``)
and the coordinator on a real redis-server, against the simulator (served from a background
thread of this process). 60,000 records exact across every part; a worker SIGKILLed in the
middle of a window; a job whose loop raises; a window that keeps failing, then a rerun that
pulls only it; three workers under one per-token bucket of 10 requests/s. No token in Redis
or in the workers' logs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis

from callsessions import CallSessionsClient, PullPlan, SessionQuery
from callsessions.sim import FaultConfig, SimConfig
from callsessions.sinks import read_ids, read_manifest, window_key
from callsessions.testing import SimFactory, SimHandle
from callsessions.workers.arq import run_distributed
from callsessions.workers.jobs import loads
from callsessions.workers.progress import DistributedProgress, progress_key, read_progress
from callsessions.workers.window import destination_hash, plan_fingerprint

RECORDS = 60_000
CEILING = 2_000  # windows of ~1,600 records: many windows from few records
FIELDS = ["id", "createdAt", "status"]
LEASE = 3.0
POLL = 0.1
WORKER_ARGS = [
    "--concurrency", "2", "--request-concurrency", "2", "--lease", str(LEASE),
    "--retry-defer", "0", "--poll-delay", str(POLL), "--max-tries", "5",
    "--http-attempts", "2", "--http-initial-wait", "0", "-v",
]


class WorkerPool:
    """Worker processes of ``python -m callsessions.workers worker``, logs in files."""

    def __init__(self, queue: str, env: dict[str, str], logs: Path) -> None:
        self.queue, self.env, self.logs = queue, env, logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "callsessions.workers", "worker", "--queue", self.queue,
                 *WORKER_ARGS],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def ensure(self, n: int) -> None:
        """``n`` live workers, each one polling the queue (bounded wait)."""
        while len(self.alive()) < n:
            self.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self.ready(p) for p in self.alive()):
                return
            time.sleep(0.05)
        raise AssertionError("workers did not start:\n" + self.log_text()[-3000:])

    def ready(self, proc: subprocess.Popen[bytes]) -> bool:
        log = self.logs / f"worker-{self.procs.index(proc)}.log"
        return b"Starting worker for 1 functions" in log.read_bytes()

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for p in self.alive():
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with SimFactory() as factory:
        yield factory(SimConfig(records=RECORDS, seed=11, offset_ceiling=CEILING))


@pytest.fixture(scope="module")
def token(sim: SimHandle) -> str:
    return sim.mint_token(3600)


@pytest.fixture(scope="module")
def pool(
    redis_server: str, sim: SimHandle, token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    env = {**os.environ, "CALLSESSIONS_BASE_URL": sim.url, "CALLSESSIONS_TOKEN": token}
    workers = WorkerPool(redis_server, env, tmp_path_factory.mktemp("worker-logs"))
    try:
        workers.ensure(3)
        yield workers
    finally:
        workers.stop()
        logs = workers.log_text()
        assert token not in logs and token.split(".")[-1] not in logs  # no secret logged


@pytest.fixture
def workers(pool: WorkerPool, redis_url: str, sim: SimHandle) -> WorkerPool:
    """Three live workers, an empty Redis, a simulator without faults or latency."""
    pool.ensure(3)
    sim.set_faults(FaultConfig())
    sim.call(lambda s: setattr(s, "latency", 0.0))
    sim.reset_stats()
    return pool


def span(sim: SimHandle, start_hours: float, hours: float) -> tuple[datetime, datetime]:
    start = sim.config.start + timedelta(hours=start_hours)
    return start, start + timedelta(hours=hours)


async def make_plan(sim: SimHandle, token: str, bounds: tuple[datetime, datetime],
                    page_size: int) -> PullPlan:
    query = SessionQuery(start=bounds[0], end=bounds[1], fields=FIELDS, page_size=page_size)
    async with CallSessionsClient(sim.url, token=token, offset_ceiling=CEILING) as client:
        return await client.plan(query)


def truth(sim: SimHandle, bounds: tuple[datetime, datetime]) -> list[str]:
    return sorted(sim.matching_ids({"from": bounds[0].isoformat(), "to": bounds[1].isoformat()}))


def all_part_ids(out: Path) -> list[str]:
    """Every id in every part file of ``out`` (not only those the manifest lists)."""
    return [orjson.loads(line)["id"] for f in sorted(out.glob("part-*"))
            for line in f.read_bytes().splitlines()]


async def overlapping_workers(url: str) -> bool:
    """Whether two jobs done by different workers ran at the same time, from the results
    arq keeps (each job's start and finish, and the worker our job function reports)."""
    connections = aioredis.ConnectionPool.from_url(url)
    try:
        results = await ArqRedis(connections, job_deserializer=loads).all_job_results()
    finally:
        await connections.disconnect()
    runs = sorted((r.start_time, r.finish_time, r.result["worker"]) for r in results)
    return any(
        later[0] < earlier[1] and later[2] != earlier[2]
        for i, earlier in enumerate(runs)
        for later in runs[i + 1 :]
    )


async def redis_dump(url: str) -> bytes:
    client = aioredis.Redis.from_url(url)
    blob = b""
    try:
        for key in await client.keys("*"):
            kind = (await client.type(key)).decode()
            blob += b"\n" + key + b" "
            if kind == "string":
                blob += await client.get(key) or b""
            elif kind == "hash":
                blob += b" ".join(k + b"=" + v for k, v in (await client.hgetall(key)).items())
            elif kind == "zset":
                blob += b" ".join(await client.zrange(key, 0, -1))
            else:
                raise AssertionError(f"unexpected {kind} key {key!r}")
    finally:
        await client.aclose()
    return blob


async def test_three_workers_pull_60000_records_exactly_and_redis_holds_no_secret(
    workers: WorkerPool, sim: SimHandle, token: str, redis_url: str, tmp_path: Path
) -> None:
    bounds = (sim.config.start, sim.config.start + sim.config.span)
    plan = await make_plan(sim, token, bounds, page_size=1000)
    assert len(plan.windows) >= 30
    # 20 ms a request: each job lasts a few round trips, so the coordinator's snapshots
    # (every 0.1 s) can see the workers running at once even on a loaded machine
    sim.call(lambda s: setattr(s, "latency", 0.02))
    snapshots: list[DistributedProgress] = []
    out = tmp_path / "calls"
    summary = await run_distributed(
        plan, redis_url, out, poll_interval=POLL, on_progress=snapshots.append
    )
    assert summary.ok, summary.lines()
    assert summary.records == RECORDS and len(summary.workers) == 3
    ids = all_part_ids(out)
    assert len(ids) == RECORDS and len(set(ids)) == RECORDS
    assert sorted(ids) == truth(sim, bounds) == sorted(read_ids(out))
    # The workers ran at once: two jobs of different workers overlap in time (arq's own
    # start and finish times of each job); the snapshots, every 0.1 s, saw them working.
    assert await overlapping_workers(redis_url)
    assert max(s.workers_active for s in snapshots) >= 1
    assert (snapshots[-1].windows_done, snapshots[-1].records) == (len(plan.windows), RECORDS)
    manifest = read_manifest(out)
    assert manifest.metadata["complete"] and len(manifest.parts) == len(plan.windows)
    assert all(e["count"] == e["records"] for e in manifest.metadata["windows"])

    blob = await redis_dump(redis_url)
    assert b"arq:result:callsessions:" in blob and b"callsessions:progress:" in blob
    assert b"callsessions:ratelimit:" in blob  # the shared limiter was used
    assert token.encode() not in blob and token.split(".")[-1].encode() not in blob


async def test_a_worker_killed_mid_window_loses_nothing_and_its_window_moves_on(
    workers: WorkerPool, sim: SimHandle, token: str, redis_url: str, tmp_path: Path
) -> None:
    bounds = span(sim, 0, 36)
    plan = await make_plan(sim, token, bounds, page_size=100)
    sim.call(lambda s: setattr(s, "latency", 0.1))
    names = {f"{os.uname().nodename}:{p.pid}": p for p in workers.alive()}
    key = progress_key(plan_fingerprint(plan), destination_hash(tmp_path, "jsonl"))
    client = aioredis.Redis.from_url(redis_url)
    task = asyncio.ensure_future(run_distributed(plan, redis_url, tmp_path, poll_interval=POLL))
    victim: tuple[str, str, float] | None = None  # window, worker, when killed
    taken_over: float | None = None
    try:
        for _ in range(2000):
            progress = await read_progress(client, key)
            if victim is None:
                running = [(w, p) for w, p in progress.items()
                           if p.state == "running" and p.records > 0 and p.worker in names]
                if running:
                    window, p = running[0]
                    names[p.worker].send_signal(signal.SIGKILL)
                    victim = (window, p.worker, time.monotonic())
            elif taken_over is None:
                now = progress.get(victim[0])
                if now is not None and now.worker != victim[1]:
                    taken_over = time.monotonic() - victim[2]
            if task.done():
                break
            await asyncio.sleep(0.02)
        summary = await task
    finally:
        await client.aclose()
    assert victim is not None and taken_over is not None
    assert summary.ok, summary.lines()
    assert sorted(all_part_ids(tmp_path)) == truth(sim, bounds)
    # picked up by another worker within the lease (3 s) plus a poll, with slack for 2 cores
    assert taken_over <= LEASE + POLL + 2.0
    entry = next(e for e in read_manifest(tmp_path).metadata["windows"]
                 if e["window"] == victim[0])
    assert entry["status"] == "done" and entry["tries"] >= 2
    assert victim[1] not in summary.workers


async def test_a_job_whose_loop_raises_is_retried_and_the_pull_stays_exact(
    workers: WorkerPool, sim: SimHandle, token: str, redis_url: str, tmp_path: Path
) -> None:
    bounds = span(sim, 36, 24)
    plan = await make_plan(sim, token, bounds, page_size=500)
    sim.set_faults(FaultConfig(fail_first=24))  # 503s: more than two attempts per request
    summary = await run_distributed(plan, redis_url, tmp_path, poll_interval=POLL)
    assert summary.ok, summary.lines()
    assert summary.retries >= 1 and sim.stats.faults["fail_first"] == 24
    ids = all_part_ids(tmp_path)
    assert sorted(ids) == truth(sim, bounds) and len(set(ids)) == len(ids)


async def test_a_window_that_keeps_failing_is_named_then_a_rerun_pulls_only_it(
    workers: WorkerPool, sim: SimHandle, token: str, redis_url: str, tmp_path: Path
) -> None:
    every = RECORDS - 1_000  # exactly one record of the data set is served without its id
    sim.set_faults(FaultConfig(missing_id_every=every))
    (bad_id,) = sim.call(lambda s: s.ids_served_without_id())
    (record,) = sim.records({"id": bad_id})
    moment = datetime.fromisoformat(record["createdAt"])
    bounds = (moment - timedelta(hours=10), moment + timedelta(hours=10))
    plan = await make_plan(sim, token, bounds, page_size=500)
    (bad,) = [w for w in plan.windows if w.start <= moment < w.end]

    first = await run_distributed(plan, redis_url, tmp_path, poll_interval=POLL)
    assert first.exit_code == 1
    ((failed_key, reason),) = first.failed
    assert failed_key == window_key(bad) and "MissingIdError" in reason
    assert any(line.startswith(f"window {failed_key} ") for line in first.lines())
    manifest = read_manifest(tmp_path)
    statuses = {e["window"]: e["status"] for e in manifest.metadata["windows"]}
    assert statuses.pop(failed_key) == "failed" and set(statuses.values()) == {"done"}
    assert manifest.metadata["complete"] is False

    sim.set_faults(FaultConfig())
    sim.reset_stats()
    second = await run_distributed(plan, redis_url, tmp_path, poll_interval=POLL)
    assert second.ok, second.lines()
    assert (second.enqueued, second.skipped) == (1, len(plan.windows) - 1)
    assert sim.stats.search_requests == second.requests  # only that window's pages
    assert sorted(all_part_ids(tmp_path)) == truth(sim, bounds)
    assert read_manifest(tmp_path).metadata["complete"] is True


async def test_three_workers_share_one_rate_limit_per_token(
    workers: WorkerPool, sim: SimHandle, token: str, redis_url: str, tmp_path: Path
) -> None:
    bounds = span(sim, 72, 35)  # ~12,500 records in pages of 50: ~250 requests, ~25 s
    plan = await make_plan(sim, token, bounds, page_size=50)
    sim.set_faults(FaultConfig(rate_limit=10, rate_limit_burst=10))
    sim.reset_stats()
    summary = await run_distributed(plan, redis_url, tmp_path, poll_interval=POLL)
    assert summary.ok, summary.lines()
    assert sorted(all_part_ids(tmp_path)) == truth(sim, bounds)
    stats: Any = sim.stats
    throttled, total = stats.statuses[429], stats.search_requests
    assert total >= 200 and len(summary.workers) == 3
    assert throttled <= 0.10 * total, (throttled, total)
