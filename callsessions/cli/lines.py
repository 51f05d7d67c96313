"""What every command shares and the parser needs too, with nothing heavier than the
standard library: exit codes, ``CommandError``, and the lines a command prints.

Exit codes: 0 success; 1 a failure (one line; the traceback with ``--verbose``); 2 invalid
usage or input, or a refused output (one line, and no request was sent); 130 interrupted;
128 + N stopped by signal N (SIGTERM 143, SIGHUP 129), as an interruption.
"""

from __future__ import annotations

import sys

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "cli_words",
    "one_line",
    "plural",
    "say",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A one-line reason to stop, with its exit code (2: usage or input, 1: failure)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def say(text: str) -> None:
    """A line for the person at the terminal (stderr: stdout may be the data)."""
    print(text, file=sys.stderr, flush=True)


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 window``, ``2 windows`` (``many`` when adding an s will not do)."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def one_line(text: object, limit: int = 1000) -> str:
    """A message on one line (an error may quote a multi-line HTML page), kept short."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


#: the library's hints in the words of the command line: what a reader can do where they are
_CLI_WORDS = (
    ("pass it in extra_statuses", "add --extra-status NAME"),
    ("(or leave sort unset); use fetch_page for other orders",
     "(or leave --sort out); for another order, sort the output afterwards"),
    ("(or be None for all)", "(or leave --fields out for all)"),
    ("must be after start", "must be after --from"),
    ("at least page_size", "at least --page-size"),
    ("(check the wire names of start, end and date_field)",
     "(if the service names them otherwise, give --wire-name start=NAME, end=NAME or "
     "date_field=NAME)"),
    ("(check the wire names)",
     "(if the service names them otherwise, give --wire-name offset=NAME or limit=NAME)"),
)


def cli_words(text: str) -> str:
    """``text`` with the library's hints rephrased for the command line."""
    for library, command_line in _CLI_WORDS:
        text = text.replace(library, command_line)
    return text
