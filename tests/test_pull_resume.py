"""Resuming a bulk pull from its checkpoint: only the windows not acknowledged are pulled
again, a query resumes on the checkpoint's plan, and a damaged checkpoint is a clear error.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from _pull_support import (
    client_for,
    pull_ids_with,
    range_query,
    sim_fixture,  # noqa: F401  (the fixture "sim")
    truth,
)

from callsessions import Checkpoint, InvalidQueryError
from callsessions.sim import SimServer


async def test_resume_from_checkpoint_delivers_the_rest(sim: SimServer, tmp_path: Any) -> None:
    query = range_query()
    path = tmp_path / "pull.checkpoint"
    async with client_for(sim) as client:
        plan = await client.plan(query)
        assert len(plan.windows) >= 3
        checkpoint = Checkpoint.open(path, plan)
        first_run: list[str] = []
        stream = client.pages(plan, checkpoint=checkpoint)
        async with stream:
            async for page in stream:
                first_run.extend(s.id for s in page.items if s.id)
                if page.final and page.window == 1:
                    # Interrupted here: window 1 was handed over but not yet acknowledged.
                    break
        assert sorted(Checkpoint.open(path).done) == [0]

        resumed = Checkpoint.open(path, plan)
        second_run = await pull_ids_with(client, plan, resumed)
    expected = truth(sim, query)
    assert set(first_run) | set(second_run) == set(expected)
    assert len(second_run) == len(set(second_run))
    window0 = {i for i in expected if i in set(first_run)} - set(second_run)
    assert window0, "finished windows were not pulled again"
    overlap = set(first_run) & set(second_run)
    assert len(overlap) <= (plan.windows[1].count or 0) + 10, "only the unacknowledged window again"
    assert sorted(Checkpoint.open(path).done) == list(range(len(plan.windows)))


async def test_resume_from_a_query_uses_the_checkpoint_plan(sim: SimServer, tmp_path: Any) -> None:
    query = range_query()
    async with client_for(sim) as client:
        plan = await client.plan(query)
        checkpoint = Checkpoint.open(tmp_path / "cp", plan)
        checkpoint.mark_done(0, plan.windows[0].count or 0)
        before = sim.stats.search_requests
        ids = [s.id async for s in client.sessions(query, checkpoint=checkpoint) if s.id]
        first_window = set(truth(sim, attrs.evolve(query, end=plan.windows[0].end)))
        assert set(ids) == set(truth(sim, query)) - first_window
        planning = [r for r in list(sim.stats.log)[before:] if r.params.get("limit") == "1"]
        assert planning == [], "no planning again when resuming"
        other = range_query(statuses=["BUSY"])
        with pytest.raises(InvalidQueryError, match="another query"):
            await client.sessions(other, checkpoint=checkpoint).__anext__()


async def test_a_damaged_checkpoint_is_a_clear_error(tmp_path: Any) -> None:
    path = tmp_path / "cp"
    path.write_bytes(b'{"plan": {"version": 1}')
    with pytest.raises(InvalidQueryError, match="damaged"):
        Checkpoint.open(path)
