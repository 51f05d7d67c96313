"""``ClientConfig``: everything about how the client talks to the service, frozen."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

from attrs import field, frozen

from callsessions.errors import InvalidQueryError
from callsessions.http.retry import RetryPolicy
from callsessions.http.transport import DEFAULT_MAX_BODY
from callsessions.protocol.planning import ONE_SECOND, PullSettings
from callsessions.protocol.query import DEFAULT_WIRE_NAMES, MAX_PAGE_SIZE, WireNames
from callsessions.protocol.wire import DEFAULT_ENDPOINT_PATH

__all__ = ["INITIAL_CONCURRENCY", "MAX_CONCURRENCY", "ClientConfig"]

#: the most requests in flight a pull may be given: pages waiting their turn grow with it
MAX_CONCURRENCY = 256
#: requests in flight when a pull starts, by default (a pull's concurrency above it is
#: reached by doubling each round trip while requests wait, until the first 429)
INITIAL_CONCURRENCY = 8


def _positive(name: str, most: float = math.inf) -> Callable[[object, object, float], None]:
    def check(_inst: object, _attr: object, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidQueryError(name, value, "must be a positive number")
        if not value < math.inf or value > most:
            raise InvalidQueryError(name, value, f"must be finite and at most {most:g}")

    return check


@frozen(kw_only=True)
class ClientConfig:
    """Everything about how the client talks to the service. Change a copy with
    ``attrs.evolve(config, concurrency=4)`` or pass the same names to the client.

    ``endpoint_path`` is appended to the base URL. ``wire_names`` maps parameters to their
    query-string names. ``timeout`` bounds one request in seconds; ``max_body_bytes`` the
    size of a body read whole. ``page_size`` is used by pulls and by ``fetch_page`` when
    the query sets none; ``concurrency`` bounds requests in flight in a pull (it adapts down
    on 429s); a pull starts with at most ``initial_concurrency`` in flight (default 8, the
    default ``concurrency``: TCP's initial window) and adds one each success while requests
    wait for a place (doubling every round trip, as TCP's slow start) until ``concurrency``
    or the first 429, so that an unknown rate limit is met by a few requests, not by
    ``concurrency`` of them at once. Below 8 it costs about log2(8 / initial) round trips
    (``1``: the CLI's ``--slow-start``); above ``concurrency`` or None it is off (start at
    ``concurrency``); ``offset_ceiling`` is the deepest ``offset + limit`` the service serves;
    ``max_rewalks`` bounds the re-walks of a window whose ids fall short. With
    ``count_ahead`` (the default) a pull of a closed range counts it in four buckets together
    with its first page, so that a range too large for one window is planned in one round
    trip instead of two; a range that fits spends four ``limit=1`` requests for nothing
    (set it False when many small pulls share a tight rate limit). ``max_rate``
    caps requests per second (below it the pace is learned from 429s); ``max_stall`` is how
    long a pull keeps trying while the server answers only 429.
    """

    endpoint_path: str = DEFAULT_ENDPOINT_PATH
    wire_names: WireNames = DEFAULT_WIRE_NAMES
    timeout: float = field(default=60.0, validator=_positive("timeout"))
    connect_timeout: float = field(default=10.0, validator=_positive("connect_timeout"))
    max_connections: int = field(default=32, validator=_positive("max_connections"))
    max_body_bytes: int = field(default=DEFAULT_MAX_BODY, validator=_positive("max_body_bytes"))
    retry: RetryPolicy = field(factory=RetryPolicy)
    page_size: int = MAX_PAGE_SIZE
    concurrency: int = field(default=8, validator=_positive("concurrency", MAX_CONCURRENCY))
    initial_concurrency: int | None = INITIAL_CONCURRENCY
    offset_ceiling: int = 10_000
    max_rewalks: int = 3
    window_fill: float = 0.8
    window_resolution: timedelta = ONE_SECOND
    max_buckets: int = 32
    count_ahead: bool = True
    max_rate: float | None = None
    max_stall: float = field(default=600.0, validator=_positive("max_stall"))

    def __attrs_post_init__(self) -> None:
        if not self.endpoint_path.startswith("/"):
            raise InvalidQueryError("endpoint_path", self.endpoint_path, "must start with /")
        if not isinstance(self.wire_names, WireNames):
            raise InvalidQueryError("wire_names", self.wire_names, "must be a WireNames")
        if self.max_rate is not None:
            _positive("max_rate")(self, None, self.max_rate)
        start = self.initial_concurrency
        if start is not None and (isinstance(start, bool) or not isinstance(start, int)):
            raise InvalidQueryError("initial_concurrency", start, "must be an integer or None")
        if start is not None and not 1 <= start <= MAX_CONCURRENCY:
            raise InvalidQueryError(
                "initial_concurrency", start, f"must be from 1 to {MAX_CONCURRENCY}"
            )
        if not isinstance(self.count_ahead, bool):
            raise InvalidQueryError("count_ahead", self.count_ahead, "must be True or False")
        if self.max_rewalks < 0:
            raise InvalidQueryError("max_rewalks", self.max_rewalks, "must be >= 0")
        self.pull_settings()  # validates page_size, offset_ceiling, fill, resolution

    def pull_settings(self, page_size: int | None = None) -> PullSettings:
        return PullSettings(
            page_size=page_size or self.page_size,
            offset_ceiling=self.offset_ceiling,
            fill=self.window_fill,
            resolution=self.window_resolution,
            max_buckets=self.max_buckets,
        )
