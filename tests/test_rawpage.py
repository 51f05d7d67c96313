"""The raw-page fast path against the full parse: same ids, dates and records, own bytes.

Every body is checked against ``orjson.loads`` of the same body (the full parse): the ids
and date strings must be those of the parsed items, each raw item must parse to the same
item, be one line, and (when the body has no line breaks) be the body's own bytes, in order.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callsessions import DecodeError
from callsessions.protocol.rawpage import RawPage, _decoders, parse_raw_page
from callsessions.sim import Dataset, FaultConfig, SimConfig, SimServer

SAMPLES = Path(__file__).parent / "samples"
DATE_FIELDS = ("createdAt", "updatedAt", "startedAt")


def expected(body: bytes, date_field: str) -> tuple[int | None, list[Any], list[Any], list[Any]]:
    """(count, ids, dates, items) as the full parse sees them."""
    data = orjson.loads(body)
    items = data if isinstance(data, list) else data["items"]
    count = None if isinstance(data, list) else data.get("count")
    ids = [r.get("id") if r.get("id") is None else _id_text(r["id"]) for r in items]
    dates = [r.get(date_field) if isinstance(r.get(date_field), str) else None for r in items]
    return count, ids, dates, items


def _id_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def check(body: bytes, date_field: str = "createdAt") -> RawPage:
    """Assert that ``parse_raw_page`` agrees with the full parse on ``body``."""
    page = parse_raw_page(body, date_field=date_field)
    count, ids, dates, items = expected(body, date_field)
    assert page.count == count
    assert page.ids == ids
    assert page.dates == dates
    assert len(page) == len(items)
    assert [orjson.loads(raw) for raw in page.raw_items] == items
    for raw in page.raw_items:
        assert type(raw) is bytes
        assert b"\n" not in raw and b"\r" not in raw
    if b"\n" not in body and b"\r" not in body:
        at = 0
        for raw in page.raw_items:  # the body's own bytes, in order
            found = body.find(raw, at)
            assert found >= 0
            at = found + len(raw)
    lines = b"\n".join(page.raw_items).split(b"\n") if page.raw_items else []
    assert [orjson.loads(line) for line in lines] == items  # JSONL round trip
    return page


# -- recorded samples ----------------------------------------------------------------------


def _sample_docs() -> dict[str, Any]:
    docs = {}
    for path in sorted(SAMPLES.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["status"] == 200 and "body" in doc and _is_page(doc["body"]):
            docs[path.stem] = doc["body"]
    return docs


def _is_page(body: Any) -> bool:
    return isinstance(body, list) or (isinstance(body, dict) and "items" in body)


PAGE_SAMPLES = _sample_docs()
ENCODINGS = {
    "as_recorded": lambda v: json.dumps(v, ensure_ascii=False).encode(),
    "compact": lambda v: orjson.dumps(v),
    "ascii_escapes": lambda v: json.dumps(v, ensure_ascii=True).encode(),
    "indented": lambda v: json.dumps(v, ensure_ascii=False, indent=2).encode(),
    "crlf_tabs": lambda v: json.dumps(v, ensure_ascii=False, indent="\t").replace(
        "\n", "\r\n"
    ).encode(),
}


def test_the_200_page_samples_are_all_here() -> None:
    assert set(PAGE_SAMPLES) == {"page_bare_array", "page_empty", "page_first", "page_last"}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("name", sorted(PAGE_SAMPLES))
@pytest.mark.parametrize("date_field", DATE_FIELDS)
def test_recorded_samples(name: str, encoding: str, date_field: str) -> None:
    body = ENCODINGS[encoding](PAGE_SAMPLES[name])
    page = check(body, date_field)
    if name == "page_first":
        assert page.count == 12 and len(page) > 0
        assert all(isinstance(i, str) for i in page.ids)
        assert page.dates[0] == PAGE_SAMPLES[name]["items"][0][date_field]
    if name == "page_bare_array":
        assert page.count is None and len(page) > 0


def test_truncated_sample_is_a_decode_error() -> None:
    doc = json.loads((SAMPLES / "truncated_200.json").read_text(encoding="utf-8"))
    body = doc["body_text"].encode()
    with pytest.raises(DecodeError, match=r"malformed JSON body \(\d+ bytes\)"):
        parse_raw_page(body)


def test_login_sample_is_not_a_page() -> None:
    doc = json.loads((SAMPLES / "login.json").read_text(encoding="utf-8"))
    with pytest.raises(DecodeError, match=r"got object with \['refreshToken', 'token'\]"):
        parse_raw_page(orjson.dumps(doc["body"]))


# -- simulator pages -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset(3000, seed=5)


def _sim_body(dataset: Dataset, start: int, n: int, option: int | None = None) -> bytes:
    items = [dataset.record(r) for r in range(start, start + n)]
    return orjson.dumps({"count": len(dataset), "items": items}, option=option)


@pytest.mark.parametrize("date_field", DATE_FIELDS)
def test_simulator_pages_with_every_field(dataset: Dataset, date_field: str) -> None:
    for start in (0, 1000, 2000):
        page = check(_sim_body(dataset, start, 1000), date_field)
        assert page.ids == [dataset.id_of(r) for r in range(start, start + 1000)]
        assert len(set(page.ids)) == 1000
    if date_field == "startedAt":  # calls that never started have a null startedAt
        assert None in page.dates


def test_pretty_printed_simulator_page(dataset: Dataset) -> None:
    body = _sim_body(dataset, 0, 300, option=orjson.OPT_INDENT_2)
    page = check(body)
    compact = parse_raw_page(_sim_body(dataset, 0, 300))
    # re-formatted items equal the compact encoding byte for byte (orjson's own style)
    assert page.raw_items == compact.raw_items
    assert page.ids == compact.ids and page.dates == compact.dates


async def test_pages_served_by_the_simulator() -> None:
    """Real HTTP bodies, every field, every 7th record served without its id."""
    config = SimConfig(records=2500, seed=11, faults=FaultConfig(missing_id_every=7))
    async with SimServer(config) as sim, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {sim.token}"}
        truth = sim.matching_ids()
        seen: list[str | None] = []
        for offset in (0, 1000, 2000):
            params = {"limit": "1000", "offset": str(offset), "dateField": "updatedAt"}
            async with http.get(sim.search_url, params=params, headers=headers) as resp:
                assert resp.status == 200
                body = await resp.read()
            seen.extend(check(body, "updatedAt").ids)
    assert len(seen) == 2500
    assert seen.count(None) == 2500 // 7
    served = set(seen)
    assert [i for i in seen if i is not None] == [i for i in truth if i in served]
    assert len(served) == 2500 - 2500 // 7 + 1  # the ids, and None


# -- hand-made bodies --------------------------------------------------------------------------

ODD_BODIES = {
    "cyrillic_and_emoji": '{"count": 2, "items": [{"id": "звонок-1", "createdAt": '
    '"2026-01-01T00:00:00+03:00", "taskName": "Опрос 😀🎉"}, {"id": "🦊", '
    '"createdAt": "2026-01-01T00:00:01+03:00"}]}',
    "u_escapes": '{"items": [{"id": "\\u0437\\u0432\\ud83d\\ude00", '
    '"createdAt": "2026\\u002d01-01", "x": "\\u00e9\\u0000"}]}',
    "escaped_quotes": '{"items": [{"note": "he said \\"id\\": \\"fake\\"", '
    '"id": "a\\"b", "createdAt": "\\"quoted\\""}]}',
    "id_in_a_string": '{"items": [{"text": "{\\"id\\":\\"nope\\",\\"createdAt\\":\\"no\\"}", '
    '"id": "yes"}]}',
    "id_in_nested_object_first": '{"items": [{"additional": {"id": "inner", "createdAt": "x"},'
    ' "messages": [{"id": "m1"}, [{"id": "m2"}]], "id": "outer", "createdAt": "2026"}]}',
    "id_only_nested": '{"items": [{"additional": {"id": "inner"}, "createdAt": "2026"}]}',
    "whitespace_everywhere": ' \r\n\t{ "count" :\n 1 ,\t"items"\r\n:[ { "id"\n:\t"w" ,'
    ' "createdAt" : "d" , "n" : [ 1 , { } , [ ] ] } ] }\n ',
    "null_id": '{"items": [{"id": null, "createdAt": "2026"}, {"id": "b", "createdAt": null}]}',
    "missing_id": '{"items": [{"createdAt": "2026"}, {}, {"id": "c"}]}',
    "numeric_ids": '{"items": [{"id": 5}, {"id": -12.5e3}, {"id": true}, {"id": {"a": 1}}]}',
    "non_string_dates": '{"items": [{"id": "a", "createdAt": 17}, {"id": "b", '
    '"createdAt": {"at": "x"}}, {"id": "c", "createdAt": ["2026"]}]}',
    "escaped_key_names": '{"\\u0069tems": [{"\\u0069d": "esc", "created\\u0041t": "d"}]}',
    "duplicate_keys": '{"items": [{"id": "first", "id": "last", "createdAt": "a", '
    '"createdAt": "b"}]}',
    "deep_nesting": '{"items": [{"id": "deep", "x": ' + "[" * 200 + "]" * 200 + "}]}",
    "items_before_count_extra_keys": '{"items": [{"id": "z"}], "next": null, "count": 7, '
    '"meta": {"items": 5}}',
    "empty_items": '{"count": 0, "items": []}',
    "empty_bare_array": "[]",
    "bare_array": '[{"id": "a", "createdAt": "1"}, {"id": "b"}]',
    "escaped_newlines_in_strings": '{"items": [{"id": "n", "text": "line1\\nline2\\r\\n"}]}',
    "big_numbers": '{"items": [{"id": "big", "n": 123456789012345678901234567890, '
    '"f": -0.0, "e": 1E-7}]}',
    "count_first_then_newline_items": '{"count": 3, "items": [\n{"id": "a"},\n{"id": "b"}\n]}',
}


@pytest.mark.parametrize("name", sorted(ODD_BODIES))
def test_odd_bodies(name: str) -> None:
    check(ODD_BODIES[name].encode())


def test_odd_bodies_read_the_right_values() -> None:
    def ids(name: str) -> list[str | None]:
        return parse_raw_page(ODD_BODIES[name].encode()).ids

    assert ids("u_escapes") == ["зв😀"]
    assert ids("escaped_quotes") == ['a"b']
    assert parse_raw_page(ODD_BODIES["escaped_quotes"].encode()).dates == ['"quoted"']
    assert ids("id_in_a_string") == ["yes"]
    assert ids("id_in_nested_object_first") == ["outer"]
    assert ids("id_only_nested") == [None]
    assert ids("null_id") == [None, "b"]
    assert ids("missing_id") == [None, None, "c"]
    assert ids("numeric_ids") == ["5", "-12500.0", "true", '{"a":1}']
    assert ids("escaped_key_names") == ["esc"]
    assert ids("duplicate_keys") == ["last"]
    assert parse_raw_page(ODD_BODIES["non_string_dates"].encode()).dates == [None] * 3
    assert parse_raw_page(ODD_BODIES["items_before_count_extra_keys"].encode()).count == 7


def test_items_with_line_breaks_become_one_line_and_others_keep_their_bytes() -> None:
    body = b'{"items": [{"id": "a", "t": "x\\ny"},\n{"id":\n"b",\r\n "n": [1,\n 2]}, {"id": "c"}]}'
    page = check(body)
    assert page.raw_items == [b'{"id": "a", "t": "x\\ny"}', b'{"id":"b","n":[1,2]}', b'{"id": "c"}']


def test_date_field_picks_the_column_and_decoders_are_cached() -> None:
    body = b'[{"id": "a", "createdAt": "c", "updatedAt": "u", "callDate": "k"}]'
    assert parse_raw_page(body).dates == ["c"]
    assert parse_raw_page(body, date_field="updatedAt").dates == ["u"]
    assert parse_raw_page(body, date_field="callDate").dates == ["k"]
    assert parse_raw_page(body, date_field="startedAt").dates == [None]
    assert _decoders("updatedAt") is _decoders("updatedAt")
    assert _decoders("updatedAt") is not _decoders("createdAt")


def test_date_field_id_is_refused() -> None:
    with pytest.raises(ValueError, match="date_field"):
        parse_raw_page(b"[]", date_field="id")


def test_no_container_is_kept_per_record(dataset: Dataset) -> None:
    """The result holds strings and bytes only: no dict, list or struct per record."""
    body = _sim_body(dataset, 0, 1000)
    gc.collect()
    before = len(gc.get_objects())
    page = parse_raw_page(body)
    grown = len(gc.get_objects()) - before
    assert len(page) == 1000
    assert grown < 20
    kept_dicts = orjson.loads(body)["items"]
    assert len(gc.get_objects()) - before > 1000  # what the full parse keeps, for contrast
    del kept_dicts


# -- errors ------------------------------------------------------------------------------------

# body -> (a pattern found in) the message parse_page gives for it, after "GET /p: "
BAD_BODIES = {
    b"": r"malformed JSON body \(0 bytes\): ",
    b"{": r"malformed JSON body \(1 bytes\): ",
    b"<html>502</html>": r"malformed JSON body \(16 bytes\): ",
    b'{"items": [{"id": "a"}]} trailing': r"malformed JSON body \(33 bytes\): ",
    b"\xef\xbb\xbf[]": r"malformed JSON body \(5 bytes\): ",
    b'[{"id": "\\ud800"}]': r"malformed JSON body \(18 bytes\): ",
    b'[{"id": "a\tb"}]': r"malformed JSON body \(15 bytes\): ",
    b'[{"id": "\xff"}]': r"^GET /p: malformed JSON body \(13 bytes\): ",
    b'{"count": 1}': r"expected \{'count', 'items'\} or a JSON array, got object with \['count'\]",
    b'{"items": {}}': r"expected \{'count', 'items'\} or a JSON array, got object with \['items'\]",
    b'{"items": null, "a": 1}': r"got object with \['a', 'items'\]",
    b'"items"': r"expected \{'count', 'items'\} or a JSON array, got str$",
    b"5": r"or a JSON array, got int$",
    b"null": r"or a JSON array, got NoneType$",
    b'{"items": [], "count": "3"}': r"'count' is not an integer: '3'$",
    b'{"items": [], "count": 1.5}': r"'count' is not an integer: 1.5$",
    b'{"items": [], "count": 2.0}': r"'count' is not an integer: 2.0$",
    b'{"items": [], "count": true}': r"'count' is not an integer: True$",
    b'{"items": [1]}': r"an item of 'items' is not a JSON object$",
    b'[{"id": "a"}, "x"]': r"an item of 'items' is not a JSON object$",
    b"[[]]": r"an item of 'items' is not a JSON object$",
    b'{"items": [null]}': r"an item of 'items' is not a JSON object$",
}


@pytest.mark.parametrize("body", sorted(BAD_BODIES))
def test_bad_bodies_are_decode_errors(body: bytes) -> None:
    with pytest.raises(DecodeError, match=BAD_BODIES[body]) as info:
        parse_raw_page(body, method="GET", path="/p")
    assert str(info.value).startswith("GET /p: ")
    assert info.value.method == "GET" and info.value.path == "/p"


def test_a_truncated_simulator_page_is_a_decode_error(dataset: Dataset) -> None:
    body = _sim_body(dataset, 0, 100)
    for cut in (1, len(body) // 3, len(body) // 2, len(body) - 1):
        with pytest.raises(DecodeError, match="malformed JSON body"):
            parse_raw_page(body[:cut])


def test_invalid_utf8_in_a_skipped_value_needs_check_utf8() -> None:
    body = b'{"items": [{"id": "a", "note": "caf\xe9"}]}'
    assert parse_raw_page(body).ids == ["a"]  # documented: skipped values are not checked
    with pytest.raises(DecodeError, match=r"not valid UTF-8 at byte 35$"):
        parse_raw_page(body, check_utf8=True, method="GET", path="/p")
    good = "{\"items\": [{\"id\": \"a\", \"note\": \"café 😀\"}]}".encode()
    assert parse_raw_page(good, check_utf8=True).raw_items == [good[11:-2]]


# -- property: any JSON records, any layout ------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
_records = st.dictionaries(
    st.sampled_from(["id", "createdAt", "updatedAt", "x", "messages", "id "]) | st.text(),
    _values,
    max_size=6,
)


LAYOUTS: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":")},
    "spaced": {},
    "indent": {"indent": 1},
    "tabs": {"indent": "\t"},
    "crlf": {"separators": (" ,\r\n\t", "\r\n: ")},
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(_records, max_size=8),
    bare=st.booleans(),
    layout=st.sampled_from(["compact", "spaced", "indent", "tabs", "crlf"]),
    ensure_ascii=st.booleans(),
    date_field=st.sampled_from(DATE_FIELDS),
)
def test_any_records_match_the_full_parse(
    records: list[dict[str, Any]],
    bare: bool,
    layout: str,
    ensure_ascii: bool,
    date_field: str,
) -> None:
    doc: Any = records if bare else {"count": len(records), "items": records}
    text = json.dumps(doc, ensure_ascii=ensure_ascii, **LAYOUTS[layout])
    check(text.encode(), date_field)
