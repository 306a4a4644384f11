"""A customer's bounded, serializable state: the plain value the evaluator loads and saves.

Everything the engine knows about a customer lives here, so the Lambda evaluator can keep it
in one DynamoDB item and replay can keep it in a dict. The encoding is compact JSON with a
schema version (``v``) so later releases can migrate it.

The evaluator decodes and encodes every changed customer once per batch, which made the stdlib
``json`` module half of the engine's time; orjson writes the same JSON about three times faster.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

SCHEMA_VERSION = 1
_SEP = "|"  # rule ids are [a-z0-9_]+, so the first "|" always splits rule id from key


class StoredEvent:
    """An event the rules reference, reduced to the properties they read (flat dotted paths)."""

    __slots__ = ("horizon", "id", "name", "props", "ts")

    def __init__(self, id: str, name: str, ts: int, props: dict[str, Any], horizon: int | None = None) -> None:
        self.id = id
        self.name = name
        self.ts = ts
        self.props = props
        self.horizon = horizon
        """How long the rules keep it (ms): the engine's memo, never encoded, since rules change."""

    def sort_key(self) -> tuple[int, str]:
        return (self.ts, self.id)

    def __repr__(self) -> str:
        return f"StoredEvent({self.name!r}, ts={self.ts}, id={self.id!r})"


class Pending:
    """An armed rule waiting for ``due``; ``matched`` is copied so pruning cannot empty a firing."""

    __slots__ = ("arm", "due", "matched")

    def __init__(self, arm: int, due: int, matched: list[StoredEvent]) -> None:
        self.arm = arm
        self.due = due
        self.matched = matched


class RuleState:
    """Per (rule, key): the latest arm time, the latest firing, and the pending wait if any."""

    __slots__ = ("last_arm", "last_fired", "pending")

    def __init__(self, last_arm: int | None = None, last_fired: int | None = None, pending: Pending | None = None):
        self.last_arm = last_arm
        self.last_fired = last_fired
        self.pending = pending


RuleKey = tuple[str, str | None]


class CustomerState:
    """Bounded per-customer memory.

    ``now`` is the latest timestamp among the customer's events that rules reference: it is the
    instant at which windows are evaluated (event time, not arrival time).

    Decoding leaves each event name's list *packed* (as the JSON gave it) until something asks
    for it with ``events_of``: an event usually touches one or two names, and a busy customer's
    state holds eight, so the rest go back into the encoding as they came out of it.
    """

    __slots__ = ("customer_id", "events", "now", "packed", "profile", "prune_at", "rules")

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.now: int | None = None
        self.events: dict[str, list[StoredEvent]] = {}
        """Unpacked event lists by name, oldest first; use ``events_of`` to read."""
        self.packed: dict[str, list[list[Any]]] = {}
        """Event lists not unpacked since decoding: ``[id, ts, props]`` items, oldest first."""
        self.profile: dict[str, list[Any]] = {}  # trait -> [value, ts]; value None is a tombstone
        self.rules: dict[RuleKey, RuleState] = {}
        self.prune_at: tuple[str, int] | None = None
        """(plan fingerprint, t): under that plan there is nothing to forget before ``now`` reaches t.

        Pruning after every event would otherwise rescan every list and rule of a busy customer
        to find, nearly always, nothing. It is encoded, so the first event of the next batch need
        not rescan either; a deployment with other rules has another fingerprint and rescans.
        """

    def events_of(self, name: str) -> list[StoredEvent] | None:
        """The stored events named ``name``, oldest first (unpacked on first use), or ``None``."""
        items = self.events.get(name)
        if items is None:
            packed = self.packed.pop(name, None)
            if packed is None:
                return None
            items = self.events[name] = [StoredEvent(id_, name, ts, props) for id_, ts, props in packed]
        return items

    def event_names(self) -> list[str]:
        return [*self.events, *self.packed]

    def unpack(self) -> dict[str, list[StoredEvent]]:
        """Every stored event by name: for tools and tests, which want to see it all."""
        for name in list(self.packed):
            self.events_of(name)
        return self.events

    def traits(self) -> dict[str, Any]:
        return {name: entry[0] for name, entry in self.profile.items() if entry[0] is not None}

    def pending(self) -> list[tuple[RuleKey, Pending]]:
        return [(key, rs.pending) for key, rs in self.rules.items() if rs.pending is not None]

    def is_empty(self) -> bool:
        return not self.events and not self.packed and not self.profile and not self.rules

    # -- encoding -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        rules: dict[str, Any] = {}
        for (rule_id, key), rs in self.rules.items():
            pending = None
            if rs.pending is not None:
                pending = [rs.pending.arm, rs.pending.due, [_encode_event(e) for e in rs.pending.matched]]
            rules[rule_id if key is None else f"{rule_id}{_SEP}{key}"] = [rs.last_arm, rs.last_fired, pending]
        data = {
            "v": SCHEMA_VERSION,
            "c": self.customer_id,
            "n": self.now,
            # Names in sorted order, so the same state always encodes to the same bytes.
            "e": {
                name: [[e.id, e.ts, e.props] for e in items]
                if (items := self.events.get(name)) is not None
                else self.packed[name]
                for name in sorted(self.event_names())
            },
            "p": self.profile,
            "r": rules,
        }
        if self.prune_at is not None:
            data["x"] = list(self.prune_at)
        return data

    def encode(self) -> bytes:
        data = self.to_dict()
        try:
            return orjson.dumps(data)
        except TypeError:
            # Integers beyond 64 bits: only from events handed over as Python objects, since
            # parse_event reads such numbers from JSON text as floats, as orjson does.
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    def size(self) -> int:
        """Serialized size in bytes: what DynamoDB would store for this customer's state."""
        return len(self.encode())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        version = data.get("v")
        if version != SCHEMA_VERSION:
            raise ValueError(f"customer state schema v{version} is not supported (expected v{SCHEMA_VERSION})")
        state = cls(data["c"])
        state.now = data["n"]
        state.packed = data["e"]
        memo = data.get("x")
        if memo is not None:
            state.prune_at = (memo[0], memo[1])
        state.profile = data["p"]
        for packed_key, (last_arm, last_fired, pending) in data["r"].items():
            rule_id, _, key = packed_key.partition(_SEP)
            decoded_pending = None
            if pending is not None:
                arm, due, matched = pending
                decoded_pending = Pending(arm, due, [_decode_event(item) for item in matched])
            state.rules[(rule_id, key if _SEP in packed_key else None)] = RuleState(
                last_arm, last_fired, decoded_pending
            )
        return state

    @classmethod
    def decode(cls, raw: bytes | str) -> CustomerState:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = json.loads(raw)  # NaN or Infinity, which the stdlib writes and orjson refuses
        return cls.from_dict(data)


def _encode_event(event: StoredEvent) -> list[Any]:
    return [event.name, event.id, event.ts, event.props]


def _decode_event(item: list[Any]) -> StoredEvent:
    name, id_, ts, props = item
    return StoredEvent(id_, name, ts, props)
