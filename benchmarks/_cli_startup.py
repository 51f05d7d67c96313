"""Measurement 2 of ``benchmarks.cli``: the start-up of the command line against bare
``python -c pass``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._cli_common import PY, cli_pull_argv, log, run_child, stats
from ._sim import SIM_SPAN, SIM_START

# -- 2. start-up -----------------------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


def measure_startup(cfg: dict[str, Any], tmp: Path) -> dict[str, Any]:
    port = closed_port()
    end = SIM_START + SIM_SPAN
    commands = {
        "python -c pass": [PY, "-c", "pass"],
        "python -c 'import aiohttp'": [PY, "-c", "import aiohttp"],
        "callsessions --help": [PY, "-m", "callsessions", "--help"],
        "callsessions pull --help": [PY, "-m", "callsessions", "pull", "--help"],
        "pull to a closed port": cli_pull_argv(f"http://127.0.0.1:{port}", end,
                                               tmp / "none.jsonl", "--retry-wait", "0"),
    }
    log("  2. start-up")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in commands}
    for _ in range(cfg["startup_repeats"]):
        for name, argv in commands.items():
            runs[name].append(run_child(argv, token="x"))
    base = stats([r["wall"] for r in runs["python -c pass"]])
    rows = {}
    for name, rs in runs.items():
        s = stats([r["wall"] for r in rs])
        rows[name] = {"wall": s, "over_python": s["median"] - base["median"],
                      "rc": sorted({r["rc"] for r in rs}),
                      "cpu": stats([r["cpu"] for r in rs])}
    return {"rows": rows, "closed_port_stderr": runs["pull to a closed port"][0]["stderr"]}


def report_startup(r: dict[str, Any]) -> list[str]:
    out = ["2. Start-up (wall of a subprocess; median, spread; over = minus python -c pass)"]
    out.append("   command                    | wall s | spread | over s | CPU s | exit")
    for name, row in r["rows"].items():
        out.append(f"   {name:<26} | {row['wall']['median']:.3f}  | {row['wall']['spread']:5.0%}"
                   f"  | {row['over_python']:+.3f} | {row['cpu']['median']:.3f} | {row['rc']}")
    for name in ("callsessions --help", "callsessions pull --help", "pull to a closed port"):
        over = r["rows"][name]["over_python"]
        out.append(f"   target <= 0.15 s over python, {name}: "
                   f"{'MET' if over <= 0.15 else 'MISSED'} ({over:+.3f} s)")
    return out
