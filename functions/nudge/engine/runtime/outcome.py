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
    "stale_timer",
]


@dataclass(frozen=True)
class TimerSet:
    """Create or move the one timer of (customer, rule, key) so that it comes at ``at``.

    ``at`` is when the wait ``timer`` names is decided: its due time plus the allowed lateness.
    (The timer itself carries the due time, which is what the firing says.) A (rule, key) with
    several pending waits has one timer, for the oldest; the engine moves it to the next one
    when that one is decided. ``replaces`` says a timer was pending for another wait, so the
    scheduler adapter can update it in place instead of trying to create it first.
    """

    timer: Timer
    at: int
    replaces: bool = False


@dataclass(frozen=True)
class TimerCancel:
    """The pending timer of (customer, rule, key) is no longer needed."""

    customer_id: str
    rule: str
    key: str | None


@dataclass(frozen=True)
class Decision:
    """Why something happened (or did not): for replay summaries, metrics and audits."""

    rule: str
    key: str | None
    kind: DecisionKind
    at: int


@dataclass
class Outcome:
    """What processing one event or timer produced; ``changed`` says whether state must be saved."""

    firings: list[Firing] = field(default_factory=list)
    timers: list[TimerSet | TimerCancel] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    changed: bool = False
    accepted: bool = False
    late: bool = False
    """The event came more than the allowed lateness behind the caller's clock: it was processed on a
    best-effort basis (stored only where its window still holds it)."""


def firing_id(rule: str, customer_id: str, key: str | None, armed_at: int) -> str:
    """Deterministic: the same arming always yields the same id, so retries cannot double-send."""
    text = f"{rule}\x1f{customer_id}\x1f{'' if key is None else key}\x1f{armed_at}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
