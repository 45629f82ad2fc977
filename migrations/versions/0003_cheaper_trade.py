"""A cheaper trade inside PostgreSQL, with every invariant still held by the database.

Measured with callgrind (instructions per trade, deterministic; bench/README.md "Instructions
per trade"), one mc_create_trade per statement, 100k trades of history:

- Single-column CHECK constraints become domains. PostgreSQL rebuilds every CHECK constraint of
  a table from its stored text for each statement that writes the table (stringToNode, then
  expression planning): a trade paid that for 17 constraints on trades and accounts, a quarter
  of its instructions, although a trade writes none of the accounts' settings. A domain's check
  is parsed once per session (the type cache) and runs only where a value of the domain is
  written: a booking writes balances, so the accounts' code, kind, status and limit checks no
  longer run for it. Multi-column checks stay table constraints.
- The audit trigger builds the row's JSON once (it built it twice) and reads the actor and the
  reason inline instead of through two PL/pgSQL calls.
- mc_create_trade answers a new trade from the row it inserted, instead of reading it back
  through the trade_details view, and books a direct trade inline instead of calling mc_book.
- The zero-sum statement trigger on accounts no longer joins old and new rows to refuse a move
  to another network: a row trigger on UPDATE OF network_id does, and a booking never names it.

The columns change type without a table rewrite: each domain is created without its check, the
columns take it (binary compatible: no rewrite, and indexes are kept, except the partial indexes
whose predicate names a changed column, the pending trades' three, which are rebuilt), then the
check is added, which scans the rows once (they already satisfy it: the same condition was a
table constraint). Checked on PostgreSQL 15 with pg_relation_filenode before and after.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import re
from collections.abc import Sequence
from types import ModuleType

from alembic import op

from mutualcredit.migrate import migration_module

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_AMOUNT = "9007199254740991"

# domain: (base type, its check, [(table, column, the table constraint it replaces)])
DOMAINS: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "account_code": (
        "text",
        "VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'",
        [("accounts", "code", "accounts_code_format_check")],
    ),
    "account_kind": (
        "text",
        "VALUE IN ('member', 'system', 'link')",
        [("accounts", "kind", "accounts_kind_valid_check")],
    ),
    "account_status": (
        "text",
        "VALUE IN ('active', 'suspended', 'closed')",
        [("accounts", "status", "accounts_status_valid_check")],
    ),
    "limit_amount": (
        "bigint",
        f"VALUE BETWEEN 0 AND {MAX_AMOUNT}",
        [
            ("accounts", "credit_limit", "accounts_credit_limit_range_check"),
            ("accounts", "balance_max", "accounts_balance_max_range_check"),
            ("accounts", "revert_credit_limit", "accounts_revert_range_check"),
            ("accounts", "revert_balance_max", "accounts_revert_range_check"),
        ],
    ),
    "pending_amount": (
        "bigint",
        "VALUE >= 0",
        [
            ("accounts", "pending_debits", "accounts_pending_nonnegative_check"),
            ("accounts", "pending_credits", "accounts_pending_nonnegative_check"),
        ],
    ),
    "trade_amount": (
        "bigint",
        f"VALUE BETWEEN 1 AND {MAX_AMOUNT}",
        [("trades", "amount", "trades_amount_range_check")],
    ),
    "trade_status": (
        "text",
        "VALUE IN ('pending', 'posted', 'voided', 'expired')",
        [("trades", "status", "trades_status_valid_check")],
    ),
    "trade_kind": (
        "text",
        "VALUE IN ('transfer', 'reversal', 'write_off', 'request', 'federation', 'settlement')",
        [("trades", "kind", "trades_kind_valid_check")],
    ),
    "entry_amount": (
        "bigint",
        "VALUE <> 0",
        [("entries", "amount", "entries_amount_nonzero_check")],
    ),
}

# What depends on the columns' types and must be dropped around the change, then re-created
# exactly as 0001 wrote it.
DEPENDENT_TRIGGERS = (
    ("accounts_limits", "accounts"),
    ("accounts_limit_history", "accounts"),
    ("accounts_audit", "accounts"),
)

NETWORK_FIXED = r"""
-- An account never moves to another network (its balance would move money between networks).
-- A row trigger on UPDATE OF network_id: a booking never names the column, so never pays for it.
CREATE FUNCTION mc_accounts_network_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an account cannot move to another network'
        USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';
END $$;
CREATE TRIGGER accounts_network_fixed BEFORE UPDATE OF network_id ON accounts
    FOR EACH ROW WHEN (OLD.network_id IS DISTINCT FROM NEW.network_id)
    EXECUTE FUNCTION mc_accounts_network_fixed();
"""

DROP_NETWORK_FIXED = """
DROP TRIGGER accounts_network_fixed ON accounts;
DROP FUNCTION mc_accounts_network_fixed();
"""


def _baseline() -> ModuleType:
    """Migration 0001: the texts of its triggers and view (re-created as they were) and its
    script runner."""
    return migration_module("0001_core_ledger.py")


def _baseline_text(pattern: str) -> str:
    match = re.search(pattern, _baseline().TRIGGERS_AND_FUNCTIONS, re.S)
    assert match is not None, pattern
    return match.group(0)


def _function(name: str) -> str:
    """0001's text of a function, as CREATE OR REPLACE (0002's reader of it)."""
    text: str = migration_module("0002_federation.py")._function(name)
    return text


def _changed(sql: str, old: str, new: str) -> str:
    """Replaces `old` (which must be there, once) in a function's text."""
    assert sql.count(old) == 1, old
    return sql.replace(old, new)


def _audit_change() -> str:
    sql = _function("mc_audit_change")
    sql = _changed(
        sql,
        "    IF TG_OP <> 'INSERT' THEN v_before := to_jsonb(OLD) - TG_ARGV; END IF;\n"
        "    IF TG_OP <> 'DELETE' THEN v_after := to_jsonb(NEW) - TG_ARGV; END IF;\n",
        "    -- The row as JSON, built once: it gives the record's after (or before) and its ids.\n"
        "    IF TG_OP = 'DELETE' THEN v_row := to_jsonb(OLD); ELSE v_row := to_jsonb(NEW); END IF;\n"
        "    IF TG_OP = 'UPDATE' THEN v_before := to_jsonb(OLD) - TG_ARGV;\n"
        "    ELSIF TG_OP = 'DELETE' THEN v_before := v_row - TG_ARGV;\n"
        "    END IF;\n"
        "    IF TG_OP <> 'DELETE' THEN v_after := v_row - TG_ARGV; END IF;\n",
    )
    sql = _changed(sql, "    v_row := coalesce(to_jsonb(NEW), to_jsonb(OLD));\n", "")
    # mc_actor() and mc_reason(), inline: two PL/pgSQL calls per record saved.
    sql = _changed(
        sql,
        "clock_timestamp(), mc_actor(), v_action, v_subject,",
        "clock_timestamp(),\n"
        "            coalesce(nullif(current_setting('mutualcredit.actor', true), ''),\n"
        "                     'sql:' || session_user),\n"
        "            v_action, v_subject,",
    )
    return _changed(
        sql,
        "            mc_reason(), v_before, v_after);",
        "            nullif(current_setting('mutualcredit.reason', true), ''), v_before, v_after);",
    )


def _accounts_zero_sum() -> str:
    return _changed(
        _function("mc_accounts_zero_sum"),
        "    IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n USING (id)\n"
        "               WHERE n.network_id <> o.network_id) THEN\n"
        "        RAISE EXCEPTION 'an account cannot move to another network'\n"
        "            USING ERRCODE = 'check_violation', TABLE = 'accounts',"
        " CONSTRAINT = 'accounts_zero_sum';\n"
        "    END IF;\n",
        "    -- (A move to another network is refused by accounts_network_fixed.)\n",
    )


def _create_trade() -> str:
    sql = _function("mc_create_trade")
    sql = _changed(
        sql, "    v_trade_id uuid;\n", "    v_trade_id uuid;\n    v_trade trades%ROWTYPE;\n"
    )
    sql = _changed(
        sql,
        "    RETURNING id INTO v_trade_id;",
        "    RETURNING * INTO v_trade;\n    v_trade_id := v_trade.id;",
    )
    # Booked inline (mc_book's statement, with no hold to release): one PL/pgSQL call saved.
    sql = _changed(
        sql,
        "        PERFORM mc_book(p_network_id, v_trade_id, v_payer.id, v_payee.id, p_amount, 0, v_now);",
        "        WITH moved AS (\n"
        "            UPDATE accounts a\n"
        "            SET balance = a.balance\n"
        "                          + CASE WHEN a.id = v_payer.id THEN -p_amount ELSE p_amount END\n"
        "            WHERE a.id IN (v_payer.id, v_payee.id)\n"
        "            RETURNING a.id, a.balance\n"
        "        )\n"
        "        INSERT INTO entries (network_id, trade_id, account_id, amount, balance_after,\n"
        "                             booked_at)\n"
        "        SELECT p_network_id, v_trade_id, moved.id,\n"
        "               CASE WHEN moved.id = v_payer.id THEN -p_amount ELSE p_amount END,\n"
        "               moved.balance, v_now\n"
        "        FROM moved;",
    )
    # The answer is built from the row just inserted: the same JSON as mc_trade_json (the
    # trade_details view without network_id), with no query. A new trade is reversed by none.
    return _changed(
        sql,
        "    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb, mc_trade_json(v_trade_id);",
        "    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb,\n"
        "        (to_jsonb(v_trade) - ARRAY['network_id', 'request_hash', 'payer_id', 'payee_id'])\n"
        "        || jsonb_build_object('payer', v_payer.code, 'payee', v_payee.code,\n"
        "                              'reversed_by', NULL);",
    )


def _trigger(name: str) -> str:
    return _baseline_text(rf"CREATE TRIGGER {name}\b.*?;")


def _view() -> str:
    return _baseline_text(r"CREATE VIEW trade_details AS.*?;")


def _replaced_checks() -> dict[str, tuple[str, str]]:
    """The table constraints the domains replace, for the downgrade: each domain's check on each
    of its columns, ANDed per constraint. Equivalent to what 0001 and 0002 wrote: where they
    spelled out `col IS NULL OR ...`, a CHECK that evaluates to NULL passes anyway."""
    parts: dict[str, tuple[str, list[str]]] = {}
    for _, check, columns in DOMAINS.values():
        for table, column, name in columns:
            parts.setdefault(name, (table, []))[1].append(f"({check.replace('VALUE', column)})")
    return {name: (table, " AND ".join(conditions)) for name, (table, conditions) in parts.items()}


def _drop_dependents() -> None:
    op.execute("DROP VIEW trade_details")
    for name, table in DEPENDENT_TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")


def _create_dependents() -> None:
    for name, _ in DEPENDENT_TRIGGERS:
        op.execute(_trigger(name))
    op.execute(_view())


def upgrade() -> None:
    _drop_dependents()
    for domain, (base, check, columns) in DOMAINS.items():
        op.execute(f"CREATE DOMAIN {domain} AS {base}")
        for table, column, replaced in columns:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {replaced}")
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {domain}")
        op.execute(f"ALTER DOMAIN {domain} ADD CONSTRAINT {domain}_check CHECK ({check})")
    _create_dependents()
    op.execute(_audit_change())
    op.execute(_accounts_zero_sum())
    op.execute(_create_trade())
    _baseline()._execute_script(NETWORK_FIXED)


def downgrade() -> None:
    _baseline()._execute_script(DROP_NETWORK_FIXED)
    for name in ("mc_create_trade", "mc_accounts_zero_sum", "mc_audit_change"):
        op.execute(_function(name))
    _drop_dependents()
    for domain, (base, _, columns) in DOMAINS.items():
        for table, column, _replaced in columns:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {base}")
        op.execute(f"DROP DOMAIN {domain}")
    for name, (table, condition) in _replaced_checks().items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})")
    _create_dependents()
