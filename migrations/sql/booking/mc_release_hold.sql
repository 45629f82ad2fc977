-- Building blocks. Callers hold the row locks of both accounts (and of the trade) already.
--
-- Ends a hold without moving value: releases the reservation on both accounts.
CREATE FUNCTION mc_release_hold(p_trade trades, p_status text, p_now timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts a
    SET pending_debits = a.pending_debits - CASE WHEN a.id = p_trade.payer_id THEN p_trade.amount ELSE 0 END,
        pending_credits = a.pending_credits - CASE WHEN a.id = p_trade.payee_id THEN p_trade.amount ELSE 0 END
    WHERE a.id IN (p_trade.payer_id, p_trade.payee_id);
    UPDATE trades SET status = p_status, resolved_at = p_now WHERE id = p_trade.id;
END $$;
