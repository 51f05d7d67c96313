"""The one cattrs converter factory: wire dicts <-> records.

Built for bulk: the generated structure function skips detailed validation, inlines the hot
hooks (a dict lookup for the status, ``datetime.fromisoformat`` for date-times), and
values of an unexpected type are passed through rather than rejected, so that one odd record
never stops a pull of millions. Unknown fields are kept in ``CallSession.extra``; an unknown
status is kept as its string.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from callsessions.protocol.gcpause import gc_paused
from callsessions.protocol.records import JSON, CallSession
from callsessions.protocol.schema import ALL_FIELDS, CallStatus, snake_case

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


def _datetime(value: Any, where: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None if not value else _keep(value, where)
    return _keep(value, where)


#: while a page is structured: field name -> values of an unexpected type (see
#: ``structure_sessions``); None outside it
_MISMATCHES: ContextVar[Counter[str] | None] = ContextVar("callsessions_mismatches", default=None)


def _keep(value: Any, where: Any) -> Any:
    """A value of an unexpected type: passed through rather than failing a whole pull, and
    counted by field (``where`` is the wire name when the generated function calls)."""
    counter = _MISMATCHES.get()
    if counter is not None and isinstance(where, str):
        counter[where] += 1
    return value


def _decimal(value: Any, where: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    try:
        # str() first: Decimal(0.1) would carry binary noise, Decimal("0.1") does not.
        number = Decimal(value if isinstance(value, str) else str(value))
    except (InvalidOperation, TypeError, ValueError):
        return _keep(value, where)
    return number if number.is_finite() else _keep(value, where)


def _int(value: Any, where: Any) -> Any:
    if value is None or type(value) is int:
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            return int(value)
        except ValueError:  # "--5", "²": isdigit() says yes, int() says no
            return _keep(value, where)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _keep(value, where)


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


_fromisoformat = datetime.fromisoformat


def _datetime_str(value: str, where: str) -> Any:
    """The hot path of date-times: a string, almost always well formed."""
    try:
        return _fromisoformat(value)
    except ValueError:
        return _datetime(value, where)


#: Inline expressions for the hot hooks, used by the generated record function instead of a
#: call per field. ``{w}`` is the wire name; ``v`` is a scratch variable.
_INLINE: dict[Callable[[Any, Any], Any], str] = {
    _passthrough: "g({w!r})",
    _int: "(v if (v := g({w!r})) is None or v.__class__ is int else _int(v, {w!r}))",
    _datetime: "(_dts(v, {w!r}) if (v := g({w!r})).__class__ is str else _datetime(v, {w!r}))",
    _status: "(_sbv.get(v, v) if (v := g({w!r})).__class__ is str else _status(v, None))",
    _decimal: "_decimal(g({w!r}), {w!r})",
}


def _make_record_structure(conv: cattrs.Converter) -> Callable[[Any, Any], CallSession]:
    """Generate the structure function of ``CallSession`` from the converter's hooks.

    Like cattrs' own ``make_dict_structure_fn`` (code generated once, no detailed
    validation), but hot hooks are inlined as expressions and the record is built with
    positional arguments: several times cheaper per record, which is what a bulk pull pays.
    A hook registered for a field's type that is not one of ours is called as usual.
    """
    fields = [a for a in attrs.fields(attrs.resolve_types(CallSession)) if a.name != "extra"]
    env: dict[str, Any] = {
        "_cl": CallSession,
        "_known": _KNOWN_WIRE,
        "_int": _int,
        "_datetime": _datetime,
        "_dts": _datetime_str,
        "_sbv": _STATUS_BY_VALUE,
        "_status": _status,
        "_decimal": _decimal,
    }
    args: list[str] = []
    for a in fields:
        wire = _RENAMES[a.name]
        hook = conv.get_structure_hook(a.type)
        template = _INLINE.get(hook)
        if template is None:
            env[f"_h_{a.name}"] = hook
            env[f"_t_{a.name}"] = a.type
            template = f"_h_{a.name}(g({{w!r}}), _t_{a.name})"
        args.append(template.format(w=wire))
    body = ",\n        ".join(args)
    source = (
        "def structure_CallSession(o, _=None):\n"
        "    g = o.get\n"
        f"    rec = _cl(\n        {body},\n    )\n"
        "    if not o.keys() <= _known:\n"
        "        rec.extra = {k: x for k, x in o.items() if k not in _known}\n"
        "    return rec\n"
    )
    code = compile(source, "<callsessions generated structure_CallSession>", "exec")
    exec(code, env)
    fn: Callable[[Any, Any], CallSession] = env["structure_CallSession"]
    return fn


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
    conv.register_structure_hook(CallSession, _make_record_structure(conv))

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


def structure_sessions(
    items: list[dict[str, Any]], mismatches: Counter[str] | None = None
) -> list[CallSession]:
    """Structure a page of wire dicts (the hot path of a pull). Values of an unexpected type
    (``duration: "12.5"``, ``createdAt: "yesterday"``) are kept as they came; with
    ``mismatches`` given, each is counted there under its field's wire name."""
    hook = _STRUCTURE
    token = _MISMATCHES.set(mismatches) if mismatches is not None else None
    try:
        with gc_paused():  # a thousand records and their values: see _gcpause
            return [hook(item, CallSession) for item in items]
    finally:
        if token is not None:
            _MISMATCHES.reset(token)


def unstructure_session(record: CallSession) -> dict[str, Any]:
    """A record back in the wire form (camelCase keys; null fields left out)."""
    result: dict[str, Any] = _CONVERTER.unstructure(record)
    return result


assert {a.name for a in attrs.fields(CallSession)} == set(_RENAMES) | {"extra"}
