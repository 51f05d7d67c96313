"""The real client of the last commit before issue 11's limiter (``OLD_REF``), extracted
with ``git archive`` to a temporary directory and run in a child process, for
``benchmarks.ratelimit``."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from callsessions.sim import SimServer

from ._ratelimit_common import PAGE, log, outcome
from ._sim import SIM_SPAN, SIM_START, _die_with_parent

#: the last commit before issue 11's limiter (the parent of 8a4ad91): "today" in the issue
OLD_REF = "d2823b30ec0fd4e35ac18f9db21d49e9b84ab42b"
OLD = "d2823b3"


# The client before issue 11, in a child process whose ``python -c`` runs in that client's
# source tree (so it imports that ``callsessions``); URL and token arrive on stdin.
OLD_CHILD = """
import asyncio, json, sys, time
from datetime import datetime
import callsessions
from callsessions import CallSessionsClient, SessionQuery

async def main(a):
    q = SessionQuery(start=datetime.fromisoformat(a["start"]),
                     end=datetime.fromisoformat(a["end"]), page_size=a["page"])
    ids, error, t0 = [], None, time.perf_counter()
    async with CallSessionsClient(a["url"], token=a["token"]) as client:
        stream = client.sessions(q, raw=True, concurrency=a["concurrency"])
        try:
            async with stream:
                async for r in stream:
                    ids.append(r.get("id"))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:160]
    error = error or (None if stream.summary.complete else "incomplete")
    print(json.dumps({"wall": time.perf_counter() - t0, "ids": ids, "error": error,
                      "source": callsessions.__file__}))

asyncio.run(main(json.loads(sys.stdin.read())))
"""


def old_source(ref: str | None) -> Path | None:
    """The ``callsessions`` package of commit ``ref`` extracted to a temporary directory
    (``git archive``, read-only: the working tree is not touched); None if unavailable."""
    if not ref:
        return None
    got = subprocess.run(["git", "archive", ref, "callsessions"], capture_output=True)
    if got.returncode != 0:
        log(f"  no old client: git archive {ref}: {got.stderr.decode()[:200]}")
        return None
    root = Path(tempfile.mkdtemp(prefix="callsessions-old-"))
    with tarfile.open(fileobj=io.BytesIO(got.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


async def old_pull(
    sim: SimServer, source: Path, concurrency: int | None, limit_s: float
) -> dict[str, Any]:
    """One pull by the client of ``source`` (see ``OLD_CHILD``), against ``sim``."""
    sim.stats.reset()
    args = {"url": sim.url, "token": sim.token, "concurrency": concurrency, "page": PAGE,
            "start": SIM_START.isoformat(), "end": (SIM_START + SIM_SPAN).isoformat()}
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OLD_CHILD, cwd=source, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(orjson.dumps(args)), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return outcome(sim, OLD, concurrency, [], "timeout", time.perf_counter() - t0)
    got = orjson.loads(out)
    if not str(got["source"]).startswith(str(source)):
        raise RuntimeError(f"the old client imported {got['source']}, not {source}")
    return outcome(sim, OLD, concurrency, got["ids"], got["error"], got["wall"])
