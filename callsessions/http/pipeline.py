"""One request, end to end: the rate limiter, the concurrency slot, credentials, the
transport and the response check, under the retry policy and a pull's retry budget.

Every request of a client goes through one ``RequestPipeline``: pages, counts, planning and
the download of an export alike. A 429 is not a failure while the server is serving: it
slows the pace and the request goes again without using an attempt or the budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
from attrs import define

from callsessions.errors import (
    ConnectionFailedError,
    RateLimitedError,
    ThrottledOutError,
    TokenExpiredError,
    TransportError,
)
from callsessions.http.auth import Auth
from callsessions.http.config import ClientConfig
from callsessions.http.limiter import AdaptiveLimiter
from callsessions.http.ratelimit import AdaptiveRateLimiter, RateLimiter
from callsessions.http.retry import RetryBudget
from callsessions.http.transport import Transport
from callsessions.protocol.query import SessionQuery
from callsessions.protocol.summary import PullSummary
from callsessions.protocol.wire import (
    HTTPRequest,
    HTTPResponse,
    PageData,
    build_page_request,
    check_body,
    error_from_response,
    parse_page,
)

__all__ = ["RequestContext", "RequestPipeline"]

log = logging.getLogger("callsessions")

R = TypeVar("R")


@define
class RequestContext:
    """What the requests of one pull (or of one single call) share: counters, the retry
    budget and the concurrency limiter."""

    summary: PullSummary
    budget: RetryBudget
    limiter: AdaptiveLimiter | None = None


class RequestPipeline:
    """Sends requests for one client. ``stats`` counts those made outside pulls."""

    def __init__(
        self,
        base_url: str,
        config: ClientConfig,
        transport: Transport,
        auth: Auth | None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.base_url = base_url
        self.config = config
        self.transport = transport
        self.auth = auth
        #: paces every request of this client (pulls, planning, single pages) to the
        #: server's rate: learned from 429s, capped by ``max_rate``; one shared by many
        #: processes (``callsessions.workers.redis_limiter``) can be given instead
        self.rate: RateLimiter = rate_limiter or _default_rate_limiter(config)
        now = getattr(self.rate, "now", None)
        self._clock: Callable[[], float] = now if callable(now) else time.monotonic
        #: the clock's time of this client's last served request (None before any)
        self._last_success: float | None = None
        self.budget = RetryBudget.for_policy(config.retry)
        self.stats = PullSummary()
        #: the first transient failure of a host is announced once (see ``_on_retry``)
        self._announced: set[str] = set()

    def context(self) -> RequestContext:
        """For requests outside pulls: the client's own counters and budget."""
        return RequestContext(summary=self.stats, budget=self.budget)

    def fresh_context(self, limiter: AdaptiveLimiter | None = None) -> RequestContext:
        """For one pull: counters and a budget of its own."""
        return RequestContext(PullSummary(), RetryBudget.for_policy(self.config.retry), limiter)

    def request_for(self, query: SessionQuery) -> HTTPRequest:
        return build_page_request(
            query,
            base_url=self.base_url,
            endpoint_path=self.config.endpoint_path,
            wire=self.config.wire_names,
        )

    # -- sending ------------------------------------------------------------------------

    async def send_plain(self, request: HTTPRequest, authorization: str | None) -> HTTPResponse:
        return await self.transport.send(request, authorization)

    async def authorization(self) -> str | None:
        return await self.auth.authorization(self.send_plain) if self.auth else None

    async def send_authed(self, request: HTTPRequest, ctx: RequestContext) -> HTTPResponse:
        """One attempt: send with the current credentials; on 401 "token expired", renew
        them once and repeat the request once."""
        authorization = await self.authorization()
        ctx.summary.requests += 1
        response = await self.transport.send(request, authorization)
        if response.status == 401 and self.auth is not None and authorization is not None:
            error = error_from_response(response, method=request.method, path=request.path)
            if isinstance(error, TokenExpiredError) and await self.auth.renew(
                self.send_plain, authorization
            ):
                log.info("token expired: renewed, repeating %s %s", request.method, request.path)
                authorization = await self.authorization()
                ctx.summary.requests += 1
                response = await self.transport.send(request, authorization)
        return response

    async def page_data(self, request: HTTPRequest, ctx: RequestContext) -> PageData:
        """One page request, parsed."""

        def parse(response: HTTPResponse) -> PageData:
            return parse_page(response, method=request.method, path=request.path)

        return await self.checked(request, ctx, parse)

    async def body(self, request: HTTPRequest, ctx: RequestContext) -> bytes:
        """One page request whose body is kept as bytes to parse later: only the status is
        checked, and that the body is not visibly cut short."""

        def check(response: HTTPResponse) -> bytes:
            if response.status != 200:
                parse_page(response, method=request.method, path=request.path)  # raises
            check_body(response.body, method=request.method, path=request.path)
            return response.body

        return await self.checked(request, ctx, check)

    async def count(self, query: SessionQuery, ctx: RequestContext) -> int | None:
        """How many records match ``query`` (one ``limit=1`` request)."""
        probe = attrs.evolve(query, fields=("id",), page_size=1, offset=None, page=None)
        data = await self.page_data(self.request_for(probe), ctx)
        ctx.summary.planning_requests += 1
        return data.count

    async def checked(
        self, request: HTTPRequest, ctx: RequestContext, check: Callable[[HTTPResponse], R]
    ) -> R:
        """Send under the rate limiter, the retry policy, the budget and the concurrency
        limiter; ``check`` turns the response into the result or raises (an error it raises
        may be retried)."""

        async def send() -> HTTPResponse:
            # The rate's token is taken inside the concurrency slot, right before the
            # request leaves: a request that waited for a slot must not hold a token granted
            # before a 429 paused everyone.
            if ctx.limiter is None:
                await self.rate.acquire()
                return await self.send_authed(request, ctx)
            async with ctx.limiter.slot():
                await self.rate.acquire()
                return await self.send_authed(request, ctx)

        async def attempt() -> R:
            return check(await send())

        return await self.retried(request, ctx, attempt)

    async def retried(
        self, request: HTTPRequest, ctx: RequestContext, attempt: Callable[[], Awaitable[R]]
    ) -> R:
        """``attempt()`` under the retry policy; 429s while the server serves go again."""

        async def paced() -> R:
            while True:
                try:
                    data = await attempt()
                except RateLimitedError as exc:
                    if not await self._throttled(exc, ctx):
                        raise
                    continue
                await self.rate.on_success()
                self._last_success = self._clock()
                ctx.budget.on_success()
                if ctx.limiter is not None:
                    ctx.limiter.on_success()
                return data

        tries = [1]

        def on_retry(exc: BaseException, wait: float, attempt_number: int) -> None:
            tries[0] = attempt_number + 1
            self._on_retry(request, ctx, exc, wait, attempt_number)

        try:
            result: R = await self.config.retry.retrying(ctx.budget, on_retry)(paced)
        except TransportError as exc:
            if tries[0] == 1:
                raise
            # The last line a person reads says which host, and that it was tried again.
            host = request.url.split("://", 1)[-1].split("/", 1)[0]
            raise type(exc)(
                f"{exc.message} (host {host}; gave up after {tries[0]} attempts)",
                method=exc.method,
                path=exc.path,
            ) from None
        return result

    def _on_retry(
        self,
        request: HTTPRequest,
        ctx: RequestContext,
        exc: BaseException,
        wait: float,
        attempt_number: int,
    ) -> None:
        ctx.summary.retries += 1
        if isinstance(exc, RateLimitedError):
            ctx.summary.throttled += 1
            ctx.summary.throttled_seconds += wait
        host = request.url.split("://", 1)[-1].split("/", 1)[0]
        if isinstance(exc, ConnectionFailedError) and host not in self._announced:
            # Said once per host at the default verbosity: a person sees at once that the
            # host does not answer, instead of a silent wait through the retries.
            self._announced.add(host)
            log.warning(
                "cannot connect to %s (%s); retrying in %.1f s, attempt %d of %d",
                host,
                exc.message,
                wait,
                attempt_number + 1,
                self.config.retry.attempts,
            )
        else:
            log.info("retrying in %.2fs after %s", wait, exc)

    async def _throttled(self, exc: RateLimitedError, ctx: RequestContext) -> bool:
        """A 429: slow the pace (the rate limiter also pauses for its Retry-After). While
        the server is serving (a success within ``max_stall``), the request simply goes
        again: True, and it uses no attempt and no retry budget. Otherwise False: the retry
        policy decides, as for any failure. When it has served nothing for ``max_stall``
        after serving before, ``ThrottledOutError``."""
        wait = min(exc.retry_after or 0.0, self.config.retry.retry_after_cap)
        if ctx.limiter is not None:
            ctx.limiter.on_throttle(0.0)  # fewer in flight too; the rate limiter paces
        await self.rate.on_throttle(wait)
        if self._last_success is None:
            return False
        if self._clock() - self._last_success > self.config.max_stall:
            raise ThrottledOutError(
                f"the server has served nothing for {self.config.max_stall:g} s and refused "
                f"{ctx.summary.throttled + 1} requests with 429 (rate limited): giving up; "
                "try again later or lower max_rate",
                method=exc.method,
                path=exc.path,
            )
        ctx.summary.throttled += 1
        ctx.summary.throttled_seconds += wait
        ctx.summary.retries += 1
        log.debug("throttled (rate %s req/s): %s", self.rate.rate, exc)
        return True


class _SkippedTime:
    """A clock whose sleeps are skipped: they move the clock on instead of waiting. A
    policy without waits (``RetryPolicy.no_wait()``, for tests) paces on this."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def clock(self) -> float:
        return time.monotonic() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)


def _default_rate_limiter(config: ClientConfig) -> AdaptiveRateLimiter:
    retry = config.retry
    if retry.max_wait == 0 and retry.retry_after_cap == 0:
        skipped = _SkippedTime()
        return AdaptiveRateLimiter(
            max_rate=config.max_rate, clock=skipped.clock, sleep=skipped.sleep
        )
    return AdaptiveRateLimiter(max_rate=config.max_rate)
