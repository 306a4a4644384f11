"""Commands that call AWS (``nudge redrive``), run with no AWS configuration: one line saying what to set, exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nudge.cli.main import main

LOCAL = "http://127.0.0.1:1"  # never reached: the configuration is checked before the first call


@pytest.fixture(autouse=True)
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup for credentials


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["redrive", *args])
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return code, err


@pytest.mark.parametrize("evaluator", [[], ["--evaluator"]])
def test_no_region_says_to_pass_region_or_set_aws_region(capsys: pytest.CaptureFixture[str], evaluator: list[str]):
    code, err = run(capsys, *evaluator, "--endpoint-url", LOCAL)
    assert code == 2
    assert err.startswith("nudge redrive: no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    assert "us-east-1" in err  # nudge local's region, as an --endpoint-url was given


@pytest.mark.parametrize("evaluator", [[], ["--evaluator"]])
def test_no_credentials_says_what_to_set_and_that_dummies_do_for_nudge_local(
    capsys: pytest.CaptureFixture[str], evaluator: list[str]
):
    code, err = run(capsys, *evaluator, "--region", "us-east-1", "--endpoint-url", LOCAL)
    assert code == 2
    assert err == (
        "nudge redrive: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(against nudge local's --endpoint-url any dummy values do)\n"
    )


def test_aws_region_is_honoured_and_half_credentials_are_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    code, err = run(capsys)
    assert code == 2
    assert err.startswith("nudge redrive: incomplete AWS credentials (")
    assert "AWS_SECRET_ACCESS_KEY" in err and "dummy" not in err  # no --endpoint-url: real credentials


def test_an_unknown_profile_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_PROFILE", "nope")
    code, err = run(capsys, "--region", "us-east-1")
    assert code == 2
    assert "(nope) could not be found" in err
