"""The query: every parameter of the call-session search endpoint, validated once.

``SessionQuery`` is a frozen value. It validates on construction, so bad input fails here
with a message naming the parameter and the allowed values, before any request is sent.
It renders itself to wire parameters through ``WireNames``, a table whose defaults come from
the API notes and which a user can override (``attrs.evolve(WireNames(), date_field="...")``)
when the real service turns out to spell a guessed parameter differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs
from attrs import field, frozen

from callsessions.errors import InvalidQueryError
from callsessions.protocol.schema import (
    _FIELD_ALIASES,
    ALL_FIELDS,
    DATE_FIELDS,
    MAX_PAGE_SIZE,
    SORT_KEYS,
    CallStatus,
    DateField,
    ExportFormat,
    snake_case,
)

__all__ = [
    "ALL_FIELDS",
    "DATE_FIELDS",
    "MAX_PAGE_SIZE",
    "SORT_KEYS",
    "CallStatus",
    "DateField",
    "ExportFormat",
    "SessionQuery",
    "WireNames",
    "snake_case",
]

_SORT_ALIASES = {k: k for k in SORT_KEYS} | {snake_case(k): k for k in SORT_KEYS}
_DATE_ALIASES = {d.value: d for d in DateField} | {snake_case(d.value): d for d in DateField}
_STATUS_NAMES = tuple(s.value for s in CallStatus)
_STATUS_SHAPE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@frozen
class WireNames:
    """Query-string names of each parameter. Defaults follow API.md.

    The ones API.md marks as guesses (``date_field``, ``company_id``, ``export_format``,
    ``filename``, ``zip``) are the likeliest to need an override::

        wire = attrs.evolve(WireNames(), date_field="dateType")
    """

    fields: str = "fields"
    limit: str = "limit"
    offset: str = "offset"
    page: str = "page"
    start: str = "from"
    end: str = "to"
    date_field: str = "dateField"
    keyword: str = "keyword"
    sort: str = "sort"
    company_id: str = "companyId"
    task_id: str = "taskId"
    call_id: str = "id"
    phone: str = "phone"
    statuses: str = "status"
    export_format: str = "format"
    filename: str = "filename"
    zip: str = "zip"

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str]) -> WireNames:
        """Build from ``{"date_field": "dateType", ...}``; unknown keys are an error."""
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise InvalidQueryError(
                "wire_names", unknown, f"unknown parameter(s); known: {', '.join(sorted(known))}"
            )
        for key, value in mapping.items():
            if not isinstance(value, str) or not value:
                raise InvalidQueryError(f"wire_names[{key!r}]", value, "must be a non-empty string")
        return cls(**mapping)


DEFAULT_WIRE_NAMES = WireNames()


# -- normalisers (attrs converters): turn what a user may pass into one canonical form ----


def _to_fields(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = _split(value, "fields")
    out: list[str] = []
    for item in items:
        wire = _FIELD_ALIASES.get(item)
        if wire is None:
            raise InvalidQueryError(
                "fields", item, f"unknown field; allowed: {', '.join(ALL_FIELDS)}"
            )
        if wire not in out:
            out.append(wire)
    if not out:
        raise InvalidQueryError(
            "fields", value, "must name at least one field (or be None for all)"
        )
    return tuple(out)


def _to_statuses(value: Iterable[str] | str | None) -> tuple[CallStatus, ...]:
    if value is None:
        return ()
    out: list[CallStatus] = []
    for item in _split(value, "statuses"):
        try:
            status = CallStatus(item.upper()) if isinstance(item, str) else CallStatus(item)
        except ValueError:
            raise InvalidQueryError(
                "statuses",
                item,
                f"unknown status; allowed: {', '.join(_STATUS_NAMES)} "
                "(for a status newer than this library, pass it in extra_statuses)",
            ) from None
        if status not in out:
            out.append(status)
    return tuple(out)


def _to_extra_statuses(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    out: list[str] = []
    for item in _split(value, "extra_statuses"):
        if not isinstance(item, str) or not _STATUS_SHAPE.match(item):
            raise InvalidQueryError(
                "extra_statuses", item, "a status is upper-case letters, digits and _"
            )
        if item not in out:
            out.append(item)
    return tuple(out)


def _to_sort(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    out: list[str] = []
    for item in _split(value, "sort"):
        sign, key = (
            ("-", item[1:])
            if item.startswith("-")
            else (("+", item[1:]) if item.startswith("+") else ("+", item))
        )
        wire = _SORT_ALIASES.get(key)
        if wire is None:
            raise InvalidQueryError(
                "sort",
                item,
                f"unknown sort key; allowed: {', '.join(SORT_KEYS)}, each optionally "
                "prefixed with + (ascending) or - (descending)",
            )
        if any(s[1:] == wire for s in out):
            raise InvalidQueryError("sort", item, f"{wire} is named twice")
        out.append(sign + wire)
    return tuple(out)


def _to_date_field(value: DateField | str | None) -> DateField | None:
    if value is None:
        return None
    found = _DATE_ALIASES.get(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidQueryError("date_field", value, f"allowed: {', '.join(DATE_FIELDS)}")
    return found


def _to_export_format(value: ExportFormat | str | None) -> ExportFormat | None:
    if value is None:
        return None
    try:
        return ExportFormat(value.upper() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(f.value for f in ExportFormat)
        raise InvalidQueryError("export_format", value, f"allowed: {allowed}") from None


def _split(value: Iterable[str] | str, name: str) -> list[str]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        return [part for part in items if part]
    try:
        items = list(value)
    except TypeError:
        raise InvalidQueryError(name, value, "must be a string or a list of strings") from None
    for item in items:
        if not isinstance(item, str):
            raise InvalidQueryError(name, item, "each item must be a string")
    return [item.strip() for item in items]


# -- validators -------------------------------------------------------------------------


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidQueryError(name, value, "must be an integer")
    if value < low or (high is not None and value > high):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        raise InvalidQueryError(name, value, f"must be an integer {allowed}")


def _check_text(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidQueryError(name, value, "must be a string")
    if not value.strip():
        raise InvalidQueryError(name, value, "must not be empty")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):  # C0, DEL and C1
        raise InvalidQueryError(name, value, "must not contain control characters")


def _check_datetime(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise InvalidQueryError(name, value, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidQueryError(
            name, value, "must be timezone-aware (e.g. datetime(..., tzinfo=timezone.utc))"
        )


_FILENAME_BAD = re.compile(r"[/\\\x00-\x1f]")


@frozen(kw_only=True)
class SessionQuery:
    """Every parameter of ``GET /api/v1/search/cis/calls``.

    ``fields`` takes wire (``taskId``) or Python (``task_id``) names; None asks for all.
    ``page_size`` is the API's ``limit`` (1..1000). Use ``offset`` or ``page`` (0-based),
    never both. ``start``/``end`` must be timezone-aware, ``start`` before ``end``; they
    filter on ``date_field`` (default createdAt). ``statuses`` are ``CallStatus`` values;
    a status this library does not know yet goes in ``extra_statuses``. ``sort`` items are
    ``createdAt``, ``updatedAt``, ``startedAt`` or ``duration``, prefixed ``+`` or ``-``.
    ``export_format``, ``filename`` and ``zip`` ask for a file instead of JSON.

    Use ``attrs.evolve(query, offset=...)`` for a changed copy; it is validated again.
    """

    fields: tuple[str, ...] | None = field(default=None, converter=_to_fields)
    page_size: int | None = None
    offset: int | None = None
    page: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    date_field: DateField | None = field(default=None, converter=_to_date_field)
    keyword: str | None = None
    sort: tuple[str, ...] = field(default=(), converter=_to_sort)
    company_id: int | None = None
    task_id: str | None = None
    call_id: str | None = None
    phone: str | None = None
    statuses: tuple[CallStatus, ...] = field(default=(), converter=_to_statuses)
    extra_statuses: tuple[str, ...] = field(default=(), converter=_to_extra_statuses)
    export_format: ExportFormat | None = field(default=None, converter=_to_export_format)
    filename: str | None = None
    zip: bool | None = None

    def __attrs_post_init__(self) -> None:
        _check_int("page_size", self.page_size, 1, MAX_PAGE_SIZE)
        _check_int("offset", self.offset, 0)
        _check_int("page", self.page, 0)
        if self.offset is not None and self.page is not None:
            raise InvalidQueryError(
                "page", self.page, f"offset={self.offset} is set too; use offset or page, not both"
            )
        _check_int("company_id", self.company_id, 0)
        _check_datetime("start", self.start)
        _check_datetime("end", self.end)
        if self.start is not None and self.end is not None and not self.start < self.end:
            raise InvalidQueryError(
                "end", self.end, f"must be after start ({self.start.isoformat()})"
            )
        for name in ("keyword", "task_id", "call_id", "phone"):
            _check_text(name, getattr(self, name))
        if self.phone is not None and not re.fullmatch(r"\+?[0-9 ()\-]{3,20}", self.phone):
            raise InvalidQueryError(
                "phone", self.phone, "must be a phone number (digits, optional +)"
            )
        if self.filename is not None:
            _check_text("filename", self.filename)
            if _FILENAME_BAD.search(self.filename) or "." in self.filename:
                raise InvalidQueryError(
                    "filename",
                    self.filename,
                    "must be a base name without extension, path separators or control characters",
                )
        if self.zip is not None and not isinstance(self.zip, bool):
            raise InvalidQueryError("zip", self.zip, "must be True or False")
        if self.export_format is None:
            if self.filename is not None:
                raise InvalidQueryError(
                    "filename", self.filename, "only applies with export_format"
                )
            if self.zip:
                raise InvalidQueryError("zip", self.zip, "only applies with export_format")

    # -- derived values ----------------------------------------------------------------

    @property
    def wire_fields(self) -> tuple[str, ...]:
        """The fields that will be asked for (all of them when ``fields`` is None)."""
        return ALL_FIELDS if self.fields is None else self.fields

    @property
    def effective_date_field(self) -> DateField:
        return self.date_field or DateField.CREATED_AT

    def with_id_field(self) -> SessionQuery:
        """A copy whose ``fields`` includes ``id`` (needed for de-duplication)."""
        if self.fields is None or "id" in self.fields:
            return self
        return attrs.evolve(self, fields=("id", *self.fields))

    def to_params(self, wire: WireNames = DEFAULT_WIRE_NAMES) -> list[tuple[str, str]]:
        """The query-string parameters, in a stable order, as (name, value) strings."""
        params: list[tuple[str, str]] = [(wire.fields, ",".join(self.wire_fields))]
        if self.page_size is not None:
            params.append((wire.limit, str(self.page_size)))
        if self.offset is not None:
            params.append((wire.offset, str(self.offset)))
        if self.page is not None:
            params.append((wire.page, str(self.page)))
        if self.start is not None:
            params.append((wire.start, self.start.isoformat()))
        if self.end is not None:
            params.append((wire.end, self.end.isoformat()))
        if self.date_field is not None:
            params.append((wire.date_field, self.date_field.value))
        if self.keyword is not None:
            params.append((wire.keyword, self.keyword))
        if self.sort:
            params.append((wire.sort, ",".join(self.sort)))
        if self.company_id is not None:
            params.append((wire.company_id, str(self.company_id)))
        if self.task_id is not None:
            params.append((wire.task_id, self.task_id))
        if self.call_id is not None:
            params.append((wire.call_id, self.call_id))
        if self.phone is not None:
            params.append((wire.phone, self.phone))
        statuses = [s.value for s in self.statuses]
        statuses += [s for s in self.extra_statuses if s not in statuses]
        if statuses:
            params.append((wire.statuses, ",".join(statuses)))
        if self.export_format is not None:
            params.append((wire.export_format, self.export_format.value))
        if self.filename is not None:
            params.append((wire.filename, self.filename))
        if self.zip is not None:
            params.append((wire.zip, "true" if self.zip else "false"))
        return params

    def describe(self) -> dict[str, Any]:
        """A JSON-able dict of the set parameters (for checkpoints and logs)."""
        out: dict[str, Any] = {}
        for a in attrs.fields(SessionQuery):
            value = getattr(self, a.name)
            if value is None or value == ():
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, StrEnum):
                value = value.value
            out[a.name] = value
        return out
