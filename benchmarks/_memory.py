"""Child process of the memory measurement: one streaming pull, peak RSS before and after.

``python -m benchmarks._memory URL TOKEN START END CONCURRENCY [--raw]`` prints one JSON line.
The baseline is the peak RSS (``VmHWM``, see ``_peak_mb``) after the interpreter, the
imports, the event loop and the client exist, before the first request; the records are
counted and dropped.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from datetime import datetime
from typing import Any

import orjson

from callsessions import CallSessionsClient, PullStream, SessionQuery


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _peak_mb() -> float:
    """This process's peak RSS. ``VmHWM`` (Linux) is the high-water mark of this process's
    own memory map, which starts afresh at ``exec``. ``ru_maxrss`` is not: Linux folds the
    parent's RSS at fork time into it (across ``exec``), so in a child of a big runner it
    reports the runner's size; it is kept in the output for reference only."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _maxrss_mb()


async def _main(url: str, token: str, start: str, end: str, concurrency: int, raw: bool) -> None:
    query = SessionQuery(start=datetime.fromisoformat(start), end=datetime.fromisoformat(end))
    async with CallSessionsClient(url, token=token, concurrency=concurrency) as client:
        baseline, baseline_maxrss = _peak_mb(), _maxrss_mb()
        t0 = time.perf_counter()
        plan = await client.plan(query)
        stream: PullStream[Any] = (
            client.sessions(plan, raw=True, concurrency=concurrency)
            if raw
            else client.sessions(plan, concurrency=concurrency)
        )
        n = 0
        async with stream:
            async for _record in stream:
                n += 1
        wall = time.perf_counter() - t0
        peak, peak_maxrss = _peak_mb(), _maxrss_mb()
    out = {
        "records": n,
        "pages": stream.summary.pages,
        "windows": len(plan.windows),
        "concurrency": concurrency,
        "raw": raw,
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(peak, 1),
        "delta_mb": round(peak - baseline, 1),
        "ru_maxrss_baseline_mb": round(baseline_maxrss, 1),
        "ru_maxrss_peak_mb": round(peak_maxrss, 1),
        "wall_s": round(wall, 3),
    }
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(_main(a[0], a[1], a[2], a[3], int(a[4]), "--raw" in a[5:]))
