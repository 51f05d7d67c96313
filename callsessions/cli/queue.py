"""Distributed pulls from the command line (issue 13), on arq and Redis (``callsessions[arq]``):

- ``callsessions worker --queue redis://HOST:6379/0``: ``run_worker`` with the options of
  ``callsessions.workers`` and the credentials of this machine's environment;
- ``callsessions pull ... --out DIR/ --queue redis://...``: the coordinator,
  ``run_distributed``: plans, enqueues one job per window, shows one progress bar, verifies
  the parts, writes the manifest, prints ``summary.lines()`` and exits ``summary.exit_code``.

Decided here: ``--queue`` needs a directory output and refuses ``--max-items``,
``--dedupe pull`` and ``--overwrite`` (running the same command again *continues* that
directory's pull; to start over, use a new directory). A directory holding a pull of another
query, or a finished pull made without ``--queue``, is refused (exit 2) instead of having
its parts replaced. Without arq installed, both commands exit 2 naming the extra.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from attrs import frozen

from callsessions.cli.lines import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, CommandError, say
from callsessions.cli.options import Credentials, base_url_of, check_output, config_from, query_from
from callsessions.cli.progress import wants_progress
from callsessions.cli.pull import output_kind, refused
from callsessions.cli.run import prepared, run_command, write_json
from callsessions.cli.texts import ENV_TOKEN, PROG

if TYPE_CHECKING:
    from callsessions import ClientConfig, SessionQuery

__all__ = ["cmd_pull_distributed", "cmd_worker", "redacted", "require_arq"]

EXTRA_HINT = "pip install 'callsessions[arq]'"


def require_arq(what: str) -> None:
    """CommandError (exit 2) naming the extra when arq or redis-py is not installed."""
    missing = [name for name in ("arq", "redis") if importlib.util.find_spec(name) is None]
    if missing:
        raise CommandError(
            f"{what} needs the arq extra ({' and '.join(missing)} not installed): {EXTRA_HINT}"
        )


def redacted(url: str) -> str:
    """A Redis URL without its user name and password, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def check_queue_url(url: str) -> str:
    """``--queue``: a ``redis://``, ``rediss://`` or ``unix://`` URL."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("redis", "rediss", "unix"):
        raise CommandError(f"--queue {redacted(url)}: not a Redis URL (e.g. redis://HOST:6379/0)")
    return url


@frozen
class Coordination:
    """A distributed pull, checked before any request."""

    base_url: str
    query: SessionQuery
    config: ClientConfig
    credentials: Credentials
    queue: str
    out: Path
    format: Literal["jsonl", "parquet"]
    progress: bool


def _check_directory(out: Path, query: SessionQuery, config: ClientConfig) -> None:
    """Refuse a directory whose parts the coordinator would replace with another pull's:
    a finished pull made without ``--queue``, or a distributed pull of another query."""
    import orjson

    from callsessions import CallSessionsClient
    from callsessions.sinks import MANIFEST
    from callsessions.workers.directory import load_plan

    if not out.is_dir():
        return
    saved = load_plan(out)
    if saved is None:
        if (out / MANIFEST).exists():
            raise CommandError(
                f"--out {out}: holds a finished pull made without --queue: use another directory"
            )
        return
    client = CallSessionsClient("http://localhost", token="x", config=config)  # sends nothing
    wanted = orjson.loads(orjson.dumps(client.pull_query(query).describe()))
    if saved[1] is not None and saved[1] != wanted:
        raise CommandError(
            f"--out {out}: holds a distributed pull of another query (running the same command "
            "again continues it): use another directory"
        )


def _prepare(ns: argparse.Namespace, environ: Mapping[str, str]) -> Coordination:
    require_arq("--queue")
    queue = check_queue_url(ns.queue)
    if output_kind(str(ns.out)) != "dataset":
        raise CommandError(f"--out {ns.out}: --queue needs a directory output (--out DIR/)")
    for given, option in (
        (ns.max_items is not None, "--max-items"),
        (ns.dedupe == "pull", "--dedupe pull"),
        (ns.overwrite, "--overwrite"),
    ):
        if given:
            raise CommandError(
                f"{option} does not go with --queue (the same command run again continues "
                "the directory's pull; use a new directory to start over)"
            )
    out = Path(ns.out)
    check_output(out, directory=True)
    query = query_from(ns)
    config = config_from(ns)
    base_url = base_url_of(ns, environ)
    credentials = Credentials.from_environment(ns.auth_url, environ)
    part_format: Literal["jsonl", "parquet"] = ns.format or "parquet"
    from callsessions.sinks import open_sink

    open_sink(str(ns.out) + "/", query.fields, format=part_format)  # pyarrow for Parquet
    _check_directory(out, query, config)
    return Coordination(
        base_url=base_url,
        query=query,
        config=config,
        credentials=credentials,
        queue=queue,
        out=out,
        format=part_format,
        progress=wants_progress(ns.quiet),
    )


def cmd_pull_distributed(ns: argparse.Namespace) -> int:
    """``callsessions pull --queue``: the coordinator."""
    summary_json: Path | None = ns.summary_json
    try:
        job = prepared(lambda: _prepare(ns, os.environ))
    except CommandError as exc:
        refused(summary_json, f"error: {exc.message}", str(ns.out))
        raise
    if summary_json is not None:
        summary_json.unlink(missing_ok=True)

    async def work() -> int:
        from redis.exceptions import RedisError

        from callsessions import CallSessionsClient
        from callsessions.workers.arq import run_distributed
        from callsessions.workers.progress import ProgressBar

        bar = ProgressBar() if job.progress else None
        try:
            async with CallSessionsClient(
                job.base_url, auth=job.credentials.auth(), config=job.config
            ) as client:
                summary = await run_distributed(
                    job.query, job.queue, job.out, client=client, format=job.format,
                    on_progress=bar,
                )
        except RedisError as exc:
            where = f"Redis at --queue {redacted(job.queue)}"
            raise CommandError(f"{where}: {exc}", EXIT_FAILURE) from None
        finally:
            if bar is not None:
                bar.close()
        if not ns.quiet or not summary.ok:
            for line in summary.lines():
                say(line)
        if summary_json is not None:
            write_json(summary_json, {**summary.as_dict(), "complete": summary.ok})
        return summary.exit_code

    def interrupted() -> str:
        return (
            "interrupted; the queued windows stay queued and the workers go on: run the same "
            "command again to wait for them and verify the directory"
        )

    def failed(reason: str) -> None:
        refused(summary_json, reason, str(job.out))

    return run_command(ns, work, interrupted, failed=failed)


@contextlib.contextmanager
def _worker_logging(verbosity: int) -> Iterator[None]:
    """The worker's and arq's log lines to stderr: warnings, -v info (each job), -vv debug."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _worker_token(environ: Mapping[str, str]) -> str:
    token = environ.get(ENV_TOKEN, "").strip()
    if not token:
        raise CommandError(
            f"no credentials: set {ENV_TOKEN} in the worker's environment (a worker takes "
            "a token only, never from Redis or an option)"
        )
    return token


def cmd_worker(ns: argparse.Namespace) -> int:
    """``callsessions worker``: run one worker until Ctrl-C or SIGTERM (exit 0), or with
    ``--burst`` until the queue is empty."""
    import asyncio

    require_arq("callsessions worker")
    from callsessions.workers.__main__ import NO_QUEUE, config_from_args, queue_url

    url = queue_url(ns, os.environ)
    if url is None:
        raise CommandError(NO_QUEUE)
    queue = check_queue_url(url)
    config = prepared(lambda: config_from_args(ns))
    base_url = prepared(lambda: base_url_of(ns, os.environ))
    token = _worker_token(os.environ)
    from redis.exceptions import RedisError

    from callsessions.workers.arq import run_worker

    say(
        f"{PROG} worker: windows from {redacted(queue)} (queue {config.queue_name}), "
        f"{config.concurrency} at once, for {base_url}; Ctrl-C or SIGTERM to stop"
    )
    with _worker_logging(ns.verbose):
        try:
            asyncio.run(
                run_worker(queue, base_url=base_url, token=token, config=config, burst=ns.burst)
            )
        except (RedisError, OSError) as exc:
            say(f"{PROG} worker: failed: Redis at --queue {redacted(queue)}: {exc}")
            return EXIT_FAILURE
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return EXIT_OK
