-- Zero sum. Statement triggers with transition tables: one check per statement, however many
-- rows it touched. The ledger functions move both sides of a trade in one statement.
--
-- An account opens with a zero balance and no holds, so a new account cannot create value.
CREATE FUNCTION mc_accounts_open_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows
               WHERE balance <> 0 OR pending_debits <> 0 OR pending_credits <> 0) THEN
        RAISE EXCEPTION 'an account opens with a zero balance and no holds'
            USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';
    END IF;
    RETURN NULL;
END $$;
