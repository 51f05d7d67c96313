"""Faults in what a 200 holds: a capped or stale ``count``, and records that arrive without ids."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
import orjson
import pytest

from callsessions.sim import FaultConfig, SimConfig, SimServer


async def walk(
    search: Any, params: dict[str, str], limit: int = 1000
) -> tuple[list[int], list[dict[str, Any]]]:
    """Every page by offset until a short page: the counts reported and the items."""
    counts: list[int] = []
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        status, body, _ = await search({**params, "limit": str(limit), "offset": str(offset)})
        assert status == 200
        counts.append(body["count"])
        items.extend(body["items"])
        if len(body["items"]) < limit:
            return counts, items
        offset += limit


# -- count_cap -----------------------------------------------------------------------------


async def test_count_cap_caps_the_reported_count_only(sim: SimServer, search: Any) -> None:
    sim.set_faults(count_cap=1000)
    _, body, _ = await search({"limit": "5"})
    assert body["count"] == 1000
    assert (sim.matching_count(), sim.reported_count()) == (3000, 1000)
    # pages past the cap are still there: the cap is on the count, not on the data
    counts, items = await walk(search, {"fields": "id"})
    assert set(counts) == {1000}
    assert [i["id"] for i in items] == sim.matching_ids()
    # a result smaller than the cap is reported exactly
    busy = sim.matching_count({"status": "BUSY"})
    assert busy < 1000
    assert (await search({"status": "BUSY"}))[1]["count"] == busy


async def test_offset_ceiling_applies_independently_of_the_cap(
    http: aiohttp.ClientSession, clock: Any
) -> None:
    config = SimConfig(records=2000, seed=3, offset_ceiling=1500, clock=clock)
    async with SimServer(config) as sim:
        sim.set_faults(count_cap=1000)
        headers = {"Authorization": f"Bearer {sim.token}"}
        params = {"offset": "1400", "limit": "100", "fields": "id"}
        async with http.get(sim.search_url, params=params, headers=headers) as resp:
            body = await resp.json()
            assert (resp.status, body["count"]) == (200, 1000)
            assert [i["id"] for i in body["items"]] == sim.matching_ids()[1400:1500]
        params["offset"] = "1401"
        async with http.get(sim.search_url, params=params, headers=headers) as resp:
            assert resp.status == 400


async def test_changing_the_count_faults_is_not_hidden_by_the_page_cache(
    sim: SimServer, search: Any
) -> None:
    params = {"limit": "3", "fields": "id"}
    assert (await search(params))[1]["count"] == 3000
    sim.set_faults(count_cap=10)
    assert (await search(params))[1]["count"] == 10
    sim.update_faults(count_cap=None, count_extra=4)
    assert (await search(params))[1]["count"] == 3004
    sim.set_faults()
    assert (await search(params))[1]["count"] == 3000


def test_count_cap_is_validated() -> None:
    with pytest.raises(ValueError, match="count_cap"):
        FaultConfig(count_cap=0)
    with pytest.raises(ValueError, match="count_extra"):
        FaultConfig(count_extra=-1)


# -- count_extra ---------------------------------------------------------------------------


async def test_count_extra_lies_upward_and_pages_hold_only_real_records(
    sim: SimServer, search: Any
) -> None:
    sim.set_faults(count_extra=5)
    counts, items = await walk(search, {"fields": "id"})
    assert set(counts) == {3005}
    assert len(counts) == 4  # 3 full pages, then an empty one: the 5 extra never arrive
    assert [i["id"] for i in items] == sim.matching_ids()
    assert sim.reported_count() == 3005
    assert sim.matching_count() == 3000


async def test_count_extra_is_applied_before_the_cap(sim: SimServer, search: Any) -> None:
    sim.set_faults(count_extra=50, count_cap=3020)
    assert (await search())[1]["count"] == 3020
    busy = sim.matching_count({"status": "BUSY"})
    assert (await search({"status": "BUSY"}))[1]["count"] == busy + 50
    assert sim.reported_count({"status": "BUSY"}) == busy + 50


# -- records without an id -----------------------------------------------------------------


async def test_every_nth_record_arrives_without_an_id(sim: SimServer, search: Any) -> None:
    sim.set_faults(missing_id_every=7)
    _, items = await walk(search, {"fields": "id,createdAt"})
    assert len(items) == 3000
    missing = [pos for pos, item in enumerate(items) if "id" not in item]
    # the generated records are numbered in createdAt order: the 7th, 14th, ... lack ids
    assert missing == [pos for pos in range(3000) if (pos + 1) % 7 == 0]
    assert all("createdAt" in item for item in items)
    # ground truth: every record still exists, with its id; the hidden ones are listed
    truth = sim.matching_ids()
    hidden = sim.ids_served_without_id()
    served = [item["id"] for item in items if "id" in item]
    assert hidden == [truth[pos] for pos in missing]
    assert sorted(served + hidden) == sorted(truth)
    assert len(set(truth)) == sim.matching_count() == 3000
    assert items == sim.records({"fields": "id,createdAt"}, served=True)
    assert all("id" in r for r in sim.records({"fields": "id,createdAt"}))


async def test_missing_ids_are_stable_and_seed_independent(
    http: aiohttp.ClientSession, clock: Any
) -> None:
    faults = FaultConfig(missing_id_every=5)

    async def positions(seed: int) -> list[list[int]]:
        config = SimConfig(records=400, seed=seed, clock=clock, faults=faults)
        async with SimServer(config) as sim:
            headers = {"Authorization": f"Bearer {sim.token}"}
            out = []
            for _ in range(2):
                params = {"limit": "400", "fields": "id"}
                async with http.get(sim.search_url, params=params, headers=headers) as resp:
                    items = (await resp.json())["items"]
                out.append([pos for pos, item in enumerate(items) if "id" not in item])
            return out

    first, other_seed = await positions(1), await positions(2)
    assert first[0] == first[1] == other_seed[0] == other_seed[1]
    assert len(first[0]) == 80


async def test_missing_id_null_keeps_the_key(sim: SimServer, search: Any) -> None:
    sim.set_faults(missing_id_every=3, missing_id_null=True)
    _, body, _ = await search({"limit": "30"})  # fields absent: every field, id included
    items = body["items"]
    assert all("id" in item and "phone" in item for item in items)
    assert [pos for pos, item in enumerate(items) if item["id"] is None] == list(range(2, 30, 3))


async def test_fields_without_id_are_unaffected(sim: SimServer, search: Any) -> None:
    sim.set_faults(missing_id_every=1)
    _, body, _ = await search({"fields": "phone", "limit": "20"})
    assert all(set(item) == {"phone"} for item in body["items"])
    _, body, _ = await search({"fields": "id,phone", "limit": "20"})
    assert all(set(item) == {"phone"} for item in body["items"])


async def test_a_hidden_record_is_still_found_by_its_id(sim: SimServer, search: Any) -> None:
    sim.set_faults(missing_id_every=10)
    hidden = sim.ids_served_without_id()[0]
    _, body, _ = await search({"id": hidden, "fields": "id,status"})
    assert body["count"] == 1
    assert list(body["items"][0]) == ["status"]
    assert sim.matching_ids({"id": hidden}) == [hidden]


async def test_inserted_records_follow_the_same_rule(sim: SimServer, search: Any) -> None:
    sim.set_faults(missing_id_every=7)
    new = sim.insert(7)  # rids 3000..3006: rid 3002 is the 3003rd record, 3003 % 7 == 0
    hidden = set(sim.ids_served_without_id())
    assert [i in hidden for i in new] == [False, False, True, False, False, False, False]
    _, body, _ = await search({"id": new[2], "fields": "id,createdAt"})
    assert "id" not in body["items"][0]


async def test_downloads_lack_the_ids_too_unless_spared(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bearer {sim.token}"}

    async def download(fmt: str) -> bytes:
        params = {"format": fmt, "fields": "id,status"}
        async with http.get(sim.search_url, params=params, headers=headers) as resp:
            assert resp.status == 200
            return await resp.read()

    sim.set_faults(missing_id_every=4)
    records = orjson.loads(await download("JSON"))
    assert sum("id" not in r for r in records) == 750
    rows = list(csv.DictReader(io.StringIO((await download("CSV")).decode())))
    assert len(rows) == 3000
    assert sum(row["id"] == "" for row in rows) == 750
    sim.set_faults(missing_id_every=4, apply_to_export=False)
    assert all("id" in r for r in orjson.loads(await download("JSON")))
