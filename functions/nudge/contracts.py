"""The wire contracts, each defined once: the event envelope, the firing message, the timer message.

Every process that writes or reads one of these goes through this module: the SDK and replay
validate envelopes with ``parse_event``; the Lambda evaluator decodes stream records with the same
function; the evaluator queues firings with ``encode_firing`` and delivery reads them back with
``decode_firing``; the Scheduler adapter writes ``encode_timer`` and the evaluator reads
``decode_timer``. A field added here is seen on both sides, or refused with a reason.

JSON is read by one strict decoder (``loads``): NaN and Infinity are refused, as the JSON standard
says and as no SDK writes them, and integers beyond 64 bits are read as floats, as orjson does.

Versions: the firing message and the timer message carry ``v``. A consumer refuses a version it
does not know with a reason rather than guessing, so a message parked in a dead-letter queue for
two weeks is still read correctly, or parked again saying why.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .timefmt import EARLIEST_MS, LATEST_MS, in_range, iso, to_ms

IDENTIFY = "identify"
"""The event name that carries profile ``traits`` rather than behaviour."""

CONSENT_UPDATED = "consent_updated"
"""A consent change: ``{channel, granted, source}`` in its properties."""
UNSUBSCRIBED = "unsubscribed"
"""What the unsubscribe endpoint writes: ``{channel}``, meaning ``granted: false`` for that channel."""
MESSAGE_BOUNCED = "message_bounced"
"""A message could not be delivered: ``{channel, bounce_type: permanent|transient, ...}``; a permanent
bounce suppresses the channel until the customer grants it again."""
MESSAGE_COMPLAINED = "message_complained"
"""The customer marked a message as spam: ``{channel, ...}``; suppresses the channel until a grant."""
SUPPRESSION_EVENTS = frozenset({MESSAGE_BOUNCED, MESSAGE_COMPLAINED})
"""What the channels report that stops sends on a channel: kept in the consent record, durably."""
MESSAGE_SENT = "message_sent"
"""Recorded by the engine itself, in the customer's state, when it decides to send a firing:
``{rule, channel, firing_id, step, variant}`` at the send time. Never sent on the stream."""
MESSAGE_DELIVERED = "message_delivered"
MESSAGE_OPENED = "message_opened"
MESSAGE_CLICKED = "message_clicked"
"""A link in a message was followed: ``url`` says which."""
MESSAGE_FAILED = "message_failed"
"""The provider could not send or render a message: ``reason`` says why."""
FEEDBACK_EVENTS = frozenset(
    {MESSAGE_DELIVERED, MESSAGE_OPENED, MESSAGE_CLICKED, MESSAGE_BOUNCED, MESSAGE_COMPLAINED, MESSAGE_FAILED}
)
"""What the channels report about a message, back on the customer's stream: ``{channel, rule,
firing_id, step}`` (each but ``channel`` where the channel knows it) and ``reason``, ``url`` or
``bounce_type`` where there is one. Always let through the stream mapping: the evaluator records each
against its firing in the activations table."""
ENGAGEMENT_EVENTS = frozenset({MESSAGE_OPENED, MESSAGE_CLICKED})
"""A customer engaged with a message: what stops an escalation and ends disengagement."""
MESSAGE_STATUSES = {
    MESSAGE_DELIVERED: "delivered",
    MESSAGE_OPENED: "opened",
    MESSAGE_CLICKED: "clicked",
    MESSAGE_BOUNCED: "bounced",
    MESSAGE_COMPLAINED: "complained",
    MESSAGE_FAILED: "not_delivered",
}
"""The activation status each feedback event moves its firing to (``adapters/message_log.py``)."""
SENT_STATUS = "sent"
"""A firing's status once its provider accepted it (``ActivationStatus.SENT``): where feedback starts."""
FEEDBACK_RANKS = {"delivered": 1, "not_delivered": 1, "bounced": 2, "opened": 3, "clicked": 4, "complained": 5}
"""How far along a sent message each reported status is: a firing's status only moves up (an open
reported before its delivery is not undone by the delivery)."""
ERASURE_REQUESTED = "erasure_requested"
"""Erase everything Nudge holds about the customer (``nudge erase``): on the customer's stream like any
event, so the one writer of her state does it in order. Carries no properties and no traits."""
ERASURE_PREFIX = "erased#"
"""An erasure's tombstone is kept under this prefix and ``customer_hash`` of the id, never the id."""


def customer_hash(customer_id: str) -> str:
    """The SHA-256 of a customer id, hex: what an erasure leaves behind (tombstone, audit record)."""
    return hashlib.sha256(f"nudge-customer\x1f{customer_id}".encode()).hexdigest()


CONSENT_EVENTS = frozenset({CONSENT_UPDATED, UNSUBSCRIBED}) | SUPPRESSION_EVENTS
"""The events that change a customer's consent record (choices, and the suppressions bounces and
complaints bring): always let through the stream mapping, always applied."""
BOUNCE_TYPES = ("permanent", "transient")
CONSENT_CHANNELS = ("email", "sms", "push", "tracking")
"""What a customer consents to, each on its own: three channels, and the tracking of behaviour."""
MESSAGE_CHANNELS = ("email", "sms", "push")
"""The channels that reach the customer: what consent, bounces and complaints apply to, what caps
count and quiet hours hold. Webhooks and bus events go to the team's own systems."""
ALL_CHANNELS = "all"
"""A consent event for ``all`` changes every one of ``CONSENT_CHANNELS``."""

MAX_EVENT_BYTES = 64 * 1024
"""The largest envelope accepted, in bytes of JSON."""

FIRING_MESSAGE_VERSION = 3
"""v2 added ``send_at``; v1 messages (which may wait in a DLQ for 14 days) are still read: sent at once."""
READABLE_FIRING_VERSIONS = (1, 2, 3)
TIMER_MESSAGE_VERSION = 1
TIMER_TYPE = "nudge.timer"
"""The ``type`` of a timer record on the events stream (what the stream mapping's filter lets in)."""
HOLD_RULE = "~hold"
"""The ``rule`` of a timer that comes for a customer's held firings (``Guardrails.release``), not for a
wait: rule ids are ``[a-z0-9_]+``, so no rule can have it."""

_NAME_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"

# -- addresses -----------------------------------------------------------------------------------

_ATOM = r"[^\s\x00-\x1f\x7f@,;:<>()\[\]\"\\]"
_EMAIL = re.compile(rf"{_ATOM}{{1,64}}@{_ATOM.replace('@', '@.')}+(?:\.{_ATOM.replace('@', '@.')}+)+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def email_problem(value: object) -> str | None:
    """Why ``value`` is not one email address (``None``: it is one).

    One address, and nothing that could become a second one or a header: no spaces, line breaks,
    commas, semicolons, angle brackets or quotes. Letters beyond ASCII are allowed.
    """
    if not isinstance(value, str):
        return "is not a string"
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        return "is not one email address (no spaces, line breaks, commas or display names)"
    return None


def phone_problem(value: object) -> str | None:
    """Why ``value`` is not a phone number in E.164 form, ``+`` and 7 to 15 digits (``None``: it is)."""
    if not isinstance(value, str):
        return "is not a string"
    if not _E164.fullmatch(value):
        return "is not a phone number in E.164 form (+ and 7 to 15 digits, no spaces)"
    return None


ADDRESS_TRAITS = {"email": email_problem, "phone": phone_problem}
"""The traits delivery addresses a customer with, and how each is checked: when an ``identify``
is accepted (so a bad one is refused at the producer, with the reason) and again at send time."""


class ContractError(ValueError):
    """Input that does not meet its contract; ``reason`` is safe to log (it never echoes values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventError(ContractError):
    """An event that cannot be accepted."""


MAX_NESTING = 32
"""How deep JSON may nest (objects and arrays) in anything Nudge reads. Deeper text is refused with
its reason: nothing a rule reads is that deep, and a 4 KB record nested 990 deep made Python's own
encoder raise ``RecursionError`` when the state was written, a failure with no reason."""


def loads(data: bytes | str) -> Any:
    """The one JSON decoder of every wire format: strict, and the same in every process."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not JSON: {exc.msg}") from None
    # Counting brackets is cheap and almost always settles it: fewer than the limit cannot nest deeper.
    brackets = data.count(b"[") + data.count(b"{") if isinstance(data, bytes) else data.count("[") + data.count("{")
    if brackets > MAX_NESTING and _depth(value) > MAX_NESTING:
        raise ContractError(f"JSON nested more than {MAX_NESTING} deep")
    return value


def _depth(value: Any) -> int:
    """How deep ``value`` nests, walked without recursion (the input may be adversarial)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_NESTING:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


MAX_UNKNOWN_SHOWN = 3
"""How many unknown keys one reason names; more are counted, so a reason stays short."""


def _shown(key: object) -> str:
    """A key as a reason names it: as it is, or quoted and cut short when long or not printable."""
    text = str(key)
    if len(text) <= 64 and text.isprintable():
        return text
    return repr(text[:64]) + ("…" if len(text) > 64 else "")


def validation_problems(error: ValidationError, whole: str, known: Collection[str] = ()) -> list[tuple[str, str]]:
    """(where, what) for each error: ``where`` is the field's path, or ``whole`` for the whole input.

    An unknown key (``extra="forbid"``) is named with the closest of the ``known`` fields, e.g.
    ``("propertis", "unknown field; did you mean properties?")``.
    """
    problems, unknown = [], 0
    for item in error.errors(include_url=False, include_input=False):
        if item["type"] == "extra_forbidden":
            unknown += 1
            if unknown > MAX_UNKNOWN_SHOWN:
                continue
            key = str(item["loc"][-1])
            close = difflib.get_close_matches(key, list(known), n=1)
            where = ".".join([*(str(part) for part in item["loc"][:-1]), _shown(key)])
            problems.append((where, f"unknown field; did you mean {close[0]}?" if close else "unknown field"))
            continue
        where = ".".join(str(part) for part in item["loc"]) or whole
        problems.append((where, item["msg"].removeprefix("Value error, ")))
    if unknown > MAX_UNKNOWN_SHOWN:
        problems.append((whole, f"{unknown - MAX_UNKNOWN_SHOWN} more unknown fields"))
    return problems


def _describe(error: ValidationError, whole: str, known: Collection[str] = ()) -> str:
    return "; ".join(f"{where}: {what}" for where, what in validation_problems(error, whole, known))


CHANNEL_ADDRESSES = {"email": "email", "sms": "phone", "push": "push_tokens"}
"""The trait each message channel is addressed by."""


def reachable(channel: str, traits: dict[str, list[Any]]) -> bool:
    """Whether a profile (trait -> ``[value, ts]``, as the state keeps it) has an address for ``channel``.

    Only whether there is one: delivery checks the address itself when it sends.
    """
    entry = traits.get(CHANNEL_ADDRESSES.get(channel, ""))
    value = None if entry is None else entry[0]
    if channel == "push":
        return isinstance(value, list) and any(isinstance(item, dict) and item.get("token") for item in value)
    return isinstance(value, str) and bool(value)


# -- the event envelope --------------------------------------------------------------------------


class EventEnvelope(BaseModel):
    """One behavioural event, as an application sends it.

    ``extra="forbid"``: a key that is not one of these fields (``propertis``) is refused, naming the
    key and the field it was probably meant to be, rather than dropped with what it carried.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    event_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=256)
    event: str = Field(pattern=_NAME_PATTERN)
    timestamp: datetime
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)

    @field_validator("traits")
    @classmethod
    def _addresses_are_addresses(cls, traits: dict[str, Any]) -> dict[str, Any]:
        for name, problem in ADDRESS_TRAITS.items():
            value = traits.get(name)
            if value is not None and (why := problem(value)):
                raise ValueError(f"the {name} trait {why}")
        return traits

    @field_validator("timestamp")
    @classmethod
    def _needs_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset (Z or +HH:MM): event time must be unambiguous")
        if not in_range(to_ms(value)):
            raise ValueError(
                f"timestamp must be from {iso(EARLIEST_MS)} to before {iso(LATEST_MS + 1)} "
                "(epoch milliseconds, with room for every wait and window)"
            )
        return value

    @model_validator(mode="after")
    def _consent_says_what_and_which(self) -> EventEnvelope:
        if self.event in CONSENT_EVENTS and (problem := consent_problem(self.event, self.properties)):
            raise ValueError(problem)
        if self.event in FEEDBACK_EVENTS and (problem := feedback_problem(self.event, self.properties)):
            raise ValueError(problem)
        if self.event == MESSAGE_SENT:
            raise ValueError(f"{MESSAGE_SENT} is recorded by the engine when it sends: it cannot be sent as an event")
        if self.event == ERASURE_REQUESTED and (self.properties or self.traits):
            raise ValueError(f"{ERASURE_REQUESTED} carries no properties and no traits: it erases, it records nothing")
        return self

    def to_event(self) -> Event:
        return Event(
            event_id=self.event_id,
            customer_id=self.customer_id,
            name=self.event,
            ts=to_ms(self.timestamp),
            properties=self.properties,
            traits=self.traits,
        )


def consent_problem(name: str, properties: dict[str, Any]) -> str | None:
    """What is wrong with a consent event's properties, or ``None``: refused like any bad envelope.

    A consent event that could be read two ways (no channel, ``granted: "no"``) must never be
    guessed at: the customer's choice would be lost or reversed.
    """
    channel = properties.get("channel")
    if name in SUPPRESSION_EVENTS:
        return _suppression_problem(name, channel, properties)
    if channel not in (*CONSENT_CHANNELS, ALL_CHANNELS):
        shown = "missing" if channel is None else f"{channel!r}"
        return (
            f"{name}: properties.channel is {shown}; it must be one of {', '.join((*CONSENT_CHANNELS, ALL_CHANNELS))}"
        )
    granted = properties.get("granted")
    if name == CONSENT_UPDATED and not isinstance(granted, bool):
        return f"{name}: properties.granted must be true or false"
    if name == UNSUBSCRIBED and granted not in (None, False):
        return f"{name}: properties.granted can only be false (or left out)"
    source = properties.get("source")
    if source is not None and not (isinstance(source, str) and len(source) <= 128):
        return f"{name}: properties.source must be a string of at most 128 characters"
    return None


def _suppression_problem(name: str, channel: object, properties: dict[str, Any]) -> str | None:
    """A bounce or a complaint names one message channel (and a bounce its type): never guessed."""
    if channel not in MESSAGE_CHANNELS:
        shown = "missing" if channel is None else f"{channel!r}"
        return f"{name}: properties.channel is {shown}; it must be one of {', '.join(MESSAGE_CHANNELS)}"
    if name == MESSAGE_BOUNCED and properties.get("bounce_type") not in BOUNCE_TYPES:
        return f"{name}: properties.bounce_type must be one of {', '.join(BOUNCE_TYPES)}"
    source = properties.get("source")
    if source is not None and not (isinstance(source, str) and len(source) <= 128):
        return f"{name}: properties.source must be a string of at most 128 characters"
    return None


def feedback_problem(name: str, properties: dict[str, Any]) -> str | None:
    """What is wrong with a message event's properties, or ``None``.

    Every one names its message channel; ``firing_id``, ``rule`` and ``step`` are optional (an app
    may know only which rule's push it opened) but must have their type when given.
    """
    channel = properties.get("channel")
    if channel not in MESSAGE_CHANNELS:
        shown = "missing" if channel is None else f"{channel!r}"
        return f"{name}: properties.channel is {shown}; it must be one of {', '.join(MESSAGE_CHANNELS)}"
    for field_name in ("firing_id", "rule"):
        value = properties.get(field_name)
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 128):
            return f"{name}: properties.{field_name} must be a string of 1 to 128 characters"
    step = properties.get("step")
    if step is not None and (type(step) is not int or not 0 <= step <= 100):
        return f"{name}: properties.step must be a whole number from 0 to 100"
    if name in SUPPRESSION_EVENTS:
        return _suppression_problem(name, channel, properties)
    return None


def feedback_event_id(provider: str, provider_event_id: str) -> str:
    """The ``event_id`` of a message event, from the provider's own id for what it reports.

    The same report delivered twice (a provider's or EventBridge's retry) gets the same id, so the
    engine's duplicate check makes the copy a no-op.
    """
    digest = hashlib.sha256(f"{provider}\x1f{provider_event_id}".encode()).hexdigest()
    return f"{provider}-{digest[:40]}"


ENVELOPE_FIELDS = tuple(EventEnvelope.model_fields)
"""The envelope's keys, in order: any other top-level key is refused."""


class Event:
    """A validated envelope, as the engine reads it: ``ts`` is epoch milliseconds of the event's own time."""

    __slots__ = ("customer_id", "event_id", "name", "properties", "traits", "ts")

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

    def __repr__(self) -> str:
        return f"Event({self.name!r}, customer={self.customer_id!r}, ts={self.ts}, id={self.event_id!r})"


def parse_event(data: bytes | str | dict[str, Any]) -> Event:
    """Validate one envelope (JSON text or an already-decoded object) into an ``Event``.

    Raises ``EventError`` naming each bad field and why, e.g.
    ``timestamp: timestamp needs a UTC offset (Z or +HH:MM)...`` or
    ``propertis: unknown field; did you mean properties?``.
    """
    if isinstance(data, bytes | str):
        if len(data) > MAX_EVENT_BYTES:
            raise EventError(f"event is {len(data)} bytes; the limit is {MAX_EVENT_BYTES}")
        try:
            decoded = loads(data)
        except ContractError as exc:
            raise EventError(exc.reason) from None
    else:
        decoded = data
    if not isinstance(decoded, dict):
        raise EventError(f"an event must be a JSON object, not {type(decoded).__name__}")
    event = _plain_event(decoded)
    if event is not None:
        return event
    try:
        return EventEnvelope.model_validate(decoded).to_event()
    except ValidationError as exc:
        raise EventError(_describe(exc, "event", ENVELOPE_FIELDS)) from None


_FIELDS = frozenset(ENVELOPE_FIELDS)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_PLAIN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_CHECKED_NAMES = frozenset({*CONSENT_EVENTS, *FEEDBACK_EVENTS, MESSAGE_SENT, ERASURE_REQUESTED})
"""Events whose properties the envelope checks by name: always read by the model."""
_NOTHING: dict[str, Any] = {}
"""An absent ``properties`` or ``traits`` (never handed out: each event gets a dict of its own)."""
_PLAIN_NAMES: dict[str, bool] = {}
"""Whether a name is plain, for the names seen: a shop sends a few dozen (at most 10,000 kept)."""


def _plain_name(name: object) -> bool:
    if not isinstance(name, str):
        return False
    known = _PLAIN_NAMES.get(name)
    if known is None:
        known = name not in _CHECKED_NAMES and _PLAIN_NAME.fullmatch(name) is not None
        if len(_PLAIN_NAMES) < 10_000:
            _PLAIN_NAMES[name] = known
    return known


def _plain_event(data: dict[str, Any]) -> Event | None:
    """The ``Event`` of an envelope that is plainly valid, read without the model; ``None``: ask the model.

    Almost every event is plain: the four fields as strings of the right length and form, an RFC
    3339 timestamp with its offset, objects for properties and traits, no address trait to check
    and a name the envelope has no rules for. Such an envelope is what ``EventEnvelope`` accepts,
    read to the same ``Event``; anything else (an error above all) goes to the model, so every
    error is the model's, with its field names. Half the model's time, with the JSON decoding
    the larger part of what is left. ``tests/unit/test_decoding_parity.py`` holds the two to each other.
    """
    try:
        event_id, customer_id, name, stamp = data["event_id"], data["customer_id"], data["event"], data["timestamp"]
    except KeyError:
        return None
    if (
        type(event_id) is not str
        or type(customer_id) is not str
        or type(stamp) is not str
        or not 0 < len(event_id) <= 128
        or not 0 < len(customer_id) <= 256
        or not _plain_name(name)
        or not data.keys() <= _FIELDS
    ):
        return None
    properties = data.get("properties", _NOTHING)
    traits = data.get("traits", _NOTHING)
    if (
        type(properties) is not dict
        or type(traits) is not dict
        or (traits and not traits.keys().isdisjoint(ADDRESS_TRAITS))
    ):
        return None
    ts = _plain_time(stamp)
    if ts is None:
        return None
    if properties is _NOTHING:
        properties = {}
    if traits is _NOTHING:
        traits = {}
    return Event(event_id=event_id, customer_id=customer_id, name=name, ts=ts, properties=properties, traits=traits)


def peek_event(data: bytes, read: Collection[str]) -> int | dict[str, Any] | None:
    """A line read only as far as it needs: the time of an envelope whose event is not among
    ``read`` (an ``int``); the decoded object of any other JSON object, for ``parse_event``; ``None``
    for what is not one (``parse_event`` of the bytes then gives the reason).

    What the evaluator's stream mapping does to a record whose ``event`` it does not let through
    (it drops it, unread), replay does to such a line, but for its timestamp: a file has no arrival
    times, so each line's time is what moves replay's clock, as arrivals move the evaluator's. The
    timestamp is read as ``parse_event`` reads it; anything unusual leaves the line to the full parse.
    """
    if len(data) > MAX_EVENT_BYTES:
        return None
    try:
        decoded = loads(data)
    except ContractError:
        return None
    if type(decoded) is not dict:
        return None
    name, stamp = decoded.get("event"), decoded.get("timestamp")
    if type(name) is not str or not name or name in read or type(stamp) is not str:
        return decoded
    ts = _plain_time(stamp)
    return decoded if ts is None else ts


def _plain_time(stamp: str) -> int | None:
    """The epoch ms of a plainly valid RFC 3339 timestamp in range; ``None``: let the model say why."""
    if _PLAIN_TIME.fullmatch(stamp) is None:
        return None
    try:
        ts = to_ms(datetime.fromisoformat(stamp))
    except ValueError:
        return None
    return ts if EARLIEST_MS <= ts <= LATEST_MS else None


# -- keys ----------------------------------------------------------------------------------------


KEY_MARK = "#"


def key_text(value: Any) -> str | None:
    """The key a property value selects, as the text firings, timers and state carry (``None``: no key).

    Keys compare as JSON values: values of different types are different keys, and numbers compare
    by value (``7`` and ``7.0`` are one key). A string is its own text, so string keys read as
    they are; any other value is ``#`` and its JSON (``#7``, ``#true``), and a string that itself
    starts with ``#`` is ``#`` and its JSON too (``#"#vip"``), so no two values share a text.
    Objects, arrays and null select no key.
    """
    kind = type(value)
    if kind is str:
        return value if not value.startswith(KEY_MARK) else KEY_MARK + orjson.dumps(value).decode()
    if kind is bool:
        return "#true" if value else "#false"
    if kind is int:
        return f"#{value}"
    if kind is float:
        return f"#{int(value)}" if value.is_integer() else f"#{value!r}"
    return None


def key_value(text: str | None) -> Any:
    """The JSON value a key text stands for: what templates and webhooks show."""
    if text is None or not text.startswith(KEY_MARK):
        return text
    return json.loads(text[1:])  # the stdlib: an integer of any size stays an integer


# -- the timer message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timer:
    """A wait coming due: identifies the pending arming it was set for (``arm``), so a stale one is a no-op."""

    customer_id: str
    rule: str
    key: str | None
    arm: int
    due: int


class TimerKey:
    """The evaluator's secret for timer records: only a timer this key signed is decided.

    Any producer allowed to put records on the stream could otherwise put a ``nudge.timer`` record
    and decide a customer's wait early (the cart email at 10:10 instead of 11:05, before the
    purchase that would have cancelled it). The key lives in Secrets Manager, readable by the
    evaluator alone; the signature travels in the schedule's input.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a timer key needs at least 16 bytes")
        self._secret = secret

    def sign(self, timer: Timer) -> str:
        fields = [TIMER_MESSAGE_VERSION, timer.customer_id, timer.rule, timer.key, timer.arm, timer.due]
        return hmac.new(self._secret, orjson.dumps(fields), hashlib.sha256).hexdigest()

    def verifies(self, timer: Timer, signature: object) -> bool:
        return isinstance(signature, str) and hmac.compare_digest(self.sign(timer).encode(), signature.encode())

    def __repr__(self) -> str:
        return "TimerKey(...)"  # never the secret, in a log or a traceback


def encode_timer(timer: Timer, key: TimerKey) -> str:
    """The Scheduler target's ``Input``: the record that lands on the stream when the wait is over, signed."""
    return orjson.dumps(
        {
            "type": TIMER_TYPE,
            "v": TIMER_MESSAGE_VERSION,
            "customer_id": timer.customer_id,
            "rule": timer.rule,
            "key": timer.key,
            "arm": timer.arm,
            "due": timer.due,
            "sig": key.sign(timer),
        }
    ).decode()


def is_timer(decoded: Any) -> bool:
    return isinstance(decoded, dict) and decoded.get("type") == TIMER_TYPE


def decode_timer(data: dict[str, Any], key: TimerKey | None) -> Timer:
    """A timer record's payload (already decoded by ``loads``), or ``ContractError`` with the reason.

    Only a timer signed with ``key`` is accepted; without a key, none is.
    """
    version = data.get("v", TIMER_MESSAGE_VERSION)
    if version != TIMER_MESSAGE_VERSION:
        raise ContractError(f"timer message v{version} is not supported (expected v{TIMER_MESSAGE_VERSION})")
    try:
        timer_key = data.get("key")
        timer = Timer(
            customer_id=str(data["customer_id"]),
            rule=str(data["rule"]),
            key=None if timer_key is None else str(timer_key),
            arm=int(data["arm"]),
            due=int(data["due"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError(f"malformed timer: {type(exc).__name__} on {exc}") from None
    if key is None:
        raise ContractError("timer records are not accepted here (no timer key)")
    if "sig" not in data:
        raise ContractError("timer is not signed")
    if not key.verifies(timer, data["sig"]):
        raise ContractError("timer signature does not match")
    return timer


# -- the firing message --------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchedEvent:
    """An event that took part in a match, with the properties the rules keep (nested again)."""

    event: str
    event_id: str
    timestamp: int
    properties: dict[str, Any]


@dataclass(frozen=True)
class Firing:
    """A decision to contact a customer: everything delivery needs, with a deterministic id."""

    firing_id: str
    rule: str
    customer_id: str
    key: str | None
    armed_at: int
    fired_at: int
    channel: str
    template: str | None
    events: tuple[MatchedEvent, ...]
    destination: str | None = None
    send_at: int | None = None
    """When it may go out (ms): after ``fired_at`` when the guardrails held it (quiet hours, or the
    allowed lateness a cap waits); ``None``, in a v1 message, means at once."""
    profile: dict[str, Any] = field(default_factory=dict, compare=False)
    """The customer's traits when it was decided: what delivery addresses and personalizes with."""
    step: int = 0
    """Which step of the rule's escalation this is: 0 for the action, 1 for the first ``escalate`` step."""

    def to_json(self, *, with_profile: bool = False) -> dict[str, Any]:
        """The decision as data: what ``nudge replay --json`` prints; with the profile, the queued message."""
        body: dict[str, Any] = {
            "firing_id": self.firing_id,
            "rule": self.rule,
            "customer_id": self.customer_id,
            "key": self.key,
            "fired_at": iso(self.fired_at),
            "armed_at": iso(self.armed_at),
            "send_at": iso(self.fired_at if self.send_at is None else self.send_at),
            "step": self.step,
            "channel": self.channel,
            "template": self.template,
            "destination": self.destination,
            "events": [
                {
                    "event": e.event,
                    "event_id": e.event_id,
                    "timestamp": iso(e.timestamp),
                    "properties": e.properties,
                }
                for e in self.events
            ],
        }
        if with_profile:
            body["profile"] = self.profile
        return body


class MatchedEventMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    event: str
    event_id: str
    timestamp: str
    properties: dict[str, Any] = Field(default_factory=dict)


class FiringMessage(BaseModel):
    """A firing on the firings queue, as delivery reads it: the consumer side of ``encode_firing``.

    ``extra="forbid"``: producer and consumer share this definition, so an unknown field means a
    message from another version, and it is refused with a reason rather than read in part.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    v: Literal[1, 2, 3] = 3
    firing_id: str
    rule: str
    customer_id: str
    key: str | None = None
    fired_at: str
    armed_at: str
    send_at: str | None = None
    """Not before this instant (ISO 8601); absent in v1: at once."""
    step: int = Field(default=0, ge=0, le=100)
    """The escalation step (v3); 0 in v1 and v2, which had none."""
    channel: str
    template: str | None = None
    destination: str | None = None
    events: list[MatchedEventMessage] = Field(default_factory=list)
    profile: dict[str, Any] = Field(default_factory=dict)

    @field_validator("send_at")
    @classmethod
    def _send_at_is_an_instant(cls, value: str | None) -> str | None:
        """Delivery waits for ``send_at``: one it could not read would be a firing it cannot honour."""
        if value is not None:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("send_at is not an ISO 8601 instant") from None
            if moment.tzinfo is None:
                raise ValueError("send_at has no UTC offset")
        return value


def encode_firing(firing: Firing) -> str:
    """The firings queue's message body: the decision and the profile delivery needs, versioned."""
    body = {"v": FIRING_MESSAGE_VERSION, **firing.to_json(with_profile=True)}
    return orjson.dumps(body).decode()


def decode_firing(body: str | bytes) -> FiringMessage:
    """Read a firings-queue body; ``ContractError`` names what is wrong (fields, never values)."""
    decoded = loads(body)
    if not isinstance(decoded, dict):
        raise ContractError(f"not a firing (a {type(decoded).__name__}, not an object)")
    if "v" not in decoded:
        # Queued before messages were versioned (it may wait in a DLQ for 14 days): the same
        # fields, plus a ``variant`` that nothing ever set.
        decoded = {key: value for key, value in decoded.items() if key != "variant"}
        decoded["v"] = 1
    version = decoded["v"]
    if version not in READABLE_FIRING_VERSIONS:
        raise ContractError(
            f"firing message v{version} is not supported (expected v{' or v'.join(map(str, READABLE_FIRING_VERSIONS))})"
        )
    try:
        return FiringMessage.model_validate(decoded)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors())
        raise ContractError(f"not a firing ({fields})") from None


__all__ = [
    "ADDRESS_TRAITS",
    "ALL_CHANNELS",
    "CHANNEL_ADDRESSES",
    "CONSENT_CHANNELS",
    "CONSENT_EVENTS",
    "CONSENT_UPDATED",
    "ENGAGEMENT_EVENTS",
    "ENVELOPE_FIELDS",
    "ERASURE_PREFIX",
    "ERASURE_REQUESTED",
    "FEEDBACK_EVENTS",
    "FEEDBACK_RANKS",
    "FIRING_MESSAGE_VERSION",
    "HOLD_RULE",
    "IDENTIFY",
    "MAX_EVENT_BYTES",
    "MESSAGE_BOUNCED",
    "MESSAGE_CHANNELS",
    "MESSAGE_CLICKED",
    "MESSAGE_COMPLAINED",
    "MESSAGE_DELIVERED",
    "MESSAGE_FAILED",
    "MESSAGE_OPENED",
    "MESSAGE_SENT",
    "MESSAGE_STATUSES",
    "SENT_STATUS",
    "SUPPRESSION_EVENTS",
    "TIMER_MESSAGE_VERSION",
    "TIMER_TYPE",
    "UNSUBSCRIBED",
    "ContractError",
    "Event",
    "EventEnvelope",
    "EventError",
    "Firing",
    "FiringMessage",
    "MatchedEvent",
    "MatchedEventMessage",
    "Timer",
    "TimerKey",
    "consent_problem",
    "customer_hash",
    "decode_firing",
    "decode_timer",
    "email_problem",
    "encode_firing",
    "encode_timer",
    "feedback_event_id",
    "feedback_problem",
    "is_timer",
    "key_text",
    "key_value",
    "loads",
    "parse_event",
    "phone_problem",
    "reachable",
    "validation_problems",
]
