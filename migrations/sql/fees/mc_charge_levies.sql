-- Levies on a trade, booked in the trade's own transaction, after the trade: for each levy rule
-- in force (`p_rules`, in code order) and each side it charges (payer, then payee) whose account
-- is of the rule's account kind and is not the treasury itself, the charge
-- mc_fee_amount(amount, ...) from that account to the treasury. Answers the levies as the trade's
-- `fees` (as trade_details shows them).
--
-- A levy that would take its account beyond its credit limit, or the treasury beyond its upper
-- limit, is the rule's choice: `over_limit = 'refuse'` raises SQLSTATE MC001 with the refusal's
-- code as message and its numbers as detail (the caller rolls the trade back to its block and
-- records the refusal); `'book'` books it past the limit and says so (`past_limit`).
-- `available` in a refusal is what the account had before the trade and its levies, and
-- `shortfall` what they need beyond it, as for a trade alone.
CREATE FUNCTION mc_charge_levies(p_network_id uuid, p_cause_id uuid, p_payer_id uuid,
                                 p_payee_id uuid, p_amount bigint, p_rules fee_rules[],
                                 p_actor text, p_now timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_rule fee_rules;
    v_side text;
    v_account accounts%ROWTYPE;
    v_treasury accounts%ROWTYPE;
    v_fee bigint;
    v_before bigint;
    v_past boolean;
    v_trade_id uuid;
    v_fees jsonb := '[]'::jsonb;
    v_paid_payer bigint := 0;
    v_paid_payee bigint := 0;
BEGIN
    FOREACH v_rule IN ARRAY p_rules LOOP
        FOREACH v_side IN ARRAY ARRAY['payer', 'payee'] LOOP
            CONTINUE WHEN (v_side = 'payer' AND NOT v_rule.charge_payer)
                       OR (v_side = 'payee' AND NOT v_rule.charge_payee);
            SELECT * INTO v_account FROM accounts a
            WHERE a.id = CASE v_side WHEN 'payer' THEN p_payer_id ELSE p_payee_id END;
            CONTINUE WHEN v_account.kind <> v_rule.account_kind
                       OR v_account.id = v_rule.treasury_id;
            v_fee := mc_fee_amount(p_amount, v_rule.rate_num, v_rule.rate_den, v_rule.amount,
                                   v_rule.minimum, v_rule.maximum);
            CONTINUE WHEN v_fee = 0;
            SELECT * INTO v_treasury FROM accounts a WHERE a.id = v_rule.treasury_id;
            v_past := false;
            IF v_account.balance - v_account.pending_debits - v_fee < -v_account.credit_limit THEN
                v_past := true;
                IF v_rule.over_limit = 'refuse' THEN
                    -- What the account had before this trade and the levies already charged.
                    v_before := v_account.balance - v_account.pending_debits
                                + v_account.credit_limit
                                + CASE v_side WHEN 'payer' THEN p_amount + v_paid_payer
                                              ELSE v_paid_payee - p_amount END;
                    RAISE EXCEPTION USING ERRCODE = 'MC001', MESSAGE = 'credit_limit_exceeded',
                        DETAIL = jsonb_build_object(
                            'account', v_account.code, 'fee_rule', v_rule.code,
                            'available', v_before,
                            'shortfall', v_fee - (v_account.balance - v_account.pending_debits
                                                  + v_account.credit_limit))::text;
                END IF;
            END IF;
            IF v_treasury.balance_max IS NOT NULL
               AND v_treasury.balance + v_treasury.pending_credits + v_fee > v_treasury.balance_max THEN
                v_past := true;
                IF v_rule.over_limit = 'refuse' THEN
                    RAISE EXCEPTION USING ERRCODE = 'MC001', MESSAGE = 'balance_max_exceeded',
                        DETAIL = jsonb_build_object(
                            'account', v_treasury.code, 'fee_rule', v_rule.code,
                            'headroom', v_treasury.balance_max - v_treasury.balance
                                        - v_treasury.pending_credits,
                            'excess', v_fee - (v_treasury.balance_max - v_treasury.balance
                                               - v_treasury.pending_credits))::text;
                END IF;
            END IF;
            v_trade_id := mc_book_fee(p_network_id, v_rule, v_account, v_fee, 0, v_past,
                                      p_cause_id, NULL, p_actor, p_now);
            IF v_side = 'payer' THEN v_paid_payer := v_paid_payer + v_fee;
            ELSE v_paid_payee := v_paid_payee + v_fee; END IF;
            v_fees := v_fees || jsonb_build_array(jsonb_build_object(
                'rule', v_rule.code, 'account', v_account.code, 'amount', v_fee,
                'trade_id', v_trade_id, 'past_limit', v_past));
        END LOOP;
    END LOOP;
    RETURN v_fees;
END $$;
