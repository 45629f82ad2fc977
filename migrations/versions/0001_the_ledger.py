"""The ledger: every table, domain, constraint and index, and the functions, triggers and view
that enforce the ledger's rules inside PostgreSQL, so that no code path (and no direct SQL) can
break them. The rules and where each is kept (docs/design.md has the full table):

- zero sum: each trade's entries sum to zero (statement trigger entries_zero_sum); a network's
  balances sum to zero and its pending debits equal its pending credits (statement trigger
  accounts_zero_sum); accounts open empty and never move to another network;
- limits: no write takes an account beyond balance - pending_debits >= -credit_limit or
  balance + pending_credits <= balance_max, nor further beyond (row trigger accounts_limits,
  which compares each update with the row it replaces: it holds under any interleaving);
- history: entries, rejections, limit changes, audit records, transfers and checkpoints never
  change, trades and payment requests change once, and no ledger row is deleted (triggers);
  every change of limits is recorded with its reason (triggers *_limit_history);
- idempotency: a trade key is unique per network, for bookings and for remembered refusals
  (unique constraints on trades and trade_rejections, an advisory lock per key);
- audit: every state change of a network appends a record (triggers *_audit), chained later
  by the sealer;
- federation: a federated hold is finished only by the federation protocol; a transfer is
  final once decided.
Codes, kinds, statuses and amounts are domains, each with one check, rather than table CHECK
constraints: PostgreSQL rebuilds a table's CHECK constraints for every statement that writes the
table, and a domain's check only where a value of the domain is written.

The write path is the booking functions (mc_create_trade, mc_create_trades, mc_resolve_trade,
mc_finish_hold, the expiry sweepers): one call per request, accounts locked in id order, no client
code in between.

Each function, trigger and view is created from the text frozen below (ENTITIES), which was the
text of its file in migrations/sql/ when this migration was written; later migrations freeze
their own changes. This migration squashes the three written before the first release (the core
ledger, federation, and a cheaper trade); the schema it builds is the one they built.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from alembic_utils.pg_view import PGView
from alembic_utils.replaceable_entity import ReplaceableEntity
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 2^53 - 1: the largest integer every JSON client (JavaScript included) represents exactly.
MAX_AMOUNT = 9007199254740991

DOMAINS: dict[str, tuple[sa.types.TypeEngine[object], str]] = {
    "account_code": (sa.Text(), "VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'"),
    "account_kind": (sa.Text(), "VALUE IN ('member', 'system', 'link')"),
    "account_status": (sa.Text(), "VALUE IN ('active', 'suspended', 'closed')"),
    "limit_amount": (sa.BigInteger(), f"VALUE BETWEEN 0 AND {MAX_AMOUNT}"),
    "pending_amount": (sa.BigInteger(), "VALUE >= 0"),
    "trade_amount": (sa.BigInteger(), f"VALUE BETWEEN 1 AND {MAX_AMOUNT}"),
    "trade_status": (sa.Text(), "VALUE IN ('pending', 'posted', 'voided', 'expired')"),
    "trade_kind": (
        sa.Text(),
        "VALUE IN ('transfer', 'reversal', 'write_off', 'request', 'federation', 'settlement')",
    ),
    "entry_amount": (sa.BigInteger(), "VALUE <> 0"),
}


def _domain(name: str) -> postgresql.DOMAIN:
    base, check = DOMAINS[name]
    return postgresql.DOMAIN(
        name, base, check=check, constraint_name=f"{name}_check", create_type=False
    )


def upgrade() -> None:
    for name in DOMAINS:
        _domain(name).create(op.get_bind())
    op.create_table(
        "audit_heads",
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("network_id", name=op.f("audit_heads_pkey")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=True),
        sa.Column("hash", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "(seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL)",
            name=op.f("audit_log_sealed_whole_check"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("audit_log_pkey")),
        sa.UniqueConstraint("network_id", "seq", name=op.f("audit_log_network_id_seq_key")),
    )
    op.create_index(
        op.f("audit_log_unsealed_network_id_id_idx"),
        "audit_log",
        ["network_id", "id"],
        unique=False,
        postgresql_where=sa.text("hash IS NULL"),
    )
    op.create_table(
        "networks",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unit_name", sa.Text(), nullable=False),
        sa.Column("unit_symbol", sa.Text(), nullable=False),
        sa.Column("scale", sa.SmallInteger(), nullable=False),
        sa.Column("default_credit_limit", sa.BigInteger(), nullable=False),
        sa.Column("default_balance_max", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "code ~ '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$'",
            name=op.f("networks_code_format_check"),
        ),
        sa.CheckConstraint(
            "default_balance_max IS NULL OR default_balance_max BETWEEN 0 AND 9007199254740991",
            name=op.f("networks_default_balance_max_range_check"),
        ),
        sa.CheckConstraint(
            "default_credit_limit BETWEEN 0 AND 9007199254740991",
            name=op.f("networks_default_credit_limit_range_check"),
        ),
        sa.CheckConstraint("scale BETWEEN 0 AND 9", name=op.f("networks_scale_range_check")),
        sa.PrimaryKeyConstraint("id", name=op.f("networks_pkey")),
        sa.UniqueConstraint("code", name=op.f("networks_code_key")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("code", _domain("account_code"), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", _domain("account_kind"), nullable=False),
        sa.Column(
            "status",
            _domain("account_status"),
            server_default="active",
            nullable=False,
        ),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "pending_debits",
            _domain("pending_amount"),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "pending_credits",
            _domain("pending_amount"),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "credit_limit",
            _domain("limit_amount"),
            nullable=False,
        ),
        sa.Column(
            "balance_max",
            _domain("limit_amount"),
            nullable=True,
        ),
        sa.Column("revert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "revert_credit_limit",
            _domain("limit_amount"),
            nullable=True,
        ),
        sa.Column(
            "revert_balance_max",
            _domain("limit_amount"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status <> 'closed' OR (balance = 0 AND pending_debits = 0 AND pending_credits = 0)",
            name=op.f("accounts_closed_empty_check"),
        ),
        sa.CheckConstraint(
            "(revert_at IS NULL) = (revert_credit_limit IS NULL)",
            name=op.f("accounts_revert_complete_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("accounts_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("accounts_pkey")),
        sa.UniqueConstraint("network_id", "code", name=op.f("accounts_network_id_code_key")),
        sa.UniqueConstraint("network_id", "id", name=op.f("accounts_network_id_id_key")),
    )
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
        "trade_rejections",
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("trade_rejections_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("network_id", "key", name=op.f("trade_rejections_pkey")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'platform' AND network_id IS NULL AND account_id IS NULL) OR (role IN ('operator', 'auditor') AND network_id IS NOT NULL AND account_id IS NULL) OR (role = 'member' AND network_id IS NOT NULL AND account_id IS NOT NULL)",
            name=op.f("api_keys_role_scope_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "account_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("api_keys_network_id_account_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("api_keys_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("api_keys_pkey")),
        sa.UniqueConstraint("key_id", name=op.f("api_keys_key_id_key")),
    )
    op.create_table(
        "limit_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("credit_limit_before", sa.BigInteger(), nullable=True),
        sa.Column("credit_limit_after", sa.BigInteger(), nullable=False),
        sa.Column("balance_max_before", sa.BigInteger(), nullable=True),
        sa.Column("balance_max_after", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reverts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'default') = (account_id IS NULL)", name=op.f("limit_changes_subject_check")
        ),
        sa.CheckConstraint(
            "kind IN ('open', 'set', 'temporary', 'revert', 'propagate', 'default')",
            name=op.f("limit_changes_kind_valid_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "account_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("limit_changes_network_id_account_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("limit_changes_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("limit_changes_pkey")),
    )
    op.create_index(
        op.f("limit_changes_account_id_changed_at_id_idx"),
        "limit_changes",
        ["account_id", "changed_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("limit_changes_network_id_changed_at_id_idx"),
        "limit_changes",
        ["network_id", "changed_at", "id"],
        unique=False,
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
        "payee_approvals",
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("payee_id", sa.Uuid(), nullable=False),
        sa.Column("max_amount", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "max_amount IS NULL OR max_amount BETWEEN 1 AND 9007199254740991",
            name=op.f("payee_approvals_max_amount_range_check"),
        ),
        sa.CheckConstraint(
            "payer_id <> payee_id", name=op.f("payee_approvals_distinct_parties_check")
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payee_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payee_approvals_network_id_payee_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payer_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payee_approvals_network_id_payer_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("payer_id", "payee_id", name=op.f("payee_approvals_pkey")),
    )
    op.create_table(
        "trades",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("payee_id", sa.Uuid(), nullable=False),
        sa.Column("amount", _domain("trade_amount"), nullable=False),
        sa.Column("status", _domain("trade_status"), nullable=False),
        sa.Column("posted_amount", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("reverses_trade_id", sa.Uuid(), nullable=True),
        sa.Column(
            "kind",
            _domain("trade_kind"),
            server_default="transfer",
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("limit_override", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'reversal') = (reverses_trade_id IS NOT NULL)",
            name=op.f("trades_reversal_linked_check"),
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (resolved_at IS NULL)",
            name=op.f("trades_resolved_at_valid_check"),
        ),
        sa.CheckConstraint(
            "(status = 'posted') = (posted_amount IS NOT NULL) AND (posted_amount IS NULL OR posted_amount BETWEEN 1 AND amount)",
            name=op.f("trades_posted_amount_valid_check"),
        ),
        sa.CheckConstraint(
            "NOT limit_override OR reason IS NOT NULL", name=op.f("trades_override_reason_check")
        ),
        sa.CheckConstraint("payer_id <> payee_id", name=op.f("trades_distinct_parties_check")),
        sa.ForeignKeyConstraint(
            ["network_id", "payee_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("trades_network_id_payee_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payer_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("trades_network_id_payer_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_trade_id"], ["trades.id"], name=op.f("trades_reverses_trade_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("trades_pkey")),
        sa.UniqueConstraint("network_id", "key", name=op.f("trades_network_id_key_key")),
    )
    op.create_index(
        op.f("trades_network_id_created_at_id_idx"),
        "trades",
        ["network_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("trades_pending_expires_at_idx"),
        "trades",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("trades_pending_payee_id_idx"),
        "trades",
        ["payee_id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("trades_pending_payer_id_idx"),
        "trades",
        ["payer_id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("trades_reverses_trade_id_key"),
        "trades",
        ["reverses_trade_id"],
        unique=True,
        postgresql_where=sa.text("reverses_trade_id IS NOT NULL"),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("trade_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", _domain("entry_amount"), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id", "account_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("entries_network_id_account_id_fkey"),
        ),
        sa.ForeignKeyConstraint(["trade_id"], ["trades.id"], name=op.f("entries_trade_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("entries_pkey")),
        sa.UniqueConstraint("trade_id", "account_id", name=op.f("entries_trade_id_account_id_key")),
    )
    op.create_index(
        op.f("entries_account_id_booked_at_id_idx"),
        "entries",
        ["account_id", "booked_at", "id"],
        unique=False,
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
        "idempotency_records",
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("idempotency_records_api_key_id_fkey")
        ),
        sa.PrimaryKeyConstraint("api_key_id", "key", name=op.f("idempotency_records_pkey")),
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
        "payment_requests",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("payee_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("trade_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'accepted') = (trade_id IS NOT NULL)",
            name=op.f("payment_requests_trade_when_accepted_check"),
        ),
        sa.CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL)",
            name=op.f("payment_requests_resolved_at_valid_check"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'rejected', 'cancelled', 'expired')",
            name=op.f("payment_requests_status_valid_check"),
        ),
        sa.CheckConstraint(
            "amount BETWEEN 1 AND 9007199254740991",
            name=op.f("payment_requests_amount_range_check"),
        ),
        sa.CheckConstraint(
            "payer_id <> payee_id", name=op.f("payment_requests_distinct_parties_check")
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payee_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payment_requests_network_id_payee_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payer_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payment_requests_network_id_payer_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.id"], name=op.f("payment_requests_trade_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("payment_requests_pkey")),
    )
    op.create_index(
        op.f("payment_requests_network_id_created_at_id_idx"),
        "payment_requests",
        ["network_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("payment_requests_open_expires_at_idx"),
        "payment_requests",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
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
    for entity in ENTITIES:
        op.create_entity(entity)


def downgrade() -> None:
    for entity in reversed(ENTITIES):
        op.drop_entity(entity)
    op.drop_index(op.f("transfers_trade_id_idx"), table_name="transfers")
    op.drop_index(
        op.f("transfers_outbox_idx"),
        table_name="transfers",
        postgresql_where=sa.text("direction = 'out' AND status = 'prepared'"),
    )
    op.drop_table("transfers")
    op.drop_table("settlements")
    op.drop_index(
        op.f("payment_requests_open_expires_at_idx"),
        table_name="payment_requests",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_index(
        op.f("payment_requests_network_id_created_at_id_idx"), table_name="payment_requests"
    )
    op.drop_table("payment_requests")
    op.drop_table("link_peer_keys")
    op.drop_table("link_checkpoints")
    op.drop_table("idempotency_records")
    op.drop_table("federation_nonces")
    op.drop_index(op.f("entries_account_id_booked_at_id_idx"), table_name="entries")
    op.drop_table("entries")
    op.drop_index(
        op.f("trades_reverses_trade_id_key"),
        table_name="trades",
        postgresql_where=sa.text("reverses_trade_id IS NOT NULL"),
    )
    op.drop_index(
        op.f("trades_pending_payer_id_idx"),
        table_name="trades",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        op.f("trades_pending_payee_id_idx"),
        table_name="trades",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        op.f("trades_pending_expires_at_idx"),
        table_name="trades",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(op.f("trades_network_id_created_at_id_idx"), table_name="trades")
    op.drop_table("trades")
    op.drop_table("payee_approvals")
    op.drop_table("links")
    op.drop_index(op.f("limit_changes_network_id_changed_at_id_idx"), table_name="limit_changes")
    op.drop_index(op.f("limit_changes_account_id_changed_at_id_idx"), table_name="limit_changes")
    op.drop_table("limit_changes")
    op.drop_table("api_keys")
    op.drop_table("trade_rejections")
    op.drop_index(
        op.f("node_keys_one_active_per_network_idx"),
        table_name="node_keys",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("node_keys")
    op.drop_table("accounts")
    op.drop_table("networks")
    op.drop_index(
        op.f("audit_log_unsealed_network_id_id_idx"),
        table_name="audit_log",
        postgresql_where=sa.text("hash IS NULL"),
    )
    op.drop_table("audit_log")
    op.drop_table("audit_heads")
    for name in reversed(DOMAINS):
        _domain(name).drop(op.get_bind())


# The functions and views, then the triggers that run them, each rule's together (the folders of
# migrations/sql/), as they were when this migration was written.
ENTITIES: list[ReplaceableEntity] = [
    # audit/
    PGFunction(
        schema="public",
        signature="mc_audit_change()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_before jsonb;\n"
            "    v_after jsonb;\n"
            "    v_row jsonb;\n"
            "    v_subject text := rtrim(TG_TABLE_NAME, 's');\n"
            "    v_action text;\n"
            "BEGIN\n"
            "    -- The row as JSON, built once: it gives the record's after (or before) and its ids.\n"
            "    IF TG_OP = 'DELETE' THEN v_row := to_jsonb(OLD); ELSE v_row := to_jsonb(NEW); END IF;\n"
            "    IF TG_OP = 'UPDATE' THEN v_before := to_jsonb(OLD) - TG_ARGV;\n"
            "    ELSIF TG_OP = 'DELETE' THEN v_before := v_row - TG_ARGV;\n"
            "    END IF;\n"
            "    IF TG_OP <> 'DELETE' THEN v_after := v_row - TG_ARGV; END IF;\n"
            "    IF TG_OP = 'UPDATE' THEN\n"
            "        -- Keep only what changed.\n"
            "        SELECT jsonb_object_agg(n.key, n.value) INTO v_after\n"
            "        FROM jsonb_each(v_after) n WHERE v_before -> n.key IS DISTINCT FROM n.value;\n"
            "        IF v_after IS NULL THEN\n"
            "            RETURN NULL;\n"
            "        END IF;\n"
            "        SELECT jsonb_object_agg(o.key, o.value) INTO v_before\n"
            "        FROM jsonb_each(v_before) o WHERE v_after ? o.key;\n"
            "    END IF;\n"
            "    IF TG_TABLE_NAME <> 'networks' AND v_row ->> 'network_id' IS NULL THEN\n"
            "        RETURN NULL;  -- a platform key: deployment-wide, outside every network's log\n"
            "    END IF;\n"
            "    v_action := v_subject || '.' || CASE TG_OP WHEN 'INSERT' THEN 'created'\n"
            "                                              WHEN 'DELETE' THEN 'deleted'\n"
            "                                              ELSE 'updated' END;\n"
            "    IF TG_TABLE_NAME IN ('trades', 'payment_requests') AND TG_OP = 'UPDATE' THEN\n"
            "        v_action := v_subject || '.' || (v_row ->> 'status');\n"
            "    ELSIF TG_TABLE_NAME = 'accounts' AND TG_OP = 'UPDATE' AND v_after ? 'status' THEN\n"
            "        v_action := 'account.' || (v_row ->> 'status');\n"
            "    ELSIF TG_TABLE_NAME = 'accounts' AND TG_OP = 'UPDATE' THEN\n"
            "        v_action := 'account.limits_changed';\n"
            "    ELSIF TG_TABLE_NAME = 'api_keys' AND TG_OP = 'UPDATE' THEN\n"
            "        v_action := 'api_key.revoked';\n"
            "    END IF;\n"
            "    INSERT INTO audit_log (network_id, occurred_at, actor, action, subject_type, subject_id,\n"
            "                           reason, before, after)\n"
            "    VALUES (CASE WHEN TG_TABLE_NAME = 'networks' THEN (v_row ->> 'id')::uuid\n"
            "                 ELSE (v_row ->> 'network_id')::uuid END,\n"
            "            clock_timestamp(),\n"
            "            coalesce(nullif(current_setting('mutualcredit.actor', true), ''),\n"
            "                     'sql:' || session_user),\n"
            "            v_action, v_subject,\n"
            "            coalesce(v_row ->> 'id', (v_row ->> 'payer_id') || '/' || (v_row ->> 'payee_id')),\n"
            "            nullif(current_setting('mutualcredit.reason', true), ''), v_before, v_after);\n"
            "    RETURN NULL;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_audit_genesis(p_network_id uuid)",
        definition=(
            "returns bytea LANGUAGE plpgsql IMMUTABLE AS $$\n"
            "BEGIN\n"
            "    RETURN sha256(convert_to('mutualcredit audit log of network ' || p_network_id::text, 'UTF8'));\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_audit_guard()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF OLD.hash IS NOT NULL OR NEW.hash IS NULL\n"
            "       OR (NEW.id, NEW.network_id, NEW.occurred_at, NEW.actor, NEW.action, NEW.subject_type,\n"
            "           NEW.subject_id, NEW.reason, NEW.before, NEW.after)\n"
            "          IS DISTINCT FROM\n"
            "          (OLD.id, OLD.network_id, OLD.occurred_at, OLD.actor, OLD.action, OLD.subject_type,\n"
            "           OLD.subject_id, OLD.reason, OLD.before, OLD.after) THEN\n"
            "        RAISE EXCEPTION 'the audit log is append-only'\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'audit_log',\n"
            "                  CONSTRAINT = 'audit_log_append_only';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_audit_payload( p_network_id uuid, p_seq bigint, p_occurred_at timestamptz, p_actor text, p_action text, p_subject_type text, p_subject_id text, p_reason text, p_before jsonb, p_after jsonb)",
        definition=(
            "returns bytea LANGUAGE plpgsql IMMUTABLE AS $$\n"
            "BEGIN\n"
            "    RETURN convert_to(jsonb_build_array(\n"
            "        p_network_id, p_seq, (extract(epoch FROM p_occurred_at) * 1000000)::bigint, p_actor,\n"
            "        p_action, p_subject_type, p_subject_id, p_reason, p_before, p_after)::text, 'UTF8');\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_audit_seal(p_limit integer)",
        definition=(
            "returns integer LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_head audit_heads%ROWTYPE;\n"
            "    v_record audit_log%ROWTYPE;\n"
            "    v_count integer := 0;\n"
            "BEGIN\n"
            "    -- One sealer per network at a time; others skip it rather than wait.\n"
            "    FOR v_head IN\n"
            "        SELECT h.* FROM audit_heads h\n"
            "        WHERE EXISTS (SELECT 1 FROM audit_log a WHERE a.network_id = h.network_id AND a.hash IS NULL)\n"
            "        ORDER BY h.network_id\n"
            "        FOR UPDATE SKIP LOCKED\n"
            "    LOOP\n"
            "        FOR v_record IN\n"
            "            SELECT * FROM audit_log a\n"
            "            WHERE a.network_id = v_head.network_id AND a.hash IS NULL\n"
            "            ORDER BY a.id LIMIT p_limit\n"
            "        LOOP\n"
            "            v_head.seq := v_head.seq + 1;\n"
            "            UPDATE audit_log a\n"
            "            SET seq = v_head.seq, prev_hash = v_head.hash,\n"
            "                hash = sha256(v_head.hash || mc_audit_payload(\n"
            "                    a.network_id, v_head.seq, a.occurred_at, a.actor, a.action, a.subject_type,\n"
            "                    a.subject_id, a.reason, a.before, a.after))\n"
            "            WHERE a.id = v_record.id\n"
            "            RETURNING a.hash INTO v_head.hash;\n"
            "            v_count := v_count + 1;\n"
            "        END LOOP;\n"
            "        UPDATE audit_heads SET seq = v_head.seq, hash = v_head.hash\n"
            "        WHERE network_id = v_head.network_id;\n"
            "    END LOOP;\n"
            "    RETURN v_count;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_audit_start_chain()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    INSERT INTO audit_heads (network_id, seq, hash) VALUES (NEW.id, 0, mc_audit_genesis(NEW.id));\n"
            "    RETURN NULL;\n"
            "END $$"
        ),
    ),
    # booking/
    PGFunction(
        schema="public",
        signature="mc_book(p_network_id uuid, p_trade_id uuid, p_payer_id uuid, p_payee_id uuid, p_amount bigint, p_release bigint, p_now timestamptz)",
        definition=(
            "returns void LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    WITH moved AS (\n"
            "        UPDATE accounts a\n"
            "        SET balance = a.balance + CASE WHEN a.id = p_payer_id THEN -p_amount ELSE p_amount END,\n"
            "            pending_debits = a.pending_debits - CASE WHEN a.id = p_payer_id THEN p_release ELSE 0 END,\n"
            "            pending_credits = a.pending_credits - CASE WHEN a.id = p_payee_id THEN p_release ELSE 0 END\n"
            "        WHERE a.id IN (p_payer_id, p_payee_id)\n"
            "        RETURNING a.id, a.balance\n"
            "    )\n"
            "    INSERT INTO entries (network_id, trade_id, account_id, amount, balance_after, booked_at)\n"
            "    SELECT p_network_id, p_trade_id, moved.id,\n"
            "           CASE WHEN moved.id = p_payer_id THEN -p_amount ELSE p_amount END, moved.balance, p_now\n"
            "    FROM moved;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_create_trade( p_network_id uuid, p_key text, p_request_hash bytea, p_payer text, p_payee text, p_amount bigint, p_pending boolean, p_expires_at timestamptz, p_description text, p_external_ref text, p_metadata jsonb, p_actor text, p_kind text DEFAULT 'transfer', p_reverses_trade_id uuid DEFAULT NULL, p_reason text DEFAULT NULL, p_override boolean DEFAULT false, p_remember_refusal boolean DEFAULT true)",
        definition=(
            "returns TABLE (outcome text, problem_code text, problem_detail jsonb, trade jsonb)\n"
            "LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_existing_id uuid;\n"
            "    v_existing_hash bytea;\n"
            "    v_rejection trade_rejections%ROWTYPE;\n"
            "    v_account accounts%ROWTYPE;\n"
            "    v_payer accounts%ROWTYPE;\n"
            "    v_payee accounts%ROWTYPE;\n"
            "    v_code text;\n"
            "    v_detail jsonb;\n"
            "    v_retried boolean := false;\n"
            "    v_now timestamptz;\n"
            "    v_trade_id uuid;\n"
            "    v_trade trades%ROWTYPE;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', p_actor, true),\n"
            "            set_config('mutualcredit.reason', coalesce(p_reason, ''), true);\n"
            "    -- Same-key requests run one after another, so exactly one outcome is ever recorded per key.\n"
            "    PERFORM pg_advisory_xact_lock(hashtextextended(p_network_id::text || '/' || p_key, 0));\n"
            "\n"
            "    SELECT t.id, t.request_hash INTO v_existing_id, v_existing_hash\n"
            "    FROM trades t WHERE t.network_id = p_network_id AND t.key = p_key;\n"
            "    IF FOUND THEN\n"
            "        IF v_existing_hash = p_request_hash THEN\n"
            "            RETURN QUERY SELECT 'replayed'::text, NULL::text, NULL::jsonb, mc_trade_json(v_existing_id);\n"
            "        ELSE\n"
            "            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,\n"
            "                                jsonb_build_object('key', p_key), NULL::jsonb;\n"
            "        END IF;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    SELECT * INTO v_rejection FROM trade_rejections r\n"
            "    WHERE r.network_id = p_network_id AND r.key = p_key;\n"
            "    IF FOUND THEN\n"
            "        IF v_rejection.request_hash = p_request_hash THEN\n"
            "            RETURN QUERY SELECT 'rejected'::text, v_rejection.code, v_rejection.detail, NULL::jsonb;\n"
            "        ELSE\n"
            "            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,\n"
            "                                jsonb_build_object('key', p_key), NULL::jsonb;\n"
            "        END IF;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    LOOP\n"
            "        -- Lock both accounts in id order: every writer does, so writers never deadlock.\n"
            "        v_payer := NULL;\n"
            "        v_payee := NULL;\n"
            "        FOR v_account IN\n"
            "            SELECT * FROM accounts a\n"
            "            WHERE a.network_id = p_network_id AND a.code IN (p_payer, p_payee)\n"
            "            ORDER BY a.id\n"
            "            FOR UPDATE\n"
            "        LOOP\n"
            "            IF v_account.code = p_payer THEN v_payer := v_account; ELSE v_payee := v_account; END IF;\n"
            "        END LOOP;\n"
            "\n"
            "        v_code := NULL;\n"
            "        IF v_payer.id IS NULL THEN\n"
            "            v_code := 'account_not_found'; v_detail := jsonb_build_object('account', p_payer);\n"
            "        ELSIF v_payee.id IS NULL THEN\n"
            "            v_code := 'account_not_found'; v_detail := jsonb_build_object('account', p_payee);\n"
            "        ELSIF v_payer.status <> 'active' THEN\n"
            "            v_code := 'account_' || v_payer.status; v_detail := jsonb_build_object('account', p_payer);\n"
            "        ELSIF v_payee.status <> 'active' THEN\n"
            "            v_code := 'account_' || v_payee.status; v_detail := jsonb_build_object('account', p_payee);\n"
            "        ELSIF p_reverses_trade_id IS NOT NULL\n"
            "              AND EXISTS (SELECT 1 FROM trades t WHERE t.reverses_trade_id = p_reverses_trade_id) THEN\n"
            "            -- Checked under the accounts' locks, which every reversal of this trade takes too.\n"
            "            v_code := 'trade_already_reversed';\n"
            "            v_detail := jsonb_build_object('trade_id', p_reverses_trade_id);\n"
            "        ELSIF NOT p_override\n"
            "              AND v_payer.balance - v_payer.pending_debits - p_amount < -v_payer.credit_limit THEN\n"
            "            v_code := 'credit_limit_exceeded';\n"
            "            v_detail := jsonb_build_object(\n"
            "                'account', p_payer,\n"
            "                'available', v_payer.balance - v_payer.pending_debits + v_payer.credit_limit,\n"
            "                'shortfall', p_amount - (v_payer.balance - v_payer.pending_debits + v_payer.credit_limit));\n"
            "        ELSIF NOT p_override AND v_payee.balance_max IS NOT NULL\n"
            "              AND v_payee.balance + v_payee.pending_credits + p_amount > v_payee.balance_max THEN\n"
            "            v_code := 'balance_max_exceeded';\n"
            "            v_detail := jsonb_build_object(\n"
            "                'account', p_payee,\n"
            "                'headroom', v_payee.balance_max - v_payee.balance - v_payee.pending_credits,\n"
            "                'excess', p_amount - (v_payee.balance_max - v_payee.balance - v_payee.pending_credits));\n"
            "        END IF;\n"
            "\n"
            "        -- A limit refusal may be caused by holds that are overdue but not yet swept: expire them\n"
            "        -- (expiry is enforced at access time) and check once more.\n"
            "        EXIT WHEN v_code IS NULL OR v_retried\n"
            "              OR v_code NOT IN ('credit_limit_exceeded', 'balance_max_exceeded');\n"
            "        v_retried := true;\n"
            "        EXIT WHEN mc_expire_holds_of(CASE WHEN v_code = 'credit_limit_exceeded'\n"
            "                                          THEN v_payer.id ELSE v_payee.id END) = 0;\n"
            "    END LOOP;\n"
            "\n"
            "    IF v_code IS NOT NULL THEN\n"
            "        IF p_remember_refusal THEN\n"
            "            INSERT INTO trade_rejections (network_id, key, request_hash, code, detail, created_at)\n"
            "            VALUES (p_network_id, p_key, p_request_hash, v_code, v_detail, clock_timestamp());\n"
            "        END IF;\n"
            "        RETURN QUERY SELECT 'rejected'::text, v_code, v_detail, NULL::jsonb;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    -- The clock is read after the locks: per account, booked_at follows the order of the entries.\n"
            "    v_now := clock_timestamp();\n"
            "    INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,\n"
            "                        posted_amount, description, external_ref, metadata, reverses_trade_id,\n"
            "                        kind, reason, limit_override, created_by, expires_at, created_at,\n"
            "                        resolved_at)\n"
            "    VALUES (p_network_id, p_key, p_request_hash, v_payer.id, v_payee.id, p_amount,\n"
            "            CASE WHEN p_pending THEN 'pending' ELSE 'posted' END,\n"
            "            CASE WHEN p_pending THEN NULL ELSE p_amount END,\n"
            "            p_description, p_external_ref, p_metadata, p_reverses_trade_id,\n"
            "            p_kind, p_reason, p_override, p_actor,\n"
            "            CASE WHEN p_pending THEN p_expires_at END,\n"
            "            v_now, CASE WHEN p_pending THEN NULL ELSE v_now END)\n"
            "    RETURNING * INTO v_trade;\n"
            "    v_trade_id := v_trade.id;\n"
            "\n"
            "    IF p_override THEN\n"
            "        PERFORM set_config('mutualcredit.limit_override', 'on', true);\n"
            "    END IF;\n"
            "    IF p_pending THEN\n"
            "        UPDATE accounts a\n"
            "        SET pending_debits = a.pending_debits + CASE WHEN a.id = v_payer.id THEN p_amount ELSE 0 END,\n"
            "            pending_credits = a.pending_credits + CASE WHEN a.id = v_payee.id THEN p_amount ELSE 0 END\n"
            "        WHERE a.id IN (v_payer.id, v_payee.id);\n"
            "    ELSE\n"
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
            "        FROM moved;\n"
            "    END IF;\n"
            "    IF p_override THEN\n"
            "        PERFORM set_config('mutualcredit.limit_override', 'off', true);\n"
            "    END IF;\n"
            "\n"
            "    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb,\n"
            "        (to_jsonb(v_trade) - ARRAY['network_id', 'request_hash', 'payer_id', 'payee_id'])\n"
            "        || jsonb_build_object('payer', v_payer.code, 'payee', v_payee.code,\n"
            "                              'reversed_by', NULL);\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_create_trades( p_network_id uuid, p_keys text[], p_request_hashes bytea[], p_payers text[], p_payees text[], p_amounts bigint[], p_pendings boolean[], p_expires_at timestamptz[], p_descriptions text[], p_external_refs text[], p_metadata jsonb[], p_actors text[])",
        definition=(
            "returns TABLE (idx integer, outcome text, problem_code text, problem_detail jsonb, trade jsonb)\n"
            "LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    i integer;\n"
            "BEGIN\n"
            "    PERFORM pg_advisory_xact_lock(lock_id)\n"
            "    FROM (SELECT DISTINCT hashtextextended(p_network_id::text || '/' || k, 0) AS lock_id\n"
            "          FROM unnest(p_keys) AS k ORDER BY 1) AS keys;\n"
            "    PERFORM 1 FROM accounts a\n"
            "    WHERE a.network_id = p_network_id AND a.code = ANY (p_payers || p_payees)\n"
            "    ORDER BY a.id FOR UPDATE;\n"
            "    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP\n"
            "        RETURN QUERY\n"
            "        SELECT i, r.outcome, r.problem_code, r.problem_detail, r.trade\n"
            "        FROM mc_create_trade(p_network_id, p_keys[i], p_request_hashes[i], p_payers[i],\n"
            "                             p_payees[i], p_amounts[i], p_pendings[i], p_expires_at[i],\n"
            "                             p_descriptions[i], p_external_refs[i], p_metadata[i],\n"
            "                             p_actors[i]) AS r;\n"
            "    END LOOP;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_expire_holds_of(p_account_id uuid)",
        definition=(
            "returns integer LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_hold trades%ROWTYPE;\n"
            "    v_now timestamptz := clock_timestamp();\n"
            "    v_count integer := 0;\n"
            "BEGIN\n"
            "    FOR v_hold IN\n"
            "        SELECT * FROM trades t\n"
            "        WHERE t.status = 'pending' AND t.expires_at <= v_now AND t.kind NOT IN ('federation', 'settlement')\n"
            "          AND (t.payer_id = p_account_id OR t.payee_id = p_account_id)\n"
            "        ORDER BY t.id\n"
            "        FOR UPDATE SKIP LOCKED\n"
            "    LOOP\n"
            "        PERFORM 1 FROM accounts a\n"
            "        WHERE a.id = CASE WHEN v_hold.payer_id = p_account_id THEN v_hold.payee_id\n"
            "                          ELSE v_hold.payer_id END\n"
            "        FOR UPDATE SKIP LOCKED;\n"
            "        CONTINUE WHEN NOT FOUND;\n"
            "        PERFORM mc_release_hold(v_hold, 'expired', v_now);\n"
            "        v_count := v_count + 1;\n"
            "    END LOOP;\n"
            "    RETURN v_count;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_expire_overdue(p_limit integer)",
        definition=(
            "returns integer LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_now timestamptz := clock_timestamp();\n"
            "    v_ids uuid[];\n"
            "    v_accounts uuid[];\n"
            "    v_hold trades%ROWTYPE;\n"
            "    v_count integer := 0;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', 'system:hold-expiry', true);\n"
            "    SELECT array_agg(o.id), array_agg(o.payer_id) || array_agg(o.payee_id)\n"
            "    INTO v_ids, v_accounts\n"
            "    FROM (SELECT t.id, t.payer_id, t.payee_id FROM trades t\n"
            "          WHERE t.status = 'pending' AND t.expires_at <= v_now AND t.kind NOT IN ('federation', 'settlement')\n"
            "          ORDER BY t.expires_at LIMIT p_limit) AS o;\n"
            "    IF v_ids IS NULL THEN\n"
            "        RETURN 0;\n"
            "    END IF;\n"
            "    PERFORM 1 FROM accounts a WHERE a.id = ANY (v_accounts) ORDER BY a.id FOR UPDATE;\n"
            "    FOR v_hold IN\n"
            "        SELECT * FROM trades t WHERE t.id = ANY (v_ids) AND t.status = 'pending'\n"
            "        ORDER BY t.id FOR UPDATE\n"
            "    LOOP\n"
            "        PERFORM mc_release_hold(v_hold, 'expired', v_now);\n"
            "        v_count := v_count + 1;\n"
            "    END LOOP;\n"
            "    RETURN v_count;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_release_hold(p_trade trades, p_status text, p_now timestamptz)",
        definition=(
            "returns void LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    UPDATE accounts a\n"
            "    SET pending_debits = a.pending_debits - CASE WHEN a.id = p_trade.payer_id THEN p_trade.amount ELSE 0 END,\n"
            "        pending_credits = a.pending_credits - CASE WHEN a.id = p_trade.payee_id THEN p_trade.amount ELSE 0 END\n"
            "    WHERE a.id IN (p_trade.payer_id, p_trade.payee_id);\n"
            "    UPDATE trades SET status = p_status, resolved_at = p_now WHERE id = p_trade.id;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_resolve_trade(p_network_id uuid, p_trade_id uuid, p_action text, p_amount bigint, p_actor text)",
        definition=(
            "returns TABLE (outcome text, problem_code text, problem_detail jsonb, trade jsonb)\n"
            "LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_payer_id uuid;\n"
            "    v_payee_id uuid;\n"
            "    v_trade trades%ROWTYPE;\n"
            "    v_status text;\n"
            "    v_amount bigint;\n"
            "    v_now timestamptz;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', p_actor, true);\n"
            "    IF p_action NOT IN ('post', 'void') THEN\n"
            "        RAISE EXCEPTION 'unknown action %', p_action USING ERRCODE = 'invalid_parameter_value';\n"
            "    END IF;\n"
            "    SELECT t.payer_id, t.payee_id INTO v_payer_id, v_payee_id\n"
            "    FROM trades t WHERE t.network_id = p_network_id AND t.id = p_trade_id;\n"
            "    IF NOT FOUND THEN\n"
            "        RETURN QUERY SELECT 'rejected'::text, 'trade_not_found'::text,\n"
            "                            jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    -- Lock order: accounts by id, then the trade row (as every writer does).\n"
            "    PERFORM 1 FROM accounts a WHERE a.id IN (v_payer_id, v_payee_id) ORDER BY a.id FOR UPDATE;\n"
            "    SELECT * INTO v_trade FROM trades t WHERE t.id = p_trade_id FOR UPDATE;\n"
            "    v_now := clock_timestamp();\n"
            "\n"
            "    -- An expired hold answers the same whether the sweeper or this call expired it.\n"
            "    IF v_trade.status = 'expired' THEN\n"
            "        RETURN QUERY SELECT 'rejected'::text, 'trade_expired'::text,\n"
            "                            jsonb_build_object('trade_id', p_trade_id, 'expires_at', v_trade.expires_at),\n"
            "                            mc_trade_json(p_trade_id);\n"
            "        RETURN;\n"
            "    END IF;\n"
            "    IF v_trade.status <> 'pending' THEN\n"
            "        RETURN QUERY SELECT 'rejected'::text, 'trade_not_pending'::text,\n"
            "                            jsonb_build_object('trade_id', p_trade_id, 'trade_status', v_trade.status),\n"
            "                            mc_trade_json(p_trade_id);\n"
            "        RETURN;\n"
            "    END IF;\n"
            "    IF v_trade.expires_at IS NOT NULL AND v_trade.expires_at <= v_now THEN\n"
            "        PERFORM mc_release_hold(v_trade, 'expired', v_now);\n"
            "        RETURN QUERY SELECT 'expired'::text, 'trade_expired'::text,\n"
            "                            jsonb_build_object('trade_id', p_trade_id, 'expires_at', v_trade.expires_at),\n"
            "                            mc_trade_json(p_trade_id);\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    IF p_action = 'void' THEN\n"
            "        PERFORM mc_release_hold(v_trade, 'voided', v_now);\n"
            "        RETURN QUERY SELECT 'voided'::text, NULL::text, NULL::jsonb, mc_trade_json(p_trade_id);\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    v_amount := coalesce(p_amount, v_trade.amount);\n"
            "    IF v_amount > v_trade.amount THEN\n"
            "        RETURN QUERY SELECT 'rejected'::text, 'amount_exceeds_hold'::text,\n"
            "                            jsonb_build_object('trade_id', p_trade_id, 'held', v_trade.amount,\n"
            "                                               'requested', v_amount),\n"
            "                            NULL::jsonb;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "    SELECT a.status INTO v_status FROM accounts a\n"
            "    WHERE a.id IN (v_payer_id, v_payee_id) AND a.status <> 'active' LIMIT 1;\n"
            "    IF FOUND THEN\n"
            "        RETURN QUERY SELECT 'rejected'::text, 'account_' || v_status,\n"
            "                            jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    PERFORM mc_book(p_network_id, p_trade_id, v_payer_id, v_payee_id, v_amount, v_trade.amount, v_now);\n"
            "    UPDATE trades SET status = 'posted', posted_amount = v_amount, resolved_at = v_now\n"
            "    WHERE id = p_trade_id;\n"
            "    RETURN QUERY SELECT 'posted'::text, NULL::text, NULL::jsonb, mc_trade_json(p_trade_id);\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_trade_json(p_trade_id uuid)",
        definition=(
            "returns jsonb LANGUAGE plpgsql STABLE AS $$\n"
            "BEGIN\n"
            "    RETURN (SELECT to_jsonb(d) - 'network_id' FROM trade_details d WHERE d.id = p_trade_id);\n"
            "END $$"
        ),
    ),
    PGView(
        schema="public",
        signature="trade_details",
        definition=(
            "SELECT t.id, t.network_id, t.key, payer.code AS payer, payee.code AS payee, t.amount, t.status,\n"
            "       t.posted_amount, t.description, t.external_ref, t.metadata, t.reverses_trade_id,\n"
            "       t.kind, t.reason, t.limit_override, t.created_by, t.expires_at, t.created_at, t.resolved_at,\n"
            "       (SELECT r.id FROM trades r WHERE r.reverses_trade_id = t.id) AS reversed_by\n"
            "FROM trades t\n"
            "JOIN accounts payer ON payer.id = t.payer_id\n"
            "JOIN accounts payee ON payee.id = t.payee_id"
        ),
    ),
    # federation/
    PGFunction(
        schema="public",
        signature="mc_finish_hold(p_trade_id uuid, p_post boolean, p_actor text)",
        definition=(
            "returns text LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_trade trades%ROWTYPE;\n"
            "    v_now timestamptz;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', p_actor, true);\n"
            "    SELECT * INTO v_trade FROM trades WHERE id = p_trade_id;\n"
            "    IF NOT FOUND OR v_trade.kind NOT IN ('federation', 'settlement') THEN\n"
            "        RAISE EXCEPTION 'no federated hold %', p_trade_id USING ERRCODE = 'no_data_found';\n"
            "    END IF;\n"
            "    PERFORM 1 FROM accounts a WHERE a.id IN (v_trade.payer_id, v_trade.payee_id)\n"
            "    ORDER BY a.id FOR UPDATE;\n"
            "    SELECT * INTO v_trade FROM trades WHERE id = p_trade_id FOR UPDATE;\n"
            "    IF v_trade.status <> 'pending' THEN\n"
            "        RETURN v_trade.status;\n"
            "    END IF;\n"
            "    v_now := clock_timestamp();\n"
            "    PERFORM set_config('mutualcredit.federation', 'on', true);\n"
            "    IF p_post THEN\n"
            "        PERFORM mc_book(v_trade.network_id, p_trade_id, v_trade.payer_id, v_trade.payee_id,\n"
            "                        v_trade.amount, v_trade.amount, v_now);\n"
            "        UPDATE trades SET status = 'posted', posted_amount = v_trade.amount, resolved_at = v_now\n"
            "        WHERE id = p_trade_id;\n"
            "    ELSE\n"
            "        PERFORM mc_release_hold(v_trade, 'voided', v_now);\n"
            "    END IF;\n"
            "    PERFORM set_config('mutualcredit.federation', 'off', true);\n"
            "    RETURN CASE WHEN p_post THEN 'posted' ELSE 'voided' END;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_trades_guard_federated()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF OLD.kind IN ('federation', 'settlement')\n"
            "       AND coalesce(current_setting('mutualcredit.federation', true), '') <> 'on' THEN\n"
            "        RAISE EXCEPTION 'trade % is a cross-network trade: only the federation protocol finishes it', OLD.id\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'trades',\n"
            "                  CONSTRAINT = 'trades_federated';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_transfers_guard_update()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF OLD.status IN ('accepted', 'refused')\n"
            "       OR (NEW.id, NEW.network_id, NEW.transfer_id, NEW.link_id, NEW.direction, NEW.kind,\n"
            "           NEW.payer_address, NEW.payee_address, NEW.amount_sent, NEW.amount_received,\n"
            "           NEW.rate_num, NEW.rate_den, NEW.rate_version, NEW.reference, NEW.expires_at,\n"
            "           NEW.request_hash, NEW.created_at)\n"
            "          IS DISTINCT FROM\n"
            "          (OLD.id, OLD.network_id, OLD.transfer_id, OLD.link_id, OLD.direction, OLD.kind,\n"
            "           OLD.payer_address, OLD.payee_address, OLD.amount_sent, OLD.amount_received,\n"
            "           OLD.rate_num, OLD.rate_den, OLD.rate_version, OLD.reference, OLD.expires_at,\n"
            "           OLD.request_hash, OLD.created_at) THEN\n"
            "        RAISE EXCEPTION 'transfer % is final, or the change touches what it is', OLD.transfer_id\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'transfers',\n"
            "                  CONSTRAINT = 'transfers_final';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    ),
    # guards/
    PGFunction(
        schema="public",
        signature="mc_networks_guard_update()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF NEW.code <> OLD.code OR NEW.scale <> OLD.scale THEN\n"
            "        RAISE EXCEPTION 'a network''s code and scale are fixed at creation'\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'networks', CONSTRAINT = 'networks_fixed';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_refuse_change()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    RAISE EXCEPTION '% on % is not allowed: ledger history is append-only', TG_OP, TG_TABLE_NAME\n"
            "        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME,\n"
            "              CONSTRAINT = TG_TABLE_NAME || '_append_only';\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_trades_guard_update()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF OLD.status <> 'pending' THEN\n"
            "        RAISE EXCEPTION 'trade % is % and can no longer change', OLD.id, OLD.status\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';\n"
            "    END IF;\n"
            "    IF NEW.status NOT IN ('posted', 'voided', 'expired') THEN\n"
            "        RAISE EXCEPTION 'a pending trade can only become posted, voided or expired'\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';\n"
            "    END IF;\n"
            "    IF (NEW.id, NEW.network_id, NEW.key, NEW.request_hash, NEW.payer_id, NEW.payee_id, NEW.amount,\n"
            "        NEW.description, NEW.external_ref, NEW.metadata, NEW.reverses_trade_id, NEW.kind,\n"
            "        NEW.reason, NEW.limit_override, NEW.created_by, NEW.expires_at, NEW.created_at)\n"
            "       IS DISTINCT FROM\n"
            "       (OLD.id, OLD.network_id, OLD.key, OLD.request_hash, OLD.payer_id, OLD.payee_id, OLD.amount,\n"
            "        OLD.description, OLD.external_ref, OLD.metadata, OLD.reverses_trade_id, OLD.kind,\n"
            "        OLD.reason, OLD.limit_override, OLD.created_by, OLD.expires_at, OLD.created_at) THEN\n"
            "        RAISE EXCEPTION 'only the status of a pending trade can change'\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    ),
    # history/
    PGFunction(
        schema="public",
        signature="mc_limit_history()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_kind text := coalesce(nullif(current_setting('mutualcredit.limit_change', true), ''), 'set');\n"
            "    v_reason text := mc_reason();\n"
            "BEGIN\n"
            "    IF TG_TABLE_NAME = 'networks' THEN\n"
            "        IF TG_OP = 'UPDATE' AND v_reason IS NULL THEN\n"
            "            RAISE EXCEPTION 'a change of default limits needs a reason (mutualcredit.reason)'\n"
            "                USING ERRCODE = 'not_null_violation', CONSTRAINT = 'limit_changes_reason';\n"
            "        END IF;\n"
            "        INSERT INTO limit_changes (network_id, account_id, kind, credit_limit_before,\n"
            "                                   credit_limit_after, balance_max_before, balance_max_after,\n"
            "                                   reason, actor, changed_at)\n"
            "        VALUES (NEW.id, NULL, 'default',\n"
            "                CASE WHEN TG_OP = 'UPDATE' THEN OLD.default_credit_limit END,\n"
            "                NEW.default_credit_limit,\n"
            "                CASE WHEN TG_OP = 'UPDATE' THEN OLD.default_balance_max END,\n"
            "                NEW.default_balance_max,\n"
            "                coalesce(v_reason, 'network created'), mc_actor(), clock_timestamp());\n"
            "        RETURN NULL;\n"
            "    END IF;\n"
            "    IF TG_OP = 'INSERT' THEN\n"
            "        INSERT INTO limit_changes (network_id, account_id, kind, credit_limit_after,\n"
            "                                   balance_max_after, reason, actor, changed_at)\n"
            "        VALUES (NEW.network_id, NEW.id, 'open', NEW.credit_limit, NEW.balance_max,\n"
            "                coalesce(v_reason, 'account opened'), mc_actor(), clock_timestamp());\n"
            "        RETURN NULL;\n"
            "    END IF;\n"
            "    IF v_reason IS NULL THEN\n"
            "        RAISE EXCEPTION 'a change of limits needs a reason (mutualcredit.reason)'\n"
            "            USING ERRCODE = 'not_null_violation', CONSTRAINT = 'limit_changes_reason';\n"
            "    END IF;\n"
            "    INSERT INTO limit_changes (network_id, account_id, kind, credit_limit_before,\n"
            "                               credit_limit_after, balance_max_before, balance_max_after,\n"
            "                               reason, actor, reverts_at, changed_at)\n"
            "    VALUES (NEW.network_id, NEW.id, v_kind, OLD.credit_limit, NEW.credit_limit,\n"
            "            OLD.balance_max, NEW.balance_max, v_reason, mc_actor(),\n"
            "            CASE WHEN v_kind = 'temporary' THEN NEW.revert_at END, clock_timestamp());\n"
            "    RETURN NULL;\n"
            "END $$"
        ),
    ),
    # limits/
    PGFunction(
        schema="public",
        signature="mc_accounts_limits()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF current_setting('mutualcredit.limit_override', true) = 'on' THEN\n"
            "        RETURN NEW;\n"
            "    END IF;\n"
            "    IF NEW.balance - NEW.pending_debits < -NEW.credit_limit\n"
            "       AND (TG_OP = 'INSERT'\n"
            "            OR NEW.balance - NEW.pending_debits < OLD.balance - OLD.pending_debits) THEN\n"
            "        RAISE EXCEPTION 'account % would go beyond its credit limit', NEW.code\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'accounts',\n"
            "                  CONSTRAINT = 'accounts_credit_limit';\n"
            "    END IF;\n"
            "    IF NEW.balance_max IS NOT NULL AND NEW.balance + NEW.pending_credits > NEW.balance_max\n"
            "       AND (TG_OP = 'INSERT'\n"
            "            OR NEW.balance + NEW.pending_credits > OLD.balance + OLD.pending_credits) THEN\n"
            "        RAISE EXCEPTION 'account % would go beyond its balance_max', NEW.code\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'accounts',\n"
            "                  CONSTRAINT = 'accounts_balance_max';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_revert_due_limits(p_limit integer)",
        definition=(
            "returns integer LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_count integer;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', 'system:limit-revert', true);\n"
            "    PERFORM set_config('mutualcredit.reason', 'temporary limit ended', true);\n"
            "    PERFORM set_config('mutualcredit.limit_change', 'revert', true);\n"
            "    WITH due AS (\n"
            "        SELECT id FROM accounts\n"
            "        WHERE revert_at <= clock_timestamp()\n"
            "        ORDER BY id LIMIT p_limit\n"
            "        FOR UPDATE SKIP LOCKED\n"
            "    )\n"
            "    UPDATE accounts a\n"
            "    SET credit_limit = a.revert_credit_limit, balance_max = a.revert_balance_max,\n"
            "        revert_at = NULL, revert_credit_limit = NULL, revert_balance_max = NULL\n"
            "    FROM due WHERE a.id = due.id;\n"
            "    GET DIAGNOSTICS v_count = ROW_COUNT;\n"
            "    PERFORM set_config('mutualcredit.limit_change', '', true);\n"
            "    RETURN v_count;\n"
            "END $$"
        ),
    ),
    # requests/
    PGFunction(
        schema="public",
        signature="mc_expire_requests(p_limit integer)",
        definition=(
            "returns integer LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_count integer;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', 'system:request-expiry', true);\n"
            "    WITH due AS (\n"
            "        SELECT id FROM payment_requests\n"
            "        WHERE status = 'open' AND expires_at <= clock_timestamp()\n"
            "        ORDER BY expires_at LIMIT p_limit\n"
            "        FOR UPDATE SKIP LOCKED\n"
            "    )\n"
            "    UPDATE payment_requests r SET status = 'expired', resolved_at = clock_timestamp()\n"
            "    FROM due WHERE r.id = due.id;\n"
            "    GET DIAGNOSTICS v_count = ROW_COUNT;\n"
            "    RETURN v_count;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_requests_guard_update()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF OLD.status <> 'open' OR NEW.status = 'open'\n"
            "       OR (NEW.id, NEW.network_id, NEW.payer_id, NEW.payee_id, NEW.amount, NEW.description,\n"
            "           NEW.created_by, NEW.expires_at, NEW.created_at)\n"
            "          IS DISTINCT FROM\n"
            "          (OLD.id, OLD.network_id, OLD.payer_id, OLD.payee_id, OLD.amount, OLD.description,\n"
            "           OLD.created_by, OLD.expires_at, OLD.created_at) THEN\n"
            "        RAISE EXCEPTION 'a payment request changes once, from open to its outcome'\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'payment_requests',\n"
            "                  CONSTRAINT = 'payment_requests_final';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    ),
    # who_and_why/
    PGFunction(
        schema="public",
        signature="mc_actor()",
        definition=(
            "returns text LANGUAGE plpgsql STABLE AS $$\n"
            "BEGIN\n"
            "    RETURN coalesce(nullif(current_setting('mutualcredit.actor', true), ''), 'sql:' || session_user);\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_reason()",
        definition=(
            "returns text LANGUAGE plpgsql STABLE AS $$\n"
            "BEGIN\n"
            "    RETURN nullif(current_setting('mutualcredit.reason', true), '');\n"
            "END $$"
        ),
    ),
    # zero_sum/
    PGFunction(
        schema="public",
        signature="mc_accounts_network_fixed()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    RAISE EXCEPTION 'an account cannot move to another network'\n"
            "        USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_accounts_open_empty()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF EXISTS (SELECT 1 FROM new_rows\n"
            "               WHERE balance <> 0 OR pending_debits <> 0 OR pending_credits <> 0) THEN\n"
            "        RAISE EXCEPTION 'an account opens with a zero balance and no holds'\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';\n"
            "    END IF;\n"
            "    RETURN NULL;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_accounts_zero_sum()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    -- (A move to another network is refused by accounts_network_fixed.)\n"
            "    IF EXISTS (\n"
            "        SELECT 1\n"
            "        FROM (SELECT network_id, balance AS b, pending_debits AS d, pending_credits AS c\n"
            "              FROM new_rows\n"
            "              UNION ALL\n"
            "              SELECT network_id, -balance, -pending_debits, -pending_credits\n"
            "              FROM old_rows) AS change\n"
            "        GROUP BY network_id\n"
            "        HAVING sum(b) <> 0 OR sum(d) <> sum(c)\n"
            "    ) THEN\n"
            "        RAISE EXCEPTION 'balances of a network must keep summing to zero, and its pending debits must equal its pending credits'\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';\n"
            "    END IF;\n"
            "    RETURN NULL;\n"
            "END $$"
        ),
    ),
    PGFunction(
        schema="public",
        signature="mc_entries_zero_sum()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF EXISTS (SELECT 1 FROM new_rows GROUP BY trade_id HAVING sum(amount) <> 0) THEN\n"
            "        RAISE EXCEPTION 'the entries of a trade must sum to zero'\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'entries', CONSTRAINT = 'entries_zero_sum';\n"
            "    END IF;\n"
            "    RETURN NULL;\n"
            "END $$"
        ),
    ),
    # audit/ (triggers)
    PGTrigger(
        schema="public",
        signature="accounts_audit",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE OF name, status, credit_limit, balance_max, revert_at ON public.accounts FOR EACH ROW EXECUTE FUNCTION mc_audit_change(\n"
            "        'balance', 'pending_debits', 'pending_credits')"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="api_keys_audit",
        on_entity="public.api_keys",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE ON public.api_keys FOR EACH ROW EXECUTE FUNCTION mc_audit_change('secret_hash')"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="audit_log_append_only",
        on_entity="public.audit_log",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="audit_log_sealing",
        on_entity="public.audit_log",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION mc_audit_guard()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="links_audit",
        on_entity="public.links",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE ON public.links FOR EACH ROW EXECUTE FUNCTION mc_audit_change('in_seq', 'in_hash')"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="networks_audit",
        on_entity="public.networks",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE ON public.networks FOR EACH ROW EXECUTE FUNCTION mc_audit_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="networks_audit_chain",
        on_entity="public.networks",
        is_constraint=False,
        definition=(
            "AFTER INSERT ON public.networks FOR EACH ROW EXECUTE FUNCTION mc_audit_start_chain()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="node_keys_audit",
        on_entity="public.node_keys",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE ON public.node_keys FOR EACH ROW EXECUTE FUNCTION mc_audit_change('sealed_private_key')"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="payee_approvals_audit",
        on_entity="public.payee_approvals",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE OR DELETE ON public.payee_approvals FOR EACH ROW EXECUTE FUNCTION mc_audit_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="payment_requests_audit",
        on_entity="public.payment_requests",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE ON public.payment_requests FOR EACH ROW EXECUTE FUNCTION mc_audit_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="trades_audit",
        on_entity="public.trades",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE ON public.trades FOR EACH ROW EXECUTE FUNCTION mc_audit_change('request_hash')"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="transfers_audit",
        on_entity="public.transfers",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE OF status ON public.transfers FOR EACH ROW EXECUTE FUNCTION mc_audit_change(\n"
            "        'request_hash', 'attempts', 'next_attempt_at', 'last_error', 'receipt_signature')"
        ),
    ),
    # federation/ (triggers)
    PGTrigger(
        schema="public",
        signature="link_checkpoints_append_only",
        on_entity="public.link_checkpoints",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON public.link_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="links_append_only",
        on_entity="public.links",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.links FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="node_keys_append_only",
        on_entity="public.node_keys",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.node_keys FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="settlements_append_only",
        on_entity="public.settlements",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.settlements FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="trades_federated",
        on_entity="public.trades",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE ON public.trades FOR EACH ROW EXECUTE FUNCTION mc_trades_guard_federated()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="transfers_append_only",
        on_entity="public.transfers",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.transfers FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="transfers_final",
        on_entity="public.transfers",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE ON public.transfers FOR EACH ROW EXECUTE FUNCTION mc_transfers_guard_update()"
        ),
    ),
    # guards/ (triggers)
    PGTrigger(
        schema="public",
        signature="accounts_append_only",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.accounts FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="entries_append_only",
        on_entity="public.entries",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON public.entries FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="networks_fixed",
        on_entity="public.networks",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE ON public.networks FOR EACH ROW EXECUTE FUNCTION mc_networks_guard_update()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="trades_append_only",
        on_entity="public.trades",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.trades FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="trades_final",
        on_entity="public.trades",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE ON public.trades FOR EACH ROW EXECUTE FUNCTION mc_trades_guard_update()"
        ),
    ),
    # history/ (triggers)
    PGTrigger(
        schema="public",
        signature="accounts_limit_history",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "AFTER UPDATE OF credit_limit, balance_max ON public.accounts FOR EACH ROW\n"
            "    WHEN (OLD.credit_limit IS DISTINCT FROM NEW.credit_limit\n"
            "          OR OLD.balance_max IS DISTINCT FROM NEW.balance_max)\n"
            "    EXECUTE FUNCTION mc_limit_history()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="accounts_limit_history_open",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "AFTER INSERT ON public.accounts FOR EACH ROW EXECUTE FUNCTION mc_limit_history()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="limit_changes_append_only",
        on_entity="public.limit_changes",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON public.limit_changes FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="networks_limit_history",
        on_entity="public.networks",
        is_constraint=False,
        definition=(
            "AFTER UPDATE OF default_credit_limit, default_balance_max ON public.networks FOR EACH ROW\n"
            "    WHEN (OLD.default_credit_limit IS DISTINCT FROM NEW.default_credit_limit\n"
            "          OR OLD.default_balance_max IS DISTINCT FROM NEW.default_balance_max)\n"
            "    EXECUTE FUNCTION mc_limit_history()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="networks_limit_history_open",
        on_entity="public.networks",
        is_constraint=False,
        definition=(
            "AFTER INSERT ON public.networks FOR EACH ROW EXECUTE FUNCTION mc_limit_history()"
        ),
    ),
    # idempotency/ (triggers)
    PGTrigger(
        schema="public",
        signature="trade_rejections_append_only",
        on_entity="public.trade_rejections",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON public.trade_rejections FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    # limits/ (triggers)
    PGTrigger(
        schema="public",
        signature="accounts_limits",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "BEFORE INSERT OR UPDATE OF balance, pending_debits, pending_credits, credit_limit, balance_max ON public.accounts FOR EACH ROW EXECUTE FUNCTION mc_accounts_limits()"
        ),
    ),
    # requests/ (triggers)
    PGTrigger(
        schema="public",
        signature="payment_requests_append_only",
        on_entity="public.payment_requests",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.payment_requests FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="payment_requests_final",
        on_entity="public.payment_requests",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE ON public.payment_requests FOR EACH ROW EXECUTE FUNCTION mc_requests_guard_update()"
        ),
    ),
    # zero_sum/ (triggers)
    PGTrigger(
        schema="public",
        signature="accounts_network_fixed",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OF network_id ON public.accounts FOR EACH ROW WHEN (OLD.network_id IS DISTINCT FROM NEW.network_id)\n"
            "    EXECUTE FUNCTION mc_accounts_network_fixed()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="accounts_open_empty",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "AFTER INSERT ON public.accounts REFERENCING NEW TABLE AS new_rows\n"
            "    FOR EACH STATEMENT EXECUTE FUNCTION mc_accounts_open_empty()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="accounts_zero_sum",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "AFTER UPDATE ON public.accounts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows\n"
            "    FOR EACH STATEMENT EXECUTE FUNCTION mc_accounts_zero_sum()"
        ),
    ),
    PGTrigger(
        schema="public",
        signature="entries_zero_sum",
        on_entity="public.entries",
        is_constraint=False,
        definition=(
            "AFTER INSERT ON public.entries REFERENCING NEW TABLE AS new_rows\n"
            "    FOR EACH STATEMENT EXECUTE FUNCTION mc_entries_zero_sum()"
        ),
    ),
]
