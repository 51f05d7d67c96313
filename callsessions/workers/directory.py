"""The directory side of a distributed pull: the plan saved beside the parts, and the check
that a directory holds nothing but this plan's parts.

``.callsessions-plan.json`` (hidden: no reader's glob and no dataset check sees it) holds the
plan, its fingerprint and the query it was planned from, written at the start of every run,
so that running the same coordinator command again reuses the plan instead of planning anew
(a new plan of changed data would cut other windows and orphan the parts already written).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from callsessions import CallSessionsClient, InvalidQueryError, PullPlan, SessionQuery
from callsessions.sinks import DatasetSink, OutputMismatchError, atomic_write

from .window import PartFormat, plan_fingerprint

__all__ = [
    "PLAN_FILE",
    "check_directory",
    "load_plan",
    "part_files",
    "prepare_dir",
    "resolve_plan",
    "save_plan",
]

PLAN_FILE = ".callsessions-plan.json"


def prepare_dir(out_dir: str | os.PathLike[str]) -> Path:
    """The absolute output directory, created if missing."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def load_plan(out_dir: str | os.PathLike[str]) -> tuple[PullPlan, Any] | None:
    """The plan saved in ``out_dir`` by an earlier run and the query it was planned from
    (``SessionQuery.describe()``, None when it was given as a plan); None if there is none."""
    path = Path(out_dir) / PLAN_FILE
    try:
        raw = orjson.loads(path.read_bytes())
        return PullPlan.from_json(orjson.dumps(raw["plan"])), raw.get("source")
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise OutputMismatchError(f"{path} is not a callsessions plan") from None


def save_plan(out: Path, plan: PullPlan, source: Any) -> None:
    """Write ``out/.callsessions-plan.json`` (atomically): the plan and its source query."""
    data = {"fingerprint": plan_fingerprint(plan), "source": source}
    data["plan"] = orjson.loads(plan.to_json())
    atomic_write(out / PLAN_FILE, orjson.dumps(data) + b"\n")


async def resolve_plan(
    source: PullPlan | SessionQuery, client: CallSessionsClient | None, out: Path
) -> tuple[PullPlan, Any]:
    """The plan to pull and the query it comes from (to save with it): ``source`` itself, or
    the plan of query ``source``: the one saved in ``out`` when it was planned from the same
    query, else a new one from ``client``."""
    saved = load_plan(out)
    if isinstance(source, PullPlan):
        same = saved is not None and plan_fingerprint(saved[0]) == plan_fingerprint(source)
        return source, saved[1] if same and saved is not None else None
    if not isinstance(source, SessionQuery):
        raise InvalidQueryError("plan", source, "must be a PullPlan or a SessionQuery")
    if client is None:
        raise InvalidQueryError("client", None, "planning a SessionQuery needs a client")
    wanted = orjson.loads(orjson.dumps(client.pull_query(source).describe()))
    if saved is not None and saved[1] == wanted:
        return saved[0], wanted
    return await client.plan(source), wanted


def part_files(out: Path) -> list[tuple[str, str]]:
    """(window key, file name) of every part file in ``out`` (by name; nothing is read)."""
    found: list[tuple[str, str]] = []
    for entry in out.iterdir():
        name = entry.name
        for ext in (".jsonl", ".parquet"):
            if name.startswith("part-") and name.endswith(ext) and entry.is_file():
                found.append((name[len("part-") : -len(ext)], name))
    return found


def check_directory(out: Path, plan: PullPlan, format: PartFormat, keys: Sequence[str]) -> None:
    """Refuse a directory holding other files, or parts of windows not in this plan."""
    if len(set(keys)) != len(keys):
        raise InvalidQueryError("plan", "<windows>", "two windows of the plan share a key")
    DatasetSink(out, plan.query.fields, format="jsonl").check()
    wanted, ext = set(keys), f".{format}"
    stray = [f for k, f in part_files(out) if k not in wanted or not f.endswith(ext)]
    if stray:
        raise OutputMismatchError(
            f"{out} holds {len(stray)} part(s) that are not this plan's {format} parts "
            f"({stray[0]!r}...): use a new directory or remove them"
        )
