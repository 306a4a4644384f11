"""``nudge validate``: every kind of mistake is reported with its file, its line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.cli.main import main
from nudge.engine import load_rules

GOOD = """\
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


def problems(tmp_path: Path, text: str, name: str = "rule.yaml") -> list[tuple[int, str, str]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = load_rules(tmp_path)
    assert all(d.file == str(path) for d in result.errors)
    return [(d.line, d.where, d.message) for d in result.errors]


MISTAKES = {
    "unknown operator": (
        GOOD.replace("- event: checkout_viewed", "- event: checkout_viewed\n      where: {price: {gtt: 5}}"),
        6,
        "unknown operator 'gtt'",
    ),
    "bad duration unit": (GOOD.replace("within: 1h", "within: 1hr"), 6, "bad duration '1hr'"),
    "duration without unit": (GOOD.replace("wait: 1h", "wait: 30"), 8, "bad duration 30"),
    "unknown key with a hint": (GOOD.replace("wait: 1h", "wiat: 1h"), 8, "unknown key 'wiat' (did you mean 'wait'?)"),
    "unless without wait": (GOOD.replace("wait: 1h\n", ""), 7, "`unless` needs `wait`"),
    "nested filter without within": (
        "id: x\nwhen:\n  all:\n    - event: a\n      within: 1h\n    - event: b\n"
        "cooldown: 1d\naction: {channel: event}\n",
        6,
        "needs `within`",
    ),
    "sequence without within": (GOOD.replace("  within: 1h\n", ""), 3, "a sequence needs `within`"),
    "within on a sequence step": (
        GOOD.replace("- event: checkout_viewed", "- event: checkout_viewed\n      within: 5m"),
        5,
        "put `within` on the sequence",
    ),
    "bad rule id": (GOOD.replace("id: cart", "id: Cart-Reminder"), 1, "may hold only lowercase letters"),
    "unknown channel": (
        GOOD.replace("channel: event", "channel: fax"),
        9,
        "'email', 'sms', 'push', 'webhook' or 'event'",
    ),
    "missing action": (GOOD.replace("action: {channel: event}\n", ""), 1, "missing required key 'action'"),
    "audience with an event": (
        GOOD + "audience: {event: purchase, within: 1d}\n",
        10,
        "audience tests profile traits only",
    ),
    "when only negated": (
        "id: x\nwhen:\n  not: {event: purchase, within: 1d}\ncooldown: 1d\naction: {channel: event}\n",
        2,
        "at least one event condition that is not under `not`",
    ),
    "in takes a list": (GOOD + "audience: {attribute: country, in: PT}\n", 10, "operator 'in' takes a list"),
    "condition without a kind": (
        GOOD.replace("unless: {event: purchase}", "unless: {event: purchase}\naudience: {colour: red}"),
        8,
        "a condition needs one of the keys",
    ),
    "count with an unknown operator": (
        "id: x\nwhen:\n  event: a\n  count: {atleast: 3}\n  within: 1d\ncooldown: 1d\naction: {channel: event}\n",
        4,
        "unknown count operator 'atleast'",
    ),
    "email without template": (
        GOOD.replace("channel: event", "channel: email"),
        9,
        "channel 'email' needs a `template`",
    ),
    "trend needs two periods": (
        "id: x\nwhen:\n  trend: {event: purchase, period: 1w, periods: 1, direction: increasing}\ncooldown: 1d\n"
        "action: {channel: event}\n",
        3,
        "greater than or equal to 2",
    ),
    "unless filter with within": (
        GOOD.replace("unless: {event: purchase}", "unless: {event: purchase, within: 1h}"),
        7,
        "its window is [arm time, arm time + wait]",
    ),
}


@pytest.mark.parametrize("kind", list(MISTAKES))
def test_each_kind_of_mistake_is_reported_at_its_line(tmp_path: Path, kind: str):
    text, line, fragment = MISTAKES[kind]
    found = problems(tmp_path, text)
    assert any(got_line == line and fragment in message for got_line, _, message in found), found


def test_yaml_syntax_error_points_at_the_problem(tmp_path: Path):
    found = problems(tmp_path, "id: x\nwhen:\n  event: a\n   within: [1h\naction: {channel: event}\n")
    assert found and found[0][2].startswith("not valid YAML")
    assert found[0][0] in (4, 5)


def test_duplicate_key_in_a_mapping(tmp_path: Path):
    found = problems(tmp_path, GOOD.replace("wait: 1h", "wait: 1h\nwait: 2h"))
    assert (9, "wait", "duplicate key 'wait'") in found


def test_duplicate_rule_id_names_the_first_definition(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    [error] = load_rules(tmp_path).errors
    assert error.file == str(tmp_path / "b.yaml") and error.line == 1
    assert f"duplicate rule id 'cart' (first defined at {tmp_path / 'a.yaml'}:1)" in error.message


def test_second_rule_of_a_list_file_is_located_in_it(tmp_path: Path):
    listed = (
        "- "
        + GOOD.replace("\n", "\n  ").rstrip()
        + "\n- id: other\n  when: {event: a}\n  cooldown: 1d\n  action: {channel: fax}\n"
    )
    [error] = load_rules_file(tmp_path, listed)
    assert error.line == 13 and "'email', 'sms'" in error.message


def load_rules_file(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_rules(path).errors


def test_norway_stays_a_string(tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "audience: {attribute: country, in: [PT, NO]}\n")
    [rule] = load_rules(path).rules
    assert rule.audience is not None
    assert rule.audience.test == {"in": ["PT", "NO"]}  # type: ignore[union-attr]


def test_shipped_rules_validate_clean(capsys: pytest.CaptureFixture[str]):
    assert main(["validate", "rules"]) == 0
    captured = capsys.readouterr()
    assert "6 rule(s) valid" in captured.out
    assert captured.err == ""


def test_cli_exits_1_with_file_line_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "bad.yaml").write_text(GOOD.replace("within: 1h", "within: soon"))
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.yaml'}:6: when.within: bad duration 'soon'" in err


def test_rule_without_wait_or_cooldown_is_a_warning_and_strict_makes_it_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "r.yaml").write_text("id: x\nwhen: {event: purchase}\naction: {channel: event}\n")
    assert main(["validate", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert ":1: warning:" in err and "neither `wait` nor `cooldown`" in err
    assert main(["validate", "--strict", str(tmp_path)]) == 1
