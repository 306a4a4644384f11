"""One invocation of the feedback function: provider events in, message events on the stream.

Two inputs reach the function: an ``aws.ses`` EventBridge event (one per invocation, from the
stack's rule on the default bus) and an SNS notification from the SMS feedback topic (delivery
events and inbound replies). Each is mapped (``ses``, ``sms``), every envelope is checked with
``contracts.parse_event`` (the evaluator would refuse anything it refuses, so a mapping bug is
counted here, with its reason, rather than parked later), and the envelopes go to the sink.

If some could not be put, ``FeedbackNotPut`` is raised after the others were: the invocation fails,
Lambda invokes it again (the async retries, then the on-failure queue), and the envelopes that did
arrive come again with the same ids, which the engine's duplicate check makes no-ops. Input that
is not what the providers document is counted, never raised: retrying cannot make it readable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..contracts import ContractError, EventError, loads, parse_event
from ..timefmt import parse_iso
from .mapped import Mapped, Skip
from .ports import EventSink, RecipientLookup
from .ses import map_ses_event
from .sms import map_inbound, map_sms_event


@dataclass
class Report:
    """What one invocation did, in counts (all a log or a metric may say: no ids, no addresses)."""

    put: Counter[str] = field(default_factory=Counter)
    """Envelopes put on the stream, by event name."""
    skipped: Counter[Skip] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    """Why ``parse_event`` refused an envelope (reasons name fields, never values)."""
    kinds: Counter[str] = field(default_factory=Counter)
    """Provider events seen, by type (``Bounce``, ``TEXT_DELIVERED``, ``inbound``)."""


class FeedbackNotPut(RuntimeError):
    """Some message events could not be put on the stream: the invocation must be retried."""

    def __init__(self, failed: list[str], report: Report) -> None:
        codes = Counter(failed)
        summary = ", ".join(f"{code} x{count}" for code, count in codes.most_common())
        super().__init__(f"{len(failed)} message event(s) not put on the stream ({summary})")
        self.failed = failed
        self.report = report


class FeedbackIntake:
    def __init__(self, sink: EventSink, recipients: RecipientLookup | None = None) -> None:
        self.sink = sink
        self.recipients = recipients

    def handle(self, event: Mapping[str, Any]) -> Report:
        """Map ``event``, put what it maps to; raises ``FeedbackNotPut`` if some could not be put."""
        report = Report()
        envelopes: list[dict[str, Any]] = []
        for mapped in self._mapped(event):
            report.kinds[mapped.kind] += 1
            if mapped.skip is not None:
                report.skipped[mapped.skip] += 1
            for envelope in mapped.envelopes:
                try:
                    parse_event(envelope)
                except EventError as exc:
                    report.refused.append(f"{envelope.get('event')}: {exc.reason}")
                    continue
                envelopes.append(envelope)
        failed = self.sink.put(envelopes) if envelopes else {}
        report.put.update(envelope["event"] for envelope in envelopes if envelope["event_id"] not in failed)
        if failed:
            raise FeedbackNotPut(list(failed.values()), report)
        return report

    def _mapped(self, event: Mapping[str, Any]) -> Iterator[Mapped]:
        if event.get("source") == "aws.ses":
            detail = event.get("detail")
            yield map_ses_event(detail) if isinstance(detail, Mapping) else Mapped.skipped("?", Skip.UNREADABLE)
            return
        records = event.get("Records")
        if not isinstance(records, list):
            yield Mapped.skipped("?", Skip.UNREADABLE)
            return
        for record in records:
            yield self._notification(record)

    def _notification(self, record: object) -> Mapped:
        """One SNS record: a delivery event or an inbound reply, told apart by their fields."""
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if not isinstance(sns, Mapping) or not isinstance(sns.get("Message"), str):
            return Mapped.skipped("?", Skip.UNREADABLE)
        try:
            message = loads(sns["Message"])
            received_ms = parse_iso(str(sns.get("Timestamp", "")))
        except (ContractError, ValueError):
            return Mapped.skipped("?", Skip.UNREADABLE)
        if not isinstance(message, dict):
            return Mapped.skipped("?", Skip.UNREADABLE)
        if "eventType" in message:
            return map_sms_event(message)
        if "inboundMessageId" in message:
            return map_inbound(message, received_ms, self.recipients)
        return Mapped.skipped("?", Skip.UNREADABLE)
