"""The evaluator's view of AWS: four small interfaces, implemented by ``nudge.adapters``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..contracts import Firing
from ..engine import CustomerState, TimerCancel, TimerSet
from .records import Rejected


class VersionConflict(Exception):
    """The stored state changed since it was read (another writer): reload and evaluate again."""


@dataclass
class StoredState:
    """A customer's state and the version it was read at (``None``: not stored yet)."""

    state: CustomerState
    version: int | None


class StateStore(Protocol):
    def load_many(self, customer_ids: Sequence[str]) -> Mapping[str, StoredState]:
        """Every requested customer, new ones as empty states with version ``None``."""
        ...

    def save(self, stored: StoredState, expires_at_s: int) -> None:
        """Write if the version is unchanged (else ``VersionConflict``); delete if the state is empty."""
        ...


class TimerScheduler(Protocol):
    def apply(self, requests: Sequence[TimerSet | TimerCancel]) -> None:
        """Create, move or delete timers; idempotent, so a retried batch may apply them again."""
        ...


class FiringSink(Protocol):
    def send(self, firings: Sequence[Firing]) -> list[Firing]:
        """Queue firings for delivery; return those that could not be queued."""
        ...


class DeadLetters(Protocol):
    def reject(self, rejected: Sequence[Rejected]) -> list[Rejected]:
        """Park bad records with their reason; return those that could not be parked."""
        ...
