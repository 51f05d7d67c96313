"""The command line when things go wrong, against the simulator: password login and rejected
credentials, a server that keeps failing, a failure mid-pull and a process stopped by a
signal, each followed by an exact ``--resume`` (moved from ``test_cli.py``)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from _cli_support import (
    EMAIL,
    PASSWORD,
    START,
    TOKEN,
    arun,
    assert_exactly,
    assert_no_secret,
    child_env,
    cli_process_args,
    ids_in,
    jsonl_ids,
    pull_args,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
    wait_for_done_window,
)

from callsessions.sim import SimServer


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSESSIONS_TOKEN", TOKEN)
    monkeypatch.delenv("CALLSESSIONS_EMAIL", raising=False)
    monkeypatch.delenv("CALLSESSIONS_PASSWORD", raising=False)
    monkeypatch.delenv("CALLSESSIONS_BASE_URL", raising=False)


# -- secrets and failures ---------------------------------------------------------------------


async def test_password_login_from_the_environment(
    sim: SimServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CALLSESSIONS_TOKEN")
    monkeypatch.setenv("CALLSESSIONS_EMAIL", EMAIL)
    monkeypatch.setenv("CALLSESSIONS_PASSWORD", PASSWORD)
    out = tmp_path / "calls.jsonl"
    result = await arun(capsys, *pull_args(sim.url, out, "--verbose", auth_url=sim.url))
    assert result.code == 0, result.err
    assert sim.stats.endpoints["login"] == 1
    assert_exactly(jsonl_ids(out), truth(sim))

    monkeypatch.setenv("CALLSESSIONS_PASSWORD", PASSWORD[::-1])
    again = tmp_path / "again.jsonl"  # a new output: an existing one needs --overwrite
    refused = await arun(capsys, *pull_args(sim.url, again, "--verbose", auth_url=sim.url))
    assert refused.code == 1
    assert PASSWORD[::-1] not in refused.err
    assert "failed" in refused.err_lines[-1]


@pytest.mark.parametrize("verbose", [False, True])
async def test_a_rejected_token_fails_in_one_line_without_showing_it(
    sim: SimServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    verbose: bool,
) -> None:
    wrong = "tok-Wr0ng-s3cret-77aa"
    monkeypatch.setenv("CALLSESSIONS_TOKEN", wrong)
    extra = ["--verbose"] if verbose else []
    result = await arun(capsys, *pull_args(sim.url, tmp_path / "c.jsonl", *extra))
    assert result.code == 1
    assert wrong not in result.out + result.err
    assert "401" in result.err_lines[-1]
    assert result.err_lines[-1].startswith("callsessions: failed:")
    if verbose:
        assert "Traceback" in result.err
    else:
        assert len(result.err_lines) == 1
    assert list(tmp_path.iterdir()) == []  # nothing was planned: nothing to resume


async def test_a_server_that_keeps_failing_exits_1(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.set_faults(rate_503=1.0)
    result = await arun(capsys, *pull_args(sim.url, tmp_path / "c.csv"))
    assert result.code == 1
    assert len(result.err_lines) == 1
    assert "503" in result.err


async def test_a_failure_mid_pull_can_be_resumed(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.latency = 0.04
    out = tmp_path / "calls.jsonl"
    checkpoint = tmp_path / "calls.jsonl.checkpoint"
    pulling = asyncio.ensure_future(arun(capsys, *pull_args(sim.url, out, concurrency=1)))
    await wait_for_done_window(checkpoint)
    sim.set_faults(rate_503=1.0)
    failed = await pulling
    assert failed.code == 1
    assert "--resume" in failed.err_lines[-1]
    assert not out.exists()  # only the partial file: nothing looks complete
    assert checkpoint.exists()

    sim.set_faults()
    sim.latency = 0.0
    other = await arun(capsys, *pull_args(sim.url, out, "--resume", status="ANSWERED"))
    assert other.code == 2
    assert "different query" in other.err

    before = sim.stats.search_requests
    resumed = await arun(capsys, *pull_args(sim.url, out, "--resume"))
    assert resumed.code == 0, resumed.err
    assert "resumed after" in resumed.err
    assert_exactly(jsonl_ids(out), truth(sim))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.jsonl"]
    # The windows done before the failure were not pulled again: the first one starts at
    # START, and the resumed run never asked for it.
    resumed_requests = list(sim.stats.log)[before:]
    assert resumed_requests
    assert all(r.params.get("from") != START.isoformat() for r in resumed_requests)


# -- a real process, killed -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "how"),
    [(".jsonl", signal.SIGKILL), (".csv", signal.SIGINT), (".sqlite", signal.SIGKILL)],
)
async def test_resume_after_the_process_is_stopped(
    sim: SimServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
    how: signal.Signals,
) -> None:
    sim.latency = 0.03
    out = tmp_path / f"calls{suffix}"
    checkpoint = tmp_path / f"calls{suffix}.checkpoint"
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
        stdout, stderr = await proc.communicate()
    assert_no_secret(stdout.decode(), stderr.decode())
    if how == signal.SIGINT:
        assert proc.returncode == 130
        assert "--resume" in stderr.decode()
        assert "Traceback" not in stderr.decode()
    else:
        assert proc.returncode == -signal.SIGKILL
    if suffix != ".sqlite":
        assert not out.exists()  # the output appears only when complete
    assert checkpoint.exists()

    sim.latency = 0.0
    resumed = await arun(capsys, *pull_args(sim.url, out, "--resume", concurrency=2))
    assert resumed.code == 0, resumed.err
    assert "resumed after" in resumed.err
    assert_exactly(ids_in(out), truth(sim))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


