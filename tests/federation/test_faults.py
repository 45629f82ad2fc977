"""Scripted faults between two networks, each a separate process with its own database. After
each fault, recovery runs on its own (the outbox), then `settled` checks every invariant."""

import asyncio
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from mutualcredit.federation import crypto, protocol
from tests.federation.checks import settled, signed_post, wait
from tests.federation.cluster import Cluster, Node

TTL = 6


@pytest.fixture(scope="module")
def pair(server_url: str) -> Iterator[tuple[Node, Node]]:
    c = Cluster(
        server_url,
        Path(tempfile.mkdtemp(prefix="mc-faults-")),
        MUTUALCREDIT_FEDERATION_TTL_SECONDS=str(TTL),
        MUTUALCREDIT_FEDERATION_HOP_MARGIN_SECONDS="1",
    )
    try:
        a, b = c.add("origin"), c.add("dest")
        c.connect(a, b, caps=1_000_000)
        a.member("ann")
        b.member("bob")
        yield a, b
    finally:
        c.close()


class Held:
    """An open transaction on a node's database holding a lock, until released."""

    def __init__(self, node: Node, sql: str) -> None:
        self.ready = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._hold(node, sql),))
        self.thread.start()
        assert self.ready.wait(10)

    async def _hold(self, node: Node, sql: str) -> None:
        conn = await asyncpg.connect(node.database_url)
        try:
            async with conn.transaction():
                await conn.execute(sql)
                self.ready.set()
                await asyncio.to_thread(self.release.wait)
        finally:
            await conn.close()

    def done(self) -> None:
        self.release.set()
        self.thread.join(10)


def _pay_in_background(node: Node, key: str, amount: int) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["response"] = node.pay("ann", "dest/bob", amount, key=key)
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    result["thread"] = thread
    return result


def _transfer_id(node: Node, key: str) -> uuid.UUID | None:
    """The transfer of the trade with this Idempotency-Key at the origin, once it exists."""
    rows = asyncio.run(
        node.fetch(
            "SELECT t.transfer_id FROM transfers t JOIN trades tr ON tr.id = t.trade_id"
            " WHERE tr.key = $1",
            key,
        )
    )
    return rows[0]["transfer_id"] if rows else None


def test_destination_down_past_the_expiry_refuses_and_the_origin_voids(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    before = a.balance("ann")
    b.kill()
    try:
        r = a.pay("ann", "dest/bob", 40)
        assert r.status_code == 202, r.text
        assert r.json()["transfer"]["status"] == "in_flight"
        assert a.balance("ann") == before  # held, not booked
        time.sleep(TTL + 1)
    finally:
        b.start()
    wait(lambda: a.trade(r.json()["id"])["status"] == "voided")
    refused = asyncio.run(
        b.fetch(
            "SELECT refusal_code FROM transfers WHERE transfer_id = $1",
            uuid.UUID(r.json()["transfer"]["transfer_id"]),
        )
    )
    assert [x["refusal_code"] for x in refused] == ["transfer_expired"]
    assert a.balance("ann") == before
    settled(a, b)


def test_destination_killed_after_deciding_before_answering(pair: tuple[Node, Node]) -> None:
    a, b = pair
    before = (a.balance("ann"), b.balance("bob"))
    key = str(uuid.uuid4())
    # The destination commits its decision, then blocks reading its signing key: it has
    # decided and not answered. Then it dies.
    lock = Held(b, "LOCK TABLE node_keys IN ACCESS EXCLUSIVE MODE")
    call = _pay_in_background(a, key, 30)
    wait(lambda: _transfer_id(a, key) is not None, 15)
    transfer_id = _transfer_id(a, key)
    # The destination has decided (committed) this very transfer; its answer is blocked.
    wait(
        lambda: bool(
            asyncio.run(
                b.fetch(
                    "SELECT 1 FROM transfers WHERE transfer_id = $1 AND status = 'accepted'",
                    transfer_id,
                )
            )
        ),
        15,
    )
    b.kill()
    lock.done()
    call["thread"].join(30)
    assert call["response"].status_code == 202  # the origin does not know yet
    b.start()
    wait(lambda: a.trade(call["response"].json()["id"])["status"] == "posted")
    assert (a.balance("ann"), b.balance("bob")) == (before[0] - 30, before[1] + 30)
    again = a.pay("ann", "dest/bob", 30, key=key)
    assert again.status_code == 201  # the client's retry learns the outcome
    settled(a, b)


def test_origin_killed_after_sending(pair: tuple[Node, Node]) -> None:
    a, b = pair
    before = (a.balance("ann"), b.balance("bob"))
    key = str(uuid.uuid4())
    # The destination is slow (bob's account is locked), so the origin is mid-call; it dies.
    lock = Held(b, "SELECT 1 FROM accounts WHERE code = 'bob' FOR UPDATE")
    call = _pay_in_background(a, key, 25)
    time.sleep(1.0)
    a.kill()
    call["thread"].join(30)
    assert "error" in call  # the client got no answer
    lock.done()
    a.start()
    r = a.pay("ann", "dest/bob", 25, key=key)  # the client retries with its key
    assert r.status_code in (201, 202)
    wait(lambda: a.trade(r.json()["id"])["status"] == "posted")
    assert (a.balance("ann"), b.balance("bob")) == (before[0] - 25, before[1] + 25)
    settled(a, b)


def test_destination_database_down_then_back(pair: tuple[Node, Node]) -> None:
    a, b = pair
    before = b.balance("bob")
    name = b.database_url.split("?")[0].rsplit("/", 1)[1]

    async def switch(allow: bool) -> None:
        conn = await asyncpg.connect(a.database_url)
        try:
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
            if not allow:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
        finally:
            await conn.close()

    asyncio.run(switch(False))
    try:
        r = a.pay("ann", "dest/bob", 15)
        assert r.status_code == 202, r.text
    finally:
        asyncio.run(switch(True))
    wait(lambda: a.trade(r.json()["id"])["status"] == "posted")
    assert b.balance("bob") == before + 15
    settled(a, b)


def test_a_duplicate_delivery_books_once(pair: tuple[Node, Node]) -> None:
    a, b = pair
    r = a.pay("ann", "dest/bob", 11)
    assert r.status_code == 201
    before = b.balance("bob")
    row = asyncio.run(
        a.fetch(
            "SELECT * FROM transfers WHERE transfer_id = $1 AND direction = 'out'",
            uuid.UUID(r.json()["transfer"]["transfer_id"]),
        )
    )[0]
    key = asyncio.run(
        a.fetch("SELECT key_id, sealed_private_key FROM node_keys WHERE status = 'active'")
    )[0]
    secret = crypto.b64d(a.settings["MUTUALCREDIT_SECRET_KEY"])
    signer = crypto.Signer(
        "origin", key["key_id"], crypto.unseal(key["sealed_private_key"], key["key_id"], secret)
    )
    body = crypto.canonical(protocol.message(dict(row)))
    receipts = []
    for _ in range(2):
        receipts.append(signed_post(b, signer, "/transfers", body).json())
    assert receipts[0] == receipts[1]
    assert receipts[0]["status"] == "accepted"
    assert b.balance("bob") == before
    settled(a, b)
