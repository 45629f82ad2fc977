-- Books the levies mc_plan_levies planned for the trade `p_cause_id` (its caller checked the
-- limits then, and holds every lock), each with mc_book_fee, and answers them as the trade's
-- `fees` (as trade_details shows them).
CREATE FUNCTION mc_book_levies(p_network_id uuid, p_cause_id uuid, p_levies jsonb,
                               p_actor text, p_now timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_levy jsonb;
    v_account accounts%ROWTYPE;
    v_trade_id uuid;
    v_fees jsonb := '[]'::jsonb;
BEGIN
    FOR v_levy IN SELECT * FROM jsonb_array_elements(p_levies) LOOP
        SELECT * INTO v_account FROM accounts a WHERE a.id = (v_levy->>'account_id')::uuid;
        v_trade_id := mc_book_fee(p_network_id,
                                  jsonb_populate_record(NULL::fee_rules, v_levy->'rule'),
                                  v_account, (v_levy->>'fee')::bigint, 0,
                                  (v_levy->>'past_limit')::boolean, p_cause_id, NULL, p_actor,
                                  p_now);
        v_fees := v_fees || jsonb_build_array(jsonb_build_object(
            'rule', v_levy->'rule'->>'code', 'account', v_levy->>'account',
            'amount', (v_levy->>'fee')::bigint, 'trade_id', v_trade_id,
            'past_limit', (v_levy->>'past_limit')::boolean));
    END LOOP;
    RETURN v_fees;
END $$;
