"""The metrics: AWS requests counted where they are made, DynamoDB units from item sizes, sizes, cold starts.

Requests are never estimated by hand: ``RequestCounter`` registers on each client's
``meta.events`` (``before-parameter-build`` keeps the request parameters, ``before-call`` and
``after-call`` bracket the call) and records every call the client makes, failed ones included.
DynamoDB request units follow the service's rules: a write costs one unit per started KiB of the
larger of the old and the new item, a read one unit per started 4 KiB (half for eventually
consistent reads), a read of a missing item still costs the minimum. Item sizes are computed from
the written items' parameters (attribute names plus values) and remembered per key, which is how
reads, which return projections, are sized. SQS bills one request per started 64 KiB of payload.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..engine import CustomerState

KIB = 1024
READ_UNIT_BYTES = 4 * KIB
SQS_CHUNK_BYTES = 64 * KIB

Listener = Callable[[str, Mapping[str, Any], Mapping[str, Any]], None]
"""Called after each successful call with ("service.Operation", request params, parsed response)."""


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes of one low-level attribute value, as DynamoDB sizes it for capacity."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        digits = data.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: item}) for item in data)
    if kind == "L":
        return 3 + sum(attribute_size(item) + 1 for item in data)
    if kind == "M":
        return 3 + sum(len(name.encode()) + attribute_size(item) + 1 for name, item in data.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of an item: every attribute's name plus its value."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass
class OperationCount:
    """One API operation's requests and what they bill."""

    requests: int = 0
    errors: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    billed_requests: int = 0
    seconds: float = 0.0


class RequestCounter:
    """Counts every call of the clients it is attached to, by ``service.Operation``."""

    def __init__(self, key_attributes: Mapping[str, Sequence[str]] | None = None) -> None:
        self.operations: dict[str, OperationCount] = {}
        self.item_sizes: dict[tuple[str, tuple[str, ...]], int] = {}
        self.key_attributes = dict(key_attributes or {})
        self.seconds = 0.0
        self.listeners: list[Listener] = []

    def attach(self, *clients: Any) -> None:
        for client in clients:
            events = client.meta.events
            events.register("before-parameter-build", self._keep_params)
            events.register("before-call", self._started)
            events.register("after-call", self._finished)

    # -- hooks ----------------------------------------------------------------------------------

    @staticmethod
    def _keep_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    @staticmethod
    def _started(context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def _finished(self, model: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        elapsed = time.perf_counter() - context.pop("bench_started", time.perf_counter())
        params: Mapping[str, Any] = context.pop("bench_params", {})
        name = f"{model.service_model.service_name}.{model.name}"
        count = self.operations.setdefault(name, OperationCount())
        count.requests += 1
        count.billed_requests += 1
        count.seconds += elapsed
        self.seconds += elapsed
        failed = "Error" in parsed
        count.errors += failed
        if name.startswith("dynamodb."):
            read, write = self._dynamodb_units(model.name, params, parsed, failed)
            count.read_units += read
            count.write_units += write
        elif name in ("sqs.SendMessage", "sqs.SendMessageBatch"):
            count.billed_requests += _sqs_chunks(model.name, params) - 1
        if not failed:
            for listener in self.listeners:
                listener(name, params, parsed)

    # -- DynamoDB -------------------------------------------------------------------------------

    def _key(self, table: str, attributes: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        names = self.key_attributes.get(table, ("pk",))
        return table, tuple(repr(attributes.get(name)) for name in names)

    def remember(self, table: str, item: Mapping[str, Mapping[str, Any]]) -> None:
        """An item written outside the counted clients (seeding): its size, for later reads."""
        self.item_sizes[self._key(table, item)] = item_size(item)

    def _read_units(self, table: str, key: Mapping[str, Any], consistent: bool) -> float:
        size = self.item_sizes.get(self._key(table, key), 0)
        units = max(1, math.ceil(size / READ_UNIT_BYTES))
        return float(units) if consistent else units / 2

    def _dynamodb_units(
        self, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any], failed: bool
    ) -> tuple[float, float]:
        if operation == "GetItem":
            return self._read_units(params["TableName"], params["Key"], bool(params.get("ConsistentRead"))), 0.0
        if operation == "BatchGetItem":
            unprocessed = parsed.get("UnprocessedKeys") or {}
            units = 0.0
            for table, request in params["RequestItems"].items():
                skipped = {self._key(table, key) for key in unprocessed.get(table, {}).get("Keys", [])}
                for key in request["Keys"]:
                    if self._key(table, key) not in skipped:
                        units += self._read_units(table, key, bool(request.get("ConsistentRead")))
            return units, 0.0
        if operation == "PutItem":
            key = self._key(params["TableName"], params["Item"])
            new = item_size(params["Item"])
            units = max(1, math.ceil(max(new, self.item_sizes.get(key, 0)) / KIB))
            if not failed:
                self.item_sizes[key] = new
            return 0.0, float(units)
        if operation == "UpdateItem":
            # Billed on the larger of the item before and after; a failed condition still costs the write.
            size = self.item_sizes.get(self._key(params["TableName"], params["Key"]), 0)
            return 0.0, float(max(1, math.ceil(size / KIB)))
        if operation == "DeleteItem":
            key = self._key(params["TableName"], params["Key"])
            size = self.item_sizes.get(key, 0) if failed else self.item_sizes.pop(key, 0)
            return 0.0, float(max(1, math.ceil(size / KIB)))
        return 0.0, 0.0

    # -- results --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, OperationCount]:
        return {name: OperationCount(**asdict(count)) for name, count in self.operations.items()}

    def requests(self) -> int:
        return sum(count.requests for count in self.operations.values())

    def units(self) -> tuple[float, float]:
        return (
            sum(count.read_units for count in self.operations.values()),
            sum(count.write_units for count in self.operations.values()),
        )


def _sqs_chunks(operation: str, params: Mapping[str, Any]) -> int:
    """64 KiB chunks of a send's payload (bodies and attributes): each is billed as one request."""
    entries = params.get("Entries", []) if operation == "SendMessageBatch" else [params]
    size = 0
    for entry in entries:
        size += len(str(entry.get("MessageBody", "")).encode())
        for name, attribute in (entry.get("MessageAttributes") or {}).items():
            size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode())
            size += len(str(attribute.get("StringValue", "")).encode()) + len(attribute.get("BinaryValue", b""))
    return max(1, math.ceil(size / SQS_CHUNK_BYTES))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of unsorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def state_sizes(encoded: Iterable[bytes]) -> dict[str, float]:
    """p50/p99/max of ``CustomerState.size()`` over the customers whose state is not empty.

    The per-event design stores an item even for customers with nothing to remember; those are
    left out so that both designs are compared over the same customers (``items`` counts all).
    """
    sizes: list[int] = []
    items = 0
    for raw in encoded:
        items += 1
        state = CustomerState.decode(raw)
        if not state.is_empty():
            sizes.append(state.size())
    return {
        "p50": percentile(sizes, 0.50),
        "p99": percentile(sizes, 0.99),
        "max": float(max(sizes, default=0)),
        "customers": float(len(sizes)),
        "items": float(items),
    }


def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]


EVALUATOR_COLD_START = """
import time
started = time.perf_counter()
import nudge.handlers.evaluator
from nudge.engine import Engine, load_plan
from nudge.evaluator.collector import tune_collector
Engine(load_plan({rules!r}))
tune_collector()  # as the handler does at the end of a Lambda init
print((time.perf_counter() - started) * 1000)
"""
"""What the evaluator's Lambda init does, timed from its first line: import the handler, compile
the rules, tune the collector (``{rules}`` is the rules folder)."""


def cold_start_ms(script: str, runs: int = 5, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Median over ``runs`` fresh interpreters of the milliseconds ``script`` prints.

    Each script times itself from its first line, so interpreter start-up is not included (Lambda's
    runtime is already up when it imports the handler), and ``.pyc`` files are warm, as they are
    in a Lambda bundle that ships them.
    """
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_package_root()), environment.get("PYTHONPATH")]))
    samples: list[float] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True, timeout=120
        )
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return {"median": round(statistics.median(samples), 1), "runs": [round(s, 1) for s in samples]}
