"""Nudge's promise under each fault: one seeded run per scenario of ``scenarios.SCENARIOS``.

The promise: no event lost, no email sent twice (counted in moto's SES), replay's firings queued
(counted in moto's SQS), every parked message with its reason, nothing parked without cause. A
scenario with a documented exception asserts its bound instead (``Expectation``).

The run's size keeps CI within its budget; ``python -m tests.faults.report --runs N --customers M``
runs the same scenarios bigger and over more seeds. ``NUDGE_FAULTS_CUSTOMERS`` and
``NUDGE_FAULTS_SEED`` change this test's run.
"""

from __future__ import annotations

import json
import logging
import os
import re

import pytest

from tests.faults.scenario import Scenario, run_scenario
from tests.faults.scenarios import SCENARIOS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
"""A function that died before adding its metrics flushes none: Powertools warns, as it would in Lambda."""

CUSTOMERS = int(os.environ.get("NUDGE_FAULTS_CUSTOMERS", "20"))
SEED = int(os.environ.get("NUDGE_FAULTS_SEED", "1"))


def _id(scenario: Scenario) -> str:
    return re.sub(r"[^a-z0-9]+", "-", scenario.name.lower()).strip("-")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=_id)
def test_the_promise_holds(scenario: Scenario, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.CRITICAL, logger="nudge")  # each absorbed fault is logged with its traceback
    result = run_scenario(scenario, seed=SEED, customers=CUSTOMERS)
    details = json.dumps(result.measurement.to_json(), default=str, indent=1)
    assert result.kept, f"{scenario.name} (seed {SEED}, {CUSTOMERS} customers): {'; '.join(result.problems)}\n{details}"
    assert result.measurement.expected > 0, "the workload made no firing: the run tested nothing"
