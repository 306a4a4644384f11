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
- Escalation: once a step is sent, the rule's next step waits here, undecided, until its own time
  (the previous step's send plus ``after``) plus the lateness; then the engine judges whether the
  customer answered (``Judge``) and the step is placed and sent like any firing. A step the customer
  cannot receive (no address, no consent, a bounce, a rest) hands over to the next one at once; a
  cap ends the chain. Every send is also recorded in the customer's own events as ``message_sent``.
- Disengagement: a marketing send on a channel the policy rests (``disengaged``) is suppressed while
  the customer's last N sends on it went unanswered and the newest of them is younger than the rest.

Nothing here reads a clock: the callers pass the instants (``Engine.process``, ``Engine.on_timer``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from ...contracts import CHANNEL_ADDRESSES, HOLD_RULE, MESSAGE_CHANNELS, Firing, MatchedEvent, Timer, reachable
from ...timefmt import iso
from ..plan.compiled import CompiledRule, Plan
from .caps import fits
from .eventlog import unflatten
from .outcome import Decision, DecisionKind, Outcome, TimerCancel, TimerSet, firing_id
from .quiet import TIMEZONE_TRAIT, customer_zone, quiet_until
from .state import CustomerState, Held

Consent = Callable[[CustomerState, str, int], tuple[bool, str, DecisionKind]]
"""Whether a channel is allowed for a customer as of an instant, and why (``Engine.consent``)."""

Judge = Callable[[CompiledRule, CustomerState, Held], "tuple[DecisionKind, str] | None"]
"""Whether a later escalation step is called off, and why (``Engine.judge_step``); ``None``: it goes on."""

Record = Callable[[CustomerState, Firing], None]
"""Keep a send in the customer's own events as ``message_sent`` (``Engine.record_sent``)."""


def _send_time(held: Held) -> int:
    return held.send_at


def _first(entry: list[Any]) -> Any:
    return entry[0]


def resting(entry: list[Any] | None, at: int, count: int, rest: int) -> int | None:
    """Until when a channel rests for a customer as of ``at`` (``None``: it does not).

    ``entry`` is ``CustomerState.engagement[channel]``: the last open or click, and the marketing
    sends since, newest last. The channel rests when ``count`` of them are unanswered, until the newest
    is ``rest`` old; then one send goes, and if that one is not answered either it rests again.
    """
    if entry is None:
        return None
    sends = entry[1]
    if len(sends) < count:
        return None
    until = int(sends[-1]) + rest
    return until if at < until else None


class Guardrails:
    """The policy's guardrails over one customer's firings; see the module docstring."""

    def __init__(self, plan: Plan, consent: Consent, judge: Judge, record: Record) -> None:
        self.plan = plan
        self.lateness = plan.allowed_lateness
        self.consent = consent
        self.judge = judge
        self.record = record

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
        step = rule.steps[firing.step]
        fired_at, key = firing.fired_at, firing.key
        waited = rule.wait is not None or step.caps or firing.step
        send_at = fired_at + self.lateness if waited else fired_at
        consent_at = fired_at
        quiet = self.plan.quiet
        if step.quiet and quiet is not None:
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
        return not step.caps and consent_at == fired_at

    def hold(self, state: CustomerState, firing: Held, outcome: Outcome) -> None:
        """Keep ``firing`` until its ``send_at`` (``release`` decides it; ``rehold`` sets the timer)."""
        bisect.insort(state.held, firing, key=_send_time)
        outcome.changed = True

    def send(self, rule: CompiledRule, state: CustomerState, firing: Held, outcome: Outcome) -> bool:
        """Send ``firing`` (decided now: held, or not) if its channel has consent as of its
        ``consent_at``, the channel is not resting, and it fits every cap at its ``send_at``.

        Consent is judged on what is known when the decision is taken: for a wait, like an
        ``unless`` event, a change stamped up to the due time counts if it arrives within the
        allowed lateness, so arrival order cannot change a send.
        """
        step = rule.steps[firing.step]
        channel, key, fired_at = step.channel, firing.key, firing.fired_at
        if channel in MESSAGE_CHANNELS:  # webhooks and bus events need no consent
            refusal = self._unreachable(rule, state, firing, channel)
            if refusal is not None:
                kind, why = refusal
                if firing.step + 1 < len(rule.steps):
                    # Handed over to the next step: a step passed over, not a message withheld.
                    kind, why = "skipped_unreachable", f"{why}: on to step {firing.step + 1}"
                outcome.decisions.append(Decision(rule.id, key, kind, fired_at, why))
                self._next(rule, state, firing, outcome, skipped=True)
                return False
        for cap in step.caps:
            times = [entry[0] for entry in state.sent if cap.counts(entry, rule.id, key)]
            if not fits(times, firing.send_at, cap.per, cap.max):
                outcome.decisions.append(Decision(rule.id, key, "suppressed_cap", fired_at, f"cap {cap.label}"))
                return False  # the customer has had enough: an escalation ends here too
        if step.caps:
            # The rule and key only where the rule's own cap will count them: a send is kept for the
            # longest cap's window, and most customers' state is mostly these.
            own = any(cap.scope == "rule" for cap in step.caps)
            entry: list[Any] = [firing.send_at, channel, rule.id, key] if own else [firing.send_at, channel]
            bisect.insort(state.sent, entry, key=_first)
        rest = self.plan.disengaged.get(channel) if rule.marketing else None
        if rest is not None:
            entry = state.engagement.setdefault(channel, [None, []])
            bisect.insort(entry[1], firing.send_at)
            del entry[1][: -rest[0]]
        sent = Firing(
            firing_id=firing_id(rule.id, state.customer_id, key, firing.arm, firing.step),
            rule=rule.id,
            customer_id=state.customer_id,
            key=key,
            armed_at=firing.arm,
            fired_at=fired_at,
            channel=channel,
            template=step.template,
            events=tuple(MatchedEvent(e.name, e.id, e.ts, unflatten(e.props)) for e in firing.matched),
            destination=step.destination,
            send_at=firing.send_at,
            profile=state.traits(),
            step=firing.step,
        )
        outcome.firings.append(sent)
        outcome.decisions.append(
            Decision(rule.id, key, "fired", fired_at, f"step {firing.step}" if firing.step else "")
        )
        self.record(state, sent)
        self._next(rule, state, firing, outcome, skipped=False)
        return True

    def _unreachable(
        self, rule: CompiledRule, state: CustomerState, firing: Held, channel: str
    ) -> tuple[DecisionKind, str] | None:
        """Why the customer cannot be sent ``firing`` on ``channel`` now (``None``: nothing stops it).

        Consent (and the bounces and complaints kept with it), then the policy's rest for
        disengaged customers; in a rule that escalates, a missing address too, since the next step
        may reach the customer where this one cannot (a rule of one step leaves that to delivery).
        """
        allowed, why, refusal = self.consent(state, channel, firing.consent_at)
        if not allowed:
            return refusal, why
        rest = self.plan.disengaged.get(channel) if rule.marketing else None
        if rest is not None:
            until = resting(state.engagement.get(channel), firing.send_at, *rest)
            if until is not None:
                count = rest[0]
                return "suppressed_disengaged", f"{count} {channel} sends unanswered: resting until {iso(until)}"
        if len(rule.steps) > 1 and not reachable(channel, state.profile):
            return "skipped_unreachable", f"no {CHANNEL_ADDRESSES[channel]} trait for {channel}"
        return None

    def _next(self, rule: CompiledRule, state: CustomerState, item: Held, outcome: Outcome, *, skipped: bool) -> None:
        """After ``item`` was sent (or ``skipped``: could not reach the customer), hold the rule's next step.

        Sent: the next step's time is this one's send (its ``consent_at``: its ``fired_at``, or the end
        of the quiet hours that held it) plus the step's ``after``, and it answers to this step. Skipped:
        the next step takes this one's place at once, and answers to whatever step went before.
        """
        number = item.step + 1
        if number >= len(rule.steps):
            return
        if skipped:
            since, prev, fired_at = (item.since if item.prev >= 0 else item.consent_at), item.prev, item.consent_at
        else:
            since, prev = item.consent_at, item.step
            fired_at = since + rule.steps[number].after
        step = Held(rule.id, item.key, item.arm, fired_at, fired_at + self.lateness, fired_at, item.matched)
        step.step, step.since, step.prev, step.undecided = number, since, prev, True
        self.hold(state, step, outcome)

    def release(self, state: CustomerState, limit: int, outcome: Outcome) -> None:
        """Decide every held firing whose send time is at or before ``limit``, in send order.

        Send order is the send time, then priority (higher first), then rule id, key and arm time:
        of five firings held until 09:00 under a cap of three, the three of highest priority go. An
        undecided escalation step is judged first (answered, called off, superseded), then placed by
        the guardrails like a firing; a step that a skip or a send brings due is decided in the same call.
        """
        if not state.held or state.held[0].send_at > limit:
            return
        by_id = self.plan.by_id

        def order(item: Held) -> tuple[int, int, str, str, int, int]:
            rule = by_id.get(item.rule)
            priority = -(rule.priority if rule is not None else 0)
            return item.send_at, priority, item.rule, item.key or "", item.arm, item.step

        while state.held and state.held[0].send_at <= limit:
            held = state.held
            count = bisect.bisect_right(held, limit, key=_send_time)
            due, state.held = held[:count], held[count:]
            ready: list[tuple[CompiledRule, Held]] = []
            for item in due:
                rule = by_id.get(item.rule)
                if rule is None or item.step >= len(rule.steps):
                    continue  # the rule (or the step) was removed since: its firings go with it
                if item.undecided:
                    verdict = self.judge(rule, state, item)
                    if verdict is not None:
                        outcome.decisions.append(Decision(rule.id, item.key, verdict[0], item.fired_at, verdict[1]))
                        continue
                    item.undecided = False
                    if not self.place(rule, state, item, outcome) and item.send_at > limit:
                        self.hold(state, item, outcome)
                        continue
                ready.append((rule, item))
            for rule, item in sorted(ready, key=lambda pair: order(pair[1])):
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
