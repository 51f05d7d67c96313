"""The endpoint's vocabulary: fields, statuses, date columns, sort keys, export formats.

Shared by the query, the records, the sinks and the command line; imports nothing else.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = [
    "ALL_FIELDS",
    "DATE_FIELDS",
    "MAX_PAGE_SIZE",
    "SORT_KEYS",
    "CallStatus",
    "DateField",
    "ExportFormat",
    "snake_case",
]

MAX_PAGE_SIZE = 1000

#: Every field the endpoint can return, in the reference page's order (wire names).
ALL_FIELDS: tuple[str, ...] = (
    "id",
    "phone",
    "duration",
    "taskId",
    "taskName",
    "botId",
    "botName",
    "regionId",
    "timezone",
    "status",
    "shortNumber",
    "transferredToOperator",
    "linkToLog",
    "createdAt",
    "updatedAt",
    "startedAt",
    "price",
    "messages",
    "messagesAsString",
    "additional",
    "externalId",
    "dialogResults",
    "responder",
    "nps",
    "isFinished",
    "recordPath",
    "operatorDuration",
    "botDuration",
    "markers",
)

_CAMEL_SPLIT = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(name: str) -> str:
    """``taskId`` -> ``task_id``."""
    return _CAMEL_SPLIT.sub("_", name).lower()


#: Accepted spellings of a field (wire camelCase or Python snake_case) -> wire name.
_FIELD_ALIASES: dict[str, str] = {}
for _name in ALL_FIELDS:
    _FIELD_ALIASES[_name] = _name
    _FIELD_ALIASES[snake_case(_name)] = _name


class CallStatus(StrEnum):
    """The call statuses the API documents. New ones will appear; see ``extra_statuses``."""

    CANCEL = "CANCEL"
    ANSWERED = "ANSWERED"
    NOANSWER = "NOANSWER"
    BUSY = "BUSY"
    CONGESTION = "CONGESTION"
    CHANUNAVAIL = "CHANUNAVAIL"
    FAILED = "FAILED"
    BLACKLIST = "BLACKLIST"
    DIAL = "DIAL"
    INPROGRESS = "INPROGRESS"
    FZ230 = "FZ230"
    INVALID = "INVALID"
    UNAVAILABLE = "UNAVAILABLE"
    EMPTY_AON = "EMPTY_AON"


class DateField(StrEnum):
    """The date column that ``start``/``end`` filter on."""

    CREATED_AT = "createdAt"
    UPDATED_AT = "updatedAt"
    STARTED_AT = "startedAt"


class ExportFormat(StrEnum):
    """File formats of the export (the values are a guess; see API.md)."""

    CSV = "CSV"
    CSV_EXCEL = "CSV_EXCEL"
    XLSX = "XLSX"
    JSON = "JSON"


DATE_FIELDS: tuple[str, ...] = tuple(d.value for d in DateField)
SORT_KEYS: tuple[str, ...] = ("createdAt", "updatedAt", "startedAt", "duration")
