-- Building blocks. Callers hold the row locks of both accounts (and of the trade) already.
--
-- Expires the overdue holds of one account whose row the caller has locked. The other account of
-- each hold and the hold itself are locked with SKIP LOCKED: this runs while the caller holds
-- locks out of the global order, so it must never wait. What it skips, the sweeper expires.
-- Federated holds are passed by: their outcome is the destination's to decide.
CREATE FUNCTION mc_expire_holds_of(p_account_id uuid) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_hold trades%ROWTYPE;
    v_now timestamptz := clock_timestamp();
    v_count integer := 0;
BEGIN
    FOR v_hold IN
        SELECT * FROM trades t
        WHERE t.status = 'pending' AND t.expires_at <= v_now AND t.kind NOT IN ('federation', 'settlement')
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
