"""Composite conditions: where with nested paths, all/any/not, attributes, counts and trends."""

from __future__ import annotations

from tests.support import at, ev, fired, plan

WHITEPAPER = """
id: lead
when:
  all:
    - {event: whitepaper_downloaded, within: 3d}
    - {event: page_viewed, where: {section: services}, count: {gte: 3}, within: 3d}
cooldown: 30d
action: {channel: webhook}
"""


def test_all_needs_every_part_in_its_window():
    p = plan(WHITEPAPER)
    events = [
        ev("whitepaper_downloaded", "10:00"),
        ev("page_viewed", "11:00", section="services"),
        ev("page_viewed", "+1d 11:00", section="blog"),
        ev("page_viewed", "+1d 12:00", section="services"),
        ev("page_viewed", "+2d 09:00", section="services"),
    ]
    assert fired(p, events) == [("lead", "c-1", None, at("+2d 09:00"))]


def test_all_is_false_when_one_part_left_its_window():
    p = plan(WHITEPAPER)
    events = [
        ev("whitepaper_downloaded", "10:00"),
        ev("page_viewed", "+1d 11:00", section="services"),
        ev("page_viewed", "+2d 12:00", section="services"),
        ev("page_viewed", "+3d 10:01", section="services"),
    ]
    assert fired(p, events) == []


def test_whitepaper_arriving_last_arms_at_the_latest_evidence():
    p = plan(WHITEPAPER)
    events = [
        ev("page_viewed", "11:00", section="services"),
        ev("page_viewed", "12:00", section="services"),
        ev("page_viewed", "13:00", section="services"),
        ev("whitepaper_downloaded", "10:00"),
    ]
    assert fired(p, events) == [("lead", "c-1", None, at("13:00"))]


ANY_NOT = """
id: browse
when:
  all:
    - any:
        - {event: product_viewed, where: {category: fitness}, within: 1d}
        - {event: product_viewed, where: {product.brand: {prefix: Yo}}, within: 1d}
    - not: {event: purchase, within: 1d}
cooldown: 1d
action: {channel: push, template: t}
"""


def test_any_accepts_either_branch_and_nested_paths():
    p = plan(ANY_NOT)
    assert fired(p, [ev("product_viewed", "10:00", product={"brand": "Yogi"})]) == [
        ("browse", "c-1", None, at("10:00"))
    ]
    assert fired(p, [ev("product_viewed", "10:00", category="fitness", customer="c-2")]) == [
        ("browse", "c-2", None, at("10:00"))
    ]
    assert fired(p, [ev("product_viewed", "10:00", category="garden", customer="c-3")]) == []


def test_not_blocks_arming_while_its_condition_holds():
    p = plan(ANY_NOT)
    events = [ev("purchase", "09:00"), ev("product_viewed", "10:00", category="fitness")]
    assert fired(p, events) == []


def test_an_event_under_not_never_arms_the_rule():
    p = plan(ANY_NOT)
    events = [ev("product_viewed", "10:00", category="fitness"), ev("purchase", "+2d 10:00")]
    assert fired(p, events) == [("browse", "c-1", None, at("10:00"))]


ATTRIBUTE_IN_WHEN = """
id: vip_purchase
when:
  all:
    - {event: purchase, where: {price: {gte: 100}}, within: 1h}
    - {attribute: tier, eq: gold}
cooldown: 1d
action: {channel: sms, template: t}
"""


def test_attribute_condition_reads_the_profile():
    p = plan(ATTRIBUTE_IN_WHEN)
    gold = [ev("identify", "09:00", traits={"tier": "gold"}), ev("purchase", "10:00", price=150)]
    assert fired(p, gold) == [("vip_purchase", "c-1", None, at("10:00"))]
    cheap = [ev("identify", "09:00", traits={"tier": "gold"}, customer="c-2"), ev("purchase", "10:00", price=5)]
    assert fired(p, cheap) == []
    silver = [ev("identify", "09:00", traits={"tier": "silver"}, customer="c-3"), ev("purchase", "10:00", price=150)]
    assert fired(p, silver) == []


COUNT_RANGE = """
id: few_views
when: {event: product_viewed, count: {gte: 2, lte: 3}, within: 1d}
cooldown: 1h
action: {channel: push, template: t}
"""


def test_count_takes_comparisons_other_than_gte():
    p = plan(COUNT_RANGE)
    events = [ev("product_viewed", f"+0d {h}:00") for h in (10, 11, 12, 13)]
    assert fired(p, events) == [("few_views", "c-1", None, at("11:00")), ("few_views", "c-1", None, at("12:00"))]


TREND = """
id: rising
when:
  trend: {event: purchase, period: 1w, periods: 3, direction: increasing}
cooldown: 90d
action: {channel: sms, template: t}
"""


def _purchases(days: list[int]) -> list:
    return [ev("purchase", at("10:00") + day * 86_400_000) for day in days]


def test_trend_fires_when_counts_rise_strictly_each_period():
    p = plan(TREND)
    # At day 9 the weekly periods are (-12, -5], (-5, 2], (2, 9] days: counts 0, 1, 2.
    assert fired(p, _purchases([1, 8, 9])) == [("rising", "c-1", None, at("10:00") + 9 * 86_400_000)]


def test_trend_does_not_fire_on_flat_counts():
    p = plan(TREND)
    # One purchase a week: counts 0, 0, 1 then 0, 1, 1 then 1, 1, 1.
    assert fired(p, _purchases([0, 7, 14])) == []


def test_trend_does_not_fire_when_a_period_repeats_the_previous_count():
    p = plan(TREND)
    # At day 9: periods (-12, -5], (-5, 2], (2, 9] hold 0, 0, 2.
    assert fired(p, _purchases([8, 9])) == []


def test_trend_decreasing():
    p = plan(TREND.replace("increasing", "decreasing"))
    # At day 14 the periods (-7, 0], (0, 7], (7, 14] hold 3, 2, 1.
    events = _purchases([-2, -1, 0, 3, 4, 14])
    assert fired(p, events) == [("rising", "c-1", None, at("10:00") + 14 * 86_400_000)]
