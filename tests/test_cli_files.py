"""Files a user's other tools can read, folders checked before any request, and a progress
bar whose clock moves while a throttled pull waits (issue 14, points 3, 7 and 9)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cli_support import (
    END,
    START,
    TOKEN,
    arun,
    pull_args,
    sim_fixture,  # noqa: F401  (the fixture "sim")
)

from callsessions.cli import pull as cli_pull
from callsessions.sim import SimServer


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSESSIONS_TOKEN", TOKEN)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("kind", ["export", "pull"])
async def test_every_output_honours_the_umask(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], umask_022: None, kind: str
) -> None:
    out = tmp_path / ("export.csv" if kind == "export" else "calls.jsonl")
    if kind == "export":
        args: list[object] = [
            "export", "--base-url", sim.url, "--from", START.isoformat(), "--to",
            END.isoformat(), "--format", "CSV", "--out", out,
        ]
    else:
        args = pull_args(sim.url, out)
    result = await arun(capsys, *args)
    assert result.code == 0, result.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o644, "readable by a BI tool of another user"


async def test_an_unwritable_output_folder_is_refused_before_any_request(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    real_access = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:  # root may write anywhere: pretend
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    before = sim.stats.search_requests
    result = await arun(capsys, *pull_args(sim.url, folder / "calls.jsonl"))
    assert result.code == 2
    assert f"the folder {folder} is not writable" in result.err
    assert len(result.err_lines) == 1 and ".checkpoint" not in result.err
    assert sim.stats.search_requests == before, "no request was sent"


async def test_the_bar_is_redrawn_while_nothing_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    redrawn: list[int] = []

    class Bar:
        def refresh(self) -> None:
            redrawn.append(1)

    naps: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:  # no real waiting: count the naps instead
        naps.append(seconds)
        if len(naps) > 3:
            raise asyncio.CancelledError
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)  # the ticker sleeps through asyncio
    with pytest.raises(asyncio.CancelledError):
        await cli_pull.PullProgressBar._tick(Bar())  # type: ignore[arg-type]
    assert naps[:3] == [1.0, 1.0, 1.0] and len(redrawn) == 3
