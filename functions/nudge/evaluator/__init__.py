"""The evaluator's domain: a Kinesis batch in, engine decisions out, I/O through ports.

``BatchEvaluator`` is what the Lambda handler and the local stack call; it talks to AWS only
through the small interfaces in ``ports`` (implemented in ``nudge.adapters``).
"""

from .batch import BatchEvaluator, BatchReport, EventWalls
from .ports import DeadLetters, FiringSink, StateStore, StoredState, TimerScheduler, VersionConflict
from .records import InputRecord, Rejected, TimerRecord, decode_record

__all__ = [
    "BatchEvaluator",
    "BatchReport",
    "DeadLetters",
    "EventWalls",
    "FiringSink",
    "InputRecord",
    "Rejected",
    "StateStore",
    "StoredState",
    "TimerRecord",
    "TimerScheduler",
    "VersionConflict",
    "decode_record",
]
