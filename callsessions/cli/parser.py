"""The parser of ``callsessions`` and its commands.

``build_parser(only="pull")`` adds the options of that one command and lists the others by
name: the option groups import what their help texts name (statuses, fields, formats, the
simulator's options), and a command should pay only for its own. ``build_parser()`` builds
every command in full.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from callsessions.__about__ import __version__
from callsessions.cli import argtypes as types
from callsessions.cli import groups
from callsessions.cli.lines import EXIT_USAGE
from callsessions.cli.texts import (
    COUNT_EPILOG,
    DEMO_DESCRIPTION,
    ENV_BASE_URL,
    ENVIRONMENT_HELP,
    EXPORT_EPILOG,
    PROG,
    PULL_EPILOG,
    WORKER_EPILOG,
)

__all__ = ["COMMANDS", "build_parser"]



class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the problem and where to read more."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


if TYPE_CHECKING:
    Sub: TypeAlias = argparse._SubParsersAction[_Parser]


def _command(
    sub: Sub, name: str, description: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=SUMMARIES[name],
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _pull(sub: Sub) -> None:
    pull = _command(
        sub,
        "pull",
        description="Pull every call of a date range into a file or a database:\n"
        "each call once, verified window by window, resumable.",
        epilog=PULL_EPILOG,
    )
    groups.add_connection(pull)
    groups.add_filters(pull)
    _pull_output(pull.add_argument_group("output"))
    groups.add_pace(pull.add_argument_group("pace"))
    groups.add_display(pull)


def _pull_output(out: argparse._ArgumentGroup) -> None:
    from callsessions.sinks.suffixes import FORMATS

    out.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output: a file whose extension picks the format "
        f"({', '.join(sorted(FORMATS))}), a directory (an existing one, or a path ending in /) "
        "for one part file per window and a _manifest.json, or - for JSON Lines on stdout",
    )
    out.add_argument(
        "--format",
        choices=("parquet", "jsonl"),
        help="the part files of a directory output (default: parquet)",
    )
    out.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output (a file when the new one is complete; a directory's "
        "parts when the pull starts); without it an existing output is refused",
    )
    out.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted pull recorded in PATH.checkpoint "
        "(a new pull when there is none)",
    )
    out.add_argument(
        "--max-items",
        type=types.positive_int,
        metavar="N",
        help="stop after N records; the output is complete and valid (a trial run)",
    )
    out.add_argument(
        "--dedupe",
        choices=("window", "pull"),
        default="window",
        help="'window' (default): each call once per date window, which is once per pull "
        "with --date-field createdAt; 'pull': also drop a call an earlier window delivered "
        "(a mutable --date-field such as updatedAt), keeping every id in memory "
        "(not across --resume)",
    )
    out.add_argument(
        "--summary-json",
        type=Path,
        metavar="PATH",
        help="also write the summary as JSON to PATH (records, windows, requests, retries, "
        "throttling, re-walks, seconds), for schedulers and dashboards",
    )
    out.add_argument(
        "--queue",
        metavar="REDIS_URL",
        help="run the pull on 'callsessions worker' processes of this Redis, e.g. "
        "redis://HOST:6379/0 (--out must be a directory; needs the arq extra)",
    )


def _count(sub: Sub) -> None:
    count = _command(
        sub,
        "count",
        description="Count the matching calls; with --plan, show what a pull would do.",
        epilog=COUNT_EPILOG,
    )
    groups.add_connection(count)
    groups.add_filters(count)
    what = count.add_argument_group("what to show")
    what.add_argument(
        "--plan",
        action="store_true",
        help="also the windows, pages and requests of a pull, and an estimate of its time",
    )
    what.add_argument("--json", action="store_true", help="print one JSON object instead")
    groups.add_pace(count.add_argument_group("pace (as for pull)"))
    groups.add_display(count, quiet="print only the number (or the JSON)")


def _export(sub: Sub) -> None:
    from callsessions.protocol.query import ExportFormat

    export = _command(
        sub,
        "export",
        description="Download the server's export of the matching calls to a file.",
        epilog=EXPORT_EPILOG,
    )
    groups.add_connection(export)
    groups.add_filters(export)
    eg = export.add_argument_group("file")
    eg.add_argument(
        "--format",
        required=True,
        type=str.upper,
        choices=[f.value for f in ExportFormat],
        help="file format; CSV_EXCEL is UTF-8 with BOM and ; as the delimiter",
    )
    eg.add_argument("--zip", action="store_true", help="ask the server for a zip archive")
    eg.add_argument(
        "--filename", metavar="NAME", help="file name the server gives it (no extension)"
    )
    eg.add_argument("--out", required=True, type=Path, metavar="PATH", help="where to save it")
    eg.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    groups.add_display(export)


def _worker(sub: Sub) -> None:
    from callsessions.workers.__main__ import add_worker_arguments

    worker = _command(
        sub,
        "worker",
        description="Run a worker of distributed pulls until Ctrl-C or SIGTERM.",
        epilog=WORKER_EPILOG,
    )
    worker.add_argument(
        "--base-url", metavar="URL", help=f"the service root (default: ${ENV_BASE_URL})"
    )
    add_worker_arguments(worker)


def _sim(sub: Sub) -> None:
    from callsessions.sim import add_arguments

    sim = _command(
        sub,
        "sim",
        description="Serve a faithful local simulator of the call-session list API, with "
        "generated calls and optional faults, until Ctrl-C. It prints its URL and a token.",
    )
    add_arguments(sim)


def _demo(sub: Sub) -> None:
    demo = _command(sub, "demo", description=DEMO_DESCRIPTION)
    demo.add_argument(
        "--records",
        type=types.positive_int,
        default=120_000,
        metavar="N",
        help="calls in the simulator, spread over a week (default: %(default)s)",
    )
    demo.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="output file, .jsonl, .csv or .sqlite, replaced if it exists "
        "(default: demo.jsonl in the cache folder, e.g. ~/.cache/callsessions/)",
    )
    demo.add_argument(
        "--concurrency",
        type=types.concurrency,
        default=8,
        metavar="N",
        help="requests in flight at most (default: %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="seed of the data and faults (default: %(default)s)"
    )
    demo.add_argument("--retry-wait", type=types.non_negative_float, help=argparse.SUPPRESS)
    groups.add_display(demo, quiet="no progress bar")


#: each command's line in ``callsessions --help``
SUMMARIES = {
    "pull": "pull every matching call into a file, a database or a dataset directory",
    "count": "count the matching calls; --plan: what a pull would do (a dry run)",
    "export": "download the server's export file (CSV, CSV_EXCEL, XLSX, JSON)",
    "worker": "run a worker of distributed pulls (pull --queue) on arq and Redis",
    "sim": "serve the simulator of the API (for tests and trials)",
    "demo": "pull 120,000 simulated calls and verify them (no network, no account)",
}

#: command -> what adds its options
_BUILDERS: dict[str, Callable[[Sub], None]] = {
    "pull": _pull,
    "count": _count,
    "export": _export,
    "worker": _worker,
    "sim": _sim,
    "demo": _demo,
}

#: command -> (module of ``callsessions.cli``, function) that runs it, imported when it runs
COMMANDS = {
    "pull": ("pull", "cmd_pull"),
    "count": ("count", "cmd_count"),
    "export": ("export", "cmd_export"),
    "worker": ("queue", "cmd_worker"),
    "sim": ("demo", "cmd_sim"),
    "demo": ("demo", "cmd_demo"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``callsessions``: every command in full, or (``only``) that command in
    full and the others by name and summary."""
    parser = _Parser(
        prog=PROG,
        description="Pull call sessions from the TWIN voice-robot platform into a file, a "
        "database\nor a dataset directory, download its exports, or run its simulator.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of a command; "
        f"'{PROG} demo' shows a pull against the built-in simulator, with no account.\n\n"
        + ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, build in _BUILDERS.items():
        if only is None or only == name:
            build(sub)
        else:
            sub.add_parser(name, help=SUMMARIES[name])
    return parser
