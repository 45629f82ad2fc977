"""Keys and roles: who may do what, and what a bad key gets."""

import asyncio
import hashlib
import logging

import asyncpg
import httpx
import pytest

from mutualcredit.observability import JsonFormatter
from tests.helpers import Api, Net, assert_problem, auth


async def test_requests_without_a_valid_key_are_refused(api: Api) -> None:
    net = await api.network()
    url = f"{net.base}/accounts"
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer mc_0000000000000000_wrongsecret"},
        auth(net.operator[:-2] + "xx"),
    ):
        r = await api.client.get(url, headers=headers)
        assert_problem(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_revoked_key_fails_at_once(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    token = await api.member_key(net, "a")
    assert (await api.client.get(f"{net.base}/accounts/a", headers=auth(token))).status_code == 200
    key_id = token.split("_")[1]
    r = await api.client.post(f"{net.base}/keys/{key_id}/revoke", headers=auth(net.operator))
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    r = await api.client.get(f"{net.base}/accounts/a", headers=auth(token))
    assert_problem(r, 401, "unauthorized")


async def _active_operator_keys(api: Api, net: Net) -> list[str]:
    r = await api.client.get(f"{net.base}/keys", headers=auth(api.platform))
    assert r.status_code == 200, r.text
    return [k["key_id"] for k in r.json() if k["role"] == "operator" and k["revoked_at"] is None]


async def test_an_operator_cannot_lock_its_network_out(api: Api) -> None:
    net = await api.network()
    own_id = net.operator.split("_")[1]
    r = await api.client.post(f"{net.base}/keys/{own_id}/revoke", headers=auth(net.operator))
    problem = assert_problem(r, 409, "last_operator_key")
    assert "create another" in problem["detail"]
    # Still the network's key, and still working.
    assert await _active_operator_keys(api, net) == [own_id]
    assert (await api.client.get(f"{net.base}/keys", headers=auth(net.operator))).status_code == 200

    # With a second operator key, either may go (itself included)...
    r = await api.client.post(
        f"{net.base}/keys", json={"role": "operator"}, headers=auth(net.operator)
    )
    second = r.json()["token"]
    second_id = second.split("_")[1]
    r = await api.client.post(f"{net.base}/keys/{own_id}/revoke", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    # ... but not the last one left.
    r = await api.client.post(f"{net.base}/keys/{second_id}/revoke", headers=auth(second))
    assert_problem(r, 409, "last_operator_key")
    assert await _active_operator_keys(api, net) == [second_id]


async def test_two_operators_revoking_each_other_at_once_leave_one(api: Api) -> None:
    for _ in range(5):
        net = await api.network()
        r = await api.client.post(
            f"{net.base}/keys", json={"role": "operator"}, headers=auth(net.operator)
        )
        other = r.json()["token"]
        first_id, other_id = net.operator.split("_")[1], other.split("_")[1]
        answers = await asyncio.gather(
            api.client.post(f"{net.base}/keys/{other_id}/revoke", headers=auth(net.operator)),
            api.client.post(f"{net.base}/keys/{first_id}/revoke", headers=auth(other)),
        )
        # One revocation went through; the other was refused, as the last key's or as a key
        # revoked a moment before.
        assert sorted(a.status_code for a in answers) in ([200, 401], [200, 409])
        assert len(await _active_operator_keys(api, net)) == 1


async def test_the_platform_may_revoke_a_networks_last_operator_key(api: Api) -> None:
    # The platform is not locked out of any network: it can mint the network a new key.
    net = await api.network()
    own_id = net.operator.split("_")[1]
    r = await api.client.post(f"{net.base}/keys/{own_id}/revoke", headers=auth(api.platform))
    assert r.status_code == 200, r.text
    assert await _active_operator_keys(api, net) == []


async def test_secrets_are_stored_only_as_hashes(api: Api, db: asyncpg.Connection) -> None:
    net = await api.network()
    _, key_id, secret = net.operator.split("_", 2)
    row = await db.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key_id)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).digest()
    stored = " ".join(str(v) for v in row.values())
    assert secret not in stored


async def test_a_replayed_key_creation_never_shows_the_secret_again(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network()
    await api.account(net, "a")
    headers = {**auth(net.operator), "Idempotency-Key": "key-1"}
    body = {"role": "member", "account": "a"}
    first = await api.client.post(f"{net.base}/keys", json=body, headers=headers)
    again = await api.client.post(f"{net.base}/keys", json=body, headers=headers)
    assert first.json()["token"].startswith("mc_")
    assert again.json()["token"] is None
    assert again.json()["key_id"] == first.json()["key_id"]
    stored = await db.fetchval("SELECT response::text FROM idempotency_records WHERE key = 'key-1'")
    assert first.json()["token"] not in stored


async def test_member_keys_need_an_account_and_operator_keys_none(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    for body in ({"role": "member"}, {"role": "operator", "account": "a"}, {"role": "platform"}):
        r = await api.client.post(f"{net.base}/keys", json=body, headers=auth(net.operator))
        assert_problem(r, 422, "validation_error")
    r = await api.client.post(
        f"{net.base}/keys", json={"role": "member", "account": "ghost"}, headers=auth(net.operator)
    )
    assert_problem(r, 404, "account_not_found")


async def test_me_names_the_key(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    token = await api.member_key(net, "a")
    r = await api.client.get("/v1/me", headers=auth(token))
    assert r.json() | {"key_id": None} == {
        "key_id": None,
        "role": "member",
        "network": net.code,
        "account": "a",
    }


async def test_an_operator_never_sees_another_network(api: Api) -> None:
    mine, theirs = await api.network(), await api.network()
    await api.account(theirs, "x")
    trade = (await api.account(theirs, "y"), await api.pay(theirs, "x", "y", 1))[1].json()
    for method, path in (
        ("GET", theirs.base),
        ("PATCH", theirs.base),
        ("GET", f"{theirs.base}/accounts"),
        ("GET", f"{theirs.base}/accounts/x"),
        ("POST", f"{theirs.base}/accounts"),
        ("PUT", f"{theirs.base}/accounts/x/limits"),
        ("POST", f"{theirs.base}/accounts/x/suspend"),
        ("GET", f"{theirs.base}/accounts/x/statement"),
        ("GET", f"{theirs.base}/trades"),
        ("GET", f"{theirs.base}/trades/{trade['id']}"),
        ("POST", f"{theirs.base}/trades/{trade['id']}/void"),
        ("GET", f"{theirs.base}/keys"),
    ):
        body: dict[str, object] | None = {} if method in ("POST", "PATCH") else None
        if path.endswith("/limits"):
            body = {"credit_limit": 0, "balance_max": None, "reason": "r"}
        if path.endswith("/accounts") and method == "POST":
            body = {"code": "intruder"}
        r = await api.client.request(method, path, json=body, headers=auth(mine.operator))
        assert_problem(r, 404, "network_not_found")
    r = await api.pay(theirs, "x", "y", 1, token=mine.operator)
    assert_problem(r, 404, "network_not_found")
    assert await api.balances(theirs) == {"x": -1, "y": 1}


async def test_members_and_operators_cannot_do_platform_or_operator_work(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    member = await api.member_key(net, "a")
    network_body = {"code": "x", "name": "x", "unit_name": "u", "unit_symbol": "u", "scale": 0}
    for token in (member, net.operator):
        r = await api.client.post("/v1/networks", json=network_body, headers=auth(token))
        assert_problem(r, 403, "forbidden")
        assert_problem(await api.client.get("/v1/networks", headers=auth(token)), 403, "forbidden")
    for method, path, body in (
        ("POST", f"{net.base}/accounts", {"code": "c"}),
        ("GET", f"{net.base}/accounts", None),
        (
            "PUT",
            f"{net.base}/accounts/a/limits",
            {"credit_limit": 9, "balance_max": None, "reason": "r"},
        ),
        ("POST", f"{net.base}/accounts/b/suspend", None),
        ("POST", f"{net.base}/accounts/b/close", None),
        ("PATCH", net.base, {"default_credit_limit": 5}),
        ("POST", f"{net.base}/keys", {"role": "operator"}),
        ("GET", f"{net.base}/keys", None),
        ("GET", f"{net.base}/accounts/b", None),
        ("GET", f"{net.base}/accounts/b/entries", None),
        ("GET", f"{net.base}/accounts/b/statement", None),
    ):
        r = await api.client.request(method, path, json=body, headers=auth(member))
        assert_problem(r, 403, "forbidden")
    assert (await api.get_account(net, "a"))["credit_limit"] == 1000


async def test_the_platform_key_reaches_every_network(api: Api) -> None:
    net = await api.network()
    r = await api.client.get("/v1/networks", headers=auth(api.platform))
    assert net.code in {n["code"] for n in r.json()}
    r = await api.client.post(
        f"{net.base}/accounts", json={"code": "p"}, headers=auth(api.platform)
    )
    assert r.status_code == 201


async def test_a_key_is_never_logged_or_echoed(
    api: Api, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    net = await api.network()
    secret = net.operator.split("_", 2)[2]
    with caplog.at_level(logging.DEBUG):
        r = await client.get(f"{net.base}/accounts/ghost", headers=auth(net.operator))
        await api.pay(net, "ghost", "nobody", 1)
    assert secret not in r.text
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert lines, "the requests logged nothing: the check below would be empty"
    assert all(secret not in line for line in lines)
