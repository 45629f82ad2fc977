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
        NEW.description, NEW.external_ref, NEW.metadata, NEW.reverses_trade_id, NEW.kind,
        NEW.reason, NEW.limit_override, NEW.created_by, NEW.expires_at, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.network_id, OLD.key, OLD.request_hash, OLD.payer_id, OLD.payee_id, OLD.amount,
        OLD.description, OLD.external_ref, OLD.metadata, OLD.reverses_trade_id, OLD.kind,
        OLD.reason, OLD.limit_override, OLD.created_by, OLD.expires_at, OLD.created_at) THEN
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
-- Who and why. The service sets these transaction-local settings for every write; the triggers
-- below read them, so that history records the actor and reason of any change, even one made by
-- direct SQL (whose actor is then the database user).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_actor() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(nullif(current_setting('mutualcredit.actor', true), ''), 'sql:' || session_user);
END $$;

CREATE FUNCTION mc_reason() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN nullif(current_setting('mutualcredit.reason', true), '');
END $$;

-- ---------------------------------------------------------------------------------------------
-- Limits. A write may not take an account beyond a limit, nor further beyond one:
--     balance - pending_debits >= -credit_limit,  balance + pending_credits <= balance_max,
-- unless it leaves the measure no worse than before. So an operator may lower a limit below what
-- an account already uses (the account can then only recover), and no interleaving of requests
-- can push an account past a limit: each row update is checked against the row it replaces.
-- The one exception is an operator's explicit override, which the ledger functions switch on
-- for a single booking and record on the trade and in the audit log.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_accounts_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('mutualcredit.limit_override', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF NEW.balance - NEW.pending_debits < -NEW.credit_limit
       AND (TG_OP = 'INSERT'
            OR NEW.balance - NEW.pending_debits < OLD.balance - OLD.pending_debits) THEN
        RAISE EXCEPTION 'account % would go beyond its credit limit', NEW.code
            USING ERRCODE = 'check_violation', TABLE = 'accounts',
                  CONSTRAINT = 'accounts_credit_limit';
    END IF;
    IF NEW.balance_max IS NOT NULL AND NEW.balance + NEW.pending_credits > NEW.balance_max
       AND (TG_OP = 'INSERT'
            OR NEW.balance + NEW.pending_credits > OLD.balance + OLD.pending_credits) THEN
        RAISE EXCEPTION 'account % would go beyond its balance_max', NEW.code
            USING ERRCODE = 'check_violation', TABLE = 'accounts',
                  CONSTRAINT = 'accounts_balance_max';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_limits
    BEFORE INSERT OR UPDATE OF balance, pending_debits, pending_credits, credit_limit, balance_max
    ON accounts FOR EACH ROW EXECUTE FUNCTION mc_accounts_limits();

-- ---------------------------------------------------------------------------------------------
-- Limit history: every change of an account's limits or of a network's defaults, with who,
-- when, before and after, and a reason the database insists on.
-- ---------------------------------------------------------------------------------------------
CREATE TRIGGER limit_changes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON limit_changes
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

CREATE FUNCTION mc_limit_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_kind text := coalesce(nullif(current_setting('mutualcredit.limit_change', true), ''), 'set');
    v_reason text := mc_reason();
BEGIN
    IF TG_TABLE_NAME = 'networks' THEN
        IF TG_OP = 'UPDATE' AND v_reason IS NULL THEN
            RAISE EXCEPTION 'a change of default limits needs a reason (mutualcredit.reason)'
                USING ERRCODE = 'not_null_violation', CONSTRAINT = 'limit_changes_reason';
        END IF;
        INSERT INTO limit_changes (network_id, account_id, kind, credit_limit_before,
                                   credit_limit_after, balance_max_before, balance_max_after,
                                   reason, actor, changed_at)
        VALUES (NEW.id, NULL, 'default',
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.default_credit_limit END,
                NEW.default_credit_limit,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.default_balance_max END,
                NEW.default_balance_max,
                coalesce(v_reason, 'network created'), mc_actor(), clock_timestamp());
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO limit_changes (network_id, account_id, kind, credit_limit_after,
                                   balance_max_after, reason, actor, changed_at)
        VALUES (NEW.network_id, NEW.id, 'open', NEW.credit_limit, NEW.balance_max,
                coalesce(v_reason, 'account opened'), mc_actor(), clock_timestamp());
        RETURN NULL;
    END IF;
    IF v_reason IS NULL THEN
        RAISE EXCEPTION 'a change of limits needs a reason (mutualcredit.reason)'
            USING ERRCODE = 'not_null_violation', CONSTRAINT = 'limit_changes_reason';
    END IF;
    INSERT INTO limit_changes (network_id, account_id, kind, credit_limit_before,
                               credit_limit_after, balance_max_before, balance_max_after,
                               reason, actor, reverts_at, changed_at)
    VALUES (NEW.network_id, NEW.id, v_kind, OLD.credit_limit, NEW.credit_limit,
            OLD.balance_max, NEW.balance_max, v_reason, mc_actor(),
            CASE WHEN v_kind = 'temporary' THEN NEW.revert_at END, clock_timestamp());
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_limit_history_open AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION mc_limit_history();
CREATE TRIGGER accounts_limit_history AFTER UPDATE OF credit_limit, balance_max ON accounts
    FOR EACH ROW
    WHEN (OLD.credit_limit IS DISTINCT FROM NEW.credit_limit
          OR OLD.balance_max IS DISTINCT FROM NEW.balance_max)
    EXECUTE FUNCTION mc_limit_history();
CREATE TRIGGER networks_limit_history_open AFTER INSERT ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_limit_history();
CREATE TRIGGER networks_limit_history
    AFTER UPDATE OF default_credit_limit, default_balance_max ON networks
    FOR EACH ROW
    WHEN (OLD.default_credit_limit IS DISTINCT FROM NEW.default_credit_limit
          OR OLD.default_balance_max IS DISTINCT FROM NEW.default_balance_max)
    EXECUTE FUNCTION mc_limit_history();

-- ---------------------------------------------------------------------------------------------
-- The audit log: every state change of a network appends a record (who, what, when, why,
-- before and after), from triggers, so no code path can forget one. Records are inserted
-- unsealed, in the writer's own transaction; a background sealer (mc_audit_seal) then chains
-- them per network: seq, prev_hash, hash = sha256(prev_hash || payload). Sealing off the write
-- path keeps the chain from serialising trades; a record is sealed within a sweep interval.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb;
    v_after jsonb;
    v_row jsonb;
    v_subject text := rtrim(TG_TABLE_NAME, 's');
    v_action text;
BEGIN
    IF TG_OP <> 'INSERT' THEN v_before := to_jsonb(OLD) - TG_ARGV; END IF;
    IF TG_OP <> 'DELETE' THEN v_after := to_jsonb(NEW) - TG_ARGV; END IF;
    IF TG_OP = 'UPDATE' THEN
        -- Keep only what changed.
        SELECT jsonb_object_agg(n.key, n.value) INTO v_after
        FROM jsonb_each(v_after) n WHERE v_before -> n.key IS DISTINCT FROM n.value;
        IF v_after IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT jsonb_object_agg(o.key, o.value) INTO v_before
        FROM jsonb_each(v_before) o WHERE v_after ? o.key;
    END IF;
    v_row := coalesce(to_jsonb(NEW), to_jsonb(OLD));
    IF TG_TABLE_NAME <> 'networks' AND v_row ->> 'network_id' IS NULL THEN
        RETURN NULL;  -- a platform key: deployment-wide, outside every network's log
    END IF;
    v_action := v_subject || '.' || CASE TG_OP WHEN 'INSERT' THEN 'created'
                                              WHEN 'DELETE' THEN 'deleted'
                                              ELSE 'updated' END;
    IF TG_TABLE_NAME IN ('trades', 'payment_requests') AND TG_OP = 'UPDATE' THEN
        v_action := v_subject || '.' || (v_row ->> 'status');
    ELSIF TG_TABLE_NAME = 'accounts' AND TG_OP = 'UPDATE' AND v_after ? 'status' THEN
        v_action := 'account.' || (v_row ->> 'status');
    ELSIF TG_TABLE_NAME = 'accounts' AND TG_OP = 'UPDATE' THEN
        v_action := 'account.limits_changed';
    ELSIF TG_TABLE_NAME = 'api_keys' AND TG_OP = 'UPDATE' THEN
        v_action := 'api_key.revoked';
    END IF;
    INSERT INTO audit_log (network_id, occurred_at, actor, action, subject_type, subject_id,
                           reason, before, after)
    VALUES (CASE WHEN TG_TABLE_NAME = 'networks' THEN (v_row ->> 'id')::uuid
                 ELSE (v_row ->> 'network_id')::uuid END,
            clock_timestamp(), mc_actor(), v_action, v_subject,
            coalesce(v_row ->> 'id', (v_row ->> 'payer_id') || '/' || (v_row ->> 'payee_id')),
            mc_reason(), v_before, v_after);
    RETURN NULL;
END $$;

CREATE TRIGGER networks_audit AFTER INSERT OR UPDATE ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
-- Balances move with trades, which have their own records: only the account's settings here.
CREATE TRIGGER accounts_audit
    AFTER INSERT OR UPDATE OF name, status, credit_limit, balance_max, revert_at ON accounts
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change(
        'balance', 'pending_debits', 'pending_credits');
CREATE TRIGGER trades_audit AFTER INSERT OR UPDATE ON trades
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('request_hash');
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('secret_hash');
CREATE TRIGGER payment_requests_audit AFTER INSERT OR UPDATE ON payment_requests
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();
CREATE TRIGGER payee_approvals_audit AFTER INSERT OR UPDATE OR DELETE ON payee_approvals
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change();

-- An audit record never changes, except once: when it is sealed into the chain.
CREATE FUNCTION mc_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.hash IS NOT NULL OR NEW.hash IS NULL
       OR (NEW.id, NEW.network_id, NEW.occurred_at, NEW.actor, NEW.action, NEW.subject_type,
           NEW.subject_id, NEW.reason, NEW.before, NEW.after)
          IS DISTINCT FROM
          (OLD.id, OLD.network_id, OLD.occurred_at, OLD.actor, OLD.action, OLD.subject_type,
           OLD.subject_id, OLD.reason, OLD.before, OLD.after) THEN
        RAISE EXCEPTION 'the audit log is append-only'
            USING ERRCODE = 'restrict_violation', TABLE = 'audit_log',
                  CONSTRAINT = 'audit_log_append_only';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_sealing BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION mc_audit_guard();
CREATE TRIGGER audit_log_append_only BEFORE DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

-- The bytes a record's hash covers: a JSON array (unambiguous, unlike a joined string), with the
-- time as epoch microseconds so that no session time zone can change the text.
CREATE FUNCTION mc_audit_payload(
    p_network_id uuid, p_seq bigint, p_occurred_at timestamptz, p_actor text, p_action text,
    p_subject_type text, p_subject_id text, p_reason text, p_before jsonb, p_after jsonb)
RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_to(jsonb_build_array(
        p_network_id, p_seq, (extract(epoch FROM p_occurred_at) * 1000000)::bigint, p_actor,
        p_action, p_subject_type, p_subject_id, p_reason, p_before, p_after)::text, 'UTF8');
END $$;

CREATE FUNCTION mc_audit_genesis(p_network_id uuid) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN sha256(convert_to('mutualcredit audit log of network ' || p_network_id::text, 'UTF8'));
END $$;

-- Every network's chain starts with it: sealers then only take heads with SKIP LOCKED and never
-- wait for one another (a sealer creating heads would wait on another's uncommitted insert).
CREATE FUNCTION mc_audit_start_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_heads (network_id, seq, hash) VALUES (NEW.id, 0, mc_audit_genesis(NEW.id));
    RETURN NULL;
END $$;
CREATE TRIGGER networks_audit_chain AFTER INSERT ON networks
    FOR EACH ROW EXECUTE FUNCTION mc_audit_start_chain();

CREATE FUNCTION mc_audit_seal(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_head audit_heads%ROWTYPE;
    v_record audit_log%ROWTYPE;
    v_count integer := 0;
BEGIN
    -- One sealer per network at a time; others skip it rather than wait.
    FOR v_head IN
        SELECT h.* FROM audit_heads h
        WHERE EXISTS (SELECT 1 FROM audit_log a WHERE a.network_id = h.network_id AND a.hash IS NULL)
        ORDER BY h.network_id
        FOR UPDATE SKIP LOCKED
    LOOP
        FOR v_record IN
            SELECT * FROM audit_log a
            WHERE a.network_id = v_head.network_id AND a.hash IS NULL
            ORDER BY a.id LIMIT p_limit
        LOOP
            v_head.seq := v_head.seq + 1;
            UPDATE audit_log a
            SET seq = v_head.seq, prev_hash = v_head.hash,
                hash = sha256(v_head.hash || mc_audit_payload(
                    a.network_id, v_head.seq, a.occurred_at, a.actor, a.action, a.subject_type,
                    a.subject_id, a.reason, a.before, a.after))
            WHERE a.id = v_record.id
            RETURNING a.hash INTO v_head.hash;
            v_count := v_count + 1;
        END LOOP;
        UPDATE audit_heads SET seq = v_head.seq, hash = v_head.hash
        WHERE network_id = v_head.network_id;
    END LOOP;
    RETURN v_count;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Payment requests: open until accepted, rejected, cancelled or expired, once; only the status,
-- reason, trade and resolved_at change. Never deleted.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_requests_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'open' OR NEW.status = 'open'
       OR (NEW.id, NEW.network_id, NEW.payer_id, NEW.payee_id, NEW.amount, NEW.description,
           NEW.created_by, NEW.expires_at, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.network_id, OLD.payer_id, OLD.payee_id, OLD.amount, OLD.description,
           OLD.created_by, OLD.expires_at, OLD.created_at) THEN
        RAISE EXCEPTION 'a payment request changes once, from open to its outcome'
            USING ERRCODE = 'restrict_violation', TABLE = 'payment_requests',
                  CONSTRAINT = 'payment_requests_final';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payment_requests_final BEFORE UPDATE ON payment_requests
    FOR EACH ROW EXECUTE FUNCTION mc_requests_guard_update();
CREATE TRIGGER payment_requests_append_only BEFORE DELETE OR TRUNCATE ON payment_requests
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();

CREATE FUNCTION mc_expire_requests(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    PERFORM set_config('mutualcredit.actor', 'system:request-expiry', true);
    WITH due AS (
        SELECT id FROM payment_requests
        WHERE status = 'open' AND expires_at <= clock_timestamp()
        ORDER BY expires_at LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE payment_requests r SET status = 'expired', resolved_at = clock_timestamp()
    FROM due WHERE r.id = due.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;

-- ---------------------------------------------------------------------------------------------
-- mc_revert_due_limits: ends temporary limits whose time has come (locks what it can without
-- waiting; the rest is taken at the next sweep). Returns how many accounts it reverted.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_revert_due_limits(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    PERFORM set_config('mutualcredit.actor', 'system:limit-revert', true);
    PERFORM set_config('mutualcredit.reason', 'temporary limit ended', true);
    PERFORM set_config('mutualcredit.limit_change', 'revert', true);
    WITH due AS (
        SELECT id FROM accounts
        WHERE revert_at <= clock_timestamp()
        ORDER BY id LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE accounts a
    SET credit_limit = a.revert_credit_limit, balance_max = a.revert_balance_max,
        revert_at = NULL, revert_credit_limit = NULL, revert_balance_max = NULL
    FROM due WHERE a.id = due.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM set_config('mutualcredit.limit_change', '', true);
    RETURN v_count;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Read model used by every function that answers with a trade.
-- ---------------------------------------------------------------------------------------------
CREATE VIEW trade_details AS
SELECT t.id, t.network_id, t.key, payer.code AS payer, payee.code AS payee, t.amount, t.status,
       t.posted_amount, t.description, t.external_ref, t.metadata, t.reverses_trade_id,
       t.kind, t.reason, t.limit_override, t.created_by, t.expires_at, t.created_at, t.resolved_at,
       (SELECT r.id FROM trades r WHERE r.reverses_trade_id = t.id) AS reversed_by
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
--
-- Operators' variants use the optional parameters: p_kind ('reversal', 'write_off', 'request'),
-- p_reverses_trade_id (a reversal's original; one reversal per trade), p_override (book even
-- beyond limits; needs p_reason, and is recorded on the trade), p_remember_refusal (false when
-- the caller keeps exactly-once by other means, as accepting a payment request does).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_create_trade(
    p_network_id uuid, p_key text, p_request_hash bytea,
    p_payer text, p_payee text, p_amount bigint,
    p_pending boolean, p_expires_at timestamptz,
    p_description text, p_external_ref text, p_metadata jsonb,
    p_actor text,
    p_kind text DEFAULT 'transfer',
    p_reverses_trade_id uuid DEFAULT NULL,
    p_reason text DEFAULT NULL,
    p_override boolean DEFAULT false,
    p_remember_refusal boolean DEFAULT true)
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
    PERFORM set_config('mutualcredit.actor', p_actor, true),
            set_config('mutualcredit.reason', coalesce(p_reason, ''), true);
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
        ELSIF p_reverses_trade_id IS NOT NULL
              AND EXISTS (SELECT 1 FROM trades t WHERE t.reverses_trade_id = p_reverses_trade_id) THEN
            -- Checked under the accounts' locks, which every reversal of this trade takes too.
            v_code := 'trade_already_reversed';
            v_detail := jsonb_build_object('trade_id', p_reverses_trade_id);
        ELSIF NOT p_override
              AND v_payer.balance - v_payer.pending_debits - p_amount < -v_payer.credit_limit THEN
            v_code := 'credit_limit_exceeded';
            v_detail := jsonb_build_object(
                'account', p_payer,
                'available', v_payer.balance - v_payer.pending_debits + v_payer.credit_limit,
                'shortfall', p_amount - (v_payer.balance - v_payer.pending_debits + v_payer.credit_limit));
        ELSIF NOT p_override AND v_payee.balance_max IS NOT NULL
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
        IF p_remember_refusal THEN
            INSERT INTO trade_rejections (network_id, key, request_hash, code, detail, created_at)
            VALUES (p_network_id, p_key, p_request_hash, v_code, v_detail, clock_timestamp());
        END IF;
        RETURN QUERY SELECT 'rejected'::text, v_code, v_detail, NULL::jsonb;
        RETURN;
    END IF;

    -- The clock is read after the locks: per account, booked_at follows the order of the entries.
    v_now := clock_timestamp();
    INSERT INTO trades (network_id, key, request_hash, payer_id, payee_id, amount, status,
                        posted_amount, description, external_ref, metadata, reverses_trade_id,
                        kind, reason, limit_override, created_by, expires_at, created_at,
                        resolved_at)
    VALUES (p_network_id, p_key, p_request_hash, v_payer.id, v_payee.id, p_amount,
            CASE WHEN p_pending THEN 'pending' ELSE 'posted' END,
            CASE WHEN p_pending THEN NULL ELSE p_amount END,
            p_description, p_external_ref, p_metadata, p_reverses_trade_id,
            p_kind, p_reason, p_override, p_actor,
            CASE WHEN p_pending THEN p_expires_at END,
            v_now, CASE WHEN p_pending THEN NULL ELSE v_now END)
    RETURNING id INTO v_trade_id;

    IF p_override THEN
        PERFORM set_config('mutualcredit.limit_override', 'on', true);
    END IF;
    IF p_pending THEN
        UPDATE accounts a
        SET pending_debits = a.pending_debits + CASE WHEN a.id = v_payer.id THEN p_amount ELSE 0 END,
            pending_credits = a.pending_credits + CASE WHEN a.id = v_payee.id THEN p_amount ELSE 0 END
        WHERE a.id IN (v_payer.id, v_payee.id);
    ELSE
        PERFORM mc_book(p_network_id, v_trade_id, v_payer.id, v_payee.id, p_amount, 0, v_now);
    END IF;
    IF p_override THEN
        PERFORM set_config('mutualcredit.limit_override', 'off', true);
    END IF;

    RETURN QUERY SELECT 'created'::text, NULL::text, NULL::jsonb, mc_trade_json(v_trade_id);
END $$;

-- ---------------------------------------------------------------------------------------------
-- mc_create_trades: many trades of one network in one call (the batched write path).
--
-- Takes every key's advisory lock (sorted), then every account the batch touches (sorted by
-- id), then books each trade with mc_create_trade, whose own locks are already held: so the
-- global lock order (keys, then accounts by id) holds for batches too, and a busy account is
-- locked once per batch instead of once per trade. Each trade keeps its own outcome: one
-- refused trade never fails its batch-mates. Results come back in the order given (idx).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_create_trades(
    p_network_id uuid, p_keys text[], p_request_hashes bytea[], p_payers text[],
    p_payees text[], p_amounts bigint[], p_pendings boolean[], p_expires_at timestamptz[],
    p_descriptions text[], p_external_refs text[], p_metadata jsonb[], p_actors text[])
RETURNS TABLE (idx integer, outcome text, problem_code text, problem_detail jsonb, trade jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id)
    FROM (SELECT DISTINCT hashtextextended(p_network_id::text || '/' || k, 0) AS lock_id
          FROM unnest(p_keys) AS k ORDER BY 1) AS keys;
    PERFORM 1 FROM accounts a
    WHERE a.network_id = p_network_id AND a.code = ANY (p_payers || p_payees)
    ORDER BY a.id FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        RETURN QUERY
        SELECT i, r.outcome, r.problem_code, r.problem_detail, r.trade
        FROM mc_create_trade(p_network_id, p_keys[i], p_request_hashes[i], p_payers[i],
                             p_payees[i], p_amounts[i], p_pendings[i], p_expires_at[i],
                             p_descriptions[i], p_external_refs[i], p_metadata[i],
                             p_actors[i]) AS r;
    END LOOP;
END $$;

-- ---------------------------------------------------------------------------------------------
-- mc_resolve_trade: post (all or part of) or void a pending trade.
--
-- outcome: 'posted' | 'voided' | 'expired' (it was overdue: it is expired now and the caller
-- must commit that and refuse) | 'rejected' (nothing changed; see problem_code).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION mc_resolve_trade(p_network_id uuid, p_trade_id uuid, p_action text,
                                 p_amount bigint, p_actor text)
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
    PERFORM set_config('mutualcredit.actor', p_actor, true);
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
    PERFORM set_config('mutualcredit.actor', 'system:hold-expiry', true);
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
DROP FUNCTION mc_expire_requests(integer);
DROP TRIGGER payment_requests_append_only ON payment_requests;
DROP TRIGGER payment_requests_final ON payment_requests;
DROP FUNCTION mc_requests_guard_update();
DROP FUNCTION mc_revert_due_limits(integer);
DROP FUNCTION mc_audit_seal(integer);
DROP TRIGGER networks_audit_chain ON networks;
DROP FUNCTION mc_audit_start_chain();
DROP FUNCTION mc_audit_genesis(uuid);
DROP FUNCTION mc_audit_payload(uuid, bigint, timestamptz, text, text, text, text, text, jsonb, jsonb);
DROP TRIGGER audit_log_append_only ON audit_log;
DROP TRIGGER audit_log_sealing ON audit_log;
DROP FUNCTION mc_audit_guard();
DROP TRIGGER payee_approvals_audit ON payee_approvals;
DROP TRIGGER payment_requests_audit ON payment_requests;
DROP TRIGGER api_keys_audit ON api_keys;
DROP TRIGGER trades_audit ON trades;
DROP TRIGGER accounts_audit ON accounts;
DROP TRIGGER networks_audit ON networks;
DROP FUNCTION mc_audit_change();
DROP TRIGGER networks_limit_history ON networks;
DROP TRIGGER networks_limit_history_open ON networks;
DROP TRIGGER accounts_limit_history ON accounts;
DROP TRIGGER accounts_limit_history_open ON accounts;
DROP FUNCTION mc_limit_history();
DROP TRIGGER limit_changes_append_only ON limit_changes;
DROP TRIGGER accounts_limits ON accounts;
DROP FUNCTION mc_accounts_limits();
DROP FUNCTION mc_reason();
DROP FUNCTION mc_actor();
DROP FUNCTION mc_expire_overdue(integer);
DROP FUNCTION mc_create_trades(uuid, text[], bytea[], text[], text[], bigint[], boolean[], timestamptz[], text[], text[], jsonb[], text[]);
DROP FUNCTION mc_resolve_trade(uuid, uuid, text, bigint, text);
DROP FUNCTION mc_create_trade(uuid, text, bytea, text, text, bigint, boolean, timestamptz, text, text, jsonb, text, text, uuid, text, boolean, boolean);
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
        sa.Column("revert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revert_credit_limit", sa.BigInteger(), nullable=True),
        sa.Column("revert_balance_max", sa.BigInteger(), nullable=True),
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
            "(revert_at IS NULL) = (revert_credit_limit IS NULL)",
            name=op.f("accounts_revert_complete_check"),
        ),
        sa.CheckConstraint(
            f"revert_credit_limit BETWEEN 0 AND {MAX_AMOUNT}"
            f" AND (revert_balance_max IS NULL OR revert_balance_max BETWEEN 0 AND {MAX_AMOUNT})",
            name=op.f("accounts_revert_range_check"),
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
        sa.Column("kind", sa.Text(), server_default="transfer", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("limit_override", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
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
        sa.CheckConstraint(
            "kind IN ('transfer', 'reversal', 'write_off', 'request')",
            name=op.f("trades_kind_valid_check"),
        ),
        sa.CheckConstraint(
            "(kind = 'reversal') = (reverses_trade_id IS NOT NULL)",
            name=op.f("trades_reversal_linked_check"),
        ),
        sa.CheckConstraint(
            "NOT limit_override OR reason IS NOT NULL", name=op.f("trades_override_reason_check")
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
            " OR (role IN ('operator', 'auditor')"
            " AND network_id IS NOT NULL AND account_id IS NULL)"
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
            "kind IN ('open', 'set', 'temporary', 'revert', 'propagate', 'default')",
            name=op.f("limit_changes_kind_valid_check"),
        ),
        sa.CheckConstraint(
            "(kind = 'default') = (account_id IS NULL)", name=op.f("limit_changes_subject_check")
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("limit_changes_network_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "account_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("limit_changes_network_id_account_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("limit_changes_pkey")),
    )
    op.create_index(
        op.f("limit_changes_account_id_changed_at_id_idx"),
        "limit_changes",
        ["account_id", "changed_at", "id"],
    )
    op.create_index(
        op.f("limit_changes_network_id_changed_at_id_idx"),
        "limit_changes",
        ["network_id", "changed_at", "id"],
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
        postgresql_where=sa.text("hash IS NULL"),
    )
    op.create_table(
        "audit_heads",
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("network_id", name=op.f("audit_heads_pkey")),
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
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"amount BETWEEN 1 AND {MAX_AMOUNT}", name=op.f("payment_requests_amount_range_check")
        ),
        sa.CheckConstraint(
            "payer_id <> payee_id", name=op.f("payment_requests_distinct_parties_check")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'rejected', 'cancelled', 'expired')",
            name=op.f("payment_requests_status_valid_check"),
        ),
        sa.CheckConstraint(
            "(status = 'accepted') = (trade_id IS NOT NULL)",
            name=op.f("payment_requests_trade_when_accepted_check"),
        ),
        sa.CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL)",
            name=op.f("payment_requests_resolved_at_valid_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payer_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payment_requests_network_id_payer_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payee_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payment_requests_network_id_payee_id_fkey"),
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
    )
    op.create_index(
        op.f("payment_requests_open_expires_at_idx"),
        "payment_requests",
        ["expires_at"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "payee_approvals",
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("payee_id", sa.Uuid(), nullable=False),
        sa.Column("max_amount", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            f"max_amount IS NULL OR max_amount BETWEEN 1 AND {MAX_AMOUNT}",
            name=op.f("payee_approvals_max_amount_range_check"),
        ),
        sa.CheckConstraint(
            "payer_id <> payee_id", name=op.f("payee_approvals_distinct_parties_check")
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payer_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payee_approvals_network_id_payer_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "payee_id"],
            ["accounts.network_id", "accounts.id"],
            name=op.f("payee_approvals_network_id_payee_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("payer_id", "payee_id", name=op.f("payee_approvals_pkey")),
    )
    _execute_script(TRIGGERS_AND_FUNCTIONS)


def downgrade() -> None:
    _execute_script(DROP_TRIGGERS_AND_FUNCTIONS)
    op.drop_table("payee_approvals")
    op.drop_index(op.f("payment_requests_open_expires_at_idx"), table_name="payment_requests")
    op.drop_index(
        op.f("payment_requests_network_id_created_at_id_idx"), table_name="payment_requests"
    )
    op.drop_table("payment_requests")
    op.drop_table("audit_heads")
    op.drop_index(op.f("audit_log_unsealed_network_id_id_idx"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("limit_changes_network_id_changed_at_id_idx"), table_name="limit_changes")
    op.drop_index(op.f("limit_changes_account_id_changed_at_id_idx"), table_name="limit_changes")
    op.drop_table("limit_changes")
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
