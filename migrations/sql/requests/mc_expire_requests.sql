-- mc_expire_requests: the sweeper of open requests past their expires_at (what it cannot lock
-- without waiting is taken at the next sweep). Returns how many it expired.
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
