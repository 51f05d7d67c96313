"""The simulator starts, serves a page and stops."""

from __future__ import annotations

from typing import Any

from callsessions.sim import SimServer


async def test_first_page(sim: SimServer, search: Any) -> None:
    status, body, headers = await search()
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["count"] == 3000
    assert len(body["items"]) == 10
    assert [item["id"] for item in body["items"]] == sim.matching_ids()[:10]
