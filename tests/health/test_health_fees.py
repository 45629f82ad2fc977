"""Fees in the health figures and the CSV exports, on a small network whose every charge is
known."""

import csv
import io
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from mutualcredit.exports import service as exports
from tests.fees.rules import backdate_accounts, charge_periodic, insert_rule
from tests.helpers import Api, Net, assert_problem, auth


async def _charged(api: Api, db: asyncpg.Connection) -> tuple[Net, datetime]:
    """A levy of 1/10 + 1 (at least 2) on payers, and dues of 30 a minute for two past minutes
    that not every member can pay in full; one levy refunded; fees are not circulation, nor a
    sign of life."""
    net = await api.network(default_credit_limit=100, scale=2)
    for code in ("a", "b", "c", "d"):
        await api.account(net, code)
    await api.account(net, "e", credit_limit=0)
    await api.account(net, "treasury", kind="system")
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    await backdate_accounts(db, net.code, minute - timedelta(minutes=10))
    levy = {"kind": "levy", "charge_payer": True, "rate_num": 1, "rate_den": 10, "amount": 1}
    await insert_rule(
        db, net.code, "treasury", code="levy", minimum=2, maximum=50,
        starts_at=minute - timedelta(minutes=5), **levy,
    )  # fmt: skip
    # A rule that ended long before the period is not listed.
    await insert_rule(
        db, net.code, "treasury", code="old", kind="levy", charge_payee=True, amount=1,
        starts_at=datetime(2020, 1, 1, tzinfo=UTC), ends_at=datetime(2021, 1, 1, tzinfo=UTC),
    )  # fmt: skip

    r = await api.pay(net, "a", "b", 50)  # levy 5 + 1 = 6: a at -56
    assert r.status_code == 201, r.text
    r = await api.pay(net, "c", "b", 5)  # levy 0 + 1, raised to the minimum 2: c at -7
    assert r.status_code == 201, r.text
    paid_by_c = r.json()["id"]
    r = await api.pay(net, "a", "b", 40)  # levy 5 would take a to -101: refused, nothing booked
    assert_problem(r, 409, "credit_limit_exceeded")
    refund = await db.fetchval(
        "SELECT trade_id FROM fee_charges WHERE cause_trade_id = $1", paid_by_c
    )
    r = await api.client.post(
        f"{net.base}/trades/{refund}/reverse", json={"reason": "refund"}, headers=auth(net.operator)
    )
    assert r.status_code == 201, r.text

    # Dues of 30 at two past boundaries. a (44 left) pays 30, then 14 with 16 waived; b, c
    # and d pay 30 twice (d never traded); e, with no credit, has both wholly waived.
    dues = await insert_rule(
        db, net.code, "treasury", code="dues", kind="membership", amount=30, period="minute",
        starts_at=minute - timedelta(minutes=3), ends_at=minute - timedelta(minutes=1),
    )  # fmt: skip
    await charge_periodic(db, dues, boundaries=2)
    return net, minute


async def test_health_counts_fee_income_per_rule(api: Api, db: asyncpg.Connection) -> None:
    net, minute = await _charged(api, db)
    r = await api.client.get(f"{net.base}/health", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["fees"] == [
        {
            "rule": "dues",
            "kind": "membership",
            "charges": 10,
            "amount": 30 + 14 + 6 * 30,
            "waived": 16 + 2 * 30,
            "refunded": 0,
        },
        {"rule": "levy", "kind": "levy", "charges": 2, "amount": 8, "waived": 0, "refunded": 2},
    ]
    assert h["totals"] == {"trades": 2, "volume": 55, "active_accounts": 3}
    # d holds -60 and only paid dues: a fee is no sign of life.
    assert h["dormant"] == {"days": 90, "accounts": 1, "balance_abs_total": 60}
    assert (await api.balances(net))["treasury"] == 8 - 2 + 224

    # A period before the charges: every rule in force in it, with nothing charged.
    r = await api.client.get(
        f"{net.base}/health",
        params={
            "from": (minute - timedelta(minutes=3, seconds=30)).isoformat(),
            "to": (minute - timedelta(minutes=2, seconds=30)).isoformat(),
        },
        headers=auth(net.operator),
    )
    assert r.status_code == 200, r.text
    assert [(f["rule"], f["charges"], f["amount"]) for f in r.json()["fees"]] == [
        ("dues", 0, 0),
        ("levy", 0, 0),
    ]


async def test_fee_charges_csv_has_one_row_per_charge(
    api: Api, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, minute = await _charged(api, db)
    r = await api.client.get(f"{net.base}/fee-charges.csv", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    monkeypatch.setattr(exports, "PAGE", 5)  # the same rows, read five at a time
    paged = await api.client.get(f"{net.base}/fee-charges.csv", headers=auth(net.operator))
    assert paged.text == r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert f'filename="{net.code}-fee-charges-all.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == [
        "created_at", "rule", "kind", "account", "treasury", "amount", "amount_decimal",
        "waived", "waived_decimal", "past_limit", "trade_id", "cause_trade_id", "due_at",
    ]  # fmt: skip
    levies = [(x["rule"], x["kind"], x["account"], x["amount_decimal"]) for x in rows[:2]]
    assert levies == [("levy", "levy", "a", "0.06"), ("levy", "levy", "c", "0.02")]
    assert all(x["cause_trade_id"] and x["trade_id"] and not x["due_at"] for x in rows[:2])
    b0, b1 = (minute - timedelta(minutes=m) for m in (3, 2))
    dues = sorted(
        (x["due_at"], x["account"], x["amount"], x["waived_decimal"], bool(x["trade_id"]))
        for x in rows[2:]
        if x["rule"] == "dues" and x["treasury"] == "treasury" and x["past_limit"] == "false"
    )
    assert dues == [
        (b0.isoformat(), "a", "30", "0.00", True),
        (b0.isoformat(), "b", "30", "0.00", True),
        (b0.isoformat(), "c", "30", "0.00", True),
        (b0.isoformat(), "d", "30", "0.00", True),
        (b0.isoformat(), "e", "0", "0.30", False),
        (b1.isoformat(), "a", "14", "0.16", True),
        (b1.isoformat(), "b", "30", "0.00", True),
        (b1.isoformat(), "c", "30", "0.00", True),
        (b1.isoformat(), "d", "30", "0.00", True),
        (b1.isoformat(), "e", "0", "0.30", False),
    ]
    assert len(rows) == 12
    r = await api.client.get(
        f"{net.base}/fee-charges.csv", params={"rule": "levy"}, headers=auth(net.operator)
    )
    assert [x["account"] for x in csv.DictReader(io.StringIO(r.text))] == ["a", "c"]
    r = await api.client.get(
        f"{net.base}/fee-charges.csv",
        params={"from": (minute + timedelta(days=1)).isoformat()},
        headers=auth(net.operator),
    )
    assert r.text.count("\n") == 1  # the header only
    member = await api.member_key(net, "a")
    r = await api.client.get(f"{net.base}/fee-charges.csv", headers=auth(member))
    assert_problem(r, 403, "forbidden")


async def test_fee_trades_in_the_statement_and_trades_csv(api: Api, db: asyncpg.Connection) -> None:
    net, _ = await _charged(api, db)
    r = await api.client.get(f"{net.base}/accounts/c/statement.csv", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    seen = [
        (x["counterparty"], x["amount"], x["balance_after"], x["kind"], x["fee_rule"])
        for x in csv.DictReader(io.StringIO(r.text))
    ]
    assert seen == [
        ("b", "-5", "-5", "transfer", ""),
        ("treasury", "-2", "-7", "fee", "levy"),
        ("treasury", "2", "-5", "reversal", ""),
        ("treasury", "-30", "-35", "fee", "dues"),
        ("treasury", "-30", "-65", "fee", "dues"),
    ]
    r = await api.client.get(f"{net.base}/trades.csv", headers=auth(net.operator))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    fees = sorted((x["fee_rule"], x["payer"], x["amount"]) for x in rows if x["kind"] == "fee")
    assert fees == [
        ("dues", "a", "14"),
        ("dues", "a", "30"),
        *[("dues", payer, "30") for payer in "bbccdd"],
        ("levy", "a", "6"),
        ("levy", "c", "2"),
    ]
    assert all(x["payee"] == "treasury" and x["status"] == "posted" for x in rows if x["fee_rule"])
    assert [x["fee_rule"] for x in rows if x["kind"] != "fee"] == ["", "", ""]
