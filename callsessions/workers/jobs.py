"""The job format shared by the coordinator and the workers: names, arguments, serializer.

Jobs and their results are JSON (orjson), not arq's default pickle: a worker never unpickles
what it reads from Redis, and every key and value can be read (and scanned for secrets) by
any tool. A failed job's result holds its exception as ``{"error": <type>, "message": <text>}``.
This module needs neither arq nor Redis.
"""

from __future__ import annotations

from typing import Any

import orjson
from attrs import frozen

from .window import PartFormat

__all__ = ["JOB_NAME", "QUEUE_NAME", "JobSpec", "dumps", "error_text", "loads"]

#: the arq queue (a sorted set) this package's jobs go to by default
QUEUE_NAME = "callsessions:queue"
#: the registered name of the window job
JOB_NAME = "callsessions_pull_window"


def _encode(obj: Any) -> Any:
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)[:1000]}
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(data: dict[str, Any]) -> bytes:
    """arq's ``job_serializer``: JSON; exceptions become ``{"error", "message"}``."""
    return orjson.dumps(data, default=_encode)


def loads(raw: bytes) -> dict[str, Any]:
    """arq's ``job_deserializer``."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an arq job or result")
    return data


def error_text(result: Any) -> str:
    """One line for a failed job's stored result (an encoded exception, or anything)."""
    if isinstance(result, dict) and "error" in result:
        message = str(result.get("message") or "").strip()
        return message if message else str(result["error"])
    return str(result)[:1000]


@frozen
class JobSpec:
    """The one argument of a window job: everything but credentials.

    ``plan``: the one-window plan (``PullPlan.to_json()`` of ``plan.select([i])``);
    ``window``: its key; ``out``: the output directory (absolute; shared by every worker);
    ``format``: the part format; ``progress``: the Redis hash of the run's progress.
    """

    plan: str
    window: str
    out: str
    format: PartFormat
    progress: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "plan": self.plan,
            "window": self.window,
            "out": self.out,
            "format": self.format,
            "progress": self.progress,
        }

    @classmethod
    def from_json(cls, data: Any) -> JobSpec:
        """The spec in ``data``; ValueError for anything else."""
        try:
            if data["version"] != 1 or data["format"] not in ("jsonl", "parquet"):
                raise ValueError
            values = [data[k] for k in ("plan", "window", "out", "progress")]
        except (TypeError, KeyError, ValueError):
            raise ValueError("not a callsessions window job") from None
        if not all(isinstance(v, str) and v for v in values):
            raise ValueError("not a callsessions window job")
        plan, window, out, progress = values
        return cls(plan, window, out, data["format"], progress)
