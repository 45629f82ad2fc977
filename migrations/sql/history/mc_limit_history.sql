-- Limit history: every change of an account's limits or of a network's defaults, with who,
-- when, before and after, and a reason the database insists on.
--
-- One function for the four history triggers: a network's defaults ('default'), an account's
-- opening ('open') and every later change (kind from `mutualcredit.limit_change`: 'set',
-- 'temporary', 'revert', 'propagate'). A change without `mutualcredit.reason` is refused.
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
