"""The README's library snippets, run as they are written against the simulator, so that
they cannot drift from the code (the command-line ones: ``test_cli_readme.py``)."""

from __future__ import annotations

import asyncio
import re
import textwrap
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callsessions import CallSessionsClient, SessionQuery
from callsessions.sim import SimConfig
from callsessions.testing import SimFactory

README = Path(__file__).parent.parent / "README.md"
SECTIONS = (
    "## The library",
    "### The nightly job: `pull_to`",
    "### Splitting a pull across workers",
    "### Configuration",
    "### Export files",
)
START = datetime(2026, 1, 1, tzinfo=UTC)


def python_block(heading: str) -> str:
    """The first ```python block after ``heading``."""
    text = README.read_text(encoding="utf-8")
    rest = text[text.index(heading + "\n") :]
    match = re.search(r"```python\n(.*?)```", rest, re.S)
    assert match is not None, f"no python block under {heading}"
    return match.group(1)


def run_block(code: str, names: dict[str, Any]) -> dict[str, Any]:
    """Run a snippet; one with a top-level ``await`` runs as the body of a coroutine."""
    scope = dict(names)
    if re.search(r"^(async with|await |\w+ = await )", code, re.M) and "asyncio.run" not in code:
        body = textwrap.indent(code, "    ")
        exec(f"async def _snippet():\n{body}\n    return locals()\n", scope)
        scope.update(asyncio.run(scope["_snippet"]()))
    else:
        exec(code, scope)
    return scope


@pytest.fixture(scope="module")
def sim() -> Any:
    with SimFactory() as factory:
        yield factory(SimConfig(records=3_000, seed=4, start=START))


@pytest.mark.parametrize("heading", SECTIONS)
def test_the_readme_snippet_runs(
    heading: str, sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    query = SessionQuery(start=START, end=datetime(2026, 1, 8, tzinfo=UTC))
    names: dict[str, Any] = {
        "URL": sim.url, "TOKEN": sim.token, "query": query, "password": "not-used",
        "a": query.start, "b": query.end,
    }
    code = python_block(heading)
    if heading == "### Export files":  # the snippet uses the client of the ones above
        names["CallSessionsClient"] = CallSessionsClient
        code = "async with CallSessionsClient(URL, token=TOKEN) as client:\n" + textwrap.indent(
            code, "    "
        )
    scope = run_block(code, names)
    printed = capsys.readouterr().out
    expected = len(sim.matching_ids({"from": query.start.isoformat(), "to": query.end.isoformat()}))
    if heading == "## The library":
        answered = len(sim.matching_ids({
            "from": query.start.isoformat(), "to": query.end.isoformat(), "status": "ANSWERED",
        }))
        assert f"{answered} records in" in printed, printed[-300:]
    elif heading == "### The nightly job: `pull_to`":
        assert (tmp_path / "calls.parquet").exists()
        assert f"{expected} records in" in printed
    elif heading == "### Splitting a pull across workers":
        assert f"{expected} records" in printed
        assert (tmp_path / "calls" / "_manifest.json").exists()
    elif heading == "### Configuration":
        client = scope["client"]
        assert client.config.wire_names.date_field == "dateType"
        assert "not-used" not in repr(client)
    else:
        assert zipfile.is_zipfile(tmp_path / "calls.zip")
        assert scope["result"].bytes == (tmp_path / "calls.zip").stat().st_size
