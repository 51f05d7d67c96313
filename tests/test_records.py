"""Records: structuring the recorded samples into CallSession, and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from _support import all_sample_records, sample_records

from callsessions import (
    ALL_FIELDS,
    CallSession,
    CallStatus,
    structure_session,
    unstructure_session,
)
from callsessions.protocol.convert import make_converter, structure_sessions

MSK = timezone(timedelta(hours=3))
RECORDS = all_sample_records()
RECORD_IDS = [r["id"][-4:] + "-" + str(r["status"]) for r in RECORDS]


def test_samples_are_realistic() -> None:
    """The samples carry what API.md describes, so the tests below mean something."""
    full = [r for r in RECORDS if set(ALL_FIELDS) <= set(r)]
    assert len(full) == len(RECORDS)
    assert any(isinstance(r["price"], str) for r in RECORDS)
    assert any(isinstance(r["price"], float) for r in RECORDS)
    assert any(r["status"] not in CallStatus.__members__ for r in RECORDS)
    assert any(set(r) - set(ALL_FIELDS) for r in RECORDS)
    assert all(len(r["phone"]) == 11 and r["phone"].startswith("79") for r in RECORDS)


@pytest.mark.parametrize("wire", RECORDS, ids=RECORD_IDS)
def test_structure_every_sample_record(wire: dict[str, Any]) -> None:
    record = structure_session(wire)
    assert isinstance(record, CallSession)
    assert record.id == wire["id"]
    assert record.phone == wire["phone"]
    assert record.task_id == wire["taskId"]
    for attr in ("created_at", "updated_at", "started_at"):
        value = getattr(record, attr)
        assert value is None or (isinstance(value, datetime) and value.utcoffset() is not None)
    assert record.created_at is not None
    assert record.created_at.utcoffset() == timedelta(hours=3)
    assert record.price is None or isinstance(record.price, Decimal)
    assert record.duration is None or type(record.duration) is int
    assert isinstance(record.status, CallStatus) == (wire["status"] in CallStatus.__members__)
    assert record.status == wire["status"]
    assert record.messages == wire["messages"]
    assert record.additional == wire["additional"]
    assert record.markers == wire["markers"]
    assert record.dialog_results == wire["dialogResults"]
    assert record.extra == {k: v for k, v in wire.items() if k not in ALL_FIELDS}


def test_first_record_in_detail() -> None:
    wire = sample_records("page_first")[0]
    record = structure_session(wire)
    assert record.status is CallStatus.ANSWERED
    assert record.status_known
    assert record.created_at == datetime(2024, 3, 14, 9, 10, 5, tzinfo=MSK)
    assert record.updated_at == datetime(2024, 3, 14, 9, 11, 2, 418000, tzinfo=MSK)
    assert record.price == Decimal("3.50")
    assert record.duration == 37
    assert record.region_id == 77
    assert record.timezone == 10800
    assert record.transferred_to_operator is False
    assert record.is_finished is True
    assert record.nps is None
    assert record.messages is not None
    assert [m["role"] for m in record.messages] == ["bot", "user", "bot"]
    assert record.messages[1]["text"] == "Да, приду."
    assert record.extra == {}


def test_unknown_status_and_extra_field_are_kept() -> None:
    wire = next(r for r in RECORDS if r["status"] == "VOICEMAIL")
    record = structure_session(wire)
    assert record.status == "VOICEMAIL"
    assert type(record.status) is str
    assert record.status_known is False
    assert record.extra == {"callQuality": {"mos": 4.1, "jitterMs": 12}}
    assert record.price == Decimal("1.1")
    assert record.nps == 9


def test_nulls_stay_none() -> None:
    wire = next(r for r in RECORDS if r["status"] == "BUSY")
    record = structure_session(wire)
    assert record.duration is None
    assert record.price is None
    assert record.messages is None
    assert record.additional is None
    assert record.markers is None
    assert record.status is CallStatus.BUSY


def test_subset_of_fields() -> None:
    record = structure_session({"id": "a", "createdAt": "2024-03-14T06:00:00Z"})
    assert record == CallSession(id="a", created_at=datetime(2024, 3, 14, 6, 0, tzinfo=UTC))
    assert record.status_known  # no status at all is not an unknown one


@pytest.mark.parametrize("wire", RECORDS, ids=RECORD_IDS)
def test_round_trip(wire: dict[str, Any]) -> None:
    record = structure_session(wire)
    back = unstructure_session(record)
    assert structure_session(back) == record
    assert set(back) <= set(wire)  # camelCase names; nothing invented
    assert all(v is not None for v in back.values())  # nulls left out
    orjson.dumps(back)  # plain JSON values only


def test_unstructure_wire_form() -> None:
    record = structure_session(sample_records("page_first")[0])
    wire = unstructure_session(record)
    assert wire["taskId"] == record.task_id
    assert wire["createdAt"] == "2024-03-14T09:10:05+03:00"
    assert wire["price"] == "3.50"
    assert wire["status"] == "ANSWERED"
    assert type(wire["status"]) is str
    assert "task_id" not in wire
    assert "extra" not in wire
    assert "nps" not in wire  # null


def test_unstructure_puts_extra_back() -> None:
    wire = next(r for r in RECORDS if r["status"] == "VOICEMAIL")
    assert unstructure_session(structure_session(wire))["callQuality"] == wire["callQuality"]


def test_make_converter_gives_the_same_results() -> None:
    conv = make_converter()
    assert conv is not make_converter()
    for wire in RECORDS:
        record = conv.structure(wire, CallSession)
        assert record == structure_session(wire)
        assert conv.unstructure(record) == unstructure_session(record)
    assert structure_sessions(RECORDS) == [structure_session(r) for r in RECORDS]


@pytest.mark.parametrize(
    ("wire", "attr", "expected"),
    [
        ({"duration": "12"}, "duration", 12),
        ({"duration": " 7 "}, "duration", 7),
        ({"duration": 12.0}, "duration", 12),
        ({"regionId": "-3"}, "region_id", -3),
        ({"price": 1.1}, "price", Decimal("1.1")),
        ({"price": 0}, "price", Decimal("0")),
        ({"price": 4}, "price", Decimal("4")),
        ({"price": "0.75"}, "price", Decimal("0.75")),
        ({"createdAt": ""}, "created_at", None),
        ({"createdAt": "2024-03-14T06:00:00Z"}, "created_at", datetime(2024, 3, 14, 6, tzinfo=UTC)),
        ({"status": "FZ230"}, "status", CallStatus.FZ230),
    ],
)
def test_odd_but_meaningful_values_are_converted(
    wire: dict[str, Any], attr: str, expected: Any
) -> None:
    value = getattr(structure_session(wire), attr)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "wire",
    [
        {"duration": "12.5"},
        {"duration": "--5"},
        {"duration": "²"},
        {"duration": True},
        {"nps": "n/a"},
        {"price": "abc"},
        {"price": True},
        {"price": [1, 2]},
        {"createdAt": "yesterday"},
        {"createdAt": 1710396605},
        {"status": ["ANSWERED"]},
        {"status": {"code": "ANSWERED"}},
        {"status": 3},
        {"messages": "bot: hi"},
        {"additional": [1]},
        {"isFinished": "yes"},
    ],
    ids=lambda w: f"{next(iter(w))}={next(iter(w.values()))!r}",
)
def test_unexpected_values_survive(wire: dict[str, Any]) -> None:
    """One odd record must not stop a pull: the value is kept as it came, and goes back out."""
    key, value = next(iter(wire.items()))
    record = structure_session({"id": "odd", **wire})
    back = unstructure_session(record)
    assert back[key] == value
    assert structure_session(back) == record
