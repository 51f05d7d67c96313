"""What every sink shares: the interface, the record types, window keys, errors, safe files.

Nothing here imports pyarrow (the Parquet outputs import it lazily), nor any other part of
the package: the sinks are the bottom layer a pull writes through.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from callsessions._files import atomic_file, atomic_write, create_file, fsync_dir

if TYPE_CHECKING:  # only for the annotation: the sinks never import the client at run time
    from callsessions.protocol.planning import Window

__all__ = [
    "FIELD_KINDS",
    "TABLE",
    "Kind",
    "MismatchCounter",
    "OutputClosedError",
    "OutputMismatchError",
    "RawRecord",
    "Sink",
    "UnrepresentableValueError",
    "atomic_file",
    "atomic_write",
    "columns_for",
    "create_file",
    "decimal_text",
    "fsync_dir",
    "kind_of",
    "parse_window_key",
    "window_key",
]

log = logging.getLogger("callsessions.sinks")

RawRecord = dict[str, Any]

#: The SQLite table every SQLite output writes.
TABLE = "call_sessions"

Kind = Literal["string", "status", "integer", "boolean", "timestamp", "decimal", "json"]

#: The type of every field of the API, in the API's order (``ALL_FIELDS``). ``json`` values
#: (nested objects and lists whose shapes are not documented) are written as JSON text.
FIELD_KINDS: dict[str, Kind] = {
    "id": "string",
    "phone": "string",
    "duration": "integer",
    "taskId": "string",
    "taskName": "string",
    "botId": "string",
    "botName": "string",
    "regionId": "integer",
    "timezone": "integer",
    "status": "status",
    "shortNumber": "string",
    "transferredToOperator": "boolean",
    "linkToLog": "string",
    "createdAt": "timestamp",
    "updatedAt": "timestamp",
    "startedAt": "timestamp",
    "price": "decimal",
    "messages": "json",
    "messagesAsString": "string",
    "additional": "json",
    "externalId": "string",
    "dialogResults": "json",
    "responder": "string",
    "nps": "integer",
    "isFinished": "boolean",
    "recordPath": "string",
    "operatorDuration": "integer",
    "botDuration": "integer",
    "markers": "json",
}


def kind_of(field: str) -> Kind:
    """The type of ``field``; a field this version does not know is kept as JSON text."""
    return FIELD_KINDS.get(field, "json")


def columns_for(fields: Sequence[str] | None) -> list[str]:
    """The columns written for these fields: ``id`` first, then the others in order, each
    once (every field of the API when ``fields`` is None)."""
    chosen = tuple(FIELD_KINDS) if fields is None else tuple(fields)
    return list(dict.fromkeys(["id", *chosen]))


# -- errors -------------------------------------------------------------------------------


class OutputMismatchError(ValueError):
    """The output already holds something this pull must not write into: a SQLite table
    ``call_sessions`` with another schema, a directory of other files. Raised before
    anything is changed; the message is one line naming what and why."""


class UnrepresentableValueError(ValueError):
    """A value the output's type cannot hold exactly (a price with more digits than its
    decimal column, a record without ``id`` for an output keyed by it): the pull stops
    rather than round or drop it."""


class OutputClosedError(Exception):
    """The reader of standard output went away (a broken pipe, as when piping into
    ``head``). Not an ``OSError`` on purpose: a command line ends quietly on it."""


class MismatchCounter:
    """Counts values whose type does not match their column (written as null), per field,
    and logs one warning the first time a field has one. Values are never logged: they may
    be personal data."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, field: str, count: int, expected: str) -> None:
        if count <= 0:
            return
        if field not in self.counts:
            self.counts[field] = 0
            log.warning(
                "field %s: a value that is not %s was written as null (counted in "
                "type_mismatches; later ones are not logged)",
                field,
                expected,
            )
        self.counts[field] += count


# -- the interface ------------------------------------------------------------------------


class Sink(Protocol):
    """What a pull writes to (synchronous: the caller runs it off the event loop).

    ``path`` is the final output; ``partial_path`` where records wait until ``finalize``
    (the same as ``path`` when written in place). Records are the API's raw dicts.
    """

    path: Path
    partial_path: Path
    #: records handed to ``write`` since ``open``
    written: int

    def check(self) -> None:
        """Refuse an output this sink cannot write (``OutputMismatchError``) without
        changing anything; ``open`` checks again. Cheap: call it before any request."""
        ...

    def open(self, resume_from: Any | None = None) -> None:
        """Start writing: a new output, or (``resume_from``, a value ``commit`` returned)
        continue an interrupted one, dropping whatever was written after that commit."""
        ...

    def write(self, records: Sequence[RawRecord]) -> None:
        """Add a batch of raw records."""
        ...

    def commit(self, window: str) -> Any:
        """The records written since the last commit are one finished window named
        ``window`` (a filesystem-safe key, see ``window_key``): make them durable and
        return a JSON-serialisable position to resume from."""
        ...

    def close(self) -> None:
        """Stop without completing (idempotent): release files, keep what was committed."""
        ...

    def finalize(self) -> Path:
        """Complete the output (what was written since the last commit included) and move
        it into place; returns ``path``."""
        ...


# -- window keys --------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:  # a naive time is taken as UTC
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y%m%dT%H%M%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def window_key(window: Window) -> str:
    """A stable, filesystem-safe name for a window: its UTC start and end, e.g.
    ``20260101T000000Z_20260101T060000Z`` (``.ffffff`` after the seconds when they have a
    fraction). The same window always gets the same key, whichever offset its times use."""
    return f"{_stamp(window.start)}_{_stamp(window.end)}"


_KEY = re.compile(r"(\d{8}T\d{6}(?:\.\d{6})?)Z_(\d{8}T\d{6}(?:\.\d{6})?)Z")


def _unstamp(text: str) -> datetime:
    fmt = "%Y%m%dT%H%M%S.%f" if "." in text else "%Y%m%dT%H%M%S"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def parse_window_key(key: str) -> tuple[datetime, datetime] | None:
    """The (start, end) a ``window_key`` names, in UTC; None for any other key."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    return _unstamp(match[1]), _unstamp(match[2])


def key_order(key: str) -> tuple[int, datetime, datetime, str]:
    """A sort key putting window keys in time order (other keys after them, by name)."""
    span = parse_window_key(key)
    if span is None:
        return (1, datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), key)
    return (0, span[0], span[1], key)


_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def check_key(key: str) -> str:
    """``key`` if it can name a part file (letters, digits, ``._-``), else ValueError."""
    if not _SAFE_KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"window key {key!r} is not filesystem-safe (letters, digits, ._-)")
    return key


# -- decimals -----------------------------------------------------------------------------

_PLAIN_DECIMAL = re.compile(r"[+-]?\d+(?:\.\d+)?")


def decimal_text(value: Any) -> str | None:
    """The exact decimal text of a price as the API may send it (a string or a JSON
    number), without an exponent; None when it is not a number at all."""
    if isinstance(value, str):
        if _PLAIN_DECIMAL.fullmatch(value):
            return value
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the shortest text that reads back as this float
    elif isinstance(value, Decimal):
        number = value
    else:
        return None
    if not number.is_finite():
        return None
    return format(number, "f")


# -- files --------------------------------------------------------------------------------


def remove_temporaries(path: Path) -> None:
    """Remove what an interrupted ``atomic_file(path)`` may have left beside ``path``."""
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def glob_escape(name: str) -> str:
    """``name`` with the glob metacharacters made literal."""
    return re.sub(r"([*?\[])", r"[\1]", name)
