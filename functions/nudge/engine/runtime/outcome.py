"""What the engine decides, as values: timer requests, decisions, and the ``Outcome`` of one input.

Firings and timers are wire contracts (``nudge.contracts``); the rest is the engine's own answer
to its caller, who does the I/O: the evaluator turns ``timers`` into Scheduler calls and
``firings`` into queue messages, replay into a heap and a list.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from ...contracts import Firing, Timer

DecisionKind = Literal[
    "armed",
    "fired",
    "cancelled",
    "superseded",
    "suppressed_audience",
    "suppressed_cooldown",
    "suppressed_consent",
    "suppressed_bounced",
    "suppressed_complaint",
    "suppressed_cap",
    "suppressed_disengaged",
    "skipped_unreachable",
    "held",
    "invalid_timezone",
    "stale_timer",
]

GUARDRAIL_DECISIONS: frozenset[DecisionKind] = frozenset(
    {
        "suppressed_consent",
        "suppressed_bounced",
        "suppressed_complaint",
        "suppressed_cap",
        "suppressed_disengaged",
        "skipped_unreachable",
        "held",
        "invalid_timezone",
    }
)
"""The decisions of the policy rather than of a rule: what the summaries and metrics count apart."""


@dataclass(frozen=True)
class TimerSet:
    """Set the one timer of (customer, rule, key) for the wait ``timer`` names, to come at ``at``.

    ``at`` is when the wait is decided: its due time plus the allowed lateness. (The timer itself
    carries the due time, which is what the firing says.) A (rule, key) with several pending waits
    has one timer, for the oldest; the engine moves it to the next one when that one is decided.
    ``replaced_arm`` is the arm time of the wait whose timer this one replaces (``None``: there was
    none), so the scheduler can remove that one, after the new state is safely written.
    """

    timer: Timer
    at: int
    replaced_arm: int | None = None

    @property
    def replaces(self) -> bool:
        return self.replaced_arm is not None


@dataclass(frozen=True)
class TimerCancel:
    """The pending timer of (customer, rule, key), set for the wait armed at ``arm``, is no longer needed."""

    customer_id: str
    rule: str
    key: str | None
    arm: int


@dataclass(frozen=True)
class Decision:
    """Why something happened (or did not): for replay summaries, metrics and audits."""

    rule: str
    key: str | None
    kind: DecisionKind
    at: int
    reason: str = ""
    """Why, in words, where the kind alone does not say (which consent, which cap): no personal data."""


@dataclass
class Outcome:
    """What processing one event or timer produced; ``changed`` says whether state must be saved."""

    firings: list[Firing] = field(default_factory=list)
    timers: list[TimerSet | TimerCancel] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    changed: bool = False
    accepted: bool = False
    erased: bool = False
    """The input was an erasure: the state is now empty but for its erasure time, and the caller
    removes what it keeps of the customer elsewhere (profile item, activations)."""
    dropped_erased: bool = False
    """The event is stamped at or before the customer's erasure: dropped, so a retried send cannot
    bring erased data back."""
    late: bool = False
    """The event came more than the allowed lateness behind the caller's clock: it was processed on a
    best-effort basis (stored only where its window still holds it)."""


def firing_id(rule: str, customer_id: str, key: str | None, armed_at: int, step: int = 0) -> str:
    """Deterministic: the same arming always yields the same id, so retries cannot double-send.

    Each escalation step is a firing of its own; step 0 keeps the id it had before steps existed.
    """
    text = f"{rule}\x1f{customer_id}\x1f{'' if key is None else key}\x1f{armed_at}"
    if step:
        text += f"\x1f{step}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
