-- The levy rules of a network in force at `p_at`, in code order: read once per booking, before
-- any lock, so that the treasuries they name are locked with the trade's accounts in id order,
-- and the booking charges exactly the rules whose treasuries it locked. NULL when there are none
-- (the common case costs one index probe).
CREATE FUNCTION mc_levy_rules(p_network_id uuid, p_at timestamptz)
RETURNS fee_rules[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_rules fee_rules[];
BEGIN
    SELECT array_agg(r ORDER BY r.code) INTO v_rules FROM fee_rules r
    WHERE r.network_id = p_network_id AND r.kind = 'levy' AND r.starts_at <= p_at
      AND (r.ends_at IS NULL OR r.ends_at > p_at);
    RETURN v_rules;
END $$;
