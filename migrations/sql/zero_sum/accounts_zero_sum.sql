-- Once per UPDATE statement on accounts, on the rows before (old_rows) and after (new_rows).
CREATE TRIGGER accounts_zero_sum AFTER UPDATE ON accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mc_accounts_zero_sum();
