"""One Parquet file (``.parquet``), typed, written resumably through a spool of parts.

Each committed window is spooled as a Parquet part in ``<out>.partial/`` (see ``parts``);
the position a commit returns is the list of committed parts. A resume keeps exactly those
(checking each one's row count) and deletes anything else in the spool: parts of windows
committed after the checkpoint was saved, files in progress. ``finalize`` joins the parts,
in commit order, into a temporary file beside the output (row groups of
``row_group_rows``), fsyncs it and renames it to ``<out>``; then the spool is removed. So a
kill at any point leaves either no ``<out>`` (or the one from before) or the complete one,
never a ``.parquet`` that opens as complete but is not.

The schema and the rules for values of the wrong type are in ``arrow``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import (
    MismatchCounter,
    atomic_file,
    columns_for,
    remove_temporaries,
)
from .parts import (
    DEFAULT_ROW_GROUP_ROWS,
    INPROGRESS,
    PartInfo,
    PartWriter,
    WritesParts,
    count_records,
    parquet_writer,
)

__all__ = ["ParquetSink", "parts_of_position", "require_pyarrow"]

#: The spooled parts are read once more and written again by ``finalize``: lz4 is cheaper
#: to write and read than zstd (only the final file needs zstd's size), and the parts have
#: no statistics (nothing filters them). Uncompressed parts would save about 0.5 us per
#: record but take 1.6 times the disk on the simulator's records, more on real ones (whose
#: transcripts do not repeat).
SPOOL_COMPRESSION = "lz4"


def require_pyarrow(what: str = "Parquet output", hint: str = "") -> None:
    """Raise ``ValueError`` (one line, naming the extra) unless pyarrow can be imported."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ValueError(
            f"{what} needs pyarrow, which is not installed: pip install "
            f"'callsessions[parquet]'{hint}"
        ) from None


def parts_of_position(position: Any) -> list[PartInfo]:
    """The parts a position (``{"parts": [...]}`` from ``commit``) lists; ``0`` or an empty
    value mean none (a pull that had not committed a window yet)."""
    if position is None or position == 0 or position == {}:
        return []
    if not isinstance(position, dict) or not isinstance(position.get("parts"), list):
        raise ValueError(f"not a position of a part-based output: {position!r}")
    return [PartInfo.from_json(p) for p in position["parts"]]


def position_of(parts: Sequence[PartInfo]) -> dict[str, Any]:
    return {"parts": [p.to_json() for p in parts]}


def keep_committed(directory: Path, parts: Sequence[PartInfo]) -> None:
    """For a resume: check that every committed part is there, whole, and delete every
    other part file and temporary file of ``directory``. Raises FileNotFoundError or
    ValueError (nothing deleted) when a committed part is missing or changed."""
    for part in parts:
        path = directory / part.file
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing, so the pull cannot be resumed")
        held = count_records(path)
        if held != part.records:
            raise ValueError(
                f"{path} holds {held} records, not the {part.records} the checkpoint "
                "recorded: it was changed since"
            )
    keep = {p.file for p in parts}
    for entry in directory.iterdir():
        ours = entry.name.startswith(("part-", INPROGRESS))
        if ours and entry.name not in keep and entry.is_file():
            entry.unlink()


class ParquetSink(WritesParts):
    """A typed Parquet file (zstd; ``id`` first, then the fields in order)."""

    def __init__(
        self,
        path: Path,
        fields: Sequence[str] | None,
        *,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        require_pyarrow()
        self.path = path
        self.partial_path = path.with_name(path.name + ".partial")  # a directory of parts
        self.columns = columns_for(fields)
        self.row_group_rows = row_group_rows
        self.written = 0
        self.mismatches = MismatchCounter()
        self._parts: list[PartInfo] = []
        self._writer: PartWriter | None = None

    @property
    def type_mismatches(self) -> dict[str, int]:
        """Values written as null because their type was wrong, per field."""
        return dict(self.mismatches.counts)

    def check(self) -> None:
        """Nothing to check: the output is only ever replaced whole."""

    def open(self, resume_from: Any | None = None) -> None:
        self.close()
        spool = self.partial_path
        remove_temporaries(self.path)
        if resume_from is None:
            if spool.is_dir():
                shutil.rmtree(spool)
            else:
                spool.unlink(missing_ok=True)
            spool.mkdir()
            self._parts = []
        else:
            parts = parts_of_position(resume_from)
            if not spool.is_dir():
                if parts:
                    raise FileNotFoundError(f"{spool} is missing, so the pull cannot be resumed")
                spool.mkdir()
            keep_committed(spool, parts)
            self._parts = parts
        self._writer = PartWriter(
            spool,
            "parquet",
            self.columns,
            row_group_rows=self.row_group_rows,
            mismatches=self.mismatches,
            compression=SPOOL_COMPRESSION,
            statistics=False,
        )
        self.written = 0

    def commit(self, window: str) -> dict[str, Any]:
        """Spool the window's records as a part; the position lists the committed parts."""
        info = self._open_writer().commit(window)
        self._parts = [p for p in self._parts if p.window != window]
        self._parts.append(info)
        return position_of(self._parts)

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()

    def finalize(self) -> Path:
        writer = self._open_writer()
        if writer.pending:
            self.commit("tail")
        self.close()
        sources = [self.partial_path / p.file for p in self._parts]
        join_parts(sources, self.path, self.columns, self.row_group_rows)
        shutil.rmtree(self.partial_path, ignore_errors=True)
        return self.path


def join_parts(sources: Sequence[Path], out: Path, columns: Sequence[str], rows: int) -> None:
    """Write the rows of the Parquet ``sources``, in order, into ``out`` atomically, in row
    groups of ``rows`` (the last one may be smaller)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .arrow import arrow_schema

    schema = arrow_schema(columns)
    with atomic_file(out) as fh:
        writer = parquet_writer(fh, schema)
        try:
            pending: list[Any] = []
            held = 0
            for source in sources:
                for batch in pq.ParquetFile(source).iter_batches(batch_size=rows):
                    pending.append(batch)
                    held += batch.num_rows
                    while held >= rows:
                        table = pa.Table.from_batches(pending, schema=schema)
                        writer.write_table(table.slice(0, rows), row_group_size=rows)
                        rest = table.slice(rows)
                        pending, held = rest.to_batches(), rest.num_rows
            if held:
                table = pa.Table.from_batches(pending, schema=schema)
                writer.write_table(table, row_group_size=rows)
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            raise
        writer.close()  # writes the footer: only now is the file a Parquet file
