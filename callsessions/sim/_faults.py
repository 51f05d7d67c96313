"""Fault decisions: reproducible from a seed, changeable at run time."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import attrs

from ._config import FaultConfig

__all__ = ["Decision", "FaultEngine"]

_STATUS_OF = {
    "429": 429,
    "429_bare": 429,
    "500": 500,
    "502": 502,
    "503": 503,
    "html_200": 200,
}


@attrs.frozen
class Decision:
    """What to do to one search/export request.

    ``kind`` is ``None`` (answer normally) or one of ``429``, ``429_bare``, ``500``, ``502``,
    ``503``, ``disconnect``, ``truncated``, ``stall``, ``html_200``, ``rate_limit``,
    ``fail_first``. ``status`` is set when the fault replaces the answer (``html_200``: a 200
    whose body is an HTML page).
    """

    kind: str | None = None
    status: int | None = None
    retry_after: int | None = None
    insert: int = 0
    shuffle: random.Random | None = None


class FaultEngine:
    """Draws the faults of each request from a seeded ``random.Random``."""

    def __init__(self, faults: FaultConfig, default_seed: int, clock: Callable[[], float]) -> None:
        self._default_seed = default_seed
        self.clock = clock
        self.faults = faults
        self.rng = random.Random()
        self._failed_first = 0
        self._requests = 0
        self._buckets: dict[str, tuple[float, float]] = {}  # token -> (tokens, last time)
        self.set(faults)

    def set(self, faults: FaultConfig) -> None:
        """Switch to new faults; reseeds the decisions and restarts ``fail_first``.

        It also forgets every token's rate-limit bucket: each token's next request finds a
        full bucket of the new ``rate_limit_burst``, refilled at the new ``rate_limit``.
        """
        self.faults = faults
        seed = faults.seed if faults.seed is not None else self._default_seed
        self.rng.seed(f"callsessions-sim-faults-{seed}")
        self._failed_first = 0
        self._requests = 0
        self._buckets.clear()

    def _rate_limited(self, token: str) -> int | None:
        """Seconds to wait when ``token`` has used up its bucket, else ``None``."""
        rate = self.faults.rate_limit
        if rate is None:
            return None
        capacity = float(max(1, self.faults.rate_limit_burst))
        now = self.clock()
        tokens, last = self._buckets.get(token, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[token] = (tokens - 1.0, now)
            return None
        self._buckets[token] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / rate))

    def decide(self, token: str, *, export: bool) -> Decision:
        """The fault (if any) for the next search/export request made with ``token``."""
        f = self.faults
        if export and not f.apply_to_export:
            return Decision()
        self._requests += 1
        # Always draw, so a request's fault does not depend on what the others got.
        draw = self.rng.random()
        shuffle = random.Random(self.rng.getrandbits(64)) if f.shuffle_ties else None
        insert = (
            f.insert_count
            if f.insert_every and not export and self._requests % f.insert_every == 0
            else 0
        )
        wait = self._rate_limited(token)
        if wait is not None:
            return Decision("rate_limit", 429, wait, insert)
        if self._failed_first < f.fail_first:
            self._failed_first += 1
            status = f.fail_first_status
            retry_after = f.retry_after if status == 429 else None
            return Decision("fail_first", status, retry_after, insert)
        edge = 0.0
        for kind, rate in f.random_rates():
            edge += rate
            if draw < edge:
                answer = _STATUS_OF.get(kind)
                retry_after = f.retry_after if kind == "429" else None
                return Decision(kind, answer, retry_after, insert, shuffle)
        return Decision(None, None, None, insert, shuffle)
