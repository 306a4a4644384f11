"""The seeded synthetic workload: shoppers' sessions, customers drawn from a Zipf distribution.

Why sessions rather than independent events: rules look for journeys (add to cart, then checkout,
then no purchase), so a workload of unrelated events would never arm them and would flatter any
design. Each session picks its customer from a Zipf distribution (a few heavy users, a long tail),
starts at a uniform time in the span and walks a small funnel: mostly page views (which no rule
references except ``page_viewed`` of the ``services`` section), product views, searches and
clicks, some carts, checkouts and purchases, rarer whitepaper/trial events, and an ``identify``
at the start of some sessions. A small share of events arrive late or twice, as SDK retries do.

The same seed always yields the same events, in the same stream (arrival) order.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..contracts import Event
from ..timefmt import iso, parse_iso

SECTIONS = (("home", 30), ("blog", 24), ("category", 22), ("pricing", 8), ("docs", 8), ("services", 5), ("about", 3))
CATEGORIES = ("fitness", "yoga", "running", "outdoor", "kitchen", "home", "books", "toys", "garden", "beauty")
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Inês", "João", "Kai", "Lena")
COUNTRIES = ("PT", "ES", "FR", "DE", "GB", "US", "NO", "BR")
TIME_ZONES = {
    "PT": "Europe/Lisbon",
    "ES": "Europe/Madrid",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "NL": "Europe/Amsterdam",
    "IE": "Europe/Dublin",
    "GB": "Europe/London",
    "US": "America/New_York",
    "NO": "Europe/Oslo",
    "BR": "America/Sao_Paulo",
}
"""A customer's ``timezone`` trait, from the country (no random draw: the rest stays as it was)."""
TITLES = ("Serverless at scale", "Event-driven retail", "Real-time journeys", "Cost of streaming", "Triggers 101")
SEARCH_TERMS = ("yoga mat", "running shoes", "blender", "tent", "gift", "sale", "socks", "book", "lamp", "bottle")
YOGA_MAT, YOGA_BLOCKS = "SKU-YOGA-MAT", "SKU-YOGA-BLOCKS"

# One step of a session: (event kind, weight). Checkout and purchase follow carts (see _session).
_STEPS = (
    ("page", 530),
    ("product", 220),
    ("search", 80),
    ("cart", 50),
    ("remove", 10),
    ("checkout", 30),
    ("click", 60),
    ("whitepaper", 6),
    ("trial", 3),
    ("onboarding", 6),
    ("upgraded", 2),
)


@dataclass(frozen=True)
class WorkloadSpec:
    """Everything that determines the workload; the same spec always yields the same events."""

    events: int = 1_000_000
    customers: int = 100_000
    seed: int = 20261123
    zipf_s: float = 0.8
    """Zipf exponent of sessions per customer. 1.0 over 100k customers gives one customer 8 % of
    all traffic (a bot, not a shopper); 0.8 gives the top 1 % of customers a third of it."""
    heavy_customers: int = 0
    """How many customers (the first of the Zipf ranking) send ``heavy_factor`` times their share:
    the "a few customers hold ten times the events" scenario of ``nudge bench --history --heavy``."""
    heavy_factor: float = 10.0
    days: float = 7.0
    start: str = "2026-11-02T00:00:00Z"
    products: int = 2000
    mean_session_steps: float = 7.0
    identify_share: float = 0.12
    sms_consent_share: float = 0.5
    """Of the sessions that identify, the share that also grants SMS (a ``consent_updated``)."""
    push_consent_share: float = 0.3
    """Of the sessions that identify, the share that also grants push."""
    purchase_after_checkout: float = 0.35
    late_share: float = 0.01
    late_max_s: int = 600
    duplicate_share: float = 0.002

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Workload:
    """The events in stream order (the order a Kinesis shard would hold them)."""

    spec: WorkloadSpec
    events: list[Event]
    sessions: int = 0
    mix: dict[str, float] = field(default_factory=dict)

    @property
    def customers_seen(self) -> int:
        return len({e.customer_id for e in self.events})

    def summary(self) -> dict[str, Any]:
        span_ms = max(e.ts for e in self.events) - min(e.ts for e in self.events) if self.events else 0
        return {
            **self.spec.to_json(),
            "sessions": self.sessions,
            "customers_seen": self.customers_seen,
            "span_hours": round(span_ms / 3_600_000, 2),
            "event_mix": self.mix,
        }


def record_bytes(event: Event) -> bytes:
    """The envelope as an SDK puts it on the stream (what Kinesis stores and bills)."""
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "event": event.name,
        "timestamp": iso(event.ts),
        "properties": event.properties,
    }
    if event.traits:
        body["traits"] = event.traits
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class _Catalog:
    """Products with Zipf popularity; the yoga mat and blocks are popular, as the example rule assumes."""

    def __init__(self, rng: random.Random, size: int) -> None:
        skus = [f"SKU-{n:05d}" for n in range(1, size + 1)]
        skus[min(4, size - 1)] = YOGA_MAT
        skus[min(11, size - 1)] = YOGA_BLOCKS
        self.items: list[dict[str, Any]] = []
        for sku in skus:
            category = "yoga" if sku.startswith("SKU-YOGA") else rng.choice(CATEGORIES)
            self.items.append(
                {
                    "sku": sku,
                    "name": f"{category.title()} item {sku[-5:]}",
                    "price": round(rng.uniform(4, 240), 2),
                    "category": category,
                    "url": f"https://shop.example.com/p/{sku.lower()}",
                }
            )
        self.cum = list(itertools.accumulate(1.0 / rank for rank in range(1, size + 1)))

    def pick(self, rng: random.Random) -> dict[str, Any]:
        return self.items[_draw(rng, self.cum)]


def _draw(rng: random.Random, cum: Sequence[float]) -> int:
    """Index drawn with cumulative weights ``cum`` (``random.choices`` without its per-call overhead)."""
    return bisect.bisect_right(cum, rng.random() * cum[-1], 0, len(cum) - 1)


class _Generator:
    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.catalog = _Catalog(random.Random(spec.seed + 1), spec.products)
        self.customer_cum = list(
            itertools.accumulate(
                rank**-spec.zipf_s * (spec.heavy_factor if rank <= spec.heavy_customers else 1.0)
                for rank in range(1, spec.customers + 1)
            )
        )
        self.start_ms = parse_iso(spec.start)
        self.span_ms = int(spec.days * 86_400_000)
        self.step_names = [name for name, _ in _STEPS]
        self.step_cum = list(itertools.accumulate(weight for _, weight in _STEPS))
        self.section_names = [name for name, _ in SECTIONS]
        self.section_cum = list(itertools.accumulate(weight for _, weight in SECTIONS))

    def customers(self, count: int) -> list[int]:
        return self.rng.choices(range(1, self.spec.customers + 1), cum_weights=self.customer_cum, k=count)

    def session(self, number: int, rank: int) -> list[tuple[int, Event]]:
        """One visit: (arrival ms, event) pairs, arrivals later than timestamps for late/duplicate sends."""
        rng, spec = self.rng, self.spec
        customer = f"c-{rank:06d}"
        ts = self.start_ms + rng.randrange(self.span_ms)
        out: list[Event] = []

        def emit(name: str, properties: dict[str, Any] | None = None, traits: dict[str, Any] | None = None) -> None:
            nonlocal ts
            event_id = f"{ts:012x}{rng.getrandbits(80):020x}"
            out.append(
                Event(event_id=event_id, customer_id=customer, name=name, ts=ts, properties=properties, traits=traits)
            )
            ts += 1000 + int(rng.expovariate(1 / 40_000))

        if rng.random() < spec.identify_share:
            traits = {
                "email": f"{customer}@example.com",
                "first_name": rng.choice(FIRST_NAMES),
                "country": rng.choice(COUNTRIES),
            }
            traits["timezone"] = TIME_ZONES[traits["country"]]  # quiet hours are the customer's own
            emit("identify", traits=traits)
            # Consent, as a shop collects it: the SMS box at checkout, the app's push permission.
            # From a generator of its own, so the rest of the workload is what it was before consent.
            consent = random.Random(number)
            for channel, share in (("sms", spec.sms_consent_share), ("push", spec.push_consent_share)):
                if consent.random() < share:
                    out.append(
                        Event(
                            event_id=f"consent-{number}-{channel}",
                            customer_id=customer,
                            name="consent_updated",
                            ts=out[-1].ts,
                            properties={"channel": channel, "granted": True, "source": "bench"},
                        )
                    )
        steps = 1 + int(rng.expovariate(1 / spec.mean_session_steps))
        cart: list[dict[str, Any]] = []
        viewed: dict[str, Any] | None = None
        for _ in range(steps):
            kind = self.step_names[_draw(rng, self.step_cum)]
            if kind == "checkout" and not cart:
                kind = "page"
            if kind == "page":
                section = self.section_names[_draw(rng, self.section_cum)]
                page = rng.randrange(200)
                emit("page_viewed", {"section": section, "path": f"/{section}/{page}", "title": f"{section} {page}"})
            elif kind == "product":
                viewed = viewed if viewed is not None and rng.random() < 0.4 else self.catalog.pick(rng)
                emit("product_viewed", viewed)
            elif kind == "search":
                emit("search", {"query": rng.choice(SEARCH_TERMS)})
            elif kind == "cart":
                item = viewed if viewed is not None else self.catalog.pick(rng)
                cart.append(item)
                emit("add_to_cart", {**item, "quantity": 1 + int(rng.expovariate(2))})
            elif kind == "remove":
                emit("remove_from_cart", {"sku": cart.pop()["sku"]} if cart else {"sku": self.catalog.pick(rng)["sku"]})
            elif kind == "checkout":
                value = round(sum(item["price"] for item in cart), 2)
                emit("checkout_viewed", {"cart_value": value, "items": len(cart)})
                if rng.random() < spec.purchase_after_checkout:
                    order = f"o-{number}-{len(out)}"
                    emit("purchase", {"order_id": order, "sku": cart[0]["sku"], "revenue": value, "items": len(cart)})
                    cart = []
            elif kind == "click":
                emit("element_clicked", {"element": rng.choice(("banner", "menu", "footer", "filter"))})
            elif kind == "whitepaper":
                title = TITLES[0] if rng.random() < 0.6 else rng.choice(TITLES)
                emit("whitepaper_downloaded", {"title": title, "path": f"/whitepapers/{TITLES.index(title)}"})
            elif kind == "trial":
                emit("trial_started", {"plan": "pro"})
            elif kind == "onboarding":
                emit("onboarding_viewed", {"step": rng.randrange(1, 6)})
            else:
                emit("upgraded", {"plan": "pro"})
        arrivals: list[tuple[int, Event]] = []
        for event in out:
            arrival = event.ts
            if rng.random() < spec.late_share:
                arrival += rng.randrange(1000, spec.late_max_s * 1000)
            arrivals.append((arrival, event))
            if rng.random() < spec.duplicate_share:
                arrivals.append((arrival + rng.randrange(1000, 120_000), event))  # an SDK retry: same event id
        return arrivals


def generate(spec: WorkloadSpec) -> Workload:
    """Sessions until there are enough events, then stream order (arrival time), cut to ``spec.events``.

    The collector is paused meanwhile: a million young objects would trigger thousands of full
    collections for nothing (it halves the time), and the caller may ``gc.freeze()`` the result.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _generate(spec)
    finally:
        if paused:
            gc.enable()


def _generate(spec: WorkloadSpec) -> Workload:
    generator = _Generator(spec)
    arrivals: list[tuple[int, int, Event]] = []
    sessions = 0
    sequence = itertools.count()
    while len(arrivals) < spec.events:
        for rank in generator.customers(max(64, (spec.events - len(arrivals)) // 6)):
            sessions += 1
            arrivals.extend((arrival, next(sequence), event) for arrival, event in generator.session(sessions, rank))
            if len(arrivals) >= spec.events:
                break
    arrivals.sort(key=lambda item: (item[0], item[1]))
    events = [event for _, _, event in arrivals[: spec.events]]
    counts = Counter(event.name for event in events)
    mix = {name: round(count / len(events), 4) for name, count in counts.most_common()}
    return Workload(spec=spec, events=events, sessions=sessions, mix=mix)
