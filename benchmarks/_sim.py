"""The simulator in a separate process: ``python -m callsessions.sim --port 0 ...``.

The child is started in its own process (so that its CPU never counts against the client's
``time.process_time()``), its printed URL and token are parsed, and it is killed when the
runner leaves, also when the runner itself dies (``PR_SET_PDEATHSIG`` on Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

__all__ = ["SIM_SPAN", "SIM_START", "SimProcess"]

SIM_START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
SIM_SPAN = timedelta(days=7)

_LIVE: set[SimProcess] = set()


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class SimProcess:
    """One simulator child process. ``url`` and ``token`` are known after ``start()``."""

    def __init__(
        self,
        records: int,
        latency_ms: float = 0.0,
        offset_ceiling: int = 10_000,
        seed: int = 7,
        record_cache_mb: float | None = None,
    ) -> None:
        self.records = records
        #: the simulator's cache of rendered records (None: its default, 256 MB)
        self.record_cache_mb = record_cache_mb
        self.latency_ms = latency_ms
        self.offset_ceiling = offset_ceiling
        self.seed = seed
        self.url = ""
        self.token = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "callsessions.sim",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--records",
            str(self.records),
            "--seed",
            str(self.seed),
            "--start",
            SIM_START.isoformat(),
            "--span-days",
            str(SIM_SPAN.days),
            "--latency-ms",
            str(self.latency_ms),
            "--offset-ceiling",
            str(self.offset_ceiling),
            *(
                ["--record-cache-mb", str(self.record_cache_mb)]
                if self.record_cache_mb is not None
                else []
            ),
        ]

    def start(self, timeout: float = 120.0) -> SimProcess:
        self._proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if m := re.search(r"service root:\s*(\S+)", line):
                self.url = m.group(1)
            elif m := re.search(r"token:\s*(\S+)", line):
                self.token = m.group(1)
            if self.url and self.token:
                break
            if time.monotonic() > deadline:
                break
        if not (self.url and self.token):
            self.stop()
            raise RuntimeError(f"the simulator did not start: {' '.join(self.argv)}")
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the simulator is not on loopback: {self.url}")
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    """Kill every simulator this process started (atexit / signal handler)."""
    for sim in list(_LIVE):
        sim.stop()


def install_cleanup() -> None:
    import atexit

    atexit.register(stop_all)

    def on_signal(signum: int, _frame: object) -> None:
        stop_all()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
