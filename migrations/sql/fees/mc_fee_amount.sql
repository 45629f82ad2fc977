-- The one rounding rule of every fee: floor(base x rate_num / rate_den) + fixed, then raised to
-- `minimum` and cut to `maximum` (each when set), and never beyond the largest amount. Rounding
-- is down, to the minor unit, in the charged account's favour. A base of 0 charges nothing (a
-- demurrage base below its threshold), whatever the fixed part or the minimum.
-- Exact: the product is taken in numeric, never in a float.
CREATE FUNCTION mc_fee_amount(p_base bigint, p_rate_num bigint, p_rate_den bigint,
                              p_fixed bigint, p_minimum bigint, p_maximum bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_base <= 0 THEN 0 ELSE
        least(9007199254740991,
              coalesce(p_maximum, 9007199254740991),
              greatest(coalesce(p_minimum, 0),
                       div(p_base::numeric * p_rate_num, p_rate_den)::bigint + p_fixed))
    END
$$;
