"""Accounts: opening with the network's defaults, limits, lifecycle, entries and statements."""

import asyncio
from datetime import UTC, datetime, timedelta

from tests.helpers import Api, assert_problem, auth


async def test_an_account_opens_with_the_network_defaults_unless_told_otherwise(api: Api) -> None:
    net = await api.network(default_credit_limit=300, default_balance_max=5000)
    plain = await api.account(net, "plain")
    assert (plain["credit_limit"], plain["balance_max"]) == (300, 5000)
    custom = await api.account(net, "custom", credit_limit=10, balance_max=None)
    assert (custom["credit_limit"], custom["balance_max"]) == (10, None)
    assert (custom["balance"], custom["status"], custom["kind"]) == (0, "active", "member")
    system = await api.account(net, "treasury", kind="system")
    assert system["kind"] == "system"


async def test_account_codes_are_unique_per_network(api: Api) -> None:
    one, two = await api.network(), await api.network()
    await api.account(one, "same")
    await api.account(two, "same")
    r = await api.client.post(
        f"{one.base}/accounts", json={"code": "same"}, headers=auth(one.operator)
    )
    assert_problem(r, 409, "account_code_taken")
    for bad in ("", "has space", "x" * 65, "-leading"):
        r = await api.client.post(
            f"{one.base}/accounts", json={"code": bad}, headers=auth(one.operator)
        )
        assert_problem(r, 422, "validation_error")


async def test_changing_network_defaults_applies_to_new_accounts_only(api: Api) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "before")
    r = await api.client.patch(
        net.base, json={"default_credit_limit": 700}, headers=auth(net.operator)
    )
    assert_problem(r, 422, "validation_error")  # a change of defaults needs a reason
    r = await api.client.patch(
        net.base,
        json={"default_credit_limit": 700, "reason": "members trade more now"},
        headers=auth(net.operator),
    )
    assert r.json()["default_credit_limit"] == 700
    assert (await api.account(net, "after"))["credit_limit"] == 700
    assert (await api.get_account(net, "before"))["credit_limit"] == 100
    # The scale is fixed at creation: the API does not even accept it.
    r = await api.client.patch(net.base, json={"scale": 3}, headers=auth(net.operator))
    assert_problem(r, 422, "validation_error")


async def test_closing_needs_a_zero_balance_and_is_final(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    await api.pay(net, "a", "b", 5)
    r = await api.client.post(f"{net.base}/accounts/a/close", headers=auth(net.operator))
    body = assert_problem(r, 409, "account_not_empty")
    assert body["balance"] == -5
    await api.pay(net, "b", "a", 5)
    r = await api.client.post(f"{net.base}/accounts/a/close", headers=auth(net.operator))
    assert r.json()["status"] == "closed"
    for action in ("reactivate", "suspend", "close"):
        r = await api.client.post(f"{net.base}/accounts/a/{action}", headers=auth(net.operator))
        assert_problem(r, 409, "account_closed")


async def test_an_account_with_a_hold_cannot_close(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    await api.pay(net, "a", "b", 5, pending=True)
    r = await api.client.post(f"{net.base}/accounts/b/close", headers=auth(net.operator))
    assert assert_problem(r, 409, "account_not_empty")["pending_credits"] == 5


async def test_accounts_list_page_by_page_and_by_status(api: Api) -> None:
    net = await api.network()
    codes = [f"m{n:02d}" for n in range(7)]
    for code in codes:
        await api.account(net, code)
    await api.client.post(f"{net.base}/accounts/m03/suspend", headers=auth(net.operator))
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (
            await api.client.get(f"{net.base}/accounts", params=params, headers=auth(net.operator))
        ).json()
        seen += [a["code"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == codes
    r = await api.client.get(
        f"{net.base}/accounts", params={"status": "suspended"}, headers=auth(net.operator)
    )
    assert [a["code"] for a in r.json()["items"]] == ["m03"]


async def test_a_statement_for_a_period_has_opening_and_closing_balances(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    await api.pay(net, "a", "b", 10)
    await asyncio.sleep(0.05)
    start = datetime.now(UTC)
    await api.pay(net, "a", "b", 20)
    await api.pay(net, "b", "a", 5)
    end = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await api.pay(net, "a", "b", 40)

    params = {"from": start.isoformat(), "to": end.isoformat()}
    r = await api.client.get(
        f"{net.base}/accounts/a/statement", params=params, headers=auth(net.operator)
    )
    s = r.json()
    assert (s["opening_balance"], s["closing_balance"]) == (-10, -25)
    assert (s["total_debits"], s["total_credits"], s["entry_count"]) == (20, 5, 2)
    assert [e["amount"] for e in s["entries"]] == [-20, 5]
    assert s["opening_balance"] - s["total_debits"] + s["total_credits"] == s["closing_balance"]

    whole = (
        await api.client.get(f"{net.base}/accounts/a/statement", headers=auth(net.operator))
    ).json()
    assert (whole["opening_balance"], whole["closing_balance"], whole["entry_count"]) == (
        0,
        -65,
        4,
    )
    r = await api.client.get(
        f"{net.base}/accounts/a/statement",
        params={"from": end.isoformat(), "to": start.isoformat()},
        headers=auth(net.operator),
    )
    assert_problem(r, 422, "validation_error")


async def test_entries_page_in_booking_order(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a", credit_limit=10_000)
    await api.account(net, "b")
    for n in range(1, 8):
        await api.pay(net, "a", "b", n)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (
            await api.client.get(
                f"{net.base}/accounts/a/entries", params=params, headers=auth(net.operator)
            )
        ).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["amount"] for e in seen] == [-n for n in range(1, 8)]
    running = 0
    for entry in seen:
        running += entry["amount"]
        assert entry["balance_after"] == running


async def test_entries_of_a_period_page_by_page_name_the_counterparty(api: Api) -> None:
    """A period and a cursor together: every entry of the period once, in order, none outside,
    each with its trade's id, description, reference and the other party's code."""
    net = await api.network()
    await api.account(net, "a", credit_limit=10_000)
    await api.account(net, "b")
    await api.account(net, "c")
    await api.pay(net, "a", "b", 1)
    await asyncio.sleep(0.05)
    start = datetime.now(UTC)
    trades = []
    for n in range(2, 9):
        payer, payee = ("a", "b") if n % 3 else ("c", "a")
        fields = {"description": f"n{n}", **({"external_ref": f"ref-{n}"} if n % 2 else {})}
        r = await api.pay(net, payer, payee, n, **fields)
        assert r.status_code == 201, r.text
        trades.append(r.json())
    end = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await api.pay(net, "a", "b", 100)

    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, str | int] = {
            "limit": 2,
            "from": start.isoformat(),
            "to": end.isoformat(),
        }
        if cursor:
            params["cursor"] = cursor
        r = await api.client.get(
            f"{net.base}/accounts/a/entries", params=params, headers=auth(net.operator)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 4
    assert [e["trade_id"] for e in seen] == [t["id"] for t in trades]
    assert [e["counterparty"] for e in seen] == [t["payee"] if t["payer"] == "a" else t["payer"]
                                                 for t in trades]  # fmt: skip
    assert [e["amount"] for e in seen] == [
        -t["amount"] if t["payer"] == "a" else t["amount"] for t in trades
    ]
    assert [e["description"] for e in seen] == [f"n{n}" for n in range(2, 9)]
    assert [e["external_ref"] for e in seen] == [f"ref-{n}" if n % 2 else None for n in range(2, 9)]
    assert all(start <= datetime.fromisoformat(e["booked_at"]) < end for e in seen)
    assert seen[0]["balance_after"] == -1 + seen[0]["amount"]


async def test_a_member_reads_its_own_account_and_statement(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    token = await api.member_key(net, "a")
    await api.pay(net, "a", "b", 3, token=token)
    r = await api.client.get(f"{net.base}/accounts/a", headers=auth(token))
    assert (r.json()["balance"], r.json()["available"]) == (-3, 997)
    r = await api.client.get(f"{net.base}/accounts/a/statement", headers=auth(token))
    assert r.json()["closing_balance"] == -3
    naive = (datetime.now() - timedelta(days=1)).isoformat()  # noqa: DTZ005 - the bad input
    r = await api.client.get(
        f"{net.base}/accounts/a/entries", params={"from": naive}, headers=auth(token)
    )
    assert_problem(r, 422, "validation_error")
