"""Process deaths at the effect boundaries of the evaluator and of delivery.

A Lambda process can die anywhere: out of memory, a runtime crash, the host going away. What
matters is where the effects stand when it does. ``ProcessDeath`` is a ``BaseException``, so no
``except Exception`` in Nudge's code catches it, and the emulations treat it as the invocation
dying: no response, so the stream redelivers the whole batch and SQS the whole receive.

Deaths are raised by wrapping methods of the adapters on the very instances ``nudge.wiring``
built (the scheduler, the firing sink, the state store; the activation log, the email channel),
or the handler itself for the last boundary of each function ("before the response": the work is
done, the answer is lost). Each boundary dies on the first pass of a given call (its key: the
timers, the firing ids, the customer and version, the batch's records) with a seeded probability,
and never again for that key, so every run makes progress and every death is repaired by a retry
of exactly the work it interrupted.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal
from unittest import mock


class ProcessDeath(BaseException):
    """The process died at ``boundary``: nothing after it ran, nothing was answered."""

    def __init__(self, boundary: str) -> None:
        super().__init__(boundary)
        self.boundary = boundary


class CrashPlan:
    """Decides, per boundary and key, whether this pass dies (seeded, at most once per key)."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.passed: set[tuple[str, Hashable]] = set()
        self.deaths: Counter[str] = Counter()

    def strike(self, boundary: str, key: Hashable) -> None:
        """Raise ``ProcessDeath`` if this is the first pass of ``key`` and the dice say so."""
        if (boundary, key) in self.passed:
            return
        self.passed.add((boundary, key))
        if self.rng.random() < self.rate:
            self.deaths[boundary] += 1
            raise ProcessDeath(boundary)


Key = Callable[[tuple[Any, ...], dict[str, Any]], Hashable]


@dataclass(frozen=True)
class Boundary:
    """Where a process can die: just ``before`` or just ``after`` ``target(service).method``."""

    name: str
    target: Callable[[Any], Any]
    method: str | tuple[str, ...]
    """The method wrapped; several names: the first the instance has (the port's name changed)."""
    when: Literal["before", "after"]
    key: Key
    only_if: Callable[[Any], bool] = lambda _result: True
    """After the call: die only if its result says the effect happened (a claim that was won)."""

    def install(self, service: Any, plan: CrashPlan) -> contextlib.ExitStack:
        owner = self.target(service)
        names = (self.method,) if isinstance(self.method, str) else self.method
        method = next((name for name in names if hasattr(owner, name)), None)
        if method is None:
            raise AttributeError(f"{type(owner).__name__} has none of {names}: update tests/faults/crash.py")
        original = getattr(owner, method)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            key = self.key(args, kwargs)  # before the call: the call may change its arguments
            if self.when == "before":
                plan.strike(self.name, key)
            result = original(*args, **kwargs)
            if self.when == "after" and self.only_if(result):
                plan.strike(self.name, key)
            return result

        stack = contextlib.ExitStack()
        stack.enter_context(mock.patch.object(owner, method, wrapped))
        return stack


def _timers_key(args: tuple[Any, ...], _: dict[str, Any]) -> Hashable:
    return ("timers", *(repr(request) for request in args[0]))


def _firings_key(args: tuple[Any, ...], _: dict[str, Any]) -> Hashable:
    return ("firings", *(firing.firing_id for firing in args[0]))


def _save_key(args: tuple[Any, ...], _: dict[str, Any]) -> Hashable:
    stored = args[0]
    return ("save", stored.state.customer_id, stored.version)


def _firing_arg_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    firing = args[0] if args else kwargs["firing"]
    return getattr(firing, "firing_id", None) or firing.firing.firing_id  # a FiringMessage or an Outgoing


def _won(result: Any) -> bool:
    return str(getattr(result, "value", result)) == "new"


EVALUATOR_BOUNDARIES = {
    "after timers applied": Boundary(
        "after timers applied", lambda e: e.scheduler, ("prepare", "apply"), "after", _timers_key
    ),
    "after firings queued": Boundary("after firings queued", lambda e: e.sink, "send", "after", _firings_key),
    "after the state write": Boundary("after the state write", lambda e: e.store, "save", "after", _save_key),
}
"""Boundaries inside ``BatchEvaluator.evaluate``, on the adapters ``build_evaluator`` wired."""

DELIVERY_BOUNDARIES = {
    "after the claim": Boundary(
        "after the claim", lambda d: d.service.log, "claim", "after", _firing_arg_key, only_if=_won
    ),
    "just before the provider call": Boundary(
        "just before the provider call", lambda d: d.service.channels["email"], "send", "before", _firing_arg_key
    ),
    "after the provider call": Boundary(
        "after the provider call", lambda d: d.service.channels["email"], "send", "after", _firing_arg_key
    ),
}
"""Boundaries inside ``DeliveryService.deliver``: the activation log and the SES channel ``build_deliverer`` wired."""

BEFORE_RESPONSE = "before the response"
"""The handler's work is done and the process dies before Lambda gets the answer."""


def die_before_response(handler: Callable[..., Any], plan: CrashPlan, key: Callable[[dict[str, Any]], Hashable]) -> Any:
    """``handler``, dying after it returns (the batch was handled, the answer never reached Lambda)."""

    def wrapped(event: dict[str, Any], context: Any) -> Any:
        response = handler(event, context)
        plan.strike(BEFORE_RESPONSE, key(event))
        return response

    return wrapped


def kinesis_batch_key(event: dict[str, Any]) -> Hashable:
    return tuple(record["kinesis"]["sequenceNumber"] for record in event["Records"])


def sqs_batch_key(event: dict[str, Any]) -> Hashable:
    return tuple(record["messageId"] for record in event["Records"])
