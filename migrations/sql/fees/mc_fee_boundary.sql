-- Period boundaries of periodic fees: the first boundary at or after `p_at`, in UTC (a boundary
-- is the start of a calendar minute, hour, day, ISO week (Monday), month or year).
CREATE FUNCTION mc_fee_boundary(p_period text, p_at timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN date_trunc(p_period, p_at, 'UTC') = p_at THEN p_at
                ELSE date_trunc(p_period, p_at, 'UTC') + ('1 ' || p_period)::interval END
$$;
