"""The stack in moto, in this process: the resources ``nudge.local.provision`` creates, as CDK would.

Two boto3 sessions share the one in-process moto: ``product`` is what Nudge's wiring builds its
clients from (faults are injected on those clients, never on the session), and ``service`` plays
AWS's own part (the event source mappings, Scheduler, the producers), whose clients are never
faulted. moto's backends are also read directly, where AWS has no API to read something back
(sent emails) or where polling through the API would only cost time (is a shard's tail unread?).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from nudge.local.environment import LOCAL_ENVIRONMENT, environment
from nudge.local.provision import LocalResources, provision
from nudge.settings import StackSettings

REGION = "eu-west-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
_FAKE_ENV = {
    **LOCAL_ENVIRONMENT,
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
"""Fake credentials; Powertools without X-Ray and with its logger at ERROR (a warning per rejected record)."""


@dataclass
class MotoStack:
    settings: StackSettings
    resources: LocalResources
    product: boto3.session.Session
    service: boto3.session.Session
    rules_dir: str

    def queue_name(self, url: str) -> str:
        return url.rstrip("/").rsplit("/", 1)[-1]

    def sqs_queue(self, url: str) -> Any:
        """moto's model of the queue at ``url`` (messages, visibility, receive counts)."""
        from moto.sqs.models import sqs_backends

        return sqs_backends[ACCOUNT][REGION].queues[self.queue_name(url)]

    @property
    def rejected_queue_url(self) -> str:
        return self.resources.config.rejected_queue_url


@contextlib.contextmanager
def moto_stack(settings: StackSettings, rules_dir: str) -> Iterator[MotoStack]:
    """moto in-process with the stack provisioned; the fake environment only inside the context."""
    with environment(_FAKE_ENV), mock_aws():
        product = boto3.session.Session(region_name=REGION)
        service = boto3.session.Session(region_name=REGION)
        resources = provision(product, settings, rules_dir=rules_dir)
        yield MotoStack(settings, resources, product, service, rules_dir)
