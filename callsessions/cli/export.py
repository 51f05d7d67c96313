"""``callsessions export``: the server's export file streamed to disk (``client.export``).

Like ``pull``, it never replaces an existing ``--out`` silently: without ``--overwrite`` an
existing file is refused (exit 2, no request); with it, the new file replaces the old one
only when it is complete (a temporary file beside it, renamed), and the line says so.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from callsessions.cli.lines import EXIT_OK, CommandError, say
from callsessions.cli.options import (
    Credentials,
    base_url_of,
    check_output,
    config_from,
    query_from,
)
from callsessions.cli.progress import Progress, wants_progress
from callsessions.cli.run import prepared, run_command

if TYPE_CHECKING:
    from callsessions import ClientConfig, ExportResult, SessionQuery

__all__ = ["cmd_export", "export_line", "human_bytes"]


def human_bytes(n: int) -> str:
    """``512 bytes``, ``1.5 KiB``, ``154.7 MiB``."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover


def export_line(result: ExportResult, elapsed: float, replaced: bool = False) -> str:
    """The line after a download: size, time, rate, where, the server's name for it."""
    size = human_bytes(result.bytes)
    rate = human_bytes(int(result.bytes / elapsed)) + "/s" if elapsed > 0 else ""
    named = f" (server's name: {result.filename})" if result.filename else ""
    again = " (replaced the earlier file)" if replaced else ""
    return f"{size} in {elapsed:.1f}s, {rate} -> {result.path}{named}{again}"


def cmd_export(ns: argparse.Namespace) -> int:
    """``callsessions export``."""
    out: Path = ns.out

    def prepare() -> tuple[str, SessionQuery, ClientConfig, Credentials, bool]:
        check_output(out)
        replacing = out.exists()
        if replacing and not ns.overwrite:
            raise CommandError(
                f"--out {out}: exists: add --overwrite to replace it (when the new file is "
                "complete), or choose another --out"
            )
        query = query_from(
            ns, export_format=ns.format, zip=True if ns.zip else None, filename=ns.filename
        )
        config = config_from(ns)
        base_url = base_url_of(ns, os.environ)
        credentials = Credentials.from_environment(ns.auth_url, os.environ)
        return base_url, query, config, credentials, replacing

    base_url, query, config, credentials, replacing = prepared(prepare)

    async def work() -> int:
        from callsessions import CallSessionsClient

        started = time.monotonic()
        progress = Progress(wants_progress(ns.quiet), unit="B", desc=out.name)
        try:
            async with CallSessionsClient(base_url, auth=credentials.auth(), config=config) as c:
                result = await c.export(query, out, on_progress=progress.set)
        finally:
            progress.close()
        if not ns.quiet:
            say(export_line(result, time.monotonic() - started, replacing))
        return EXIT_OK

    return run_command(ns, work, lambda: f"interrupted; nothing was written to {out}")
