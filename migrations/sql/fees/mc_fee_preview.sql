-- A dry run of a rule (one that exists, or one proposed and not saved): what it would charge
-- each account. A periodic rule: at its next boundary after `p_at`, on each account's balance
-- now (the boundary's balance is not known yet), with what the account could pay now. A levy:
-- what it would have charged on the account's posted trades (kinds transfer and request) in the
-- `p_window` before `p_at`, as if it had been in force. Accounts it would charge nothing are
-- left out.
CREATE FUNCTION mc_fee_preview(p_rule fee_rules, p_at timestamptz,
                               p_window interval DEFAULT '30 days')
RETURNS TABLE (account text, base bigint, fee bigint, amount bigint, waived bigint,
               past_limit boolean, trades bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_treasury accounts%ROWTYPE;
BEGIN
    SELECT * INTO v_treasury FROM accounts a WHERE a.id = p_rule.treasury_id;
    IF p_rule.kind = 'levy' THEN
        RETURN QUERY
        SELECT a.code::text, sum(t.posted_amount)::bigint, sum(f.fee)::bigint, sum(f.fee)::bigint,
               0::bigint, false, count(*)
        FROM trades t
        JOIN accounts a ON a.id IN (t.payer_id, t.payee_id)
        CROSS JOIN LATERAL (SELECT mc_fee_amount(t.posted_amount, p_rule.rate_num,
                                                 p_rule.rate_den, p_rule.amount, p_rule.minimum,
                                                 p_rule.maximum) AS fee) f
        WHERE t.network_id = p_rule.network_id AND t.kind IN ('transfer', 'request')
          AND t.status = 'posted' AND t.created_at >= p_at - p_window AND t.created_at < p_at
          AND a.kind = p_rule.account_kind AND a.id <> p_rule.treasury_id
          AND ((a.id = t.payer_id AND p_rule.charge_payer)
               OR (a.id = t.payee_id AND p_rule.charge_payee))
        GROUP BY a.code
        HAVING sum(f.fee) > 0
        ORDER BY a.code;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT a.code::text, p.base, p.fee, p.amount, p.waived, p.past_limit, NULL::bigint
    FROM accounts a
    CROSS JOIN LATERAL mc_periodic_fee(p_rule, a, a.balance, v_treasury) p
    WHERE a.network_id = p_rule.network_id AND a.kind = p_rule.account_kind
      AND a.status = ANY (p_rule.statuses) AND a.id <> p_rule.treasury_id
      AND p.fee > 0
    ORDER BY a.code;
END $$;
