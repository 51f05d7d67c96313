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


def prepare_bytecode(compiled: bool) -> str:
    """Put the package's bytecode in the state the measurement asks for, and say which.

    An installed package has its modules compiled (``pip install`` writes the ``.pyc``
    files). A source checkout run with ``PYTHONDONTWRITEBYTECODE=1``, as on this machine,
    has none, so every command compiles every module it imports, again each time: about
    0.07-0.1 s of a pull's start-up here. By default the benchmark measures the installed
    state (``compileall`` on the package first); ``compiled=False`` removes the bytecode.
    """
    import compileall
    import shutil

    import callsessions

    root = Path(callsessions.__file__).resolve().parent
    if compiled:
        compileall.compile_dir(str(root), quiet=1)
        return f"package modules compiled to bytecode first, as installed ({root})"
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    writes = "off" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    return f"package modules from source, no bytecode at the start (writing it: {writes})"
