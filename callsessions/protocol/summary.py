"""What a pull did, as plain values: the summary and the windows that fell short."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
from attrs import define, field, frozen

from callsessions.protocol.planning import Window

__all__ = ["PullSummary", "WindowProblem"]


def _n(count: int, one: str, many: str | None = None) -> str:
    """``1 retry``, ``2 retries``."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


@frozen
class WindowProblem:
    """A window that could not be gathered completely: how many records its count promised
    and how many unique ones arrived."""

    window: Window
    expected: int
    gathered: int
    reason: str

    def __str__(self) -> str:
        return f"{self.window}: {self.gathered} of {self.expected} records ({self.reason})"


@define
class PullSummary:
    """What a pull did. ``requests`` counts every HTTP attempt, retries included;
    ``planning_requests`` those spent counting and splitting rather than on pages."""

    records: int = 0
    windows: int = 0
    pages: int = 0
    requests: int = 0
    planning_requests: int = 0
    retries: int = 0
    throttled: int = 0
    throttled_seconds: float = 0.0
    rewalks: int = 0
    splits: int = 0
    duplicates_dropped: int = 0
    lowest_concurrency: int = 0
    elapsed: float = 0.0
    problems: list[WindowProblem] = field(factory=list)
    #: the pace in force at the end (requests/s), None if the server never throttled
    rate: float | None = None
    #: structured records only: values of an unexpected type kept as they came, by field
    type_mismatches: Counter[str] = field(factory=Counter)

    @property
    def complete(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["problems"] = [str(p) for p in self.problems]
        out["type_mismatches"] = dict(self.type_mismatches)
        out["complete"] = self.complete
        return out

    def line(self) -> str:
        """One human line: records, windows, requests, retries, time, throughput."""
        rate = self.records / self.elapsed if self.elapsed > 0 else 0.0
        text = (
            f"{_n(self.records, 'record')} in {_n(self.windows, 'window')}, "
            f"{_n(self.requests, 'request')} ({self.planning_requests} planning), "
            f"{_n(self.retries, 'retry', 'retries')}"
        )
        if self.throttled:
            text += f" ({self.throttled} throttled, {self.throttled_seconds:.1f}s waited"
            text += f", paced at {self.rate:.1f} req/s)" if self.rate is not None else ")"
        if self.rewalks:
            text += f", {_n(self.rewalks, 're-walk')}"
        text += f", {self.elapsed:.1f}s, {rate:,.0f} records/s"
        if self.problems:
            text += f"; INCOMPLETE: {_n(len(self.problems), 'window')}"
        return text


