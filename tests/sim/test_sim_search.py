"""The search endpoint against API.md: every parameter and every 400."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callsessions.sim import FIELDS, SimServer


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def test_default_page_is_ten_records_sorted_by_created(sim: SimServer, search: Any) -> None:
    status, body, headers = await search()
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["count"] == 3000
    assert len(body["items"]) == 10
    created = [ts(item["createdAt"]) for item in body["items"]]
    assert created == sorted(created)
    assert [item["id"] for item in body["items"]] == sim.matching_ids()[:10]


async def test_fields_absent_returns_all_29(search: Any) -> None:
    _, body, _ = await search({"limit": "3"})
    assert all(list(item) == list(FIELDS) for item in body["items"])
    assert len(FIELDS) == 29


async def test_fields_selects_exactly_those_keys(search: Any) -> None:
    _, body, _ = await search({"fields": "phone,id,status", "limit": "5"})
    assert all(set(item) == {"phone", "id", "status"} for item in body["items"])


@pytest.mark.parametrize("fields", ["id,nope", "id,,phone", ""])
async def test_bad_fields_is_400(search: Any, fields: str) -> None:
    status, body, _ = await search({"fields": fields})
    assert status == 400
    assert set(body) == {"error", "details"}


async def test_limit_bounds(search: Any) -> None:
    status, body, _ = await search({"limit": "1000"})
    assert status == 200
    assert len(body["items"]) == 1000
    status, body, _ = await search({"limit": "1"})
    assert len(body["items"]) == 1


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-5", "1.5", "+5", " 5"])
async def test_bad_limit_is_400(search: Any, limit: str) -> None:
    status, body, _ = await search({"limit": limit})
    assert status == 400
    assert "limit" in body["error"]
    assert body["details"] == {"limit": limit}


async def test_offset_and_page(sim: SimServer, search: Any) -> None:
    ids = sim.matching_ids()
    _, by_offset, _ = await search({"limit": "7", "offset": "21", "fields": "id"})
    _, by_page, _ = await search({"limit": "7", "page": "3", "fields": "id"})
    assert [i["id"] for i in by_offset["items"]] == ids[21:28]
    assert by_page == by_offset
    _, first, _ = await search({"limit": "7", "page": "0", "fields": "id"})
    assert [i["id"] for i in first["items"]] == ids[:7]


async def test_offset_and_page_together_is_400(search: Any) -> None:
    status, body, _ = await search({"offset": "0", "page": "0"})
    assert status == 400
    assert body["details"] == {"offset": "0", "page": "0"}


@pytest.mark.parametrize(("name", "value"), [("offset", "-1"), ("page", "x"), ("offset", "")])
async def test_bad_offset_or_page_is_400(search: Any, name: str, value: str) -> None:
    status, _, _ = await search({name: value})
    assert status == 400


async def test_past_the_end_is_an_empty_page_with_the_count(search: Any) -> None:
    status, body, _ = await search({"offset": "2995", "limit": "10"})
    assert status == 200
    assert body["count"] == 3000
    assert len(body["items"]) == 5


async def test_offset_ceiling(search: Any) -> None:
    status, _, _ = await search({"offset": "9000", "limit": "1000"})
    assert status == 200
    status, body, _ = await search({"offset": "9001", "limit": "1000"})
    assert status == 400
    assert body == {
        "error": "Result window is too large",
        "details": {"offset": 9001, "limit": 1000, "max": 10000},
    }
    status, body, _ = await search({"page": "10", "limit": "1000"})
    assert status == 400


async def test_from_inclusive_to_exclusive(sim: SimServer, search: Any) -> None:
    records = sim.records({"fields": "id,createdAt"})
    pivot = records[1500]["createdAt"]
    later = records[2000]["createdAt"]
    status, body, _ = await search({"from": pivot, "to": later, "fields": "id,createdAt"})
    assert status == 200
    expected = [r["id"] for r in records if ts(pivot) <= ts(r["createdAt"]) < ts(later)]
    assert body["count"] == len(expected)
    assert [i["id"] for i in body["items"]] == expected[:10]
    assert body["items"][0]["createdAt"] == pivot


async def test_from_in_another_offset_is_the_same_instant(sim: SimServer, search: Any) -> None:
    a = {"from": "2026-01-02T00:00:00+00:00", "to": "2026-01-03T00:00:00+00:00"}
    b = {"from": "2026-01-02T05:00:00+05:00", "to": "2026-01-02T21:00:00-03:00"}
    assert sim.matching_ids(a) == sim.matching_ids(b)
    _, body, _ = await search(b)
    assert body["count"] == len(sim.matching_ids(a)) > 0


@pytest.mark.parametrize(
    "value",
    ["2026-01-02T00:00:00", "yesterday", "2026-13-01T00:00:00+00:00", "2026-01-02T00:00:00 00:00"],
)
async def test_bad_or_naive_dates_are_400(search: Any, value: str) -> None:
    status, body, _ = await search({"from": value})
    assert status == 400
    assert "from" in body["error"]
    status, _, _ = await search({"to": value})
    assert status == 400


async def test_unencoded_plus_is_refused(sim: SimServer, http: Any) -> None:
    url = sim.url + "/api/v1/search/cis/calls?from=2026-01-02T00:00:00+00:00"
    from yarl import URL

    headers = {"Authorization": f"Bearer {sim.token}"}
    async with http.get(URL(url, encoded=True), headers=headers) as resp:
        assert resp.status == 400


@pytest.mark.parametrize("column", ["updatedAt", "startedAt"])
async def test_date_field(sim: SimServer, search: Any, column: str) -> None:
    lo, hi = "2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00"
    params = {"from": lo, "to": hi, "dateField": column, "fields": f"id,{column}", "limit": "1000"}
    status, body, _ = await search(params)
    assert status == 200
    everything = sim.records({"fields": f"id,{column}"})
    expected = {
        r["id"] for r in everything if r[column] is not None and ts(lo) <= ts(r[column]) < ts(hi)
    }
    assert body["count"] == len(expected) > 0
    assert {i["id"] for i in body["items"]} <= expected
    assert len(sim.matching_ids(params)) == len(expected)


async def test_bad_date_field_is_400(search: Any) -> None:
    status, body, _ = await search({"dateField": "finishedAt"})
    assert status == 400
    assert "createdAt" in body["details"]["allowed"]


async def test_status_filter(sim: SimServer, search: Any) -> None:
    _, body, _ = await search({"status": "ANSWERED,BUSY", "fields": "status", "limit": "1000"})
    assert {i["status"] for i in body["items"]} == {"ANSWERED", "BUSY"}
    total = sim.records({"fields": "status"})
    assert body["count"] == sum(r["status"] in ("ANSWERED", "BUSY") for r in total)


@pytest.mark.parametrize("value", ["ANSWERED,WHATEVER", "answered", "ANSWERED, BUSY", ""])
async def test_bad_status_is_400(search: Any, value: str) -> None:
    status, _, _ = await search({"status": value})
    assert status == 400


async def test_phone_task_id_company_filters(sim: SimServer, search: Any) -> None:
    some = sim.records({"fields": "id,phone,taskId", "limit": "1"})[123]
    _, body, _ = await search({"phone": some["phone"], "fields": "phone"})
    assert body["count"] >= 1
    assert {i["phone"] for i in body["items"]} == {some["phone"]}
    _, body, _ = await search({"phone": "+" + some["phone"]})
    assert body["count"] >= 1
    _, body, _ = await search({"id": some["id"], "fields": "id"})
    assert body == {"count": 1, "items": [{"id": some["id"]}]}
    _, body, _ = await search({"id": "00000000-0000-4000-8000-000000000000"})
    assert body["count"] == 0
    _, body, _ = await search({"taskId": some["taskId"], "fields": "taskId", "limit": "1000"})
    assert {i["taskId"] for i in body["items"]} == {some["taskId"]}
    companies = {t.company_id for t in sim.dataset.tasks}
    counts = [(await search({"companyId": str(c)}))[1]["count"] for c in companies]
    assert sum(counts) == 3000
    status, _, _ = await search({"companyId": "one"})
    assert status == 400


async def test_keyword(sim: SimServer, search: Any) -> None:
    everything = sim.records({"fields": "id,phone,taskName,botName,messagesAsString,externalId"})

    def hits(word: str) -> set[str]:
        w = word.lower()
        return {
            r["id"]
            for r in everything
            if any(w in str(r[f]).lower() for f in r if f != "id") or w in r["id"]
        }

    for word in ["ДОСТАВК", "оператор", everything[5]["phone"][3:9], everything[9]["id"][:8]]:
        _, body, _ = await search({"keyword": word, "limit": "1"})
        assert body["count"] == len(hits(word)) > 0, word


@pytest.mark.parametrize(
    "sort",
    ["createdAt", "-createdAt", "+updatedAt", "-startedAt", "duration", "-duration,createdAt"],
)
async def test_sort(sim: SimServer, search: Any, sort: str) -> None:
    cols = "id,createdAt,updatedAt,startedAt,duration"
    _, body, _ = await search({"sort": sort, "fields": cols, "limit": "1000"})
    items = body["items"]
    keys = [(k.lstrip("+-"), k.startswith("-")) for k in sort.split(",")]

    def value(item: dict[str, Any], name: str) -> float:
        v = item[name]
        return v if name == "duration" else ts(v)

    for a, b in itertools.pairwise(items):
        for name, desc in keys:
            if a[name] is None or b[name] is None:
                assert b[name] is None  # nulls last
                break
            va, vb = value(a, name), value(b, name)
            if va != vb:
                assert (va > vb) if desc else (va < vb)
                break
    assert [i["id"] for i in items] == sim.matching_ids({"sort": sort})[:1000]


@pytest.mark.parametrize("sort", ["id", "-price", "createdAt,nope"])
async def test_unknown_sort_is_400(search: Any, sort: str) -> None:
    status, body, _ = await search({"sort": sort})
    assert status == 400
    assert body["details"]["allowed"] == ["createdAt", "updatedAt", "startedAt", "duration"]


async def test_unknown_parameters_are_ignored(search: Any) -> None:
    status, body, _ = await search({"colour": "blue", "limit": "2"})
    assert status == 200
    assert len(body["items"]) == 2


async def test_count_is_all_matches_not_the_page(sim: SimServer, search: Any) -> None:
    params = {"status": "NOANSWER", "limit": "3"}
    _, body, _ = await search(params)
    assert body["count"] == len(sim.matching_ids(params)) > 3
    assert len(body["items"]) == 3


async def test_walking_the_pages_yields_every_match_once(sim: SimServer, search: Any) -> None:
    params = {"from": "2026-01-02T00:00:00+00:00", "to": "2026-01-04T00:00:00+00:00"}
    seen: list[str] = []
    page = 0
    while True:
        _, body, _ = await search({**params, "fields": "id", "limit": "100", "page": str(page)})
        seen += [i["id"] for i in body["items"]]
        if len(body["items"]) < 100:
            break
        page += 1
    assert seen == sim.matching_ids(params)
    assert len(set(seen)) == body["count"]


async def test_matching_ids_rejects_invalid_params(sim: SimServer) -> None:
    from callsessions.sim import ParamError

    with pytest.raises(ParamError):
        sim.matching_ids({"status": "NOPE"})


async def test_window_outside_the_span_is_empty(search: Any) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    params = {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}
    status, body, _ = await search(params)
    assert (status, body) == (200, {"count": 0, "items": []})
    _, body, _ = await search(
        {"from": "2026-01-05T00:00:00+00:00", "to": "2026-01-02T00:00:00+00:00"}
    )
    assert body["count"] == 0


async def test_unknown_path_is_404(sim: SimServer, http: Any) -> None:
    async with http.get(sim.url + "/api/v1/search/cis/nothing") as resp:
        assert resp.status == 404
