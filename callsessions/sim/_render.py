"""List bodies rendered straight to JSON bytes, with no dict per record.

What a client receives is defined by ``Dataset.record`` (a dict per record), projected by
``select`` and encoded by ``orjson.dumps``: that path stays the reference (the ground truth,
downloads). Building 29-key dicts was, however, 85 % of the simulator's CPU per page, so a
list page is rendered here instead, and ``tests/sim/test_sim_body_bytes.py`` holds the two
byte-for-byte equal:

* the fields are computed column by column for the whole page (``_columns.py``);
* a record is one ``%`` format of its projection's template, e.g.
  ``{"id":"%s","phone":"%d",...}``, over a row of the columns, and the page one
  ``b",".join``;
* a rendered record is kept in a bounded cache, per projection (the ``fields`` asked for and
  whether the id is served). A record never changes once generated (an insert adds new
  rids), so the cache is never stale; it only saves the work of rendering again when pages
  overlap or a range is pulled twice (a page cache keyed by the query, in ``_state.py``,
  misses when the same records come under other parameters).

Memory: a record with every field is about 1.3 kB, so a million of them would take about
1.4 GB with Python's overhead; the cache holds at most ``limit_bytes`` (``SimConfig
.record_cache_mb``, 256 MB by default; 0 turns it off): when full, it drops the projections
least recently used, then keeps no more (see :class:`RecordCache`).
"""

from __future__ import annotations

from collections import OrderedDict

import orjson

from ._columns import FIELD_COLUMNS, PageColumns, Tables
from ._config import FaultConfig
from ._data import Dataset

__all__ = ["PageRenderer", "RecordCache"]

#: how a record's id is served: as it is, as ``"id": null``, or not at all
KEEP, NULL, DROP = "keep", "null", "drop"
#: what a cached record costs beyond its bytes (the dict slot, the int key, the header)
ENTRY_OVERHEAD = 100


class _Projection:
    """A record template for one ``fields`` tuple and one way of serving the id."""

    def __init__(self, fields: tuple[str, ...], id_mode: str) -> None:
        self.key = (fields, id_mode)
        names = [name for name in fields if not (name == "id" and id_mode == DROP)]
        self.columns = [FIELD_COLUMNS[name][1] for name in names if name != "id" or id_mode == KEEP]
        parts = [
            b'"id":null' if name == "id" and id_mode == NULL
            else orjson.dumps(name) + b":" + FIELD_COLUMNS[name][0]
            for name in names
        ]
        self.template = b"{" + b",".join(parts) + b"}"
        self.constant = not self.columns  # e.g. fields=id served without ids: every record is {}


class RecordCache:
    """Rendered records by projection and rid, at most ``limit_bytes`` in all (approximate:
    each record's bytes plus :data:`ENTRY_OVERHEAD`).

    When a page does not fit, the least recently used *other* projections are dropped whole;
    when the page's own projection fills the budget alone, the page is not kept (the records
    already kept stay: a range pulled again finds its start, where dropping the oldest
    records first would, on a range larger than the budget, never find any).
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.size = 0
        self._by_projection: OrderedDict[tuple[object, ...], dict[int, bytes]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> dict[int, bytes] | None:
        """The records of one projection, by rid (do not modify: use :meth:`add`)."""
        found = self._by_projection.get(key)
        if found is not None:
            self._by_projection.move_to_end(key)
        return found

    def add(self, key: tuple[object, ...], rids: list[int], records: list[bytes]) -> None:
        """Keep ``records`` (rendered for ``rids``) under projection ``key``, within budget."""
        cost = sum(map(len, records)) + ENTRY_OVERHEAD * len(records)
        while self.size + cost > self.limit_bytes:
            others = [k for k in self._by_projection if k != key]
            if not others:
                return
            dropped = self._by_projection.pop(others[0])
            self.size -= sum(map(len, dropped.values())) + ENTRY_OVERHEAD * len(dropped)
        target = self._by_projection.setdefault(key, {})
        self._by_projection.move_to_end(key)
        for rid, record in zip(rids, records, strict=True):
            if rid not in target:
                target[rid] = record
                self.size += len(record) + ENTRY_OVERHEAD

    @property
    def records(self) -> int:
        """How many rendered records are kept, over every projection."""
        return sum(map(len, self._by_projection.values()))

    def clear(self) -> None:
        """Forget every record."""
        self._by_projection.clear()
        self.size = 0


class PageRenderer:
    """Renders the body of a list answer, ``{"count": N, "items": [...]}``, for a data set.

    ``body(count, rids, fields, faults)`` equals ``orjson.dumps({"count": count, "items":
    select(dataset, rids, fields, faults)})`` byte for byte, at a fraction of its CPU.
    """

    def __init__(self, dataset: Dataset, cache_bytes: int = 256 << 20) -> None:
        self.tables = Tables(dataset)
        self.cache = RecordCache(cache_bytes)
        self._projections: dict[tuple[tuple[str, ...], str], _Projection] = {}

    def _projection(self, fields: tuple[str, ...], id_mode: str) -> _Projection:
        key = (fields, id_mode)
        found = self._projections.get(key)
        if found is None:
            if len(self._projections) >= 256:  # any subset of FIELDS may come: stay bounded
                self._projections.clear()
            found = self._projections[key] = _Projection(fields, id_mode)
        return found

    def render(self, rids: list[int], projection: _Projection) -> list[bytes]:
        """The records ``rids`` rendered with ``projection``, without the cache."""
        if projection.constant:
            return [projection.template] * len(rids)
        page = PageColumns(self.tables, rids)
        columns = [column(page) for column in projection.columns]
        return list(map(projection.template.__mod__, zip(*columns, strict=True)))

    def records(self, rids: list[int], fields: tuple[str, ...], id_mode: str = KEEP) -> list[bytes]:
        """The records ``rids`` with the keys ``fields`` (the id as ``id_mode`` says)."""
        projection = self._projection(fields, id_mode)
        cached = self.cache.get(projection.key)
        out = [cached.get(rid) for rid in rids] if cached else [None] * len(rids)
        missing = [rid for rid, record in zip(rids, out, strict=True) if record is None]
        if not missing:
            return out  # type: ignore[return-value]  # no None left
        rendered = self.render(missing, projection)
        self.cache.add(projection.key, missing, rendered)
        if len(missing) == len(rids):
            return rendered
        fill = iter(rendered)
        return [record if record is not None else next(fill) for record in out]

    def body(
        self, count: int, rids: list[int], fields: tuple[str, ...], faults: FaultConfig | None
    ) -> bytes:
        """The whole list body (``count`` is the ``count`` to report), as served under
        ``faults`` (``None``: every record keeps its id)."""
        head = b'{"count":%d,"items":[' % count
        if not rids:
            return head + b"]}"
        every = faults.missing_id_every if faults is not None and "id" in fields else 0
        without = [(rid + 1) % every == 0 for rid in rids] if every else []
        if any(without):
            assert faults is not None
            mode = NULL if faults.missing_id_null else DROP
            kept = self.records([r for r, w in zip(rids, without, strict=True) if not w], fields)
            lost = self.records([r for r, w in zip(rids, without, strict=True) if w], fields, mode)
            kept_iter, lost_iter = iter(kept), iter(lost)
            records = [next(lost_iter) if w else next(kept_iter) for w in without]
        else:
            records = self.records(rids, fields)
        records[0] = head + records[0]  # a fresh list: the cache holds the records themselves
        records[-1] += b"]}"
        return b",".join(records)
