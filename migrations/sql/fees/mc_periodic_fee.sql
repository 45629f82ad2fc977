-- One periodic charge of a rule on an account whose balance is `p_balance` (at the boundary, or
-- now for a dry run): the base (membership: the fee itself, charged whole; demurrage: the part
-- of a positive balance above the threshold, or of a debt beyond the credit limit and the
-- threshold), the fee by mc_fee_amount, and what the rule does when the account cannot pay it:
-- `over_limit = 'refuse'` charges what the account's available credit and the treasury's
-- headroom allow and waives the rest; `'book'` charges it whole, past the limit if need be.
CREATE FUNCTION mc_periodic_fee(p_rule fee_rules, p_account accounts, p_balance bigint,
                                p_treasury accounts,
                                OUT base bigint, OUT fee bigint, OUT amount bigint,
                                OUT waived bigint, OUT past_limit boolean)
RETURNS record
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_room bigint;
BEGIN
    IF p_rule.kind = 'membership' THEN
        base := p_rule.amount;
        fee := p_rule.amount;
    ELSE
        base := CASE WHEN p_rule.basis = 'balance_above'
                     THEN greatest(0, p_balance - p_rule.threshold)
                     ELSE greatest(0, -p_balance - p_account.credit_limit - p_rule.threshold) END;
        fee := mc_fee_amount(base, p_rule.rate_num, p_rule.rate_den, p_rule.amount,
                             p_rule.minimum, p_rule.maximum);
    END IF;
    v_room := greatest(0, least(
        p_account.balance - p_account.pending_debits + p_account.credit_limit,
        CASE WHEN p_treasury.balance_max IS NULL THEN fee
             ELSE p_treasury.balance_max - p_treasury.balance - p_treasury.pending_credits END));
    past_limit := fee > v_room;
    IF past_limit AND p_rule.over_limit = 'refuse' THEN
        amount := v_room;
        waived := fee - v_room;
        past_limit := false;
    ELSE
        amount := fee;
        waived := 0;
    END IF;
END $$;
