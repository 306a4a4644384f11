"""Message templates: the shipped ones render for their rules, load-time checks point at file:line, rendering is
strict and sandboxed, ``nudge validate`` checks templates, and ``nudge preview`` shows what a firing would send."""

from __future__ import annotations

import html
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nudge.cli.main import main
from nudge.cli.preview_command import sms_segments
from nudge.contracts import FiringMessage, parse_event
from nudge.delivery.context import template_context
from nudge.delivery.templates import (
    SMS_MAX_CHARS,
    MessageTemplate,
    RenderError,
    TemplateSet,
    check_rule_templates,
    load_templates,
)
from nudge.delivery.unsubscribe import unsubscribe_url
from nudge.delivery.validation import validate_all
from nudge.engine import compile_rules, load_rules, replay

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
TEMPLATES = RULES / "templates"
SCENARIOS = ROOT / "examples" / "scenarios"
ANA = ROOT / "examples" / "customers" / "ana.json"
SITE = "https://shop.example.com"
UNSUBSCRIBE_BASE = "https://links.example.com/unsubscribe"

LOADED = load_rules(RULES)
SHIPPED = load_templates(TEMPLATES)
RULE_BY_TEMPLATE = {(r.action.channel, r.action.template): r for r in LOADED.rules if r.action.template}


def link(firing: FiringMessage) -> str:
    return unsubscribe_url(UNSUBSCRIBE_BASE, b"test-secret", firing.customer_id, firing.channel)


def render(template: MessageTemplate, firing: FiringMessage) -> Any:
    return template.render(template_context(firing, site_url=SITE, unsubscribe_url=link(firing)))


def make_firing(
    *,
    channel: str = "email",
    template: str = "cart_reminder",
    profile: dict[str, Any] | None = None,
    events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    key: str | None = None,
) -> FiringMessage:
    return FiringMessage.model_validate(
        {
            "firing_id": "f" * 32,
            "rule": "cart_abandonment",
            "customer_id": "c-1",
            "key": key,
            "fired_at": "2026-11-22T11:05:00Z",
            "armed_at": "2026-11-22T10:05:00Z",
            "channel": channel,
            "template": template,
            "events": [
                {"event": name, "event_id": f"e{i}", "timestamp": "2026-11-22T10:00:00Z", "properties": props}
                for i, (name, props) in enumerate(events)
            ],
            "profile": profile if profile is not None else {"first_name": "Ana", "email": "ana@example.com"},
        }
    )


def scenario_firing(rule_id: str) -> FiringMessage:
    """The first firing of the rule's example scenario: real events, real traits."""
    lines = (SCENARIOS / f"{rule_id}.fires.jsonl").read_text(encoding="utf-8").splitlines()
    rule = next(r for r in LOADED.rules if r.id == rule_id)
    first = next(iter(replay(compile_rules([rule]), [parse_event(line) for line in lines if line.strip()])))
    return FiringMessage.model_validate(first.to_json(with_profile=True))


def template_dir(tmp_path: Path, channel: str, name: str, text: str) -> Path:
    """A templates folder holding one template file; returns the file."""
    path = tmp_path / "templates" / channel / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def one(tmp_path: Path, channel: str, text: str, name: str = "t") -> tuple[MessageTemplate, TemplateSet]:
    template_dir(tmp_path, channel, name, text)
    loaded = load_templates(tmp_path / "templates")
    template = loaded.get(channel, name)
    assert template is not None, loaded.diagnostics
    return template, loaded


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# -- the shipped templates -----------------------------------------------------------------------------------------


def test_shipped_rules_and_templates_validate_clean():
    assert SHIPPED.diagnostics == []
    assert validate_all(RULES) == []
    assert check_rule_templates(LOADED.rules, SHIPPED, LOADED.sources) == []


def test_every_shipped_template_belongs_to_a_rule_on_some_channel():
    """Channel variants (the cart reminder as SMS or push) share the name of a rule's template."""
    names = {name for _, name in RULE_BY_TEMPLATE}
    assert {name for _, name in SHIPPED.templates} <= names


@pytest.mark.parametrize("channel_name", sorted(RULE_BY_TEMPLATE), ids=lambda c: f"{c[0]}/{c[1]}")
def test_every_shipped_template_renders_for_its_rule(channel_name):
    channel, _ = channel_name
    rule = RULE_BY_TEMPLATE[channel_name]
    firing = scenario_firing(rule.id)
    rendered = render(SHIPPED.templates[channel_name], firing)

    first_name = firing.profile["first_name"]
    if channel == "email":
        assert rendered.subject and "\n" not in rendered.subject
        assert first_name in rendered.subject
        assert rendered.text.startswith(f"Hi {first_name},")
        assert rendered.html.startswith("<!doctype html>")
        assert link(firing) in rendered.text
        assert html.escape(link(firing)) in rendered.html
    elif channel == "sms":
        assert rendered.text.startswith(f"{first_name}, you've been on a roll")
        assert sms_segments(rendered.text)[1:] == ("GSM-7", 1)
    elif channel == "push":
        assert rendered.title and rendered.text
        assert rendered.data == {"sku": firing.key, "url": f"{SITE}/products/{firing.key}"}
    elif channel == "webhook":
        assert rendered.data["lead_email"] == firing.profile["email"]
        assert rendered.data["lead_name"] == first_name
        assert rendered.data["signal"] == "whitepaper + 3 service page visits"
    for value in (rendered.subject, rendered.text, rendered.html, rendered.title, *rendered.data.values()):
        assert value is None or ("None" not in value and "Undefined" not in value)


def test_cart_reminder_greets_by_first_name_and_lists_every_cart_line_in_text_and_html():
    firing = make_firing(
        events=[
            ("add_to_cart", {"sku": "SKU-MAT", "name": "Cork Yoga Mat", "price": 29.9, "quantity": 1}),
            ("checkout_viewed", {}),
            ("add_to_cart", {"sku": "SKU-SOCKS", "name": "Merino Socks", "price": 1234.5, "quantity": 2}),
        ]
    )
    rendered = render(SHIPPED.get("email", "cart_reminder"), firing)  # type: ignore[union-attr]

    assert rendered.subject == "Ana, your cart is waiting for you"
    assert rendered.text.startswith("Hi Ana,")
    assert "You left 2 items in your cart:" in rendered.text
    assert "- Cork Yoga Mat: €29.90\n" in rendered.text
    assert "- Merino Socks: €1,234.50 x 2\n" in rendered.text
    assert f"{SITE}/cart" in rendered.text
    assert rendered.text.endswith(f"Unsubscribe: {link(firing)}")

    assert "<p>Hi Ana,</p>" in rendered.html
    for name, price in (("Cork Yoga Mat", "€29.90"), ("Merino Socks &times; 2", "€1,234.50")):
        assert f">{name}</td>" in rendered.html
        assert f">{price}</td>" in rendered.html
    assert f'href="{SITE}/cart"' in rendered.html
    assert f'<a href="{html.escape(link(firing))}">Unsubscribe</a>' in rendered.html
    assert "&amp;ch=email&amp;t=" in rendered.html  # the link's query, escaped for an attribute


def test_cart_lines_are_one_per_sku_with_the_latest_add():
    firing = make_firing(
        events=[
            ("add_to_cart", {"sku": "A", "name": "Mat", "price": 20.0}),
            ("add_to_cart", {"sku": "A", "name": "Mat", "price": 29.9, "quantity": 3}),
        ]
    )
    rendered = render(SHIPPED.get("email", "cart_reminder"), firing)  # type: ignore[union-attr]
    assert "You left 1 item in your cart:" in rendered.text
    assert "- Mat: €29.90 x 3" in rendered.text
    assert "€20.00" not in rendered.text


def test_html_escapes_a_product_name_that_holds_markup():
    firing = make_firing(events=[("add_to_cart", {"sku": "X", "name": "Mat <script>alert(1)</script>", "price": 9.5})])
    rendered = render(SHIPPED.get("email", "cart_reminder"), firing)  # type: ignore[union-attr]

    assert "<script>" not in rendered.html
    assert "Mat &lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "- Mat <script>alert(1)</script>: €9.50" in rendered.text  # the text part is plain text


def test_a_missing_trait_with_a_default_renders_the_default():
    firing = make_firing(profile={"email": "ana@example.com"}, events=[("add_to_cart", {"sku": "A", "price": 5})])
    rendered = render(SHIPPED.get("email", "cart_reminder"), firing)  # type: ignore[union-attr]

    assert rendered.subject == "there, your cart is waiting for you"
    assert rendered.text.startswith("Hi there,")
    assert "- A: €5.00" in rendered.text  # no name: the sku stands in


def test_a_trait_wins_over_the_default_and_nudge_wins_over_a_trait():
    firing = make_firing(profile={"first_name": "Rui", "cart_url": "https://evil.example"})
    rendered = render(SHIPPED.get("email", "cart_reminder"), firing)  # type: ignore[union-attr]
    assert rendered.subject.startswith("Rui,")
    assert f"{SITE}/cart" in rendered.text
    assert "evil" not in rendered.text


# -- load-time checks ------------------------------------------------------------------------------------------------


def test_a_variable_neither_in_the_context_nor_in_defaults_is_reported_at_its_line(tmp_path):
    path = template_dir(
        tmp_path,
        "email",
        "colours",
        """
        defaults:
          first_name: there
        subject: "Hi {{ first_name }}"
        text: |
          Hello {{ first_name }},

          Your colour: {{ colour }}
        html: "<p>{{ first_name }}</p>"
        """,
    )
    loaded = load_templates(tmp_path / "templates")

    assert [(d.file, d.line) for d in loaded.diagnostics] == [(str(path), 7)]
    assert "text uses `colour`" in loaded.diagnostics[0].message
    assert "give it a default" in loaded.diagnostics[0].message
    assert str(loaded.diagnostics[0]).startswith(f"{path}:7: ")


def test_a_top_level_trait_without_a_default_is_reported(tmp_path):
    _, loaded = one(tmp_path, "sms", 'text: "Hi {{ first_name }}"\n')
    [problem] = loaded.diagnostics
    assert problem.line == 1
    assert "`first_name`" in problem.message


@pytest.mark.parametrize(
    ("html_part", "line", "message"),
    [
        ("  <p>one</p>\n  <p>two</p>\n  <p>{{ item.name }</p>\n", 9, "unexpected '}'"),
        ("  <p>one</p>\n  {% for item in cart %}\n  <p>{{ item.name }}</p>\n", 9, "endfor"),
        ("  <p>one</p>\n  <p>{{ 2 | moneyy }}</p>\n", 8, "No filter named 'moneyy'"),
    ],
    ids=["unclosed-expression", "unclosed-block", "unknown-filter"],
)
def test_a_jinja_error_is_reported_at_its_line_in_the_yaml_file(tmp_path, html_part, line, message):
    text = (
        "description: broken on purpose\n"  # 1
        "defaults:\n"  # 2
        "  first_name: there\n"  # 3
        'subject: "Hi {{ first_name }}"\n'  # 4
        "text: Hi\n"  # 5
        "html: |\n" + html_part  # 6, the block's first line is 7
    )
    path = template_dir(tmp_path, "email", "broken", text)
    loaded = load_templates(tmp_path / "templates")

    [problem] = loaded.diagnostics
    assert (problem.file, problem.line) == (str(path), line), problem
    assert problem.message.startswith("html: ")
    assert message in problem.message


def test_a_syntax_error_in_a_one_line_part_is_reported_at_that_line(tmp_path):
    path = template_dir(tmp_path, "push", "p", 'title: "ok"\nbody: "{% if key %}no end"\n')
    [problem] = load_templates(tmp_path / "templates").diagnostics
    assert (problem.file, problem.line) == (str(path), 2)
    assert problem.message.startswith("body: ")


def test_a_template_missing_a_required_part_or_with_an_unknown_key_is_reported(tmp_path):
    template_dir(tmp_path, "email", "half", 'subject: "Hi"\ntext: Hi\n')
    template_dir(tmp_path, "sms", "typo", 'txt: "Hi"\n')
    messages = [d.message for d in load_templates(tmp_path / "templates").diagnostics]
    assert any("needs `html`" in m for m in messages)
    assert any("unknown key 'txt'" in m for m in messages)


# -- rendering is strict and sandboxed -------------------------------------------------------------------------------


def test_a_missing_value_without_a_default_fails_the_render_naming_template_and_part(tmp_path):
    template, loaded = one(
        tmp_path,
        "email",
        """
        subject: "Your cart"
        text: |
          {% for item in cart %}
          - {{ item.name }} in {{ item.colour }}
          {% endfor %}
        html: "<p>cart</p>"
        """,
    )
    assert loaded.diagnostics == []  # an attribute of a cart line cannot be checked before a firing
    firing = make_firing(events=[("add_to_cart", {"sku": "A", "name": "Mat"})])

    with pytest.raises(RenderError) as caught:
        render(template, firing)
    assert str(caught.value).startswith("email template t, text: ")
    assert "colour" in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "''.__class__.__mro__[1].__subclasses__()",
        "cart.__class__",
        "firing.items.__self__.__class__",
        "lipsum.__globals__.os",
        "cycler.__init__.__globals__",
    ],
)
def test_the_sandbox_refuses_reaching_into_python(tmp_path, expression):
    template, loaded = one(tmp_path, "sms", f'text: "{{{{ {expression} }}}}"\n')
    assert loaded.diagnostics == []
    with pytest.raises(RenderError) as caught:
        render(template, make_firing(channel="sms", template="t"))
    assert str(caught.value).startswith("sms template t, text: ")


def test_a_subject_is_one_line_whatever_the_data(tmp_path):
    template, _ = one(
        tmp_path,
        "email",
        """
        defaults: {first_name: there}
        subject: "{{ first_name }}, hello"
        text: Hi
        html: <p>Hi</p>
        """,
    )
    rendered = render(template, make_firing(profile={"first_name": "Ana\r\nBcc: all@example.com"}))
    assert rendered.subject == "Ana Bcc: all@example.com, hello"


def test_a_long_sms_is_cut_to_three_gsm_segments(tmp_path):
    template, _ = one(tmp_path, "sms", "text: \"{{ 'word ' * 200 }}\"\n")
    rendered = render(template, make_firing(channel="sms", template="t"))
    assert len(rendered.text) == SMS_MAX_CHARS
    assert rendered.text.endswith("...")
    assert sms_segments(rendered.text) == (SMS_MAX_CHARS, "GSM-7", 3)


def test_sms_segments_count_gsm_extension_characters_twice_and_fall_back_to_ucs2():
    assert sms_segments("a" * 160) == (160, "GSM-7", 1)
    assert sms_segments("a" * 161) == (161, "GSM-7", 2)
    assert sms_segments("€" * 80) == (160, "GSM-7", 1)
    assert sms_segments("ã" * 70) == (70, "UCS-2", 1)
    assert sms_segments("ã" * 71) == (71, "UCS-2", 2)


# -- nudge validate ----------------------------------------------------------------------------------------------------


def rules_folder(tmp_path: Path, *rule_files: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for name in rule_files:
        shutil.copy(RULES / name, folder / name)
    return folder


def test_validate_reports_a_template_variable_with_file_line_and_exits_1(tmp_path, capsys):
    folder = rules_folder(tmp_path, "purchase_frequency_rising.yaml")
    path = template_dir(folder, "sms", "loyalty_perk", 'text: "Hi {{ nickname }}, {{ site_url }}/perks"\n')

    code, out, err = cli(capsys, "validate", folder)

    assert code == 1
    assert out == ""
    assert f"{path}:1: text uses `nickname`" in err
    assert err.rstrip().endswith("1 error(s), 0 warning(s)")


def test_validate_fails_a_rule_whose_template_file_is_missing_with_the_rule_files_path(tmp_path, capsys):
    folder = rules_folder(tmp_path, "cart_abandonment.yaml", "purchase_frequency_rising.yaml")
    shutil.copytree(TEMPLATES / "sms", folder / "templates" / "sms")
    rule_file = folder / "cart_abandonment.yaml"
    template_line = rule_file.read_text().splitlines().index("  template: cart_reminder") + 1

    code, _, err = cli(capsys, "validate", folder)

    assert code == 1
    expected = folder / "templates" / "email" / "cart_reminder.yaml"
    where = f"{rule_file}:{template_line}: action.template:"
    assert f"{where} no email template 'cart_reminder': expected {expected}" in err
    assert [d.file for d in validate_all(folder)] == [str(rule_file)]


def test_validate_checks_the_templates_beside_a_single_rule_file(tmp_path, capsys):
    folder = rules_folder(tmp_path, "cart_abandonment.yaml")
    code, _, err = cli(capsys, "validate", folder / "cart_abandonment.yaml")
    assert code == 1
    assert "no email template 'cart_reminder'" in err


def test_validate_shipped_rules_keeps_its_output(capsys):
    code, out, err = cli(capsys, "validate", RULES)
    assert (code, out, err) == (0, "7 rule(s) valid (7 enabled)\n", "")


# -- nudge preview ----------------------------------------------------------------------------------------------------


def customer_file(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "customer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_preview_email_for_ana(capsys):
    code, out, err = cli(capsys, "preview", "cart_abandonment", "--customer", ANA, "--rules", RULES)

    assert code == 0, err
    # Ana's sample has no checkout_viewed: the preview renders, and says the rule would not fire.
    assert err == (
        "note: cart_abandonment would not fire for this customer: its `when` was never met by these events: "
        "it needs checkout_viewed event(s), and there are none (the events: add_to_cart x2)\n"
    )
    lines = out.splitlines()
    assert lines[0] == "Rule cart_abandonment: email message (template cart_reminder) for customer c-ana"
    assert lines[1] == "To: ana.sousa@example.com"
    assert lines[2] == "Subject: Ana, your cart is waiting for you"
    text = out[out.index("--- text part ---") : out.index("--- html part ---")]
    page = out[out.index("--- html part ---") :]
    for part in (text, page):
        assert "Cork Yoga Mat 5 mm" in part
        assert "€29.90" in part
        assert "Merino Running Socks" in part
        assert "€12.50" in part
        assert f"{SITE}/cart" in part
    assert f"Unsubscribe: {SITE}/unsubscribe/?c=c-ana&ch=email&t=" in text
    assert f'<a href="{SITE}/unsubscribe/?c=c-ana&amp;ch=email&amp;t=' in page


def test_preview_email_parts_and_json(capsys):
    code, out, _ = cli(capsys, "preview", "cart_abandonment", "--customer", ANA, "--html-only")
    assert code == 0
    assert out.startswith("<!doctype html>")
    assert "Subject:" not in out

    code, out, _ = cli(capsys, "preview", "cart_abandonment", "--customer", ANA, "--text-only")
    assert code == 0
    assert "Subject: Ana, your cart is waiting for you" in out
    assert "--- html part ---" not in out

    code, out, _ = cli(
        capsys, "preview", "cart_abandonment", "--customer", ANA, "--json", "--site-url", "https://shop.example.pt"
    )
    assert code == 0
    result = json.loads(out)
    assert (result["rule"], result["channel"], result["template"]) == ("cart_abandonment", "email", "cart_reminder")
    assert result["recipient"] == "ana.sousa@example.com"
    assert result["message"]["subject"] == "Ana, your cart is waiting for you"
    assert "https://shop.example.pt/cart" in result["message"]["text"]
    assert result["unsubscribe_url"].startswith("https://shop.example.pt/unsubscribe/?c=c-ana&ch=email&t=")
    assert [e["properties"]["sku"] for e in result["firing"]["events"]] == ["SKU-YOGA-MAT", "SKU-RUN-SOCKS"]
    assert result["firing"]["armed_at"] == "2026-11-21T10:07:00Z"  # the last event
    assert result["firing"]["fired_at"] == "2026-11-21T11:07:00Z"  # after the rule's 1 h wait


def test_preview_sms(capsys):
    code, out, err = cli(capsys, "preview", "purchase_frequency_rising", "--customer", ANA)

    assert code == 0
    assert "2 add_to_cart event(s) left out" in err  # the trend rule does not use them
    lines = out.splitlines()
    assert lines[0] == "Rule purchase_frequency_rising: sms message (template loyalty_perk) for customer c-ana"
    assert lines[1] == "To: +351912000111"
    message = lines[3]
    assert message.startswith("Ana, you've been on a roll this month")
    assert message.endswith("Reply STOP to opt out.")
    assert f"{SITE}/perks" in message
    assert lines[-1] == f"{len(message)} characters, GSM-7, 1 segment"


def test_preview_push_from_the_customer_files_events(tmp_path, capsys):
    customer = customer_file(
        tmp_path,
        {
            "customer_id": "c-9",
            "traits": {"push_tokens": [{"token": "tok-1", "platform": "android"}]},
            "events": [
                {
                    "event": "product_viewed",
                    "timestamp": f"2026-11-20T1{i}:00:00Z",
                    "properties": {"sku": "SKU-THROW", "name": "Wool Throw", "price": 89, "colour": "grey"},
                }
                for i in range(3)
            ],
        },
    )
    code, out, err = cli(capsys, "preview", "repeated_product_views", "--customer", customer)

    assert code == 0
    assert "product_viewed properties colour left out" in err
    assert out.splitlines()[:2] == [
        "Rule repeated_product_views: push message (template still_thinking) for customer c-9",
        "To: 1 device token(s) (GCM)",
    ]
    assert "Title: Still thinking about Wool Throw?\n" in out
    assert "Body: Wool Throw is €89.00 - tap to take another look.\n" in out
    assert f'Data: {{"sku": "SKU-THROW", "url": "{SITE}/products/SKU-THROW"}}\n' in out


def test_preview_push_from_a_replay_of_events(tmp_path, capsys):
    customer = customer_file(tmp_path, {"customer_id": "c-3002", "traits": {"first_name": "Omar"}})
    events = SCENARIOS / "repeated_product_views.fires.jsonl"
    args = ("preview", "repeated_product_views", "--customer", customer, "--events", events, "--json")
    code, out, _ = cli(capsys, *args)

    assert code == 0
    result = json.loads(out)
    assert result["recipient"] == {"apns-c-3002": "APNS"}  # the scenario's device token
    assert result["firing"]["key"] == "SKU-ESPRESSO-PRO"
    assert result["firing"]["fired_at"] == "2026-11-13T23:30:00Z"
    assert result["firing"]["profile"]["first_name"] == "Omar"
    assert result["message"]["data"]["sku"] == "SKU-ESPRESSO-PRO"
    assert result["message"]["title"].startswith("Still thinking about ")


def test_preview_webhook_shows_the_eventbridge_detail(tmp_path, capsys):
    customer = customer_file(tmp_path, {"customer_id": "c-5001"})
    events = SCENARIOS / "whitepaper_engaged_lead.fires.jsonl"
    code, out, _ = cli(capsys, "preview", "whitepaper_engaged_lead", "--customer", customer, "--events", events)

    assert code == 0
    assert out.splitlines()[1] == "To: destination crm"
    detail = json.loads(out[out.index("{") :])
    assert detail["destination"] == "crm"
    assert detail["payload"]["signal"] == "whitepaper + 3 service page visits"
    assert len(detail["events"]) == 4


def test_preview_of_an_unknown_rule_lists_the_known_ones(capsys):
    code, out, err = cli(capsys, "preview", "cart_abandonmnet", "--customer", ANA)

    assert code == 1
    assert out == ""
    assert "unknown rule 'cart_abandonmnet'" in err
    for rule in LOADED.rules:
        assert rule.id in err


def test_preview_reports_a_missing_template_and_a_render_error(tmp_path, capsys):
    folder = rules_folder(tmp_path, "cart_abandonment.yaml", "repeated_product_views.yaml")
    code, _, err = cli(capsys, "preview", "cart_abandonment", "--customer", ANA, "--rules", folder)
    assert code == 1
    assert f"{folder / 'templates' / 'email' / 'cart_reminder.yaml'} does not exist" in err

    shutil.copytree(TEMPLATES / "push", folder / "templates" / "push")
    customer = customer_file(tmp_path, {"customer_id": "c-9", "events": []})
    code, out, err = cli(capsys, "preview", "repeated_product_views", "--customer", customer, "--rules", folder)
    assert code == 1
    assert out == ""
    assert "cannot render: push template still_thinking, title:" in err


def test_preview_reports_bad_customer_files(tmp_path, capsys):
    missing = tmp_path / "nobody.json"
    code, _, err = cli(capsys, "preview", "cart_abandonment", "--customer", missing)
    assert code == 2
    assert "cannot read the customer file" in err

    bad = customer_file(tmp_path, {"traits": {}, "event": []})
    code, _, err = cli(capsys, "preview", "cart_abandonment", "--customer", bad)
    assert code == 2
    assert "customer_id: Field required" in err
    assert "event: Extra inputs are not permitted" in err


def test_preview_says_when_the_rule_does_not_fire_for_the_customer(tmp_path, capsys):
    customer = customer_file(tmp_path, {"customer_id": "c-1001"})
    events = SCENARIOS / "cart_abandonment.quiet.jsonl"
    code, _, err = cli(capsys, "preview", "cart_abandonment", "--customer", customer, "--events", events)
    assert code == 1
    assert "has no events for customer 'c-1001'" in err


def test_validate_fails_an_escalation_step_whose_template_is_missing_at_the_steps_line(tmp_path, capsys):
    folder = rules_folder(tmp_path, "cart_abandonment.yaml")
    shutil.copytree(TEMPLATES / "email", folder / "templates" / "email")
    rule_file = folder / "cart_abandonment.yaml"
    rule_file.write_text(
        rule_file.read_text() + "escalate:\n  - after: 2h\n    channel: sms\n    template: cart_nudge\n"
    )
    step_line = rule_file.read_text().splitlines().index("    template: cart_nudge") + 1

    code, _, err = cli(capsys, "validate", folder)

    assert code == 1
    expected = folder / "templates" / "sms" / "cart_nudge.yaml"
    assert f"{rule_file}:{step_line}: escalate.0.template: no sms template 'cart_nudge': expected {expected}" in err


def test_preview_step_shows_an_escalation_steps_own_message(tmp_path, capsys):
    customer = customer_file(
        tmp_path,
        {
            "customer_id": "c-9",
            "traits": {"first_name": "Ana", "email": "ana@example.com"},
            "events": [
                {
                    "event": "product_viewed",
                    "timestamp": f"2026-11-20T1{i}:00:00Z",
                    "properties": {"sku": "SKU-THROW", "name": "Wool Throw", "price": 89},
                }
                for i in range(3)
            ],
        },
    )
    code, out, _ = cli(capsys, "preview", "repeated_product_views", "--customer", customer, "--step", "1")
    assert code == 0
    assert (
        out.splitlines()[0] == "Rule repeated_product_views: email message (template still_thinking) for customer c-9"
    )
    assert "Subject: Ana, still thinking about Wool Throw?" in out

    code, _, err = cli(capsys, "preview", "repeated_product_views", "--customer", customer, "--step", "2")
    assert code == 2
    assert "rule repeated_product_views has no step 2: it has steps 0 to 1" in err
