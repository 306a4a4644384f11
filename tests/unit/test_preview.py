"""What ``nudge preview`` previews: sample firings made by the engine, and ``preview`` calling no client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nudge.cli.main import main
from nudge.contracts import decode_firing, encode_firing
from nudge.delivery.preview import STACK_DEFAULT_DESTINATION, offline_channels, preview
from nudge.delivery.rendering import DeliverySettings
from nudge.delivery.sample_firing import SampleEvent, firing_from_events, replayed_firings, why_sample_not_fired
from nudge.delivery.templates import TemplateSet, load_templates
from nudge.engine import compile_rules, replay
from tests.support import at, ev, rule

TEMPLATES = load_templates(Path(__file__).resolve().parents[2] / "rules" / "templates")
SETTINGS = DeliverySettings("https://shop.example.com", "https://shop.example.com/unsubscribe", b"preview")

NESTED = rule(
    """
    id: nested
    key: item.sku
    when: {event: product_viewed, where: {item.sku: {exists: true}}}
    action: {channel: event, properties: [a, a.b, item.name]}
    """
)


def engine_properties(properties: dict) -> dict:
    """The properties the engine's own firing of NESTED carries for one event with ``properties``."""
    [fired] = replay(compile_rules([NESTED]), [ev("product_viewed", "10:00", **properties)])
    return fired.events[0].properties


@pytest.mark.parametrize(
    "properties",
    [
        {"a.b": 1, "a": {"b": 2}, "item": {"sku": "S"}},  # a literal dotted key beside the nested path
        {"a": {"b": 2, "c": 3}, "item": {"sku": "S", "name": "Mat", "colour": "red"}},
        {"a": 5, "item": {"sku": "S"}, "other": 1},
    ],
)
def test_a_sample_event_carries_the_properties_the_engine_keeps_nested_as_the_engine_nests_them(properties):
    sample = firing_from_events(
        NESTED, "c-1", {}, [SampleEvent("product_viewed", properties, ts=at("10:00"))], key=None, now_ms=0
    )
    [event] = sample.firing.events
    assert event.properties == engine_properties(properties)


def test_the_dotted_key_case_follows_the_engine_not_a_second_nesting():
    """``{"a.b": 1, "a": {"b": 2}}``: the path ``a.b`` reads the nested object, as the engine does."""
    sample = firing_from_events(
        NESTED,
        "c-1",
        {},
        [SampleEvent("product_viewed", {"a.b": 1, "a": {"b": 2}, "item": {"sku": "S"}})],
        key=None,
        now_ms=0,
    )
    assert sample.firing.events[0].properties == {"a": {"b": 2}, "item": {"sku": "S"}}


def test_a_sample_firing_is_armed_by_its_last_event_and_keyed_by_the_engine():
    cart = rule(
        """
        id: views
        key: sku
        when: {event: product_viewed, count: {gte: 2}, within: 1d}
        wait: 2h
        action: {channel: push, template: still_thinking, properties: [sku, name]}
        """
    )
    events = [
        SampleEvent("product_viewed", {"sku": 42, "name": "Mat", "colour": "red"}, "v1", at("10:00")),
        SampleEvent("page_viewed", {"path": "/"}),
        SampleEvent("product_viewed", {"name": "no sku"}, ts=at("10:30")),
    ]
    sample = firing_from_events(cart, "c-1", {"first_name": "Ana", "email": None}, events, key=None, now_ms=at("12:00"))
    firing = sample.firing
    assert firing.key == "#42"  # the engine's reading of the key path: a number is `#` and its JSON
    assert (firing.armed_at, firing.fired_at) == ("2026-11-22T10:30:00Z", "2026-11-22T12:30:00Z")
    assert [e.event_id for e in firing.events] == ["v1", "preview-3"]
    assert firing.events[0].properties == {"sku": 42, "name": "Mat"}
    assert firing.profile == {"first_name": "Ana"}  # a null trait is no trait
    assert firing == decode_firing(firing.model_dump_json())  # what the firings queue would carry
    assert sample.notes == [
        "1 page_viewed event(s) left out: rule views does not use page_viewed events",
        "product_viewed properties colour left out: rule views keeps only its where paths, key and "
        "action.properties, so a firing would not carry them",
    ]
    overridden = firing_from_events(cart, "c-1", {}, events, key="SKU-1", now_ms=at("12:00")).firing
    assert overridden.key == "SKU-1" and overridden.firing_id != firing.firing_id


def test_replayed_firings_know_the_given_traits_from_the_start():
    audience = rule(
        """
        id: vip_views
        when: {event: product_viewed}
        audience: {attribute: tier, eq: vip}
        action: {channel: event}
        """
    )
    events = [ev("product_viewed", "10:00", sku="S"), ev("identify", "10:05", traits={"first_name": "Ana"})]
    assert replayed_firings(audience, {}, events) == []
    [firing] = replayed_firings(audience, {"tier": "vip", "first_name": "Zed"}, events)
    assert firing.profile == {"tier": "vip", "first_name": "Zed"}  # the given traits win in the profile


def test_preview_renders_and_builds_the_request_without_a_client():
    sample = firing_from_events(
        rule("{id: lead, when: {event: whitepaper_downloaded}, action: {channel: webhook, template: sales_follow_up}}"),
        "c-1",
        {"email": "lea@example.com", "first_name": "Lea"},
        [],
        key=None,
        now_ms=at("10:00"),
    )
    shown = preview(sample.firing, TEMPLATES, SETTINGS, offline_channels("hello@example.com"))
    assert shown.recipient == STACK_DEFAULT_DESTINATION  # no destination: the stack's default would get it
    assert shown.request is not None
    [entry] = shown.request["Entries"]
    assert (entry["Source"], entry["DetailType"]) == ("nudge", "nudge.webhook")
    assert shown.eventbridge_detail is not None
    assert shown.eventbridge_detail["destination"] == STACK_DEFAULT_DESTINATION
    assert shown.eventbridge_detail["payload"]["lead_email"] == "lea@example.com"
    assert shown.unsubscribe_url.startswith("https://shop.example.com/unsubscribe/?c=c-1&ch=webhook&t=")


def test_preview_of_a_customer_without_an_address_renders_but_builds_nothing():
    firing = decode_firing(
        encode_firing(next(iter(replay(compile_rules([NESTED]), [ev("product_viewed", "10:00", item={"sku": "S"})]))))
    )
    push = firing.model_copy(update={"channel": "push", "template": "still_thinking", "key": "S"})
    with pytest.raises(LookupError, match="no channel 'push'"):
        preview(push, TEMPLATES, SETTINGS, {})
    shown = preview(push, TEMPLATES, SETTINGS, offline_channels("hello@example.com"))
    assert shown.recipient is None and shown.request is None
    assert shown.rendered is not None and shown.rendered.data["sku"] == "S"
    assert preview(firing, TemplateSet(), SETTINGS, offline_channels("x@example.com")).rendered is None


def test_a_sample_event_the_rule_would_not_keep_is_left_out_with_the_reason():
    yoga = rule(
        """
        id: yoga_cart
        when:
          sequence: [{event: add_to_cart, where: {category: yoga}}, {event: checkout_viewed}]
          within: 1h
        wait: 1h
        action: {channel: email, template: cart_reminder}
        """
    )
    events = [
        SampleEvent("add_to_cart", {"sku": "ESPRESSO", "category": "coffee"}, "a1", at("10:00")),
        SampleEvent("add_to_cart", {"sku": "MAT", "category": "yoga"}, "a2", at("10:01")),
        SampleEvent("checkout_viewed", {}, "c1", at("10:05")),
    ]
    sample = firing_from_events(yoga, "c-1", {}, events, key=None, now_ms=at("12:00"))
    assert [e.event_id for e in sample.firing.events] == ["a2", "c1"]
    assert "1 add_to_cart event(s) left out: they match no `where` of rule yoga_cart, so it would not keep them" in (
        sample.notes
    )


# -- would the rule fire for the customer? ----------------------------------------------------------------------------

YOGA = rule(
    """
    id: yoga_mat_then_blocks
    when:
      sequence: [{event: product_viewed, where: {sku: MAT}}, {event: product_viewed, where: {sku: BLOCKS}}]
      within: 7d
    action: {channel: email, template: yoga_bundle, properties: [sku]}
    """
)
ANA_CART = [
    SampleEvent("add_to_cart", {"sku": "MAT"}, "a1", at("10:04")),
    SampleEvent("add_to_cart", {"sku": "SOCKS"}, "a2", at("10:07")),
]


def test_a_customer_whose_events_fire_the_rule_gets_no_reason():
    views = [
        SampleEvent("product_viewed", {"sku": "MAT"}, ts=at("10:00")),
        SampleEvent("product_viewed", {"sku": "BLOCKS"}),
    ]
    assert why_sample_not_fired(YOGA, "c-1", {}, views, now_ms=at("11:00")) is None


def test_a_rule_that_needs_other_events_says_which():
    reason = why_sample_not_fired(YOGA, "c-ana", {"first_name": "Ana"}, ANA_CART, now_ms=at("12:00"))
    assert reason == (
        "its `when` was never met by these events: it needs product_viewed event(s), and there are none "
        "(the events: add_to_cart x2)"
    )
    blocks_first = [
        SampleEvent("product_viewed", {"sku": "BLOCKS"}, ts=at("10:00")),
        SampleEvent("product_viewed", {"sku": "MAT"}, ts=at("10:05")),
    ]
    reason = why_sample_not_fired(YOGA, "c-1", {}, blocks_first, now_ms=at("12:00"))
    assert reason is not None and reason.startswith("its `when` was never met by these events (it needs product_viewed")


def test_an_armed_rule_says_what_stopped_it():
    cart = rule(
        """
        id: cart
        when: {event: add_to_cart}
        unless: {event: purchase}
        wait: 1h
        audience: {attribute: country, eq: PT}
        action: {channel: email, template: cart_reminder}
        """
    )
    bought = [*ANA_CART, SampleEvent("purchase", {}, "p1", at("10:30"))]
    assert why_sample_not_fired(cart, "c-1", {"country": "PT"}, bought, now_ms=0) == (
        "it was armed 2 time(s) but cancelled 1 time(s) by its `unless` (purchase) within the wait; "
        "1 arming(s) superseded by a later one (debounce)"
    )
    assert why_sample_not_fired(cart, "c-1", {"country": "ES"}, ANA_CART, now_ms=0) == (
        "it was armed 2 time(s) but the customer is outside its `audience` when it would fire; "
        "1 arming(s) superseded by a later one (debounce)"
    )
    assert why_sample_not_fired(cart, "c-1", {"country": "PT"}, ANA_CART, now_ms=0) is None


def test_preview_notes_a_firing_the_rule_would_never_make(tmp_path, capsys):
    rules = Path(__file__).resolve().parents[2] / "rules"
    ana = rules.parent / "examples" / "customers" / "ana.json"
    code = main(["preview", "yoga_mat_then_blocks", "--customer", str(ana), "--rules", str(rules), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.splitlines()[0] == (
        "note: yoga_mat_then_blocks would not fire for this customer: its `when` was never met by these events: "
        "it needs product_viewed event(s), and there are none (the events: add_to_cart x2)"
    )
    result = json.loads(out)
    assert result["would_fire"] is False
    assert result["why_not"].startswith("its `when` was never met by these events: it needs product_viewed")

    views = [
        {"event": "product_viewed", "timestamp": "2026-11-20T10:00:00Z", "properties": {"sku": sku, "name": "x"}}
        for sku in ("SKU-YOGA-MAT", "SKU-YOGA-BLOCKS")
    ]
    customer = tmp_path / "customer.json"
    customer.write_text(json.dumps({"customer_id": "c-1", "traits": {"first_name": "Jo"}, "events": views}))
    code = main(["preview", "yoga_mat_then_blocks", "--customer", str(customer), "--rules", str(rules), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "would not fire" not in err
    assert (json.loads(out)["would_fire"], json.loads(out)["why_not"]) == (True, None)
