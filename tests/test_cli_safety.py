"""The command line never exits 0 with less than everything, and never lets two runs share
an output (issue 9): locks, a crash after the final rename, signals, the summary on failure,
bounded inputs, and hints that can help."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from _cli_support import (
    END,
    START,
    TOKEN,
    arun,
    assert_exactly,
    child_env,
    cli_process_args,
    jsonl_ids,
    pull_args,
    run,
    sim_config,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
    wait_for_done_window,
)

from callsessions import (
    CallSessionsClient,
    Checkpoint,
    OutputLockedError,
    RetryPolicy,
    SessionQuery,
)
from callsessions._files import OutputLock
from callsessions.sim import FaultConfig, SimServer


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSESSIONS_TOKEN", TOKEN)


# -- 3. two runs on one output --------------------------------------------------------------------


def test_the_lock_says_who_holds_it_and_a_dead_holder_leaves_none(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    code = (
        "import sys, time; from pathlib import Path; from callsessions._files import OutputLock;"
        f"lock = OutputLock(Path({str(out)!r})); lock.acquire(); print('locked', flush=True);"
        "time.sleep(30)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            held = rf"another pull is writing .* \(pid {holder.pid}\)"
            with pytest.raises(OutputLockedError, match=held):
                OutputLock(out).acquire()
        finally:
            holder.kill()
    # The kernel dropped the dead holder's lock: no stale lock, a new run goes ahead.
    with OutputLock(out):
        pass
    assert not (tmp_path / "calls.jsonl.lock").exists(), "the lock file is removed on release"


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
async def test_a_second_run_on_the_same_output_exits_2_at_once(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    out = tmp_path / f"calls{suffix}"
    with OutputLock(out):  # as a first run would hold it
        before = sim.stats.search_requests
        second = await arun(capsys, *pull_args(sim.url, out, "--resume"))
    assert second.code == 2
    assert f"another pull is writing {out} (pid {os.getpid()})" in second.err
    assert sim.stats.search_requests == before, "no request was sent"
    assert "--resume to continue" not in second.err, "a resume cannot help here"


async def test_two_real_runs_at_once_one_wins_and_the_file_is_exact(
    sim: SimServer, tmp_path: Path
) -> None:
    sim.latency = 0.02
    out = tmp_path / "calls.jsonl"
    procs = [
        await asyncio.create_subprocess_exec(
            *cli_process_args(*pull_args(sim.url, out, "--resume", concurrency=2)),
            env=child_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [await p.communicate() for p in procs]
    codes = sorted(p.returncode or 0 for p in procs)
    assert codes == [0, 2], [r[1].decode() for r in results]
    assert any(b"another pull is writing" in err for _, err in results)
    assert_exactly(jsonl_ids(out), truth(sim))


async def test_export_is_locked_too(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.csv"
    with OutputLock(out):
        result = await arun(
            capsys, "export", "--base-url", sim.url, "--from", "2026-01-01T00:00:00Z",
            "--to", "2026-01-02T00:00:00Z", "--format", "CSV", "--out", out,
        )
    assert result.code == 2 and "another pull is writing" in result.err
    assert not out.exists()


# -- 4. a crash between the final rename and removing the checkpoint ------------------------------


async def test_resume_after_a_crash_at_the_very_end_says_it_is_complete(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    first = await arun(capsys, *pull_args(sim.url, out))
    assert first.code == 0, first.err
    # Put back the checkpoint as it was just before its removal (finalizing, all done).
    async with CallSessionsClient(
        sim.url, token=TOKEN, retry=RetryPolicy.no_wait(), page_size=200, offset_ceiling=1_000
    ) as client:
        plan = await client.plan(SessionQuery(start=START, end=END))
    cp = Checkpoint(tmp_path / "calls.jsonl.checkpoint", plan)
    cp.source = orjson.loads(orjson.dumps(SessionQuery(start=START, end=END).describe()))
    cp.format, cp.finalizing = "jsonl", True
    cp.done = {i: w.count or 0 for i, w in enumerate(plan.windows)}
    cp.save()
    before = sim.stats.search_requests
    again = await arun(capsys, *pull_args(sim.url, out, "--resume"))
    assert again.code == 0, again.err
    assert "completed by an earlier run" in again.err
    assert sim.stats.search_requests == before, "nothing was pulled again"
    assert not cp.path.exists()
    assert_exactly(jsonl_ids(out), truth(sim))


# -- 9. SIGTERM and SIGHUP ------------------------------------------------------------------------


@pytest.mark.parametrize(("how", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
async def test_sigterm_and_sighup_stop_cleanly_and_can_be_resumed(
    sim: SimServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: signal.Signals,
    code: int,
) -> None:
    sim.latency = 0.03
    out = tmp_path / "calls.jsonl"
    checkpoint = tmp_path / "calls.jsonl.checkpoint"
    proc = await asyncio.create_subprocess_exec(
        *cli_process_args(*pull_args(sim.url, out, concurrency=2)),
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_for_done_window(checkpoint)
    finally:
        if proc.returncode is None:
            proc.send_signal(how)
        _, stderr = await proc.communicate()
    text = stderr.decode()
    assert proc.returncode == code, text
    assert "interrupted" in text and "--resume" in text and "Traceback" not in text
    assert checkpoint.exists() and not out.exists()
    sim.latency = 0.0
    resumed = await arun(capsys, *pull_args(sim.url, out, "--resume"))
    assert resumed.code == 0, resumed.err
    assert_exactly(jsonl_ids(out), truth(sim))


# -- 10. --summary-json on failure ----------------------------------------------------------------


async def test_summary_json_is_written_on_failure_and_a_stale_one_never_stays(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"complete": True, "records": 999}))
    sim.set_faults(rate_503=1.0)
    failed = await arun(capsys, *pull_args(sim.url, out, summary_json=summary))
    assert failed.code == 1
    data = json.loads(summary.read_text())
    assert data["complete"] is False
    assert "HTTP 503" in data["error"]
    assert data["records"] != 999


async def test_summary_json_is_removed_when_the_run_is_refused(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"complete": True}))
    with OutputLock(out):
        refused = await arun(capsys, *pull_args(sim.url, out, summary_json=summary))
    assert refused.code == 2
    data = json.loads(summary.read_text())
    assert data["complete"] is False and "another pull is writing" in data["error"]


# -- 7. hints only where a resume can help --------------------------------------------------------


async def test_no_resume_hint_after_a_failure_a_resume_cannot_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sim_config(faults=FaultConfig(missing_id_every=1_500))
    async with SimServer(config) as server:
        out = tmp_path / "calls.jsonl"
        failed = await arun(capsys, *pull_args(server.url, out))
    assert failed.code == 1
    assert "have no 'id'" in failed.err
    assert "--resume" not in failed.err
    assert not out.exists(), "nothing half-written looks complete"


# -- 11. unbounded inputs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--timeout", "inf", "finite"),
        ("--timeout", "nan", "finite"),
        ("--concurrency", "300", "from 1 to 256"),
        ("--status", "", "--status is empty"),
        ("--fields", " , ", "--fields is empty"),
    ],
)
def test_unbounded_or_empty_inputs_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    args = pull_args("http://127.0.0.1:9", tmp_path / "calls.jsonl")
    result = run(capsys, *args, option, value)
    assert result.code == 2, result.err
    assert says in result.err
    assert len(result.err_lines) == 1


# -- 5. a foreign SQLite table --------------------------------------------------------------------


async def test_a_foreign_sqlite_table_is_refused_and_left_untouched(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.sqlite"
    with sqlite3.connect(out) as db:
        db.execute("CREATE TABLE call_sessions (id TEXT PRIMARY KEY, mine TEXT)")
        db.execute("INSERT INTO call_sessions VALUES ('x', 'keep me')")
    before = out.read_bytes()
    requests = sim.stats.search_requests
    result = await arun(capsys, *pull_args(sim.url, out))
    assert result.code == 2, result.err
    assert "call_sessions" in result.err and len(result.err_lines) == 1
    assert "--resume" not in result.err
    assert out.read_bytes() == before, "the database is untouched"
    assert sim.stats.search_requests == requests, "no request was sent"
