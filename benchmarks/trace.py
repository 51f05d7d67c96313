"""A request timeline of one pull: when each page request was sent and answered.

    .venv/bin/python -m callsessions.sim --port 18766 --records 200000 --latency-ms 200 &
    .venv/bin/python -m benchmarks.trace --url http://127.0.0.1:18766 --concurrency 8

It wraps ``AiohttpTransport.send`` to log times; the pull is run once to warm the
simulator's page cache, then traced. Used for the analysis in RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from callsessions import AiohttpTransport, CallSessionsClient, HTTPRequest, SessionQuery
from callsessions.protocol.wire import HTTPResponse


async def trace(url: str, token: str, concurrency: int, hours: float) -> None:
    events: list[tuple[float, float, str, str]] = []
    origin = [time.perf_counter()]
    send = AiohttpTransport.send

    async def timed(
        self: AiohttpTransport, request: HTTPRequest, authorization: str | None
    ) -> HTTPResponse:
        params = dict(request.params)
        sent = time.perf_counter() - origin[0]
        response: HTTPResponse = await send(self, request, authorization)
        done = time.perf_counter() - origin[0]
        events.append((sent, done, params.get("from", "")[11:19], params.get("offset", "")))
        return response

    AiohttpTransport.send = timed  # type: ignore[method-assign]
    try:
        async with CallSessionsClient(url, token=token) as client:
            start = datetime(2026, 1, 1, tzinfo=UTC)
            plan = await client.plan(SessionQuery(start=start, end=start + timedelta(hours=hours)))
            print("planned window counts:", [w.count for w in plan.windows])
            async for _ in client.sessions(plan, concurrency=concurrency, raw=True):
                pass
            events.clear()
            origin[0] = time.perf_counter()
            async for _ in client.sessions(plan, concurrency=concurrency, raw=True):
                pass
            wall = time.perf_counter() - origin[0]
    finally:
        AiohttpTransport.send = send  # type: ignore[method-assign]
    print(f"C={concurrency}: {len(events)} requests, {wall:.3f} s")
    for sent, done, window, offset in sorted(events):
        print(f"  sent {sent:6.3f}  answered {done:6.3f}  window from {window}  offset {offset}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the simulator's service root")
    parser.add_argument("--token", default="sim-static-token")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--hours", type=float, default=42.0, help="range from 2026-01-01")
    ns = parser.parse_args()
    asyncio.run(trace(ns.url, ns.token, ns.concurrency, ns.hours))


if __name__ == "__main__":
    main()
