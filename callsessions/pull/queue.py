"""What the engine's producer puts in its queue, in order (window markers and page requests,
a page whose body waits as bytes until its turn), what its consumer keeps of the window it
reads, and how leftovers are dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from attrs import define, field, frozen

from callsessions.protocol.planning import Window
from callsessions.protocol.records import Page
from callsessions.protocol.walk import WindowWalk

__all__ = [
    "END",
    "Failure",
    "PageFetcher",
    "Parsed",
    "PendingFetcher",
    "PendingPage",
    "WindowEnd",
    "WindowStart",
    "WindowState",
    "discard",
    "done",
    "reap",
]

T = TypeVar("T")


#: fetch(window, offset, limit) -> Page of records (structured or raw)
PageFetcher = Callable[[Window, int, int], Awaitable[Page[T]]]


class PendingPage(Protocol[T]):
    """A page whose body has arrived but is not parsed yet: ``parse()`` raises
    ``DecodeError`` when the body turns out to be broken."""

    @property
    def offset(self) -> int: ...

    @property
    def limit(self) -> int: ...

    def parse(self) -> Page[T]: ...

    def count_hint(self) -> int | None:
        """The total count, if it can be read without parsing the body (None if not)."""
        ...


#: fetch_pending(window, offset, limit) -> a page to parse when its turn comes
PendingFetcher = Callable[[Window, int, int], Awaitable[PendingPage[T]]]


@frozen
class Parsed(Generic[T]):
    """A page parsed already (a fake transport's, or one the producer had to read)."""

    page: Page[T]

    @property
    def offset(self) -> int:
        return self.page.offset

    @property
    def limit(self) -> int:
        return self.page.limit or 0

    def parse(self) -> Page[T]:
        return self.page

    def count_hint(self) -> int | None:
        return self.page.count


@frozen
class WindowStart:
    index: int
    window: Window
    #: offsets below this are requested by the producer (None: by the window's own count)
    planned: int | None


@frozen
class WindowEnd:
    index: int
    window: Window
    #: offsets below this were requested by the producer
    covered: int


@frozen
class Failure:
    error: BaseException


END = object()


def discard(fut: Any) -> None:
    """Drop a queued request: cancel it, or take its outcome so none goes unretrieved."""
    if not fut.done():
        fut.cancel()
    elif not fut.cancelled():
        fut.exception()


def done(page: Page[T]) -> asyncio.Future[PendingPage[T]]:
    fut: asyncio.Future[PendingPage[T]] = asyncio.get_running_loop().create_future()
    fut.set_result(Parsed(page))
    return fut


@define
class WindowState(Generic[T]):
    """What the consumer knows of the window it is reading: its walk (the decisions), and
    the scheduling around it."""

    index: int
    walk: WindowWalk[T]
    first: bool = True
    #: the count that made this window too full to read; its pages are skipped, and it is
    #: pulled again as sub-windows
    overflow: int | None = None
    wasted: int = 0
    #: offsets below this were requested by the producer
    planned: int | None = None
    #: pages past the plan's estimate, requested as soon as the first page told the count
    tail: list[asyncio.Future[Any]] = field(factory=list)
    tail_end: int = 0

    @property
    def window(self) -> Window:
        return self.walk.window


async def reap(
    queue: asyncio.Queue[Any], producer: asyncio.Future[Any], tasks: set[asyncio.Future[Any]]
) -> None:
    """Leaving (done, failed, or the caller left early): cancel the producer and every
    request still in flight or queued, and wait for them, so that no task outlives the pull."""
    producer.cancel()
    pending: list[Any] = [producer, *tasks]
    while not queue.empty():
        left = queue.get_nowait()
        if isinstance(left, asyncio.Future):
            pending.append(left)
    for fut in pending:
        fut.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
