"""A stalled database costs a request seconds, not the stall, and a retry books exactly once.

A TCP proxy between a real `mutualcredit serve` process and PostgreSQL is told to stop
forwarding: a partition, where connections stay open and bytes stop (not a refusal, which the
driver would report at once). During the stall a trade, a read and /readyz must each answer 503
within the bound the timeouts give (db.DatabaseTimeouts); once the link is back, a retry with
the same Idempotency-Key books the trade once, or replays it when it was committed but its
answer lost, and the ledger's own checks pass.
"""

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.service import ServiceProcess, world

CONNECT_TIMEOUT = 1.0
STATEMENT_TIMEOUT = 2.0
POOL_TIMEOUT = 1.0
# A request waits at most for one statement's answer (the server's statement_timeout, then
# one second of grace: db.ANSWER_GRACE); /readyz for a connection and its one query.
REQUEST_BOUND = STATEMENT_TIMEOUT + 1.0
READY_BOUND = POOL_TIMEOUT + CONNECT_TIMEOUT
SLACK = 1.0


class StallingProxy:
    """Forwards TCP connections to PostgreSQL, until told to stall: then it accepts and reads
    nothing more and writes nothing more, in either direction, on every connection, new ones
    included, until told to resume. Nothing is lost: what was held is forwarded on resuming,
    as TCP delivers after a partition heals."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        self.unix_path = (
            str(Path(str(socket_dir)) / f".s.PGSQL.{url.port or 5432}") if socket_dir else None
        )
        self.upstream = (url.host or "127.0.0.1", url.port or 5432)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.marker: bytes | None = None
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def stall(self) -> None:
        self.flowing.clear()

    def stall_after(self, marker: bytes) -> None:
        """Stalls the moment a message to the server that contains `marker` has been sent on:
        the server gets the request, its answer never arrives."""
        self.marker = marker

    def resume(self) -> None:
        self.marker = None
        self.flowing.set()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await self.flowing.wait()
        try:
            if self.unix_path is not None:
                server_r, server_w = await asyncio.open_unix_connection(self.unix_path)
            else:
                server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        pumps = [
            asyncio.create_task(self._pump(client_r, server_w, to_server=True)),
            asyncio.create_task(self._pump(server_r, client_w, to_server=False)),
        ]
        self.tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
                self.tasks.discard(pump)
            for writer in (client_w, server_w):
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_server: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                await self.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    return
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
                if to_server and self.marker is not None and self.marker in data:
                    self.flowing.clear()


@pytest.fixture(scope="module")
async def proxy(database_url: str) -> AsyncIterator[StallingProxy]:
    stalling = StallingProxy(database_url)
    await stalling.start()
    yield stalling
    await stalling.close()


@pytest.fixture(scope="module")
def service(
    database_url: str, proxy: StallingProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    url = make_url(database_url)
    through_proxy = url.set(host="127.0.0.1", port=proxy.port, query={}).render_as_string(
        hide_password=False
    )
    log = tmp_path_factory.mktemp("database-stall") / "service.log"
    process = ServiceProcess(
        through_proxy,
        log,
        database_connect_timeout_seconds=str(CONNECT_TIMEOUT),
        database_statement_timeout_seconds=str(STATEMENT_TIMEOUT),
        database_pool_timeout_seconds=str(POOL_TIMEOUT),
        # The background jobs would only add noise to the link: the tests' own requests are
        # what they watch.
        sweep_interval_seconds="3600",
        seal_interval_seconds="3600",
        federation_interval_seconds="3600",
    )
    yield process
    process.stop()


async def _ready(service: ServiceProcess) -> None:
    """Waits for the service (its readiness check needs the proxy, which runs on this loop)."""
    async with httpx.AsyncClient(base_url=service.base) as client:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz", timeout=5)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"not ready: {service.log_path.read_text()[-2000:]}")


async def _timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def _trades_with_key(database_url: str, key: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT id, status FROM trades WHERE key = $1", key
        )
        return rows
    finally:
        await conn.close()


async def test_a_stalled_database_answers_503_within_seconds_and_a_retry_books_once(
    database_url: str, service: ServiceProcess, proxy: StallingProxy, platform_token: str
) -> None:
    await _ready(service)
    net = await asyncio.to_thread(world, service.base, platform_token)
    trades = f"{net['base']}/trades"
    operator = {"Authorization": f"Bearer {net['token']}"}
    async with httpx.AsyncClient(base_url=service.base, headers=operator, timeout=60) as client:

        def pay(key: str) -> Any:
            body = {"payer": "a", "payee": "b", "amount": 3}
            return client.post(trades, json=body, headers={"Idempotency-Key": key})

        assert (await pay(str(uuid.uuid4()))).status_code == 201

        # A partition: every request answers 503 within the bound, none waits out the stall.
        proxy.stall()
        lost = f"lost-{uuid.uuid4()}"
        (trade, trade_s), (read, read_s), (ready, ready_s) = await asyncio.gather(
            _timed(pay(lost)),
            _timed(client.get(f"{net['base']}/accounts/a")),
            _timed(client.get("/readyz")),
        )
        assert (trade.status_code, trade.json()["code"]) == (503, "database_unavailable")
        assert trade.headers["Retry-After"] == "1"
        assert (read.status_code, read.json()["code"]) == (503, "database_unavailable")
        assert (ready.status_code, ready.json()["code"]) == (503, "service_unavailable")
        assert trade_s <= REQUEST_BOUND + SLACK, trade_s
        assert read_s <= REQUEST_BOUND + SLACK, read_s
        assert ready_s <= READY_BOUND + SLACK, ready_s
        # Still stalled: the next requests are no slower (no queue behind the stall).
        again, again_s = await _timed(client.get(f"{net['base']}/accounts/b"))
        assert again.status_code == 503
        assert again_s <= REQUEST_BOUND + SLACK, again_s
        proxy.resume()
        await _ready(service)

        # The trade never reached the database: its retry books it, once.
        retried = await pay(lost)
        assert retried.status_code == 201, retried.text
        assert "Idempotent-Replayed" not in retried.headers
        assert len(await _trades_with_key(database_url, lost)) == 1

        # The link dies right after the booking reached PostgreSQL: committed, answer lost.
        unknown = f"unknown-{uuid.uuid4()}"
        proxy.stall_after(unknown.encode())
        lost_answer, lost_s = await _timed(pay(unknown))
        assert (lost_answer.status_code, lost_answer.json()["code"]) == (
            503,
            "database_unavailable",
        )
        assert lost_s <= REQUEST_BOUND + SLACK, lost_s
        booked = await _trades_with_key(database_url, unknown)
        assert len(booked) == 1  # committed, though the service could not say so
        proxy.resume()
        await _ready(service)
        replayed = await pay(unknown)
        assert replayed.status_code == 201, replayed.text
        assert replayed.headers["Idempotent-Replayed"] == "true"
        assert replayed.json()["id"] == str(booked[0]["id"])
        assert len(await _trades_with_key(database_url, unknown)) == 1

        # And the service is itself again.
        assert (await client.get(f"{net['base']}/accounts/a")).status_code == 200
        balances = {
            code: (await client.get(f"{net['base']}/accounts/{code}")).json()["balance"]
            for code in ("a", "b")
        }
        assert balances == {"a": -9, "b": 9}  # three trades of 3, each once

    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "mutualcredit.cli", "--database-url", database_url, "check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all ledger checks passed" in checked.stdout
