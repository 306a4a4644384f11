"""An embedded AWS: moto in server mode, in this process, on a free loopback port."""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import boto3

REGION = "us-east-1"
_CREDENTIALS = {"aws_access_key_id": "nudge-local", "aws_secret_access_key": "nudge-local"}


class EmbeddedAws:
    """Starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and hands out sessions and clients
    pointed at it. Nothing else to install and nothing listening beyond loopback."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only the local stack needs moto

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{bound}"
        self.session = LocalSession(self.endpoint_url)
        self.reset()

    def reset(self) -> None:
        """Forget every resource: moto's backends live in this process, shared by its servers."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):  # our own loopback endpoint
            pass

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> EmbeddedAws:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class LocalSession:
    """A boto3 session look-alike whose clients all talk to the embedded endpoint."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._session = boto3.session.Session(region_name=REGION, **_CREDENTIALS)
        self.events = self._session.events

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint_url, **kwargs)
