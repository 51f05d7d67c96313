"""What the measurements of ``benchmarks.cli`` share: constants, statistics, and running
the command line as a child process with its wall time and CPU."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ._sim import SIM_START

SEARCH_PATH = "/api/v1/search/cis/calls"
PAGE = 1000
PY = sys.executable


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median and spread ((max - min) / median) of repeated measurements."""
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med else 0.0
    return {"median": med, "min": min(values), "max": max(values), "spread": spread,
            "n": len(values)}


def iso(t: datetime) -> str:
    return t.isoformat()


def cli_pull_argv(url: str, end: datetime, out: Path, *extra: str) -> list[str]:
    return [PY, "-m", "callsessions", "pull", "--base-url", url, "--from", iso(SIM_START),
            "--to", iso(end), "--out", str(out), "--overwrite", "-q", *extra]


def run_child(argv: Sequence[str], token: str = "") -> dict[str, Any]:
    """Run ``argv`` to its end: wall time, and the CPU of that child alone (``wait4``)."""
    env = dict(os.environ, CALLSESSIONS_TOKEN=token) if token else dict(os.environ)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rc": proc.returncode,
            "stderr": err[-500:]}


def proc_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a live process, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)
