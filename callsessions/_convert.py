"""The one cattrs converter factory: wire dicts <-> records.

Built for bulk: the generated structure function skips detailed validation, hot types have
cheap hooks (a dict lookup for the status, ``datetime.fromisoformat`` for date-times), and
values of an unexpected type are passed through rather than rejected, so that one odd record
never stops a pull of millions. Unknown fields are kept in ``CallSession.extra``; an unknown
status is kept as its string.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._models import JSON, CallSession
from ._query import ALL_FIELDS, CallStatus, snake_case

__all__ = ["make_converter", "structure_session", "unstructure_session"]

#: attribute name -> wire name
_RENAMES: dict[str, str] = {snake_case(name): name for name in ALL_FIELDS}
_KNOWN_WIRE: frozenset[str] = frozenset(ALL_FIELDS)
_STATUS_BY_VALUE: dict[str, CallStatus] = {s.value: s for s in CallStatus}


def _status(value: Any, _: Any) -> Any:
    # A dict lookup, not CallStatus(value): faster, and unknown values survive as strings.
    if value is None:
        return None
    try:
        return _STATUS_BY_VALUE.get(value, value)
    except TypeError:  # unhashable (a list, an object): kept as it came
        return value


def _datetime(value: Any, _: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None if not value else _keep(value)
    return _keep(value)


def _keep(value: Any) -> Any:
    """A value of an unexpected type: passed through rather than failing a whole pull."""
    return value


def _decimal(value: Any, _: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    try:
        # str() first: Decimal(0.1) would carry binary noise, Decimal("0.1") does not.
        return Decimal(value if isinstance(value, str) else str(value))
    except (InvalidOperation, TypeError, ValueError):
        return _keep(value)


def _int(value: Any, _: Any) -> Any:
    if value is None or type(value) is int:
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            return int(value)
        except ValueError:  # "--5", "²": isdigit() says yes, int() says no
            return _keep(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _keep(value)


def _passthrough(value: Any, _: Any) -> Any:
    return value


# Unstructure hooks are chosen by the attribute's declared type, so they must also accept
# the odd values the structure hooks kept as they came (a date that did not parse...).


def _datetime_out(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decimal_out(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _as_is(value: Any) -> Any:
    return value


def make_converter() -> cattrs.Converter:
    """Build the converter: structure wire dicts into ``CallSession`` and back."""
    conv = cattrs.Converter()
    hooks: list[tuple[Any, Callable[[Any, Any], Any]]] = [
        (str | None, _passthrough),
        (bool | None, _passthrough),
        (int | None, _int),
        (datetime | None, _datetime),
        (Decimal | None, _decimal),
        (CallStatus | str | None, _status),
        (list[dict[str, JSON]] | None, _passthrough),
        (dict[str, JSON] | None, _passthrough),
    ]
    for tp, hook in hooks:
        conv.register_structure_hook(tp, hook)
    conv.register_structure_hook(Any, _passthrough)

    renames: dict[str, Any] = {name: override(rename=wire) for name, wire in _RENAMES.items()}
    base_structure = make_dict_structure_fn(
        CallSession,
        conv,
        _cattrs_forbid_extra_keys=False,
        _cattrs_detailed_validation=False,
        extra=override(omit=True),
        **renames,
    )

    def structure(data: dict[str, Any], _: Any) -> CallSession:
        record = base_structure(data, CallSession)
        if len(data) > len(_KNOWN_WIRE) or not data.keys() <= _KNOWN_WIRE:
            record.extra = {k: v for k, v in data.items() if k not in _KNOWN_WIRE}
        return record

    conv.register_structure_hook(CallSession, structure)

    out_hooks: list[tuple[Any, Callable[[Any], Any]]] = [
        (datetime, _datetime_out),
        (datetime | None, _datetime_out),
        (Decimal, _decimal_out),
        (Decimal | None, _decimal_out),
        (list[dict[str, JSON]] | None, _as_is),
        (dict[str, JSON] | None, _as_is),
    ]
    for tp, out_hook in out_hooks:
        conv.register_unstructure_hook(tp, out_hook)
    base_unstructure = make_dict_unstructure_fn(
        CallSession,
        conv,
        _cattrs_omit_if_default=True,
        extra=override(omit=True),
        **renames,
    )

    def unstructure(record: CallSession) -> dict[str, Any]:
        out: dict[str, Any] = base_unstructure(record)
        if isinstance(record.status, CallStatus):
            out["status"] = record.status.value
        if record.extra:
            out.update(record.extra)
        return out

    conv.register_unstructure_hook(CallSession, unstructure)
    return conv


_CONVERTER = make_converter()
_STRUCTURE = _CONVERTER.get_structure_hook(CallSession)


def structure_session(data: dict[str, Any]) -> CallSession:
    """Structure one wire dict with the shared converter."""
    result: CallSession = _STRUCTURE(data, CallSession)
    return result


def structure_sessions(items: list[dict[str, Any]]) -> list[CallSession]:
    """Structure a page of wire dicts (the hot path of a pull)."""
    hook = _STRUCTURE
    return [hook(item, CallSession) for item in items]


def unstructure_session(record: CallSession) -> dict[str, Any]:
    """A record back in the wire form (camelCase keys; null fields left out)."""
    result: dict[str, Any] = _CONVERTER.unstructure(record)
    return result


assert {a.name for a in attrs.fields(CallSession)} == set(_RENAMES) | {"extra"}
