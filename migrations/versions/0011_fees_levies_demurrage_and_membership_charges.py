"""Fees, levies, demurrage and membership charges: how a network funds itself.

Four tables: `fee_rules` (a levy on trades, a membership fee per period, or demurrage per period
on balances, each into a treasury that is a system account), `fee_rule_changes` (every rule's
creation and change with its reason, written by the trigger `fee_rules_history`),
`fee_charges` (each charge, linked to the trade or the boundary that caused it; unique per rule,
cause and account, so nothing is charged twice) and `fee_runs` (a periodic rule's charging at
one boundary, with the rule frozen as it stood when the run began). The domain `trade_kind`
admits `fee`: every charge is a trade of that kind from the charged account to the treasury.

The ledger's functions learn levies: `mc_create_trade`, `mc_create_trades` and
`mc_resolve_trade` lock the treasuries of the levy rules in force with the parties and book the
levies in the trade's own transaction (`mc_charge_levies`, `mc_book_fee`); `trade_details`
shows a trade's `fees` and a fee trade's `fee`. The periodic sweeper is `mc_charge_fees`; dry
runs are `mc_fee_preview`. Guards: `fee_rules_guard` (treasury, fixed fields, no overlapping
rules), `accounts_treasury_open` (a treasury in use is never closed), append-only triggers and
audit triggers on `fee_rules` and `fee_charges`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 02:42:24.901218
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from alembic_utils.pg_view import PGView
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS_BEFORE = (
    "VALUE IN ('transfer', 'reversal', 'write_off', 'request', 'federation', 'settlement')"
)
_KINDS_AFTER = (
    "VALUE IN ('transfer', 'reversal', 'write_off', 'request', 'federation', 'settlement', 'fee')"
)


def _kinds(check: str) -> None:
    op.execute("ALTER DOMAIN trade_kind DROP CONSTRAINT trade_kind_check")
    op.execute(f"ALTER DOMAIN trade_kind ADD CONSTRAINT trade_kind_check CHECK ({check})")


def upgrade() -> None:
    _kinds(_KINDS_AFTER)
    op.create_table(
        "fee_rules",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("treasury_id", sa.Uuid(), nullable=False),
        sa.Column("account_kind", sa.Text(), server_default="member", nullable=False),
        sa.Column(
            "statuses",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("ARRAY['active']::text[]"),
            nullable=False,
        ),
        sa.Column("charge_payer", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("charge_payee", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("rate_num", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rate_den", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("minimum", sa.BigInteger(), nullable=True),
        sa.Column("maximum", sa.BigInteger(), nullable=True),
        sa.Column("basis", sa.Text(), nullable=True),
        sa.Column("threshold", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("period", sa.Text(), nullable=True),
        sa.Column("over_limit", sa.Text(), server_default="refuse", nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "CASE kind WHEN 'levy' THEN (charge_payer OR charge_payee) AND period IS NULL   AND basis IS NULL AND threshold = 0 AND (rate_num > 0 OR amount > 0) WHEN 'membership' THEN NOT charge_payer AND NOT charge_payee   AND period IS NOT NULL AND basis IS NULL AND threshold = 0 AND rate_num = 0   AND amount > 0 AND minimum IS NULL AND maximum IS NULL ELSE NOT charge_payer AND NOT charge_payee AND period IS NOT NULL   AND basis IS NOT NULL AND rate_num > 0 AND amount = 0 END",
            name=op.f("fee_rules_fields_of_kind_check"),
        ),
        sa.CheckConstraint(
            "account_kind IN ('member', 'system')", name=op.f("fee_rules_account_kind_valid_check")
        ),
        sa.CheckConstraint(
            "basis IS NULL OR basis IN ('balance_above', 'beyond_credit_limit')",
            name=op.f("fee_rules_basis_valid_check"),
        ),
        sa.CheckConstraint(
            "code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'", name=op.f("fee_rules_code_valid_check")
        ),
        sa.CheckConstraint(
            "kind IN ('levy', 'membership', 'demurrage')", name=op.f("fee_rules_kind_valid_check")
        ),
        sa.CheckConstraint(
            "over_limit IN ('refuse', 'book')", name=op.f("fee_rules_over_limit_valid_check")
        ),
        sa.CheckConstraint(
            "period IS NULL OR period IN ('minute', 'hour', 'day', 'week', 'month', 'year')",
            name=op.f("fee_rules_period_valid_check"),
        ),
        sa.CheckConstraint(
            "statuses <@ ARRAY['active', 'suspended']::text[] AND cardinality(statuses) >= 1",
            name=op.f("fee_rules_statuses_valid_check"),
        ),
        sa.CheckConstraint(
            "amount BETWEEN 0 AND 9007199254740991 AND (minimum IS NULL OR minimum BETWEEN 1 AND 9007199254740991) AND (maximum IS NULL OR maximum BETWEEN 1 AND 9007199254740991) AND (minimum IS NULL OR maximum IS NULL OR minimum <= maximum) AND threshold BETWEEN 0 AND 9007199254740991",
            name=op.f("fee_rules_amounts_range_check"),
        ),
        sa.CheckConstraint(
            "char_length(description) <= 500", name=op.f("fee_rules_description_length_check")
        ),
        sa.CheckConstraint(
            "ends_at IS NULL OR ends_at > starts_at", name=op.f("fee_rules_ends_after_start_check")
        ),
        sa.CheckConstraint(
            "rate_den BETWEEN 1 AND 1000000000000 AND rate_num BETWEEN 0 AND rate_den",
            name=op.f("fee_rules_rate_range_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "treasury_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("fee_rules_network_id_treasury_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fee_rules_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("fee_rules_pkey")),
        sa.UniqueConstraint("network_id", "code", name=op.f("fee_rules_network_id_code_key")),
        sa.UniqueConstraint("network_id", "id", name=op.f("fee_rules_network_id_id_key")),
    )
    op.create_table(
        "fee_charges",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("treasury_id", sa.Uuid(), nullable=False),
        sa.Column("cause_trade_id", sa.Uuid(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("waived", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("past_limit", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("trade_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(cause_trade_id IS NULL) <> (due_at IS NULL)", name=op.f("fee_charges_one_cause_check")
        ),
        sa.CheckConstraint(
            "(trade_id IS NULL) = (amount = 0)", name=op.f("fee_charges_booked_when_charged_check")
        ),
        sa.CheckConstraint(
            "amount BETWEEN 0 AND 9007199254740991 AND waived BETWEEN 0 AND 9007199254740991 AND (amount > 0 OR waived > 0)",
            name=op.f("fee_charges_amounts_range_check"),
        ),
        sa.CheckConstraint(
            "waived = 0 OR due_at IS NOT NULL", name=op.f("fee_charges_waived_periodic_only_check")
        ),
        sa.ForeignKeyConstraint(
            ["cause_trade_id"], ["trades.id"], name=op.f("fee_charges_cause_trade_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "account_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("fee_charges_network_id_account_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "rule_id"],
            ["fee_rules.network_id", "fee_rules.id"],
            name=op.f("fee_charges_network_id_rule_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "treasury_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("fee_charges_network_id_treasury_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fee_charges_network_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["trade_id"], ["trades.id"], name=op.f("fee_charges_trade_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("fee_charges_pkey")),
    )
    op.create_index(
        op.f("fee_charges_account_id_created_at_id_idx"),
        "fee_charges",
        ["account_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("fee_charges_account_id_due_at_idx"),
        "fee_charges",
        ["account_id", "due_at"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index(
        op.f("fee_charges_cause_trade_id_idx"),
        "fee_charges",
        ["cause_trade_id"],
        unique=False,
        postgresql_where=sa.text("cause_trade_id IS NOT NULL"),
    )
    op.create_index(
        op.f("fee_charges_levy_once"),
        "fee_charges",
        ["rule_id", "cause_trade_id", "account_id"],
        unique=True,
        postgresql_where=sa.text("cause_trade_id IS NOT NULL"),
    )
    op.create_index(
        op.f("fee_charges_network_id_created_at_id_idx"),
        "fee_charges",
        ["network_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("fee_charges_period_once"),
        "fee_charges",
        ["rule_id", "due_at", "account_id"],
        unique=True,
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index(op.f("fee_charges_trade_id_key"), "fee_charges", ["trade_id"], unique=True)
    op.create_index(
        op.f("fee_charges_treasury_id_due_at_idx"),
        "fee_charges",
        ["treasury_id", "due_at"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_table(
        "fee_rule_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('created', 'changed')", name=op.f("fee_rule_changes_kind_valid_check")
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "rule_id"],
            ["fee_rules.network_id", "fee_rules.id"],
            name=op.f("fee_rule_changes_network_id_rule_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fee_rule_changes_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("fee_rule_changes_pkey")),
    )
    op.create_index(
        op.f("fee_rule_changes_rule_id_changed_at_id_idx"),
        "fee_rule_changes",
        ["rule_id", "changed_at", "id"],
        unique=False,
    )
    op.create_table(
        "fee_runs",
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("rule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("after_account_id", sa.Uuid(), nullable=True),
        sa.Column("charged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("accounts", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id", "rule_id"],
            ["fee_rules.network_id", "fee_rules.id"],
            name=op.f("fee_runs_network_id_rule_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fee_runs_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("rule_id", "due_at", name=op.f("fee_runs_pkey")),
    )
    op.create_index(
        op.f("fee_runs_unfinished_idx"),
        "fee_runs",
        ["rule_id", "due_at"],
        unique=False,
        postgresql_where=sa.text("finished_at IS NULL"),
    )
    public_fee_charges_fee_charges_audit = PGTrigger(
        schema="public",
        signature="fee_charges_audit",
        on_entity="public.fee_charges",
        is_constraint=False,
        definition=(
            "AFTER INSERT ON public.fee_charges FOR EACH ROW WHEN (NEW.trade_id IS NULL) EXECUTE FUNCTION mc_audit_change()"
        ),
    )
    op.create_entity(public_fee_charges_fee_charges_audit)

    public_fee_rules_fee_rules_audit = PGTrigger(
        schema="public",
        signature="fee_rules_audit",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition=(
            "AFTER INSERT\n"
            "          OR UPDATE OF id, network_id, code, kind, treasury_id, account_kind, statuses,\n"
            "                       charge_payer, charge_payee, rate_num, rate_den, amount, minimum, maximum,\n"
            "                       basis, threshold, period, over_limit, starts_at, ends_at, description,\n"
            "                       created_by, created_at ON public.fee_rules FOR EACH ROW EXECUTE FUNCTION mc_audit_change('updated_at')"
        ),
    )
    op.create_entity(public_fee_rules_fee_rules_audit)

    public_mc_create_trade = PGFunction(
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
            "    v_rules fee_rules[];\n"
            "    v_treasuries uuid[];\n"
            "    v_levies jsonb;\n"
            "    v_fees jsonb := '[]'::jsonb;\n"
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
            "            RETURN QUERY SELECT 'replayed'::text, v_rejection.code, v_rejection.detail, NULL::jsonb;\n"
            "        ELSE\n"
            "            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,\n"
            "                                jsonb_build_object('key', p_key), NULL::jsonb;\n"
            "        END IF;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    -- A hold ends after it is booked. Checked only now that the key is known to be new.\n"
            "    IF p_pending AND p_expires_at <= clock_timestamp() THEN\n"
            "        RETURN QUERY SELECT 'invalid'::text, 'validation_error'::text,\n"
            "                            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(\n"
            "                                'location', jsonb_build_array('body', 'expires_at'),\n"
            "                                'message', 'must be in the future',\n"
            "                                'type', 'value_error'))),\n"
            "                            NULL::jsonb;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    IF p_kind IN ('transfer', 'request') AND NOT p_pending THEN\n"
            "        -- mc_levy_rules, inline: one function call fewer on the path of every trade. The\n"
            "        -- treasuries are an array, so that the lock below is two index probes (a BitmapOr)\n"
            "        -- rather than a scan of the network's accounts.\n"
            "        SELECT array_agg(r ORDER BY r.code), array_agg(DISTINCT r.treasury_id)\n"
            "        INTO v_rules, v_treasuries FROM fee_rules r\n"
            "        WHERE r.network_id = p_network_id AND r.kind = 'levy' AND r.starts_at <= clock_timestamp()\n"
            "          AND (r.ends_at IS NULL OR r.ends_at > clock_timestamp());\n"
            "        IF v_rules IS NOT NULL THEN\n"
            "            PERFORM 1 FROM accounts a\n"
            "            WHERE a.network_id = p_network_id\n"
            "              AND (a.code IN (p_payer, p_payee) OR a.id = ANY (v_treasuries))\n"
            "            ORDER BY a.id\n"
            "            FOR UPDATE;\n"
            "        END IF;\n"
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
            "        ELSIF p_kind NOT IN ('federation', 'settlement')\n"
            "              AND v_payer.kind IN ('link', 'settlement') THEN\n"
            "            v_code := 'account_reserved'; v_detail := jsonb_build_object('account', p_payer);\n"
            "        ELSIF p_kind NOT IN ('federation', 'settlement')\n"
            "              AND v_payee.kind IN ('link', 'settlement') THEN\n"
            "            v_code := 'account_reserved'; v_detail := jsonb_build_object('account', p_payee);\n"
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
            "    -- The levies, planned now that the trade passed its own checks: a levy its rule refuses\n"
            "    -- past a limit refuses the trade, like any refusal.\n"
            "    IF v_code IS NULL AND v_rules IS NOT NULL THEN\n"
            "        SELECT l.code, l.detail, l.levies INTO v_code, v_detail, v_levies\n"
            "        FROM mc_plan_levies(v_payer, v_payee, p_amount, 0, v_rules) l;\n"
            "    END IF;\n"
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
            "    IF p_kind IN ('federation', 'settlement') THEN\n"
            "        PERFORM set_config('mutualcredit.federation', 'on', true);\n"
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
            "    IF p_kind IN ('federation', 'settlement') THEN\n"
            "        PERFORM set_config('mutualcredit.federation', 'off', true);\n"
            "    END IF;\n"
            "    IF v_levies IS NOT NULL THEN\n"
            "        v_fees := mc_book_levies(p_network_id, v_trade_id, v_levies, p_actor, v_now);\n"
            "    END IF;\n"
            "\n"
            "    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb,\n"
            "        (to_jsonb(v_trade) - ARRAY['network_id', 'request_hash', 'payer_id', 'payee_id'])\n"
            "        || jsonb_build_object('payer', v_payer.code, 'payee', v_payee.code,\n"
            "                              'reversed_by', NULL, 'fees', v_fees, 'fee', NULL);\n"
            "END $$"
        ),
    )
    op.replace_entity(public_mc_create_trade)

    public_mc_create_trades = PGFunction(
        schema="public",
        signature="mc_create_trades( p_network_id uuid, p_keys text[], p_request_hashes bytea[], p_payers text[], p_payees text[], p_amounts bigint[], p_pendings boolean[], p_expires_at timestamptz[], p_descriptions text[], p_external_refs text[], p_metadata jsonb[], p_actors text[])",
        definition=(
            "returns TABLE (idx integer, outcome text, problem_code text, problem_detail jsonb, trade jsonb)\n"
            "LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    i integer;\n"
            "    v_rules fee_rules[];\n"
            "    v_treasuries uuid[];\n"
            "BEGIN\n"
            "    PERFORM pg_advisory_xact_lock(lock_id)\n"
            "    FROM (SELECT DISTINCT hashtextextended(p_network_id::text || '/' || k, 0) AS lock_id\n"
            "          FROM unnest(p_keys) AS k ORDER BY 1) AS keys;\n"
            "    -- The treasuries of the levy rules in force are locked with the parties (in id order).\n"
            "    v_rules := mc_levy_rules(p_network_id, clock_timestamp());\n"
            "    IF v_rules IS NULL THEN\n"
            "        PERFORM 1 FROM accounts a\n"
            "        WHERE a.network_id = p_network_id AND a.code = ANY (p_payers || p_payees)\n"
            "        ORDER BY a.id FOR UPDATE;\n"
            "    ELSE\n"
            "        v_treasuries := ARRAY(SELECT DISTINCT r.treasury_id FROM unnest(v_rules) r);\n"
            "        PERFORM 1 FROM accounts a\n"
            "        WHERE a.network_id = p_network_id\n"
            "          AND (a.code = ANY (p_payers || p_payees) OR a.id = ANY (v_treasuries))\n"
            "        ORDER BY a.id FOR UPDATE;\n"
            "    END IF;\n"
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
    )
    op.replace_entity(public_mc_create_trades)

    public_mc_resolve_trade = PGFunction(
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
            "    v_kind text;\n"
            "    v_rules fee_rules[];\n"
            "    v_treasuries uuid[];\n"
            "    v_code text;\n"
            "    v_detail jsonb;\n"
            "    v_levies jsonb;\n"
            "    v_payer accounts%ROWTYPE;\n"
            "    v_payee accounts%ROWTYPE;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', p_actor, true);\n"
            "    IF p_action NOT IN ('post', 'void') THEN\n"
            "        RAISE EXCEPTION 'unknown action %', p_action USING ERRCODE = 'invalid_parameter_value';\n"
            "    END IF;\n"
            "    SELECT t.payer_id, t.payee_id, t.kind INTO v_payer_id, v_payee_id, v_kind\n"
            "    FROM trades t WHERE t.network_id = p_network_id AND t.id = p_trade_id;\n"
            "    IF NOT FOUND THEN\n"
            "        RETURN QUERY SELECT 'rejected'::text, 'trade_not_found'::text,\n"
            "                            jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    -- A hold pays its levies when it is posted: the rules' treasuries are locked with the parties.\n"
            "    IF p_action = 'post' AND v_kind IN ('transfer', 'request') THEN\n"
            "        v_rules := mc_levy_rules(p_network_id, clock_timestamp());\n"
            "    END IF;\n"
            "    -- Lock order: accounts by id, then the trade row (as every writer does).\n"
            "    IF v_rules IS NULL THEN\n"
            "        PERFORM 1 FROM accounts a WHERE a.id IN (v_payer_id, v_payee_id) ORDER BY a.id FOR UPDATE;\n"
            "    ELSE\n"
            "        v_treasuries := ARRAY(SELECT DISTINCT r.treasury_id FROM unnest(v_rules) r);\n"
            "        PERFORM 1 FROM accounts a\n"
            "        WHERE a.id = ANY (v_treasuries || ARRAY[v_payer_id, v_payee_id])\n"
            "        ORDER BY a.id FOR UPDATE;\n"
            "    END IF;\n"
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
            "    IF v_rules IS NOT NULL THEN\n"
            "        -- The levies on the posted amount, planned before anything is booked: a levy its rule\n"
            "        -- refuses past a limit refuses the posting, and the hold stays pending.\n"
            "        SELECT * INTO v_payer FROM accounts a WHERE a.id = v_payer_id;\n"
            "        SELECT * INTO v_payee FROM accounts a WHERE a.id = v_payee_id;\n"
            "        SELECT l.code, l.detail, l.levies INTO v_code, v_detail, v_levies\n"
            "        FROM mc_plan_levies(v_payer, v_payee, v_amount, v_trade.amount, v_rules) l;\n"
            "        IF v_code IS NOT NULL THEN\n"
            "            RETURN QUERY SELECT 'rejected'::text, v_code,\n"
            "                                v_detail || jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;\n"
            "            RETURN;\n"
            "        END IF;\n"
            "    END IF;\n"
            "    PERFORM mc_book(p_network_id, p_trade_id, v_payer_id, v_payee_id, v_amount, v_trade.amount, v_now);\n"
            "    UPDATE trades SET status = 'posted', posted_amount = v_amount, resolved_at = v_now\n"
            "    WHERE id = p_trade_id;\n"
            "    IF v_levies IS NOT NULL THEN\n"
            "        PERFORM mc_book_levies(p_network_id, p_trade_id, v_levies, p_actor, v_now);\n"
            "    END IF;\n"
            "    RETURN QUERY SELECT 'posted'::text, NULL::text, NULL::jsonb, mc_trade_json(p_trade_id);\n"
            "END $$"
        ),
    )
    op.replace_entity(public_mc_resolve_trade)

    public_trade_details = PGView(
        schema="public",
        signature="trade_details",
        definition=(
            "SELECT t.id, t.network_id, t.key, payer.code AS payer, payee.code AS payee, t.amount, t.status,\n"
            "       t.posted_amount, t.description, t.external_ref, t.metadata, t.reverses_trade_id,\n"
            "       t.kind, t.reason, t.limit_override, t.created_by, t.expires_at, t.created_at, t.resolved_at,\n"
            "       (SELECT r.id FROM trades r WHERE r.reverses_trade_id = t.id) AS reversed_by,\n"
            "       CASE WHEN t.kind IN ('transfer', 'request') THEN coalesce(\n"
            "           (SELECT jsonb_agg(jsonb_build_object('rule', fr.code, 'account', fa.code,\n"
            "                                                'amount', fc.amount, 'trade_id', fc.trade_id,\n"
            "                                                'past_limit', fc.past_limit) ORDER BY fc.id)\n"
            "            FROM fee_charges fc\n"
            "            JOIN fee_rules fr ON fr.id = fc.rule_id\n"
            "            JOIN accounts fa ON fa.id = fc.account_id\n"
            "            WHERE fc.cause_trade_id = t.id), '[]'::jsonb)\n"
            "       ELSE '[]'::jsonb END AS fees,\n"
            "       CASE WHEN t.kind = 'fee' THEN\n"
            "           (SELECT jsonb_build_object('rule', fr.code, 'kind', fr.kind,\n"
            "                                      'cause_trade_id', fc.cause_trade_id, 'due_at', fc.due_at)\n"
            "            FROM fee_charges fc JOIN fee_rules fr ON fr.id = fc.rule_id\n"
            "            WHERE fc.trade_id = t.id) END AS fee\n"
            "FROM trades t\n"
            "JOIN accounts payer ON payer.id = t.payer_id\n"
            "JOIN accounts payee ON payee.id = t.payee_id"
        ),
    )
    op.replace_entity(public_trade_details)

    public_fee_charges_fee_charges_append_only = PGTrigger(
        schema="public",
        signature="fee_charges_append_only",
        on_entity="public.fee_charges",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON public.fee_charges FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    )
    op.create_entity(public_fee_charges_fee_charges_append_only)

    public_fee_rule_changes_fee_rule_changes_append_only = PGTrigger(
        schema="public",
        signature="fee_rule_changes_append_only",
        on_entity="public.fee_rule_changes",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON public.fee_rule_changes FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    )
    op.create_entity(public_fee_rule_changes_fee_rule_changes_append_only)

    public_fee_rules_fee_rules_append_only = PGTrigger(
        schema="public",
        signature="fee_rules_append_only",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition=(
            "BEFORE DELETE OR TRUNCATE ON public.fee_rules FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change()"
        ),
    )
    op.create_entity(public_fee_rules_fee_rules_append_only)

    public_mc_accounts_treasury_open = PGFunction(
        schema="public",
        signature="mc_accounts_treasury_open()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_rule text;\n"
            "BEGIN\n"
            "    SELECT r.code INTO v_rule FROM fee_rules r\n"
            "    WHERE r.network_id = NEW.network_id AND r.treasury_id = NEW.id\n"
            "      AND (r.ends_at IS NULL OR r.ends_at > clock_timestamp())\n"
            "    ORDER BY r.code LIMIT 1;\n"
            "    IF FOUND THEN\n"
            "        RAISE EXCEPTION 'account % is the treasury of fee rule %', NEW.code, v_rule\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'accounts',\n"
            "                  CONSTRAINT = 'fee_rules_treasury_open', DETAIL = v_rule;\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_accounts_treasury_open)

    public_mc_book_fee = PGFunction(
        schema="public",
        signature="mc_book_fee(p_network_id uuid, p_rule fee_rules, p_account accounts, p_amount bigint, p_waived bigint, p_past_limit boolean, p_cause_id uuid, p_due_at timestamptz, p_actor text, p_now timestamptz)",
        definition=(
            "returns uuid LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_key text;\n"
            "    v_trade_id uuid;\n"
            "    v_when text := to_char(p_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI\"Z\"');\n"
            "BEGIN\n"
            "    IF p_amount > 0 THEN\n"
            "        v_key := '§fee/' || p_rule.code || '/' || coalesce(p_cause_id::text, v_when) || '/'\n"
            "                 || p_account.code;\n"
            "        INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,\n"
            "                            posted_amount, description, kind, reason, limit_override,\n"
            "                            created_by, created_at, resolved_at)\n"
            "        VALUES (p_network_id, v_key, sha256(convert_to(v_key, 'UTF8')), p_account.id,\n"
            "                p_rule.treasury_id, p_amount, 'posted', p_amount,\n"
            "                CASE p_rule.kind\n"
            "                    WHEN 'levy' THEN 'Levy ' || p_rule.code || ' on trade ' || p_cause_id\n"
            "                    WHEN 'membership' THEN 'Membership fee ' || p_rule.code || ' for the '\n"
            "                                           || p_rule.period || ' from ' || v_when\n"
            "                    ELSE 'Demurrage ' || p_rule.code || ' at ' || v_when END,\n"
            "                'fee',\n"
            "                CASE WHEN p_past_limit THEN 'fee rule ' || p_rule.code\n"
            "                                            || ' books past the limit (over_limit = book)' END,\n"
            "                p_past_limit, p_actor, p_now, p_now)\n"
            "        RETURNING id INTO v_trade_id;\n"
            "        IF p_past_limit THEN\n"
            "            PERFORM set_config('mutualcredit.limit_override', 'on', true);\n"
            "        END IF;\n"
            "        PERFORM mc_book(p_network_id, v_trade_id, p_account.id, p_rule.treasury_id, p_amount, 0,\n"
            "                        p_now);\n"
            "        IF p_past_limit THEN\n"
            "            PERFORM set_config('mutualcredit.limit_override', 'off', true);\n"
            "        END IF;\n"
            "    END IF;\n"
            "    INSERT INTO fee_charges (network_id, rule_id, account_id, treasury_id, cause_trade_id,\n"
            "                             due_at, amount, waived, past_limit, trade_id, created_at)\n"
            "    VALUES (p_network_id, p_rule.id, p_account.id, p_rule.treasury_id, p_cause_id, p_due_at,\n"
            "            p_amount, p_waived, p_past_limit, v_trade_id, p_now);\n"
            "    RETURN v_trade_id;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_book_fee)

    public_mc_book_levies = PGFunction(
        schema="public",
        signature="mc_book_levies(p_network_id uuid, p_cause_id uuid, p_levies jsonb, p_actor text, p_now timestamptz)",
        definition=(
            "returns jsonb LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_levy jsonb;\n"
            "    v_account accounts%ROWTYPE;\n"
            "    v_trade_id uuid;\n"
            "    v_fees jsonb := '[]'::jsonb;\n"
            "BEGIN\n"
            "    FOR v_levy IN SELECT * FROM jsonb_array_elements(p_levies) LOOP\n"
            "        SELECT * INTO v_account FROM accounts a WHERE a.id = (v_levy->>'account_id')::uuid;\n"
            "        v_trade_id := mc_book_fee(p_network_id,\n"
            "                                  jsonb_populate_record(NULL::fee_rules, v_levy->'rule'),\n"
            "                                  v_account, (v_levy->>'fee')::bigint, 0,\n"
            "                                  (v_levy->>'past_limit')::boolean, p_cause_id, NULL, p_actor,\n"
            "                                  p_now);\n"
            "        v_fees := v_fees || jsonb_build_array(jsonb_build_object(\n"
            "            'rule', v_levy->'rule'->>'code', 'account', v_levy->>'account',\n"
            "            'amount', (v_levy->>'fee')::bigint, 'trade_id', v_trade_id,\n"
            "            'past_limit', (v_levy->>'past_limit')::boolean));\n"
            "    END LOOP;\n"
            "    RETURN v_fees;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_book_levies)

    public_mc_charge_fees = PGFunction(
        schema="public",
        signature="mc_charge_fees(p_batch integer, p_grace interval DEFAULT '10 seconds')",
        definition=(
            "returns integer LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_now timestamptz := clock_timestamp();\n"
            "    v_rule fee_rules;\n"
            "    v_frozen fee_rules;\n"
            "    v_due timestamptz;\n"
            "    v_run fee_runs%ROWTYPE;\n"
            "    v_ids uuid[];\n"
            "    v_account accounts%ROWTYPE;\n"
            "    v_treasury accounts%ROWTYPE;\n"
            "    v_balance bigint;\n"
            "    v_fee record;\n"
            "    v_charged bigint := 0;\n"
            "BEGIN\n"
            "    PERFORM set_config('mutualcredit.actor', 'system:fees', true),\n"
            "            set_config('mutualcredit.reason', '', true);\n"
            "    FOR v_rule IN\n"
            "        SELECT * FROM fee_rules r\n"
            "        WHERE r.kind <> 'levy' AND r.starts_at <= v_now - p_grace\n"
            "        ORDER BY r.id\n"
            "    LOOP\n"
            "        -- Each rule's boundaries in turn: a finished run (or one with no account to charge)\n"
            "        -- moves on to the rule's next boundary in the same call.\n"
            "        LOOP\n"
            "            SELECT min(f.due_at) INTO v_due FROM fee_runs f\n"
            "            WHERE f.rule_id = v_rule.id AND f.finished_at IS NULL;\n"
            "            IF v_due IS NULL THEN\n"
            "                SELECT mc_fee_boundary(v_rule.period,\n"
            "                                       coalesce(max(f.due_at) + interval '1 microsecond',\n"
            "                                                v_rule.starts_at))\n"
            "                INTO v_due FROM fee_runs f WHERE f.rule_id = v_rule.id;\n"
            "            END IF;\n"
            "            EXIT WHEN v_due > v_now - p_grace\n"
            "                   OR (v_rule.ends_at IS NOT NULL AND v_due >= v_rule.ends_at);\n"
            "            -- The rule as it stood at the boundary (its history's last version by then), so a\n"
            "            -- change made after the boundary (during the grace, the run, or while the service\n"
            "            -- was down) applies from the next one.\n"
            "            INSERT INTO fee_runs (rule_id, due_at, network_id, rule, started_at)\n"
            "            SELECT v_rule.id, v_due, v_rule.network_id,\n"
            "                   coalesce((SELECT c.after || jsonb_build_object('network_id', v_rule.network_id,\n"
            "                                                                   'updated_at', c.changed_at)\n"
            "                             FROM fee_rule_changes c\n"
            "                             WHERE c.rule_id = v_rule.id AND c.changed_at <= v_due\n"
            "                             ORDER BY c.changed_at DESC, c.id DESC LIMIT 1),\n"
            "                            to_jsonb(v_rule)),\n"
            "                   v_now\n"
            "            ON CONFLICT DO NOTHING;\n"
            "            SELECT * INTO v_run FROM fee_runs f\n"
            "            WHERE f.rule_id = v_rule.id AND f.due_at = v_due\n"
            "            FOR UPDATE SKIP LOCKED;\n"
            "            -- Another sweeper is on this run: leave the rule to it.\n"
            "            EXIT WHEN NOT FOUND;\n"
            "            CONTINUE WHEN v_run.finished_at IS NOT NULL;\n"
            "\n"
            "            v_frozen := jsonb_populate_record(NULL::fee_rules, v_run.rule);\n"
            "            -- A treasury closed since the boundary (the rule named another one since, and the old\n"
            "            -- one was closed): the charges go to the rule's treasury now.\n"
            "            IF (SELECT a.status FROM accounts a WHERE a.id = v_frozen.treasury_id) = 'closed' THEN\n"
            "                v_frozen.treasury_id := v_rule.treasury_id;\n"
            "            END IF;\n"
            "            v_ids := ARRAY(\n"
            "                SELECT a.id FROM accounts a\n"
            "                WHERE a.network_id = v_run.network_id AND a.kind = v_frozen.account_kind\n"
            "                  AND a.status = ANY (v_frozen.statuses) AND a.created_at < v_due\n"
            "                  AND a.id <> v_frozen.treasury_id\n"
            "                  AND (v_run.after_account_id IS NULL OR a.id > v_run.after_account_id)\n"
            "                ORDER BY a.id LIMIT p_batch);\n"
            "            IF cardinality(v_ids) = 0 THEN\n"
            "                UPDATE fee_runs SET finished_at = clock_timestamp()\n"
            "                WHERE rule_id = v_run.rule_id AND due_at = v_run.due_at;\n"
            "                CONTINUE;\n"
            "            END IF;\n"
            "            -- One rule's failure (a treasury closed by hand, say) must not stop the others:\n"
            "            -- its batch is undone, the failure logged, and the sweeper goes on to the next rule.\n"
            "            BEGIN\n"
            "                PERFORM 1 FROM accounts a WHERE a.id = ANY (v_ids || v_frozen.treasury_id)\n"
            "                ORDER BY a.id FOR UPDATE;\n"
            "                FOR v_account IN SELECT * FROM accounts a WHERE a.id = ANY (v_ids) ORDER BY a.id LOOP\n"
            "                    -- Its status may have changed since the batch was chosen.\n"
            "                    CONTINUE WHEN NOT (v_account.status = ANY (v_frozen.statuses));\n"
            "                    SELECT * INTO v_treasury FROM accounts a WHERE a.id = v_frozen.treasury_id;\n"
            "                    -- The balance at the boundary, with the periodic charges of earlier boundaries\n"
            "                    -- that were booked after it (a run catching up) counted as of their own\n"
            "                    -- boundary, as they would have been had the service run throughout.\n"
            "                    v_balance := coalesce((SELECT e.balance_after FROM entries e\n"
            "                                           WHERE e.account_id = v_account.id AND e.booked_at < v_due\n"
            "                                           ORDER BY e.booked_at DESC, e.id DESC LIMIT 1), 0)\n"
            "                                 - coalesce((SELECT sum(c.amount) FROM fee_charges c\n"
            "                                             WHERE c.account_id = v_account.id AND c.due_at < v_due\n"
            "                                               AND c.created_at >= v_due), 0)\n"
            "                                 + coalesce((SELECT sum(c.amount) FROM fee_charges c\n"
            "                                             WHERE c.treasury_id = v_account.id AND c.due_at < v_due\n"
            "                                               AND c.created_at >= v_due), 0);\n"
            "                    v_fee := mc_periodic_fee(v_frozen, v_account, v_balance, v_treasury);\n"
            "                    IF v_fee.amount > 0 OR v_fee.waived > 0 THEN\n"
            "                        PERFORM mc_book_fee(v_run.network_id, v_frozen, v_account, v_fee.amount,\n"
            "                                            v_fee.waived, v_fee.past_limit, NULL, v_due,\n"
            "                                            'system:fees', clock_timestamp());\n"
            "                        v_charged := v_charged + v_fee.amount;\n"
            "                    END IF;\n"
            "                END LOOP;\n"
            "                UPDATE fee_runs\n"
            "                SET after_account_id = v_ids[cardinality(v_ids)],\n"
            "                    accounts = accounts + cardinality(v_ids), charged = charged + v_charged\n"
            "                WHERE rule_id = v_run.rule_id AND due_at = v_run.due_at;\n"
            "            EXCEPTION WHEN OTHERS THEN\n"
            "                RAISE WARNING 'fee rule % (network %) at %: %', v_rule.code, v_rule.network_id,\n"
            "                    v_due, SQLERRM;\n"
            "                EXIT;\n"
            "            END;\n"
            "            RETURN cardinality(v_ids);\n"
            "        END LOOP;\n"
            "    END LOOP;\n"
            "    RETURN 0;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_charge_fees)

    public_mc_fee_amount = PGFunction(
        schema="public",
        signature="mc_fee_amount(p_base bigint, p_rate_num bigint, p_rate_den bigint, p_fixed bigint, p_minimum bigint, p_maximum bigint)",
        definition=(
            "returns bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$\n"
            "    SELECT CASE WHEN p_base <= 0 THEN 0 ELSE\n"
            "        least(9007199254740991,\n"
            "              coalesce(p_maximum, 9007199254740991),\n"
            "              greatest(coalesce(p_minimum, 0),\n"
            "                       div(p_base::numeric * p_rate_num, p_rate_den)::bigint + p_fixed))\n"
            "    END\n"
            "$$"
        ),
    )
    op.create_entity(public_mc_fee_amount)

    public_mc_fee_boundary = PGFunction(
        schema="public",
        signature="mc_fee_boundary(p_period text, p_at timestamptz)",
        definition=(
            "returns timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$\n"
            "    SELECT CASE WHEN date_trunc(p_period, p_at, 'UTC') = p_at THEN p_at\n"
            "                ELSE date_trunc(p_period, p_at, 'UTC') + ('1 ' || p_period)::interval END\n"
            "$$"
        ),
    )
    op.create_entity(public_mc_fee_boundary)

    public_mc_fee_preview = PGFunction(
        schema="public",
        signature="mc_fee_preview(p_rule fee_rules, p_at timestamptz, p_window interval DEFAULT '30 days')",
        definition=(
            "returns TABLE (account text, base bigint, fee bigint, amount bigint, waived bigint,\n"
            "               past_limit boolean, trades bigint)\n"
            "LANGUAGE plpgsql STABLE AS $$\n"
            "DECLARE\n"
            "    v_treasury accounts%ROWTYPE;\n"
            "BEGIN\n"
            "    SELECT * INTO v_treasury FROM accounts a WHERE a.id = p_rule.treasury_id;\n"
            "    IF p_rule.kind = 'levy' THEN\n"
            "        RETURN QUERY\n"
            "        SELECT a.code::text, sum(t.posted_amount)::bigint, sum(f.fee)::bigint, sum(f.fee)::bigint,\n"
            "               0::bigint, false, count(*)\n"
            "        FROM trades t\n"
            "        JOIN accounts a ON a.id IN (t.payer_id, t.payee_id)\n"
            "        CROSS JOIN LATERAL (SELECT mc_fee_amount(t.posted_amount, p_rule.rate_num,\n"
            "                                                 p_rule.rate_den, p_rule.amount, p_rule.minimum,\n"
            "                                                 p_rule.maximum) AS fee) f\n"
            "        WHERE t.network_id = p_rule.network_id AND t.kind IN ('transfer', 'request')\n"
            "          AND t.status = 'posted' AND t.created_at >= p_at - p_window AND t.created_at < p_at\n"
            "          AND a.kind = p_rule.account_kind AND a.id <> p_rule.treasury_id\n"
            "          AND ((a.id = t.payer_id AND p_rule.charge_payer)\n"
            "               OR (a.id = t.payee_id AND p_rule.charge_payee))\n"
            "        GROUP BY a.code\n"
            "        HAVING sum(f.fee) > 0\n"
            "        ORDER BY a.code;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "    RETURN QUERY\n"
            "    SELECT a.code::text, p.base, p.fee, p.amount, p.waived, p.past_limit, NULL::bigint\n"
            "    FROM accounts a\n"
            "    CROSS JOIN LATERAL mc_periodic_fee(p_rule, a, a.balance, v_treasury) p\n"
            "    WHERE a.network_id = p_rule.network_id AND a.kind = p_rule.account_kind\n"
            "      AND a.status = ANY (p_rule.statuses) AND a.id <> p_rule.treasury_id\n"
            "      AND p.fee > 0\n"
            "    ORDER BY a.code;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_fee_preview)

    public_mc_fee_rule_history = PGFunction(
        schema="public",
        signature="mc_fee_rule_history()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_reason text := mc_reason();\n"
            "    v_before jsonb;\n"
            "    v_after jsonb := to_jsonb(NEW) - ARRAY['network_id', 'updated_at'];\n"
            "BEGIN\n"
            "    IF TG_OP = 'UPDATE' THEN\n"
            "        v_before := to_jsonb(OLD) - ARRAY['network_id', 'updated_at'];\n"
            "        IF v_before = v_after THEN\n"
            "            RETURN NULL;\n"
            "        END IF;\n"
            "    END IF;\n"
            "    IF v_reason IS NULL THEN\n"
            "        RAISE EXCEPTION 'a fee rule is made or changed with a reason (mutualcredit.reason)'\n"
            "            USING ERRCODE = 'not_null_violation', CONSTRAINT = 'fee_rule_changes_reason';\n"
            "    END IF;\n"
            "    INSERT INTO fee_rule_changes (network_id, rule_id, kind, before, after, reason, actor,\n"
            "                                  changed_at)\n"
            "    VALUES (NEW.network_id, NEW.id, CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'changed' END,\n"
            "            v_before, v_after, v_reason, mc_actor(), clock_timestamp());\n"
            "    RETURN NULL;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_fee_rule_history)

    public_mc_fee_rules_guard = PGFunction(
        schema="public",
        signature="mc_fee_rules_guard()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "DECLARE\n"
            "    v_kind text;\n"
            "    v_status text;\n"
            "    v_other text;\n"
            "BEGIN\n"
            "    IF TG_OP = 'UPDATE' AND (NEW.network_id <> OLD.network_id OR NEW.code <> OLD.code\n"
            "                             OR NEW.kind <> OLD.kind OR NEW.created_at <> OLD.created_at\n"
            "                             OR NEW.created_by <> OLD.created_by\n"
            "                             OR (OLD.starts_at <= clock_timestamp()\n"
            "                                 AND (NEW.starts_at <> OLD.starts_at\n"
            "                                      OR NEW.period IS DISTINCT FROM OLD.period))) THEN\n"
            "        RAISE EXCEPTION 'a fee rule''s network, code, kind and creation never change, nor its start and period once it has started'\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'fee_rules',\n"
            "                  CONSTRAINT = 'fee_rules_fixed';\n"
            "    END IF;\n"
            "    IF TG_OP = 'INSERT' OR NEW.treasury_id <> OLD.treasury_id THEN\n"
            "        SELECT a.kind, a.status INTO v_kind, v_status\n"
            "        FROM accounts a WHERE a.network_id = NEW.network_id AND a.id = NEW.treasury_id\n"
            "        FOR SHARE;\n"
            "        IF v_kind IS DISTINCT FROM 'system' OR v_status IS DISTINCT FROM 'active' THEN\n"
            "            RAISE EXCEPTION 'a fee rule''s treasury is an active system account of its network'\n"
            "                USING ERRCODE = 'check_violation', TABLE = 'fee_rules',\n"
            "                      CONSTRAINT = 'fee_rules_treasury_valid';\n"
            "        END IF;\n"
            "    END IF;\n"
            "    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.network_id::text || '/fee_rules', 0));\n"
            "    SELECT o.code INTO v_other FROM fee_rules o\n"
            "    WHERE o.network_id = NEW.network_id AND o.id <> NEW.id AND o.kind = NEW.kind\n"
            "      AND o.account_kind = NEW.account_kind\n"
            "      AND (NEW.kind <> 'levy' OR (o.charge_payer AND NEW.charge_payer)\n"
            "           OR (o.charge_payee AND NEW.charge_payee))\n"
            "      AND tstzrange(o.starts_at, o.ends_at) && tstzrange(NEW.starts_at, NEW.ends_at)\n"
            "    ORDER BY o.code LIMIT 1;\n"
            "    IF FOUND THEN\n"
            "        RAISE EXCEPTION 'fee rule % would charge the same accounts as rule % at the same time',\n"
            "                        NEW.code, v_other\n"
            "            USING ERRCODE = 'exclusion_violation', TABLE = 'fee_rules',\n"
            "                  CONSTRAINT = 'fee_rules_no_overlap', DETAIL = v_other;\n"
            "    END IF;\n"
            "    NEW.updated_at := clock_timestamp();\n"
            "    IF TG_OP = 'INSERT' THEN\n"
            "        NEW.created_at := NEW.updated_at;\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_fee_rules_guard)

    public_mc_levy_rules = PGFunction(
        schema="public",
        signature="mc_levy_rules(p_network_id uuid, p_at timestamptz)",
        definition=(
            "returns fee_rules[] LANGUAGE plpgsql STABLE AS $$\n"
            "DECLARE\n"
            "    v_rules fee_rules[];\n"
            "BEGIN\n"
            "    SELECT array_agg(r ORDER BY r.code) INTO v_rules FROM fee_rules r\n"
            "    WHERE r.network_id = p_network_id AND r.kind = 'levy' AND r.starts_at <= p_at\n"
            "      AND (r.ends_at IS NULL OR r.ends_at > p_at);\n"
            "    RETURN v_rules;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_levy_rules)

    public_mc_periodic_fee = PGFunction(
        schema="public",
        signature="mc_periodic_fee(p_rule fee_rules, p_account accounts, p_balance bigint, p_treasury accounts, OUT base bigint, OUT fee bigint, OUT amount bigint, OUT waived bigint, OUT past_limit boolean)",
        definition=(
            "returns record\n"
            "LANGUAGE plpgsql STABLE AS $$\n"
            "DECLARE\n"
            "    v_room bigint;\n"
            "BEGIN\n"
            "    IF p_rule.kind = 'membership' THEN\n"
            "        base := p_rule.amount;\n"
            "        fee := p_rule.amount;\n"
            "    ELSE\n"
            "        base := CASE WHEN p_rule.basis = 'balance_above'\n"
            "                     THEN greatest(0, p_balance - p_rule.threshold)\n"
            "                     ELSE greatest(0, -p_balance - p_account.credit_limit - p_rule.threshold) END;\n"
            "        fee := mc_fee_amount(base, p_rule.rate_num, p_rule.rate_den, p_rule.amount,\n"
            "                             p_rule.minimum, p_rule.maximum);\n"
            "    END IF;\n"
            "    v_room := greatest(0, least(\n"
            "        p_account.balance - p_account.pending_debits + p_account.credit_limit,\n"
            "        CASE WHEN p_treasury.balance_max IS NULL THEN fee\n"
            "             ELSE p_treasury.balance_max - p_treasury.balance - p_treasury.pending_credits END));\n"
            "    past_limit := fee > v_room;\n"
            "    IF past_limit AND p_rule.over_limit = 'refuse' THEN\n"
            "        amount := v_room;\n"
            "        waived := fee - v_room;\n"
            "        past_limit := false;\n"
            "    ELSE\n"
            "        amount := fee;\n"
            "        waived := 0;\n"
            "    END IF;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_periodic_fee)

    public_mc_plan_levies = PGFunction(
        schema="public",
        signature="mc_plan_levies(p_payer accounts, p_payee accounts, p_amount bigint, p_release bigint, p_rules fee_rules[], OUT code text, OUT detail jsonb, OUT levies jsonb)",
        definition=(
            "returns record LANGUAGE plpgsql STABLE AS $$\n"
            "DECLARE\n"
            "    v_ids uuid[];\n"
            "    v_codes text[];\n"
            "    v_avail bigint[];\n"
            "    v_room bigint[];\n"
            "    v_room_before bigint[];\n"
            "    v_account accounts%ROWTYPE;\n"
            "    v_rule fee_rules;\n"
            "    v_side text;\n"
            "    v_charged accounts%ROWTYPE;\n"
            "    v_fee bigint;\n"
            "    v_past boolean;\n"
            "    i integer;\n"
            "    j integer;\n"
            "BEGIN\n"
            "    -- What each account may still pay (avail) and receive (room; NULL: no upper limit).\n"
            "    FOR v_account IN\n"
            "        SELECT * FROM accounts a\n"
            "        WHERE a.id = ANY (ARRAY(SELECT r.treasury_id FROM unnest(p_rules) r)\n"
            "                          || ARRAY[p_payer.id, p_payee.id])\n"
            "    LOOP\n"
            "        v_ids := v_ids || v_account.id;\n"
            "        v_codes := v_codes || v_account.code::text;\n"
            "        v_avail := v_avail || (v_account.balance - v_account.pending_debits\n"
            "                               + v_account.credit_limit);\n"
            "        v_room := v_room || (v_account.balance_max - v_account.balance\n"
            "                             - v_account.pending_credits);\n"
            "    END LOOP;\n"
            "    v_room_before := v_room;\n"
            "    -- The trade itself.\n"
            "    i := array_position(v_ids, p_payer.id);\n"
            "    v_avail[i] := v_avail[i] + p_release - p_amount;\n"
            "    v_room[i] := v_room[i] + p_amount;\n"
            "    i := array_position(v_ids, p_payee.id);\n"
            "    v_avail[i] := v_avail[i] + p_amount;\n"
            "    v_room[i] := v_room[i] + p_release - p_amount;\n"
            "\n"
            "    FOREACH v_rule IN ARRAY p_rules LOOP\n"
            "        FOREACH v_side IN ARRAY ARRAY['payer', 'payee'] LOOP\n"
            "            CONTINUE WHEN (v_side = 'payer' AND NOT v_rule.charge_payer)\n"
            "                       OR (v_side = 'payee' AND NOT v_rule.charge_payee);\n"
            "            v_charged := CASE v_side WHEN 'payer' THEN p_payer ELSE p_payee END;\n"
            "            CONTINUE WHEN v_charged.kind <> v_rule.account_kind\n"
            "                       OR v_charged.id = v_rule.treasury_id;\n"
            "            v_fee := mc_fee_amount(p_amount, v_rule.rate_num, v_rule.rate_den, v_rule.amount,\n"
            "                                   v_rule.minimum, v_rule.maximum);\n"
            "            CONTINUE WHEN v_fee = 0;\n"
            "            i := array_position(v_ids, v_charged.id);\n"
            "            j := array_position(v_ids, v_rule.treasury_id);\n"
            "            v_past := false;\n"
            "            IF v_avail[i] < v_fee THEN\n"
            "                v_past := true;\n"
            "                IF v_rule.over_limit = 'refuse' THEN\n"
            "                    code := 'credit_limit_exceeded';\n"
            "                    detail := jsonb_build_object(\n"
            "                        'account', v_charged.code, 'fee_rule', v_rule.code,\n"
            "                        'available', v_charged.balance - v_charged.pending_debits\n"
            "                                     + v_charged.credit_limit,\n"
            "                        'shortfall', v_fee - v_avail[i]);\n"
            "                    levies := NULL;\n"
            "                    RETURN;\n"
            "                END IF;\n"
            "            END IF;\n"
            "            IF v_room[j] < v_fee THEN\n"
            "                v_past := true;\n"
            "                IF v_rule.over_limit = 'refuse' THEN\n"
            "                    code := 'balance_max_exceeded';\n"
            "                    detail := jsonb_build_object(\n"
            "                        'account', v_codes[j], 'fee_rule', v_rule.code,\n"
            "                        'headroom', v_room_before[j], 'excess', v_fee - v_room[j]);\n"
            "                    levies := NULL;\n"
            "                    RETURN;\n"
            "                END IF;\n"
            "            END IF;\n"
            "            v_avail[i] := v_avail[i] - v_fee;\n"
            "            v_room[i] := v_room[i] + v_fee;\n"
            "            v_avail[j] := v_avail[j] + v_fee;\n"
            "            v_room[j] := v_room[j] - v_fee;\n"
            "            levies := coalesce(levies, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(\n"
            "                'rule', to_jsonb(v_rule), 'account_id', v_charged.id, 'account', v_charged.code,\n"
            "                'fee', v_fee, 'past_limit', v_past));\n"
            "        END LOOP;\n"
            "    END LOOP;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_plan_levies)

    public_accounts_accounts_treasury_open = PGTrigger(
        schema="public",
        signature="accounts_treasury_open",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OF status ON public.accounts FOR EACH ROW WHEN (NEW.status = 'closed' AND OLD.status <> 'closed')\n"
            "    EXECUTE FUNCTION mc_accounts_treasury_open()"
        ),
    )
    op.create_entity(public_accounts_accounts_treasury_open)

    public_fee_rules_fee_rules_guard = PGTrigger(
        schema="public",
        signature="fee_rules_guard",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition=(
            "BEFORE INSERT OR UPDATE ON public.fee_rules FOR EACH ROW EXECUTE FUNCTION mc_fee_rules_guard()"
        ),
    )
    op.create_entity(public_fee_rules_fee_rules_guard)

    public_fee_rules_fee_rules_history = PGTrigger(
        schema="public",
        signature="fee_rules_history",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE ON public.fee_rules FOR EACH ROW EXECUTE FUNCTION mc_fee_rule_history()"
        ),
    )
    op.create_entity(public_fee_rules_fee_rules_history)


def downgrade() -> None:
    public_fee_rules_fee_rules_history = PGTrigger(
        schema="public",
        signature="fee_rules_history",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_fee_rules_fee_rules_history)

    public_fee_rules_fee_rules_guard = PGTrigger(
        schema="public",
        signature="fee_rules_guard",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_fee_rules_fee_rules_guard)

    public_accounts_accounts_treasury_open = PGTrigger(
        schema="public",
        signature="accounts_treasury_open",
        on_entity="public.accounts",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_accounts_accounts_treasury_open)

    public_mc_plan_levies = PGFunction(
        schema="public",
        signature="mc_plan_levies(p_payer accounts, p_payee accounts, p_amount bigint, p_release bigint, p_rules fee_rules[], OUT code text, OUT detail jsonb, OUT levies jsonb)",
        definition="",
    )
    op.drop_entity(public_mc_plan_levies)

    public_mc_periodic_fee = PGFunction(
        schema="public",
        signature="mc_periodic_fee(p_rule fee_rules, p_account accounts, p_balance bigint, p_treasury accounts, OUT base bigint, OUT fee bigint, OUT amount bigint, OUT waived bigint, OUT past_limit boolean)",
        definition="",
    )
    op.drop_entity(public_mc_periodic_fee)

    public_mc_levy_rules = PGFunction(
        schema="public",
        signature="mc_levy_rules(p_network_id uuid, p_at timestamptz)",
        definition="",
    )
    op.drop_entity(public_mc_levy_rules)

    public_mc_fee_rules_guard = PGFunction(
        schema="public",
        signature="mc_fee_rules_guard()",
        definition="",
    )
    op.drop_entity(public_mc_fee_rules_guard)

    public_mc_fee_rule_history = PGFunction(
        schema="public",
        signature="mc_fee_rule_history()",
        definition="",
    )
    op.drop_entity(public_mc_fee_rule_history)

    public_mc_fee_preview = PGFunction(
        schema="public",
        signature="mc_fee_preview(p_rule fee_rules, p_at timestamptz, p_window interval DEFAULT '30 days')",
        definition="",
    )
    op.drop_entity(public_mc_fee_preview)

    public_mc_fee_boundary = PGFunction(
        schema="public",
        signature="mc_fee_boundary(p_period text, p_at timestamptz)",
        definition="",
    )
    op.drop_entity(public_mc_fee_boundary)

    public_mc_fee_amount = PGFunction(
        schema="public",
        signature="mc_fee_amount(p_base bigint, p_rate_num bigint, p_rate_den bigint, p_fixed bigint, p_minimum bigint, p_maximum bigint)",
        definition="",
    )
    op.drop_entity(public_mc_fee_amount)

    public_mc_charge_fees = PGFunction(
        schema="public",
        signature="mc_charge_fees(p_batch integer, p_grace interval DEFAULT '10 seconds')",
        definition="",
    )
    op.drop_entity(public_mc_charge_fees)

    public_mc_book_levies = PGFunction(
        schema="public",
        signature="mc_book_levies(p_network_id uuid, p_cause_id uuid, p_levies jsonb, p_actor text, p_now timestamptz)",
        definition="",
    )
    op.drop_entity(public_mc_book_levies)

    public_mc_book_fee = PGFunction(
        schema="public",
        signature="mc_book_fee(p_network_id uuid, p_rule fee_rules, p_account accounts, p_amount bigint, p_waived bigint, p_past_limit boolean, p_cause_id uuid, p_due_at timestamptz, p_actor text, p_now timestamptz)",
        definition="",
    )
    op.drop_entity(public_mc_book_fee)

    public_mc_accounts_treasury_open = PGFunction(
        schema="public",
        signature="mc_accounts_treasury_open()",
        definition="",
    )
    op.drop_entity(public_mc_accounts_treasury_open)

    public_fee_rules_fee_rules_append_only = PGTrigger(
        schema="public",
        signature="fee_rules_append_only",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_fee_rules_fee_rules_append_only)

    public_fee_rule_changes_fee_rule_changes_append_only = PGTrigger(
        schema="public",
        signature="fee_rule_changes_append_only",
        on_entity="public.fee_rule_changes",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_fee_rule_changes_fee_rule_changes_append_only)

    public_fee_charges_fee_charges_append_only = PGTrigger(
        schema="public",
        signature="fee_charges_append_only",
        on_entity="public.fee_charges",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_fee_charges_fee_charges_append_only)

    public_trade_details = PGView(
        schema="public",
        signature="trade_details",
        definition=(
            "SELECT t.id,\n"
            "    t.network_id,\n"
            "    t.key,\n"
            "    payer.code AS payer,\n"
            "    payee.code AS payee,\n"
            "    t.amount,\n"
            "    t.status,\n"
            "    t.posted_amount,\n"
            "    t.description,\n"
            "    t.external_ref,\n"
            "    t.metadata,\n"
            "    t.reverses_trade_id,\n"
            "    t.kind,\n"
            "    t.reason,\n"
            "    t.limit_override,\n"
            "    t.created_by,\n"
            "    t.expires_at,\n"
            "    t.created_at,\n"
            "    t.resolved_at,\n"
            "    ( SELECT r.id\n"
            "           FROM trades r\n"
            "          WHERE (r.reverses_trade_id = t.id)) AS reversed_by\n"
            "   FROM ((trades t\n"
            "     JOIN accounts payer ON ((payer.id = t.payer_id)))\n"
            "     JOIN accounts payee ON ((payee.id = t.payee_id)))"
        ),
    )
    op.replace_entity(public_trade_details)

    public_mc_resolve_trade = PGFunction(
        schema="public",
        signature="mc_resolve_trade(p_network_id uuid, p_trade_id uuid, p_action text, p_amount bigint, p_actor text)",
        definition=(
            "returns TABLE(outcome text, problem_code text, problem_detail jsonb, trade jsonb)\n"
            " LANGUAGE plpgsql\n"
            "AS $function$\n"
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
            "END $function$"
        ),
    )
    op.replace_entity(public_mc_resolve_trade)

    public_mc_create_trades = PGFunction(
        schema="public",
        signature="mc_create_trades(p_network_id uuid, p_keys text[], p_request_hashes bytea[], p_payers text[], p_payees text[], p_amounts bigint[], p_pendings boolean[], p_expires_at timestamp with time zone[], p_descriptions text[], p_external_refs text[], p_metadata jsonb[], p_actors text[])",
        definition=(
            "returns TABLE(idx integer, outcome text, problem_code text, problem_detail jsonb, trade jsonb)\n"
            " LANGUAGE plpgsql\n"
            "AS $function$\n"
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
            "END $function$"
        ),
    )
    op.replace_entity(public_mc_create_trades)

    public_mc_create_trade = PGFunction(
        schema="public",
        signature="mc_create_trade(p_network_id uuid, p_key text, p_request_hash bytea, p_payer text, p_payee text, p_amount bigint, p_pending boolean, p_expires_at timestamp with time zone, p_description text, p_external_ref text, p_metadata jsonb, p_actor text, p_kind text DEFAULT 'transfer'::text, p_reverses_trade_id uuid DEFAULT NULL::uuid, p_reason text DEFAULT NULL::text, p_override boolean DEFAULT false, p_remember_refusal boolean DEFAULT true)",
        definition=(
            "returns TABLE(outcome text, problem_code text, problem_detail jsonb, trade jsonb)\n"
            " LANGUAGE plpgsql\n"
            "AS $function$\n"
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
            "            RETURN QUERY SELECT 'replayed'::text, v_rejection.code, v_rejection.detail, NULL::jsonb;\n"
            "        ELSE\n"
            "            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,\n"
            "                                jsonb_build_object('key', p_key), NULL::jsonb;\n"
            "        END IF;\n"
            "        RETURN;\n"
            "    END IF;\n"
            "\n"
            "    -- A hold ends after it is booked. Checked only now that the key is known to be new.\n"
            "    IF p_pending AND p_expires_at <= clock_timestamp() THEN\n"
            "        RETURN QUERY SELECT 'invalid'::text, 'validation_error'::text,\n"
            "                            jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(\n"
            "                                'location', jsonb_build_array('body', 'expires_at'),\n"
            "                                'message', 'must be in the future',\n"
            "                                'type', 'value_error'))),\n"
            "                            NULL::jsonb;\n"
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
            "        ELSIF p_kind NOT IN ('federation', 'settlement')\n"
            "              AND v_payer.kind IN ('link', 'settlement') THEN\n"
            "            v_code := 'account_reserved'; v_detail := jsonb_build_object('account', p_payer);\n"
            "        ELSIF p_kind NOT IN ('federation', 'settlement')\n"
            "              AND v_payee.kind IN ('link', 'settlement') THEN\n"
            "            v_code := 'account_reserved'; v_detail := jsonb_build_object('account', p_payee);\n"
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
            "    IF p_kind IN ('federation', 'settlement') THEN\n"
            "        PERFORM set_config('mutualcredit.federation', 'on', true);\n"
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
            "    IF p_kind IN ('federation', 'settlement') THEN\n"
            "        PERFORM set_config('mutualcredit.federation', 'off', true);\n"
            "    END IF;\n"
            "\n"
            "    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb,\n"
            "        (to_jsonb(v_trade) - ARRAY['network_id', 'request_hash', 'payer_id', 'payee_id'])\n"
            "        || jsonb_build_object('payer', v_payer.code, 'payee', v_payee.code,\n"
            "                              'reversed_by', NULL);\n"
            "END $function$"
        ),
    )
    op.replace_entity(public_mc_create_trade)

    public_fee_rules_fee_rules_audit = PGTrigger(
        schema="public",
        signature="fee_rules_audit",
        on_entity="public.fee_rules",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_fee_rules_fee_rules_audit)

    public_fee_charges_fee_charges_audit = PGTrigger(
        schema="public",
        signature="fee_charges_audit",
        on_entity="public.fee_charges",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_fee_charges_fee_charges_audit)
    op.drop_index(
        op.f("fee_runs_unfinished_idx"),
        table_name="fee_runs",
        postgresql_where=sa.text("finished_at IS NULL"),
    )
    op.drop_table("fee_runs")
    op.drop_index(op.f("fee_rule_changes_rule_id_changed_at_id_idx"), table_name="fee_rule_changes")
    op.drop_table("fee_rule_changes")
    op.drop_index(
        op.f("fee_charges_treasury_id_due_at_idx"),
        table_name="fee_charges",
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.drop_index(op.f("fee_charges_trade_id_key"), table_name="fee_charges")
    op.drop_index(
        op.f("fee_charges_period_once"),
        table_name="fee_charges",
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.drop_index(op.f("fee_charges_network_id_created_at_id_idx"), table_name="fee_charges")
    op.drop_index(
        op.f("fee_charges_levy_once"),
        table_name="fee_charges",
        postgresql_where=sa.text("cause_trade_id IS NOT NULL"),
    )
    op.drop_index(
        op.f("fee_charges_cause_trade_id_idx"),
        table_name="fee_charges",
        postgresql_where=sa.text("cause_trade_id IS NOT NULL"),
    )
    op.drop_index(
        op.f("fee_charges_account_id_due_at_idx"),
        table_name="fee_charges",
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.drop_index(op.f("fee_charges_account_id_created_at_id_idx"), table_name="fee_charges")
    op.drop_table("fee_charges")
    op.drop_table("fee_rules")
    _kinds(_KINDS_BEFORE)
