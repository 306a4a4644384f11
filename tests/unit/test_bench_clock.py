"""The bench's in-memory loops judge each record at its own arrival, so their firings are replay's."""

from __future__ import annotations

from typing import Any

import pytest

from nudge.bench.engine_run import EngineRun, drain, run_batched, run_per_event
from nudge.bench.stream import Batcher, TimerQueue
from nudge.bench.workload import WorkloadSpec, generate
from nudge.contracts import Firing
from nudge.engine import Engine, load_plan, replay

PLAN = load_plan("rules")
SPARSE = WorkloadSpec(events=20_000, customers=2_000, seed=11)
"""A week of 20k events: a 500-record batch spans about four hours of event time."""


def _identity(firing: Firing) -> tuple[Any, ...]:
    return (firing.rule, firing.step, firing.customer_id, firing.key, firing.armed_at, firing.fired_at)


@pytest.fixture(scope="module")
def sparse() -> list:  # type: ignore[type-arg]
    return generate(SPARSE).events


def test_a_batch_spanning_hours_decides_each_wait_as_replay_does(sparse: list) -> None:  # type: ignore[type-arg]
    """At the batch's latest time a checkout armed early in it looked overdue and fired at once,
    before the purchase a few records later was read (205 cart reminders where replay sent 166)."""
    engine = Engine(PLAN)
    batcher: Batcher[Any] = Batcher(TimerQueue(), 500)
    run = drain(run_batched, engine, batcher, run_batched(engine, batcher, sparse, EngineRun()))
    expected = sorted(_identity(f) for f in replay(PLAN, sparse))
    assert sorted(_identity(f) for f in run.sent) == expected
    assert any(f.rule == "cart_abandonment" for f in run.sent)


def test_the_per_event_design_judges_each_record_at_its_arrival_too(sparse: list) -> None:  # type: ignore[type-arg]
    engine = Engine(PLAN)
    batcher: Batcher[Any] = Batcher(TimerQueue(), 500)
    run = drain(run_per_event, engine, batcher, run_per_event(engine, batcher, sparse, EngineRun()))
    assert run.firings == sum(1 for _ in replay(PLAN, sparse))
