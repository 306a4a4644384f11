"""Composition roots: configuration and a boto3 session in, wired services out.

The Lambda handlers, ``nudge local``, the bench and the tests all build their services here, so
none of them needs a handler module (and with it Powertools and the X-Ray SDK) to get an
evaluator or a deliverer. Nothing in this module imports ``aws_lambda_powertools`` or
``aws_xray_sdk``.
"""

from __future__ import annotations

# -- evaluator


# -- delivery
