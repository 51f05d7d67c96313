"""``callsessions demo`` (a verified pull against the built-in simulator) and
``callsessions sim`` (the simulator served until Ctrl-C).

The demo writes to ``--out``, by default ``demo.jsonl`` in the user's cache folder
(``$XDG_CACHE_HOME/callsessions``, else ``~/.cache/callsessions``) rather than the working
directory: 120,000 full records are ~155 MiB. It replaces what an earlier demo left there
and prints where the file is and how big.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callsessions.cli.export import human_bytes
from callsessions.cli.lines import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, CommandError, plural
from callsessions.cli.options import Credentials, check_output
from callsessions.cli.progress import wants_progress
from callsessions.cli.pull import PullJob, run_pull
from callsessions.cli.run import prepared, run_command

if TYPE_CHECKING:
    from callsessions import ClientConfig, PullOutcome
    from callsessions.sim import SimConfig, SimServer

__all__ = ["cmd_demo", "cmd_sim", "default_demo_output"]


def default_demo_output(environ: Mapping[str, str]) -> Path:
    """``demo.jsonl`` in the user's cache folder (XDG), where a large file belongs."""
    cache = environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "callsessions" / "demo.jsonl"


def _demo_output(ns: argparse.Namespace) -> Path:
    from callsessions.sinks import format_for

    out: Path = ns.out if ns.out is not None else default_demo_output(os.environ)
    if ns.out is None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create {out.parent} ({exc}): give --out PATH") from None
    if format_for(out) in (None, "dataset", "stdout"):
        raise CommandError(f"--out {out}: use a .jsonl, .csv or .sqlite file")
    check_output(out)
    return out


def _sim_config(ns: argparse.Namespace) -> SimConfig:
    from callsessions.sim import FaultConfig, SimConfig

    return SimConfig(
        records=ns.records,
        seed=ns.seed,
        latency=0.020,
        jitter=0.030,
        faults=FaultConfig(
            rate_429=0.01,
            rate_503=0.01,
            rate_disconnect=0.005,
            rate_truncated=0.005,
            shuffle_ties=True,
        ),
    )


def _client_config(ns: argparse.Namespace) -> ClientConfig:
    from callsessions import ClientConfig, RetryPolicy

    settings: dict[str, Any] = {"concurrency": ns.concurrency}
    if ns.retry_wait is not None:
        settings["retry"] = (
            RetryPolicy.no_wait() if ns.retry_wait == 0 else RetryPolicy(initial_wait=ns.retry_wait)
        )
    return ClientConfig(**settings)


def _verdict(got: list[str], expected: list[str]) -> tuple[bool, str]:
    unique, truth = set(got), set(expected)
    duplicates = len(got) - len(unique)
    missing, unexpected = len(truth - unique), len(unique - truth)
    if duplicates or missing or unexpected:
        return False, (
            f"NOT verified: {len(unique & truth)} of {plural(len(truth), 'id')}, "
            f"{missing} missing, {unexpected} unexpected, {plural(duplicates, 'duplicate')}"
        )
    return True, f"verified: {len(unique)} of {plural(len(truth), 'id')}, no duplicates"


async def _pull_from(
    sim: SimServer, out: Path, config: ClientConfig, progress: bool
) -> tuple[PullOutcome, list[str]]:
    """Pull the simulator's week into ``out``; the outcome and the ids it should hold."""
    from callsessions import CallSessionsClient, Secret, SessionQuery

    start = sim.config.start
    end = start + sim.config.span
    calls = f"{sim.dataset.count:,} call{'' if sim.dataset.count == 1 else 's'}"
    print(
        f"simulator: {calls} from {start:%Y-%m-%d} to {end:%Y-%m-%d} at "
        f"{sim.url} (20-50 ms latency; 1% 429, 1% 503, 0.5% dropped connections, 0.5% "
        "truncated bodies; shuffled ties)",
        flush=True,
    )
    job = PullJob(
        base_url=sim.url,
        query=SessionQuery(start=start, end=end),
        config=config,
        credentials=Credentials(token=Secret(sim.token)),
        out=str(out),
        progress=progress,
    )
    async with CallSessionsClient(sim.url, token=sim.token, config=config) as client:
        outcome = await run_pull(job, client=client)
    return outcome, sim.matching_ids({"from": start.isoformat(), "to": end.isoformat()})


def cmd_demo(ns: argparse.Namespace) -> int:
    """``callsessions demo``: exit 0 when every id arrived exactly once, else 1."""
    from callsessions.pull.bulk import checkpoint_path
    from callsessions.sim import SimServer
    from callsessions.sinks import read_ids

    out = prepared(lambda: _demo_output(ns))
    sim_config = prepared(lambda: _sim_config(ns))
    config = prepared(lambda: _client_config(ns))

    async def work() -> int:
        # A fresh demo: whatever an earlier one left at --out goes.
        for stale in (out, checkpoint_path(out), out.with_name(out.name + ".partial")):
            stale.unlink(missing_ok=True)
        async with SimServer(sim_config) as sim:
            outcome, expected = await _pull_from(sim, out, config, wants_progress(ns.quiet))
        print(outcome.summary.line(), flush=True)
        size = await asyncio.to_thread(lambda: out.stat().st_size)
        print(f"output: {out} ({human_bytes(size)}; the next demo replaces it)", flush=True)
        ok, verdict = _verdict(await asyncio.to_thread(read_ids, out), expected)
        print(verdict, flush=True)
        return EXIT_OK if ok else EXIT_FAILURE

    return run_command(ns, work, lambda: "demo interrupted")


def cmd_sim(ns: argparse.Namespace) -> int:
    """``callsessions sim``: serve until Ctrl-C (exit 0)."""
    from callsessions.sim import config_from_args, serve

    config = prepared(lambda: config_from_args(ns))

    async def work() -> int:
        await serve(config, ns.host, ns.port)
        return EXIT_OK

    ns.verbose = False
    code = run_command(ns, work, lambda: "simulator stopped")
    return EXIT_OK if code == EXIT_INTERRUPTED else code
