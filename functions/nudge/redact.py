"""Take personal data out of text meant for logs, metrics and the activations table.

Providers put the recipient in their error messages ("Email address is not verified: ana@...",
"Invalid parameter: PhoneNumber Reason: +4477..."), and a reason travels far: it is logged, stored
for 400 days and shown by ``nudge redrive``. Every reason Nudge writes passes through ``scrub``
once, where it is made, so none of those places needs to remember.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+")
_NUMBER = re.compile(r"\+\d[\d ().-]{5,}\d")
"""A + and seven or more digits, perhaps spaced: a number in the international form providers quote.

Bare digit runs are left alone: they are timestamps, sequence numbers and counts far more often."""


def scrub(text: str) -> str:
    """``text`` with email addresses and phone-like numbers replaced by ``<email>`` and ``<number>``."""
    return _NUMBER.sub("<number>", _EMAIL.sub("<email>", text))
