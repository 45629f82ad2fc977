-- mc_expire_overdue: the sweeper. Expires up to p_limit overdue holds of any network, locking
-- every account involved (in id order) before the trade rows. Returns how many it expired.
-- Federated holds are passed by: their outcome is the destination's to decide.
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
          WHERE t.status = 'pending' AND t.expires_at <= v_now AND t.kind NOT IN ('federation', 'settlement')
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
