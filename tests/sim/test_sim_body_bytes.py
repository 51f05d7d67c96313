"""List bodies are byte-for-byte what the simulator has always sent.

The search answer is rendered without building a dict per record (``_render.py``), so these
tests pin its bytes two ways:

* against digests recorded from the implementation before that change (the dict records of
  ``Dataset.record``, projected by ``select`` and encoded by ``orjson.dumps``), over HTTP, for
  every kind of query: all fields, subsets, sorts, filters, offsets, pages, inserted records,
  and the faults that alter a body (``count_cap``, ``count_extra``, ``missing_id_every`` with
  and without ``missing_id_null``, ``truncated``, ``shuffle_ties``, ``insert_every``);
* against that dict path live (``select`` + ``orjson.dumps``, kept as the reference), on many
  more pages than the digests cover.

``python tests/sim/test_sim_body_bytes.py --write`` re-records the digests; only do that when
a body is *meant* to change.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from callsessions.sim import FIELDS, Dataset, FaultConfig, SimConfig, SimServer, SimState

DIGESTS = Path(__file__).parent / "data" / "body_digests.json"
CONFIG = SimConfig(records=3000, seed=7, offset_ceiling=100_000)
Params = dict[str, str]
ParamsOf = Callable[[Dataset], list[Params]]

SUBSETS = (
    "id",
    "createdAt,id",
    "id,id,phone",
    "messages,additional,markers,nps,dialogResults",
    "id,phone,duration,status,createdAt,updatedAt,startedAt,price",
    "recordPath,linkToLog,responder,transferredToOperator,operatorDuration,botDuration",
    "taskId,taskName,botId,botName,shortNumber,regionId,timezone,externalId,isFinished",
    "messagesAsString,startedAt",
    ",".join(reversed(FIELDS)),
)


def _plain(ds: Dataset) -> list[Params]:
    pages: list[Params] = [
        {},
        {"limit": "1000"},
        {"limit": "1000", "offset": "1500"},
        {"limit": "500", "page": "3"},
        {"limit": "7", "offset": "2995"},
        {"limit": "50", "offset": "5000"},
        {"limit": "1", "page": "0"},
    ]
    pages += [{"limit": "300", "offset": "250", "fields": f} for f in SUBSETS]
    return pages


def _sorted(ds: Dataset) -> list[Params]:
    sorts = ("-duration", "startedAt", "-startedAt,+duration", "updatedAt", "-createdAt",
             " createdAt,-duration")
    return [{"limit": "400", "offset": "100", "sort": s} for s in sorts] + [
        {"limit": "200", "sort": "-duration", "fields": "id,duration,startedAt"},
    ]


def _filtered(ds: Dataset) -> list[Params]:
    record = ds.record(1234)
    return [
        {"limit": "300", "status": "ANSWERED,BUSY"},
        {"limit": "300", "status": "ANSWERED", "fields": "id,messages,price"},
        {"limit": "1000", "from": "2026-01-02T00:00:00+00:00", "to": "2026-01-03T12:00:00+03:00"},
        {"limit": "100", "dateField": "startedAt", "from": "2026-01-05T00:00:00+00:00"},
        {"limit": "100", "dateField": "updatedAt", "to": "2026-01-02T00:00:00+00:00",
         "sort": "-updatedAt"},
        {"limit": "100", "keyword": "Опрос"},
        {"limit": "100", "keyword": "crm-1"},
        {"limit": "100", "phone": "+" + record["phone"]},
        {"limit": "100", "taskId": record["taskId"], "offset": "40"},
        {"limit": "100", "id": record["id"]},
        {"limit": "100", "companyId": "2", "status": "NOANSWER"},
    ]


def _missing_id(ds: Dataset) -> list[Params]:
    return [
        {"limit": "100"},
        {"limit": "100", "fields": "id"},
        {"limit": "100", "fields": "phone,id,status"},
        {"limit": "100", "fields": "phone,status"},
        {"limit": "100", "fields": "phone,id"},
    ]


def _repeat(ds: Dataset) -> list[Params]:
    return [{"limit": "200", "sort": "createdAt"}, {"limit": "200", "sort": "createdAt"},
            {"limit": "200", "offset": "150", "sort": "-duration", "fields": "id,duration"}]


#: (name, faults, the requests in order, records to insert before them)
CASES: list[tuple[str, FaultConfig, ParamsOf, int]] = [
    ("plain", FaultConfig(), _plain, 0),
    ("sorted", FaultConfig(), _sorted, 0),
    ("filtered", FaultConfig(), _filtered, 0),
    ("inserted", FaultConfig(), lambda ds: _plain(ds)[:4] + _sorted(ds)[:2], 25),
    ("count_cap", FaultConfig(count_cap=100), lambda ds: _plain(ds)[:3], 0),
    ("count_extra", FaultConfig(count_extra=7), lambda ds: _plain(ds)[4:6], 0),
    ("missing_id", FaultConfig(missing_id_every=3), _missing_id, 0),
    ("missing_id_null", FaultConfig(missing_id_every=2, missing_id_null=True), _missing_id, 0),
    ("truncated", FaultConfig(rate_truncated=1.0), lambda ds: _plain(ds)[:3], 0),
    ("shuffle_ties", FaultConfig(shuffle_ties=True, seed=3), _repeat, 0),
    ("insert_every", FaultConfig(insert_every=2, insert_count=3, seed=4), _repeat, 0),
]


async def _bodies(
    name: str, faults: FaultConfig, params_of: ParamsOf, insert: int, cache_mb: float = 256.0
) -> list[bytes]:
    config = SimConfig(records=CONFIG.records, seed=CONFIG.seed, record_cache_mb=cache_mb,
                       offset_ceiling=CONFIG.offset_ceiling, faults=faults)
    out: list[bytes] = []
    async with SimServer(config) as sim, aiohttp.ClientSession() as http:
        if insert:
            sim.insert(insert)
        headers = {"Authorization": f"Bearer {sim.token}"}
        for params in params_of(sim.dataset):
            async with http.get(sim.search_url, params=params, headers=headers) as resp:
                assert resp.status == 200, (name, params, await resp.text())
                out.append(await resp.read())
    return out


def _digest(body: bytes) -> str:
    return f"{len(body)}:{hashlib.sha256(body).hexdigest()}"


async def _all_digests() -> dict[str, list[str]]:
    return {case[0]: [_digest(b) for b in await _bodies(*case)] for case in CASES}


@pytest.mark.parametrize("cache_mb", [256.0, 0.2, 0.0], ids=["cache", "small_cache", "no_cache"])
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
async def test_bodies_match_the_recorded_ones(
    case: tuple[str, FaultConfig, ParamsOf, int], cache_mb: float
) -> None:
    recorded = orjson.loads(DIGESTS.read_bytes())[case[0]]
    bodies = await _bodies(*case, cache_mb=cache_mb)
    assert [_digest(b) for b in bodies] == recorded
    assert len(bodies) >= 2, "every case makes several requests"


def _reference(state: SimState, params: Mapping[str, str]) -> bytes:
    """The body as the simulator built it before ``_render``: the records as served (dicts
    from ``Dataset.record``, projected), then ``orjson.dumps``."""
    limit = int(params.get("limit", "10"))
    offset = int(params["page"]) * limit if "page" in params else int(params.get("offset", "0"))
    items = state.records(params, served=True)[offset : offset + limit]
    return orjson.dumps({"count": state.reported_count(params), "items": items})


@pytest.mark.parametrize(
    "faults",
    [FaultConfig(), FaultConfig(missing_id_every=5), FaultConfig(missing_id_every=1),
     FaultConfig(missing_id_every=4, missing_id_null=True, count_cap=10, count_extra=3)],
    ids=["none", "missing_id", "no_ids_at_all", "null_ids_and_counts"],
)
def test_rendered_pages_equal_the_dict_path(faults: FaultConfig) -> None:
    state = SimState(SimConfig(records=2500, seed=11, faults=faults, offset_ceiling=100_000))
    state.insert(40)
    fields_choices = [None, *SUBSETS, "nps", "price,id", "startedAt,startedAt"]
    checked = 0
    for i, fields in enumerate(fields_choices):
        for sort in (None, "-duration", "-startedAt"):
            params: Params = {"limit": str(1 + 97 * i % 1000), "offset": str(191 * i)}
            if fields is not None:
                params["fields"] = fields
            if sort is not None:
                params["sort"] = sort
            assert state.page_body(params) == _reference(state, params), params
            checked += 1
    assert checked == 3 * len(fields_choices)


def test_every_record_renders_like_its_dict() -> None:
    state = SimState(SimConfig(records=6000, seed=5))
    state.insert(30)
    params: Params = {"limit": "1000"}
    for offset in range(0, 6030, 1000):
        params["offset"] = str(offset)
        body = state.page_body(params)
        assert body == _reference(state, params)
        assert orjson.loads(body)["count"] == 6030


def _main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    DIGESTS.parent.mkdir(exist_ok=True)
    digests: Any = asyncio.run(_all_digests())
    DIGESTS.write_bytes(orjson.dumps(digests, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"wrote {sum(map(len, digests.values()))} digests to {DIGESTS}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
