"""``nudge replay`` through ``nudge.cli.main.main``: output formats, bad lines, --until, rule errors, memory."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from nudge.cli.main import main
from nudge.contracts import parse_event
from nudge.engine import Replayer, compile_rules, load_rules, load_rules_or_raise

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
SCENARIOS = ROOT / "examples" / "scenarios"
CART_FIRES = SCENARIOS / "cart_abandonment.fires.jsonl"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def nudge(capsys: pytest.CaptureFixture[str], *args: str | Path, rules: str | Path = RULES) -> tuple[int, str, str]:
    code = main(["replay", "--rules", str(rules), "--no-progress", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    return code, out, err


def envelope(event_id: str, event: str, timestamp: str, customer: str = "c-77", **properties: Any) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "customer_id": customer,
            "event": event,
            "timestamp": timestamp,
            "properties": properties,
        }
    )


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def table_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


# -- --json ---------------------------------------------------------------------------------------------------------


def test_json_prints_one_object_per_firing(capsys):
    code, out, err = nudge(capsys, "--events", CART_FIRES, "--json")

    assert code == 0
    assert err == ""
    objects = [json.loads(line) for line in out.splitlines()]
    assert [(o["rule"], o["customer_id"], o["key"], o["fired_at"], o["channel"]) for o in objects] == [
        ("cart_abandonment", "c-1001", None, "2026-11-21T11:12:00Z", "email"),
        ("cart_abandonment", "c-1002", None, "2026-11-21T15:33:00Z", "email"),
    ]
    for o in objects:
        assert {"firing_id", "rule", "customer_id", "key", "fired_at", "armed_at", "channel", "template", "events"} <= (
            o.keys()
        )
        assert ISO_Z.match(o["fired_at"])
        assert ISO_Z.match(o["armed_at"])
        assert all(ISO_Z.match(e["timestamp"]) for e in o["events"])
    cart_lines = [e["properties"] for e in objects[0]["events"] if e["event"] == "add_to_cart"]
    assert [(line["name"], line["price"]) for line in cart_lines] == [
        ("Trailblazer GTX Trail Running Shoe", 129.0),
        ("Merino Trail Socks (2-pack)", 24.0),
    ]


def test_json_carries_the_key_of_keyed_rules(capsys):
    code, out, _ = nudge(capsys, "--events", SCENARIOS / "repeated_product_views.fires.jsonl", "--json")

    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [(o["customer_id"], o["key"], o["fired_at"], o["channel"]) for o in objects] == [
        ("c-3001", "SKU-THROW-GRY", "2026-11-12T10:30:00Z", "push"),
        ("c-3001", "SKU-THROW-GRY", "2026-11-13T10:30:00Z", "email"),  # the unopened push's follow-up
        ("c-3002", "SKU-ESPRESSO-PRO", "2026-11-13T23:30:00Z", "push"),
    ]


def test_json_prints_nothing_for_a_quiet_scenario(capsys):
    code, out, err = nudge(capsys, "--events", SCENARIOS / "cart_abandonment.quiet.jsonl", "--json")

    assert (code, out, err) == (0, "", "")


# -- table ----------------------------------------------------------------------------------------------------------


def test_table_prints_the_firings_and_a_per_rule_summary(capsys):
    code, out, err = nudge(capsys, "--events", CART_FIRES)

    assert code == 0
    assert err == ""
    rows = table_rows(out)
    assert rows[0] == ["FIRED", "AT", "SEND", "AT", "RULE", "STEP", "CUSTOMER", "KEY", "CHANNEL", "EVENTS"]
    assert rows[1] == [
        "2026-11-21T11:12:00Z",
        "2026-11-21T11:14:00Z",
        "cart_abandonment",
        "0",
        "c-1001",
        "-",
        "email",
        "3",
    ]
    assert rows[2] == [
        "2026-11-21T15:33:00Z",
        "2026-11-21T15:35:00Z",
        "cart_abandonment",
        "0",
        "c-1002",
        "-",
        "email",
        "4",
    ]
    header = ["RULE", "ARMED", "CANCELLED", "DEBOUNCED", "AUDIENCE", "COOLDOWN", "CONSENT", "BOUNCED", "COMPLAINT"]
    header += ["RESTING", "CAP", "HELD", "SKIPPED", "SENT", "STEPS"]
    assert rows[3] == header
    summary = {row[0]: row[1:] for row in rows[4:-2]}
    assert set(summary) == {rule.id for rule in load_rules_or_raise(RULES)}
    assert summary["cart_abandonment"] == ["3", "0", "1", "0", "0", "0", "0", "0", "0", "0", "0", "0", "2", "0"]
    assert all(counts == ["0"] * 14 for rule, counts in summary.items() if rule != "cart_abandonment")
    assert out.splitlines()[-1] == "16 events read, 9 used by rules, 2 firings sent, 2 waits came due"


def opted_out_cart(path: Path, identified: bool = True) -> Path:
    """c1 clicked an unsubscribe link at 09:30, then left a cart at 10:05."""
    unsubscribed = {"channel": "email"}
    lines = [
        json.dumps(
            {
                "event_id": "u",
                "customer_id": "c1",
                "event": "unsubscribed",
                "timestamp": "2026-11-21T09:30:00Z",
                "properties": unsubscribed,
            }
        ),
        envelope("a", "add_to_cart", "2026-11-21T10:00:00Z", customer="c1", sku="SKU-1"),
        envelope("c", "checkout_viewed", "2026-11-21T10:05:00Z", customer="c1"),
    ]
    if identified:
        lines.insert(
            0,
            json.dumps(
                {
                    "event_id": "i",
                    "customer_id": "c1",
                    "event": "identify",
                    "timestamp": "2026-11-21T09:00:00Z",
                    "traits": {"email": "c1@example.com"},
                }
            ),
        )
    return write_lines(path, lines)


def test_table_counts_a_firing_held_back_for_want_of_consent(capsys, tmp_path: Path) -> None:
    """The unsubscribe endpoint's event, then a cart: armed, and not sent."""
    events = opted_out_cart(tmp_path / "events.jsonl")
    code, out, _ = nudge(capsys, "--events", events, "--now", "2026-11-22T00:00:00Z")
    assert code == 0
    assert out.splitlines()[0] == "no firings"
    rows = {row[0]: row[1:] for row in table_rows(out)}
    assert rows["cart_abandonment"] == ["1", "0", "0", "0", "0", "1", "0", "0", "0", "0", "0", "0", "0", "0"]


def test_decisions_say_why_a_customer_got_nothing(capsys, tmp_path: Path) -> None:
    events = opted_out_cart(tmp_path / "events.jsonl", identified=False)
    code, out, _ = nudge(capsys, "--events", events, "--json", "--decisions", "--now", "2026-11-22T00:00:00Z")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [
        {
            "type": "decision",
            "rule": "cart_abandonment",
            "customer_id": "c1",
            "key": None,
            "kind": "armed",
            "at": "2026-11-21T10:05:00Z",
            "reason": None,
        },
        {
            "type": "decision",
            "rule": "cart_abandonment",
            "customer_id": "c1",
            "key": None,
            "kind": "suppressed_consent",
            "at": "2026-11-21T11:05:00Z",
            "reason": "email consent withdrawn at 2026-11-21T09:30:00Z (unsubscribed)",
        },
    ]


def test_table_says_no_firings_and_counts_the_cancelled_wait(capsys):
    code, out, _ = nudge(capsys, "--events", SCENARIOS / "cart_abandonment.quiet.jsonl")

    assert code == 0
    assert out.splitlines()[0] == "no firings"
    rows = {row[0]: row[1:] for row in table_rows(out)}
    assert rows["cart_abandonment"] == ["1", "1"] + ["0"] * 12
    assert out.splitlines()[-1] == "10 events read, 6 used by rules, 0 firings sent, 0 waits came due"


# -- bad lines ------------------------------------------------------------------------------------------------------


def test_bad_lines_are_reported_with_their_line_number_and_skipped(capsys, tmp_path):
    no_customer = json.loads(envelope("bad-2", "add_to_cart", "2026-11-21T10:01:00Z"))
    del no_customer["customer_id"]
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            envelope("ok-1", "add_to_cart", "2026-11-21T10:00:00Z", sku="SKU-1", name="Linen Apron", price=32.0),
            "this is not JSON",
            json.dumps(no_customer),
            "",
            envelope("ok-2", "checkout_viewed", "2026-11-21T10:05:00Z"),
            envelope("bad-3", "purchase", "2026-11-21T10:30:00", sku="SKU-1", name="Linen Apron", price=32.0),
        ],
    )

    code, out, err = nudge(capsys, "--events", events, "--json")

    assert code == 1
    messages = err.splitlines()
    assert len(messages) == 4
    assert messages[0].startswith(f"{events}:2: bad event: not JSON")
    assert messages[1].startswith(f"{events}:3: bad event: customer_id:")
    assert messages[2].startswith(f"{events}:6: bad event: timestamp:")
    assert "UTC offset" in messages[2]
    assert messages[3] == "3 bad event line(s) skipped"
    # The purchase on line 6 was skipped, so it does not cancel the reminder the good lines arm.
    firings = [json.loads(line) for line in out.splitlines()]
    assert [(f["rule"], f["customer_id"], f["fired_at"]) for f in firings] == [
        ("cart_abandonment", "c-77", "2026-11-21T11:05:00Z")
    ]
    assert firings[0]["events"][0]["properties"] == {"sku": "SKU-1", "name": "Linen Apron", "price": 32.0}


def test_bad_lines_in_table_mode_still_print_the_table(capsys, tmp_path):
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            envelope("ok-1", "add_to_cart", "2026-11-21T10:00:00Z"),
            '["an", "array"]',
            envelope("ok-2", "checkout_viewed", "2026-11-21T10:05:00Z"),
        ],
    )

    code, out, err = nudge(capsys, "--events", events)

    assert code == 1
    assert err.splitlines() == [
        f"{events}:2: bad event: an event must be a JSON object, not list",
        "1 bad event line(s) skipped",
    ]
    assert table_rows(out)[1] == [
        "2026-11-21T11:05:00Z", "2026-11-21T11:07:00Z", "cart_abandonment", "0", "c-77", "-", "email", "2"
    ]  # fmt: skip
    assert out.splitlines()[-1] == "2 events read, 2 used by rules, 1 firings sent, 1 waits came due"


def test_a_line_that_is_not_utf8_is_a_bad_line_not_a_crash(capsys, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        envelope("ok-1", "add_to_cart", "2026-11-21T10:00:00Z").encode()
        + b"\n"
        + b'{"event_id": "bad-\xff", "customer_id": "c-77"}\n'
        + envelope("ok-2", "checkout_viewed", "2026-11-21T10:05:00Z").encode()
        + b"\n"
    )

    code, out, err = nudge(capsys, "--events", events, "--json")

    assert code == 1
    assert err.splitlines()[0].startswith(f"{events}:2: bad event: not UTF-8")
    assert [json.loads(line)["fired_at"] for line in out.splitlines()] == ["2026-11-21T11:05:00Z"]


def test_a_misspelt_envelope_key_is_a_bad_line_naming_the_key_and_the_field(capsys, tmp_path):
    """``propertis`` used to be dropped: the add counted without its sku and failed later, at send time."""
    typo = json.loads(envelope("bad-2", "add_to_cart", "2026-11-21T10:01:00Z", sku="SKU-1"))
    typo["propertis"] = typo.pop("properties")
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            envelope("ok-1", "add_to_cart", "2026-11-21T10:00:00Z"),
            json.dumps(typo),
            envelope("ok-2", "checkout_viewed", "2026-11-21T10:05:00Z"),
        ],
    )

    code, out, err = nudge(capsys, "--events", events, "--json")

    assert code == 1
    assert err.splitlines() == [
        f"{events}:2: bad event: propertis: unknown field; did you mean properties?",
        "1 bad event line(s) skipped",
    ]
    assert [json.loads(line)["events"][0]["event_id"] for line in out.splitlines()] == ["ok-1"]


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_timestamps_out_of_range_are_bad_lines_and_the_replay_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, as_json: bool
) -> None:
    """Year 9999 used to stop the replay with a ValueError while formatting a wait's due time."""
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            envelope("ok-1", "add_to_cart", "2026-11-21T10:00:00Z"),
            envelope("far-1", "add_to_cart", "9999-12-31T23:59:59Z", customer="c-far"),
            envelope("far-2", "checkout_viewed", "9999-12-31T23:59:59Z", customer="c-far"),
            envelope("early", "add_to_cart", "0001-01-01T00:00:00Z"),
            envelope("ok-2", "checkout_viewed", "2026-11-21T10:05:00Z"),
        ],
    )

    code, out, err = nudge(capsys, "--events", events, *(["--json"] if as_json else []))

    assert code == 1
    messages = err.splitlines()
    assert [m.split(": bad event: ")[0] for m in messages[:3]] == [f"{events}:{n}" for n in (2, 3, 4)]
    assert all("timestamp must be from 1970-01-01T00:00:00Z to before 9000-01-01T00:00:00Z" in m for m in messages[:3])
    assert messages[3:] == ["3 bad event line(s) skipped"]
    if as_json:
        assert [json.loads(line)["fired_at"] for line in out.splitlines()] == ["2026-11-21T11:05:00Z"]
    else:
        assert table_rows(out)[1][:5] == [
            "2026-11-21T11:05:00Z",
            "2026-11-21T11:07:00Z",
            "cart_abandonment",
            "0",
            "c-77",
        ]


def test_an_event_from_the_future_is_a_bad_line_and_its_customer_still_fires(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A history has no arrival times: replay judges each event against the present (``--now``)."""
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            envelope("from-2036", "add_to_cart", "2036-01-01T09:58:00Z", sku="SKU-9"),
            envelope("ok-1", "add_to_cart", "2026-11-21T10:00:00Z", sku="SKU-1"),
            envelope("ok-2", "checkout_viewed", "2026-11-21T10:05:00Z"),
        ],
    )

    code, out, err = nudge(capsys, "--events", events, "--json", "--now", "2026-11-21T10:05:00Z")

    assert code == 1
    assert err.splitlines() == [
        f"{events}:1: bad event: from the future: timestamp 2036-01-01T09:58:00Z is 3327d 23h ahead of the "
        "clock (2026-11-21T10:05:00Z); max_future_skew is 1h (policy.yaml)",
        "1 bad event line(s) skipped",
    ]
    assert [json.loads(line)["fired_at"] for line in out.splitlines()] == ["2026-11-21T11:05:00Z"]
    # By default the present is the wall clock: the same line is refused today too.
    code, _, err = nudge(capsys, "--events", events, "--json")
    assert code == 1 and "bad event: from the future" in err


def test_events_within_max_future_skew_of_now_are_replayed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = write_lines(tmp_path / "events.jsonl", [envelope("ok-1", "add_to_cart", "2026-11-21T11:00:00Z")])
    code, _, err = nudge(capsys, "--events", events, "--now", "2026-11-21T10:00:00Z")
    assert (code, err) == (0, "")
    code, _, err = nudge(capsys, "--events", events, "--now", "2026-11-21T09:59:59Z")
    assert code == 1 and "is 1h 0m ahead" in err
    code, _, err = nudge(capsys, "--events", events, "--now", "yesterday")
    assert code == 2 and err.startswith("--now: ")


def test_a_wait_that_comes_due_after_year_9999_still_prints(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES / "templates", rules / "templates")
    (rules / "far.yaml").write_text("id: far\nwhen: {event: ping}\nwait: 60000w\naction: {channel: event}\n")
    events = write_lines(
        tmp_path / "events.jsonl",
        [json.dumps({"event_id": "p", "customer_id": "c-1", "event": "ping", "timestamp": "8999-12-31T23:59:59Z"})],
    )

    now = ("--now", "8999-12-31T23:59:59Z")  # or the event is from the future
    code, out, err = nudge(capsys, "--events", events, "--json", *now, rules=rules)
    assert (code, err) == (0, "")
    assert [json.loads(line)["fired_at"] for line in out.splitlines()] == ["+10149-12-02T23:59:59Z"]
    code, out, err = nudge(capsys, "--events", events, *now, rules=rules)
    assert (code, err) == (0, "")
    assert table_rows(out)[1][0] == "+10149-12-02T23:59:59Z"


# -- --until --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("until", "fired"),
    [
        ("2026-11-21T15:32:59Z", ["2026-11-21T11:12:00Z"]),
        ("2026-11-21T15:33:00Z", ["2026-11-21T11:12:00Z", "2026-11-21T15:33:00Z"]),  # due at --until: fires
        ("2026-11-21T16:33:00+01:00", ["2026-11-21T11:12:00Z", "2026-11-21T15:33:00Z"]),  # any offset
        ("2026-11-30T00:00:00Z", ["2026-11-21T11:12:00Z", "2026-11-21T15:33:00Z"]),
    ],
)
def test_until_stops_waits_due_after_it(capsys, tmp_path, until, fired):
    # The cart scenario up to 15:02: Maya's wait (due 11:12) comes due while the file is read, Tom's (due
    # 15:33) is still pending at the end of the input.
    lines = CART_FIRES.read_text(encoding="utf-8").splitlines()[:15]
    assert json.loads(lines[-1])["timestamp"] == "2026-11-21T15:02:00Z"
    events = write_lines(tmp_path / "events.jsonl", lines)

    code, out, err = nudge(capsys, "--events", events, "--json", "--until", until)

    assert (code, err) == (0, "")
    assert [json.loads(line)["fired_at"] for line in out.splitlines()] == fired


def test_until_before_the_end_of_the_file_prints_no_firing_after_it(capsys):
    # The file goes on until 16:10, so without care its later events would carry the clock past --until.
    code, out, err = nudge(capsys, "--events", CART_FIRES, "--json", "--until", "2026-11-21T15:00:00Z")

    assert code == 0
    assert [json.loads(line)["fired_at"] for line in out.splitlines()] == ["2026-11-21T11:12:00Z"]
    assert err == "2 event(s) after --until 2026-11-21T15:00:00Z not replayed\n"


def test_until_without_offset_is_rejected(capsys):
    code, out, err = nudge(capsys, "--events", CART_FIRES, "--until", "2026-11-21T15:00:00")

    assert code == 2
    assert out == ""
    assert err.startswith("--until: ") and "UTC offset" in err


# -- rule errors ----------------------------------------------------------------------------------------------------


def test_missing_rules_folder_exits_2(capsys, tmp_path):
    missing = tmp_path / "no-such-rules"

    code, out, err = nudge(capsys, "--events", CART_FIRES, rules=missing)

    assert code == 2
    assert out == ""
    assert err == f"{missing}: no such rules folder or file\n"


def test_invalid_rule_exits_2_with_file_and_line(capsys, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "cart.yaml").write_text(
        "id: cart\nwhen:\n  event: add_to_cart\nwait: 1 hour\naction: {channel: email}\n", encoding="utf-8"
    )

    code, out, err = nudge(capsys, "--events", CART_FIRES, rules=rules)

    assert code == 2
    assert out == ""
    assert err.splitlines()[0] == "invalid rules:"
    assert err.splitlines()[1].startswith(f"{rules / 'cart.yaml'}:4: wait: bad duration '1 hour'")


def test_unknown_key_in_a_when_filter_is_reported_on_its_own_line(capsys, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "cart.yaml").write_text(
        "id: cart\nwhen:\n  event: add_to_cart\n  withn: 1h\naction: {channel: email}\n", encoding="utf-8"
    )

    code, _, err = nudge(capsys, "--events", CART_FIRES, rules=rules)

    assert code == 2
    assert err.splitlines()[1].startswith(f"{rules / 'cart.yaml'}:")
    assert "unknown key 'withn'" in err.splitlines()[1]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("id: cart\nwhen:\n  event: add_to_cart\n  withn: 1h\naction: {channel: email}\n", 4),
        (
            "id: cart\nwhen:\n  sequence:\n    - event: add_to_cart\n    - event: checkout_viewed\n"
            "  withn: 1h\naction: {channel: email}\n",
            6,
        ),
    ],
    ids=["event-filter", "sequence"],
)
def test_unknown_key_beside_a_tag_named_like_a_key_is_located_on_its_line(tmp_path, text, line):
    path = tmp_path / "cart.yaml"
    path.write_text(text, encoding="utf-8")

    (diagnostic,) = load_rules(path).errors

    assert (diagnostic.line, diagnostic.where) == (line, "when")


def test_load_rules_reports_a_missing_path_as_a_diagnostic(tmp_path):
    missing = tmp_path / "no-such-rules"

    result = load_rules(missing)

    assert not result.ok
    assert result.errors[0].file == str(missing)


# -- memory ---------------------------------------------------------------------------------------------------------


def test_replay_keeps_state_only_for_customers_with_something_to_remember():
    plan = compile_rules(load_rules_or_raise(RULES))
    replayer = Replayer(plan)
    noise = []
    for n in range(500):
        customer = f"c-noise-{n}"
        stamp = f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
        # Events no rule reads: unknown names, pages outside the services section, an identify without traits.
        noise.append(("remove_from_cart", customer, stamp, {"sku": "SKU-1", "name": "Tea Towel", "price": 9.0}))
        noise.append(("page_viewed", customer, stamp, {"section": "blog", "path": "/blog/tea"}))
        noise.append(("identify", customer, stamp, {}))
    for index, (name, customer, stamp, props) in enumerate(noise):
        replayer.feed(
            parse_event(
                {
                    "event_id": f"n-{index}",
                    "customer_id": customer,
                    "event": name,
                    "timestamp": stamp,
                    "properties": props,
                }
            )
        )
    remembered = [
        {"event_id": "r-1", "customer_id": "c-shopper", "event": "add_to_cart", "timestamp": "2026-11-29T10:00:00Z"},
        {
            "event_id": "r-2",
            "customer_id": "c-shopper",
            "event": "checkout_viewed",
            "timestamp": "2026-11-29T10:05:00Z",
        },
        {
            "event_id": "r-3",
            "customer_id": "c-known",
            "event": "identify",
            "timestamp": "2026-11-29T10:06:00Z",
            "traits": {"email": "known@example.com"},
        },
    ]
    for item in remembered:
        replayer.feed(parse_event(item))

    assert replayer.stats.events == 1503
    assert replayer.stats.accepted == 2
    assert set(replayer.states) == {"c-shopper", "c-known"}
    assert replayer.pending_timers() == 1

    firings = replayer.finish()

    assert [(f.customer_id, f.rule) for f in firings] == [("c-shopper", "cart_abandonment")]
    assert set(replayer.states) == {"c-shopper", "c-known"}  # the cooldown and profile are still remembered
    assert replayer.pending_timers() == 0


def test_the_summary_counts_events_later_than_the_allowed_lateness(tmp_path: Path, capsys):
    """A checkout view 10 minutes behind the clock is late; one 1 minute behind is within the 2 minutes."""
    events = write_lines(
        tmp_path / "late.jsonl",
        [
            envelope("a1", "add_to_cart", "2026-11-22T10:00:00Z", sku="S1"),
            envelope("p1", "page_viewed", "2026-11-22T10:30:00Z", section="services"),
            envelope("c1", "checkout_viewed", "2026-11-22T10:29:00Z"),
            envelope("c2", "checkout_viewed", "2026-11-22T10:20:00Z"),
        ],
    )
    code, out, _ = nudge(capsys, "--events", events)
    assert code == 0
    assert (
        out.splitlines()[-1]
        == "1 late: more than 2m behind the latest event when read, used only where their windows still held them"
    )


def test_replay_reads_the_policy_beside_the_rules(capsys, tmp_path):
    """With allowed_lateness 10m, a purchase stamped in the wait and arriving 8 min after its due time still counts."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy("rules/cart_abandonment.yaml", rules)
    shutil.copytree("rules/templates", rules / "templates")
    lines = [
        '{"event_id":"a","customer_id":"c","event":"add_to_cart","timestamp":"2026-11-22T10:00:00Z","properties":{"sku":"S"}}',
        '{"event_id":"b","customer_id":"c","event":"checkout_viewed","timestamp":"2026-11-22T10:05:00Z"}',
        '{"event_id":"c","customer_id":"c","event":"page_viewed","timestamp":"2026-11-22T11:13:00Z"}',
        '{"event_id":"d","customer_id":"c","event":"purchase","timestamp":"2026-11-22T11:04:00Z"}',
    ]
    events = write_lines(tmp_path / "events.jsonl", lines)
    code, out, _ = nudge(capsys, "--events", events, "--json", rules=rules)
    assert (code, [json.loads(line)["rule"] for line in out.splitlines()]) == (0, ["cart_abandonment"])
    (rules / "policy.yaml").write_text("allowed_lateness: 10m\n")
    code, out, _ = nudge(capsys, "--events", events, "--json", rules=rules)
    assert (code, out) == (0, "")


def broken_template_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree("rules", rules)
    template = rules / "templates" / "email" / "yoga_bundle.yaml"
    template.write_text(template.read_text().replace("{{ first_name }},", "{{ first_name ,", 1))
    return rules


def test_replay_refuses_a_folder_whose_templates_fail_validation_as_validate_reports_them(tmp_path, capsys):  # type: ignore[no-untyped-def]
    code, out, err = nudge(capsys, "--events", CART_FIRES, rules=broken_template_rules(tmp_path))
    assert code == 2 and out == ""
    assert "yoga_bundle.yaml:4:" in err and "Traceback" not in err
    assert "1 template error(s)" in err


def test_nudge_local_refuses_the_same_folder_with_the_same_message_and_no_traceback(tmp_path, capsys):  # type: ignore[no-untyped-def]
    code = main(["local", "--rules", str(broken_template_rules(tmp_path)), "--events", str(CART_FIRES)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "yoga_bundle.yaml:4:" in err and "1 template error(s)" in err and "Traceback" not in err


# -- lines no rule reads ----------------------------------------------------------------------------------------------


def test_a_line_no_rule_reads_moves_the_clock_and_is_checked_no_further_as_the_stream_mapping_drops_it(
    capsys, tmp_path
):
    """Replay reads such a line for its time only: a missing customer is not reported (the deployed
    mapping would drop the record unread), a timestamp it cannot read still is (it would move the clock)."""
    no_customer = json.loads(envelope("u-1", "newsletter_viewed", "2026-11-21T12:00:00Z"))
    del no_customer["customer_id"]
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            envelope("ok-1", "add_to_cart", "2026-11-21T10:00:00Z", sku="SKU-1", name="Linen Apron", price=32.0),
            envelope("ok-2", "checkout_viewed", "2026-11-21T10:05:00Z"),
            json.dumps(no_customer),
            envelope("u-2", "newsletter_viewed", "2026-11-21T12:01:00", customer="c-78"),
            envelope("late", "purchase", "2026-11-21T10:30:00Z", sku="SKU-1", name="Linen Apron", price=32.0),
        ],
    )

    code, out, err = nudge(capsys, "--events", events, "--json")

    assert code == 1
    messages = err.splitlines()
    assert len(messages) == 2
    assert messages[0].startswith(f"{events}:4: bad event: timestamp:")
    assert "UTC offset" in messages[0]
    assert messages[1] == "1 bad event line(s) skipped"
    # The unread line at 12:00 moved the clock past the reminder's decision time (11:07), so it was
    # decided before the purchase stamped 10:30 came: that purchase is later than the lateness.
    firings = [json.loads(line) for line in out.splitlines()]
    assert [(f["rule"], f["fired_at"]) for f in firings] == [("cart_abandonment", "2026-11-21T11:05:00Z")]


def test_replay_reading_only_the_time_of_unread_lines_fires_as_parsing_every_line(tmp_path):
    """The whole bench workload (late events, duplicates, every kind of event), both ways."""
    from nudge.bench.workload import WorkloadSpec, generate, record_bytes
    from nudge.cli.replay_command import read_lines
    from nudge.evaluator.source_filters import passing_names

    events = generate(WorkloadSpec(events=20_000, customers=1_500, days=2)).events
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(record_bytes(event) + b"\n" for event in events))
    plan = compile_rules(load_rules_or_raise(RULES))

    parsed = Replayer(plan)
    every = [f for event in events for f in parsed.feed(event)] + parsed.finish()
    peeked = Replayer(plan)
    fired = []
    with path.open("rb") as lines:
        for _, read in read_lines(lines, str(path), _Errors(), [0], None, passing_names(plan)):
            fired += peeked.feed(read) if not isinstance(read, int) else peeked.tick(read)
    fired += peeked.finish()
    assert fired == every
    assert peeked.stats == parsed.stats
    assert sum(1 for f in every) > 20  # the workload fires: the comparison is not of two empty lists


class _Errors:
    def write(self, text: str) -> int:
        raise AssertionError(f"no line of the workload is bad: {text}")
