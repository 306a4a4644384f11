"""Cyclic garbage-collector settings for a process that evaluates batches.

A batch decodes and encodes every customer it touches: tens of thousands of short-lived dicts and
lists, each freed by reference counting as soon as its customer is done. CPython's cyclic collector
still runs a young-generation pass every 700 net container allocations, and every tenth of those an
older pass over everything that has survived, the compiled rules and the loaded modules included.
Those passes find next to nothing (the hot path makes no reference cycles) and cost 7-10 % of the
engine's time on the benchmark. Freezing what start-up built and letting the young generation
grow to 20,000 objects keeps the collector for what it is for, at the price of a few megabytes
of garbage that may wait a little longer.

No full collection precedes the freeze: on Lambda it would add ~67 ms to every cold start to
reclaim the little cyclic garbage that importing boto3 and Powertools leaves behind.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_GENERATION = 20_000


def tune_collector() -> tuple[int, int, int]:
    """Freeze what exists now and raise the young-generation threshold; returns the old thresholds."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, previous[1], previous[2])
    return previous


@contextmanager
def tuned_collector() -> Iterator[None]:
    """``tune_collector`` for a while (the benchmark), then the previous settings again."""
    gc.collect()  # outside a cold start the full pass is affordable: freeze no garbage
    previous = tune_collector()
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
