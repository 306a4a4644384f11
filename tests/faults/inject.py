"""Faults on the real clients, through botocore's ``before-send`` hook: not executed, or executed and lost.

A hook registered first on ``before-send.<service>.<Operation>`` sees every HTTP attempt, inside
botocore's retry loop, so the client's own retry policy (legacy, standard or adaptive, whatever
``nudge.wiring`` configured) meets the fault as it would meet AWS's. Each attempt is decided by a
seeded ``random.Random`` at the fault's rate, inside its window of virtual time:

- **not executed**: the hook answers with the error (a throttle, a quota, a 5xx) or raises a
  connect timeout, and moto never sees the request;
- **executed, response lost**: the hook hands the request to moto itself (``botocore_stubber.
  process_request``, the function moto's own ``before-send`` handler calls), then answers with a
  500 or raises a read timeout in place of moto's answer. moto's state changed; the caller cannot
  know. (``tests/faults/test_harness.py`` checks both against moto's backends.)
- **failed entries** (``SendMessageBatch``): entries picked at the rate are cut from the request,
  moto executes the rest, and the answer lists the cut ones under ``Failed``, as SQS reports a
  partial failure.
- **unprocessed keys** (``BatchGetItem``): moto answers, and the keys picked at the rate move to
  ``UnprocessedKeys``, DynamoDB's partial throttling; when every key is picked the call fails with
  ``ProvisionedThroughputExceededException``, as DynamoDB does when it can read none.

moto's own ``before-send`` handler runs after ours in the same emit (botocore calls every handler
and keeps the first answer), so a request we answered is marked and moto's handler is made to skip
it (``install``); otherwise "not executed" would still execute.

Faults attach to clients, never to a session: ``attach`` finds the clients of a service inside the
objects ``nudge.wiring`` built (``find_clients``), so the producers, the event source mappings and
Scheduler's own clients are never faulted.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from unittest import mock

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from .virtual_time import VirtualTime

Kind = Literal["error", "failed_entries", "unprocessed_keys"]
_HANDLED = "_nudge_fault_handled"


@dataclass(frozen=True)
class Fault:
    """One way calls of ``service``'s ``operations`` fail, at ``rate``, inside ``window`` (virtual ms)."""

    service: str
    """botocore's service name: ``dynamodb``, ``sqs``, ``scheduler``, ``sesv2``."""
    operations: tuple[str, ...]
    code: str
    status: int
    rate: float = 1.0
    executed: bool = False
    """True: moto executes the call and its answer is lost (replaced by this fault)."""
    timeout: bool = False
    """True: the answer is a timeout (a read timeout if executed, a connect timeout if not)."""
    window: tuple[int, int] | None = None
    kind: Kind = "error"

    def active(self, now_ms: int) -> bool:
        return self.window is None or self.window[0] <= now_ms < self.window[1]

    @property
    def label(self) -> str:
        how = "executed, answer lost" if self.executed else "not executed"
        return f"{self.service} {'/'.join(self.operations)} {self.code} ({how})"


@dataclass
class FaultInjector:
    """Registers faults on clients and counts what it injected (per fault label and operation)."""

    time: VirtualTime
    seed: int
    injected: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def install(self) -> contextlib.ExitStack:
        """Make moto's ``before-send`` handler skip requests a fault already answered."""
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__

        def call(stubber: Any, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
            if getattr(request, _HANDLED, False):
                return None
            return original(stubber, event_name, request, **kwargs)

        stack = contextlib.ExitStack()
        stack.enter_context(mock.patch.object(BotocoreStubber, "__call__", call))
        return stack

    def attach(self, root: Any, faults: Iterable[Fault]) -> int:
        """Register ``faults`` on every client of their service inside ``root``; return how many clients."""
        attached = 0
        for fault in faults:
            for client in find_clients(root, fault.service):
                attached += 1
                service_id = client.meta.service_model.service_id.hyphenize()
                for operation in fault.operations:
                    client.meta.events.register_first(
                        f"before-send.{service_id}.{operation}", self._hook(fault, operation)
                    )
        return attached

    def _hook(self, fault: Fault, operation: str) -> Any:
        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            if getattr(request, _HANDLED, False) or not fault.active(self.time.now_ms()):
                return None
            if fault.kind == "failed_entries":
                return self._failed_entries(fault, operation, request)
            if fault.kind == "unprocessed_keys":
                return self._unprocessed_keys(fault, operation, request)
            if self._rng.random() >= fault.rate:
                return None
            self.injected[f"{fault.label} {operation}"] += 1
            if fault.executed:
                _moto(request)
            setattr(request, _HANDLED, True)
            if fault.timeout:
                error = ReadTimeoutError if fault.executed else ConnectTimeoutError
                raise error(endpoint_url=request.url)
            return error_response(request, fault.status, fault.code)

        return before_send

    def _failed_entries(self, fault: Fault, operation: str, request: AWSPreparedRequest) -> AWSResponse:
        body = json.loads(request.body or b"{}")
        entries = body.get("Entries", [])
        cut = [entry for entry in entries if self._rng.random() < fault.rate]
        kept = [entry for entry in entries if entry not in cut]
        self.injected[f"{fault.label} {operation} failed entries"] += len(cut)
        answer: dict[str, Any] = {"Successful": [], "Failed": []}
        if kept:
            body["Entries"] = kept
            _set_body(request, json.dumps(body).encode())
            status, _, moto_body = _moto(request)
            answer = json.loads(moto_body or b"{}") if status == 200 else answer
        answer.setdefault("Failed", [])
        answer["Failed"] = list(answer["Failed"]) + [
            {"Id": entry["Id"], "SenderFault": False, "Code": fault.code, "Message": "injected"} for entry in cut
        ]
        setattr(request, _HANDLED, True)
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _raw(json.dumps(answer)))

    def _unprocessed_keys(self, fault: Fault, operation: str, request: AWSPreparedRequest) -> AWSResponse:
        asked = json.loads(request.body or b"{}").get("RequestItems", {})
        status, headers, moto_body = _moto(request)
        setattr(request, _HANDLED, True)
        answer = json.loads(moto_body or b"{}")
        if status != 200:
            return AWSResponse(request.url, status, headers, _raw(moto_body))
        total = sum(len(spec.get("Keys", [])) for spec in asked.values())
        unprocessed: dict[str, Any] = {}
        moved = 0
        for table, spec in asked.items():
            picked = [key for key in spec.get("Keys", []) if self._rng.random() < fault.rate]
            if not picked:
                continue
            moved += len(picked)
            unprocessed[table] = {**spec, "Keys": picked}
            pk_values = [json.dumps(key, sort_keys=True) for key in picked]
            answer.setdefault("Responses", {})[table] = [
                item
                for item in answer.get("Responses", {}).get(table, [])
                if json.dumps({name: item[name] for name in picked[0]}, sort_keys=True) not in pk_values
            ]
        if moved == 0:
            return AWSResponse(request.url, 200, headers, _raw(json.dumps(answer)))
        self.injected[f"{fault.label} {operation} unprocessed keys"] += moved
        if moved == total:
            return error_response(request, 400, "ProvisionedThroughputExceededException")
        answer["UnprocessedKeys"] = unprocessed
        return AWSResponse(request.url, 200, headers, _raw(json.dumps(answer)))


def error_response(request: AWSPreparedRequest, status: int, code: str) -> AWSResponse:
    """An AWS error answer every JSON protocol parses to ``code`` (``__type`` and ``x-amzn-ErrorType``)."""
    body = json.dumps({"__type": code, "message": "injected fault", "Message": "injected fault"})
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, status, headers, _raw(body))


def _moto(request: AWSPreparedRequest) -> tuple[int, dict[str, str], bytes]:
    """Have moto execute ``request`` now, as its own ``before-send`` handler would."""
    from moto.core.models import botocore_stubber

    answer = botocore_stubber.process_request(request)
    if answer is None:
        raise RuntimeError(f"moto does not serve {request.url}")
    status, headers, body = answer
    return status, dict(headers), body.encode() if isinstance(body, str) else body


def _set_body(request: AWSPreparedRequest, body: bytes) -> None:
    request.body = body
    request.headers["Content-Length"] = str(len(body))


def _raw(body: str | bytes) -> Any:
    from moto.core.botocore_stubber import MockRawResponse

    return MockRawResponse(body)


def find_clients(root: Any, service: str, depth: int = 4) -> list[Any]:
    """The botocore clients of ``service`` reachable from ``root`` through attributes, dicts and lists."""
    found: list[Any] = []
    seen: set[int] = set()

    def walk(item: Any, left: int) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        if isinstance(item, BaseClient):
            if item.meta.service_model.service_name == service:
                found.append(item)
            return
        if left == 0 or isinstance(item, str | bytes | int | float | bool) or item is None:
            return
        for child in _children(item):
            walk(child, left - 1)

    walk(root, depth)
    return found


def _children(item: Any) -> Iterator[Any]:
    if isinstance(item, dict):
        yield from item.values()
    elif isinstance(item, list | tuple | set | frozenset):
        yield from item
    elif hasattr(item, "__dict__"):
        yield from vars(item).values()
