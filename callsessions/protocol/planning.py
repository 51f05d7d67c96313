"""Planning a bulk pull, as pure logic: windows, splits, page offsets, the plan value.

A search index will not serve offsets past its ceiling (``offset + limit`` <= 10,000 by
default), so a large range is cut into date windows that each hold fewer records than the
ceiling. Counting every candidate window costs requests, so the planner counts a handful of
equal-time *buckets* of the whole range (``limit=1`` requests) and lays windows out from that
histogram; a window that still turns out too full when its first page arrives is split again
by time, proportionally to its count. Nothing here does I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import orjson
from attrs import field, frozen

from callsessions.errors import InvalidQueryError
from callsessions.protocol.query import SessionQuery

__all__ = [
    "PullPlan",
    "PullSettings",
    "Window",
    "bucket_count",
    "layout_windows",
    "range_check",
    "split_window",
]

ONE_SECOND = timedelta(seconds=1)
#: the fewest equal-time buckets a range that needs windows is counted in
MIN_BUCKETS = 4


@frozen(order=True)
class Window:
    """A half-open date range ``[start, end)`` on the pull's date column.

    ``count`` is the number of matching records when it was last learned (or estimated,
    when ``estimated`` is True); None when unknown.
    """

    start: datetime
    end: datetime
    count: int | None = field(default=None, eq=False, order=False)
    estimated: bool = field(default=False, eq=False, order=False)

    def __attrs_post_init__(self) -> None:
        if not self.start < self.end:
            raise InvalidQueryError("window", (self.start, self.end), "start must be before end")

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "count": self.count,
            "estimated": self.estimated,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            count=data.get("count"),
            estimated=bool(data.get("estimated", False)),
        )

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


@frozen(kw_only=True)
class PullSettings:
    """Knobs of the planner: page size, the offset ceiling, how full a window may be planned
    (``fill`` of the ceiling), and the smallest window length it will split down to."""

    page_size: int = 1000
    offset_ceiling: int = 10_000
    fill: float = 0.8
    resolution: timedelta = ONE_SECOND
    max_buckets: int = 32

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.page_size <= 1000:
            raise InvalidQueryError(
                "page_size", self.page_size, "must be an integer from 1 to 1000"
            )
        if self.offset_ceiling < self.page_size:
            raise InvalidQueryError(
                "offset_ceiling",
                self.offset_ceiling,
                f"must be at least page_size ({self.page_size})",
            )
        if not 0.1 <= self.fill <= 1.0:
            raise InvalidQueryError("fill", self.fill, "must be from 0.1 to 1.0")
        if self.resolution <= timedelta(0):
            raise InvalidQueryError("resolution", self.resolution, "must be positive")
        if self.max_buckets < 1:
            raise InvalidQueryError("max_buckets", self.max_buckets, "must be >= 1")

    @property
    def capacity(self) -> int:
        """The most records one window can hold and still be read below the ceiling."""
        return self.offset_ceiling

    def overflows(self, count: int) -> bool:
        """Whether a window reporting ``count`` must be split. A count that reaches the
        ceiling is read as "at least this many": search indexes commonly cap the total they
        report at the same number as the deepest offset they serve (Elasticsearch's 10,000),
        so such a count proves nothing about the records beyond it."""
        return count >= self.offset_ceiling

    @property
    def target(self) -> int:
        """How many records the planner aims to put in one window."""
        return max(1, int(self.capacity * self.fill))


def page_offsets(count: int, page_size: int, ceiling: int, first: int = 0) -> list[tuple[int, int]]:
    """``(offset, limit)`` of every page of a window of ``count`` records, from ``first``.

    The last page's limit is trimmed so that ``offset + limit`` never passes ``ceiling``.
    """
    out: list[tuple[int, int]] = []
    offset = first
    while offset < count and offset < ceiling:
        out.append((offset, min(page_size, ceiling - offset)))
        offset += page_size
    return out


def bucket_count(total: int, settings: PullSettings) -> int:
    """How many equal-time buckets to count when a range holds ``total`` records.

    About one bucket per five windows' worth of records, at least 4, at most
    ``max_buckets``: enough to see where the records are dense, few enough that counting
    stays a small share of the page requests.
    """
    wanted = math.ceil(total / (settings.target * 5))
    return max(MIN_BUCKETS, min(settings.max_buckets, wanted))


def split_times(
    start: datetime, end: datetime, parts: int, resolution: timedelta
) -> list[datetime]:
    """Cut points of ``[start, end)`` into ``parts`` equal pieces, on ``resolution`` steps.

    Returns the boundaries including ``start`` and ``end``; fewer pieces come back when the
    range is too short to cut that finely.
    """
    if parts < 2 or end - start <= resolution:
        return [start, end]
    step = (end - start) / parts
    points = [start]
    for i in range(1, parts):
        cut = _floor_to(start + step * i, resolution)
        if cut <= points[-1]:
            cut = _floor_to(points[-1], resolution) + resolution
        if cut < end:
            points.append(cut)
    points.append(end)
    return points


def _floor_to(moment: datetime, resolution: timedelta) -> datetime:
    """Round ``moment`` down to a whole multiple of ``resolution`` in epoch time, so that cuts
    fall on whole seconds, as the API's example timestamps do."""
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return epoch + ((moment - epoch) // resolution) * resolution


def split_window(window: Window, count: int, settings: PullSettings) -> list[Window]:
    """Split an over-full window into time slices sized to hold ``settings.target`` each.

    Returns ``[window]`` unchanged when it cannot be cut (no longer than the resolution).
    """
    parts = max(2, math.ceil(count / settings.target))
    points = split_times(window.start, window.end, parts, settings.resolution)
    if len(points) <= 2:
        return [window]
    n = len(points) - 1
    share, rest = divmod(count, n)
    return [
        Window(a, b, count=share + (1 if k < rest else 0), estimated=True)
        for k, (a, b) in enumerate(itertools.pairwise(points))
    ]


def range_check(total: int, counts: Sequence[int]) -> str:
    """Do the counts of disjoint parts of a range fit its total? ``"ok"``, or
    ``"suspect"``: every part counts as much as the whole, or together they count far more.
    Either the server ignores the range, or the total is capped (a search index that reports
    at most N hits): one more count, of a part too small to hold the whole, tells which.
    """
    if len(counts) > 1 and all(c == total for c in counts):
        return "suspect"
    return "suspect" if sum(counts) > total + max(10, total // 2) else "ok"


def layout_windows(buckets: Sequence[Window], settings: PullSettings) -> list[Window]:
    """Windows for a counted histogram: neighbouring sparse buckets are merged up to the
    target, dense ones are split proportionally. Coverage stays complete and contiguous."""
    target = settings.target
    windows: list[Window] = []
    cur_start: datetime | None = None
    cur_end: datetime | None = None
    cur_count = 0

    def flush() -> None:
        nonlocal cur_start, cur_end, cur_count
        if cur_start is not None and cur_end is not None:
            windows.append(Window(cur_start, cur_end, count=cur_count, estimated=True))
        cur_start, cur_end, cur_count = None, None, 0

    for bucket in buckets:
        count = bucket.count or 0
        if count > target:
            flush()
            windows.extend(split_window(bucket, count, settings))
        elif cur_start is not None and cur_count + count <= target:
            cur_end, cur_count = bucket.end, cur_count + count
        else:
            flush()
            cur_start, cur_end, cur_count = bucket.start, bucket.end, count
    flush()
    return windows


@frozen(kw_only=True)
class PullPlan:
    """What to pull: the query and its date windows, in order. A value: serialise it with
    ``to_json`` and hand windows to separate workers (``plan.part(i, n)``)."""

    query: SessionQuery
    windows: tuple[Window, ...]
    settings: PullSettings = PullSettings()
    #: requests spent on counting while planning
    planning_requests: int = 0

    @property
    def estimated_total(self) -> int:
        return sum(w.count or 0 for w in self.windows)

    def select(self, indexes: Sequence[int]) -> PullPlan:
        """A plan with only the windows at ``indexes``, in that order."""
        return attrs.evolve(self, windows=tuple(self.windows[i] for i in indexes))

    def part(self, index: int, parts: int) -> PullPlan:
        """Worker ``index`` of ``parts``: every ``parts``-th window, from ``index``."""
        if not 0 <= index < parts:
            raise InvalidQueryError("index", index, f"must be from 0 to {parts - 1}")
        return attrs.evolve(self, windows=self.windows[index::parts])

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "version": 1,
                "query": self.query.describe(),
                "windows": [w.to_json() for w in self.windows],
                "settings": {
                    "page_size": self.settings.page_size,
                    "offset_ceiling": self.settings.offset_ceiling,
                    "fill": self.settings.fill,
                    "resolution": self.settings.resolution.total_seconds(),
                    "max_buckets": self.settings.max_buckets,
                },
                "planning_requests": self.planning_requests,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> PullPlan:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("version") != 1:
            raise InvalidQueryError("plan", "<json>", "not a callsessions plan (version 1)")
        q = dict(raw["query"])
        for key in ("start", "end"):
            if key in q:
                q[key] = datetime.fromisoformat(q[key])
        s = dict(raw["settings"])
        s["resolution"] = timedelta(seconds=s["resolution"])
        return cls(
            query=SessionQuery(**q),
            windows=tuple(Window.from_json(w) for w in raw["windows"]),
            settings=PullSettings(**s),
            planning_requests=int(raw.get("planning_requests", 0)),
        )
