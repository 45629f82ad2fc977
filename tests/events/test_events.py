"""The event feed: every change a client cares about, produced by real operations through the
API, read back in commit order; members see their own account's events only."""

from typing import Any

from fastapi import FastAPI

from mutualcredit import jobs
from tests.helpers import Api, Net, assert_problem, auth


async def feed(
    api: Api, app: FastAPI, net: Net, token: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every event of the network after sealing what is committed (the sealer runs every sweep
    anyway; sealing here makes the read deterministic)."""
    await jobs.seal_audit(app.state.sessionmaker)
    r = await api.client.get(
        f"{net.base}/events", params={"limit": 500, **params}, headers=auth(token or net.operator)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    items: list[dict[str, Any]] = body["items"]
    assert body["next_after"] == (items[-1]["seq"] if items else params.get("after", 0))
    return items


async def test_trades_make_posted_held_voided_reversed_events(api: Api, app: FastAPI) -> None:
    net = await api.network(default_credit_limit=1000)
    await api.account(net, "cafe")
    await api.account(net, "alice")
    r = await api.pay(net, "alice", "cafe", 250, description="lunch")
    assert r.status_code == 201, r.text
    paid = r.json()
    r = await api.pay(net, "alice", "cafe", 100, pending=True)
    held = r.json()
    r = await api.client.post(
        f"{net.base}/trades/{held['id']}/post",
        headers={**auth(net.operator), "Idempotency-Key": "post-1"},
    )
    assert r.status_code == 200, r.text
    r = await api.pay(net, "alice", "cafe", 40, pending=True)
    voided = r.json()
    r = await api.client.post(
        f"{net.base}/trades/{voided['id']}/void",
        headers={**auth(net.operator), "Idempotency-Key": "void-1"},
    )
    assert r.status_code == 200, r.text
    r = await api.client.post(
        f"{net.base}/trades/{paid['id']}/reverse",
        json={"reason": "wrong cafe"},
        headers={**auth(net.operator), "Idempotency-Key": "reverse-1"},
    )
    assert r.status_code == 201, r.text
    reversal = r.json()

    events = await feed(api, app, net, types="trade.posted,trade.held,trade.voided,trade.reversed")
    assert [(e["type"], e["data"]["trade"]["id"]) for e in events] == [
        ("trade.posted", paid["id"]),
        ("trade.held", held["id"]),
        ("trade.posted", held["id"]),
        ("trade.held", voided["id"]),
        ("trade.voided", voided["id"]),
        ("trade.reversed", reversal["id"]),
    ]
    first = events[0]
    assert first["id"] == f"evt_{net.code}_{first['seq']}"
    assert first["version"] == 1
    assert first["network"] == net.code
    assert first["accounts"] == ["alice", "cafe"]
    trade = first["data"]["trade"]
    assert (trade["payer"], trade["payee"], trade["amount"], trade["status"]) == (
        "alice",
        "cafe",
        250,
        "posted",
    )
    assert first["data"]["balances_after"] == {"alice": -250, "cafe": 250}
    # A hold as it was when held, though it is posted now; no balances moved with it.
    assert events[1]["data"]["trade"]["status"] == "pending"
    assert "balances_after" not in events[1]["data"]
    assert events[2]["data"]["balances_after"] == {"alice": -350, "cafe": 350}
    assert events[5]["data"]["trade"]["reverses_trade_id"] == paid["id"]
    assert events[5]["data"]["balances_after"] == {"alice": -100, "cafe": 100}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


async def test_a_member_sees_only_its_own_account_and_balance(api: Api, app: FastAPI) -> None:
    net = await api.network(default_credit_limit=1000)
    for code in ("cafe", "alice", "bob"):
        await api.account(net, code)
    alice = await api.member_key(net, "alice")
    assert (await api.pay(net, "alice", "cafe", 10)).status_code == 201
    assert (await api.pay(net, "bob", "cafe", 20)).status_code == 201

    mine = await feed(api, app, net, alice)
    assert [(e["type"], e["data"]["trade"]["amount"]) for e in mine] == [("trade.posted", 10)]
    assert mine[0]["data"]["balances_after"] == {"alice": -10}
    assert await feed(api, app, net, alice, account="alice") == mine
    r = await api.client.get(f"{net.base}/events", params={"account": "bob"}, headers=auth(alice))
    assert_problem(r, 403, "forbidden")

    cafe = await feed(api, app, net, account="cafe")
    assert [e["data"]["balances_after"] for e in cafe] == [
        {"alice": -10, "cafe": 10},
        {"bob": -20, "cafe": 30},
    ]
    r = await api.client.get(
        f"{net.base}/events", params={"account": "nobody"}, headers=auth(net.operator)
    )
    assert_problem(r, 404, "account_not_found")
    r = await api.client.get(
        f"{net.base}/events", params={"types": "trade.gone"}, headers=auth(net.operator)
    )
    assert_problem(r, 422, "unknown_event_type")
