"""Text outputs: JSON Lines and CSV (plain or gzip), and JSON Lines on standard output.

* Files are written to ``<out>.partial`` beside the output and renamed into place by
  ``finalize``, so the output path never holds an incomplete file. ``commit`` flushes and
  fsyncs and returns the byte size (the position); ``open(resume_from=n)`` cuts the partial
  file back to ``n`` bytes, dropping whatever was written after that commit, and appends.
* **gzip** (``.jsonl.gz``, ``.csv.gz``) is streamed through ``zlib``. Every commit ends a
  gzip *member*, so a position is always a member boundary: a resume truncates there and
  goes on with a new member. A file of several members is one valid gzip stream (RFC 1952)
  that ``gzip``, ``zcat``, pandas and DuckDB read whole.
* **JSONL** holds each record as the API sent it (camelCase names, ``price`` a string).
* **CSV** (UTF-8, a header row, ``id`` first) holds the values as the API sent them: null
  is an empty cell, booleans ``true``/``false``, nested values JSON text; ``price`` is its
  exact decimal text (``86832.55``, never a float's repr). Read it typed with, e.g.,
  pandas ``read_csv(path, dtype={"phone": str, "price": str}, converters={"price":
  Decimal})`` or DuckDB ``read_csv(path, types={'phone': 'VARCHAR', 'price':
  'DECIMAL(18,6)'})``.
* **stdout** (``-``): JSON Lines to standard output for pipes. Not resumable; ``commit``
  flushes. When the reader goes away, ``OutputClosedError`` is raised (and standard output
  is pointed at ``/dev/null`` so that the interpreter's exit does not complain again).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .base import FIELD_KINDS, OutputClosedError, RawRecord, columns_for, decimal_text

__all__ = ["CsvSink", "JsonlSink", "StdoutSink"]

#: zlib level of the gzip outputs: 6 is gzip's own default (a good size for its speed)
GZIP_LEVEL = 6


class _PartialFileSink:
    """A byte stream written to ``<path>.partial`` and renamed to ``path`` when complete;
    optionally gzip, one member per commit."""

    def __init__(self, path: Path, *, gzip: bool = False, level: int = GZIP_LEVEL) -> None:
        self.path = path
        self.partial_path = path.with_name(path.name + ".partial")
        self.written = 0
        self.gzip = gzip
        self.level = level
        self._file: io.BufferedWriter | None = None
        self._zip: Any = None  # the zlib compressor of the open gzip member

    def check(self) -> None:
        """Nothing to check: a text output never reads what is there."""

    def open(self, resume_from: Any | None = None) -> None:
        self.close()
        if resume_from is None:
            self._file = open(self.partial_path, "wb")  # noqa: SIM115 (closed by close())
        else:
            self._reopen(int(resume_from))
        self.written = 0
        if self._file is not None and self._file.tell() == 0:
            self._start()

    def _reopen(self, resume_from: int) -> None:
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

    def _start(self) -> None:
        """Write what a new file begins with (a header)."""

    def _put(self, data: bytes) -> None:
        if self._file is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        if self.gzip:
            if self._zip is None:
                self._zip = zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: gzip
            data = self._zip.compress(data)
        self._file.write(data)

    def commit(self, window: str) -> int:
        """Durable up to here (a gzip member ends here); the position is the byte size."""
        if self._file is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        if self._zip is not None:
            self._file.write(self._zip.flush(zlib.Z_FINISH))
            self._zip = None
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        self._zip = None  # an unfinished member is dropped by the next resume
        if self._file is not None:
            f, self._file = self._file, None
            f.close()

    def finalize(self) -> Path:
        self.commit("final")
        self.close()
        os.replace(self.partial_path, self.path)
        return self.path


class JsonlSink(_PartialFileSink):
    """JSON Lines: one record per line, as the API sent it (its camelCase names)."""

    def write(self, records: Sequence[RawRecord]) -> None:
        self._put(jsonl_bytes(records))
        self.written += len(records)

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Records as the server's own JSON bytes, one per line (no line breaks inside):
        copied, never decoded and encoded again."""
        if lines:
            self._put(b"\n".join([*lines, b""]))  # one copy of the page, not two
        self.written += len(lines)


def jsonl_bytes(records: Iterable[RawRecord]) -> bytes:
    """Records as JSON Lines (one compact JSON object a line, each line ending in ``\\n``)."""
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    return b"".join([dumps(r, option=opt) for r in records])


def _cell(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int:  # most cells: as they are
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is dict or kind is list:
        return orjson.dumps(value).decode()
    return value


def _price_cell(value: Any) -> Any:
    if value is None:
        return ""
    text = decimal_text(value)
    return _cell(value) if text is None else text  # not a number: kept as it came


class CsvSink(_PartialFileSink):
    """CSV (UTF-8, a header row of the field names, ``id`` first). Nested values (lists,
    objects) are JSON in their cell; null is an empty cell; booleans are true/false;
    decimals (``price``) their exact text."""

    def __init__(
        self,
        path: Path,
        fields: Sequence[str] | None,
        *,
        gzip: bool = False,
        level: int = GZIP_LEVEL,
    ) -> None:
        super().__init__(path, gzip=gzip, level=level)
        self.columns = columns_for(fields)
        #: the columns whose cells are exact decimal text (``price``)
        self._decimals = [i for i, c in enumerate(self.columns) if FIELD_KINDS.get(c) == "decimal"]
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def _rows(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows(rows)
        self._put(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def _start(self) -> None:
        self._rows([self.columns])

    def _row(self, record: RawRecord) -> list[Any]:
        row = [_cell(record.get(c)) for c in self.columns]
        for i in self._decimals:
            row[i] = _price_cell(record.get(self.columns[i]))
        return row

    def write(self, records: Sequence[RawRecord]) -> None:
        self._rows(self._row(r) for r in records)
        self.written += len(records)


class StdoutSink:
    """JSON Lines on standard output (``--out -``), for pipes. Not resumable."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.path = Path("-")
        self.partial_path = self.path
        self.written = 0
        self._stream = stream
        self._open = False

    def check(self) -> None:
        """Nothing to check."""

    def _out(self) -> BinaryIO:
        if not self._open:
            raise RuntimeError("StdoutSink is not open")
        return self._stream if self._stream is not None else sys.stdout.buffer

    def open(self, resume_from: Any | None = None) -> None:
        if resume_from is not None:
            raise ValueError("standard output cannot be resumed")
        self._open = True
        self.written = 0

    def _gone(self) -> OutputClosedError:
        """The reader went away: stop writing to the pipe, for good."""
        self._open = False
        if self._stream is None:
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
        return OutputClosedError("standard output was closed by its reader")

    def write(self, records: Sequence[RawRecord]) -> None:
        self._write(jsonl_bytes(records), len(records))

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Records as the server's own JSON bytes, one per line (see ``JsonlSink``)."""
        self._write(b"\n".join([*lines, b""]) if lines else b"", len(lines))

    def _write(self, data: bytes, records: int) -> None:
        out = self._out()
        try:
            out.write(data)
        except BrokenPipeError:
            raise self._gone() from None
        self.written += records

    def commit(self, window: str) -> None:
        """Flush (standard output has no position to resume from)."""
        try:
            self._out().flush()
        except BrokenPipeError:
            raise self._gone() from None

    def close(self) -> None:
        if self._open:
            with contextlib.suppress(BrokenPipeError):
                self._out().flush()
            self._open = False

    def finalize(self) -> Path:
        self.commit("final")
        self._open = False
        return self.path
