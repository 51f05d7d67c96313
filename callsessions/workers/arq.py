"""Pulls on arq workers: one job per window of a plan, over a real Redis.

::

    # each worker machine (credentials from its own environment, never from Redis)
    CALLSESSIONS_BASE_URL=https://analyse.twin24.ai CALLSESSIONS_TOKEN=... \\
        python -m callsessions.workers worker --queue redis://HOST:6379/0 --concurrency 2

    # the coordinator
    summary = await run_distributed(plan, "redis://HOST:6379/0", "calls/")

Or include the job in your own arq app: ``functions = [*callsessions_functions(), ...]`` and
call :func:`startup` / :func:`shutdown` from your ``on_startup`` / ``on_shutdown`` (or use
:class:`WorkerSettings` as it is: ``arq callsessions.workers.arq.WorkerSettings``).

How a job behaves
-----------------
- **Arguments**: one JSON object: the one-window plan, the window key, the output directory
  and part format, the run's names. Jobs and results are JSON (``dumps``/``loads``), not
  pickle, and hold no credentials: the worker's client is built once per process, in
  :func:`startup`, from ``CALLSESSIONS_BASE_URL`` and ``CALLSESSIONS_TOKEN``.
- **Idempotent**: the job id is ``callsessions:<plan fingerprint>:<destination>:<window>``;
  the part is written only when the window is complete and verified, by rename, so a job
  that runs twice (a retry, a kill, a lease lost to a stall) replaces its part.
- **Retries**: a transient error (transport, 5xx, 429s beyond the client's patience, an
  incomplete window, a timeout, a disk error) raises ``arq.Retry(defer=...)`` with jittered
  exponential backoff (``retry_defer`` doubling up to ``retry_defer_max``) until
  ``max_tries``; a permanent one (400, 401, 403, 404, a record without an id, a server that
  ignores the range) and the last try's error raise :class:`WindowFailedError`, which arq
  stores as the job's failed result. The coordinator reads every result: nothing fails
  silently.
- **A killed worker**: arq marks a running job with ``arq:in-progress:<job id>`` (for
  ``job_timeout + 10`` s) and leaves the job in its queue; no other worker starts it while the
  key lives. The job holds that key as a *lease* instead: it sets its expiry to ``lease``
  seconds at once and renews it every ``lease / 3``. When its worker dies the key expires
  within ``lease`` and the next worker to poll (every ``poll_delay``) runs the window again:
  a killed worker's window restarts within ``lease + poll_delay`` (defaults 30 + 0.5 s). A
  SIGTERM is gentler: arq cancels the job, which is requeued at once. Each start counts as a
  try (``max_tries`` bounds kills too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from arq import Retry
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from arq.cron import CronJob
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import Function, Worker, func
from attrs import frozen

from callsessions import (
    AuthenticationError,
    BadRequestError,
    CallSessionsClient,
    InvalidQueryError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    PullPlan,
)
from callsessions.sinks import window_key

from .config import WorkerConfig
from .coordinator import run_distributed
from .jobs import JOB_NAME, QUEUE_NAME, JobSpec, dumps, loads
from .progress import ProgressReporter
from .redis_limiter import RedisRateLimiter
from .window import WindowFailedError, pull_window

__all__ = [
    "JOB_NAME",
    "QUEUE_NAME",
    "WorkerConfig",
    "WorkerSettings",
    "WorkerState",
    "callsessions_functions",
    "close_worker",
    "create_worker",
    "credentials",
    "dumps",
    "loads",
    "pull_window_job",
    "run_distributed",
    "run_worker",
    "shutdown",
    "startup",
]

log = logging.getLogger("callsessions.workers")

#: the ctx key of this package's per-process state
STATE = "callsessions"
CONFIG = "callsessions_config"

#: errors no retry can heal: the window fails at once
PERMANENT: tuple[type[BaseException], ...] = (
    InvalidQueryError,
    BadRequestError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    PaginationError,
)


@frozen
class WorkerState:
    """What one worker process shares between its jobs (kept in arq's ctx, never in Redis)."""

    config: WorkerConfig
    client: CallSessionsClient
    worker: str
    limiter: RedisRateLimiter | None


def worker_name() -> str:
    """``host:pid``: names the process in progress and results (no secret in it)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def credentials(base_url: str | None = None, token: str | None = None) -> tuple[str, str]:
    """The service root and the token: as given, else ``CALLSESSIONS_BASE_URL`` and
    ``CALLSESSIONS_TOKEN``; ValueError (naming the variables, never a value) if either is
    missing."""
    base_url = base_url or os.environ.get("CALLSESSIONS_BASE_URL")
    token = token or os.environ.get("CALLSESSIONS_TOKEN")
    if not base_url or not token:
        missing = [n for n, v in (("CALLSESSIONS_BASE_URL", base_url),
                                  ("CALLSESSIONS_TOKEN", token)) if not v]
        raise ValueError(f"set {' and '.join(missing)} in the worker's environment")
    return base_url, token


async def startup(ctx: dict[str, Any]) -> None:
    """arq ``on_startup``: build this process's client (once) from ``ctx`` or the environment.

    ``ctx["callsessions_config"]`` (a :class:`WorkerConfig`), ``ctx["callsessions_base_url"]``
    and ``ctx["callsessions_token"]`` are used when present; else ``CALLSESSIONS_BASE_URL`` and
    ``CALLSESSIONS_TOKEN``. The token stays in this process."""
    config: WorkerConfig = ctx.get(CONFIG) or WorkerConfig()
    base_url, token = credentials(
        ctx.pop("callsessions_base_url", None), ctx.pop("callsessions_token", None)
    )
    limiter = None
    settings: dict[str, Any] = {"concurrency": config.request_concurrency}
    if config.shared_limiter:
        limiter = RedisRateLimiter(ctx["redis"], token, config.limiter)
        settings["rate_limiter"] = limiter  # the client takes its token inside the slot
    if config.http_retry is not None:
        settings["retry"] = config.http_retry
    client = CallSessionsClient(base_url, token=token, **settings)
    ctx[STATE] = WorkerState(config, client, worker_name(), limiter)


async def shutdown(ctx: dict[str, Any]) -> None:
    """arq ``on_shutdown``: close the client."""
    state: WorkerState | None = ctx.pop(STATE, None)
    if state is not None:
        await state.client.aclose()


async def _hold_lease(redis: Any, job_id: str, lease: float) -> None:
    """Keep arq's in-progress key of ``job_id`` alive for ``lease`` seconds at a time."""
    key = in_progress_key_prefix + job_id
    lease_ms = max(1, round(lease * 1000))
    while True:
        await redis.pexpire(key, lease_ms)
        await asyncio.sleep(lease / 3)


def _rate_of(limiter: RedisRateLimiter | None) -> Callable[[], float | None]:
    if limiter is None:
        return lambda: None
    return lambda: limiter.rate


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _read_job(spec_data: Any) -> tuple[JobSpec, PullPlan]:
    """The job's spec and its one-window plan; WindowFailedError if they do not make one."""
    try:
        spec = JobSpec.from_json(spec_data)
        plan = PullPlan.from_json(spec.plan)
    except (ValueError, KeyError, TypeError) as exc:
        raise WindowFailedError("?", f"unreadable job: {_reason(exc)}") from None
    if len(plan.windows) != 1 or window_key(plan.windows[0]) != spec.window:
        raise WindowFailedError(spec.window, "the job's plan does not hold its window")
    return spec, plan


async def pull_window_job(ctx: dict[str, Any], spec_data: dict[str, Any]) -> dict[str, Any]:
    """The arq job: pull one window (``spec_data`` from the coordinator) into its part file.

    Returns the window's result (a JSON object); raises ``arq.Retry`` for a transient error
    with tries left, :class:`WindowFailedError` otherwise (see the module docstring)."""
    state: WorkerState = ctx[STATE]
    config = state.config
    job_try: int = ctx.get("job_try", 1)
    spec, plan = _read_job(spec_data)
    reporter = ProgressReporter(
        ctx["redis"], spec.progress, spec.window, worker=state.worker, attempt=job_try,
        interval=config.progress_interval, ttl=config.keep_result, rate=_rate_of(state.limiter),
    )
    lease = asyncio.ensure_future(_hold_lease(ctx["redis"], ctx.get("job_id", ""), config.lease))
    records, summary = 0, None

    async def on_page(n: int, s: Any) -> None:
        nonlocal records, summary
        records, summary = n, s
        await reporter.update(n, s)

    try:
        await reporter.start()
        if not await asyncio.to_thread(os.path.isdir, spec.out):
            raise FileNotFoundError(
                f"the output directory {spec.out} is not on {state.worker}: every worker must "
                "see the coordinator's directory at the same path"
            )
        async with asyncio.timeout(config.window_timeout):
            result = await pull_window(
                state.client, plan, spec.out, format=spec.format, on_page=on_page
            )
    except Exception as exc:
        reason = _reason(exc)
        if isinstance(exc, PERMANENT) or job_try >= config.max_tries:
            await reporter.finish("failed", records, summary, reason)
            raise WindowFailedError(spec.window, f"{reason} (try {job_try})") from None
        defer = config.backoff(job_try)
        log.warning("window %s, try %d: %s; again in %.1fs", spec.window, job_try, reason, defer)
        await reporter.finish("retrying", records, summary, reason)
        raise Retry(defer=defer) from exc
    finally:
        lease.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lease
    await reporter.finish("done", result.records, summary)
    return {**result.to_json(), "worker": state.worker, "tries": job_try}


def callsessions_functions(config: WorkerConfig | None = None) -> list[Function]:
    """The job functions to register in an arq worker (one: :data:`JOB_NAME`), with the
    config's ``max_tries`` and ``job_timeout``."""
    config = config or WorkerConfig()
    return [
        func(
            pull_window_job,
            name=JOB_NAME,
            max_tries=config.max_tries,
            timeout=config.job_timeout,
            keep_result=config.keep_result,
        )
    ]


def _settings_from_env() -> RedisSettings:
    url = os.environ.get("CALLSESSIONS_QUEUE")
    return RedisSettings.from_dsn(url) if url else RedisSettings()


class WorkerSettings:
    """arq settings for ``arq callsessions.workers.arq.WorkerSettings``, or a base to copy
    into your own: Redis from ``CALLSESSIONS_QUEUE`` (read when this module is imported),
    credentials from ``CALLSESSIONS_BASE_URL`` / ``CALLSESSIONS_TOKEN``, the default
    :class:`WorkerConfig` (copy ``callsessions_functions(config)`` and the numbers below
    from your own config to change it)."""

    # typed exactly as arq's WorkerSettingsBase protocol (attributes are invariant)
    functions: Sequence[WorkerCoroutine | Function] = tuple(callsessions_functions())
    cron_jobs: Sequence[CronJob] | None = None
    on_startup: StartupShutdown | None = startup
    on_shutdown: StartupShutdown | None = shutdown
    queue_name: str = QUEUE_NAME
    job_serializer: Callable[[dict[str, Any]], bytes] = dumps
    job_deserializer: Callable[[bytes], dict[str, Any]] = loads
    redis_settings: RedisSettings = _settings_from_env()
    max_jobs: int = WorkerConfig().concurrency
    job_timeout: float = WorkerConfig().job_timeout
    keep_result: float = WorkerConfig().keep_result
    max_tries: int = WorkerConfig().max_tries
    poll_delay: float = WorkerConfig().poll_delay


def create_worker(
    queue: str,
    *,
    base_url: str | None = None,
    token: str | None = None,
    config: WorkerConfig | None = None,
    burst: bool = False,
    handle_signals: bool = True,
) -> Worker:
    """An arq ``Worker`` for this package's jobs on the Redis at URL ``queue``.

    ``base_url`` / ``token`` default to the environment (see :func:`startup`); ``burst``
    stops the worker when the queue is empty (tests, one-off runs)."""
    config = config or WorkerConfig()
    ctx: dict[str, Any] = {CONFIG: config}
    if base_url is not None:
        ctx["callsessions_base_url"] = base_url
    if token is not None:
        ctx["callsessions_token"] = token
    return Worker(
        functions=callsessions_functions(config),
        queue_name=config.queue_name,
        redis_settings=RedisSettings.from_dsn(queue),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=config.concurrency,
        job_timeout=config.job_timeout,
        keep_result=config.keep_result,
        max_tries=config.max_tries,
        poll_delay=config.poll_delay,
        ctx=ctx,
        job_serializer=dumps,
        job_deserializer=loads,
    )


async def close_worker(worker: Worker) -> None:
    """``worker.close()``: wait for its jobs, run ``on_shutdown``, close its Redis pool.

    arq 0.28 closes the pool with redis-py's deprecated ``close()``; that one warning is
    silenced here (it is arq's to fix, and a test suite with warnings as errors fails on it).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Call to deprecated close\.", category=DeprecationWarning
        )
        await worker.close()


async def run_worker(
    queue: str,
    *,
    base_url: str | None = None,
    token: str | None = None,
    config: WorkerConfig | None = None,
    burst: bool = False,
) -> None:
    """Run a worker until SIGINT/SIGTERM (or, with ``burst``, until the queue is empty). A
    signal cancels the running windows, which arq puts back in the queue at once.
    The credentials are checked first (see :func:`credentials`)."""
    base_url, token = credentials(base_url, token)
    worker = create_worker(queue, base_url=base_url, token=token, config=config, burst=burst)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        if worker.main_task is None or not worker.main_task.cancelled():
            raise
    finally:
        await close_worker(worker)
