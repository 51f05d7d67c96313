"""CPU per record of reading a page for copying (issue 15), against ``orjson.loads``.

Run from the repository root::

    .venv/bin/python -m benchmarks.rawpage                # about 1 minute on 2 cores
    .venv/bin/python -m benchmarks.rawpage --repeats 3    # shorter

Pages: ``--pages`` (10) bodies of 1000 full simulator records (all 29 fields), encoded as
the simulator serves them (``orjson.dumps({"count", "items"})`` of ``Dataset.record``).
Every candidate gives what a JSONL raw pull needs per record: the ``id``, the date column's
string and the record's JSON bytes (one line). Each repeat measures every candidate back to
back (``time.process_time``, the collector on, as in a pull) and the ratio to
``orjson.loads`` of the same pages is taken per repeat; the table shows medians and the
spread ``(max - min) / median`` of the per-record times. A second table does the same on
the pages pretty-printed (``orjson.OPT_INDENT_2``: newlines inside every item), where
items are re-formatted to one line. ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import gc
import operator
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import orjson

from callsessions.protocol.rawpage import _check_utf8, parse_raw_page
from callsessions.sim import Dataset

PAGE = 1000
DATE = "createdAt"
TARGET = 0.7

Candidate = Callable[[list[bytes]], object]


class _Keys(msgspec.Struct, gc=False):
    id: str | None = None
    createdAt: str | None = None  # the wire name


class _KeysPage(msgspec.Struct, gc=False):
    items: list[_Keys]
    count: int | None = None


class _RawPage(msgspec.Struct, gc=False):
    items: list[msgspec.Raw]
    count: int | None = None


_KEYS_PAGE = msgspec.json.Decoder(_KeysPage)
_KEYS = msgspec.json.Decoder(_Keys)
_RAW_PAGE = msgspec.json.Decoder(_RawPage)
_GET_ID = operator.attrgetter("id")
_GET_DATE = operator.attrgetter(DATE)


def orjson_loads(bodies: list[bytes]) -> object:
    """The baseline: the full parse, nothing else."""
    for body in bodies:
        orjson.loads(body)
    return None


def orjson_loads_dumps(bodies: list[bytes]) -> object:
    """Today's raw JSONL path: parse to dicts, read id and date, encode each dict again."""
    for body in bodies:
        items = orjson.loads(body)["items"]
        [r.get("id") for r in items]
        [r.get(DATE) for r in items]
        [orjson.dumps(r) for r in items]
    return None


def msgspec_raw_then_struct_each(bodies: list[bytes]) -> object:
    """``items: list[Raw]``, then one Struct decode (id, date) per item."""
    decode = _KEYS.decode
    for body in bodies:
        raws = _RAW_PAGE.decode(body).items
        keys = [decode(raw) for raw in raws]
        [k.id for k in keys]
        [k.createdAt for k in keys]
        list(map(bytes, raws))
    return None


def msgspec_two_pass_views(bodies: list[bytes]) -> object:
    """Two passes over the body (Struct items, then Raw items), items left as Raw views."""
    for body in bodies:
        keys = _KEYS_PAGE.decode(body).items
        list(map(_GET_ID, keys))
        list(map(_GET_DATE, keys))
        _RAW_PAGE.decode(body)
    return None


def msgspec_two_pass_bytes(bodies: list[bytes]) -> object:
    """The same two passes, items copied to ``bytes`` (what ``parse_raw_page`` does)."""
    for body in bodies:
        keys = _KEYS_PAGE.decode(body).items
        list(map(_GET_ID, keys))
        list(map(_GET_DATE, keys))
        list(map(bytes, _RAW_PAGE.decode(body).items))
    return None


def keys_pass_only(bodies: list[bytes]) -> object:
    """Component: the Struct pass alone (id and date, no bytes)."""
    for body in bodies:
        _KEYS_PAGE.decode(body)
    return None


def raw_pass_only(bodies: list[bytes]) -> object:
    """Component: the Raw pass alone (item boundaries, no copy)."""
    for body in bodies:
        _RAW_PAGE.decode(body)
    return None


def raw_page(bodies: list[bytes]) -> object:
    """The chosen implementation, with its checks: ``parse_raw_page``."""
    for body in bodies:
        parse_raw_page(body, date_field=DATE)
    return None


def raw_page_check_utf8(bodies: list[bytes]) -> object:
    """``parse_raw_page(check_utf8=True)``: also proves the whole body is UTF-8."""
    for body in bodies:
        parse_raw_page(body, date_field=DATE, check_utf8=True)
    return None


def utf8_decode_whole(bodies: list[bytes]) -> object:
    """Component: the UTF-8 check as one ``bytes.decode`` of the whole body (the old way)."""
    for body in bodies:
        body.decode("utf-8")
    return None


def utf8_check_chunked(bodies: list[bytes]) -> object:
    """Component: the UTF-8 check ``parse_raw_page(check_utf8=True)`` makes (pieces)."""
    for body in bodies:
        _check_utf8(body, "GET", "/p")
    return None


CANDIDATES: dict[str, Candidate] = {
    "orjson_loads": orjson_loads,
    "orjson_loads_dumps": orjson_loads_dumps,
    "msgspec_raw_then_struct_each": msgspec_raw_then_struct_each,
    "msgspec_two_pass_views": msgspec_two_pass_views,
    "msgspec_two_pass_bytes": msgspec_two_pass_bytes,
    "keys_pass_only": keys_pass_only,
    "raw_pass_only": raw_pass_only,
    "parse_raw_page": raw_page,
    "parse_raw_page_check_utf8": raw_page_check_utf8,
    "utf8_decode_whole": utf8_decode_whole,
    "utf8_check_chunked": utf8_check_chunked,
}
PRETTY_CANDIDATES = ("orjson_loads", "orjson_loads_dumps", "parse_raw_page")


def make_bodies(pages: int, seed: int = 7) -> list[bytes]:
    """``pages`` bodies of 1000 full records, encoded as the simulator serves them."""
    dataset = Dataset(pages * PAGE, seed=seed)
    record = dataset.record
    return [
        orjson.dumps({"count": len(dataset), "items": [record(r) for r in range(p, p + PAGE)]})
        for p in range(0, pages * PAGE, PAGE)
    ]


def pretty(bodies: list[bytes]) -> list[bytes]:
    return [orjson.dumps(orjson.loads(b), option=orjson.OPT_INDENT_2) for b in bodies]


def timed(fn: Candidate, bodies: list[bytes], loops: int) -> float:
    """CPU seconds of ``loops`` runs over ``bodies``."""
    gc.collect()
    c0 = time.process_time()
    for _ in range(loops):
        fn(bodies)
    return time.process_time() - c0


def measure(
    bodies: list[bytes], names: Sequence[str], repeats: int, loops: int
) -> dict[str, dict[str, float]]:
    """Per-record CPU and its ratio to ``orjson_loads`` for each candidate, round-robin."""
    n = sum(len(orjson.loads(b)["items"]) for b in bodies) * loops
    for name in names:  # warm-up: allocator arenas, decoder caches
        CANDIDATES[name](bodies)
    per: dict[str, list[float]] = {k: [] for k in names}
    ratios: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(repeats):
        t = {name: timed(CANDIDATES[name], bodies, loops) / n for name in names}
        for name, v in t.items():
            per[name].append(v)
            ratios[name].append(v / t["orjson_loads"])
    out = {}
    for name in names:
        med = statistics.median(per[name])
        out[name] = {
            "us_per_record": med * 1e6,
            "spread": (max(per[name]) - min(per[name])) / med if med else 0.0,
            "ratio_to_loads": statistics.median(ratios[name]),
        }
    return out


def table(rows: dict[str, dict[str, float]]) -> str:
    head = ["candidate", "us/record", "spread", "vs orjson.loads"]
    cells = [head] + [
        [
            name,
            f"{r['us_per_record']:.2f}",
            f"{r['spread'] * 100:.0f}%",
            f"{r['ratio_to_loads']:.2f}x",
        ]
        for name, r in rows.items()
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.rawpage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pages", type=int, default=10, help="1000-record pages (%(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="round-robin repeats (%(default)s)")
    parser.add_argument("--loops", type=int, default=3, help="runs over the pages per timing")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    ns = parser.parse_args(argv)
    bodies = make_bodies(ns.pages)
    size = sum(map(len, bodies)) / (ns.pages * PAGE)
    compact = measure(bodies, list(CANDIDATES), ns.repeats, ns.loops)
    pretty_bodies = pretty(bodies)
    pretty_size = sum(map(len, pretty_bodies)) / (ns.pages * PAGE)
    indented = measure(pretty_bodies, PRETTY_CANDIDATES, ns.repeats, ns.loops)
    print(
        f"Raw page read, {ns.pages} pages x {PAGE} full simulator records, {size:.0f} bytes/"
        f"record; {ns.repeats} repeats x {ns.loops} loops, ratios per repeat (median)"
    )
    print(table(compact))
    ok = compact["parse_raw_page"]["ratio_to_loads"] <= TARGET
    print(f"   parse_raw_page <= {TARGET}x orjson.loads: {'MET' if ok else 'MISSED'}")
    print(f"\nPretty-printed pages (OPT_INDENT_2, {pretty_size:.0f} bytes/record)")
    print(table(indented))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if ns.json:
        doc: dict[str, Any] = {
            "command": " ".join(["python -m benchmarks.rawpage", *(argv or sys.argv[1:])]),
            "bytes_per_record": size,
            "compact": compact,
            "pretty": indented,
        }
        Path(ns.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
