"""The event envelope that SDKs write, validated at the boundary into the engine's ``Event``.

The pydantic model is the contract (and its errors name the field and the reason); the engine
then works on a small slotted ``Event`` so the hot path pays for validation once, not per rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..timefmt import to_ms

IDENTIFY = "identify"
MAX_EVENT_BYTES = 64 * 1024

_NAME_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"


class EventEnvelope(BaseModel):
    """One behavioural event, as an application sends it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=256)
    event: str = Field(pattern=_NAME_PATTERN)
    timestamp: datetime
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _needs_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset (Z or +HH:MM): event time must be unambiguous")
        return value

    def to_event(self) -> Event:
        return Event(
            event_id=self.event_id,
            customer_id=self.customer_id,
            name=self.event,
            ts=to_ms(self.timestamp),
            properties=self.properties,
            traits=self.traits,
        )


class Event:
    """A validated event in engine form: ``ts`` is epoch milliseconds of the event's own time."""

    __slots__ = ("customer_id", "event_id", "memo", "name", "properties", "traits", "ts")

    def __init__(
        self,
        *,
        event_id: str,
        customer_id: str,
        name: str,
        ts: int,
        properties: dict[str, Any] | None = None,
        traits: dict[str, Any] | None = None,
    ) -> None:
        self.event_id = event_id
        self.customer_id = customer_id
        self.name = name
        self.ts = ts
        self.properties = properties or {}
        self.traits = traits or {}
        self.memo: Any = None
        """One engine's reading of this event (its projection and the filters it matches):
        ``Engine.needs`` makes it when a batch is sorted, ``Engine.process`` reuses it."""

    def __repr__(self) -> str:
        return f"Event({self.name!r}, customer={self.customer_id!r}, ts={self.ts}, id={self.event_id!r})"


class EventError(ValueError):
    """An event that cannot be accepted; ``reason`` is safe to log (it never echoes property values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "event"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_event(data: bytes | str | dict[str, Any]) -> Event:
    """Validate one envelope (JSON text or an already-decoded object) into an ``Event``.

    Raises ``EventError`` naming each bad field and why, e.g.
    ``timestamp: timestamp needs a UTC offset (Z or +HH:MM)...``.
    """
    if isinstance(data, bytes | str):
        if len(data) > MAX_EVENT_BYTES:
            raise EventError(f"event is {len(data)} bytes; the limit is {MAX_EVENT_BYTES}")
        try:
            # Strict JSON: NaN and Infinity are refused, as the standard says and as the SDKs
            # never write them; integers beyond 64 bits are read as floats.
            decoded = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"not JSON: {exc.msg}") from None
    else:
        decoded = data
    if not isinstance(decoded, dict):
        raise EventError(f"an event must be a JSON object, not {type(decoded).__name__}")
    try:
        return EventEnvelope.model_validate(decoded).to_event()
    except ValidationError as exc:
        raise EventError(_describe(exc)) from None
