"""The Redis-shared rate limiter against a real redis-server: several limiter instances, each on
its own connection as separate workers would be, share one bucket, one pause and one learned
rate; the token never reaches Redis; keys expire."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis_server import RedisServerError, find_redis_server, running_redis_server

from callsessions.http.ratelimit import RateLimiter
from callsessions.workers.redis_limiter import (
    KEY_PREFIX,
    RedisLimiterConfig,
    RedisRateLimiter,
    key_for,
)

TOKEN = "secret-token-XYZ"


class Stop(Exception):
    """Raised by RecordingSleep to end an acquire without really waiting."""


class RecordingSleep:
    """A sleep that records what it was asked to wait, and stops the caller instead."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        raise Stop


@asynccontextmanager
async def workers(
    url: str, n: int, config: RedisLimiterConfig, identity: str = TOKEN, **kwargs: Any
) -> AsyncIterator[list[RedisRateLimiter]]:
    """``n`` limiters with one identity, each on its own Redis connection, as n workers."""
    clients = [aioredis.Redis.from_url(url) for _ in range(n)]
    try:
        yield [RedisRateLimiter(c, identity, config, **kwargs) for c in clients]
    finally:
        for client in clients:
            await client.aclose()


async def redis_time(client: aioredis.Redis) -> float:
    seconds, micros = await client.time()
    return float(seconds) + float(micros) / 1e6


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open interval of length ``window``."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# -- the fixture ----------------------------------------------------------------------------


def test_a_missing_redis_server_fails_with_an_install_hint() -> None:
    with pytest.raises(RedisServerError, match="apt-get install -y redis-server"):
        find_redis_server("no-such-redis-server-binary")


async def test_a_private_server_answers_and_is_gone_afterwards() -> None:
    with running_redis_server() as url:
        client = aioredis.Redis.from_url(url)
        assert url.startswith("redis://127.0.0.1:") and url.endswith("/0")
        assert await client.ping()
        assert await client.config_get("save") == {"save": ""}
        await client.aclose()
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    with pytest.raises(aioredis.ConnectionError):
        await client.ping()
    await client.aclose()


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_starts_with_an_empty_redis(
    redis_client: aioredis.Redis, run: int
) -> None:
    assert await redis_client.dbsize() == 0
    await redis_client.set("leftover", run)


# -- sharing --------------------------------------------------------------------------------

RATE = 20.0
SPAN = 1.5


async def test_three_workers_together_never_exceed_the_shared_rate(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    grants: list[tuple[int, float]] = []
    await redis_client.config_resetstat()
    async with workers(redis_url, 3, RedisLimiterConfig(max_rate=RATE)) as limiters:
        deadline = await redis_time(redis_client) + SPAN

        async def pull(worker: int, limiter: RedisRateLimiter) -> None:
            while True:
                await limiter.acquire()
                assert limiter.granted_at is not None  # read before any await: this grant's
                grants.append((worker, limiter.granted_at))

        callers = [  # concurrency 3 per worker: 9 callers on one bucket
            asyncio.create_task(pull(w, limiter))
            for w, limiter in enumerate(limiters)
            for _ in range(3)
        ]
        await asyncio.sleep(SPAN + 0.05)  # the measuring window (Redis time decides below)
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
    stats = await redis_client.info("commandstats")
    calls = stats["cmdstat_evalsha"]["calls"]
    grants = [(w, t) for w, t in grants if t < deadline]
    times = [t for _, t in grants]
    # a bucket of 2 tokens at RATE/s: at most RATE + 2 grants in any second, RATE*SPAN + 2 in all
    burst = RedisLimiterConfig().burst
    assert max_in_window(times, 1.0) <= RATE + burst
    assert len(times) <= RATE * SPAN + burst
    assert len(times) >= 0.9 * RATE * SPAN  # and the limit is used, not just respected
    assert {w for w, _ in grants} == {0, 1, 2}
    # the line: waiters wake one by one (a closed loop costs two calls per grant: refused,
    # then granted), not all nine at every token
    assert calls <= 3 * len(times) + 2 * 9
    times.sort()
    steady = (len(times) - 1 - burst) / (times[-1] - times[int(burst)])
    assert steady == pytest.approx(RATE, rel=0.1)
    print(f"\nshared bucket: configured {RATE:.1f}/s; {len(times)} grants in {SPAN} s "
          f"(max {max_in_window(times, 1.0)} in any 1 s); after the first {burst:g} "
          f"(the full bucket) {steady:.2f}/s; {calls / len(times):.1f} script calls per grant")


async def test_a_throttle_seen_by_one_worker_pauses_the_others(redis_url: str) -> None:
    sleep = RecordingSleep()
    config = RedisLimiterConfig(max_rate=10.0, cooldown=0.0)
    async with workers(redis_url, 2, config, sleep=sleep, random=lambda: 0.0) as (a, b):
        await a.on_throttle(30.0)
        with pytest.raises(Stop):
            await b.acquire()
    assert sleep.waits == [pytest.approx(30.0, abs=0.05)]  # b waits out a's Retry-After
    assert b.rate == a.rate == pytest.approx(7.0)  # and saw the cut: 0.7 x 10


async def test_after_a_pause_the_waiters_come_back_one_interval_apart(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    # a bucket of 10 that would let all six waiters go at once, were it not capped at one
    config = RedisLimiterConfig(max_rate=20.0, burst=10.0, cooldown=0.0)
    async with workers(redis_url, 3, config) as (a, b, c):
        start = await redis_time(redis_client)
        await a.on_throttle(0.3)
        times: list[float] = []

        async def wait(limiter: RedisRateLimiter) -> None:
            await limiter.acquire()
            assert limiter.granted_at is not None
            times.append(limiter.granted_at)

        async with asyncio.TaskGroup() as tg:
            for limiter in (b, c, b, c, b, c):
                tg.create_task(wait(limiter))
    times.sort()
    # one token when the pause ends, then the cut rate (0.7 x 20): the k-th grant (from 0)
    # comes no sooner than k intervals after the pause; a full bucket would let all six go
    interval = 1 / (0.7 * 20.0)
    assert all(t >= start + 0.3 + k * interval - 1e-6 for k, t in enumerate(times)), [
        round(t - start, 3) for t in times
    ]
    assert times[-1] - times[0] >= 4 * interval


async def test_the_learned_rate_is_cut_from_the_measured_rate_and_shared(redis_url: str) -> None:
    loop = asyncio.get_running_loop()
    async with workers(redis_url, 2, RedisLimiterConfig(cooldown=0.0)) as (a, b):
        assert a.rate is None
        end = loop.time() + 0.65  # one full measuring period of 0.5 s
        while loop.time() < end:
            await a.acquire()
            assert a.rate is None  # unlimited until the first throttle
            await asyncio.sleep(0.025)  # the workload: at most 40 requests/s
            await a.on_success()  # the rate measured is the rate served
        await a.on_throttle(None)
        measured = (await a.state()).measured_rate
        assert measured is not None and 15 <= measured <= 40.5
        assert a.rate == pytest.approx(0.7 * measured)  # cut from the rate served
        print(f"\nserved {measured:.1f}/s -> cut to {a.rate:.1f}/s")
        cut = a.rate
        await b.acquire()
        assert b.rate == cut  # b learned a's rate from Redis
        await asyncio.sleep(0.2)
        await b.on_success()  # the CUBIC curve regrows from the cut...
        assert b.rate is not None and b.rate > cut
        await a.acquire()
        assert a.rate == b.rate  # ...for everyone


async def test_throttles_in_one_burst_cut_once_and_the_rate_stays_in_bounds(
    redis_url: str,
) -> None:
    async with workers(redis_url, 2, RedisLimiterConfig(max_rate=10.0)) as (a, b):
        for limiter in (a, b, a, b, a, b):  # six in-flight 429s, within the cooldown
            await limiter.on_throttle(None)
        assert a.rate == b.rate == pytest.approx(7.0)
    floor = RedisLimiterConfig(min_rate=2.0, max_rate=5.0, cooldown=0.0, scale=1e9)
    async with workers(redis_url, 1, floor, identity="another token") as (c,):
        for _ in range(20):  # 20 successes at once: measured as 20 / 0.5 s = 40/s
            await c.on_success()
        assert c.rate == pytest.approx(5.0)  # a cap holds from the start
        for _ in range(10):
            await c.on_throttle(None)
        assert c.rate == pytest.approx(2.0)  # 5 x 0.7**10 would be 0.14
        await asyncio.sleep(0.05)
        await c.on_success()  # a steep curve: 2 x 1e9 x (0.05 / 8)**3 requests/s
        assert c.rate == pytest.approx(5.0)


async def test_the_cut_follows_what_was_served_not_what_was_sent(redis_url: str) -> None:
    async with workers(redis_url, 1, RedisLimiterConfig(min_rate=1.5)) as (a,):
        for _ in range(30):  # 30 requests sent, none served
            await a.acquire()
        await a.on_throttle(None)
        assert a.rate == pytest.approx(1.5)  # nothing served: the floor, not 0.7 x 30


async def test_it_is_the_pipelines_rate_limiter(redis_client: aioredis.Redis) -> None:
    limiter: RateLimiter = RedisRateLimiter(redis_client, TOKEN)  # mypy checks the shape
    assert isinstance(limiter, RateLimiter)
    assert limiter.rate is None


async def test_jitter_spreads_waits_by_at_most_one_interval(redis_url: str) -> None:
    config = RedisLimiterConfig(max_rate=10.0, cooldown=0.0)
    sleep = RecordingSleep()
    async with workers(redis_url, 1, config, sleep=sleep, random=lambda: 1.0) as (a,):
        await a.on_throttle(5.0)
        with pytest.raises(Stop):
            await a.acquire()
    assert sleep.waits == [pytest.approx(5.0 + 1 / 7.0, abs=0.05)]


async def test_cancelled_waiters_leave_nothing_behind(redis_url: str) -> None:
    async with workers(redis_url, 2, RedisLimiterConfig(max_rate=5.0, burst=1.0)) as (a, b):
        await a.acquire()  # the bucket's one token: the next comes in 0.2 s
        waiters = [asyncio.create_task(b.acquire()) for _ in range(5)]
        await asyncio.sleep(0.05)
        for waiter in waiters:
            waiter.cancel()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        await asyncio.sleep(0.25)
        state = await a.state()
        assert state.tokens == pytest.approx(1.0)  # refilled; no cancelled waiter took it
        assert not b._redis.connection_pool._in_use_connections
        await asyncio.wait_for(b.acquire(), timeout=0.1)  # and b acquires at once


async def test_cancelling_inside_the_redis_call_keeps_the_connection_sane(redis_url: str) -> None:
    async with workers(redis_url, 1, RedisLimiterConfig()) as (a,):  # unlimited: no waits
        for i in range(40):  # cancel at assorted points of the round trip
            task = asyncio.create_task(a.acquire())
            for _ in range(i % 4):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert not a._redis.connection_pool._in_use_connections
        await a.on_throttle(None)  # replies still belong to their own commands
        assert a.rate is not None
        state = await a.state()
        assert state.rate == a.rate


# -- secrets and keys -----------------------------------------------------------------------


async def dump_everything(client: aioredis.Redis) -> list[bytes]:
    """Every key and every value in the database, as bytes."""
    out: list[bytes] = []
    readers: dict[bytes, Callable[[Any], Any]] = {
        b"string": client.get, b"hash": client.hgetall, b"list": lambda k: client.lrange(k, 0, -1),
        b"set": client.smembers, b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
    }
    async for key in client.scan_iter("*"):
        out.append(key)
        value = await readers[await client.type(key)](key)
        out.append(repr(value).encode())
    return out


async def test_the_token_appears_nowhere_in_redis(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    async with workers(redis_url, 2, RedisLimiterConfig(cooldown=0.0)) as (a, b):
        await a.acquire()
        await b.on_throttle(0.01)
        await b.on_success()
        await asyncio.sleep(0.02)
        await a.acquire()
        await a.state()
        dumped = await dump_everything(redis_client)
        assert dumped, "the limiter wrote nothing: the scan proves nothing"
        assert not [d for d in dumped if TOKEN.encode() in d]
        assert TOKEN not in repr(a) and TOKEN not in repr(vars(a))


async def test_keys_are_a_hash_of_the_identity_and_expire(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    expected = KEY_PREFIX + hashlib.sha256(TOKEN.encode()).hexdigest()[:16]
    assert key_for(TOKEN) == expected
    async with workers(redis_url, 1, RedisLimiterConfig(ttl=60.0)) as (a,):
        await a.acquire()
        assert [k async for k in redis_client.scan_iter("*")] == [expected.encode()]
        assert 59_000 < await redis_client.pttl(expected) <= 60_000
        await a.on_throttle(120.0)  # a pause outlives the TTL: the key must outlive the pause
        assert 179_000 < await redis_client.pttl(expected) <= 180_000


async def test_a_client_that_decodes_responses_works_too(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        limiter = RedisRateLimiter(client, TOKEN, RedisLimiterConfig(max_rate=4.0))
        await limiter.acquire()
        await limiter.on_throttle(None)
        await limiter.on_success()
        state = await limiter.state()
        assert limiter.rate is not None and limiter.rate == pytest.approx(state.rate)
        assert 0 < limiter.rate < 4.0 and state.paused_for == 0.0
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "kwargs",
    [{"min_rate": 0.0}, {"min_rate": 3.0, "max_rate": 2.0}, {"burst": 0.5}, {"beta": 1.0},
     {"ttl": 0.0}, {"cooldown": -1.0}],
)
def test_a_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (attrs' validator messages vary)
        RedisLimiterConfig(**kwargs)


def test_an_empty_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="identity"):
        key_for("")
