"""The simulated call sessions: compact columns plus records materialised on demand.

Only what filtering and sorting need is stored, one ``array`` per column and indexed by a
stable record number (``rid``): ``createdAt``, ``updatedAt``, ``startedAt`` (NaN when null),
``duration``, status, task, phone and dialogue template. Everything else in a record is a pure
function of ``(seed, rid)``: the id (a UUID whose low bits encode the rid, so looking up an id
is O(1): ``_ids.py``), region, external id, NPS... A million records take about 40 MB. The
tasks and dialogue templates records point at are ``_catalogue.py``'s.

``order`` holds the rids sorted by ``createdAt`` (ties keep insertion order) and
``created_sorted`` the matching timestamps, so a time window is two bisections away.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from ._catalogue import N_TEMPLATES, Task, catalogue
from ._config import SimConfig
from ._ids import M40, M64, SCRAMBLE_INV, SCRAMBLE_MUL, UUID_HI_MASK, mix
from ._tables import (
    ANSWERED,
    FIELDS,
    NEVER_STARTED,
    NOT_FINISHED,
    REGIONS,
    SORT_FIELDS,
    STATUS_INDEX,
    STATUS_WEIGHTS,
    STATUSES,
    TASK_WEIGHTS,
)

__all__ = ["FIELDS", "SORT_FIELDS", "STATUSES", "STATUS_INDEX", "Dataset", "Task"]

_CHUNK = 65_536

# What Dataset._conversation returns: the fields that depend on whether a call was answered.
_Conversation = tuple[
    bool,
    int,
    list[dict[str, Any]],
    str,
    list[dict[str, str]],
    list[str],
    int | None,
    str,
    str | None,
    str | None,
]


class Dataset:
    """The calls a simulator serves: generated deterministically from a seed.

    Records are addressed by ``rid``, a stable number (0..len-1, in insertion order; the
    generated records have rids in ``createdAt`` order). ``version`` changes on every insert,
    so caches of query results know when to drop.
    """

    @classmethod
    def from_config(cls, config: SimConfig) -> Dataset:
        """Generate the data set a :class:`SimConfig` describes."""
        return cls(
            config.records,
            seed=config.seed,
            start=config.start,
            span_seconds=config.span.total_seconds(),
            burst_fraction=config.burst_fraction,
            tz_offset=config.tz_offset,
        )

    def __init__(
        self,
        records: int = 10_000,
        *,
        seed: int = 0,
        start: datetime | None = None,
        span_seconds: float = 7 * 86400.0,
        burst_fraction: float = 0.3,
        tz_offset: int = 3 * 3600,
    ) -> None:
        self.seed = seed
        self.start = (start or SimConfig().start).timestamp()
        self.span = float(span_seconds)
        self.tz_offset = tz_offset
        sign = "+" if tz_offset >= 0 else "-"
        hh, mm = divmod(abs(tz_offset) // 60, 60)
        self._tz_suffix = f"{sign}{hh:02d}:{mm:02d}"
        self._minute_cache: dict[int, str] = {}
        self._seconds = [f"{sec:02d}{self._tz_suffix}" for sec in range(60)]
        self._key = mix(seed & M64 ^ 0x5EED)
        self._rid_mask = mix(self._key) & M40
        self.version = 0

        self.tasks, self.templates = catalogue(seed)  # what records point at, by index

        # Columns, indexed by rid.
        self.created = array("d")
        self.updated = array("d")
        self.started = array("d")
        self.duration = array("l")
        self.status = array("B")
        self.task = array("B")
        self.phone = array("q")
        self.template = array("B")
        self.hash = array("Q")  # per-record random bits: id, region, external id...
        # rids sorted by createdAt, and the matching timestamps.
        self.order = array("q")
        self.created_sorted = array("d")

        self._rng = random.Random(seed)
        created = self._created_times(records, burst_fraction)
        for chunk in range(0, records, _CHUNK):  # chunks keep the transient lists small
            self._append(created[chunk : chunk + _CHUNK])
        del created
        self.order = array("q", range(records))
        self.created_sorted = array("d", self.created)

    # -- generation ----------------------------------------------------------------------

    def _created_times(self, n: int, burst_fraction: float) -> array[float]:
        """Sorted whole-second creation times; a fraction of them packed in bursts."""
        rng = self._rng
        span = max(1, int(self.span))
        base = int(self.start)
        n_burst = int(n * burst_fraction)
        times = [base + int(rng.random() * span) for _ in range(n - n_burst)]
        while n_burst > 0:
            size = min(n_burst, rng.randint(5, 200))
            times.extend([base + int(rng.random() * span)] * size)
            n_burst -= size
        times.sort()
        return array("d", times)

    def _append(self, created: Sequence[float]) -> list[int]:
        """Append records with these creation times to the rid columns; return their rids."""
        rng = self._rng
        n = len(created)
        first = len(self.created)
        statuses = rng.choices(range(len(STATUSES)), STATUS_WEIGHTS, k=n)
        tasks = rng.choices(range(len(self.tasks)), TASK_WEIGHTS, k=n)
        templates = self.templates
        rand = rng.random
        getbits = rng.getrandbits
        started_col: list[float] = []
        updated_col: list[float] = []
        duration_col: list[int] = []
        template_col: list[int] = []
        nan = math.nan
        for i in range(n):
            c = created[i]
            st = statuses[i]
            tmpl = getbits(8) % N_TEMPLATES
            if st == ANSWERED:
                dur = templates[tmpl].end + int(rand() * 90)
            elif st == 9:  # INPROGRESS: still talking
                dur = int(rand() * 30)
            else:
                dur = 0
            if st in NEVER_STARTED:
                s = nan
                u = c + 1.0
            else:
                s = c + float(int(rand() * rand() * 40))
                u = s + dur + float(getbits(3))
            started_col.append(s)
            updated_col.append(u)
            duration_col.append(dur)
            template_col.append(tmpl)
        self.created.extend(created)
        self.started.extend(started_col)
        self.updated.extend(updated_col)
        self.duration.extend(duration_col)
        self.status.extend(statuses)
        self.task.extend(tasks)
        self.template.extend(template_col)
        self.phone.extend([79000000000 + getbits(30) % 1_000_000_000 for _ in range(n)])
        self.hash.extend([getbits(64) for _ in range(n)])
        return list(range(first, first + n))

    def insert(
        self,
        n: int = 1,
        *,
        created: Sequence[datetime] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[str]:
        """Add ``n`` new calls and return their ids (live data, as while a pull runs).

        ``created`` gives their exact creation times (then ``n`` is ignored); otherwise they
        are spread uniformly over ``[start, end)``, by default the data set's whole span.
        Creation times are whole seconds.
        """
        if created is not None:
            times = [float(int(d.timestamp())) for d in created]
        else:
            lo = start.timestamp() if start is not None else self.start
            hi = end.timestamp() if end is not None else self.start + self.span
            rand = self._rng.random
            times = [float(int(lo + rand() * (hi - lo))) for _ in range(n)]
        if not times:
            return []
        rids = self._append(times)
        pairs = sorted(zip(times, rids, strict=True))
        new_order = array("q")
        new_created = array("d")
        prev = 0
        for t, rid in pairs:
            pos = bisect_right(self.created_sorted, t, prev)
            new_order.extend(self.order[prev:pos])
            new_created.extend(self.created_sorted[prev:pos])
            new_order.append(rid)
            new_created.append(t)
            prev = pos
        new_order.extend(self.order[prev:])
        new_created.extend(self.created_sorted[prev:])
        self.order = new_order
        self.created_sorted = new_created
        self.version += 1
        return [self.id_of(rid) for rid in rids]

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.created)

    @property
    def count(self) -> int:
        """How many records the data set holds."""
        return len(self.created)

    def ids(self) -> Iterator[str]:
        """Every id, in ``createdAt`` order."""
        id_of = self.id_of
        for rid in self.order:
            yield id_of(rid)

    @property
    def rid_mask(self) -> int:
        """The per-seed key XORed into a rid before it is scrambled into its id's low 40 bits
        (read-only; :meth:`id_of` and the list renderer's id column both use it)."""
        return self._rid_mask

    def id_of(self, rid: int) -> str:
        """The UUID of record ``rid`` (version 4 shaped; its low 40 bits encode the rid)."""
        hi = (self.hash[rid] & UUID_HI_MASK) | 0x4000
        x = ((rid ^ self._rid_mask) * SCRAMBLE_MUL) & M40
        x ^= x >> 20
        h = f"{hi:016x}{0x800000 | (hi >> 7 & 0x3FFFFF):06x}{x:010x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def rid_of(self, record_id: str) -> int | None:
        """The rid of a record id, or ``None`` when no record has it."""
        if len(record_id) != 36:
            return None
        try:
            x = int(record_id[26:], 16)
        except ValueError:
            return None
        x ^= x >> 20
        rid = ((x * SCRAMBLE_INV) & M40) ^ self._rid_mask
        if rid < len(self.created) and self.id_of(rid) == record_id.lower():
            return rid
        return None

    def iso(self, ts: float) -> str:
        """Render a timestamp as ISO 8601 with the data set's UTC offset (whole seconds)."""
        minute, sec = divmod(int(ts) + self.tz_offset, 60)
        prefix = self._minute_cache.get(minute)
        if prefix is None:
            if len(self._minute_cache) > 200_000:
                self._minute_cache.clear()
            days, sod = divmod(minute, 1440)
            h, m = divmod(sod, 60)
            prefix = f"{date.fromordinal(719163 + days).isoformat()}T{h:02d}:{m:02d}:"
            self._minute_cache[minute] = prefix
        return prefix + self._seconds[sec]

    def external_id(self, rid: int) -> str:
        """The CRM id of record ``rid``."""
        return f"crm-{self.hash[rid] % 999_999_937:09d}"

    def _conversation(
        self, rid: int, st: int, h: int, dur: int, task: Task, created_at: str, record_id: str
    ) -> _Conversation:
        """The fields of record ``rid`` that depend on whether the call was answered:
        ``(transferred, operator, messages, as_string, results, markers, nps, price,
        responder, record_path)``.

        Kept apart so :meth:`record` stays one readable mapping. An answered call carries its
        dialogue template's values (shared, not copied: records are built on every request)
        and is billed per started minute; any other call has no dialogue and costs nothing.
        """
        if st != ANSWERED:
            return False, 0, [], "", [], [], None, "0.00", None, None
        tmpl = self.templates[self.template[rid]]
        # The time beyond the scripted dialogue went to an operator, for some calls.
        operator = dur - tmpl.end if h >> 8 & 15 == 0 else 0
        price = f"{math.ceil(dur / 60) * task.rate_cents / 100:.2f}"
        responder = "human" if h >> 20 & 7 else "answering_machine"
        record_path = f"records/{created_at[:10]}/{record_id}.mp3"
        return (
            operator > 0,
            operator,
            tmpl.messages,
            tmpl.as_string,
            tmpl.dialog_results,
            tmpl.markers,
            tmpl.nps,
            price,
            responder,
            record_path,
        )

    def record(self, rid: int) -> dict[str, Any]:
        """The full record ``rid`` (all 29 fields). Nested values are shared: do not mutate."""
        h = self.hash[rid] >> 17
        st = self.status[rid]
        task = self.tasks[self.task[rid]]
        dur = self.duration[rid]
        record_id = self.id_of(rid)
        region, tz = REGIONS[h % len(REGIONS)]
        started = self.started[rid]
        created_at = self.iso(self.created[rid])
        (
            transferred,
            operator,
            messages,
            as_string,
            results,
            markers,
            nps,
            price,
            responder,
            record_path,
        ) = self._conversation(rid, st, h, dur, task, created_at, record_id)
        return {
            "id": record_id,
            "phone": str(self.phone[rid]),
            "duration": dur,
            "taskId": task.id,
            "taskName": task.name,
            "botId": task.bot_id,
            "botName": task.bot_name,
            "regionId": region,
            "timezone": tz,
            "status": STATUSES[st],
            "shortNumber": task.short_numbers[h >> 24 & 1],
            "transferredToOperator": transferred,
            "linkToLog": f"https://analyse.twin24.ai/calls/{record_id}/log",
            "createdAt": created_at,
            "updatedAt": self.iso(self.updated[rid]),
            "startedAt": None if started != started else self.iso(started),
            "price": price,
            "messages": messages,
            "messagesAsString": as_string,
            "additional": {"attempt": (h >> 28) % 3 + 1, "source": "crm"},
            "externalId": self.external_id(rid),
            "dialogResults": results,
            "responder": responder,
            "nps": nps,
            "isFinished": st not in NOT_FINISHED,
            "recordPath": record_path,
            "operatorDuration": operator,
            "botDuration": dur - operator,
            "markers": markers,
        }

    def window(self, lo: float | None, hi: float | None) -> tuple[int, int]:
        """Positions ``[a, b)`` in ``order`` of the records with ``lo <= createdAt < hi``."""
        a = 0 if lo is None else bisect_left(self.created_sorted, lo)
        b = len(self.order) if hi is None else bisect_left(self.created_sorted, hi)
        return a, max(a, b)

    def end(self) -> datetime:
        """The end of the generated span (exclusive)."""
        return datetime.fromtimestamp(self.start + self.span).astimezone()
