"""Wire parameters of the search endpoint: parsing and validation into a :class:`Query`.

Parsing is strict where API.md is specific (400 with ``{"error", "details"}``) and lenient
where the reference page and the platform disagree or say nothing:

* ``fields`` absent means every field (the reference page calls it required);
* unknown parameters are ignored;
* whitespace around ``sort`` keys is stripped, so an unencoded ``+`` (decoded as a space)
  still means ascending; ``from``/``to`` are *not* repaired: an unencoded ``+00:00`` arrives
  as `` 00:00`` and is rejected, as the reference page warns ("need encode url").

Evaluating a parsed query on a data set is ``_query.py``'s work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._tables import FIELDS, SORT_FIELDS, STATUS_INDEX, STATUSES

__all__ = [
    "DATE_FIELDS",
    "DEFAULT_LIMIT",
    "EXPORT_FORMATS",
    "MAX_LIMIT",
    "ParamError",
    "Query",
    "parse_query",
]

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
DATE_FIELDS = ("createdAt", "updatedAt", "startedAt")
EXPORT_FORMATS = ("CSV", "CSV_EXCEL", "XLSX", "JSON")
_UINT = re.compile(r"[0-9]+\Z")
_INT = re.compile(r"-?[0-9]+\Z")


class ParamError(ValueError):
    """Invalid input: answered with 400 and ``{"error": message, "details": details}``."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@attrs.frozen
class Query:
    """One search request, parsed. ``filter_key`` and ``sort`` identify its result set."""

    fields: tuple[str, ...]
    limit: int
    offset: int
    date_field: str
    start: float | None
    end: float | None
    statuses: frozenset[int] | None
    phone: str | None
    task_id: str | None
    record_id: str | None
    company_id: int | None
    keyword: str | None
    sort: tuple[tuple[str, bool], ...]  # (field, descending)
    format: str | None
    filename: str
    zip: bool

    @property
    def filter_key(self) -> tuple[Any, ...]:
        """Everything that decides which records match (not their order, not the page)."""
        return (
            self.date_field,
            self.start,
            self.end,
            self.statuses,
            self.phone,
            self.task_id,
            self.record_id,
            self.company_id,
            self.keyword,
        )


def _uint(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _UINT.match(raw):
        raise ParamError(
            f"Invalid parameter '{name}': must be a non-negative integer.",
            {name: raw},
        )
    return int(raw)


def _datetime(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ParamError(
            f"Invalid parameter '{name}': expected an ISO 8601 date-time with a UTC offset, "
            "for example 2018-05-27T21:30:54+00:00 (URL-encoded).",
            {name: raw},
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ParamError(
            f"Invalid parameter '{name}': the date-time has no UTC offset.", {name: raw}
        )
    return value.timestamp()


def _comma_list(raw: str, name: str, allowed: tuple[str, ...] | None) -> list[str]:
    items = raw.split(",")
    if any(item == "" for item in items):
        raise ParamError(f"Invalid parameter '{name}': empty item in the list.", {name: raw})
    if allowed is not None:
        allowed_set = set(allowed)
        unknown = [item for item in items if item not in allowed_set]
        if unknown:
            raise ParamError(
                f"Invalid parameter '{name}': unknown value(s) {', '.join(unknown)}.",
                {name: raw, "allowed": list(allowed)},
            )
    return list(dict.fromkeys(items))


def _limit(params: Mapping[str, str]) -> int:
    """The page size: ``limit``, or the default; 1..MAX_LIMIT, as API.md allows."""
    limit = _uint(params, "limit")
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ParamError(
            f"Invalid parameter 'limit': must be between 1 and {MAX_LIMIT}.",
            {"limit": params["limit"]},
        )
    return limit


def _offset(params: Mapping[str, str], limit: int) -> int:
    """The first record: ``offset``, or ``page`` pages of ``limit`` (never both), else 0."""
    offset = _uint(params, "offset")
    page = _uint(params, "page")
    if offset is not None and page is not None:
        raise ParamError(
            "Use either 'offset' or 'page', not both.",
            {"offset": params["offset"], "page": params["page"]},
        )
    if page is not None:
        offset = page * limit
    return offset or 0


def _date_field(params: Mapping[str, str]) -> str:
    """The field ``from``/``to`` apply to (``createdAt`` when absent or empty)."""
    date_field = params.get("dateField") or "createdAt"
    if date_field not in DATE_FIELDS:
        raise ParamError(
            "Invalid parameter 'dateField'.",
            {"dateField": date_field, "allowed": list(DATE_FIELDS)},
        )
    return date_field


def _statuses(params: Mapping[str, str]) -> frozenset[int] | None:
    """The status filter as status indexes (None: no filter; present but empty is refused)."""
    if "status" not in params:
        return None
    names = _comma_list(params["status"], "status", STATUSES)
    return frozenset(STATUS_INDEX[name] for name in names)


def _company_id(params: Mapping[str, str]) -> int | None:
    """The ``companyId`` filter (None when absent or empty); any integer, sign allowed."""
    raw_company = params.get("companyId")
    if not raw_company:
        return None
    if not _INT.match(raw_company):
        raise ParamError(
            "Invalid parameter 'companyId': must be an integer.", {"companyId": raw_company}
        )
    return int(raw_company)


def _sort(params: Mapping[str, str]) -> tuple[tuple[str, bool], ...]:
    """The sort keys as ``(field, descending)``, first mention wins; ``createdAt`` ascending
    when none. Whitespace is stripped so an unencoded ``+`` (a space) still means ascending."""
    sort: list[tuple[str, bool]] = []
    raw_sort = params.get("sort")
    if raw_sort:
        seen: set[str] = set()
        for item in raw_sort.split(","):
            key = item.strip()
            descending = key.startswith("-")
            key = key.lstrip("+-").strip()
            if key not in SORT_FIELDS:
                raise ParamError(
                    f"Invalid parameter 'sort': unknown sort field '{item}'.",
                    {"sort": raw_sort, "allowed": list(SORT_FIELDS)},
                )
            if key not in seen:
                seen.add(key)
                sort.append((key, descending))
    if not sort:
        sort = [("createdAt", False)]
    return tuple(sort)


def _export(params: Mapping[str, str]) -> tuple[str | None, str, bool]:
    """The export parameters ``(format, filename, zip)``; validated even on list requests."""
    fmt = params.get("format") or None
    if fmt is not None and fmt not in EXPORT_FORMATS:
        raise ParamError(
            "Invalid parameter 'format'.", {"format": fmt, "allowed": list(EXPORT_FORMATS)}
        )
    filename = params.get("filename") or "calls"
    if any(c in filename for c in '/\\"\r\n') or filename in (".", ".."):
        raise ParamError("Invalid parameter 'filename'.", {"filename": filename})
    raw_zip = params.get("zip", "false").lower()
    if raw_zip not in ("true", "false", "1", "0"):
        raise ParamError("Invalid parameter 'zip': must be true or false.", {"zip": raw_zip})
    return fmt, filename, raw_zip in ("true", "1")


def _text(params: Mapping[str, str], name: str) -> str | None:
    """A free-text filter: None when absent or empty."""
    value = params.get(name)
    return value if value else None


def parse_query(params: Mapping[str, str], *, offset_ceiling: int | None = None) -> Query:
    """Validate wire parameters; raise :class:`ParamError` on invalid input.

    ``offset_ceiling`` (the search index's result window) applies to list requests only:
    ``offset + limit`` above it is refused.
    """
    # The helpers run in this order, which decides the error reported when several
    # parameters are invalid: keep it.
    raw_fields = params.get("fields")
    fields = FIELDS if raw_fields is None else tuple(_comma_list(raw_fields, "fields", FIELDS))
    limit = _limit(params)
    offset = _offset(params, limit)
    date_field = _date_field(params)
    start = _datetime(params, "from")
    end = _datetime(params, "to")
    statuses = _statuses(params)
    company_id = _company_id(params)
    sort = _sort(params)
    fmt, filename, zip_ = _export(params)
    if fmt is None and offset_ceiling is not None and offset + limit > offset_ceiling:
        raise ParamError(
            "Result window is too large",
            {"offset": offset, "limit": limit, "max": offset_ceiling},
        )
    keyword = _text(params, "keyword")
    return Query(
        fields=fields,
        limit=limit,
        offset=offset,
        date_field=date_field,
        start=start,
        end=end,
        statuses=statuses,
        phone=_text(params, "phone"),
        task_id=_text(params, "taskId"),
        record_id=_text(params, "id"),
        company_id=company_id,
        keyword=keyword.lower() if keyword else None,
        sort=sort,
        format=fmt,
        filename=filename,
        zip=zip_,
    )
