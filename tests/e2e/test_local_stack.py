"""End to end on the embedded AWS: moto in server mode, the SDK, the evaluator, Scheduler timers
delivered to the stream, the firings queue and delivery — on every example scenario.

For the same rules and events, the firings must equal ``nudge replay``'s, and every email the
firings call for must have reached moto's SES (read from its backend: the server runs in this
process, and AWS has no API to read sent mail back).
"""

from __future__ import annotations

import email
import json
import os
import shutil
import textwrap
from collections.abc import Iterator
from email import policy
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from nudge.adapters.activations import DynamoDBActivationLog
from nudge.cli.local_command import live_banner
from nudge.cli.main import main
from nudge.clock import VirtualClock
from nudge.contracts import parse_event
from nudge.delivery.unsubscribe import unsubscribe_url
from nudge.engine import load_plan, replay
from nudge.engine.runtime.outcome import firing_id
from nudge.local.embedded import REGION, EmbeddedAws
from nudge.local.stack import LocalStack, sender
from nudge.sdk import Tracker
from nudge.timefmt import parse_iso
from nudge.wiring.delivery import build_unsubscriber

SCENARIOS = sorted(Path("examples/scenarios").glob("*.jsonl")) + sorted(
    Path("examples/scenarios").glob("guardrails/*.jsonl")
)
"""Every example scenario, the guardrails' too: consent, caps with priority, quiet hours (hold timers
through Scheduler and the stream), a transactional rule."""
PLAN = load_plan("rules")  # the rules under their policy.yaml, as the stack runs them


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws()
    yield server
    server.stop()


@pytest.fixture
def stack(aws: EmbeddedAws) -> Iterator[LocalStack]:
    aws.reset()
    yield LocalStack("rules", clock=VirtualClock(), aws=aws)


def events_of(path: Path) -> list:
    return [parse_event(line) for line in path.read_text().splitlines() if line.strip()]


def replayed(path: Path) -> list[dict]:
    return [f.to_json() for f in replay(PLAN, events_of(path))]


def sent_emails() -> list[email.message.EmailMessage]:
    backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    return [email.message_from_string(m.raw_data, policy=policy.default) for m in backend.sent_messages]  # type: ignore[misc]


def run_stack(stack: LocalStack, path: Path):  # type: ignore[no-untyped-def]
    tracker = Tracker(stack.resources.stream_name, client=stack.session.client("kinesis"), flush_at_exit=False)
    return stack.run_events(events_of(path), sender(tracker))


def key(firing: dict) -> tuple:
    return (firing["fired_at"], firing["rule"], firing["customer_id"], firing["key"] or "")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_local_stack_fires_exactly_what_replay_fires(stack: LocalStack, path: Path):
    output = run_stack(stack, path)
    local = sorted(({k: v for k, v in f.items() if k != "type"} for f in output.firings), key=key)
    assert local == sorted(replayed(path), key=key)
    assert len(output.deliveries) == len(output.firings)
    emails = [f for f in local if f["channel"] == "email"]
    assert len(sent_emails()) == len(emails)
    for delivery in output.deliveries:
        if delivery["channel"] == "push" and delivery["recipient"] is None:
            # The scenarios' customers have no device tokens (see the push test below).
            assert delivery["status"] == "no_recipient"
        else:
            assert delivery["status"] == "sent"
    assert_outbox_holds_the_sent_pushes(stack, output.deliveries)


def assert_outbox_holds_the_sent_pushes(stack: LocalStack, deliveries: list[dict]) -> None:
    """moto has no End User Messaging Push: locally, each push sent is in the stack's outbox."""
    pushes = [d for d in deliveries if d["channel"] == "push" and d["status"] == "sent"]
    outbox = stack.push_outbox.messages
    assert sorted((m.rule, m.customer_id, m.tokens, m.body) for m in outbox) == sorted(
        (d["rule"], d["customer_id"], d["recipient"], d["text"]) for d in pushes
    )
    assert all(m.tokens and m.title and m.body for m in outbox)


def test_push_firings_reach_the_local_outbox(stack: LocalStack):
    """The push scenario (its customers have device tokens): every push is sent to the outbox."""
    output = run_stack(stack, Path("examples/scenarios/repeated_product_views.fires.jsonl"))
    # Two pushes; c-3001 did not open hers, so the email follows a day later (c-3002 opened his).
    assert [(f["customer_id"], f["channel"]) for f in output.firings] == [
        ("c-3001", "push"),
        ("c-3001", "email"),
        ("c-3002", "push"),
    ]
    pushes = [d for d in output.deliveries if d["channel"] == "push"]
    assert [d["status"] for d in output.deliveries] == ["sent", "sent", "sent"]
    assert sorted(d["recipient"] for d in pushes) == [["apns-c-3001"], ["apns-c-3002"]]
    assert_outbox_holds_the_sent_pushes(stack, pushes)
    [throw] = [m for m in stack.push_outbox.messages if m.customer_id == "c-3001"]
    assert throw.title.startswith("Still thinking about ")
    assert throw.request["MessageRequest"]["Addresses"] == {"apns-c-3001": {"ChannelType": "APNS"}}


def test_cart_abandonment_email_reaches_ses_after_the_wait(stack: LocalStack):
    output = run_stack(stack, Path("examples/scenarios/cart_abandonment.fires.jsonl"))
    [first, second] = sorted(sent_emails(), key=lambda m: m["To"])
    assert first["Subject"].endswith("your cart is waiting for you")
    text = first.get_body(preferencelist=("plain",)).get_content()
    assert "€" in text and "/cart" in text
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    deliveries = {d["customer_id"]: d for d in output.deliveries}
    assert deliveries["c-1001"]["subject"] == first["Subject"] or deliveries["c-1002"]["subject"] == first["Subject"]
    assert second is not None


def test_an_unsubscribe_click_then_a_cart_sends_no_email(stack: LocalStack):
    """The endpoint's own event, through the stream, the evaluator and delivery: c-1001 clicked the
    link in an earlier email before abandoning a cart; c-1002 did not, and still gets the reminder."""
    clicked_at = VirtualClock(parse_iso("2026-11-21T09:00:00Z"))
    unsubscriber = build_unsubscriber(stack.resources.unsubscribe, stack.session, clicked_at)
    link = unsubscribe_url("https://shop.example.com/unsubscribe", unsubscriber.secret, "c-1001", "email")
    query = {name: values[0] for name, values in parse_qs(urlparse(link).query).items()}
    assert unsubscriber.handle("POST", query).outcome == "opted_out"
    output = run_stack(stack, Path("examples/scenarios/cart_abandonment.fires.jsonl"))
    assert [m["To"] for m in sent_emails()] == ["tom.becker@example.com"]
    assert {d["customer_id"] for d in output.deliveries} == {"c-1002"}
    assert output.guarded == {("cart_abandonment", "suppressed_consent"): 1}  # held back by the engine, never queued


def test_a_customer_identified_60_days_before_the_cart_gets_the_email(stack: LocalStack, tmp_path: Path):
    """The identify's state item expires long before the cart (its TTL is the behaviour's, a day or
    so; the local stack deletes expired items as DynamoDB does); the profile item outlives it."""
    lines = Path("examples/scenarios/cart_abandonment.fires.jsonl").read_text().splitlines()
    identify = json.loads(lines[0])
    early = {**identify, "timestamp": "2026-09-22T09:58:00Z"}
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([json.dumps(early), *lines[1:8]]) + "\n")
    output = run_stack(stack, events)
    assert stack.expired >= 1  # the state item the identify wrote is gone by the cart
    assert [m["To"] for m in sent_emails()] == ["maya.fernandes@example.com"]
    assert [d["customer_id"] for d in output.deliveries] == ["c-1001"]


def test_a_permanent_bounce_on_the_stream_stops_the_next_cart_email(stack: LocalStack, tmp_path: Path):
    """c-1001's address bounced (what a bounce handler puts on the stream): her reminder is not sent."""
    lines = Path("examples/scenarios/cart_abandonment.fires.jsonl").read_text().splitlines()
    bounce = {
        "event_id": "bounce-1",
        "customer_id": "c-1001",
        "event": "message_bounced",
        "timestamp": json.loads(lines[0])["timestamp"],
        "properties": {"channel": "email", "bounce_type": "permanent", "source": "ses"},
    }
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([lines[0], json.dumps(bounce), *lines[1:]]) + "\n")
    output = run_stack(stack, events)
    assert [m["To"] for m in sent_emails()] == ["tom.becker@example.com"]
    assert output.guarded == {("cart_abandonment", "suppressed_bounced"): 1}


def test_an_unsubscribe_outlives_the_behaviour_too(stack: LocalStack, tmp_path: Path):
    lines = Path("examples/scenarios/cart_abandonment.fires.jsonl").read_text().splitlines()
    identify = json.loads(lines[0])
    early = {**identify, "timestamp": "2026-09-22T09:58:00Z"}
    unsubscribe = {
        "event_id": "unsub",
        "customer_id": "c-1001",
        "event": "unsubscribed",
        "timestamp": "2026-09-22T10:00:00Z",
        "properties": {"channel": "email"},
    }
    events = tmp_path / "events.jsonl"
    # The customer identifies again on the day of the cart: only the consent is missing if it was lost.
    events.write_text("\n".join([json.dumps(early), json.dumps(unsubscribe), *lines[:8]]) + "\n")
    run_stack(stack, events)
    assert stack.expired >= 1
    assert sent_emails() == []


def test_cli_local_json_lines_match_replay(aws: EmbeddedAws, capsys: pytest.CaptureFixture[str]):
    path = Path("examples/scenarios/yoga_mat_then_blocks.fires.jsonl")
    assert main(["local", "--events", str(path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    firings = [{k: v for k, v in line.items() if k != "type"} for line in lines if line["type"] == "firing"]
    deliveries = [line for line in lines if line["type"] == "delivery"]
    assert sorted(firings, key=key) == sorted(replayed(path), key=key)
    assert [d["channel"] for d in deliveries] == ["email"]
    assert {"rule", "customer_id", "channel", "recipient", "status", "subject", "text"} <= set(deliveries[0])


def test_cli_local_reports_bad_lines_like_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    events = tmp_path / "events.jsonl"
    good = Path("examples/scenarios/yoga_mat_then_blocks.fires.jsonl").read_text()
    events.write_text("not json\n" + good)
    assert main(["local", "--events", str(events), "--json"]) == 1
    err = capsys.readouterr().err
    assert f"{events}:1: bad event: not JSON" in err


def test_cli_local_refuses_out_of_range_timestamps_per_line_as_replay_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Year 1 used to stop ``nudge local`` in the SDK after some deliveries; now both commands refuse
    it (and year 9999) in the one envelope check, line by line, and go on."""
    path = Path("examples/scenarios/yoga_mat_then_blocks.fires.jsonl")
    good = path.read_text().splitlines()
    out_of_range = [
        json.dumps({"event_id": f"t-{year}", "customer_id": "c-t", "event": "add_to_cart", "timestamp": ts})
        for year, ts in ((1, "0001-01-01T00:00:00Z"), (9999, "9999-12-31T23:59:59Z"))
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([good[0], out_of_range[0], *good[1:], out_of_range[1]]) + "\n")
    assert main(["local", "--events", str(events), "--json"]) == 1
    local = capsys.readouterr()
    assert main(["replay", "--rules", "rules", "--events", str(events), "--no-progress", "--json"]) == 1
    replay_err = capsys.readouterr().err
    assert local.err == replay_err
    assert [line.split(": bad event: ")[0] for line in local.err.splitlines()[:2]] == [
        f"{events}:2",
        f"{events}:{len(good) + 2}",
    ]
    assert "timestamp must be from 1970-01-01T00:00:00Z" in local.err
    lines = [json.loads(line) for line in local.out.splitlines()]
    firings = [{k: v for k, v in line.items() if k != "type"} for line in lines if line["type"] == "firing"]
    assert sorted(firings, key=key) == sorted(replayed(path), key=key)


def test_cli_local_refuses_an_event_from_the_future_as_replay_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A phone set to 2036 sends the scenario's first event again: refused, the customer still fires."""
    path = Path("examples/scenarios/yoga_mat_then_blocks.fires.jsonl")
    good = path.read_text().splitlines()
    first = json.loads(good[0])
    future = json.dumps({**first, "event_id": "from-2036", "timestamp": "2036-01-01T00:00:00Z"})
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([future, *good]) + "\n")
    assert main(["local", "--events", str(events), "--json"]) == 1
    local = capsys.readouterr()
    assert main(["replay", "--rules", "rules", "--events", str(events), "--no-progress", "--json"]) == 1
    replay_err = capsys.readouterr().err
    for err in (local.err, replay_err):
        assert err.startswith(f"{events}:1: bad event: from the future: timestamp 2036-01-01T00:00:00Z is ")
        assert err.endswith("1 bad event line(s) skipped\n")
    lines = [json.loads(line) for line in local.out.splitlines()]
    firings = [{k: v for k, v in line.items() if k != "type"} for line in lines if line["type"] == "firing"]
    assert firings and sorted(firings, key=key) == sorted(replayed(path), key=key)


def _envelope(event_id: str, event: str, minute: int, **properties: object) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "customer_id": "c-typed",
            "event": event,
            "timestamp": f"2026-11-22T10:{minute:02d}:00Z",
            "properties": properties,
        }
    )


def test_keys_of_different_json_types_stay_apart_locally_as_in_replay(stack: LocalStack, tmp_path: Path):
    """sku 2 and sku "2" are two products: buying the number cancels only the number's reminder."""
    device = {"push_tokens": [{"token": "apns-typed", "platform": "ios"}]}
    identify = {**json.loads(_envelope("id", "identify", 0)), "properties": {}, "traits": device}
    lines = [json.dumps(identify), _envelope("push-ok", "consent_updated", 0, channel="push", granted=True)]
    lines += [_envelope(f"n{m}", "product_viewed", m, sku=2, name="Mug") for m in range(3)]
    lines += [_envelope(f"s{m}", "product_viewed", 10 + m, sku="2", name="Poster") for m in range(3)]
    lines.append(_envelope("buy", "purchase", 30, sku=2))
    path = tmp_path / "typed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    output = run_stack(stack, path)
    local = [{k: v for k, v in f.items() if k != "type"} for f in output.firings]
    assert local == replayed(path)
    # The push, then (unopened, and with no email address) the email step passed over.
    assert [(f["rule"], f["key"], f["step"]) for f in local] == [("repeated_product_views", "2", 0)]
    assert [e["properties"]["name"] for e in local[0]["events"]] == ["Poster"] * 3


def test_duplicates_by_id_have_no_effect_locally_as_in_replay(stack: LocalStack, tmp_path: Path):
    """An id reused under another name, re-sent after its event was pruned, or on a second identify."""

    def line(event_id: str, customer: str, event: str, when: str, **fields: object) -> str:
        return json.dumps({"event_id": event_id, "customer_id": customer, "event": event, "timestamp": when, **fields})

    lines = [
        # c-a: the checkout view reuses the add's id: no sequence, no reminder.
        line("a-1", "c-a", "identify", "2026-11-22T09:00:00Z", traits={"email": "a@example.com"}),
        line("a-2", "c-a", "add_to_cart", "2026-11-22T10:00:00Z", properties={"sku": "SKU-1", "name": "Mug"}),
        line("a-2", "c-a", "checkout_viewed", "2026-11-22T10:10:00Z"),
        # c-b: the add b1 is forgotten once the checkout view 90 minutes later moves the clock; its
        # copy, stamped 11:20, must not complete a sequence with that checkout view.
        line("b1", "c-b", "identify", "2026-11-22T09:00:00Z", traits={"email": "b@example.com"}),
        line("b2", "c-b", "add_to_cart", "2026-11-22T10:00:00Z", properties={"sku": "SKU-2", "name": "Pot"}),
        line("b3", "c-b", "checkout_viewed", "2026-11-22T11:30:00Z"),
        line("b2", "c-b", "add_to_cart", "2026-11-22T11:20:00Z", properties={"sku": "SKU-2", "name": "Pot"}),
        # c-c: the second identify reuses the first's id: the reminder goes to the first address.
        line("i4", "c-c", "identify", "2026-11-22T09:00:00Z", traits={"email": "first@example.com"}),
        line("i4", "c-c", "identify", "2026-11-22T09:00:00Z", traits={"email": "second@example.com"}),
        line("c-2", "c-c", "add_to_cart", "2026-11-22T10:00:00Z", properties={"sku": "SKU-3", "name": "Tea"}),
        line("c-3", "c-c", "checkout_viewed", "2026-11-22T10:05:00Z"),
    ]
    path = tmp_path / "duplicates.jsonl"
    path.write_text("\n".join(lines) + "\n")
    output = run_stack(stack, path)
    local = sorted(({k: v for k, v in f.items() if k != "type"} for f in output.firings), key=key)
    assert local == sorted(replayed(path), key=key)
    assert [(f["rule"], f["customer_id"]) for f in local] == [("cart_abandonment", "c-c")]
    [mail] = sent_emails()
    assert mail["To"] == "first@example.com"


def test_a_lone_event_a_minute_late_fires_locally_as_in_replay(aws: EmbeddedAws, tmp_path: Path):
    rules = tmp_path / "rules"
    shutil.copytree("rules/templates", rules / "templates")
    (rules / "each_purchase.yaml").write_text("id: each_purchase\nwhen: {event: purchase}\naction: {channel: event}\n")
    (rules / "service_visits.yaml").write_text(
        "id: service_visits\n"
        "when: {event: page_viewed, where: {section: services}, count: {gte: 3}, within: 1d}\n"
        "cooldown: 1d\naction: {channel: event}\n"
    )
    lines = [
        _envelope("v1", "page_viewed", 0, section="services"),
        _envelope("p1", "purchase", 0, total=12).replace("10:00:00Z", "09:59:00Z"),
    ]
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(lines) + "\n")
    aws.reset()
    stack = LocalStack(str(rules), clock=VirtualClock(), aws=aws)
    output = run_stack(stack, path)
    local = [{k: v for k, v in f.items() if k != "type"} for f in output.firings]
    plan = load_plan(rules)
    assert local == [f.to_json() for f in replay(plan, events_of(path))]
    assert [(f["rule"], f["fired_at"]) for f in local] == [("each_purchase", "2026-11-22T09:59:00Z")]


def _rules_with(tmp_path: Path, **files: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree("rules/templates", rules / "templates")
    for name, text in files.items():
        (rules / f"{name}.yaml").write_text(text)
    return rules


def _local_and_replayed(aws: EmbeddedAws, rules: Path, path: Path) -> tuple[list[dict], list[dict]]:
    aws.reset()
    stack = LocalStack(str(rules), clock=VirtualClock(), aws=aws)
    output = run_stack(stack, path)
    local = sorted(({k: v for k, v in f.items() if k != "type"} for f in output.firings), key=key)
    plan = load_plan(rules)
    return local, sorted((f.to_json() for f in replay(plan, events_of(path))), key=key)


def test_an_arming_between_a_due_time_and_its_rounded_timer_starts_a_second_wait_locally(
    aws: EmbeddedAws, tmp_path: Path
):
    """Pings at 10:00:00.250 and 10:00:30.500 under a 30 s wait: the local timer comes at a whole second
    (and on AWS at a minute), after the second ping; both waits fire, as in replay."""
    rules = _rules_with(
        tmp_path, ping_later="id: ping_later\nwhen: {event: ping}\nwait: 30s\naction: {channel: event}\n"
    )
    lines = [
        json.dumps({"event_id": "p1", "customer_id": "c-p", "event": "ping", "timestamp": "2026-11-22T10:00:00.250Z"}),
        json.dumps({"event_id": "p2", "customer_id": "c-p", "event": "ping", "timestamp": "2026-11-22T10:00:30.500Z"}),
    ]
    path = tmp_path / "pings.jsonl"
    path.write_text("\n".join(lines) + "\n")
    local, replayed_ = _local_and_replayed(aws, rules, path)
    assert local == replayed_
    assert [f["fired_at"] for f in local] == ["2026-11-22T10:00:30.250Z", "2026-11-22T10:01:00.500Z"]


def test_a_rule_fires_locally_with_every_shipped_rule_loaded_as_it_does_alone(aws: EmbeddedAws, tmp_path: Path):
    """60 product views between the yoga mat and the blocks, kept for repeated_product_views, do not
    push the mat view out of yoga_mat_then_blocks' sight."""

    def view(index: int, minute: int, sku: str) -> str:
        return json.dumps(
            {
                "event_id": f"v{index}",
                "customer_id": "c-heavy",
                "event": "product_viewed",
                "timestamp": f"2026-11-22T10:{minute:02d}:{index % 60:02d}Z",
                "properties": {"sku": sku, "name": sku.title(), "price": 10},
            }
        )

    lines = [view(0, 0, "SKU-YOGA-MAT")] + [view(i, 1 + i // 10, f"SKU-{i}") for i in range(1, 61)]
    lines.append(view(61, 59, "SKU-YOGA-BLOCKS"))
    path = tmp_path / "heavy.jsonl"
    path.write_text("\n".join(lines) + "\n")
    alone_rules = _rules_with(
        tmp_path / "alone",
        yoga=Path("rules/product_x_then_y.yaml").read_text(),
        policy=Path("rules/policy.yaml").read_text(),  # the same caps: the same send times
    )
    alone = _local_and_replayed(aws, alone_rules, path)[0]
    local, replayed_ = _local_and_replayed(aws, Path("rules"), path)
    assert local == replayed_
    assert [f["rule"] for f in alone] == ["yoga_mat_then_blocks"]
    assert [f for f in local if f["rule"] == "yoga_mat_then_blocks"] == alone


def readme_live_snippet(endpoint: str) -> str:
    """The README's live-mode snippet, pointed at this test's endpoint."""
    readme = Path("README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- live-snippet -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    return textwrap.dedent(block).replace("http://127.0.0.1:5000", endpoint)


def test_the_readme_live_snippet_fires_with_the_environment_nudge_local_prints(
    aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch
):
    banner = live_banner(aws.endpoint_url, "nudge-events", "wall clock")
    exports = next(line for line in banner.splitlines() if "export " in line).strip()
    assert exports in Path("README.md").read_text(encoding="utf-8")  # the README shows what is printed
    aws.reset()
    clock = VirtualClock(speed=1)
    stack = LocalStack("rules", clock=clock, aws=aws)
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for assignment in exports.removeprefix("export ").split():
        name, value = assignment.split("=", 1)
        monkeypatch.setenv(name, value)
    exec(readme_live_snippet(aws.endpoint_url), {})  # a producer in another shell, with only that environment
    stack.pump()
    clock.advance(63 * 60_000)  # the hour's wait, and the allowed lateness
    stack.fire_timers(before=clock.now_ms(), strictly=False)
    stack.pump()
    stack.pump()
    [mail] = [m for m in sent_emails() if m["To"] == "ada@example.com"]
    assert mail["Subject"].endswith("your cart is waiting for you")


ESCALATING_CART = """\
id: cart_abandonment
when:
  sequence: [{event: add_to_cart}, {event: checkout_viewed}]
  within: 1h
unless: {event: purchase}
wait: 1h
action: {channel: push, template: cart_reminder, properties: [sku, name, price, quantity, url]}
escalate:
  - {after: 2h, channel: email, template: cart_reminder}
"""


def test_an_unanswered_push_is_followed_by_the_email_and_an_opened_one_is_not(aws: EmbeddedAws, tmp_path: Path):
    """Push at 11:05 to both; c-1 does nothing and gets the email listing her cart at 13:05; c-2 opens
    the push at 11:30 (as the app reports it, with the firing id) and gets no email. Each local send
    comes back as ``message_delivered``, and the activations table tells who opened what."""
    rules = tmp_path / "rules"
    shutil.copytree("rules/templates", rules / "templates")
    shutil.copy("rules/policy.yaml", rules / "policy.yaml")
    (rules / "cart_abandonment.yaml").write_text(ESCALATING_CART)
    lines = []
    for customer, name, address in (("c-1", "Ana", "ana@example.com"), ("c-2", "Rui", "rui@example.com")):
        traits = {
            "email": address,
            "first_name": name,
            "push_tokens": [{"token": f"apns-{customer}", "platform": "ios"}],
        }
        lines += [
            {"event": "identify", "timestamp": "2026-11-21T09:00:00Z", "traits": traits},
            {
                "event": "consent_updated",
                "timestamp": "2026-11-21T09:01:00Z",
                "properties": {"channel": "push", "granted": True},
            },
            {
                "event": "add_to_cart",
                "timestamp": "2026-11-21T10:00:00Z",
                "properties": {"sku": "SKU-1", "name": "Yoga mat", "price": 29.9},
            },
            {"event": "checkout_viewed", "timestamp": "2026-11-21T10:05:00Z"},
        ]
        lines[-4:] = [
            {"event_id": f"{customer}-{i}", "customer_id": customer, **line} for i, line in enumerate(lines[-4:])
        ]
    push_to_rui = firing_id("cart_abandonment", "c-2", None, parse_iso("2026-11-21T10:05:00Z"))
    opened = {"channel": "push", "rule": "cart_abandonment", "firing_id": push_to_rui}
    lines.append(
        {
            "event_id": "open-1",
            "customer_id": "c-2",
            "event": "message_opened",
            "timestamp": "2026-11-21T11:30:00Z",
            "properties": opened,
        }
    )
    lines.sort(key=lambda line: line["timestamp"])
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    aws.reset()
    stack = LocalStack(rules, clock=VirtualClock(), aws=aws)
    output = run_stack(stack, events)

    sends = sorted((d["customer_id"], d["channel"], d["status"]) for d in output.deliveries)
    assert sends == [("c-1", "email", "sent"), ("c-1", "push", "sent"), ("c-2", "push", "sent")]
    assert [(f["customer_id"], f["step"], f["send_at"]) for f in sorted(output.firings, key=key)] == [
        ("c-1", 0, "2026-11-21T11:07:00Z"),
        ("c-2", 0, "2026-11-21T11:07:00Z"),
        ("c-1", 1, "2026-11-21T13:07:00Z"),
    ]
    [mail] = sent_emails()
    assert mail["To"] == "ana@example.com"
    assert "Yoga mat" in mail.get_body(preferencelist=("plain",)).get_content()  # the email lists the cart
    assert sorted(output.firings, key=key) == sorted(
        ({"type": "firing", **f.to_json()} for f in replay(load_plan(rules), events_of(events))), key=key
    )
    log = DynamoDBActivationLog(stack.session.client("dynamodb"), stack.resources.delivery.activations_table)
    statuses = {f["customer_id"] + f"/{f['step']}": log.history(f["firing_id"]) for f in output.firings}
    assert {who: next(i["status"] for i in items if i["sk"] == "firing") for who, items in statuses.items()} == {
        "c-1/0": "delivered",
        "c-1/1": "delivered",
        "c-2/0": "opened",
    }
