"""One adaptive rate limit for every worker that pulls with one token, kept in Redis.

Each worker process (on any machine) builds its own :class:`RedisRateLimiter` with its own
Redis connection and the same key identity (the token); together they send no faster than one
limit, learn that limit together and pause together. It implements
:class:`callsessions.http.ratelimit.RateLimiter`, the seam the request pipeline uses.

What is shared (one Redis hash per identity, ``callsessions:ratelimit:<sha256[:16]>``)
-------------------------------------------------------------------------------------
- a **token bucket** (``tokens``, ``ts``, fill ``rate``): ``acquire`` asks a Lua script, which
  answers "go" or "wait N µs"; the client sleeps that long plus jitter (up to one interval)
  and asks again. A refused caller is told its place in a **line** (``line``: one interval
  after the caller refused before it), so waiters wake one by one: about two calls per grant
  however many wait, instead of one call per waiter per grant. A waiter holds nothing in
  Redis (no token is reserved), so a cancelled ``acquire`` leaks nothing: its place passes
  unused, and a bucket that fills up because nobody came clears the line;
- the **pause** (``pause``): a 429's ``Retry-After`` seen by one worker stops every worker
  until then, and the bucket holds at most one token when the pause ends, so the waiters come
  back one interval apart instead of all at once (a 429 without ``Retry-After`` empties it);
- the **learned rate**, adapted as the AWS SDKs' adaptive retry mode does (botocore
  ``retries/adaptive.py``): unlimited until the first throttle (or ``max_rate`` from the
  start, when set); on a throttle the rate is cut to ``beta`` x the measured rate of
  *successes* (``m_*``: what the server served, smoothed over periods of 0.5 s, paused time
  left out); on success it regrows along a CUBIC curve from the end of the pause, never above
  twice the measured rate; always within ``[min_rate, max_rate]``. Throttles within
  ``cooldown`` of a cut (or before its pause ends) answer requests sent before it: they extend
  the pause but do not cut again, so six in-flight 429s make one cut, not six.

Every script reads the clock with Redis ``TIME``, so machines with skewed clocks agree, and
runs atomically, so no read-modify-write race exists between workers. Every write refreshes
the key's TTL (``ttl``, plus any pause), so an unused limit disappears.

The identity is hashed in the constructor and never stored, logged, sent or shown: Redis only
ever sees the 16-hex-digit prefix of its SHA-256 (64 bits: enough to keep tokens apart; a
JWT's entropy makes it impossible to reverse).

Why our own Lua and not ``limits``
----------------------------------
``limits`` (alisaifee/limits) is well kept and has async Redis storage, but it enforces a
*fixed*, configured rate ("10/second") with window counters; it has no rate learned from
429s, no shared pause-until, no spreading of waiters after a pause, and its Redis window
scripts take the time from the client (``time.time()``), which skewed machines do not share.
All of that would have to be written around it, in extra round trips that are not atomic with
its counter. Three short scripts over one hash do the whole job atomically, with no extra
dependency.

Why the arithmetic is in Lua and not :mod:`callsessions.http.cubic`
-------------------------------------------------------------------
The in-process limiter's pure ``TokenBucket``, ``RateMeter`` and ``CubicCalculator`` run in the
worker; here the same arithmetic must run *inside* Redis, in the same atomic step as the
bucket, or two workers would race between reading the state and writing it back (optimistic
WATCH/MULTI would conflict on nearly every success). So the scripts carry a compact copy of
it, with the same constants and shape: ``beta`` 0.7, the *relative* CUBIC curve of
``CubicCalculator`` (``scale`` 0.4, ``period`` 8 s), growth capped at twice the measured
rate, the same cooldown rule. One difference, on purpose: there is no slow start after the
first throttle (``RateAdapter`` starts at the measured rate and doubles); the first throttle
cuts like every other, as botocore does: a doubling rate soon provokes a second round of 429s,
one per request in flight on every worker, and a shared limit is there to keep 429s rare.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random as _random
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from attrs import field, frozen, validators

__all__ = ["KEY_PREFIX", "RedisLimiterConfig", "RedisLimiterState", "RedisRateLimiter", "key_for"]

log = logging.getLogger(__name__)

KEY_PREFIX = "callsessions:ratelimit:"


def key_for(identity: str) -> str:
    """The Redis key for one identity: the prefix and the first 16 hex digits of its SHA-256."""
    if not identity:
        raise ValueError("the limiter's identity must not be empty")
    return KEY_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:16]


def _positive(_: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@frozen
class RedisLimiterConfig:
    """How the shared limit behaves; every worker of one identity should use the same values.

    ``max_rate`` caps the rate at all times: when it is set, the limit starts at ``max_rate``
    instead of unlimited. ``burst`` is the bucket's size: how many requests may go back to
    back after a quiet spell. It is 2, not 1, because waiters poll: with a bucket of one, a
    token that comes while every waiter sleeps is lost, and 9 callers on 3 workers got only
    83-91 % of the rate (100 % with 2). After a throttle the bucket holds at most one token.
    """

    #: requests/s never cut below this
    min_rate: float = field(default=0.5, validator=_positive)
    #: requests/s never exceeded; ``None``: unlimited until the first throttle
    max_rate: float | None = field(
        default=None, validator=validators.optional(_positive)
    )
    burst: float = field(default=2.0, validator=validators.ge(1.0))
    #: a throttle cuts the rate to ``beta`` x the measured rate
    beta: float = field(default=0.7, validator=[validators.gt(0.0), validators.lt(1.0)])
    #: the CUBIC curve's scale and period: back at the rate of the cut after about
    #: ``period`` x 0.9 s, then probing faster and faster (the same curve at every rate)
    scale: float = field(default=0.4, validator=_positive)
    period: float = field(default=8.0, validator=_positive)
    #: seconds after a cut during which further throttles do not cut again
    cooldown: float = field(default=1.0, validator=validators.ge(0.0))
    #: seconds an unused limit survives in Redis
    ttl: float = field(default=3600.0, validator=validators.ge(1.0))

    def __attrs_post_init__(self) -> None:
        if self.max_rate is not None and self.max_rate < self.min_rate:
            raise ValueError("max_rate must be >= min_rate")


@frozen
class RedisLimiterState:
    """A snapshot of the shared limit (for progress displays and tests)."""

    #: requests/s, ``None`` while unlimited
    rate: float | None
    #: smoothed rate of successes, requests/s (``None`` before the first period of 0.5 s)
    measured_rate: float | None
    #: tokens in the bucket now (``None`` while unlimited)
    tokens: float | None
    #: seconds until the shared pause ends (0 when not paused)
    paused_for: float


# The prelude every script shares: config from ARGV[1..5], the state hash as a table of
# numbers, the Redis clock, and the helpers. Each script appends its own body.
_PRELUDE = """
local key = KEYS[1]
local min_rate = tonumber(ARGV[1])
local max_rate = tonumber(ARGV[2])  -- 0: no cap
local cap = tonumber(ARGV[3])       -- bucket size, >= 1
local ttl_ms = tonumber(ARGV[4])
local beta = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local PERIOD, SMOOTH, GROWTH_CAP = 0.5, 0.3, 2.0

local s = {}
local raw = redis.call('HGETALL', key)
for i = 1, #raw, 2 do s[raw[i]] = tonumber(raw[i + 1]) end
if #raw == 0 then s.tokens, s.ts, s.m_count = cap, now, 0 end

local function clamp(r)
  if max_rate > 0 and r > max_rate then r = max_rate end
  if r < min_rate then r = min_rate end
  return r
end
-- this worker's bounds hold at all times, and a cap means limited from the start
if s.rate ~= nil then s.rate = clamp(s.rate) elseif max_rate > 0 then s.rate = max_rate end

local function refill()
  if s.rate ~= nil and now > s.ts then
    s.tokens = math.min(cap, s.tokens + (now - s.ts) * s.rate)
    s.ts = now
  end
end

-- successes/s: the smoothed rate of closed periods, else the open period's count over at
-- least one period; nil before any success
local function measured()
  if s.m_rate ~= nil then return s.m_rate end
  if s.m_count > 0 then return s.m_count / math.max(now - s.m_start, PERIOD) end
  return nil
end

local function paused_us()
  if s.pause ~= nil and s.pause > now then return math.ceil((s.pause - now) * 1000000) end
  return 0
end

local function save()
  local flat = {}
  for k, v in pairs(s) do
    flat[#flat + 1] = k
    flat[#flat + 1] = string.format('%.17g', v)
  end
  redis.call('HSET', key, unpack(flat))
  redis.call('PEXPIRE', key, ttl_ms + math.ceil(paused_us() / 1000))
end

local function rate_text()
  if s.rate == nil then return '' end
  return string.format('%.17g', s.rate)
end
"""

# -> {granted 1/0, wait in µs, rate or '', the Redis time}
_ACQUIRE = (
    _PRELUDE
    + """
local wait = 0
if s.rate == nil then
  s.tokens, s.ts = cap, now
else
  refill()
  if s.tokens >= cap then s.line = now end  -- nobody came for a full bucket: no line
  if now >= s.ts and s.tokens >= 1 - 1e-9 then
    s.tokens = math.max(0, s.tokens - 1)
  else
    -- refused: come back at your place in the line, one interval after the one before,
    -- so that the waiters wake one by one (about one call per grant, not one per waiter)
    local ready = math.max(now, s.ts) + math.max(0, 1 - s.tokens) / s.rate
    local turn = math.max(ready, s.line or 0)
    s.line = turn + 1 / s.rate
    wait = turn - now
  end
end
save()
local now_text = string.format('%.6f', now)
if wait <= 0 then return {1, 0, rate_text(), now_text} end
return {0, math.max(1, math.ceil(wait * 1000000)), rate_text(), now_text}
"""
)

# ARGV[6] retry_after in seconds (<= 0: none), ARGV[7] cooldown -> {cut 1/0, rate, pause µs}
_THROTTLE = (
    _PRELUDE
    + """
local retry_after = tonumber(ARGV[6])
local cooldown = tonumber(ARGV[7])
if retry_after > 0 then s.pause = math.max(s.pause or 0, now + retry_after) end
local resume = math.max(now, s.pause or 0)
s.line = resume  -- the line starts again at the end of the pause, at the new rate
refill()
local cut = 0
if s.rate == nil or s.calm == nil or now >= s.calm then
  local base = measured() or s.rate or min_rate
  if s.rate ~= nil then base = math.min(base, s.rate) end
  s.w_max, s.c_start = base, resume
  s.rate = clamp(base * beta)
  s.calm = math.max(now + cooldown, resume)
  cut = 1
end
if resume > now then
  -- paused time is not sending time: fold what was measured, measure again from the end
  s.m_rate = measured()
  s.m_start, s.m_count = resume, 0
  s.tokens, s.ts = math.min(s.tokens, 1), resume  -- one token when the pause ends
else
  s.tokens, s.ts = 0, now  -- no pause: the next request waits one interval
end
save()
return {cut, rate_text(), paused_us()}
"""
)

# ARGV[6] CUBIC scale, ARGV[7] CUBIC period -> {rate}
_SUCCESS = (
    _PRELUDE
    + """
local scale = tonumber(ARGV[6])
local period = tonumber(ARGV[7])
if s.m_start == nil then s.m_start = now end
local elapsed = now - s.m_start
if elapsed >= PERIOD then
  local r = s.m_count / elapsed
  if s.m_rate ~= nil then r = SMOOTH * r + (1 - SMOOTH) * s.m_rate end
  s.m_rate, s.m_start, s.m_count = r, now, 0
end
s.m_count = s.m_count + 1
if s.rate ~= nil and s.w_max ~= nil then
  refill()
  -- relative CUBIC: rates in units of w_max, time in units of period
  local k = ((1 - beta) / scale) ^ (1 / 3)
  local x = math.max(0, now - s.c_start) / period - k
  local target = s.w_max * (1 + scale * x * x * x)
  s.rate = clamp(math.min(target, math.max(s.w_max, GROWTH_CAP * measured())))
end
save()
return {rate_text()}
"""
)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _rate(value: object) -> float | None:
    text = _text(value)
    return float(text) if text else None


class RedisRateLimiter:
    """The rate limiter seam (``acquire`` / ``on_success`` / ``on_throttle`` / ``rate``),
    shared by every instance with the same identity through one Redis.

    ``redis`` is the worker's own client (an arq worker's ``ctx["redis"]`` works: it is a
    ``redis.asyncio.Redis``); ``identity`` is the token or whatever names the limit; it is
    hashed at once and never kept. ``sleep`` and ``random`` are injectable for tests. Redis
    errors (``redis.ConnectionError``, ``redis.TimeoutError``) propagate: for a job they are
    transient, to retry.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        identity: str,
        config: RedisLimiterConfig | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._key = key_for(identity)
        self._redis = redis
        self.config = config if config is not None else RedisLimiterConfig()
        self._sleep = sleep
        self._random = random
        self._rate: float | None = self.config.max_rate
        #: Redis time (s) of this instance's latest grant: the shared clock, for measuring
        self.granted_at: float | None = None
        self._acquire = redis.register_script(_ACQUIRE)
        self._throttle = redis.register_script(_THROTTLE)
        self._success = redis.register_script(_SUCCESS)

    def __repr__(self) -> str:
        return f"RedisRateLimiter(key={self._key!r}, rate={self._rate!r})"

    @property
    def key(self) -> str:
        """The Redis key holding the shared state (a hash of the identity, never the identity)."""
        return self._key

    @property
    def rate(self) -> float | None:
        """Requests/s of the shared limit as of this worker's last call; ``None``: unlimited."""
        return self._rate

    def _args(self) -> list[float]:
        c = self.config
        return [c.min_rate, c.max_rate or 0, c.burst, round(c.ttl * 1000), c.beta]

    async def acquire(self) -> None:
        """Wait until a request may be sent. Cancelling the wait leaves nothing behind."""
        while True:
            reply = await self._acquire(keys=[self._key], args=self._args())
            granted, wait_us, rate, now = reply
            self._rate = _rate(rate)
            if int(granted):
                self.granted_at = float(_text(now))
                return
            wait = int(wait_us) / 1e6
            interval = 1.0 / self._rate if self._rate else wait
            await self._sleep(wait + self._random() * min(wait, interval))

    async def on_success(self) -> None:
        """A request was served: count it (the measured rate) and regrow the shared rate."""
        c = self.config
        args = [*self._args(), c.scale, c.period]
        (rate,) = await self._success(keys=[self._key], args=args)
        self._rate = _rate(rate)

    async def on_throttle(self, retry_after: float | None) -> None:
        """A 429 arrived: cut the shared rate and pause every worker for ``retry_after`` s."""
        pause = retry_after if retry_after is not None and retry_after > 0 else 0.0
        args = [*self._args(), pause, self.config.cooldown]
        cut, rate, paused_us = await self._throttle(keys=[self._key], args=args)
        self._rate = _rate(rate)
        if int(cut):
            log.info(
                "shared rate limit %s cut to %.3g requests/s, paused %.3g s",
                self._key, self._rate or 0.0, int(paused_us) / 1e6,
            )

    async def state(self) -> RedisLimiterState:
        """Read the shared state (one atomic round trip)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.time()
            pipe.hgetall(self._key)
            (seconds, micros), raw = await pipe.execute()
        now = int(seconds) + int(micros) / 1e6
        fields = {_text(k): float(_text(v)) for k, v in raw.items()}
        rate = fields.get("rate")
        tokens = None
        if rate is not None:
            refill = max(0.0, now - fields.get("ts", now)) * rate
            tokens = min(self.config.burst, fields.get("tokens", 0.0) + refill)
        return RedisLimiterState(
            rate=rate,
            measured_rate=fields.get("m_rate"),
            tokens=tokens,
            paused_for=max(0.0, fields.get("pause", 0.0) - now),
        )
