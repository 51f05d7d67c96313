"""Issue 13 from the command line: ``callsessions worker`` processes and the coordinator
``callsessions pull ... --out DIR/ --queue redis://...``, end to end on a real redis-server
(started by the tests, as in ``tests/workers/conftest.py``) against the simulator. And the
refusals: no arq, no credentials, an output that is not a directory, a directory of another
query."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _cli_support import (
    END,
    START,
    TOKEN,
    arun,
    assert_exactly,
    environment_fixture,  # noqa: F401  (the fixture "environment")
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
)
from redis_server import running_redis_server

from callsessions.sim import SimServer
from callsessions.sinks import read_manifest

WORKER_OPTIONS = [
    "--concurrency", "2", "--request-concurrency", "2", "--retry-defer", "0",
    "--poll-delay", "0.1", "--lease", "3", "--http-attempts", "2", "--http-initial-wait", "0",
    "-v",
]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[str]:
    """A private redis-server for this module (the helper of ``tests/workers/conftest.py``)."""
    with running_redis_server() as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


class Worker:
    """One ``python -m callsessions worker`` process, its stderr in a file."""

    def __init__(self, queue: str, base_url: str, log: Path) -> None:
        env = {**os.environ, "CALLSESSIONS_BASE_URL": base_url, "CALLSESSIONS_TOKEN": TOKEN}
        env.pop("COVERAGE_PROCESS_START", None)
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "callsessions", "worker", "--queue", queue,
                 *WORKER_OPTIONS],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )

    async def ready(self) -> None:
        for _ in range(600):
            if b"Starting worker for 1 functions" in self.log.read_bytes():
                return
            assert self.proc.poll() is None, self.log.read_text()
            await asyncio.sleep(0.05)
        raise AssertionError("the worker did not start:\n" + self.log.read_text())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


@pytest.fixture
async def worker(sim: SimServer, redis_url: str, tmp_path: Path) -> AsyncIterator[Worker]:
    one = Worker(redis_url, sim.url, tmp_path / "worker.log")
    try:
        await one.ready()
        yield one
    finally:
        one.stop()


def coordinator(url: str, queue: str, out: Path, *extra: object) -> list[object]:
    return [
        "pull", "--base-url", url, "--from", START.isoformat(), "--to", END.isoformat(),
        "--out", f"{out}/", "--queue", queue, "--format", "jsonl", "--page-size", 200,
        "--offset-ceiling", 1_000, "--retry-wait", 0, *extra,
    ]


def part_ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for part in sorted(out.glob("part-*.jsonl"))
            for line in part.read_text().splitlines()]


def redis_holds(url: str, secret: bytes) -> bool:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter():
            kind = client.type(key).decode()
            values: list[Any]
            if kind == "string":
                values = [client.get(key) or b""]
            elif kind == "hash":
                values = [k + v for k, v in client.hgetall(key).items()]
            elif kind == "zset":
                values = list(client.zrange(key, 0, -1))
            else:
                values = [repr(client.dump(key)).encode()]
            if secret in key or any(secret in v for v in values):
                return True
        return False
    finally:
        client.close()


async def test_a_worker_and_the_coordinator_pull_every_call_once(
    sim: SimServer, worker: Worker, redis_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, report = tmp_path / "calls", tmp_path / "summary.json"
    result = await arun(capsys, *coordinator(sim.url, redis_url, out, "--summary-json", report))
    assert result.code == 0, result.err
    manifest = read_manifest(out)
    windows = len(manifest.metadata["windows"])
    assert windows > 1 and manifest.metadata["complete"] is True
    assert result.err_lines[-1].startswith(f"{len(truth(sim))} records in {windows}/{windows} ")
    assert_exactly(part_ids(out), truth(sim))
    data = json.loads(report.read_text())
    assert data["complete"] is True and data["ok"] is True and len(data["workers"]) == 1

    before = sim.stats.search_requests
    again = await arun(capsys, *coordinator(sim.url, redis_url, out))
    assert again.code == 0, again.err
    assert f"({windows} done before, 0 enqueued)" in again.err_lines[-1]
    assert sim.stats.search_requests == before, "the saved plan is reused: nothing is sent"

    other = await arun(capsys, *coordinator(sim.url, redis_url, out, "--status", "BUSY"))
    assert other.code == 2 and "another query" in other.err

    assert worker.stop() == 0, worker.log.read_text()
    log = worker.log.read_text()
    assert "callsessions worker: windows from redis://127.0.0.1:" in log
    assert TOKEN not in log and not redis_holds(redis_url, TOKEN.encode())


async def test_a_window_that_fails_exits_1_naming_it_and_a_rerun_finishes(
    sim: SimServer, worker: Worker, redis_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim.set_faults(missing_id_every=1_500)  # a record without an id: its window fails
    out = tmp_path / "calls"
    failed = await arun(capsys, *coordinator(sim.url, redis_url, out))
    assert failed.code == 1
    named = [line for line in failed.err_lines if line.startswith("window ")]
    assert named and all("MissingIdError" in line for line in named)
    assert "INCOMPLETE" in failed.err
    sim.set_faults()
    again = await arun(capsys, *coordinator(sim.url, redis_url, out, "--quiet"))
    assert again.code == 0, again.err
    assert again.err == "", "--quiet: no summary line on success"
    assert_exactly(part_ids(out), truth(sim))


async def test_queue_refusals_exit_2_before_any_request(
    sim: SimServer, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls"
    file_out = [a if a != f"{out}/" else tmp_path / "calls.jsonl"
                for a in coordinator(sim.url, redis_url, out)]
    cases = [
        (file_out, "needs a directory output"),
        (coordinator(sim.url, redis_url, out, "--max-items", 10), "--max-items"),
        (coordinator(sim.url, redis_url, out, "--overwrite"), "--overwrite"),
        (coordinator(sim.url, "http://127.0.0.1:1", out), "not a Redis URL"),
    ]
    for args, says in cases:
        result = await arun(capsys, *args)
        assert result.code == 2, (args, result.err)
        assert says in result.err and len(result.err_lines) == 1
    finished = tmp_path / "single"
    finished.mkdir()
    (finished / "_manifest.json").write_text("{}")
    alone = await arun(capsys, *coordinator(sim.url, redis_url, finished))
    assert alone.code == 2 and "made without --queue" in alone.err
    assert sim.stats.total == 0


async def test_without_arq_both_commands_name_the_extra(
    sim: SimServer, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "arq", None)  # as if not installed: import fails
    pull = await arun(capsys, *coordinator(sim.url, redis_url, tmp_path / "calls"))
    assert pull.code == 2 and "pip install 'callsessions[arq]'" in pull.err
    worker = await arun(capsys, "worker", "--queue", redis_url)
    assert worker.code == 2 and "callsessions[arq]" in worker.err
    assert sim.stats.total == 0


async def test_a_worker_without_its_environment_exits_2(
    redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_url = await arun(capsys, "worker", "--queue", redis_url, "--burst")
    assert no_url.code == 2 and "CALLSESSIONS_BASE_URL" in no_url.err
    monkeypatch.delenv("CALLSESSIONS_TOKEN")
    no_token = await arun(capsys, "worker", "--queue", redis_url, "--base-url", "http://x.test")
    assert no_token.code == 2 and "CALLSESSIONS_TOKEN" in no_token.err
    bad = await arun(capsys, "worker", "--queue", redis_url, "--base-url", "http://x.test",
                     "--concurrency", "0")
    assert bad.code == 2


async def test_a_worker_takes_its_queue_from_callsessions_queue(
    redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLSESSIONS_QUEUE", raising=False)
    neither = await arun(capsys, "worker", "--burst")
    assert neither.code == 2 and "--queue is required (or set CALLSESSIONS_QUEUE)" in neither.err
    monkeypatch.setenv("CALLSESSIONS_QUEUE", redis_url)
    from_env = await arun(capsys, "worker", "--burst")
    # past the queue: the next thing missing is the service
    assert from_env.code == 2 and "CALLSESSIONS_BASE_URL" in from_env.err
    monkeypatch.setenv("CALLSESSIONS_QUEUE", "http://not-redis.test")
    wrong = await arun(capsys, "worker", "--burst")
    assert wrong.code == 2 and "not a Redis URL" in wrong.err


def test_the_workers_module_needs_a_queue_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from callsessions.workers.__main__ import main

    monkeypatch.delenv("CALLSESSIONS_QUEUE", raising=False)
    assert main(["worker", "--burst"]) == 2
    assert "--queue is required (or set CALLSESSIONS_QUEUE)" in capsys.readouterr().err
