"""The Arrow schema of a call-session table, and record batches built column by column.

This module imports ``pyarrow``; the rest of the package imports it only when a Parquet
output is asked for, so ``callsessions`` works without the ``parquet`` extra.

The schema is explicit and the same for every page (never inferred):

==========================================  ============================================
fields                                      Arrow type
==========================================  ============================================
``id`` (not null) and the other strings     ``string`` (``phone`` stays a string)
``status``                                  ``dictionary<int32, string>``
``duration``, ``operatorDuration``,         ``int64``
``botDuration``, ``regionId``,
``timezone``, ``nps``
``transferredToOperator``, ``isFinished``   ``bool``
``createdAt``, ``updatedAt``, ``startedAt`` ``timestamp[us, tz=UTC]`` (any offset the API
                                            used is converted to UTC)
``price``                                   ``decimal128(18, 6)``: 12 digits before the
                                            point and 6 after, exact
``messages``, ``additional``,               ``string`` holding JSON text (field metadata
``dialogResults``, ``markers``              ``callsessions.encoding = json``)
==========================================  ============================================

**Values of the wrong type.** A value that is not of its column's type (``duration:
"12.5"``, ``createdAt: "yesterday"`` or a time without a UTC offset, ``price: "abc"``, a
number where a string belongs) is written as **null and counted** per field in the
``MismatchCounter`` the caller passes (sinks expose it as ``type_mismatches``), with one
warning log line per field: one odd record never stops a pull of millions, and nothing is
written that is not what the API said. Whole floats (``12.0``) are accepted as integers.
Two cases are errors instead, because no null would be honest:

* a ``price`` that is a number but does not fit ``decimal128(18, 6)`` (more than 12 digits
  before the point, or more than 6 after: it would have to be rounded) raises
  ``UnrepresentableValueError``;
* a record without ``id`` raises ``UnrepresentableValueError``.

**How a batch is built** (the cost of a write is mostly here, so it is measured in
``benchmarks/sinks.py``): the strings, booleans, timestamps (as text), the status and a
price sent as text are converted in **one** pass over the records by Arrow itself
(``pa.array(records, type=pa.struct(...))``, which looks the fields up in each dict in C
and refuses any value of another type); integers are taken per column (``itemgetter``
over the records) and checked by Arrow's type inference (a Python float would be silently
truncated by a typed conversion); nested values are encoded per column with
``map(orjson.dumps, ...)``. Then ``pyarrow.compute`` casts ISO 8601 text to timestamps and
decimal text to decimals (a regex first tells text that is not a number, null and counted,
from a number that does not fit, an error). Only a batch that holds a wrong value (or a
price sent as a JSON number) takes the per-column, then per-value, path; both paths give
the same values (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .base import (
    Kind,
    MismatchCounter,
    RawRecord,
    UnrepresentableValueError,
    decimal_text,
    kind_of,
)

__all__ = ["PRICE_TYPE", "STATUS_TYPE", "TIMESTAMP_TYPE", "arrow_schema", "record_batch"]

PRICE_PRECISION = 18
PRICE_SCALE = 6
PRICE_TYPE = pa.decimal128(PRICE_PRECISION, PRICE_SCALE)
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
STATUS_TYPE = pa.dictionary(pa.int32(), pa.string())

_TYPES: dict[Kind, Any] = {
    "string": pa.string(),
    "status": STATUS_TYPE,
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "timestamp": TIMESTAMP_TYPE,
    "decimal": PRICE_TYPE,
    "json": pa.string(),
}

#: The kinds converted in one pass by a struct conversion, and the type each is read as.
_VIA_STRUCT: dict[Kind, Any] = {
    "string": pa.string(),
    "status": pa.string(),
    "boolean": pa.bool_(),
    "timestamp": pa.string(),
    "decimal": pa.string(),
}

#: a number as text: what Arrow's decimal cast accepts, without spaces, NaN or infinity
_DECIMAL_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INT64 = range(-(2**63), 2**63)
_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError)
_JSON_NULL = pa.scalar(b"null", pa.binary())


def arrow_schema(columns: Sequence[str]) -> Any:
    """The ``pyarrow.Schema`` of a table of these columns (``id`` first, not nullable)."""
    fields = []
    for name in columns:
        kind = kind_of(name)
        meta = {b"callsessions.encoding": b"json"} if kind == "json" else None
        fields.append(pa.field(name, _TYPES[kind], nullable=name != "id", metadata=meta))
    return pa.schema(fields, metadata={b"callsessions.schema": b"1"})


def record_batch(records: Sequence[RawRecord], schema: Any, mismatches: MismatchCounter) -> Any:
    """A ``pyarrow.RecordBatch`` of ``records`` with exactly ``schema`` (see the module
    docstring for values of the wrong type and for how the columns are built)."""
    names = schema.names
    arrays = _struct_columns(records, tuple(names), mismatches)
    for name in names:
        if name not in arrays:
            arrays[name] = _BUILDERS[kind_of(name)](name, _values(records, name), mismatches)
    batch = pa.RecordBatch.from_arrays([arrays[name] for name in names], schema=schema)
    if names and names[0] == "id" and batch.column(0).null_count:
        raise UnrepresentableValueError(
            "a record without a string 'id' cannot be written (id is not nullable)"
        )
    return batch


@lru_cache(maxsize=64)
def _struct_of(names: tuple[str, ...]) -> tuple[tuple[str, ...], Any]:
    """The columns of ``names`` a struct conversion takes, and that struct's type."""
    chosen = tuple(name for name in names if kind_of(name) in _VIA_STRUCT)
    return chosen, pa.struct([(name, _VIA_STRUCT[kind_of(name)]) for name in chosen])


def _struct_columns(
    records: Sequence[RawRecord], names: tuple[str, ...], mm: MismatchCounter
) -> dict[str, Any]:
    """The arrays of the string, boolean, timestamp, status and decimal columns, from one
    struct conversion when every value is of its type; {} when one is not (then each
    column is built on its own, which finds and counts the wrong values)."""
    chosen, struct = _struct_of(names)
    if not chosen or not records:
        return {}
    try:
        children = pa.array(records, type=struct).flatten()
    except _CONVERSION_ERRORS:
        return {}
    return {
        name: _FROM_TEXT[kind_of(name)](name, child, mm)
        for name, child in zip(chosen, children, strict=True)
    }


def _values(records: Sequence[RawRecord], name: str) -> list[Any]:
    """The values of one column (``itemgetter`` in C; ``dict.get`` if one lacks it)."""
    try:
        return list(map(itemgetter(name), records))
    except KeyError:
        return [record.get(name) for record in records]


def _inferred(values: list[Any]) -> Any:
    """``pa.array(values)`` with its type inferred, or None when the types are mixed."""
    try:
        return pa.array(values)
    except _CONVERSION_ERRORS:
        return None


def _count_bad(values: list[Any], clean: list[Any]) -> int:
    return sum(1 for v, c in zip(values, clean, strict=True) if v is not None and c is None)


def _strings(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    try:
        return pa.array(values, type=pa.string())
    except _CONVERSION_ERRORS:
        clean = [v if type(v) is str else None for v in values]
        mm.add(name, _count_bad(values, clean), "a string")
        return pa.array(clean, type=pa.string())


def _status(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    return pc.dictionary_encode(_strings(name, values, mm))


def _whole(value: Any) -> int | None:
    if type(value) is int:
        return value if value in _INT64 else None
    if type(value) is float and value.is_integer() and -(2.0**63) <= value < 2.0**63:
        return int(value)
    return None


def _integers(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    arr = _inferred(values)
    if arr is not None and (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        return arr.cast(pa.int64())
    clean = [_whole(v) for v in values]
    mm.add(name, _count_bad(values, clean), "an integer")
    return pa.array(clean, type=pa.int64())


def _booleans(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    arr = _inferred(values)
    if arr is not None and (pa.types.is_boolean(arr.type) or pa.types.is_null(arr.type)):
        return arr.cast(pa.bool_())
    clean = [v if type(v) is bool else None for v in values]
    mm.add(name, _count_bad(values, clean), "a boolean")
    return pa.array(clean, type=pa.bool_())


def _utc(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return None if moment.tzinfo is None else moment.astimezone(UTC)


def _timestamps(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    return _timestamps_of_text(name, _strings(name, values, mm), mm)


def _timestamps_of_text(name: str, text: Any, mm: MismatchCounter) -> Any:
    try:
        return pc.cast(text, TIMESTAMP_TYPE)  # ISO 8601; refuses a time without an offset
    except pa.ArrowInvalid:
        strings = text.to_pylist()
        clean = [None if v is None else _utc(v) for v in strings]
        mm.add(name, _count_bad(strings, clean), "an ISO 8601 date-time with a UTC offset")
        return pa.array(clean, type=TIMESTAMP_TYPE)


def _decimal_strings(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    arr = _inferred(values)
    if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
        text = arr.cast(pa.string())
    elif arr is not None and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        text = pc.cast(arr, pa.string())  # a float's shortest text: 86832.55 -> "86832.55"
    else:
        clean = [decimal_text(v) for v in values]
        mm.add(name, _count_bad(values, clean), "a decimal number")
        return pa.array(clean, type=pa.string())
    return _numbers_only(name, text, mm)


def _numbers_only(name: str, text: Any, mm: MismatchCounter) -> Any:
    """``text`` with every value that is not a number (``"abc"``) null and counted."""
    valid = pc.match_substring_regex(text, _DECIMAL_RE)
    bad = len(text) - text.null_count - (pc.sum(valid).as_py() or 0)
    if bad:
        mm.add(name, bad, "a decimal number")
        text = pc.if_else(valid, text, pa.scalar(None, pa.string()))
    return text


def _decimals(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    return _decimals_of_text(name, _decimal_strings(name, values, mm))


def _decimals_of_text(name: str, text: Any) -> Any:
    try:
        return pc.cast(text, PRICE_TYPE)
    except pa.ArrowInvalid:
        raise UnrepresentableValueError(_misfit(name, text.to_pylist())) from None


def _misfit(name: str, strings: list[Any]) -> str:
    """Why a column of decimal text does not cast: the first value that does not fit."""
    limit = Decimal(10) ** (PRICE_PRECISION - PRICE_SCALE)
    step = Decimal(1).scaleb(-PRICE_SCALE)
    for text in strings:
        if text is None:
            continue
        try:
            number = Decimal(text)
            fits = abs(number) < limit and number == number.quantize(step)
        except InvalidOperation:
            fits = False
        if not fits:
            return (
                f"{name} {text!r} does not fit decimal({PRICE_PRECISION}, {PRICE_SCALE}) "
                f"(at most {PRICE_PRECISION - PRICE_SCALE} digits before the point and "
                f"{PRICE_SCALE} after); it is not rounded"
            )
    return f"{name}: a value does not fit decimal({PRICE_PRECISION}, {PRICE_SCALE})"


def _json(name: str, values: list[Any], mm: MismatchCounter) -> Any:
    """JSON text of each value; null for None (not the text ``null``). orjson writes
    valid UTF-8 only, so the bytes are taken as strings without a second check."""
    try:
        encoded = list(map(orjson.dumps, values))
    except orjson.JSONEncodeError:  # a value JSON has no type for (Decimal, a set...)
        encoded = [orjson.dumps(v, default=str) for v in values]
    data = pa.array(encoded, type=pa.binary())
    nulls = pc.equal(data, _JSON_NULL)  # only None encodes as `null`
    if pc.any(nulls).as_py():
        data = pc.if_else(nulls, pa.scalar(None, pa.binary()), data)
    return data.view(pa.string())


_BUILDERS: dict[Kind, Callable[[str, list[Any], MismatchCounter], Any]] = {
    "string": _strings,
    "status": _status,
    "integer": _integers,
    "boolean": _booleans,
    "timestamp": _timestamps,
    "decimal": _decimals,
    "json": _json,
}

#: After a struct conversion (every value of its type): the array of each kind from its
#: child array (strings for the status, timestamps and decimals, booleans as they are).
_FROM_TEXT: dict[Kind, Callable[[str, Any, MismatchCounter], Any]] = {
    "string": lambda name, arr, mm: arr,
    "status": lambda name, arr, mm: pc.dictionary_encode(arr),
    "boolean": lambda name, arr, mm: arr,
    "timestamp": _timestamps_of_text,
    "decimal": lambda name, arr, mm: _decimals_of_text(name, _numbers_only(name, arr, mm)),
}
