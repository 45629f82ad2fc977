"""Periodic fees (membership and demurrage) as an outsider breaks them: a real `mutualcredit
serve` with two HTTP workers, rules made and changed through the API, the service killed with
kill -9 while a run is half done and kept down across two boundaries, then checked against
numbers computed here, independently, from the rules' formulas.

One service lifetime tells the whole story (period `minute`, so the boundaries B1, B2 and B3
come within three minutes); each test below checks one part of it:

    before B1   six networks, each with a treasury; 3,000 members opened in bulk in `big`;
                balances made by trades; accounts suspended; the rules made (in force from
                now, so B1 is their first boundary)
    B1 + 0.3 s  a trade in `dem` (after the boundary, before its charges: it must not count);
                an account opened in `big` (not charged for B1)
    B1 + 10 s   the sweepers start; `big`'s run under way: its rule changed (PATCH amount),
                then the whole service killed (kill -9) with some of its members charged
    down        across B2 and B3
    B3 + 1 s    restarted; killed again while a missed boundary's run is under way; restarted
    then        every boundary charged: B1's run finished, B2 and B3 each charged once

What must hold: each account charged exactly once per boundary it was eligible for, with the
amount of the rule as it stood when the boundary's run began; demurrage on the balance at the
boundary; what an account (or the treasury) cannot take waived under `refuse`, booked past
the limit under `book`; the treasury receives exactly what the accounts pay, every network sums
to zero, and `mutualcredit check` and `mutualcredit audit verify` pass.
"""

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from mutualcredit import migrate
from tests import command_line
from tests.conftest import create_database, drop_database
from tests.helpers import Api, Net, auth
from tests.processes import signal_tree
from tests.service import ServiceProcess

MEMBERS = 3000  # `big`'s members: 30 batches of the sweeper (jobs.BATCH = 100) per boundary
GRACE = timedelta(seconds=10)  # mc_charge_fees waits this long after a boundary
DUES, DUES_CHANGED, SUS_DUES = 100, 150, 50
# Demurrage in `dem`, `book` and `capped`: 1/100 of the balance above 100, at least 300.
THRESHOLD, RATE, MINIMUM = 100, Fraction(1, 100), 300


# -- the rules' arithmetic, written again from the contract ---------------------------------


def fee_amount(base: int, rate: Fraction, *, minimum: int | None = None) -> int:
    """floor(base x rate), raised to the minimum; nothing on a base of 0."""
    if base <= 0:
        return 0
    fee = (base * rate.numerator) // rate.denominator
    return max(fee, minimum or 0)


def payable(fee: int, available: int, headroom: int | None) -> tuple[int, int]:
    """Under `over_limit = refuse`: (charged, waived), as far as the account's available credit
    and the treasury's headroom allow."""
    room = max(0, min(available, fee if headroom is None else headroom))
    charged = min(fee, room)
    return charged, fee - charged


def next_boundary(at: datetime) -> datetime:
    """The first minute boundary strictly after `at`."""
    return at.replace(second=0, microsecond=0) + timedelta(minutes=1)


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at)


# -- the story ----------------------------------------------------------------------------


@dataclass
class Story:
    boundaries: list[datetime] = field(default_factory=list)
    nets: dict[str, Net] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)  # `big`'s members opened in bulk
    # Charges of `dues` in `big` for B1, when the PATCH was answered and after each kill.
    charged_at_patch: int = 0
    kills: list[tuple[datetime, int, int]] = field(default_factory=list)  # (boundary, done, of)
    trade_after_b1: dict[str, Any] = field(default_factory=dict)
    late_opened_at: datetime | None = None
    # What the API answers at the end, per network: every charge, every account.
    charges: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    accounts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # What the database holds at the end, per network.
    charge_rows: dict[str, list[asyncpg.Record]] = field(default_factory=dict)
    sums: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    check: command_line.Result | None = None
    verify: command_line.Result | None = None
    # What happened when (printed: pytest shows it with a failure).
    started: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)

    def note(self, event: str) -> None:
        now = datetime.now(UTC)
        self.events.append(f"{time.monotonic() - self.started:6.1f} s  {now:%H:%M:%S.%f}  {event}")
        print(self.events[-1])


class Service:
    """`mutualcredit serve` with two HTTP workers on the story's database, started again on
    demand; `kill` is kill -9 of it and every process it started."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log
        self.proc: ServiceProcess | None = None

    async def start(self) -> None:
        self.proc = ServiceProcess(
            self.url, self.log, workers="2", sweep_interval_seconds="0.2", pool_size="10"
        )
        await asyncio.to_thread(self.proc.wait_ready)

    @property
    def base(self) -> str:
        assert self.proc is not None
        return self.proc.base

    def kill(self) -> None:
        assert self.proc is not None
        signal_tree(self.proc.proc.pid, signal.SIGKILL)
        self.proc.proc.wait()
        self.proc.stop()  # closes its log
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


async def until(at: datetime) -> None:
    await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))


async def wait_for(what: str, done: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    while not await done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s: {what}")
        await asyncio.sleep(0.02)


async def ok(r: Awaitable[httpx.Response], status: int = 200) -> dict[str, Any]:
    answer = await r
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def every(client: httpx.AsyncClient, path: str, token: str) -> list[dict[str, Any]]:
    """Every item of a paginated list."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    sep = "&" if "?" in path else "?"
    while True:
        page = f"{path}{sep}limit=500" + (f"&cursor={cursor}" if cursor else "")
        body = await ok(client.get(page, headers=auth(token)))
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def open_in_bulk(db: asyncpg.Connection, network: str, codes: list[str]) -> None:
    """Members opened in one statement (the API opens some fifty a second on a small machine),
    audited by the ledger's triggers like any account."""
    async with db.transaction():
        await db.execute("SET LOCAL mutualcredit.actor = 'test:open-in-bulk'")
        await db.execute(
            """
            INSERT INTO accounts (network_id, code, kind, credit_limit, balance_max)
            SELECT n.id, c, 'member', n.default_credit_limit, n.default_balance_max
            FROM networks n, unnest($2::text[]) c WHERE n.code = $1
            """,
            network,
            codes,
        )


async def charged(db: asyncpg.Connection, network: str, rule: str, due: datetime) -> int:
    count: int = await db.fetchval(
        """
        SELECT count(*) FROM fee_charges c JOIN fee_rules r ON r.id = c.rule_id
        JOIN networks n ON n.id = c.network_id
        WHERE n.code = $1 AND r.code = $2 AND c.due_at = $3
        """,
        network,
        rule,
        due,
    )
    return count


async def runs_finished(db: asyncpg.Connection, due: datetime) -> int:
    """How many rules' runs for the boundary `due` are finished (the wait's condition only)."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM fee_runs WHERE due_at = $1 AND finished_at IS NOT NULL", due
    )
    return count


async def tell(story: Story, url: str, db: asyncpg.Connection, platform: str, work: Path) -> None:
    service = Service(url, work / "service.log")
    await service.start()
    story.note("service started")
    try:
        await act(story, service, db, platform, work)
    finally:
        service.stop()
    check = await asyncio.to_thread(command_line.run, work, "--database-url", url, "check")
    verify = await asyncio.to_thread(
        command_line.run, work, "--database-url", url, "audit", "verify"
    )
    story.check, story.verify = check, verify
    story.note("checked")


async def act(
    story: Story, service: Service, db: asyncpg.Connection, platform: str, work: Path
) -> None:
    async with httpx.AsyncClient(base_url=service.base, timeout=60) as client:
        api = Api(client, platform)
        nets = story.nets
        nets["big"] = await api.network(default_credit_limit=10**6)
        nets["sus"] = await api.network(default_credit_limit=10**6)
        for name in ("dem", "book", "capped", "drift"):
            nets[name] = await api.network(default_credit_limit=0)
        for name, net in nets.items():
            limits = {"balance_max": 200} if name == "capped" else {}
            await api.account(net, "fund", kind="system", **limits)

        story.members = [f"m{n:05d}" for n in range(MEMBERS)]
        await open_in_bulk(db, nets["big"].code, story.members)
        for net, code in ((nets["big"], "idle"), (nets["sus"], "zzz")):
            await api.account(net, code)
            await ok(client.post(f"{net.base}/accounts/{code}/suspend", headers=auth(net.operator)))
        await api.account(nets["sus"], "act")

        async def pay(net: Net, payer: str, payee: str, amount: int, **more: Any) -> Any:
            return await ok(
                client.post(
                    f"{net.base}/trades",
                    json={"payer": payer, "payee": payee, "amount": amount, **more},
                    headers={**auth(net.operator), "Idempotency-Key": str(uuid.uuid4())},
                ),
                201,
            )

        balances = {
            "dem": {"rich": 50_000, "poor": 0, "small": 250, "held": 1_000},
            "book": {"rich": 50_000, "small": 250},
            "capped": {"one": 10_100},
            "drift": {"saver": 10_000},
        }
        for name, accounts in balances.items():
            await api.account(nets[name], "src", credit_limit=10**7)
            for code, balance in accounts.items():
                await api.account(nets[name], code)
                if balance:
                    await pay(nets[name], "src", code, balance)
        # 900 of `held`'s 1,000 on hold: it has 100 it can pay.
        await pay(nets["dem"], "held", "src", 900, pending=True)

        # The rules, in force from now: B1 is the next minute, with time to spare.
        if next_boundary(datetime.now(UTC)) - datetime.now(UTC) < timedelta(seconds=5):
            await until(next_boundary(datetime.now(UTC)) + timedelta(milliseconds=50))
        b1 = next_boundary(datetime.now(UTC))
        story.boundaries = [b1, b1 + timedelta(minutes=1), b1 + timedelta(minutes=2)]
        after_b3 = (b1 + timedelta(minutes=2, seconds=1)).isoformat()
        after_b1 = (b1 + timedelta(seconds=1)).isoformat()  # only B1

        async def rule(net: Net, **body: Any) -> None:
            await ok(
                client.post(
                    f"{net.base}/fee-rules",
                    json={"treasury": "fund", "period": "minute", "reason": "test", **body},
                    headers=auth(net.operator),
                ),
                201,
            )

        await rule(nets["big"], code="dues", kind="membership", amount=DUES, ends_at=after_b3)
        await rule(
            nets["sus"],
            code="dues",
            kind="membership",
            amount=SUS_DUES,
            statuses=["active", "suspended"],
            ends_at=after_b3,
        )
        demurrage = {
            "code": "demurrage",
            "kind": "demurrage",
            "basis": "balance_above",
            "threshold": THRESHOLD,
            "rate": {"num": RATE.numerator, "den": RATE.denominator},
            "minimum": MINIMUM,
            "ends_at": after_b1,
        }
        await rule(nets["dem"], **demurrage)
        await rule(nets["book"], **demurrage, over_limit="book")
        await rule(nets["capped"], **demurrage)
        drift = {k: v for k, v in demurrage.items() if k != "minimum"}
        await rule(nets["drift"], **{**drift, "threshold": 0, "ends_at": after_b3})
        assert datetime.now(UTC) < b1, "the set-up ran past the first boundary"
        story.note(f"set up; B1 is {b1:%H:%M:%S}")

        # Just after B1, before its charges: a trade, and an account opened.
        await until(b1 + timedelta(milliseconds=300))
        story.trade_after_b1 = await pay(nets["dem"], "rich", "poor", 40_000)
        late = await api.account(nets["big"], "late")
        story.late_opened_at = parse(late["created_at"])
        assert datetime.now(UTC) < b1 + GRACE, "too late: B1's charges may have begun"

        # `big`'s run for B1 under way: its rule changed, then the service killed.
        big = nets["big"].code
        await wait_for("B1's first charges", lambda: _some(db, big, b1), 30)
        await ok(
            client.patch(
                f"{nets['big'].base}/fee-rules/dues",
                json={"amount": DUES_CHANGED, "reason": "dues go up"},
                headers=auth(nets["big"].operator),
            )
        )
        story.charged_at_patch = await charged(db, big, "dues", b1)

        async def others_done_or_big_nearly() -> bool:
            done = await charged(db, big, "dues", b1)
            return done > story.charged_at_patch and (
                await runs_finished(db, b1) == len(nets) - 1 or done > MEMBERS - 1000
            )

        await wait_for("B1's runs but big's done", others_done_or_big_nearly, 30)
    service.kill()
    story.kills.append((b1, await charged(db, big, "dues", b1), MEMBERS))
    story.note(f"killed during B1's run, {story.kills[-1][1]} of {MEMBERS} charged")

    # Down across B2 and B3, then back; killed again during a missed boundary's run.
    await until(story.boundaries[2] + timedelta(seconds=1))
    await service.start()
    story.note("restarted after B3")
    b2, b3 = story.boundaries[1:]

    async def missed_run_under_way() -> bool:
        return 0 < await charged(db, big, "dues", b2) < MEMBERS + 1

    await wait_for("B2's run under way", missed_run_under_way, 60)
    service.kill()
    story.kills.append((b2, await charged(db, big, "dues", b2), MEMBERS + 1))
    story.note(f"killed during B2's run, {story.kills[-1][1]} of {MEMBERS + 1} charged")
    await service.start()

    async def all_charged() -> bool:
        return await runs_finished(db, b3) == 3 and await runs_finished(db, b2) == 3

    await wait_for("every run of B2 and B3 finished", all_charged, 90)
    story.note("every run finished")
    await read_back(story, service, db)
    story.note("read back")


async def _some(db: asyncpg.Connection, network: str, due: datetime) -> bool:
    return await charged(db, network, "dues", due) > 0


async def read_back(story: Story, service: Service, db: asyncpg.Connection) -> None:
    async with httpx.AsyncClient(base_url=service.base, timeout=60) as client:
        for name, net in story.nets.items():
            story.charges[name] = await every(client, f"{net.base}/fee-charges", net.operator)
            accounts = await every(client, f"{net.base}/accounts", net.operator)
            story.accounts[name] = {a["code"]: a for a in accounts}
            story.charge_rows[name] = await db.fetch(
                """
                SELECT r.code AS rule, a.code AS account, c.due_at, c.amount, c.waived,
                       c.past_limit, t.amount AS trade_amount, t.kind AS trade_kind
                FROM fee_charges c JOIN networks n ON n.id = c.network_id
                JOIN fee_rules r ON r.id = c.rule_id JOIN accounts a ON a.id = c.account_id
                LEFT JOIN trades t ON t.id = c.trade_id
                WHERE n.code = $1
                """,
                net.code,
            )
            story.sums[name] = tuple(
                await db.fetchrow(
                    """
                    SELECT (SELECT sum(balance) FROM accounts WHERE network_id = n.id),
                           (SELECT sum(amount) FROM entries WHERE network_id = n.id),
                           (SELECT count(*) FROM trades WHERE network_id = n.id AND kind = 'fee')
                    FROM networks n WHERE n.code = $1
                    """,
                    net.code,
                )
            )


@pytest.fixture(scope="module")
async def story(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Story]:
    url = await create_database(server_url, "mc_fees")
    await migrate.upgrade(url)
    work = tmp_path_factory.mktemp("periodic")
    made = await asyncio.to_thread(
        command_line.run, work, "--database-url", url, "create-key", "--role", "platform"
    )
    assert made.status == 0, made.err
    db = await asyncpg.connect(url)
    try:
        told = Story()
        await tell(told, url, db, made.json()["token"], work)
        yield told
    finally:
        await db.close()
        await drop_database(server_url, url)


# -- the checks -------------------------------------------------------------------------


def per_boundary(charges: list[dict[str, Any]]) -> Counter[tuple[str, str, datetime]]:
    return Counter((c["rule"], c["account"], parse(c["due_at"])) for c in charges)


def dues(story: Story) -> dict[tuple[str, datetime], list[dict[str, Any]]]:
    """`big`'s charges by account and boundary."""
    found: dict[tuple[str, datetime], list[dict[str, Any]]] = {}
    for c in story.charges["big"]:
        assert (c["rule"], c["kind"], c["treasury"]) == ("dues", "membership", "fund")
        found.setdefault((c["account"], parse(c["due_at"])), []).append(c)
    return found


def test_each_member_is_charged_once_per_boundary_through_kills(story: Story) -> None:
    """Two workers, kill -9 with B1's run half done, down across B2 and B3, killed again
    during a missed boundary's run: every member charged once for each of B1, B2 and B3."""
    for due, done, of in story.kills:
        assert 0 < done < of, (due, done, of)  # each kill fell with a run half done
    expected = Counter((m, b) for m in story.members for b in story.boundaries)
    expected.update(("late", b) for b in story.boundaries[1:])
    found = Counter({key: len(charges) for key, charges in dues(story).items()})
    assert found == expected
    # The database says the same, and each charge is one trade of kind fee of its amount.
    rows = story.charge_rows["big"]
    assert Counter((r["account"], r["due_at"]) for r in rows) == expected
    assert all(r["trade_kind"] == "fee" and r["trade_amount"] == r["amount"] for r in rows)
    assert len({c["trade_id"] for c in story.charges["big"]}) == len(rows)
    for member in story.members:
        assert story.accounts["big"][member]["balance"] == -(DUES + 2 * DUES_CHANGED)


def test_a_rule_changed_during_a_run_applies_from_the_next_boundary(story: Story) -> None:
    b1 = story.boundaries[0]
    assert 0 < story.charged_at_patch < MEMBERS  # changed with B1's run under way
    for (account, due), charges in dues(story).items():
        assert [c["amount"] for c in charges] == [DUES if due == b1 else DUES_CHANGED], (
            account,
            due,
        )
    assert all(c["waived"] == 0 and not c["past_limit"] for c in story.charges["big"])


def test_an_account_opened_after_a_boundary_is_not_charged_for_it(story: Story) -> None:
    b1, b2, b3 = story.boundaries
    assert story.late_opened_at is not None
    assert b1 < story.late_opened_at < b1 + GRACE
    assert sorted(due for account, due in dues(story) if account == "late") == [b2, b3]
    assert story.accounts["big"]["late"]["balance"] == -2 * DUES_CHANGED


def test_suspended_accounts_are_charged_only_when_the_rule_says_so(story: Story) -> None:
    # `big`'s rule charges active accounts (the default): its suspended account, never.
    assert story.accounts["big"]["idle"]["status"] == "suspended"
    assert [key for key in dues(story) if key[0] == "idle"] == []
    assert story.accounts["big"]["idle"]["balance"] == 0
    # `sus`'s rule charges active and suspended accounts.
    charges = story.charges["sus"]
    expected = {("dues", code, b): 1 for code in ("act", "zzz") for b in story.boundaries}
    assert per_boundary(charges) == Counter(expected)
    assert all(c["amount"] == SUS_DUES and c["waived"] == 0 for c in charges)
    accounts = story.accounts["sus"]
    assert accounts["zzz"]["status"] == "suspended"
    assert accounts["zzz"]["balance"] == accounts["act"]["balance"] == -3 * SUS_DUES


def test_the_treasury_receives_what_the_accounts_pay_and_networks_sum_to_zero(
    story: Story,
) -> None:
    for name in story.nets:
        charges = story.charges[name]
        accounts = story.accounts[name]
        paid = sum(c["amount"] for c in charges)
        assert accounts["fund"]["balance"] == paid, name
        assert sum(a["balance"] for a in accounts.values()) == 0, name
        # Balances, entries, and one fee trade per charge that took something.
        assert story.sums[name] == (0, 0, sum(1 for c in charges if c["amount"] > 0)), name
        assert sum(r["amount"] for r in story.charge_rows[name]) == paid, name
    assert story.accounts["big"]["fund"]["balance"] == (
        MEMBERS * (DUES + 2 * DUES_CHANGED) + 2 * DUES_CHANGED
    )
    assert story.accounts["sus"]["fund"]["balance"] == 6 * SUS_DUES


def demurrage_charges(story: Story, name: str) -> dict[str, tuple[int, int, bool]]:
    charges = story.charges[name]
    b1 = story.boundaries[0]
    assert all(parse(c["due_at"]) == b1 and c["rule"] == "demurrage" for c in charges)
    assert len({c["account"] for c in charges}) == len(charges)
    return {c["account"]: (c["amount"], c["waived"], c["past_limit"]) for c in charges}


def test_demurrage_is_charged_on_the_balance_at_the_boundary(story: Story) -> None:
    """`refuse`: what an account cannot pay (its available credit: balance, less holds, plus
    its credit limit) is waived, as is what the treasury cannot take (its balance_max)."""
    # Balances at B1; `rich` paid `poor` 40,000 after B1 and before the charges.
    assert parse(story.trade_after_b1["created_at"]) > story.boundaries[0]
    rich = fee_amount(50_000 - THRESHOLD, RATE, minimum=MINIMUM)  # 499
    small = fee_amount(250 - THRESHOLD, RATE, minimum=MINIMUM)  # 1, raised to 300
    held = fee_amount(1_000 - THRESHOLD, RATE, minimum=MINIMUM)
    expected = {
        "rich": (*payable(rich, 10_000, None), False),
        "small": (*payable(small, 250, None), False),  # 250 charged, 50 waived
        "held": (*payable(held, 1_000 - 900, None), False),  # 100 charged, 200 waived
    }
    assert (rich, expected["small"][:2], expected["held"][:2]) == (499, (250, 50), (100, 200))
    assert demurrage_charges(story, "dem") == expected  # nothing for `poor`, nor for `src`
    accounts = story.accounts["dem"]
    assert accounts["rich"]["balance"] == 50_000 - 40_000 - rich
    assert accounts["poor"]["balance"] == 40_000
    assert accounts["small"]["balance"] == 0
    assert accounts["held"]["balance"] == 900
    assert accounts["fund"]["balance"] == 499 + 250 + 100
    assert story.sums["dem"] == (0, 0, 3)

    one = fee_amount(10_100 - THRESHOLD, RATE, minimum=MINIMUM)
    assert demurrage_charges(story, "capped") == {"one": (*payable(one, 10_100, 200), False)}
    assert story.accounts["capped"]["fund"]["balance"] == 200
    assert story.sums["capped"] == (0, 0, 1)


def test_demurrage_booked_past_the_limit(story: Story) -> None:
    """`book`: charged whole, past the limit, and said so."""
    small = fee_amount(250 - THRESHOLD, RATE, minimum=MINIMUM)
    rich = fee_amount(50_000 - THRESHOLD, RATE, minimum=MINIMUM)
    assert demurrage_charges(story, "book") == {"small": (small, 0, True), "rich": (rich, 0, False)}
    accounts = story.accounts["book"]
    assert accounts["small"]["balance"] == 250 - small == -50  # beyond its credit limit of 0
    assert accounts["small"]["credit_limit"] == 0
    assert accounts["fund"]["balance"] == small + rich
    assert story.sums["book"] == (0, 0, 2)


def test_demurrage_does_not_depend_on_when_the_sweeper_ran(story: Story) -> None:
    """Each boundary once, on the balance at it, as if the service had run throughout: B1's
    charge was booked at once, B2's and B3's after the restart (the service was down across
    both), and B3's still counts B2's."""
    b1, b2, b3 = story.boundaries
    charges = {parse(c["due_at"]): c for c in story.charges["drift"]}
    assert sorted(charges) == [b1, b2, b3]
    assert all(c["account"] == "saver" for c in charges.values())
    # B2's charge was booked after B3: what a sweeper reading only the entries before B3 misses.
    assert parse(charges[b2]["created_at"]) > b3
    balance = 10_000
    for due in (b1, b2, b3):
        assert charges[due]["amount"] == fee_amount(balance, RATE), due
        balance -= charges[due]["amount"]
    assert story.sums["drift"] == (0, 0, 3)


def test_the_ledger_checks_and_the_audit_chain_pass(story: Story) -> None:
    assert story.check is not None
    assert story.verify is not None
    assert story.check.status == 0, story.check.out + story.check.err
    assert story.verify.status == 0, story.verify.out + story.verify.err
