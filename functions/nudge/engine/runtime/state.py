"""A customer's bounded state: the plain value the evaluator loads and saves once per batch.

Everything the engine knows about a customer lives here, so the Lambda evaluator can keep it in
one DynamoDB item and replay can keep it in a dict: the stored events (``EventLog``), the profile
(traits, each with the time it was set), and per (rule, key) the latest arm time, the latest
firing and the pending wait. ``codec`` writes and reads it (schema v2).
"""

from __future__ import annotations

from typing import Any

from .eventlog import EventLog, StoredEvent
from .seen import SeenIds


class Pending:
    """An armed rule waiting for ``due``, to be decided once the allowed lateness has passed too.

    ``matched`` is copied so pruning cannot empty a firing.
    """

    __slots__ = ("arm", "due", "matched")

    def __init__(self, arm: int, due: int, matched: list[StoredEvent]) -> None:
        self.arm = arm
        self.due = due
        self.matched = matched


class RuleState:
    """Per (rule, key): the latest arm time, the latest firing, and the pending waits.

    ``waits`` are oldest first and never overlap: a wait is decided as of its due time, but only
    once the allowed lateness has passed, so an arming after one wait's due time and before its
    decision starts a second wait beside it. Mostly there is none or one.
    """

    __slots__ = ("last_arm", "last_fired", "recent", "waits")

    def __init__(
        self,
        last_arm: int | None = None,
        last_fired: int | None = None,
        waits: list[Pending] | None = None,
        recent: list[int] | None = None,
    ) -> None:
        self.last_arm = last_arm
        self.last_fired = last_fired
        self.waits: list[Pending] = [] if waits is None else waits
        self.recent: list[int] = [] if recent is None else recent
        """Earlier arm times of a wait rule, no older than the allowed lateness, oldest first: a late
        arming is superseded by one of these inside its own wait, as it would have been in order."""


RuleKey = tuple[str, str | None]


class Held:
    """A firing the rule decided, waiting for its send time to be decided by the guardrails.

    A firing that a cap or quiet hours may stop is not sent at once: it waits here until
    ``send_at``, when the customer's firings due by then are decided together, oldest send time
    first and, at the same send time, by priority. ``consent_at`` is the instant its consent is
    judged as of (``fired_at``, or the end of the quiet hours that held it).
    """

    __slots__ = (
        "arm",
        "consent_at",
        "fired_at",
        "key",
        "matched",
        "prev",
        "rule",
        "send_at",
        "since",
        "step",
        "undecided",
    )

    def __init__(
        self,
        rule: str,
        key: str | None,
        arm: int,
        fired_at: int,
        send_at: int,
        consent_at: int,
        matched: list[StoredEvent],
        step: int = 0,
        since: int = 0,
        prev: int = -1,
        undecided: bool = False,
    ) -> None:
        self.rule = rule
        self.key = key
        self.arm = arm
        self.fired_at = fired_at
        self.send_at = send_at
        self.consent_at = consent_at
        self.matched = matched
        self.step = step
        """Which step of the rule's escalation (0: the action itself)."""
        self.since = since
        """For a later step: when the previous step that was sent went out (its ``consent_at``)."""
        self.prev = prev
        """For a later step: the index of that previous step (-1: none was sent, nothing to answer)."""
        self.undecided = undecided
        """A later step not yet judged: at ``send_at`` (its time plus the lateness) the engine decides
        whether the customer answered the previous one, then the guardrails place it."""


class Trim:
    """What ``Engine.fit`` dropped from a state too large to write (all zero: nothing)."""

    __slots__ = ("after", "before", "details", "events", "ids", "traits")

    def __init__(self) -> None:
        self.before = 0
        self.after = 0
        self.events = 0
        self.traits = 0
        self.details = 0
        self.ids = False

    def __bool__(self) -> bool:
        return self.before > 0

    def __repr__(self) -> str:
        return (
            f"Trim({self.before} -> {self.after} bytes: {self.events} events, {self.traits} traits, "
            f"{self.details} wait details{', the id memory' if self.ids else ''})"
        )


class CustomerState:
    """Bounded per-customer memory.

    ``now`` is the latest timestamp among the customer's stored events: the instant at which
    windows are evaluated (event time, not arrival time).
    """

    __slots__ = (
        "_log",
        "_log_packed",
        "consent",
        "customer_id",
        "engagement",
        "erased_at",
        "events",
        "held",
        "now",
        "profile",
        "prune_due",
        "rules",
        "seen",
        "sent",
    )

    def __init__(self, customer_id: str, events: EventLog | None = None, seen: SeenIds | None = None) -> None:
        self.customer_id = customer_id
        self.now: int | None = None
        self.events = EventLog() if events is None else events
        self.seen = SeenIds() if seen is None else seen
        """The ids of the events this customer sent lately, whatever became of the events."""
        self.profile: dict[str, list[Any]] = {}  # trait -> [value, ts]; value None is a tombstone
        self.consent: dict[str, list[list[Any]]] = {}
        """Per consent channel, its last changes ``[ts, granted, source]``, in event-time order."""
        self.rules: dict[RuleKey, RuleState] = {}
        self.held: list[Held] = []
        """Firings waiting for their send time, in the order they will be decided (``Guardrails.release``)."""
        self.sent: list[list[Any]] = []
        """The sends the caps count, ``[send_at, channel]`` (``[send_at, channel, rule, key]`` for a rule
        with a cap of its own), oldest first, for the longest cap."""
        self.engagement: dict[str, list[Any]] = {}
        """Per channel the policy rests when unanswered: ``[last open or click, [marketing sends since,
        newest last, at most the policy's count]]`` (``Guardrails.disengaged``)."""
        self._log: list[list[Any]] | None = []
        self._log_packed: list[Any] | None = None
        """The decision log as the codec read it, until something reads ``log``: most states are
        decoded and written again without a decision, and need not unpack it (``codec.decode_log``)."""
        self.erased_at: int | None = None
        """The event time of the customer's erasure, if one came: nothing stamped at or before it is
        taken again (``Engine.erase``). The state of an erased customer who sent nothing newer is only
        this, and the evaluator keeps it as a tombstone under a hash of the id."""
        self.prune_due: tuple[int, int] | None = None
        """The engine's prune memo: under the plan of that fingerprint, nothing is due to be forgotten
        before ``now`` reaches the time (``None``: unknown, look). A change of a rule's state resets it.
        It is written with the state (``"m"``): without it, a decoded state's first change would walk
        every rule state and stored name to learn that nothing is due, which made a customer's
        events cost in proportion to what she had stored."""

    @property
    def log(self) -> list[list[Any]]:
        """The latest decisions, ``[at, rule, kind(, key(, reason))]``, oldest first, at most the policy's
        ``decision_log``: what ``nudge explain`` answers "why" from after the fact."""
        if self._log is None:
            self._log = _codec.decode_log(self._log_packed) if self._log_packed else []
            self._log_packed = None
        return self._log

    @log.setter
    def log(self, entries: list[list[Any]]) -> None:
        self._log, self._log_packed = entries, None

    def extend_log(self, entries: list[list[Any]], size: int) -> None:
        """Add decisions to the log and keep its newest ``size``, without unpacking a packed log:
        most states that decide something are decoded, and never read their log."""
        packed = self._log_packed if self._log is None else None
        if packed is not None:
            _codec.append_log(packed, entries, _codec.newest_logged(packed))
            _codec.trim_log(packed, size)
            return
        log = self.log
        log.extend(entries)
        del log[:-size]

    def packed_log(self) -> list[Any] | None:
        """The log in the codec's form when it was never unpacked (``None``: it was, or there is none)."""
        return self._log_packed if self._log is None else None

    def events_of(self, name: str) -> list[StoredEvent] | None:
        """The stored events named ``name``, oldest first, or ``None``."""
        return self.events.of(name)

    def traits(self) -> dict[str, Any]:
        return {name: entry[0] for name, entry in self.profile.items() if entry[0] is not None}

    def pending(self) -> list[tuple[RuleKey, Pending]]:
        """Every pending wait, with the (rule, key) it belongs to."""
        return [(key, wait) for key, rs in self.rules.items() for wait in rs.waits]

    def is_empty(self) -> bool:
        return (
            not self.events
            and not self.profile
            and not self.rules
            and not self.seen
            and not self.consent
            and not self.held
            and not self.sent
            and not self.engagement
            and not self._log
            and not self._log_packed
        )

    def encode(self) -> bytes:
        """Schema v2 bytes (``codec``)."""
        return _codec.encode_state(self)

    def size(self) -> int:
        """Serialized size in bytes: what DynamoDB would store for this customer's state."""
        return len(self.encode())

    @classmethod
    def decode(cls, raw: bytes | str) -> CustomerState:
        """A state from schema v2 (or v1) bytes (``codec``)."""
        return _codec.decode_state(raw)


# Last, because the codec builds these classes: whichever of the two is imported first, both are
# complete before either method above runs.
from . import codec as _codec  # noqa: E402
