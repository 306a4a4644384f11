"""What a template can use: the customer's traits, the firing, and the events that caused it."""

from __future__ import annotations

from typing import Any

from ..contracts import FiringMessage, MatchedEventMessage, key_value


def cart_lines(events: list[MatchedEventMessage]) -> list[dict[str, Any]]:
    """Cart lines from the matched ``add_to_cart`` events: one per sku, the latest add wins."""
    lines: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.event == "add_to_cart":
            sku = str(event.properties.get("sku", event.event_id))
            lines.pop(sku, None)
            lines[sku] = dict(event.properties)
    return list(lines.values())


def template_context(firing: FiringMessage, *, site_url: str, unsubscribe_url: str) -> dict[str, Any]:
    """Traits at the top level (``first_name``), then what Nudge always provides, which wins."""
    events = [
        {**e.properties, "event": e.event, "timestamp": e.timestamp, "properties": e.properties} for e in firing.events
    ]
    return {
        **firing.profile,
        "customer_id": firing.customer_id,
        "profile": firing.profile,
        "firing": {
            "id": firing.firing_id,
            "rule": firing.rule,
            "fired_at": firing.fired_at,
            "armed_at": firing.armed_at,
            "channel": firing.channel,
        },
        "key": key_value(firing.key),
        "events": events,
        "cart": cart_lines(firing.events),
        "products": [dict(e.properties) for e in firing.events if e.event == "product_viewed"],
        "site_url": site_url.rstrip("/"),
        "cart_url": site_url.rstrip("/") + "/cart",
        "unsubscribe_url": unsubscribe_url,
    }
