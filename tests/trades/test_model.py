"""Model-based property test: random sequences of trades, holds, posts, voids, replays and
suspensions, run against the ledger's SQL functions and against a tiny in-memory model. After
every step the ledger and the model agree on every balance and hold, and every outcome code.

It calls the SQL functions directly (the write path itself); the HTTP layer above them has its
own tests.
"""

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

CODES = ["a", "b", "c", "d"]


@dataclass
class ModelAccount:
    credit_limit: int
    balance_max: int | None
    balance: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    active: bool = True


@dataclass
class Hold:
    trade_id: uuid.UUID
    payer: str
    payee: str
    amount: int


@dataclass
class Model:
    accounts: dict[str, ModelAccount] = field(default_factory=dict)

    def refusal(self, payer: str, payee: str, amount: int) -> str | None:
        p, q = self.accounts[payer], self.accounts[payee]
        if not p.active or not q.active:
            return "account_suspended"
        if p.balance - p.pending_debits - amount < -p.credit_limit:
            return "credit_limit_exceeded"
        if q.balance_max is not None and q.balance + q.pending_credits + amount > q.balance_max:
            return "balance_max_exceeded"
        return None


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.run(asyncpg.connect(DATABASE_URL))
        self.model = Model()
        self.network_id = uuid.uuid4()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.conn.close())
        self.loop.close()

    @initialize(
        limits=st.lists(
            st.tuples(st.integers(0, 200), st.one_of(st.none(), st.integers(0, 300))),
            min_size=len(CODES),
            max_size=len(CODES),
        )
    )
    def open_network(self, limits: list[tuple[int, int | None]]) -> None:
        self.run(
            self.conn.execute(
                "INSERT INTO networks (id, code, name, unit_name, unit_symbol, scale,"
                " default_credit_limit) VALUES ($1, $2, 'model', 'u', 'u', 0, 0)",
                self.network_id,
                f"model-{self.network_id.hex[:12]}",
            )
        )
        for code, (credit_limit, balance_max) in zip(CODES, limits, strict=True):
            self.run(
                self.conn.execute(
                    "INSERT INTO accounts (network_id, code, kind, credit_limit, balance_max)"
                    " VALUES ($1, $2, 'member', $3, $4)",
                    self.network_id,
                    code,
                    credit_limit,
                    balance_max,
                )
            )
            self.model.accounts[code] = ModelAccount(credit_limit, balance_max)

    def _create(self, key: str, payer: str, payee: str, amount: int, pending: bool) -> Any:
        request = f"{payer}|{payee}|{amount}|{pending}".encode()
        return self.run(
            self.conn.fetchrow(
                "SELECT outcome, problem_code, trade->>'id' AS id FROM mc_create_trade("
                "$1, $2, $3, $4, $5, $6, $7, now() + interval '1 hour', '', NULL, '{}', 'model')",
                self.network_id,
                key,
                hashlib.sha256(request).digest(),
                payer,
                payee,
                amount,
                pending,
            )
        )

    def _trade(self, payer: str, payee: str, amount: int, pending: bool) -> tuple[str, Any]:
        key = uuid.uuid4().hex
        expected = self.model.refusal(payer, payee, amount)
        row = self._create(key, payer, payee, amount, pending)
        if expected is None:
            assert (row["outcome"], row["problem_code"]) == ("created", None)
            p, q = self.model.accounts[payer], self.model.accounts[payee]
            if pending:
                p.pending_debits += amount
                q.pending_credits += amount
            else:
                p.balance -= amount
                q.balance += amount
        else:
            assert (row["outcome"], row["problem_code"]) == ("rejected", expected)
        return key, row

    @rule(
        target=keys,
        payer=st.sampled_from(CODES),
        payee=st.sampled_from(CODES),
        amount=st.integers(1, 150),
    )
    def trade(self, payer: str, payee: str, amount: int) -> tuple[str, str, str, int, Any]:
        if payer == payee:
            return ("", payer, payee, amount, None)
        key, row = self._trade(payer, payee, amount, pending=False)
        return (key, payer, payee, amount, (row["problem_code"], row["id"]))

    @rule(
        target=holds,
        payer=st.sampled_from(CODES),
        payee=st.sampled_from(CODES),
        amount=st.integers(1, 150),
    )
    def hold(self, payer: str, payee: str, amount: int) -> Hold | None:
        if payer == payee:
            return None
        _, row = self._trade(payer, payee, amount, pending=True)
        if row["outcome"] != "created":
            return None
        return Hold(uuid.UUID(row["id"]), payer, payee, amount)

    @rule(previous=keys)
    def replay(self, previous: tuple[str, str, str, int, Any]) -> None:
        """A retry with the same key and request repeats the first answer (the same trade, or
        the same refusal) and changes nothing."""
        key, payer, payee, amount, first = previous
        if not key:
            return
        row = self._create(key, payer, payee, amount, False)
        assert (row["outcome"], (row["problem_code"], row["id"])) == ("replayed", first)
        other = self._create(key, payer, payee, amount + 1, False)
        assert (other["outcome"], other["problem_code"]) == ("conflict", "idempotency_conflict")

    @rule(hold=consumes(holds), part=st.integers(1, 150))
    def post(self, hold: Hold | None, part: int) -> None:
        if hold is None:
            return
        amount = min(part, hold.amount)
        p, q = self.model.accounts[hold.payer], self.model.accounts[hold.payee]
        row = self.run(
            self.conn.fetchrow(
                "SELECT outcome, problem_code FROM mc_resolve_trade($1, $2, 'post', $3, 'model')",
                self.network_id,
                hold.trade_id,
                amount,
            )
        )
        if not (p.active and q.active):
            assert (row["outcome"], row["problem_code"]) == ("rejected", "account_suspended")
            self._void(hold)
            return
        assert (row["outcome"], row["problem_code"]) == ("posted", None)
        p.pending_debits -= hold.amount
        q.pending_credits -= hold.amount
        p.balance -= amount
        q.balance += amount

    def _void(self, hold: Hold) -> None:
        row = self.run(
            self.conn.fetchrow(
                "SELECT outcome FROM mc_resolve_trade($1, $2, 'void', NULL, 'model')",
                self.network_id,
                hold.trade_id,
            )
        )
        assert row["outcome"] == "voided"
        self.model.accounts[hold.payer].pending_debits -= hold.amount
        self.model.accounts[hold.payee].pending_credits -= hold.amount

    @rule(hold=consumes(holds))
    def void(self, hold: Hold | None) -> None:
        if hold is not None:
            self._void(hold)

    @precondition(lambda self: bool(self.model.accounts))
    @rule(code=st.sampled_from(CODES))
    def toggle_suspension(self, code: str) -> None:
        account = self.model.accounts[code]
        account.active = not account.active
        self.run(
            self.conn.execute(
                "UPDATE accounts SET status = $3 WHERE network_id = $1 AND code = $2",
                self.network_id,
                code,
                "active" if account.active else "suspended",
            )
        )

    @invariant()
    def ledger_matches_model(self) -> None:
        if not self.model.accounts:
            return
        rows = self.run(
            self.conn.fetch(
                "SELECT code, balance, pending_debits, pending_credits FROM accounts"
                " WHERE network_id = $1",
                self.network_id,
            )
        )
        actual = {
            r["code"]: (r["balance"], r["pending_debits"], r["pending_credits"]) for r in rows
        }
        expected = {
            code: (a.balance, a.pending_debits, a.pending_credits)
            for code, a in self.model.accounts.items()
        }
        assert actual == expected
        assert sum(balance for balance, _, _ in actual.values()) == 0


DATABASE_URL = ""


@pytest.fixture
def _database(database_url: str) -> None:
    # Hypothesis builds the machine without arguments, so the URL reaches it as a global.
    global DATABASE_URL
    DATABASE_URL = database_url


@pytest.mark.usefixtures("_database")
def test_the_ledger_behaves_like_its_model() -> None:
    LedgerMachine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    LedgerMachine.TestCase().runTest()
