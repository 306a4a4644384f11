"""Composition roots: configuration and a boto3 session in, wired services out.

The Lambda handlers, ``nudge local``, the bench and the tests all build their services here, so
none of them needs a handler module (and with it Powertools and the X-Ray SDK) to get an
evaluator or a deliverer. One module per function, so that a function's cold start imports only
what it runs: the evaluator never loads Jinja2 or the channel adapters. Nothing here imports
``aws_lambda_powertools`` or ``aws_xray_sdk``.
"""
