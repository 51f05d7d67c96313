"""Which sink an output path means, and reading the ids back (the demo's check)."""

from __future__ import annotations

import csv
import gzip
import io
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from .base import TABLE, Sink
from .parts import PART_FORMATS
from .suffixes import FORMATS

__all__ = ["FORMATS", "PART_FORMATS", "format_for", "open_sink", "read_ids"]

# Output formats by file name ending: ``FORMATS`` (in ``suffixes``). Besides these: ``-`` is
# ``stdout`` (JSON Lines on standard output) and an existing directory, or a path ending in
# ``/``, is ``dataset``.
_BY_LENGTH = sorted(FORMATS, key=len, reverse=True)


def _is_directory(path: str | os.PathLike[str]) -> bool:
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def format_for(path: str | os.PathLike[str]) -> str | None:
    """The format an output path names: one of ``FORMATS``' values, ``stdout`` for ``-``,
    ``dataset`` for an existing directory or a path ending in ``/``; None if unknown.
    (Pass the path as the user typed it: ``Path`` drops a trailing ``/``.)"""
    text = os.fspath(path)
    if text == "-":
        return "stdout"
    if _is_directory(text):
        return "dataset"
    name = Path(text).name.lower()
    for ending in _BY_LENGTH:
        if name.endswith(ending) and len(name) > len(ending):
            return FORMATS[ending]
    return None


def _unknown(path: str | os.PathLike[str]) -> ValueError:
    known = ", ".join(sorted(FORMATS))
    return ValueError(
        f"cannot tell the output format of {Path(path).name!r}; use one of: {known}, "
        "- (standard output) or a directory"
    )


def open_sink(
    path: str | os.PathLike[str],
    fields: Sequence[str] | None,
    *,
    format: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Sink:
    """The sink for an output path, writing ``fields`` (None: every field).

    The format follows the path (see ``format_for``). For a dataset directory ``format``
    is the parts' format, ``parquet`` (the default) or ``jsonl``, and ``metadata`` goes into
    its manifest; for a file, ``format`` (a value of ``FORMATS``) overrides the extension.
    Raises ``ValueError`` with a one-line message (an unknown format, Parquet without
    pyarrow) before anything is written.
    """
    kind = format_for(path)
    if kind == "dataset":
        from .dataset import DatasetSink

        part = format or "parquet"
        for allowed in PART_FORMATS:
            if part == allowed:
                return DatasetSink(Path(path), fields, format=allowed, metadata=metadata)
        raise ValueError(f"a dataset directory holds parquet or jsonl parts, not {part!r}")
    if format is not None and kind != "stdout":
        if format not in FORMATS.values():
            raise ValueError(
                f"unknown output format {format!r}; use one of: "
                f"{', '.join(sorted(set(FORMATS.values())))}"
            )
        kind = format
    return _file_sink(kind, path, fields)


def _file_sink(
    kind: str | None, path: str | os.PathLike[str], fields: Sequence[str] | None
) -> Sink:
    from .text import CsvSink, JsonlSink, StdoutSink

    out = Path(path)
    if kind == "stdout":
        return StdoutSink()
    if kind in ("jsonl", "jsonl.gz"):
        return JsonlSink(out, gzip=kind == "jsonl.gz")
    if kind in ("csv", "csv.gz"):
        return CsvSink(out, fields, gzip=kind == "csv.gz")
    if kind == "sqlite":
        from .sqlite import SqliteSink

        return SqliteSink(out, fields)
    if kind == "parquet":
        from .parquet import ParquetSink

        return ParquetSink(out, fields)  # raises ValueError without pyarrow
    raise _unknown(path)


# -- reading back -----------------------------------------------------------------------


def _lines(path: Path, zipped: bool) -> Iterator[bytes]:
    with gzip.open(path, "rb") if zipped else open(path, "rb") as fh:
        yield from fh


def _text(path: Path, zipped: bool) -> IO[str]:
    if zipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, newline="", encoding="utf-8")


def read_ids(path: str | os.PathLike[str]) -> list[str]:
    """The ``id`` of every record in an output written by a sink, in file order (a dataset
    directory: its manifest's parts, in window order)."""
    kind = format_for(path)
    out = Path(path)
    if kind in ("jsonl", "jsonl.gz"):
        lines = _lines(out, kind == "jsonl.gz")
        return [orjson.loads(line)["id"] for line in lines if line.strip()]
    if kind in ("csv", "csv.gz"):
        with _text(out, kind == "csv.gz") as fh:
            return [row["id"] for row in csv.DictReader(fh)]
    if kind == "sqlite":
        db = sqlite3.connect(out.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return [row[0] for row in db.execute(f"SELECT id FROM {TABLE}")]
        finally:
            db.close()
    if kind == "parquet":
        import pyarrow.parquet as pq

        return [str(v) for v in pq.read_table(out, columns=["id"]).column(0).to_pylist()]
    if kind == "dataset":
        from .dataset import read_manifest

        ids: list[str] = []
        for part in read_manifest(out).parts:
            ids += read_ids(out / part.file)
        return ids
    raise ValueError(f"cannot tell the format of {out.name!r}")
