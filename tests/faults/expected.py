"""The firings that must happen: ``nudge replay`` over the same events, in the order they were put.

Replay is the reference (README, "Semantics"): the same engine on a virtual clock, with no stream,
no store, no Scheduler and no queue in between. Poison records are not events (replay would reject
them too), so they are left out; re-sent copies are kept (replay ignores a seen id, as must the
pipeline). For a redeploy, replay runs the old rules up to the redeploy instant (every timer that
comes before it decided by the old engine, ``Replayer.finish``), then continues with the new
engine over the same states and pending timers, which is what the stored states and schedules
carry across a deploy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nudge.contracts import Event, Firing
from nudge.engine import Engine, Plan
from nudge.engine.replay import Replayer


@dataclass(frozen=True)
class Redeploy:
    """At ``at_ms`` the functions are redeployed with the rules in ``rules_dir`` (compiled: ``plan``)."""

    at_ms: int
    plan: Plan
    rules_dir: str


def expected_firings(plan: Plan, events: Sequence[Event], redeploy: Redeploy | None = None) -> list[Firing]:
    """Replay's firings for ``events`` (already in put order), with an optional redeploy."""
    replayer = Replayer(plan)
    firings: list[Firing] = []
    swapped = redeploy is None
    for event in events:
        if not swapped and redeploy is not None and event.ts >= redeploy.at_ms:
            firings += replayer.finish(until=redeploy.at_ms - plan.allowed_lateness - 1)
            replayer.engine = Engine(redeploy.plan)
            swapped = True
        firings += replayer.feed(event)
    if not swapped and redeploy is not None:
        firings += replayer.finish(until=redeploy.at_ms - plan.allowed_lateness - 1)
        replayer.engine = Engine(redeploy.plan)
    firings += replayer.finish()
    return firings
