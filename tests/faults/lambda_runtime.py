"""Lambda's side of an invocation: the context object, the timeout, and what counts as a function error.

The event source emulations (``esm``, ``sqs_consumer``) call ``Function.invoke`` with the event
Lambda would build. An invocation ends in one of four ways, as it does in AWS:

- ``ok``: the handler returned; its response (a partial batch response) is handed back;
- ``error``: the handler raised an ``Exception`` (Lambda reports ``Unhandled``);
- ``death``: a ``crash.ProcessDeath`` (the process was killed: out of memory, a runtime crash);
- ``timeout``: virtual time passed the function's timeout inside the handler (``InvocationTimeout``).

The last three are all "function errors" to the event source: no response, nothing acknowledged.

The handlers are Nudge's own (``nudge.handlers.evaluator.handler``, ``nudge.handlers.delivery.handler``),
Powertools decorators included. Neither takes a clock or a prebuilt service, so ``deploy_*``
replaces two module globals for the duration of a run: the cached service factory (``evaluator`` /
``deliverer``), which then returns the service the suite wired with ``nudge.wiring`` on moto and the
virtual clock, and the evaluator handler's ``WALL_CLOCK``, which becomes the virtual clock. (A seam
in the handlers, a clock and a service passed in, would make these patches unnecessary.)
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from unittest import mock

from .crash import ProcessDeath
from .virtual_time import InvocationTimeout, VirtualTime

Handler = Callable[[dict[str, Any], Any], Any]
Ending = Literal["ok", "error", "death", "timeout"]


@dataclass
class Context:
    """The ``LambdaContext`` fields Powertools and Nudge read; the remaining time is virtual."""

    time: VirtualTime
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/nudge"
    log_stream_name: str = "fault-suite"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.time.remaining_ms()


@dataclass(frozen=True)
class Invocation:
    """How one invocation ended, and what it answered."""

    ending: Ending
    response: Any = None
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        """A function error to the event source: no response to act on."""
        return self.ending != "ok"


@dataclass
class Function:
    """One Lambda function: a handler, a timeout, and a log of how its invocations ended."""

    name: str
    handler: Handler
    time: VirtualTime
    timeout_ms: int
    endings: dict[str, int] = field(default_factory=dict)
    current_event: dict[str, Any] | None = None
    """The event being handled (fault injectors that act mid-invocation read it)."""
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def invoke(self, event: dict[str, Any]) -> Invocation:
        context = Context(self.time, self.name, f"{self.name}-{next(self._ids)}")
        self.current_event = event
        try:
            with self.time.invocation(self.timeout_ms):
                result = Invocation("ok", self.handler(event, context))
        except ProcessDeath as death:
            result = Invocation("death", error=death)
        except InvocationTimeout as timeout:
            result = Invocation("timeout", error=timeout)
        except Exception as exc:  # the handler's own failure: Lambda's "Unhandled" function error
            result = Invocation("error", error=exc)
        finally:
            self.current_event = None
        self.endings[result.ending] = self.endings.get(result.ending, 0) + 1
        return result


class Deployment:
    """The service a handler's module factory hands out; ``replace`` is a redeploy (a new cold start)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def replace(self, service: Any) -> None:
        self.service = service

    def __call__(self) -> Any:
        return self.service


def deploy_evaluator(deployment: Deployment, time: VirtualTime) -> contextlib.ExitStack:
    """Point ``nudge.handlers.evaluator.handler`` at ``deployment``'s evaluator and the virtual clock."""
    import nudge.handlers.evaluator as module

    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(module, "evaluator", deployment))
    stack.enter_context(mock.patch.object(module, "WALL_CLOCK", time.clock))
    _quiet(module, stack)
    return stack


def deploy_delivery(deployment: Deployment) -> contextlib.ExitStack:
    """Point ``nudge.handlers.delivery.handler`` at ``deployment``'s deliverer (built with the virtual clock)."""
    import nudge.handlers.delivery as module

    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(module, "deliverer", deployment))
    _quiet(module, stack)
    return stack


def _quiet(module: Any, stack: contextlib.ExitStack) -> None:
    """Powertools' logger at ERROR while the run lasts: the handlers log a warning per rejected record
    and per partial batch, thousands of lines a run."""
    logger = getattr(module, "logger", None)
    if logger is None or not hasattr(logger, "setLevel"):
        return
    saved = logger.log_level
    logger.setLevel("ERROR")
    stack.callback(logger.setLevel, saved)


def evaluator_handler() -> Handler:
    """The evaluator function's entry point, as deployed (``nudge.handlers.evaluator.handler``)."""
    import nudge.handlers.evaluator as module

    return module.handler


def delivery_handler() -> Handler:
    """The delivery function's entry point, as deployed (``nudge.handlers.delivery.handler``)."""
    import nudge.handlers.delivery as module

    return module.handler
