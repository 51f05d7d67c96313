"""Part files: one window's records in one file, renamed into place when it is complete.

A part is written to a hidden temporary name in its directory (``.inprogress-*.tmp``, which
no reader's ``*.parquet`` or ``*.jsonl`` glob matches) and renamed to
``part-<window key>.<ext>`` when its window is committed. The rename replaces a part of
the same window that is already there, so a retried window is written once, never
appended. Both the Parquet spool of a single-file output and a dataset directory are
made of parts; so are the parts distributed workers write with ``write_part``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

from attrs import frozen

from .base import (
    MismatchCounter,
    RawRecord,
    check_key,
    create_file,
    fsync_dir,
    key_order,
    kind_of,
)
from .text import jsonl_bytes

__all__ = [
    "DEFAULT_ROW_GROUP_ROWS",
    "PART_FORMATS",
    "PartFormat",
    "PartInfo",
    "PartWriter",
    "count_records",
    "part_name",
    "scan_parts",
    "write_part",
]

PartFormat = Literal["jsonl", "parquet"]
PART_FORMATS: tuple[PartFormat, ...] = ("jsonl", "parquet")
_EXTENSIONS: dict[str, str] = {"jsonl": ".jsonl", "parquet": ".parquet"}
INPROGRESS = ".inprogress-"

#: Rows of one Parquet row group: four pages of the largest page size.
DEFAULT_ROW_GROUP_ROWS = 4000
#: zstd level of the Parquet files: Arrow's default. Level 3 (zstd's own default) took 15 to
#: 30 % more CPU to write and made the 120k-record demo no smaller (8.9 MiB against 8.7).
ZSTD_LEVEL = 1
#: Fields whose values are unique per call: a dictionary page would hold every value once
#: more, so they are stored plain (every other column is dictionary-encoded; Arrow falls
#: back to plain by itself when a dictionary outgrows its page).
UNIQUE_FIELDS = frozenset(
    {"id", "phone", "linkToLog", "externalId", "recordPath", "createdAt", "updatedAt", "startedAt"}
)
#: Long text no reader filters on by range: no min/max statistics (they cost a comparison
#: of every value and bloat the footer). Nested values (JSON text) have none either.
UNFILTERED_FIELDS = frozenset({"messagesAsString", "linkToLog", "recordPath"})


@frozen
class PartInfo:
    """A committed part: the window it holds, its file name (in its directory) and how many
    records it holds."""

    window: str
    file: str
    records: int

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "file": self.file, "records": self.records}

    @classmethod
    def from_json(cls, data: Any) -> PartInfo:
        """A part from ``to_json``'s dict; ValueError for anything else."""
        try:
            window, file, records = data["window"], data["file"], data["records"]
        except (TypeError, KeyError):
            raise ValueError(f"not a part: {data!r}") from None
        if not (isinstance(window, str) and isinstance(file, str)):
            raise ValueError(f"not a part: {data!r}")
        if type(records) is not int or records < 0 or Path(file).name != file:
            raise ValueError(f"not a part: {data!r}")
        return cls(window, file, records)


def part_name(key: str, format: PartFormat) -> str:
    """The file name of window ``key``'s part: ``part-<key>.parquet`` or ``.jsonl``."""
    return f"part-{check_key(key)}{_EXTENSIONS[format]}"


def parquet_writer(
    fh: BinaryIO, schema: Any, compression: str = "zstd", *, statistics: bool = True
) -> Any:
    """A ``pyarrow.parquet.ParquetWriter`` on ``fh`` with this package's settings: zstd
    (or ``compression``), dictionary pages except for ``UNIQUE_FIELDS``, min/max
    statistics (unless ``statistics`` is false: a spool nobody filters) except for nested
    values and ``UNFILTERED_FIELDS``, decimals stored as 64-bit integers."""
    import pyarrow.parquet as pq

    names = schema.names
    with_statistics = [
        name
        for name in names
        if statistics and name not in UNFILTERED_FIELDS and kind_of(name) != "json"
    ]
    return pq.ParquetWriter(
        fh,
        schema,
        compression=compression,
        compression_level=ZSTD_LEVEL if compression == "zstd" else None,
        use_dictionary=[name for name in names if name not in UNIQUE_FIELDS],
        write_statistics=with_statistics or False,
        store_decimal_as_integer=True,
    )


class WritesParts:
    """What the sinks that write through a ``PartWriter`` (Parquet's spool, the dataset
    directory) share: the open writer, and handing it records."""

    _writer: PartWriter | None
    written: int

    def _open_writer(self) -> PartWriter:
        if self._writer is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._writer

    def write(self, records: Sequence[RawRecord]) -> None:
        self._open_writer().write(records)
        self.written += len(records)


class PartWriter:
    """Writes the parts of one directory one after the other: ``write`` adds records to the
    part in progress, ``commit(key)`` completes it as window ``key``'s part."""

    def __init__(
        self,
        directory: Path,
        format: PartFormat,
        columns: Sequence[str],
        *,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        mismatches: MismatchCounter | None = None,
        compression: str = "zstd",
        statistics: bool = True,
    ) -> None:
        if format not in PART_FORMATS:
            raise ValueError(f"a part is jsonl or parquet, not {format!r}")
        self.directory = directory
        self.format: PartFormat = format
        self.columns = list(columns)
        self.row_group_rows = row_group_rows
        self.compression = compression
        self.statistics = statistics
        self.mismatches = mismatches if mismatches is not None else MismatchCounter()
        #: records written since the last commit
        self.pending = 0
        self._tmp: Path | None = None
        self._file: BinaryIO | None = None
        self._parquet: Any = None
        self._schema: Any = None
        self._buffer: list[RawRecord] = []

    def _start(self) -> BinaryIO:
        if self._file is None:
            name = f"{INPROGRESS}{os.getpid()}-{secrets.token_hex(6)}"
            self._tmp = self.directory / f"{name}{_EXTENSIONS[self.format]}.tmp"
            self._file = create_file(self._tmp)
            if self.format == "parquet":
                from .arrow import arrow_schema

                self._schema = arrow_schema(self.columns)
                self._parquet = parquet_writer(
                    self._file, self._schema, self.compression, statistics=self.statistics
                )
        return self._file

    def write(self, records: Sequence[RawRecord]) -> None:
        if not records:
            return
        fh = self._start()
        if self.format == "jsonl":
            fh.write(jsonl_bytes(records))
        else:
            self._buffer.extend(records)
            if len(self._buffer) >= self.row_group_rows:
                self._flush_rows()
        self.pending += len(records)

    def _flush_rows(self) -> None:
        """Write the buffered records as one row group."""
        if self._buffer:
            from .arrow import record_batch

            batch = record_batch(self._buffer, self._schema, self.mismatches)
            self._parquet.write_batch(batch, row_group_size=len(self._buffer))
            self._buffer = []

    def commit(self, key: str) -> PartInfo:
        """Complete the part in progress (an empty one if nothing was written) as window
        ``key``'s: fsynced, renamed over any earlier part of that window."""
        final = self.directory / part_name(key, self.format)
        fh = self._start()
        if self._parquet is not None:
            self._flush_rows()
            self._parquet.close()
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        assert self._tmp is not None
        os.replace(self._tmp, final)
        fsync_dir(self.directory)
        info = PartInfo(key, final.name, self.pending)
        self._reset()
        return info

    def _reset(self) -> None:
        self._tmp = self._file = self._parquet = None
        self._buffer = []
        self.pending = 0

    def abort(self) -> None:
        """Drop the part in progress (idempotent)."""
        if self._file is not None:
            with contextlib.suppress(Exception):
                if self._parquet is not None:
                    self._parquet.close()
            self._file.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
        self._reset()


def write_part(
    directory: Path,
    key: str,
    records: Sequence[RawRecord],
    format: PartFormat,
    fields: Sequence[str] | None,
    *,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    mismatches: MismatchCounter | None = None,
) -> PartInfo:
    """Write window ``key``'s records as one part of ``directory`` (replacing any earlier
    part of that window) and return what was written. Safe to call from several processes
    at once on one directory (each writes its own temporary file), as distributed workers
    do; a coordinator then writes the manifest with ``write_manifest``."""
    from .base import columns_for

    writer = PartWriter(
        directory,
        format,
        columns_for(fields),
        row_group_rows=row_group_rows,
        mismatches=mismatches,
    )
    try:
        writer.write(records)
        return writer.commit(key)
    except BaseException:
        writer.abort()
        raise


def count_records(path: Path) -> int:
    """How many records a part file holds (Parquet: its footer; JSON Lines: its lines)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def scan_parts(directory: Path) -> list[PartInfo]:
    """The committed parts found in ``directory``, in window order, counted from the files
    (for a coordinator that checks what workers wrote)."""
    found = []
    for entry in directory.iterdir():
        name = entry.name
        for ext in _EXTENSIONS.values():
            if name.startswith("part-") and name.endswith(ext) and entry.is_file():
                key = name[len("part-") : -len(ext)]
                found.append(PartInfo(key, name, count_records(entry)))
    return sorted(found, key=lambda p: key_order(p.window))
