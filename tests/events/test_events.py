"""The event feed: every change a client cares about, produced by real operations through the
API, read back in commit order; members see their own account's events only."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI
from openapi_schema_validator import validate

from mutualcredit import jobs
from mutualcredit.events.service import EVENT_TYPES
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


async def test_a_member_sees_the_disabling_of_its_own_endpoints_only(
    api: Api, app: FastAPI
) -> None:
    """`webhook.disabled` is about the endpoint: a member's feed shows it for the member's own
    endpoints, an operator's feed for every endpoint, each with who disabled it and why."""
    net = await api.network(default_credit_limit=1000)
    for code in ("alice", "bob"):
        await api.account(net, code)
    alice, bob = await api.member_key(net, "alice"), await api.member_key(net, "bob")
    made = {}
    for who, token in (("alice", alice), ("bob", bob), ("operator", net.operator)):
        r = await api.client.post(
            f"{net.base}/webhooks", json={"url": f"https://{who}.invalid/"}, headers=auth(token)
        )
        assert r.status_code == 201, r.text
        made[who] = r.json()
    assert (made["alice"]["account"], made["alice"]["member_account"]) == ("alice", "alice")
    assert (made["operator"]["account"], made["operator"]["member_account"]) == (None, None)
    for who, token in (("alice", alice), ("bob", net.operator), ("operator", net.operator)):
        r = await api.client.patch(
            f"{net.base}/webhooks/{made[who]['id']}", json={"enabled": False}, headers=auth(token)
        )
        assert r.status_code == 200, r.text

    everything = await feed(api, app, net, types="webhook.disabled")
    assert [e["data"]["webhook"]["id"] for e in everything] == [
        made[who]["id"] for who in ("alice", "bob", "operator")
    ]
    assert [e["accounts"] for e in everything] == [["alice"], ["bob"], []]
    assert [e["data"]["webhook"]["status_reason"] for e in everything] == [
        "disabled by its member",
        "disabled by an operator",
        "disabled by an operator",
    ]
    by_alice, by_operator = everything[0]["data"], everything[1]["data"]
    assert by_alice["webhook"]["changed_by"] != by_operator["webhook"]["changed_by"]
    assert by_alice["webhook"]["url"] == "https://alice.invalid/"
    assert [e["id"] for e in await feed(api, app, net, alice)] == [everything[0]["id"]]
    assert [e["id"] for e in await feed(api, app, net, bob)] == [everything[1]["id"]]


async def test_a_hold_that_expires_makes_an_expired_event(api: Api, app: FastAPI) -> None:
    net = await api.network(default_credit_limit=1000)
    await api.account(net, "cafe")
    await api.account(net, "alice")
    soon = (datetime.now(UTC) + timedelta(milliseconds=300)).isoformat()
    hold = (await api.pay(net, "alice", "cafe", 70, pending=True, expires_at=soon)).json()
    # The sweep (every 0.2 s here) expires the hold and seals the record: the long poll answers.
    r = await api.client.get(
        f"{net.base}/events",
        params={"types": "trade.expired", "wait": 10},
        headers=auth(net.operator),
    )
    assert r.status_code == 200, r.text
    [expired] = r.json()["items"]
    assert expired["type"] == "trade.expired"
    assert expired["data"]["trade"]["id"] == hold["id"]
    assert expired["data"]["trade"]["status"] == "expired"


async def test_requests_make_created_accepted_rejected_cancelled_expired_events(
    api: Api, app: FastAPI
) -> None:
    net = await api.network(default_credit_limit=1000)
    await api.account(net, "cafe")
    await api.account(net, "alice")
    cafe = await api.member_key(net, "cafe")
    alice = await api.member_key(net, "alice")

    async def ask(**body: Any) -> dict[str, Any]:
        r = await api.client.post(
            f"{net.base}/requests",
            json={"payer": "alice", "payee": "cafe", "amount": 30, **body},
            headers=auth(cafe),
        )
        assert r.status_code == 201, r.text
        request: dict[str, Any] = r.json()
        return request

    accepted, rejected, cancelled = await ask(), await ask(), await ask()
    base = f"{net.base}/requests"
    r = await api.client.post(f"{base}/{accepted['id']}/accept", headers=auth(alice))
    assert r.status_code == 200, r.text
    trade_id = r.json()["trade_id"]
    r = await api.client.post(
        f"{base}/{rejected['id']}/reject", json={"reason": "not mine"}, headers=auth(alice)
    )
    assert r.status_code == 200, r.text
    r = await api.client.post(f"{base}/{cancelled['id']}/cancel", headers=auth(cafe))
    assert r.status_code == 200, r.text
    expiring = await ask(expires_at=(datetime.now(UTC) + timedelta(milliseconds=200)).isoformat())
    await asyncio.sleep(0.25)
    r = await api.client.post(f"{base}/{expiring['id']}/accept", headers=auth(alice))
    assert_problem(r, 409, "request_expired")

    events = await feed(api, app, net, alice, types=",".join(_REQUEST_TYPES))
    assert [(e["type"], e["data"]["request"]["id"]) for e in events] == [
        ("request.created", accepted["id"]),
        ("request.created", rejected["id"]),
        ("request.created", cancelled["id"]),
        ("request.accepted", accepted["id"]),
        ("request.rejected", rejected["id"]),
        ("request.cancelled", cancelled["id"]),
        ("request.created", expiring["id"]),
        ("request.expired", expiring["id"]),
    ]
    created, accept, reject = events[0], events[3], events[4]
    assert created["data"]["request"]["status"] == "open"
    assert created["data"]["request"]["trade_id"] is None
    assert created["accounts"] == ["alice", "cafe"]
    assert accept["data"]["request"]["trade_id"] == trade_id
    assert reject["data"]["request"]["reason"] == "not mine"
    # The accepted request's trade has its own event, with the payer's balance after.
    posted = await feed(api, app, net, alice, types="trade.posted")
    assert [(e["data"]["trade"]["id"], e["data"]["balances_after"]) for e in posted] == [
        (trade_id, {"alice": -30})
    ]


_REQUEST_TYPES = (
    "request.created",
    "request.accepted",
    "request.rejected",
    "request.cancelled",
    "request.expired",
)


async def test_accounts_make_limits_suspended_reactivated_closed_events(
    api: Api, app: FastAPI
) -> None:
    net = await api.network(default_credit_limit=1000)
    await api.account(net, "alice")
    base = f"{net.base}/accounts/alice"
    headers = auth(net.operator)
    r = await api.client.put(
        f"{base}/limits",
        json={"credit_limit": 5000, "balance_max": None, "reason": "trusted"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    for action in ("suspend", "reactivate", "close"):
        r = await api.client.post(f"{base}/{action}", json={"reason": action}, headers=headers)
        assert r.status_code == 200, r.text

    events = await feed(api, app, net, await _auditor(api, net))
    assert [e["type"] for e in events] == [
        "account.limits_changed",
        "account.suspended",
        "account.reactivated",
        "account.closed",
    ]
    assert all(e["accounts"] == ["alice"] for e in events)
    limits = events[0]["data"]
    assert (limits["account"], limits["before"], limits["after"]) == (
        "alice",
        {"credit_limit": 1000},
        {"credit_limit": 5000},
    )
    assert events[1]["data"]["after"] == {"status": "suspended"}


async def _auditor(api: Api, net: Net) -> str:
    r = await api.client.post(
        f"{net.base}/keys", json={"role": "auditor"}, headers=auth(net.operator)
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


async def test_a_change_rolled_back_or_refused_is_never_announced(
    api: Api, app: FastAPI, db: asyncpg.Connection
) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "cafe")
    await api.account(net, "alice")
    transaction = db.transaction()
    await transaction.start()
    await db.execute(
        "UPDATE accounts a SET status = 'suspended' FROM networks n"
        " WHERE n.id = a.network_id AND n.code = $1 AND a.code = 'cafe'",
        net.code,
    )
    await transaction.rollback()
    assert_problem(await api.pay(net, "alice", "cafe", 500), 409, "credit_limit_exceeded")
    assert (await api.pay(net, "alice", "cafe", 5)).status_code == 201
    assert [e["type"] for e in await feed(api, app, net)] == ["trade.posted"]


async def test_every_type_is_in_the_document_and_every_event_has_its_shape(
    api: Api, app: FastAPI
) -> None:
    """The OpenAPI document's `webhooks` name every event type, and the feed's events validate
    against the schema the document gives their type (checked by openapi-schema-validator)."""
    document = app.openapi()
    assert set(document["webhooks"]) == set(EVENT_TYPES)
    net = await api.network(default_credit_limit=1000)
    await api.account(net, "cafe")
    await api.account(net, "alice")
    hold = (await api.pay(net, "alice", "cafe", 10, pending=True)).json()
    r = await api.client.post(
        f"{net.base}/trades/{hold['id']}/void",
        headers={**auth(net.operator), "Idempotency-Key": "void-shape"},
    )
    assert r.status_code == 200, r.text
    r = await api.client.post(
        f"{net.base}/requests",
        json={"payer": "alice", "payee": "cafe", "amount": 3},
        headers=auth(net.operator),
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"{net.base}/accounts/alice/suspend", json={"reason": "x"}, headers=auth(net.operator)
    )
    assert r.status_code == 200, r.text
    r = await api.client.post(
        f"{net.base}/webhooks", json={"url": "https://hooks.invalid/"}, headers=auth(net.operator)
    )
    assert r.status_code == 201, r.text
    r = await api.client.patch(
        f"{net.base}/webhooks/{r.json()['id']}",
        json={"enabled": False},
        headers=auth(net.operator),
    )
    assert r.status_code == 200, r.text
    events = await feed(api, app, net)
    assert [e["type"] for e in events] == [
        "trade.held",
        "trade.voided",
        "request.created",
        "account.suspended",
        "webhook.disabled",
    ]
    for event in events:
        operation = document["webhooks"][event["type"]]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        validate(event, {"$ref": ref, "components": document["components"]})
