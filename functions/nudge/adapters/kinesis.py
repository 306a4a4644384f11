"""The events stream: the records Lambda hands the evaluator, and the opt-outs the unsubscribe endpoint puts.

``kinesis_records`` reads a Lambda Kinesis event without Powertools, so the bench decodes its
batches exactly as the handler does without loading the Lambda runtime's libraries.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ..evaluator import InputRecord


def kinesis_records(event: dict[str, Any]) -> list[InputRecord]:
    """The records of a Lambda Kinesis event (``{"Records": [{"kinesis": {...}}, ...]}``), in order."""
    return [
        InputRecord(
            sequence_number=record["kinesis"]["sequenceNumber"],
            partition_key=record["kinesis"]["partitionKey"],
            data=base64.b64decode(record["kinesis"]["data"]),
            arrival_ms=int(record["kinesis"]["approximateArrivalTimestamp"] * 1000),
        )
        for record in event["Records"]
    ]


class KinesisOptOuts:
    """``OptOutLog`` over the events stream: one record, partitioned by customer id."""

    def __init__(self, client: Any, stream_name: str) -> None:
        self.client = client
        self.stream_name = stream_name

    def record(self, event: dict[str, Any]) -> None:
        self.client.put_record(
            StreamName=self.stream_name,
            Data=json.dumps(event, separators=(",", ":")).encode(),
            PartitionKey=event["customer_id"],
        )
