"""``nudge validate`` and the rule loader: every kind of mistake is reported with its file, its line and what is wrong.

Each test writes a small rule file, loads it, and pins the exact file, the exact line, the dotted
place inside the rule (``where``) and the part of the message that names the problem. Line numbers
are counted from the first line of each YAML text (the line right after the opening quotes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nudge.cli.main import main
from nudge.engine import Diagnostic, RuleLoadError, compile_rules, load_rules, load_rules_or_raise, replay
from nudge.engine.language.rules import AttributeCondition, EventFilter
from tests.support import at, ev

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ROOT / "rules"

# A valid rule, used as the base of several mistakes (line numbers on the right).
CART = """\
id: cart
when:
  sequence:
    - event: add_to_cart
    - event: checkout_viewed
  within: 1h
unless: {event: purchase}
wait: 1h
action: {channel: event}
"""


def write(folder: Path, text: str, name: str = "rule.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors(folder: Path, text: str, name: str = "rule.yaml") -> tuple[Path, list[Diagnostic]]:
    """Write ``text`` as the only rule file of ``folder`` and load the folder; return the file and its errors."""
    path = write(folder, text, name)
    result = load_rules(folder)
    return path, result.errors


def only_error(folder: Path, text: str) -> Diagnostic:
    """The single error of a one-file folder, checked to name that file."""
    path, found = errors(folder, text)
    assert len(found) == 1, [str(d) for d in found]
    [error] = found
    assert error.file == str(path)
    assert error.severity == "error"
    return error


# --- 1. operators -----------------------------------------------------------------------------


def test_unknown_operator_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  event: product_viewed
  where:
    price: {gtt: 5}
cooldown: 1d
action: {channel: event}
""",
    )
    assert error.line == 5
    assert error.where == "when.where.price"
    assert "unknown operator 'gtt'" in error.message
    assert "gte" in error.message  # the valid operators are listed


def test_unknown_operator_in_block_style_points_at_the_operator_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  event: product_viewed
  where:
    price:
      gte: 1
      gtt: 5
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (7, "when.where.price")
    assert "unknown operator 'gtt'" in error.message


def test_unknown_operator_in_a_sequence_step_is_located_in_that_step(tmp_path: Path) -> None:
    text = CART.replace(
        "    - event: checkout_viewed\n", "    - event: checkout_viewed\n      where: {price: {gtt: 5}}\n"
    )
    error = only_error(tmp_path, text)
    assert (error.line, error.where) == (6, "when.sequence[1].where.price")
    assert "unknown operator 'gtt'" in error.message


def test_count_with_an_unknown_operator_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  event: page_viewed
  count: {atleast: 3}
  within: 1d
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (4, "when.count")
    assert "unknown count operator 'atleast'" in error.message
    assert "gte" in error.message


def test_count_with_a_negative_number_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  all:
    - event: a
      within: 1d
    - event: b
      count:
        gte: -1
      within: 1d
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (8, "when.all[1].count")
    assert "whole number ≥ 0, not -1" in error.message


def test_in_given_a_scalar_instead_of_a_list_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  event: signup
  where:
    country: {in: PT}
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (5, "when.where.country")
    assert "operator 'in' takes a list" in error.message
    assert "'PT'" in error.message


def test_in_given_a_scalar_in_an_attribute_test_points_at_the_in_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART + "audience:\n  attribute: country\n  in: PT\n")
    assert error.line == 12  # `in: PT`, not the `attribute:` line above it
    assert error.where == "audience.attribute"
    assert "operator 'in' takes a list" in error.message


def test_exists_given_yes_is_not_a_boolean(tmp_path: Path) -> None:
    """Booleans are YAML 1.2 (true/false only): `yes` is a string, and `exists` says so."""
    error = only_error(
        tmp_path,
        "id: x\nwhen:\n  event: a\n  where:\n    coupon: {exists: yes}\ncooldown: 1d\naction: {channel: event}\n",
    )
    assert (error.line, error.where) == (5, "when.where.coupon")
    assert "operator 'exists' takes true or false" in error.message


# --- 2. durations -----------------------------------------------------------------------------


def test_duration_with_a_bad_unit_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("within: 1h", "within: 1hr"))
    assert (error.line, error.where) == (6, "when.within")
    assert "bad duration '1hr'" in error.message
    assert "s, m, h, d, w" in error.message


def test_duration_without_a_unit_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("wait: 1h", "wait: 30"))
    assert (error.line, error.where) == (8, "wait")
    assert "bad duration 30" in error.message


def test_zero_duration_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("wait: 1h", "wait: 0m"))
    assert (error.line, error.where) == (8, "wait")
    assert "bad duration '0m': it must be longer than zero" in error.message


def test_bad_duration_in_a_trend_period_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  trend:
    event: purchase
    period: 1 week
    periods: 4
    direction: increasing
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (5, "when.trend.period")
    assert "bad duration '1 week'" in error.message


# --- 3. unknown keys --------------------------------------------------------------------------


def test_unknown_top_level_key_is_reported_with_a_did_you_mean_hint(tmp_path: Path) -> None:
    path, found = errors(
        tmp_path,
        """\
id: x
whne:
  event: signup
cooldown: 1d
action: {channel: event}
""",
    )
    assert all(d.file == str(path) for d in found)
    typo = [d for d in found if "unknown key" in d.message]
    assert [(d.line, d.where, d.message) for d in typo] == [(2, "", "unknown key 'whne' (did you mean 'when'?)")]
    # `when` is then missing, which is reported too, at the rule's first line.
    assert [(d.line, d.message) for d in found if d not in typo] == [(1, "missing required key 'when'")]


def test_unknown_key_in_a_nested_mapping_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("action: {channel: event}", "action:\n  channel: email\n  templat: x"))
    assert (error.line, error.where) == (11, "action")
    assert error.message == "unknown key 'templat' (did you mean 'template'?)"


def test_unknown_key_beside_event_is_reported_under_when(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, "id: x\nwhen:\n  event: a\n  wehre: {sku: A}\ncooldown: 1d\naction: {channel: event}\n"
    )
    assert (error.line, error.where) == (4, "when")
    assert error.message == "unknown key 'wehre' (did you mean 'where'?)"


def test_known_key_in_the_wrong_place_does_not_suggest_itself(tmp_path: Path) -> None:
    error = only_error(tmp_path, "id: x\nwhen: {event: a}\nwithin: 1h\ncooldown: 1d\naction: {channel: event}\n")
    assert (error.line, error.where) == (3, "")
    assert "did you mean 'within'" not in error.message
    assert "'within' is a known key but does not belong at the top level of a rule" in error.message


def test_two_condition_kinds_in_one_mapping_name_the_extra_key(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  event: a
  sequence: [{event: a}, {event: b}]
  within: 1h
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (3, "when")
    assert "'event' is a known key but does not belong here" in error.message


# --- 4. duplicate ids -------------------------------------------------------------------------


def test_duplicate_rule_id_across_two_files_names_the_first_definition(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "- id: other\n  when: {event: a}\n  cooldown: 1d\n  action: {channel: event}\n"
        "- id: cart\n  when: {event: a}\n  cooldown: 1d\n  action: {channel: event}\n",
        "a.yaml",
    )
    second = write(tmp_path, "# the same rule again\n\n" + CART, "b.yaml")
    result = load_rules(tmp_path)
    [error] = result.errors
    assert (error.file, error.line, error.where) == (str(second), 3, "id")
    assert error.message == f"duplicate rule id 'cart' (first defined at {first}:5)"
    assert sorted(rule.id for rule in result.rules) == ["cart", "other"]
    assert result.sources["cart"] == (str(first), 5)


def test_duplicate_rule_id_within_one_list_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- id: a\n  when: {event: a}\n  cooldown: 1d\n  action: {channel: event}\n"
        "- id: a\n  when: {event: b}\n  cooldown: 1d\n  action: {channel: event}\n",
    )
    [error] = load_rules(path).errors
    assert (error.file, error.line) == (str(path), 5)
    assert f"duplicate rule id 'a' (first defined at {path}:1)" in error.message


# --- 5.-7. whole-rule checks ------------------------------------------------------------------


def test_unless_without_wait_is_reported_at_the_unless_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("wait: 1h\n", "cooldown: 1d\n"))
    assert (error.line, error.where) == (7, "unless")
    assert "`unless` needs `wait`" in error.message


def test_unless_filter_with_within_is_reported_at_its_item(tmp_path: Path) -> None:
    text = CART.replace(
        "unless: {event: purchase}", "unless:\n  any:\n    - event: purchase\n    - event: refund\n      within: 1h"
    )
    error = only_error(tmp_path, text)
    assert (error.line, error.where) == (10, "unless.any[1]")
    assert "an unless filter takes no `within` or `count`" in error.message


def test_nested_event_filter_without_within_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  all:
    - event: whitepaper_downloaded
      within: 3d
    - event: page_viewed
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (6, "when.all[1].event")
    assert "event filter 'page_viewed' needs `within`" in error.message


def test_sequence_without_within_is_reported_at_the_sequence_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("  within: 1h\n", ""))
    assert (error.line, error.where) == (3, "when.sequence")
    assert "a sequence needs `within`" in error.message


def test_lone_counted_event_without_within_says_the_count_needs_it(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, "id: x\nwhen:\n  event: page_viewed\n  count: {gte: 3}\ncooldown: 1d\naction: {channel: event}\n"
    )
    assert (error.line, error.where) == (4, "when.count")
    assert "event filter 'page_viewed' has a `count`, so it needs `within`" in error.message
    assert "only a lone" not in error.message  # it *is* a lone filter: the count is what needs the window


def test_within_on_a_sequence_step_is_reported_at_that_step(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, CART.replace("    - event: checkout_viewed\n", "    - event: checkout_viewed\n      within: 5m\n")
    )
    assert (error.line, error.where) == (5, "when.sequence[1]")
    assert "put `within` on the sequence, not on a step" in error.message


def test_sequence_with_one_step_is_reported(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("    - event: checkout_viewed\n", ""))
    assert (error.line, error.where) == (3, "when.sequence")
    assert "at least two steps" in error.message


def test_when_with_only_a_not_is_reported_at_the_when_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  not: {event: purchase, within: 30d}
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (2, "when")
    assert "at least one event condition that is not under `not`" in error.message


def test_audience_containing_an_event_filter_is_reported_at_that_item(tmp_path: Path) -> None:
    text = (
        CART + "audience:\n  all:\n    - attribute: country\n      in: [PT]\n    - event: purchase\n      within: 1d\n"
    )
    error = only_error(tmp_path, text)
    assert (error.line, error.where) == (14, "audience.all[1]")
    assert "audience tests profile traits only" in error.message


# --- 8.-10. ids, channels, required keys -------------------------------------------------------


def test_uppercase_rule_id_is_reported_at_the_id_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, "# cart reminder\n" + CART.replace("id: cart", "id: Cart_Reminder"))
    assert (error.line, error.where) == (2, "id")
    assert "rule id 'Cart_Reminder' may hold only lowercase letters, digits and _" in error.message


def test_unknown_channel_names_the_channel_and_the_choices(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("action: {channel: event}", "action:\n  channel: fax"))
    assert (error.line, error.where) == (10, "action.channel")
    assert "unknown channel 'fax'" in error.message
    assert "email, sms, push, webhook, event" in error.message


def test_template_name_with_capitals_is_named_in_the_message(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, CART.replace("action: {channel: event}", "action:\n  channel: email\n  template: Cart-Reminder")
    )
    assert (error.line, error.where) == (11, "action.template")
    assert "template 'Cart-Reminder' may hold only lowercase letters, digits and _" in error.message


def test_missing_action_is_reported_at_the_rule_start(tmp_path: Path) -> None:
    error = only_error(tmp_path, "\n# no action\n" + CART.replace("action: {channel: event}\n", ""))
    assert (error.line, error.where) == (3, "")
    assert error.message == "missing required key 'action'"


def test_missing_channel_is_reported_at_the_action_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("action: {channel: event}", "action:\n  template: cart_reminder"))
    assert (error.line, error.where) == (9, "action")
    assert error.message == "missing required key 'channel'"


def test_email_channel_without_a_template_is_reported_at_the_action_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("action: {channel: event}", "action:\n  channel: email"))
    assert (error.line, error.where) == (9, "action")
    assert "channel 'email' needs a `template`" in error.message


def test_action_given_a_scalar_asks_for_a_mapping(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("action: {channel: event}", "action: email"))
    assert (error.line, error.where) == (9, "action")
    assert error.message == "expected a mapping (key: value), not 'email'"


def test_properties_given_a_scalar_names_the_value(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, CART.replace("action: {channel: event}", "action:\n  channel: event\n  properties: sku")
    )
    assert (error.line, error.where) == (11, "action.properties")
    assert "valid list, not 'sku'" in error.message


def test_trend_with_one_period_and_an_unknown_direction(tmp_path: Path) -> None:
    path, found = errors(
        tmp_path,
        """\
id: x
when:
  trend:
    event: purchase
    period: 1w
    periods: 1
    direction: up
cooldown: 1d
action: {channel: event}
""",
    )
    assert [(d.file, d.line, d.where) for d in found] == [
        (str(path), 6, "when.trend.periods"),
        (str(path), 7, "when.trend.direction"),
    ]
    assert "greater than or equal to 2" in found[0].message
    assert "'increasing' or 'decreasing', not 'up'" in found[1].message


# --- 16. conditions without a kind ------------------------------------------------------------


def test_condition_with_none_of_the_condition_keys_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  all:
    - event: signup
    - colour: red
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (5, "when.all[1]")
    assert "a condition needs one of the keys: sequence, all, any, not, trend, attribute, event" in error.message


def test_condition_written_as_a_list_suggests_all_or_any(tmp_path: Path) -> None:
    error = only_error(tmp_path, "id: x\nwhen:\n  - event: a\ncooldown: 1d\naction: {channel: event}\n")
    assert (error.line, error.where) == (2, "when")
    assert "to combine conditions, put them under `all:` or `any:`" in error.message


def test_condition_written_as_an_event_name_suggests_the_event_key(tmp_path: Path) -> None:
    error = only_error(tmp_path, "id: x\nwhen: purchase\ncooldown: 1d\naction: {channel: event}\n")
    assert (error.line, error.where) == (2, "when")
    assert "for one event write `event: purchase`" in error.message


# --- 13./14. YAML itself ----------------------------------------------------------------------


def test_yaml_syntax_error_is_reported_at_the_line_of_the_problem(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  event: signup
   within: 1h
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where) == (4, "")
    assert error.message.startswith("not valid YAML: mapping values are not allowed here")


def test_unclosed_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
description: 'the quote is never closed
when: {event: a}
cooldown: 1d
action: {channel: event}
""",
    )
    assert error.line == 2  # not the end of the file, where PyYAML notices
    assert "not valid YAML" in error.message
    assert "quoted scalar that starts at line 2" in error.message


def test_unclosed_flow_mapping_is_reported_within_the_file(tmp_path: Path) -> None:
    error = only_error(tmp_path, "id: x\nwhen: {event: a}\ncooldown: 1d\naction: {channel: event\n")
    assert error.line == 4  # the file has four lines: never a line past its end
    assert "flow mapping that starts at line 4" in error.message


def test_tab_indentation_is_reported_at_its_line(tmp_path: Path) -> None:
    error = only_error(tmp_path, "id: x\nwhen:\n\tevent: a\ncooldown: 1d\naction: {channel: event}\n")
    assert error.line == 3
    assert "not valid YAML" in error.message and "'\\t'" in error.message


def test_duplicate_key_in_a_mapping_is_reported_at_the_second_occurrence(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("wait: 1h", "wait: 1h\nwait: 2h"))
    assert (error.line, error.where, error.message) == (9, "wait", "duplicate key 'wait'")


def test_duplicate_key_in_a_nested_mapping_is_reported_with_its_path(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        """\
id: x
when:
  event: a
  where:
    sku: A
    sku: B
  within: 1h
cooldown: 1d
action: {channel: event}
""",
    )
    assert (error.line, error.where, error.message) == (6, "when.where.sku", "duplicate key 'sku'")


def test_duplicate_key_in_a_list_file_names_the_path_inside_the_rule(tmp_path: Path) -> None:
    error = only_error(
        tmp_path,
        "- id: a\n  when: {event: a}\n  cooldown: 1d\n  action: {channel: event}\n"
        "- id: b\n  when: {event: b}\n  cooldown: 1d\n  cooldown: 2d\n  action: {channel: event}\n",
    )
    assert (error.line, error.where, error.message) == (8, "cooldown", "duplicate key 'cooldown'")


def test_unknown_yaml_tag_is_an_error_not_a_crash(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("id: cart", "id: !!python/object:os.system cart"))
    assert error.line == 1
    assert "not valid YAML" in error.message and "python/object:os.system" in error.message


def test_scalar_that_its_tag_cannot_read_is_an_error_not_a_crash(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART.replace("wait: 1h", "wait: !!int soon"))
    assert error.line == 8
    assert error.message.startswith("not valid YAML: 'soon' is not a valid int")


def test_complex_mapping_key_is_an_error_not_a_crash(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART + "? [a, b]\n: 1\n")
    assert error.line == 10  # the key, not the mapping that holds it
    assert "found unhashable key (while constructing a mapping that starts at line 1)" in error.message


def test_self_referencing_alias_is_an_error_not_a_crash(tmp_path: Path) -> None:
    _, found = errors(tmp_path, CART + "description: &loop [*loop]\n")
    assert found  # reported (a description is a string), without a RecursionError


def test_two_yaml_documents_in_one_file_are_reported_at_the_second(tmp_path: Path) -> None:
    error = only_error(tmp_path, CART + "---\n" + CART)
    assert error.line == 10
    assert "expected a single document in the stream, but found another document" in error.message


def test_empty_file_is_reported(tmp_path: Path) -> None:
    error = only_error(tmp_path, "# nothing yet\n")
    assert error.line == 1
    assert "the file is empty" in error.message


def test_a_rule_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, "- id: a\n  when: {event: a}\n  cooldown: 1d\n  action: {channel: event}\n- just text\n"
    )
    assert error.line == 5
    assert "a rule must be a mapping" in error.message


# --- 18. list files and many files -------------------------------------------------------------


def test_second_rule_of_a_list_file_is_located_in_it(tmp_path: Path) -> None:
    text = """\
- id: first
  when: {event: a}
  cooldown: 1d
  action: {channel: event}
- id: second
  when:
    event: b
    where:
      price: {gtt: 5}
  cooldown: 1d
  action: {channel: event}
"""
    error = only_error(tmp_path, text)
    assert (error.line, error.where) == (9, "when.where.price")
    assert "unknown operator 'gtt'" in error.message
    assert [rule.id for rule in load_rules(tmp_path).rules] == ["first"]


def test_second_rule_of_a_list_file_missing_a_key_points_at_its_start(tmp_path: Path) -> None:
    text = """\
- id: first
  when: {event: a}
  cooldown: 1d
  action: {channel: event}
- id: second
  when: {event: b}
"""
    error = only_error(tmp_path, text)
    assert (error.line, error.message) == (5, "missing required key 'action'")


def test_every_file_is_checked_and_every_problem_reported_in_one_run(tmp_path: Path) -> None:
    bad_a = write(tmp_path, CART.replace("within: 1h", "within: 1hr"), "a.yaml")
    good = write(tmp_path, "id: fine\nwhen: {event: a}\ncooldown: 1d\naction: {channel: event}\n", "b.yml")
    bad_c = write(tmp_path, CART.replace("id: cart", "id: other").replace("wait: 1h\n", ""), "c.yaml")
    write(tmp_path, "not: a rule file\n", "notes.txt")
    result = load_rules(tmp_path)
    assert [(d.file, d.line, d.where) for d in result.errors] == [
        (str(bad_a), 6, "when.within"),
        (str(bad_c), 7, "unless"),
    ]
    assert [rule.id for rule in result.rules] == ["fine", "other"]
    assert result.sources["fine"] == (str(good), 1)


def test_missing_path_and_empty_folder_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = load_rules([tmp_path / "nope", tmp_path / "empty"])
    assert [(d.file, d.line, d.message) for d in result.errors] == [
        (str(tmp_path / "nope"), 1, "no such rule file or folder"),
        (str(tmp_path / "empty"), 1, "no rule files (*.yaml, *.yml) in this folder"),
    ]


def test_load_rules_or_raise_lists_every_error_as_file_line(tmp_path: Path) -> None:
    path = write(tmp_path, CART.replace("within: 1h", "within: 1hr").replace("wait: 1h", "wait: 30"))
    with pytest.raises(RuleLoadError) as raised:
        load_rules_or_raise(tmp_path)
    text = str(raised.value)
    assert f"{path}:6: when.within: bad duration '1hr'" in text
    assert f"{path}:8: wait: bad duration 30" in text
    assert len(raised.value.diagnostics) == 2


def test_load_rules_or_raise_leaves_out_disabled_rules(tmp_path: Path) -> None:
    write(tmp_path, CART.replace("id: cart", "id: cart\nenabled: false"))
    write(tmp_path, "id: on\nwhen: {event: a}\ncooldown: 1d\naction: {channel: event}\n", "on.yaml")
    assert [rule.id for rule in load_rules_or_raise(tmp_path)] == ["on"]


# --- warnings ---------------------------------------------------------------------------------


def test_rule_without_wait_or_cooldown_is_a_warning_at_the_id_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# fires every time\nid: x\nwhen: {event: purchase}\naction: {channel: event}\n")
    result = load_rules(path)
    assert result.ok and result.errors == []
    [warning] = result.warnings
    assert (warning.file, warning.line, warning.where, warning.severity) == (str(path), 2, "id", "warning")
    assert "neither `wait` nor `cooldown`" in warning.message
    assert str(warning).startswith(f"{path}:2: warning: id: neither `wait` nor `cooldown`")
    assert [rule.id for rule in result.rules] == ["x"]


def test_cli_warning_exits_0_and_strict_makes_it_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "id: x\nwhen: {event: purchase}\naction: {channel: event}\n")
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}:1: warning: id: neither `wait` nor `cooldown`" in err
    assert "1 rule(s) valid (1 enabled), 1 warning(s)" in out

    assert main(["validate", "--strict", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"{path}:1: warning: id:" in err
    assert "0 error(s), 1 warning(s)" in err
    assert "valid" not in out


# --- webhook destinations against cdk.json ---------------------------------------------------

HOOK = """\
id: hook
when: {event: purchase}
cooldown: 1d
action:
  channel: webhook
  destination: crn
"""


def cdk_json(folder: Path, webhooks: dict[str, object]) -> Path:
    path = folder / "cdk.json"
    path.write_text(json.dumps({"app": "python3 app.py", "context": {"nudge": {"webhooks": webhooks}}}))
    return path


def test_cli_warns_at_the_destination_line_naming_the_configured_webhooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HOOK)
    crm = {"endpoint": "https://api.crm.test/v1", "secret_name": "nudge/crm"}
    settings = cdk_json(tmp_path, {"crm": crm, "erp": crm})
    assert main(["validate", "--settings", str(settings), str(path)]) == 0
    _, err = capsys.readouterr()
    assert err.strip() == (
        f"{path}:6: warning: action.destination: webhook destination 'crn' is not configured "
        '(cdk.json "nudge".webhooks has crm, erp); did you mean crm?'
    )
    assert main(["validate", "--strict", "--settings", str(settings), str(path)]) == 1


def test_cli_says_how_to_add_a_webhook_when_none_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HOOK)
    monkeypatch.chdir(tmp_path)  # ./cdk.json is read by default
    cdk_json(tmp_path, {})
    assert main(["validate", str(path)]) == 0
    _, err = capsys.readouterr()
    assert f"{path}:6: warning: action.destination: webhook destination 'crn': no webhook is configured; " in err
    assert '"crn": {"endpoint": "https://...", "secret_name": "..."}' in err
    (tmp_path / "cdk.json").unlink()  # no settings to check against: destinations are not checked
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["validate", "--settings", "missing.json", str(path)]) == 1
    assert "error: missing.json: cannot read settings" in capsys.readouterr().err


# --- the shipped rules ------------------------------------------------------------------------


def test_shipped_rules_load_without_errors_or_warnings() -> None:
    result = load_rules(SHIPPED_RULES)
    assert result.diagnostics == []
    assert len(result.rules) == len(list(SHIPPED_RULES.glob("*.yaml"))) - 1 == 7  # and policy.yaml
    assert result.policy.allowed_lateness == 120_000


def test_cli_validates_the_shipped_rules_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SHIPPED_RULES)]) == 0
    out, err = capsys.readouterr()
    assert "7 rule(s) valid (7 enabled)" in out
    assert "warning" not in out
    assert err == ""
    assert main(["validate", "--strict", str(SHIPPED_RULES)]) == 0


# --- YAML 1.2 scalars -------------------------------------------------------------------------


def test_norway_stays_a_string_in_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, CART + "audience: {attribute: country, in: [PT, NO, no, yes, On, off]}\n")
    result = load_rules(path)
    assert result.diagnostics == []
    [rule] = result.rules
    assert isinstance(rule.audience, AttributeCondition)
    assert rule.audience.test == {"in": ["PT", "NO", "no", "yes", "On", "off"]}


def test_true_and_false_are_still_booleans(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id: x\nenabled: false\nwhen:\n  event: a\n  where:\n    coupon: {exists: true}\ncooldown: 1d\n"
        "action: {channel: event}\n",
    )
    [rule] = load_rules(path).rules
    assert rule.enabled is False
    assert isinstance(rule.when, EventFilter)
    assert rule.when.where == {"coupon": {"exists": True}}


def test_a_date_stays_the_string_an_event_holds(tmp_path: Path) -> None:
    """Events are JSON, where a date is a string: a YAML 1.1 ``date`` would never equal it."""
    path = write(
        tmp_path,
        "id: x\nwhen:\n  event: a\n  where:\n    day: 2024-01-01\n    since: {gte: 2024-06-30}\ncooldown: 1d\n"
        "action: {channel: event}\n",
    )
    result = load_rules(path)
    assert result.diagnostics == []
    [rule] = result.rules
    assert isinstance(rule.when, EventFilter)
    assert rule.when.where == {"day": {"eq": "2024-01-01"}, "since": {"gte": "2024-06-30"}}


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_exits_0_on_valid_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, CART)
    assert main(["validate", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "1 rule(s) valid (1 enabled)"
    assert err == ""


def test_cli_exits_1_and_prints_file_line_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CART.replace("within: 1h", "within: soon"))
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}:6: when.within: bad duration 'soon'" in err
    assert "1 error(s), 0 warning(s)" in err


def test_cli_prints_every_error_of_every_file_sorted_by_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path, CART.replace("wait: 1h", "wait: 30").replace("id: cart", "id: Cart"), "a.yaml")
    b = write(tmp_path, "id: b\nwhne: {event: a}\ncooldown: 1d\naction: {channel: event}\n", "b.yaml")
    assert main(["validate", str(a), str(b)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"{a}:1: id: rule id 'Cart' may hold only lowercase letters, digits and _",
        f"{a}:8: wait: bad duration 30: write a whole number and a unit, one of s, m, h, d, w (e.g. 30m, 7d)",
        f"{b}:1: missing required key 'when'",
        f"{b}:2: unknown key 'whne' (did you mean 'when'?)",
        "4 error(s), 0 warning(s)",
    ]


def test_cli_reports_a_yaml_error_as_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "id: x\nwhen:\n  event: a\n   within: 1h\naction: {channel: event}\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4: not valid YAML: mapping values are not allowed here" in err


def test_cli_reports_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert f"{tmp_path / 'nope'}:1: no such rule file or folder" in capsys.readouterr().err


def test_leading_zeros_and_clock_times_stay_strings(tmp_path):
    """YAML 1.1 would read 012345 as octal 5349 and 10:30 as 630: rule files use YAML 1.2 integers."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "id: x\nwhen:\n  event: purchase\n  where: {sku: 012345, slot: 10:30, qty: 12, delta: -3}\n"
        "cooldown: 1d\naction: {channel: event}\n"
    )
    [rule] = load_rules(path).rules
    assert rule.when.where == {  # type: ignore[union-attr]
        "sku": {"eq": "012345"},
        "slot": {"eq": "10:30"},
        "qty": {"eq": 12},
        "delta": {"eq": -3},
    }


# -- the policy file ---------------------------------------------------------------------------------


def test_the_policy_file_is_not_a_rule_and_sets_the_lateness_and_the_dedupe_window(tmp_path: Path) -> None:
    write(tmp_path, CART)
    write(tmp_path, "allowed_lateness: 5m\ndedupe_window: 2d\n", name="policy.yaml")
    result = load_rules(tmp_path)
    assert result.ok and [r.id for r in result.rules] == ["cart"]
    assert (result.policy.allowed_lateness, result.policy.dedupe_window) == (300_000, 2 * 86_400_000)


def test_without_a_policy_file_the_defaults_hold(tmp_path: Path) -> None:
    write(tmp_path, CART)
    policy = load_rules(tmp_path).policy
    assert (policy.allowed_lateness, policy.dedupe_window) == (120_000, 86_400_000)


def test_a_policy_mistake_is_reported_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, CART)
    path = write(tmp_path, "# time\nallowed_lateness: 2m\ndedupe_windw: 1d\n", name="policy.yaml")
    assert _only_error(tmp_path).file == str(path)
    assert _only_error(tmp_path).line == 3
    assert _only_error(tmp_path).message == "unknown key 'dedupe_windw'"


def test_a_dedupe_window_shorter_than_the_lateness_is_refused(tmp_path: Path) -> None:
    write(tmp_path, CART)
    write(tmp_path, "allowed_lateness: 10m\ndedupe_window: 5m\n", name="policy.yaml")
    error = _only_error(tmp_path)
    assert "shorter than allowed_lateness 10m" in error.message


def test_max_future_skew_defaults_to_an_hour_and_is_bounded_to_1m_7d(tmp_path: Path) -> None:
    write(tmp_path, CART)
    assert load_rules(tmp_path).policy.max_future_skew == 3_600_000
    write(tmp_path, "max_future_skew: 2d\n", name="policy.yaml")
    assert load_rules(tmp_path).policy.max_future_skew == 2 * 86_400_000
    write(tmp_path, "max_future_skew: 30s\n", name="policy.yaml")
    assert "max_future_skew 30s is less than 1m" in _only_error(tmp_path).message
    write(tmp_path, "max_future_skew: 8d\n", name="policy.yaml")
    assert "max_future_skew 8d is more than 7d" in _only_error(tmp_path).message


def test_a_consent_mode_that_is_neither_opt_in_nor_opt_out_is_refused_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, CART)
    path = write(tmp_path, "allowed_lateness: 2m\nconsent:\n  email: opt_out\n  sms: maybe\n", name="policy.yaml")
    error = _only_error(tmp_path)
    assert (error.file, error.line) == (str(path), 4)
    assert error.message.endswith("Input should be 'opt_in' or 'opt_out', not 'maybe'")


def test_a_lateness_of_more_than_an_hour_is_refused_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, CART)
    write(tmp_path, "dedupe_window: 1d\nallowed_lateness: 3h\n", name="policy.yaml")
    assert "more than 1h" in _only_error(tmp_path).message


def test_nudge_validate_reports_a_bad_policy_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write(tmp_path, CART)
    path = write(tmp_path, "allowed_lateness: soon\n", name="policy.yaml")
    assert main(["validate", str(tmp_path)]) == 1
    assert f"{path}:1: allowed_lateness: bad duration 'soon'" in capsys.readouterr().err


def _only_error(folder: Path) -> Diagnostic:
    [error] = load_rules(folder).errors
    return error


# --- an unless that cancels its own arming ------------------------------------------------------

WIN_BACK = """\
id: win_back
when: {event: purchase}
unless: {event: purchase}
wait: 30d
action: {channel: event}
"""


def test_an_unless_that_matches_the_arming_event_is_a_warning_that_says_how_to_write_it(tmp_path: Path) -> None:
    write(tmp_path, WIN_BACK)
    result = load_rules(tmp_path)
    assert result.errors == []
    [warning] = result.warnings
    assert warning.line == 3
    assert "never fires" in warning.message and "drop `unless`: each new 'purchase' re-arms the wait" in warning.message


@pytest.mark.parametrize(
    "when",
    [
        "{sequence: [{event: add_to_cart}, {event: purchase}], within: 1d}",  # the last step arms
        "{any: [{event: purchase}, {event: upgraded}]}",
        "{event: purchase, where: {total: {gte: 100}}}",  # a narrower arming is still matched
    ],
)
def test_every_way_the_arming_event_can_match_the_unless_is_caught(tmp_path: Path, when: str) -> None:
    write(tmp_path, WIN_BACK.replace("when: {event: purchase}", f"when: {when}"))
    assert [w.line for w in load_rules(tmp_path).warnings] == [3]


@pytest.mark.parametrize(
    ("when", "unless"),
    [
        ("{event: purchase}", "{event: purchase, where: {total: {gte: 100}}}"),  # only big purchases call it off
        ("{sequence: [{event: purchase}, {event: checkout_viewed}], within: 1d}", "{event: purchase}"),
        ("{event: purchase}", "{event: refund}"),
    ],
)
def test_an_unless_the_arming_event_cannot_satisfy_is_not_warned(tmp_path: Path, when: str, unless: str) -> None:
    write(
        tmp_path,
        WIN_BACK.replace("when: {event: purchase}", f"when: {when}").replace(
            "unless: {event: purchase}", f"unless: {unless}"
        ),
    )
    assert load_rules(tmp_path).warnings == []


def test_no_purchase_for_30_days_since_the_last_one_fires_once_after_the_last_purchase(tmp_path: Path) -> None:
    """The README's win-back example: the way to write what the warning is about."""
    write(tmp_path, WIN_BACK.replace("unless: {event: purchase}\n", ""))
    assert load_rules(tmp_path).diagnostics == []
    day = 86_400_000
    purchases = [ev("purchase", at("10:00")), ev("purchase", at("10:00") + 10 * day)]
    firings = replay(compile_rules(load_rules_or_raise(tmp_path)), purchases)
    assert [f.fired_at for f in firings] == [at("10:00") + 40 * day]
