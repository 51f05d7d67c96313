"""What every record of a data set refers to: its tasks (campaigns) and dialogue templates.

Both are drawn from the seed alone (:func:`catalogue`), before any record, so the records'
own random stream (``Dataset``) does not depend on them. Records point at them by index.
"""

from __future__ import annotations

import math
import random
from typing import Any

from ._tables import BOT_LINES, HUMAN_LINES, MARKERS, RESULT_NAMES, TASK_SPECS

__all__ = ["N_TEMPLATES", "Task", "Template", "catalogue"]

N_TEMPLATES = 48


class Task:
    """A call task (campaign) with its bot and company."""

    __slots__ = ("bot_id", "bot_name", "company_id", "id", "name", "rate_cents", "short_numbers")

    def __init__(
        self,
        id: str,
        name: str,
        bot_id: str,
        bot_name: str,
        company_id: int,
        rate_cents: int,
        short_numbers: tuple[str, ...],
    ) -> None:
        self.id = id
        self.name = name
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.company_id = company_id
        self.rate_cents = rate_cents
        self.short_numbers = short_numbers


class Template:
    """A shared dialogue: messages, their text, results and markers (never mutated)."""

    __slots__ = ("as_string", "dialog_results", "end", "markers", "messages", "nps")

    def __init__(self, rng: random.Random) -> None:
        t = 0.0
        messages: list[dict[str, Any]] = []
        for turn in range(rng.randint(2, 7)):
            t += rng.uniform(0.5, 6.0)
            messages.append({"role": "bot", "text": rng.choice(BOT_LINES), "time": round(t, 1)})
            if turn == 0 or rng.random() < 0.85:
                t += rng.uniform(0.5, 8.0)
                messages.append(
                    {"role": "human", "text": rng.choice(HUMAN_LINES), "time": round(t, 1)}
                )
        self.messages = messages
        self.as_string = "\n".join(
            ("Робот: " if m["role"] == "bot" else "Абонент: ") + m["text"] for m in messages
        )
        self.end = math.ceil(t)
        self.dialog_results = [
            {"name": name, "value": rng.choice(("yes", "no", "unknown"))}
            for name in rng.sample(RESULT_NAMES, rng.randint(0, 3))
        ]
        self.markers = rng.sample(MARKERS, rng.randint(0, 2))
        self.nps = rng.randint(0, 10) if rng.random() < 0.4 else None


def _uuid(rng: random.Random) -> str:
    """A random version-4 UUID drawn from ``rng`` (the ids of tasks and bots)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF << 76)) | (0x4 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def catalogue(seed: int) -> tuple[tuple[Task, ...], tuple[Template, ...]]:
    """The tasks (one per ``TASK_SPECS`` row) and the dialogue templates of ``seed``."""
    meta = random.Random(f"callsessions-sim-meta-{seed}")
    tasks: list[Task] = []
    for name, bot_name, company, _weight, rate in TASK_SPECS:
        short = tuple(f"7495{meta.randrange(10**7):07d}" for _ in range(2))
        tasks.append(Task(_uuid(meta), name, _uuid(meta), bot_name, 1 + company, rate, short))
    return tuple(tasks), tuple(Template(meta) for _ in range(N_TEMPLATES))
