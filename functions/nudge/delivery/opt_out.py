"""The unsubscribe endpoint's logic, RFC 8058 one-click compatible: a signed link in, a page out.

``GET`` shows a confirmation page with a button; ``POST`` (the button, or a mail client's one-click
``List-Unsubscribe=One-Click``) records the opt-out as an ``unsubscribed`` event through the
``OptOutLog`` port. The link carries an HMAC token over the customer id and channel: a bare
customer id is never trusted. The handler turns the ``Outcome`` into metrics.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..clock import WALL_CLOCK, Clock
from .ports import OptOutLog
from .unsubscribe import opt_out_event, verify

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width"><title>{title}</title></head><body style="font-family: Helvetica, Arial,
sans-serif; max-width: 480px; margin: 48px auto; color: #222;"><h1 style="font-size: 20px;">{title}</h1>
{body}</body></html>"""


class Outcome(StrEnum):
    INVALID_LINK = "invalid_link"
    CONFIRM = "confirm"
    OPTED_OUT = "opted_out"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    response: dict[str, Any]
    """The function URL's response: status code, headers, body."""


def _page(status: int, title: str, body: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        "body": _PAGE.format(title=html.escape(title), body=body),
    }


class Unsubscriber:
    def __init__(self, secret: bytes, opt_outs: OptOutLog, clock: Clock = WALL_CLOCK) -> None:
        self.secret = secret
        self.opt_outs = opt_outs
        self.clock = clock

    def handle(self, method: str, query: dict[str, str]) -> Answer:
        customer_id, channel, token = query.get("c", ""), query.get("ch", ""), query.get("t", "")
        if not (customer_id and channel and token) or not verify(self.secret, customer_id, channel, token):
            page = _page(403, "This link is not valid", "<p>It may have been cut short by your mail program.</p>")
            return Answer(Outcome.INVALID_LINK, page)
        if method == "GET":
            page = _page(
                200,
                "Unsubscribe?",
                f'<p>Stop receiving these {html.escape(channel)} messages?</p><form method="post">'
                '<button type="submit" style="padding: 10px 18px;">Unsubscribe</button></form>',
            )
            return Answer(Outcome.CONFIRM, page)
        if method != "POST":
            return Answer(Outcome.NOT_ALLOWED, {"statusCode": 405, "headers": {"Allow": "GET, POST"}, "body": ""})
        self.opt_outs.record(opt_out_event(customer_id, channel, self.clock.now_ms()))
        page = _page(200, "You are unsubscribed", "<p>You will not receive these messages any more.</p>")
        return Answer(Outcome.OPTED_OUT, page)
