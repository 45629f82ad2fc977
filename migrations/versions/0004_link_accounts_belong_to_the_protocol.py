"""A link's accounts belong to the protocol: only its own bookings move them.

A member could pay `link.<peer>` or `settlement.<peer>` in a local trade, or a member of a peer
could pay this network's `link.<other>` through an incoming transfer; the link's ledger then
disagreed with its records, and a member could use up a trust cap toward another network. An
operator could open accounts of kind `link`, or with codes `link.*`, by hand.

- The settlement account of a link gets a kind of its own, `settlement` (it was `system`, so it
  could also be chosen as a write-off account): the domain `account_kind` admits it, and every
  existing link's settlement account is moved to it (recorded in the audit log, actor
  `migration:0004`).
- `mc_create_trade` refuses a trade that names an account of kind `link` or `settlement` unless
  the trade is the protocol's own (kind `federation` or `settlement`): `account_reserved`,
  recorded under the key like every refusal. The protocol's bookings set
  `mutualcredit.federation` around their writes, as `mc_finish_hold` already did.
- The triggers `accounts_protocol_only` (balance, holds, status or kind of such an account) and
  `accounts_protocol_only_open` (opening one, or any account with a code `link.*` or
  `settlement.*`) refuse every other writer, whoever it is: PostgreSQL itself keeps the rule.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 16:47:26.192583
"""

from collections.abc import Sequence

from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_KINDS_BEFORE = "VALUE IN ('member', 'system', 'link')"
_KINDS_AFTER = "VALUE IN ('member', 'system', 'link', 'settlement')"


def _kinds(check: str) -> None:
    op.execute("ALTER DOMAIN account_kind DROP CONSTRAINT account_kind_check")
    op.execute(f"ALTER DOMAIN account_kind ADD CONSTRAINT account_kind_check CHECK ({check})")


def upgrade() -> None:
    _kinds(_KINDS_AFTER)
    op.execute("SELECT set_config('mutualcredit.actor', 'migration:0004', true)")
    op.execute(
        "UPDATE accounts SET kind = 'settlement'"
        " WHERE id IN (SELECT settlement_account_id FROM links)"
    )
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
            "END $$"
        ),
    )
    op.replace_entity(public_mc_create_trade)

    public_mc_accounts_protocol_only = PGFunction(
        schema="public",
        signature="mc_accounts_protocol_only()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF TG_OP = 'INSERT' AND (NEW.kind IN ('link', 'settlement'))\n"
            "                            IS DISTINCT FROM (NEW.code ~ '^(link|settlement)\\.') THEN\n"
            "        RAISE EXCEPTION 'account %: the codes link.* and settlement.* are for the accounts of a federation link', NEW.code\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'accounts',\n"
            "                  CONSTRAINT = 'accounts_protocol_only';\n"
            "    END IF;\n"
            "    IF TG_OP = 'UPDATE' AND NEW.kind IS DISTINCT FROM OLD.kind THEN\n"
            "        RAISE EXCEPTION 'account %: an account of a federation link never changes kind', OLD.code\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'accounts',\n"
            "                  CONSTRAINT = 'accounts_protocol_only';\n"
            "    END IF;\n"
            "    IF coalesce(current_setting('mutualcredit.federation', true), '') <> 'on' THEN\n"
            "        RAISE EXCEPTION 'account % stands for another network: only the federation protocol moves it', NEW.code\n"
            "            USING ERRCODE = 'check_violation', TABLE = 'accounts',\n"
            "                  CONSTRAINT = 'accounts_protocol_only';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_accounts_protocol_only)

    public_accounts_accounts_protocol_only = PGTrigger(
        schema="public",
        signature="accounts_protocol_only",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OF balance, pending_debits, pending_credits, status, kind ON public.accounts FOR EACH ROW\n"
            "    WHEN (OLD.kind IN ('link', 'settlement') OR NEW.kind IN ('link', 'settlement'))\n"
            "    EXECUTE FUNCTION mc_accounts_protocol_only()"
        ),
    )
    op.create_entity(public_accounts_accounts_protocol_only)

    public_accounts_accounts_protocol_only_open = PGTrigger(
        schema="public",
        signature="accounts_protocol_only_open",
        on_entity="public.accounts",
        is_constraint=False,
        definition=(
            "BEFORE INSERT ON public.accounts FOR EACH ROW\n"
            "    WHEN (NEW.kind IN ('link', 'settlement') OR NEW.code ~ '^(link|settlement)\\.')\n"
            "    EXECUTE FUNCTION mc_accounts_protocol_only()"
        ),
    )
    op.create_entity(public_accounts_accounts_protocol_only_open)


def downgrade() -> None:
    public_accounts_accounts_protocol_only_open = PGTrigger(
        schema="public",
        signature="accounts_protocol_only_open",
        on_entity="public.accounts",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_accounts_accounts_protocol_only_open)

    public_accounts_accounts_protocol_only = PGTrigger(
        schema="public",
        signature="accounts_protocol_only",
        on_entity="public.accounts",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_accounts_accounts_protocol_only)

    public_mc_accounts_protocol_only = PGFunction(
        schema="public",
        signature="mc_accounts_protocol_only()",
        definition="",
    )
    op.drop_entity(public_mc_accounts_protocol_only)

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
            "END $function$"
        ),
    )
    op.replace_entity(public_mc_create_trade)

    op.execute("SELECT set_config('mutualcredit.actor', 'migration:0004', true)")
    op.execute("UPDATE accounts SET kind = 'system' WHERE kind = 'settlement'")
    _kinds(_KINDS_BEFORE)
