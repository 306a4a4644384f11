"""One virtual clock for everything in a run: Nudge's code, moto's services, botocore's retries.

A run spans hours of virtual time (waits of an hour, a two-hour quota outage, a seven-day trial)
and must take seconds, so nothing may read or wait on the wall clock:

- Nudge's components get ``clock`` (a ``nudge.clock.VirtualClock``): the evaluator's handler reads
  it as its wall clock, the Scheduler adapter and the deliverer through their ``clock`` argument.
- moto's SQS keeps visibility timeouts, receive timestamps and retention on the wall clock, and its
  Kinesis stamps ``ApproximateArrivalTimestamp`` with it; both are switched to this clock here, so
  ``ChangeMessageVisibility``, the redrive policy and record ages work in virtual time with moto's
  own logic (module-level names of moto 5.x; ``install`` fails loudly if they move).
- botocore sleeps between retries (``botocore.endpoint``) and, in adaptive mode, waits for its
  client-side rate limiter's tokens (``botocore.retries.bucket``); both advance this clock instead.
  Time spent retrying is therefore part of the run, as it is of a real invocation.

An invocation has a deadline (the function's timeout). A sleep that would pass it ends the
invocation there with ``InvocationTimeout``, a ``BaseException`` like the runtime killing the process:
no ``except Exception`` in Nudge's code can catch it.
"""

from __future__ import annotations

import contextlib
import time as _time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import botocore.endpoint
import botocore.retries.bucket
from botocore.exceptions import CapacityNotAvailableError

from nudge.clock import VirtualClock


class InvocationTimeout(BaseException):
    """The function ran past its timeout: Lambda ends the invocation, whatever the code was doing."""


class VirtualTime:
    """The run's clock, with invocation deadlines and back-stamped arrivals; see the module docstring."""

    def __init__(self, start_ms: int) -> None:
        self.clock = VirtualClock(start_ms)
        self._deadline: int | None = None
        self._stamp: int | None = None
        self.slept_ms = 0
        """Virtual time spent in botocore's retry sleeps and token waits (a measure of backoff)."""

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def advance_to(self, when_ms: int) -> None:
        self.clock.advance_to(when_ms)

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, ending the invocation if its deadline comes first."""
        if seconds <= 0:
            return
        target = self.now_ms() + max(1, round(seconds * 1000))
        if self._deadline is not None and target > self._deadline:
            self.slept_ms += max(0, self._deadline - self.now_ms())
            self.clock.advance_to(self._deadline)
            raise InvocationTimeout(f"timed out in a {seconds:.3f} s wait")
        self.slept_ms += target - self.now_ms()
        self.clock.set(target)

    # -- invocations -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def invocation(self, timeout_ms: int) -> Iterator[None]:
        """Give the code inside ``timeout_ms`` of virtual time (a Lambda function's timeout)."""
        saved = self._deadline
        self._deadline = self.now_ms() + timeout_ms
        try:
            yield
        finally:
            self._deadline = saved

    def remaining_ms(self) -> int:
        """What ``LambdaContext.get_remaining_time_in_millis`` says inside an invocation."""
        if self._deadline is None:
            return 0
        return max(0, self._deadline - self.now_ms())

    # -- arrival stamps --------------------------------------------------------------------------

    @contextlib.contextmanager
    def stamped(self, at_ms: int) -> Iterator[None]:
        """Records put inside arrive at ``at_ms``: a producer or Scheduler acts at its own time even
        when the (single-threaded) run gets to it after an invocation that spent virtual time."""
        saved = self._stamp
        self._stamp = at_ms
        try:
            yield
        finally:
            self._stamp = saved

    def _arrival_datetime(self) -> datetime:
        moment = self._stamp if self._stamp is not None else self.now_ms()
        return datetime.fromtimestamp(moment / 1000, tz=UTC).replace(tzinfo=None)  # moto's naive UTC

    # -- patches -----------------------------------------------------------------------------------

    def install(self) -> contextlib.ExitStack:
        """Switch moto's SQS and Kinesis and botocore's retry waits to this clock (undone on exit)."""
        import moto.kinesis.models
        import moto.sqs.models

        stack = contextlib.ExitStack()
        for module, names in ((moto.sqs.models, ("unix_time", "unix_time_millis")), (moto.kinesis.models, ("utcnow",))):
            missing = [name for name in names if not hasattr(module, name)]
            if missing:
                raise RuntimeError(f"{module.__name__} no longer has {missing}: update tests/faults/virtual_time.py")
        stack.enter_context(mock.patch.object(moto.sqs.models, "unix_time", lambda dt=None: self.now_ms() / 1000))
        stack.enter_context(
            mock.patch.object(moto.sqs.models, "unix_time_millis", lambda dt=None: float(self.now_ms()))
        )
        stack.enter_context(mock.patch.object(moto.kinesis.models, "utcnow", self._arrival_datetime))
        stack.enter_context(mock.patch.object(botocore.endpoint, "time", _TimeModule(self.sleep)))
        stack.enter_context(
            mock.patch.object(botocore.retries.bucket.Clock, "sleep", lambda _, amount: self.sleep(amount))
        )
        stack.enter_context(
            mock.patch.object(botocore.retries.bucket.Clock, "current_time", lambda _: self.now_ms() / 1000)
        )
        stack.enter_context(mock.patch.object(botocore.retries.bucket.TokenBucket, "_acquire", _virtual_acquire))
        return stack


class _TimeModule(types.ModuleType):
    """``time`` as ``botocore.endpoint`` sees it: everything real but ``sleep``."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        super().__init__("time")
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


def _virtual_acquire(self: Any, amount: float, block: bool) -> bool:
    """botocore's ``TokenBucket._acquire`` with the wait on its condition variable (wall time) replaced
    by the bucket's clock's ``sleep`` (virtual time, see ``install``); the arithmetic is botocore's."""
    self._refill()
    if amount <= self._current_capacity:
        self._current_capacity -= amount
        return True
    if not block:
        raise CapacityNotAvailableError()
    sleep_amount = self._sleep_amount(amount)
    while sleep_amount > 0:
        self._clock.sleep(sleep_amount)
        self._refill()
        sleep_amount = self._sleep_amount(amount)
    self._current_capacity -= amount
    return True
