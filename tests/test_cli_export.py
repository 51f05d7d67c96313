"""``export``, ``sim`` and ``demo`` from the command line (moved from ``test_cli.py``)."""

from __future__ import annotations

import json
import signal
import subprocess
import zipfile
from pathlib import Path

import pytest
from _cli_support import (
    END,
    START,
    arun,
    assert_exactly,
    cli_process_args,
    environment_fixture,  # noqa: F401  (the fixture "environment")
    run,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
)

from callsessions.sim import SimServer

# -- export, sim, demo ------------------------------------------------------------------------


async def test_export_json_and_zip(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export.json"
    common = ["--base-url", sim.url, "--from", START.isoformat(), "--to", END.isoformat()]
    result = await arun(
        capsys, "export", *common, "--format", "json", "--status", "ANSWERED", "--out", out
    )
    assert result.code == 0, result.err
    records = json.loads(out.read_bytes())
    assert_exactly([r["id"] for r in records], truth(sim, status="ANSWERED"))
    assert len(result.err_lines) == 1
    assert str(out) in result.err

    zipped = tmp_path / "export.zip"
    result = await arun(
        capsys,
        "export",
        *common,
        "--format",
        "CSV",
        "--zip",
        "--filename",
        "calls",
        "--out",
        zipped,
        "--quiet",
    )
    assert result.code == 0, result.err
    assert result.err == ""
    assert zipfile.is_zipfile(zipped)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json", "export.zip"]


async def test_export_bad_input_sends_no_request(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--base-url", sim.url, "--from", START.isoformat(), "--to", END.isoformat()]
    bad_format = await arun(capsys, "export", *common, "--format", "PDF", "--out", tmp_path / "x")
    assert bad_format.code == 2
    bad_name = await arun(
        capsys,
        "export",
        *common,
        "--format",
        "CSV",
        "--filename",
        "a/b.csv",
        "--out",
        tmp_path / "x",
    )
    assert bad_name.code == 2
    assert "--filename" in bad_name.err
    assert sim.stats.total == 0


def test_demo_pulls_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.sqlite"
    result = run(capsys, "demo", "--records", 3000, "--out", out, "--retry-wait", 0)
    assert result.code == 0, result.err
    assert "verified: 3000 of 3000 ids, no duplicates" in result.out
    assert "3000 records in" in result.out
    assert str(out) in result.out
    again = run(capsys, "demo", "--records", 2000, "--out", out, "--retry-wait", 0, "--quiet")
    assert again.code == 0, again.out  # the old output is replaced, not merged
    assert "verified: 2000 of 2000 ids" in again.out


def test_sim_command_serves_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        cli_process_args("sim", "--port", 0, "--records", 100),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert any("service root: http://127.0.0.1:" in line for line in lines)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


