"""``MockTransport``: the transport seam with a handler behind it, for tests without HTTP.

Like httpx's ``MockTransport``: give it a function from request to response and pass it to
the client as ``transport=``. The handler sees each ``HTTPRequest`` (method, URL, params,
JSON body) and the ``Authorization`` value, and returns an ``HTTPResponse`` (or awaits one).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson

from callsessions.http.transport import StreamedResponse
from callsessions.protocol.wire import HTTPRequest, HTTPResponse

__all__ = ["MockTransport", "json_response"]

Handler = Callable[[HTTPRequest, str | None], HTTPResponse | Awaitable[HTTPResponse]]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> HTTPResponse:
    """An ``HTTPResponse`` with ``body`` serialised as JSON."""
    return HTTPResponse(
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
        body=orjson.dumps(body),
    )


class MockTransport:
    """A ``Transport`` that answers every request with ``handler(request, authorization)``.

    ``requests`` lists what was sent, in order (the authorization is not kept).
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[HTTPRequest] = []
        self.closed = False

    async def _answer(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        self.requests.append(request)
        result = self._handler(request, authorization)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, HTTPResponse), "the handler must return an HTTPResponse"
        return result

    async def send(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        return await self._answer(request, authorization)

    @asynccontextmanager
    async def stream(
        self, request: HTTPRequest, authorization: str | None, chunk_size: int = 1 << 16
    ) -> AsyncIterator[StreamedResponse]:
        response = await self._answer(request, authorization)

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(response.body), chunk_size):
                yield response.body[i : i + chunk_size]

        yield StreamedResponse(status=response.status, headers=response.headers, chunks=chunks())

    async def aclose(self) -> None:
        self.closed = True
