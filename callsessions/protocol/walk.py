"""One window's walk as plain logic: feed it pages, it says what to deliver and ask next.

Like h11 for HTTP/1.1, this holds no socket and no event loop: the pull engine
(``callsessions.pull.engine``) does the requests and hands each answer in; the walk decides.
Its tests are tables of (pages in, decisions out).

::

    walk = WindowWalk(window, settings, ident=lambda r: r["id"], summary=summary)
    fresh = walk.take(page)                  # records not seen before in this window
    walk.tail(covered)                       # pages the count needs beyond those asked
    while requests := walk.verification():   # (window, offset, limit) to fetch again
        recovered += walk.take_verification(list(zip(requests, pages)))
    walk.problem()                           # None when every id of the count arrived

Decisions and the errors they raise:

* a record without ``id`` -> ``MissingIdError`` (it can be neither de-duplicated nor
  counted);
* a page holding exactly the previous page's ids -> ``PaginationError`` (the server
  ignores the offset: the walk would spin);
* a page whose first or last record is dated outside the window -> ``PaginationError``
  (the server ignores the range);
* an id seen before in the window (or, with ``delivered``, in the pull) -> dropped;
* a count that reaches the offset ceiling -> ``overflows``: the window must be ``split``
  (a count at the ceiling may be a capped total); a window too short to split ->
  ``IncompletePullError``;
* fewer unique ids than the count at the end -> one-page slices, then re-walks, within a
  budget of twice the window's pages in requests; what is still missing -> ``problem()``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs
from attrs import define, field

from callsessions.errors import IncompletePullError, MissingIdError, PaginationError
from callsessions.protocol.planning import PullSettings, Window, page_offsets, split_window
from callsessions.protocol.records import Page
from callsessions.protocol.summary import PullSummary, WindowProblem

__all__ = ["Request", "WindowWalk", "check_advanced", "next_uncounted", "page_ids"]

T = TypeVar("T")

#: (window, offset, limit) of one page request
Request = tuple[Window, int, int]


def page_ids(items: list[T], ident: Callable[[T], Any], window: Window) -> list[Any]:
    """The ids of a page's records; a record without one stops the pull (``MissingIdError``):
    it could be neither de-duplicated nor counted, so the window could not be verified."""
    ids = [ident(r) for r in items]
    if None in ids:
        raise MissingIdError(
            f"{ids.count(None)} of {len(ids)} records of a page of window {window} have no "
            "'id' (absent or null), so the window cannot be verified; the server must send "
            "'id' for every record",
            window=str(window),
        )
    return ids


def next_uncounted(
    window: Window, settings: PullSettings, page: Page[T], offset: int
) -> tuple[int, int] | None:
    """For a server that sends no count: ``(offset, limit)`` of the page after ``page``
    (which was asked at ``offset``), or None after a short page (the window's end). Past the
    ceiling nothing can tell how many are left: ``IncompletePullError``."""
    if page.limit is None or len(page.items) < page.limit:
        return None
    offset += settings.page_size
    if offset + 1 > settings.capacity:
        raise IncompletePullError(
            f"window {window} reaches the offset ceiling and the server sends no "
            "count to split it by; use a narrower range",
            [WindowProblem(window, offset, offset, "no count, over the ceiling")],
        )
    return offset, min(settings.page_size, settings.capacity - offset)


def check_advanced(
    window: Window, previous: Page[T], page: Page[T], ident: Callable[[T], Any]
) -> None:
    """A page holding exactly the previous page's ids means the server ignores the offset:
    a walk would spin (``PaginationError``)."""
    ids = page_ids(page.items, ident, window)
    if ids and ids == page_ids(previous.items, ident, window):
        raise PaginationError(
            f"the page at offset {page.offset} repeats the previous page's ids: the "
            "server ignores the offset (check the wire names)"
        )


@define
class WindowWalk(Generic[T]):
    """What is known of one window while it is read, and what to do next."""

    window: Window
    settings: PullSettings
    ident: Callable[[T], Any]
    summary: PullSummary = field(factory=PullSummary)
    #: a record's value of the pull's date column (None when it is not in the record)
    date_of: Callable[[T], datetime | None] | None = None
    #: ids delivered so far by the whole pull, when de-duplicating across windows
    delivered: set[Any] | None = None
    max_rewalks: int = 3
    #: unique ids gathered
    seen: set[Any] = field(factory=set)
    #: the largest count any page reported (None: the server sends none)
    count: int | None = None
    _previous_ids: list[Any] | None = None
    # verification: requests spent, full re-walks done, slices still to read
    _spent: int = 0
    _rounds: int = 0
    _rest_pending: bool = False
    _slices: list[tuple[Window, int]] | None = None
    _slice_rounds: int = 0
    _budget: int | None = None

    # -- reading ------------------------------------------------------------------------

    def overflows(self, count: int | None) -> bool:
        """Whether a first page's ``count`` means the window must be split."""
        return count is not None and self.settings.overflows(count)

    def split(self, count: int) -> list[Window]:
        """Sub-windows sized to ``count``; ``IncompletePullError`` when too short to cut."""
        subs = split_window(self.window, count, self.settings)
        if len(subs) == 1:
            raise IncompletePullError(
                f"window {self.window} holds {count} records, more than the offset ceiling "
                f"{self.settings.offset_ceiling} allows, and is too short to split further; "
                "raise offset_ceiling or narrow the query",
                [WindowProblem(self.window, count, 0, "over the offset ceiling")],
            )
        return subs

    def take(self, page: Page[T]) -> Page[T]:
        """Record a page's ids; the page with only the records not seen before."""
        ids = page_ids(page.items, self.ident, self.window)
        if self._previous_ids is not None and ids and ids == self._previous_ids:
            raise PaginationError(
                f"the page at offset {page.offset} holds exactly the ids of the "
                "previous page: the server ignores the offset (check the wire names)"
            )
        self._previous_ids = ids
        if self.date_of is not None and page.items:
            self._check_range(page)
        seen = self.seen
        if seen.isdisjoint(ids) and len(set(ids)) == len(ids):
            fresh = page
            seen.update(ids)
        else:
            fresh = attrs.evolve(page, items=self._new(page.items, ids))
        if self.delivered is not None:
            fresh = attrs.evolve(fresh, items=self._once_per_pull(fresh.items))
        self.summary.records += len(fresh.items)
        self.summary.pages += 1
        if page.count is not None:
            # The largest count seen: pages complete out of order, and with records inserted
            # meanwhile only the newest count covers every id gathered.
            self.count = page.count if self.count is None else max(self.count, page.count)
        return fresh

    def tail(self, covered: int) -> list[tuple[int, int]]:
        """``(offset, limit)`` of the pages the count needs past ``covered`` (offsets below
        it were asked for already), within the ceiling."""
        count = self.count
        if count is None or count <= covered or covered >= self.settings.capacity:
            return []
        return page_offsets(count, self.settings.page_size, self.settings.capacity, covered)

    def _check_range(self, page: Page[T]) -> None:
        """A page's first and last records (it is sorted by the date column) must lie in
        the window. Both ends are accepted: API.md does not say whether ``to`` is
        inclusive."""
        assert self.date_of is not None
        for record in (page.items[0], page.items[-1]):
            moment = self.date_of(record)
            if moment is not None and not self.window.start <= moment <= self.window.end:
                raise PaginationError(
                    f"a record dated {moment.isoformat()} came back for the window "
                    f"{self.window}: the server ignores the range (check the wire names of "
                    "start, end and date_field)"
                )

    def _new(self, items: list[T], ids: list[Any]) -> list[T]:
        kept: list[T] = []
        seen = self.seen
        for record, key in zip(items, ids, strict=True):
            if key not in seen:
                seen.add(key)
                kept.append(record)
        self.summary.duplicates_dropped += len(items) - len(kept)
        return kept

    def _once_per_pull(self, items: list[T]) -> list[T]:
        """Drop records the pull delivered already in another window (a call whose date
        column changed while pulling, with ``dedupe="pull"``)."""
        assert self.delivered is not None
        delivered, out = self.delivered, []
        for r in items:
            key = self.ident(r)
            if key in delivered:
                self.summary.duplicates_dropped += 1
            else:
                delivered.add(key)
                out.append(r)
        return out

    # -- verification -------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.count is None or len(self.seen) >= self.count

    @property
    def budget(self) -> int:
        """Requests verification may spend: twice the window's own pages (by the count
        when verification began)."""
        if self._budget is None:
            self._budget = 2 * max(1, -(-(self.count or 0) // self.settings.page_size))
        return self._budget

    def verification(self) -> list[Request]:
        """The next requests that may complete the window (empty: nothing more to try).

        First slices of the window small enough for one page each: one request returns all
        of a slice's records, so neither ties shuffled between requests nor shifting offsets
        can hide one (a slice still too full is cut again, down to the resolution). Then,
        with what is left of the budget, up to ``max_rewalks`` whole walks (the first page,
        then the rest by its count). All within ``budget`` requests."""
        if self.complete:
            return []
        if self._slices is None:
            self._slices = [(self.window, self.count or 0)]
        if self._slices and self._slice_rounds < self.max_rewalks + 4:
            requests = self._slice_requests()
            if requests:
                return requests
        self._slices = []  # slicing is over: whole walks from here on
        return self._walk_requests()

    def _slice_requests(self) -> list[Request]:
        assert self._slices is not None
        P = self.settings.page_size
        one_page = attrs.evolve(self.settings, offset_ceiling=P, fill=1.0)
        parts = [p for w, c in self._slices for p in split_window(w, max(c, P + 1), one_page)]
        if len(parts) > self.budget - self._spent or parts == [w for w, _ in self._slices]:
            return []  # no room, or nothing left to cut
        self._slice_rounds += 1
        self.summary.rewalks += 1
        return self._spend([(p, 0, P) for p in parts])

    def _walk_requests(self) -> list[Request]:
        P = self.settings.page_size
        room = self.budget - self._spent
        if self._rest_pending:
            self._rest_pending = False
            rest = page_offsets(self.count or 0, P, self.settings.capacity, P)[:room]
            if rest:
                return self._spend([(self.window, o, n) for o, n in rest])
        if self._rounds < self.max_rewalks and room >= 1:
            self._rounds += 1
            self._rest_pending = True
            self.summary.rewalks += 1
            return self._spend([(self.window, 0, P)])
        return []

    def _spend(self, requests: list[Request]) -> list[Request]:
        self._spent += len(requests)
        return requests

    def take_verification(self, answers: list[tuple[Request, Page[T]]]) -> list[T]:
        """Feed the answers to ``verification()``'s requests; the records not seen before."""
        found: list[T] = []
        slices: list[tuple[Window, int]] = []
        slicing = bool(self._slices)
        for (part, offset, _limit), page in answers:
            self.summary.pages += 1
            if part == self.window and offset == 0 and page.count is not None:
                # A re-walk's first page sets the count it aims for (later pages of the same
                # walk may count records inserted meanwhile: they are not owed).
                self.count = max(self.count or 0, page.count)
            ids = page_ids(page.items, self.ident, part)
            fresh = self._new(page.items, ids)
            found.extend(fresh if self.delivered is None else self._once_per_pull(fresh))
            if slicing:
                overflow = page.count is not None and page.count > len(page.items)
                if overflow and part.length > self.settings.resolution:
                    slices.append((part, page.count or 0))
        if slicing:
            self._slices = slices
        self.summary.records += len(found)
        return found

    def problem(self) -> WindowProblem | None:
        """What is missing after verification (None: complete)."""
        if self.complete:
            return None
        assert self.count is not None
        reason = f"unique ids fell short after re-walks ({self._spent} requests)"
        return WindowProblem(self.window, self.count, len(self.seen), reason)
