"""How each client retries: the one place that decides what botocore may do again on its own.

Throttling is absorbed inside the function, with adaptive retries (client-side rate limiting and
backoff), rather than failing the batch at once: a batch that fails is redelivered whole from its
earliest failed record, which costs more than waiting a few seconds. The attempts are bounded so
the worst case (about 15 s per call) stays well inside a 60 s invocation; what the budget cannot
absorb fails the customer, and the stream redelivers it until ``max_record_age``.

A provider's send is the exception: it is never retried by the client (``SEND_ONCE``).
"""

from __future__ import annotations

from botocore.config import Config

ABSORB_THROTTLING = Config(
    retries={"mode": "adaptive", "total_max_attempts": 5},
    connect_timeout=3,
    read_timeout=10,
)
"""For DynamoDB, Scheduler, SQS and Kinesis calls: idempotent (conditional writes, named schedules,
deduplicated firings and events), so a retry after a lost answer is safe."""

SEND_ONCE = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=3, read_timeout=10)
"""For the providers' send calls: one attempt per claim. A send is not idempotent, and a 5xx or a
timeout may come after the provider accepted it; botocore's own retries would then send it again,
out of the claim's sight. A failed send is retried by claiming the firing again, never in the client.
The read timeout bounds a hanging call well inside the delivery function's timeout."""
