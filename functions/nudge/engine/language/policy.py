"""The deployment-wide policy: ``policy.yaml`` beside the rules, read by replay, the local stack and CDK.

It says how the engine treats time, for every rule at once::

    allowed_lateness: 2m    # how long a decision that absence depends on waits for stragglers
    dedupe_window: 24h      # how long an event id is remembered, so a re-sent copy is a no-op
    max_future_skew: 1h     # how far ahead of the clock an event's timestamp may be
    consent: {email: opt_out, sms: opt_in, push: opt_in, tracking: opt_out}

All are optional; the defaults are the values above. The file ships with the rules (a deploy
puts it in the bundle), so the evaluator, ``nudge replay`` and ``nudge local`` always agree.
Later guardrails (caps, quiet hours, disengagement) belong in the same file.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

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


class Policy(BaseModel):
    """How time is treated: validated like a rule, errors reported as file:line."""

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


DEFAULT_POLICY = Policy()
