"""Generated rule sets for ``--scaling``: 10, 50 or 200 variants of the example rules, distinct ids.

A real set of 200 rules does not run 33 copies of one journey: it targets different products,
categories, plans and content. ``narrowed`` sets (the default) keep the example rules and add
variants the way a shop grows its rules: one cart reminder and one repeated-views nudge per
product category, one lead rule per whitepaper, one trial rule per plan, one loyalty rule per
basket size, and cross-sell pairs ("viewed X, then Y") for the rest, each pair its own products.
An event then takes part in a few rules and is only *checked* against the others, so what grows
with the rule count is the cost of those checks. ``copies`` makes every variant identical but
for its id: every relevant event is evaluated by every copy, so the work grows with the count by
construction.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..engine import Yaml12Loader
from ..engine.language.policy import POLICY_FILES
from .workload import CATEGORIES, TITLES

PLANS = ("pro", "team", "enterprise", "starter")
BASKETS = (2, 3, 4)
# (family, how many variants it can have before it repeats a segment)
FAMILIES = (
    ("cart_abandonment", len(CATEGORIES)),
    ("repeated_product_views", len(CATEGORIES)),
    ("whitepaper_engaged_lead", len(TITLES)),
    ("trial_engaged_no_upgrade", len(PLANS)),
    ("purchase_frequency_rising", len(BASKETS)),
)
CROSS_SELL = "yoga_mat_then_blocks"


def _base_rules(rules_dir: Path) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted(p for p in rules_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
        if path.name in POLICY_FILES:
            continue
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=Yaml12Loader)
        rules.extend(loaded if isinstance(loaded, list) else [loaded])
    return [rule for rule in rules if rule.get("enabled", True)]


def _narrow(rule: dict[str, Any], n: int) -> dict[str, Any]:
    """Segment ``n`` of one of the example rules (n counts from 0 within its family)."""
    when = rule["when"]
    family = rule["id"]
    rule["id"] = f"{family}_v{n + 1}"
    if family == "cart_abandonment":
        when["sequence"][0]["where"] = {"category": CATEGORIES[n]}
    elif family == "repeated_product_views":
        when["where"] = {"category": CATEGORIES[n]}
    elif family == "whitepaper_engaged_lead":
        when["all"][0]["where"] = {"title": TITLES[n]}
    elif family == "trial_engaged_no_upgrade":
        when["sequence"][0]["where"] = {"plan": PLANS[n]}
    elif family == "purchase_frequency_rising":
        when["trend"]["where"] = {"items": {"gte": BASKETS[n]}}
    else:  # cross-sell: its own pair of products, past the catalogue's first 20
        when["sequence"][0]["where"] = {"sku": f"SKU-{21 + 2 * n:05d}"}
        when["sequence"][1]["where"] = {"sku": f"SKU-{22 + 2 * n:05d}"}
    return rule


def _narrowed(bases: dict[str, dict[str, Any]], count: int) -> list[dict[str, Any]]:
    rules = [copy.deepcopy(rule) for rule in bases.values()][:count]
    for family, limit in FAMILIES:
        for n in range(limit):
            if len(rules) < count and family in bases:
                rules.append(_narrow(copy.deepcopy(bases[family]), n))
    n = 0
    while len(rules) < count and CROSS_SELL in bases:
        rules.append(_narrow(copy.deepcopy(bases[CROSS_SELL]), n))
        n += 1
    return rules


def _copies(bases: dict[str, dict[str, Any]], count: int) -> list[dict[str, Any]]:
    rules = []
    originals = list(bases.values())
    for index in range(count):
        rule = copy.deepcopy(originals[index % len(originals)])
        if index >= len(originals):
            rule["id"] = f"{rule['id']}_v{index // len(originals)}"
        rules.append(rule)
    return rules


def generate_rules(rules_dir: str | Path, count: int, out_dir: Path, mode: str = "narrowed") -> Path:
    """Write ``count`` rules (the rules of ``rules_dir`` and their variants) to ``out_dir``; return it."""
    bases = {rule["id"]: rule for rule in _base_rules(Path(rules_dir))}
    rules = _narrowed(bases, count) if mode == "narrowed" else _copies(bases, count)
    if len(rules) < count:
        raise ValueError(f"cannot make {count} distinct rules from {len(bases)} in {rules_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for name in POLICY_FILES:  # the variants run under the same policy
        if (Path(rules_dir) / name).is_file():
            shutil.copy(Path(rules_dir) / name, out_dir / name)
    return out_dir
