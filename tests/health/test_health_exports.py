"""Network health figures and CSV exports, checked against a small network whose every number
is known."""

import csv
import io

from tests.helpers import Api, Net, assert_problem, auth


async def _network(api: Api) -> Net:
    """Five members with limit 100 (one also capped at 300), a treasury; known trades."""
    net = await api.network(default_credit_limit=100, scale=2)
    for code in ("a", "b", "c", "d"):
        await api.account(net, code)
    await api.account(net, "e", balance_max=300)
    await api.account(net, "treasury", kind="system", credit_limit=10_000)
    await api.pay(net, "a", "b", 100)  # a at its limit
    await api.pay(net, "c", "b", 95)  # c near its limit (95%)
    await api.pay(net, "d", "e", 20)
    await api.pay(net, "treasury", "e", 280)  # e now at its balance_max
    return net


async def test_health_counts_activity_limits_bands_and_velocity(api: Api) -> None:
    net = await _network(api)
    r = await api.client.get(f"{net.base}/health", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    h = r.json()
    assert len(h["series"]) >= 30
    assert h["totals"] == {"trades": 4, "volume": 495, "active_accounts": 6}
    assert h["series"][-1]["trades"] == 4
    assert h["accounts"] == {"members": 5, "active": 5, "suspended": 0}
    # Positive member balances: b 195 + e 300 = 495; the treasury is not a member.
    assert h["velocity"] == {"volume": 495, "positive_balance_total": 495, "ratio": "1.0000"}
    assert h["credit_limit"] == {
        "beyond": 0,
        "at": 1,
        "near": 1,
        "share_at_or_beyond": "0.2000",
        "share_near": "0.2000",
    }
    assert (h["balance_max"]["at"], h["balance_max"]["beyond"]) == (1, 0)
    bands = {(b["low"], b["high"]): b["accounts"] for b in h["balance_bands"]}
    assert bands[(-100, -50)] == 2  # a at -100, c at -95
    assert bands[(-50, 0)] == 1  # d at -20
    assert bands[(100, 200)] == 1  # b at 195
    assert bands[(200, None)] == 1  # e at 300
    assert sum(bands.values()) == 5
    assert h["dormant"]["accounts"] == 0


async def test_health_is_for_operators_and_auditors(api: Api) -> None:
    net = await _network(api)
    member = await api.member_key(net, "a")
    r = await api.client.get(f"{net.base}/health", headers=auth(member))
    assert_problem(r, 403, "forbidden")
    r = await api.client.get(
        f"{net.base}/health", params={"period": "week"}, headers=auth(net.operator)
    )
    assert r.json()["totals"]["trades"] == 4
    r = await api.client.get(
        f"{net.base}/health",
        params={"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=auth(net.operator),
    )
    assert_problem(r, 422, "validation_error")  # more than 400 days


async def test_statement_csv_has_exact_decimals(api: Api) -> None:
    net = await _network(api)
    r = await api.client.get(f"{net.base}/accounts/b/statement.csv", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    seen = [
        (x["counterparty"], x["amount"], x["amount_decimal"], x["balance_after_decimal"])
        for x in rows
    ]
    assert seen == [("a", "100", "1.00", "1.00"), ("c", "95", "0.95", "1.95")]


async def test_trades_csv_lists_every_trade_of_the_period(api: Api) -> None:
    net = await _network(api)
    r = await api.client.get(f"{net.base}/trades.csv", headers=auth(net.operator))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["payer"], x["payee"], x["amount_decimal"]) for x in rows] == [
        ("a", "b", "1.00"),
        ("c", "b", "0.95"),
        ("d", "e", "0.20"),
        ("treasury", "e", "2.80"),
    ]
    member = await api.member_key(net, "a")
    r = await api.client.get(f"{net.base}/trades.csv", headers=auth(member))
    assert_problem(r, 403, "forbidden")
    r = await api.client.get(f"{net.base}/accounts/b/statement.csv", headers=auth(member))
    assert_problem(r, 403, "forbidden")
