"""A receiver process and a service to deliver to it, for the webhook tests."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.cluster import free_port


class Receiver:
    """A receiver process (receiver.py) on a loopback port, steered over HTTP."""

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", log: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.host = host
        # Where the process also writes each delivery (outliving a kill), if anywhere.
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *secrets: str) -> "Receiver":
        """Starts the process, verifying with `secrets` from its first delivery."""
        env = dict(os.environ)
        if self.log is not None:
            env["RECEIVER_LOG"] = str(self.log)
        self.proc = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, "-m", "tests.webhooks.receiver", str(self.port), *secrets], env=env
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/received", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def control(self, **state: Any) -> None:
        r = httpx.post(f"http://127.0.0.1:{self.port}/control", json=state, timeout=5)
        assert r.status_code == 200, r.text

    def received(self) -> list[dict[str, Any]]:
        r = httpx.get(f"http://127.0.0.1:{self.port}/received", timeout=5)
        got: list[dict[str, Any]] = r.json()
        return got


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Receivers a test starts; all stopped after it."""
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()
