"""The command line, end to end against the simulator.

Most tests run ``main(argv)`` in a worker thread (it runs its own event loop there) while
the simulator serves from the test's loop, so the test can read the simulator's ground truth
and counters. The resume tests run ``python -m callsessions`` as a real process and kill it.
Every run checks that the token and password appear nowhere in what the CLI printed.
Bad input and the progress display are in ``test_cli_input.py``; the helpers shared by the
``test_cli*.py`` modules are in ``_cli_support.py``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from _cli_support import (
    END,
    START,
    TOKEN,
    arun,
    assert_exactly,
    csv_rows,
    jsonl_ids,
    pull_args,
    run,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    sqlite_rows,
    truth,
)

from callsessions import ALL_FIELDS
from callsessions.sim import SimServer


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSESSIONS_TOKEN", TOKEN)
    monkeypatch.delenv("CALLSESSIONS_EMAIL", raising=False)
    monkeypatch.delenv("CALLSESSIONS_PASSWORD", raising=False)


def csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


# -- help and usage -------------------------------------------------------------------------


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--help")
    assert result.code == 0
    for command in ("pull", "export", "sim", "demo"):
        assert command in result.out
    for command in ("pull", "export", "sim", "demo"):
        sub = run(capsys, command, "--help")
        assert sub.code == 0
        assert f"usage: callsessions {command}" in sub.out
    pull = run(capsys, "pull", "--help").out
    for needle in ("CALLSESSIONS_TOKEN", "--resume", ".sqlite", "exit codes", "--offset-ceiling"):
        assert needle in pull
    assert "--retry-wait" not in pull  # a hidden option for tests


def test_version_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    version = run(capsys, "--version")
    assert version.code == 0
    assert version.out.startswith("callsessions ")
    bare = run(capsys)
    assert bare.code == 2
    assert "pull" in bare.err


# -- pull: the three formats ----------------------------------------------------------------


async def test_pull_jsonl_writes_the_api_records(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    result = await arun(capsys, *pull_args(sim.url, out))
    assert result.code == 0, result.err
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    expected = {r["id"]: r for r in sim.records({"from": START.isoformat(), "to": END.isoformat()})}
    assert_exactly([r["id"] for r in records], list(expected))
    assert all(r == expected[r["id"]] for r in records)  # the wire dicts, camelCase names
    assert set(records[0]) == set(ALL_FIELDS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.jsonl"]
    assert result.out == ""
    assert len(result.err_lines) == 1  # no progress bar off a terminal: just the summary
    summary = result.err_lines[0]
    assert summary.startswith(f"{len(expected)} records in ")
    assert "requests" in summary
    assert "retries" in summary
    assert "records/s" in summary
    assert summary.endswith(str(out))


async def test_pull_with_dedupe_across_windows(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    result = await arun(capsys, *pull_args(sim.url, out, dedupe="pull", date_field="updatedAt"))
    assert result.code == 0, result.err
    expected = sim.matching_ids(
        {"from": START.isoformat(), "to": END.isoformat(), "dateField": "updatedAt"}
    )
    assert_exactly(jsonl_ids(out), expected)
    bad = await arun(capsys, *pull_args(sim.url, out, dedupe="twice"))
    assert bad.code == 2
    assert "--dedupe" in bad.err


async def test_pull_writes_a_json_summary_for_schedulers(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "calls.jsonl", tmp_path / "summary.json"
    result = await arun(capsys, *pull_args(sim.url, out, "--quiet", summary_json=report))
    assert result.code == 0, result.err
    assert result.err == ""  # --quiet: no line, but the file
    data = json.loads(report.read_text("utf-8"))
    assert data["records"] == len(truth(sim)) == len(jsonl_ids(out))
    assert data["complete"] is True
    assert data["problems"] == []
    assert data["output"] == str(out)
    assert data["requests"] >= data["pages"] > 0
    assert {"windows", "retries", "throttled_seconds", "rewalks", "elapsed"} <= set(data)


async def test_pull_csv_with_fields_and_statuses(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.csv"
    args = pull_args(sim.url, out, fields="phone,status,messages", status="ANSWERED,BUSY")
    result = await arun(capsys, *args)
    assert result.code == 0, result.err
    assert csv_header(out) == ["id", "phone", "status", "messages"]
    rows = csv_rows(out)
    params = {"status": "ANSWERED,BUSY"}
    assert_exactly([r["id"] for r in rows], truth(sim, **params))
    expected = {
        r["id"]: r
        for r in sim.records(
            {"from": START.isoformat(), "to": END.isoformat(), "fields": "id,phone,status,messages"}
            | params
        )
    }
    for row in rows:
        want = expected[row["id"]]
        assert row["phone"] == (want["phone"] or "")
        assert row["status"] in ("ANSWERED", "BUSY")
        assert json.loads(row["messages"]) == want["messages"]


async def test_pull_sqlite_twice_keeps_each_call_once(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.sqlite"
    fields = "phone,duration,additional,transferredToOperator"
    first = await arun(capsys, *pull_args(sim.url, out, fields=fields))
    assert first.code == 0, first.err
    second = await arun(capsys, *pull_args(sim.url, out, "--quiet", fields=fields))
    assert second.code == 0, second.err
    assert second.err == ""  # --quiet: nothing at all on success
    rows = sqlite_rows(out)
    assert_exactly([r["id"] for r in rows], truth(sim))
    expected = {r["id"]: r for r in sim.records({"from": START.isoformat(), "to": END.isoformat()})}
    for row in rows[:200]:
        want = expected[row["id"]]
        assert row["duration"] == want["duration"]
        assert row["transferredToOperator"] == want["transferredToOperator"]
        assert json.loads(row["additional"]) == want["additional"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.sqlite"]


@pytest.mark.parametrize("code", [0, 1, 2])
def test_the_program_exits_with_mains_code_after_freezing_the_heap(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """``callsessions`` (the console script and ``python -m``) is ``entry``: it exits with
    what ``main`` returned, and freezes the heap only after ``main`` is done (so the
    interpreter's last full collection has nothing to walk); ``main`` itself never does."""
    import gc

    import callsessions.cli as cli

    order: list[str] = []

    def main() -> int:
        order.append("main")
        return code

    monkeypatch.setattr(cli, "main", main)
    monkeypatch.setattr(gc, "freeze", lambda: order.append("freeze"))
    with pytest.raises(SystemExit) as exc:
        cli.entry()
    assert exc.value.code == code
    assert order == ["main", "freeze"]
