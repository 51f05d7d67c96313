"""Option groups shared by the commands: the service, which calls, the pace, the display.

The filters' help texts name the statuses, fields and sort keys of
``callsessions.protocol.schema``, imported when a command that has them is built.
"""

from __future__ import annotations

import argparse

from callsessions.cli import argtypes as types
from callsessions.cli.texts import ENV_BASE_URL, ENV_EMAIL, ENV_PASSWORD, ENV_TOKEN

__all__ = ["add_connection", "add_display", "add_filters", "add_pace"]


def add_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("service")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="the service root, e.g. https://analyse.twin24.ai (the endpoint path is appended; "
        f"default: ${ENV_BASE_URL})",
    )
    group.add_argument(
        "--auth-url",
        metavar="URL",
        help=f"the IAM service root, e.g. https://iam.twin24.ai: log in with {ENV_EMAIL} "
        f"and {ENV_PASSWORD} instead of using {ENV_TOKEN}",
    )
    group.add_argument(
        "--endpoint-path",
        metavar="PATH",
        help="path of the call-session list (default: /api/v1/search/cis/calls)",
    )
    group.add_argument(
        "--wire-name",
        type=types.wire_name,
        action="append",
        metavar="PARAM=NAME",
        help="send a parameter under another query-string name, e.g. date_field=dateType "
        "(repeatable; the names are guessed where the API does not document them)",
    )
    group.add_argument(
        "--timeout",
        type=types.positive_float,
        metavar="SECONDS",
        help="time limit of one request (default: 60)",
    )
    # Hidden: tests and demos switch backoff sleeping off with --retry-wait 0.
    group.add_argument("--retry-wait", type=types.non_negative_float, help=argparse.SUPPRESS)


def add_filters(parser: argparse.ArgumentParser) -> None:
    from callsessions.protocol.schema import ALL_FIELDS, DATE_FIELDS, SORT_KEYS, CallStatus

    group = parser.add_argument_group("which calls")
    group.add_argument(
        "--from",
        dest="start",
        type=types.iso_datetime,
        required=True,
        metavar="ISO",
        help="start of the range, inclusive: ISO 8601 with a UTC offset, "
        "e.g. 2026-01-01T00:00:00+03:00",
    )
    group.add_argument(
        "--to",
        dest="end",
        type=types.iso_datetime,
        required=True,
        metavar="ISO",
        help="end of the range, exclusive (same form)",
    )
    group.add_argument(
        "--date-field",
        metavar="NAME",
        help=f"the date column --from/--to apply to: {', '.join(DATE_FIELDS)} (default: createdAt)",
    )
    group.add_argument(
        "--status",
        metavar="A,B",
        help="only these call statuses, comma-separated: " + ", ".join(s.value for s in CallStatus),
    )
    group.add_argument(
        "--extra-status",
        action="append",
        metavar="NAME",
        help="also a status this version does not know (upper-case letters, digits, _; "
        "repeatable)",
    )
    group.add_argument("--keyword", metavar="TEXT", help="full-text search over all fields")
    group.add_argument("--phone", metavar="NUMBER", help="only calls to this phone number")
    group.add_argument("--task-id", metavar="ID", help="only calls of this call task")
    group.add_argument("--call-id", metavar="ID", help="only the call with this id")
    group.add_argument("--company-id", type=int, metavar="N", help="only calls of this company")
    group.add_argument(
        "--fields",
        metavar="A,B",
        help="fields to fetch, comma-separated (default: all; id is always included): "
        + ", ".join(ALL_FIELDS),
    )
    group.add_argument(
        "--sort",
        metavar="KEYS",
        help=f"order, comma-separated from {', '.join(SORT_KEYS)}, each with + or - "
        "(write --sort=-duration when it starts with -; a pull needs the date column "
        "first, ascending, and uses that by default)",
    )


def add_pace(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--page-size", type=types.positive_int, metavar="N", help="records per request "
        "(default: 1000)"
    )
    group.add_argument(
        "--concurrency",
        type=types.concurrency,
        metavar="N",
        help="requests in flight at most; lowered automatically on 429 (default: 8); above "
        "8, a pull starts at 8 and doubles each round trip up to N until the first 429",
    )
    group.add_argument(
        "--slow-start",
        action="store_true",
        help="start with one request in flight and double each round trip up to "
        "--concurrency (fewer 429s from a tight rate limit; costs a few round trips)",
    )
    group.add_argument(
        "--no-count-ahead",
        dest="count_ahead",
        action="store_false",
        help="count a range's buckets only once its first page shows it needs windows (one "
        "round trip more for a large range; four requests fewer for a small one)",
    )
    group.add_argument(
        "--offset-ceiling",
        type=types.positive_int,
        metavar="N",
        help="the deepest offset+limit the service serves; windows are cut to stay under "
        "it (default: 10000)",
    )
    group.add_argument(
        "--max-rate",
        type=types.positive_float,
        metavar="REQ/S",
        help="never send more requests per second than this (a contract's limit); below "
        "it the pace is learned from the server's 429 answers",
    )


def add_display(
    parser: argparse.ArgumentParser, quiet: str = "no progress bar and no summary line"
) -> None:
    group = parser.add_argument_group("display")
    group.add_argument("-q", "--quiet", action="store_true", help=quiet)
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log retries and re-walks; on failure, show the full traceback",
    )
