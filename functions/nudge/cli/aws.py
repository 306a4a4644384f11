"""The AWS session of the commands that call AWS (``nudge redrive``), checked before the first call.

A missing region or missing credentials is one line saying what to set (``AwsSetupError``, which
``cli.main`` prints and exits 2 on), not botocore's traceback. boto3 is imported on call, so that
the commands that never talk to AWS do not load it.
"""

from __future__ import annotations

import os
from typing import Any

LOCAL_REGION = "us-east-1"
"""The region ``nudge local``'s embedded endpoint creates its resources in."""


class AwsSetupError(Exception):
    """The AWS configuration cannot make a call: no region, no (or half) credentials, no such profile."""


def session(region: str | None, endpoint_url: str | None = None) -> Any:
    """A boto3 session with a region and credentials, or ``AwsSetupError`` saying what to set.

    ``region`` (``--region``) wins, then AWS_REGION, then what botocore reads (AWS_DEFAULT_REGION,
    the profile's ``region``)."""
    import boto3  # noqa: PLC0415
    from botocore.exceptions import (  # noqa: PLC0415
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    local = f" (against nudge local's endpoint: {LOCAL_REGION})" if endpoint_url else ""
    dummy = " (against nudge local's --endpoint-url any dummy values do)" if endpoint_url else ""
    credentials_hint = f"set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY{dummy}"
    try:
        built = boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
        if not built.region_name:
            raise NoRegionError()
        if built.get_credentials() is None:
            raise NoCredentialsError()
    except NoRegionError:
        raise AwsSetupError(f"no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION{local}") from None
    except NoCredentialsError:
        raise AwsSetupError(f"no AWS credentials: {credentials_hint}") from None
    except PartialCredentialsError as exc:
        raise AwsSetupError(f"incomplete AWS credentials ({exc}): {credentials_hint}") from None
    except ProfileNotFound as exc:
        raise AwsSetupError(f"{exc}: set AWS_PROFILE to a profile of your AWS configuration, or unset it") from None
    return built
