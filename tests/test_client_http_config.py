"""CallSessionsClient sessions and configuration: who closes the aiohttp session, the
endpoint URL, base-URL and argument checks that never echo a secret, and no Authorization
header without credentials."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from _client_http_support import TOKEN, mock_sample
from _support import BASE_URL, SEARCH_PATH, SEARCH_URL, MockHTTP

from callsessions import (
    AiohttpTransport,
    CallSessionsClient,
    CallSessionsError,
    InvalidQueryError,
    SessionQuery,
)

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
