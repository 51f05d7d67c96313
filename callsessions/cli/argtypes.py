"""argparse types of the command line: each turns an option's text into a checked value or
an ``ArgumentTypeError`` that names the problem (argparse adds the option's name)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = [
    "MAX_CONCURRENCY",
    "concurrency",
    "iso_datetime",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "wire_name",
]

#: the client's bound on requests in flight (``callsessions.client.MAX_CONCURRENCY``; a
#: test checks they agree): repeated here so that parsing does not import the client
MAX_CONCURRENCY = 256


def iso_datetime(text: str) -> datetime:
    """``--from``/``--to``: ISO 8601 with a UTC offset (``Z`` or ``+03:00``)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date-time (e.g. 2026-01-01T00:00:00+00:00)"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; add one, e.g. {value.isoformat()}+00:00 or Z"
        )
    return value


def _number(
    convert: Callable[[str], Any], noun: str, ok: Callable[[Any], bool], rule: str
) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, then check it against ``ok``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text} {rule}")
        return value

    return parse


positive_int = _number(int, "an integer", lambda v: v >= 1, "must be at least 1")
positive_float = _number(
    float, "a number", lambda v: 0 < v < math.inf, "must be a positive, finite number"
)
non_negative_float = _number(
    float, "a number", lambda v: 0 <= v < math.inf, "must be a finite number, not negative"
)
concurrency = _number(
    int,
    "an integer",
    lambda v: 1 <= v <= MAX_CONCURRENCY,
    f"must be from 1 to {MAX_CONCURRENCY} (memory grows with it)",
)


def wire_name(text: str) -> tuple[str, str]:
    """``--wire-name start=dateFrom``: a parameter and the query-string name to send."""
    name, sep, wire = text.partition("=")
    if not sep or not name.strip() or not wire.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not PARAMETER=NAME (e.g. start=dateFrom)")
    return name.strip(), wire.strip()
