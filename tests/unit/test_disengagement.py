"""The policy's rest for disengaged customers: after N unanswered marketing sends on a channel, it rests."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from nudge.contracts import Event
from nudge.engine import Policy, Replayer, compile_rules
from nudge.timefmt import iso
from tests.support import EVERY_CHANNEL_OPT_OUT, ev, rule

DAY = 86_400_000
NEWS = "id: news\nwhen: {event: x}\naction: {channel: email, template: t}\n"
RECEIPT = "id: receipt\nwhen: {event: x}\ncategory: transactional\naction: {channel: email, template: r}\n"
REST = {"channel": "email", "after_unengaged": 2, "for": "30d"}


def run(events: list[Event], *texts: str, disengaged: Any = REST) -> tuple[list[str], list[tuple[str, str, str]]]:
    """(rule, send time) of each send, and every decision."""
    policy = Policy.model_validate({"consent": EVERY_CHANNEL_OPT_OUT.consent.model_dump(), "disengaged": disengaged})
    decisions: list[tuple[str, str, str]] = []
    replayer = Replayer(
        compile_rules([rule(t) for t in texts or (NEWS,)], policy),
        on_decision=lambda _, d: decisions.append((d.rule, d.kind, d.reason)),
    )
    firings = [f for e in events for f in replayer.feed(e)] + replayer.finish()
    return [f"{f.rule} {iso(f.send_at or f.fired_at)[:10]}" for f in firings], decisions


def day(n: int, name: str = "x", **properties: Any) -> Event:
    return ev(name, f"+{n}d 10:00", **properties)


def test_after_n_unanswered_sends_marketing_on_the_channel_rests():
    sent, decisions = run([day(0), day(1), day(2), day(3)])
    assert sent == ["news 2026-11-22", "news 2026-11-23"]
    assert (
        "news",
        "suppressed_disengaged",
        "2 email sends unanswered: resting until 2026-12-23T10:00:00Z",
    ) in decisions


def test_an_open_ends_the_rest_at_once():
    opened = day(2, "message_opened", channel="email")
    opened.ts += 1
    sent, _ = run([day(0), day(1), day(2), opened, day(3), day(4)])
    assert sent == ["news 2026-11-22", "news 2026-11-23", "news 2026-11-25", "news 2026-11-26"]


def test_a_click_ends_it_too_but_an_open_on_another_channel_does_not():
    clicked = day(2, "message_clicked", channel="email", url="https://shop")
    pushed = day(2, "message_opened", channel="push")
    assert run([day(0), day(1), clicked, day(3)])[0][-1] == "news 2026-11-25"
    assert run([day(0), day(1), pushed, day(3)])[0] == ["news 2026-11-22", "news 2026-11-23"]


def test_after_the_rest_one_send_goes_and_an_unanswered_one_rests_the_channel_again():
    sent, _ = run([day(0), day(1), day(20), day(31), day(32), day(62)])
    assert sent == ["news 2026-11-22", "news 2026-11-23", "news 2026-12-23", "news 2027-01-23"]


def test_a_late_open_answers_only_the_sends_before_its_own_time():
    """Stamped between the two sends, it answers the first: the second alone is not two unanswered."""
    late = ev("message_opened", "+0d 12:00", channel="email")
    sent, _ = run([day(0), day(1), late, day(2), day(3)])
    assert sent == ["news 2026-11-22", "news 2026-11-23", "news 2026-11-24"]


def test_transactional_messages_are_never_rested_and_never_count():
    sent, _ = run([day(0), day(1), day(2)], NEWS, RECEIPT)
    assert sent == [
        "news 2026-11-22",
        "receipt 2026-11-22",
        "news 2026-11-23",
        "receipt 2026-11-23",
        "receipt 2026-11-24",
    ]


def test_opens_are_ignored_without_a_disengaged_policy():
    replayer = Replayer(compile_rules([rule(NEWS)], EVERY_CHANNEL_OPT_OUT))
    assert replayer.engine.read(day(0, "message_opened", channel="email")) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"channel": "email", "after_unengaged": 0, "for": "30d"}, "greater than or equal to 1"),
        ({"channel": "webhook", "after_unengaged": 5, "for": "30d"}, "channel"),
        ({"channel": "email", "after_unengaged": 5, "for": "10m"}, "between 1h and 365d"),
        ([REST, REST], "two disengaged entries for email"),
    ],
)
def test_a_bad_disengaged_policy_is_refused(value: Any, message: str):
    with pytest.raises(ValidationError, match=message):
        Policy.model_validate({"disengaged": value})
