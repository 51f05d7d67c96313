"""SessionQuery: validation before any request, and rendering to wire parameters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer

from callsessions import (
    ALL_FIELDS,
    CallSessionsClient,
    CallStatus,
    DateField,
    ExportFormat,
    InvalidQueryError,
    RetryPolicy,
    SessionQuery,
    WireNames,
)
from callsessions.protocol.wire import build_page_request

MSK = timezone(timedelta(hours=3))
T0 = datetime(2024, 3, 14, 9, 0, tzinfo=MSK)
T1 = datetime(2024, 3, 15, 9, 0, tzinfo=MSK)
NAIVE = datetime(2024, 3, 14, 9, 0)

ALLOWED_STATUSES = "allowed: CANCEL, ANSWERED, NOANSWER, BUSY"
ALLOWED_SORT = "allowed: createdAt, updatedAt, startedAt, duration"

# (id, constructor kwargs, expected .parameter, key phrase of the message)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("page_size-0", {"page_size": 0}, "page_size", "from 1 to 1000"),
    ("page_size-1001", {"page_size": 1001}, "page_size", "from 1 to 1000"),
    ("page_size-str", {"page_size": "10"}, "page_size", "must be an integer"),
    ("page_size-bool", {"page_size": True}, "page_size", "must be an integer"),
    ("page_size-float", {"page_size": 2.0}, "page_size", "must be an integer"),
    ("offset-negative", {"offset": -1}, "offset", ">= 0"),
    ("page-negative", {"page": -1}, "page", ">= 0"),
    ("offset-and-page", {"offset": 0, "page": 0}, "page", "use offset or page, not both"),
    ("start-naive", {"start": NAIVE, "end": T1}, "start", "timezone-aware"),
    ("end-naive", {"start": T0, "end": NAIVE}, "end", "timezone-aware"),
    ("start-str", {"start": "2024-03-14T09:00:00+03:00"}, "start", "must be a datetime"),
    ("start-equals-end", {"start": T0, "end": T0}, "end", "must be after start"),
    ("start-after-end", {"start": T1, "end": T0}, "end", "must be after start"),
    (
        "start-after-end-other-zone",
        {"start": T0, "end": datetime(2024, 3, 14, 5, 59, tzinfo=UTC)},
        "end",
        "must be after start",
    ),
    ("field-unknown", {"fields": ["id", "nope"]}, "fields", "allowed: id, phone, duration"),
    ("field-empty-list", {"fields": []}, "fields", "at least one field"),
    ("field-empty-str", {"fields": " , "}, "fields", "at least one field"),
    ("field-not-str", {"fields": ["id", 1]}, "fields", "each item must be a string"),
    ("field-not-iterable", {"fields": 5}, "fields", "must be a string or a list of strings"),
    ("status-unknown", {"statuses": ["ANSWERD"]}, "statuses", ALLOWED_STATUSES),
    ("status-unknown-hint", {"statuses": "VOICEMAIL"}, "statuses", "extra_statuses"),
    ("sort-unknown", {"sort": ["id"]}, "sort", ALLOWED_SORT),
    ("sort-bare-sign", {"sort": "-"}, "sort", ALLOWED_SORT),
    ("sort-duplicate", {"sort": ["createdAt", "-createdAt"]}, "sort", "named twice"),
    ("sort-duplicate-alias", {"sort": "created_at,+createdAt"}, "sort", "named twice"),
    ("date_field-unknown", {"date_field": "deletedAt"}, "date_field", "allowed: createdAt"),
    ("date_field-not-str", {"date_field": 1}, "date_field", "updatedAt, startedAt"),
    ("format-unknown", {"export_format": "PDF"}, "export_format", "allowed: CSV, CSV_EXCEL"),
    ("extra-status-lower", {"extra_statuses": ["voicemail"]}, "extra_statuses", "upper-case"),
    ("extra-status-space", {"extra_statuses": ["NEW STATUS"]}, "extra_statuses", "upper-case"),
    ("extra-status-digit-first", {"extra_statuses": "1ABC"}, "extra_statuses", "upper-case"),
    ("keyword-empty", {"keyword": ""}, "keyword", "must not be empty"),
    ("keyword-blank", {"keyword": "   "}, "keyword", "must not be empty"),
    ("keyword-nul", {"keyword": "a\x00b"}, "keyword", "control characters"),
    ("keyword-del", {"keyword": "a\x7fb"}, "keyword", "control characters"),
    ("keyword-not-str", {"keyword": 42}, "keyword", "must be a string"),
    ("task_id-newline", {"task_id": "abc\ndef"}, "task_id", "control characters"),
    ("call_id-int", {"call_id": 123}, "call_id", "must be a string"),
    ("phone-letters", {"phone": "call me"}, "phone", "must be a phone number"),
    ("phone-short", {"phone": "12"}, "phone", "must be a phone number"),
    (
        "filename-extension",
        {"export_format": "CSV", "filename": "report.csv"},
        "filename",
        "without extension",
    ),
    ("filename-slash", {"export_format": "CSV", "filename": "a/b"}, "filename", "separators"),
    ("filename-backslash", {"export_format": "XLSX", "filename": "a\\b"}, "filename", "separators"),
    ("filename-empty", {"export_format": "CSV", "filename": ""}, "filename", "must not be empty"),
    ("filename-without-format", {"filename": "report"}, "filename", "only applies with"),
    ("zip-without-format", {"zip": True}, "zip", "only applies with export_format"),
    ("zip-not-bool", {"export_format": "CSV", "zip": "yes"}, "zip", "must be True or False"),
    ("company_id-str", {"company_id": "1234"}, "company_id", "must be an integer"),
    ("company_id-bool", {"company_id": True}, "company_id", "must be an integer"),
    ("company_id-negative", {"company_id": -5}, "company_id", ">= 0"),
]


@pytest.mark.parametrize(
    ("kwargs", "parameter", "phrase"),
    [pytest.param(kw, p, ph, id=i) for i, kw, p, ph in INVALID],
)
def test_invalid_query(kwargs: dict[str, Any], parameter: str, phrase: str) -> None:
    with pytest.raises(InvalidQueryError) as info:
        SessionQuery(**kwargs)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert exc.parameter == parameter
    assert phrase in str(exc)
    assert str(exc).startswith(f"{parameter}=")


def test_invalid_table_is_large_enough() -> None:
    assert len(INVALID) >= 25
    assert len({i for i, *_ in INVALID}) == len(INVALID)


def test_error_keeps_rejected_value() -> None:
    with pytest.raises(InvalidQueryError) as info:
        SessionQuery(page_size=5000)
    assert info.value.value == 5000
    assert "5000" in str(info.value)


def test_evolve_validates_again() -> None:
    query = SessionQuery(offset=10)
    with pytest.raises(InvalidQueryError, match="not both"):
        attrs.evolve(query, page=2)
    with pytest.raises(InvalidQueryError) as info:
        attrs.evolve(SessionQuery(start=T0, end=T1), end=T0)
    assert info.value.parameter == "end"


def test_query_is_frozen() -> None:
    query = SessionQuery(page_size=10)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        query.page_size = 20  # type: ignore[misc]


def test_boundaries_are_accepted() -> None:
    SessionQuery(page_size=1)
    SessionQuery(page_size=1000)
    SessionQuery(offset=0)
    SessionQuery(page=0)
    SessionQuery(company_id=0)
    SessionQuery(start=T0, end=T0 + timedelta(microseconds=1))
    SessionQuery(phone="+7 (916) 555-00-01")
    SessionQuery(export_format="csv", filename="report_2024-03", zip=False)
    SessionQuery(zip=False)  # zip=False asks for nothing, so it needs no format


# -- rendering ---------------------------------------------------------------------------


def params(query: SessionQuery, wire: WireNames | None = None) -> dict[str, str]:
    pairs = query.to_params() if wire is None else query.to_params(wire)
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), "a parameter rendered twice"
    return dict(pairs)


def test_minimal_query_asks_for_every_field() -> None:
    assert SessionQuery().to_params() == [("fields", ",".join(ALL_FIELDS))]
    assert len(ALL_FIELDS) == 29


def test_every_parameter_rendered() -> None:
    query = SessionQuery(
        fields=["id", "task_id", "created_at", "messagesAsString"],
        page_size=250,
        offset=500,
        start=T0,
        end=datetime(2024, 3, 15, 6, 0, 0, 123456, tzinfo=UTC),
        date_field="started_at",
        keyword="запись к врачу",
        sort=["-created_at", "duration"],
        company_id=1234,
        task_id="6f1d9a2c-3b47-4e58-8c0d-2a9e7b1f4c63",
        call_id="0b6c2f3e-8d4a-4f7e-9a1b-000000000001",
        phone="79165550001",
        statuses=["answered", CallStatus.BUSY],
        extra_statuses=["VOICEMAIL"],
        export_format="csv_excel",
        filename="calls_march",
        zip=True,
    )
    assert query.to_params() == [
        ("fields", "id,taskId,createdAt,messagesAsString"),
        ("limit", "250"),
        ("offset", "500"),
        ("from", "2024-03-14T09:00:00+03:00"),
        ("to", "2024-03-15T06:00:00.123456+00:00"),
        ("dateField", "startedAt"),
        ("keyword", "запись к врачу"),
        ("sort", "-createdAt,+duration"),
        ("companyId", "1234"),
        ("taskId", "6f1d9a2c-3b47-4e58-8c0d-2a9e7b1f4c63"),
        ("id", "0b6c2f3e-8d4a-4f7e-9a1b-000000000001"),
        ("phone", "79165550001"),
        ("status", "ANSWERED,BUSY,VOICEMAIL"),
        ("format", "CSV_EXCEL"),
        ("filename", "calls_march"),
        ("zip", "true"),
    ]


def test_page_rendered() -> None:
    assert params(SessionQuery(page=0, page_size=10)) | {} == {
        "fields": ",".join(ALL_FIELDS),
        "limit": "10",
        "page": "0",
    }


@pytest.mark.parametrize(("value", "wire"), [(True, "true"), (False, "false")])
def test_booleans_rendered_lowercase(value: bool, wire: str) -> None:
    assert params(SessionQuery(export_format=ExportFormat.XLSX, zip=value))["zip"] == wire


def test_datetimes_iso_with_offset() -> None:
    query = SessionQuery(
        start=datetime(2018, 5, 27, 21, 30, 54, tzinfo=UTC),
        end=datetime(2018, 5, 28, 0, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    )
    rendered = params(query)
    assert rendered["from"] == "2018-05-27T21:30:54+00:00"
    assert rendered["to"] == "2018-05-28T00:00:00-05:30"


def test_lists_comma_joined_without_spaces() -> None:
    query = SessionQuery(
        fields=" id , phone,task_id ,id",
        statuses="ANSWERED, busy ,NOANSWER,ANSWERED",
        sort=" -updatedAt , +started_at",
    )
    rendered = params(query)
    assert rendered["fields"] == "id,phone,taskId"
    assert rendered["status"] == "ANSWERED,BUSY,NOANSWER"
    assert rendered["sort"] == "-updatedAt,+startedAt"
    assert not any(" " in rendered[k] for k in ("fields", "status", "sort"))


@pytest.mark.parametrize("name", ALL_FIELDS)
def test_snake_case_field_alias(name: str) -> None:
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
    assert SessionQuery(fields=[snake]).fields == (name,)
    assert SessionQuery(fields=[name]).fields == (name,)


def test_normalised_values() -> None:
    query = SessionQuery(
        statuses=("fz230", "EMPTY_AON"),
        date_field=DateField.UPDATED_AT,
        export_format="json",
    )
    assert query.statuses == (CallStatus.FZ230, CallStatus.EMPTY_AON)
    assert all(type(s) is CallStatus for s in query.statuses)
    assert query.date_field is DateField.UPDATED_AT
    assert query.export_format is ExportFormat.JSON


def test_extra_statuses_after_known_statuses() -> None:
    query = SessionQuery(extra_statuses="VOICEMAIL,AMD_MACHINE,VOICEMAIL", statuses=["CANCEL"])
    assert query.extra_statuses == ("VOICEMAIL", "AMD_MACHINE")
    assert params(query)["status"] == "CANCEL,VOICEMAIL,AMD_MACHINE"
    assert params(SessionQuery(extra_statuses=["NEW_1"]))["status"] == "NEW_1"


def test_extra_status_already_known_is_sent_once() -> None:
    query = SessionQuery(statuses=["BUSY", "ANSWERED"], extra_statuses=["ANSWERED", "NEW_1"])
    assert params(query)["status"] == "BUSY,ANSWERED,NEW_1"


def test_derived_values() -> None:
    query = SessionQuery(fields=["phone"])
    assert query.wire_fields == ("phone",)
    assert query.with_id_field().fields == ("id", "phone")
    assert SessionQuery().with_id_field().fields is None
    assert query.effective_date_field is DateField.CREATED_AT
    assert SessionQuery(date_field="startedAt").effective_date_field is DateField.STARTED_AT


def test_describe_is_json_able() -> None:
    query = SessionQuery(start=T0, end=T1, statuses=["BUSY"], sort="-duration", page_size=5)
    described = query.describe()
    assert described == {
        "page_size": 5,
        "start": "2024-03-14T09:00:00+03:00",
        "end": "2024-03-15T09:00:00+03:00",
        "sort": ["-duration"],
        "statuses": ["BUSY"],
    }
    json.dumps(described)


# -- wire names ---------------------------------------------------------------------------


def test_wire_names_defaults_follow_api_notes() -> None:
    wire = WireNames()
    assert (wire.limit, wire.start, wire.end, wire.statuses, wire.call_id) == (
        "limit",
        "from",
        "to",
        "status",
        "id",
    )


def test_wire_names_override_with_evolve() -> None:
    wire = attrs.evolve(WireNames(), date_field="dateType", start="dateFrom", limit="size")
    rendered = params(SessionQuery(start=T0, end=T1, date_field="updatedAt", page_size=3), wire)
    assert rendered["dateType"] == "updatedAt"
    assert rendered["dateFrom"] == "2024-03-14T09:00:00+03:00"
    assert rendered["size"] == "3"
    assert "dateField" not in rendered
    assert "from" not in rendered
    assert "limit" not in rendered


def test_wire_names_from_mapping() -> None:
    wire = WireNames.from_mapping({"company_id": "company", "zip": "archive", "offset": "skip"})
    query = SessionQuery(company_id=7, offset=20, export_format="CSV", zip=True)
    rendered = params(query, wire)
    assert rendered["company"] == "7"
    assert rendered["archive"] == "true"
    assert rendered["skip"] == "20"
    assert wire.fields == "fields"  # untouched names keep their defaults


def test_wire_names_from_mapping_unknown_key() -> None:
    with pytest.raises(InvalidQueryError) as info:
        WireNames.from_mapping({"dateField": "x", "page_size": "y", "limit": "size"})
    exc = info.value
    assert exc.parameter == "wire_names"
    assert exc.value == ["dateField", "page_size"]
    assert "known:" in str(exc)
    assert "date_field" in str(exc)


@pytest.mark.parametrize("bad", ["", 5, None])
def test_wire_names_from_mapping_bad_value(bad: Any) -> None:
    with pytest.raises(InvalidQueryError, match="non-empty string") as info:
        WireNames.from_mapping({"keyword": bad})
    assert info.value.parameter == "wire_names['keyword']"


# -- what goes on the wire ----------------------------------------------------------------


def test_url_encodes_plus_in_sort_and_datetimes() -> None:
    query = SessionQuery(start=T0, end=T1, sort=["+createdAt", "-duration"], fields=["id"])
    request = build_page_request(query, base_url="https://analyse.example.test/analyse/")
    assert request.url == "https://analyse.example.test/analyse/api/v1/search/cis/calls"
    url = yarl.URL(request.url).with_query(list(request.params))
    raw = url.raw_query_string
    assert "from=2024-03-14T09:00:00%2B03:00" in raw
    assert "to=2024-03-15T09:00:00%2B03:00" in raw
    assert "sort=%2BcreatedAt,-duration" in raw
    assert "+" not in raw
    # and the server decodes them back to the values we meant
    assert url.query["from"] == "2024-03-14T09:00:00+03:00"
    assert url.query["sort"] == "+createdAt,-duration"


async def test_plus_survives_a_real_request_over_loopback() -> None:
    """The URL aiohttp really sends: a loopback server reads the raw query string."""
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"count": 0, "items": []})

    app = web.Application()
    app.router.add_get("/api/v1/search/cis/calls", handler)
    async with TestServer(app) as server:
        base = str(server.make_url(""))
        async with CallSessionsClient(base, token="t", retry=RetryPolicy.never()) as client:
            query = SessionQuery(start=T0, end=T1, sort="-createdAt,+duration", keyword="a+b c")
            page = await client.fetch_page(query)
    assert page.items == []
    assert len(seen) == 1
    raw = seen[0].query_string
    assert "%2B03:00" in raw
    assert "%2Bduration" in raw
    decoded = seen[0].query
    assert decoded["from"] == "2024-03-14T09:00:00+03:00"
    assert decoded["to"] == "2024-03-15T09:00:00+03:00"
    assert decoded["sort"] == "-createdAt,+duration"
    assert decoded["keyword"] == "a+b c"
