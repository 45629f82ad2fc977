"""Several deployments of the service on this machine, each a separate process with its own
database, linked into a federation. Used by the multi-node tests, the fault runs and the demo.

Every node hosts one network named after it, and is driven only through its HTTP API (and, to
check invariants, read through its database)."""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from mutualcredit import models  # noqa: F401 - every table, for the ORM
from mutualcredit.auth import service as keys
from mutualcredit.auth.models import Role
from mutualcredit.db import create_engine, make_sessionmaker
from tests.processes import signal_tree


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _platform_key(url: str) -> str:
    engine = create_engine(url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            _, token = await keys.create_key(session, role=Role.platform, label="cluster")
            return token
    finally:
        await engine.dispose()


@dataclass
class Node:
    name: str
    server_url: str
    database_url: str
    port: int
    settings: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    platform: str = ""
    operator: str = ""
    members: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.url}/v1/networks/{self.name}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
        env.update(
            MUTUALCREDIT_DATABASE_URL=self.database_url,
            MUTUALCREDIT_PUBLIC_URL=self.url,
            MUTUALCREDIT_RATE_LIMIT_PER_SECOND="0",
            # Every node of the test listens on loopback.
            MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE="true",
            MUTUALCREDIT_LOG_LEVEL="warning",
            MUTUALCREDIT_LOG_FORMAT="text",
        )
        # A node's own settings come last: they may override the defaults above.
        env.update(self.settings)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own command
                [
                    sys.executable,
                    "-m",
                    "mutualcredit.cli",
                    "serve",
                    "--no-demo",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited: see {self.log_path}")
            time.sleep(0.1)
        raise RuntimeError(f"node {self.name} did not become ready: see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL, to the service and the processes it started (its webhook delivery): no
        shutdown, no flush; what was committed is all that survives."""
        if self.proc is not None and self.proc.poll() is None:
            signal_tree(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None

    # -- the API, as a client uses it -------------------------------------------------------

    def request(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.base}{path}", headers=auth(token), timeout=30, **kwargs
        )

    def member(self, code: str, **limits: Any) -> str:
        r = self.request("POST", "/accounts", self.operator, json={"code": code, **limits})
        assert r.status_code == 201, r.text
        r = self.request("POST", "/keys", self.operator, json={"role": "member", "account": code})
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        self.members[code] = token
        return token

    def pay(
        self, payer: str, payee: str, amount: int, key: str | None = None, **extra: Any
    ) -> httpx.Response:
        return httpx.post(
            f"{self.base}/trades",
            json={"payer": payer, "payee": payee, "amount": amount, **extra},
            headers={**auth(self.members[payer]), "Idempotency-Key": key or str(uuid.uuid4())},
            timeout=30,
        )

    def descriptor(self) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/federation/v1/networks/{self.name}/descriptor", timeout=10)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def link(
        self,
        peer: "Node",
        *,
        num: int = 1,
        den: int = 1,
        credit_limit: int = 100_000,
        balance_max: int | None = 100_000,
        default_route: bool = False,
    ) -> dict[str, Any]:
        key = next(k for k in peer.descriptor()["keys"] if k["status"] == "active")
        r = self.request(
            "POST",
            "/federation/links",
            self.operator,
            json={
                "peer": peer.name,
                "peer_url": peer.url,
                "peer_key": {"key_id": key["key_id"], "public_key": key["public_key"]},
                "rate": {"num": num, "den": den},
                "credit_limit": credit_limit,
                "balance_max": balance_max,
                "default_route": default_route,
            },
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def agree(self, peer: "Node") -> dict[str, Any]:
        r = self.request("POST", f"/federation/links/{peer.name}/agree", self.operator)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def balance(self, account: str) -> int:
        r = self.request("GET", f"/accounts/{account}", self.operator)
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])

    def reconcile(self, peer: "Node") -> dict[str, Any]:
        r = self.request("GET", f"/federation/links/{peer.name}/reconcile", self.operator)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def trade(self, trade_id: str) -> dict[str, Any]:
        r = self.request("GET", f"/trades/{trade_id}", self.operator)
        assert r.status_code == 200, r.text
        return dict(r.json())

    # -- the database, to check invariants --------------------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


class Cluster:
    def __init__(self, server_url: str, workdir: Path, **settings: str) -> None:
        self.server_url = server_url
        self.workdir = workdir
        self.settings = {
            "MUTUALCREDIT_FEDERATION_TTL_SECONDS": "20",
            "MUTUALCREDIT_FEDERATION_HOP_MARGIN_SECONDS": "3",
            "MUTUALCREDIT_FEDERATION_TIMEOUT_SECONDS": "2",
            "MUTUALCREDIT_FEDERATION_RETRY_MAX_SECONDS": "1",
            "MUTUALCREDIT_FEDERATION_INTERVAL_SECONDS": "0.2",
            "MUTUALCREDIT_SWEEP_INTERVAL_SECONDS": "0.2",
            **settings,
        }
        self.nodes: dict[str, Node] = {}

    async def _create_database(self, server_url: str, name: str) -> str:
        from mutualcredit import embedded

        db = f"mc_fed_{name}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{db}"')
        finally:
            await conn.close()
        return embedded.database_url(server_url, db)

    def add(
        self,
        name: str,
        *,
        scale: int = 2,
        default_credit_limit: int = 10_000,
        server_url: str | None = None,
    ) -> Node:
        """A node with its own database, on the cluster's server or on `server_url` (a server
        of its own, which a fault run may restart)."""
        server_url = server_url or self.server_url
        url = asyncio.run(self._create_database(server_url, name))
        node = Node(
            name=name,
            server_url=server_url,
            database_url=url,
            port=free_port(),
            settings={**self.settings, "MUTUALCREDIT_SECRET_KEY": _secret()},
            log_path=self.workdir / f"{name}.log",
        )
        node.start()
        node.platform = asyncio.run(_platform_key(url))
        r = httpx.post(
            f"{node.url}/v1/networks",
            json={
                "code": name,
                "name": f"Network {name}",
                "unit_name": "unit",
                "unit_symbol": name[:1].upper(),
                "scale": scale,
                "default_credit_limit": default_credit_limit,
            },
            headers=auth(node.platform),
            timeout=30,
        )
        assert r.status_code == 201, r.text
        r = httpx.post(
            f"{node.base}/keys", json={"role": "operator"}, headers=auth(node.platform), timeout=30
        )
        assert r.status_code == 201, r.text
        node.operator = r.json()["token"]
        # The operator makes the network's signing key (the first rotation makes the first):
        # until then its descriptor is not published.
        r = node.request("POST", "/federation/keys/rotate", node.operator)
        assert r.status_code == 200, r.text
        self.nodes[name] = node
        return node

    def connect(
        self,
        a: Node,
        b: Node,
        *,
        num: int = 1,
        den: int = 1,
        caps: int = 100_000,
        a_default_route: bool = False,
        b_default_route: bool = False,
    ) -> None:
        """Both operators create their side (b's rate is the inverse), then a agrees."""
        a.link(
            b, num=num, den=den, credit_limit=caps, balance_max=caps, default_route=a_default_route
        )
        b.link(
            a, num=den, den=num, credit_limit=caps, balance_max=caps, default_route=b_default_route
        )
        a.agree(b)

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()

        async def drop() -> None:
            for node in self.nodes.values():
                conn = await asyncpg.connect(node.server_url)
                try:
                    name = node.database_url.split("?")[0].rsplit("/", 1)[1]
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await conn.close()

        asyncio.run(drop())


def _secret() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
