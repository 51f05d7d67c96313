"""Typed records: a call session and a page of them.

Every attribute is optional, since ``fields`` selects a subset and any field may be null.
Values the API may grow (a new status) are kept as they came: ``status`` is a ``CallStatus``
when known and the raw string otherwise. Fields the record does not know land in ``extra``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from attrs import define, field, frozen

from callsessions.protocol.schema import CallStatus

__all__ = ["JSON", "CallSession", "Page"]

#: A plain JSON value, kept as it came where the API's shape is unknown.
JSON = Any

T = TypeVar("T")


@define(slots=True, eq=True, repr=True)
class CallSession:
    """One outbound robot call. Attribute names are the API's camelCase names in snake_case."""

    id: str | None = None
    phone: str | None = None
    duration: int | None = None
    task_id: str | None = None
    task_name: str | None = None
    bot_id: str | None = None
    bot_name: str | None = None
    region_id: int | None = None
    #: offset from UTC in seconds
    timezone: int | None = None
    status: CallStatus | str | None = None
    short_number: str | None = None
    transferred_to_operator: bool | None = None
    link_to_log: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    price: Decimal | None = None
    #: utterances; their keys are not documented, so each is kept as a JSON object
    messages: list[dict[str, JSON]] | None = None
    messages_as_string: str | None = None
    additional: dict[str, JSON] | None = None
    external_id: str | None = None
    dialog_results: JSON = None
    responder: str | None = None
    nps: int | None = None
    is_finished: bool | None = None
    record_path: str | None = None
    operator_duration: int | None = None
    bot_duration: int | None = None
    markers: JSON = None
    #: fields the API sent that this version of the library does not know, as they came
    extra: dict[str, JSON] = field(factory=dict)

    @property
    def status_known(self) -> bool:
        """False when the server sent a status this library does not know yet."""
        return self.status is None or isinstance(self.status, CallStatus)


@frozen
class Page(Generic[T]):
    """One response of the list endpoint.

    ``items`` are records (or raw dicts in raw mode); ``count`` is the server's total of
    matching records when the body carried one (None for a bare JSON array); ``offset`` is
    where the page started and ``limit`` the page size asked for. In a bulk pull, ``window``
    is the index of the plan's window the page belongs to and ``final`` marks the last page
    of that window (which also carries any records a verification re-walk recovered).
    """

    items: list[T]
    count: int | None
    offset: int
    limit: int | None
    window: int | None = None
    final: bool = False

    def __len__(self) -> int:
        return len(self.items)

    @property
    def is_last(self) -> bool:
        """True when no records follow this page (by the count, or a short page)."""
        if not self.items:
            return True
        if self.limit is not None and len(self.items) < self.limit:
            return True
        return self.count is not None and self.offset + len(self.items) >= self.count
