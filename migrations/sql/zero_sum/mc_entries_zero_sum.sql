-- Zero sum. Statement triggers with transition tables: one check per statement, however many
-- rows it touched. The ledger functions move both sides of a trade in one statement.
--
-- Every trade's entries sum to zero: the inserted rows, grouped by trade.
CREATE FUNCTION mc_entries_zero_sum() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows GROUP BY trade_id HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'the entries of a trade must sum to zero'
            USING ERRCODE = 'check_violation', TABLE = 'entries', CONSTRAINT = 'entries_zero_sum';
    END IF;
    RETURN NULL;
END $$;
