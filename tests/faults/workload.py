"""A seeded shop's worth of customers, for the rules in the repository's ``rules/``.

Each customer identifies (with an email, mostly: delivery then goes through SES) and follows some
of three journeys, each aimed at a rule that sends email:

- a cart (``cart_abandonment``: a sequence, a one-hour ``wait``, ``unless: purchase``): items added,
  the checkout seen, sometimes seen again (a debounce), and sometimes a purchase, inside the wait
  (the wait is called off) or after it;
- the yoga mat, then the blocks (``yoga_mat_then_blocks``: a sequence, no wait: it fires at once);
- a trial (``trial_engaged_no_upgrade``: a sequence, a seven-day ``wait``, ``unless: upgraded``),
  sometimes upgraded;

plus page views and product views that no rule fires on (the mapping's filters pass some, the
engine skips them) and cart removals no rule reads (the filters drop them). No product is viewed
three times, so ``repeated_product_views`` (push, which the local stack cannot send) never fires.
Event times start over ``spread_hours`` and journeys run up to two hours past that; with the
defaults, 100 customers make about 110 firings in ``nudge replay``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from nudge.contracts import IDENTIFY, Event
from nudge.timefmt import iso

START_MS = 1_795_680_000_000
"""2026-11-26T08:00:00Z: the shop opens."""
MINUTE = 60_000
HOUR = 60 * MINUTE
OTHER_SKUS = ("SKU-TEE", "SKU-MUG", "SKU-BOTTLE", "SKU-SOCKS")


@dataclass(frozen=True)
class Workload:
    """The events of a run, in event-time order (which is also the order they are put on the stream)."""

    events: tuple[Event, ...]
    customers: int
    seed: int

    @property
    def end_ms(self) -> int:
        return max(event.ts for event in self.events)


def generate(seed: int, customers: int = 100, spread_hours: float = 3.0) -> Workload:
    """``customers`` customers' journeys, seeded; see the module docstring."""
    rng = random.Random(seed)
    events: list[Event] = []
    for number in range(customers):
        events += _customer(rng, f"c-{seed}-{number:04d}", START_MS + int(rng.random() * spread_hours * HOUR))
    events.sort(key=lambda e: (e.ts, e.customer_id, e.event_id))
    return Workload(tuple(events), customers, seed)


def _customer(rng: random.Random, customer: str, start: int) -> list[Event]:
    out: list[Event] = []
    counter = iter(range(1000))

    def add(name: str, ts: int, properties: dict[str, Any] | None = None, traits: dict[str, Any] | None = None) -> None:
        out.append(Event(event_id=f"{customer}-{next(counter):03d}", customer_id=customer, name=name, ts=ts,
                         properties=properties or {}, traits=traits or {}))  # fmt: skip

    def later(base: int, low_min: float, high_min: float) -> int:
        return base + int(rng.uniform(low_min, high_min) * MINUTE) + rng.randrange(1000)

    traits: dict[str, Any] = {"first_name": rng.choice(["Ana", "Rui", "Lea", "Tom", "Ines", "Max"])}
    if rng.random() < 0.95:
        traits["email"] = f"{customer}@example.com"
    add(IDENTIFY, start, traits=traits)
    if rng.random() < 0.75:
        _cart(rng, add, later, start)
    if rng.random() < 0.5:
        mat = later(start, 1, 90)
        add("product_viewed", mat, {"sku": "SKU-YOGA-MAT", "name": "Yoga mat", "price": 29.9})
        if rng.random() < 0.8:
            add("product_viewed", later(mat, 2, 100), {"sku": "SKU-YOGA-BLOCKS", "name": "Cork blocks", "price": 9.5})
    if rng.random() < 0.45:
        trial = later(start, 1, 60)
        plan = rng.choice(["pro", "team"])
        add("trial_started", trial, {"plan": plan})
        if rng.random() < 0.85:
            onboarded = later(trial, 5, 90)
            add("onboarding_viewed", onboarded, {"plan": plan})
            if rng.random() < 0.3:
                add("upgraded", later(onboarded, 10, 150), {"plan": plan})
    for _ in range(rng.randrange(3)):
        add("page_viewed", later(start, 0, 120), {"section": rng.choice(["home", "blog", "about"])})
    if rng.random() < 0.3:
        add("product_viewed", later(start, 0, 120), {"sku": rng.choice(OTHER_SKUS), "price": 12.0})
    if rng.random() < 0.2:
        add("remove_from_cart", later(start, 0, 120), {"sku": rng.choice(OTHER_SKUS)})
    return out


def _cart(rng: random.Random, add: Any, later: Any, start: int) -> None:
    first = later(start, 1, 30)
    add("add_to_cart", first, {"sku": "SKU-MAT", "name": "Yoga mat", "price": 29.9, "quantity": 1})
    last = first
    if rng.random() < 0.5:
        last = later(first, 1, 10)
        add("add_to_cart", last, {"sku": "SKU-BLK", "name": "Cork blocks", "price": 9.5, "quantity": 2})
    if rng.random() < 0.88:
        checkout = later(last, 1, 40)
        add("checkout_viewed", checkout)
        if rng.random() < 0.2:
            checkout = later(checkout, 5, 50)
            add("checkout_viewed", checkout)  # seen again inside the wait: the wait restarts
        if rng.random() < 0.35:
            add("purchase", later(checkout, 2, 95), {"sku": "SKU-MAT", "price": 29.9})


def envelope(event: Event) -> dict[str, Any]:
    """The event as an SDK puts it on the stream (``nudge.contracts.EventEnvelope``)."""
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "event": event.name,
        "timestamp": iso(event.ts),
    }
    if event.properties:
        body["properties"] = event.properties
    if event.traits:
        body["traits"] = event.traits
    return body
