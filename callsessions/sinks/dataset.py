"""A dataset directory: one part file per window and a ``_manifest.json``.

::

    calls/
      part-20260101T000000Z_20260101T060000Z.parquet     one window each (or .jsonl)
      part-20260101T060000Z_20260101T120000Z.parquet
      _manifest.json                                      written last: the pull is complete

A window's part is written to a temporary name and renamed into place when the window is
committed (a retried window replaces its part, never appends). ``_manifest.json`` is
written atomically by ``finalize``: it lists the fields, the part format, every part
(window key, file, records) and free-form metadata from the caller (a plan fingerprint,
say). **A directory without a manifest is not complete.** Readers take every part at once,
e.g. DuckDB ``read_parquet('calls/*.parquet')`` or pyarrow ``dataset('calls/')``.

Distributed workers write parts on their own with ``write_part`` and a coordinator writes
the manifest with ``write_manifest`` (``scan_parts`` counts what is there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from attrs import field, frozen

from .base import (
    MismatchCounter,
    OutputMismatchError,
    atomic_write,
    columns_for,
    key_order,
)
from .parquet import keep_committed, parts_of_position, position_of, require_pyarrow
from .parts import (
    DEFAULT_ROW_GROUP_ROWS,
    INPROGRESS,
    PART_FORMATS,
    PartFormat,
    PartInfo,
    PartWriter,
    WritesParts,
)

__all__ = ["MANIFEST", "DatasetSink", "Manifest", "read_manifest", "write_manifest"]

MANIFEST = "_manifest.json"
MANIFEST_VERSION = 1


@frozen
class Manifest:
    """What ``_manifest.json`` says: the columns, the part format, the parts in window
    order, and the caller's metadata."""

    fields: tuple[str, ...]
    format: PartFormat
    parts: tuple[PartInfo, ...]
    metadata: dict[str, Any] = field(factory=dict)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "format": self.format,
            "fields": list(self.fields),
            "records": self.records,
            "parts": [p.to_json() for p in self.parts],
            "metadata": self.metadata,
        }


def write_manifest(
    directory: Path,
    parts: Sequence[PartInfo],
    *,
    fields: Sequence[str] | None,
    format: PartFormat,
    metadata: Mapping[str, Any] | None = None,
) -> Manifest:
    """Write ``directory/_manifest.json`` atomically (parts sorted by window) and return it.
    ``metadata`` must be JSON-serialisable."""
    if format not in PART_FORMATS:
        raise ValueError(f"a part is jsonl or parquet, not {format!r}")
    manifest = Manifest(
        fields=tuple(columns_for(fields)),
        format=format,
        parts=tuple(sorted(parts, key=lambda p: key_order(p.window))),
        metadata=dict(metadata or {}),
    )
    data = orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2) + b"\n"
    atomic_write(directory / MANIFEST, data)
    return manifest


def read_manifest(directory: Path) -> Manifest:
    """The manifest of a complete dataset directory. FileNotFoundError when there is none
    (the directory is not complete); ValueError when it is not a manifest."""
    raw = orjson.loads((directory / MANIFEST).read_bytes())
    try:
        if raw["version"] != MANIFEST_VERSION or raw["format"] not in PART_FORMATS:
            raise ValueError
        fields = tuple(str(f) for f in raw["fields"])
        parts = tuple(PartInfo.from_json(p) for p in raw["parts"])
        metadata = raw.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError
    except (TypeError, KeyError, ValueError):
        raise ValueError(f"{directory / MANIFEST} is not a callsessions manifest") from None
    return Manifest(fields=fields, format=raw["format"], parts=parts, metadata=metadata)


def _ours(name: str) -> bool:
    return name == MANIFEST or name.startswith(("part-", INPROGRESS, f".{MANIFEST}."))


class DatasetSink(WritesParts):
    """A dataset directory of ``jsonl`` or ``parquet`` parts, one per window."""

    def __init__(
        self,
        path: Path,
        fields: Sequence[str] | None,
        *,
        format: PartFormat = "parquet",
        metadata: Mapping[str, Any] | None = None,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        if format not in PART_FORMATS:
            raise ValueError(f"a dataset directory holds jsonl or parquet parts, not {format!r}")
        if format == "parquet":
            require_pyarrow("a dataset directory of Parquet parts", " (or use jsonl parts)")
        self.path = path
        self.partial_path = path  # parts are renamed into place; the manifest comes last
        self.format: PartFormat = format
        self.fields = fields
        self.columns = columns_for(fields)
        #: written into the manifest by ``finalize`` (JSON-serialisable); may be changed
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.row_group_rows = row_group_rows
        self.written = 0
        self.mismatches = MismatchCounter()
        self._parts: dict[str, PartInfo] = {}
        self._writer: PartWriter | None = None

    @property
    def type_mismatches(self) -> dict[str, int]:
        """Values written as null because their type was wrong, per field (Parquet parts)."""
        return dict(self.mismatches.counts)

    def check(self) -> None:
        """Refuse a directory that holds files other than a dataset's (hidden files aside):
        a pull replaces its parts, so it must not be pointed at a folder of other things."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputMismatchError(f"{self.path} is not a directory")
        if not self.path.is_dir():
            return
        foreign = sorted(
            e.name for e in self.path.iterdir() if not e.name.startswith(".") and not _ours(e.name)
        )
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise OutputMismatchError(
                f"{self.path} holds files that are not parts of a call-session dataset "
                f"({foreign[0]!r}{more}): use a new or empty directory"
            )

    def open(self, resume_from: Any | None = None) -> None:
        self.close()
        self.check()
        parts = [] if resume_from is None else parts_of_position(resume_from)
        if parts and not self.path.is_dir():
            raise FileNotFoundError(f"{self.path} is missing, so the pull cannot be resumed")
        self.path.mkdir(exist_ok=True)
        if resume_from is not None:
            keep_committed(self.path, parts)  # raises before anything is deleted
        (self.path / MANIFEST).unlink(missing_ok=True)  # from now on, not complete
        if resume_from is None:
            keep_committed(self.path, [])  # an earlier pull's parts go
        for entry in self.path.glob(f".{MANIFEST}.*.tmp"):
            entry.unlink(missing_ok=True)
        self._parts = {p.window: p for p in parts}
        self._writer = PartWriter(
            self.path,
            self.format,
            self.columns,
            row_group_rows=self.row_group_rows,
            mismatches=self.mismatches,
        )
        self.written = 0

    def commit(self, window: str) -> dict[str, Any]:
        """Rename the window's part into place; the position lists the committed parts."""
        info = self._open_writer().commit(window)
        self._parts.pop(window, None)
        self._parts[window] = info
        return position_of(list(self._parts.values()))

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()

    def finalize(self) -> Path:
        """Commit what is pending (as window ``tail``) and write the manifest."""
        writer = self._open_writer()
        if writer.pending:
            self.commit("tail")
        self.close()
        write_manifest(
            self.path,
            list(self._parts.values()),
            fields=self.fields,
            format=self.format,
            metadata=self.metadata,
        )
        return self.path
