"""Where a bulk pull writes: JSON Lines, CSV or SQLite, behind one small interface.

A sink receives the raw records of a pull (the API's own dicts, camelCase names) in batches
and makes them durable at the points the caller chooses (the end of each window)::

    sink = open_sink(Path("calls.jsonl"), fields)
    sink.open()                  # or sink.open(resume_from=position)
    sink.write(page.items)
    position = sink.sync()       # durable up to here: keep it in the checkpoint
    sink.finalize()              # complete: move into place

* **JSONL** and **CSV** write to ``<out>.partial`` beside the output and rename it into
  place in ``finalize``, so the output path never holds an incomplete file. ``sync`` flushes
  and fsyncs and returns the byte size; ``open(resume_from=n)`` cuts the partial file back to
  ``n`` bytes (dropping whatever was written after the last sync) and appends from there.
* **SQLite** writes to the output itself, into table ``call_sessions`` (primary key ``id``,
  one column per field, nested values as JSON text) with ``INSERT ... ON CONFLICT(id) DO
  UPDATE``: writing a record twice leaves it once. ``sync`` commits; what was not committed
  is rolled back by ``close``. Resuming needs no position: windows are simply written again.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from ._query import ALL_FIELDS

__all__ = [
    "FORMATS",
    "CsvSink",
    "JsonlSink",
    "Sink",
    "SqliteSink",
    "format_for",
    "open_sink",
    "read_ids",
]

RawRecord = dict[str, Any]

#: Output formats by file extension.
FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
}

TABLE = "call_sessions"


def format_for(path: Path) -> str | None:
    """The output format its extension names (``jsonl``, ``csv``, ``sqlite``), or None."""
    return FORMATS.get(path.suffix.lower())


def columns_for(fields: Sequence[str] | None) -> list[str]:
    """The columns written for these fields: ``id`` first, then the others in order
    (every field of the API when ``fields`` is None)."""
    chosen = ALL_FIELDS if fields is None else tuple(fields)
    return ["id", *(f for f in chosen if f != "id")]


class Sink(Protocol):
    """What a pull writes to. ``path`` is the final output; ``partial_path`` the file that
    holds the records until ``finalize`` (the same as ``path`` when writing in place)."""

    path: Path
    partial_path: Path
    #: records handed to ``write`` since ``open``
    written: int

    def open(self, resume_from: int | None = None) -> None:
        """Start writing: a new output, or (``resume_from``) continue an interrupted one
        from a position returned by ``sync``."""
        ...

    def write(self, records: Sequence[RawRecord]) -> None:
        """Append a batch of raw records."""
        ...

    def sync(self) -> int:
        """Make everything written so far durable; the position to resume from."""
        ...

    def close(self) -> None:
        """Stop without completing: release files, keep what was synced (idempotent)."""
        ...

    def finalize(self) -> Path:
        """Complete the output: sync, close and move it into place; returns ``path``."""
        ...


def open_sink(path: Path, fields: Sequence[str] | None) -> Sink:
    """The sink for ``path``'s extension, writing ``fields`` (None: every field)."""
    kind = format_for(path)
    if kind == "jsonl":
        return JsonlSink(path)
    if kind == "csv":
        return CsvSink(path, fields)
    if kind == "sqlite":
        return SqliteSink(path, fields)
    known = ", ".join(sorted(FORMATS))
    raise ValueError(f"cannot tell the output format of {path.name!r}; use one of: {known}")


# -- files written beside the output, renamed when complete -----------------------------


class _PartialFileSink:
    """A byte stream written to ``<path>.partial`` and renamed to ``path`` when complete."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial_path = path.with_name(path.name + ".partial")
        self.written = 0
        self._file: io.BufferedWriter | None = None

    def open(self, resume_from: int | None = None) -> None:
        if resume_from is None:
            self._file = open(self.partial_path, "wb")  # noqa: SIM115 (closed by close())
        else:
            if not self.partial_path.exists() and resume_from > 0:
                raise FileNotFoundError(
                    f"{self.partial_path} is missing, so the pull cannot be resumed"
                )
            self._file = open(self.partial_path, "ab")  # noqa: SIM115 (closed by close())
            size = self._file.tell()
            if size < resume_from:
                self.close()
                raise ValueError(
                    f"{self.partial_path} holds {size} bytes, fewer than the {resume_from} "
                    "the checkpoint recorded: it was changed since"
                )
            self._file.truncate(resume_from)
            self._file.seek(resume_from)
        self.written = 0
        if self._file.tell() == 0:
            self._start()

    def _start(self) -> None:
        """Write what a new file begins with (a header)."""

    def _put(self, data: bytes) -> None:
        if self._file is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        self._file.write(data)

    def sync(self) -> int:
        if self._file is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        if self._file is not None:
            f, self._file = self._file, None
            f.close()

    def finalize(self) -> Path:
        self.sync()
        self.close()
        os.replace(self.partial_path, self.path)
        return self.path


class JsonlSink(_PartialFileSink):
    """JSON Lines: one record per line, as the API sent it (its camelCase names)."""

    def write(self, records: Sequence[RawRecord]) -> None:
        dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        self._put(b"".join(dumps(r, option=opt) for r in records))
        self.written += len(records)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


class CsvSink(_PartialFileSink):
    """CSV (UTF-8, a header row of the field names, ``id`` first). Nested values (lists,
    objects) are JSON in their cell; null is an empty cell; booleans are true/false."""

    def __init__(self, path: Path, fields: Sequence[str] | None) -> None:
        super().__init__(path)
        self.columns = columns_for(fields)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def _rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows(rows)
        self._put(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def _start(self) -> None:
        self._rows([self.columns])

    def write(self, records: Sequence[RawRecord]) -> None:
        cols = self.columns
        self._rows([_cell(r.get(c)) for c in cols] for r in records)
        self.written += len(records)


# -- SQLite, written in place -------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return str(value)
    return value


class SqliteSink:
    """SQLite: table ``call_sessions``, ``id`` the primary key, one column per field.

    Records are upserted, so writing the same calls again (a second run, a resumed window)
    leaves each once, with its newest values. Columns missing from an existing table are
    added. ``sync`` commits.
    """

    def __init__(self, path: Path, fields: Sequence[str] | None) -> None:
        self.path = path
        self.partial_path = path
        self.columns = columns_for(fields)
        self.written = 0
        self._db: sqlite3.Connection | None = None
        cols = ", ".join(_quote(c) for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        updates = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in self.columns[1:])
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        self._upsert = f"INSERT INTO {TABLE} ({cols}) VALUES ({marks}) ON CONFLICT(id) {action}"

    def open(self, resume_from: int | None = None) -> None:
        db = sqlite3.connect(self.path)
        try:
            db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY NOT NULL)")
            have = {row[1] for row in db.execute(f"PRAGMA table_info({TABLE})")}
            for column in self.columns:
                if column not in have:
                    db.execute(f"ALTER TABLE {TABLE} ADD COLUMN {_quote(column)}")
            db.commit()
        except BaseException:
            db.close()
            raise
        self._db = db
        self.written = 0

    def write(self, records: Sequence[RawRecord]) -> None:
        if self._db is None:
            raise RuntimeError("SqliteSink is not open")
        cols = self.columns
        rows = [[_sql_value(r.get(c)) for c in cols] for r in records if r.get("id") is not None]
        self._db.executemany(self._upsert, rows)
        self.written += len(records)

    def sync(self) -> int:
        if self._db is None:
            raise RuntimeError("SqliteSink is not open")
        self._db.commit()
        return 0

    def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()  # without a commit: the unfinished window is rolled back

    def finalize(self) -> Path:
        self.sync()
        self.close()
        return self.path


# -- reading back (the demo's check) -----------------------------------------------------


def read_ids(path: Path) -> list[str]:
    """The ``id`` of every record in an output written by a sink, in file order."""
    kind = format_for(path)
    if kind == "jsonl":
        with open(path, "rb") as fh:
            return [orjson.loads(line)["id"] for line in fh if line.strip()]
    if kind == "csv":
        with open(path, newline="", encoding="utf-8") as fh:
            return [row["id"] for row in csv.DictReader(fh)]
    if kind == "sqlite":
        db = sqlite3.connect(path)
        try:
            return [row[0] for row in db.execute(f"SELECT id FROM {TABLE}")]
        finally:
            db.close()
    raise ValueError(f"cannot tell the format of {path.name!r}")
