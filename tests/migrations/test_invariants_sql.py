"""Direct SQL, bypassing the service, cannot break the ledger's invariants: PostgreSQL itself
refuses. Each test attempts one breach and checks the database said no."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualcredit.federation import crypto
from tests.helpers import Api, Net, auth


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


async def test_an_account_cannot_move_to_another_network(api: Api, db: asyncpg.Connection) -> None:
    """Even an empty one: its history would then belong to a network it never traded in."""
    net, other = await _ledger(api), await _ledger(api)
    await api.account(net, "idle")
    other_id, _, _ = await _ids(db, other)
    with pytest.raises(asyncpg.CheckViolationError, match="another network") as exc:
        await db.execute(
            "UPDATE accounts SET network_id = $1 WHERE code = 'idle'"
            " AND network_id = (SELECT id FROM networks WHERE code = $2)",
            other_id,
            net.code,
        )
    assert exc.value.constraint_name == "accounts_zero_sum"


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        (
            "UPDATE accounts SET status = 'frozen' WHERE network_id = $1 AND id = $2",
            "account_status_check",
        ),
        (
            "UPDATE accounts SET kind = 'bank' WHERE network_id = $1 AND id = $2",
            "account_kind_check",
        ),
        (
            "UPDATE accounts SET code = 'no spaces' WHERE network_id = $1 AND id = $2",
            "account_code_check",
        ),
        (
            "UPDATE accounts SET credit_limit = -1 WHERE network_id = $1 AND id = $2",
            "limit_amount_check",
        ),
        (
            "UPDATE accounts SET balance_max = -1 WHERE network_id = $1 AND id = $2",
            "limit_amount_check",
        ),
        (
            "UPDATE accounts SET pending_debits = -1 WHERE network_id = $1 AND id = $2",
            "pending_amount_check",
        ),
        (
            "INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,"
            " expires_at, created_at, created_by)"
            " VALUES ($1, 'zero', '\\x00', $2, $3, 0, 'pending', now(), now(), 'sql')",
            "trade_amount_check",
        ),
        (
            "INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,"
            " expires_at, created_at, created_by)"
            " VALUES ($1, 'lost', '\\x00', $2, $3, 1, 'lost', now(), now(), 'sql')",
            "trade_status_check",
        ),
        (
            "INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,"
            " kind, expires_at, created_at, created_by)"
            " VALUES ($1, 'gift', '\\x00', $2, $3, 1, 'pending', 'gift', now(), now(), 'sql')",
            "trade_kind_check",
        ),
        (
            "INSERT INTO entries (network_id, trade_id, account_id, amount, balance_after,"
            " booked_at) SELECT $1, id, $2, 0, 0, now() FROM trades WHERE network_id = $1"
            " AND payer_id = $2 AND payee_id = $3",
            "entry_amount_check",
        ),
    ],
)
async def test_single_column_rules_are_domains_checked_on_every_write(
    api: Api, db: asyncpg.Connection, statement: str, constraint: str
) -> None:
    """Codes, kinds, statuses, limits, holds and amounts are domains: checked
    wherever such a value is written, by any SQL."""
    net = await _ledger(api)
    network_id, a, b = await _ids(db, net)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute(statement, *((network_id, a, b) if "$3" in statement else (network_id, a)))
    assert exc.value.constraint_name == constraint


async def test_a_new_trade_is_answered_exactly_as_it_reads_back(
    api: Api, db: asyncpg.Connection
) -> None:
    """mc_create_trade builds a new trade's JSON from the row it inserted; it must be the JSON
    every later read (replays, GET) builds from the trade_details view."""
    net = await _ledger(api)
    network_id, _, _ = await _ids(db, net)

    async def create(
        key: str, payer: str, payee: str, amount: int, **options: object
    ) -> asyncpg.Record:
        row = await db.fetchrow(
            "SELECT outcome, trade FROM mc_create_trade($1, $2, '\\x01', $3, $4, $5, $6, $7, $8,"
            " $9, $10, 'sql', $11, $12, $13, $14)",
            network_id,
            key,
            payer,
            payee,
            amount,
            options.get("pending", False),
            options.get("expires_at"),
            options.get("description", ""),
            options.get("external_ref"),
            options.get("metadata", "{}"),
            options.get("kind", "transfer"),
            options.get("reverses"),
            options.get("reason"),
            options.get("override", False),
        )
        assert row is not None
        return row

    first = await create(
        "json-1", "a", "b", 7, description="seeds", external_ref="inv-1", metadata='{"lot": [1]}'
    )
    first_id = uuid.UUID(json.loads(first["trade"])["id"])
    hour = datetime.now(UTC) + timedelta(hours=1)
    trades = [
        first,
        await create("json-2", "b", "a", 5, pending=True, expires_at=hour),
        await create("json-3", "a", "b", 500, reason="board decision", override=True),
        await create("json-4", "b", "a", 7, kind="reversal", reverses=first_id, reason="twice"),
    ]
    for row in trades:
        assert row["outcome"] == "created"
        answered = json.loads(row["trade"])
        read_back = json.loads(
            await db.fetchval("SELECT mc_trade_json($1)", uuid.UUID(answered["id"]))
        )
        assert answered["reversed_by"] is None
        assert answered == {**read_back, "reversed_by": None}
    # The original now reads back as reversed by the reversal: the one field a later read adds.
    reversal_id = json.loads(trades[3]["trade"])["id"]
    assert json.loads(await db.fetchval("SELECT mc_trade_json($1)", first_id))["reversed_by"] == (
        reversal_id
    )
    assert [json.loads(r["trade"])["kind"] for r in trades] == [
        "transfer",
        "transfer",
        "transfer",
        "reversal",
    ]
    assert json.loads(trades[2]["trade"])["limit_override"] is True
    assert json.loads(trades[1]["trade"])["status"] == "pending"
    assert json.loads(trades[0]["trade"])["amount"] == 7


async def _with_link_accounts(
    api: Api, db: asyncpg.Connection
) -> tuple[Net, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A network with members a and b and the two accounts of a link to `peer`, opened as
    creating a link opens them (the protocol says so for its transaction)."""
    net = await _ledger(api)
    network_id, a, _ = await _ids(db, net)
    async with db.transaction():
        await db.execute("SELECT set_config('mutualcredit.federation', 'on', true)")
        link, settlement = [
            await db.fetchval(
                "INSERT INTO accounts (network_id, code, kind, credit_limit)"
                " VALUES ($1, $2, $3, 1000) RETURNING id",
                network_id,
                code,
                kind,
            )
            for code, kind in (("link.peer", "link"), ("settlement.peer", "settlement"))
        ]
    return net, a, link, settlement


@pytest.mark.parametrize("reserved", ["link", "settlement"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET balance = balance + CASE WHEN id = $1 THEN -5 ELSE 5 END"
        " WHERE id IN ($1, $2)",
        "UPDATE accounts SET pending_debits = pending_debits + CASE WHEN id = $1 THEN 5 ELSE 0 END,"
        " pending_credits = pending_credits + CASE WHEN id = $2 THEN 5 ELSE 0 END"
        " WHERE id IN ($1, $2)",
        "UPDATE accounts SET balance = balance + CASE WHEN id = $2 THEN -5 ELSE 5 END"
        " WHERE id IN ($1, $2)",
        "UPDATE accounts SET status = 'suspended' WHERE id = $2 AND $1::uuid IS NOT NULL",
        "UPDATE accounts SET kind = 'system' WHERE id = $2 AND $1::uuid IS NOT NULL",
    ],
)
async def test_only_the_protocol_moves_a_links_accounts(
    api: Api, db: asyncpg.Connection, statement: str, reserved: str
) -> None:
    """A balanced update, a hold, a status or a kind: every writer but the protocol's own
    bookings is refused, by PostgreSQL."""
    _, a, link, settlement = await _with_link_accounts(api, db)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute(statement, a, link if reserved == "link" else settlement)
    assert exc.value.constraint_name == "accounts_protocol_only"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("link.other", "link"),
        ("settlement.other", "settlement"),
        ("link.other", "member"),
        ("settlement.other", "system"),
        ("other", "link"),
        ("other", "settlement"),
    ],
)
async def test_a_links_accounts_are_opened_by_the_protocol_only(
    api: Api, db: asyncpg.Connection, code: str, kind: str
) -> None:
    net = await _ledger(api)
    network_id, _, _ = await _ids(db, net)
    with pytest.raises(asyncpg.CheckViolationError) as exc:
        await db.execute(
            "INSERT INTO accounts (network_id, code, kind, credit_limit) VALUES ($1, $2, $3, 0)",
            network_id,
            code,
            kind,
        )
    assert exc.value.constraint_name == "accounts_protocol_only"


async def test_an_account_never_becomes_one_of_a_link(api: Api, db: asyncpg.Connection) -> None:
    net = await _ledger(api)
    _, a, _ = await _ids(db, net)
    async with db.transaction():
        await db.execute("SELECT set_config('mutualcredit.federation', 'on', true)")
        with pytest.raises(asyncpg.CheckViolationError) as exc:
            await db.execute("UPDATE accounts SET kind = 'link' WHERE id = $1", a)
    assert exc.value.constraint_name == "accounts_protocol_only"


@pytest.mark.parametrize("kind", ["transfer", "reversal", "write_off", "request"])
@pytest.mark.parametrize(("payer", "payee"), [("a", "link.peer"), ("settlement.peer", "b")])
async def test_a_trade_of_the_ledger_cannot_name_a_links_account(
    api: Api, db: asyncpg.Connection, kind: str, payer: str, payee: str
) -> None:
    """mc_create_trade refuses it for every kind but the protocol's own, recorded under the
    key; a booking of kind federation between the same accounts goes through."""
    net, _, _, _ = await _with_link_accounts(api, db)
    network_id, _, _ = await _ids(db, net)
    reverses = None
    if kind == "reversal":
        reverses = await db.fetchval("SELECT id FROM trades WHERE network_id = $1", network_id)

    async def book(key: str, kind: str) -> asyncpg.Record:
        return await db.fetchrow(
            "SELECT outcome, problem_code, problem_detail FROM mc_create_trade($1, $2, '\\x01',"
            " $3, $4, 5, false, NULL, '', NULL, '{}', 'sql', $5, $6, 'why', true)",
            network_id,
            key,
            payer,
            payee,
            kind,
            reverses,
        )

    refused = await book("k1", kind)
    assert (refused["outcome"], refused["problem_code"]) == ("rejected", "account_reserved")
    assert json.loads(refused["problem_detail"]) == {
        "account": payer if payer.startswith("settlement.") else payee
    }
    assert (await book("k1", kind))["outcome"] == "replayed"
    if kind == "transfer":
        assert (await book("k2", "federation"))["outcome"] == "created"


async def test_a_retired_peer_key_is_never_trusted_again(api: Api, db: asyncpg.Connection) -> None:
    """A peer's key is on record for good, and once the peer rotated it away its expiry only
    comes closer: no UPDATE brings it back, and none deletes it (trigger link_peer_keys_guard)."""
    net = await api.network()
    public = crypto.b64e(Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    r = await api.client.post(
        f"{net.base}/federation/links",
        json={
            "peer": "riverside",
            "peer_url": "https://riverside.example",
            "peer_key": {"key_id": "riverside.1", "public_key": public},
            "rate": {"num": 1, "den": 1},
            "credit_limit": 10,
            "balance_max": 10,
        },
        headers=auth(net.operator),
    )
    assert r.status_code == 201, r.text
    key = (
        "FROM link_peer_keys k JOIN links l ON l.id = k.link_id JOIN networks n"
        " ON n.id = l.network_id WHERE n.code = $1 AND k.key_id = 'riverside.1'"
    )
    where = f"(link_id, key_id) IN (SELECT k.link_id, k.key_id {key})"
    await db.execute(
        f"UPDATE link_peer_keys SET expires_at = now() + interval '1 hour' WHERE {where}", net.code
    )
    # Closer is allowed; later, never, nor no expiry at all, nor another public key.
    await db.execute(f"UPDATE link_peer_keys SET expires_at = now() WHERE {where}", net.code)
    for change in (
        "expires_at = now() + interval '1 day'",
        "expires_at = NULL",
        "public_key = decode(repeat('00', 32), 'hex')",
    ):
        with pytest.raises(asyncpg.RestrictViolationError) as exc:
            await db.execute(f"UPDATE link_peer_keys SET {change} WHERE {where}", net.code)
        assert exc.value.constraint_name == "link_peer_keys_guard"
    with pytest.raises(asyncpg.RestrictViolationError) as exc:
        await db.execute(f"DELETE FROM link_peer_keys WHERE {where}", net.code)
    assert exc.value.constraint_name == "link_peer_keys_guard"
    assert await db.fetchval(f"SELECT count(*) {key}", net.code) == 1
