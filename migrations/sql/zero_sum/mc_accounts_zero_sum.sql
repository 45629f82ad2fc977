-- Zero sum. Statement triggers with transition tables: one check per statement, however many
-- rows it touched. The ledger functions move both sides of a trade in one statement.
--
-- A network's balances sum to zero and its pending debits equal its pending credits: for every
-- UPDATE of accounts, the sum of the new rows minus the sum of the old rows, per network, is zero.
CREATE FUNCTION mc_accounts_zero_sum() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- (A move to another network is refused by accounts_network_fixed.)
    IF EXISTS (
        SELECT 1
        FROM (SELECT network_id, balance AS b, pending_debits AS d, pending_credits AS c
              FROM new_rows
              UNION ALL
              SELECT network_id, -balance, -pending_debits, -pending_credits
              FROM old_rows) AS change
        GROUP BY network_id
        HAVING sum(b) <> 0 OR sum(d) <> sum(c)
    ) THEN
        RAISE EXCEPTION 'balances of a network must keep summing to zero, and its pending debits must equal its pending credits'
            USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';
    END IF;
    RETURN NULL;
END $$;
