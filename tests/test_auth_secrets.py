"""Authentication without HTTP: ``PasswordAuth.renew`` and ``TokenAuth`` against a fake
IAM, settings validation, and ``Secret`` masking (never printed, pickled or copied).
Every test runs with DEBUG logging captured; no secret may show in any record."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from _auth_support import (
    EMAIL,
    PASSWORD,
    REFRESH_1,
    REFRESH_2,
    STATIC_TOKEN,
    TOKEN_1,
    TOKEN_2,
    FakeClock,
    assert_no_secret,
    assert_redacted,
    no_secret_in_logs_fixture,  # noqa: F401  (the autouse fixture "no_secret_in_logs")
)
from _support import (
    AUTH_URL,
    BASE_URL,
)

from callsessions import (
    CallSessionsClient,
    CallSessionsError,
    HTTPRequest,
    HTTPResponse,
    InvalidQueryError,
    PasswordAuth,
    Secret,
    ServerError,
    TokenAuth,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()




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
