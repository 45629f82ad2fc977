-- mc_finish_hold: posts (in full) or voids a federated hold, whatever its expiry says: the
-- destination decided before its own expiry, and the origin only learns it now. Posting a hold
-- never moves an account nearer a limit (the hold reserved it), so no limit can refuse it; an
-- account suspended since must still honour what crossed. Idempotent: a final trade is left as
-- it is. Lock order as every writer: accounts by id, then the trade.
CREATE FUNCTION mc_finish_hold(p_trade_id uuid, p_post boolean, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_trade trades%ROWTYPE;
    v_now timestamptz;
BEGIN
    PERFORM set_config('mutualcredit.actor', p_actor, true);
    SELECT * INTO v_trade FROM trades WHERE id = p_trade_id;
    IF NOT FOUND OR v_trade.kind NOT IN ('federation', 'settlement') THEN
        RAISE EXCEPTION 'no federated hold %', p_trade_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM 1 FROM accounts a WHERE a.id IN (v_trade.payer_id, v_trade.payee_id)
    ORDER BY a.id FOR UPDATE;
    SELECT * INTO v_trade FROM trades WHERE id = p_trade_id FOR UPDATE;
    IF v_trade.status <> 'pending' THEN
        RETURN v_trade.status;
    END IF;
    v_now := clock_timestamp();
    PERFORM set_config('mutualcredit.federation', 'on', true);
    IF p_post THEN
        PERFORM mc_book(v_trade.network_id, p_trade_id, v_trade.payer_id, v_trade.payee_id,
                        v_trade.amount, v_trade.amount, v_now);
        UPDATE trades SET status = 'posted', posted_amount = v_trade.amount, resolved_at = v_now
        WHERE id = p_trade_id;
    ELSE
        PERFORM mc_release_hold(v_trade, 'voided', v_now);
    END IF;
    PERFORM set_config('mutualcredit.federation', 'off', true);
    RETURN CASE WHEN p_post THEN 'posted' ELSE 'voided' END;
END $$;
