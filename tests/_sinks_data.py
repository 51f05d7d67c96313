"""Records and helpers shared by the sink tests: realistic and odd records, exact sums."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from callsessions.sim import Dataset
from callsessions.sinks import decimal_text


def odd_records() -> list[dict[str, Any]]:
    """Hand-written records: every type, nulls, odd Unicode, nested objects, odd offsets."""
    full: dict[str, Any] = {
        "id": "a1",
        "phone": "0079001234567",  # a leading zero: a number would lose it
        "duration": 61,
        "taskId": "t-1",
        "taskName": "Обзвон «Весна» 🌷",
        "botId": "b-1",
        "botName": "Робот\u00a0Анна",
        "regionId": 77,
        "timezone": 10800,
        "status": "ANSWERED",
        "shortNumber": "74950000000",
        "transferredToOperator": True,
        "linkToLog": "https://example.invalid/calls/a1/log",
        "createdAt": "2026-01-01T03:00:00+03:00",
        "updatedAt": "2026-01-01T00:00:01Z",
        "startedAt": "2025-12-31T19:00:00.250-05:00",
        "price": "86832.55",
        "messages": [{"role": "bot", "text": 'Здравствуйте, "это" робот \u2028 👋'}],
        "messagesAsString": "бот: Здравствуйте\nклиент: Да\tконечно",
        "additional": {"ключ": {"nested": [1, None, "x"]}, "n": 1.5},
        "externalId": "crm-000000001",
        "dialogResults": {"result": "да", "score": 3},
        "responder": "human",
        "nps": 10,
        "isFinished": True,
        "recordPath": "records/2026-01-01/a1.mp3",
        "operatorDuration": 0,
        "botDuration": 61,
        "markers": ["a", "б"],
    }
    empty = dict.fromkeys(full) | {"id": "a2"}
    other = full | {
        "id": "a3",
        "phone": "+7 (900) 000-00-00",
        "price": 0.1,  # a JSON number
        "status": "SOMETHING_NEW",
        "transferredToOperator": False,
        "timezone": -18000,
        "createdAt": "2026-01-01T00:00:00.5+00:00",
        "nps": 0,
        "markers": "just text",
    }
    return [full, empty, other]


def sim_records(count: int, seed: int = 5) -> list[dict[str, Any]]:
    data = Dataset(count, seed=seed)
    return [data.record(rid) for rid in range(len(data))]


def utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def exact_sum(records: list[dict[str, Any]]) -> Decimal:
    return sum(
        (Decimal(t) for r in records if (t := decimal_text(r["price"])) is not None), Decimal(0)
    )


def one(db: Any, sql: str) -> tuple[Any, ...]:
    """The one row a DuckDB query answers."""
    rows = db.sql(sql).fetchall()
    assert len(rows) == 1
    return tuple(rows[0])


def write_all(sink: Any, windows: list[list[dict[str, Any]]]) -> Any:
    sink.open()
    position = None
    for n, records in enumerate(windows):
        sink.write(records)
        position = sink.commit(f"w{n}")
    return position


def record(n: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"id-{n:04d}",
        "phone": f"7900000{n:04d}",
        "duration": n,
        "transferredToOperator": n % 2 == 0,
        "nps": None,
        "messages": [{"role": "bot", "text": 'Здравствуйте, "это" робот'}],
        "additional": {"k": n, "nested": {"a": [1, 2]}},
        "createdAt": "2026-01-01T03:00:00+03:00",
    }
    base.update(changes)
    return base


FIELDS = ("phone", "duration", "transferredToOperator", "nps", "messages", "additional")


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))
