"""How a worker process runs windows: :class:`WorkerConfig`, a frozen value (no arq needed,
so a command line can build and validate one before importing arq)."""

from __future__ import annotations

import random
from collections.abc import Callable

from attrs import field, frozen, validators

from callsessions import RetryPolicy

from .jobs import QUEUE_NAME
from .redis_limiter import RedisLimiterConfig

__all__ = ["WorkerConfig"]


@frozen(kw_only=True)
class WorkerConfig:
    """How a worker process runs windows. Times are seconds.

    ``concurrency``: windows at once; ``request_concurrency``: requests in flight per window.
    ``max_tries``: starts of one window (kills included) before it is reported failed.
    ``retry_defer`` doubles per try up to ``retry_defer_max`` (0: retry at once, for tests).
    ``lease``: a killed worker's window is run again within ``lease + poll_delay``.
    ``window_timeout``: one try of one window; beyond it the try is retried.
    ``shared_limiter``: pace all workers of one token by one limit in Redis
    (``RedisRateLimiter``); off, each process learns its own. ``http_retry``: the client's
    per-request retry policy (None: its default).
    """

    concurrency: int = field(default=2, validator=validators.ge(1))
    request_concurrency: int = field(default=4, validator=[validators.ge(1), validators.le(256)])
    max_tries: int = field(default=5, validator=validators.ge(1))
    retry_defer: float = field(default=5.0, validator=validators.ge(0.0))
    retry_defer_max: float = field(default=300.0, validator=validators.ge(0.0))
    lease: float = field(default=30.0, validator=validators.gt(0.0))
    window_timeout: float = field(default=1800.0, validator=validators.gt(0.0))
    poll_delay: float = field(default=0.5, validator=validators.gt(0.0))
    keep_result: float = field(default=86400.0, validator=validators.gt(0.0))
    progress_interval: float = field(default=0.5, validator=validators.ge(0.0))
    shared_limiter: bool = True
    limiter: RedisLimiterConfig = field(factory=RedisLimiterConfig)
    http_retry: RetryPolicy | None = None
    queue_name: str = QUEUE_NAME

    @property
    def job_timeout(self) -> float:
        """arq's own bound on a job: the window's timeout plus time to write its part."""
        return self.window_timeout + 60.0

    def backoff(self, job_try: int, draw: Callable[[], float] = random.random) -> float:
        """Seconds before try ``job_try + 1``: ``retry_defer * 2**(job_try - 1)``, capped,
        plus up to half of itself at random (so retried windows do not come back at once)."""
        base = min(self.retry_defer_max, self.retry_defer * 2.0 ** max(0, job_try - 1))
        return base * (1.0 + 0.5 * draw())
