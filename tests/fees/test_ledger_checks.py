"""`mutualcredit check` finds a fee that does not match its charge, whatever edited it.

The ledger's guards refuse these edits; here they are made with the triggers switched off
(`session_replication_role = replica`, as a database owner could), on a database of the test's
own, so that each check is shown to fail when the ledger is wrong, not only to pass when it is
right.
"""

import asyncpg
import pytest

from mutualcredit import migrate
from mutualcredit.db import create_engine
from mutualcredit.ledger_checks import run_checks
from tests.conftest import create_database, drop_database

TRADE = (
    "SELECT outcome, trade FROM mc_create_trade($1, $2, '\\x01', $3, $4, $5, false, NULL, '',"
    " NULL, '{}', 'sql:test')"
)


async def _failures(url: str) -> dict[str, list[str]]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return (await run_checks(conn)).failures
    finally:
        await engine.dispose()


@pytest.fixture
async def levied(server_url: str) -> tuple[str, str, str]:
    """A fresh database with one levied trade: its url, the fee trade's id and its charge's id."""
    url = await create_database(server_url, "mc_fee_checks")
    await migrate.upgrade(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT set_config('mutualcredit.reason', 'test', false)")
        network = await conn.fetchval(
            "INSERT INTO networks (code, name, unit_name, unit_symbol, scale, default_credit_limit)"
            " VALUES ('checks', 'Checks', 'hour', 'h', 2, 1000) RETURNING id"
        )
        await conn.execute(
            "INSERT INTO accounts (network_id, code, kind, credit_limit) VALUES"
            " ($1, 'a', 'member', 1000), ($1, 'b', 'member', 1000), ($1, 't', 'system', 0)",
            network,
        )
        await conn.execute(
            "INSERT INTO fee_rules (network_id, code, kind, treasury_id, charge_payer, rate_num,"
            " rate_den, starts_at, created_by)"
            " SELECT $1, 'levy', 'levy', id, true, 1, 10, now() - interval '1 second', 'sql'"
            " FROM accounts WHERE code = 't'",
            network,
        )
        outcome, _ = await conn.fetchrow(TRADE, network, "k1", "a", "b", 500)
        assert outcome == "created"
        fee_trade, charge = await conn.fetchrow(
            "SELECT trade_id::text, id::text FROM fee_charges WHERE amount = 50"
        )
    finally:
        await conn.close()
    assert await _failures(url) == {}
    yield url, fee_trade, charge
    await drop_database(server_url, url)


async def _tamper(url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_a_fee_trade_whose_charge_says_another_amount_is_found(
    levied: tuple[str, str, str],
) -> None:
    url, fee_trade, charge = levied
    await _tamper(url, "UPDATE fee_charges SET amount = 49 WHERE id = $1::text::bigint", charge)
    assert (await _failures(url)).get("each fee trade is its charge") == [fee_trade]


async def test_a_fee_trade_without_its_charge_is_found(levied: tuple[str, str, str]) -> None:
    url, fee_trade, charge = levied
    await _tamper(url, "DELETE FROM fee_charges WHERE id = $1::text::bigint", charge)
    assert (await _failures(url)).get("each fee trade is its charge") == [fee_trade]


async def test_a_charge_whose_fee_trade_is_gone_is_found(levied: tuple[str, str, str]) -> None:
    url, fee_trade, charge = levied
    await _tamper(url, "UPDATE trades SET kind = 'transfer' WHERE id = $1::text::uuid", fee_trade)
    assert (await _failures(url)).get("each fee charge that took something has its fee trade") == [
        charge
    ]


async def test_a_levy_on_a_trade_that_is_not_posted_is_found(
    levied: tuple[str, str, str],
) -> None:
    url, _, charge = levied
    await _tamper(
        url,
        "UPDATE trades SET status = 'voided', posted_amount = NULL"
        " WHERE id = (SELECT cause_trade_id FROM fee_charges WHERE id = $1::text::bigint)",
        charge,
    )
    assert (await _failures(url)).get("each levy was charged on a posted trade of its network") == [
        charge
    ]
