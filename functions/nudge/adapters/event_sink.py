"""``EventSink`` over the events stream: message events put as the SDK puts any event.

The SDK's ``Tracker`` does the work (``PutRecords`` in batches within Kinesis's limits, then again
for only the records Kinesis reports failed, with backoff and jitter), so feedback reaches the
stream exactly as an application's events do: partition key = customer id, compact UTF-8 JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..sdk import Record, Tracker


class KinesisEventSink:
    def __init__(
        self, client: Any, stream_name: str, *, max_attempts: int = 5, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.max_attempts = max_attempts
        self.sleep = sleep

    def put(self, envelopes: Sequence[dict[str, Any]]) -> dict[str, str]:
        """``event_id`` -> error code of each envelope still not on the stream after the retries."""
        tracker = Tracker(
            self.stream_name,
            client=self.client,
            max_attempts=self.max_attempts,
            raise_on_failure=False,
            flush_at_exit=False,
            sleep=self.sleep,
        )
        tracker.requeue([Record(e["event_id"], e["customer_id"], _encode(e)) for e in envelopes])
        result = tracker.flush()
        return {failed.record.event_id: failed.error_code for failed in result.failed}


def _encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
