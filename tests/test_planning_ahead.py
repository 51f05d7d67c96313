"""Planning a range that needs windows in one round trip (issue 15): with ``count_ahead``
the bucket counts leave with the range's first page instead of after its answer.

A fake server behind ``MockTransport`` holds the range's first page until it has seen the
four bucket counts (with a generous timeout, so that a planner which waits for the page
first fails instead of hanging), and records, for every count, whether that page had been
answered when the count arrived. The pulls must stay exact either way."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from callsessions import (
    CallSessionsClient,
    HTTPRequest,
    HTTPResponse,
    MockTransport,
    RetryPolicy,
    SessionQuery,
    json_response,
)

START = datetime.fromisoformat("2026-05-01T00:00:00+00:00")
END = START + timedelta(days=2)


class HoldingServer:
    """``records`` calls a minute apart; the range's first page waits for the counts."""

    def __init__(self, records: int, *, hold: bool) -> None:
        self.rows = [
            {"id": f"id-{i:05}", "createdAt": (START + timedelta(minutes=i)).isoformat()}
            for i in range(records)
        ]
        self.hold = hold
        self.first_answered = False
        #: for each count request, in arrival order: had the first page been answered?
        self.counts_after_first: list[bool] = []
        self._four = asyncio.Event()

    async def __call__(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        params = dict(request.params)
        lo, hi = datetime.fromisoformat(params["from"]), datetime.fromisoformat(params["to"])
        rows = [r for r in self.rows if lo <= datetime.fromisoformat(r["createdAt"]) < hi]
        offset, limit = int(params.get("offset", 0)), int(params["limit"])
        if limit == 1 and "offset" not in params:
            self.counts_after_first.append(self.first_answered)
            if len(self.counts_after_first) >= 4:
                self._four.set()
        elif (lo, hi, offset) == (START, END, 0):
            if self.hold:
                await asyncio.wait_for(self._four.wait(), timeout=10)
            self.first_answered = True
        return json_response(200, {"count": len(rows), "items": rows[offset : offset + limit]})


async def pull(server: HoldingServer, ahead: bool) -> list[str]:
    async with CallSessionsClient(
        "https://api.test",
        token="t0ken",
        transport=MockTransport(server),
        retry=RetryPolicy.no_wait(),
        page_size=10,
        offset_ceiling=50,  # windows of at most 40 records (fill 0.8)
        concurrency=8,
        count_ahead=ahead,
    ) as client:
        return [
            r["id"] async for r in client.sessions(SessionQuery(start=START, end=END), raw=True)
        ]


@pytest.mark.parametrize("ahead", [True, False], ids=["count-ahead", "no-count-ahead"])
async def test_the_bucket_counts_leave_with_the_first_page(ahead: bool) -> None:
    server = HoldingServer(400, hold=ahead)  # 400 records: 4 buckets, 10+ windows
    ids = await pull(server, ahead)
    assert ids == [r["id"] for r in server.rows], "exact and in order either way"
    assert len(server.counts_after_first) == 4, "the four buckets, counted once"
    if ahead:
        assert server.counts_after_first == [False] * 4, "all four before the page's answer"
    else:
        assert server.counts_after_first == [True] * 4, "all four after the page's answer"


async def test_a_range_too_large_for_four_buckets_is_counted_again_more_finely() -> None:
    # 1,000 records with windows of 40: bucket_count wants 5 buckets, so the four counted
    # ahead are dropped and five are counted once the total is known.
    server = HoldingServer(1_000, hold=True)
    ids = await pull(server, ahead=True)
    assert ids == [r["id"] for r in server.rows]
    assert server.counts_after_first[:4] == [False] * 4
    assert server.counts_after_first[4:] == [True] * 5


async def test_a_failed_first_page_leaves_no_count_behind() -> None:
    """The first page's error is what the pull raises; the counts sent with it are
    cancelled and awaited, so no task outlives the pull."""
    counts_started = asyncio.Event()

    async def handler(request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        params = dict(request.params)
        if "offset" not in params:
            counts_started.set()
            await asyncio.sleep(3600)  # a count that would never answer
        await counts_started.wait()
        return json_response(400, {"error": "bad filter"})

    from callsessions import CallSessionsError

    async with CallSessionsClient(
        "https://api.test",
        token="t0ken",
        transport=MockTransport(handler),
        retry=RetryPolicy.no_wait(),
    ) as client:
        stream = client.sessions(SessionQuery(start=START, end=END), raw=True)
        with pytest.raises(CallSessionsError, match="bad filter"):
            [r async for r in stream]
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert left == [], f"tasks left running: {left}"
    # The four counts were cancelled unanswered, and still count as spent.
    assert stream.summary.planning_requests == 4


def test_count_ahead_is_a_boolean() -> None:
    from callsessions import ClientConfig, InvalidQueryError

    assert ClientConfig().count_ahead is True
    with pytest.raises(InvalidQueryError, match="count_ahead"):
        ClientConfig(count_ahead="no")  # type: ignore[arg-type]
