-- Building blocks. Callers hold the row locks of both accounts (and of the trade) already.
--
-- Books `amount` from payer to payee: both balances in one UPDATE (so the zero-sum trigger sees a
-- balanced statement), then both entries with the balance after, in the same statement.
-- `release` is the hold being consumed (0 for a direct trade).
CREATE FUNCTION mc_book(p_network_id uuid, p_trade_id uuid, p_payer_id uuid, p_payee_id uuid,
                        p_amount bigint, p_release bigint, p_now timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS (
        UPDATE accounts a
        SET balance = a.balance + CASE WHEN a.id = p_payer_id THEN -p_amount ELSE p_amount END,
            pending_debits = a.pending_debits - CASE WHEN a.id = p_payer_id THEN p_release ELSE 0 END,
            pending_credits = a.pending_credits - CASE WHEN a.id = p_payee_id THEN p_release ELSE 0 END
        WHERE a.id IN (p_payer_id, p_payee_id)
        RETURNING a.id, a.balance
    )
    INSERT INTO entries (network_id, trade_id, account_id, amount, balance_after, booked_at)
    SELECT p_network_id, p_trade_id, moved.id,
           CASE WHEN moved.id = p_payer_id THEN -p_amount ELSE p_amount END, moved.balance, p_now
    FROM moved;
END $$;
