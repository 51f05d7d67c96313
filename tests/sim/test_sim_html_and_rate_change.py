"""The HTML-with-200 fault, and changing the per-token rate limit while a pull runs."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from callsessions.sim import FaultConfig, SimConfig, SimServer


async def get(
    http: aiohttp.ClientSession, sim: SimServer, params: dict[str, str] | None = None
) -> tuple[int, str, bytes, Any]:
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with http.get(sim.search_url, params=params or {}, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.read(), resp.headers


# -- rate_html_200 -------------------------------------------------------------------------


async def test_html_200_is_a_login_page_with_a_success_status(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    sim.set_faults(rate_html_200=1.0)
    status, content_type, body, headers = await get(http, sim, {"limit": "5"})
    assert (status, content_type) == (200, "text/html")
    assert "Retry-After" not in headers
    assert b"<title>" in body and b"</title>" in body
    assert b'"items"' not in body
    assert sim.stats.faults == {"html_200": 1}
    assert sim.stats.statuses == {200: 1}


async def test_html_200_hits_downloads_unless_spared(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    sim.set_faults(rate_html_200=1.0)
    status, content_type, body, headers = await get(http, sim, {"format": "CSV"})
    assert (status, content_type) == (200, "text/html")
    assert "Content-Disposition" not in headers
    assert b"<title>" in body
    sim.set_faults(rate_html_200=1.0, apply_to_export=False)
    status, content_type, _, _ = await get(http, sim, {"format": "CSV"})
    assert (status, content_type) == (200, "text/csv")
    assert sim.stats.faults == {"html_200": 1}


def test_html_200_counts_in_the_sum_of_the_random_rates() -> None:
    FaultConfig(rate_html_200=0.4, rate_500=0.6)
    with pytest.raises(ValueError, match="add up"):
        FaultConfig(rate_html_200=0.5, rate_500=0.6)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        FaultConfig(rate_html_200=1.5)
    assert ("html_200", 0.25) in FaultConfig(rate_html_200=0.25).random_rates()


async def test_html_200_is_reproducible_and_leaves_earlier_draws_alone(
    http: aiohttp.ClientSession, clock: Any
) -> None:
    async def run(**rates: float) -> list[str | None]:
        faults = FaultConfig(seed=4, **rates)
        async with SimServer(SimConfig(records=50, clock=clock, faults=faults)) as sim:
            for _ in range(60):
                await get(http, sim)
            return [r.fault for r in sim.stats.log]

    plain = await run(rate_500=0.3)
    mixed = await run(rate_500=0.3, rate_html_200=0.3)
    assert mixed == await run(rate_500=0.3, rate_html_200=0.3)
    assert mixed.count("html_200") > 5
    # html_200 is drawn after the older kinds: a seed's 500s stay where they were
    assert [k == "500" for k in mixed] == [k == "500" for k in plain]
    assert all(p is None for p, m in zip(plain, mixed, strict=True) if m == "html_200")


# -- changing the rate limit at run time ---------------------------------------------------


async def statuses_every(
    http: aiohttp.ClientSession, sim: SimServer, clock: Any, n: int, step: float
) -> list[int]:
    """``n`` requests, the simulator's clock moving ``step`` seconds before each but the first."""
    out = []
    for i in range(n):
        if i:
            clock.advance(step)
        out.append((await get(http, sim))[0])
    return out


async def test_halving_the_rate_limit_mid_pull(
    sim: SimServer, http: aiohttp.ClientSession, clock: Any
) -> None:
    sim.set_faults(rate_limit=4.0, rate_limit_burst=1)
    assert await statuses_every(http, sim, clock, 9, 0.25) == [200] * 9  # 4/s get through
    sim.update_faults(rate_limit=2.0)
    assert sim.faults.rate_limit == 2.0
    clock.advance(0.25)
    got = await statuses_every(http, sim, clock, 41, 0.25)  # 10 seconds at 4 requests/s
    # the change reset the bucket (one request), then 2 per second: 1 + 2 * 10
    assert got.count(200) == 21
    assert got[:5] == [200, 429, 200, 429, 200]
    clock.advance(0.25)
    status, _, _, headers = await get(http, sim)
    assert (status, headers["Retry-After"]) == (429, "1")
    assert sim.stats.faults["rate_limit"] == 21


async def test_changing_the_burst_mid_pull(
    sim: SimServer, http: aiohttp.ClientSession, clock: Any
) -> None:
    sim.set_faults(rate_limit=1.0, rate_limit_burst=1)
    assert await statuses_every(http, sim, clock, 3, 0.0) == [200, 429, 429]
    sim.update_faults(rate_limit_burst=3)
    assert await statuses_every(http, sim, clock, 4, 0.0) == [200, 200, 200, 429]
    clock.advance(2.0)  # refilled at 1/s
    assert await statuses_every(http, sim, clock, 3, 0.0) == [200, 200, 429]


async def test_any_change_of_faults_resets_the_buckets(
    sim: SimServer, http: aiohttp.ClientSession, clock: Any
) -> None:
    """Documented behaviour: set_faults/update_faults forget every token's bucket."""
    sim.set_faults(rate_limit=0.5, rate_limit_burst=2)
    assert await statuses_every(http, sim, clock, 3, 0.0) == [200, 200, 429]
    sim.update_faults(rate_limit=0.5)  # same limit, new FaultConfig: a full bucket again
    assert await statuses_every(http, sim, clock, 3, 0.0) == [200, 200, 429]
    sim.update_faults(rate_limit=None)  # off
    assert await statuses_every(http, sim, clock, 5, 0.0) == [200] * 5
