"""``callsessions pull``: one call of ``client.pull_to``, with a progress bar, a summary line
and the checks a command line owes its user before the first request.

What is decided here (the README says the same):

- **An existing output is never replaced silently.** A new pull (no checkpoint) refuses a
  file that exists, or a directory holding a pull's parts or manifest, with exit 2, unless
  ``--overwrite`` is given; then a file is replaced only when the new one is complete (the
  old one stays readable until then), a directory's parts when the pull starts, and the
  summary line says "replaced". SQLite is the exception: it is merged into (upserted by id),
  as documented; ``-`` (stdout) has nothing to replace.
- **``--resume`` keeps the interrupted pull's plan**, page size and offset ceiling included:
  when the options now ask for others, one line says so (a plan is resumed as it was made,
  so no record is written twice) and the pull goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from attrs import frozen

from callsessions.cli.lines import EXIT_OK, CommandError, say
from callsessions.cli.options import (
    Credentials,
    base_url_of,
    check_output,
    config_from,
    names_a_file,
    query_from,
)
from callsessions.cli.progress import Progress, wants_progress
from callsessions.cli.run import prepared, resumable, run_command, write_json

if TYPE_CHECKING:
    from callsessions import (
        CallSessionsClient,
        ClientConfig,
        PullOutcome,
        PullSummary,
        SessionQuery,
    )

__all__ = ["PullJob", "cmd_pull", "prepare_pull", "run_pull"]


@frozen
class PullJob:
    """Everything a pull needs, resolved and validated before any request."""

    base_url: str
    query: SessionQuery
    config: ClientConfig
    credentials: Credentials
    #: as the user typed it (a trailing / names a directory output; - is stdout)
    out: str
    resume: bool = False
    progress: bool = False
    dedupe: Literal["window", "pull"] = "window"
    max_items: int | None = None
    format: str | None = None
    #: a finished output is there and will be replaced (--overwrite)
    replacing: bool = False
    #: lines to show before the pull starts (what --resume keeps)
    notes: tuple[str, ...] = ()


def output_kind(out: str) -> str:
    """The output's format (``jsonl``, ``dataset``, ``stdout``...), or CommandError."""
    from callsessions.sinks import FORMATS, format_for

    kind = format_for(out)
    if kind == "dataset" and not out.endswith(("/", os.sep)) and names_a_file(out):
        raise CommandError(
            f"--out {out}: is a directory (write {out}/ to pull into it, one part per window)"
        )
    if kind is None:
        known = ", ".join(sorted(FORMATS))
        raise CommandError(f"--out {out}: cannot tell the format from its extension; use {known}")
    return kind


def _finished_output(out: str, kind: str, overwrite: bool, checkpoint: Path) -> bool:
    """Whether a new pull would replace an existing output; refused without ``overwrite``.
    SQLite is merged into, stdout has nothing to replace, and with a checkpoint this is a
    resume (or the pull refuses it)."""
    from callsessions.sinks import MANIFEST

    path = Path(out)
    if kind in ("sqlite", "stdout") or checkpoint.exists() or not path.exists():
        return False
    if kind == "dataset":
        if not path.is_dir():
            return False
        parts = sum(1 for _ in path.glob("part-*"))
        if not parts and not (path / MANIFEST).exists():
            return False
        what = f"holds an earlier pull ({parts} part files)"
        how = "its parts are removed when the new pull starts"
    else:
        what, how = "exists", "the new file replaces it only when complete"
    if not overwrite:
        raise CommandError(
            f"--out {out}: {what}: add --overwrite to replace it ({how}), or choose another --out"
        )
    return True


def _resume_notes(checkpoint: Path, config: ClientConfig) -> tuple[str, ...]:
    """What ``--resume`` keeps of the interrupted pull although the options ask otherwise."""
    from callsessions import Checkpoint, InvalidQueryError

    try:
        settings = Checkpoint.load(checkpoint).plan.settings
    except (InvalidQueryError, OSError):
        return ()  # the pull itself reports a damaged checkpoint
    kept = [
        f"{option} {theirs} (not {ours})"
        for option, theirs, ours in (
            ("--page-size", settings.page_size, config.page_size),
            ("--offset-ceiling", settings.offset_ceiling, config.offset_ceiling),
        )
        if theirs != ours
    ]
    if not kept:
        return ()
    return (
        f"--resume: continuing with the interrupted pull's {', '.join(kept)}: a plan is "
        "resumed as it was made",
    )


def _check_summary_json(ns: argparse.Namespace) -> None:
    summary_json: Path | None = getattr(ns, "summary_json", None)
    if summary_json is not None and (
        summary_json.is_dir() or not summary_json.resolve().parent.is_dir()
    ):
        raise CommandError(f"--summary-json {summary_json}: not a file in an existing folder")


def prepare_pull(ns: argparse.Namespace, environ: Mapping[str, str]) -> PullJob:
    """Validate the options of ``pull`` into a job; raises before any network activity."""
    from callsessions.pull.bulk import checkpoint_path
    from callsessions.sinks import open_sink

    out = str(ns.out)
    kind = output_kind(out)
    if kind != "stdout":
        check_output(Path(out), directory=kind == "dataset")
    if getattr(ns, "format", None) is not None and kind != "dataset":
        raise CommandError(f"--format {ns.format}: only for a directory output")
    _check_summary_json(ns)
    query = query_from(ns)
    config = config_from(ns)
    base_url = base_url_of(ns, environ)
    credentials = Credentials.from_environment(ns.auth_url, environ)
    # the format's own checks (an extra not installed...), before any request
    open_sink(out, query.fields, format=getattr(ns, "format", None))
    checkpoint = checkpoint_path(Path(out))
    replacing = _finished_output(out, kind, ns.overwrite, checkpoint)
    notes = _resume_notes(checkpoint, config) if ns.resume and checkpoint.exists() else ()
    return PullJob(
        base_url=base_url,
        query=query,
        config=config,
        credentials=credentials,
        out=out,
        resume=ns.resume,
        progress=wants_progress(ns.quiet),
        dedupe=getattr(ns, "dedupe", "window"),
        max_items=getattr(ns, "max_items", None),
        format=getattr(ns, "format", None),
        replacing=replacing,
        notes=notes,
    )


class PullProgressBar:
    """The progress bar fed by ``pull_to``; keeps the last summary for a failure's report."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None
        self.summary: PullSummary | None = None
        self.client: CallSessionsClient | None = None
        self._ticker: asyncio.Task[None] | None = None

    def start(self, total: int, done: int) -> None:
        self.bar = Progress(self.enabled, total=total, initial=done)
        if self.bar.enabled:
            # Redrawn every second, so that the clock does not freeze while a throttled pull
            # waits out a Retry-After and no page arrives.
            self._ticker = asyncio.get_running_loop().create_task(self._tick(self.bar))

    @staticmethod
    async def _tick(bar: Progress) -> None:
        while True:
            await asyncio.sleep(1.0)
            bar.refresh()

    def advance(self, records: int, summary: PullSummary) -> None:
        self.summary = summary
        if self.bar is not None:
            self.bar.update(records, retries=summary.retries, pace=self.pace())

    def pace(self) -> str | None:
        """``throttled 4.9 req/s`` once the server has throttled the pull."""
        rate = self.client.rate if self.client is not None else None
        if self.summary is None or not self.summary.throttled or rate is None:
            return None
        return f"throttled {rate:.1f} req/s"

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.bar is not None:
            self.bar.close()


async def run_pull(
    job: PullJob,
    *,
    client: CallSessionsClient | None = None,
    progress: PullProgressBar | None = None,
) -> PullOutcome:
    """Pull ``job.query`` into ``job.out``, resumable, and return what happened: one call of
    ``client.pull_to``. With ``client`` given, that client is used (and not closed)."""
    from callsessions import CallSessionsClient

    shown = progress if progress is not None else PullProgressBar(job.progress)
    own = client is None
    if client is None:
        client = CallSessionsClient(job.base_url, auth=job.credentials.auth(), config=job.config)
    shown.client = client
    try:
        return await client.pull_to(
            job.query,
            job.out,
            resume=job.resume,
            dedupe=job.dedupe,
            max_items=job.max_items,
            format=job.format,
            progress=shown,
        )
    finally:
        shown.close()
        if own:
            await client.aclose()


def refused(summary_json: Path | None, reason: str, out: str) -> None:
    """A run refused before it started still leaves its ``--summary-json`` (when that is a
    file in an existing folder): ``complete: false`` and the reason, never a stale one."""
    from callsessions import PullSummary

    if summary_json is None or summary_json.is_dir() or not summary_json.parent.is_dir():
        return
    data = {**PullSummary().as_dict(), "complete": False, "error": reason, "output": out}
    with contextlib.suppress(CommandError):
        write_json(summary_json, data)


def _summary_line(job: PullJob, outcome: PullOutcome) -> str:
    line = outcome.line()
    if job.replacing and not outcome.already_complete:
        line += " (replaced the earlier output)"
    return line


def cmd_pull(ns: argparse.Namespace) -> int:
    """``callsessions pull``; with ``--queue``, the coordinator of a distributed pull."""
    if ns.queue is not None:
        from callsessions.cli.queue import cmd_pull_distributed

        return cmd_pull_distributed(ns)
    from callsessions import PullSummary
    from callsessions.pull.bulk import checkpoint_path

    summary_json: Path | None = ns.summary_json
    try:
        job = prepared(lambda: prepare_pull(ns, os.environ))
    except CommandError as exc:
        refused(summary_json, f"error: {exc.message}", str(ns.out))
        raise
    if summary_json is not None:
        summary_json.unlink(missing_ok=True)  # a stale one must not pass for this run's
    cp = checkpoint_path(Path(job.out))
    progress = PullProgressBar(job.progress)
    if not ns.quiet:
        for note in job.notes:
            say(note)

    async def work() -> int:
        outcome = await run_pull(job, progress=progress)
        if not ns.quiet:
            say(_summary_line(job, outcome))
        if summary_json is not None:
            write_json(summary_json, {**outcome.as_dict(), "replaced": job.replacing})
        return EXIT_OK

    def interrupted() -> str:
        if cp.exists():
            return (
                "interrupted; the records written so far are kept: run the same command "
                "with --resume to continue"
            )
        return "interrupted before any record was written"

    def hint(exc: BaseException) -> str:
        if cp.exists() and resumable(exc):
            return "; what was written is kept: run the same command with --resume to continue"
        return ""

    def failed(reason: str) -> None:
        if summary_json is None:
            return
        summary = progress.summary or PullSummary()
        data = {**summary.as_dict(), "complete": False, "error": reason, "output": str(job.out)}
        with contextlib.suppress(CommandError):
            write_json(summary_json, data)

    return run_command(ns, work, interrupted, hint, failed)
