-- The levies a trade will pay, decided before anything is booked: for each levy rule in force
-- (`p_rules`, in code order) and each side it charges (payer, then payee) whose account is of
-- the rule's account kind and is not the rule's treasury, the fee mc_fee_amount(amount, ...).
--
-- Each fee is checked against the accounts as they will be after the trade and the fees before
-- it (the trade's own effect given by `p_amount` and the hold it releases, `p_release`): a fee
-- that would take its account beyond its credit limit, or the treasury beyond its upper limit,
-- is the rule's choice. `over_limit = 'refuse'` answers the refusal (`code`, `detail`: the limit's
-- code, as for a trade alone, with `fee_rule` and the numbers before the trade), and nothing is
-- booked; `'book'` plans it past the limit (`past_limit`), booked with the override on. So the
-- booking that follows never meets a limit the plan did not foresee, and the trade needs no
-- subtransaction to undo.
--
-- `levies`: a JSON array of {rule (the fee_rules row), account_id, account, fee, past_limit},
-- NULL when there is none. The caller holds the row locks of the parties and the treasuries.
CREATE FUNCTION mc_plan_levies(p_payer accounts, p_payee accounts, p_amount bigint,
                               p_release bigint, p_rules fee_rules[],
                               OUT code text, OUT detail jsonb, OUT levies jsonb)
RETURNS record LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ids uuid[];
    v_codes text[];
    v_avail bigint[];
    v_room bigint[];
    v_room_before bigint[];
    v_account accounts%ROWTYPE;
    v_rule fee_rules;
    v_side text;
    v_charged accounts%ROWTYPE;
    v_fee bigint;
    v_past boolean;
    i integer;
    j integer;
BEGIN
    -- What each account may still pay (avail) and receive (room; NULL: no upper limit).
    FOR v_account IN
        SELECT * FROM accounts a
        WHERE a.id = ANY (ARRAY(SELECT r.treasury_id FROM unnest(p_rules) r)
                          || ARRAY[p_payer.id, p_payee.id])
    LOOP
        v_ids := v_ids || v_account.id;
        v_codes := v_codes || v_account.code::text;
        v_avail := v_avail || (v_account.balance - v_account.pending_debits
                               + v_account.credit_limit);
        v_room := v_room || (v_account.balance_max - v_account.balance
                             - v_account.pending_credits);
    END LOOP;
    v_room_before := v_room;
    -- The trade itself.
    i := array_position(v_ids, p_payer.id);
    v_avail[i] := v_avail[i] + p_release - p_amount;
    v_room[i] := v_room[i] + p_amount;
    i := array_position(v_ids, p_payee.id);
    v_avail[i] := v_avail[i] + p_amount;
    v_room[i] := v_room[i] + p_release - p_amount;

    FOREACH v_rule IN ARRAY p_rules LOOP
        FOREACH v_side IN ARRAY ARRAY['payer', 'payee'] LOOP
            CONTINUE WHEN (v_side = 'payer' AND NOT v_rule.charge_payer)
                       OR (v_side = 'payee' AND NOT v_rule.charge_payee);
            v_charged := CASE v_side WHEN 'payer' THEN p_payer ELSE p_payee END;
            CONTINUE WHEN v_charged.kind <> v_rule.account_kind
                       OR v_charged.id = v_rule.treasury_id;
            v_fee := mc_fee_amount(p_amount, v_rule.rate_num, v_rule.rate_den, v_rule.amount,
                                   v_rule.minimum, v_rule.maximum);
            CONTINUE WHEN v_fee = 0;
            i := array_position(v_ids, v_charged.id);
            j := array_position(v_ids, v_rule.treasury_id);
            v_past := false;
            IF v_avail[i] < v_fee THEN
                v_past := true;
                IF v_rule.over_limit = 'refuse' THEN
                    code := 'credit_limit_exceeded';
                    detail := jsonb_build_object(
                        'account', v_charged.code, 'fee_rule', v_rule.code,
                        'available', v_charged.balance - v_charged.pending_debits
                                     + v_charged.credit_limit,
                        'shortfall', v_fee - v_avail[i]);
                    levies := NULL;
                    RETURN;
                END IF;
            END IF;
            IF v_room[j] < v_fee THEN
                v_past := true;
                IF v_rule.over_limit = 'refuse' THEN
                    code := 'balance_max_exceeded';
                    detail := jsonb_build_object(
                        'account', v_codes[j], 'fee_rule', v_rule.code,
                        'headroom', v_room_before[j], 'excess', v_fee - v_room[j]);
                    levies := NULL;
                    RETURN;
                END IF;
            END IF;
            v_avail[i] := v_avail[i] - v_fee;
            v_room[i] := v_room[i] + v_fee;
            v_avail[j] := v_avail[j] + v_fee;
            v_room[j] := v_room[j] - v_fee;
            levies := coalesce(levies, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
                'rule', to_jsonb(v_rule), 'account_id', v_charged.id, 'account', v_charged.code,
                'fee', v_fee, 'past_limit', v_past));
        END LOOP;
    END LOOP;
END $$;
