"""A pull's progress on disk: the plan, the finished windows and what the output needs.

One typed value, saved atomically as JSON after each finished window::

    {"version": 2, "plan": {...}, "done": {"0": 7990, ...},
     "source": {...query...}, "format": "jsonl", "position": 1048576,
     "incomplete": [], "finalizing": false}

``client.sessions(plan, checkpoint=cp)`` uses ``plan`` and ``done`` (windows to skip);
``pull_to`` also keeps the rest: which query and output format it was written for (checked
by ``mismatch``), the sink's position after the last finished window, the windows that ended
incomplete (such a checkpoint can never be resumed: their records are in the output
already), and whether the output was being moved into place (a crash right then leaves a
complete output and this file; a resume recognises it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import orjson

from callsessions._files import atomic_write
from callsessions.errors import InvalidQueryError
from callsessions.protocol.planning import PullPlan

__all__ = ["Checkpoint"]

_VERSION = 2


class Checkpoint:
    """Finished windows of a plan (and, for ``pull_to``, the output's state), in a JSON file
    written atomically. A pull given a checkpoint skips the windows it lists."""

    def __init__(self, path: str | os.PathLike[str], plan: PullPlan) -> None:
        self.path = Path(path)
        self.plan = plan
        #: window index -> unique records it held
        self.done: dict[int, int] = {}
        #: the query it was written for, as ``SessionQuery.describe()`` gives it (JSON)
        self.source: Any = None
        #: the output format it was written for (``jsonl``, ``csv``, ``sqlite``...)
        self.format: str | None = None
        #: the sink's position after the last finished window (``Sink.commit``'s value)
        self.position: Any = None
        #: windows that ended incomplete, as text: the checkpoint cannot be resumed
        self.incomplete: list[str] = []
        #: the output was being completed (moved into place) when this was saved
        self.finalizing = False

    @classmethod
    def open(cls, path: str | os.PathLike[str], plan: PullPlan | None = None) -> Checkpoint:
        """Load ``path`` if it exists (its plan wins), else start one for ``plan``."""
        p = Path(path)
        if p.exists():
            cp = cls.load(p)
            if plan is not None and cp.plan.query != plan.query:
                raise InvalidQueryError(
                    "checkpoint",
                    str(p),
                    "was written for a different query; remove it or pull without resuming",
                )
            return cp
        if plan is None:
            raise InvalidQueryError("checkpoint", str(p), "does not exist")
        return cls(p, plan)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """Read a checkpoint file; a damaged one is an ``InvalidQueryError`` that says so."""
        try:
            raw = orjson.loads(path.read_bytes())
            cp = cls(path, PullPlan.from_json(orjson.dumps(raw["plan"])))
            cp.done = {int(k): int(v) for k, v in raw.get("done", {}).items()}
            cp.source = raw.get("source")
            cp.format = raw.get("format")
            cp.position = raw.get("position")
            cp.incomplete = [str(x) for x in raw.get("incomplete", [])]
            cp.finalizing = bool(raw.get("finalizing", False))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidQueryError(
                "checkpoint", str(path), f"is damaged ({type(exc).__name__}); remove it"
            ) from None
        return cp

    @property
    def remaining(self) -> list[int]:
        return [i for i in range(len(self.plan.windows)) if i not in self.done]

    def mismatch(self, source: Any, fmt: str | None) -> str | None:
        """Why this checkpoint cannot resume a pull of ``source`` (a query's ``describe()``)
        into a ``fmt`` output, or None when it can."""
        if self.source != source:
            return "it was written for a different query"
        if self.format != fmt:
            return f"it was written for a {self.format} output"
        return None

    def mark_done(self, index: int, count: int) -> None:
        self.done[index] = count
        self.save()

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "version": _VERSION,
                "plan": orjson.loads(self.plan.to_json()),
                "done": {str(k): v for k, v in sorted(self.done.items())},
                "source": self.source,
                "format": self.format,
                "position": self.position,
                "incomplete": self.incomplete,
                "finalizing": self.finalizing,
            }
        )

    def save(self) -> None:
        atomic_write(self.path, self.to_json())

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
