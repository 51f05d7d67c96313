"""Running a command: one event loop, SIGTERM and SIGHUP handled as Ctrl-C, and what the
command raises turned into one line and an exit code (see ``callsessions.cli.lines``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from callsessions.cli.lines import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    cli_words,
    one_line,
    say,
)
from callsessions.cli.texts import PROG

__all__ = [
    "logging_to_stderr",
    "prepared",
    "resumable",
    "run_command",
    "write_json",
]

log = logging.getLogger("callsessions")
T = TypeVar("T")
Work = Callable[[], Coroutine[Any, Any, int]]


class _Signalled(Exception):
    """SIGTERM or SIGHUP arrived: the run was cancelled like a Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


async def _with_signals(work: Work) -> int:
    """Run ``work``; SIGTERM and SIGHUP (what systemd, Kubernetes and docker send) cancel it
    as Ctrl-C does, so that it stops cleanly and keeps its checkpoint."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if not received:
            received.append(signum)
            task.cancel()

    installed = []
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        return await work()
    except asyncio.CancelledError:
        if received:
            raise _Signalled(received[0]) from None
        raise
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def resumable(exc: BaseException) -> bool:
    """Whether a resume could get past ``exc``: a transient failure that outlasted the
    retries, not a refusal, a misconfiguration or a broken answer that would come again."""
    from callsessions.errors import DecodeError, RateLimitedError, ServerError, TransportError

    if isinstance(exc, DecodeError):
        return exc.transient
    transient = (TransportError, ServerError, RateLimitedError)
    return isinstance(exc, transient) or getattr(exc, "stalled", False)


def _refusals() -> tuple[type[BaseException], ...]:
    """Errors that refuse a run before it sends a request: exit 2, no traceback."""
    from callsessions.errors import OutputLockedError
    from callsessions.pull.bulk import CheckpointError
    from callsessions.sinks import OutputMismatchError

    return (CheckpointError, OutputLockedError, OutputMismatchError)


def run_command(
    ns: argparse.Namespace,
    work: Work,
    interrupted: Callable[[], str],
    hint: Callable[[BaseException], str] = lambda exc: "",
    failed: Callable[[str], None] = lambda reason: None,
) -> int:
    """Run ``work`` in an event loop and turn what it raises into a message and a code;
    ``hint(exc)`` is added to the line of a failure, ``failed(reason)`` hears of it."""
    from callsessions.errors import CallSessionsError, InvalidQueryError
    from callsessions.sinks import OutputClosedError

    def fail(code: int, line: str) -> int:
        failed(line)
        say(f"{PROG}: {line}")
        return code

    try:
        return asyncio.run(_with_signals(work))
    except KeyboardInterrupt:
        return fail(EXIT_INTERRUPTED, interrupted())
    except _Signalled as exc:
        name = signal.Signals(exc.signum).name
        return fail(128 + exc.signum, f"{interrupted()} ({name})")
    except CommandError as exc:
        return fail(exc.code, f"error: {one_line(exc.message)}")
    except OutputClosedError:
        return EXIT_OK  # --out - into `head`: the reader has what it wanted
    except InvalidQueryError as exc:
        from callsessions.cli.options import describe_invalid

        return fail(EXIT_USAGE, f"error: {one_line(describe_invalid(exc))}")
    except _refusals() as exc:
        return fail(EXIT_USAGE, f"error: {one_line(cli_words(str(exc)))}")
    except (CallSessionsError, OSError) as exc:
        if ns.verbose:
            traceback.print_exc()
        return fail(EXIT_FAILURE, f"failed: {one_line(cli_words(str(exc)))}{hint(exc)}")
    except Exception as exc:
        if ns.verbose:
            traceback.print_exc()
        more = "" if ns.verbose else " (run with --verbose for details)"
        line = f"failed: {type(exc).__name__}: {one_line(exc)}{hint(exc)}{more}"
        return fail(EXIT_FAILURE, line)


def prepared(prepare: Callable[[], T]) -> T:
    """Run ``prepare`` (checks before any request); a bad input raises ``CommandError``
    with the option named."""
    from callsessions.errors import InvalidQueryError

    try:
        return prepare()
    except InvalidQueryError as exc:
        from callsessions.cli.options import describe_invalid

        raise CommandError(describe_invalid(exc)) from None
    except ValueError as exc:
        raise CommandError(cli_words(str(exc))) from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    import orjson

    from callsessions.sinks import atomic_write

    try:
        atomic_write(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise CommandError(f"cannot write the summary to {path}: {exc}", EXIT_FAILURE) from None


class _BarSafeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes through ``tqdm.write``, which lifts a progress bar off the line, prints, and
    draws the bar again: log lines and the bar do not tear each other up."""

    def emit(self, record: logging.LogRecord) -> None:
        module = sys.modules.get("tqdm")  # no bar was drawn unless tqdm was imported
        if module is None:
            super().emit(record)
            return
        try:
            module.tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def logging_to_stderr(verbose: bool, logger: logging.Logger = log) -> Iterator[None]:
    """``logger``'s lines to stderr: warnings always, retries and re-walks with --verbose."""
    handler = _BarSafeHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
