"""``python -m callsessions.workers worker --queue redis://HOST:6379/0 [--concurrency N]``

Runs one arq worker for call-session windows until SIGINT/SIGTERM. The service and the
credentials come from this machine's environment, never from Redis or the command line:
``CALLSESSIONS_BASE_URL`` and ``CALLSESSIONS_TOKEN``. The other options are
:class:`~callsessions.workers.arq.WorkerConfig` fields.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import WorkerConfig

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m callsessions.workers")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run a worker that pulls windows from the queue")
    add_worker_arguments(w)
    return parser


def add_worker_arguments(w: argparse.ArgumentParser) -> None:
    """The worker's options (for ``callsessions worker`` too)."""
    w.add_argument(
        "--queue",
        default=None,
        help="Redis URL, e.g. redis://HOST:6379/0 (default: $CALLSESSIONS_QUEUE)",
    )
    w.add_argument("--concurrency", type=int, default=2, help="windows at once (2)")
    w.add_argument(
        "--request-concurrency", type=int, default=4, help="requests in flight per window (4)"
    )
    w.add_argument("--max-tries", type=int, default=5, help="starts of a window, kills too (5)")
    w.add_argument(
        "--retry-defer",
        type=float,
        default=5.0,
        help="seconds before a window's 2nd try, doubling (5)",
    )
    w.add_argument(
        "--lease",
        type=float,
        default=30.0,
        help="a killed worker's window runs again after this many seconds (30)",
    )
    w.add_argument(
        "--window-timeout",
        type=float,
        default=1800.0,
        help="seconds for one try of one window (1800)",
    )
    w.add_argument("--poll-delay", type=float, default=0.5, help="queue poll interval (0.5)")
    w.add_argument("--queue-name", default=None, help="arq queue name (callsessions:queue)")
    w.add_argument(
        "--no-shared-limiter",
        action="store_true",
        help="pace each process on its own instead of one limit per token in Redis",
    )
    w.add_argument(
        "--max-rate",
        type=float,
        default=None,
        help="requests/s never exceeded by all workers of the token together",
    )
    w.add_argument(
        "--http-attempts",
        type=int,
        default=None,
        help="tries of one request inside a window (client default 6)",
    )
    w.add_argument(
        "--http-initial-wait",
        type=float,
        default=None,
        help="seconds before a request's 2nd try, doubling (client default 0.5)",
    )
    w.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    w.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")


#: what a worker started with neither ``--queue`` nor ``CALLSESSIONS_QUEUE`` is told
NO_QUEUE = "--queue is required (or set CALLSESSIONS_QUEUE)"


def queue_url(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """``--queue``, else ``CALLSESSIONS_QUEUE`` (None when neither is set)."""
    return args.queue or environ.get("CALLSESSIONS_QUEUE") or None


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    """A ``WorkerConfig`` from the parsed options."""
    from callsessions import RetryPolicy

    from .config import WorkerConfig
    from .jobs import QUEUE_NAME
    from .redis_limiter import RedisLimiterConfig

    http_retry = None
    if args.http_attempts is not None or args.http_initial_wait is not None:
        changes: dict[str, float] = {}
        if args.http_attempts is not None:
            changes["attempts"] = args.http_attempts
        if args.http_initial_wait is not None:
            changes["initial_wait"] = args.http_initial_wait
        http_retry = RetryPolicy(**changes)  # type: ignore[arg-type]
    return WorkerConfig(
        concurrency=args.concurrency,
        request_concurrency=args.request_concurrency,
        max_tries=args.max_tries,
        retry_defer=args.retry_defer,
        lease=args.lease,
        window_timeout=args.window_timeout,
        poll_delay=args.poll_delay,
        queue_name=args.queue_name or QUEUE_NAME,
        shared_limiter=not args.no_shared_limiter,
        limiter=RedisLimiterConfig(max_rate=args.max_rate),
        http_retry=http_retry,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from redis.exceptions import RedisError

    from callsessions import InvalidQueryError

    from .arq import run_worker

    url = queue_url(args, os.environ)
    if url is None:
        print(f"callsessions worker: {NO_QUEUE}", file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
        asyncio.run(run_worker(url, config=config, burst=args.burst))
    except (InvalidQueryError, ValueError) as exc:
        print(f"callsessions worker: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"callsessions worker: Redis at --queue: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
