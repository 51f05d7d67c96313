"""CallSessionsClient retries over HTTP (aioresponses) and the retry policy itself:
backoff, Retry-After and its cap, the shared retry budget, which errors are retryable."""

from __future__ import annotations

from typing import Any

import pytest
from _client_http_support import (
    TOKEN,
    client_fixture,  # noqa: F401  (the fixture "client")
    mock_sample,
)
from _support import BASE_URL, MockHTTP

from callsessions import (
    BadRequestError,
    CallSessionsClient,
    ConnectionFailedError,
    DecodeError,
    InvalidQueryError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SessionQuery,
    TokenExpiredError,
)
from callsessions.http.retry import RetryBudget, is_retryable

# -- retries -------------------------------------------------------------------------------


async def test_503_then_200(client: CallSessionsClient, mocked: MockHTTP) -> None:
    mock_sample(mocked, "error_503")
    mock_sample(mocked, "page_first")
    page = await client.fetch_page(SessionQuery(page_size=5))
    assert len(page) == 5
    assert mocked.count() == 2
    assert client.stats.retries == 1
    assert client.stats.requests == 2


async def test_429_waits_retry_after_up_to_the_cap(mocked: MockHTTP) -> None:
    """The wait is the server's Retry-After (7 s) capped by the policy; a tiny cap keeps the
    test fast while showing which wait was chosen (backoff alone would be 0 here)."""
    mock_sample(mocked, "error_429_retry_seconds")
    mock_sample(mocked, "page_last")
    policy = RetryPolicy.no_wait(retry_after_cap=0.001)
    async with CallSessionsClient(BASE_URL, token=TOKEN, retry=policy) as client:
        page = await client.fetch_page(SessionQuery(page_size=5))
        assert len(page) == 2
        assert client.stats.throttled == 1
        assert client.stats.throttled_seconds == pytest.approx(0.001)


async def test_never_policy_sends_once(mocked: MockHTTP) -> None:
    mock_sample(mocked, "error_503", repeat=True)
    async with CallSessionsClient(BASE_URL, token=TOKEN, retry=RetryPolicy.never()) as client:
        with pytest.raises(ServerError):
            await client.fetch_page(SessionQuery())
    assert mocked.count() == 1


async def test_budget_shared_by_requests(mocked: MockHTTP) -> None:
    """The client's retry budget is shared: once spent, requests fail on the first error."""
    mock_sample(mocked, "error_500", repeat=True)
    policy = RetryPolicy.no_wait(attempts=5, budget=3)
    async with CallSessionsClient(BASE_URL, token=TOKEN, retry=policy) as client:
        with pytest.raises(ServerError):
            await client.fetch_page(SessionQuery())
        assert mocked.count() == 4  # 1 + the 3 retries the budget held
        with pytest.raises(ServerError):
            await client.fetch_page(SessionQuery())
        assert mocked.count() == 5  # budget empty: no retry at all


def test_wait_for_backoff() -> None:
    policy = RetryPolicy(initial_wait=0.5, max_wait=5.0, jitter=0.0)
    assert [policy.wait_for(n, ServerError(503)) for n in range(1, 7)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        5.0,
        5.0,
    ]


def test_wait_for_jitter_bounds() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=30.0, jitter=0.5)
    waits = [policy.wait_for(3, None) for _ in range(200)]
    assert all(4.0 <= w <= 6.0 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(7.0, 7.0), (0.0, 0.0), (500.0, 120.0), (None, 2.0)],
)
def test_wait_for_retry_after_and_cap(retry_after: float | None, expected: float) -> None:
    policy = RetryPolicy(initial_wait=1.0, jitter=0.0, retry_after_cap=120.0)
    exc = RateLimitedError(429, retry_after=retry_after)
    assert policy.wait_for(2, exc) == expected


def test_no_wait_never_waits() -> None:
    policy = RetryPolicy.no_wait()
    assert policy.wait_for(5, ServerError(500)) == 0.0
    assert policy.wait_for(1, RateLimitedError(429, retry_after=60.0)) == 0.0
    assert RetryPolicy.no_wait(attempts=2).attempts == 2
    assert RetryPolicy.never().attempts == 1


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"attempts": 0}, "attempts"),
        ({"budget": -1}, "budget"),
        ({"initial_wait": -0.1}, "initial_wait"),
        ({"retry_after_cap": -1.0}, "retry_after_cap"),
        ({"jitter": -1.0}, "jitter"),
    ],
)
def test_retry_policy_validation(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidQueryError) as info:
        RetryPolicy(**kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (RateLimitedError(429), True),
        (ServerError(500), True),
        (ServerError(502), True),
        (ServerError(503), True),
        (ServerError(504), True),
        (ServerError(501), False),
        (ServerError(505), False),
        (ConnectionFailedError("x"), True),
        (RequestTimeoutError("x"), True),
        (DecodeError("x"), True),
        (BadRequestError(400), False),
        (TokenExpiredError(401), False),
        (NotFoundError(404), False),
        (ValueError("x"), False),
    ],
    ids=repr,
)
def test_is_retryable(exc: BaseException, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


def test_retry_budget() -> None:
    budget = RetryBudget.for_policy(RetryPolicy(budget=2, budget_refill=0.5))
    assert budget.try_spend()
    assert budget.try_spend()
    assert not budget.try_spend()
    budget.on_success()
    assert not budget.try_spend()  # half a retry earned back is not a retry
    budget.on_success()
    assert budget.try_spend()
    for _ in range(10):
        budget.on_success()
    assert budget.tokens == 2.0  # never above the starting capacity
