"""One window's walk, without an event loop: tables of (pages in, decisions out)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from callsessions import (
    IncompletePullError,
    MissingIdError,
    Page,
    PaginationError,
    PullSettings,
    PullSummary,
    Window,
)
from callsessions.protocol.walk import WindowWalk, check_advanced, next_uncounted

START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
WINDOW = Window(START, START + timedelta(hours=1))
SETTINGS = PullSettings(page_size=2, offset_ceiling=10)


def rec(i: int, minute: int = 1) -> dict[str, Any]:
    return {"id": f"r{i}", "createdAt": (START + timedelta(minutes=minute)).isoformat()}


def page(ids: list[int], count: int | None, offset: int = 0, **record: Any) -> Page[Any]:
    return Page([{**rec(i), **record} for i in ids], count, offset, SETTINGS.page_size)


def date_of(r: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(r["createdAt"]) if r.get("createdAt") else None


def walk(**changes: Any) -> WindowWalk[Any]:
    options: dict[str, Any] = {"date_of": date_of, "summary": PullSummary()}
    options.update(changes)
    return WindowWalk(WINDOW, SETTINGS, lambda r: r.get("id"), **options)


@pytest.mark.parametrize(
    ("pages", "delivered", "duplicates", "count"),
    [
        ([([1, 2], 4), ([3, 4], 4)], ["r1", "r2", "r3", "r4"], 0, 4),
        ([([1, 2], 4), ([2, 3], 4)], ["r1", "r2", "r3"], 1, 4),  # a tie moved across pages
        ([([1, 2], 3), ([3], 5)], ["r1", "r2", "r3"], 0, 5),  # the largest count wins
        ([([1, 1], 2)], ["r1"], 1, 2),  # twice in one page
    ],
)
def test_take_delivers_each_id_once_and_keeps_the_largest_count(
    pages: list[tuple[list[int], int]], delivered: list[str], duplicates: int, count: int
) -> None:
    w = walk()
    got = [r["id"] for ids, n in pages for r in w.take(page(ids, n)).items]
    assert got == delivered
    assert w.summary.duplicates_dropped == duplicates
    assert w.count == count and w.summary.records == len(delivered)


@pytest.mark.parametrize(
    ("first", "second", "error", "says"),
    [
        (page([1, 2], 4), page([1, 2], 4, offset=2), PaginationError, "ignores the offset"),
        (page([1], 1), Page([{"id": "x", "createdAt": "2026-02-01T00:00:00+00:00"}], 2, 1, 2),
         PaginationError, "ignores the range"),
        (page([1], 2), Page([{"createdAt": START.isoformat()}], 2, 1, 2), MissingIdError,
         "have no 'id'"),
        (page([1], 2), Page([{"id": None}], 2, 1, 2), MissingIdError, "have no 'id'"),
    ],
    ids=["same-ids-twice", "out-of-range", "no-id", "null-id"],
)
def test_pages_that_prove_the_walk_wrong_stop_it(
    first: Page[Any], second: Page[Any], error: type[Exception], says: str
) -> None:
    w = walk()
    w.take(first)
    with pytest.raises(error, match=says):
        w.take(second)


@pytest.mark.parametrize(
    ("count", "overflows"), [(None, False), (9, False), (10, True), (99, True)]
)
def test_a_count_at_the_ceiling_means_split(count: int | None, overflows: bool) -> None:
    assert walk().overflows(count) is overflows


def test_split_cuts_by_time_and_a_window_too_short_is_an_error() -> None:
    parts = walk().split(30)
    assert parts[0].start == WINDOW.start and parts[-1].end == WINDOW.end
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    one_second = Window(START, START + timedelta(seconds=1))
    short: WindowWalk[Any] = WindowWalk(one_second, SETTINGS, lambda r: r["id"])
    with pytest.raises(IncompletePullError, match="too short to split"):
        short.split(30)


@pytest.mark.parametrize(
    ("count", "covered", "tail"),
    [(5, 4, [(4, 2)]), (4, 4, []), (9, 2, [(2, 2), (4, 2), (6, 2), (8, 2)]), (20, 10, [])],
)
def test_tail_asks_for_the_pages_the_count_needs(
    count: int, covered: int, tail: list[tuple[int, int]]
) -> None:
    w = walk()
    w.take(page([1], count))
    assert w.tail(covered) == tail


def test_a_complete_window_needs_no_verification() -> None:
    w = walk()
    w.take(page([1, 2], 2))
    assert w.verification() == [] and w.problem() is None


def test_a_short_window_is_read_again_in_slices_and_the_missing_record_recovered() -> None:
    w = walk()
    w.take(page([1, 2], 3))  # the count says 3; r3 never came (a shuffled tie, say)
    slices = w.verification()
    assert [(o, n) for _, o, n in slices] == [(0, 2)] * len(slices) and len(slices) == 2
    assert slices[0][0].start == WINDOW.start and slices[-1][0].end == WINDOW.end
    answers = [(slices[0], page([1, 2], 2)), (slices[1], page([3], 1))]
    assert [r["id"] for r in w.take_verification(answers)] == ["r3"]
    assert w.verification() == [] and w.problem() is None
    assert w.summary.rewalks == 1 and w.summary.records == 3


def test_when_slices_cannot_help_the_window_is_walked_again() -> None:
    second = Window(START, START + timedelta(seconds=1))  # too short to cut
    w: WindowWalk[Any] = WindowWalk(second, SETTINGS, lambda r: r["id"], PullSummary())
    w.take(page([1, 2], 3))
    first = w.verification()
    assert first == [(second, 0, 2)]
    w.take_verification([(first[0], page([1, 2], 3))])
    rest = w.verification()
    assert rest == [(second, 2, 2)]
    assert [r["id"] for r in w.take_verification([(rest[0], page([3], 3, offset=2))])] == ["r3"]
    assert w.verification() == [] and w.problem() is None


def test_a_count_that_lies_stops_within_twice_the_windows_pages() -> None:
    w = walk()
    w.take(page([1, 2], 6))
    w.take(page([3, 4], 6, offset=2))  # 6 promised, 4 exist
    asked = 0
    while requests := w.verification():
        asked += len(requests)
        w.take_verification([(r, page([], 6, offset=r[1])) for r in requests])
    assert asked <= w.budget == 6
    problem = w.problem()
    assert problem is not None and (problem.expected, problem.gathered) == (6, 4)
    assert "fell short" in problem.reason


def test_slices_are_read_one_page_each_after_the_re_walks() -> None:
    w = walk(max_rewalks=0)
    w.take(page([1, 2], 3))
    slices = w.verification()
    assert len(slices) > 1 and all(o == 0 and n == 2 for _, o, n in slices)
    assert slices[0][0].start == WINDOW.start and slices[-1][0].end == WINDOW.end


def test_dedupe_across_the_pull_drops_ids_another_window_delivered() -> None:
    delivered = {"r1"}
    w = walk(delivered=delivered)
    assert [r["id"] for r in w.take(page([1, 2], 2)).items] == ["r2"]
    assert delivered == {"r1", "r2"} and w.summary.duplicates_dropped == 1


@pytest.mark.parametrize(
    ("items", "offset", "step"),
    [([1, 2], 0, (2, 2)), ([1], 0, None), ([], 4, None), ([1, 2], 6, (8, 2))],
)
def test_without_a_count_the_walk_goes_on_until_a_short_page(
    items: list[int], offset: int, step: tuple[int, int] | None
) -> None:
    assert next_uncounted(WINDOW, SETTINGS, page(items, None, offset), offset) == step


def test_without_a_count_the_ceiling_is_an_error_and_a_repeated_page_stops_the_walk() -> None:
    with pytest.raises(IncompletePullError, match="sends no count"):
        next_uncounted(WINDOW, SETTINGS, page([1, 2], None, 8), 8)
    with pytest.raises(PaginationError, match="repeats the previous page"):
        check_advanced(WINDOW, page([1, 2], None), page([1, 2], None, 2), lambda r: r["id"])
    check_advanced(WINDOW, page([1, 2], None), page([3], None, 2), lambda r: r["id"])
