"""What the database itself keeps about fee rules, whoever writes: a treasury is never closed under
a rule that is being made, a started rule's start and period never move, and one rule that
cannot be charged never stops the sweeper for the others.

On a database of the test's own (the session's would keep the broken treasury this makes).
"""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from mutualcredit import migrate
from tests.conftest import create_database, drop_database

NETWORK = (
    "INSERT INTO networks (code, name, unit_name, unit_symbol, scale, default_credit_limit)"
    " VALUES ($1, $1, 'hour', 'h', 2, 1000) RETURNING id"
)
ACCOUNTS = (
    "INSERT INTO accounts (network_id, code, kind, credit_limit) VALUES"
    " ($1, 'alice', 'member', 1000), ($1, 'bob', 'member', 1000),"
    " ($1, 'pot', 'system', 0), ($1, 'pot2', 'system', 0)"
)
RULE = (
    "INSERT INTO fee_rules (network_id, code, kind, treasury_id, amount, period, starts_at,"
    " created_by) SELECT $1, $2, 'membership', id, 100, 'minute', $3::text::timestamptz, 'sql'"
    " FROM accounts WHERE network_id = $1 AND code = 'pot'"
)


async def _connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await conn.execute("SELECT set_config('mutualcredit.reason', 'test', false)")
    return conn


@pytest.fixture
async def url(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url, "mc_fee_guards")
    await migrate.upgrade(url)
    yield url
    await drop_database(server_url, url)


async def test_a_treasury_closed_while_its_rule_is_being_made_is_refused(url: str) -> None:
    maker, closer = await _connect(url), await _connect(url)
    try:
        network = await maker.fetchval(NETWORK, "race")
        await maker.execute(ACCOUNTS, network)
        making = maker.transaction()
        await making.start()
        await maker.execute(RULE, network, "dues", "2100-01-01T00:00:00Z")
        # The close waits for the rule's transaction (its treasury is read FOR SHARE) ...
        closing = asyncio.create_task(
            closer.execute("UPDATE accounts SET status = 'closed' WHERE code = 'pot'")
        )
        await asyncio.sleep(0.5)
        assert not closing.done()
        await making.commit()
        # ... and then sees the rule.
        with pytest.raises(asyncpg.RestrictViolationError) as refused:
            await closing
        assert refused.value.constraint_name == "fee_rules_treasury_open"
        assert await maker.fetchval("SELECT status FROM accounts WHERE code = 'pot'") == "active"
    finally:
        await maker.close()
        await closer.close()


async def test_a_started_rule_keeps_its_start_and_its_period(url: str) -> None:
    conn = await _connect(url)
    try:
        network = await conn.fetchval(NETWORK, "fixed")
        await conn.execute(ACCOUNTS, network)
        await conn.execute(RULE, network, "dues", "2000-01-01T00:00:00Z")
        for change in (
            "period = 'day'",
            "starts_at = starts_at - interval '1 day'",
            "starts_at = now() + interval '1 day'",
        ):
            with pytest.raises(asyncpg.RestrictViolationError) as refused:
                await conn.execute(f"UPDATE fee_rules SET {change} WHERE code = 'dues'")
            assert refused.value.constraint_name == "fee_rules_fixed", change
        # Before a rule starts, both may change.
        await conn.execute("UPDATE fee_rules SET ends_at = '2099-01-01' WHERE code = 'dues'")
        await conn.execute(RULE, network, "later", "2100-01-01T00:00:00Z")
        await conn.execute(
            "UPDATE fee_rules SET period = 'day', starts_at = '2100-02-01' WHERE code = 'later'"
        )
    finally:
        await conn.close()


async def test_one_rule_that_cannot_be_charged_does_not_stop_the_others(url: str) -> None:
    conn = await _connect(url)
    try:
        networks = [await conn.fetchval(NETWORK, code) for code in ("broken", "fine")]
        for n, network in enumerate(networks, start=1):
            await conn.execute(ACCOUNTS, network)
            # The sweeper takes rules in id order: the broken network's comes first.
            await conn.execute(
                "INSERT INTO fee_rules (id, network_id, code, kind, treasury_id, amount, period,"
                " starts_at, created_by)"
                " SELECT $2, $1, 'dues', 'membership', id, 100, 'minute',"
                " now() - interval '3 minutes', 'sql' FROM accounts"
                " WHERE network_id = $1 AND code = 'pot'",
                network,
                f"00000000-0000-0000-0000-00000000000{n}",
            )
        # With the guards off (the API and the triggers refuse both): the accounts opened ten
        # minutes ago, so that the last three boundaries charge them, and the broken network's
        # treasury closed, so that its rule can book nowhere.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("UPDATE accounts SET created_at = now() - interval '10 minutes'")
        await conn.execute(
            "UPDATE accounts SET status = 'closed' WHERE code = 'pot' AND network_id = $1",
            networks[0],
        )
        await conn.execute("SET session_replication_role = DEFAULT")
        for _ in range(50):
            if not await conn.fetchval("SELECT mc_charge_fees(100, '0 seconds')"):
                break
        charged = await conn.fetch(
            "SELECT n.code, a.code AS account, count(*) AS charges FROM fee_charges c"
            " JOIN accounts a ON a.id = c.account_id JOIN networks n ON n.id = c.network_id"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        # The fine network's members are charged at each of the boundaries since the rule
        # started (3, or 4 when a minute turned during the test); the broken one's at none.
        assert [(r["code"], r["account"]) for r in charged] == [("fine", "alice"), ("fine", "bob")]
        assert {r["charges"] for r in charged} <= {3, 4}
    finally:
        await conn.close()
