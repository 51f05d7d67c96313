"""The cache of rendered list records: bounded, reused across pages, never seen by a client."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from callsessions.sim import FaultConfig, SimConfig, SimState, add_arguments, config_from_args


def _state(cache_mb: float, **faults: object) -> SimState:
    config = SimConfig(records=4000, seed=3, record_cache_mb=cache_mb, offset_ceiling=100_000,
                       faults=FaultConfig(**faults))  # type: ignore[arg-type]
    return SimState(config)


def _page(offset: int, fields: str | None = None, limit: int = 400) -> dict[str, str]:
    params = {"limit": str(limit), "offset": str(offset)}
    if fields is not None:
        params["fields"] = fields
    return params


def test_an_overlapping_page_renders_only_its_new_records() -> None:
    state = _state(256)
    cache = state.renderer.cache
    first = state.page_body(_page(0))
    assert cache.records == 400
    shifted = state.page_body(_page(200))
    assert cache.records == 600, "the 200 records already rendered came from the cache"
    first_items = orjson.loads(first)["items"]
    assert orjson.loads(shifted)["items"][:200] == first_items[200:]
    assert state.page_body(_page(200, "id,phone")) == _state(0).page_body(_page(200, "id,phone"))
    assert cache.records == 1000, "another projection is cached apart"


def test_the_cache_stays_within_its_budget_and_keeps_what_it_has() -> None:
    state = _state(0.25)  # 262,144 bytes: about 180 records with every field
    cache = state.renderer.cache
    for offset in range(0, 4000, 400):
        state.page_body(_page(offset, limit=100))
        assert cache.size <= cache.limit_bytes
    kept = cache.records
    assert 0 < kept < 1000
    state.page_body(_page(0, limit=100))
    assert cache.records == kept, "the first pages were kept, nothing was added"
    state.page_body(_page(0, "id", limit=1000))
    assert cache.size <= cache.limit_bytes
    assert cache.records == 1000, "a new projection pushed the older one out"


def test_no_cache_keeps_nothing_and_answers_the_same() -> None:
    off, on = _state(0), _state(256)
    for offset in (0, 150, 3900):
        assert off.page_body(_page(offset)) == on.page_body(_page(offset))
    assert off.renderer.cache.records == 0
    assert off.renderer.cache.size == 0


def test_cached_records_follow_a_change_of_the_missing_id_fault() -> None:
    state = _state(256)
    plain = state.page_body(_page(0, "id,phone"))
    state.update_faults(missing_id_every=2)
    without = orjson.loads(state.page_body(_page(0, "id,phone")))["items"]
    assert ["id" in item for item in without[:4]] == [True, False, True, False]
    state.update_faults(missing_id_null=True)
    nulls = orjson.loads(state.page_body(_page(0, "id,phone")))["items"]
    assert [item["id"] is None for item in nulls[:4]] == [False, True, False, True]
    state.update_faults(missing_id_every=0, missing_id_null=False)
    assert state.page_body(_page(0, "id,phone")) == plain


def test_inserted_records_are_rendered_not_mistaken_for_cached_ones() -> None:
    state = _state(256)
    params = _page(0, "id,createdAt", limit=1000)
    before = orjson.loads(state.page_body(params))["items"]
    start = datetime.fromtimestamp(state.dataset.start, UTC)
    new_ids = state.insert(50, start=start, end=start + timedelta(hours=1))
    after = orjson.loads(state.page_body(params))["items"]
    assert after == state.records(params, served=True)[:1000]
    assert set(new_ids) <= {item["id"] for item in after}, "they sort into the first page"
    assert len({item["id"] for item in after} - {item["id"] for item in before}) == 50


def test_the_option_and_its_validation() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert config_from_args(parser.parse_args([])).record_cache_mb == 256.0
    assert config_from_args(parser.parse_args(["--record-cache-mb", "0"])).record_cache_mb == 0
    with pytest.raises(ValueError, match="record_cache_mb"):
        SimConfig(record_cache_mb=-1)
