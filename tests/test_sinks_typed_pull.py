"""The outputs end to end: the package without pyarrow (jsonl parts still work, Parquet
says what to install), and a simulated pull, through the client, into every output."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callsessions import CallSessionsClient, ClientConfig, RetryPolicy, SessionQuery
from callsessions.sim import SimConfig, SimServer
from callsessions.sinks import open_sink, read_ids, read_manifest, window_key


def test_the_package_works_without_pyarrow(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pyarrow"] = None  # as if it were not installed
        from pathlib import Path
        import callsessions
        from callsessions.sinks import open_sink
        out = Path(sys.argv[1])
        for target in (out / "calls.parquet", str(out / "calls") + "/"):
            try:
                open_sink(target, None)
            except ValueError as exc:
                print(exc)
        sink = open_sink(str(out / "parts") + "/", None, format="jsonl")
        sink.open(); sink.write([{"id": "a"}]); sink.commit("w0"); sink.finalize()
        print(sorted(p.name for p in out.iterdir()))
        """
    )
    got = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    lines = got.stdout.splitlines()
    assert "pip install 'callsessions[parquet]'" in lines[0]
    assert "pip install 'callsessions[parquet]' (or use jsonl parts)" in lines[1]
    assert lines[2] == "['parts']"


# -- a pull from the simulator, through the client, into every output -----------------------


SIM_START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "target", ["calls.parquet", "calls/", "calls.sqlite", "calls.jsonl.gz", "calls.csv.gz"]
)
async def test_a_simulated_pull_lands_exactly_in_every_output(tmp_path: Path, target: str) -> None:
    config = SimConfig(
        records=3_000, seed=11, start=SIM_START, span=timedelta(days=2), offset_ceiling=1_000
    )
    query = SessionQuery(start=SIM_START, end=SIM_START + timedelta(days=2))
    settings = ClientConfig(page_size=200, offset_ceiling=1_000, retry=RetryPolicy.no_wait())
    async with SimServer(config) as sim:
        async with CallSessionsClient(sim.url, token=sim.token, config=settings) as client:
            plan = await client.plan(query)
            assert len(plan.windows) >= 3
            sink = open_sink(f"{tmp_path}/{target}", query.fields)
            await asyncio.to_thread(sink.open)
            async with client.pages(plan, raw=True) as stream:
                async for page in stream:
                    await asyncio.to_thread(sink.write, page.items)
                    if page.final:
                        assert page.window is not None
                        key = window_key(plan.windows[page.window])
                        await asyncio.to_thread(sink.commit, key)
            await asyncio.to_thread(sink.finalize)
        span = {"from": SIM_START.isoformat(), "to": (SIM_START + timedelta(days=2)).isoformat()}
        expected = sim.matching_ids(span)
    got = read_ids(tmp_path / target)
    assert sorted(got) == sorted(expected) and len(got) == len(expected)
    if target == "calls/":
        manifest = read_manifest(tmp_path / "calls")
        assert [p.window for p in manifest.parts] == [window_key(w) for w in plan.windows]
