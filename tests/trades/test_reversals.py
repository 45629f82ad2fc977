"""Correcting mistakes without editing history: reversals and write-offs."""

import asyncpg
import httpx

from tests.helpers import Api, Net, assert_problem, auth, network_sums


async def _reverse(
    api: Api, net: Net, trade_id: str, token: str | None = None, **body: object
) -> httpx.Response:
    return await api.client.post(
        f"{net.base}/trades/{trade_id}/reverse",
        json={"reason": "entered twice", **body},
        headers=auth(token or net.operator),
    )


async def test_a_reversal_is_a_new_linked_trade_and_the_original_stands(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    original = (await api.pay(net, "a", "b", 70, description="bread")).json()

    r = await _reverse(api, net, original["id"])
    assert r.status_code == 201, r.text
    reversal = r.json()
    assert (reversal["payer"], reversal["payee"], reversal["amount"]) == ("b", "a", 70)
    assert (reversal["kind"], reversal["reverses_trade_id"], reversal["reason"]) == (
        "reversal",
        original["id"],
        "entered twice",
    )
    assert reversal["limit_override"] is False
    assert await api.balances(net) == {"a": 0, "b": 0}

    r = await api.client.get(f"{net.base}/trades/{original['id']}", headers=auth(net.operator))
    assert r.json()["status"] == "posted"
    assert r.json()["reversed_by"] == reversal["id"]
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_a_trade_is_reversed_at_most_once_and_a_retry_is_safe(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    original = (await api.pay(net, "a", "b", 70)).json()
    first = await _reverse(api, net, original["id"])
    again = await _reverse(api, net, original["id"])
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    body = assert_problem(
        await _reverse(api, net, original["id"], reason="another reason"),
        409,
        "trade_already_reversed",
    )
    assert body["reversed_by"] == first.json()["id"]
    assert_problem(await _reverse(api, net, first.json()["id"]), 409, "trade_not_reversible")
    assert await api.balances(net) == {"a": 0, "b": 0}


async def test_a_reversal_respects_limits_unless_the_operator_overrides(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network(default_credit_limit=100)
    for code in ("a", "b", "c"):
        await api.account(net, code)
    original = (await api.pay(net, "a", "b", 100)).json()
    await api.pay(net, "b", "c", 100)  # b spent what it received: b is at 0
    await api.pay(net, "b", "c", 100)  # and used all its credit: b is at -100

    body = assert_problem(await _reverse(api, net, original["id"]), 409, "credit_limit_exceeded")
    assert (body["account"], body["available"]) == ("b", 0)
    r = await _reverse(api, net, original["id"], override_limits=True, reason="fraud")
    assert r.status_code == 201, r.text
    assert r.json()["limit_override"] is True
    assert (await api.get_account(net, "b"))["balance"] == -200
    record = await db.fetchrow(
        "SELECT actor, reason, after FROM audit_log WHERE subject_id = $1 AND action = $2",
        r.json()["id"],
        "trade.created",
    )
    assert record["reason"] == "fraud"
    assert record["actor"] == f"operator:{net.operator.split('_')[1]}"


async def test_only_operators_reverse_and_only_posted_trades(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    member = await api.member_key(net, "b")
    trade = (await api.pay(net, "a", "b", 5)).json()
    assert_problem(await _reverse(api, net, trade["id"], token=member), 403, "forbidden")
    hold = (await api.pay(net, "a", "b", 5, pending=True)).json()
    body = assert_problem(await _reverse(api, net, hold["id"]), 409, "trade_not_posted")
    assert body["trade_status"] == "pending"


async def test_closing_with_a_write_off_to_a_system_account(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "debtor")
    await api.account(net, "seller")
    await api.account(net, "losses", kind="system", credit_limit=0)
    await api.pay(net, "debtor", "seller", 80)
    url = f"{net.base}/accounts/debtor/close"

    r = await api.client.post(url, json={"write_off_to": "losses"}, headers=auth(net.operator))
    assert_problem(r, 422, "validation_error")  # a write-off needs a reason
    r = await api.client.post(
        url, json={"write_off_to": "seller", "reason": "x"}, headers=auth(net.operator)
    )
    assert_problem(r, 409, "write_off_account_invalid")  # not a system account

    r = await api.client.post(
        url, json={"write_off_to": "losses", "reason": "member left"}, headers=auth(net.operator)
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["balance"]) == ("closed", 0)
    losses = await api.get_account(net, "losses")
    assert losses["balance"] == -80  # the network absorbs the debt, past its limit, on record
    trades = (
        await api.client.get(
            f"{net.base}/trades", params={"account": "losses"}, headers=auth(net.operator)
        )
    ).json()["items"]
    assert [(t["kind"], t["reason"], t["limit_override"]) for t in trades] == [
        ("write_off", "member left", True)
    ]
    assert await network_sums(db, net.code) == (0, 0, 0)
