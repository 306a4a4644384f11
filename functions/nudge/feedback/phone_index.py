"""The key an SMS reply's phone number is looked up by: a keyed hash, never the number itself.

An inbound text names only the phone it came from. Delivery writes, before it sends a text through
End User Messaging, one item per number: ``HMAC-SHA256(number)`` -> the customer id, expiring some
days after the last text (``sms_recipient_retention_days``). A plain SHA-256 of a phone number is
no protection (every number of a country can be hashed in minutes), so the hash is keyed, with a
key derived from the stack's signing secret (the unsubscribe links' Secrets Manager secret) for
this one purpose: whoever reads the table learns neither numbers nor whether a given number is
in it. Numbers are hashed exactly as E.164 writes them, as delivery sends and the reply names them.
"""

from __future__ import annotations

import hashlib
import hmac

_PURPOSE = b"nudge sms recipient index v1"


class PhoneKey:
    """Turns an E.164 number into its index key; holds only a derived key, never the secret."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the phone index key needs a secret of at least 16 bytes")
        self._key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()

    def digest(self, phone: str) -> str:
        return hmac.new(self._key, phone.strip().encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "PhoneKey(...)"
