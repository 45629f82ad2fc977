"""Credit limits as policy: reasons, history, limits at a past moment, temporary limits,
lowering below use, and network defaults applied only when the operator says so."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import Api, Net, assert_problem, auth


async def _set(api: Api, net: Net, code: str, **body: Any) -> Any:
    return await api.client.put(
        f"{net.base}/accounts/{code}/limits", json=body, headers=auth(net.operator)
    )


async def _history(api: Api, net: Net, code: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        f"{net.base}/accounts/{code}/limits/history", headers=auth(net.operator)
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_every_change_of_limits_is_recorded_with_who_when_and_why(api: Api) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "a")
    assert_problem(await _set(api, net, "a", credit_limit=300, balance_max=None), 422,
                   "validation_error")  # fmt: skip
    r = await _set(api, net, "a", credit_limit=300, balance_max=900, reason="steady trader")
    assert r.status_code == 200, r.text
    assert r.json()["account"]["credit_limit"] == 300
    assert r.json()["beyond_limits"] == []

    opened, changed = await _history(api, net, "a")
    assert (opened["kind"], opened["credit_limit_after"], opened["reason"]) == (
        "open",
        100,
        "account opened",
    )
    assert (changed["kind"], changed["reason"]) == ("set", "steady trader")
    assert (changed["credit_limit_before"], changed["credit_limit_after"]) == (100, 300)
    assert (changed["balance_max_before"], changed["balance_max_after"]) == (None, 900)
    key_id = net.operator.split("_")[1]
    assert changed["actor"] == f"operator:{key_id}"


async def test_the_limits_in_force_at_any_past_moment(api: Api) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "a")
    await asyncio.sleep(0.02)
    first = datetime.now(UTC)
    await asyncio.sleep(0.02)
    await _set(api, net, "a", credit_limit=250, balance_max=None, reason="raise")
    await asyncio.sleep(0.02)
    second = datetime.now(UTC)

    url = f"{net.base}/accounts/a/limits"
    then = await api.client.get(url, params={"at": first.isoformat()}, headers=auth(net.operator))
    now = await api.client.get(url, params={"at": second.isoformat()}, headers=auth(net.operator))
    assert then.json()["credit_limit"] == 100
    assert now.json()["credit_limit"] == 250
    before = (first - timedelta(days=1)).isoformat()
    r = await api.client.get(url, params={"at": before}, headers=auth(net.operator))
    assert_problem(r, 404, "no_limits_then")


async def test_lowering_a_limit_below_use_is_allowed_and_blocks_only_further_spending(
    api: Api,
) -> None:
    net = await api.network(default_credit_limit=500)
    await api.account(net, "a")
    await api.account(net, "b")
    assert (await api.pay(net, "a", "b", 400)).status_code == 201

    r = await _set(api, net, "a", credit_limit=100, balance_max=None, reason="missed payments")
    assert r.status_code == 200, r.text
    assert r.json()["beyond_limits"] == ["credit_limit"]
    assert "beyond" in r.json()["notice"]
    assert r.json()["account"]["available"] == -300

    assert_problem(await api.pay(net, "a", "b", 1), 409, "credit_limit_exceeded")
    # Selling (receiving) is how the account recovers, and it may.
    assert (await api.pay(net, "b", "a", 50)).status_code == 201
    assert (await api.get_account(net, "a"))["balance"] == -350
    # History is untouched: the 400 trade stands.
    r = await api.client.get(f"{net.base}/accounts/a/entries", headers=auth(net.operator))
    assert [e["amount"] for e in r.json()["items"]] == [-400, 50]


async def test_a_temporary_limit_returns_by_itself_and_the_return_is_recorded(
    api: Api,
) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "a")
    until = (datetime.now(UTC) + timedelta(milliseconds=400)).isoformat()
    r = await _set(
        api, net, "a", credit_limit=1000, balance_max=None, reason="harvest", until=until
    )
    account = r.json()["account"]
    assert (account["credit_limit"], account["revert_credit_limit"]) == (1000, 100)
    assert account["revert_at"] is not None

    for _ in range(40):  # the test app's jobs run every 0.2 s
        await asyncio.sleep(0.1)
        if (await api.get_account(net, "a"))["credit_limit"] == 100:
            break
    account = await api.get_account(net, "a")
    assert (account["credit_limit"], account["revert_at"]) == (100, None)
    kinds = [
        (c["kind"], c["credit_limit_after"], c["actor"]) for c in await _history(api, net, "a")
    ]
    assert kinds[1:] == [
        ("temporary", 1000, f"operator:{net.operator.split('_')[1]}"),
        ("revert", 100, "system:limit-revert"),
    ]


async def test_a_run_of_temporary_limits_returns_to_the_permanent_one(api: Api) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "a")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await _set(api, net, "a", credit_limit=200, balance_max=None, reason="t1", until=later)
    r = await _set(api, net, "a", credit_limit=300, balance_max=None, reason="t2", until=later)
    assert r.json()["account"]["revert_credit_limit"] == 100
    # A permanent change cancels the scheduled return.
    r = await _set(api, net, "a", credit_limit=150, balance_max=None, reason="settled")
    assert (r.json()["account"]["revert_at"], r.json()["account"]["credit_limit"]) == (None, 150)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    r = await _set(api, net, "a", credit_limit=1, balance_max=None, reason="x", until=past)
    assert_problem(r, 422, "validation_error")


async def test_new_defaults_apply_to_new_accounts_until_the_operator_applies_them(
    api: Api,
) -> None:
    net = await api.network(default_credit_limit=100)
    await api.account(net, "a")
    await api.account(net, "b", credit_limit=999)
    await api.account(net, "shop", kind="system", credit_limit=0)
    await api.account(net, "c")
    await api.pay(net, "a", "c", 90)
    r = await api.client.patch(
        net.base,
        json={"default_credit_limit": 50, "reason": "tighter policy"},
        headers=auth(net.operator),
    )
    assert r.status_code == 200, r.text
    assert (await api.account(net, "new"))["credit_limit"] == 50

    url = f"{net.base}/limits/apply-defaults"
    r = await api.client.post(url, json={"reason": "policy"}, headers=auth(net.operator))
    plan = r.json()
    assert plan["dry_run"] is True
    changes = {c["account"]: c for c in plan["changes"]}
    assert set(changes) == {"a", "b", "c"}  # not the system account, not 'new'
    assert changes["a"]["beyond_limits_after"] is True  # it uses 90 of credit
    assert (await api.get_account(net, "a"))["credit_limit"] == 100  # a dry run changes nothing

    r = await api.client.post(
        url, json={"reason": "policy", "dry_run": False}, headers=auth(net.operator)
    )
    assert {c["account"] for c in r.json()["changes"]} == {"a", "b", "c"}
    for code in ("a", "b", "c"):
        assert (await api.get_account(net, code))["credit_limit"] == 50
        last = (await _history(api, net, code))[-1]
        assert (last["kind"], last["reason"]) == ("propagate", "policy")
    assert (await api.get_account(net, "shop"))["credit_limit"] == 0

    r = await api.client.get(f"{net.base}/limits/history", headers=auth(net.operator))
    assert [(c["credit_limit_after"], c["reason"]) for c in r.json()] == [
        (100, "network created"),
        (50, "tighter policy"),
    ]
