"""Authentication over HTTP: login, refresh before expiry, renewal on an expired token,
sharing one login or renewal between concurrent requests, redaction. (The Auth protocol
without HTTP, settings and ``Secret`` are in ``test_auth_secrets.py``.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _auth_support import (
    EMAIL,
    EMPTY_PAGE,
    EXPIRED,
    NOW,
    PASSWORD,
    REFRESH_1,
    REFRESH_2,
    SEARCH,
    STATIC_TOKEN,
    TOKEN_1,
    TOKEN_2,
    FakeClock,
    assert_no_secret,
    assert_redacted,
    no_secret_in_logs_fixture,  # noqa: F401  (the autouse fixture "no_secret_in_logs")
    posts,
    search_headers,
)
from _support import (
    AUTH_URL,
    BASE_URL,
    LOGIN_URL,
    REFRESH_URL,
    SEARCH_PATH,
    MockHTTP,
    callback_result,
    load_sample,
)
from aioresponses import CallbackResult

from callsessions import (
    AuthenticationError,
    CallSessionsClient,
    DecodeError,
    PasswordAuth,
    RetryPolicy,
    Secret,
    SessionQuery,
    TokenExpiredError,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(clock: FakeClock) -> PasswordAuth:
    return PasswordAuth(EMAIL, PASSWORD, auth_url=AUTH_URL, ttl=3600, company_id=1234, clock=clock)


@pytest.fixture
async def client(auth: PasswordAuth) -> AsyncIterator[CallSessionsClient]:
    async with CallSessionsClient(BASE_URL, auth=auth, retry=RetryPolicy.no_wait(attempts=3)) as c:
        yield c




# -- login and refresh ---------------------------------------------------------------------


async def test_login_then_search(
    client: CallSessionsClient, auth: PasswordAuth, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.get(SEARCH, payload=EMPTY_PAGE, repeat=True)
    await client.fetch_page(SessionQuery())
    await client.fetch_page(SessionQuery())
    [login] = posts(mocked, LOGIN_URL)
    assert login["json"] == {
        "email": EMAIL,
        "password": PASSWORD,
        "ttl": 3600,
        "companyId": 1234,
    }
    assert "Authorization" not in login["headers"]
    assert search_headers(mocked) == [f"Bearer {TOKEN_1}"] * 2
    assert (auth.logins, auth.refreshes) == (1, 0)
    assert_no_secret(repr(client), repr(auth), repr(client.auth))


async def test_login_without_company(mocked: MockHTTP) -> None:
    auth = PasswordAuth(EMAIL, Secret(PASSWORD), auth_url=AUTH_URL + "/", ttl=60)
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.get(SEARCH, payload=EMPTY_PAGE)
    async with CallSessionsClient(BASE_URL, auth=auth) as client:
        await client.fetch_page(SessionQuery())
    [login] = posts(mocked, LOGIN_URL)
    assert login["json"] == {"email": EMAIL, "password": PASSWORD, "ttl": 60}


async def test_login_sample_response(mocked: MockHTTP) -> None:
    sample = load_sample("login")
    auth = PasswordAuth(EMAIL, PASSWORD, auth_url=AUTH_URL, clock=FakeClock(1710394200.0))
    mocked.post(LOGIN_URL, status=sample.status, headers=sample.headers, body=sample.body)
    mocked.get(SEARCH, payload=EMPTY_PAGE)
    async with CallSessionsClient(BASE_URL, auth=auth) as client:
        await client.fetch_page(SessionQuery())
    assert search_headers(mocked) == ["Bearer " + sample.json()["token"]]


async def test_refresh_before_expiry(
    client: CallSessionsClient, auth: PasswordAuth, clock: FakeClock, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.post(REFRESH_URL, payload={"token": TOKEN_2, "refreshToken": REFRESH_2})
    mocked.get(SEARCH, payload=EMPTY_PAGE, repeat=True)
    await client.fetch_page(SessionQuery())
    clock.now = NOW + 3600 - 61  # just outside the 60 s margin: no refresh yet
    await client.fetch_page(SessionQuery())
    assert auth.refreshes == 0
    clock.now = NOW + 3600 - 30  # inside the margin
    await client.fetch_page(SessionQuery())
    [refresh] = posts(mocked, REFRESH_URL)
    assert refresh["headers"]["Authorization"] == TOKEN_1  # the current token, as API.md says
    assert refresh["json"] == {"refreshToken": REFRESH_1, "ttl": 3600}
    assert search_headers(mocked) == [f"Bearer {TOKEN_1}"] * 2 + [f"Bearer {TOKEN_2}"]
    assert (auth.logins, auth.refreshes) == (1, 1)


async def test_token_without_exp_uses_ttl(
    client: CallSessionsClient, auth: PasswordAuth, clock: FakeClock, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, payload={"token": "opaque-token-1", "refreshToken": REFRESH_1})
    mocked.post(REFRESH_URL, payload={"token": "opaque-token-2"})
    mocked.get(SEARCH, payload=EMPTY_PAGE, repeat=True)
    await client.fetch_page(SessionQuery())
    clock.now = NOW + 3600 - 10
    await client.fetch_page(SessionQuery())
    assert search_headers(mocked) == ["Bearer opaque-token-1", "Bearer opaque-token-2"]
    assert auth.refreshes == 1


@pytest.mark.parametrize("status", [401, 400, 403])
async def test_refresh_refused_logs_in_again(
    client: CallSessionsClient,
    auth: PasswordAuth,
    clock: FakeClock,
    mocked: MockHTTP,
    status: int,
) -> None:
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.post(REFRESH_URL, status=status, payload={"error": "Refresh token is invalid"})
    mocked.post(LOGIN_URL, payload={"token": TOKEN_2, "refreshToken": REFRESH_2})
    mocked.get(SEARCH, payload=EMPTY_PAGE, repeat=True)
    await client.fetch_page(SessionQuery())
    clock.now = NOW + 3590
    await client.fetch_page(SessionQuery())
    assert len(posts(mocked, REFRESH_URL)) == 1
    assert len(posts(mocked, LOGIN_URL)) == 2
    assert search_headers(mocked) == [f"Bearer {TOKEN_1}", f"Bearer {TOKEN_2}"]
    assert (auth.logins, auth.refreshes) == (2, 0)


async def test_no_refresh_token_logs_in_again(
    client: CallSessionsClient, auth: PasswordAuth, clock: FakeClock, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1})
    mocked.post(LOGIN_URL, payload={"token": TOKEN_2})
    mocked.get(SEARCH, payload=EMPTY_PAGE, repeat=True)
    await client.fetch_page(SessionQuery())
    clock.now = NOW + 3590
    await client.fetch_page(SessionQuery())
    assert posts(mocked, REFRESH_URL) == []
    assert auth.logins == 2


# -- a token the server calls expired ------------------------------------------------------


async def test_expired_401_renews_once_and_repeats(
    client: CallSessionsClient, auth: PasswordAuth, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.post(REFRESH_URL, payload={"token": TOKEN_2, "refreshToken": REFRESH_2})
    mocked.get(SEARCH, status=401, payload=EXPIRED)
    mocked.get(SEARCH, payload=load_sample("page_last").json())
    page = await client.fetch_page(SessionQuery(page_size=5))
    assert len(page) == 2
    assert search_headers(mocked) == [f"Bearer {TOKEN_1}", f"Bearer {TOKEN_2}"]
    [refresh] = posts(mocked, REFRESH_URL)
    assert refresh["headers"]["Authorization"] == TOKEN_1
    assert (auth.logins, auth.refreshes) == (1, 1)
    assert client.stats.requests == 2


async def test_second_expired_401_is_raised_without_looping(
    client: CallSessionsClient, auth: PasswordAuth, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.post(REFRESH_URL, payload={"token": TOKEN_2, "refreshToken": REFRESH_2}, repeat=True)
    mocked.get(SEARCH, status=401, payload=EXPIRED, repeat=True)
    with pytest.raises(TokenExpiredError) as info:
        await client.fetch_page(SessionQuery())
    exc = info.value
    assert isinstance(exc, AuthenticationError)
    assert exc.status == 401
    assert exc.path == SEARCH_PATH
    assert search_headers(mocked) == [f"Bearer {TOKEN_1}", f"Bearer {TOKEN_2}"]
    assert auth.refreshes == 1
    assert_redacted(exc)


async def test_plain_401_is_not_renewed(
    client: CallSessionsClient, auth: PasswordAuth, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.get(SEARCH, status=401, payload={"error": "Not authenticated"}, repeat=True)
    with pytest.raises(AuthenticationError) as info:
        await client.fetch_page(SessionQuery())
    assert type(info.value) is AuthenticationError
    assert len(search_headers(mocked)) == 1
    assert auth.refreshes == 0
    assert_redacted(info.value)


async def test_static_token_expired(mocked: MockHTTP) -> None:
    mocked.get(SEARCH, status=401, payload=EXPIRED, repeat=True)
    async with CallSessionsClient(
        BASE_URL, token=STATIC_TOKEN, retry=RetryPolicy.no_wait()
    ) as client:
        with pytest.raises(TokenExpiredError) as info:
            await client.fetch_page(SessionQuery())
        assert_no_secret(repr(client), repr(client.auth))
    assert search_headers(mocked) == [f"Bearer {STATIC_TOKEN}"]
    assert_redacted(info.value)


async def test_wrong_password(client: CallSessionsClient, mocked: MockHTTP) -> None:
    mocked.post(LOGIN_URL, status=401, payload={"error": "Invalid credentials"}, repeat=True)
    with pytest.raises(AuthenticationError) as info:
        await client.fetch_page(SessionQuery())
    assert info.value.path == "/api/v1/auth/login"
    assert info.value.method == "POST"
    assert search_headers(mocked) == []
    assert len(posts(mocked, LOGIN_URL)) == 1  # a refused login is not retried
    assert_redacted(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"refreshToken": "refresh-d3b07384-d9a0-4f6b"}',
        b'{"token": ""}',
        b'{"token": 42}',
        b"[]",
        b'{"token": "eyJhbGciOiJSUzUxMiJ9.eyJleHAiOjE3MTAwMDM2MDB9',
    ],
)
async def test_login_answer_without_token(
    client: CallSessionsClient, mocked: MockHTTP, body: bytes
) -> None:
    mocked.post(LOGIN_URL, body=body, repeat=True)
    with pytest.raises(DecodeError, match="without a 'token'") as info:
        await client.fetch_page(SessionQuery())
    assert len(posts(mocked, LOGIN_URL)) == 3  # a bad body is transient: retried, capped
    assert_redacted(info.value)
    assert REFRESH_1 not in str(info.value)


async def test_login_server_error_then_success(
    client: CallSessionsClient, auth: PasswordAuth, mocked: MockHTTP
) -> None:
    mocked.post(LOGIN_URL, status=503, payload={"error": "down"})
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.get(SEARCH, payload=EMPTY_PAGE)
    await client.fetch_page(SessionQuery())
    assert auth.logins == 1
    assert search_headers(mocked) == [f"Bearer {TOKEN_1}"]


# -- concurrency ---------------------------------------------------------------------------


async def test_concurrent_requests_share_one_login(
    client: CallSessionsClient, auth: PasswordAuth, mocked: MockHTTP
) -> None:
    async def slow_login(url: Any, **kwargs: Any) -> None:
        for _ in range(5):
            await asyncio.sleep(0)  # let the other requests pile up on the login

    mocked.post(
        LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1}, callback=slow_login
    )
    mocked.get(SEARCH, payload=EMPTY_PAGE, repeat=True)
    await asyncio.gather(*(client.fetch_page(SessionQuery()) for _ in range(8)))
    assert len(posts(mocked, LOGIN_URL)) == 1
    assert auth.logins == 1
    assert search_headers(mocked) == [f"Bearer {TOKEN_1}"] * 8


async def test_concurrent_expired_401s_share_one_renewal(
    client: CallSessionsClient, auth: PasswordAuth, mocked: MockHTTP
) -> None:
    """Six requests in flight all hear "expired" for the first token: one refresh serves
    them all. The fake server answers by the token each request carries."""
    mocked.post(LOGIN_URL, payload={"token": TOKEN_1, "refreshToken": REFRESH_1})
    mocked.post(REFRESH_URL, payload={"token": TOKEN_2, "refreshToken": REFRESH_2})
    mocked.get(SEARCH, payload=EMPTY_PAGE)
    await client.fetch_page(SessionQuery())  # logged in with TOKEN_1
    arrived = 0
    all_in_flight = asyncio.Event()

    async def server(url: Any, **kwargs: Any) -> CallbackResult:
        nonlocal arrived
        if kwargs["headers"]["Authorization"] == f"Bearer {TOKEN_1}":
            arrived += 1
            if arrived == 6:
                all_in_flight.set()
            await all_in_flight.wait()  # all six are in flight before any answer
            return callback_result(status=401, payload=EXPIRED)
        return callback_result(status=200, payload=EMPTY_PAGE)

    mocked.get(SEARCH, callback=server, repeat=True)
    async with asyncio.timeout(5):
        await asyncio.gather(*(client.fetch_page(SessionQuery()) for _ in range(6)))
    assert auth.refreshes == 1
    assert len(posts(mocked, REFRESH_URL)) == 1
    headers = search_headers(mocked)
    assert headers.count(f"Bearer {TOKEN_1}") == 7
    assert headers.count(f"Bearer {TOKEN_2}") == 6
