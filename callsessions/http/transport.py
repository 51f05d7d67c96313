"""The transport: the only module that imports aiohttp.

``Transport`` is the seam: ``send`` takes an ``HTTPRequest`` and the ``Authorization`` value
(kept out of the request object so that no repr can show it) and returns an ``HTTPResponse``
with the whole body; ``stream`` does the same for downloads, yielding the body in chunks.
``AiohttpTransport`` implements it over one ``ClientSession``, owned or given. Failures below
HTTP become ``ConnectionFailedError`` or ``RequestTimeoutError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import aiohttp
from attrs import frozen

from callsessions.__about__ import __version__
from callsessions.errors import (
    ConnectionFailedError,
    DecodeError,
    RequestTimeoutError,
    TransportError,
)
from callsessions.protocol.wire import HTTPRequest, HTTPResponse

__all__ = ["DEFAULT_MAX_BODY", "AiohttpTransport", "StreamedResponse", "Transport"]

#: the largest body read whole by default (a page of 1000 full records is about 1.3 MB)
DEFAULT_MAX_BODY = 256 << 20


@frozen
class StreamedResponse:
    """A response whose body is read in chunks (``chunks``), for downloads."""

    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]


class Transport(Protocol):
    """What the client needs from HTTP: one request in, one response out."""

    async def send(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        """Send ``request``; return status, headers and the whole body."""
        ...

    def stream(
        self, request: HTTPRequest, authorization: str | None, chunk_size: int = 1 << 16
    ) -> AbstractAsyncContextManager[StreamedResponse]:
        """An async context manager yielding a response whose body comes in chunks."""
        ...

    async def aclose(self) -> None:
        """Release connections this transport owns."""
        ...


def _headers(request: HTTPRequest, authorization: str | None) -> dict[str, str]:
    headers = dict(request.headers)
    headers.setdefault("User-Agent", f"callsessions/{__version__}")
    if authorization is not None:
        headers["Authorization"] = authorization
    return headers


class AiohttpTransport:
    """``Transport`` over an aiohttp ``ClientSession``.

    With ``session`` given, that session is used and never closed here; otherwise one is
    created on first use with a connection pool of ``max_connections`` and closed by
    ``aclose``. ``timeout`` bounds one whole request (seconds), ``connect_timeout`` the
    connection set-up, ``max_body_bytes`` the size of a body read whole (a larger one is a
    ``DecodeError``, never an unbounded read).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_connections: int = 32,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._session = session
        self._max_body = max_body_bytes
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._max_connections = max_connections
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise TransportError("the client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            # Pages are about a megabyte: read them in large steps (measured ~25 % less CPU
            # per byte than the 64 KiB default).
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, read_bufsize=1 << 20
            )
        return self._session

    async def send(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        session = self._get_session()
        try:
            async with session.request(
                request.method,
                request.url,
                params=list(request.params) or None,
                json=request.json,
                headers=_headers(request, authorization),
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await self._read(resp, request)
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return HTTPResponse(status=resp.status, headers=headers, body=body)
        except Exception as exc:
            raise _map_error(exc, request) from None

    async def _read(self, resp: aiohttp.ClientResponse, request: HTTPRequest) -> bytes:
        """The whole body, at most ``max_body_bytes`` of it."""
        cap = self._max_body
        if resp.content_length is not None and resp.content_length <= cap:
            return await resp.read()
        if resp.content_length is None:
            data = bytearray()
            async for chunk in resp.content.iter_any():
                data += chunk
                if len(data) > cap:
                    break
            else:
                return bytes(data)
        raise DecodeError(
            f"the body is larger than max_body_bytes ({cap} bytes)",
            method=request.method,
            path=request.path,
        )

    @asynccontextmanager
    async def stream(
        self, request: HTTPRequest, authorization: str | None, chunk_size: int = 1 << 16
    ) -> AsyncIterator[StreamedResponse]:
        session = self._get_session()
        # A download may take long: bound the pauses between chunks, not the whole body.
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._timeout.sock_connect,
            sock_read=self._timeout.total,
        )
        try:
            async with session.request(
                request.method,
                request.url,
                params=list(request.params) or None,
                headers=_headers(request, authorization),
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                headers = {k.lower(): v for k, v in resp.headers.items()}

                async def chunks() -> AsyncIterator[bytes]:
                    try:
                        async for chunk in resp.content.iter_chunked(chunk_size):
                            yield chunk
                    except Exception as exc:
                        raise _map_error(exc, request) from None

                yield StreamedResponse(status=resp.status, headers=headers, chunks=chunks())
        except (TransportError, GeneratorExit):
            raise
        except Exception as exc:
            mapped = _map_error(exc, request)
            if mapped is exc:
                raise
            raise mapped from None

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()


#: failures that do not heal in seconds: no name for the host, a TLS handshake that fails
#: (an https URL for a plain-HTTP server, a bad certificate)
_LASTING: tuple[type[BaseException], ...] = tuple(
    t
    for t in (
        getattr(aiohttp, "ClientConnectorDNSError", None),
        aiohttp.ClientConnectorSSLError,
        aiohttp.ClientConnectorCertificateError,
        aiohttp.ClientSSLError,
    )
    if isinstance(t, type)
)


def _map_error(exc: BaseException, request: HTTPRequest) -> BaseException:
    """aiohttp's and asyncio's failures as our transport errors (other errors unchanged)."""
    where: dict[str, Any] = {"method": request.method, "path": request.path}
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return RequestTimeoutError("no complete response within the timeout", **where)
    if isinstance(exc, _LASTING):
        return ConnectionFailedError(f"{type(exc).__name__}: {exc}", lasting=True, **where)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return ConnectionFailedError(f"{type(exc).__name__}: {exc}", **where)
    if isinstance(exc, aiohttp.ClientError):
        return ConnectionFailedError(f"{type(exc).__name__}: {exc}", **where)
    return exc
