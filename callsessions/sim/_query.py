"""Evaluating a parsed :class:`Query` on a Dataset: ordered result sets, sort keys, caching.

Parsing and validating the wire parameters is ``_params.py``'s work; its names are
re-exported here, where they used to live.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ._data import STATUS_INDEX, Dataset
from ._params import DEFAULT_LIMIT, EXPORT_FORMATS, MAX_LIMIT, ParamError, Query, parse_query

__all__ = [
    "DEFAULT_LIMIT",
    "EXPORT_FORMATS",
    "MAX_LIMIT",
    "ParamError",
    "Query",
    "QueryEngine",
    "Result",
    "parse_query",
]


SortKey = Callable[[int], tuple[Any, ...]]


def _null_filled(column: array[float], fill: float) -> Callable[[int], float]:
    def key(rid: int) -> float:
        v = column[rid]
        return v if v == v else fill

    return key


class Result:
    """The records matching a query, in sort order: ``count`` and ``rids(start, stop)``.

    Either a slice of the data set's ``createdAt`` order (no materialised list), or an
    explicit array of rids.
    """

    def __init__(
        self,
        *,
        key: SortKey,
        base: array[int],
        lo: int,
        hi: int,
        reverse: bool,
    ) -> None:
        self.key = key
        self._base = base
        self._lo = lo
        self._hi = hi
        self._reverse = reverse
        self.count = hi - lo

    def rid_at(self, pos: int) -> int:
        """The rid at position ``pos`` (0-based) of the ordered result."""
        if self._reverse:
            return self._base[self._hi - 1 - pos]
        return self._base[self._lo + pos]

    def rids(self, start: int, stop: int) -> list[int]:
        """The rids at positions ``[start, stop)`` of the ordered result."""
        start = max(0, min(start, self.count))
        stop = max(start, min(stop, self.count))
        if self._reverse:
            a = self._hi - stop
            b = self._hi - start
            return self._base[a:b].tolist()[::-1]
        return self._base[self._lo + start : self._lo + stop].tolist()

    def shuffled_rids(self, start: int, stop: int, rng: random.Random) -> list[int]:
        """Like :meth:`rids`, as if every group of equal sort keys were shuffled anew.

        Only the groups that overlap the page are touched; the page's share of a large group
        is a random sample of it, which is what a full shuffle would put there.
        """
        start = max(0, min(start, self.count))
        stop = max(start, min(stop, self.count))
        out: list[int] = []
        key = self.key
        positions = range(self.count)

        def pos_key(pos: int) -> tuple[Any, ...]:
            return key(self.rid_at(pos))

        pos = start
        while pos < stop:
            k = pos_key(pos)
            group_start = bisect_left(positions, k, 0, pos + 1, key=pos_key)
            group_end = bisect_right(positions, k, pos, self.count, key=pos_key)
            take_to = min(stop, group_end)
            size = group_end - group_start
            chosen = rng.sample(range(size), take_to - pos) if size > 1 else [0]
            out.extend(self.rid_at(group_start + c) for c in chosen)
            pos = take_to
        return out


class QueryEngine:
    """Evaluates queries on a Dataset, caching result sets per (filter, sort).

    The cache is dropped whenever the data set's ``version`` changes (an insert).
    """

    def __init__(self, dataset: Dataset, cache_size: int = 32) -> None:
        self.dataset = dataset
        self._cache: OrderedDict[tuple[Any, ...], array[int]] = OrderedDict()
        self._cache_version = dataset.version
        self._cache_size = cache_size

    def sort_key(self, sort: tuple[tuple[str, bool], ...]) -> SortKey:
        """A key function on rids, non-decreasing along the result's order.

        Missing values (a null ``startedAt``) sort last in both directions.
        """
        ds = self.dataset
        columns: dict[str, array[float] | array[int]] = {
            "createdAt": ds.created,
            "updatedAt": ds.updated,
            "startedAt": ds.started,
            "duration": ds.duration,
        }
        parts = [(columns[name], -1.0 if desc else 1.0) for name, desc in sort]

        def key(rid: int) -> tuple[Any, ...]:
            out: list[Any] = []
            for column, sign in parts:
                v = column[rid]
                if v != v:  # NaN: null
                    out.append((1, 0.0))
                else:
                    out.append((0, sign * v))
            return tuple(out)

        return key

    def evaluate(self, query: Query) -> Result:
        """The ordered result set of ``query`` (paging is not applied)."""
        ds = self.dataset
        key = self.sort_key(query.sort)
        fk = query.filter_key
        only_created_window = fk[0] == "createdAt" and all(v is None for v in fk[3:])
        if only_created_window and query.sort[0][0] == "createdAt" and len(query.sort) == 1:
            lo, hi = ds.window(query.start, query.end)
            return Result(key=key, base=ds.order, lo=lo, hi=hi, reverse=query.sort[0][1])
        rids = self._sorted(query, key)
        return Result(key=key, base=rids, lo=0, hi=len(rids), reverse=False)

    def _lookup(self, cache_key: tuple[Any, ...]) -> array[int] | None:
        if self._cache_version != self.dataset.version:
            self._cache.clear()
            self._cache_version = self.dataset.version
        found = self._cache.get(cache_key)
        if found is not None:
            self._cache.move_to_end(cache_key)
        return found

    def _store(self, cache_key: tuple[Any, ...], value: array[int]) -> None:
        self._cache[cache_key] = value
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _sorted(self, query: Query, key: SortKey) -> array[int]:
        cache_key = ("sorted", query.filter_key, query.sort)
        found = self._lookup(cache_key)
        if found is not None:
            return found
        matched = self._matching(query)
        if query.sort == (("createdAt", False),):
            result = matched
        else:
            result = array("q", self._sort(matched, query.sort))
        self._store(cache_key, result)
        return result

    def _sort(self, rids: array[int], sort: tuple[tuple[str, bool], ...]) -> list[int]:
        """Sort rids (given in createdAt order) by ``sort``: one stable pass per key, last
        key first, so ties keep createdAt order; the same order as :meth:`sort_key`."""
        ds = self.dataset
        out = rids.tolist()
        for name, desc in reversed(sort):
            if name == "startedAt":
                fill = -math.inf if desc else math.inf  # nulls last either way
                out.sort(key=_null_filled(ds.started, fill), reverse=desc)
            else:
                column = {"createdAt": ds.created, "updatedAt": ds.updated}.get(name, ds.duration)
                out.sort(key=column.__getitem__, reverse=desc)
        return out

    def _matching(self, query: Query) -> array[int]:
        """Matching rids in createdAt order."""
        cache_key = ("match", query.filter_key)
        found = self._lookup(cache_key)
        if found is not None:
            return found
        ds = self.dataset
        if query.date_field == "createdAt":
            lo, hi = ds.window(query.start, query.end)
            rids: list[int] | array[int] = ds.order[lo:hi]
        else:
            rids = ds.order
            column = ds.updated if query.date_field == "updatedAt" else ds.started
            a = query.start
            b = query.end
            if a is not None and b is not None:
                rids = [r for r in rids if a <= column[r] < b]
            elif a is not None:
                rids = [r for r in rids if a <= column[r]]
            elif b is not None:
                rids = [r for r in rids if column[r] < b]
        if query.record_id is not None:
            wanted = ds.rid_of(query.record_id)
            rids = [r for r in rids if r == wanted]
        if query.statuses is not None:
            status = ds.status
            wanted_statuses = query.statuses
            rids = [r for r in rids if status[r] in wanted_statuses]
        if query.task_id is not None or query.company_id is not None:
            tasks = {
                i
                for i, task in enumerate(ds.tasks)
                if (query.task_id is None or task.id == query.task_id)
                and (query.company_id is None or task.company_id == query.company_id)
            }
            task_col = ds.task
            rids = [r for r in rids if task_col[r] in tasks]
        if query.phone is not None:
            digits = query.phone.lstrip("+")
            phone_col = ds.phone
            wanted_phone = int(digits) if digits.isdigit() and digits.isascii() else -1
            rids = [r for r in rids if phone_col[r] == wanted_phone]
        if query.keyword is not None:
            rids = self._keyword(rids, query.keyword)
        result = rids if isinstance(rids, array) else array("q", rids)
        self._store(cache_key, result)
        return result

    def _keyword(self, rids: list[int] | array[int], keyword: str) -> list[int]:
        """Case-insensitive substring over phone, taskName, botName, messagesAsString,
        externalId and id."""
        ds = self.dataset
        task_hit = {
            i
            for i, task in enumerate(ds.tasks)
            if keyword in task.name.lower() or keyword in task.bot_name.lower()
        }
        template_hit = {
            i for i, tmpl in enumerate(ds.templates) if keyword in tmpl.as_string.lower()
        }
        answered = STATUS_INDEX["ANSWERED"]
        check_phone = keyword.isdigit()
        check_external = set(keyword) <= set("crm-0123456789")
        check_id = set(keyword) <= set("0123456789abcdef-")
        task_col, tmpl_col, status_col, phone_col = ds.task, ds.template, ds.status, ds.phone
        out: list[int] = []
        for r in rids:
            if (
                task_col[r] in task_hit
                or (status_col[r] == answered and tmpl_col[r] in template_hit)
                or (check_phone and keyword in str(phone_col[r]))
                or (check_external and keyword in ds.external_id(r))
                or (check_id and keyword in ds.id_of(r))
            ):
                out.append(r)
        return out
