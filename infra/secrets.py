"""Generated signing keys: a Secrets Manager secret under the stack's key, for HMACs."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct


def signing_key(
    scope: Construct, construct_id: str, *, description: str, key: kms.IKey, why_not_rotated: str
) -> secretsmanager.Secret:
    """A 48-character generated key; ``why_not_rotated`` tells cdk-nag (and the reader) what rotation would break."""
    secret = secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        encryption_key=key,
        generate_secret_string=secretsmanager.SecretStringGenerator(password_length=48, exclude_punctuation=True),
    )
    Validations.of(secret).acknowledge(Acknowledgment(id="AwsSolutions-SMG4", reason=why_not_rotated))
    return secret
