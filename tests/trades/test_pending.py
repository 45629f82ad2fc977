"""Pending trades (two-phase): a hold reserves the amount on both sides, then is posted in full
or in part, voided, or expires."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.helpers import Api, Net, assert_problem, auth, network_sums


async def _hold(api: Api, net: Net, amount: int, **fields: Any) -> dict[str, object]:
    r = await api.pay(net, "buyer", "seller", amount, pending=True, **fields)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    assert body["status"] == "pending"
    return body


async def _setup(api: Api, **buyer: object) -> Net:
    net = await api.network()
    await api.account(net, "buyer", **({"credit_limit": 100} | buyer))
    await api.account(net, "seller", balance_max=1000)
    return net


async def test_a_hold_reserves_against_both_limits(api: Api, db: asyncpg.Connection) -> None:
    net = await _setup(api)
    await _hold(api, net, 70)
    buyer = await api.get_account(net, "buyer")
    seller = await api.get_account(net, "seller")
    assert (buyer["balance"], buyer["pending_debits"], buyer["available"]) == (0, 70, 30)
    assert (seller["balance"], seller["pending_credits"], seller["headroom"]) == (0, 70, 930)
    # What is held cannot be spent twice.
    body = assert_problem(await api.pay(net, "buyer", "seller", 31), 409, "credit_limit_exceeded")
    assert body["available"] == 30
    assert await network_sums(db, net.code) == (0, 70, 70)


async def test_posting_part_of_a_hold_books_that_part_and_releases_the_rest(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await _setup(api)
    hold = await _hold(api, net, 70)
    r = await api.client.post(
        f"{net.base}/trades/{hold['id']}/post", json={"amount": 45}, headers=auth(net.operator)
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["posted_amount"]) == ("posted", 45)
    buyer = await api.get_account(net, "buyer")
    assert (buyer["balance"], buyer["pending_debits"], buyer["available"]) == (-45, 0, 55)
    assert await network_sums(db, net.code) == (0, 0, 0)

    # Final: it cannot be posted or voided again.
    r = await api.client.post(f"{net.base}/trades/{hold['id']}/void", headers=auth(net.operator))
    assert assert_problem(r, 409, "trade_not_pending")["trade_status"] == "posted"


async def test_posting_more_than_the_hold_is_refused(api: Api) -> None:
    net = await _setup(api)
    hold = await _hold(api, net, 70)
    r = await api.client.post(
        f"{net.base}/trades/{hold['id']}/post", json={"amount": 71}, headers=auth(net.operator)
    )
    body = assert_problem(r, 409, "amount_exceeds_hold")
    assert (body["held"], body["requested"]) == (70, 71)
    assert (await api.get_account(net, "buyer"))["pending_debits"] == 70


async def test_voiding_releases_the_hold(api: Api, db: asyncpg.Connection) -> None:
    net = await _setup(api)
    hold = await _hold(api, net, 70)
    r = await api.client.post(f"{net.base}/trades/{hold['id']}/void", headers=auth(net.operator))
    assert r.json()["status"] == "voided"
    assert await api.balances(net) == {"buyer": 0, "seller": 0}
    assert await network_sums(db, net.code) == (0, 0, 0)
    r = await api.client.get(f"{net.base}/accounts/buyer/entries", headers=auth(net.operator))
    assert r.json()["items"] == []


async def test_the_payee_captures_but_the_payer_cannot_withdraw_a_hold(api: Api) -> None:
    net = await _setup(api)
    buyer = await api.member_key(net, "buyer")
    seller = await api.member_key(net, "seller")
    hold = await _hold(api, net, 20, token=buyer)
    r = await api.client.post(f"{net.base}/trades/{hold['id']}/void", headers=auth(buyer))
    assert_problem(r, 403, "forbidden")
    r = await api.client.post(f"{net.base}/trades/{hold['id']}/post", headers=auth(seller))
    assert r.status_code == 200, r.text
    assert r.json()["posted_amount"] == 20


async def test_expires_at_belongs_to_pending_trades_and_to_the_future(api: Api) -> None:
    net = await _setup(api)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert_problem(
        await api.pay(net, "buyer", "seller", 1, pending=True, expires_at=past),
        422,
        "validation_error",
    )
    assert_problem(
        await api.pay(net, "buyer", "seller", 1, expires_at=future), 422, "validation_error"
    )
    naive = datetime.now() + timedelta(hours=1)  # noqa: DTZ005 - a naive time is the bad input
    assert_problem(
        await api.pay(net, "buyer", "seller", 1, pending=True, expires_at=naive.isoformat()),
        422,
        "validation_error",
    )


async def test_a_hold_gets_a_default_expiry(api: Api) -> None:
    net = await _setup(api)
    before = datetime.now(UTC)
    hold = await _hold(api, net, 5)
    after = datetime.now(UTC)
    # 24 hours from the moment the request was received.
    expires_at = datetime.fromisoformat(str(hold["expires_at"]))
    assert before + timedelta(hours=24) <= expires_at <= after + timedelta(hours=24)


async def test_an_overdue_hold_cannot_be_posted_and_is_released(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await _setup(api)
    soon = (datetime.now(UTC) + timedelta(milliseconds=300)).isoformat()
    hold = await _hold(api, net, 70, expires_at=soon)
    await asyncio.sleep(0.4)
    r = await api.client.get(f"{net.base}/trades/{hold['id']}", headers=auth(net.operator))
    assert r.json()["status"] == "expired"
    r = await api.client.post(f"{net.base}/trades/{hold['id']}/post", headers=auth(net.operator))
    assert_problem(r, 409, "trade_expired")
    buyer = await api.get_account(net, "buyer")
    assert (buyer["balance"], buyer["pending_debits"]) == (0, 0)
    assert await network_sums(db, net.code) == (0, 0, 0)
    status = await db.fetchval("SELECT status FROM trades WHERE id = $1::uuid", hold["id"])
    assert status == "expired"


async def test_an_overdue_hold_does_not_block_a_new_trade(api: Api) -> None:
    """Expiry is enforced at access time: the refusal check expires overdue holds first."""
    net = await _setup(api)
    soon = (datetime.now(UTC) + timedelta(milliseconds=200)).isoformat()
    await _hold(api, net, 100, expires_at=soon)
    assert_problem(await api.pay(net, "buyer", "seller", 50), 409, "credit_limit_exceeded")
    await asyncio.sleep(0.25)
    r = await api.pay(net, "buyer", "seller", 100)
    assert r.status_code == 201, r.text
    buyer = await api.get_account(net, "buyer")
    assert (buyer["balance"], buyer["pending_debits"]) == (-100, 0)


async def test_the_sweeper_expires_overdue_holds_in_the_background(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await _setup(api)
    soon = (datetime.now(UTC) + timedelta(milliseconds=100)).isoformat()
    hold = await _hold(api, net, 40, expires_at=soon)
    # The test app sweeps every 0.2 s; nothing else touches this network.
    for _ in range(50):
        await asyncio.sleep(0.1)
        status = await db.fetchval("SELECT status FROM trades WHERE id = $1::uuid", hold["id"])
        if status == "expired":
            break
    assert status == "expired"
    assert (await api.get_account(net, "buyer"))["pending_debits"] == 0
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_posting_with_an_idempotency_key_replays_the_first_answer(api: Api) -> None:
    net = await _setup(api)
    hold = await _hold(api, net, 30)
    headers = {**auth(net.operator), "Idempotency-Key": "post-1"}
    url = f"{net.base}/trades/{hold['id']}/post"
    first = await api.client.post(url, json={"amount": 10}, headers=headers)
    again = await api.client.post(url, json={"amount": 10}, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(
        await api.client.post(url, json={"amount": 11}, headers=headers),
        409,
        "idempotency_conflict",
    )
    assert (await api.get_account(net, "buyer"))["balance"] == -10


async def test_a_replayed_creation_shows_the_hold_as_it_was_created(api: Api) -> None:
    net = await _setup(api)
    r = await api.pay(net, "buyer", "seller", 30, pending=True, key="hold-1")
    created = r.json()
    await api.client.post(f"{net.base}/trades/{created['id']}/post", headers=auth(net.operator))
    again = await api.pay(net, "buyer", "seller", 30, pending=True, key="hold-1")
    assert again.status_code == 201
    assert again.json() == created
    now = await api.client.get(f"{net.base}/trades/{created['id']}", headers=auth(net.operator))
    assert now.json()["status"] == "posted"
