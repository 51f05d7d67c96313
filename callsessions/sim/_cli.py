"""Command-line options of the simulator, reusable by another CLI (``callsessions sim``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from ._config import FaultConfig, SimConfig
from ._server import serve

__all__ = ["add_arguments", "config_from_args", "main"]

_RATES = ("429", "429_bare", "500", "502", "503", "disconnect", "truncated", "stall")


def _aware_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("the start needs a UTC offset, e.g. +00:00")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options (host, port, data, auth, faults) to ``parser``."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port (0: any free one; default: %(default)s)"
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--records", type=int, default=10_000, help="calls to generate (default: %(default)s)"
    )
    data.add_argument(
        "--seed", type=int, default=0, help="seed of the data and faults (default: %(default)s)"
    )
    data.add_argument(
        "--start",
        type=_aware_datetime,
        default=None,
        help="first createdAt, ISO 8601 with offset (default: 2026-01-01T00:00:00+00:00)",
    )
    data.add_argument(
        "--span-days",
        type=float,
        default=7.0,
        help="days the calls spread over (default: %(default)s)",
    )
    data.add_argument(
        "--burst-fraction",
        type=float,
        default=0.3,
        help="share of calls in same-second bursts (default: %(default)s)",
    )
    data.add_argument(
        "--offset-ceiling",
        type=int,
        default=10_000,
        help="largest offset+limit answered (default: %(default)s)",
    )
    auth = parser.add_argument_group("auth")
    auth.add_argument(
        "--token-ttl",
        type=int,
        default=7 * 86400,
        help="default token lifetime, seconds (default: %(default)s)",
    )
    auth.add_argument(
        "--email", default="demo@example.com", help="accepted login email (default: %(default)s)"
    )
    auth.add_argument(
        "--password", default="demo-password", help="accepted login password (default: %(default)s)"
    )
    auth.add_argument(
        "--static-token",
        action="append",
        default=None,
        help="a token always accepted (repeatable; default: sim-static-token)",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--latency-ms", type=float, default=0.0, help="fixed delay per search request"
    )
    faults.add_argument(
        "--jitter-ms", type=float, default=0.0, help="random extra delay, up to this"
    )
    for kind in _RATES:
        faults.add_argument(
            f"--rate-{kind.replace('_', '-')}",
            type=float,
            default=0.0,
            metavar="P",
            help=f"probability of a '{kind}' fault",
        )
    faults.add_argument(
        "--retry-after",
        type=int,
        default=1,
        help="Retry-After seconds of 429s (default: %(default)s)",
    )
    faults.add_argument(
        "--stall-seconds",
        type=float,
        default=30.0,
        help="delay of a stalled response (default: %(default)s)",
    )
    faults.add_argument(
        "--fail-first", type=int, default=0, help="the first N search requests answer 503"
    )
    faults.add_argument(
        "--rate-limit", type=float, default=None, help="requests per second allowed per token"
    )
    faults.add_argument(
        "--rate-limit-burst", type=int, default=1, help="token bucket size (default: %(default)s)"
    )
    faults.add_argument(
        "--shuffle-ties",
        action="store_true",
        help="shuffle records with equal sort keys per request",
    )
    faults.add_argument(
        "--insert-every", type=int, default=0, help="every K-th search request inserts records"
    )
    faults.add_argument(
        "--insert-count",
        type=int,
        default=1,
        help="records inserted each time (default: %(default)s)",
    )


def config_from_args(ns: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` described by options parsed with :func:`add_arguments`."""
    rates = {f"rate_{kind}": getattr(ns, f"rate_{kind}") for kind in _RATES}
    faults = FaultConfig(
        retry_after=ns.retry_after,
        stall_seconds=ns.stall_seconds,
        fail_first=ns.fail_first,
        rate_limit=ns.rate_limit,
        rate_limit_burst=ns.rate_limit_burst,
        shuffle_ties=ns.shuffle_ties,
        insert_every=ns.insert_every,
        insert_count=ns.insert_count,
        **rates,
    )
    extra = {} if ns.start is None else {"start": ns.start}
    return SimConfig(
        records=ns.records,
        seed=ns.seed,
        span=timedelta(days=ns.span_days),
        burst_fraction=ns.burst_fraction,
        offset_ceiling=ns.offset_ceiling,
        latency=ns.latency_ms / 1000.0,
        jitter=ns.jitter_ms / 1000.0,
        token_ttl=ns.token_ttl,
        email=ns.email,
        password=ns.password,
        static_tokens=ns.static_token or ("sim-static-token",),
        faults=faults,
        **extra,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m callsessions.sim``: serve the simulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m callsessions.sim",
        description="A faithful local simulator of the TWIN call-session list API.",
    )
    add_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        config = config_from_args(ns)
    except ValueError as exc:
        parser.error(str(exc))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, ns.host, ns.port))
