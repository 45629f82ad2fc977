"""Fee rules through the API: made with a reason and kept with their history, tried before they
take effect (the numbers of a dry run checked against an independent computation), refused as a
class when they are malformed, when their treasury cannot be one, or when they would charge the
same accounts as another rule at the same time."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import Api, Net, assert_problem, auth

LEVY: dict[str, Any] = {
    "code": "levy",
    "kind": "levy",
    "treasury": "treasury",
    "charge": "both",
    "rate": {"num": 3, "den": 200},
    "amount": 1,
    "minimum": 5,
    "maximum": 15,
    "reason": "the network pays for itself",
}


def fee(base: int, num: int, den: int, fixed: int, minimum: int | None, maximum: int | None) -> int:
    """The documented rounding, computed here on its own: floor(base x num / den) + fixed, at
    least the minimum, at most the maximum; nothing on a base of 0."""
    if base <= 0:
        return 0
    charged = base * num // den + fixed
    if minimum is not None:
        charged = max(charged, minimum)
    if maximum is not None:
        charged = min(charged, maximum)
    return charged


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def world(api: Api, credit_limit: int = 1000) -> Net:
    net = await api.network(default_credit_limit=credit_limit)
    for code in ("a", "b", "c"):
        await api.account(net, code)
    await api.account(net, "treasury", kind="system")
    return net


async def make(api: Api, net: Net, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await api.client.post(
        f"{net.base}/fee-rules", json=body, headers={**auth(net.operator), **headers}
    )


async def get(api: Api, net: Net, path: str, token: str | None = None) -> httpx.Response:
    return await api.client.get(f"{net.base}{path}", headers=auth(token or net.operator))


async def patch(api: Api, net: Net, code: str, body: dict[str, Any]) -> httpx.Response:
    return await api.client.patch(
        f"{net.base}/fee-rules/{code}", json=body, headers=auth(net.operator)
    )


async def rules(api: Api, net: Net) -> list[str]:
    r = await get(api, net, "/fee-rules")
    assert r.status_code == 200, r.text
    return [rule["code"] for rule in r.json()["items"]]


async def test_a_rule_is_made_read_listed_changed_and_kept_with_its_history(api: Api) -> None:
    net = await world(api)
    r = await make(api, net, {**LEVY, "description": "one levy for all"})
    assert r.status_code == 201, r.text
    made = r.json()
    key_id = net.operator.split("_")[1]
    assert {k: v for k, v in made.items() if not k.endswith("_at")} == {
        "code": "levy",
        "kind": "levy",
        "treasury": "treasury",
        "account_kind": "member",
        "statuses": None,
        "charge": "both",
        "rate": {"num": 3, "den": 200},
        "amount": 1,
        "minimum": 5,
        "maximum": 15,
        "basis": None,
        "threshold": None,
        "period": None,
        "over_limit": "refuse",
        "description": "one levy for all",
        "in_force": True,
        "created_by": f"operator:{key_id}",
    }
    assert made["ends_at"] is None
    assert (await get(api, net, "/fee-rules/levy")).json() == made
    assert await rules(api, net) == ["levy"]
    assert_problem(await get(api, net, "/fee-rules/nothing"), 404, "fee_rule_not_found")

    assert_problem(await patch(api, net, "levy", {"maximum": 20}), 422, "validation_error")
    r = await patch(api, net, "levy", {"maximum": 20, "minimum": None, "reason": "fairer"})
    assert r.status_code == 200, r.text
    assert (r.json()["maximum"], r.json()["minimum"]) == (20, None)
    assert r.json()["updated_at"] > made["updated_at"]

    r = await get(api, net, "/fee-rules/levy/history")
    assert r.status_code == 200, r.text
    created, changed = r.json()["items"]
    assert (created["kind"], created["before"], created["reason"]) == (
        "created",
        None,
        "the network pays for itself",
    )
    assert created["after"]["maximum"] == 15
    assert created["actor"] == f"operator:{key_id}"
    assert (changed["kind"], changed["reason"]) == ("changed", "fairer")
    assert (changed["before"]["minimum"], changed["before"]["maximum"]) == (5, 15)
    assert (changed["after"]["minimum"], changed["after"]["maximum"]) == (None, 20)
    assert changed["after"]["treasury"] == "treasury"

    # A change that changes nothing has no history (the trigger keeps changes only).
    r = await patch(api, net, "levy", {"maximum": 20, "reason": "again"})
    assert r.status_code == 200, r.text
    assert len((await get(api, net, "/fee-rules/levy/history")).json()["items"]) == 2


async def test_a_levy_dry_run_shows_what_it_would_have_charged_and_writes_nothing(
    api: Api,
) -> None:
    net = await world(api, credit_limit=5000)
    trades = [("a", "b", 1234), ("b", "c", 999), ("a", "c", 50), ("c", "a", 401)]
    for payer, payee, amount in trades:
        assert (await api.pay(net, payer, payee, amount)).status_code == 201

    r = await make(api, net, {**LEVY, "dry_run": True}, **{"Idempotency-Key": "try-1"})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["rule"]["code"] == "levy"
    assert preview["due_at"] is None

    expected: dict[str, dict[str, int]] = {}
    for payer, payee, amount in trades:
        for account in (payer, payee):
            row = expected.setdefault(account, {"base": 0, "fee": 0, "trades": 0})
            row["base"] += amount
            row["fee"] += fee(amount, 3, 200, 1, 5, 15)
            row["trades"] += 1
    # By hand: a pays on 1234 (15: 18+1 cut to 15), 50 (5: 0+1 raised to 5), receives 401 (7).
    assert expected["a"] == {"base": 1685, "fee": 27, "trades": 3}
    assert preview["charges"] == [
        {
            "account": code,
            "base": row["base"],
            "fee": row["fee"],
            "amount": row["fee"],
            "waived": 0,
            "past_limit": False,
            "trades": row["trades"],
        }
        for code, row in sorted(expected.items())
    ]
    # Nothing was written: no rule, no history, and a real rule with the code is made after.
    assert await rules(api, net) == []
    assert_problem(await get(api, net, "/fee-rules/levy/history"), 404, "fee_rule_not_found")
    r = await make(api, net, LEVY)
    assert r.status_code == 201, r.text
    r = await get(api, net, "/fee-rules/levy/preview")
    assert r.status_code == 200, r.text
    assert r.json()["charges"] == preview["charges"]


async def test_a_periodic_dry_run_charges_each_account_on_its_balance_now(api: Api) -> None:
    net = await world(api)
    await api.account(net, "d", credit_limit=10)
    await api.account(net, "e")
    for payer, payee, amount in [("a", "b", 900), ("c", "b", 300), ("a", "c", 50)]:
        assert (await api.pay(net, payer, payee, amount)).status_code == 201
    # a -950, b 1200, c -250, d 0, e 0
    await api.client.post(f"{net.base}/accounts/e/suspend", headers=auth(net.operator))

    demurrage = {
        "code": "demurrage",
        "kind": "demurrage",
        "treasury": "treasury",
        "rate": {"num": 1, "den": 12},
        "basis": "balance_above",
        "threshold": 100,
        "minimum": 2,
        "period": "month",
        "reason": "keep credit moving",
        "dry_run": True,
    }
    r = await make(api, net, demurrage)
    assert r.status_code == 200, r.text
    # Only b holds more than 100: (1200 - 100) / 12 = 91.67, floor 91.
    assert r.json()["charges"] == [
        {"account": "b", "base": 1100, "fee": 91, "amount": 91, "waived": 0,
         "past_limit": False, "trades": None}
    ]  # fmt: skip
    now = datetime.now(UTC)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(r.json()["due_at"]) == next_month

    debt = {**demurrage, "basis": "beyond_credit_limit", "threshold": 0, "minimum": None}
    debt["rate"] = {"num": 1, "den": 10}
    await api.client.put(
        f"{net.base}/accounts/a/limits",
        json={"credit_limit": 700, "balance_max": None, "reason": "tighter"},
        headers=auth(net.operator),
    )
    r = await make(api, net, debt)
    assert r.status_code == 200, r.text
    # a owes 950 with a limit of 700: 250 beyond, a tenth is 25, and a can pay nothing more.
    assert r.json()["charges"] == [
        {"account": "a", "base": 250, "fee": 25, "amount": 0, "waived": 25,
         "past_limit": False, "trades": None}
    ]  # fmt: skip
    r = await make(api, net, {**debt, "over_limit": "book"})
    assert r.json()["charges"] == [
        {"account": "a", "base": 250, "fee": 25, "amount": 25, "waived": 0,
         "past_limit": True, "trades": None}
    ]  # fmt: skip

    membership = {
        "code": "membership",
        "kind": "membership",
        "treasury": "treasury",
        "amount": 30,
        "period": "year",
        "statuses": ["active", "suspended"],
        "reason": "dues",
        "dry_run": True,
    }
    r = await make(api, net, membership)
    assert r.status_code == 200, r.text
    available = {"a": 0, "b": 2200, "c": 750, "d": 10, "e": 1000}
    assert r.json()["charges"] == [
        {
            "account": code,
            "base": 30,
            "fee": 30,
            "amount": min(30, room),
            "waived": 30 - min(30, room),
            "past_limit": False,
            "trades": None,
        }
        for code, room in sorted(available.items())
    ]
    assert datetime.fromisoformat(r.json()["due_at"]) == datetime(now.year + 1, 1, 1, tzinfo=UTC)
    assert await rules(api, net) == []


def _bad(**changes: Any) -> dict[str, Any]:
    body = {**LEVY, **changes}
    return {k: v for k, v in body.items() if v is not ...}


MEMBERSHIP: dict[str, Any] = {
    "code": "dues",
    "kind": "membership",
    "treasury": "treasury",
    "amount": 20,
    "period": "month",
    "reason": "dues",
}
DEMURRAGE: dict[str, Any] = {
    "code": "demurrage",
    "kind": "demurrage",
    "treasury": "treasury",
    "rate": {"num": 1, "den": 100},
    "basis": "balance_above",
    "period": "month",
    "reason": "circulation",
}

BAD_INPUT: list[tuple[str, dict[str, Any], str]] = [
    ("negative rate", _bad(rate={"num": -1, "den": 100}), "rate.num"),
    ("rate above the whole", _bad(rate={"num": 101, "den": 100}), "rate"),
    ("zero denominator", _bad(rate={"num": 0, "den": 0}), "rate.den"),
    ("absurd denominator", _bad(rate={"num": 1, "den": 10**12 + 1}), "rate.den"),
    ("float rate", _bad(rate={"num": 0.5, "den": 100}), "rate.num"),
    ("whole float rate", _bad(rate={"num": 1.0, "den": 100}), "rate.num"),
    ("string rate", _bad(rate={"num": "1", "den": "100"}), "rate.num"),
    ("negative fixed part", _bad(amount=-1), "amount"),
    ("float amount", _bad(amount=2.5), "amount"),
    ("minimum above maximum", _bad(minimum=20, maximum=10), "minimum"),
    ("zero minimum", _bad(minimum=0), "minimum"),
    ("levy with a period", _bad(period="month"), "period"),
    ("levy with statuses", _bad(statuses=["active"]), "statuses"),
    ("levy with a basis", _bad(basis="balance_above"), "basis"),
    ("levy with a threshold", _bad(threshold=5), "threshold"),
    ("levy charging nobody", _bad(charge=...), "charge"),
    ("levy charging nothing", _bad(rate={"num": 0, "den": 1}, amount=0), "rate"),
    ("membership with a charge", {**MEMBERSHIP, "charge": "payer"}, "charge"),
    ("membership with a rate", {**MEMBERSHIP, "rate": {"num": 1, "den": 2}}, "rate"),
    ("membership with a maximum", {**MEMBERSHIP, "maximum": 5}, "maximum"),
    ("membership without a period", {**MEMBERSHIP, "period": None}, "period"),
    ("membership of nothing", {**MEMBERSHIP, "amount": 0}, "amount"),
    ("demurrage with a fixed amount", {**DEMURRAGE, "amount": 3}, "amount"),
    ("demurrage with a charge", {**DEMURRAGE, "charge": "both"}, "charge"),
    ("demurrage without a basis", {**DEMURRAGE, "basis": None}, "basis"),
    ("demurrage at a zero rate", {**DEMURRAGE, "rate": {"num": 0, "den": 5}}, "rate"),
    ("an unknown period", {**DEMURRAGE, "period": "fortnight"}, "period"),
    ("an unknown kind", _bad(kind="tithe"), "kind"),
    ("an unknown status", {**MEMBERSHIP, "statuses": ["closed"]}, "statuses"),
    ("no reason", _bad(reason=...), "reason"),
    ("a start in the past", _bad(starts_at="2020-01-01T00:00:00Z"), "starts_at"),
    (
        "an end before the start",
        _bad(starts_at="2099-01-02T00:00:00Z", ends_at="2099-01-01T00:00:00Z"),
        "ends_at",
    ),
    ("an end in the past", _bad(ends_at="2020-01-01T00:00:00Z"), "ends_at"),
    ("an unknown field", _bad(percent=3), "percent"),
]


async def test_bad_input_is_refused_naming_what_is_wrong_and_nothing_is_made(api: Api) -> None:
    net = await world(api)
    for name, body, field in BAD_INPUT:
        r = await make(api, net, body)
        problem = assert_problem(r, 422, "validation_error")
        assert field in problem["detail"], (name, problem["detail"])
        # The same as a dry run: refused alike.
        assert_problem(await make(api, net, {**body, "dry_run": True}), 422, "validation_error")
    assert await rules(api, net) == []
    # The well-formed ones are accepted (they do not overlap one another).
    for body in (LEVY, MEMBERSHIP, DEMURRAGE):
        r = await make(api, net, body)
        assert r.status_code == 201, r.text
    assert await rules(api, net) == ["demurrage", "dues", "levy"]


async def test_a_treasury_is_an_active_system_account_of_the_network(api: Api) -> None:
    net = await world(api)
    await api.account(net, "closed", kind="system")
    await api.client.post(f"{net.base}/accounts/closed/close", headers=auth(net.operator))
    await api.account(net, "resting", kind="system")
    await api.client.post(f"{net.base}/accounts/resting/suspend", headers=auth(net.operator))
    other = await api.network()
    await api.account(other, "elsewhere", kind="system")
    for treasury in ("a", "closed", "resting", "elsewhere", "nobody"):
        for dry_run in (False, True):
            r = await make(api, net, {**LEVY, "treasury": treasury, "dry_run": dry_run})
            problem = assert_problem(r, 422, "treasury_invalid")
            assert problem["treasury"] == treasury
    assert await rules(api, net) == []
    assert (await make(api, net, LEVY)).status_code == 201
    r = await patch(api, net, "levy", {"treasury": "a", "reason": "wrong"})
    assert assert_problem(r, 422, "treasury_invalid")["treasury"] == "a"


async def test_rules_that_would_charge_the_same_accounts_at_the_same_time_are_refused(
    api: Api,
) -> None:
    net = await world(api)
    await api.account(net, "pool", kind="system")
    end = later(hours=1)
    payer = {**LEVY, "code": "payer", "charge": "payer", "ends_at": end}
    assert (await make(api, net, payer)).status_code == 201

    overlapping = [
        {**LEVY, "code": "both", "charge": "both"},
        {**LEVY, "code": "payer2", "charge": "payer", "treasury": "pool"},
        {**LEVY, "code": "soon", "charge": "payer", "starts_at": later(minutes=30)},
    ]
    for body in overlapping:
        for dry_run in (False, True):
            r = await make(api, net, {**body, "dry_run": dry_run})
            assert assert_problem(r, 409, "fee_rule_overlap")["overlaps"] == "payer", body

    accepted = [
        {**LEVY, "code": "payee", "charge": "payee"},  # the other side of a trade
        {**LEVY, "code": "systems", "charge": "payer", "account_kind": "system"},
        {**LEVY, "code": "after", "charge": "payer", "starts_at": end},  # [start, end) meet
        MEMBERSHIP,  # another kind
    ]
    for body in accepted:
        r = await make(api, net, body)
        assert r.status_code == 201, r.text
    # A change that would make two rules overlap is refused too.
    r = await patch(api, net, "payer", {"ends_at": later(hours=2), "reason": "longer"})
    assert assert_problem(r, 409, "fee_rule_overlap")["overlaps"] == "after"
    taken = {**MEMBERSHIP, "code": "payee", "account_kind": "system"}
    assert_problem(await make(api, net, taken), 409, "fee_rule_exists")


async def test_a_retry_is_answered_before_the_time_is_checked(api: Api) -> None:
    net = await world(api)
    body = {**LEVY, "starts_at": later(seconds=1)}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await make(api, net, body, **key)
    assert first.status_code == 201, first.text
    await asyncio.sleep(1.5)
    # The start is in the past now: a new request is refused, a retry gets its first answer.
    assert_problem(await make(api, net, body), 422, "validation_error")
    again = await make(api, net, body, **key)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = await make(api, net, {**body, "code": "other"}, **key)
    assert_problem(other, 409, "idempotency_conflict")


async def test_changes_keep_to_the_rule_s_kind_and_to_the_future(api: Api) -> None:
    net = await world(api)
    assert (await make(api, net, {**LEVY, "starts_at": later(hours=1)})).status_code == 201
    assert (await make(api, net, {**MEMBERSHIP, "ends_at": later(seconds=1)})).status_code == 201

    refusals: list[tuple[str, dict[str, Any], str]] = [
        ("levy", {"period": "day"}, "period"),
        ("levy", {"rate": {"num": 2, "den": 1}}, "rate"),
        ("levy", {"minimum": 50}, "minimum"),  # above the maximum of 15
        ("levy", {"charge": None}, "charge"),
        ("levy", {"starts_at": "2020-01-01T00:00:00Z"}, "starts_at"),
        ("levy", {"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ("levy", {"code": "renamed"}, "code"),
        ("levy", {"kind": "membership"}, "kind"),
        ("dues", {"rate": {"num": 1, "den": 2}}, "rate"),
    ]
    for code, change, field in refusals:
        r = await patch(api, net, code, {**change, "reason": "try"})
        problem = assert_problem(r, 422, "validation_error")
        assert field in problem["detail"], (change, problem)
    assert_problem(await patch(api, net, "none", {"reason": "x"}), 404, "fee_rule_not_found")

    # Before it starts, a rule's start moves; the membership rule's end passes.
    start = later(hours=2)
    r = await patch(api, net, "levy", {"starts_at": start, "reason": "later"})
    assert r.status_code == 200, r.text
    assert r.json()["in_force"] is False
    await asyncio.sleep(1.2)
    r = await patch(api, net, "dues", {"ends_at": None, "reason": "revive"})
    assert "ended" in assert_problem(r, 422, "validation_error")["detail"]
    assert (await get(api, net, "/fee-rules/dues")).json()["in_force"] is False


async def test_who_sees_rules_and_charges(api: Api) -> None:
    net = await world(api)
    await api.account(net, "pool", kind="system")
    assert (await make(api, net, LEVY)).status_code == 201
    systems = {**MEMBERSHIP, "code": "systems", "account_kind": "system"}
    assert (await make(api, net, systems)).status_code == 201
    a = await api.member_key(net, "a")
    r = await get(api, net, "/fee-rules", a)
    assert [rule["code"] for rule in r.json()["items"]] == ["levy"]
    assert (await get(api, net, "/fee-rules/levy", a)).status_code == 200
    assert_problem(await get(api, net, "/fee-rules/systems", a), 404, "fee_rule_not_found")
    assert_problem(await get(api, net, "/fee-rules/levy/history", a), 403, "forbidden")
    assert_problem(await get(api, net, "/fee-rules/levy/preview", a), 403, "forbidden")

    # 900 x 3/200 = 13.5, floor 13, and 1 fixed: 14 each side.
    assert (await api.pay(net, "a", "b", 900)).status_code == 201
    assert (await api.pay(net, "c", "b", 900)).status_code == 201
    mine = (await get(api, net, "/fee-charges", a)).json()["items"]
    assert [(c["account"], c["amount"]) for c in mine] == [("a", 14)]
    assert_problem(await get(api, net, "/fee-charges?account=c", a), 403, "forbidden")
    every = (await get(api, net, "/fee-charges")).json()["items"]
    # Newest first: c's trade (c then b), then a's (a then b).
    assert [c["account"] for c in every] == ["b", "c", "b", "a"]
    page = (await get(api, net, "/fee-charges?limit=3")).json()
    rest = (await get(api, net, f"/fee-charges?limit=3&cursor={page['next_cursor']}")).json()
    assert [c["id"] for c in page["items"] + rest["items"]] == [c["id"] for c in every]
    assert rest["next_cursor"] is None
    assert_problem(await get(api, net, "/fee-charges?rule=none"), 404, "fee_rule_not_found")
    assert_problem(await get(api, net, "/fee-charges?account=none"), 404, "account_not_found")
    assert len((await get(api, net, "/fee-charges?rule=levy&account=b")).json()["items"]) == 2


async def test_the_treasury_of_a_rule_that_has_not_ended_is_not_closed(api: Api) -> None:
    net = await world(api)
    assert (await make(api, net, {**LEVY, "ends_at": later(seconds=1)})).status_code == 201
    close = f"{net.base}/accounts/treasury/close"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    r = await api.client.post(close, headers={**auth(net.operator), **key})
    problem = assert_problem(r, 409, "treasury_in_use")
    assert (problem["fee_rule"], problem["account"]) == ("levy", "treasury")
    assert (await api.get_account(net, "treasury"))["status"] == "active"
    await asyncio.sleep(1.2)
    # The rule has ended: a retry still gets its first answer, a new request closes it.
    again = await api.client.post(close, headers={**auth(net.operator), **key})
    assert (again.status_code, again.json()) == (409, problem)
    assert again.headers["idempotent-replayed"] == "true"
    r = await api.client.post(close, headers=auth(net.operator))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed"


@pytest.mark.parametrize("role", ["auditor", "member"])
async def test_only_operators_make_and_change_rules(api: Api, role: str) -> None:
    net = await world(api)
    assert (await make(api, net, LEVY)).status_code == 201
    if role == "member":
        token = await api.member_key(net, "a")
    else:
        r = await api.client.post(
            f"{net.base}/keys", json={"role": "auditor"}, headers=auth(net.operator)
        )
        token = r.json()["token"]
    r = await api.client.post(
        f"{net.base}/fee-rules", json={**LEVY, "code": "x"}, headers=auth(token)
    )
    assert_problem(r, 403, "forbidden")
    r = await api.client.patch(
        f"{net.base}/fee-rules/levy", json={"reason": "x"}, headers=auth(token)
    )
    assert_problem(r, 403, "forbidden")


async def test_a_started_rule_keeps_its_period(api: Api) -> None:
    """A new period would make the new period's boundaries since the last charge due at once,
    and the sweeper would charge them all: refused once the rule has started (end it and make
    a new one); free before."""
    net = await world(api)
    assert (await make(api, net, {**MEMBERSHIP, "period": "month"})).status_code == 201
    r = await patch(api, net, "dues", {"period": "minute", "reason": "monthly is too slow"})
    assert "period" in assert_problem(r, 422, "validation_error")["detail"]
    assert (await get(api, net, "/fee-rules/dues")).json()["period"] == "month"

    await patch(api, net, "dues", {"ends_at": later(hours=1), "reason": "make way"})
    body = {**MEMBERSHIP, "code": "dues-later", "period": "month", "starts_at": later(hours=2)}
    assert (await make(api, net, body)).status_code == 201
    r = await patch(api, net, "dues-later", {"period": "week", "reason": "weekly after all"})
    assert r.status_code == 200, r.text
    assert r.json()["period"] == "week"
