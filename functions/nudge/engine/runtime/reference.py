"""A naive model of retention and arming, for property tests only: what the engine means, without its tricks.

``EventLog`` and ``Engine`` are fast because of packed lists, memoized horizons, a prune memo, a
filter index and evaluation contexts shared between rules (``ARCHITECTURE.md`` lists them). This
model has none of them. It keeps every event it was given, and after each one recomputes, from
the rules' filters alone, what is retained and which rules arm:

- an event is *matched* by the filters of its name whose tests hold on its properties (every
  filter is tried; no index);
- it is *retained* at ``now`` while ``ts >= now - horizon``, its horizon being the longest among the
  filters it matches, and while it is among the newest ``cap`` retained events of at least one
  filter it matches (counting newest first, over the events still retained when it arrived); an
  event that fails either test once is gone for good;
- an event is a *duplicate*, and has no effect, when an event with its id is retained (of any name),
  or when any event with its id was stored and ``now`` has not reached that id's expiry (the
  first full hour after its time plus the dedupe window);
- when an event is stored, every rule one of its filters may arm (the filter is in the rule's
  ``when``, not under a ``not``) is evaluated at that event's time and at the time of every
  retained event at or after it, oldest first, each time over the retained events in a context
  of its own with that instant's event as the arriving one; it *arms* when its ``when`` holds with
  evidence that includes the arriving event; the arm time is the latest timestamp of the
  evidence; arm times only move forward per (rule, key), except that a rule with a wait also arms
  at an earlier time it has not armed at yet, when that time is no older than ``now`` minus the
  allowed lateness; instants (the stored event's
  included) older than ``now - window - allowed lateness`` are not evaluated for that rule;

It is slow on purpose (every step rescans everything) and is never used outside the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...contracts import Event, key_text
from ..plan.compiled import Filter, Plan
from ..plan.conditions import Context
from ..plan.operators import MISSING, resolve
from .eventlog import StoredEvent
from .seen import expiry


def _no_traits() -> dict[str, Any]:
    return {}  # the model is fed behaviour only: profiles are not part of retention or arming


@dataclass
class _Kept:
    event: StoredEvent
    horizon: int
    filters: list[Filter]


@dataclass
class ReferenceModel:
    """One customer's retained events and arm times under ``plan``, recomputed naively after each event."""

    plan: Plan
    dedupe_window: int = 24 * 3_600_000
    now: int | None = None
    seen: dict[str, int] = field(default_factory=dict)
    """Every id stored, with its event time: never forgotten here, judged against the window."""
    kept: dict[str, list[_Kept]] = field(default_factory=dict)
    last_arm: dict[tuple[str, str | None], int] = field(default_factory=dict)
    arms: dict[tuple[str, str | None], set[int]] = field(default_factory=dict)
    """Every arm time per (rule, key), never forgotten here."""
    armings: list[tuple[str, str | None, int]] = field(default_factory=list)
    """Every (rule, key, arm time), in the order the arms happened."""

    def retained(self) -> dict[str, list[str]]:
        """Ids of the retained events per name, oldest first: what ``EventLog`` must hold."""
        return {name: [k.event.id for k in items] for name, items in sorted(self.kept.items()) if items}

    def feed(self, event: Event) -> None:
        route = self.plan.routes.get(event.name)
        if route is None:
            return
        filters = self._matching(route.filters, event.properties, route.paths)
        if not filters:
            return
        items = self.kept.setdefault(event.name, [])
        if any(k.event.id == event.event_id for others in self.kept.values() for k in others):
            return  # a duplicate of a retained event, of any name
        first = self.seen.get(event.event_id)
        if first is not None and self.now is not None and self.now < expiry(first, self.dedupe_window):
            return  # a duplicate of an event seen within the window
        props = {path: value for path in route.paths if (value := resolve(event.properties, path)) is not MISSING}
        stored = StoredEvent(event.event_id, event.name, event.ts, props)
        now = event.ts if self.now is None else max(self.now, event.ts)
        horizon = max(item.horizon for item in filters)
        if event.ts < now - horizon:
            return
        alive = [k for k in items if k.event.ts >= now - k.horizon]
        candidate = sorted([*alive, _Kept(stored, horizon, filters)], key=lambda k: k.event.sort_key())
        taken: dict[int, int] = {}
        survivors: list[_Kept] = []
        for k in reversed(candidate):
            if any(taken.get(id(item), 0) < item.cap for item in k.filters):
                survivors.append(k)
                for item in k.filters:
                    taken[id(item)] = taken.get(id(item), 0) + 1
        if not any(k.event is stored for k in survivors):
            return  # older than everything the caps of its filters keep
        self.kept[event.name] = survivors[::-1]
        self.now = now
        self.seen[event.event_id] = event.ts
        for name, others in self.kept.items():
            self.kept[name] = [k for k in others if k.event.ts >= now - k.horizon]
        self._arm(stored, {rule.id for item in filters for rule in item.triggers})

    @staticmethod
    def _matching(filters: tuple[Filter, ...], properties: dict[str, Any], paths: tuple[str, ...]) -> list[Filter]:
        props = {path: value for path in paths if (value := resolve(properties, path)) is not MISSING}
        return [item for item in filters if item.matcher.matches(props)]

    def _events(self, name: str) -> list[StoredEvent]:
        return [k.event for k in self.kept.get(name, [])]

    def _arm(self, stored: StoredEvent, may_arm: set[str]) -> None:
        instants = sorted(
            (k.event for items in self.kept.values() for k in items if k.event.ts >= stored.ts),
            key=StoredEvent.sort_key,
        )
        assert self.now is not None
        for rule in (rule for rule in self.plan.rules if rule.id in may_arm):
            oldest = self.now - rule.window - self.plan.allowed_lateness
            if stored.ts < oldest:
                continue
            for arriving in [stored, *(e for e in instants if e is not stored)]:
                key: str | None = None
                if rule.key_path is not None:
                    key = key_text(arriving.props.get(rule.key_path))
                    if key is None:
                        continue
                ctx = Context(self._events, arriving.ts, _no_traits, arriving, rule.key_path, key)
                evidence = rule.when.evaluate(ctx)
                if evidence is None or not any(e is arriving for e in evidence):
                    continue
                arm = max(e.ts for e in evidence)
                last = self.last_arm.get((rule.id, key))
                known = self.arms.setdefault((rule.id, key), set())
                if (
                    last is not None
                    and arm <= last
                    and (rule.wait is None or arm in known or arm < self.now - self.plan.allowed_lateness)
                ):
                    continue
                known.add(arm)
                self.last_arm[(rule.id, key)] = arm if last is None else max(last, arm)
                self.armings.append((rule.id, key, arm))
