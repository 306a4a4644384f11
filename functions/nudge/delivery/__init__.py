"""Delivery's domain: firings become personalized messages, sent once, with an audit trail.

Pure like the engine (no AWS SDK): templates and their context, unsubscribe tokens, the channels'
request builders (``requests``), ``preview`` of what a firing would send, the ``DeliveryService``
and the ``Deliverer`` around it, all talking to AWS only through the interfaces in ``ports``.
"""
