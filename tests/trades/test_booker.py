"""The batched write path: trades that arrive together are booked together, each with its own
outcome, and one trade that fails does not fail the others."""

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from mutualcredit.db import plain_url
from mutualcredit.observability import BATCH_SIZE
from mutualcredit.trades.booker import Booker, TradeRequest
from tests.helpers import Api, network_sums


@pytest.fixture
async def booker(database_url: str) -> AsyncIterator[Booker]:
    pool = await asyncpg.create_pool(plain_url(database_url), min_size=1, max_size=2)
    b = Booker(pool, flushers=1, batch_size=50)
    b.start()
    yield b
    await b.stop()
    await pool.close()


def _batches() -> tuple[float, float]:
    """(statements, trades) booked so far by the batched path, from its histogram."""
    metric = next(iter(BATCH_SIZE.collect()))
    samples = {s.name: s.value for s in metric.samples}
    return samples["mutualcredit_trade_batch_size_count"], samples[
        "mutualcredit_trade_batch_size_sum"
    ]


def _trade(network_id: uuid.UUID, payer: str, payee: str, amount: int) -> TradeRequest:
    return TradeRequest(
        network_id=network_id,
        key=uuid.uuid4().hex,
        request_hash=hashlib.sha256(f"{payer}{payee}{amount}".encode()).digest(),
        payer=payer,
        payee=payee,
        amount=amount,
        pending=False,
        expires_at=None,
        description="",
        external_ref=None,
        metadata={},
        actor="test",
    )


async def test_a_burst_is_booked_in_batches_with_each_outcome_its_own(
    api: Api, booker: Booker, db: asyncpg.Connection
) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "shop")
    for n in range(10):
        await api.account(net, f"m{n}")
    network_id = await db.fetchval("SELECT id FROM networks WHERE code = $1", net.code)
    # Each member pays the shop 60 twice: the second is beyond its limit of 100.
    burst = [_trade(network_id, f"m{n}", "shop", 60) for n in range(10) for _ in range(2)]
    statements_before, trades_before = _batches()
    results = await asyncio.gather(*(booker.book(t) for t in burst))
    statements, trades = (
        a - b for a, b in zip(_batches(), (statements_before, trades_before), strict=True)
    )
    assert trades == len(burst)
    assert statements < len(burst)  # queued together, booked together
    outcomes = [r.outcome for r in results]
    assert outcomes.count("created") == 10
    assert [r.problem_code for r in results if r.outcome == "rejected"] == [
        "credit_limit_exceeded"
    ] * 10
    assert (await api.get_account(net, "shop"))["balance"] == 600
    assert await network_sums(db, net.code) == (0, 0, 0)
    # Retried (new requests, same keys and bodies), in a batch: each replays its own outcome,
    # the trade it booked or the refusal it was given.
    retries = [dataclasses.replace(t, future=asyncio.Future()) for t in burst]
    replay = await asyncio.gather(*(booker.book(t) for t in retries))
    assert [r.outcome for r in replay] == ["replayed"] * len(burst)
    assert [r.problem_code for r in replay] == [r.problem_code for r in results]
    assert [r.trade["id"] if r.trade else None for r in replay] == [
        r.trade["id"] if r.trade else None for r in results
    ]


async def test_a_trade_that_fails_does_not_fail_its_batch_mates(
    api: Api, booker: Booker, db: asyncpg.Connection
) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    network_id = await db.fetchval("SELECT id FROM networks WHERE code = $1", net.code)
    good = [_trade(network_id, "a", "b", 1) for _ in range(5)]
    # A network that does not exist: recording its refusal breaks a foreign key, so this
    # trade raises inside the batch statement.
    bad = _trade(uuid.uuid4(), "a", "b", 1)
    results = await asyncio.gather(
        *(booker.book(t) for t in good[:3]), booker.book(bad), *(booker.book(t) for t in good[3:]),
        return_exceptions=True,
    )  # fmt: skip
    assert [getattr(r, "outcome", None) for r in results] == ["created"] * 3 + [None] + [
        "created"
    ] * 2
    assert isinstance(results[3], Exception)
    assert await api.balances(net) == {"a": -5, "b": 5}
