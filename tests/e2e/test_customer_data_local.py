"""`nudge explain`, `export`, `erase`, `audit` as an operator runs them against `nudge local` (moto server).

The stack runs live (as `nudge local` does, pumping the stream in a thread); the commands are the
CLI's own, with `--endpoint-url`, so the whole path is the real one: the erasure goes on the stream
and the evaluator does it while `nudge erase` waits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from nudge.cli.main import main
from nudge.clock import WALL_CLOCK, VirtualClock
from nudge.contracts import Event, customer_hash
from nudge.local.embedded import REGION, EmbeddedAws
from nudge.local.stack import LocalStack, sender
from nudge.sdk import Tracker
from tests.support import at

MINUTE = 60_000


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws()
    yield server
    server.stop()


@pytest.fixture
def live(aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A live local stack on the wall clock, pumped in a thread, and dummy credentials for the CLI."""
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    stack = LocalStack("rules", clock=VirtualClock(speed=1.0), aws=aws)
    stop = threading.Event()

    def serve() -> None:
        for _ in stack.serve(stop.is_set, interval=0.05):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield stack
    stop.set()
    thread.join(timeout=10)


def _cart(stack: LocalStack, customer: str, minutes_ago: int = 20, visit: str = "") -> None:
    now = WALL_CLOCK.now_ms()
    events = [
        Event(
            event_id=f"{customer}{visit}-i",
            customer_id=customer,
            name="identify",
            ts=now - (minutes_ago + 5) * MINUTE,
            traits={"email": f"{customer}@example.com"},
        ),
        Event(
            event_id=f"{customer}{visit}-a",
            customer_id=customer,
            name="add_to_cart",
            ts=now - minutes_ago * MINUTE,
            properties={"sku": "SKU-1", "name": "Mat", "price": 30},
        ),
        Event(
            event_id=f"{customer}{visit}-c",
            customer_id=customer,
            name="checkout_viewed",
            ts=now - (minutes_ago - 5) * MINUTE,
        ),
    ]
    client = stack.session.client("kinesis")
    sender(Tracker(stack.resources.stream_name, client=client, flush_at_exit=False))(events)


def _wait_for(predicate, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the live stack did not get there in time"
        time.sleep(0.1)


def cli(aws: EmbeddedAws, *args: str) -> list[str]:
    return [*args, "--endpoint-url", aws.endpoint_url, "--region", REGION]


def test_explain_export_erase_and_audit_through_the_cli_against_nudge_local(aws, live, capsys):
    _cart(live, "c-local")
    _wait_for(lambda: bool(live.schedules.pending()))  # the cart reminder waits for its hour

    assert main(cli(aws, "explain", "c-local", "--rule", "cart_abandonment")) == 0
    explained = capsys.readouterr().out
    assert "pending: armed" in explained and "armed" in explained

    assert main(cli(aws, "export", "c-local")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["profile"]["traits"]["email"]["value"] == "c-local@example.com"
    assert [w["rule"] for w in document["pending_waits"]] == ["cart_abandonment"]

    assert main(cli(aws, "erase", "c-local", "--wait", "30")) == 0
    assert "erased customer c-local" in capsys.readouterr().out
    assert live.schedules.pending() == []  # the pending wait's schedule is gone: nothing will fire

    assert main(cli(aws, "erase", "c-local")) == 0  # idempotent
    assert "already erased" in capsys.readouterr().out
    assert main(cli(aws, "export", "c-local")) == 3
    assert "was erased at" in capsys.readouterr().err
    assert main(cli(aws, "explain", "nobody")) == 3
    assert "holds nothing about customer 'nobody'" in capsys.readouterr().err

    assert main(cli(aws, "audit", "--since", "1h", "--json")) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("explain", "ok"),
        ("export", "ok"),
        ("erase", "erased"),
        ("erase", "already_erased"),
        ("export", "erased"),
        ("explain", "unknown_customer"),
    ]
    assert {r["customer"] for r in records if r["action"] == "erase"} == {customer_hash("c-local")}


def test_a_late_event_from_before_the_erasure_is_dropped_locally_and_a_new_one_starts_afresh(aws, live, capsys):
    _cart(live, "c-late")
    _wait_for(lambda: bool(live.schedules.pending()))
    assert main(cli(aws, "erase", "c-late", "--wait", "30")) == 0
    capsys.readouterr()
    _cart(live, "c-late")  # the SDK retrying the same events after the erasure: all stamped before it
    _cart(live, "c-late", minutes_ago=-2, visit="-new")  # a new visit: its cart is stamped after the erasure
    _wait_for(lambda: bool(live.schedules.pending()))
    assert main(cli(aws, "export", "c-late")) == 0
    document = json.loads(capsys.readouterr().out)
    assert {e["event_id"] for e in document["events"]} == {"c-late-new-a", "c-late-new-c"}
    assert document["profile"]["traits"] == {}  # its identify is stamped before the erasure: dropped too
    assert all(e["timestamp"] > document["erased_at"] for e in document["events"])


def _event(customer: str, name: str, clock: str, **properties: object) -> Event:
    return Event(
        event_id=f"{customer}-{name}-{clock}",
        customer_id=customer,
        name=name,
        ts=at(clock),
        properties=properties,
        traits={"email": f"{customer}@example.com"} if name == "identify" else {},
    )


def test_explain_and_export_after_a_scripted_local_run_say_fired_cancelled_suppressed_and_never_armed(
    aws, capsys, monkeypatch
):
    """A history run to the end on replay's clock (`nudge local --events`), then the tools read what it left."""
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    stack = LocalStack("rules", clock=VirtualClock(), aws=aws)
    cart = [("add_to_cart", "10:00"), ("checkout_viewed", "10:05")]
    events = [
        *(_event(c, "identify", "09:00") for c in ("c-fired", "c-cancelled", "c-suppressed")),
        _event("c-suppressed", "consent_updated", "09:30", channel="email", granted=False, source="preferences"),
        *(
            _event(c, name, clock, sku="SKU-1")
            for c in ("c-fired", "c-cancelled", "c-suppressed")
            for name, clock in cart
        ),
        _event("c-cancelled", "purchase", "10:30", order_id="o-1"),
    ]
    tracker = Tracker(stack.resources.stream_name, client=stack.session.client("kinesis"), flush_at_exit=False)
    stack.run_events(sorted(events, key=lambda e: e.ts), sender(tracker))

    def decisions(customer: str) -> list[str]:
        assert main(cli(aws, "explain", customer, "--rule", "cart_abandonment", "--json")) == 0
        [rule] = json.loads(capsys.readouterr().out)["rules"]
        return [d["kind"] for d in rule["decisions"]]

    assert decisions("c-fired") == ["armed", "fired"]
    assert decisions("c-cancelled") == ["armed", "cancelled"]
    assert decisions("c-suppressed") == ["armed", "suppressed_consent"]
    assert main(cli(aws, "explain", "c-fired", "--rule", "yoga_mat_then_blocks")) == 0
    assert "not met: the rule does not arm" in capsys.readouterr().out  # never armed: why, condition by condition

    assert main(cli(aws, "export", "c-fired")) == 0
    [activation] = json.loads(capsys.readouterr().out)["activations"]
    assert activation["rule"] == "cart_abandonment" and activation["status"] == "delivered"  # local reports deliveries
    assert {entry["sk"].split("#")[0] for entry in activation["history"]} == {"attempt", "feedback"}
