"""Firings to preview: made by the engine from a customer's sample events, or by replaying a file.

``nudge preview`` shows what delivery would send for a firing, so the firing it previews must be
one the engine could have made: the events carry exactly the properties the rule keeps, nested as
the engine nests them, and the key is the engine's reading of the rule's ``key`` path. Rather than
re-implement that, the engine says how it would carry each sample event (``Engine.carried``) and
the firing is encoded and decoded as the firings queue would carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contracts import IDENTIFY, Event, Firing, FiringMessage, MatchedEvent, decode_firing, encode_firing
from ..engine import Engine, Rule, compile_rules, firing_id, replay
from ..engine.explain import why_not_fired


@dataclass(frozen=True)
class SampleEvent:
    """An event of a customer file: its id and time are made up when not given."""

    name: str
    properties: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    ts: int | None = None


@dataclass
class SampleFiring:
    firing: FiringMessage
    notes: list[str] = field(default_factory=list)
    """What was left out of the sample and why, for the person previewing."""


def present(traits: dict[str, Any]) -> dict[str, Any]:
    """Traits as the engine keeps them: a trait set to null is no trait."""
    return {name: value for name, value in traits.items() if value is not None}


def firing_from_events(
    rule: Rule,
    customer_id: str,
    traits: dict[str, Any],
    events: Sequence[SampleEvent],
    *,
    key: str | None,
    now_ms: int,
) -> SampleFiring:
    """The firing of ``rule`` that ``events`` would make, armed by the last of them (at ``now_ms`` if none is dated).

    Events the rule does not use are left out, as are the properties it does not keep; ``key``
    (if given) overrides the key read from the events.
    """
    engine = Engine(compile_rules([rule.model_copy(update={"enabled": True})]))
    routes = engine.plan.routes
    matched: list[MatchedEvent] = []
    unused: dict[str, int] = {}
    unmatched: dict[str, int] = {}
    dropped: dict[str, set[str]] = {}
    found_key = key
    for index, given in enumerate(events):
        route = routes.get(given.name)
        if route is None:
            unused[given.name] = unused.get(given.name, 0) + 1
            continue
        for name in given.properties:
            if not any(path == name or path.startswith(name + ".") for path in route.paths):
                dropped.setdefault(given.name, set()).add(name)
        event = Event(
            event_id=given.event_id or f"preview-{index + 1}",
            customer_id=customer_id,
            name=given.name,
            ts=now_ms if given.ts is None else given.ts,
            properties=given.properties,
        )
        carried = engine.carried(event, rule.id)
        if carried is None:
            unmatched[given.name] = unmatched.get(given.name, 0) + 1
            continue
        matched.append(carried[0])
        event_key = carried[1]
        if key is None and event_key is not None:
            found_key = event_key
    notes = [
        f"{count} {name} event(s) left out: rule {rule.id} does not use {name} events" for name, count in unused.items()
    ]
    notes += [
        f"{count} {name} event(s) left out: they match no `where` of rule {rule.id}, so it would not keep them"
        for name, count in unmatched.items()
    ]
    notes += [
        f"{name} properties {', '.join(sorted(properties))} left out: rule {rule.id} keeps only its where "
        "paths, key and action.properties, so a firing would not carry them"
        for name, properties in dropped.items()
    ]
    armed = max((event.timestamp for event in matched), default=now_ms)
    firing = Firing(
        firing_id=firing_id(rule.id, customer_id, found_key, armed),
        rule=rule.id,
        customer_id=customer_id,
        key=found_key,
        armed_at=armed,
        fired_at=armed + (rule.wait or 0),
        channel=rule.action.channel,
        template=rule.action.template,
        events=tuple(matched),
        destination=rule.action.destination,
        profile=present(traits),
    )
    return SampleFiring(decode_firing(encode_firing(firing)), notes)


def replayed_firings(rule: Rule, traits: dict[str, Any], events: list[Event]) -> list[FiringMessage]:
    """Every firing of ``rule`` in a replay of one customer's ``events``, with ``traits`` known from the start.

    The traits go in first, as an ``identify`` just before the first event, so an audience sees
    them; a later ``identify`` in the events still updates them, and the given traits win in the
    profile the firing carries.
    """
    plan = compile_rules([rule.model_copy(update={"enabled": True})])
    known = present(traits)
    firings = [decode_firing(encode_firing(firing)) for firing in replay(plan, _with_traits(known, events))]
    return [firing.model_copy(update={"profile": {**firing.profile, **known}}) for firing in firings]


def why_sample_not_fired(
    rule: Rule, customer_id: str, traits: dict[str, Any], events: Sequence[SampleEvent], *, now_ms: int
) -> str | None:
    """Why the engine would not fire ``rule`` replaying ``events``, ``traits`` known from the start; ``None``: it would.

    The events are those ``firing_from_events`` shows, taken as the customer's whole history.
    """
    plan = compile_rules([rule.model_copy(update={"enabled": True})])
    history = [
        Event(
            event_id=given.event_id or f"preview-{index + 1}",
            customer_id=customer_id,
            name=given.name,
            ts=now_ms if given.ts is None else given.ts,
            properties=given.properties,
        )
        for index, given in enumerate(events)
    ]
    return why_not_fired(plan, rule.id, _with_traits(present(traits), history))


def _with_traits(known: dict[str, Any], events: list[Event]) -> list[Event]:
    """``events`` after an ``identify`` of ``known`` just before the first of them, so an audience sees them."""
    if not known or not events:
        return events
    start = min(event.ts for event in events) - 1
    identify = Event(
        event_id="preview-traits", customer_id=events[0].customer_id, name=IDENTIFY, ts=start, traits=known
    )
    return [identify, *events]
