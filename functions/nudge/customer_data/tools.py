"""The three things an operator does for one customer: explain, export, erase; each one audited.

``CustomerDataTools`` is what ``nudge explain``, ``nudge export`` and ``nudge erase`` run, with the
operator's own credentials (``infra/customer_data.py`` makes the least-privilege role). It holds no
AWS logic of its own beyond reads: an erasure is an ``erasure_requested`` event on the customer's
stream, so the evaluator, the one writer of the customer's state, does it in order (the state,
the profile, the pending schedules, the activations; a tombstone stays). A shop's own privacy page
can call the same class from a Lambda (README "Customer data").

Every call writes one audit record before it answers, whatever the outcome: who (STS
GetCallerIdentity), what, when, which customer (a hash, for an erasure) and how it ended. A call
whose audit record cannot be written fails: an unaudited look at a customer may not succeed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapters.audit_log import AuditRecord, DynamoDBAuditLog
from ..clock import WALL_CLOCK, Clock
from ..contracts import customer_hash
from ..engine import CustomerState, Engine
from ..engine.explain import CustomerExplanation, explain_customer
from ..settings import ResourceNames
from ..timefmt import iso
from .document import export_document
from .holdings import Holdings, read_holdings

UNKNOWN = "unknown_customer"


class UnknownCustomer(Exception):
    """Nudge holds nothing about the customer (no state, no profile, no activation, no tombstone)."""


@dataclass
class ErasureResult:
    """How an erase ended: ``outcome`` is ``erased``, ``already_erased``, ``requested`` or ``pending``."""

    outcome: str
    erased_at: int | None = None
    removed: dict[str, int] = field(default_factory=dict)
    """What the erasure found and removed: state items, profile items, activations, pending waits."""

    def summary(self) -> str:
        """What was held, in words: ``the state, the profile, 1 pending wait, 2 activations``."""
        return _summary(self.removed)


def _summary(removed: dict[str, int]) -> str:
    parts = [
        label for what, label in (("state_items", "the state"), ("profile_items", "the profile")) if removed.get(what)
    ]
    for what, one in (("pending_waits", "pending wait"), ("activations", "activation")):
        count = removed.get(what, 0)
        parts.append(f"{count} {one}{'' if count == 1 else 's'}")
    return ", ".join(parts)


def _unknown(customer_id: str, names: ResourceNames) -> UnknownCustomer:
    return UnknownCustomer(
        f"Nudge holds nothing about customer {customer_id!r}: no state in {names.state_table}, no profile or "
        f"erasure in {names.profile_table}, no activation in {names.activations_table} (check the id, and "
        "--prefix for another stack)"
    )


class CustomerDataTools:
    """Explain, export and erase one customer at a time; ``clients`` are boto3 clients of one session."""

    def __init__(
        self,
        *,
        dynamodb: Any,
        kinesis: Any,
        sts: Any,
        names: ResourceNames,
        engine: Engine | None = None,
        audit_retention_days: int = 1095,
        clock: Clock = WALL_CLOCK,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dynamodb = dynamodb
        self.kinesis = kinesis
        self.sts = sts
        self.names = names
        self.engine = engine
        self.audit = DynamoDBAuditLog(dynamodb, names.audit_table, audit_retention_days, clock=clock)
        self.clock = clock
        self.sleep = sleep
        self._principal: str | None = None

    @classmethod
    def from_session(
        cls, session: Any, names: ResourceNames, engine: Engine | None, endpoint_url: str | None = None, **options: Any
    ) -> CustomerDataTools:
        def client(service: str) -> Any:
            return session.client(service, endpoint_url=endpoint_url)

        return cls(
            dynamodb=client("dynamodb"),
            kinesis=client("kinesis"),
            sts=client("sts"),
            names=names,
            engine=engine,
            **options,
        )

    @property
    def principal(self) -> str:
        """The caller's IAM principal ARN: who the audit says did it."""
        if self._principal is None:
            self._principal = str(self.sts.get_caller_identity()["Arn"])
        return self._principal

    def _audit(self, action: str, customer: str, outcome: str, detail: str = "") -> None:
        self.audit.record(AuditRecord(self.clock.now_ms(), self.principal, action, customer, outcome, detail))

    def _read(self, action: str, customer_id: str, audited_as: str, detail: str) -> Holdings:
        try:
            held = read_holdings(self.dynamodb, self.names, customer_id)
        except Exception as exc:
            self._audit(action, audited_as, f"failed: {type(exc).__name__}", detail)
            raise
        return held

    # -- explain --------------------------------------------------------------------------------

    def explain(self, customer_id: str, rule_id: str | None = None, at: int | None = None) -> CustomerExplanation:
        """Why each rule did or did not fire for the customer, from the state the evaluator keeps
        (``at``: judge the conditions at that instant rather than at her latest event)."""
        detail = f"rule {rule_id}" if rule_id else "every rule"
        if self.engine is None:
            raise ValueError("explain needs the rules: build the tools with an engine of the deployed rules")
        if rule_id is not None and rule_id not in self.engine.plan.by_id:
            known = ", ".join(sorted(self.engine.plan.by_id))
            raise ValueError(f"no rule {rule_id!r} in the rules loaded (they are: {known})")
        held = self._read("explain", customer_id, customer_id, detail)
        if not held.known:
            self._audit("explain", customer_id, UNKNOWN, detail)
            raise _unknown(customer_id, self.names)
        explanation = explain_customer(self.engine, self._state_of(held), rule_id, at)
        self._audit("explain", customer_id, "ok" if held.state is not None else "no_state", detail)
        return explanation

    def _state_of(self, held: Holdings) -> CustomerState:
        """The state to explain: the stored one, or, for a customer with only a profile, the profile."""
        if held.state is not None:
            return held.state
        state = held.profile if held.profile is not None else CustomerState(held.customer_id)
        state.erased_at = held.erased_at
        return state

    # -- export ---------------------------------------------------------------------------------

    def export(self, customer_id: str) -> dict[str, Any]:
        """Everything held about the customer, as one document (``document.export_document``)."""
        held = self._read("export", customer_id, customer_id, "")
        if not held.holds_data:
            outcome = UNKNOWN if held.erased_at is None else "erased"
            self._audit("export", customer_id, outcome)
            if held.erased_at is not None:
                raise UnknownCustomer(
                    f"customer {customer_id!r} was erased at {iso(held.erased_at)}: Nudge holds nothing about them "
                    "but a tombstone (a hash of the id and that time)"
                )
            raise _unknown(customer_id, self.names)
        document = export_document(held, self.clock.now_ms())
        counts = f"{len(document['events'])} events, {len(document['activations'])} activations"
        self._audit("export", customer_id, "ok", counts)
        return document

    # -- erase ----------------------------------------------------------------------------------

    def erase(self, customer_id: str, wait_seconds: float = 0) -> ErasureResult:
        """Request the erasure on the customer's stream; with ``wait_seconds``, wait until it is done.

        Idempotent: a customer already erased (a tombstone, nothing else held) is reported as such
        and nothing is sent. The audit keeps the id's hash only.
        """
        hashed = customer_hash(customer_id)
        held = self._read("erase", customer_id, hashed, "")
        if not held.holds_data:
            if held.erased_at is None:
                self._audit("erase", hashed, UNKNOWN)
                raise _unknown(customer_id, self.names)
            self._audit("erase", hashed, "already_erased", f"erased at {iso(held.erased_at)}")
            return ErasureResult("already_erased", held.erased_at)
        removed = {
            "state_items": int(held.state is not None),
            "profile_items": int(held.profile is not None),
            "activations": len(held.activations),
            "pending_waits": len(held.state.pending()) if held.state is not None else 0,
        }
        summary = _summary(removed)
        try:
            self._request(customer_id)
        except Exception as exc:
            self._audit("erase", hashed, f"failed: {type(exc).__name__}", summary)
            raise
        if wait_seconds <= 0:
            self._audit("erase", hashed, "requested", summary)
            return ErasureResult("requested", removed=removed)
        deadline = time.monotonic() + wait_seconds
        while True:
            held = read_holdings(self.dynamodb, self.names, customer_id)
            if held.erased_at is not None and not held.holds_data:
                self._audit("erase", hashed, "erased", summary)
                return ErasureResult("erased", held.erased_at, removed)
            if time.monotonic() >= deadline:
                self._audit("erase", hashed, "pending", summary)
                return ErasureResult("pending", removed=removed)
            self.sleep(0.5)

    def _request(self, customer_id: str) -> None:
        from ..sdk import Tracker  # noqa: PLC0415 - the producer's own validation and retries

        with Tracker(self.names.stream, client=self.kinesis, flush_at_exit=False) as tracker:
            tracker.request_erasure(customer_id, timestamp=iso(self.clock.now_ms()))

    # -- the trail ------------------------------------------------------------------------------

    def audit_since(self, since_ms: int) -> list[AuditRecord]:
        """The audit records since ``since_ms``, oldest first (readable by the tools' role only)."""
        return self.audit.since(since_ms)
