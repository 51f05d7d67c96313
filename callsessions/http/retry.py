"""Retry policy as a value, and the retry budget shared by a whole pull.

``RetryPolicy`` is frozen configuration. ``RetryPolicy.retrying()`` builds tenacity's
``AsyncRetrying`` from it for one request: jittered exponential waits, an attempt cap, a time
cap, the server's ``Retry-After`` honoured (up to a cap), and a ``RetryBudget`` that the whole
pull draws from, so that a dead server fails a pull quickly instead of every page retrying to
exhaustion. Tests switch waiting off with ``RetryPolicy.no_wait()``, never by patching sleep.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from attrs import define, field, frozen
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
)
from tenacity.stop import stop_base

from callsessions.errors import (
    ConnectionFailedError,
    DecodeError,
    InvalidQueryError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ThrottledOutError,
)

__all__ = ["RetryBudget", "RetryPolicy", "is_retryable"]

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


def is_retryable(exc: BaseException) -> bool:
    """Transient failures: 429, 500/502/503/504, dropped connections, timeouts, bad bodies."""
    if isinstance(exc, RateLimitedError):
        return True
    if isinstance(exc, ServerError):
        return exc.status in RETRYABLE_STATUSES
    return isinstance(exc, ConnectionFailedError | RequestTimeoutError | DecodeError)


def _should_retry(state: RetryCallState) -> bool:
    """Transient failures are retried; a well-formed wrong answer (a non-transient
    ``DecodeError``: an HTML page, a redirect) once at most, since no retry can heal it."""
    if state.outcome is None or not state.outcome.failed:
        return False
    exc = state.outcome.exception()
    if isinstance(exc, ThrottledOutError):
        return False
    if isinstance(exc, DecodeError) and not exc.transient:
        return state.attempt_number < 2
    if isinstance(exc, ConnectionFailedError) and exc.lasting:
        return state.attempt_number < 2
    return exc is not None and is_retryable(exc)


def _non_negative(name: str) -> Callable[[object, object, float], None]:
    def check(_inst: object, _attr: object, value: float) -> None:
        if value < 0:
            raise InvalidQueryError(name, value, "must be >= 0")

    return check


@frozen(kw_only=True)
class RetryPolicy:
    """How single requests are retried.

    ``attempts``: tries per request, the first included. ``initial_wait`` doubles each retry
    up to ``max_wait``, plus up to ``jitter`` of itself at random. A 429's ``Retry-After`` is
    waited instead, capped at ``retry_after_cap``. ``max_elapsed`` caps one request's retries
    in seconds. ``budget`` retries are shared by a whole pull, and each success earns back
    ``budget_refill`` of one.
    """

    attempts: int = field(default=6)
    initial_wait: float = field(default=0.5, validator=_non_negative("initial_wait"))
    max_wait: float = field(default=30.0, validator=_non_negative("max_wait"))
    jitter: float = field(default=0.5, validator=_non_negative("jitter"))
    retry_after_cap: float = field(default=120.0, validator=_non_negative("retry_after_cap"))
    max_elapsed: float = field(default=600.0, validator=_non_negative("max_elapsed"))
    budget: int = field(default=200)
    budget_refill: float = field(default=0.1, validator=_non_negative("budget_refill"))

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidQueryError("attempts", self.attempts, "must be >= 1")
        if self.budget < 0:
            raise InvalidQueryError("budget", self.budget, "must be >= 0")

    @classmethod
    def no_wait(cls, **changes: int | float) -> RetryPolicy:
        """A policy that retries without sleeping (for tests)."""
        base: dict[str, int | float] = {
            "initial_wait": 0.0,
            "max_wait": 0.0,
            "jitter": 0.0,
            "retry_after_cap": 0.0,
        }
        base.update(changes)
        return cls(**base)  # type: ignore[arg-type]

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that does not retry at all."""
        return cls(attempts=1)

    def wait_for(self, attempt_number: int, exc: BaseException | None) -> float:
        """Seconds to wait before the next try, after ``attempt_number`` tries failed."""
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry_after_cap)
        base = min(self.max_wait, self.initial_wait * (2 ** (attempt_number - 1)))
        return base + random.uniform(0, self.jitter * base) if base else 0.0

    def retrying(
        self,
        budget: RetryBudget | None = None,
        on_retry: Callable[[BaseException, float, int], None] | None = None,
    ) -> AsyncRetrying:
        """tenacity's ``AsyncRetrying`` for one request under this policy."""

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_for(state.attempt_number, exc)

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                if exc is not None:
                    sleep = state.next_action.sleep if state.next_action else 0.0
                    on_retry(exc, sleep, state.attempt_number)

        return AsyncRetrying(
            stop=stop_any(
                stop_after_attempt(self.attempts),
                stop_after_delay(self.max_elapsed),
                _BudgetStop(budget),
            ),
            wait=wait,
            retry=_should_retry,
            before_sleep=before_sleep,
            reraise=True,
        )


class _BudgetStop(stop_base):
    """Stops when the pull's budget is empty. Listed last in ``stop_any``, which
    short-circuits: a retry is only taken from the budget when the other caps allow it."""

    def __init__(self, budget: RetryBudget | None) -> None:
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.budget is not None and not self.budget.try_spend()


@define
class RetryBudget:
    """Retries shared by one pull: starts with ``tokens``, each retry spends one, each
    success earns back ``refill``. Empty means: stop retrying, the service is down."""

    tokens: float
    refill: float = 0.1
    capacity: float = field(default=0.0)

    def __attrs_post_init__(self) -> None:
        if not self.capacity:
            self.capacity = self.tokens

    @classmethod
    def for_policy(cls, policy: RetryPolicy) -> RetryBudget:
        return cls(tokens=float(policy.budget), refill=policy.budget_refill)

    def try_spend(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def on_success(self) -> None:
        self.tokens = min(self.capacity, self.tokens + self.refill)
