"""What a distributed pull did: per window (:class:`WindowOutcome`) and in all
(:class:`DistributedSummary`, with one line per failed window and an exit code)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from attrs import define, frozen

from callsessions.sinks import PartInfo

from .window import WindowResult

__all__ = ["DistributedSummary", "WindowOutcome"]

Status = Literal["done", "failed", "lost", "pending"]


@define
class WindowOutcome:
    """One window's fate in a run: ``done`` (``skipped`` when an earlier run had done it),
    ``failed`` (``error`` says why), ``lost`` (its job vanished from Redis) or ``pending``
    (no result before the coordinator's timeout)."""

    window: str
    status: Status
    result: WindowResult | None = None
    error: str | None = None
    tries: int = 0
    worker: str = ""
    skipped: bool = False
    part: PartInfo | None = None
    #: the server's count of the window (from the result, or a skipped window's manifest)
    count: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.count is None and self.result is not None:
            self.count = self.result.count

    def mark_failed(self, error: str) -> None:
        self.status, self.error, self.part = "failed", error, None

    def manifest_entry(self, planned: int | None) -> dict[str, Any]:
        """The window's entry in the manifest: ``count`` (the server's, when the window was
        pulled), ``planned`` (the plan's estimate), file, records, status."""
        entry: dict[str, Any] = {
            "window": self.window,
            "count": self.count,
            "planned": planned,
            "file": self.part.file if self.part else None,
            "records": self.part.records if self.part else None,
            "status": self.status,
        }
        if self.tries:
            entry["tries"] = self.tries
        if self.error:
            entry["error"] = self.error
        return entry


@frozen(kw_only=True)
class DistributedSummary:
    """The outcome of ``run_distributed``.

    ``windows`` in the plan; ``done`` of them verified (``skipped`` of those were done by an
    earlier run and not pulled again); ``enqueued`` jobs newly queued by this run;
    ``failed`` as ``(window key, reason)`` for every window not done (failed, lost, pending);
    ``records`` in the verified parts, ``planned`` the plan's estimate; ``duplicates``: ids
    found in more than one part; ``requests``, ``throttled`` (429s) and ``retries`` (extra
    tries of windows) of this run's jobs; ``workers``: the processes that did them.
    """

    out_dir: Path
    manifest: Path
    fingerprint: str
    windows: int
    done: int
    skipped: int
    enqueued: int
    failed: tuple[tuple[str, str], ...]
    records: int
    planned: int
    duplicates: int
    requests: int
    throttled: int
    retries: int
    workers: tuple[str, ...]
    elapsed: float

    @classmethod
    def of(
        cls,
        *,
        out_dir: Path,
        manifest: Path,
        fingerprint: str,
        outcomes: Sequence[WindowOutcome],
        planned: int,
        enqueued: int,
        duplicates: int,
        elapsed: float,
    ) -> DistributedSummary:
        ran = [o for o in outcomes if not o.skipped and o.result is not None]
        return cls(
            out_dir=out_dir,
            manifest=manifest,
            fingerprint=fingerprint,
            windows=len(outcomes),
            done=sum(1 for o in outcomes if o.status == "done"),
            skipped=sum(1 for o in outcomes if o.skipped),
            enqueued=enqueued,
            failed=tuple(
                (o.window, f"{o.status}: {o.error or 'unknown'}")
                for o in outcomes
                if o.status != "done"
            ),
            records=sum(o.part.records for o in outcomes if o.status == "done" and o.part),
            planned=planned,
            duplicates=duplicates,
            requests=sum(o.result.requests for o in ran if o.result),
            throttled=sum(o.result.throttled for o in ran if o.result),
            retries=sum(max(0, o.tries - 1) for o in outcomes if not o.skipped),
            workers=tuple(sorted({o.worker for o in ran if o.worker})),
            elapsed=elapsed,
        )

    @property
    def ok(self) -> bool:
        """Every window verified and no id in two parts."""
        return not self.failed and self.duplicates == 0

    @property
    def exit_code(self) -> int:
        """0 when ``ok``, else 1 (for a command line)."""
        return 0 if self.ok else 1

    def line(self) -> str:
        """One human line: records, windows, jobs, requests, time."""
        text = (
            f"{_n(self.records, 'record')} in {self.done}/{_n(self.windows, 'window')} "
            f"({self.skipped} done before, {self.enqueued} enqueued), "
            f"{_n(self.requests, 'request')}, {_n(self.retries, 'window retry', 'window retries')}"
        )
        if self.throttled:
            text += f", {self.throttled} throttled"
        text += f", {_n(len(self.workers), 'worker')}, {self.elapsed:.1f}s -> {self.out_dir}"
        if self.duplicates:
            text += f"; {self.duplicates} DUPLICATE ids across parts"
        if self.failed:
            text += f"; INCOMPLETE: {_n(len(self.failed), 'window')} failed"
        return text

    def lines(self) -> list[str]:
        """The summary line, then one line per window not done."""
        return [self.line(), *(f"window {key} {reason}" for key, reason in self.failed)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (for ``--summary-json``)."""
        return {
            "ok": self.ok,
            "out_dir": str(self.out_dir),
            "manifest": str(self.manifest),
            "plan_fingerprint": self.fingerprint,
            "windows": self.windows,
            "done": self.done,
            "skipped": self.skipped,
            "enqueued": self.enqueued,
            "failed": [{"window": k, "reason": r} for k, r in self.failed],
            "records": self.records,
            "planned": self.planned,
            "duplicates": self.duplicates,
            "requests": self.requests,
            "throttled": self.throttled,
            "retries": self.retries,
            "workers": list(self.workers),
            "elapsed": round(self.elapsed, 3),
        }


def _n(count: int, one: str, many: str | None = None) -> str:
    """``1 worker``, ``2 workers``."""
    return f"{count} {one if count == 1 else (many or one + 's')}"
