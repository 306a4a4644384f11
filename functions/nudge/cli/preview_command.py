"""``nudge preview RULE --customer FILE.json``: render what a firing of RULE would send, without sending it.

The customer file describes one customer and, optionally, the events a firing would carry::

    {"customer_id": "c-ana",
     "traits": {"email": "ana@example.com", "first_name": "Ana"},
     "events": [{"event": "add_to_cart", "timestamp": "2026-11-21T10:04:00Z", "properties": {"sku": "..."}}]}

Without ``events`` the firing's events come from replaying ``--events`` (the rule's first firing for
that customer), or there are none. Events keep only the properties the rule keeps (its ``where``
paths, ``key`` and ``action.properties``), as a real firing would; what is dropped is noted on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import DeliveryConfig
from ..contracts import FiringMessage
from ..delivery.preview import STACK_DEFAULT_DESTINATION, WouldSend, offline_channels, preview
from ..delivery.rendering import DeliverySettings
from ..delivery.sample_firing import (
    SampleEvent,
    SampleFiring,
    firing_from_events,
    replayed_firings,
    why_sample_not_fired,
)
from ..delivery.templates import RenderError, TemplateSet, load_templates, rule_actions
from ..delivery.validation import templates_dir
from ..engine import DEFAULT_POLICY, Rule, load_rules
from ..engine.language.rules import Action
from ..timefmt import parse_iso
from .replay_command import future_check, read_events

DEFAULT_SITE_URL = "https://shop.example.com"
PREVIEW_SECRET = b"preview"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "preview",
        help="render what a firing of a rule would send to a customer, without sending it",
        description=(
            "Render the message a firing of RULE would send on the rule's channel (email, sms, push, webhook "
            "or event) to the customer described by --customer, with the templates beside the rules. "
            "Nothing is sent."
        ),
    )
    parser.add_argument("rule", metavar="RULE", help="the rule id")
    parser.add_argument(
        "--customer",
        required=True,
        type=Path,
        metavar="FILE.json",
        help='JSON file: {"customer_id": ..., "traits": {...}, "events": [{event, timestamp, properties}]}',
    )
    parser.add_argument(
        "--rules", default=Path("rules"), type=Path, metavar="DIR", help="rule folder or file (default: rules)"
    )
    parser.add_argument(
        "--events",
        type=Path,
        metavar="FILE.jsonl",
        help="JSON-lines events to replay when the customer file has no events: preview the first firing",
    )
    parser.add_argument(
        "--site-url", default=DEFAULT_SITE_URL, metavar="URL", help=f"the shop's URL (default: {DEFAULT_SITE_URL})"
    )
    parser.add_argument(
        "--unsubscribe-url", metavar="URL", help="the unsubscribe endpoint (default: SITE_URL/unsubscribe)"
    )
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument("--html-only", action="store_true", help="email: print only the HTML part")
    parts.add_argument("--text-only", action="store_true", help="email: print the subject and the text part only")
    parser.add_argument(
        "--step",
        type=int,
        default=0,
        metavar="N",
        help="which message of the rule: 0, its action (the default); 1 and on, its escalate steps",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


class PreviewError(Exception):
    """A preview that cannot be made: ``code`` 2 for unreadable input, 1 for a rule that cannot render."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class CustomerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1)
    event_id: str | None = None
    timestamp: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class CustomerFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    customer_id: str = Field(min_length=1)
    key: str | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    events: list[CustomerEvent] | None = None


@dataclass
class Preview:
    rule: Rule
    would: WouldSend
    notes: list[str] = field(default_factory=list)
    would_fire: bool | None = None
    """Whether the engine makes this firing from the customer's events (``None``: no events to tell)."""
    why_not: str | None = None
    """Why it would not, when it would not."""

    @property
    def firing(self) -> FiringMessage:
        return self.would.firing

    @property
    def recipient(self) -> Any:
        """Who it goes to, as the preview can say: not the placeholder bus or destination of ``offline_channels``."""
        if self.firing.channel == "event" or self.would.recipient == STACK_DEFAULT_DESTINATION:
            return None
        return self.would.recipient


def run(args: argparse.Namespace) -> int:
    try:
        preview = build_preview(args)
        if (args.html_only or args.text_only) and preview.firing.channel != "email":
            flag = "--html-only" if args.html_only else "--text-only"
            raise PreviewError(f"{flag} is for email rules; {preview.rule.id} sends {preview.firing.channel}", 2)
    except PreviewError as exc:
        print(f"nudge preview: {exc}", file=sys.stderr)
        return exc.code
    if preview.why_not is not None:
        print(f"note: {preview.rule.id} would not fire for this customer: {preview.why_not}", file=sys.stderr)
    for note in preview.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        json.dump(as_json(preview, args), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(as_text(preview, args))
    return 0


# -- the inputs -------------------------------------------------------------------------------------------------------


def build_preview(args: argparse.Namespace) -> Preview:
    rule = _load_rule(args.rules, args.rule)
    customer = _load_customer(args.customer)
    notes: list[str] = []
    would_fire: bool | None = None
    why_not: str | None = None
    if customer.events is None and args.events is not None:
        sample = _firing_from_replay(rule, customer, args.events)
        would_fire = True  # the replay's own firing
    else:
        if customer.events is not None and args.events is not None:
            notes.append(f"--events ignored: {args.customer} has its own events")
        now = int(datetime.now(UTC).timestamp()) * 1000
        sample = _firing_from_file(rule, customer, now)
        if customer.events is not None:
            why_not = why_sample_not_fired(
                rule, customer.customer_id, customer.traits, _sample_events(customer), now_ms=now
            )
            would_fire = why_not is None
    notes += sample.notes
    action = _step(rule, args.step)
    if sample.firing.step != args.step:
        # The same arming, as its escalation step would carry it (its own channel and template).
        update = {"step": args.step, "channel": action.channel, "template": action.template}
        update |= {"destination": action.destination}
        sample = SampleFiring(sample.firing.model_copy(update=update), sample.notes)
    base = args.unsubscribe_url or args.site_url.rstrip("/") + "/unsubscribe"
    settings = DeliverySettings(site_url=args.site_url, unsubscribe_base_url=base, unsubscribe_secret=PREVIEW_SECRET)
    channels = offline_channels(DeliveryConfig.model_fields["email_from"].default)
    try:
        would = preview(sample.firing, _templates(rule, args.rules, action), settings, channels)
    except RenderError as exc:
        raise PreviewError(f"{rule.id}: cannot render: {exc}") from None
    return Preview(rule, would, notes, would_fire, why_not)


def _load_rule(path: Path, rule_id: str) -> Rule:
    if not path.exists():
        raise PreviewError(f"{path}: no such rules folder or file", 2)
    loaded = load_rules(path)
    rule = next((r for r in loaded.rules if r.id == rule_id), None)
    if rule is None:
        known = ", ".join(sorted(r.id for r in loaded.rules)) or "none"
        message = f"unknown rule '{rule_id}' in {path}; known rules: {known}"
        if loaded.errors:
            message += f" ({len(loaded.errors)} rule error(s): run nudge validate {path})"
        raise PreviewError(message)
    file, _ = loaded.sources[rule.id]
    own = [d for d in loaded.errors if d.file == file]
    if own:
        raise PreviewError("invalid rule:\n" + "\n".join(str(d) for d in own), 2)
    return rule


def _load_customer(path: Path) -> CustomerFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise PreviewError(f"{path}: cannot read the customer file: {exc.strerror or exc}", 2) from None
    except json.JSONDecodeError as exc:
        raise PreviewError(f"{path}:{exc.lineno}: not JSON: {exc.msg}", 2) from None
    try:
        customer = CustomerFile.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or 'customer'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise PreviewError("invalid customer file:\n" + "\n".join(problems), 2) from None
    for index, event in enumerate(customer.events or ()):
        if event.timestamp is not None:
            try:
                parse_iso(event.timestamp)
            except ValueError as exc:
                raise PreviewError(f"{path}: events[{index}].timestamp: {exc}", 2) from None
    return customer


def _sample_events(customer: CustomerFile) -> list[SampleEvent]:
    return [
        SampleEvent(e.event, e.properties, e.event_id, parse_iso(e.timestamp) if e.timestamp else None)
        for e in customer.events or ()
    ]


def _firing_from_file(rule: Rule, customer: CustomerFile, now: int) -> SampleFiring:
    events = _sample_events(customer)
    return firing_from_events(rule, customer.customer_id, customer.traits, events, key=customer.key, now_ms=now)


def _firing_from_replay(rule: Rule, customer: CustomerFile, path: Path) -> SampleFiring:
    bad = [0]
    try:
        with path.open("rb") as stream:
            future = future_check(DEFAULT_POLICY.max_future_skew)  # the policy preview's one-rule plan runs under
            events = [event for _, event in read_events(stream, str(path), sys.stderr, bad, future)]
    except OSError as exc:
        raise PreviewError(f"{path}: cannot read events: {exc.strerror or exc}", 2) from None
    notes = [f"{bad[0]} bad event line(s) in {path} skipped"] if bad[0] else []
    mine = [event for event in events if event.customer_id == customer.customer_id]
    if not mine:
        others = sorted({event.customer_id for event in events})
        shown = ", ".join(others[:10]) + (", ..." if len(others) > 10 else "")
        raise PreviewError(
            f"{path} has no events for customer '{customer.customer_id}' (customers there: {shown or 'none'})"
        )
    firings = replayed_firings(rule, customer.traits, mine)
    if len({f.step for f in firings}) > 1:
        notes.append("the replay's firings include escalation steps: --step picks which message is shown")
    if not firings:
        raise PreviewError(f"rule {rule.id} does not fire for customer '{customer.customer_id}' in {path}")
    if len(firings) > 1:
        notes.append(f"previewing the first of {len(firings)} firings of {rule.id} for {customer.customer_id}")
    return SampleFiring(firings[0], notes)


def _step(rule: Rule, step: int) -> Action:
    """The action (step 0) or escalation step ``step`` of ``rule``."""
    actions = [action for _, action in rule_actions(rule)]
    if not 0 <= step < len(actions):
        steps = "only step 0 (it does not escalate)" if len(actions) == 1 else f"steps 0 to {len(actions) - 1}"
        raise PreviewError(f"rule {rule.id} has no step {step}: it has {steps}", 2)
    return actions[step]


def _templates(rule: Rule, rules_path: Path, action: Action) -> TemplateSet:
    """The templates beside the rules, once the template of the message previewed loads cleanly."""
    name, channel = action.template, action.channel
    if name is None:
        if channel in ("email", "sms", "push"):
            raise PreviewError(f"rule {rule.id} has no template: a {channel} message needs a `template`")
        return TemplateSet()
    folder = templates_dir(rules_path)
    templates = load_templates(folder)
    expected = folder / channel / f"{name}.yaml"
    problems = [d for d in templates.diagnostics if Path(d.file) == expected]
    if problems:
        listed = "\n".join(str(d) for d in problems)
        raise PreviewError(f"template {expected} of rule {rule.id} is not valid:\n{listed}")
    if templates.get(channel, name) is None:
        raise PreviewError(f"rule {rule.id} has no template: {expected} does not exist")
    return templates


# -- SMS length --------------------------------------------------------------------------------------------------------

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def sms_segments(text: str) -> tuple[int, str, int]:
    """(length in the encoding's units, encoding, segments): GSM-7 160/153 per segment, else UCS-2 70/67."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in text):
        units = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        return units, "GSM-7", 1 if units <= 160 else math.ceil(units / 153)
    units = len(text.encode("utf-16-le")) // 2
    return units, "UCS-2", 1 if units <= 70 else math.ceil(units / 67)


# -- output ------------------------------------------------------------------------------------------------------------


def _recipient_text(preview: Preview) -> str:
    recipient, channel = preview.recipient, preview.firing.channel
    if channel == "push" and isinstance(recipient, dict):
        kinds = ", ".join(sorted(set(recipient.values())))
        return f"{len(recipient)} device token(s) ({kinds})"
    if channel == "webhook":
        return f"destination {recipient}" if recipient else "the stack's default webhook destination"
    if channel == "event":
        return "the stack's event bus"
    if recipient:
        return str(recipient)
    if preview.would.recipient_problem:
        return f"nobody: {preview.would.recipient_problem}, so delivery would record failed_permanent and send nothing"
    trait = {"email": "email", "sms": "phone (+country code)", "push": "push_tokens"}[channel]
    return f"nobody: the profile has no usable {trait} trait, so delivery would record no_recipient and send nothing"


def as_text(preview: Preview, args: argparse.Namespace) -> str:
    rendered, firing = preview.would.rendered, preview.firing
    if args.html_only:
        return (rendered.html or "") if rendered else ""
    template = f"template {firing.template}" if firing.template else "no template"
    lines = [
        f"Rule {preview.rule.id}: {firing.channel} message ({template}) for customer {firing.customer_id}",
        f"To: {_recipient_text(preview)}",
    ]
    if firing.channel == "email" and rendered is not None:
        lines += [f"Subject: {rendered.subject}", "", "--- text part ---", rendered.text or ""]
        if not args.text_only:
            lines += ["", "--- html part ---", (rendered.html or "").rstrip("\n")]
    elif firing.channel == "sms" and rendered is not None:
        text = rendered.text or ""
        units, encoding, segments = sms_segments(text)
        size = f"{len(text)} characters" + (f" ({units} GSM-7 units)" if units != len(text) else "")
        lines += ["", text, "", f"{size}, {encoding}, {segments} segment{'s' if segments != 1 else ''}"]
    elif firing.channel == "push" and rendered is not None:
        lines += [
            "",
            f"Title: {rendered.title}",
            f"Body: {rendered.text}",
            f"Data: {json.dumps(rendered.data, ensure_ascii=False)}",
        ]
    else:
        lines += [
            "",
            "EventBridge detail (nudge." + firing.channel + "):",
            json.dumps(preview.would.eventbridge_detail, ensure_ascii=False, indent=2),
        ]
    return "\n".join(lines) + "\n"


def as_json(preview: Preview, args: argparse.Namespace) -> dict[str, Any]:
    rendered, firing = preview.would.rendered, preview.firing
    message: dict[str, Any] = {}
    if firing.channel == "email" and rendered is not None:
        message = {"subject": rendered.subject}
        if not args.html_only:
            message["text"] = rendered.text
        if not args.text_only:
            message["html"] = rendered.html
    elif firing.channel == "sms" and rendered is not None:
        units, encoding, segments = sms_segments(rendered.text or "")
        message = {
            "text": rendered.text,
            "characters": len(rendered.text or ""),
            "encoding": encoding,
            "units": units,
            "segments": segments,
        }
    elif firing.channel == "push" and rendered is not None:
        message = {"title": rendered.title, "body": rendered.text, "data": rendered.data}
    else:
        message = {"detail_type": f"nudge.{firing.channel}", "detail": preview.would.eventbridge_detail}
    return {
        "rule": preview.rule.id,
        "channel": firing.channel,
        "template": firing.template,
        "customer_id": firing.customer_id,
        "would_fire": preview.would_fire,
        "why_not": preview.why_not,
        "recipient": preview.recipient,
        "unsubscribe_url": preview.would.unsubscribe_url,
        "message": message,
        "firing": firing.model_dump(mode="json"),
    }
