"""The command line: ``callsessions pull | count | export | worker | sim | demo``.

``main(argv)`` returns the exit code instead of exiting, so tests can call it (in a thread
when their own event loop runs a simulator). Only this package calls ``asyncio.run``.

Each command is one library call and lives in its own module (``pull``, ``count``,
``export``, ``queue`` for ``worker`` and ``pull --queue``, ``demo`` for ``demo`` and
``sim``), imported only when that command runs; ``parser`` builds the options of the
command asked for, ``options`` turns them into library values, ``run`` turns what a command
raises into one line and an exit code (see there).

Secrets come only from the environment (``CALLSESSIONS_TOKEN``, or ``CALLSESSIONS_EMAIL``
and ``CALLSESSIONS_PASSWORD`` with ``--auth-url``), never from options, so they stay out of
shell history and process lists; nothing here prints them. ``CALLSESSIONS_BASE_URL`` stands
in for ``--base-url``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["entry", "main"]


def _command_in(argv: Sequence[str]) -> str:
    """The command named by ``argv`` (its first word), or "" for none (``--help``...)."""
    from callsessions.cli.parser import COMMANDS

    return argv[0] if argv and argv[0] in COMMANDS else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    from callsessions.cli.lines import EXIT_INTERRUPTED, EXIT_USAGE, CommandError, say
    from callsessions.cli.parser import COMMANDS, build_parser
    from callsessions.cli.texts import PROG

    args = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(args)
    parser = build_parser(only=command)
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if ns.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    module, name = COMMANDS[ns.command]
    handler: Callable[..., int] = getattr(
        importlib.import_module(f"callsessions.cli.{module}"), name
    )
    try:
        if ns.command == "worker":  # logs through the root logger, arq's lines too
            return handler(ns)
        from callsessions.cli.run import logging_to_stderr

        with logging_to_stderr(getattr(ns, "verbose", False)):
            return handler(ns)
    except CommandError as exc:
        say(f"{PROG}: error: {exc.message}")
        return exc.code
    except KeyboardInterrupt:
        say(f"{PROG}: interrupted")
        return EXIT_INTERRUPTED


def entry() -> None:
    """The ``callsessions`` program: ``main()``, then exit with its code.

    Before the interpreter shuts down, every object still alive is moved out of the cyclic
    collector's reach (``gc.freeze``). Shutting down runs one last full collection, which
    otherwise walks every object of every imported module (aiohttp's alone are tens of
    thousands): about 50 ms of a command's run, for nothing, since every file and connection
    was closed already. Only the program does this; ``main`` (what tests call) does not.
    """
    import gc

    code = main()
    gc.freeze()
    raise SystemExit(code)
