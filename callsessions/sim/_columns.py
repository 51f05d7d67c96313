"""The columns of a list page: each field's values for a page of rids, as JSON fragments.

Part of the list renderer (``_render.py``): instead of one dict per record, each field is
computed for the whole page at once, one list comprehension over the data set's arrays, and
values that several fields share (the id, the status, the dialogue template, the operator's
share of the call) are computed once per page. Everything mirrors ``Dataset.record``
exactly; ``tests/sim/test_sim_body_bytes.py`` holds them byte-for-byte equal.

A column holds what its slot in a record's template takes: ``bytes`` for ``%s`` (JSON
already, or ASCII that sits between the template's quotes) and ``int`` for ``%d`` (which
prints an int as orjson does). Strings that could need escaping (task and bot names,
dialogues) are encoded by orjson once, in :class:`Tables`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from datetime import date
from functools import cached_property
from typing import Any

import orjson

from ._data import FIELDS, Dataset
from ._ids import M40, SCRAMBLE_MUL, UUID_HI_MASK
from ._tables import ANSWERED, NOT_FINISHED, REGIONS, STATUSES

__all__ = ["FIELD_COLUMNS", "PageColumns", "Tables"]

_ADDITIONAL = tuple(b'{"attempt":%d,"source":"crm"}' % n for n in (1, 2, 3))
_BOOL = (b"false", b"true")
_TEXT_FIELDS = ("messages", "as_string", "dialog_results", "markers", "nps")
_NULL = b"null"


class PageColumns:
    """The columns of one page: plain lists indexed like ``rids``, computed on first use.

    A column holds what its template slot takes: ``bytes`` for ``%s`` (already JSON, or
    ASCII placed between quotes), ``int`` for ``%d``.
    """

    def __init__(self, tables: Tables, rids: list[int]) -> None:
        self.r = tables
        self.ds = tables.dataset
        self.rids = rids

    @cached_property
    def h(self) -> list[int]:
        hashes = self.ds.hash
        return [hashes[rid] >> 17 for rid in self.rids]

    @cached_property
    def status(self) -> list[int]:
        status = self.ds.status
        return [status[rid] for rid in self.rids]

    @cached_property
    def answered(self) -> list[bool]:
        return [st == ANSWERED for st in self.status]

    @cached_property
    def task(self) -> list[int]:
        task = self.ds.task
        return [task[rid] for rid in self.rids]

    @cached_property
    def template(self) -> list[int]:
        """The dialogue template of each answered record, ``-1`` for the others."""
        template = self.ds.template
        return [template[rid] if a else -1 for rid, a in zip(self.rids, self.answered, strict=True)]

    @cached_property
    def duration(self) -> list[int]:
        duration = self.ds.duration
        return [duration[rid] for rid in self.rids]

    @cached_property
    def operator(self) -> list[int]:
        """The operator's seconds: beyond the scripted dialogue, for some answered calls."""
        ends = self.r.template_ends
        return [
            d - ends[t] if t >= 0 and h >> 8 & 15 == 0 else 0
            for d, t, h in zip(self.duration, self.template, self.h, strict=True)
        ]

    @cached_property
    def ids(self) -> list[bytes]:
        """``Dataset.id_of`` of every rid, with one ``%`` format each (same digits)."""
        hashes = self.ds.hash
        mask = self.r.rid_mask
        out: list[bytes] = []
        append = out.append
        for rid in self.rids:
            hi = (hashes[rid] & UUID_HI_MASK) | 0x4000
            x = ((rid ^ mask) * SCRAMBLE_MUL) & M40
            x ^= x >> 20
            append(
                b"%08x-%04x-%04x-%04x-%012x"
                % (
                    hi >> 32,
                    hi >> 16 & 0xFFFF,
                    hi & 0xFFFF,
                    0x8000 | (hi >> 15 & 0x3FFF),
                    (hi >> 7 & 0xFF) << 40 | x,
                )
            )
        return out

    def iso(self, column: array[float]) -> list[bytes]:
        """``Dataset.iso`` of ``column[rid]`` for every rid, ``null`` for NaN (unquoted)."""
        prefix_of = self.r.minute_prefix
        add_minute = self.r.add_minute
        seconds = self.r.seconds
        offset = self.ds.tz_offset
        out: list[bytes] = []
        append = out.append
        for rid in self.rids:
            ts = column[rid]
            if ts != ts:
                append(_NULL)
                continue
            minute, sec = divmod(int(ts) + offset, 60)
            prefix = prefix_of.get(minute)
            if prefix is None:
                prefix = add_minute(minute)
            append(prefix + seconds[sec])
        return out

    @cached_property
    def created(self) -> list[bytes]:
        return self.iso(self.ds.created)

    # -- the field columns, in FIELDS order ----------------------------------------------

    def record_id(self) -> list[bytes]:
        return self.ids

    def phone(self) -> list[int]:
        phone = self.ds.phone
        return [phone[rid] for rid in self.rids]

    def duration_(self) -> list[int]:
        return self.duration

    def _task_column(self, index: int) -> list[bytes]:
        frags = self.r.task_json[index]
        return [frags[t] for t in self.task]

    def task_id(self) -> list[bytes]:
        return self._task_column(0)

    def task_name(self) -> list[bytes]:
        return self._task_column(1)

    def bot_id(self) -> list[bytes]:
        return self._task_column(2)

    def bot_name(self) -> list[bytes]:
        return self._task_column(3)

    def region_id(self) -> list[int]:
        n = len(REGIONS)
        return [REGIONS[h % n][0] for h in self.h]

    def timezone(self) -> list[int]:
        n = len(REGIONS)
        return [REGIONS[h % n][1] for h in self.h]

    def status_(self) -> list[bytes]:
        names = self.r.status_names
        return [names[st] for st in self.status]

    def short_number(self) -> list[bytes]:
        numbers = self.r.short_numbers
        return [numbers[t][h >> 24 & 1] for t, h in zip(self.task, self.h, strict=True)]

    def transferred(self) -> list[bytes]:
        return [_BOOL[op > 0] for op in self.operator]

    def created_at(self) -> list[bytes]:
        return self.created

    def updated_at(self) -> list[bytes]:
        return self.iso(self.ds.updated)

    def started_at(self) -> list[bytes]:
        return [ts if ts is _NULL else b'"%s"' % ts for ts in self.iso(self.ds.started)]

    def price(self) -> list[bytes]:
        rates = self.r.rates
        ceil = math.ceil
        return [
            b"%.2f" % (ceil(d / 60) * rates[t] / 100) if a else b"0.00"
            for d, t, a in zip(self.duration, self.task, self.answered, strict=True)
        ]

    def _text_column(self, index: int, otherwise: bytes) -> list[bytes]:
        frags = self.r.template_json[index]
        return [frags[t] if t >= 0 else otherwise for t in self.template]

    def messages(self) -> list[bytes]:
        return self._text_column(0, b"[]")

    def messages_as_string(self) -> list[bytes]:
        return self._text_column(1, b'""')

    def additional(self) -> list[bytes]:
        return [_ADDITIONAL[(h >> 28) % 3] for h in self.h]

    def external_id(self) -> list[int]:
        hashes = self.ds.hash
        return [hashes[rid] % 999_999_937 for rid in self.rids]

    def dialog_results(self) -> list[bytes]:
        return self._text_column(2, b"[]")

    def responder(self) -> list[bytes]:
        return [
            (b'"human"' if h >> 20 & 7 else b'"answering_machine"') if a else _NULL
            for h, a in zip(self.h, self.answered, strict=True)
        ]

    def nps(self) -> list[bytes]:
        return self._text_column(4, _NULL)

    def is_finished(self) -> list[bytes]:
        return [_BOOL[st not in NOT_FINISHED] for st in self.status]

    def record_path(self) -> list[bytes]:
        return [
            b'"records/%s/%s.mp3"' % (c[:10], i) if a else _NULL
            for c, i, a in zip(self.created, self.ids, self.answered, strict=True)
        ]

    def operator_duration(self) -> list[int]:
        return self.operator

    def bot_duration(self) -> list[int]:
        return [d - op for d, op in zip(self.duration, self.operator, strict=True)]

    def markers(self) -> list[bytes]:
        return self._text_column(3, b"[]")


Column = Callable[[PageColumns], list[Any]]

#: each field: how its value sits in a record's template, and its column
FIELD_COLUMNS: dict[str, tuple[bytes, Column]] = {
    "id": (b'"%s"', PageColumns.record_id),
    "phone": (b'"%d"', PageColumns.phone),
    "duration": (b"%d", PageColumns.duration_),
    "taskId": (b"%s", PageColumns.task_id),
    "taskName": (b"%s", PageColumns.task_name),
    "botId": (b"%s", PageColumns.bot_id),
    "botName": (b"%s", PageColumns.bot_name),
    "regionId": (b"%d", PageColumns.region_id),
    "timezone": (b"%d", PageColumns.timezone),
    "status": (b'"%s"', PageColumns.status_),
    "shortNumber": (b'"%s"', PageColumns.short_number),
    "transferredToOperator": (b"%s", PageColumns.transferred),
    "linkToLog": (b'"https://analyse.twin24.ai/calls/%s/log"', PageColumns.record_id),
    "createdAt": (b'"%s"', PageColumns.created_at),
    "updatedAt": (b'"%s"', PageColumns.updated_at),
    "startedAt": (b"%s", PageColumns.started_at),
    "price": (b'"%s"', PageColumns.price),
    "messages": (b"%s", PageColumns.messages),
    "messagesAsString": (b"%s", PageColumns.messages_as_string),
    "additional": (b"%s", PageColumns.additional),
    "externalId": (b'"crm-%09d"', PageColumns.external_id),
    "dialogResults": (b"%s", PageColumns.dialog_results),
    "responder": (b"%s", PageColumns.responder),
    "nps": (b"%s", PageColumns.nps),
    "isFinished": (b"%s", PageColumns.is_finished),
    "recordPath": (b"%s", PageColumns.record_path),
    "operatorDuration": (b"%d", PageColumns.operator_duration),
    "botDuration": (b"%d", PageColumns.bot_duration),
    "markers": (b"%s", PageColumns.markers),
}
assert tuple(FIELD_COLUMNS) == FIELDS


class Tables:
    """What every page of one data set reuses: its constant parts pre-encoded, and the
    rendered minutes of its date-times."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        tasks = dataset.tasks
        #: per task: the JSON of its id, name, bot id, bot name
        self.task_json = tuple(
            tuple(orjson.dumps(getattr(t, attr)) for t in tasks)
            for attr in ("id", "name", "bot_id", "bot_name")
        )
        self.short_numbers = tuple(tuple(n.encode() for n in t.short_numbers) for t in tasks)
        self.rates = tuple(t.rate_cents for t in tasks)
        templates = dataset.templates
        #: per dialogue template: the JSON of its messages, text, results, markers, NPS
        self.template_json = tuple(
            tuple(orjson.dumps(getattr(t, attr)) for t in templates) for attr in _TEXT_FIELDS
        )
        self.template_ends = tuple(t.end for t in templates)
        self.status_names = tuple(name.encode() for name in STATUSES)
        self.rid_mask = dataset.rid_mask  # the key that scrambles a rid into its id
        sample = dataset.iso(dataset.start)  # YYYY-MM-DDTHH:MM:SS+hh:mm
        self.seconds = tuple(b"%02d%s" % (sec, sample[19:].encode()) for sec in range(60))
        #: "YYYY-MM-DDTHH:MM:" by minute since the epoch (in the data set's UTC offset)
        self.minute_prefix: dict[int, bytes] = {}
        self._days: dict[int, bytes] = {}  # "YYYY-MM-DD" by day since the epoch

    def add_minute(self, minute: int) -> bytes:
        """Render and remember the prefix of ``minute`` (bounded: some days of minutes)."""
        if len(self.minute_prefix) >= 100_000:
            self.minute_prefix.clear()
        days, minute_of_day = divmod(minute, 1440)
        day = self._days.get(days)
        if day is None:
            day = self._days[days] = date.fromordinal(719163 + days).isoformat().encode()
        prefix = b"%sT%02d:%02d:" % (day, *divmod(minute_of_day, 60))
        self.minute_prefix[minute] = prefix
        return prefix
