"""Push for the local stack: moto has no End User Messaging Push, so the send is emulated, not the provider.

``LocalPushOutbox`` is a ``Channel`` (``nudge.delivery.ports``) with production's request builder
(``PinpointPush``): it records each ``SendMessages`` request it would make — device tokens, title,
body — and answers a message id, so push firings are delivered like email and SMS and tests can
read what went out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..contracts import FiringMessage
from ..delivery.ports import Outgoing
from ..delivery.requests import PinpointPush

LOCAL_APPLICATION_ID = "local"


@dataclass(frozen=True)
class PushMessage:
    """One push the local stack sent: the firing, its device tokens, and what the notification says."""

    message_id: str
    firing_id: str
    customer_id: str
    rule: str
    tokens: list[str]
    title: str
    body: str
    request: dict[str, Any] = field(repr=False)


class LocalPushOutbox:
    """The ``push`` channel of the local stack: the request production would send, kept in memory."""

    name = "push"

    def __init__(self, application_id: str = LOCAL_APPLICATION_ID) -> None:
        self.request = PinpointPush(application_id)
        self.messages: list[PushMessage] = []

    def recipient(self, firing: FiringMessage) -> Any:
        return self.request.recipient(firing)

    def build(self, message: Outgoing) -> dict[str, Any]:
        return self.request.build(message)

    def send(self, message: Outgoing) -> str:
        request = self.build(message)
        push = request["MessageRequest"]["MessageConfiguration"]["GCMMessage"]
        message_id = f"local-push-{len(self.messages) + 1}"
        self.messages.append(
            PushMessage(
                message_id=message_id,
                firing_id=message.firing.firing_id,
                customer_id=message.firing.customer_id,
                rule=message.firing.rule,
                tokens=sorted(request["MessageRequest"]["Addresses"]),
                title=push["Title"],
                body=push["Body"],
                request=request,
            )
        )
        return message_id
