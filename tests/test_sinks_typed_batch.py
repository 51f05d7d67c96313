"""How a typed Arrow batch is built: times by Arrow's parser or by Python alike, the
one-pass (struct) path against the per-column path, nested values as compact JSON text,
exact integers and floats never truncated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from _sinks_data import utc
from hypothesis import given, settings
from hypothesis import strategies as st

from callsessions.sinks.arrow import arrow_schema, record_batch
from callsessions.sinks.base import MismatchCounter


@settings(max_examples=100, deadline=None)
@given(
    moments=st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(1971, 1, 1),
                max_value=datetime(2099, 12, 31),
                timezones=st.just(UTC),
            ),
            st.integers(min_value=-14 * 60, max_value=14 * 60),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_arrow_times_are_the_same_by_either_path(moments: list[tuple[datetime, int]]) -> None:
    texts = [m.astimezone(timezone(timedelta(minutes=o))).isoformat() for m, o in moments]
    schema = arrow_schema(["id", "createdAt"])
    records = [{"id": str(n), "createdAt": t} for n, t in enumerate(texts)]
    counter = MismatchCounter()
    fast = record_batch(records, schema, counter).column(1).to_pylist()  # Arrow's cast
    odd = [*records, {"id": "x", "createdAt": "2026-01-01T00:00:00"}]  # no offset: per value
    slow = record_batch(odd, schema, counter).column(1).to_pylist()
    assert fast == slow[:-1] == [m for m, _ in moments]
    assert slow[-1] is None and counter.counts == {"createdAt": 1}


# -- how a batch is built: the one-pass (struct) path against the per-column path ---------


_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
_MOMENTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=_OFFSETS
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
_FIELDS: dict[str, Any] = {
    "phone": st.none() | st.text(max_size=12),
    "duration": st.none() | st.integers(-(2**63), 2**63 - 1),
    "status": st.none() | st.sampled_from(["ANSWERED", "BUSY", "НОВЫЙ"]),
    "isFinished": st.none() | st.booleans(),
    "createdAt": st.none() | _MOMENTS.map(lambda m: m.isoformat()),
    "price": st.none()
    | st.decimals(min_value=-(10**12) + 1, max_value=10**12 - 1, places=6).map(str),
    "messages": _JSON,
}
_RECORD = st.fixed_dictionaries(_FIELDS)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(_RECORD, min_size=1, max_size=12))
def test_the_one_pass_path_gives_what_the_per_column_path_gives(
    records: list[dict[str, Any]],
) -> None:
    columns = ["id", *_FIELDS]
    schema = arrow_schema(columns)
    rows = [{"id": str(n), **r} for n, r in enumerate(records)]
    counter = MismatchCounter()
    fast = record_batch(rows, schema, counter).to_pylist()
    # one wrong value anywhere sends every struct column through the per-column path
    slow = record_batch([*rows, {"id": "x", "phone": 79}], schema, counter).to_pylist()
    assert fast == slow[:-1]
    assert counter.counts == {"phone": 1}
    for got, sent in zip(fast, rows, strict=True):
        assert got["createdAt"] == utc(sent["createdAt"])
        assert got["price"] == (None if sent["price"] is None else Decimal(sent["price"]))
        back = None if got["messages"] is None else json.loads(got["messages"])
        assert back == sent["messages"] and (back is None) == (got["messages"] is None)


_BY_ARROW = [
    "2026-01-01T03:00:00+03:00",
    "2026-01-01T03:00:00+0300",
    "2026-01-01 03:00:00-05:30",
    "2025-12-31T19:00:00.250-05:00",
    "2026-01-01T03:00:00.123456+05:45",
    "2026-01-01T03:00:00-00:00",
    "2026-01-01T03:00:00+14:00",
    "2026-01-01T03:00Z",
]
_BY_PYTHON = ["2026-01-01T03:00:00.1234567Z", "2026-01-01T03:00:00+03:30:15", "20260101T030000Z"]


@pytest.mark.parametrize("text", _BY_ARROW + _BY_PYTHON)
def test_times_equal_pythons_fromisoformat_in_utc(text: str) -> None:
    expected = datetime.fromisoformat(text).astimezone(UTC)
    if text in _BY_ARROW:  # the fast path: Arrow's own parser, exact
        assert pc.cast(pa.array([text]), pa.timestamp("us", tz="UTC")).to_pylist() == [expected]
    else:  # Arrow refuses these: the batch is parsed by Python, value by value
        with pytest.raises(pa.ArrowInvalid):
            pc.cast(pa.array([text]), pa.timestamp("us", tz="UTC"))
    schema = arrow_schema(["id", "createdAt"])
    counter = MismatchCounter()
    batch = record_batch([{"id": "a", "createdAt": text}], schema, counter)
    assert batch.column(1).to_pylist() == [expected] and counter.counts == {}


def test_nested_values_are_compact_json_text_and_none_is_null() -> None:
    values: list[Any] = [None, "null", [], {"ключ": "знач 🌷"}, [None, 1.5], Decimal("1.50")]
    values.append({"n": {}})
    rows = [{"id": str(n), "additional": v} for n, v in enumerate(values)]
    batch = record_batch(rows, arrow_schema(["id", "additional"]), MismatchCounter())
    assert batch.column(1).to_pylist() == [
        None,  # a missing value, not the JSON text `null`
        '"null"',
        "[]",
        '{"ключ":"знач 🌷"}',
        "[null,1.5]",
        '"1.50"',  # what JSON has no type for is written as its text
        '{"n":{}}',
    ]
    assert batch.column(1).validate(full=True) is None  # valid UTF-8


def test_integers_are_exact_and_floats_are_never_truncated() -> None:
    durations = [2**63 - 1, -(2**63), 12.0, 12.5, 2**63, "7", None]
    rows = [{"id": str(n), "duration": d} for n, d in enumerate(durations)]
    counter = MismatchCounter()
    batch = record_batch(rows, arrow_schema(["id", "duration"]), counter)
    assert batch.column(1).to_pylist() == [2**63 - 1, -(2**63), 12, None, None, None, None]
    assert counter.counts == {"duration": 3}
    # the only odd value of its batch: a typed conversion of the records would truncate it
    alone = [{"id": "a", "duration": 1, "phone": "1"}, {"id": "b", "duration": 12.5}]
    batch = record_batch(alone, arrow_schema(["id", "duration", "phone"]), counter)
    assert batch.column(1).to_pylist() == [1, None]
    assert counter.counts == {"duration": 4}
