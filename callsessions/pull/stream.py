"""The stream a pull hands out: pages or records, in order, with the summary so far."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any, Generic, TypeVar, cast

from callsessions.protocol.records import Page
from callsessions.protocol.summary import PullSummary

__all__ = ["PullStream"]

T = TypeVar("T")


class PullStream(Generic[T]):
    """The async iterator of a pull: pages (``client.pages``) or records
    (``client.sessions``); ``summary`` says what happened so far.

    Leaving early is clean: use ``async with`` (or call ``aclose``) to cancel in-flight
    requests at once; after a plain ``break`` the event loop closes the dropped stream.
    """

    def __init__(
        self, pages: AsyncGenerator[Page[Any], None], summary: PullSummary, *, records: bool
    ) -> None:
        self._pages = pages
        self._records = records
        self._items: Iterator[Any] = iter(())
        self.summary = summary

    def __aiter__(self) -> PullStream[T]:
        return self

    async def __anext__(self) -> T:
        if not self._records:
            page: Any = await self._pages.__anext__()
            return cast(T, page)
        # Records are handed out from the current page's list: no extra generator step per
        # record on the hot path.
        while True:
            try:
                item: T = next(self._items)
                return item
            except StopIteration:
                self._items = iter((await self._pages.__anext__()).items)

    async def aclose(self) -> None:
        await self._pages.aclose()

    async def __aenter__(self) -> PullStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
