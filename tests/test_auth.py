"""Authentication: login, refresh before expiry, renewal on an expired token, redaction."""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _support import (
    AUTH_URL,
    BASE_URL,
    LOGIN_URL,
    REFRESH_URL,
    SEARCH_PATH,
    MockHTTP,
    callback_result,
    load_sample,
    make_jwt,
)
from aioresponses import CallbackResult

from callsessions import (
    AuthenticationError,
    CallSessionsClient,
    CallSessionsError,
    DecodeError,
    HTTPRequest,
    HTTPResponse,
    InvalidQueryError,
    PasswordAuth,
    RetryPolicy,
    Secret,
    ServerError,
    SessionQuery,
    TokenAuth,
    TokenExpiredError,
)

SEARCH = re.compile(r"^https://analyse\.example\.test/api/v1/search/cis/calls(\?.*)?$")
NOW = 1_710_000_000.0
EMAIL = "robot-ops@clinic.example"
PASSWORD = "correct horse battery staple"
TOKEN_1 = make_jwt(NOW + 3600, sub="5d1e7c42", company_id=1234)
TOKEN_2 = make_jwt(NOW + 7200, sub="5d1e7c42", company_id=1234)
TOKEN_3 = make_jwt(NOW + 10800, sub="5d1e7c42", company_id=1234)
REFRESH_1 = "refresh-d3b07384-d9a0-4f6b"
REFRESH_2 = "refresh-9c2e8f1a-7b6c-5d4e"
STATIC_TOKEN = make_jwt(NOW + 3600, sub="static")
SECRETS = (PASSWORD, TOKEN_1, TOKEN_2, TOKEN_3, REFRESH_1, REFRESH_2, STATIC_TOKEN)
EMPTY_PAGE = {"count": 0, "items": []}
EXPIRED = {"error": "Token is expired.", "details": None}


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(clock: FakeClock) -> PasswordAuth:
    return PasswordAuth(EMAIL, PASSWORD, auth_url=AUTH_URL, ttl=3600, company_id=1234, clock=clock)


@pytest.fixture
def mocked() -> Iterator[MockHTTP]:
    with MockHTTP() as m:
        yield m


@pytest.fixture
async def client(auth: PasswordAuth) -> AsyncIterator[CallSessionsClient]:
    async with CallSessionsClient(BASE_URL, auth=auth, retry=RetryPolicy.no_wait(attempts=3)) as c:
        yield c


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here runs with DEBUG logging captured; no secret may show in any record."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + str(record.exc_info)
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked into the log: {record.getMessage()}"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def assert_redacted(exc: BaseException) -> None:
    assert_no_secret(str(exc), repr(exc), str(exc.args))


def search_headers(mocked: MockHTTP) -> list[str]:
    """The Authorization header of each search request, in order."""
    return [
        kwargs["headers"].get("Authorization")
        for method, url, kwargs in mocked.calls()
        if method == "GET" and url.path == SEARCH_PATH
    ]


def posts(mocked: MockHTTP, url: str) -> list[dict[str, Any]]:
    return [kw for m, u, kw in mocked.calls() if m == "POST" and str(u) == url]


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


# -- the Auth protocol without HTTP ------------------------------------------------------


class FakeIAM:
    """A ``send`` for PasswordAuth with behaviour: answers login and refresh."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.sent: list[tuple[HTTPRequest, str | None]] = []

    async def __call__(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        import orjson

        self.sent.append((request, authorization))
        status, body = self.answers.pop(0)
        return HTTPResponse(status=status, headers={}, body=orjson.dumps(body))


async def test_renew_is_skipped_when_already_renewed(clock: FakeClock) -> None:
    auth = PasswordAuth(EMAIL, PASSWORD, auth_url=AUTH_URL, clock=clock)
    iam = FakeIAM(
        [
            (200, {"token": TOKEN_1, "refreshToken": REFRESH_1}),
            (200, {"token": TOKEN_2, "refreshToken": REFRESH_2}),
        ]
    )
    assert await auth.authorization(iam) == f"Bearer {TOKEN_1}"
    assert await auth.renew(iam, f"Bearer {TOKEN_1}") is True
    assert await auth.authorization(iam) == f"Bearer {TOKEN_2}"
    # a request that still held the old token: nothing more to do
    assert await auth.renew(iam, f"Bearer {TOKEN_1}") is True
    assert len(iam.sent) == 2
    request, authorization = iam.sent[1]
    assert request.path == "/api/v1/auth/refresh"
    assert authorization == TOKEN_1
    assert_no_secret(repr(request), repr(auth))


async def test_refresh_server_error_propagates(clock: FakeClock) -> None:
    auth = PasswordAuth(EMAIL, PASSWORD, auth_url=AUTH_URL, clock=clock)
    iam = FakeIAM([(200, {"token": TOKEN_1, "refreshToken": REFRESH_1}), (500, {"error": "boom"})])
    await auth.authorization(iam)
    with pytest.raises(ServerError) as info:
        await auth.renew(iam, f"Bearer {TOKEN_1}")
    assert info.value.path == "/api/v1/auth/refresh"
    assert_redacted(info.value)


async def test_token_auth() -> None:
    auth = TokenAuth(STATIC_TOKEN)
    iam = FakeIAM([])
    assert await auth.authorization(iam) == f"Bearer {STATIC_TOKEN}"
    assert await auth.renew(iam, f"Bearer {STATIC_TOKEN}") is False
    assert iam.sent == []
    assert repr(auth) == "TokenAuth(token=***)"


# -- settings and secrets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"auth_url": "iam.example.test"}, "auth_url"),
        ({"ttl": 0}, "ttl"),
        ({"password": ""}, "secret"),
    ],
)
def test_password_auth_validation(kwargs: dict[str, Any], parameter: str) -> None:
    args: dict[str, Any] = {"email": EMAIL, "password": PASSWORD, "auth_url": AUTH_URL}
    args |= kwargs
    with pytest.raises(InvalidQueryError) as info:
        PasswordAuth(args.pop("email"), args.pop("password"), **args)
    assert info.value.parameter == parameter
    assert_redacted(info.value)


def test_password_auth_repr() -> None:
    auth = PasswordAuth(EMAIL, PASSWORD, auth_url=AUTH_URL)
    text = repr(auth)
    assert "password=***" in text
    assert EMAIL in text
    assert_no_secret(text, str(auth))


def test_secret_is_masked() -> None:
    secret = Secret(PASSWORD)
    assert repr(secret) == "Secret('***')"
    assert str(secret) == "Secret('***')"
    assert f"{secret}" == "Secret('***')"
    assert PASSWORD not in repr([secret, {"p": secret}])
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD)
    assert secret != Secret("other")
    assert secret != PASSWORD
    assert len({secret, Secret(PASSWORD)}) == 1


def test_secret_is_not_picklable() -> None:
    secret = Secret(PASSWORD)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        copy.copy(secret)


@pytest.mark.parametrize("value", ["", None, 123])
def test_secret_rejects_empty(value: Any) -> None:
    with pytest.raises(InvalidQueryError) as info:
        Secret(value)
    assert info.value.value == "***"


def test_client_rejects_token_and_auth_together() -> None:
    with pytest.raises(InvalidQueryError) as info:
        CallSessionsClient(
            BASE_URL, token=STATIC_TOKEN, auth=PasswordAuth(EMAIL, PASSWORD, auth_url=AUTH_URL)
        )
    assert isinstance(info.value, CallSessionsError)
    assert_redacted(info.value)
