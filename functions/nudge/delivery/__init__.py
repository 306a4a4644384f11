"""Delivery's domain: firings become personalized messages, sent once, with an audit trail.

Pure like the engine (no AWS SDK): templates and their context, unsubscribe tokens, and the
``DeliveryService`` that talks to channels and the activation log through small ports.
"""
