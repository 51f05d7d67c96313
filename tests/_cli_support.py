"""Helpers shared by the command-line tests (``test_cli*.py``): the simulator's settings and
its secrets, ``main`` run in this process (and the check that no secret was printed) or as a
child process, the arguments of a small ``pull``, the ground truth and the exactly-once check,
readers of the output files, and the ``environment`` and ``sim`` fixtures. Fixtures defined
here count only where a test module imports them by name.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from callsessions.cli import main
from callsessions.sim import SimConfig, SimServer

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=3)
TOKEN = "tok-Sup3r-s3cret-4f9c2e"
EMAIL = "robot@example.com"
PASSWORD = "pw-Ultra-s3cret-91ab"
SECRETS = (TOKEN, PASSWORD)


def sim_config(**changes: Any) -> SimConfig:
    return SimConfig(
        records=4_000,
        seed=11,
        start=START,
        span=timedelta(days=3),
        static_tokens=(TOKEN,),
        email=EMAIL,
        password=PASSWORD,
        **changes,
    )


@pytest.fixture(name="environment", autouse=True)
def environment_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSESSIONS_TOKEN", TOKEN)
    monkeypatch.delenv("CALLSESSIONS_BASE_URL", raising=False)


@pytest.fixture(name="sim")
async def sim_fixture() -> AsyncIterator[SimServer]:
    async with SimServer(sim_config()) as server:
        yield server


@attrs.frozen
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, "a secret was printed"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert_no_secret(captured.out, captured.err)
    return Result(code, captured.out, captured.err)


async def arun(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    """``main`` in a thread, so the simulator keeps serving from this loop."""
    code = await asyncio.to_thread(main, [str(a) for a in args])
    captured = capsys.readouterr()
    assert_no_secret(captured.out, captured.err)
    return Result(code, captured.out, captured.err)


def pull_args(url: str, out: Path, *extra: object, **options: object) -> list[object]:
    """``pull`` with small pages and a low ceiling (several windows) and no backoff sleep."""
    values: dict[str, object] = {
        "--base-url": url,
        "--from": START.isoformat(),
        "--to": END.isoformat(),
        "--out": out,
        "--page-size": 200,
        "--offset-ceiling": 1_000,
        "--retry-wait": 0,
    }
    values.update({"--" + k.replace("_", "-"): v for k, v in options.items()})
    args: list[object] = ["pull"]
    for key, value in values.items():
        if value is not None:
            args += [key, value]
    return [*args, *extra]


def truth(sim: SimServer, **params: str) -> list[str]:
    return sim.matching_ids({"from": START.isoformat(), "to": END.isoformat(), **params})


def assert_exactly(got: Sequence[str], expected: Sequence[str]) -> None:
    dupes = [k for k, n in Counter(got).items() if n > 1]
    assert not dupes, f"{len(dupes)} ids written twice, e.g. {dupes[:3]}"
    assert set(got) == set(expected)
    assert len(got) == len(expected)


def jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text("utf-8").splitlines()]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sqlite_rows(path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM call_sessions")]
    finally:
        db.close()


def ids_in(path: Path) -> list[str]:
    if path.suffix == ".jsonl":
        return jsonl_ids(path)
    if path.suffix == ".csv":
        return [r["id"] for r in csv_rows(path)]
    return [r["id"] for r in sqlite_rows(path)]


async def wait_for_done_window(checkpoint: Path, seconds: float = 20.0) -> None:
    """Until the checkpoint records at least one finished window."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if checkpoint.exists():
            data = json.loads(checkpoint.read_bytes())
            if data.get("done"):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("no window was finished in time")


def cli_process_args(*args: object) -> list[str]:
    return [sys.executable, "-m", "callsessions", *(str(a) for a in args)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CALLSESSIONS_TOKEN"] = TOKEN
    env.pop("COVERAGE_PROCESS_START", None)
    return env
