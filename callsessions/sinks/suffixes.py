"""The output formats by file suffix: no imports, so that ``callsessions pull --help`` can
name them without loading the sinks."""

from __future__ import annotations

__all__ = ["FORMATS"]

#: file suffix -> output format (``open_sink`` picks the sink by it; the longest suffix wins)
FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl.gz",
    ".ndjson.gz": "jsonl.gz",
    ".csv": "csv",
    ".csv.gz": "csv.gz",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
    ".parquet": "parquet",
}
