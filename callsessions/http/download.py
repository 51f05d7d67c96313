"""Export files streamed to disk: a temporary file beside the target, renamed when whole.

The download goes through the same pipeline as every request (rate limiter, retry policy,
credentials); a body that ends before its Content-Length restarts the download.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from attrs import frozen

from callsessions._files import OutputLock
from callsessions.errors import ConnectionFailedError, InvalidQueryError
from callsessions.http.pipeline import RequestContext, RequestPipeline
from callsessions.protocol.wire import HTTPRequest, HTTPResponse, error_from_response

__all__ = ["ExportResult", "download"]

log = logging.getLogger("callsessions")

#: the most of an error answer's body that is read (to describe it)
_ERROR_BODY = 1 << 16


@frozen
class ExportResult:
    """A finished export: where it is, its size, and the server's file name and type."""

    path: Path
    bytes: int
    filename: str | None
    content_type: str | None


async def download(
    pipeline: RequestPipeline,
    request: HTTPRequest,
    path: str | os.PathLike[str],
    ctx: RequestContext,
    on_progress: Callable[[int, int | None], None] | None = None,
    chunk_size: int = 1 << 16,
) -> ExportResult:
    """Stream ``request``'s body to ``path`` (locked for the while, see ``OutputLock``)."""
    target = _check_target(path)
    with OutputLock(target):

        async def attempt() -> ExportResult:
            await pipeline.rate.acquire()
            return await _once(pipeline, request, target, ctx, on_progress, chunk_size)

        return await pipeline.retried(request, ctx, attempt)


async def _once(
    pipeline: RequestPipeline,
    request: HTTPRequest,
    target: Path,
    ctx: RequestContext,
    on_progress: Callable[[int, int | None], None] | None,
    chunk_size: int,
) -> ExportResult:
    """One try of the download."""
    authorization = await pipeline.authorization()
    ctx.summary.requests += 1
    async with pipeline.transport.stream(request, authorization, chunk_size) as resp:
        if resp.status >= 400:
            body = b""
            async for chunk in resp.chunks:
                body += chunk
                if len(body) > _ERROR_BODY:
                    break
            raise error_from_response(
                HTTPResponse(resp.status, resp.headers, body),
                method=request.method,
                path=request.path,
            )
        total_header = resp.headers.get("content-length")
        total = int(total_header) if total_header and total_header.isdigit() else None
        # Not mkstemp: its 0600 would keep a BI tool running as another user out; this file
        # gets the umask's mode, like every other output.
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        done = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in resp.chunks:
                    out.write(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
                out.flush()
                os.fsync(out.fileno())
            if total is not None and done != total:
                raise ConnectionFailedError(
                    f"body ended after {done} of {total} bytes",
                    method=request.method,
                    path=request.path,
                )
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ExportResult(
            path=target,
            bytes=done,
            filename=_disposition_filename(resp.headers.get("content-disposition")),
            content_type=resp.headers.get("content-type"),
        )


def _check_target(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.is_dir():
        raise InvalidQueryError("path", str(target), "is a directory")
    if not target.parent.exists():
        raise InvalidQueryError("path", str(target), "its folder does not exist")
    return target


_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


def _disposition_filename(value: str | None) -> str | None:
    if not value:
        return None
    match = _FILENAME.search(value)
    return match.group(1) if match else None
