"""A real S3-compatible server (moto's server mode) on 127.0.0.1, stoppable and restartable.

It runs in this process's threads, so its buckets survive a stop and a restart on the same
port — what a fault test needs to see that nothing published changed.
"""

from __future__ import annotations

import socket
import urllib.request

import boto3
from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def reset(self) -> None:
        """Forget every bucket: moto's state is per process, shared by every server in it."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10
        ).close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint)
