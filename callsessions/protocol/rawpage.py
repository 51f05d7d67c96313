"""A list page read for copying, without building a Python dict per record.

A raw pull that writes records to a file (JSONL) needs only three things from each record:
its ``id`` (de-duplication), its date column (the range check) and its own JSON bytes (to
write them unchanged). :func:`parse_raw_page` gets them from a page body with ``msgspec``
in two C-level passes over the body, and builds no dict, list or value of any other field:

1. ``{"count", "items": [Item, ...]}`` where ``Item`` is a ``msgspec.Struct`` declaring
   only ``id`` and the date column (unknown keys are skipped, not decoded);
2. ``{"items": [Raw, ...]}``: each item as a ``msgspec.Raw`` view of the body, copied to
   ``bytes`` so that a record outlives its page's buffer and ``orjson.loads`` accepts it.

Measured in ``benchmarks/rawpage.py`` against ``orjson.loads`` of the same pages and the
alternatives (``orjson.loads`` + ``orjson.dumps`` per item; ``list[Raw]`` then one Struct
decode per item): the two passes are the cheapest way found to have both the fields and
the bytes (msgspec cannot give a Struct's own raw bytes in one pass). Reading ``id`` and
the date out of each raw item with ``bytes`` searches instead of the first pass was tried
too: to stay exact (keys spelled with ``\\u`` escapes, duplicate keys, the same names in
nested objects or inside strings) it needs several whole-body scans, and ``bytes.find`` /
``bytes.count`` on JSON text (``"`` every few bytes) run at 0.5-1 ns a byte, which is what
msgspec's whole pass costs: about 4 us a record against the pass's 1.

Pure: no aiohttp, no asyncio. Bodies the fast decoders refuse (not JSON, the wrong shape,
an item that is not an object, an ``id`` or a date that is not a string, ...) go to a slow
path that parses with ``orjson`` as :func:`~callsessions.protocol.wire.parse_page` does, so a
body is accepted or refused as the full parse would, with the same messages.

Known differences from the full parse, by design:

* Values the fast path skips are not checked for UTF-8 (msgspec only checks the strings it
  decodes): pass ``check_utf8=True`` to check the whole body (free for an ASCII body,
  otherwise about 0.15x ``orjson.loads``: see ``_check_utf8``).
  Numbers out of the double range (``1e400``), which orjson refuses, pass through as text.
* An item whose bytes hold a newline or a carriage return (a pretty-printed body) has its
  white space between tokens removed (``msgspec.json.format(indent=-1)``; strings and
  escapes are untouched), so that every item is one JSONL line. All other items are the
  body's exact bytes.
"""

from __future__ import annotations

import functools
import operator
import re
import types
from typing import Any, NamedTuple

import msgspec
import orjson
from attrs import frozen

from callsessions.errors import DecodeError

__all__ = ["RawPage", "parse_raw_page"]


@frozen
class RawPage:
    """One list page, read for copying. The three lists run in the order of the body's items.

    ``count`` is the body's total (None for a bare JSON array or when absent). ``ids[i]`` is
    item i's ``id``: the string, or None when the key is absent or null (a record that
    cannot be de-duplicated; the caller decides what to do); an id that is not a string (a
    number, say) comes as its compact JSON text (``"5"``), so it still tells records apart.
    ``dates[i]`` is the date column's string as sent (not parsed), or None when absent,
    null or not a string. ``raw_items[i]`` is the item's JSON, one line, ready for
    ``b"\\n".join(raw_items)``.
    """

    count: int | None
    ids: list[str | None]
    dates: list[str | None]
    raw_items: list[bytes]

    def __len__(self) -> int:
        return len(self.raw_items)


class _Decoders(NamedTuple):
    """The fast decoders for one date column's wire name."""

    page: msgspec.json.Decoder[Any]
    array: msgspec.json.Decoder[Any]


class _RawPage(msgspec.Struct, gc=False):
    items: list[msgspec.Raw]


_RAW_PAGE = msgspec.json.Decoder(_RawPage)
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_GET_ID = operator.attrgetter("id")
_GET_DATE = operator.attrgetter("date")
#: bytes of a body decoded at a time by the UTF-8 check (see ``_check_utf8``)
_UTF8_CHUNK = 32_768


@functools.lru_cache(maxsize=16)
def _decoders(date_field: str) -> _Decoders:
    """Decoders reading only ``id`` and ``date_field`` of each item, built once per name."""
    if date_field == "id":
        raise ValueError("date_field must name a date column, not 'id'")
    item = msgspec.defstruct(
        "RawItemKeys",
        [
            ("id", str | None, None),
            ("date", str | None, msgspec.field(default=None, name=date_field)),
        ],
        gc=False,
    )
    items = types.GenericAlias(list, (item,))  # list[item], with a class made at run time
    page = msgspec.defstruct(
        "RawPageKeys", [("items", items), ("count", int | None, None)], gc=False
    )
    return _Decoders(msgspec.json.Decoder(page), msgspec.json.Decoder(items))


def parse_raw_page(
    body: bytes,
    *,
    date_field: str = "createdAt",
    check_utf8: bool = False,
    method: str = "",
    path: str = "",
) -> RawPage:
    """Read a list body (``{"count": N, "items": [...]}`` or a bare JSON array) for copying.

    ``date_field`` is the wire name of the date column to read (``createdAt``, ``updatedAt``,
    ``startedAt``...). Raises :class:`DecodeError` for a body that is not JSON, not such an
    object or array, whose ``count`` is not an integer, or one of whose items is not an
    object; with ``check_utf8``, also for a body that is not valid UTF-8. ``method`` and
    ``path`` only go into the error, as with ``parse_page``.
    """
    decoders = _decoders(date_field)
    start = _LEADING_SPACE.match(body)
    at = start.end() if start is not None else 0
    bare = body[at : at + 1] == b"["
    try:
        if bare:
            keys = decoders.array.decode(body)
            raws = _RAW_ARRAY.decode(body)
            count = None
        else:
            page = decoders.page.decode(body)
            keys, count = page.items, page.count
            raws = _RAW_PAGE.decode(body).items
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _slow_parse(body, date_field, method, path)
    if check_utf8:
        _check_utf8(body, method, path)
    raw_items = list(map(bytes, raws))
    if b"\n" in body or b"\r" in body:
        raw_items = _one_line_each(raw_items)
    return RawPage(
        count=count,
        ids=list(map(_GET_ID, keys)),
        dates=list(map(_GET_DATE, keys)),
        raw_items=raw_items,
    )


def _check_utf8(body: bytes, method: str, path: str, chunk: int = _UTF8_CHUNK) -> None:
    """Refuse a body that is not valid UTF-8, naming the first bad byte (as ``bytes.decode``).

    An all-ASCII body is valid (``isascii`` is a word-at-a-time scan). Any other body is
    decoded ``chunk`` bytes at a time, each piece cut just before a ``"``: an ASCII byte is
    never part of a multi-byte sequence, so the body is valid exactly when every piece is,
    and the first bad byte is the first piece's. Why pieces: one call on a 1 MB page widens
    its text to 2 or 4 bytes a character in a fresh allocation twice the page's size; in a
    JSONL pull (cProfile) that cost about 1.5x what the cached 32 KB pieces cost (alone,
    in ``benchmarks/rawpage.py``, the two are alike). No exact check cheaper than decoding
    was found among the dependencies (``orjson.loads`` validates first, but slower).
    """
    if body.isascii():
        return
    size, at = len(body), 0
    with memoryview(body) as view:
        while at < size:
            cut = body.find(b'"', at + chunk)
            cut = size if cut < 0 else cut
            try:
                str(view[at:cut], "utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"malformed JSON body ({size} bytes): not valid UTF-8 at byte "
                    f"{at + exc.start}",
                    method=method,
                    path=path,
                ) from None
            at = cut


def _one_line_each(raw_items: list[bytes]) -> list[bytes]:
    """Items that span lines (white space between their tokens holds a newline or a
    carriage return; strings cannot, JSON escapes those) with that white space removed."""
    return [
        msgspec.json.format(raw, indent=-1) if b"\n" in raw or b"\r" in raw else raw
        for raw in raw_items
    ]


def _slow_parse(body: bytes, date_field: str, method: str, path: str) -> RawPage:
    """The full parse, for the bodies the fast decoders refused: the same checks and
    messages as ``parse_page``, then the same fields as the fast path."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(
            f"malformed JSON body ({len(body)} bytes): {exc}", method=method, path=path
        ) from None
    if isinstance(data, list):
        items, count = data, None
    elif isinstance(data, dict) and isinstance(data.get("items"), list):
        items, count = data["items"], data.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise DecodeError(f"'count' is not an integer: {count!r}", method=method, path=path)
    else:
        shape = type(data).__name__ if not isinstance(data, dict) else f"object with {sorted(data)}"
        raise DecodeError(
            f"expected {{'count', 'items'}} or a JSON array, got {shape}", method=method, path=path
        )
    if not all(type(item) is dict for item in items):
        raise DecodeError("an item of 'items' is not a JSON object", method=method, path=path)
    return RawPage(
        count=count,
        ids=[_id_text(item.get("id")) for item in items],
        dates=[_date_text(item.get(date_field)) for item in items],
        raw_items=_raw_items_of(body, items, bare=isinstance(data, list)),
    )


def _raw_items_of(body: bytes, items: list[dict[str, Any]], *, bare: bool) -> list[bytes]:
    """The items' own bytes when msgspec can cut them out of the body, else re-encoded."""
    try:
        raws = _RAW_ARRAY.decode(body) if bare else _RAW_PAGE.decode(body).items
    except (msgspec.DecodeError, msgspec.ValidationError):
        raws = []
    if len(raws) != len(items):
        return [orjson.dumps(item) for item in items]
    raw_items = list(map(bytes, raws))
    return _one_line_each(raw_items) if b"\n" in body or b"\r" in body else raw_items


def _id_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _date_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
