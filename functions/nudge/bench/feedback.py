"""What the channels report back about the bench's sends: extra stream traffic the cost model counts.

Every email, SMS and push the run sends comes back as ``message_delivered``; some are opened and
clicked. The rates are assumptions, stated here and printed with the results, not measurements:
typical marketing figures (opens of a quarter of emails, of a tenth of pushes; a few per cent
clicked); SMS reports no opens at all. Which firing is opened is decided by its id, so a run is
repeatable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ..contracts import (
    MESSAGE_CHANNELS,
    MESSAGE_CLICKED,
    MESSAGE_DELIVERED,
    MESSAGE_OPENED,
    Event,
    Firing,
    feedback_event_id,
)

OPEN_RATES = {"email": 0.25, "push": 0.10, "sms": 0.0}
CLICK_RATES = {"email": 0.03, "push": 0.02, "sms": 0.0}
DELIVERED_AFTER_MS = 5_000
OPENED_AFTER_MS = 20 * 60_000
CLICKED_AFTER_MS = 21 * 60_000


def _draw(firing_id: str, what: str) -> float:
    """A number in [0, 1) fixed by the firing and the kind of report."""
    digest = hashlib.sha256(f"{firing_id}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def feedback_for(firings: Iterable[Firing], start: int, end: int) -> list[Event]:
    """The reports of ``firings`` stamped in ``[start, end]``, oldest first."""
    events: list[Event] = []
    for firing in firings:
        if firing.channel not in MESSAGE_CHANNELS:
            continue
        sent = firing.send_at if firing.send_at is not None else firing.fired_at
        reports = [(MESSAGE_DELIVERED, sent + DELIVERED_AFTER_MS)]
        if _draw(firing.firing_id, "open") < OPEN_RATES[firing.channel]:
            reports.append((MESSAGE_OPENED, sent + OPENED_AFTER_MS))
            if _draw(firing.firing_id, "click") < CLICK_RATES[firing.channel] / OPEN_RATES[firing.channel]:
                reports.append((MESSAGE_CLICKED, sent + CLICKED_AFTER_MS))
        properties = {
            "channel": firing.channel,
            "rule": firing.rule,
            "firing_id": firing.firing_id,
            "step": firing.step,
        }
        for name, ts in reports:
            if start <= ts <= end:
                events.append(
                    Event(
                        event_id=feedback_event_id("bench", f"{firing.firing_id}:{name}"),
                        customer_id=firing.customer_id,
                        name=name,
                        ts=ts,
                        properties=dict(properties),
                    )
                )
    events.sort(key=lambda event: event.ts)
    return events
