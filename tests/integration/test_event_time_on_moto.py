"""The deployed evaluator's code on moto keeps the event-time promise: late timers, batches that mix
timers with newer events, and arrival orders within the allowed lateness give replay's in-order
firings.

The events go onto a real (moto) Kinesis stream in arrival order, a few at a time; every batch is
evaluated by the ``BatchEvaluator`` the Lambda handler builds, with each event's own clock; the
Scheduler schedules it creates are delivered by the schedule driver a fixed delay after their
time (as a throttled Scheduler would), into the same stream, so a batch can hold a timer and
events newer than its wait. Firings are read back from the firings queue.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.bench.aws import moto_stack
from nudge.clock import VirtualClock
from nudge.contracts import Event
from nudge.engine import load_plan, replay
from tests.integration.conftest import Harness
from tests.integration.test_handlers import envelope
from tests.unit.test_event_time import L, histories, rule_sets

CALLED_OFF = "id: called_off\nwhen: {event: a}\nwait: 2m\nunless: {event: u}\naction: {channel: event}\n"
"""Always loaded: a short wait that stragglers often call off, so timers and late events meet."""


def _identity(body: dict[str, Any]) -> tuple[Any, ...]:
    return (body["firing_id"], body["fired_at"], tuple(e["event_id"] for e in body["events"]))


def _run_on_moto(rules_dir: Path, events: list[Event], rng: random.Random, timer_delay: int) -> set[tuple[Any, ...]]:
    arrivals = sorted(((e.ts + rng.randint(0, L), e) for e in events), key=lambda item: (item[0], item[1].event_id))
    with moto_stack(str(rules_dir)) as stack:
        clock = VirtualClock()
        harness = Harness(stack.session, stack.resources, clock)
        firings: set[tuple[Any, ...]] = set()
        while arrivals or harness.schedules.pending():
            pending = harness.schedules.pending()
            next_timer = pending[0].due + timer_delay if pending else None
            chunk = []
            while arrivals and len(chunk) < rng.randint(1, 5) and (next_timer is None or arrivals[0][0] < next_timer):
                chunk.append(arrivals.pop(0))
            if not chunk and next_timer is not None:
                clock.set(max(clock.now_ms(), next_timer))
                harness.schedules.fire_due(next_timer - timer_delay)
                if arrivals and rng.random() < 0.5:  # the timer shares its batch with newer events
                    chunk.append(arrivals.pop(0))
            if chunk:
                clock.set(max(clock.now_ms(), chunk[-1][0]))
                harness.stream.put(*(envelope(event) for _, event in chunk))
            walls = {event.event_id: arrival for arrival, event in chunk}
            report = harness.evaluator.evaluate(harness.stream.read(), clock.now_ms(), walls)
            assert report.failed_sequence_number is None
            firings |= {_identity(body) for body in harness.firings()}
        return firings


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    texts=rule_sets(),
    events=histories(),
    seed=st.integers(0, 2**32 - 1),
    timer_delay=st.sampled_from([0, 1_000, 60_000, 10 * 60_000]),
)
def test_the_evaluator_on_moto_with_late_timers_gives_the_in_order_firings(
    tmp_path_factory: Any, texts: list[str], events: list[Event], seed: int, timer_delay: int
):
    rules_dir = tmp_path_factory.mktemp("rules")
    for index, text in enumerate([*texts, CALLED_OFF]):
        (rules_dir / f"r{index}.yaml").write_text(text)
    got = _run_on_moto(rules_dir, events, random.Random(seed), timer_delay)
    expected = {_identity(f.to_json()) for f in replay(load_plan(rules_dir), events)}
    assert got == expected
