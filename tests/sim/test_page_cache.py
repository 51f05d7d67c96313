"""The simulator's page cache: repeated queries answered from it, never stale."""

from __future__ import annotations

import aiohttp

from callsessions.sim import FaultConfig, SimConfig, SimServer


async def _get(http: aiohttp.ClientSession, sim: SimServer, **params: str) -> bytes:
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with http.get(sim.search_url, params=params, headers=headers) as resp:
        assert resp.status == 200
        return await resp.read()


async def test_repeated_query_is_cached_and_inserts_invalidate() -> None:
    async with SimServer(SimConfig(records=500, seed=1)) as sim, aiohttp.ClientSession() as http:
        first = await _get(http, sim, limit="50", offset="0")
        assert len(sim.state.page_cache) == 1
        again = await _get(http, sim, limit="50", offset="0")
        assert again == first
        assert len(sim.state.page_cache) == 1, "answered from the cache"
        sim.insert(5)
        after = await _get(http, sim, limit="50", offset="0")
        assert b'"count":505' in after, "an insert is seen at once"
        assert len(sim.state.page_cache) == 2


async def test_shuffled_ties_bypass_the_cache() -> None:
    config = SimConfig(records=300, seed=2, faults=FaultConfig(shuffle_ties=True))
    async with SimServer(config) as sim, aiohttp.ClientSession() as http:
        await _get(http, sim, limit="100")
        assert len(sim.state.page_cache) == 0
