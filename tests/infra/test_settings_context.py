"""The ``nudge`` context read into StackSettings: cdk.json's object or ``-c nudge='{...}'``'s string, and
wrong settings as one line per field with a did-you-mean, so that ``cdk synth`` fails with just those lines.

No synthesis here: the settings are loaded (and refused) before any construct is built.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import infra.app as app_module
from infra.app import build_app, main
from nudge.delivery.validation import check_destinations
from nudge.engine import RuleLoadError, load_rules
from nudge.settings import SettingsError, StackSettings, placeholder_settings

ROOT = Path(__file__).resolve().parents[2]


def problems(value: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        StackSettings.from_context(value)
    return caught.value.problems


def test_the_readmes_override_arrives_as_a_string_and_loads():
    settings = StackSettings.from_context('{"prefix": "shop2"}')  # what `cdk synth -c nudge='{...}'` passes
    assert settings.prefix == "shop2" and settings.names.stream == "shop2-events"
    assert StackSettings.from_context({"prefix": "shop2"}) == settings
    assert StackSettings.from_context(None) == StackSettings.from_context("") == StackSettings()


def test_the_repos_cdk_json_still_loads():
    context = json.loads((ROOT / "cdk.json").read_text())["context"]["nudge"]
    assert StackSettings.from_context(context).python_version == context["python_version"]


def test_typos_are_one_line_per_field_with_a_did_you_mean():
    assert sorted(problems({"stream_mode": "ondemand", "batch_sise": 100, "shard_count": 0})) == [
        'cdk.json "nudge".batch_sise: unknown setting; did you mean batch_size?',
        'cdk.json "nudge".shard_count: Input should be greater than or equal to 1 (got 0)',
        "cdk.json \"nudge\".stream_mode: 'ondemand' is not one of on_demand, provisioned; did you mean on_demand?",
    ]
    assert problems('{"architecture": "arm"}') == [
        "-c nudge.architecture: 'arm' is not one of arm64, x86_64; did you mean arm64?"
    ]
    assert problems({"python_version": 3.13}) == [
        'cdk.json "nudge".python_version: 3.13 is not one of 3.12, 3.13; did you mean "3.13" (a string)?'
    ]
    assert problems({"webhooks": {"crm": {"endpoint": "https://x.example", "secret": "s"}}}) == [
        'cdk.json "nudge".webhooks.crm.secret_name: Field required',
        'cdk.json "nudge".webhooks.crm.secret: unknown setting; did you mean secret_name?',
    ]
    assert problems({"zzz": 1}) == ['cdk.json "nudge".zzz: unknown setting']


def test_a_string_that_is_not_a_json_object_is_refused_clearly():
    [bad_json] = problems("{prefix: shop2}")
    assert bad_json.startswith("-c nudge: not valid JSON (") and '-c nudge=\'{"prefix": "shop2"}\'' in bad_json
    assert problems('"shop2"') == ["-c nudge: must be an object of settings, not str"]


def test_cdk_synth_exits_1_with_just_the_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # `cdk synth -c nudge='{...}'` hands the app the string as its context (through CDK_CONTEXT_JSON, which
    # the jsii process read at start-up: so given to the App here). Bundling off, should anything get that far.
    context = {"nudge": '{"batch_sise": 100, "stream_mode": "ondemand"}', "aws:cdk:bundling-stacks": []}
    monkeypatch.setattr(app_module, "build_app", lambda outdir: build_app(context=context, outdir=str(tmp_path)))
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert sorted(err.splitlines()) == [
        "-c nudge.batch_sise: unknown setting; did you mean batch_size?",
        "-c nudge.stream_mode: 'ondemand' is not one of on_demand, provisioned; did you mean on_demand?",
    ]


WEBHOOK_RULES = """\
- id: to_crm
  when: {event: purchase}
  cooldown: 1d
  action: {channel: webhook, destination: crm}
- id: to_nowhere
  when: {event: purchase}
  cooldown: 1d
  action:
    channel: webhook
    destination: crn
- id: to_the_default
  when: {event: purchase}
  cooldown: 1d
  action: {channel: webhook}
- id: switched_off
  enabled: false
  when: {event: purchase}
  cooldown: 1d
  action: {channel: webhook, destination: nowhere}
"""
CRM = {"crm": {"endpoint": "https://api.crm.test/v1/events", "secret_name": "nudge/crm"}}


def test_synth_refuses_a_webhook_destination_that_is_not_configured(tmp_path: Path):
    (tmp_path / "hooks.yaml").write_text(WEBHOOK_RULES)
    settings = StackSettings.from_context({"webhooks": CRM})
    # The stack sets no default destination, so a webhook rule without one is refused too; a disabled
    # rule is not deployed, so not checked.
    assert [str(d) for d in check_destinations(load_rules(tmp_path), settings.webhooks)] == [
        f"{tmp_path / 'hooks.yaml'}:10: action.destination: webhook destination 'crn' is not configured "
        '(cdk.json "nudge".webhooks has crm); did you mean crm?',
        f"{tmp_path / 'hooks.yaml'}:14: action.destination: webhook rule without a destination (the stack sets "
        "no default destination): add `destination:` naming one of crm",
    ]
    [none] = check_destinations(load_rules(tmp_path), {})[:1]
    assert none.message.startswith("webhook destination 'crm': no webhook is configured; add one to cdk.json")
    # build_app refuses before building any construct (so no synthesis here).
    with pytest.raises(RuleLoadError, match="webhook destination 'crn' is not configured"):
        build_app(context={"aws:cdk:bundling-stacks": [], "nudge": {"rules_dir": str(tmp_path), "webhooks": CRM}})


def test_example_com_settings_are_named_for_the_synth_warning():
    assert placeholder_settings(StackSettings()) == ["email_from", "ses_identity", "site_url"]
    context = json.loads((ROOT / "cdk.json").read_text())["context"]["nudge"]
    assert "webhooks.crm.endpoint" in placeholder_settings(StackSettings.from_context(context))
    own = StackSettings(email_from="Shop <hi@shop.test>", ses_identity="shop.test", site_url="https://shop.test")
    assert placeholder_settings(own) == []
