"""Direct SQL, bypassing the service, cannot break the ledger's invariants: PostgreSQL itself
refuses. Each test attempts one breach and checks the database said no."""

import uuid

import asyncpg
import pytest

from tests.helpers import Api, Net


async def _ledger(api: Api) -> Net:
    net = await api.network()
    await api.account(net, "a", credit_limit=100)
    await api.account(net, "b", balance_max=1000)
    assert (await api.pay(net, "a", "b", 40)).status_code == 201
    return net


async def _ids(db: asyncpg.Connection, net: Net) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    row = await db.fetchrow(
        "SELECT n.id, (SELECT id FROM accounts WHERE network_id = n.id AND code = 'a'),"
        " (SELECT id FROM accounts WHERE network_id = n.id AND code = 'b')"
        " FROM networks n WHERE n.code = $1",
        net.code,
    )
    return row[0], row[1], row[2]


async def test_money_cannot_be_created_by_updating_one_balance(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await _ledger(api)
    _, a, _ = await _ids(db, net)
    with pytest.raises(asyncpg.CheckViolationError, match="sum") as exc:
        await db.execute("UPDATE accounts SET balance = balance + 10 WHERE id = $1", a)
    assert exc.value.constraint_name == "accounts_zero_sum"


async def test_a_hold_cannot_be_made_up_on_one_side(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    _, a, _ = await _ids(db, net)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute("UPDATE accounts SET pending_debits = 5 WHERE id = $1", a)
    assert exc.value.constraint_name == "accounts_zero_sum"


async def test_a_balanced_update_cannot_push_an_account_past_its_credit_limit(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await _ledger(api)
    _, a, b = await _ids(db, net)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute(
            "UPDATE accounts SET balance = balance + CASE WHEN id = $1 THEN -500 ELSE 500 END"
            " WHERE id IN ($1, $2)",
            a,
            b,
        )
    assert exc.value.constraint_name in {"accounts_credit_limit", "accounts_balance_max"}


async def test_a_limit_change_needs_a_reason_even_by_sql(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    _, a, _ = await _ids(db, net)
    with pytest.raises(asyncpg.NotNullViolationError, match="reason"):
        await db.execute("UPDATE accounts SET credit_limit = 500 WHERE id = $1", a)
    async with db.transaction():
        await db.execute("SELECT set_config('mutualcredit.reason', 'board decision', true)")
        await db.execute("UPDATE accounts SET credit_limit = 500 WHERE id = $1", a)
    change = await db.fetchrow(
        "SELECT * FROM limit_changes WHERE account_id = $1 ORDER BY id DESC LIMIT 1", a
    )
    assert (change["kind"], change["credit_limit_before"], change["credit_limit_after"]) == (
        "set",
        100,
        500,
    )
    assert (change["reason"], change["actor"]) == ("board decision", "sql:postgres")


async def test_below_a_lowered_limit_an_account_can_only_recover(
    api: Api, db: asyncpg.Connection
) -> None:
    """b holds 40; lowering its balance_max to 10 is allowed, but it can receive no more."""
    net = await _ledger(api)
    _, a, b = await _ids(db, net)
    async with db.transaction():
        await db.execute("SELECT set_config('mutualcredit.reason', 'cap', true)")
        await db.execute("UPDATE accounts SET balance_max = 10 WHERE id = $1", b)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute(
            "UPDATE accounts SET balance = balance + CASE WHEN id = $1 THEN -1 ELSE 1 END"
            " WHERE id IN ($1, $2)",
            a,
            b,
        )
    assert exc.value.constraint_name == "accounts_balance_max"
    # Moving back toward the limit is allowed (rolled back: a balance moved without entries
    # would, rightly, fail the ledger audit at the end of the session).
    recovery = db.transaction()
    await recovery.start()
    status = await db.execute(
        "UPDATE accounts SET balance = balance + CASE WHEN id = $1 THEN 1 ELSE -1 END"
        " WHERE id IN ($1, $2)",
        a,
        b,
    )
    await recovery.rollback()
    assert status == "UPDATE 2"


async def test_an_account_cannot_open_with_money(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    network_id, _, _ = await _ids(db, net)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute(
            "INSERT INTO accounts (network_id, code, kind, credit_limit, balance)"
            " VALUES ($1, 'rich', 'member', 0, 1000)",
            network_id,
        )
    assert exc.value.constraint_name == "accounts_zero_sum"


async def test_unbalanced_entries_are_refused(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    third = await api.account(net, "c")
    network_id, _, _ = await _ids(db, net)
    trade_id = await db.fetchval("SELECT id FROM trades WHERE network_id = $1", network_id)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute(
            "INSERT INTO entries (network_id, trade_id, account_id, amount, balance_after,"
            " booked_at) VALUES ($1, $2, $3, 5, 5, now())",
            network_id,
            trade_id,
            uuid.UUID(third["id"]),
        )
    assert exc.value.constraint_name == "entries_zero_sum"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET amount = amount * 2 WHERE network_id = $1",
        "DELETE FROM entries WHERE network_id = $1",
        "DELETE FROM trades WHERE network_id = $1",
        "DELETE FROM accounts WHERE network_id = $1",
        "DELETE FROM trade_rejections WHERE network_id = $1",
    ],
)
async def test_history_cannot_be_edited_or_deleted(
    api: Api, db: asyncpg.Connection, statement: str
) -> None:
    net = await _ledger(api)
    network_id, _, _ = await _ids(db, net)
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await db.execute(statement, network_id)


@pytest.mark.parametrize("table", ["entries", "trades", "accounts", "trade_rejections"])
async def test_ledger_tables_cannot_be_truncated(db: asyncpg.Connection, table: str) -> None:
    async with db.transaction():
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await db.execute(f"TRUNCATE {table} CASCADE")


async def test_a_posted_trade_is_final(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    network_id, _, _ = await _ids(db, net)
    for change in ("amount = 1", "status = 'voided', posted_amount = NULL", "description = 'x'"):
        with pytest.raises(asyncpg.RestrictViolationError) as exc:
            await db.execute(f"UPDATE trades SET {change} WHERE network_id = $1", network_id)
        assert exc.value.constraint_name == "trades_final"


async def test_a_pending_trade_changes_only_its_status(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    r = await api.pay(net, "a", "b", 5, pending=True)
    trade_id = uuid.UUID(r.json()["id"])
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute("UPDATE trades SET amount = 1 WHERE id = $1", trade_id)
    with pytest.raises(asyncpg.RestrictViolationError):
        await db.execute("UPDATE trades SET status = 'pending' WHERE id = $1", trade_id)


async def test_a_trade_key_is_unique_in_its_network(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    network_id, a, b = await _ids(db, net)
    key = await db.fetchval("SELECT key FROM trades WHERE network_id = $1", network_id)
    with pytest.raises(asyncpg.UniqueViolationError) as exc:
        await db.execute(
            "INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount,"
            " status, expires_at, created_at, created_by)"
            " VALUES ($1, $2, '\\x00', $3, $4, 1, 'pending', now(), now(), 'sql')",
            network_id,
            key,
            a,
            b,
        )
    assert exc.value.constraint_name == "trades_network_id_key_key"


async def test_a_trade_cannot_cross_networks(api: Api, db: asyncpg.Connection) -> None:
    net, other = await _ledger(api), await _ledger(api)
    network_id, a, _ = await _ids(db, net)
    _, _, foreign = await _ids(db, other)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            "INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount,"
            " status, expires_at, created_at, created_by) VALUES ($1, 'cross', '\\x00', $2, $3, 1,"
            " 'pending', now(), now(), 'sql')",
            network_id,
            a,
            foreign,
        )


async def test_a_network_scale_and_code_are_fixed(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    for change in ("scale = 3", "code = 'renamed'"):
        with pytest.raises(asyncpg.RestrictViolationError) as exc:
            await db.execute(f"UPDATE networks SET {change} WHERE code = $1", net.code)
        assert exc.value.constraint_name == "networks_fixed"


async def test_a_closed_account_holds_nothing(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    _, a, _ = await _ids(db, net)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute("UPDATE accounts SET status = 'closed' WHERE id = $1", a)
    assert exc.value.constraint_name == "accounts_closed_empty_check"
