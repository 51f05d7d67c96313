"""CallSessionsClient over HTTP (aioresponses): pages and error mapping. (Retries are in
``test_client_http_retries.py``, sessions and configuration in
``test_client_http_config.py``.)"""

from __future__ import annotations

import aiohttp
import pytest
from _client_http_support import (
    SEARCH,
    TOKEN,
    client_fixture,  # noqa: F401  (the fixture "client")
    mock_sample,
)
from _support import BASE_URL, SEARCH_PATH, MockHTTP, load_sample

from callsessions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CallSession,
    CallSessionsClient,
    CallStatus,
    ConnectionFailedError,
    DecodeError,
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
