"""Faults: each kind, reproducibility from the seed, and changing them at run time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest

from callsessions.sim import FaultConfig, SimConfig, SimServer


async def raw_get(
    http: aiohttp.ClientSession, sim: SimServer, params: dict[str, str] | None = None
) -> tuple[int, bytes, Any]:
    headers = {"Authorization": f"Bearer {sim.token}"}
    async with http.get(sim.search_url, params=params or {}, headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers


async def statuses(http: aiohttp.ClientSession, sim: SimServer, n: int) -> list[int]:
    return [(await raw_get(http, sim))[0] for _ in range(n)]


async def test_429_with_retry_after(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_429=1.0, retry_after=7)
    status, body, headers = await raw_get(http, sim)
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert set(orjson.loads(body)) == {"error", "details"}
    assert sim.stats.faults["429"] == 1


async def test_429_without_retry_after(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_429_bare=1.0)
    status, _, headers = await raw_get(http, sim)
    assert status == 429
    assert "Retry-After" not in headers


async def test_500_is_json_and_gateway_errors_are_html(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    sim.set_faults(rate_500=1.0)
    status, body, _ = await raw_get(http, sim)
    assert status == 500
    assert orjson.loads(body)["error"]
    for code in (502, 503):
        sim.set_faults(**{f"rate_{code}": 1.0})
        status, body, headers = await raw_get(http, sim)
        assert status == code
        assert headers["Content-Type"].startswith("text/html")
        assert str(code).encode() in body
    assert sim.stats.statuses == {500: 1, 502: 1, 503: 1}


async def test_disconnect_mid_body(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_disconnect=1.0)
    headers = {"Authorization": f"Bearer {sim.token}"}

    async def fetch() -> None:
        async with http.get(sim.search_url, params={"limit": "100"}, headers=headers) as resp:
            assert resp.status == 200
            await resp.read()

    with pytest.raises(aiohttp.ClientPayloadError):
        await fetch()
    assert sim.stats.faults["disconnect"] == 1
    sim.set_faults()
    assert (await raw_get(http, sim))[0] == 200


async def test_disconnect_mid_download(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_disconnect=1.0)
    headers = {"Authorization": f"Bearer {sim.token}"}

    async def fetch() -> None:
        async with http.get(sim.search_url, params={"format": "CSV"}, headers=headers) as resp:
            await resp.read()

    with pytest.raises(aiohttp.ClientPayloadError):
        await fetch()


async def test_truncated_json_with_matching_length(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    sim.set_faults(rate_truncated=1.0)
    status, body, headers = await raw_get(http, sim, {"limit": "50"})
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)


async def test_truncated_download_ends_early(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_truncated=1.0)
    status, body, _ = await raw_get(http, sim, {"format": "CSV", "fields": "id"})
    assert status == 200
    assert body.count(b"\n") < sim.matching_count()


async def test_stall_outlasts_a_client_timeout(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_stall=1.0, stall_seconds=5.0)
    headers = {"Authorization": f"Bearer {sim.token}"}
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=0.05)

    async def fetch() -> None:
        async with http.get(sim.search_url, headers=headers, timeout=timeout) as resp:
            await resp.read()

    with pytest.raises(asyncio.TimeoutError):
        await fetch()
    assert time.perf_counter() - started < 1.0


async def test_short_stall_then_normal_answer(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_stall=1.0, stall_seconds=0.02)
    status, body, _ = await raw_get(http, sim)
    assert status == 200
    assert orjson.loads(body)["count"] == 3000


async def test_fail_first(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(fail_first=3)
    assert await statuses(http, sim, 5) == [503, 503, 503, 200, 200]
    sim.set_faults(fail_first=1, fail_first_status=429, retry_after=2)
    status, _, headers = await raw_get(http, sim)
    assert (status, headers["Retry-After"]) == (429, "2")
    assert sim.stats.faults["fail_first"] == 4


async def test_rate_limit_per_token(
    sim: SimServer, http: aiohttp.ClientSession, clock: Any
) -> None:
    sim.set_faults(rate_limit=2.0, rate_limit_burst=2)
    assert await statuses(http, sim, 3) == [200, 200, 429]
    status, _, headers = await raw_get(http, sim)
    assert (status, headers["Retry-After"]) == (429, "1")
    # another token has its own bucket
    other = sim.mint_token()
    async with http.get(sim.search_url, headers={"Authorization": f"Bearer {other}"}) as resp:
        assert resp.status == 200
    clock.advance(0.5)  # one request's worth refills
    assert await statuses(http, sim, 2) == [200, 429]
    clock.advance(10)
    assert await statuses(http, sim, 3) == [200, 200, 429]
    assert sim.stats.faults["rate_limit"] == 4


async def test_random_faults_are_reproducible_from_the_seed(
    http: aiohttp.ClientSession, clock: Any
) -> None:
    faults = FaultConfig(rate_429=0.2, rate_500=0.2, rate_503=0.1, seed=11)

    async def run() -> list[int]:
        async with SimServer(SimConfig(records=100, clock=clock, faults=faults)) as sim:
            return await statuses(http, sim, 40)

    first, second = await run(), await run()
    assert first == second
    assert {429, 500, 503, 200} <= set(first)


async def test_set_faults_reseeds(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.faults = FaultConfig(rate_500=0.5)
    first = await statuses(http, sim, 20)
    sim.faults = FaultConfig(rate_500=0.5)
    assert await statuses(http, sim, 20) == first
    assert sim.faults == FaultConfig(rate_500=0.5)


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="add up"):
        FaultConfig(rate_500=0.6, rate_503=0.6)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        FaultConfig(rate_429=1.5)
    with pytest.raises(ValueError, match="rate_limit"):
        FaultConfig(rate_limit=0)


async def test_shuffle_ties(http: aiohttp.ClientSession, clock: Any) -> None:
    config = SimConfig(records=2000, seed=5, burst_fraction=0.9, clock=clock)
    async with SimServer(config) as sim:
        stable = sim.matching_ids()
        sim.set_faults(shuffle_ties=True)
        params = {"fields": "id,createdAt", "limit": "200", "offset": "100"}
        pages = [orjson.loads((await raw_get(http, sim, params))[1])["items"] for _ in range(5)]
        created_of = {r["id"]: r["createdAt"] for r in sim.records({"fields": "id,createdAt"})}
        orders = {tuple(i["id"] for i in page) for page in pages}
        assert len(orders) > 1  # the order changes from request to request
        for page in pages:
            ids = [i["id"] for i in page]
            assert len(set(ids)) == len(ids)
            # still sorted by createdAt: only ties move
            assert [created_of[i] for i in ids] == [created_of[i] for i in stable[100:300]]
        # a page boundary inside a tie group lets records cross it
        assert any({i["id"] for i in page} != set(stable[100:300]) for page in pages)


async def test_shuffle_ties_on_a_sorted_result(http: aiohttp.ClientSession, clock: Any) -> None:
    async with SimServer(SimConfig(records=1500, seed=2, clock=clock)) as sim:
        sim.set_faults(shuffle_ties=True)
        params = {"sort": "-duration", "fields": "id,duration", "limit": "300", "offset": "600"}
        expected = sim.records({"sort": "-duration", "fields": "id,duration"})[600:900]
        for _ in range(3):
            items = orjson.loads((await raw_get(http, sim, params))[1])["items"]
            assert [i["duration"] for i in items] == [r["duration"] for r in expected]


async def test_live_inserts_shift_offsets(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(insert_every=2, insert_count=5)
    counts = [orjson.loads((await raw_get(http, sim))[1])["count"] for _ in range(6)]
    assert counts == [3000, 3005, 3005, 3010, 3010, 3015]
    assert len(sim.dataset) == 3015
    assert len(sim.matching_ids()) == 3015


async def test_latency_and_jitter(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.latency = 0.02
    sim.jitter = 0.01
    started = time.perf_counter()
    await raw_get(http, sim)
    assert 0.02 <= time.perf_counter() - started < 0.5


async def test_stats_prove_what_was_sent(sim: SimServer, http: aiohttp.ClientSession) -> None:
    assert sim.stats.search_requests == 0
    await raw_get(http, sim, {"status": "BUSY"})
    await raw_get(http, sim, {"limit": "0"})
    assert sim.stats.search_requests == 2
    assert sim.stats.endpoints == {"search": 2}
    assert sim.stats.statuses == {200: 1, 400: 1}
    assert [r.params for r in sim.stats.log] == [{"status": "BUSY"}, {"limit": "0"}]
    sim.stats.reset()
    assert sim.stats.total == 0


async def test_faults_can_spare_exports(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_503=1.0, apply_to_export=False)
    assert (await raw_get(http, sim, {"format": "JSON"}))[0] == 200
    assert (await raw_get(http, sim))[0] == 503
