"""Why a rule would not fire for a customer's events, in words, from the engine's own decisions.

The events are replayed with the real engine (``Replayer``, every wait decided at the end) and the
rule's decisions are read back: never armed, armed but cancelled by its ``unless``, outside its
``audience``, held back by its cooldown. ``nudge preview`` uses it to flag a sample that would
never make the firing it shows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from ..contracts import IDENTIFY, Event
from .language.rules import (
    AllCondition,
    AnyCondition,
    Condition,
    EventFilter,
    NotCondition,
    SequenceCondition,
    TrendCondition,
    UnlessAny,
)
from .plan.compiled import Plan
from .replay import Replayer


def why_not_fired(plan: Plan, rule_id: str, events: Iterable[Event]) -> str | None:
    """``None`` when replaying ``events`` fires ``rule_id`` of ``plan``; else the reason it does not."""
    given = list(events)
    replayer = Replayer(plan)
    for event in given:
        replayer.feed(event)
    replayer.finish()
    tally = replayer.stats.rules[rule_id]
    if tally.fired:
        return None
    rule = plan.by_id[rule_id].rule
    if not tally.armed:
        return "its `when` was never met by these events" + _missing(rule.when, given)
    reasons = []
    if tally.cancelled:
        unless = rule.unless.any if isinstance(rule.unless, UnlessAny) else [rule.unless] if rule.unless else []
        names = ", ".join(sorted({f.event for f in unless}))
        reasons.append(f"cancelled {tally.cancelled} time(s) by its `unless` ({names}) within the wait")
    if tally.suppressed_audience:
        reasons.append("the customer is outside its `audience` when it would fire")
    if tally.suppressed_cooldown:
        reasons.append("held back by its cooldown")
    if tally.superseded:
        reasons.append(f"{tally.superseded} arming(s) superseded by a later one (debounce)")
    return f"it was armed {tally.armed} time(s) but " + ("; ".join(reasons) or "never fired")


def _filters(condition: Condition) -> Iterator[str]:
    """The event names a ``when`` needs to see (not those under ``not``)."""
    if isinstance(condition, EventFilter):
        yield condition.event
    elif isinstance(condition, SequenceCondition):
        yield from (step.event for step in condition.sequence)
    elif isinstance(condition, AllCondition):
        for part in condition.all:
            yield from _filters(part)
    elif isinstance(condition, TrendCondition):
        yield condition.trend.event
    elif isinstance(condition, (AnyCondition, NotCondition)):
        return  # any one part may do, or a part must be absent: nothing certain to name


def _missing(when: Condition, events: list[Event]) -> str:
    seen = Counter(event.name for event in events if event.name != IDENTIFY)
    needed = list(dict.fromkeys(_filters(when)))
    missing = [name for name in needed if name not in seen]
    if not seen:
        return ": there are no events"
    if not needed:
        return ""
    if not missing:
        return f" (it needs {' and '.join(needed)} event(s) with the `where`, order and timing it asks for)"
    has = ", ".join(f"{name} x{count}" for name, count in seen.items())
    return f": it needs {' and '.join(missing)} event(s), and there are none (the events: {has})"
