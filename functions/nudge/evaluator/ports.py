"""The evaluator's view of AWS: four small interfaces, implemented by ``nudge.adapters``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..contracts import Event, Firing
from ..engine import CustomerState, TimerCancel, TimerSet
from .records import Rejected


class VersionConflict(Exception):
    """The stored state changed since it was read (another writer): reload and evaluate again."""


@dataclass
class StateTooLarge(Exception):
    """The encoded state is over the store's budget: trim it (``Engine.fit``) and save again."""

    def __init__(self, size: int, budget: int) -> None:
        super().__init__(f"{size} bytes; the budget is {budget}")
        self.size = size
        self.budget = budget


@dataclass
class StoredState:
    """A customer's state and the version it was read at (``None``: not stored yet).

    ``profile`` is the durable profile as the store last read or wrote it (``codec.encode_profile``
    bytes, ``None``: none), and ``profile_expires_s`` when that copy expires: the store rewrites the
    profile only when it changed or its expiry needs moving, never on every behavioural write.
    """

    state: CustomerState
    version: int | None
    profile: bytes | None = None
    profile_expires_s: int | None = None
    tombstone: int | None = None
    """The erasure time the store's tombstone for this customer holds (``None``: none known): a
    state whose ``erased_at`` differs needs its tombstone written, and the rest erased."""


class StateStore(Protocol):
    def load_many(self, customer_ids: Sequence[str]) -> Mapping[str, StoredState]:
        """The requested customers, new ones as empty states with version ``None``; a customer the
        store could not read this time (throttled) is left out, and fails alone."""
        ...

    budget: int
    """The largest encoded state the store writes (bytes); a larger one raises ``StateTooLarge``."""

    def save(self, stored: StoredState, expires_at_s: int, profile_expires_at_s: int | None = None) -> None:
        """Write if the version is unchanged (else ``VersionConflict``); delete if the state is empty.

        The durable profile is written first, when it changed or ``profile_expires_at_s`` moved it
        far enough: a crash between the two writes leaves a profile the retried batch rewrites
        identically. Raises ``StateTooLarge``, writing nothing, for a state encoded beyond ``budget``.
        A state newly erased (``state.erased_at`` is not ``stored.tombstone``) first gets its
        tombstone, which holds only a hash of the id and the time, and loses its profile item.
        """
        ...

    def encoded_size(self, state: CustomerState) -> int:
        """The bytes ``save`` would write for ``state``."""
        ...


class TimerScheduler(Protocol):
    """Timers in two halves around the state write, each idempotent (a retried batch repeats them)."""

    def prepare(self, requests: Sequence[TimerSet | TimerCancel]) -> None:
        """Create the timers the new state needs: before the write, so a written wait always has one."""
        ...

    def release(self, requests: Sequence[TimerSet | TimerCancel]) -> None:
        """Remove the timers the written state replaced or cancelled: after the write, so a failed
        write leaves the previous state's timers in place; a leftover one comes as a no-op."""
        ...


class FiringSink(Protocol):
    def send(self, firings: Sequence[Firing]) -> list[Firing]:
        """Queue firings for delivery; return those that could not be queued."""
        ...


class MessageLog(Protocol):
    def record_feedback(self, events: Sequence[Event]) -> list[Event]:
        """Record each message event (``message_delivered``, ``_opened``...) against the firing its
        ``firing_id`` names; return those that could not be recorded (the store failed)."""
        ...

    def erase_customer(self, customer_id: str) -> int:
        """Delete every activation of the customer (each firing's head, attempts and message events);
        how many items went. Idempotent; raises when the store failed (the erasure is redelivered)."""
        ...


class DeadLetters(Protocol):
    def reject(self, rejected: Sequence[Rejected]) -> list[Rejected]:
        """Park bad records with their reason; return those that could not be parked."""
        ...
