-- mc_resolve_trade: post (all or part of) or void a pending trade.
--
-- outcome: 'posted' | 'voided' | 'expired' (it was overdue: it is expired now and the caller
-- must commit that and refuse) | 'rejected' (nothing changed; see problem_code).
CREATE FUNCTION mc_resolve_trade(p_network_id uuid, p_trade_id uuid, p_action text,
                                 p_amount bigint, p_actor text)
RETURNS TABLE (outcome text, problem_code text, problem_detail jsonb, trade jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_payer_id uuid;
    v_payee_id uuid;
    v_trade trades%ROWTYPE;
    v_status text;
    v_amount bigint;
    v_now timestamptz;
    v_kind text;
    v_rules fee_rules[];
    v_treasuries uuid[];
    v_code text;
    v_detail jsonb;
    v_levies jsonb;
    v_payer accounts%ROWTYPE;
    v_payee accounts%ROWTYPE;
BEGIN
    PERFORM set_config('mutualcredit.actor', p_actor, true);
    IF p_action NOT IN ('post', 'void') THEN
        RAISE EXCEPTION 'unknown action %', p_action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.payer_id, t.payee_id, t.kind INTO v_payer_id, v_payee_id, v_kind
    FROM trades t WHERE t.network_id = p_network_id AND t.id = p_trade_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'rejected'::text, 'trade_not_found'::text,
                            jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;
        RETURN;
    END IF;

    -- A hold pays its levies when it is posted: the rules' treasuries are locked with the parties.
    IF p_action = 'post' AND v_kind IN ('transfer', 'request') THEN
        v_rules := mc_levy_rules(p_network_id, clock_timestamp());
    END IF;
    -- Lock order: accounts by id, then the trade row (as every writer does).
    IF v_rules IS NULL THEN
        PERFORM 1 FROM accounts a WHERE a.id IN (v_payer_id, v_payee_id) ORDER BY a.id FOR UPDATE;
    ELSE
        v_treasuries := ARRAY(SELECT DISTINCT r.treasury_id FROM unnest(v_rules) r);
        PERFORM 1 FROM accounts a
        WHERE a.id = ANY (v_treasuries || ARRAY[v_payer_id, v_payee_id])
        ORDER BY a.id FOR UPDATE;
    END IF;
    SELECT * INTO v_trade FROM trades t WHERE t.id = p_trade_id FOR UPDATE;
    v_now := clock_timestamp();

    -- An expired hold answers the same whether the sweeper or this call expired it.
    IF v_trade.status = 'expired' THEN
        RETURN QUERY SELECT 'rejected'::text, 'trade_expired'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'expires_at', v_trade.expires_at),
                            mc_trade_json(p_trade_id);
        RETURN;
    END IF;
    IF v_trade.status <> 'pending' THEN
        RETURN QUERY SELECT 'rejected'::text, 'trade_not_pending'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'trade_status', v_trade.status),
                            mc_trade_json(p_trade_id);
        RETURN;
    END IF;
    IF v_trade.expires_at IS NOT NULL AND v_trade.expires_at <= v_now THEN
        PERFORM mc_release_hold(v_trade, 'expired', v_now);
        RETURN QUERY SELECT 'expired'::text, 'trade_expired'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'expires_at', v_trade.expires_at),
                            mc_trade_json(p_trade_id);
        RETURN;
    END IF;

    IF p_action = 'void' THEN
        PERFORM mc_release_hold(v_trade, 'voided', v_now);
        RETURN QUERY SELECT 'voided'::text, NULL::text, NULL::jsonb, mc_trade_json(p_trade_id);
        RETURN;
    END IF;

    v_amount := coalesce(p_amount, v_trade.amount);
    IF v_amount > v_trade.amount THEN
        RETURN QUERY SELECT 'rejected'::text, 'amount_exceeds_hold'::text,
                            jsonb_build_object('trade_id', p_trade_id, 'held', v_trade.amount,
                                               'requested', v_amount),
                            NULL::jsonb;
        RETURN;
    END IF;
    SELECT a.status INTO v_status FROM accounts a
    WHERE a.id IN (v_payer_id, v_payee_id) AND a.status <> 'active' LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'rejected'::text, 'account_' || v_status,
                            jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;
        RETURN;
    END IF;

    IF v_rules IS NOT NULL THEN
        -- The levies on the posted amount, planned before anything is booked: a levy its rule
        -- refuses past a limit refuses the posting, and the hold stays pending.
        SELECT * INTO v_payer FROM accounts a WHERE a.id = v_payer_id;
        SELECT * INTO v_payee FROM accounts a WHERE a.id = v_payee_id;
        SELECT l.code, l.detail, l.levies INTO v_code, v_detail, v_levies
        FROM mc_plan_levies(v_payer, v_payee, v_amount, v_trade.amount, v_rules) l;
        IF v_code IS NOT NULL THEN
            RETURN QUERY SELECT 'rejected'::text, v_code,
                                v_detail || jsonb_build_object('trade_id', p_trade_id), NULL::jsonb;
            RETURN;
        END IF;
    END IF;
    PERFORM mc_book(p_network_id, p_trade_id, v_payer_id, v_payee_id, v_amount, v_trade.amount, v_now);
    UPDATE trades SET status = 'posted', posted_amount = v_amount, resolved_at = v_now
    WHERE id = p_trade_id;
    IF v_levies IS NOT NULL THEN
        PERFORM mc_book_levies(p_network_id, p_trade_id, v_levies, p_actor, v_now);
    END IF;
    RETURN QUERY SELECT 'posted'::text, NULL::text, NULL::jsonb, mc_trade_json(p_trade_id);
END $$;
