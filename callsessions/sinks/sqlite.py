"""SQLite (``.sqlite``, ``.sqlite3``, ``.db``): table ``call_sessions``, typed, upserted.

Written in place, into table ``call_sessions``: primary key ``id``, one column per field
with a declared type, so that every reader (the sqlite3 shell, DuckDB's SQLite scanner,
pandas) sees the types:

* ``INTEGER``: ``duration``, ``operatorDuration``, ``botDuration``, ``regionId``,
  ``timezone``, ``nps``; and the booleans ``transferredToOperator``, ``isFinished`` as 0/1;
* ``TEXT``: the strings (``phone`` included); ``status``; the date-times
  ``createdAt``/``updatedAt``/``startedAt`` **normalised to UTC** in one fixed-width form,
  ``2026-01-01T00:00:00.000000Z``, so that text order is time order whatever offsets the
  server used (DuckDB: ``createdAt::TIMESTAMPTZ``; SQLite: ``datetime(createdAt)``);
  ``price`` as its **exact decimal text** (``"3.00"`` as sent; a JSON number by its
  shortest text, never a binary float: DuckDB ``price::DECIMAL(18,6)``); nested values
  (``messages``, ``additional``, ``dialogResults``, ``markers``) as JSON text.

An index ``call_sessions_createdAt`` is kept on ``createdAt``. Records are upserted
(``INSERT ... ON CONFLICT(id) DO UPDATE``), so writing a call twice leaves it once, with its
newest values; ``commit`` commits the transaction, ``close`` rolls back what was not
committed, and a resume simply writes the unfinished windows again.

A value of the wrong type is written as NULL and counted per field in ``type_mismatches``
(one warning log line per field), as in the Parquet output; a record without ``id`` raises
``UnrepresentableValueError``.

**An existing table** is checked before anything is changed (``check``, and ``open``
again inside its transaction):

* this layout: columns missing for the fields asked are added (``ALTER TABLE ADD COLUMN``);
* the untyped layout of earlier versions of this library (the same column names with no
  declared types): **migrated** in one transaction to the typed layout (values converted
  as above; a failure rolls back and leaves the table as it was), with a log line;
* anything else (a column that is not a call-session field, another declared type, no
  primary key on ``id``, a view): ``OutputMismatchError``, one line naming the table and
  the mismatch, and the database is left byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .base import (
    FIELD_KINDS,
    TABLE,
    Kind,
    MismatchCounter,
    OutputMismatchError,
    RawRecord,
    UnrepresentableValueError,
    columns_for,
    decimal_text,
    kind_of,
)

__all__ = ["SQL_TYPES", "SqliteSink", "utc_text"]

log = logging.getLogger("callsessions.sinks")

SQL_TYPES: dict[Kind, str] = {
    "string": "TEXT",
    "status": "TEXT",
    "integer": "INTEGER",
    "boolean": "INTEGER",
    "timestamp": "TEXT",
    "decimal": "TEXT",
    "json": "TEXT",
}
INDEX = f"{TABLE}_createdAt"
_INT64 = range(-(2**63), 2**63)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _create_sql(table: str, columns: Sequence[str]) -> str:
    defs = ["id TEXT PRIMARY KEY NOT NULL"]
    defs += [f"{_quote(c)} {SQL_TYPES[kind_of(c)]}" for c in columns if c != "id"]
    return f"CREATE TABLE {table} ({', '.join(defs)})"


# -- values -------------------------------------------------------------------------------


def utc_text(value: Any) -> str | None:
    """An ISO 8601 date-time with an offset as UTC text ``YYYY-MM-DDTHH:MM:SS.ffffffZ``;
    None when it is not one (a time without an offset is not: its zone is unknown)."""
    if type(value) is not str:
        return None
    if len(value) in (20, 25) and value[16] == ":":  # 2026-01-01T03:00:00+03:00 (or ...Z)
        fast = _utc_whole_seconds(value)
        if fast is not None:
            return fast
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


#: "YYYY-MM-DDTHH:MM" + offset -> the UTC "YYYY-MM-DDTHH:MM:" it is (bounded below)
_MINUTES: dict[str, str | None] = {}


def _utc_whole_seconds(value: str) -> str | None:
    """``utc_text`` of the usual form, by its minute: an offset is whole minutes, so the
    seconds do not change, and the records of a window share few minutes. None: another
    form (the caller parses it in full)."""
    seconds = value[17:19]
    if not (seconds.isdigit() and seconds.isascii() and seconds < "60"):
        return None
    key = value[:16] + value[19:]
    prefix = _MINUTES.get(key, "")
    if prefix == "":
        try:
            moment = datetime.fromisoformat(value[:16] + ":00" + value[19:])
        except ValueError:
            moment = None
        prefix = None
        if moment is not None and moment.tzinfo is not None:
            prefix = moment.astimezone(UTC).isoformat()[:17]
        if len(_MINUTES) >= 100_000:
            _MINUTES.clear()
        _MINUTES[key] = prefix
    return None if prefix is None else f"{prefix}{seconds}.000000Z"


def _text(v: Any) -> Any:
    return v if type(v) is str else None


def _integer(v: Any) -> Any:
    if type(v) is int:
        return v if v in _INT64 else None
    if type(v) is float and v.is_integer() and -(2.0**63) <= v < 2.0**63:
        return int(v)
    return None


def _boolean(v: Any) -> Any:
    return int(v) if type(v) is bool else None


def _json(v: Any) -> Any:
    return orjson.dumps(v, default=str).decode()


def _legacy_boolean(v: Any) -> Any:
    return v if v in (0, 1) and type(v) is int else _boolean(v)


def _legacy_json(v: Any) -> Any:
    if isinstance(v, str):  # the old layout kept objects and lists as JSON text already
        try:
            orjson.loads(v)
        except orjson.JSONDecodeError:
            return _json(v)
        return v
    return _json(v)


_CONVERT: dict[Kind, tuple[Callable[[Any], Any], str]] = {
    "string": (_text, "a string"),
    "status": (_text, "a string"),
    "integer": (_integer, "an integer"),
    "boolean": (_boolean, "a boolean"),
    "timestamp": (utc_text, "an ISO 8601 date-time with a UTC offset"),
    "decimal": (decimal_text, "a decimal number"),
    "json": (_json, "JSON"),
}
_LEGACY: dict[Kind, Callable[[Any], Any]] = {"boolean": _legacy_boolean, "json": _legacy_json}


_NONE = type(None)
_AS_THEY_ARE: dict[Kind, set[type]] = {
    "string": {str, _NONE},
    "status": {str, _NONE},
    "boolean": {bool, _NONE},  # sqlite3 binds True/False as the integers 1/0
}


def _column(name: str, values: list[Any], mm: MismatchCounter, legacy: bool = False) -> list[Any]:
    kind = kind_of(name)
    if not legacy:
        types = set(map(type, values))
        if types <= _AS_THEY_ARE.get(kind, set()):
            return values
        if kind == "integer" and types <= {int, _NONE}:
            ints = [v for v in values if v is not None]
            if not ints or (min(ints) in _INT64 and max(ints) in _INT64):
                return values
    convert, expected = _CONVERT[kind]
    if legacy:
        convert = _LEGACY.get(kind, convert)
    out = [None if v is None else convert(v) for v in values]
    mm.add(
        name,
        sum(1 for v, c in zip(values, out, strict=True) if c is None and v is not None),
        expected,
    )
    return out


# -- the existing table -------------------------------------------------------------------


def inspect_table(db: sqlite3.Connection, path: Path, columns: Sequence[str]) -> tuple[str, ...]:
    """The columns of the existing ``call_sessions`` (empty when there is none) if they are
    this library's; raises OutputMismatchError otherwise. Reads only."""
    try:
        row = db.execute("SELECT type FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise OutputMismatchError(f"{path} cannot be read as a SQLite database ({exc})") from None
    if row is None:
        return ()
    if row[0] != "table":
        raise OutputMismatchError(f"{TABLE} in {path} is a {row[0]}, not a table; nothing written")
    info = db.execute(f"PRAGMA table_info({TABLE})").fetchall()
    names = tuple(r[1] for r in info)
    problems = [] if "id" in names else ['it has no column "id"']
    for _cid, name, declared, notnull, _default, pk in info:
        declared = declared.upper()
        if name == "id":
            if declared != "TEXT" or pk != 1:
                role = "the primary key" if pk == 1 else "not the primary key"
                problems.append(
                    f'column "id" is {declared or "untyped"}, {role}; expected TEXT PRIMARY KEY'
                )
        elif name not in FIELD_KINDS and name not in columns:
            problems.append(f'column "{name}" is not a call-session field')
        elif declared not in ("", SQL_TYPES[kind_of(name)]):
            problems.append(f'column "{name}" is {declared}, expected {SQL_TYPES[kind_of(name)]}')
        elif pk or notnull:
            problems.append(f'column "{name}" is {"in the primary key" if pk else "NOT NULL"}')
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise OutputMismatchError(
            f"table {TABLE} in {path} has another schema: {problems[0]}{more}; nothing was "
            "changed (write to another file)"
        )
    return names


def _is_legacy(db: sqlite3.Connection) -> bool:
    """True when some column has no declared type: the layout of earlier versions."""
    return any(r[2] == "" for r in db.execute(f"PRAGMA table_info({TABLE})") if r[1] != "id")


class SqliteSink:
    """SQLite: table ``call_sessions``, typed columns, ``id`` the primary key, upserts."""

    def __init__(self, path: Path, fields: Sequence[str] | None) -> None:
        self.path = path
        self.partial_path = path
        self.columns = columns_for(fields)
        self.written = 0
        self.mismatches = MismatchCounter()
        self._db: sqlite3.Connection | None = None
        cols = ", ".join(_quote(c) for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        updates = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in self.columns[1:])
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        self._upsert = f"INSERT INTO {TABLE} ({cols}) VALUES ({marks}) ON CONFLICT(id) {action}"

    @property
    def type_mismatches(self) -> dict[str, int]:
        """Values written as NULL because their type was wrong, per field."""
        return dict(self.mismatches.counts)

    def check(self) -> None:
        """Refuse a foreign ``call_sessions`` (``OutputMismatchError``) through a read-only
        connection: the file is not changed, whatever it holds."""
        if not self.path.exists():
            return
        if self.path.is_dir():
            raise OutputMismatchError(f"{self.path} is a directory, not a SQLite database")
        try:
            db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise OutputMismatchError(f"{self.path} cannot be opened as SQLite ({exc})") from None
        try:
            inspect_table(db, self.path, self.columns)
        finally:
            db.close()

    def open(self, resume_from: Any | None = None) -> None:
        self.close()
        self.check()
        new = not self.path.exists()
        # Transactions are explicit. Any thread may call (one at a time): a caller runs the
        # sink off its event loop with asyncio.to_thread, on whichever worker thread is free.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("BEGIN IMMEDIATE")
            self._prepare(db)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if db.in_transaction:
                    db.execute("ROLLBACK")
            db.close()
            if new:
                self.path.unlink(missing_ok=True)
            raise
        self._db = db
        self.written = 0

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Create, extend or migrate the table (inside the caller's transaction)."""
        have = inspect_table(db, self.path, self.columns)
        if not have:
            db.execute(_create_sql(TABLE, self.columns))
        elif _is_legacy(db):
            self._migrate(db, have)
        else:
            for column in self.columns:
                if column not in have:
                    kind = SQL_TYPES[kind_of(column)]
                    db.execute(f"ALTER TABLE {TABLE} ADD COLUMN {_quote(column)} {kind}")
        if "createdAt" in {*have, *self.columns}:
            db.execute(f'CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} ("createdAt")')

    def _migrate(self, db: sqlite3.Connection, have: Sequence[str]) -> None:
        """Rewrite an untyped table of an earlier version as a typed one."""
        temp = f"{TABLE}__typed"
        columns = columns_for([*have, *self.columns])
        db.execute(f"DROP TABLE IF EXISTS {temp}")
        db.execute(_create_sql(temp, columns))
        names = ", ".join(_quote(c) for c in have)
        insert = f"INSERT INTO {temp} ({names}) VALUES ({', '.join('?' for _ in have)})"
        source = db.execute(f"SELECT {names} FROM {TABLE}")
        moved = 0
        while rows := source.fetchmany(5000):
            values = [list(col) for col in zip(*rows, strict=True)]
            converted = [
                _column(c, v, self.mismatches, True) for c, v in zip(have, values, strict=True)
            ]
            db.executemany(insert, zip(*converted, strict=True))
            moved += len(rows)
        db.execute(f"DROP TABLE {TABLE}")
        db.execute(f"ALTER TABLE {temp} RENAME TO {TABLE}")
        log.info("migrated %s in %s to typed columns (%d rows)", TABLE, self.path, moved)

    def _open_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteSink is not open")
        return self._db

    def write(self, records: Sequence[RawRecord]) -> None:
        db = self._open_db()
        mm = self.mismatches
        columns = [_column(c, [r.get(c) for r in records], mm) for c in self.columns]
        if any(i is None for i in columns[0]):
            raise UnrepresentableValueError(
                f"a record without a string 'id' cannot be written to {TABLE} in {self.path} "
                "(id is its primary key)"
            )
        if not db.in_transaction:
            db.execute("BEGIN")
        db.executemany(self._upsert, zip(*columns, strict=True))
        self.written += len(records)

    def commit(self, window: str) -> int:
        """Commit; SQLite needs no position to resume (windows are written again)."""
        db = self._open_db()
        if db.in_transaction:
            db.execute("COMMIT")
        return 0

    def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()  # without a commit: the unfinished window is rolled back

    def finalize(self) -> Path:
        self.commit("final")
        self.close()
        return self.path
