"""Only the Lambda handlers load Powertools and the X-Ray SDK: wiring, the local stack and the bench do not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("aws_lambda_powertools", "aws_xray_sdk")

PROBE = """
import importlib, json, pkgutil, sys
modules, packages, forbidden = json.loads(sys.argv[1])
for package in packages:
    path = importlib.import_module(package).__path__
    modules += [info.name for info in pkgutil.walk_packages(path, package + ".")]
for name in modules:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m in forbidden or m.split(".")[0] in forbidden)
print(json.dumps({"imported": modules, "loaded": loaded}))
"""


def probe(
    modules: list[str],
    packages: list[str] = (),  # type: ignore[assignment]
    forbidden: tuple[str, ...] = FORBIDDEN,
) -> dict[str, list[str]]:
    """Import ``modules`` and every module of ``packages`` in a fresh interpreter; report what got loaded."""
    argument = json.dumps([modules, list(packages), list(forbidden)])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, argument], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_wiring_local_and_bench_import_no_lambda_runtime_libraries():
    result = probe([], ["nudge.wiring", "nudge.local", "nudge.bench"])
    wired = {"nudge.wiring.evaluator", "nudge.wiring.delivery", "nudge.wiring.feedback"}
    assert wired | {"nudge.local.stack", "nudge.bench.runner"} <= set(result["imported"])
    assert result["loaded"] == []


def test_the_evaluator_function_loads_neither_templates_nor_channels():
    """A cold start pays for what it imports: the evaluator never renders or sends (Jinja2 alone is ~45 ms)."""
    result = probe(["nudge.handlers.evaluator"], forbidden=("jinja2", "nudge.delivery", "nudge.adapters.channels"))
    assert result["loaded"] == []
    assert "jinja2" in probe(["nudge.handlers.delivery"], forbidden=("jinja2",))["loaded"]


def test_the_feedback_function_loads_neither_templates_nor_channels_nor_the_evaluator():
    """It maps provider reports and puts records: nothing of delivery's or the evaluator's."""
    forbidden = ("jinja2", "nudge.delivery", "nudge.adapters.channels", "nudge.evaluator")
    assert probe(["nudge.handlers.feedback"], forbidden=forbidden)["loaded"] == []


@pytest.mark.parametrize("handler", ["evaluator", "delivery", "unsubscribe", "feedback"])
def test_the_probe_sees_what_a_handler_loads(handler: str):
    """The same probe on a handler finds Powertools: the empty answer above is not the probe's blindness."""
    assert "aws_lambda_powertools" in probe([f"nudge.handlers.{handler}"])["loaded"]


def test_the_evaluator_loads_the_x_ray_sdk_only_when_tracing_is_asked_for(monkeypatch: pytest.MonkeyPatch):
    """The SDK is ~170 ms of a cold start; ``evaluator_tracing`` (NUDGE_TRACING) brings Powertools' Tracer back."""
    assert probe(["nudge.handlers.evaluator"], forbidden=("aws_xray_sdk",))["loaded"] == []
    monkeypatch.setenv("NUDGE_TRACING", "True")  # as EnvConfig.to_env writes a true bool
    assert "aws_xray_sdk" in probe(["nudge.handlers.evaluator"], forbidden=("aws_xray_sdk",))["loaded"]
