"""The environment a client of the embedded endpoint needs, and a way to lend it to a block of code.

botocore signs every request, so even a client of moto wants credentials (any values: moto checks
none) and a region. ``nudge local`` prints these for a producer's shell; the bench and the fault
suite set them around their in-process moto. No boto3 here: ``nudge validate`` imports the CLI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

LOCAL_REGION = "us-east-1"
LOCAL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": LOCAL_REGION,
}


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block; afterwards each name is as it was (or unset)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
