"""The obvious design most teams write first: every record on its own, with the same engine deciding.

For each record of a Kinesis batch, in order:

1. ``GetItem`` the customer's state, **eventually consistent** (half a read unit per 4 KiB: the
   cheaper choice, so the comparison flatters this design rather than Nudge's);
2. evaluate it with the same ``Engine`` Nudge uses, so both designs make the same decisions;
3. create, update or delete one EventBridge schedule per timer request the engine returned
   (the same ``EventBridgeTimerScheduler`` adapter, one request at a time, nothing coalesced);
4. ``SendMessage`` (not batched) for each firing, the same message body as Nudge's;
5. ``PutItem`` the state back, unconditionally, with the same encoding and TTL attribute.

There is no skipping of events no rule references (no mapping filter, no ``Engine.needs``), no
grouping by customer and no batching of reads, writes or sends: that is what Nudge is measured
against. Records the evaluator cannot read go to the rejected-events queue, one message each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..adapters.dynamodb_state import decode_state, encode_state
from ..adapters.scheduler import EventBridgeTimerScheduler
from ..clock import WALL_CLOCK, Clock
from ..config import EvaluatorConfig
from ..contracts import encode_firing
from ..engine import CustomerState, Engine, Outcome, load_plan
from ..evaluator.records import InputRecord, Rejected, TimerRecord, decode_record
from ..wiring.evaluator import timer_scheduler


@dataclass
class PerEventReport:
    records: int = 0
    rejected: int = 0
    firings: int = 0
    timer_requests: int = 0
    writes: int = 0


class PerEventEvaluator:
    """Read, evaluate, write, schedule and send, one record at a time (timers checked with the scheduler's key)."""

    def __init__(
        self,
        engine: Engine,
        dynamodb: Any,
        table_name: str,
        scheduler: EventBridgeTimerScheduler,
        sqs: Any,
        firings_queue_url: str,
        rejected_queue_url: str,
        ttl_margin_ms: int,
    ) -> None:
        self.engine = engine
        self.dynamodb = dynamodb
        self.table_name = table_name
        self.scheduler = scheduler
        self.sqs = sqs
        self.firings_queue_url = firings_queue_url
        self.rejected_queue_url = rejected_queue_url
        self.ttl_margin_ms = ttl_margin_ms

    def evaluate(self, records: Sequence[InputRecord], wall: int, by_arrival: bool = False) -> PerEventReport:
        """Every record on its own; ``by_arrival``: each at its arrival on the stream, as ``BatchEvaluator``."""
        report = PerEventReport(records=len(records))
        for record in records:
            record_wall = min(wall, record.arrival_ms) if by_arrival and record.arrival_ms > 0 else wall
            self._one(record, record_wall, report)
        return report

    def _one(self, record: InputRecord, wall: int, report: PerEventReport) -> None:
        item = decode_record(record, self.scheduler.timer_key)
        if isinstance(item, Rejected):
            report.rejected += 1
            body = {"reason": item.reason, "sequence_number": record.sequence_number}
            self.sqs.send_message(QueueUrl=self.rejected_queue_url, MessageBody=json.dumps(body))
            return
        customer_id = item.timer.customer_id if isinstance(item, TimerRecord) else item.customer_id
        key = {"pk": {"S": customer_id}}
        found = self.dynamodb.get_item(TableName=self.table_name, Key=key, ConsistentRead=False).get("Item")
        state = decode_state(found["state"]["B"]) if found else CustomerState(customer_id)
        outcome: Outcome
        if isinstance(item, TimerRecord):
            outcome = self.engine.on_timer(state, item.timer, wall)
        else:
            outcome = self.engine.process(state, item, wall)
        for request in outcome.timers:
            self.scheduler.prepare([request])
            report.timer_requests += 1
        for firing in outcome.firings:
            self.sqs.send_message(
                QueueUrl=self.firings_queue_url,
                MessageBody=encode_firing(firing),
                MessageAttributes={
                    "rule": {"DataType": "String", "StringValue": firing.rule},
                    "channel": {"DataType": "String", "StringValue": firing.channel},
                },
            )
            report.firings += 1
        expires = self.engine.kept_until(state, wall) + self.ttl_margin_ms
        self.dynamodb.put_item(
            TableName=self.table_name,
            Item={**key, "state": {"B": encode_state(state)}, "expires_at": {"N": str(expires // 1000)}},
        )
        report.writes += 1
        self.scheduler.release(outcome.timers)


def build_per_event_evaluator(config: EvaluatorConfig, session: Any, clock: Clock = WALL_CLOCK) -> PerEventEvaluator:
    """Wired like ``nudge.wiring.evaluator.build_evaluator``: same rules, tables, queues, schedules."""
    engine = Engine(load_plan(config.rules_dir))
    return PerEventEvaluator(
        engine=engine,
        dynamodb=session.client("dynamodb"),
        table_name=config.state_table,
        scheduler=timer_scheduler(config, session, clock),
        sqs=session.client("sqs"),
        firings_queue_url=config.firings_queue_url,
        rejected_queue_url=config.rejected_queue_url,
        ttl_margin_ms=config.state_ttl_margin_ms,
    )
