"""The stack's signing secret, as every function that needs it reads it."""

from __future__ import annotations

from typing import Any, Protocol


class SignedConfig(Protocol):
    @property
    def unsubscribe_secret(self) -> str: ...

    @property
    def unsubscribe_secret_arn(self) -> str: ...


def unsubscribe_secret(config: SignedConfig, session: Any) -> bytes:
    """The key that signs unsubscribe links (and from which the SMS phone index's key is derived):
    given directly (local stacks, tests) or read from Secrets Manager."""
    if config.unsubscribe_secret:
        return config.unsubscribe_secret.encode()
    if config.unsubscribe_secret_arn:
        client = session.client("secretsmanager")
        return str(client.get_secret_value(SecretId=config.unsubscribe_secret_arn)["SecretString"]).encode()
    raise ValueError("set NUDGE_UNSUBSCRIBE_SECRET or NUDGE_UNSUBSCRIBE_SECRET_ARN")
