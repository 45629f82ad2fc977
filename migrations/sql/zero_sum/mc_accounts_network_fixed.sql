-- An account never moves to another network (its balance would move money between networks).
-- A row trigger on UPDATE OF network_id: a booking never names the column, so never pays for it
-- (the zero-sum statement trigger used to join old and new rows for this).
CREATE FUNCTION mc_accounts_network_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an account cannot move to another network'
        USING ERRCODE = 'check_violation', TABLE = 'accounts', CONSTRAINT = 'accounts_zero_sum';
END $$;
