"""The pure parts of the arq window jobs, without Redis: job ids derived from the plan and
window, the JSON job format, the retry backoff, the progress snapshot and bar."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from callsessions import PullPlan
from callsessions.sim import SimServer
from callsessions.sinks import (
    window_key,
)
from callsessions.workers.arq import (
    WorkerConfig,
    dumps,
    loads,
)
from callsessions.workers.jobs import JobSpec, error_text
from callsessions.workers.progress import (
    DistributedProgress,
    ProgressBar,
    WindowProgress,
    snapshot,
)
from callsessions.workers.window import (
    destination_hash,
    job_id_for,
    plan_fingerprint,
)

from ._arq_support import make_plan

# -- pure parts ---------------------------------------------------------------------------


async def test_job_ids_derive_from_plan_and_window(sim: SimServer, tmp_path: Path) -> None:
    plan = await make_plan(sim)
    again = PullPlan.from_json(plan.to_json())
    assert plan_fingerprint(again) == plan_fingerprint(plan)
    other = plan.select(range(len(plan.windows) - 1))
    assert plan_fingerprint(other) != plan_fingerprint(plan)
    dest = destination_hash(tmp_path, "jsonl")
    assert dest != destination_hash(tmp_path / "b", "jsonl")
    assert dest != destination_hash(tmp_path, "parquet")
    key = window_key(plan.windows[0])
    assert job_id_for(plan_fingerprint(plan), dest, key) == (
        f"callsessions:{plan_fingerprint(plan)}:{dest}:{key}"
    )


def test_jobs_and_results_are_json_with_errors_readable() -> None:
    raw = dumps({"s": False, "r": ValueError("window x: boom"), "a": ({"k": 1},)})
    data = loads(raw)
    assert data == {"s": False, "r": {"error": "ValueError", "message": "window x: boom"},
                    "a": [{"k": 1}]}
    assert error_text(data["r"]) == "window x: boom"
    assert error_text({"error": "TimeoutError", "message": ""}) == "TimeoutError"
    with pytest.raises(ValueError, match="not a callsessions window job"):
        JobSpec.from_json({"version": 1, "plan": "", "window": "w", "out": "o",
                           "format": "jsonl", "progress": "p"})


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    config = WorkerConfig(retry_defer=2.0, retry_defer_max=5.0)
    assert [config.backoff(t, lambda: 0.0) for t in (1, 2, 3, 4)] == [2.0, 4.0, 5.0, 5.0]
    assert config.backoff(1, lambda: 1.0) == 3.0
    assert WorkerConfig(retry_defer=0.0).backoff(3) == 0.0


def test_progress_snapshot_counts_running_and_finished_and_ignores_stale_workers() -> None:
    now = 1000.0
    progress = {
        "a": WindowProgress("done", 10, "h:1", 1, throttled=2, updated=now - 5),
        "b": WindowProgress("running", 4, "h:1", 2, updated=now - 1, rate=3.0),
        "c": WindowProgress("running", 7, "h:2", 1, updated=now - 100),  # killed worker
    }
    snap = snapshot(progress, {"a": 10}, planned=30, windows=3, failed=0, stale_after=60,
                    now=now)
    assert (snap.records, snap.windows_done, snap.workers_active) == (21, 1, 1)
    assert (snap.throttled, snap.retries, snap.rate) == (2, 1, 3.0)


def test_progress_bar_shows_records_windows_workers_and_throttling() -> None:
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar(DistributedProgress(records=500, planned=1000, windows=4, windows_done=2,
                            windows_failed=1, workers_active=3, throttled=7, rate=9.5,
                            retries=0))
    bar.close()
    text = out.getvalue()
    assert "500/1.00k" in text and "windows 2/4, workers 3, 1 failed, 7 throttled at 9.5/s" in text
