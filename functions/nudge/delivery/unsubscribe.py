"""Signed unsubscribe links: the endpoint trusts a customer id only with its HMAC token."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from ..timefmt import iso


def token(secret: bytes, customer_id: str, channel: str) -> str:
    message = f"unsubscribe\x1f{customer_id}\x1f{channel}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def verify(secret: bytes, customer_id: str, channel: str, candidate: str) -> bool:
    """Whether ``candidate`` is the link's token; any malformed one (not ASCII, cut short) is simply not.

    Compared as bytes: ``compare_digest`` refuses a ``str`` with non-ASCII characters, and a link
    anyone can edit must never make the endpoint fail.
    """
    expected = token(secret, customer_id, channel).encode()
    return hmac.compare_digest(expected, candidate.encode("utf-8", "surrogatepass"))


def unsubscribe_url(base_url: str, secret: bytes, customer_id: str, channel: str) -> str:
    query = urlencode({"c": customer_id, "ch": channel, "t": token(secret, customer_id, channel)})
    return f"{base_url.rstrip('/')}/?{query}"


def opt_out_event(customer_id: str, channel: str, now_ms: int) -> dict[str, object]:
    """The event an unsubscribe click puts on the stream.

    Its id is the same for every POST of one customer and channel within a minute, so a mail
    client's repeated one-click POSTs and a double click are one event (the engine drops the copies).
    """
    minute = now_ms // 60_000
    event_id = "unsub-" + hashlib.sha256(f"{customer_id}\x1f{channel}\x1fm{minute}".encode()).hexdigest()[:24]
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "event": "unsubscribed",
        "timestamp": iso(now_ms),
        "properties": {"channel": channel, "source": "list_unsubscribe"},
    }
