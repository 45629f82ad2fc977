"""Fees in the event feed: each fee trade is a `fee.charged` event of its own, told apart from
the payments (`trade.posted`), with the rule and the cause of the charge."""

from datetime import UTC, datetime, timedelta

import asyncpg
from fastapi import FastAPI
from openapi_schema_validator import validate

from tests.events.test_events import feed
from tests.fees.rules import insert_rule
from tests.helpers import Api, auth


async def test_a_levy_is_a_fee_charged_event_after_its_trade(
    api: Api, app: FastAPI, db: asyncpg.Connection
) -> None:
    net = await api.network(default_credit_limit=1000)
    for code in ("cafe", "alice"):
        await api.account(net, code)
    await api.account(net, "treasury", kind="system")
    await insert_rule(
        db, net.code, "treasury", code="levy", kind="levy", charge_payer=True, rate_num=1,
        rate_den=50, starts_at=datetime.now(UTC) - timedelta(seconds=1),
    )  # fmt: skip
    r = await api.pay(net, "alice", "cafe", 100)  # levy 100 / 50 = 2 on alice
    assert r.status_code == 201, r.text
    paid = r.json()["id"]

    events = await feed(api, app, net)
    assert [(e["type"], e["accounts"]) for e in events] == [
        ("trade.posted", ["alice", "cafe"]),
        ("fee.charged", ["alice", "treasury"]),
    ]
    charged = events[1]["data"]
    assert charged["trade"]["kind"] == "fee"
    assert (charged["trade"]["amount"], charged["trade"]["status"]) == (2, "posted")
    assert charged["balances_after"] == {"alice": -102, "treasury": 2}
    assert charged["fee"] == {
        "rule": "levy",
        "kind": "levy",
        "cause_trade_id": paid,
        "due_at": None,
        "waived": 0,
        "past_limit": False,
    }
    document = app.openapi()
    for event in events:
        operation = document["webhooks"][event["type"]]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        validate(event, {"$ref": ref, "components": document["components"]})

    # A subscriber tells them apart by type; a member sees its own charge and balance only.
    assert [e["type"] for e in await feed(api, app, net, types="trade.posted")] == ["trade.posted"]
    assert await feed(api, app, net, types="fee.charged") == events[1:]
    alice = await api.member_key(net, "alice")
    mine = await feed(api, app, net, alice, types="fee.charged")
    assert [e["data"]["balances_after"] for e in mine] == [{"alice": -102}]
    assert await feed(api, app, net, account="cafe", types="fee.charged") == []
    r = await api.client.post(
        f"{net.base}/webhooks",
        json={"url": "https://hooks.invalid/", "event_types": ["fee.charged"]},
        headers=auth(alice),
    )
    assert r.status_code == 201, r.text
    assert r.json()["event_types"] == ["fee.charged"]

    # A refund of the charge is a reversal like any other.
    r = await api.client.post(
        f"{net.base}/trades/{charged['trade']['id']}/reverse",
        json={"reason": "refund"},
        headers=auth(net.operator),
    )
    assert r.status_code == 201, r.text
    refunds = await feed(api, app, net, types="trade.reversed,fee.charged")
    assert [(e["type"], e["data"]["balances_after"]) for e in refunds] == [
        ("fee.charged", {"alice": -102, "treasury": 2}),
        ("trade.reversed", {"alice": -100, "treasury": 0}),
    ]
