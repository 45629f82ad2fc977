"""Federation: node keys, links, transfers (the outbox), nonces, checkpoints, settlements.

What PostgreSQL keeps here (see src/mutualcredit/federation/models.py):
- accounts of kind 'link' (the other network, with the trust caps as limits) and trades of kinds
  'federation' and 'settlement' (the holds and bookings of cross-network trades);
- a federated hold is finished only by the federation protocol (mc_finish_hold, which sets
  mutualcredit.federation), never by a member's post or void nor by the expiry sweeper: its
  outcome is decided by the destination, and the origin must wait for it, however late;
- a transfer is final once accepted or refused; transfers, checkpoints and settlements are
  never deleted; a node's private key never appears in the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import re
from collections.abc import Sequence
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mutualcredit.migrate import migration_module

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FEDERATED = "('federation', 'settlement')"

FUNCTIONS = r"""
-- Federated holds are finished by mc_finish_hold only (it sets mutualcredit.federation).
CREATE FUNCTION mc_trades_guard_federated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.kind IN ('federation', 'settlement')
       AND coalesce(current_setting('mutualcredit.federation', true), '') <> 'on' THEN
        RAISE EXCEPTION 'trade % is a cross-network trade: only the federation protocol finishes it', OLD.id
            USING ERRCODE = 'restrict_violation', TABLE = 'trades',
                  CONSTRAINT = 'trades_federated';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trades_federated BEFORE UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION mc_trades_guard_federated();

-- A transfer changes while in flight; once accepted or refused it is final. What it is (ids,
-- parties, amounts, rate, expiry) never changes.
CREATE FUNCTION mc_transfers_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('accepted', 'refused')
       OR (NEW.id, NEW.network_id, NEW.transfer_id, NEW.link_id, NEW.direction, NEW.kind,
           NEW.payer_address, NEW.payee_address, NEW.amount_sent, NEW.amount_received,
           NEW.rate_num, NEW.rate_den, NEW.rate_version, NEW.reference, NEW.expires_at,
           NEW.request_hash, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.network_id, OLD.transfer_id, OLD.link_id, OLD.direction, OLD.kind,
           OLD.payer_address, OLD.payee_address, OLD.amount_sent, OLD.amount_received,
           OLD.rate_num, OLD.rate_den, OLD.rate_version, OLD.reference, OLD.expires_at,
           OLD.request_hash, OLD.created_at) THEN
        RAISE EXCEPTION 'transfer % is final, or the change touches what it is', OLD.transfer_id
            USING ERRCODE = 'restrict_violation', TABLE = 'transfers',
                  CONSTRAINT = 'transfers_final';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER transfers_final BEFORE UPDATE ON transfers
    FOR EACH ROW EXECUTE FUNCTION mc_transfers_guard_update();
CREATE TRIGGER transfers_append_only BEFORE DELETE OR TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
CREATE TRIGGER link_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON link_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
CREATE TRIGGER settlements_append_only BEFORE DELETE OR TRUNCATE ON settlements
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
CREATE TRIGGER links_append_only BEFORE DELETE OR TRUNCATE ON links
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
CREATE TRIGGER node_keys_append_only BEFORE DELETE OR TRUNCATE ON node_keys
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

-- The audit log covers federation too (never a private key; not every delivery attempt).
CREATE TRIGGER links_audit AFTER INSERT OR UPDATE ON links
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('in_seq', 'in_hash');
CREATE TRIGGER node_keys_audit AFTER INSERT OR UPDATE ON node_keys
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('sealed_private_key');
CREATE TRIGGER transfers_audit AFTER INSERT OR UPDATE OF status ON transfers
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change(
        'request_hash', 'attempts', 'next_attempt_at', 'last_error', 'receipt_signature');

-- mc_finish_hold: posts (in full) or voids a federated hold, whatever its expiry says: the
-- destination decided before its own expiry, and the origin only learns it now. Posting a hold
-- never moves an account nearer a limit (the hold reserved it), so no limit can refuse it; an
-- account suspended since must still honour what crossed. Idempotent: a final trade is left as
-- it is. Lock order as every writer: accounts by id, then the trade.
CREATE FUNCTION mc_finish_hold(p_trade_id uuid, p_post boolean, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_trade trades%ROWTYPE;
    v_now timestamptz;
BEGIN
    PERFORM set_config('mutualcredit.actor', p_actor, true);
    SELECT * INTO v_trade FROM trades WHERE id = p_trade_id;
    IF NOT FOUND OR v_trade.kind NOT IN ('federation', 'settlement') THEN
        RAISE EXCEPTION 'no federated hold %', p_trade_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM 1 FROM accounts a WHERE a.id IN (v_trade.payer_id, v_trade.payee_id)
    ORDER BY a.id FOR UPDATE;
    SELECT * INTO v_trade FROM trades WHERE id = p_trade_id FOR UPDATE;
    IF v_trade.status <> 'pending' THEN
        RETURN v_trade.status;
    END IF;
    v_now := clock_timestamp();
    PERFORM set_config('mutualcredit.federation', 'on', true);
    IF p_post THEN
        PERFORM mc_book(v_trade.network_id, p_trade_id, v_trade.payer_id, v_trade.payee_id,
                        v_trade.amount, v_trade.amount, v_now);
        UPDATE trades SET status = 'posted', posted_amount = v_trade.amount, resolved_at = v_now
        WHERE id = p_trade_id;
    ELSE
        PERFORM mc_release_hold(v_trade, 'voided', v_now);
    END IF;
    PERFORM set_config('mutualcredit.federation', 'off', true);
    RETURN CASE WHEN p_post THEN 'posted' ELSE 'voided' END;
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION mc_finish_hold(uuid, boolean, text);
DROP TRIGGER transfers_audit ON transfers;
DROP TRIGGER node_keys_audit ON node_keys;
DROP TRIGGER links_audit ON links;
DROP TRIGGER node_keys_append_only ON node_keys;
DROP TRIGGER links_append_only ON links;
DROP TRIGGER settlements_append_only ON settlements;
DROP TRIGGER link_checkpoints_append_only ON link_checkpoints;
DROP TRIGGER transfers_append_only ON transfers;
DROP TRIGGER transfers_final ON transfers;
DROP FUNCTION mc_transfers_guard_update();
DROP TRIGGER trades_federated ON trades;
DROP FUNCTION mc_trades_guard_federated();
"""

# The expiry of overdue holds must pass federated holds by (their outcome is the destination's
# to decide): the two expiry functions of 0001 gain one condition. Taken from 0001's text, so the
# downgrade restores exactly what 0001 created.
_EXPIRING = ("mc_expire_holds_of", "mc_expire_overdue")


def _baseline() -> ModuleType:
    """Migration 0001 itself: its function texts (restored by the downgrade) and its script
    runner (asyncpg prepares one command at a time, so scripts are split first)."""
    return migration_module("0001_core_ledger.py")


def _function(name: str) -> str:
    match = re.search(
        rf"CREATE FUNCTION {name}\(.*?\nEND \$\$;", _baseline().TRIGGERS_AND_FUNCTIONS, re.S
    )
    assert match is not None, name
    return match.group(0).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _passing_federated_holds(sql: str) -> str:
    changed = sql.replace(
        "WHERE t.status = 'pending' AND t.expires_at <= v_now",
        f"WHERE t.status = 'pending' AND t.expires_at <= v_now AND t.kind NOT IN {FEDERATED}",
    )
    assert changed != sql
    return changed


def _execute_script(script: str) -> None:
    _baseline()._execute_script(script)


def _replace_check(table: str, name: str, condition: str) -> None:
    op.drop_constraint(op.f(name), table, type_="check")
    op.create_check_constraint(op.f(name), table, condition)


def upgrade() -> None:
    op.create_table(
        "node_keys",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_private_key", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'retired')", name=op.f("node_keys_status_valid_check")
        ),
        sa.CheckConstraint(
            "length(public_key) = 32", name=op.f("node_keys_public_key_length_check")
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("node_keys_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("node_keys_pkey")),
        sa.UniqueConstraint("key_id", name=op.f("node_keys_key_id_key")),
    )
    op.create_index(
        op.f("node_keys_one_active_per_network_idx"),
        "node_keys",
        ["network_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("peer_code", sa.Text(), nullable=False),
        sa.Column("peer_url", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="proposed", nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("settlement_account_id", sa.Uuid(), nullable=False),
        sa.Column("rate_num", sa.BigInteger(), nullable=False),
        sa.Column("rate_den", sa.BigInteger(), nullable=False),
        sa.Column("rate_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("default_route", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("in_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("in_hash", sa.LargeBinary(), nullable=True),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "peer_code ~ '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$'",
            name=op.f("links_peer_code_format_check"),
        ),
        sa.CheckConstraint(
            "status <> 'active' OR agreed_at IS NOT NULL", name=op.f("links_agreed_to_run_check")
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'active', 'suspended')", name=op.f("links_status_valid_check")
        ),
        sa.CheckConstraint(
            "rate_num BETWEEN 1 AND 9007199254740991 AND rate_den BETWEEN 1 AND 9007199254740991",
            name=op.f("links_rate_positive_check"),
        ),
        sa.CheckConstraint("rate_version >= 1", name=op.f("links_rate_version_positive_check")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("links_account_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("links_network_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["settlement_account_id"],
            ["accounts.id"],
            name=op.f("links_settlement_account_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("links_pkey")),
        sa.UniqueConstraint("account_id", name=op.f("links_account_id_key")),
        sa.UniqueConstraint("network_id", "peer_code", name=op.f("links_network_id_peer_code_key")),
    )
    op.create_table(
        "federation_nonces",
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("federation_nonces_link_id_fkey")
        ),
        sa.PrimaryKeyConstraint("link_id", "nonce", name=op.f("federation_nonces_pkey")),
    )
    op.create_table(
        "link_checkpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("signatures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("link_checkpoints_link_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("link_checkpoints_pkey")),
    )
    op.create_table(
        "link_peer_keys",
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'revoked')", name=op.f("link_peer_keys_status_valid_check")
        ),
        sa.CheckConstraint(
            "length(public_key) = 32", name=op.f("link_peer_keys_public_key_length_check")
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("link_peer_keys_link_id_fkey")
        ),
        sa.PrimaryKeyConstraint("link_id", "key_id", name=op.f("link_peer_keys_pkey")),
    )
    op.create_table(
        "settlements",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('agreed', 'sent', 'executed', 'refused')",
            name=op.f("settlements_status_valid_check"),
        ),
        sa.CheckConstraint(
            "amount BETWEEN 1 AND 9007199254740991", name=op.f("settlements_amount_range_check")
        ),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], name=op.f("settlements_link_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("settlements_pkey")),
        sa.UniqueConstraint("link_id", "reference", name=op.f("settlements_link_id_reference_key")),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("trade_id", sa.Uuid(), nullable=True),
        sa.Column("payer_address", sa.Text(), nullable=False),
        sa.Column("payee_address", sa.Text(), nullable=False),
        sa.Column("amount_sent", sa.BigInteger(), nullable=False),
        sa.Column("amount_received", sa.BigInteger(), nullable=False),
        sa.Column("rate_num", sa.BigInteger(), nullable=False),
        sa.Column("rate_den", sa.BigInteger(), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("refusal_code", sa.Text(), nullable=True),
        sa.Column("refusal_detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=True),
        sa.Column("receipt", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("receipt_signature", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'accepted') = (seq IS NOT NULL AND chain_hash IS NOT NULL)",
            name=op.f("transfers_accepted_in_chain_check"),
        ),
        sa.CheckConstraint(
            "(status IN ('accepted', 'refused')) = (resolved_at IS NOT NULL)",
            name=op.f("transfers_resolved_check"),
        ),
        sa.CheckConstraint(
            "direction IN ('in', 'out')", name=op.f("transfers_direction_valid_check")
        ),
        sa.CheckConstraint(
            "kind IN ('federation', 'settlement')", name=op.f("transfers_kind_valid_check")
        ),
        sa.CheckConstraint(
            "status IN ('prepared', 'forwarded', 'accepted', 'refused')",
            name=op.f("transfers_status_valid_check"),
        ),
        sa.CheckConstraint(
            "amount_sent BETWEEN 1 AND 9007199254740991 AND amount_received BETWEEN 0 AND 9007199254740991",
            name=op.f("transfers_amounts_range_check"),
        ),
        sa.CheckConstraint(
            "rate_num >= 1 AND rate_den >= 1", name=op.f("transfers_rate_positive_check")
        ),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], name=op.f("transfers_link_id_fkey")),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("transfers_network_id_fkey")
        ),
        sa.ForeignKeyConstraint(["trade_id"], ["trades.id"], name=op.f("transfers_trade_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("transfers_pkey")),
        sa.UniqueConstraint(
            "link_id", "direction", "seq", name=op.f("transfers_link_id_direction_seq_key")
        ),
        sa.UniqueConstraint(
            "network_id",
            "transfer_id",
            "direction",
            name=op.f("transfers_network_id_transfer_id_direction_key"),
        ),
    )
    op.create_index(
        op.f("transfers_outbox_idx"),
        "transfers",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("direction = 'out' AND status = 'prepared'"),
    )
    op.create_index(op.f("transfers_trade_id_idx"), "transfers", ["trade_id"], unique=False)

    _replace_check("accounts", "accounts_kind_valid_check", "kind IN ('member', 'system', 'link')")
    _replace_check(
        "trades",
        "trades_kind_valid_check",
        "kind IN ('transfer', 'reversal', 'write_off', 'request', 'federation', 'settlement')",
    )
    _execute_script(FUNCTIONS)
    for name in _EXPIRING:
        op.execute(_passing_federated_holds(_function(name)))


def downgrade() -> None:
    for name in _EXPIRING:
        op.execute(_function(name))
    _execute_script(DROP_FUNCTIONS)
    _replace_check(
        "trades",
        "trades_kind_valid_check",
        "kind IN ('transfer', 'reversal', 'write_off', 'request')",
    )
    _replace_check("accounts", "accounts_kind_valid_check", "kind IN ('member', 'system')")
    op.drop_index(op.f("transfers_trade_id_idx"), table_name="transfers")
    op.drop_index(
        op.f("transfers_outbox_idx"),
        table_name="transfers",
        postgresql_where=sa.text("direction = 'out' AND status = 'prepared'"),
    )
    op.drop_table("transfers")
    op.drop_table("settlements")
    op.drop_table("link_peer_keys")
    op.drop_table("link_checkpoints")
    op.drop_table("federation_nonces")
    op.drop_table("links")
    op.drop_index(
        op.f("node_keys_one_active_per_network_idx"),
        table_name="node_keys",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("node_keys")
