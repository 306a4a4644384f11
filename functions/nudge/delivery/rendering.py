"""From a firing to the message it says and its unsubscribe link: the step delivery and preview share."""

from __future__ import annotations

from dataclasses import dataclass

from ..contracts import FiringMessage
from .context import template_context
from .templates import Rendered, RenderError, TemplateSet
from .unsubscribe import unsubscribe_url


@dataclass(frozen=True)
class DeliverySettings:
    """The stack's settings every message uses: links, the unsubscribe key, how often to try."""

    site_url: str
    unsubscribe_base_url: str
    unsubscribe_secret: bytes
    max_attempts: int = 5


def render_firing(
    firing: FiringMessage, templates: TemplateSet, settings: DeliverySettings
) -> tuple[Rendered | None, str]:
    """The firing's rendered template (``None`` when the rule names none) and its unsubscribe link.

    Raises ``RenderError`` when the template is missing or a value it needs is not there.
    """
    link = unsubscribe_url(
        settings.unsubscribe_base_url, settings.unsubscribe_secret, firing.customer_id, firing.channel
    )
    if firing.template is None:
        return None, link
    template = templates.get(firing.channel, firing.template)
    if template is None:
        raise RenderError(f"no {firing.channel} template named {firing.template}")
    context = template_context(firing, site_url=settings.site_url, unsubscribe_url=link)
    return template.render(context), link
