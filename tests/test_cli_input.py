"""The command line refusing bad input (exit 2, one line, no request) and the progress
display, which is shown only on a terminal (moved from ``test_cli.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli_support import (
    END,
    START,
    TOKEN,
    arun,
    pull_args,
    sim_fixture,  # noqa: F401  (the fixture "sim")
)

from callsessions.cli.progress import Progress, wants_progress
from callsessions.sim import SimServer


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSESSIONS_TOKEN", TOKEN)
    monkeypatch.delenv("CALLSESSIONS_EMAIL", raising=False)
    monkeypatch.delenv("CALLSESSIONS_PASSWORD", raising=False)


# -- invalid input: exit 2, one line, no request -----------------------------------------------


BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({"from": "2026-01-01T00:00:00"}, "--from"),  # naive
    ({"from": "2026-01-01"}, "UTC offset"),
    ({"to": "next week"}, "--to"),
    ({"from": END.isoformat(), "to": START.isoformat()}, "--to"),
    ({"from": START.isoformat(), "to": START.isoformat()}, "--to"),
    ({"status": "MAYBE"}, "--status MAYBE"),
    ({"fields": "phone,colour"}, "--fields colour"),
    ({"sort": "duration"}, "--sort"),
    ({"sort": "sideways"}, "--sort sideways"),
    ({"date_field": "deletedAt"}, "--date-field"),
    ({"page_size": 0}, "--page-size"),
    ({"page_size": 5000}, "--page-size 5000"),
    ({"concurrency": 0}, "--concurrency"),
    ({"offset_ceiling": 10}, "--offset-ceiling"),
    ({"timeout": -1}, "--timeout"),
    ({"endpoint_path": "api/v1/calls"}, "--endpoint-path"),
    ({"phone": "call me"}, "--phone"),
    ({"company_id": "acme"}, "--company-id"),
    ({"keyword": "   "}, "--keyword"),
    ({"out": "calls.xlsx"}, "extension"),
    ({"out": "no/such/folder/calls.jsonl"}, "does not exist"),
    ({"out": "folder.jsonl"}, "is a directory"),
    ({"out": None}, "--out"),
    ({"base_url": "ftp://example.test"}, "--base-url"),
    ({"base_url": "http://user:pw@example.test"}, "--base-url"),
    ({"summary_json": "no/such/folder/summary.json"}, "--summary-json"),
]


@pytest.mark.parametrize(("changes", "named"), BAD_INPUT)
async def test_bad_input_exits_2_without_a_request(
    sim: SimServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, object],
    named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.jsonl").mkdir()
    options = dict(changes)
    out = options.pop("out", tmp_path / "calls.jsonl")
    if isinstance(out, str):
        out = tmp_path / out
    args = pull_args(sim.url, out, **options)  # type: ignore[arg-type]
    if out is None:
        args = [a for a in args if a != "--out"]
    result = await arun(capsys, *args)
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert named in result.err
    assert "Traceback" not in result.err
    assert sim.stats.total == 0
    assert [p.name for p in tmp_path.iterdir()] == ["folder.jsonl"]


async def test_no_credentials_is_a_usage_error(
    sim: SimServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CALLSESSIONS_TOKEN")
    result = await arun(capsys, *pull_args(sim.url, tmp_path / "c.jsonl"))
    assert result.code == 2
    assert "CALLSESSIONS_TOKEN" in result.err
    missing = await arun(
        capsys, *pull_args(sim.url, tmp_path / "c.jsonl", auth_url=sim.url)
    )  # --auth-url without email and password
    assert missing.code == 2
    assert "CALLSESSIONS_EMAIL" in missing.err
    assert sim.stats.total == 0


async def test_an_existing_checkpoint_needs_resume(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    (tmp_path / "calls.jsonl.checkpoint").write_text("{}")
    result = await arun(capsys, *pull_args(sim.url, out))
    assert result.code == 2
    assert "--resume" in result.err
    (tmp_path / "calls.jsonl.checkpoint").unlink()
    (tmp_path / "calls.jsonl.partial").write_text("")
    orphan = await arun(capsys, *pull_args(sim.url, out, "--resume"))
    assert orphan.code == 2
    assert "calls.jsonl.partial" in orphan.err
    assert sim.stats.total == 0


# -- progress display -------------------------------------------------------------------------


class FakeTerminal:
    def isatty(self) -> bool:
        return True


class FakePipe:
    def isatty(self) -> bool:
        return False


def test_progress_bar_only_for_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert wants_progress(False, FakeTerminal())  # type: ignore[arg-type]
    assert not wants_progress(True, FakeTerminal())  # type: ignore[arg-type]
    assert not wants_progress(False, FakePipe())  # type: ignore[arg-type]
    bar = Progress(True, total=100)
    bar.update(40, retries=2)
    bar.close()
    assert "retries" in capsys.readouterr().err
    off = Progress(False, total=100)
    off.update(10)
    off.set(5, 10)
    off.close()
    assert capsys.readouterr().err == ""
    bytes_bar = Progress(True, unit="B")
    bytes_bar.set(1000, 4000)
    bytes_bar.set(500, 4000)  # a download restarted by a retry
    bytes_bar.close()
