"""The firings queue's mechanics around delivery: backoff, parking, and the clock, through the ports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nudge.clock import VirtualClock
from nudge.contracts import FiringMessage
from nudge.delivery.deliverer import MAX_BACKOFF_SECONDS, MAX_DEFER_SECONDS, Deliverer, RetryLater, backoff_seconds
from nudge.delivery.ports import ActivationStatus, Claim, Outgoing, TransientSendError
from nudge.delivery.rendering import DeliverySettings
from nudge.delivery.service import DeliveryService
from nudge.delivery.templates import TemplateSet

FIRING = {
    "v": 1,
    "firing_id": "f" * 32,
    "rule": "r",
    "customer_id": "c-1",
    "fired_at": "2026-11-22T11:05:00Z",
    "armed_at": "2026-11-22T10:05:00Z",
    "channel": "event",
}


class Queue:
    def __init__(self) -> None:
        self.parked: list[tuple[str, str]] = []
        self.delays: list[tuple[str, int]] = []
        self.requeued: list[tuple[str, dict[str, str], int]] = []

    def park(self, body: str, reason: str) -> None:
        self.parked.append((body, reason))

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))

    def requeue(self, body: str, attributes: dict[str, str], seconds: int) -> None:
        self.requeued.append((body, dict(attributes), seconds))


class Log:
    def __init__(self) -> None:
        self.records: list[tuple[ActivationStatus, int, int]] = []

    def claim(self, firing: FiringMessage, now_ms: int, holder: str, resend_unknown: bool = False) -> Claim:
        return Claim.NEW

    def start_sending(self, firing: FiringMessage, now_ms: int, holder: str) -> None:
        pass

    def record(self, firing: FiringMessage, *, status: ActivationStatus, now_ms: int, attempt: int, **_: Any) -> None:
        self.records.append((status, now_ms, attempt))


class Throttled:
    name = "event"

    def recipient(self, firing: FiringMessage) -> str:
        return "bus"

    def build(self, message: Outgoing) -> dict[str, Any]:
        return {}

    def send(self, message: Outgoing) -> str:
        raise TransientSendError("ThrottlingException")


@pytest.fixture
def parts() -> tuple[Deliverer, Queue, Log]:
    log, queue = Log(), Queue()
    settings = DeliverySettings("https://shop.example.com", "https://u.example.com", b"k", max_attempts=3)
    service = DeliveryService({"event": Throttled()}, TemplateSet(), log, settings)
    return Deliverer(service, queue, VirtualClock(1_000)), queue, log


def test_backoff_doubles_from_ten_seconds_up_to_a_ceiling():
    assert [backoff_seconds(a) for a in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff_seconds(30) == MAX_BACKOFF_SECONDS


def test_a_transient_failure_backs_off_and_stays_on_the_queue(parts):  # type: ignore[no-untyped-def]
    deliverer, queue, log = parts
    with pytest.raises(RetryLater, match="ThrottlingException"):
        deliverer.handle(json.dumps(FIRING), attempt=2, receipt_handle="rh-1")
    assert queue.delays == [("rh-1", 20)]
    assert queue.parked == []
    assert log.records == [(ActivationStatus.RETRYING, 1_000, 2)]  # at the deliverer's clock
    with pytest.raises(RetryLater):
        deliverer.handle(json.dumps(FIRING), attempt=1)  # no receipt handle (the local stack): no visibility change
    assert queue.delays == [("rh-1", 20)]


def test_the_last_attempt_parks_the_message_with_its_reason(parts):  # type: ignore[no-untyped-def]
    deliverer, queue, _ = parts
    result = deliverer.handle(json.dumps(FIRING), attempt=3, receipt_handle="rh-1")
    assert result is not None and result.status is ActivationStatus.DEAD_LETTERED
    assert queue.parked == [(json.dumps(FIRING), "gave up after 3 attempts: ThrottlingException")]
    assert queue.delays == []


def test_a_body_that_breaks_the_contract_is_parked_with_the_contracts_reason(parts):  # type: ignore[no-untyped-def]
    deliverer, queue, log = parts
    body = json.dumps({**FIRING, "variant": "b"})  # a field this version does not know
    assert deliverer.handle(body, attempt=1) is None
    assert queue.parked == [(body, "not a firing (variant)")]
    assert log.records == []


HELD = {**FIRING, "v": 2, "fired_at": "1970-01-01T00:00:00.500Z", "send_at": "1970-01-01T00:00:03.200Z"}
"""Fired at 500 ms, held until 3,200 ms; the deliverer's clock stands at 1,000 ms."""


def test_a_firing_that_comes_before_its_send_at_is_put_back_until_then_and_not_sent(parts):  # type: ignore[no-untyped-def]
    deliverer, queue, log = parts
    body = json.dumps(HELD)
    result = deliverer.handle(body, attempt=3, receipt_handle="rh-1", attributes={"outcome": "unknown"})
    assert result is not None and result.status is ActivationStatus.DEFERRED
    assert queue.requeued == [(body, {"outcome": "unknown"}, 3)]  # 2.2 s, rounded up; attributes kept
    assert log.records == [] and queue.parked == [] and queue.delays == []  # no attempt used, nothing recorded


def test_a_firing_held_for_hours_is_put_back_for_at_most_fifteen_minutes_at_a_time(parts):  # type: ignore[no-untyped-def]
    deliverer, queue, _ = parts
    deliverer.handle(json.dumps({**HELD, "send_at": "1970-01-01T09:00:00Z"}), attempt=1)
    assert [seconds for _, _, seconds in queue.requeued] == [MAX_DEFER_SECONDS]


def test_a_firing_is_delivered_from_its_send_at_on_and_a_v1_message_at_once(parts):  # type: ignore[no-untyped-def]
    deliverer, queue, log = parts
    for body in ({**HELD, "send_at": "1970-01-01T00:00:01Z"}, FIRING):
        with pytest.raises(RetryLater):  # the throttled channel was called: the send was attempted
            deliverer.handle(json.dumps(body), attempt=1)
    assert queue.requeued == []
    assert len(log.records) == 2


def test_a_send_at_that_is_not_an_instant_breaks_the_contract(parts):  # type: ignore[no-untyped-def]
    deliverer, queue, _ = parts
    for send_at in ("tomorrow", "2026-12-01T09:00:00"):
        body = json.dumps({**HELD, "send_at": send_at})
        assert deliverer.handle(body, attempt=1) is None
        assert queue.parked[-1] == (body, "not a firing (send_at)")
