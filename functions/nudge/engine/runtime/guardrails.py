"""Between a rule's firing and its send: consent, frequency caps with priority, quiet hours.

The engine decides that a rule fires (its conditions, wait, ``unless``, audience and cooldown);
``Guardrails`` decides whether and when that firing is sent, by event time like the rest:

- ``fire``: a firing that no cap counts and no quiet hours hold is decided at once. Any other
  waits in ``CustomerState.held`` for its ``send_at``: its decision time, plus the allowed
  lateness when a cap counts it (so that every firing that could come before it is known), moved
  to the end of the quiet hours, plus the lateness again, when they hold that instant.
- ``release``: the firings held until a time are decided together, in send order (send time, then
  priority, rule id, key), each by ``send``: consent as of its ``consent_at``, then every cap.
- ``rehold``: the customer's one hold timer follows the earliest held firing.

Nothing here reads a clock: the callers pass the instants (``Engine.process``, ``Engine.on_timer``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from ...contracts import HOLD_RULE, MESSAGE_CHANNELS, Firing, MatchedEvent, Timer
from ...timefmt import iso
from ..plan.compiled import CompiledRule, Plan
from .caps import fits
from .eventlog import unflatten
from .outcome import Decision, DecisionKind, Outcome, TimerCancel, TimerSet, firing_id
from .quiet import TIMEZONE_TRAIT, customer_zone, quiet_until
from .state import CustomerState, Held

Consent = Callable[[CustomerState, str, int], tuple[bool, str, DecisionKind]]
"""Whether a channel is allowed for a customer as of an instant, and why (``Engine.consent``)."""


def _send_time(held: Held) -> int:
    return held.send_at


def _first(entry: list[Any]) -> Any:
    return entry[0]


class Guardrails:
    """The policy's guardrails over one customer's firings; see the module docstring."""

    def __init__(self, plan: Plan, consent: Consent) -> None:
        self.plan = plan
        self.lateness = plan.allowed_lateness
        self.consent = consent

    def fire(self, rule: CompiledRule, state: CustomerState, firing: Held, outcome: Outcome) -> None:
        """``firing`` (its ``send_at`` and ``consent_at`` still its ``fired_at``) passed its rule: send or hold it."""
        if self.place(rule, state, firing, outcome):
            self.send(rule, state, firing, outcome)
        else:
            self.hold(state, firing, outcome)

    def place(self, rule: CompiledRule, state: CustomerState, firing: Held, outcome: Outcome) -> bool:
        """Set ``firing``'s ``send_at`` and ``consent_at``; whether it may be decided at once.

        At once is the fast path: nothing else competes with a firing no cap counts, and one no quiet
        hours hold is judged as of its ``fired_at`` either way; for events that arrive in order, holding
        every firing instead sends the same (``test_guardrails.py``, against ``hold`` everywhere).
        """
        fired_at, key = firing.fired_at, firing.key
        send_at = fired_at + self.lateness if rule.wait is not None or rule.caps else fired_at
        consent_at = fired_at
        quiet = self.plan.quiet
        if rule.quiet and quiet is not None:
            trait = state.profile.get(TIMEZONE_TRAIT)
            tz, problem = customer_zone(quiet, None if trait is None else trait[0])
            if problem is not None:
                outcome.decisions.append(Decision(rule.id, key, "invalid_timezone", fired_at, problem))
            end = quiet_until(quiet, tz, send_at)
            if end is not None:
                consent_at, send_at = end, end + self.lateness
                why = f"quiet hours {quiet.label} in {tz.key}: held until {iso(end)}"
                outcome.decisions.append(Decision(rule.id, key, "held", fired_at, why))
        firing.send_at, firing.consent_at = send_at, consent_at
        return not rule.caps and consent_at == fired_at

    def hold(self, state: CustomerState, firing: Held, outcome: Outcome) -> None:
        """Keep ``firing`` until its ``send_at`` (``release`` decides it; ``rehold`` sets the timer)."""
        bisect.insort(state.held, firing, key=_send_time)
        outcome.changed = True

    def send(self, rule: CompiledRule, state: CustomerState, firing: Held, outcome: Outcome) -> bool:
        """Send ``firing`` (decided now: held, or not) if its channel has consent as of its
        ``consent_at`` and it fits every cap at its ``send_at``.

        Consent is judged on what is known when the decision is taken: for a wait, like an
        ``unless`` event, a change stamped up to the due time counts if it arrives within the
        allowed lateness, so arrival order cannot change a send.
        """
        action, key, fired_at = rule.rule.action, firing.key, firing.fired_at
        if action.channel in MESSAGE_CHANNELS:  # webhooks and bus events need no consent
            allowed, why, refusal = self.consent(state, action.channel, firing.consent_at)
            if not allowed:
                outcome.decisions.append(Decision(rule.id, key, refusal, fired_at, why))
                return False
        for cap in rule.caps:
            times = [entry[0] for entry in state.sent if cap.counts(entry, rule.id, key)]
            if not fits(times, firing.send_at, cap.per, cap.max):
                outcome.decisions.append(Decision(rule.id, key, "suppressed_cap", fired_at, f"cap {cap.label}"))
                return False
        if rule.caps:
            bisect.insort(state.sent, [firing.send_at, action.channel, rule.id, key], key=_first)
        outcome.firings.append(
            Firing(
                firing_id=firing_id(rule.id, state.customer_id, key, firing.arm),
                rule=rule.id,
                customer_id=state.customer_id,
                key=key,
                armed_at=firing.arm,
                fired_at=fired_at,
                channel=action.channel,
                template=action.template,
                events=tuple(MatchedEvent(e.name, e.id, e.ts, unflatten(e.props)) for e in firing.matched),
                destination=action.destination,
                send_at=firing.send_at,
                profile=state.traits(),
            )
        )
        outcome.decisions.append(Decision(rule.id, key, "fired", fired_at))
        return True

    def release(self, state: CustomerState, limit: int, outcome: Outcome) -> None:
        """Decide every held firing whose send time is at or before ``limit``, in send order.

        Send order is the send time, then priority (higher first), then rule id, key and arm time:
        of five firings held until 09:00 under a cap of three, the three of highest priority go.
        """
        held = state.held
        if not held or held[0].send_at > limit:
            return
        count = bisect.bisect_right(held, limit, key=_send_time)
        due, state.held = held[:count], held[count:]
        by_id = self.plan.by_id

        def order(item: Held) -> tuple[int, int, str, str, int]:
            rule = by_id.get(item.rule)
            return item.send_at, -(rule.priority if rule is not None else 0), item.rule, item.key or "", item.arm

        for item in sorted(due, key=order):
            rule = by_id.get(item.rule)
            if rule is None:
                continue  # the rule was removed since: its firings go with it
            self.send(rule, state, item, outcome)
        outcome.changed = True
        state.prune_due = None

    def rehold(self, state: CustomerState, head: Held | None, outcome: Outcome, came: bool = False) -> None:
        """Keep the customer's one hold timer on the earliest held send time, which was ``head``'s.

        ``came``: ``head``'s timer has just come, so there is no timer to move or cancel.
        """
        first = state.held[0] if state.held else None
        if first is head or (first is not None and head is not None and first.send_at == head.send_at and not came):
            return
        if first is None:
            if head is not None and not came:
                outcome.timers.append(TimerCancel(state.customer_id, HOLD_RULE, None, head.send_at))
            return
        timer = Timer(state.customer_id, HOLD_RULE, None, first.send_at, first.send_at)
        replaced = head.send_at if head is not None and not came else None
        outcome.timers.append(TimerSet(timer, first.send_at, replaced_arm=replaced))
