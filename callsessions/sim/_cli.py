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

#: The random faults (``--rate-KIND``), in FaultConfig's draw order, with what each one sends.
_RATES = {
    "429": "answer 429 with Retry-After",
    "429_bare": "answer 429 without Retry-After",
    "500": "answer a JSON 500",
    "502": "answer an HTML 502 from the gateway",
    "503": "answer an HTML 503 from the gateway",
    "disconnect": "close the connection mid-body",
    "truncated": "answer 200 with the JSON cut in half",
    "stall": "delay the answer by --stall-seconds",
    "html_200": "answer 200 with an HTML login page, as a captive portal does",
}
_PROBABILITY = "probability per request, 0..1"


def _aware_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("the start needs a UTC offset, e.g. +00:00")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options (host, port, data, auth, faults) to ``parser``.

    Every help line ends with the option's default and its unit, e.g. ``(default: 0.0,
    probability per request, 0..1)``; every fault is off by default.
    """
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port (0: any free one; default: %(default)s)"
    )
    _add_data(parser.add_argument_group("data"))
    _add_auth(parser.add_argument_group("auth"))
    faults = parser.add_argument_group(
        "faults", "How the server misbehaves; all off by default, reproducible from --seed."
    )
    _add_timing(faults)
    _add_rates(faults)
    _add_shape(faults)


def _add_data(data: argparse._ArgumentGroup) -> None:
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
        help="days the calls spread over (default: %(default)s, days)",
    )
    data.add_argument(
        "--burst-fraction",
        type=float,
        default=0.3,
        help="share of calls in same-second bursts (default: %(default)s, fraction 0..1)",
    )
    data.add_argument(
        "--offset-ceiling",
        type=int,
        default=10_000,
        help="largest offset+limit answered (default: %(default)s, records)",
    )
    data.add_argument(
        "--record-cache-mb",
        type=float,
        default=256.0,
        help="rendered records kept for reuse; CPU only (default: %(default)s, MB; 0: none)",
    )


def _add_auth(auth: argparse._ArgumentGroup) -> None:
    auth.add_argument(
        "--token-ttl",
        type=int,
        default=7 * 86400,
        help="default token lifetime (default: %(default)s, seconds)",
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


def _add_timing(faults: argparse._ArgumentGroup) -> None:
    """Delays, and the per-token rate limit."""
    faults.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="fixed delay of each search answer (default: %(default)s, milliseconds)",
    )
    faults.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="random extra delay, up to this (default: %(default)s, milliseconds)",
    )
    faults.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="R",
        help="requests allowed per token, refilling a token bucket; beyond it a 429 with "
        "Retry-After (default: off, requests/s)",
    )
    faults.add_argument(
        "--rate-limit-burst",
        type=int,
        default=1,
        metavar="N",
        help="size of the token bucket (default: %(default)s, requests)",
    )


def _add_rates(faults: argparse._ArgumentGroup) -> None:
    """The exclusive random faults (their probabilities add up to at most 1)."""
    for kind, what in _RATES.items():
        faults.add_argument(
            f"--rate-{kind.replace('_', '-')}",
            type=float,
            default=0.0,
            metavar="P",
            help=f"{what} (default: %(default)s, {_PROBABILITY})",
        )
    faults.add_argument(
        "--retry-after",
        type=int,
        default=1,
        metavar="S",
        help="Retry-After of the 429s (default: %(default)s, seconds)",
    )
    faults.add_argument(
        "--stall-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="delay of a stalled answer (default: %(default)s, seconds)",
    )
    faults.add_argument(
        "--fail-first",
        type=int,
        default=0,
        metavar="N",
        help="the first N search requests answer --fail-first-status (default: %(default)s, "
        "requests)",
    )
    faults.add_argument(
        "--fail-first-status",
        type=int,
        choices=(429, 500, 502, 503),
        default=503,
        help="status of those answers (default: %(default)s, HTTP status)",
    )


def _add_shape(faults: argparse._ArgumentGroup) -> None:
    """Faults in what a 200 holds: order, live inserts, counts, ids."""
    faults.add_argument(
        "--shuffle-ties",
        action="store_true",
        help="shuffle records with equal sort keys anew on every request (default: off)",
    )
    faults.add_argument(
        "--insert-every",
        type=int,
        default=0,
        metavar="K",
        help="every K-th search request first inserts records (default: %(default)s = off, "
        "requests)",
    )
    faults.add_argument(
        "--insert-count",
        type=int,
        default=1,
        metavar="N",
        help="records inserted each time (default: %(default)s, records)",
    )
    faults.add_argument(
        "--count-cap",
        type=int,
        default=None,
        metavar="N",
        help="report count as at most N, like Elasticsearch's track_total_hits "
        "(default: off, records)",
    )
    faults.add_argument(
        "--count-extra",
        type=int,
        default=0,
        metavar="N",
        help="report count N too high, as a stale count with deleted records "
        "(default: %(default)s, records)",
    )
    faults.add_argument(
        "--missing-id-every",
        type=int,
        default=0,
        metavar="N",
        help="serve every N-th record of the data set without its id "
        "(default: %(default)s = off, records)",
    )
    faults.add_argument(
        "--missing-id-null",
        action="store_true",
        help='serve those records with "id": null instead of no id key (default: off)',
    )


def config_from_args(ns: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` described by options parsed with :func:`add_arguments`."""
    rates = {f"rate_{kind}": getattr(ns, f"rate_{kind}") for kind in _RATES}
    faults = FaultConfig(
        retry_after=ns.retry_after,
        stall_seconds=ns.stall_seconds,
        fail_first=ns.fail_first,
        fail_first_status=ns.fail_first_status,
        rate_limit=ns.rate_limit,
        rate_limit_burst=ns.rate_limit_burst,
        shuffle_ties=ns.shuffle_ties,
        insert_every=ns.insert_every,
        insert_count=ns.insert_count,
        count_cap=ns.count_cap,
        count_extra=ns.count_extra,
        missing_id_every=ns.missing_id_every,
        missing_id_null=ns.missing_id_null,
        **rates,
    )
    extra = {} if ns.start is None else {"start": ns.start}
    return SimConfig(
        records=ns.records,
        seed=ns.seed,
        span=timedelta(days=ns.span_days),
        burst_fraction=ns.burst_fraction,
        offset_ceiling=ns.offset_ceiling,
        record_cache_mb=ns.record_cache_mb,
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
