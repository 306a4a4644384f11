"""The three Lambda handlers on moto, configured from the environment as deployed: decorators, wiring, response.

Everything they do is tested through ``nudge.wiring`` elsewhere; this checks that each handler
reads its configuration, builds its service and answers in the shape its event source expects.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

import nudge.handlers.delivery
import nudge.handlers.evaluator
import nudge.handlers.unsubscribe
from nudge.clock import WALL_CLOCK
from nudge.contracts import encode_firing
from nudge.delivery.unsubscribe import unsubscribe_url
from nudge.engine import compile_rules, load_rules_or_raise, replay
from nudge.timefmt import iso
from nudge.wiring.delivery import unsubscribe_secret
from tests.support import ev

from .conftest import Stream


@dataclass
class Context:
    function_name: str = "nudge-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:nudge-test"
    aws_request_id: str = "request-1"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def configured(session, resources, monkeypatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    for config in (resources.config, resources.delivery, resources.unsubscribe):
        for name, value in config.to_env().items():
            monkeypatch.setenv(name, value)
    services = [nudge.handlers.evaluator.evaluator, nudge.handlers.delivery.deliverer]
    services.append(nudge.handlers.unsubscribe.unsubscriber)  # type: ignore[arg-type]
    for service in services:  # each handler builds its service once per cold start
        service.cache_clear()
    yield
    for service in services:
        service.cache_clear()


def test_the_evaluator_handler_evaluates_a_kinesis_batch(configured, resources, session):  # type: ignore[no-untyped-def]
    now = WALL_CLOCK.now_ms()
    day_ago = now - 86_400_000  # the handler evaluates at the wall clock, or a record's arrival if earlier
    events = [ev("add_to_cart", day_ago, sku="S"), ev("checkout_viewed", day_ago + 300_000)]
    records = [
        {
            "kinesis": {
                "partitionKey": e.customer_id,
                "sequenceNumber": str(index),
                "data": base64.b64encode(json.dumps(envelope(e)).encode()).decode(),
                "approximateArrivalTimestamp": now / 1000,  # sent a day late
            }
        }
        for index, e in enumerate(events, 1)
    ]
    response = nudge.handlers.evaluator.handler({"Records": records}, Context())
    assert response == {"batchItemFailures": []}
    # Arriving a day later, the cart rule's hour of waiting is long over: the firing is decided at once.
    [message] = session.client("sqs").receive_message(QueueUrl=resources.config.firings_queue_url)["Messages"]
    assert json.loads(message["Body"])["rule"] == "cart_abandonment"


def test_the_delivery_handler_sends_and_answers_the_partial_batch_contract(configured, resources):  # type: ignore[no-untyped-def]
    plan = compile_rules(load_rules_or_raise("rules"))
    history = [
        ev("identify", "09:00", traits={"email": "ana@example.com", "first_name": "Ana"}),
        ev("add_to_cart", "10:00", sku="S", name="Mat", price=9.5),
        ev("checkout_viewed", "10:05"),
    ]
    [firing] = [f for f in replay(plan, history) if f.rule == "cart_abandonment"]
    record = {
        "messageId": "m-1",
        "receiptHandle": "rh-1",
        "body": encode_firing(firing),
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
    }
    log = nudge.handlers.delivery.deliverer().service.log
    late = Context(remaining_ms=nudge.handlers.delivery.START_BUDGET_MS - 1)
    assert nudge.handlers.delivery.handler({"Records": [record]}, late) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    assert log.history(firing.firing_id) == []  # type: ignore[attr-defined]  # not started: nothing claimed
    assert nudge.handlers.delivery.handler({"Records": [record]}, Context()) == {"batchItemFailures": []}
    assert log.history(firing.firing_id)[0]["status"] == "sent"  # type: ignore[attr-defined]


def test_the_unsubscribe_handler_answers_the_function_url(configured, resources, session):  # type: ignore[no-untyped-def]
    secret = unsubscribe_secret(resources.unsubscribe, session)
    query = {k: v[0] for k, v in parse_qs(urlparse(unsubscribe_url("https://u", secret, "c-1", "email")).query).items()}
    stream = Stream(session, resources.stream_name)

    def call(method: str, parameters: dict[str, str]) -> dict[str, Any]:
        event = {"requestContext": {"http": {"method": method}}, "queryStringParameters": parameters}
        return nudge.handlers.unsubscribe.handler(event, Context())

    assert call("POST", {**query, "t": "0" * 32})["statusCode"] == 403
    assert call("POST", query)["statusCode"] == 200
    [record] = stream.read()
    assert json.loads(record.data)["event"] == "unsubscribed"


def envelope(event: Any) -> dict[str, Any]:
    body = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "event": event.name,
        "timestamp": iso(event.ts),
        "properties": event.properties,
    }
    if event.traits:
        body["traits"] = event.traits
    return body
