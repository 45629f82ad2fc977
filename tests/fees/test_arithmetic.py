"""The arithmetic of fees, checked against an independent exact computation (hypothesis).

`mc_fee_amount`, the one rounding rule of every fee, on a real PostgreSQL over its whole input
range: bases up to 2^53 - 1 (the largest amount), rates num/den with den up to 10^12, a fixed
part, a minimum and a maximum, and a base of zero. The model is Python's exact Fraction: the
floor of base x num / den, plus the fixed part, raised to the minimum, cut to the maximum and
to the largest amount; nothing for a base of zero.

Levies through the HTTP API, on random rules, limits and trades, against a model of the ledger
kept here: each trade's fees to the unit, refusals (the trade's own, or a levy's under `refuse`)
that book nothing, levies booked past a limit under `book`, and at the end a network that sums to
zero, fee charges that are the trades' levies, and treasuries that hold what was charged.
"""

import asyncio
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.helpers import Api, Net, assert_problem, auth

MAX_AMOUNT = 2**53 - 1
MAX_DEN = 10**12

Case = tuple[int, int, int, int, int | None, int | None]


def expected_fee(case: Case) -> int:
    base, num, den, fixed, minimum, maximum = case
    if base <= 0:
        return 0
    fee = math.floor(Fraction(base) * Fraction(num, den)) + fixed
    if minimum is not None:
        fee = max(fee, minimum)
    if maximum is not None:
        fee = min(fee, maximum)
    return min(fee, MAX_AMOUNT)


amounts = st.one_of(
    st.integers(0, MAX_AMOUNT),
    st.integers(0, 1000),
    st.sampled_from([1, MAX_AMOUNT - 1, MAX_AMOUNT]),
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Rules the table admits (0 <= num <= den <= 10^12, 1 <= minimum <= maximum)."""
    den = draw(st.one_of(st.integers(1, MAX_DEN), st.sampled_from([1, 3, 7, 100, MAX_DEN])))
    num = draw(st.one_of(st.integers(0, den), st.sampled_from([0, 1, den - 1, den])))
    minimum = draw(st.none() | st.integers(1, MAX_AMOUNT) | st.integers(1, 1000))
    maximum = draw(st.none() | st.integers(minimum or 1, MAX_AMOUNT))
    base = draw(amounts)
    return base, num, den, draw(amounts), minimum, maximum


@pytest.fixture
def conn(database_url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Connection]]:
    """A connection of its own on a loop of its own: hypothesis runs the test synchronously."""
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(asyncpg.connect(database_url))
    yield loop, connection
    loop.run_until_complete(connection.close())
    loop.close()


def test_the_rounding_rule_is_exact(
    conn: tuple[asyncio.AbstractEventLoop, asyncpg.Connection],
) -> None:
    loop, connection = conn

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(cases(), min_size=1, max_size=40))
    @example([(MAX_AMOUNT, MAX_DEN, MAX_DEN, MAX_AMOUNT, None, None)])  # past the largest amount
    @example([(0, 1, 1, 5, 3, None), (1, 0, 1, 0, 2, 9), (MAX_AMOUNT, 1, MAX_DEN, 0, None, 7)])
    @example([(10**12 - 1, 1, MAX_DEN, 0, None, None), (3, 2, 3, 1, None, None)])  # 0, 2 + 1
    def check(batch: list[Case]) -> None:
        # One round trip for the whole batch: the function applied to each row of arrays.
        got = loop.run_until_complete(
            connection.fetch(
                "SELECT mc_fee_amount(b, n, d, f, lo, hi) AS fee"
                " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
                "             $5::bigint[], $6::bigint[])"
                "      WITH ORDINALITY AS c(b, n, d, f, lo, hi, i)"
                " ORDER BY i",
                *([case[k] for case in batch] for k in range(6)),
            )
        )
        assert [row["fee"] for row in got] == [expected_fee(case) for case in batch]

    check()


# Levies through the HTTP API, against a model of the ledger kept here. Each example opens a
# network of its own (api.network() draws a fresh code), with three members, one system account
# that trades, and two system accounts that may be treasuries (and trade too, so that a levy
# whose charged account is its own treasury is skipped, and a treasury may pay another's levy).
MEMBERS = ("a", "b", "c")
SYSTEM = ("pot", "t1", "t2")
PARTIES = (*MEMBERS, "pot", "t1")


@dataclass(frozen=True)
class Levy:
    code: str
    account_kind: str
    charge: str
    treasury: str
    rate: tuple[int, int] | None
    fixed: int
    minimum: int | None
    maximum: int | None
    over_limit: str

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "kind": "levy",
            "treasury": self.treasury,
            "account_kind": self.account_kind,
            "charge": self.charge,
            "amount": self.fixed,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "over_limit": self.over_limit,
            "reason": "property test",
        }
        if self.rate is not None:
            body["rate"] = {"num": self.rate[0], "den": self.rate[1]}
        return body

    def sides(self) -> tuple[str, ...]:
        return ("payer", "payee") if self.charge == "both" else (self.charge,)


@dataclass
class Holder:
    kind: str
    credit_limit: int
    balance_max: int | None
    balance: int = 0


@dataclass(frozen=True)
class Trade:
    payer: str
    payee: str
    amount: int


@dataclass(frozen=True)
class World:
    levies: tuple[Levy, ...]
    limits: Mapping[str, tuple[int, int | None]]
    trades: tuple[Trade, ...]


def levy_fee(levy: Levy, amount: int) -> int:
    num, den = levy.rate if levy.rate is not None else (0, 1)
    return expected_fee((amount, num, den, levy.fixed, levy.minimum, levy.maximum))


@st.composite
def levies(draw: st.DrawFn, code: str, account_kind: str, charge: str) -> Levy:
    rate: tuple[int, int] | None = None
    if draw(st.integers(0, 5)):  # now and then a fixed amount alone, with no rate
        den = draw(st.one_of(st.integers(1, MAX_DEN), st.sampled_from([1, 3, 100, MAX_DEN])))
        # Mostly small rates, as a network would set them; sometimes any rate up to the whole.
        num = draw(st.one_of(st.integers(0, max(den // 20, 1)), st.integers(0, den)))
        rate = (min(num, den), den)
    fixed = draw(st.one_of(st.just(0), st.integers(0, 50), st.integers(0, 10**6)))
    if (rate is None or rate[0] == 0) and fixed == 0:
        fixed = draw(st.integers(1, 20))  # a levy charges a rate above 0, a fixed part, or both
    minimum = draw(st.none() | st.integers(1, 100))
    maximum = draw(st.none() | st.integers(minimum or 1, 10**4) | st.integers(minimum or 1, 10**9))
    return Levy(
        code=code,
        account_kind=account_kind,
        charge=charge,
        treasury=draw(st.sampled_from(["t1", "t2"])),
        rate=rate,
        fixed=fixed,
        minimum=minimum,
        maximum=maximum,
        over_limit=draw(st.sampled_from(["refuse", "book"])),
    )


# Each world has a scale, from cents to the largest amounts, and its limits and trades are drawn
# on it: tight enough that trades, and their levies, meet the limits.
SCALES = [100, 10**4, 10**9, MAX_AMOUNT // 8]


def limits(scale: int) -> st.SearchStrategy[tuple[int, int | None]]:
    """(credit_limit, balance_max): tight or ample; no upper limit, or one."""
    return st.tuples(
        st.one_of(st.integers(0, scale), st.integers(scale, 4 * scale), st.just(4 * scale)),
        st.one_of(
            st.none(), st.integers(0, 100), st.integers(0, scale), st.integers(scale, 4 * scale)
        ),
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """One levy, or two that do not overlap (other sides of a trade, or other account kinds),
    in either code order; limits for every account; a few trades."""
    codes = draw(st.permutations(["levy-1", "levy-2"]))
    first_kind = draw(st.sampled_from(["member", "system"]))
    first_charge = draw(st.sampled_from(["payer", "payee", "both"]))
    rules = [draw(levies(codes[0], first_kind, first_charge))]
    if draw(st.booleans()):
        second_kind = draw(st.sampled_from(["member", "system"]))
        if second_kind == first_kind:
            if first_charge == "both":
                second_kind = "system" if first_kind == "member" else "member"
                second_charge = draw(st.sampled_from(["payer", "payee", "both"]))
            else:
                second_charge = "payee" if first_charge == "payer" else "payer"
        else:
            second_charge = draw(st.sampled_from(["payer", "payee", "both"]))
        rules.append(draw(levies(codes[1], second_kind, second_charge)))
    scale = draw(st.sampled_from(SCALES))
    amounts = st.one_of(st.integers(1, 100), st.integers(1, scale))
    trades = []
    for _ in range(draw(st.integers(1, 6))):
        payer, payee = draw(st.permutations(PARTIES))[:2]
        trades.append(Trade(payer, payee, draw(amounts)))
    return World(
        levies=tuple(rules),
        limits={code: draw(limits(scale)) for code in (*MEMBERS, *SYSTEM)},
        trades=tuple(trades),
    )


Charged = tuple[str, str, int, bool]  # rule, account, amount, past_limit
Refusal = tuple[str, dict[str, Any]]  # code, the problem's members the model predicts


def book(
    levies: tuple[Levy, ...], accounts: dict[str, Holder], trade: Trade
) -> list[Charged] | Refusal:
    """What the ledger should do with `trade`: its levies, booked in the model, or its refusal
    (nothing booked). The trade's own limits first; then each levy, in rule code order, payer
    before payee, against the accounts as the trade and the levies before it leave them."""
    payer, payee = accounts[trade.payer], accounts[trade.payee]
    available = payer.balance + payer.credit_limit
    if trade.amount > available:
        return "credit_limit_exceeded", {"account": trade.payer, "available": available}
    if payee.balance_max is not None and payee.balance + trade.amount > payee.balance_max:
        headroom = payee.balance_max - payee.balance
        return "balance_max_exceeded", {"account": trade.payee, "headroom": headroom}
    after = {code: holder.balance for code, holder in accounts.items()}
    after[trade.payer] -= trade.amount
    after[trade.payee] += trade.amount
    charged: list[Charged] = []
    for levy in sorted(levies, key=lambda levy: levy.code):
        for side in levy.sides():
            code = trade.payer if side == "payer" else trade.payee
            if accounts[code].kind != levy.account_kind or code == levy.treasury:
                continue
            fee = levy_fee(levy, trade.amount)
            if fee == 0:
                continue
            treasury = accounts[levy.treasury]
            short = fee - (after[code] + accounts[code].credit_limit)
            excess = (
                None
                if treasury.balance_max is None
                else after[levy.treasury] + fee - treasury.balance_max
            )
            if levy.over_limit == "refuse" and short > 0:
                return "credit_limit_exceeded", {
                    "account": code,
                    "fee_rule": levy.code,
                    "available": accounts[code].balance + accounts[code].credit_limit,
                    "shortfall": short,
                }
            if levy.over_limit == "refuse" and excess is not None and excess > 0:
                assert treasury.balance_max is not None
                return "balance_max_exceeded", {
                    "account": levy.treasury,
                    "fee_rule": levy.code,
                    "headroom": treasury.balance_max - treasury.balance,
                    "excess": excess,
                }
            after[code] -= fee
            after[levy.treasury] += fee
            charged.append((levy.code, code, fee, short > 0 or (excess is not None and excess > 0)))
    for code, balance in after.items():
        accounts[code].balance = balance
    return charged


async def _all_pages(api: Api, net: Net, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        r = await api.client.get(f"{net.base}{path}", params=params, headers=auth(net.operator))
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(worlds())
# By hand: 7/1000 + 3, at least 5, at most 40, on both sides into t1, which holds at most 15.
# 100 -> 5 and 5; 100 again: a's 5 fills t1 and b's does not fit (headroom 5, excess 5); 890 ->
# a is 4 short of its levy of 9 (available 895).
@example(
    World(
        levies=(Levy("levy-1", "member", "both", "t1", (7, 1000), 3, 5, 40, "refuse"),),
        limits={
            "a": (1000, None),
            "b": (0, 10**4),
            "c": (0, None),
            "pot": (0, None),
            "t1": (0, 15),
            "t2": (0, None),
        },
        trades=(Trade("a", "b", 100), Trade("a", "b", 100), Trade("a", "b", 890)),
    )
)
# Exactly at the limits: 991 -> 6 + 3 = 9 is all a has left, and all t1 may still receive; so
# it is booked, not past either limit; then a cannot pay 1.
@example(
    World(
        levies=(Levy("levy-1", "member", "payer", "t1", (7, 1000), 3, 5, 40, "refuse"),),
        limits={
            "a": (1000, None),
            "b": (0, None),
            "c": (0, None),
            "pot": (0, None),
            "t1": (0, 9),
            "t2": (0, None),
        },
        trades=(Trade("a", "b", 991), Trade("a", "b", 1)),
    )
)
# A third of what a member pays, booked past its limit (a's 332, then b's); 7 from the system
# account pot on both of its trades, none from t1 when it pays (it is that rule's treasury);
# a, past its limit, cannot pay 1.
@example(
    World(
        levies=(
            Levy("levy-2", "member", "payer", "t2", (1, 3), 0, None, None, "book"),
            Levy("levy-1", "system", "both", "t1", None, 7, None, None, "refuse"),
        ),
        limits={
            "a": (1000, None),
            "b": (0, None),
            "c": (0, None),
            "pot": (100, None),
            "t1": (50, None),
            "t2": (0, None),
        },
        trades=(
            Trade("a", "b", 998),
            Trade("t1", "pot", 10),
            Trade("pot", "c", 20),
            Trade("b", "c", 998),
            Trade("a", "b", 1),
        ),
    )
)
async def test_levies_through_the_api_match_an_exact_model(api: Api, world: World) -> None:
    """For random levy rules, limits and trades, through the API: each trade's levies are the
    model's to the unit, a refused trade (by its own limits or a levy's) books nothing, a levy
    its rule books past a limit says so, and at the end the network sums to zero, the fee
    charges listed are the trades' levies, and the treasuries hold exactly what was charged."""
    net = await api.network(default_credit_limit=0)
    accounts: dict[str, Holder] = {}
    for code, (credit_limit, balance_max) in world.limits.items():
        kind = "member" if code in MEMBERS else "system"
        await api.account(net, code, kind=kind, credit_limit=credit_limit, balance_max=balance_max)
        accounts[code] = Holder(kind, credit_limit, balance_max)
    for levy in world.levies:
        r = await api.client.post(
            f"{net.base}/fee-rules", json=levy.body(), headers=auth(net.operator)
        )
        assert r.status_code == 201, r.text

    treasuries = {levy.code: levy.treasury for levy in world.levies}
    charges: list[dict[str, Any]] = []  # as GET …/fee-charges should list them
    flows = dict.fromkeys(accounts, 0)  # what each account's booked trades moved, levies apart
    for trade in world.trades:
        expected = book(world.levies, accounts, trade)
        r = await api.pay(net, trade.payer, trade.payee, trade.amount)
        # What happened, shown by pytest --hypothesis-show-statistics.
        if isinstance(expected, tuple):
            event(expected[0] + (" (a levy's)" if "fee_rule" in expected[1] else ""))
        else:
            event(f"booked with {len(expected)} levies")
            if any(past_limit for *_, past_limit in expected):
                event("a levy booked past a limit")
        if isinstance(expected, tuple):
            code, members = expected
            problem = assert_problem(r, 409, code)
            assert {name: problem.get(name) for name in members} == members, problem
            if "fee_rule" not in members:
                assert "fee_rule" not in problem, problem
        else:
            assert r.status_code == 201, r.text
            booked = r.json()
            flows[trade.payer] -= trade.amount
            flows[trade.payee] += trade.amount
            assert [
                (f["rule"], f["account"], f["amount"], f["past_limit"]) for f in booked["fees"]
            ] == expected
            charges.extend(
                {
                    "rule": f["rule"],
                    "kind": "levy",
                    "account": f["account"],
                    "treasury": treasuries[f["rule"]],
                    "amount": f["amount"],
                    "waived": 0,
                    "past_limit": f["past_limit"],
                    "trade_id": f["trade_id"],
                    "cause_trade_id": booked["id"],
                    "due_at": None,
                }
                for f in booked["fees"]
            )
        # Booked or refused, every balance is the model's (a refusal booked nothing).
        assert await api.balances(net) == {code: a.balance for code, a in accounts.items()}

    balances = await api.balances(net)
    assert sum(balances.values()) == 0
    # GET …/fee-charges lists exactly the levies the trades answered, one charge each.
    listed = await _all_pages(api, net, "/fee-charges")
    fields: tuple[str, ...] = ("rule", "kind", "account", "treasury", "amount", "waived")
    fields += ("past_limit", "trade_id", "cause_trade_id", "due_at")
    assert sorted(({k: c[k] for k in fields} for c in listed), key=str) == sorted(charges, key=str)
    # What the treasuries took is what the accounts paid: a treasury's balance is the sum of
    # its charges, beside its own trades and any levy of another rule it paid.
    for treasury in ("t1", "t2"):
        received = sum(c["amount"] for c in charges if c["treasury"] == treasury)
        paid = sum(c["amount"] for c in charges if c["account"] == treasury)
        assert balances[treasury] == received - paid + flows[treasury]
