"""CallSessionsClient over HTTP (aioresponses): pages, error mapping, retries, sessions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from _support import BASE_URL, SEARCH_PATH, SEARCH_URL, MockHTTP, load_sample

from callsessions import (
    AiohttpTransport,
    APIError,
    AuthenticationError,
    BadRequestError,
    CallSession,
    CallSessionsClient,
    CallSessionsError,
    CallStatus,
    ConnectionFailedError,
    DecodeError,
    InvalidQueryError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SessionQuery,
    TokenExpiredError,
    TransportError,
)
from callsessions.http.retry import RetryBudget, is_retryable

TOKEN = "eyJhbGciOiJSUzUxMiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2VjcmV0LXNpZ25hdHVyZQ"
SEARCH = re.compile(r"^https://analyse\.example\.test/api/v1/search/cis/calls(\?.*)?$")


def mock_sample(mocked: MockHTTP, name: str, *, repeat: bool = False) -> None:
    sample = load_sample(name)
    mocked.get(
        SEARCH,
        status=sample.status,
        headers=sample.headers,
        body=sample.body,
        repeat=repeat,
    )


@pytest.fixture
def mocked() -> Iterator[MockHTTP]:
    with MockHTTP() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[CallSessionsClient]:
    async with CallSessionsClient(
        BASE_URL, token=TOKEN, retry=RetryPolicy.no_wait(attempts=3)
    ) as c:
        yield c


# -- pages ---------------------------------------------------------------------------------


async def test_first_page(client: CallSessionsClient, mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_first")
    page = await client.fetch_page(SessionQuery(page_size=5, offset=0, statuses=["ANSWERED"]))
    assert len(page) == 5
    assert page.count == 12
    assert (page.offset, page.limit) == (0, 5)
    assert not page.is_last
    assert all(isinstance(r, CallSession) for r in page.items)
    assert page.items[0].status is CallStatus.ANSWERED
    [(method, url, kwargs)] = mocked.calls()
    assert method == "GET"
    assert url.path == SEARCH_PATH
    assert url.query["limit"] == "5"
    assert url.query["offset"] == "0"
    assert url.query["status"] == "ANSWERED"
    assert url.query["fields"].split(",")[0] == "id"
    headers = kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("callsessions/")
    assert kwargs["allow_redirects"] is False


async def test_last_page_by_page_number(client: CallSessionsClient, mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_last")
    page = await client.fetch_page(SessionQuery(page_size=5, page=2))
    assert page.offset == 10
    assert len(page) == 2
    assert page.is_last
    [(_, url, _)] = mocked.calls()
    assert url.query["page"] == "2"
    assert "offset" not in url.query


async def test_bare_array_raw(client: CallSessionsClient, mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_bare_array")
    page = await client.fetch_page(SessionQuery(page_size=10), raw=True)
    assert page.count is None
    assert [type(r) for r in page.items] == [dict, dict]
    assert page.items[1]["status"] == "CANCEL"
    assert page.is_last  # short page


async def test_empty_page(client: CallSessionsClient, mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_empty")
    page = await client.fetch_page(SessionQuery())
    assert page.items == []
    assert page.count == 0
    assert page.is_last


# -- error mapping -------------------------------------------------------------------------

# sample -> (error class, retried?)
ERROR_SAMPLES: dict[str, tuple[type[APIError | DecodeError], bool]] = {
    "error_400": (BadRequestError, False),
    "error_401": (AuthenticationError, False),
    "error_401_expired": (TokenExpiredError, False),
    "error_403": (PermissionDeniedError, False),
    "error_404": (NotFoundError, False),
    "error_422": (BadRequestError, False),
    "error_429_retry_seconds": (RateLimitedError, True),
    "error_429_retry_date": (RateLimitedError, True),
    "error_429_no_retry": (RateLimitedError, True),
    "error_500": (ServerError, True),
    "error_502": (ServerError, True),
    "error_503": (ServerError, True),
    "truncated_200": (DecodeError, True),
}


@pytest.mark.parametrize("name", sorted(ERROR_SAMPLES))
async def test_error_mapping_and_retries(
    client: CallSessionsClient, mocked: MockHTTP, name: str
) -> None:
    """Each error arrives as its class; transient ones are retried up to the attempt cap
    (3 here), the others are sent exactly once."""
    cls, retried = ERROR_SAMPLES[name]
    mock_sample(mocked, name, repeat=True)
    with pytest.raises(cls) as info:
        await client.fetch_page(SessionQuery(page_size=5))
    assert type(info.value) is cls
    assert mocked.count() == (3 if retried else 1)
    assert client.stats.retries == (2 if retried else 0)
    assert str(info.value).startswith(f"GET {SEARCH_PATH}: ")
    if isinstance(info.value, APIError):
        assert info.value.status == load_sample(name).status
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)


async def test_429_retry_after_from_headers(mocked: MockHTTP) -> None:
    mock_sample(mocked, "error_429_retry_seconds")
    async with CallSessionsClient(BASE_URL, token=TOKEN, retry=RetryPolicy.never()) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.fetch_page(SessionQuery())
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("exception", "cls", "phrase"),
    [
        (aiohttp.ClientConnectionError("connection reset"), ConnectionFailedError, "reset"),
        (aiohttp.ServerDisconnectedError(), ConnectionFailedError, "ServerDisconnectedError"),
        (aiohttp.ClientPayloadError("body cut short"), ConnectionFailedError, "cut short"),
        (TimeoutError(), RequestTimeoutError, "timeout"),
        (aiohttp.ServerTimeoutError("read timed out"), RequestTimeoutError, "timeout"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
async def test_transport_failures(
    mocked: MockHTTP, exception: BaseException, cls: type[TransportError], phrase: str
) -> None:
    mocked.get(SEARCH, exception=exception, repeat=True)
    policy = RetryPolicy.no_wait(attempts=2)
    async with CallSessionsClient(BASE_URL, token=TOKEN, retry=policy) as client:
        with pytest.raises(cls) as info:
            await client.fetch_page(SessionQuery())
    assert type(info.value) is cls
    assert info.value.method == "GET"
    assert info.value.path == SEARCH_PATH
    assert phrase in str(info.value)
    assert mocked.count() == 2  # transient: retried
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


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


# -- sessions and configuration ------------------------------------------------------------


async def test_injected_session_is_not_closed(mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_empty", repeat=True)
    async with aiohttp.ClientSession() as session:
        async with CallSessionsClient(BASE_URL, token=TOKEN, session=session) as client:
            await client.fetch_page(SessionQuery())
        assert not session.closed
        # still usable by its owner
        async with session.get(SEARCH_URL) as resp:
            assert resp.status == 200
    assert session.closed


async def test_owned_session_is_closed(mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_empty")
    transport = AiohttpTransport()
    client = CallSessionsClient(BASE_URL, token=TOKEN, transport=transport)
    await client.fetch_page(SessionQuery())
    session = transport._session
    assert session is not None
    assert not session.closed
    await client.aclose()
    assert session.closed
    await client.aclose()  # idempotent


async def test_closed_client_refuses_requests(mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_empty", repeat=True)
    client = CallSessionsClient(BASE_URL, token=TOKEN)
    await client.fetch_page(SessionQuery())
    await client.aclose()
    with pytest.raises(CallSessionsError, match="closed"):
        await client.fetch_page(SessionQuery())
    assert mocked.count() == 1


@pytest.mark.parametrize(
    ("base_url", "endpoint_path", "expected"),
    [
        ("https://analyse.example.test", None, SEARCH_URL),
        ("https://analyse.example.test/", None, SEARCH_URL),
        (
            "https://twin.example.test/analyse",
            None,
            "https://twin.example.test/analyse" + SEARCH_PATH,
        ),
        (
            "https://analyse.example.test",
            "/api/v2/calls",
            "https://analyse.example.test/api/v2/calls",
        ),
    ],
)
async def test_endpoint_url(
    mocked: MockHTTP, base_url: str, endpoint_path: str | None, expected: str
) -> None:
    mocked.get(re.compile(".*"), payload={"count": 0, "items": []})
    settings = {} if endpoint_path is None else {"endpoint_path": endpoint_path}
    async with CallSessionsClient(base_url, token=TOKEN, **settings) as client:
        await client.fetch_page(SessionQuery(fields="id"))
    [(_, url, _)] = mocked.calls()
    assert str(url.with_query(None)) == expected


def test_endpoint_path_must_be_absolute() -> None:
    with pytest.raises(InvalidQueryError) as info:
        CallSessionsClient(BASE_URL, token=TOKEN, endpoint_path="api/v1/calls")
    assert info.value.parameter == "endpoint_path"


@pytest.mark.parametrize(
    "base_url",
    [
        "https://robot:hunter2@analyse.example.test",
        "https://robot:hunter2@analyse.example.test/analyse",
        "http://hunter2@analyse.example.test",
    ],
)
def test_base_url_with_credentials_rejected_and_redacted(base_url: str) -> None:
    with pytest.raises(InvalidQueryError) as info:
        CallSessionsClient(base_url, token=TOKEN)
    exc = info.value
    assert exc.parameter == "base_url"
    assert "no credentials" in str(exc)
    assert "***@analyse.example.test" in str(exc)
    for text in (str(exc), repr(exc), str(exc.value)):
        assert "hunter2" not in text


@pytest.mark.parametrize(
    "base_url",
    [
        "analyse.example.test",
        "ftp://analyse.example.test",
        "https://analyse.example.test/#frag",
        "https://analyse .example.test",
        "",
        None,
    ],
)
def test_base_url_rejected(base_url: Any) -> None:
    with pytest.raises(InvalidQueryError) as info:
        CallSessionsClient(base_url, token=TOKEN)
    assert info.value.parameter == "base_url"
    assert "must be an http(s) URL" in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("https://analyse.example.test/?access_token=hunter2", id="token-in-query"),
        pytest.param("https://robot:pass@hunter2@analyse.example.test", id="at-sign-in-password"),
        pytest.param("https://robot:hun/ter2@analyse.example.test", id="slash-in-password"),
        pytest.param("https://analyse.example.test/#hunter2", id="fragment"),
    ],
)
def test_rejected_base_url_never_echoes_secrets(base_url: str) -> None:
    with pytest.raises(InvalidQueryError) as info:
        CallSessionsClient(base_url, token=TOKEN)
    assert "hunter2" not in str(info.value)


def test_client_arguments_checked() -> None:
    with pytest.raises(InvalidQueryError, match="not both") as info:
        CallSessionsClient(BASE_URL, token=TOKEN, auth=object())  # type: ignore[arg-type]
    assert TOKEN not in str(info.value)
    with pytest.raises(InvalidQueryError, match="known: endpoint_path") as info:
        CallSessionsClient(BASE_URL, token=TOKEN, page_sise=10)
    assert info.value.parameter == "settings"
    with pytest.raises(InvalidQueryError, match="positive"):
        CallSessionsClient(BASE_URL, token=TOKEN, timeout=0)


def test_client_repr_hides_token() -> None:
    client = CallSessionsClient(BASE_URL, token=TOKEN)
    text = repr(client)
    assert TOKEN not in text
    assert "***" in text
    assert BASE_URL in text


async def test_no_auth_sends_no_authorization(mocked: MockHTTP) -> None:
    mock_sample(mocked, "page_empty")
    async with CallSessionsClient(BASE_URL) as client:
        await client.fetch_page(SessionQuery())
    [(_, _, kwargs)] = mocked.calls()
    assert "Authorization" not in kwargs["headers"]
