"""Core ledger: networks, accounts, trades, entries, rejections, API keys, idempotency records.

The invariants live here, in PostgreSQL, so that no code path (and no direct SQL) can break them:

1. each trade's entries sum to zero (statement trigger on entries), and the balances of a network
   sum to zero with its pending debits equal to its pending credits (statement trigger on accounts);
2. every account row keeps balance - pending_debits >= -credit_limit and
   balance + pending_credits <= balance_max (CHECK constraints: they hold under any interleaving);
3. entries and rejections never change, trades change only from pending to a final status, and no
   ledger row is ever deleted (triggers);
4. a trade key is unique per network (unique indexes on trades and trade_rejections).

The write path is the SQL functions at the end (mc_create_trade, mc_resolve_trade,
mc_expire_overdue): one call per request, accounts locked in id order, no client code in between.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 2^53 - 1: the largest integer every JSON client (JavaScript included) represents exactly.
MAX_AMOUNT = "9007199254740991"

TRIGGERS_AND_FUNCTIONS = r"""
-- ---------------------------------------------------------------------------------------------
-- Guards: append-only tables and immutable columns.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: ledger history is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME,
              CONSTRAINT = TG_TABLE_NAME || '_append_only';
END $$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
CREATE TRIGGER trade_rejections_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON trade_rejections
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
CREATE TRIGGER trades_append_only BEFORE DELETE OR TRUNCATE ON trades
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
CREATE TRIGGER accounts_append_only BEFORE DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

-- A trade is final once it is posted, voided or expired. A pending trade changes once, and only
-- its status, posted_amount and resolved_at.
CREATE FUNCTION mc_trades_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'trade % is % and can no longer change', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';
    END IF;
    IF NEW.status NOT IN ('posted', 'voided', 'expired') THEN
        RAISE EXCEPTION 'a pending trade can only become posted, voided or expired'
            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';
    END IF;
    IF (NEW.id, NEW.network_id, NEW.key, NEW.request_hash, NEW.payer_id, NEW.payee_id, NEW.amount,
        NEW.description, NEW.external_ref, NEW.metadata, NEW.reverses_trade_id, NEW.expires_at,
        NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.network_id, OLD.key, OLD.request_hash, OLD.payer_id, OLD.payee_id, OLD.amount,
        OLD.description, OLD.external_ref, OLD.metadata, OLD.reverses_trade_id, OLD.expires_at,
        OLD.created_at) THEN
        RAISE EXCEPTION 'only the status of a pending trade can change'
            USING ERRCODE = 'restrict_violation', TABLE = 'trades', CONSTRAINT = 'trades_final';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trades_final BEFORE UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION mc_trades_guard_update();

-- A network's code (its address) and scale (the meaning of every stored amount) never change.
CREATE FUNCTION mc_networks_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.code <> OLD.code OR NEW.scale <> OLD.scale THEN
        RAISE EXCEPTION 'a network''s code and scale are fixed at creation'
            USING ERRCODE = 'restrict_violation', TABLE = 'networks', CONSTRAINT = 'networks_fixed';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER networks_fixed BEFORE UPDATE ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_networks_guard_update();

-- ---------------------------------------------------------------------------------------------
-- Zero sum. Statement triggers with transition tables: one check per statement, however many
-- rows it touched. The ledger functions move both sides of a trade in one statement.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_entries_zero_sum() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows GROUP BY trade_id HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'the entries of a trade must sum to zero'
            USING ERRCODE = 'check_violation', TABLE = 'entries', CONSTRAINT = 'entries_zero_sum';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER entries_zero_sum AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mc_entries_zero_sum();

CREATE FUNCTION mc_accounts_open_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows
               WHERE balance <> 0 OR pending_debits <> 0 OR pending_credits <> 0) THEN
        RAISE EXCEPTION 'an account opens with a zero balance and no holds'
            USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_open_empty AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mc_accounts_open_empty();

CREATE FUNCTION mc_accounts_zero_sum() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n USING (id)
               WHERE n.network_id <> o.network_id) THEN
        RAISE EXCEPTION 'an account cannot move to another network'
            USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';
    END IF;
    IF EXISTS (
        SELECT 1
        FROM (SELECT network_id, balance AS b, pending_debits AS d, pending_credits AS c
              FROM new_rows
              UNION ALL
              SELECT network_id, -balance, -pending_debits, -pending_credits
              FROM old_rows) AS change
        GROUP BY network_id
        HAVING sum(b) <> 0 OR sum(d) <> sum(c)
    ) THEN
        RAISE EXCEPTION 'balances of a network must keep summing to zero, and its pending debits must equal its pending credits'
            USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_zero_sum AFTER UPDATE ON accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mc_accounts_zero_sum();

-- ---------------------------------------------------------------------------------------------
-- Read model used by every function that answers with a trade.
-- ---------------------------------------------------------------------------------------------
CREATE VIEW trade_details AS
SELECT t.id, t.network_id, t.key, payer.code AS payer, payee.code AS payee, t.amount, t.status,
       t.posted_amount, t.description, t.external_ref, t.metadata, t.reverses_trade_id,
       t.expires_at, t.created_at, t.resolved_at
FROM trades t
JOIN accounts payer ON payer.id = t.payer_id
JOIN accounts payee ON payee.id = t.payee_id;

-- PL/pgSQL, not SQL: a SQL-language function called from PL/pgSQL is planned again at every
-- call, which cost a quarter of a trade's time; PL/pgSQL keeps its plans.
CREATE FUNCTION mc_trade_json(p_trade_id uuid) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT to_jsonb(d) - 'network_id' FROM trade_details d WHERE d.id = p_trade_id);
END $$;

-- ---------------------------------------------------------------------------------------------
-- Building blocks. Callers hold the row locks of both accounts (and of the trade) already.
-- ---------------------------------------------------------------------------------------------

-- Books `amount` from payer to payee: both balances in one UPDATE (so the zero-sum trigger sees a
-- balanced statement), then both entries with the balance after, in the same statement.
-- `release` is the hold being consumed (0 for a direct trade).
CREATE FUNCTION mc_book(p_network_id uuid, p_trade_id uuid, p_payer_id uuid, p_payee_id uuid,
                        p_amount bigint, p_release bigint, p_now timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS (
        UPDATE accounts a
        SET balance = a.balance + CASE WHEN a.id = p_payer_id THEN -p_amount ELSE p_amount END,
            pending_debits = a.pending_debits - CASE WHEN a.id = p_payer_id THEN p_release ELSE 0 END,
            pending_credits = a.pending_credits - CASE WHEN a.id = p_payee_id THEN p_release ELSE 0 END
        WHERE a.id IN (p_payer_id, p_payee_id)
        RETURNING a.id, a.balance
    )
    INSERT INTO entries (network_id, trade_id, account_id, amount, balance_after, booked_at)
    SELECT p_network_id, p_trade_id, moved.id,
           CASE WHEN moved.id = p_payer_id THEN -p_amount ELSE p_amount END, moved.balance, p_now
    FROM moved;
END $$;

-- Ends a hold without moving value: releases the reservation on both accounts.
CREATE FUNCTION mc_release_hold(p_trade trades, p_status text, p_now timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts a
    SET pending_debits = a.pending_debits - CASE WHEN a.id = p_trade.payer_id THEN p_trade.amount ELSE 0 END,
        pending_credits = a.pending_credits - CASE WHEN a.id = p_trade.payee_id THEN p_trade.amount ELSE 0 END
    WHERE a.id IN (p_trade.payer_id, p_trade.payee_id);
    UPDATE trades SET status = p_status, resolved_at = p_now WHERE id = p_trade.id;
END $$;

-- Expires the overdue holds of one account whose row the caller has locked. The other account of
-- each hold and the hold itself are locked with SKIP LOCKED: this runs while the caller holds
-- locks out of the global order, so it must never wait. What it skips, the sweeper expires.
CREATE FUNCTION mc_expire_holds_of(p_account_id uuid) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_hold trades%ROWTYPE;
    v_now timestamptz := clock_timestamp();
    v_count integer := 0;
BEGIN
    FOR v_hold IN
        SELECT * FROM trades t
        WHERE t.status = 'pending' AND t.expires_at <= v_now
          AND (t.payer_id = p_account_id OR t.payee_id = p_account_id)
        ORDER BY t.id
        FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM 1 FROM accounts a
        WHERE a.id = CASE WHEN v_hold.payer_id = p_account_id THEN v_hold.payee_id
                          ELSE v_hold.payer_id END
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        PERFORM mc_release_hold(v_hold, 'expired', v_now);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;

-- ---------------------------------------------------------------------------------------------
-- mc_create_trade: the write path of a trade, in one call.
--
-- outcome: 'created' | 'replayed' (same key, same request) | 'rejected' (refused now or before;
-- the refusal is recorded under the key) | 'conflict' (same key, different request).
-- Refusals are returned, not raised, so the caller's transaction commits the record of them.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_create_trade(
    p_network_id uuid, p_key text, p_request_hash bytea,
    p_payer text, p_payee text, p_amount bigint,
    p_pending boolean, p_expires_at timestamptz,
    p_description text, p_external_ref text, p_metadata jsonb)
RETURNS TABLE (outcome text, problem_code text, problem_detail jsonb, trade jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_existing_id uuid;
    v_existing_hash bytea;
    v_rejection trade_rejections%ROWTYPE;
    v_account accounts%ROWTYPE;
    v_payer accounts%ROWTYPE;
    v_payee accounts%ROWTYPE;
    v_code text;
    v_detail jsonb;
    v_retried boolean := false;
    v_now timestamptz;
    v_trade_id uuid;
BEGIN
    -- Same-key requests run one after another, so exactly one outcome is ever recorded per key.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_network_id::text || '/' || p_key, 0));

    SELECT t.id, t.request_hash INTO v_existing_id, v_existing_hash
    FROM trades t WHERE t.network_id = p_network_id AND t.key = p_key;
    IF FOUND THEN
        IF v_existing_hash = p_request_hash THEN
            RETURN QUERY SELECT 'replayed'::text, NULL::text, NULL::jsonb, mc_trade_json(v_existing_id);
        ELSE
            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,
                                jsonb_build_object('key', p_key), NULL::jsonb;
        END IF;
        RETURN;
    END IF;

    SELECT * INTO v_rejection FROM trade_rejections r
    WHERE r.network_id = p_network_id AND r.key = p_key;
    IF FOUND THEN
        IF v_rejection.request_hash = p_request_hash THEN
            RETURN QUERY SELECT 'rejected'::text, v_rejection.code, v_rejection.detail, NULL::jsonb;
        ELSE
            RETURN QUERY SELECT 'conflict'::text, 'idempotency_conflict'::text,
                                jsonb_build_object('key', p_key), NULL::jsonb;
        END IF;
        RETURN;
    END IF;

    LOOP
        -- Lock both accounts in id order: every writer does, so writers never deadlock.
        v_payer := NULL;
        v_payee := NULL;
        FOR v_account IN
            SELECT * FROM accounts a
            WHERE a.network_id = p_network_id AND a.code IN (p_payer, p_payee)
            ORDER BY a.id
            FOR UPDATE
        LOOP
            IF v_account.code = p_payer THEN v_payer := v_account; ELSE v_payee := v_account; END IF;
        END LOOP;

        v_code := NULL;
        IF v_payer.id IS NULL THEN
            v_code := 'account_not_found'; v_detail := jsonb_build_object('account', p_payer);
        ELSIF v_payee.id IS NULL THEN
            v_code := 'account_not_found'; v_detail := jsonb_build_object('account', p_payee);
        ELSIF v_payer.status <> 'active' THEN
            v_code := 'account_' || v_payer.status; v_detail := jsonb_build_object('account', p_payer);
        ELSIF v_payee.status <> 'active' THEN
            v_code := 'account_' || v_payee.status; v_detail := jsonb_build_object('account', p_payee);
        ELSIF v_payer.balance - v_payer.pending_debits - p_amount < -v_payer.credit_limit THEN
            v_code := 'credit_limit_exceeded';
            v_detail := jsonb_build_object(
                'account', p_payer,
                'available', v_payer.balance - v_payer.pending_debits + v_payer.credit_limit,
                'shortfall', p_amount - (v_payer.balance - v_payer.pending_debits + v_payer.credit_limit));
        ELSIF v_payee.balance_max IS NOT NULL
              AND v_payee.balance + v_payee.pending_credits + p_amount > v_payee.balance_max THEN
            v_code := 'balance_max_exceeded';
            v_detail := jsonb_build_object(
                'account', p_payee,
                'headroom', v_payee.balance_max - v_payee.balance - v_payee.pending_credits,
                'excess', p_amount - (v_payee.balance_max - v_payee.balance - v_payee.pending_credits));
        END IF;

        -- A limit refusal may be caused by holds that are overdue but not yet swept: expire them
        -- (expiry is enforced at access time) and check once more.
        EXIT WHEN v_code IS NULL OR v_retried
              OR v_code NOT IN ('credit_limit_exceeded', 'balance_max_exceeded');
        v_retried := true;
        EXIT WHEN mc_expire_holds_of(CASE WHEN v_code = 'credit_limit_exceeded'
                                          THEN v_payer.id ELSE v_payee.id END) = 0;
    END LOOP;

    IF v_code IS NOT NULL THEN
        INSERT INTO trade_rejections (network_id, key, request_hash, code, detail, created_at)
        VALUES (p_network_id, p_key, p_request_hash, v_code, v_detail, clock_timestamp());
        RETURN QUERY SELECT 'rejected'::text, v_code, v_detail, NULL::jsonb;
        RETURN;
    END IF;

    -- The clock is read after the locks: per account, booked_at follows the order of the entries.
    v_now := clock_timestamp();
    INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,
                        posted_amount, description, external_ref, metadata, expires_at,
                        created_at, resolved_at)
    VALUES (p_network_id, p_key, p_request_hash, v_payer.id, v_payee.id, p_amount,
            CASE WHEN p_pending THEN 'pending' ELSE 'posted' END,
            CASE WHEN p_pending THEN NULL ELSE p_amount END,
            p_description, p_external_ref, p_metadata,
            CASE WHEN p_pending THEN p_expires_at END,
            v_now, CASE WHEN p_pending THEN NULL ELSE v_now END)
    RETURNING id INTO v_trade_id;

    IF p_pending THEN
        UPDATE accounts a
        SET pending_debits = a.pending_debits + CASE WHEN a.id = v_payer.id THEN p_amount ELSE 0 END,
            pending_credits = a.pending_credits + CASE WHEN a.id = v_payee.id THEN p_amount ELSE 0 END
        WHERE a.id IN (v_payer.id, v_payee.id);
    ELSE
        PERFORM mc_book(p_network_id, v_trade_id, v_payer.id, v_payee.id, p_amount, 0, v_now);
    END IF;

    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb, mc_trade_json(v_trade_id);
END $$;

-- ---------------------------------------------------------------------------------------------
-- mc_resolve_trade: post (all or part of) or void a pending trade.
--
-- outcome: 'posted' | 'voided' | 'expired' (it was overdue: it is expired now and the caller
-- must commit that and refuse) | 'rejected' (nothing changed; see problem_code).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_resolve_trade(p_network_id uuid, p_trade_id uuid, p_action text, p_amount bigint)
RETURNS TABLE (outcome text, problem_code text, problem_detail jsonb, trade jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_payer_id uuid;
    v_payee_id uuid;
    v_trade trades%ROWTYPE;
    v_status text;
    v_amount bigint;
    v_now timestamptz;
BEGIN
    IF p_action NOT IN ('post', 'void') THEN
        RAISE EXCEPTION 'unknown action %', p_action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.payer_id, t.payee_id INTO v_payer_id, v_payee_id
    FROM trades t WHERE t.network_id = p_network_id AND t.id = p_trade_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'rejected'::text, 'trade_not_found'::text,
                            jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;
        RETURN;
    END IF;

    -- Lock order: accounts by id, then the trade row (as every writer does).
    PERFORM 1 FROM accounts a WHERE a.id IN (v_payer_id, v_payee_id) ORDER BY a.id FOR UPDATE;
    SELECT * INTO v_trade FROM trades t WHERE t.id = p_trade_id FOR UPDATE;
    v_now := clock_timestamp();

    -- An expired hold answers the same whether the sweeper or this call expired it.
    IF v_trade.status = 'expired' THEN
        RETURN QUERY SELECT 'rejected'::text, 'trade_expired'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'expires_at', v_trade.expires_at),
                            mc_trade_json(p_trade_id);
        RETURN;
    END IF;
    IF v_trade.status <> 'pending' THEN
        RETURN QUERY SELECT 'rejected'::text, 'trade_not_pending'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'trade_status', v_trade.status),
                            mc_trade_json(p_trade_id);
        RETURN;
    END IF;
    IF v_trade.expires_at IS NOT NULL AND v_trade.expires_at <= v_now THEN
        PERFORM mc_release_hold(v_trade, 'expired', v_now);
        RETURN QUERY SELECT 'expired'::text, 'trade_expired'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'expires_at', v_trade.expires_at),
                            mc_trade_json(p_trade_id);
        RETURN;
    END IF;

    IF p_action = 'void' THEN
        PERFORM mc_release_hold(v_trade, 'voided', v_now);
        RETURN QUERY SELECT 'voided'::text, NULL::text, NULL::jsonb, mc_trade_json(p_trade_id);
        RETURN;
    END IF;

    v_amount := coalesce(p_amount, v_trade.amount);
    IF v_amount > v_trade.amount THEN
        RETURN QUERY SELECT 'rejected'::text, 'amount_exceeds_hold'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'held', v_trade.amount,
                                               'requested', v_amount),
                            NULL::jsonb;
        RETURN;
    END IF;
    SELECT a.status INTO v_status FROM accounts a
    WHERE a.id IN (v_payer_id, v_payee_id) AND a.status <> 'active' LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'rejected'::text, 'account_' || v_status,
                            jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;
        RETURN;
    END IF;

    PERFORM mc_book(p_network_id, p_trade_id, v_payer_id, v_payee_id, v_amount, v_trade.amount, v_now);
    UPDATE trades SET status = 'posted', posted_amount = v_amount, resolved_at = v_now
    WHERE id = p_trade_id;
    RETURN QUERY SELECT 'posted'::text, NULL::text, NULL::jsonb, mc_trade_json(p_trade_id);
END $$;

-- ---------------------------------------------------------------------------------------------
-- mc_expire_overdue: the sweeper. Expires up to p_limit overdue holds of any network, locking
-- every account involved (in id order) before the trade rows. Returns how many it expired.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_expire_overdue(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_ids uuid[];
    v_accounts uuid[];
    v_hold trades%ROWTYPE;
    v_count integer := 0;
BEGIN
    SELECT array_agg(o.id), array_agg(o.payer_id) || array_agg(o.payee_id)
    INTO v_ids, v_accounts
    FROM (SELECT t.id, t.payer_id, t.payee_id FROM trades t
          WHERE t.status = 'pending' AND t.expires_at <= v_now
          ORDER BY t.expires_at LIMIT p_limit) AS o;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM accounts a WHERE a.id = ANY (v_accounts) ORDER BY a.id FOR UPDATE;
    FOR v_hold IN
        SELECT * FROM trades t WHERE t.id = ANY (v_ids) AND t.status = 'pending'
        ORDER BY t.id FOR UPDATE
    LOOP
        PERFORM mc_release_hold(v_hold, 'expired', v_now);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;
"""

DROP_TRIGGERS_AND_FUNCTIONS = """
DROP FUNCTION mc_expire_overdue(integer);
DROP FUNCTION mc_resolve_trade(uuid, uuid, text, bigint);
DROP FUNCTION mc_create_trade(uuid, text, bytea, text, text, bigint, boolean, timestamptz, text, text, jsonb);
DROP FUNCTION mc_expire_holds_of(uuid);
DROP FUNCTION mc_release_hold(trades, text, timestamptz);
DROP FUNCTION mc_book(uuid, uuid, uuid, uuid, bigint, bigint, timestamptz);
DROP FUNCTION mc_trade_json(uuid);
DROP VIEW trade_details;
DROP TRIGGER accounts_zero_sum ON accounts;
DROP FUNCTION mc_accounts_zero_sum();
DROP TRIGGER accounts_open_empty ON accounts;
DROP FUNCTION mc_accounts_open_empty();
DROP TRIGGER entries_zero_sum ON entries;
DROP FUNCTION mc_entries_zero_sum();
DROP TRIGGER networks_fixed ON networks;
DROP FUNCTION mc_networks_guard_update();
DROP TRIGGER trades_final ON trades;
DROP FUNCTION mc_trades_guard_update();
DROP TRIGGER accounts_append_only ON accounts;
DROP TRIGGER trades_append_only ON trades;
DROP TRIGGER trade_rejections_append_only ON trade_rejections;
DROP TRIGGER entries_append_only ON entries;
DROP FUNCTION mc_refuse_change();
"""


def _statements(script: str) -> list[str]:
    """Splits a script at top-level semicolons: asyncpg prepares each statement on its own, and
    a prepared statement holds one command. Semicolons inside $$ bodies are kept."""
    statements, current, in_body = [], [], False
    for line in script.splitlines():
        if not in_body and line.lstrip().startswith("--"):
            continue
        if line.count("$$") % 2 == 1:
            in_body = not in_body
        current.append(line)
        if not in_body and line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip())
            current = []
    if "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements


def _execute_script(script: str) -> None:
    for statement in _statements(script):
        op.execute(statement)


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
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
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "code ~ '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$'",
            name=op.f("networks_code_format_check"),
        ),
        sa.CheckConstraint("scale BETWEEN 0 AND 9", name=op.f("networks_scale_range_check")),
        sa.CheckConstraint(
            f"default_credit_limit BETWEEN 0 AND {MAX_AMOUNT}",
            name=op.f("networks_default_credit_limit_range_check"),
        ),
        sa.CheckConstraint(
            f"default_balance_max IS NULL OR default_balance_max BETWEEN 0 AND {MAX_AMOUNT}",
            name=op.f("networks_default_balance_max_range_check"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("networks_pkey")),
        sa.UniqueConstraint("code", name=op.f("networks_code_key")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pending_debits", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pending_credits", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), nullable=False),
        sa.Column("balance_max", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'", name=op.f("accounts_code_format_check")
        ),
        sa.CheckConstraint("kind IN ('member', 'system')", name=op.f("accounts_kind_valid_check")),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'closed')", name=op.f("accounts_status_valid_check")
        ),
        sa.CheckConstraint(
            f"credit_limit BETWEEN 0 AND {MAX_AMOUNT}",
            name=op.f("accounts_credit_limit_range_check"),
        ),
        sa.CheckConstraint(
            f"balance_max IS NULL OR balance_max BETWEEN 0 AND {MAX_AMOUNT}",
            name=op.f("accounts_balance_max_range_check"),
        ),
        sa.CheckConstraint(
            "pending_debits >= 0 AND pending_credits >= 0",
            name=op.f("accounts_pending_nonnegative_check"),
        ),
        sa.CheckConstraint(
            "balance - pending_debits >= -credit_limit", name=op.f("accounts_credit_limit_check")
        ),
        sa.CheckConstraint(
            "balance_max IS NULL OR balance + pending_credits <= balance_max",
            name=op.f("accounts_balance_max_check"),
        ),
        sa.CheckConstraint(
            "status <> 'closed' OR (balance = 0 AND pending_debits = 0 AND pending_credits = 0)",
            name=op.f("accounts_closed_empty_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("accounts_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("accounts_pkey")),
        sa.UniqueConstraint("network_id", "code", name=op.f("accounts_network_id_code_key")),
        sa.UniqueConstraint("network_id", "id", name=op.f("accounts_network_id_id_key")),
    )
    op.create_table(
        "trades",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("payee_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
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
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"amount BETWEEN 1 AND {MAX_AMOUNT}", name=op.f("trades_amount_range_check")
        ),
        sa.CheckConstraint("payer_id <> payee_id", name=op.f("trades_distinct_parties_check")),
        sa.CheckConstraint(
            "status IN ('pending', 'posted', 'voided', 'expired')",
            name=op.f("trades_status_valid_check"),
        ),
        sa.CheckConstraint(
            "(status = 'posted') = (posted_amount IS NOT NULL)"
            " AND (posted_amount IS NULL OR posted_amount BETWEEN 1 AND amount)",
            name=op.f("trades_posted_amount_valid_check"),
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (resolved_at IS NULL)",
            name=op.f("trades_resolved_at_valid_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payer_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("trades_network_id_payer_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payee_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("trades_network_id_payee_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_trade_id"], ["trades.id"], name=op.f("trades_reverses_trade_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("trades_pkey")),
        sa.UniqueConstraint("network_id", "key", name=op.f("trades_network_id_key_key")),
    )
    op.create_index(
        op.f("trades_network_id_created_at_id_idx"), "trades", ["network_id", "created_at", "id"]
    )
    op.create_index(
        op.f("trades_reverses_trade_id_key"),
        "trades",
        ["reverses_trade_id"],
        unique=True,
        postgresql_where=sa.text("reverses_trade_id IS NOT NULL"),
    )
    op.create_index(
        op.f("trades_pending_payer_id_idx"),
        "trades",
        ["payer_id"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("trades_pending_payee_id_idx"),
        "trades",
        ["payee_id"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("trades_pending_expires_at_idx"),
        "trades",
        ["expires_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("trade_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("entries_amount_nonzero_check")),
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
        op.f("entries_account_id_booked_at_id_idx"), "entries", ["account_id", "booked_at", "id"]
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
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'platform' AND network_id IS NULL AND account_id IS NULL)"
            " OR (role = 'operator' AND network_id IS NOT NULL AND account_id IS NULL)"
            " OR (role = 'member' AND network_id IS NOT NULL AND account_id IS NOT NULL)",
            name=op.f("api_keys_role_scope_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("api_keys_network_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "account_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("api_keys_network_id_account_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("api_keys_pkey")),
        sa.UniqueConstraint("key_id", name=op.f("api_keys_key_id_key")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("idempotency_records_api_key_id_fkey")
        ),
        sa.PrimaryKeyConstraint("api_key_id", "key", name=op.f("idempotency_records_pkey")),
    )
    _execute_script(TRIGGERS_AND_FUNCTIONS)


def downgrade() -> None:
    _execute_script(DROP_TRIGGERS_AND_FUNCTIONS)
    op.drop_table("idempotency_records")
    op.drop_table("api_keys")
    op.drop_table("trade_rejections")
    op.drop_index("entries_account_id_booked_at_id_idx", table_name=op.f("entries"))
    op.drop_table("entries")
    op.drop_index("trades_pending_expires_at_idx", table_name=op.f("trades"))
    op.drop_index("trades_pending_payee_id_idx", table_name=op.f("trades"))
    op.drop_index("trades_pending_payer_id_idx", table_name=op.f("trades"))
    op.drop_index("trades_reverses_trade_id_key", table_name=op.f("trades"))
    op.drop_index("trades_network_id_created_at_id_idx", table_name=op.f("trades"))
    op.drop_table("trades")
    op.drop_table("accounts")
    op.drop_table("networks")
