"""What a run did, counted at the services, and whether that keeps Nudge's promise.

The promise (README, "Exactly once, and nothing lost"): every firing replay makes is queued, and
sent once, or parked with its reason for a person; no event is lost; nothing else is sent.

- **lost events**: workload events (and re-sent copies) that passed the mapping's filters but that
  no invocation ever reported done: discarded to the evaluator DLQ (past their retries or their
  record age), or never read. Counted from the mapping emulation's own account, not the function's.
- **firings vs replay**: the firing ids of every message moto's SQS accepted on the firings queue,
  against replay's: ``missing`` (replay's, never queued) and ``extra`` (queued, not replay's).
- **duplicate firings on the queue**: messages beyond the first per firing id. Expected after
  retries (effects come before the state write, and are idempotent), so reported, not judged.
- **duplicate sends**: emails beyond the first per firing in moto's SES backend.
- **delayed**: a firing that differs from replay's (missing or extra) for a customer whose record
  was first reported done by an invocation that started more than the allowed lateness after the
  record reached the stream (it waited behind a failing batch). Not an excuse: records are judged
  as of their arrival, so a delay must not change a firing; it says where to look when one does.
- **unsent**: replay's firings for a customer with an email address that moto's SES never got and
  that are not parked either (parked firings are accounted for: a person decides).
- **parked**: messages in the firings DLQ (with their ``reason`` attribute), in the rejected-events
  queue (with their ``reason`` field), and batches in the evaluator DLQ; a parked message without a
  reason breaks the promise that every parked message says why.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nudge.contracts import Firing, loads


@dataclass(frozen=True)
class Parked:
    """A message in a parking queue: where, the firing or record it holds, and why (``None``: no reason)."""

    queue: str
    subject: str
    reason: str | None


@dataclass
class Measurement:
    expected: int = 0
    queued: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    duplicate_firings: int = 0
    emails: int = 0
    duplicate_sends: int = 0
    unsent: list[str] = field(default_factory=list)
    delayed: list[str] = field(default_factory=list)
    """Firing ids in ``missing`` or ``extra`` of a delayed customer (see above)."""
    delayed_customers: int = 0
    lost_events: int = 0
    evaluated_events: int = 0
    discarded_batches: int = 0
    parked_firings: list[Parked] = field(default_factory=list)
    rejected_records: list[Parked] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def firings_match(self) -> bool:
        return not self.missing and not self.extra

    @property
    def without_reason(self) -> int:
        return sum(1 for p in [*self.parked_firings, *self.rejected_records] if not p.reason)

    def firings_vs_replay(self) -> str:
        if self.firings_match:
            return f"= ({self.expected})"
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing")
        if self.extra:
            parts.append(f"{len(self.extra)} extra")
        late = f"; {len(self.delayed)} of delayed customers" if self.delayed else ""
        return f"{', '.join(parts)} of {self.expected}{late}"

    def to_json(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "queued": self.queued,
            "missing": len(self.missing),
            "extra": len(self.extra),
            "duplicate_firings": self.duplicate_firings,
            "emails": self.emails,
            "duplicate_sends": self.duplicate_sends,
            "unsent": len(self.unsent),
            "delayed": len(self.delayed),
            "delayed_customers": self.delayed_customers,
            "lost_events": self.lost_events,
            "evaluated_events": self.evaluated_events,
            "discarded_batches": self.discarded_batches,
            "parked_firings": Counter(p.reason or "(no reason)" for p in self.parked_firings),
            "rejected_records": Counter(p.reason or "(no reason)" for p in self.rejected_records),
            "injected": self.injected,
            "notes": self.notes,
        }


def firing_ids_of(bodies: Iterable[str]) -> Counter[str]:
    """Firing ids of firings-queue bodies (a body that is not a firing counts under its first 40 characters)."""
    ids: Counter[str] = Counter()
    for body in bodies:
        try:
            ids[str(loads(body)["firing_id"])] += 1
        except (ValueError, KeyError, TypeError):
            ids[f"(not a firing) {body[:40]}"] += 1
    return ids


def sends_by_firing(prefixes: Iterable[str | None], fingerprints: Iterable[tuple[str, ...]]) -> Counter[str]:
    """Emails per firing (by the id's prefix), or per (to, subject, text) for one without it."""
    counts: Counter[str] = Counter()
    for prefix, fingerprint in zip(prefixes, fingerprints, strict=True):
        counts[prefix if prefix is not None else json.dumps(fingerprint)] += 1
    return counts


def has_address(firing: Firing) -> bool:
    email = firing.profile.get("email")
    return isinstance(email, str) and "@" in email


def rejection_reason(body: str, attributes: dict[str, str]) -> str | None:
    """A rejected-events message's reason: its body's ``reason`` field (the attribute as a fallback)."""
    try:
        reason = json.loads(body).get("reason")
    except (ValueError, AttributeError):
        reason = None
    return str(reason) if reason else attributes.get("reason") or None
