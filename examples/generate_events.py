#!/usr/bin/env python3
"""Generate a realistic, reproducible day and a half of shop traffic as JSON-lines events.

A few hundred customers browse, view products, add to cart, check out and buy — and some walk
away from a full cart. A few compare the yoga mat with the blocks, some B2B visitors read the
whitepaper and the service pages, trial users explore onboarding, and a handful of regulars buy
more every week. Some phones send their events late, in one burst. Same seed, same file.

    python examples/generate_events.py --customers 300 --seed 7 > events.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import UTC, datetime, timedelta

from nudge.bench.workload import TIME_ZONES  # the bench's customers live in the same zones

CATALOG = [
    ("SKU-YOGA-MAT", "Cork yoga mat", 39.90, "fitness"),
    ("SKU-YOGA-BLOCKS", "Yoga blocks (pair)", 14.50, "fitness"),
    ("SKU-KETTLE-12", "Kettlebell 12 kg", 44.00, "fitness"),
    ("SKU-BOTTLE-1L", "Insulated bottle 1 L", 24.00, "outdoor"),
    ("SKU-TENT-2P", "Two-person tent", 189.00, "outdoor"),
    ("SKU-HEADLAMP", "Rechargeable headlamp", 29.50, "outdoor"),
    ("SKU-ESPRESSO", "Manual espresso maker", 89.00, "kitchen"),
    ("SKU-GRINDER", "Burr coffee grinder", 64.00, "kitchen"),
    ("SKU-THROW-GRY", "Wool throw, grey", 59.00, "home"),
    ("SKU-LAMP-OAK", "Oak table lamp", 79.00, "home"),
]
FIRST_NAMES = [
    "Ana",
    "Rui",
    "Maya",
    "Tom",
    "Ines",
    "Leo",
    "Sofia",
    "Noah",
    "Clara",
    "Omar",
    "Eva",
    "Hugo",
    "Lena",
    "Ivo",
]
COUNTRIES = ["PT", "ES", "FR", "DE", "NL", "IE"]
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[tuple[datetime, int, dict]] = []
        self.counter = 0

    def add(self, customer: str, name: str, at: datetime, properties: dict | None = None, traits: dict | None = None):
        self.counter += 1
        body: dict = {
            "event_id": f"demo-{self.counter:06d}",
            "customer_id": customer,
            "event": name,
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if properties:
            body["properties"] = properties
        if traits:
            body["traits"] = traits
        self.events.append((at, self.counter, body))


def product(item: tuple[str, str, float, str]) -> dict:
    sku, name, price, category = item
    return {"sku": sku, "name": name, "price": price, "category": category}


def shopper(w: Writer, rng: random.Random, customer: str, at: datetime) -> None:
    """Browse, maybe fill a cart, maybe check out, maybe buy (or come back later, or never)."""
    for _ in range(rng.randint(1, 4)):
        w.add(customer, "page_viewed", at, {"section": rng.choice(["home", "blog", "deals", "help"])})
        at += timedelta(minutes=rng.randint(1, 5))
    cart: list[tuple[str, str, float, str]] = []
    for item in rng.sample(CATALOG, rng.randint(1, 4)):
        w.add(customer, "product_viewed", at, product(item))
        at += timedelta(minutes=rng.randint(1, 6))
        if rng.random() < 0.55:
            w.add(customer, "add_to_cart", at, {**product(item), "quantity": rng.choice([1, 1, 1, 2])})
            cart.append(item)
            at += timedelta(minutes=rng.randint(1, 3))
    if not cart:
        return
    if rng.random() < 0.8:
        w.add(customer, "checkout_viewed", at, {"items": len(cart)})
        at += timedelta(minutes=rng.randint(2, 20))
        fate = rng.random()
        if fate < 0.5:  # buys right away
            for item in cart:
                w.add(customer, "purchase", at, product(item))
        elif fate < 0.65:  # comes back within the hour and buys
            at += timedelta(minutes=rng.randint(15, 50))
            for item in cart:
                w.add(customer, "purchase", at, product(item))
        # else: walks away from the cart


def repeat_viewer(w: Writer, rng: random.Random, customer: str, at: datetime) -> None:
    item = rng.choice(CATALOG)
    for _ in range(rng.randint(3, 4)):
        w.add(customer, "product_viewed", at, product(item))
        at += timedelta(hours=rng.randint(2, 14))


def yoga_curious(w: Writer, rng: random.Random, customer: str, at: datetime) -> None:
    w.add(customer, "product_viewed", at, product(CATALOG[0]))
    at += timedelta(hours=rng.randint(1, 20))
    w.add(customer, "product_viewed", at, product(CATALOG[1]))


def b2b_lead(w: Writer, rng: random.Random, customer: str, at: datetime) -> None:
    w.add(customer, "whitepaper_downloaded", at, {"title": "Retail analytics playbook"})
    for _ in range(rng.randint(2, 4)):
        at += timedelta(hours=rng.randint(1, 10))
        w.add(customer, "page_viewed", at, {"section": "services", "path": "/services/analytics"})


def trial_user(w: Writer, rng: random.Random, customer: str, at: datetime) -> None:
    w.add(customer, "trial_started", at, {"plan": "team"})
    at += timedelta(minutes=rng.randint(10, 90))
    w.add(customer, "onboarding_viewed", at, {"step": "connect-store"})
    if rng.random() < 0.4:
        w.add(customer, "upgraded", at + timedelta(hours=rng.randint(2, 30)), {"plan": "team"})


def regular(w: Writer, rng: random.Random, customer: str, at: datetime) -> None:
    """Purchases per week rising over four weeks, ending during the demo's window."""
    for week, count in enumerate([0, 1, 2, 3]):
        for n in range(count):
            when = at - timedelta(days=27) + timedelta(days=7 * week, hours=5 * n + 1)
            w.add(customer, "purchase", when, product(rng.choice(CATALOG)))


def grant(channel: str, source: str) -> dict:
    return {"channel": channel, "granted": True, "source": source}


def generate(customers: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    w = Writer(rng)
    for n in range(customers):
        customer = f"cust-{n:04d}"
        at = START + timedelta(minutes=rng.randint(0, 30 * 60))
        first_name = rng.choice(FIRST_NAMES)
        traits = {
            "email": f"{first_name.lower()}.{n:04d}@example.com",
            "first_name": first_name,
            "country": rng.choice(COUNTRIES),
            "phone": f"+3519{rng.randint(10_000_000, 99_999_999)}",
        }
        traits["timezone"] = TIME_ZONES[traits["country"]]  # quiet hours are the customer's own
        if rng.random() < 0.3:
            traits["push_tokens"] = [{"token": f"apns-{n:04d}", "platform": "ios"}]
        kind = rng.random()
        # Regulars have bought for a month already: they identified themselves back then.
        identified = at - timedelta(days=28 if kind >= 0.98 else 0, minutes=1)
        w.add(customer, "identify", identified, traits=traits)
        # Consent, from its own generator so the shopping above stays as it was: a push token comes
        # with the app's permission; most customers tick the SMS box at checkout; a few unsubscribe
        # from email early on, and then get no email.
        consent = random.Random(f"{seed}-consent-{n}")
        if "push_tokens" in traits:
            w.add(
                customer,
                "consent_updated",
                identified,
                {"channel": "push", "granted": True, "source": "app_permission"},
            )
        if consent.random() < 0.6:
            w.add(
                customer, "consent_updated", identified, {"channel": "sms", "granted": True, "source": "checkout_optin"}
            )
        if consent.random() < 0.04:
            w.add(
                customer, "unsubscribed", at + timedelta(minutes=2), {"channel": "email", "source": "list_unsubscribe"}
            )
        if kind < 0.78:
            shopper(w, rng, customer, at)
        elif kind < 0.84:
            repeat_viewer(w, rng, customer, at)
        elif kind < 0.9:
            yoga_curious(w, rng, customer, at)
        elif kind < 0.94:
            b2b_lead(w, rng, customer, at)
        elif kind < 0.98:
            trial_user(w, rng, customer, at)
        else:
            regular(w, rng, customer, at)
    ordered = sorted(w.events, key=lambda item: (item[0], item[1]))
    # A few phones were offline: some of their events arrive a little late, after others' events.
    arrival = []
    for position, (_, _, body) in enumerate(ordered):
        delay = rng.randint(1, 25) if body["customer_id"].endswith("7") and rng.random() < 0.3 else 0
        arrival.append((position + delay + (0.5 if delay else 0), body))
    return [body for _, body in sorted(arrival, key=lambda item: item[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for body in generate(args.customers, args.seed):
        sys.stdout.write(json.dumps(body, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
