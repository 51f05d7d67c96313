"""``python -m callsessions.sim`` and the pieces another CLI reuses."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from datetime import timedelta

import aiohttp
import pytest

from callsessions.sim import FaultConfig, SimConfig, add_arguments, config_from_args, serve


def parse(*argv: str) -> SimConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_defaults() -> None:
    config = parse()
    assert config.records == 10_000
    assert config.offset_ceiling == 10_000
    assert config.faults == FaultConfig()
    assert config.static_tokens == ("sim-static-token",)


def test_every_option() -> None:
    config = parse(
        "--records",
        "50",
        "--seed",
        "3",
        "--latency-ms",
        "20",
        "--jitter-ms",
        "5",
        "--rate-429",
        "0.1",
        "--rate-429-bare",
        "0.05",
        "--rate-500",
        "0.1",
        "--rate-disconnect",
        "0.01",
        "--rate-truncated",
        "0.02",
        "--rate-stall",
        "0.01",
        "--stall-seconds",
        "9",
        "--offset-ceiling",
        "5000",
        "--token-ttl",
        "60",
        "--rate-limit",
        "5",
        "--rate-limit-burst",
        "10",
        "--shuffle-ties",
        "--insert-every",
        "3",
        "--insert-count",
        "2",
        "--fail-first",
        "4",
        "--span-days",
        "2",
        "--start",
        "2025-03-01T00:00:00+03:00",
        "--static-token",
        "a",
        "--static-token",
        "b",
    )
    assert (config.records, config.seed, config.offset_ceiling) == (50, 3, 5000)
    assert (config.latency, config.jitter, config.token_ttl) == (0.02, 0.005, 60)
    assert config.span == timedelta(days=2)
    assert config.start.isoformat() == "2025-03-01T00:00:00+03:00"
    assert config.static_tokens == ("a", "b")
    f = config.faults
    assert (f.rate_429, f.rate_429_bare, f.rate_500) == (0.1, 0.05, 0.1)
    assert (f.rate_disconnect, f.rate_truncated, f.rate_stall, f.stall_seconds) == (
        0.01,
        0.02,
        0.01,
        9.0,
    )
    assert (f.rate_limit, f.rate_limit_burst, f.shuffle_ties) == (5.0, 10, True)
    assert (f.insert_every, f.insert_count, f.fail_first) == (3, 2, 4)


async def test_serve_prints_url_and_token(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(serve(SimConfig(records=50), "127.0.0.1", 0))
    out = ""
    for _ in range(400):
        await asyncio.sleep(0.005)
        out += capsys.readouterr().out
        if "Ctrl-C" in out:
            break
    lines = dict(line.strip().split(": ", 1) for line in out.splitlines() if ": " in line)
    url, token = lines["endpoint"].strip(), lines["token"].strip()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["count"] == 50
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_module_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callsessions.sim", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "--offset-ceiling" in result.stdout
    assert "--rate-disconnect" in result.stdout
