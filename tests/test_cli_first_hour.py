"""Issue 14's command-line points, each against the simulator: a finished output is never
replaced silently (5), hints a user can follow where they are and ``--extra-status`` (6),
``CALLSESSIONS_BASE_URL`` and every variable documented (8), the demo's output folder (9),
``--resume`` with another page size (10), and what ``--help`` imports (issue 15)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_support import (
    arun,
    assert_exactly,
    environment_fixture,  # noqa: F401  (the fixture "environment")
    jsonl_ids,
    pull_args,
    run,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
    wait_for_done_window,
)

import callsessions
from callsessions.sim import SimServer

ROOT = Path(__file__).resolve().parents[1]


# -- 5. a finished output is not replaced silently ------------------------------------------------


async def test_a_finished_file_is_refused_without_overwrite_and_replaced_with_it(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    first = await arun(capsys, *pull_args(sim.url, out, status="ANSWERED"))
    assert first.code == 0, first.err
    before, requests = out.read_bytes(), sim.stats.total
    again = await arun(capsys, *pull_args(sim.url, out))
    assert again.code == 2 and len(again.err_lines) == 1
    assert "exists" in again.err and "--overwrite" in again.err
    assert out.read_bytes() == before and sim.stats.total == requests, "nothing sent or changed"

    replaced = await arun(capsys, *pull_args(sim.url, out, "--overwrite"))
    assert replaced.code == 0, replaced.err
    assert replaced.err_lines[-1].endswith(f"-> {out} (replaced the earlier output)")
    assert_exactly(jsonl_ids(out), truth(sim))


async def test_overwrite_keeps_the_old_file_until_the_new_one_is_complete(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calls.jsonl"
    assert (await arun(capsys, *pull_args(sim.url, out))).code == 0
    before = out.read_bytes()
    sim.latency = 0.04
    pulling = asyncio.ensure_future(
        arun(capsys, *pull_args(sim.url, out, "--overwrite", concurrency=1))
    )
    await wait_for_done_window(tmp_path / "calls.jsonl.checkpoint")
    sim.set_faults(rate_503=1.0)
    failed = await pulling
    assert failed.code == 1
    assert out.read_bytes() == before, "the finished file stays until a new one is complete"


async def test_a_directory_with_an_earlier_pull_needs_overwrite(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "calls") + "/"
    assert (await arun(capsys, *pull_args(sim.url, out, format="jsonl"))).code == 0  # type: ignore[arg-type]
    manifest = (tmp_path / "calls" / "_manifest.json").read_bytes()
    again = await arun(capsys, *pull_args(sim.url, out, format="jsonl"))  # type: ignore[arg-type]
    assert again.code == 2 and "holds an earlier pull" in again.err and "--overwrite" in again.err
    assert (tmp_path / "calls" / "_manifest.json").read_bytes() == manifest
    replaced = await arun(capsys, *pull_args(sim.url, out, "--overwrite", format="jsonl"))  # type: ignore[arg-type]
    assert replaced.code == 0 and "replaced" in replaced.err


async def test_export_refuses_an_existing_file_without_overwrite(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export.json"
    out.write_text("mine")
    common = ["export", "--base-url", sim.url, "--from", "2026-01-01T00:00:00Z",
              "--to", "2026-01-02T00:00:00Z", "--format", "JSON", "--out", out]
    refused = await arun(capsys, *common)
    assert refused.code == 2 and "--overwrite" in refused.err
    assert out.read_text() == "mine" and sim.stats.total == 0
    replaced = await arun(capsys, *common, "--overwrite")
    assert replaced.code == 0, replaced.err
    assert "replaced the earlier file" in replaced.err and out.read_text() != "mine"


async def test_a_refused_run_still_writes_its_summary_json(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "calls.jsonl", tmp_path / "summary.json"
    out.write_text("")
    report.write_text(json.dumps({"complete": True}))
    refused = await arun(capsys, *pull_args(sim.url, out, summary_json=report))
    assert refused.code == 2
    data = json.loads(report.read_text())
    assert data["complete"] is False and "--overwrite" in data["error"]


# -- 6. hints for the command line, --extra-status --------------------------------------------


async def test_extra_status_goes_on_the_wire_and_hints_name_options(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = await arun(capsys, *pull_args(sim.url, tmp_path / "a.jsonl", status="MAYBE"))
    assert unknown.code == 2
    assert "add --extra-status NAME" in unknown.err and "extra_statuses" not in unknown.err
    sort = await arun(capsys, *pull_args(sim.url, tmp_path / "a.jsonl", sort="-duration"))
    assert sort.code == 2 and "--sort" in sort.err and "fetch_page" not in sort.err
    bad = await arun(capsys, *pull_args(sim.url, tmp_path / "a.jsonl", extra_status="new-one"))
    assert bad.code == 2 and "--extra-status new-one" in bad.err
    assert sim.stats.total == 0

    # The simulator knows only the documented statuses: it refuses the new one, as a
    # server of an older release would; what matters is what was sent.
    sent = await arun(capsys, *pull_args(sim.url, tmp_path / "a.jsonl", status="ANSWERED",
                                         extra_status="VOICEMAIL"))
    assert sent.code == 1 and "400" in sent.err
    assert sim.stats.log[0].params["status"] == "ANSWERED,VOICEMAIL"


async def test_a_server_that_ignores_the_range_gets_a_wire_name_hint(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = pull_args(sim.url, tmp_path / "a.jsonl", "--wire-name", "start=dateFrom",
                     "--wire-name", "end=dateTo")
    result = await arun(capsys, *args)
    assert result.code == 1, result.err
    assert "ignores the range" in result.err and "--wire-name start=NAME" in result.err
    assert "dateFrom" in sim.stats.log[0].params  # the names given were the names sent
    bad = await arun(capsys, *pull_args(sim.url, tmp_path / "a.jsonl", wire_name="colour=x"))
    assert bad.code == 2 and "--wire-name" in bad.err


# -- 8. CALLSESSIONS_BASE_URL, and every variable documented ------------------------------------


async def test_the_base_url_comes_from_the_environment(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "calls.jsonl"
    args = [a for a in pull_args("x", out) if a not in ("--base-url", "x")]
    missing = await arun(capsys, *args)
    assert missing.code == 2 and "--base-url" in missing.err
    assert "CALLSESSIONS_BASE_URL" in missing.err
    monkeypatch.setenv("CALLSESSIONS_BASE_URL", "ftp://nowhere")
    bad = await arun(capsys, *args)
    assert bad.code == 2 and "CALLSESSIONS_BASE_URL ftp://nowhere" in bad.err
    monkeypatch.setenv("CALLSESSIONS_BASE_URL", sim.url)
    pulled = await arun(capsys, *args)
    assert pulled.code == 0, pulled.err
    assert_exactly(jsonl_ids(out), truth(sim))


def package_variables() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "callsessions").rglob("*.py"):
        names |= set(re.findall(r"\bCALLSESSIONS_[A-Z_]+\b", path.read_text("utf-8")))
    return names


def test_every_environment_variable_is_in_the_help_and_the_readme(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = package_variables()
    assert {"CALLSESSIONS_TOKEN", "CALLSESSIONS_BASE_URL", "CALLSESSIONS_QUEUE"} <= names
    readme = (ROOT / "README.md").read_text("utf-8")
    for command in ([], ["pull"], ["count"], ["export"]):
        shown = run(capsys, *command, "--help").out
        missing = [n for n in names if n not in shown]
        assert not missing, f"{command} --help lacks {missing}"
    assert not [n for n in names if f"`{n}`" not in readme]


# -- 9. the demo writes into the cache folder ---------------------------------------------------


def test_the_demo_writes_into_the_cache_folder_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, work = tmp_path / "cache", tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    result = run(capsys, "demo", "--records", 1500, "--retry-wait", 0, "--quiet")
    assert result.code == 0, result.out + result.err
    out = cache / "callsessions" / "demo.jsonl"
    assert f"output: {out} (" in result.out
    assert len(jsonl_ids(out)) == 1500
    assert list(work.iterdir()) == [], "nothing in the working directory"


def test_what_the_demo_prints_of_one_is_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "demo", "--records", 1, "--out", tmp_path / "one.jsonl",
                 "--retry-wait", 0, "--quiet")
    assert result.code == 0, result.out + result.err
    simulator, summary, _output, verified = result.out.splitlines()
    assert simulator.startswith("simulator: 1 call from ")
    assert summary.startswith("1 record in 1 window, ")  # the library's summary line
    assert verified == "verified: 1 of 1 id, no duplicates"


# -- 10. --resume with another page size ---------------------------------------------------------


async def test_resume_with_another_page_size_says_it_keeps_the_plans(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.latency = 0.04
    out = tmp_path / "calls.jsonl"
    pulling = asyncio.ensure_future(arun(capsys, *pull_args(sim.url, out, concurrency=1)))
    await wait_for_done_window(tmp_path / "calls.jsonl.checkpoint")
    sim.set_faults(rate_503=1.0)
    assert (await pulling).code == 1
    sim.set_faults()
    sim.latency = 0.0
    resumed = await arun(capsys, *pull_args(sim.url, out, "--resume", page_size=500))
    assert resumed.code == 0, resumed.err
    notes = [line for line in resumed.err_lines if line.startswith("--resume:")]
    assert notes == [
        "--resume: continuing with the interrupted pull's --page-size 200 (not 500): a plan "
        "is resumed as it was made"
    ]
    assert {r.params["limit"] for r in list(sim.stats.log)[-5:]} == {"200"}
    assert_exactly(jsonl_ids(out), truth(sim))


# -- issue 15: what the command line imports -----------------------------------------------------

IMPORTS = """
import sys, types
package = types.ModuleType("callsessions")  # the package without its eager facade
package.__path__ = [{root!r}]
sys.modules["callsessions"] = package
from callsessions.cli import main
code = main({argv!r})
heavy = sorted(m for m in ("aiohttp", "tenacity", "cattrs", "tqdm", "pyarrow", "arq", "redis",
                           "callsessions.client", "callsessions.sim") if m in sys.modules)
print("HEAVY", heavy, code)
"""


@pytest.mark.parametrize("argv", [["--help"], ["pull", "--help"], ["count", "--help"]])
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = IMPORTS.format(root=str(ROOT / "callsessions"), argv=argv)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "HEAVY [] 0"


def test_the_parser_allows_the_clients_concurrency() -> None:
    from callsessions.cli.argtypes import MAX_CONCURRENCY
    from callsessions.client import MAX_CONCURRENCY as CLIENT_MAX

    assert MAX_CONCURRENCY == CLIENT_MAX
    assert callsessions.__version__
