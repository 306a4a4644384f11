"""The deployment-wide policy: ``policy.yaml`` beside the rules, read by replay, the local stack and CDK.

It says how the engine treats time, for every rule at once::

    allowed_lateness: 2m    # how long a decision that absence depends on waits for stragglers
    dedupe_window: 24h      # how long an event id is remembered, so a re-sent copy is a no-op
    max_future_skew: 1h     # how far ahead of the clock an event's timestamp may be
    consent: {email: opt_out, sms: opt_in, push: opt_in, tracking: opt_out}
    frequency_caps:         # sliding windows over each customer's sends
      - {channel: any, max: 3, per: 7d}
    quiet_hours: {start: "21:00", end: "09:00", channels: [sms, push], default_timezone: Europe/Lisbon}
    disengaged: {channel: email, after_unengaged: 5, for: 30d}   # rest a channel nobody opens
    decision_log: 50        # the last decisions kept per customer, for `nudge explain` (0: none)

All are optional; the defaults are the values above, except that without ``frequency_caps`` there
are no caps, without ``quiet_hours`` no quiet hours, and without ``disengaged`` no rest. The file
ships with the rules (a deploy puts it in the bundle), so the evaluator, ``nudge replay`` and
``nudge local`` always agree.
"""

from __future__ import annotations

import re
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .durations import format_duration
from .rules import Duration

POLICY_FILES = ("policy.yaml", "policy.yml")
"""The names a policy file may have in a rules folder; no rule file may use them."""

MINUTE = 60_000
HOUR = 60 * MINUTE


ConsentMode = Literal["opt_in", "opt_out"]


class ConsentModes(BaseModel):
    """Per channel, what silence means: ``opt_out``, allowed unless the customer said no; ``opt_in``,
    allowed only after an explicit yes. The defaults follow the common law of the field: marketing
    email to customers is opt-out, SMS and push need consent, tracking is on unless refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: ConsentMode = "opt_out"
    sms: ConsentMode = "opt_in"
    push: ConsentMode = "opt_in"
    tracking: ConsentMode = "opt_out"


CapChannel = Literal["any", "email", "sms", "push"]

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def zone_problem(name: object) -> str | None:
    """Why ``name`` is not an IANA time zone this machine knows (``None``: it is one)."""
    if not isinstance(name, str) or not name or len(name) > 64:
        return "a time zone is an IANA name such as Europe/Lisbon"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not an IANA time zone (such as Europe/Lisbon or America/New_York)"
    return None


class FrequencyCap(BaseModel):
    """At most ``max`` sends on ``channel`` (``any``: email, SMS and push together) in any window of ``per``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: CapChannel
    max: int = Field(strict=True, ge=1, le=1000)
    per: Duration

    @field_validator("per")
    @classmethod
    def _window(cls, value: int) -> int:
        if value < MINUTE or value > 90 * 24 * HOUR:
            raise ValueError(f"per {format_duration(value)} must be between 1m and 90d")
        return value


class QuietHours(BaseModel):
    """Local hours (in the customer's ``timezone`` trait) when ``channels`` hold their firings.

    ``start`` after ``end`` crosses midnight (``21:00`` to ``09:00``); the hours are ``[start, end)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str
    end: str
    channels: tuple[Literal["email", "sms", "push"], ...] = ("sms", "push")
    default_timezone: str = "UTC"
    """For customers without a ``timezone`` trait, or with one that is not a time zone."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 21:00 as a sexagesimal number; ours does not, but say it anyway.
            raise ValueError(f'write the time as a quoted "HH:MM" string, not {value}')
        if not isinstance(value, str) or not _CLOCK.match(value):
            raise ValueError(f'{value!r} is not a time of day: write "HH:MM", from "00:00" to "23:59"')
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        problem = zone_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError(f"quiet hours from {self.start} to {self.end} are empty: start and end must differ")
        if not self.channels:
            raise ValueError("quiet_hours.channels is empty: name at least one of email, sms, push")
        return self

    def minutes(self) -> tuple[int, int]:
        """``start`` and ``end`` as minutes after local midnight."""
        start_h, start_m = self.start.split(":")
        end_h, end_m = self.end.split(":")
        return int(start_h) * 60 + int(start_m), int(end_h) * 60 + int(end_m)


class Disengaged(BaseModel):
    """Marketing on ``channel`` rests once ``after_unengaged`` sends in a row went unopened and
    unclicked: for ``for`` after the last of them, or until the customer opens or clicks one."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    channel: Literal["email", "sms", "push"]
    after_unengaged: int = Field(strict=True, ge=1, le=100)
    rest: Duration = Field(alias="for")

    @field_validator("rest")
    @classmethod
    def _rest(cls, value: int) -> int:
        if value < HOUR or value > 365 * 24 * HOUR:
            raise ValueError(f"for {format_duration(value)} must be between 1h and 365d")
        return value


class Policy(BaseModel):
    """How time is treated, and what guards a send: validated like a rule, errors reported as file:line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_lateness: Duration = 2 * 60_000
    """How late (ms) an event may arrive and still count as if it came in order. A wait due at D is
    decided at D + allowed_lateness; every stored event is kept this much longer than its window."""
    dedupe_window: Duration = 24 * HOUR
    """How long (ms) after its timestamp an event id is remembered."""
    max_future_skew: Duration = HOUR
    """How far (ms) an event's timestamp may be ahead of the clock that receives it (its arrival on
    the stream in AWS and locally, the present in replay). One event stamped years ahead by a wrong
    device clock would otherwise move its customer's clock there, and every later event of that
    customer would be too late to count: such events are refused, with the reason."""

    consent: ConsentModes = ConsentModes()
    """Per channel (and for tracking), whether silence means yes (``opt_out``) or no (``opt_in``)."""

    frequency_caps: tuple[FrequencyCap, ...] = ()
    """Sliding windows over each customer's sends; a marketing firing that would exceed one is not sent."""
    quiet_hours: QuietHours | None = None
    """Local hours when firings on some channels are held until the hours end."""
    disengaged: tuple[Disengaged, ...] = ()
    """Per channel, when marketing stops for a customer who never opens or clicks (one mapping, or a list)."""
    decision_log: int = Field(default=50, ge=0, le=500)
    """How many of a customer's latest decisions (armed, fired, cancelled by which event, suppressed
    by which guardrail) the state keeps, so ``nudge explain`` can say why after the fact; 0 keeps none."""

    @field_validator("disengaged", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, dict) else value

    @field_validator("disengaged")
    @classmethod
    def _one_per_channel(cls, items: tuple[Disengaged, ...]) -> tuple[Disengaged, ...]:
        channels = [item.channel for item in items]
        for channel in channels:
            if channels.count(channel) > 1:
                raise ValueError(f"two disengaged entries for {channel}: keep one")
        return items

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.allowed_lateness > HOUR:
            raise ValueError(
                f"allowed_lateness {format_duration(self.allowed_lateness)} is more than 1h: every wait's "
                "firing would be sent that much after its due time"
            )
        if self.dedupe_window < self.allowed_lateness:
            raise ValueError(
                f"dedupe_window {format_duration(self.dedupe_window)} is shorter than allowed_lateness "
                f"{format_duration(self.allowed_lateness)}: a straggler's copy could count twice"
            )
        if self.dedupe_window > 7 * 24 * HOUR:
            raise ValueError(f"dedupe_window {format_duration(self.dedupe_window)} is more than 7d")
        if self.max_future_skew < MINUTE:
            raise ValueError(
                f"max_future_skew {format_duration(self.max_future_skew)} is less than 1m: a phone whose "
                "clock runs a few seconds fast would have its events refused"
            )
        if self.max_future_skew > 7 * 24 * HOUR:
            raise ValueError(
                f"max_future_skew {format_duration(self.max_future_skew)} is more than 7d: one wrong clock "
                "could stop a customer's rules for that long"
            )
        return self

    @field_validator("frequency_caps")
    @classmethod
    def _one_cap_per_window(cls, caps: tuple[FrequencyCap, ...]) -> tuple[FrequencyCap, ...]:
        """Two caps on one channel and window: the smaller wins, so the other says nothing and misleads."""
        seen: set[tuple[str, int]] = set()
        for cap in caps:
            if (cap.channel, cap.per) in seen:
                raise ValueError(f"two frequency caps for {cap.channel} per {format_duration(cap.per)}: keep one")
            seen.add((cap.channel, cap.per))
        return caps


DEFAULT_POLICY = Policy()
