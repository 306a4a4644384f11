"""What a firing would send, without sending it: the recipient, the rendered message and the request.

Pure: the channels' request builders (``ChannelRequest``, the same ones the adapters send with)
describe the provider call, and no client is called. ``nudge preview`` prints this; a test can
compare it with what a real send delivered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..contracts import FiringMessage
from .ports import ChannelRequest, InvalidRecipient, Outgoing
from .rendering import DeliverySettings, render_firing
from .requests import EventBridgeEntry, PinpointPush, SesEmail, SnsSms
from .templates import Rendered, TemplateSet

PREVIEW_BUS = "nudge-preview"
STACK_DEFAULT_DESTINATION = "(the stack's default webhook destination)"
"""Where a webhook firing without a destination goes, as a preview that knows no stack names it."""


@dataclass(frozen=True)
class WouldSend:
    """One firing's message as its channel would send it."""

    firing: FiringMessage
    recipient: Any
    """``None``: the profile has no address for the channel, and delivery would send nothing."""
    rendered: Rendered | None
    unsubscribe_url: str
    request: dict[str, Any] | None
    """The provider call's keyword arguments, exactly as the channel's ``send`` passes them (``None``: no recipient)."""
    recipient_problem: str | None = None
    """Why the profile's address is unusable (delivery would record ``failed_permanent``), if it is."""

    @property
    def eventbridge_detail(self) -> dict[str, Any] | None:
        """For ``webhook`` and ``event`` firings, the ``detail`` the bus's consumers receive."""
        if self.request is None or "Entries" not in self.request:
            return None
        detail: dict[str, Any] = json.loads(self.request["Entries"][0]["Detail"])
        return detail


def preview(
    firing: FiringMessage,
    templates: TemplateSet,
    settings: DeliverySettings,
    channels: Mapping[str, ChannelRequest],
) -> WouldSend:
    """Render ``firing`` and build its channel's request as delivery would, calling nothing.

    The message is rendered even for a customer without an address, to show what it would say.
    Raises ``RenderError`` when the template cannot render (delivery would park such a firing),
    and ``LookupError`` for a channel the stack does not have.
    """
    channel = channels.get(firing.channel)
    if channel is None:
        raise LookupError(f"no channel '{firing.channel}'")
    rendered, link = render_firing(firing, templates, settings)
    try:
        recipient = channel.recipient(firing)
    except InvalidRecipient as exc:
        return WouldSend(firing, None, rendered, link, None, str(exc).removeprefix("InvalidRecipient: "))
    request = None if recipient is None else channel.build(Outgoing(firing, recipient, rendered, link))
    return WouldSend(firing, recipient, rendered, link, request)


def offline_channels(from_address: str) -> dict[str, ChannelRequest]:
    """The channels as a preview without a stack sees them: placeholder bus, application and destination."""
    return {
        "email": SesEmail(from_address),
        "sms": SnsSms(),
        "push": PinpointPush("preview"),
        "webhook": EventBridgeEntry(PREVIEW_BUS, "webhook", STACK_DEFAULT_DESTINATION),
        "event": EventBridgeEntry(PREVIEW_BUS, "event"),
    }
