"""The pure protocol: parsing recorded responses, Retry-After, JWT expiry. No event loop."""

from __future__ import annotations

import base64
import copy
import email.utils
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest
from _support import SAMPLE_NAMES, load_sample, make_jwt

from callsessions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CallSessionsError,
    ConnectionFailedError,
    DecodeError,
    HTTPRequest,
    HTTPResponse,
    IncompletePullError,
    InvalidQueryError,
    NotFoundError,
    Page,
    PaginationError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    SessionQuery,
    TokenExpiredError,
    WireNames,
)
from callsessions.protocol.wire import (
    PageData,
    build_page_request,
    error_from_response,
    join_url,
    jwt_expiry,
    parse_page,
    parse_retry_after,
)

PATH = "/api/v1/search/cis/calls"

# sample -> (items, count) for the pages
PAGES: dict[str, tuple[int, int | None]] = {
    "page_first": (5, 12),
    "page_last": (2, 12),
    "page_empty": (0, 0),
    "page_bare_array": (2, None),
}

# sample -> (exact error class, status, error field, a phrase of the details, retry_after)
ERRORS: dict[str, tuple[type[APIError], int, Any, str | None, float | None]] = {
    "error_400": (BadRequestError, 400, "Validation failed", "must be less than", None),
    "error_401": (AuthenticationError, 401, "Not authenticated", None, None),
    "error_401_expired": (TokenExpiredError, 401, "Token is expired.", None, None),
    "error_403": (PermissionDeniedError, 403, "Access denied", "company 1234", None),
    "error_404": (NotFoundError, 404, "Not found", None, None),
    "error_422": (BadRequestError, 422, "Unprocessable entity", "invalid date", None),
    "error_429_retry_seconds": (RateLimitedError, 429, "Too many requests", None, 7.0),
    # the date is 30 s after the response's own Date header
    "error_429_retry_date": (RateLimitedError, 429, "Too many requests", None, 30.0),
    "error_429_no_retry": (RateLimitedError, 429, "Too many requests", None, None),
    "error_500": (ServerError, 500, "Internal server error", None, None),
    "error_503": (ServerError, 503, "Service temporarily unavailable", None, None),
}


def test_every_sample_is_covered() -> None:
    covered = set(PAGES) | set(ERRORS) | {"error_502", "truncated_200", "login"}
    assert covered == set(SAMPLE_NAMES)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_parse_page_samples(name: str) -> None:
    sample = load_sample(name)
    data = parse_page(sample.response(), path=PATH)
    n_items, count = PAGES[name]
    assert isinstance(data, PageData)
    assert len(data.items) == n_items
    assert data.count == count
    assert all(isinstance(item, dict) and "id" in item for item in data.items)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_parse_error_samples(name: str) -> None:
    cls, status, error, details, retry_after = ERRORS[name]
    sample = load_sample(name)
    with pytest.raises(APIError) as info:
        parse_page(sample.response(), method="GET", path=PATH)
    exc = info.value
    assert type(exc) is cls
    assert exc.status == status
    assert exc.error == error
    if details is None:
        assert exc.details is None
    else:
        assert details in str(exc.details)
        assert details in str(exc)
    if cls is RateLimitedError:
        assert isinstance(exc, RateLimitedError)
        assert exc.retry_after == retry_after
    assert str(exc).startswith(f"GET {PATH}: HTTP {status}: {error}")
    text = repr(exc)
    assert f"status={status}" in text
    assert "method='GET'" in text
    assert f"path='{PATH}'" in text


def test_error_classes_are_a_tree() -> None:
    assert issubclass(TokenExpiredError, AuthenticationError)
    for cls in (BadRequestError, AuthenticationError, PermissionDeniedError, NotFoundError):
        assert issubclass(cls, APIError)
    for other in (RateLimitedError, ServerError, DecodeError, ConnectionFailedError):
        assert issubclass(other, CallSessionsError)
    assert issubclass(InvalidQueryError, ValueError)
    assert issubclass(RequestTimeoutError, CallSessionsError)


def test_502_html_body() -> None:
    with pytest.raises(ServerError) as info:
        parse_page(load_sample("error_502").response(), path=PATH)
    assert info.value.status == 502
    assert "502 Bad Gateway" in str(info.value.error)
    assert info.value.details is None


def test_truncated_json_is_a_decode_error() -> None:
    sample = load_sample("truncated_200")
    with pytest.raises(DecodeError) as info:
        parse_page(sample.response(), method="GET", path=PATH)
    assert str(info.value).startswith(f"GET {PATH}: malformed JSON body ({len(sample.body)} bytes)")
    assert "path='/api/v1/search/cis/calls'" in repr(info.value)


def test_login_body_is_not_a_page_and_does_not_leak() -> None:
    sample = load_sample("login")
    with pytest.raises(DecodeError, match="got object with") as info:
        parse_page(sample.response(), path=PATH)
    token = sample.json()["token"]
    assert token not in str(info.value)
    assert token not in repr(info.value)


def _response(status: int, body: bytes, **headers: str) -> HTTPResponse:
    return HTTPResponse(status=status, headers=headers, body=body)


@pytest.mark.parametrize(
    ("status", "body", "phrase"),
    [
        (200, b"", "malformed JSON"),
        (200, b'"items"', "got str"),
        (200, b"null", "got NoneType"),
        (200, b'{"count": 3}', "object with ['count']"),
        (200, b'{"count": "3", "items": []}', "'count' is not an integer"),
        (200, b'{"count": true, "items": []}', "'count' is not an integer"),
        (200, b'{"count": 1, "items": [1]}', "not a JSON object"),
        (200, b'[{"id": "a"}, null]', "not a JSON object"),
        (204, b"", "unexpected HTTP 204"),
        (302, b"", "unexpected HTTP 302"),
    ],
)
def test_malformed_success_bodies(status: int, body: bytes, phrase: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_page(_response(status, body), path=PATH)
    assert phrase in str(info.value)


def test_count_without_items_key_is_none_in_bare_array() -> None:
    assert parse_page(_response(200, b"[]")) == PageData(items=[], count=None)


@pytest.mark.parametrize(
    ("status", "body", "cls", "error"),
    [
        (401, b"Token is expired.", TokenExpiredError, "Token is expired."),
        (401, b'{"error": "TOKEN IS EXPIRED"}', TokenExpiredError, "TOKEN IS EXPIRED"),
        (401, b'{"error": {"code": 17}}', AuthenticationError, {"code": 17}),
        (400, b'{"message": "bad limit"}', BadRequestError, "bad limit"),
        (405, b'{"error": "Method not allowed"}', APIError, "Method not allowed"),
        (504, b"", ServerError, None),
        (500, b"[1, 2]", ServerError, None),
    ],
)
def test_error_from_response_variants(
    status: int, body: bytes, cls: type[APIError], error: Any
) -> None:
    exc = error_from_response(_response(status, body), method="GET", path=PATH)
    assert type(exc) is cls
    assert exc.error == error
    assert exc.status == status
    if error is None:
        assert str(exc) == f"GET {PATH}: HTTP {status}"


def test_429_date_without_server_date_uses_our_clock() -> None:
    when = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
    response = _response(429, b"", **{"retry-after": email.utils.format_datetime(when, True)})
    exc = error_from_response(response, now=when.timestamp() - 12)
    assert isinstance(exc, RateLimitedError)
    assert exc.retry_after == 12.0


# -- Retry-After -------------------------------------------------------------------------

NOW = datetime(2024, 3, 14, 6, 30, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Thu, 14 Mar 2024 06:30:30 GMT", 30.0),
        ("Thu, 14 Mar 2024 06:29:00 GMT", 0.0),  # in the past: go now
        ("Thu, 14 Mar 2024 06:30:30 -0000", None),  # no usable zone
        ("", None),
        ("soon", None),
        ("Thu, 99 Foo 2024", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


# -- JWT -----------------------------------------------------------------------------------


def _jwt_with_payload(payload: bytes) -> str:
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzUxMiJ9.{encoded}.c2ln"


def test_jwt_expiry() -> None:
    assert jwt_expiry(make_jwt(1710480600, sub="u", company_id=1234)) == 1710480600.0
    assert jwt_expiry(make_jwt(1710480600.5)) == 1710480600.5
    assert jwt_expiry(load_sample("login").json()["token"]) == 1710480600.0


@pytest.mark.parametrize(
    "token",
    [
        make_jwt(None, sub="no-exp"),
        _jwt_with_payload(b'{"exp": "1710480600"}'),
        _jwt_with_payload(b'{"exp": true}'),
        _jwt_with_payload(b"[1710480600]"),
        _jwt_with_payload(b"not json"),
        "header.!!!not-base64!!!.sig",
        "header.\u00e9t\u00e9.sig",
        "only.two",
        "a.b.c.d",
        "",
        "opaque-token-without-dots",
    ],
)
def test_jwt_expiry_unreadable(token: str) -> None:
    assert jwt_expiry(token) is None


# -- requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://analyse.twin24.ai/api/v1/search/cis/calls", "/api/v1/search/cis/calls"),
        ("https://analyse.twin24.ai/api/v1/search?limit=1&x=2", "/api/v1/search"),
        ("https://analyse.twin24.ai", "/"),
        ("https://analyse.twin24.ai?a=b", "/"),
        ("http://127.0.0.1:8080/analyse/api/", "/analyse/api/"),
        ("https://user:hunter2@host.example/p", "/p"),
    ],
)
def test_http_request_path(url: str, path: str) -> None:
    request = HTTPRequest("GET", url)
    assert request.path == path
    assert "hunter2" not in repr(request)


def test_http_request_repr_hides_the_body() -> None:
    request = HTTPRequest(
        "POST", "https://iam.example/api/v1/auth/login", json={"password": "hunter2"}
    )
    assert repr(request) == "HTTPRequest(POST /api/v1/auth/login, params=[])"


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        ("https://h", "/api/x", "https://h/api/x"),
        ("https://h/", "/api/x", "https://h/api/x"),
        ("https://h/analyse/", "api/x", "https://h/analyse/api/x"),
    ],
)
def test_join_url(base: str, path: str, url: str) -> None:
    assert join_url(base, path) == url


def test_build_page_request() -> None:
    query = SessionQuery(fields=["id"], page_size=3, offset=6)
    request = build_page_request(
        query,
        base_url="https://twin24.ai/analyse",
        endpoint_path="/api/v2/calls",
        wire=WireNames(offset="skip"),
    )
    assert request.method == "GET"
    assert request.url == "https://twin24.ai/analyse/api/v2/calls"
    assert request.path == "/analyse/api/v2/calls"
    assert request.params == (("fields", "id"), ("limit", "3"), ("skip", "6"))
    assert dict(request.headers) == {"Accept": "application/json"}
    assert request.json is None


# -- Page.is_last --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "count", "offset", "limit", "last"),
    [
        (0, 12, 0, 5, True),  # empty
        (0, None, 0, None, True),
        (5, 12, 0, 5, False),  # full, more to come
        (5, 12, 5, 5, False),
        (2, 12, 10, 5, True),  # short
        (5, 10, 5, 5, True),  # full, but reaches the count
        (5, None, 0, 5, False),  # bare array, full: cannot know
        (4, None, 0, 5, True),  # bare array, short
        (5, None, 0, None, False),
        (3, 3, 0, None, True),
    ],
)
def test_page_is_last(
    n: int, count: int | None, offset: int, limit: int | None, last: bool
) -> None:
    page = Page(items=list(range(n)), count=count, offset=offset, limit=limit)
    assert page.is_last is last
    assert len(page) == n


# -- errors as values ----------------------------------------------------------------------

ERROR_INSTANCES: list[CallSessionsError] = [
    InvalidQueryError("page_size", 0, "must be an integer from 1 to 1000"),
    BadRequestError(400, method="GET", path=PATH, error="bad", details={"limit": 1}),
    TokenExpiredError(401, method="GET", path=PATH, error="Token is expired."),
    RateLimitedError(429, method="GET", path=PATH, error="slow down", retry_after=7.0),
    ServerError(503, method="GET", path=PATH),
    ConnectionFailedError("reset by peer", method="GET", path=PATH),
    RequestTimeoutError("no complete response", method="GET", path=PATH),
    DecodeError("malformed JSON body", method="GET", path=PATH),
    PaginationError("same offset twice", method="GET", path=PATH),
    IncompletePullError("1 window incomplete", problems=["w0"]),
]


@pytest.mark.parametrize("exc", ERROR_INSTANCES, ids=lambda e: type(e).__name__)
def test_errors_pickle_and_copy(exc: CallSessionsError) -> None:
    """Errors cross process boundaries (arq, Celery, process pools) intact."""
    for clone in (pickle.loads(pickle.dumps(exc)), copy.copy(exc), copy.deepcopy(exc)):
        assert type(clone) is type(exc)
        assert str(clone) == str(exc)
        assert repr(clone) == repr(exc)
        assert vars(clone) == vars(exc)
