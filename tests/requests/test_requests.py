"""Payment requests: a payee asks, the payer accepts (the trade posts) or rejects with a
reason, or the request expires; a payer can pre-approve a payee."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.helpers import Api, Net, assert_problem, auth, network_sums


async def _setup(api: Api) -> tuple[Net, str, str]:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "cafe")
    await api.account(net, "alice")
    return net, await api.member_key(net, "cafe"), await api.member_key(net, "alice")


async def _ask(api: Api, net: Net, token: str, amount: int = 30, **body: Any) -> Any:
    return await api.client.post(
        f"{net.base}/requests",
        json={"payer": "alice", "payee": "cafe", "amount": amount, **body},
        headers=auth(token),
    )


async def test_the_payer_accepts_and_the_trade_posts_once(api: Api, db: asyncpg.Connection) -> None:
    net, cafe, alice = await _setup(api)
    r = await _ask(api, net, cafe, description="lunch")
    assert r.status_code == 201, r.text
    request = r.json()
    assert (request["status"], request["trade_id"]) == ("open", None)
    url = f"{net.base}/requests/{request['id']}"

    assert_problem(await api.client.post(f"{url}/accept", headers=auth(cafe)), 403, "forbidden")
    r = await api.client.post(f"{url}/accept", headers=auth(alice))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    trade = (
        await api.client.get(f"{net.base}/trades/{r.json()['trade_id']}", headers=auth(alice))
    ).json()
    assert (trade["payer"], trade["payee"], trade["amount"], trade["kind"]) == (
        "alice",
        "cafe",
        30,
        "request",
    )
    body = assert_problem(
        await api.client.post(f"{url}/accept", headers=auth(alice)), 409, "request_not_open"
    )
    assert body["request_status"] == "accepted"
    assert await api.balances(net) == {"cafe": 30, "alice": -30}
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_a_refused_acceptance_leaves_the_request_open_for_later(api: Api) -> None:
    net, cafe, alice = await _setup(api)
    request = (await _ask(api, net, cafe, amount=150)).json()
    url = f"{net.base}/requests/{request['id']}/accept"
    assert_problem(await api.client.post(url, headers=auth(alice)), 409, "credit_limit_exceeded")
    r = await api.client.get(f"{net.base}/requests/{request['id']}", headers=auth(alice))
    assert r.json()["status"] == "open"
    await api.pay(net, "cafe", "alice", 60)  # alice sells something first
    r = await api.client.post(url, headers=auth(alice))
    assert r.json()["status"] == "accepted"
    assert (await api.get_account(net, "alice"))["balance"] == -90


async def test_the_payer_rejects_with_a_reason(api: Api) -> None:
    net, cafe, alice = await _setup(api)
    request = (await _ask(api, net, cafe)).json()
    url = f"{net.base}/requests/{request['id']}/reject"
    assert_problem(await api.client.post(url, json={}, headers=auth(alice)), 422,
                   "validation_error")  # fmt: skip
    assert_problem(
        await api.client.post(url, json={"reason": "x"}, headers=auth(cafe)), 403, "forbidden"
    )
    r = await api.client.post(url, json={"reason": "never ordered"}, headers=auth(alice))
    assert (r.json()["status"], r.json()["reason"]) == ("rejected", "never ordered")
    assert await api.balances(net) == {"cafe": 0, "alice": 0}


async def test_the_payee_cancels_and_requests_expire(api: Api) -> None:
    net, cafe, alice = await _setup(api)
    request = (await _ask(api, net, cafe)).json()
    r = await api.client.post(f"{net.base}/requests/{request['id']}/cancel", headers=auth(cafe))
    assert r.json()["status"] == "cancelled"

    soon = (datetime.now(UTC) + timedelta(milliseconds=200)).isoformat()
    request = (await _ask(api, net, cafe, expires_at=soon)).json()
    await asyncio.sleep(0.25)
    r = await api.client.post(f"{net.base}/requests/{request['id']}/accept", headers=auth(alice))
    assert_problem(r, 409, "request_expired")
    r = await api.client.get(f"{net.base}/requests/{request['id']}", headers=auth(alice))
    assert r.json()["status"] == "expired"


async def test_a_pre_approved_payee_is_paid_at_once_up_to_its_cap(api: Api) -> None:
    net, cafe, alice = await _setup(api)
    url = f"{net.base}/accounts/alice/approvals/cafe"
    assert_problem(
        await api.client.put(url, json={"max_amount": 50}, headers=auth(cafe)), 403, "forbidden"
    )
    r = await api.client.put(url, json={"max_amount": 50}, headers=auth(alice))
    assert r.json()["max_amount"] == 50
    assert (await _ask(api, net, cafe, amount=40)).json()["status"] == "accepted"
    assert (await _ask(api, net, cafe, amount=60)).json()["status"] == "open"
    r = await api.client.get(f"{net.base}/accounts/alice/approvals", headers=auth(alice))
    assert [(a["payee"], a["max_amount"]) for a in r.json()] == [("cafe", 50)]
    assert (await api.client.delete(url, headers=auth(alice))).status_code == 204
    assert (await _ask(api, net, cafe, amount=10)).json()["status"] == "open"
    assert await api.balances(net) == {"cafe": 40, "alice": -40}


async def test_members_only_see_their_own_requests(api: Api) -> None:
    net, cafe, alice = await _setup(api)
    await api.account(net, "bob")
    bob = await api.member_key(net, "bob")
    request = (await _ask(api, net, cafe)).json()
    r = await api.client.get(f"{net.base}/requests/{request['id']}", headers=auth(bob))
    assert_problem(r, 404, "request_not_found")
    assert (await api.client.get(f"{net.base}/requests", headers=auth(bob))).json()["items"] == []
    r = await api.client.get(f"{net.base}/requests", headers=auth(alice))
    assert [x["id"] for x in r.json()["items"]] == [request["id"]]
    # A member requests payment only to its own account.
    r = await api.client.post(
        f"{net.base}/requests",
        json={"payer": "alice", "payee": "cafe", "amount": 1},
        headers=auth(bob),
    )
    assert_problem(r, 403, "forbidden")
