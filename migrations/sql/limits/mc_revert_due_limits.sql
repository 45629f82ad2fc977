-- mc_revert_due_limits: ends temporary limits whose time has come (locks what it can without
-- waiting; the rest is taken at the next sweep). Returns how many accounts it reverted.
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
