"""A real `mutualcredit serve` process, for tests that must reach the service as an outsider
does: over TCP, through uvicorn and the server's own protocol."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServiceProcess:
    """`mutualcredit serve` on a free loopback port, with the given MUTUALCREDIT_* settings
    (names without the prefix), its output in `log`."""

    def __init__(self, database_url: str, log: Path, **settings: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
        env.update(
            MUTUALCREDIT_DATABASE_URL=database_url,
            MUTUALCREDIT_RATE_LIMIT_PER_SECOND="0",
            MUTUALCREDIT_LOG_LEVEL="warning",
        )
        env.update({f"MUTUALCREDIT_{name.upper()}": value for name, value in settings.items()})
        self._log = log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            [
                sys.executable,
                "-m",
                "mutualcredit.cli",
                "serve",
                "--no-migrate",
                "--no-demo",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the service did not become ready")

    def rss_bytes(self) -> int:
        """The service process's resident memory (Linux)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> "ServiceProcess":
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def world(base: str, platform: str) -> dict[str, Any]:
    """A network with two accounts and an operator key, made through the API."""
    code = f"net-{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {platform}"}) as c:
        network = {
            "code": code,
            "name": "Test",
            "unit_name": "hour",
            "unit_symbol": "h",
            "scale": 2,
        }
        c.post("/v1/networks", json={**network, "default_credit_limit": 10**6}).raise_for_status()
        net = f"/v1/networks/{code}"
        token = c.post(f"{net}/keys", json={"role": "operator"}).json()["token"]
        for account in ("a", "b"):
            c.post(f"{net}/accounts", json={"code": account}).raise_for_status()
    return {"code": code, "base": net, "token": token}


async def trade(base: str, net: dict[str, Any], key: str | None = None) -> httpx.Response:
    """One trade a → b of 1, over a fresh connection."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return await client.post(
            f"{net['base']}/trades",
            json={"payer": "a", "payee": "b", "amount": 1},
            headers={
                "Authorization": f"Bearer {net['token']}",
                "Idempotency-Key": key or str(uuid.uuid4()),
            },
        )


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed);
    TimeoutError if it is still open after `within` seconds."""
    chunks: list[bytes] = []
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)
