"""Where a bulk pull writes: files, a database or a dataset directory, behind one interface.

A sink receives the raw records of a pull (the API's own dicts, camelCase names) in batches
and makes each finished window durable when told::

    sink = open_sink("calls.parquet", fields)   # by the path: see FORMATS
    sink.open()                                 # or sink.open(resume_from=position)
    sink.write(page.items)
    position = sink.commit(window_key(window))  # durable: keep it in the checkpoint
    sink.finalize()                             # complete: move into place

Sinks are synchronous; an async caller runs them off the event loop.

======================  ============================================  ====================
output                  types                                         resumable by
======================  ============================================  ====================
``.jsonl``/``.ndjson``  as the API sent them                          byte offset
``.jsonl.gz``           as the API sent them, gzip                    a gzip member a
                                                                      window
``.csv``, ``.csv.gz``   as sent; ``price`` exact decimal text         byte offset / member
``.sqlite``/``.db``     typed columns (``sqlite``), upserted          writing windows
                                                                      again
``.parquet``            typed Arrow schema (``arrow``), zstd          spooled parts
directory (``calls/``)  one part per window, ``.parquet`` or          committed parts
                        ``.jsonl``, and ``_manifest.json``
``-``                   JSON Lines on standard output                 not resumable
======================  ============================================  ====================

Parquet needs the ``parquet`` extra (``pip install 'callsessions[parquet]'``); pyarrow is
imported only when a Parquet output is opened, and ``open_sink`` refuses ``.parquet``
without it before anything is written.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import (
        FIELD_KINDS,
        TABLE,
        MismatchCounter,
        OutputClosedError,
        OutputMismatchError,
        Sink,
        UnrepresentableValueError,
        atomic_file,
        atomic_write,
        columns_for,
        decimal_text,
        parse_window_key,
        window_key,
    )
    from .dataset import MANIFEST, DatasetSink, Manifest, read_manifest, write_manifest
    from .formats import FORMATS, PART_FORMATS, format_for, open_sink, read_ids
    from .parquet import ParquetSink, require_pyarrow
    from .parts import PartFormat, PartInfo, count_records, scan_parts, write_part
    from .sqlite import SqliteSink
    from .text import CsvSink, JsonlSink, StdoutSink

# Lazy (PEP 562): a JSONL pull does not pay for the SQLite, Parquet and dataset modules.
_WHERE: dict[str, str] = {
    "CsvSink": "text",
    "DatasetSink": "dataset",
    "FIELD_KINDS": "base",
    "FORMATS": "formats",
    "JsonlSink": "text",
    "MANIFEST": "dataset",
    "Manifest": "dataset",
    "MismatchCounter": "base",
    "OutputClosedError": "base",
    "OutputMismatchError": "base",
    "PART_FORMATS": "formats",
    "ParquetSink": "parquet",
    "PartFormat": "parts",
    "PartInfo": "parts",
    "Sink": "base",
    "SqliteSink": "sqlite",
    "StdoutSink": "text",
    "TABLE": "base",
    "UnrepresentableValueError": "base",
    "atomic_file": "base",
    "atomic_write": "base",
    "columns_for": "base",
    "count_records": "parts",
    "decimal_text": "base",
    "format_for": "formats",
    "open_sink": "formats",
    "parse_window_key": "base",
    "read_ids": "formats",
    "read_manifest": "dataset",
    "require_pyarrow": "parquet",
    "scan_parts": "parts",
    "window_key": "base",
    "write_manifest": "dataset",
    "write_part": "parts",
}

__all__ = [
    "FIELD_KINDS",
    "FORMATS",
    "MANIFEST",
    "PART_FORMATS",
    "TABLE",
    "CsvSink",
    "DatasetSink",
    "JsonlSink",
    "Manifest",
    "MismatchCounter",
    "OutputClosedError",
    "OutputMismatchError",
    "ParquetSink",
    "PartFormat",
    "PartInfo",
    "Sink",
    "SqliteSink",
    "StdoutSink",
    "UnrepresentableValueError",
    "atomic_file",
    "atomic_write",
    "columns_for",
    "count_records",
    "decimal_text",
    "format_for",
    "open_sink",
    "parse_window_key",
    "read_ids",
    "read_manifest",
    "require_pyarrow",
    "scan_parts",
    "window_key",
    "write_manifest",
    "write_part",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'callsessions.sinks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
