"""The generated data: deterministic, realistic, compact, and fast to generate."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from callsessions.sim import FIELDS, STATUSES, Dataset, SimConfig, SimServer


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(5000, seed=3)


def test_same_seed_same_data() -> None:
    a, b = Dataset(500, seed=9), Dataset(500, seed=9)
    assert list(a.ids()) == list(b.ids())
    assert [a.record(i) for i in range(500)] == [b.record(i) for i in range(500)]
    assert a.insert(5) == b.insert(5)
    assert list(a.ids()) == list(b.ids())
    c = Dataset(500, seed=10)
    assert set(a.ids()).isdisjoint(c.ids())


def test_records_have_the_29_fields_with_plausible_types(dataset: Dataset) -> None:
    for rid in range(0, 5000, 7):
        rec = dataset.record(rid)
        assert tuple(rec) == FIELDS
        assert uuid.UUID(rec["id"]).version == 4
        assert rec["phone"].startswith("79")
        assert len(rec["phone"]) == 11
        assert rec["status"] in STATUSES
        assert isinstance(rec["duration"], int)
        assert rec["duration"] == rec["botDuration"] + rec["operatorDuration"]
        assert rec["transferredToOperator"] == (rec["operatorDuration"] > 0)
        assert isinstance(rec["regionId"], int)
        assert isinstance(rec["timezone"], int)
        assert float(rec["price"]) >= 0
        created = datetime.fromisoformat(rec["createdAt"])
        assert created.utcoffset() == timedelta(hours=3)
        assert datetime.fromisoformat(rec["updatedAt"]) >= created
        if rec["startedAt"] is not None:
            assert datetime.fromisoformat(rec["startedAt"]) >= created
        assert isinstance(rec["messages"], list)
        assert isinstance(rec["additional"], dict)
        assert isinstance(rec["isFinished"], bool)
        if rec["status"] == "ANSWERED":
            assert rec["messages"]
            assert {"role", "text", "time"} <= set(rec["messages"][0])
            assert rec["messagesAsString"]
            assert rec["recordPath"].endswith(".mp3")
        else:
            assert rec["duration"] == 0 or rec["status"] == "INPROGRESS"


def test_status_mix_is_that_of_a_campaign(dataset: Dataset) -> None:
    mix = Counter(dataset.record(r)["status"] for r in range(5000))
    top = {status for status, _ in mix.most_common(3)}
    assert top == {"NOANSWER", "ANSWERED", "BUSY"}
    assert len(mix) >= 10


def test_created_spans_the_window_with_tie_heavy_bursts(dataset: Dataset) -> None:
    created = list(dataset.created_sorted)
    assert created == sorted(created)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert start <= created[0]
    assert created[-1] < start + 7 * 86400
    per_second = Counter(created)
    assert max(per_second.values()) >= 5
    assert sum(n for n in per_second.values() if n > 1) > 1000


def test_ids_map_back_to_records(dataset: Dataset) -> None:
    ids = list(dataset.ids())
    assert len(set(ids)) == len(ids) == 5000
    for rid in (0, 1, 4999):
        assert dataset.rid_of(dataset.id_of(rid)) == rid
    assert dataset.rid_of("not-a-uuid") is None
    assert dataset.rid_of(str(uuid.uuid4())) is None


def test_insert_keeps_created_order() -> None:
    ds = Dataset(1000, seed=1)
    version = ds.version
    when = datetime(2026, 1, 3, 12, tzinfo=UTC)
    new = ds.insert(created=[when, when, when - timedelta(days=1)])
    assert ds.version == version + 1
    assert len(ds) == 1003
    assert list(ds.created_sorted) == sorted(ds.created_sorted)
    ids = list(ds.ids())
    assert set(new) <= set(ids)
    for record_id in new:
        rid = ds.rid_of(record_id)
        assert rid is not None
        assert ds.record(rid)["id"] == record_id
    spread = ds.insert(50, start=when, end=when + timedelta(hours=1))
    created = [ds.created[ds.rid_of(i) or 0] for i in spread]
    assert all(when.timestamp() <= c < when.timestamp() + 3600 for c in created)


async def test_inserted_records_are_served(sim: SimServer) -> None:
    [new] = sim.insert(created=[datetime(2026, 1, 2, tzinfo=UTC)])
    assert new in sim.matching_ids({"from": "2026-01-02T00:00:00+00:00"})
    assert sim.matching_ids({"id": new}) == [new]


def test_config_builds_its_dataset() -> None:
    config = SimConfig(
        records=300, seed=4, start=datetime(2025, 6, 1, tzinfo=UTC), span=timedelta(hours=1)
    )
    ds = Dataset.from_config(config)
    assert len(ds) == 300
    assert ds.created_sorted[0] >= config.start.timestamp()
    assert ds.created_sorted[-1] < (config.start + config.span).timestamp()
    with pytest.raises(ValueError, match="timezone-aware"):
        SimConfig(start=datetime(2025, 6, 1))


def test_200k_records_generate_quickly() -> None:
    started = time.perf_counter()
    ds = Dataset(200_000, seed=1)
    elapsed = time.perf_counter() - started
    assert len(ds) == 200_000
    assert elapsed < 20  # a sanity bound, not a benchmark (about 0.4 s on a laptop)
    assert ds.record(199_999)["id"] == ds.id_of(199_999)


@pytest.mark.parametrize(
    "sort", ["-duration", "startedAt", "-startedAt,duration", "-updatedAt,-duration,startedAt"]
)
def test_fast_sort_matches_the_reference_key(sort: str) -> None:
    from callsessions.sim._query import QueryEngine, parse_query

    ds = Dataset(20_000, seed=2)
    engine = QueryEngine(ds)
    query = parse_query({"sort": sort})
    result = engine.evaluate(query)
    assert result.rids(0, result.count) == sorted(ds.order, key=engine.sort_key(query.sort))
