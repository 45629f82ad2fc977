"""Paying: a trade debits the payer and credits the payee by the same amount, or is refused
with a stable code and nothing written."""

import uuid

import asyncpg

from tests.helpers import Api, assert_problem, auth, network_sums


async def test_three_members_trade_in_a_circle_and_every_balance_returns_to_zero(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network()
    for code in ("alice", "bob", "carol"):
        await api.account(net, code)

    for payer, payee in (("alice", "bob"), ("bob", "carol"), ("carol", "alice")):
        r = await api.pay(net, payer, payee, 700, description="circle")
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "posted"
        assert r.json()["posted_amount"] == 700

    assert await api.balances(net) == {"alice": 0, "bob": 0, "carol": 0}
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_a_trade_books_two_entries_with_the_balance_after(api: Api) -> None:
    net = await api.network()
    await api.account(net, "shop")
    await api.account(net, "member")
    r = await api.pay(net, "member", "shop", 250, description="apples", external_ref="R-1")
    trade = r.json()

    member = await api.get_account(net, "member")
    shop = await api.get_account(net, "shop")
    assert (member["balance"], shop["balance"]) == (-250, 250)
    assert member["available"] == 1000 - 250

    r = await api.client.get(f"{net.base}/accounts/member/entries", headers=auth(net.operator))
    (entry,) = r.json()["items"]
    assert entry["trade_id"] == trade["id"]
    assert (entry["amount"], entry["balance_after"]) == (-250, -250)
    assert (entry["counterparty"], entry["description"], entry["external_ref"]) == (
        "shop",
        "apples",
        "R-1",
    )


async def test_payer_beyond_credit_limit_is_refused_with_the_numbers(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a", credit_limit=100)
    await api.account(net, "b")
    assert (await api.pay(net, "a", "b", 60)).status_code == 201

    body = assert_problem(await api.pay(net, "a", "b", 50), 409, "credit_limit_exceeded")
    assert (body["account"], body["available"], body["shortfall"]) == ("a", 40, 10)
    # Exactly to the limit is allowed.
    assert (await api.pay(net, "a", "b", 40)).status_code == 201
    assert (await api.get_account(net, "a"))["balance"] == -100


async def test_payee_beyond_balance_max_is_refused(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b", balance_max=100)
    assert (await api.pay(net, "a", "b", 100)).status_code == 201
    body = assert_problem(await api.pay(net, "a", "b", 1), 409, "balance_max_exceeded")
    assert (body["account"], body["headroom"], body["excess"]) == ("b", 0, 1)
    assert await api.balances(net) == {"a": -100, "b": 100}


async def test_unknown_accounts_and_self_payment_are_refused(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    body = assert_problem(await api.pay(net, "a", "ghost", 1), 404, "account_not_found")
    assert body["account"] == "ghost"
    assert_problem(await api.pay(net, "a", "a", 1), 422, "same_account")
    assert await api.balances(net) == {"a": 0}


async def test_bad_amounts_get_a_clear_422_and_write_nothing(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    amounts: tuple[object, ...] = (0, -5, 1.5, 10.0, "10", True, None, 2**53, 2**63, 2**64, [], {})
    for amount in amounts:
        r = await api.pay(net, "a", "b", amount)
        assert_problem(r, 422, "validation_error")
    assert await api.balances(net) == {"a": 0, "b": 0}
    r = await api.client.get(f"{net.base}/trades", headers=auth(net.operator))
    assert r.json()["items"] == []


async def test_unknown_fields_and_malformed_bodies_are_refused(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    r = await api.pay(net, "a", "b", 5, currency="EUR")
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["location"] == ["body", "currency"]

    headers = {**auth(net.operator), "Idempotency-Key": "x", "content-type": "application/json"}
    for raw in (b"{", b"[]", b"\xff\xfe", b'{"payer": "a", "payee": "b", "amount": 1e3}'):
        r = await api.client.post(f"{net.base}/trades", content=raw, headers=headers)
        assert_problem(r, 422, "validation_error")
    assert await api.balances(net) == {"a": 0, "b": 0}


async def test_a_trade_needs_an_idempotency_key(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    r = await api.client.post(
        f"{net.base}/trades",
        json={"payer": "a", "payee": "b", "amount": 1},
        headers=auth(net.operator),
    )
    assert_problem(r, 422, "idempotency_key_required")


async def test_a_retry_with_the_same_key_returns_the_original_trade_and_books_once(
    api: Api,
) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    key = str(uuid.uuid4())
    first = await api.pay(net, "a", "b", 30, key=key, description="x")
    again = await api.pay(net, "a", "b", 30, key=key, description="x")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.json() == first.json()
    assert await api.balances(net) == {"a": -30, "b": 30}


async def test_the_same_key_with_another_request_is_a_conflict(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    key = str(uuid.uuid4())
    assert (await api.pay(net, "a", "b", 30, key=key)).status_code == 201
    body = assert_problem(await api.pay(net, "a", "b", 31, key=key), 409, "idempotency_conflict")
    assert body["key"] == key
    assert await api.balances(net) == {"a": -30, "b": 30}


async def test_a_refusal_is_remembered_so_a_retry_cannot_turn_it_into_a_success(
    api: Api,
) -> None:
    net = await api.network()
    await api.account(net, "a", credit_limit=10)
    await api.account(net, "b")
    key = str(uuid.uuid4())
    first = assert_problem(await api.pay(net, "a", "b", 50, key=key), 409, "credit_limit_exceeded")

    # The operator raises the limit; the retry of the refused key is still refused, identically.
    r = await api.client.put(
        f"{net.base}/accounts/a/limits",
        json={"credit_limit": 1000, "balance_max": None, "reason": "trusted member"},
        headers=auth(net.operator),
    )
    assert r.status_code == 200, r.text
    again = assert_problem(await api.pay(net, "a", "b", 50, key=key), 409, "credit_limit_exceeded")
    assert again == first
    # A different request under the refused key is a conflict, not a new attempt.
    assert_problem(await api.pay(net, "a", "b", 5, key=key), 409, "idempotency_conflict")
    # A new key is a new attempt.
    assert (await api.pay(net, "a", "b", 50)).status_code == 201
    assert await api.balances(net) == {"a": -50, "b": 50}


async def test_keys_are_scoped_to_their_network(api: Api) -> None:
    one, two = await api.network(), await api.network()
    for net in (one, two):
        await api.account(net, "a")
        await api.account(net, "b")
    assert (await api.pay(one, "a", "b", 5, key="shared-key")).status_code == 201
    assert (await api.pay(two, "a", "b", 7, key="shared-key")).status_code == 201
    assert await api.balances(two) == {"a": -7, "b": 7}


async def test_members_pay_only_from_their_own_account(api: Api) -> None:
    net = await api.network()
    await api.account(net, "alice")
    await api.account(net, "bob")
    alice = await api.member_key(net, "alice")
    assert (await api.pay(net, "alice", "bob", 5, token=alice)).status_code == 201
    assert_problem(await api.pay(net, "bob", "alice", 5, token=alice), 403, "forbidden")
    assert await api.balances(net) == {"alice": -5, "bob": 5}


async def test_a_member_reads_its_own_trades_only(api: Api) -> None:
    net = await api.network()
    for code in ("alice", "bob", "carol"):
        await api.account(net, code)
    alice, carol = await api.member_key(net, "alice"), await api.member_key(net, "carol")
    trade = (await api.pay(net, "alice", "bob", 5, token=alice)).json()
    await api.pay(net, "bob", "carol", 1)

    r = await api.client.get(f"{net.base}/trades/{trade['id']}", headers=auth(alice))
    assert r.status_code == 200
    assert r.json() == trade
    r = await api.client.get(f"{net.base}/trades/{trade['id']}", headers=auth(carol))
    assert_problem(r, 404, "trade_not_found")

    r = await api.client.get(f"{net.base}/trades", headers=auth(alice))
    assert [t["id"] for t in r.json()["items"]] == [trade["id"]]
    r = await api.client.get(f"{net.base}/trades", params={"account": "bob"}, headers=auth(alice))
    assert_problem(r, 403, "forbidden")


async def test_operator_lists_trades_page_by_page_and_by_account(api: Api) -> None:
    net = await api.network()
    for code in ("a", "b", "c"):
        await api.account(net, code)
    ids = [(await api.pay(net, "a", "b", n + 1)).json()["id"] for n in range(5)]
    other = (await api.pay(net, "b", "c", 1)).json()["id"]

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get(f"{net.base}/trades", params=params, headers=auth(net.operator))
        page = r.json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [*ids, other]

    r = await api.client.get(
        f"{net.base}/trades", params={"account": "c"}, headers=auth(net.operator)
    )
    assert [t["id"] for t in r.json()["items"]] == [other]
    r = await api.client.get(
        f"{net.base}/trades", params={"cursor": "garbage!"}, headers=auth(net.operator)
    )
    assert_problem(r, 422, "validation_error")


async def test_suspended_and_closed_accounts_neither_pay_nor_receive(api: Api) -> None:
    net = await api.network()
    for code in ("a", "b", "c"):
        await api.account(net, code)
    r = await api.client.post(f"{net.base}/accounts/b/suspend", headers=auth(net.operator))
    assert r.json()["status"] == "suspended"
    assert_problem(await api.pay(net, "a", "b", 1), 409, "account_suspended")
    assert_problem(await api.pay(net, "b", "a", 1), 409, "account_suspended")

    r = await api.client.post(f"{net.base}/accounts/c/close", headers=auth(net.operator))
    assert r.json()["status"] == "closed"
    assert_problem(await api.pay(net, "a", "c", 1), 409, "account_closed")

    await api.client.post(f"{net.base}/accounts/b/reactivate", headers=auth(net.operator))
    assert (await api.pay(net, "a", "b", 1)).status_code == 201
