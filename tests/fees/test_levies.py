"""Levies on trades, through the API: booked with the trade (both or neither) as trades of kind
`fee` into the treasury, shown on the trade and on the statements, refused or booked past a limit
as the rule says, paid by a hold when it is posted, reversed with their trade, and the network
still sums to zero. Every number is computed here, independently of the ledger."""

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import Api, Net, assert_problem, auth, network_sums

# 7/1000 of the amount and 3 fixed, at least 5 and at most 40.
RULE = {
    "code": "levy",
    "kind": "levy",
    "treasury": "treasury",
    "rate": {"num": 7, "den": 1000},
    "amount": 3,
    "minimum": 5,
    "maximum": 40,
    "reason": "the network pays for itself",
}
# By hand: 100 -> 0 + 3, raised to 5; 1000 -> 7 + 3 = 10; 10000 -> 70 + 3, cut to 40;
# 2999 -> 20 (20.993 floored) + 3 = 23.
LEVIES = {100: 5, 1000: 10, 10000: 40, 2999: 23}


async def world(api: Api, credit_limit: int = 100_000, **rule: Any) -> Net:
    net = await api.network(default_credit_limit=credit_limit)
    for code in ("a", "b"):
        await api.account(net, code)
    await api.account(net, "treasury", kind="system")
    r = await api.client.post(
        f"{net.base}/fee-rules", json={**RULE, **rule}, headers=auth(net.operator)
    )
    assert r.status_code == 201, r.text
    return net


async def get(api: Api, net: Net, path: str) -> Any:
    r = await api.client.get(f"{net.base}{path}", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    return r.json()


async def fee_trades(api: Api, net: Net) -> list[dict[str, Any]]:
    trades = (await get(api, net, "/trades?limit=500"))["items"]
    return [t for t in trades if t["kind"] == "fee"]


@pytest.mark.parametrize("charge", ["payer", "payee", "both"])
async def test_a_levy_is_booked_with_its_trade_and_shown_on_it_and_on_the_statements(
    api: Api, db: asyncpg.Connection, charge: str
) -> None:
    net = await world(api, charge=charge)
    sides = {"payer": ["a"], "payee": ["b"], "both": ["a", "b"]}[charge]
    paid = {"a": 0, "b": 0}
    for amount, levy in LEVIES.items():
        r = await api.pay(net, "a", "b", amount)
        assert r.status_code == 201, r.text
        trade = r.json()
        assert [(f["rule"], f["account"], f["amount"], f["past_limit"]) for f in trade["fees"]] == [
            ("levy", side, levy, False) for side in sides
        ]
        assert trade["fee"] is None
        # A read of the trade shows the same levies, each a trade of its own.
        assert (await get(api, net, f"/trades/{trade['id']}"))["fees"] == trade["fees"]
        for charged in trade["fees"]:
            levy_trade = await get(api, net, f"/trades/{charged['trade_id']}")
            assert (levy_trade["kind"], levy_trade["payer"], levy_trade["payee"]) == (
                "fee",
                charged["account"],
                "treasury",
            )
            assert levy_trade["amount"] == levy
            assert levy_trade["fee"] == {
                "rule": "levy",
                "kind": "levy",
                "cause_trade_id": trade["id"],
                "due_at": None,
            }
            assert levy_trade["fees"] == []
            paid[charged["account"]] += levy

    total = sum(LEVIES.values())
    moved = sum(LEVIES)
    balances = await api.balances(net)
    assert balances == {
        "a": -moved - paid["a"],
        "b": moved - paid["b"],
        "treasury": paid["a"] + paid["b"],
    }
    assert paid == {"a": total if "a" in sides else 0, "b": total if "b" in sides else 0}

    # The statement lines: each trade, then its levies, with the treasury as counterparty.
    entries = (await get(api, net, "/accounts/a/entries"))["items"]
    lines = [(e["amount"], e["counterparty"]) for e in entries]
    expected: list[tuple[int, str]] = []
    for amount, levy in LEVIES.items():
        expected.append((-amount, "b"))
        if "a" in sides:
            expected.append((-levy, "treasury"))
    assert lines == expected
    assert entries[-1]["balance_after"] == balances["a"]
    treasury = await get(api, net, "/accounts/treasury/statement")
    assert treasury["total_credits"] == paid["a"] + paid["b"]
    assert all(e["description"].startswith("Levy levy on trade ") for e in treasury["entries"])

    # The list of trades shows the levies as a read does.
    listed = (await get(api, net, "/trades?limit=500"))["items"]
    for t in listed:
        assert t == await get(api, net, f"/trades/{t['id']}")
    charges = (await get(api, net, "/fee-charges"))["items"]
    assert sum(c["amount"] for c in charges) == paid["a"] + paid["b"]
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_a_levy_its_rule_refuses_past_the_limit_refuses_the_trade_with_nothing_booked(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await world(api, credit_limit=1000, charge="both")
    assert (await api.pay(net, "a", "b", 100)).status_code == 201  # a -105, b 95, treasury 10
    before = await api.balances(net)
    assert before == {"a": -105, "b": 95, "treasury": 10}

    # a can pay 895: 890 leaves it 5 short of its levy (890 -> 6 + 3 = 9).
    key = str(uuid.uuid4())
    r = await api.pay(net, "a", "b", 890, key=key)
    problem = assert_problem(r, 409, "credit_limit_exceeded")
    assert (problem["account"], problem["fee_rule"]) == ("a", "levy")
    assert (problem["available"], problem["shortfall"]) == (895, 4)
    assert await api.balances(net) == before
    assert len(await fee_trades(api, net)) == 2  # the first trade's, only
    assert len((await get(api, net, "/trades?limit=500"))["items"]) == 3

    # A retry replays the refusal, even now that it would pass.
    await api.client.put(
        f"{net.base}/accounts/a/limits",
        json={"credit_limit": 5000, "balance_max": None, "reason": "more"},
        headers=auth(net.operator),
    )
    again = await api.pay(net, "a", "b", 890, key=key)
    assert again.status_code == 409
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == problem
    assert await api.balances(net) == before

    # The treasury's upper limit refuses a levy too: a's levy of 5 fills it to 15, and b's
    # does not fit. As for a credit limit, the headroom is the treasury's before the trade (5),
    # and the excess what the trade's levies need beyond it (10 - 5).
    await api.client.put(
        f"{net.base}/accounts/treasury/limits",
        json={"credit_limit": 0, "balance_max": 15, "reason": "small pot"},
        headers=auth(net.operator),
    )
    r = await api.pay(net, "a", "b", 100)
    problem = assert_problem(r, 409, "balance_max_exceeded")
    assert (problem["account"], problem["fee_rule"]) == ("treasury", "levy")
    assert (problem["headroom"], problem["excess"]) == (5, 5)
    assert await api.balances(net) == before
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_a_levy_its_rule_books_past_the_limit_is_booked_and_says_so(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await world(api, credit_limit=1000, charge="payer", over_limit="book")
    r = await api.pay(net, "a", "b", 998)  # 6 + 3 = 9: a ends at -1007, past its 1000
    assert r.status_code == 201, r.text
    assert [(f["amount"], f["past_limit"]) for f in r.json()["fees"]] == [(9, True)]
    levy_trade = await get(api, net, f"/trades/{r.json()['fees'][0]['trade_id']}")
    assert levy_trade["limit_override"] is True
    assert "over_limit = book" in levy_trade["reason"]
    assert await api.balances(net) == {"a": -1007, "b": 998, "treasury": 9}
    assert (await api.get_account(net, "a"))["available"] == -7
    # Past its limit, a cannot trade on, levy or no levy.
    assert_problem(await api.pay(net, "a", "b", 1), 409, "credit_limit_exceeded")
    charges = (await get(api, net, "/fee-charges"))["items"]
    assert [(c["account"], c["amount"], c["past_limit"]) for c in charges] == [("a", 9, True)]
    assert await network_sums(db, net.code) == (0, 0, 0)


async def _post(api: Api, net: Net, trade_id: str, **body: Any) -> httpx.Response:
    return await api.client.post(
        f"{net.base}/trades/{trade_id}/post", json=body, headers=auth(net.operator)
    )


async def test_a_hold_pays_its_levy_when_posted(api: Api, db: asyncpg.Connection) -> None:
    net = await world(api, credit_limit=1000, charge="both")
    r = await api.pay(net, "a", "b", 1000, pending=True)
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["fees"] == []
    assert await api.balances(net) == {"a": 0, "b": 0, "treasury": 0}

    # Posted whole, a would pay 1000 + 10 with 1000 of credit: refused, the hold stays.
    problem = assert_problem(await _post(api, net, hold["id"]), 409, "credit_limit_exceeded")
    assert (problem["account"], problem["fee_rule"], problem["trade_id"]) == (
        "a",
        "levy",
        hold["id"],
    )
    assert (await get(api, net, f"/trades/{hold['id']}"))["status"] == "pending"
    assert await fee_trades(api, net) == []

    # Posted in part, it pays the levy on what was posted: 990 -> 6 + 3 = 9 each side.
    r = await _post(api, net, hold["id"], amount=990)
    assert r.status_code == 200, r.text
    posted = r.json()
    assert [(f["account"], f["amount"]) for f in posted["fees"]] == [("a", 9), ("b", 9)]
    assert (await get(api, net, f"/trades/{hold['id']}"))["fees"] == posted["fees"]
    assert await api.balances(net) == {"a": -999, "b": 981, "treasury": 18}
    assert await network_sums(db, net.code) == (0, 0, 0)


async def _reverse(api: Api, net: Net, trade_id: str, reason: str = "mistake") -> httpx.Response:
    return await api.client.post(
        f"{net.base}/trades/{trade_id}/reverse", json={"reason": reason}, headers=auth(net.operator)
    )


async def test_reversing_a_trade_reverses_its_levies_and_a_levy_is_refunded_alone(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await world(api, charge="both")
    first = (await api.pay(net, "a", "b", 10000)).json()
    second = (await api.pay(net, "a", "b", 2999)).json()
    assert await api.balances(net) == {
        "a": -10000 - 40 - 2999 - 23,
        "b": 10000 - 40 + 2999 - 23,
        "treasury": 2 * 40 + 2 * 23,
    }

    r = await _reverse(api, net, first["id"])
    assert r.status_code == 201, r.text
    for charged in first["fees"]:
        levy_trade = await get(api, net, f"/trades/{charged['trade_id']}")
        assert levy_trade["reversed_by"] is not None
        reversal = await get(api, net, f"/trades/{levy_trade['reversed_by']}")
        assert (reversal["kind"], reversal["payer"], reversal["payee"], reversal["amount"]) == (
            "reversal",
            "treasury",
            charged["account"],
            40,
        )
        assert reversal["key"] == f"reversal:{charged['trade_id']}"
        assert reversal["reason"] == "mistake"
    assert await api.balances(net) == {"a": -2999 - 23, "b": 2999 - 23, "treasury": 46}
    # A retry is safe: the same reversal, nothing more.
    again = await _reverse(api, net, first["id"])
    assert (again.status_code, again.json()["id"]) == (201, r.json()["id"])
    assert again.headers["idempotent-replayed"] == "true"
    assert await api.balances(net) == {"a": -2999 - 23, "b": 2999 - 23, "treasury": 46}

    # A levy refunded on its own; the trade reversed later reverses only the other.
    b_levy = next(f for f in second["fees"] if f["account"] == "b")
    assert (await _reverse(api, net, b_levy["trade_id"], "refund")).status_code == 201
    assert await api.balances(net) == {"a": -2999 - 23, "b": 2999, "treasury": 23}
    assert (await _reverse(api, net, second["id"])).status_code == 201
    assert await api.balances(net) == {"a": 0, "b": 0, "treasury": 0}
    refund = await get(api, net, f"/trades/{b_levy['trade_id']}")
    assert (await get(api, net, f"/trades/{refund['reversed_by']}"))["reason"] == "refund"
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_a_reversal_and_its_levies_are_booked_together_or_not_at_all(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await world(api, charge="payer")
    trade = (await api.pay(net, "a", "b", 1000)).json()  # a pays 10
    # The treasury spends what it took: it cannot give the levy back within its limit.
    await api.client.put(
        f"{net.base}/accounts/treasury/limits",
        json={"credit_limit": 0, "balance_max": None, "reason": "no credit"},
        headers=auth(net.operator),
    )
    assert (await api.pay(net, "treasury", "b", 10)).status_code == 201
    before = await api.balances(net)
    problem = assert_problem(await _reverse(api, net, trade["id"]), 409, "credit_limit_exceeded")
    assert problem["account"] == "treasury"
    assert await api.balances(net) == before
    assert (await get(api, net, f"/trades/{trade['id']}"))["reversed_by"] is None
    assert await network_sums(db, net.code) == (0, 0, 0)
