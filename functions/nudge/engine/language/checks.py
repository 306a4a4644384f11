"""Whole-rule checks: what a field-by-field model cannot say (``unless`` needs ``wait``, history needs ``within``).

Each finding is a ``Problem`` with the location inside the rule it concerns, which the loader turns
into ``file:line``; warnings are reported by ``nudge validate`` and do not stop a deploy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from ...contracts import MESSAGE_CHANNELS, MESSAGE_SENT
from .rules import (
    AllCondition,
    AnyCondition,
    AttributeCondition,
    ConditionModel,
    EventFilter,
    Loc,
    NotCondition,
    Rule,
    SequenceCondition,
    TrendCondition,
    UnlessAny,
    unless_events,
)


class Problem(BaseModel):
    """One finding of the validator; ``loc`` is the path inside the rule it concerns."""

    model_config = ConfigDict(frozen=True)

    loc: Loc
    message: str
    severity: Literal["error", "warning"] = "error"


def _walk_when(cond: ConditionModel, loc: Loc, top: bool, negated: bool, out: list[Problem]) -> bool:
    """Check history bounds under ``when``; return whether a non-negated event condition exists."""
    positive = False
    if isinstance(cond, EventFilter):
        if cond.within is None and top and cond.count is not None:
            out.append(
                Problem(
                    loc=(*loc, "count"),
                    message=(
                        f"event filter '{cond.event}' has a `count`, so it needs `within` (e.g. within: 1d): "
                        "events are counted over a bounded window"
                    ),
                )
            )
        elif cond.within is None and not top:
            out.append(
                Problem(
                    loc=(*loc, "event"),
                    message=(
                        f"event filter '{cond.event}' needs `within` here: only a lone `when: {{event: ...}}` "
                        "(the arriving event itself) may leave it out, so that every rule's memory is bounded"
                    ),
                )
            )
        return not negated
    if isinstance(cond, SequenceCondition):
        if cond.within is None:
            out.append(Problem(loc=(*loc, "sequence"), message="a sequence needs `within` (e.g. within: 1h)"))
        if len(cond.sequence) < 2:
            out.append(
                Problem(
                    loc=(*loc, "sequence"),
                    message="a sequence needs at least two steps; for one event use an event filter",
                )
            )
        for index, step in enumerate(cond.sequence):
            if step.within is not None or step.count is not None:
                out.append(
                    Problem(
                        loc=(*loc, "sequence", index),
                        message="a sequence step matches one event: put `within` on the sequence, not on a step",
                    )
                )
        return not negated
    if isinstance(cond, TrendCondition):
        return not negated
    if isinstance(cond, AttributeCondition):
        return False
    if isinstance(cond, NotCondition):
        _walk_when(cond.not_, (*loc, "not"), False, not negated, out)
        return False
    children = cond.all if isinstance(cond, AllCondition) else cond.any
    name = "all" if isinstance(cond, AllCondition) else "any"
    if not children:
        out.append(Problem(loc=(*loc, name), message=f"`{name}` needs at least one condition"))
    for index, child in enumerate(children):
        if _walk_when(child, (*loc, name, index), False, negated, out):
            positive = True
    return positive


def _walk_audience(cond: ConditionModel, loc: Loc, out: list[Problem]) -> None:
    if isinstance(cond, AttributeCondition):
        return
    if isinstance(cond, NotCondition):
        _walk_audience(cond.not_, (*loc, "not"), out)
    elif isinstance(cond, AllCondition | AnyCondition):
        name = "all" if isinstance(cond, AllCondition) else "any"
        for index, child in enumerate(cond.all if isinstance(cond, AllCondition) else cond.any):
            _walk_audience(child, (*loc, name, index), out)
    else:
        out.append(
            Problem(
                loc=loc,
                message="audience tests profile traits only (attribute, all, any, not); put events under `when`",
            )
        )


def _arming_filters(cond: ConditionModel) -> list[EventFilter]:
    """The event filters whose arriving event can arm the rule: a lone filter, a sequence's last
    step, and those under ``all``/``any`` (never under ``not``; a trend arms on any of its events)."""
    if isinstance(cond, EventFilter):
        return [cond]
    if isinstance(cond, SequenceCondition):
        return cond.sequence[-1:]
    if isinstance(cond, AllCondition | AnyCondition):
        children = cond.all if isinstance(cond, AllCondition) else cond.any
        return [item for child in children for item in _arming_filters(child)]
    return []


def _matches_all_of(unless: EventFilter, arming: EventFilter) -> bool:
    """Whether every event ``arming`` matches is also matched by ``unless`` (same name, fewer tests)."""
    return unless.event == arming.event and all(arming.where.get(name) == test for name, test in unless.where.items())


def _self_cancelling(rule: Rule, problems: list[Problem]) -> None:
    """An ``unless`` that matches the arming event itself cancels every wait the moment it starts.

    The unless window starts at the arm time, so the arming event is in it: ``when: purchase`` with
    ``unless: purchase`` never fires. What such a rule means to say ("no purchase for 30 days since
    the last one") is ``when: purchase`` and ``wait: 30d`` alone: each new purchase re-arms the wait.
    """
    arming = _arming_filters(rule.when)
    for index, item in enumerate(unless_events(rule)):
        loc: Loc = ("unless", "any", index) if isinstance(rule.unless, UnlessAny) else ("unless",)
        if any(_matches_all_of(item, candidate) for candidate in arming):
            problems.append(
                Problem(
                    loc=loc,
                    severity="warning",
                    message=(
                        f"this unless filter matches the '{item.event}' event that arms the rule, and the wait "
                        "starts at that event, so every wait is called off at once and the rule never fires. "
                        f"For 'no {item.event} for <wait> since the last one', drop `unless`: each new "
                        f"'{item.event}' re-arms the wait. Otherwise make the filters differ (a `where`)."
                    ),
                )
            )


def _check_escalation(rule: Rule, problems: list[Problem]) -> None:
    """Each step reaches the customer on a channel of its own kind (``after`` is a duration, never 0), and its
    ``unless`` is a plain filter; ``message_sent`` is recorded by the engine, so it cannot arm a rule."""
    for index, step in enumerate(rule.escalate):
        loc: Loc = ("escalate", index)
        if step.channel not in MESSAGE_CHANNELS:
            problems.append(
                Problem(
                    loc=(*loc, "channel"),
                    message=(
                        "an escalation step reaches the customer: its channel is one of "
                        f"{', '.join(MESSAGE_CHANNELS)}, not '{step.channel}'"
                    ),
                )
            )
        elif step.template is None:
            problems.append(Problem(loc=loc, message=f"channel '{step.channel}' needs a `template`"))
        for item in unless_events(step):
            if item.within is not None or item.count is not None:
                problems.append(
                    Problem(
                        loc=(*loc, "unless"),
                        message=(
                            "an unless filter takes no `within` or `count`: "
                            "its window is the time since the previous step"
                        ),
                    )
                )
    if rule.escalate and rule.action.channel not in MESSAGE_CHANNELS:
        problems.append(
            Problem(
                loc=("escalate",),
                message=(
                    "only an action that reaches the customer (email, sms, push) can escalate: nobody opens a webhook"
                ),
            )
        )
    arming = _arming_filters(rule.when)
    if arming and all(item.event == MESSAGE_SENT for item in arming):
        problems.append(
            Problem(
                loc=("when",),
                message=(
                    f"'{MESSAGE_SENT}' is recorded by the engine when it sends, and never starts an evaluation: "
                    "a rule must be armed by another event (read message_sent under `not`, in a count beside it, "
                    "or in `unless`)"
                ),
            )
        )


def check_rule(rule: Rule) -> list[Problem]:
    """Whole-rule checks that a field-by-field model cannot express."""
    problems: list[Problem] = []
    if not _walk_when(rule.when, ("when",), True, False, problems):
        problems.append(
            Problem(
                loc=("when",),
                message="`when` must contain at least one event condition that is not under `not`",
            )
        )
    if rule.unless is not None:
        if rule.wait is None:
            problems.append(
                Problem(
                    loc=("unless",),
                    message="`unless` needs `wait`: the wait is the time in which the unless event may come",
                )
            )
        for index, item in enumerate(unless_events(rule)):
            loc: Loc = ("unless", "any", index) if isinstance(rule.unless, UnlessAny) else ("unless",)
            if item.within is not None or item.count is not None:
                problems.append(
                    Problem(
                        loc=loc,
                        message=(
                            "an unless filter takes no `within` or `count`: its window is [arm time, arm time + wait]"
                        ),
                    )
                )
        _self_cancelling(rule, problems)
    if rule.audience is not None:
        _walk_audience(rule.audience, ("audience",), problems)
    if rule.action.channel in ("email", "sms", "push") and rule.action.template is None:
        problems.append(Problem(loc=("action",), message=f"channel '{rule.action.channel}' needs a `template`"))
    if rule.wait is None and rule.cooldown is None:
        problems.append(
            Problem(
                loc=("id",),
                severity="warning",
                message="neither `wait` nor `cooldown`: this rule fires again on every matching event",
            )
        )
    _check_escalation(rule, problems)
    if rule.category == "transactional" and rule.frequency_cap is not None:
        problems.append(
            Problem(
                loc=("frequency_cap",),
                message=(
                    "a transactional rule ignores caps: drop `frequency_cap`, or make the rule `category: marketing`"
                ),
            )
        )
    return problems
